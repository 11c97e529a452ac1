//! How an MLflow Model Registry maps onto Switchyard: names, versions,
//! the config that is hashed, and the alias/stage → environment mapping.
//!
//! The rules (also in the README):
//! - **Model id**: the MLflow name lowercased; every run of characters
//!   outside `[a-z0-9._-]` becomes one `-`; leading characters that cannot
//!   start an id (`.`, `_`, `-`) and trailing `-` are dropped. Refused when
//!   nothing is left or the result is longer than 64 characters. A source
//!   may carry a prefix (`research-`), put before the mapped name.
//! - **Collisions**: when two MLflow names map to the same model id, every
//!   one of them is refused (naming the others), whatever the order they are
//!   listed in. Nothing is merged silently.
//! - **Version**: MLflow's version number `N` becomes `vN`; anything that is
//!   not a positive integer is refused.
//! - **Config**: `{"mlflow": {name, version, source, run_id, tags, description,
//!   creation_timestamp, model_id?, signature?, flavors?}}` — the fields that
//!   describe the version and do not move afterwards, so the config hash is the
//!   same on every import; aliases and stages are not in it (they move).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::ids::{FullId, ModelId, VersionName};
use crate::lifecycle::Stage;

/// The longest model id Switchyard accepts.
const MAX_ID: usize = 64;

/// Maps an MLflow registered-model name to a model id, or says why it cannot.
pub fn model_id_for(name: &str) -> Result<ModelId, String> {
    model_id_with_prefix("", name)
}

/// Checks a source's model-id prefix (`research-`): it must itself start a
/// model id (`[a-z0-9][a-z0-9._-]*`) and leave room for a name.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    let ok_start = prefix
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !ok_start || !ok_rest {
        return Err(format!(
            "the prefix {prefix:?} must start with a lowercase letter or digit and hold only a-z, 0-9, '.', '_' and '-' (e.g. research-)"
        ));
    }
    if prefix.len() >= MAX_ID {
        return Err(format!(
            "the prefix {prefix:?} has {} characters: at most {} leave room for a name",
            prefix.len(),
            MAX_ID - 1
        ));
    }
    Ok(())
}

/// Maps an MLflow name to `prefix` + its model id (the prefix of the
/// source it comes from, often empty), or says why it cannot.
pub fn model_id_with_prefix(prefix: &str, name: &str) -> Result<ModelId, String> {
    check_prefix(prefix)?;
    let mut out = String::with_capacity(name.len());
    let mut replaced = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            replaced = false;
        } else if !replaced {
            out.push('-');
            replaced = true;
        }
    }
    let trimmed = out
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('-');
    if trimmed.is_empty() {
        return Err(format!(
            "MLflow name {name:?} has no letter or digit to make a model id from"
        ));
    }
    let id = format!("{prefix}{trimmed}");
    if id.len() > MAX_ID {
        return Err(format!(
            "MLflow name {name:?} maps to a model id of {} characters (at most {MAX_ID})",
            id.len()
        ));
    }
    ModelId::parse(&id).map_err(|e| format!("MLflow name {name:?}: {e}"))
}

