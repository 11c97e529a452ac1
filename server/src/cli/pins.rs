//! `switchyard pins export|check`: the pin file a pipeline writes, reviews
//! and checks before it deploys.
//!
//! ```yaml
//! models:
//!   chat-llama-70b:
//!     model_id: chat-llama-70b
//!     version: v2.1.1
//! ```
//!
//! The entry name is the pipeline's own name for the model (usually the model
//! id); `model_id` and `version` say what it must run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use switchyard_domain::policy::EnvPolicy;
use switchyard_domain::types::Environment;
use switchyard_domain::{FullId, ModelId, Timestamp, VersionName};

use super::{Failure, Outcome};
use crate::store::Store;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinFile {
    models: BTreeMap<String, PinEntry>,
}

/// Plain strings, not `ModelId`/`VersionName`: a bad value is a finding to
/// report at its line, not a reason to reject the whole file.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinEntry {
    model_id: String,
    version: String,
}

async fn environment(store: &dyn Store, env: &str) -> Result<Environment, Failure> {
    let environments = store
        .list_environments()
        .await
        .context("cannot list environments")?;
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    let known = names.join(", ");
    environments
        .into_iter()
        .find(|e| e.name == env)
        .ok_or_else(|| {
            Failure::usage(format!(
                "unknown environment {env:?}: the environments are {known}"
            ))
        })
}

pub(super) async fn export(store: &dyn Store, env: &str, out: Option<&Path>) -> Outcome {
    let environment = environment(store, env).await?;
    let file = PinFile {
        models: environment
            .pins
            .into_iter()
            .map(|p| {
                let entry = PinEntry {
                    model_id: p.model_id.to_string(),
                    version: p.version.to_string(),
                };
                (p.model_id.to_string(), entry)
            })
            .collect(),
    };
    let yaml = format!(
        "# Pins of environment {env}, exported by switchyard at {}.\n\
         # Check before deploying: switchyard pins check FILE --env {env}\n{}",
        Timestamp::now(),
        serde_yaml::to_string(&file).context("cannot write the pins as YAML")?
    );
    match out {
        None => print!("{yaml}"),
        Some(path) => {
            std::fs::write(path, yaml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{} pins of {env} written to {}",
                file.models.len(),
                path.display()
            );
        }
    }
    Ok(())
}

/// One offending entry of a pin file.
#[derive(Debug, PartialEq)]
struct Finding {
    line: usize,
    name: String,
    problem: String,
}

/// Which field of an entry a problem is about, to point at its line.
#[derive(Debug, Clone, Copy)]
enum Field {
    ModelId,
    Version,
}

pub(super) async fn check(store: &dyn Store, path: &Path, env: &str) -> Outcome {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let file: PinFile = serde_yaml::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "{} is not a pin file: {e} (expected models: <name>: {{model_id: …, version: …}})",
            path.display()
        ))
    })?;
    let environment = environment(store, env).await?;
    let known_models: HashSet<String> = store
        .list_models()
        .await
        .context("cannot list models")?
        .into_iter()
        .map(|m| m.model_id.to_string())
        .collect();

    let lines = locate_entries(&text);
    let mut findings = Vec::new();
    for (name, entry) in &file.models {
        if let Err((field, problem)) =
            judge(store, entry, env, &environment.policy, &known_models).await?
        {
            let at = lines.get(name).copied().unwrap_or_default();
            let line = match field {
                Field::ModelId => at.model_id,
                Field::Version => at.version,
            };
            findings.push(Finding {
                line: line.or(at.key).unwrap_or(1),
                name: name.clone(),
                problem,
            });
        }
    }
    findings.sort_by(|a, b| (a.line, &a.name).cmp(&(b.line, &b.name)));

    let shown = path.display();
    let total = file.models.len();
    if findings.is_empty() {
        println!("pins OK: {total} pins in {shown} are allowed in {env}");
        return Ok(());
    }
    for f in &findings {
        eprintln!("{shown}:{}: {}: {}", f.line, f.name, f.problem);
    }
    Err(Failure::refused(format!(
        "{} of {total} pins in {shown} are not allowed in {env}",
        findings.len()
    )))
}

/// Whether `entry` may be deployed in `env`; if not, which field is wrong and why.
async fn judge(
    store: &dyn Store,
    entry: &PinEntry,
    env: &str,
    policy: &EnvPolicy,
    known_models: &HashSet<String>,
) -> anyhow::Result<Result<(), (Field, String)>> {
    let model = match ModelId::parse(&entry.model_id) {
        Ok(m) => m,
        Err(e) => return Ok(Err((Field::ModelId, e.to_string()))),
    };
    if entry.version.eq_ignore_ascii_case("latest") {
        return Ok(Err((
            Field::Version,
            format!("\"latest\" is never allowed in a pin file: pin an exact version of {model}"),
        )));
    }
    let version = match VersionName::parse(&entry.version) {
        Ok(v) => v,
        Err(e) => return Ok(Err((Field::Version, e.to_string()))),
    };
    if !known_models.contains(model.as_str()) {
        return Ok(Err((
            Field::ModelId,
            format!("unknown model {model}: it has no registered version"),
        )));
    }
    let id = FullId::new(model, version);
    let Some(stored) = store
        .get_version(&id)
        .await
        .with_context(|| format!("cannot look up {id}"))?
    else {
        return Ok(Err((
            Field::Version,
            format!("unknown version {id}: it is not registered"),
        )));
    };
    Ok(policy
        .check_pin(env, &id, stored.stage)
        .map_err(|e| (Field::Version, e.to_string())))
}