/// Checks a source's name (`research`): `[a-z0-9][a-z0-9._-]{0,63}`, as a model id.
pub fn check_source_name(name: &str) -> Result<(), String> {
    ModelId::parse(name).map(|_| ()).map_err(|_| {
        format!("the MLflow source name {name:?} must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    })
}

/// Maps an MLflow version number to a version name (`3` → `v3`).
pub fn version_name_for(version: &str) -> Result<VersionName, String> {
    let n: u64 = version
        .parse()
        .map_err(|_| format!("MLflow version {version:?} is not a positive integer"))?;
    if n == 0 {
        return Err(format!(
            "MLflow version {version:?} is not a positive integer"
        ));
    }
    VersionName::parse(&format!("v{n}")).map_err(|e| e.to_string())
}

/// The model ids for a set of MLflow names of one source (with its
/// prefix): each name maps to its id, or to
/// the reason it is refused (impossible name, or a collision with another
/// name). The answer does not depend on the order of `names`.
pub fn map_models<'a>(
    prefix: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Result<ModelId, String>> {
    let mapped: BTreeMap<String, Result<ModelId, String>> = names
        .into_iter()
        .map(|n| (n.to_owned(), model_id_with_prefix(prefix, n)))
        .collect();
    let mut by_id: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (name, id) in &mapped {
        if let Ok(id) = id {
            by_id.entry(id.to_string()).or_default().insert(name);
        }
    }
    let mut out = BTreeMap::new();
    for (name, id) in &mapped {
        let result = match id {
            Ok(id) => {
                let same = &by_id[id.as_str()];
                if same.len() > 1 {
                    let others: Vec<String> = same
                        .iter()
                        .filter(|o| **o != name.as_str())
                        .map(|o| format!("{o:?}"))
                        .collect();
                    Err(format!(
                        "MLflow name {name:?} maps to model id {id}, as {} does: refused, not merged",
                        others.join(", ")
                    ))
                } else {
                    Ok(id.clone())
                }
            }
            Err(e) => Err(e.clone()),
        };
        out.insert(name.clone(), result);
    }
    out
}

/// Glob match of `--models`: `*` any run of characters, `?` one character.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One MLflow model version as the registry's REST API reports it (the
/// fields the import reads).
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowVersion {
    pub name: String,
    pub version: String,
    pub source: Option<String>,
    pub run_id: Option<String>,
    pub description: Option<String>,
    /// Milliseconds since the epoch, as MLflow reports it.
    pub creation_timestamp: Option<i64>,
    pub current_stage: Option<String>,
    /// `READY`, `PENDING_REGISTRATION`, `FAILED_REGISTRATION`.
    pub status: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// MLflow 3's logged model id, signature and flavors where present.
    pub model_id: Option<String>,
    pub signature: Option<Value>,
    pub flavors: Option<Value>,
}

impl MlflowVersion {
    /// The config registered in Switchyard: stable across re-imports.
    pub fn config(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("version".into(), json!(self.version));
        m.insert("source".into(), json!(self.source));
        m.insert(
            "run_id".into(),
            json!(self.run_id.as_deref().filter(|r| !r.is_empty())),
        );
        m.insert(
            "description".into(),
            json!(self.description.as_deref().filter(|d| !d.is_empty())),
        );
        m.insert("creation_timestamp".into(), json!(self.creation_timestamp));
        m.insert("tags".into(), json!(self.tags));
        if let Some(id) = &self.model_id {
            m.insert("model_id".into(), json!(id));
        }
        if let Some(s) = &self.signature {
            m.insert("signature".into(), s.clone());
        }
        if let Some(f) = &self.flavors {
            m.insert("flavors".into(), f.clone());
        }
        json!({ "mlflow": Value::Object(m) })
    }
}

/// The user's mapping of MLflow aliases (and deprecated stages) to
/// Switchyard environments: `champion=production`, `Staging=staging`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AliasMap {
    pub aliases: BTreeMap<String, String>,
    pub stages: BTreeMap<String, String>,
}

impl AliasMap {
    /// Reads one `NAME=ENVIRONMENT` pair.
    pub fn parse_pair(pair: &str) -> Result<(String, String), String> {
        match pair.split_once('=') {
            Some((a, e)) if !a.trim().is_empty() && !e.trim().is_empty() => {
                Ok((a.trim().to_owned(), e.trim().to_owned()))
            }
            _ => Err(format!(
                "{pair:?} is not NAME=ENVIRONMENT (e.g. champion=production)"
            )),
        }
    }
}

/// Reads `NAME=ENV` pairs (the CLI's repeated `--alias`/`--stage`, or the
/// console's list separated by commas or new lines), each environment one
/// of `known`; a name mapped to two environments is refused. `what` names
/// the field in the message.
pub fn parse_mapping<'a>(
    items: impl IntoIterator<Item = &'a str>,
    known: &[String],
    what: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
        let (name, env) = AliasMap::parse_pair(item).map_err(|e| format!("{what}: {e}"))?;
        if !known.contains(&env) {
            return Err(format!(
                "{what} {item}: unknown environment {env:?} (known: {})",
                known.join(", ")
            ));
        }
        if let Some(previous) = out.insert(name.clone(), env.clone()) {
            if previous != env {
                return Err(format!(
                    "{what}: {name} is mapped to both {previous} and {env}"
                ));
            }
        }
    }
    Ok(out)
}

/// Checks a model name pattern (`--models`, the console's field): `*` and
/// `?` are its only wildcards, so brackets and braces (another glob's
/// classes and alternatives, which would silently match nothing) are
/// refused, as are control characters and patterns over 256 characters.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("the model name pattern is empty: leave it out to import every model".into());
    }
    if pattern.chars().count() > 256 {
        return Err("the model name pattern is longer than 256 characters".into());
    }
    if pattern.chars().any(char::is_control) {
        return Err(format!(
            "the model name pattern {pattern:?} holds a control character"
        ));
    }
    if let Some(c) = pattern.chars().find(|c| matches!(c, '[' | ']' | '{' | '}')) {
        return Err(format!(
            "the model name pattern {pattern:?} holds {c:?}: only * (any run of characters) and ? (one character) are wildcards"
        ));
    }
    Ok(())
}

/// Where an environment's pins need a version to be: the stage the import
/// moves a version to before pinning it there. Environments other than the
/// standard three are pinned from development.
pub fn stage_for_environment(env: &str) -> Stage {
    match env {
        "production" => Stage::Production,
        "staging" => Stage::Staging,
        _ => Stage::Development,
    }
}

/// The stages on the way from development to `to`, in order (not
/// including development): the import walks them so the stage history
/// reads as the lifecycle allows.
pub fn path_to(to: Stage) -> &'static [Stage] {
    match to {
        Stage::Staging => &[Stage::Staging],
        Stage::Production => &[Stage::Staging, Stage::Production],
        _ => &[],
    }
}

/// The full id an MLflow version imports as.
pub fn full_id_for(model: &ModelId, version: &str) -> Result<FullId, String> {
    Ok(FullId::new(model.clone(), version_name_for(version)?))
}

/// Write-back of promotions as MLflow aliases (`SWITCHYARD_MLFLOW_WRITE_BACK`):
/// which aliases follow which environment, `alias=environment` pairs as the
/// import's `--alias` (`champion=production`). An environment may carry
/// several aliases; an alias follows one environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBackMap {
    /// environment → the aliases set on the version promoted into it.
    pub by_environment: BTreeMap<String, BTreeSet<String>>,
}

impl WriteBackMap {
    /// Reads `champion=production,challenger=staging`; an alias named twice
    /// or a malformed pair is refused.
    pub fn parse(text: &str) -> Result<WriteBackMap, String> {
        let mut map = WriteBackMap::default();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (alias, env) = AliasMap::parse_pair(pair)?;
            if let Some(other) = seen.insert(alias.clone(), env.clone()) {
                return Err(format!(
                    "alias {alias:?} is mapped twice ({other} and {env}): an alias follows one environment"
                ));
            }
            map.by_environment.entry(env).or_default().insert(alias);
        }
        if map.by_environment.is_empty() {
            return Err(format!(
                "{text:?} names no alias: give alias=environment pairs, e.g. champion=production"
            ));
        }
        Ok(map)
    }

    /// The environments whose promotions are written back.
    pub fn environments(&self) -> Vec<String> {
        self.by_environment.keys().cloned().collect()
    }

    /// The aliases of `environment` (none when it is not mapped).
    pub fn aliases_for(&self, environment: &str) -> Vec<String> {
        self.by_environment
            .get(environment)
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// What a promotion applied in Switchyard asks of one write-back target.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteBack {
    /// Point each alias at this MLflow version.
    Set {
        name: String,
        version: String,
        aliases: Vec<String>,
    },
    /// Nothing to write, and why (recorded in the ledger).
    Skip(String),
    /// Nothing to write here, and nothing to record: another target writes
    /// it, or records why nothing is written (said in the log only).
    NotHere(String),
}

/// One MLflow the write-back sets aliases in: its tracking URI, the other
/// targets (each with its own subscription, which writes the versions that
/// came from it), and whether this one records the skips (exactly one
/// target does, so a promotion written nowhere is recorded once).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBackTarget {
    pub tracking_uri: String,
    pub others: Vec<String>,
    pub records_skips: bool,
}

impl WriteBackTarget {
    /// The only target (no other MLflow is written to).
    pub fn only(tracking_uri: &str) -> WriteBackTarget {
        WriteBackTarget {
            tracking_uri: tracking_uri.to_owned(),
            others: Vec::new(),
            records_skips: true,
        }
    }
}