/// Where an entry of the `models:` map sits in the file (1-based lines).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct EntryLines {
    key: Option<usize>,
    model_id: Option<usize>,
    version: Option<usize>,
}

/// Finds the lines of each entry in the raw text, since the YAML parser
/// does not report positions. Handles block entries (`model_id:` and
/// `version:` on lines of their own) and flow entries
/// (`chat: {model_id: chat, version: v1}`), with or without quotes.
fn locate_entries(text: &str) -> HashMap<String, EntryLines> {
    let mut found: HashMap<String, EntryLines> = HashMap::new();
    let mut in_models = false;
    let mut entry_indent = None;
    let mut current: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if indent == 0 {
            in_models = key_of(content).is_some_and(|(k, _)| k == "models");
            entry_indent = None;
            current = None;
            continue;
        }
        if !in_models {
            continue;
        }
        let Some((key, rest)) = key_of(content) else {
            continue;
        };
        if indent <= *entry_indent.get_or_insert(indent) {
            let mut lines = EntryLines {
                key: Some(n),
                ..EntryLines::default()
            };
            if rest.contains("model_id") {
                lines.model_id = Some(n);
            }
            if rest.contains("version") {
                lines.version = Some(n);
            }
            found.insert(key.clone(), lines);
            current = Some(key);
        } else if let Some(lines) = current.as_ref().and_then(|k| found.get_mut(k)) {
            match key.as_str() {
                "model_id" => lines.model_id = lines.model_id.or(Some(n)),
                "version" => lines.version = lines.version.or(Some(n)),
                _ => {}
            }
        }
    }
    found
}

/// The mapping key at the start of a line (unquoted) and what follows its colon.
fn key_of(content: &str) -> Option<(String, &str)> {
    let quote = content.chars().next().filter(|c| *c == '"' || *c == '\'');
    let (key, rest) = match quote {
        Some(q) => {
            let end = content[1..].find(q)? + 1;
            (
                &content[1..end],
                content[end + 1..].trim_start().strip_prefix(':')?,
            )
        }
        None => content.split_once(':').map(|(k, r)| (k.trim_end(), r))?,
    };
    Some((key.to_owned(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(key: usize, model_id: usize, version: usize) -> EntryLines {
        EntryLines {
            key: Some(key),
            model_id: Some(model_id),
            version: Some(version),
        }
    }

    #[test]
    fn entries_of_an_exported_file_are_found_on_their_lines() {
        let text = "# Pins of environment production\n\
                    models:\n  chat:\n    model_id: chat\n    version: v2\n  embed:\n    version: v1.0.0\n    model_id: embed\n";
        let found = locate_entries(text);
        assert_eq!(found["chat"], lines(3, 4, 5));
        assert_eq!(found["embed"], lines(6, 8, 7));
    }

    #[test]
    fn flow_entries_quoted_keys_and_comments_are_found_too() {
        let text = "models:\n\n  # the chat model\n  \"chat\": {model_id: chat, version: latest}\n  'embed':\n      model_id: embed  # ok\n      version: \"v1\"\nother:\n  version: x\n";
        let found = locate_entries(text);
        assert_eq!(found["chat"], lines(4, 4, 4));
        assert_eq!(found["embed"], lines(5, 6, 7));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn versions_that_yaml_reads_as_numbers_stay_strings() {
        let file: PinFile =
            serde_yaml::from_str("models:\n  m:\n    model_id: m\n    version: 1.10\n")
                .expect("a pin file");
        assert_eq!(file.models["m"].version, "1.10");
    }

    #[test]
    fn an_exported_file_reads_back_the_same() {
        let file = PinFile {
            models: BTreeMap::from([(
                "chat".to_owned(),
                PinEntry {
                    model_id: "chat".into(),
                    version: "1.0".into(),
                },
            )]),
        };
        let yaml = serde_yaml::to_string(&file).expect("yaml");
        assert_eq!(
            serde_yaml::from_str::<PinFile>(&yaml).expect("a pin file"),
            file
        );
    }

    #[test]
    fn a_misspelt_field_makes_the_file_malformed() {
        assert!(serde_yaml::from_str::<PinFile>(
            "models:\n  m:\n    model_id: m\n    verison: v1\n"
        )
        .is_err());
    }
}