/// Decides the write-back of a promotion of a version with `config` into
/// `environment` for `target`. `imported_from` is the tracking URI the
/// version was imported from (its registration event): the version goes to
/// that MLflow only. A version from no MLflow, or from one no target writes
/// to, is skipped with the reason (by the target that records skips), as is
/// an environment the map does not name.
pub fn write_back_for(
    map: &WriteBackMap,
    environment: &str,
    config: &Value,
    imported_from: Option<&str>,
    target: &WriteBackTarget,
) -> WriteBack {
    let tracking_uri = target.tracking_uri.as_str();
    let skip = |why: String| {
        if target.records_skips {
            WriteBack::Skip(why)
        } else {
            WriteBack::NotHere(why)
        }
    };
    let aliases = map.aliases_for(environment);
    if aliases.is_empty() {
        return skip(format!("no MLflow alias follows environment {environment}"));
    }
    let m = config.get("mlflow");
    let field = |f: &str| m.and_then(|m| m.get(f)).and_then(Value::as_str);
    let (Some(name), Some(version)) = (field("name"), field("version")) else {
        return skip(
            "the version was not imported from MLflow (its config has no mlflow name and version)"
                .to_owned(),
        );
    };
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    match imported_from {
        Some(from) if same(from, tracking_uri) => {}
        Some(from) if target.others.iter().any(|o| same(o, from)) => {
            return WriteBack::NotHere(format!(
                "the version was imported from MLflow at {from}, whose own write-back sets its aliases"
            ))
        }
        Some(from) => {
            let written = std::iter::once(tracking_uri)
                .chain(target.others.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", ");
            return skip(format!(
                "the version was imported from MLflow at {from}, which the write-back does not write to (it writes to {written})"
            ));
        }
        None => {
            return skip(format!(
                "the version's registration does not name the MLflow it came from, so it is not written to {tracking_uri}"
            ))
        }
    }
    WriteBack::Set {
        name: name.to_owned(),
        version: version.to_owned(),
        aliases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> String {
        model_id_for(name)
            .map(|m| m.to_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn names_map_deterministically_to_model_ids() {
        assert_eq!(id("fraud-detector"), "fraud-detector");
        assert_eq!(id("Fraud Detector"), "fraud-detector");
        assert_eq!(id("Churn_Model.v2"), "churn_model.v2");
        assert_eq!(id("team/ranker  (beta)"), "team-ranker-beta");
        assert_eq!(id("__private"), "private");
        assert_eq!(id("ÄÖ model"), "model");
    }

    #[test]
    fn impossible_names_are_refused_with_the_reason() {
        assert!(id("!!!").contains("no letter or digit"), "{}", id("!!!"));
        assert!(id("日本語").contains("no letter or digit"));
        let long = "a".repeat(65);
        assert!(id(&long).contains("65 characters"), "{}", id(&long));
        assert_eq!(id(&"a".repeat(64)), "a".repeat(64));
    }

    #[test]
    fn colliding_names_are_all_refused_whatever_the_order() {
        let a = map_models("", ["Fraud Detector", "fraud-detector", "churn"]);
        let b = map_models("", ["churn", "fraud-detector", "Fraud Detector"]);
        assert_eq!(a, b);
        assert_eq!(
            a["churn"].as_ref().map(|m| m.to_string()),
            Ok("churn".into())
        );
        let e = a["fraud-detector"].as_ref().unwrap_err();
        assert!(
            e.contains("\"Fraud Detector\"") && e.contains("not merged"),
            "{e}"
        );
        assert!(a["Fraud Detector"].is_err());
    }

    #[test]
    fn a_source_prefix_goes_before_the_mapped_name_and_is_checked() {
        let with = |p: &str, n: &str| {
            model_id_with_prefix(p, n)
                .map(|m| m.to_string())
                .unwrap_or_else(|e| format!("ERR {e}"))
        };
        assert_eq!(
            with("research-", "Fraud Detector"),
            "research-fraud-detector"
        );
        assert_eq!(with("", "Fraud Detector"), "fraud-detector");
        assert!(with("Research-", "x").contains("must start with a lowercase"));
        assert!(with("-r", "x").contains("must start with a lowercase"));
        assert!(with("r/", "x").contains("only a-z"));
        assert!(with(&"p".repeat(64), "x").contains("leave room"));
        let long = with("team-", &"a".repeat(60));
        assert!(long.contains("65 characters"), "{long}");
        assert!(with("team-", "!!!").contains("no letter or digit"));
        let m = map_models("team-", ["Ranker", "ranker"]);
        assert!(m["Ranker"].as_ref().unwrap_err().contains("team-ranker"));
    }

    #[test]
    fn versions_map_to_v_numbers_or_are_refused() {
        assert_eq!(
            version_name_for("3").map(|v| v.to_string()),
            Ok("v3".into())
        );
        assert_eq!(
            version_name_for("007").map(|v| v.to_string()),
            Ok("v7".into())
        );
        assert!(version_name_for("0").is_err());
        assert!(version_name_for("latest").is_err());
        assert!(version_name_for("-1").is_err());
    }

    #[test]
    fn patterns_with_another_globs_syntax_or_control_characters_are_refused_with_the_wildcards_named(
    ) {
        assert_eq!(check_pattern("fraud-*"), Ok(()));
        assert_eq!(check_pattern("m?del v2"), Ok(()));
        let bracket = check_pattern("fraud-[ab]").expect_err("refused");
        assert!(
            bracket.contains("only * (any run of characters) and ? (one character)"),
            "{bracket}"
        );
        assert!(check_pattern("{a,b}").is_err());
        assert!(check_pattern("  ").expect_err("refused").contains("empty"));
        assert!(check_pattern("a\nb")
            .expect_err("refused")
            .contains("control"));
        assert!(check_pattern(&"*".repeat(257))
            .expect_err("refused")
            .contains("256"));
    }

    #[test]
    fn mappings_name_the_unknown_environment_and_a_name_mapped_twice() {
        let known = ["staging".to_owned(), "production".to_owned()];
        let m = parse_mapping(
            ["champion=production", " ", "challenger = staging"],
            &known,
            "alias",
        )
        .expect("read");
        assert_eq!(m["champion"], "production");
        assert_eq!(m["challenger"], "staging");
        let unknown = parse_mapping(["champion=prod"], &known, "alias").expect_err("refused");
        assert_eq!(
            unknown,
            "alias champion=prod: unknown environment \"prod\" (known: staging, production)"
        );
        let twice =
            parse_mapping(["a=staging", "a=production"], &known, "alias").expect_err("refused");
        assert!(
            twice.contains("a is mapped to both staging and production"),
            "{twice}"
        );
        assert!(parse_mapping(["champion"], &known, "alias")
            .expect_err("refused")
            .contains("NAME=ENVIRONMENT"));
    }

    #[test]
    fn globs_match_as_documented() {
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("fraud-*", "fraud-detector"));
        assert!(!glob_matches("fraud-*", "churn"));
        assert!(glob_matches("m?del", "model"));
        assert!(!glob_matches("m?del", "mdel"));
        assert!(glob_matches("*-v*", "a-b-v2"));
    }

    #[test]
    fn the_config_is_stable_and_leaves_moving_data_out() {
        let v = MlflowVersion {
            name: "m".into(),
            version: "1".into(),
            source: Some("s3://b/m/1".into()),
            run_id: Some(String::new()),
            description: None,
            creation_timestamp: Some(1_700_000_000_000),
            current_stage: Some("Production".into()),
            status: Some("READY".into()),
            tags: [
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned()),
            ]
            .into(),
            model_id: None,
            signature: None,
            flavors: None,
        };
        let c = v.config();
        assert_eq!(c["mlflow"]["run_id"], Value::Null);
        assert!(c["mlflow"].get("current_stage").is_none());
        let h1 = crate::config_hash::config_hash(&c).map_err(|e| e.to_string());
        let mut w = v.clone();
        w.current_stage = Some("Archived".into());
        assert_eq!(
            h1,
            crate::config_hash::config_hash(&w.config()).map_err(|e| e.to_string())
        );
        w.tags.insert("c".into(), "3".into());
        assert_ne!(
            h1,
            crate::config_hash::config_hash(&w.config()).map_err(|e| e.to_string())
        );
    }

    #[test]
    fn alias_pairs_are_read_or_refused() {
        assert_eq!(
            AliasMap::parse_pair("champion=production"),
            Ok(("champion".into(), "production".into()))
        );
        assert!(AliasMap::parse_pair("champion").is_err());
        assert!(AliasMap::parse_pair("=production").is_err());
    }

    #[test]
    fn environments_need_their_stage_walked_in_order() {
        assert_eq!(
            path_to(stage_for_environment("production")),
            &[Stage::Staging, Stage::Production]
        );
        assert_eq!(path_to(stage_for_environment("staging")), &[Stage::Staging]);
        assert!(path_to(stage_for_environment("development")).is_empty());
    }

    #[test]
    fn write_back_maps_read_alias_environment_pairs() {
        let m = WriteBackMap::parse("champion=production, shadow=production,challenger=staging")
            .expect("parses");
        assert_eq!(m.aliases_for("production"), vec!["champion", "shadow"]);
        assert_eq!(m.aliases_for("staging"), vec!["challenger"]);
        assert!(m.aliases_for("development").is_empty());
        assert_eq!(m.environments(), vec!["production", "staging"]);
        let twice = WriteBackMap::parse("champion=production,champion=staging").unwrap_err();
        assert!(twice.contains("mapped twice"), "{twice}");
        assert!(WriteBackMap::parse("").is_err());
        assert!(WriteBackMap::parse("champion").is_err());
    }

    #[test]
    fn promotions_write_back_only_versions_imported_from_that_mlflow() {
        let map = WriteBackMap::parse("champion=production").expect("parses");
        let config = json!({"mlflow": {"name": "Fraud Detector", "version": "2"}});
        let uri = "http://mlflow:5000";
        let only = WriteBackTarget::only(uri);
        assert_eq!(
            write_back_for(
                &map,
                "production",
                &config,
                Some("http://mlflow:5000/"),
                &only
            ),
            WriteBack::Set {
                name: "Fraud Detector".into(),
                version: "2".into(),
                aliases: vec!["champion".into()]
            }
        );
        let skip = |w: WriteBack| match w {
            WriteBack::Skip(why) => why,
            other => panic!("not skipped: {other:?}"),
        };
        assert!(
            skip(write_back_for(&map, "staging", &config, Some(uri), &only))
                .contains("no MLflow alias follows environment staging")
        );
        assert!(skip(write_back_for(
            &map,
            "production",
            &json!({"image": "x"}),
            None,
            &only
        ))
        .contains("not imported from MLflow"));
        assert!(skip(write_back_for(
            &map,
            "production",
            &config,
            Some("http://other:5000"),
            &only
        ))
        .contains("imported from MLflow at http://other:5000, which the write-back does not write to (it writes to http://mlflow:5000)"));
        assert!(
            skip(write_back_for(&map, "production", &config, None, &only))
                .contains("does not name the MLflow")
        );
    }

    #[test]
    fn with_several_mlflows_each_version_goes_to_the_one_it_came_from_and_a_skip_is_recorded_once()
    {
        let map = WriteBackMap::parse("champion=production").expect("parses");
        let config = json!({"mlflow": {"name": "Ranker", "version": "4"}});
        let (a, b) = ("http://mlflow-a:5000", "http://mlflow-b:5000");
        let at_a = WriteBackTarget {
            tracking_uri: a.into(),
            others: vec![b.into()],
            records_skips: true,
        };
        let at_b = WriteBackTarget {
            tracking_uri: b.into(),
            others: vec![a.into()],
            records_skips: false,
        };
        let set = WriteBack::Set {
            name: "Ranker".into(),
            version: "4".into(),
            aliases: vec!["champion".into()],
        };
        // From b: b's target sets it, a's leaves it to b without a record.
        assert_eq!(
            write_back_for(&map, "production", &config, Some(b), &at_b),
            set
        );
        assert!(matches!(
            write_back_for(&map, "production", &config, Some(b), &at_a),
            WriteBack::NotHere(why) if why.contains("whose own write-back sets its aliases")
        ));
        // From a: the other way round.
        assert_eq!(
            write_back_for(&map, "production", &config, Some(a), &at_a),
            set
        );
        assert!(matches!(
            write_back_for(&map, "production", &config, Some(a), &at_b),
            WriteBack::NotHere(_)
        ));
        // Written nowhere: recorded by the one target that records skips, not by the other.
        let native = json!({"image": "native:1"});
        assert!(matches!(
            write_back_for(&map, "production", &native, None, &at_a),
            WriteBack::Skip(why) if why.contains("not imported from MLflow")
        ));
        assert!(matches!(
            write_back_for(&map, "production", &native, None, &at_b),
            WriteBack::NotHere(_)
        ));
        assert!(matches!(
            write_back_for(&map, "production", &config, Some("http://c:5000"), &at_a),
            WriteBack::Skip(why) if why.contains("it writes to http://mlflow-a:5000, http://mlflow-b:5000")
        ));
    }
}
