//! Importing an MLflow Model Registry over MLflow's REST API
//! (`switchyard import mlflow`). The mapping rules are in
//! `switchyard_domain::mlflow`; this module reads the registry page by page
//! and writes each version with `Store::import_version`, one transaction per
//! version, so an import stopped anywhere is resumed by running it again.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use switchyard_domain::config_hash::config_hash;
use switchyard_domain::mlflow::{self as rules, MlflowVersion};
use switchyard_domain::types::{NewVersion, Version};
use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp};

use crate::store::{ImportItem, Store, StoreError};

pub mod runs;
pub mod webhook;
pub mod write_back;

/// The ledger actor of imported items.
pub const IMPORT_ACTOR: &str = "import:mlflow";

/// How many registered models or versions one page asks for, by default.
pub const PAGE_SIZE: u32 = 200;

/// A credential for the tracking server.
#[derive(Clone)]
pub enum Credential {
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(***)"),
            Credential::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

impl Credential {
    /// MLflow's own variables: `MLFLOW_TRACKING_TOKEN`, or
    /// `MLFLOW_TRACKING_USERNAME` with `MLFLOW_TRACKING_PASSWORD`; a token
    /// file (its first line) wins over both.
    pub fn from_env(token_file: Option<&std::path::Path>) -> anyhow::Result<Option<Credential>> {
        if let Some(path) = token_file {
            return Ok(Some(Credential::Bearer(first_line(path, "token file")?)));
        }
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
            return Ok(Some(Credential::Bearer(token)));
        }
        match (
            var("MLFLOW_TRACKING_USERNAME"),
            var("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(user), Some(password)) => Ok(Some(Credential::Basic { user, password })),
            (Some(_), None) => {
                bail!("MLFLOW_TRACKING_USERNAME is set without MLFLOW_TRACKING_PASSWORD")
            }
            _ => Ok(None),
        }
    }
}

impl Credential {
    /// A source's credential from files: a bearer token file, or a user with
    /// a password file (each file's first line); none of them: MLflow's own
    /// variables (`from_env`).
    pub fn resolve(
        token_file: Option<&std::path::Path>,
        username: Option<&str>,
        password_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Credential>> {
        match (token_file, username, password_file) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                bail!("give a token file or a username with a password file, not both")
            }
            (None, Some(user), Some(path)) => Ok(Some(Credential::Basic {
                user: user.to_owned(),
                password: first_line(path, "password file")?,
            })),
            (None, Some(_), None) => bail!("a username needs a password file"),
            (None, None, Some(_)) => bail!("a password file needs a username"),
            (token, None, None) => Credential::from_env(token),
        }
    }
}

fn first_line(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default().trim().to_owned();
    if line.is_empty() {
        bail!("the {what} {} is empty", path.display());
    }
    Ok(line)
}

/// A registered model as the search lists it.
#[derive(Debug, Clone)]
pub struct RegisteredModel {
    pub name: String,
    /// alias → version number.
    pub aliases: BTreeMap<String, String>,
    /// Milliseconds; MLflow moves it when a version is added or changed.
    pub last_updated: Option<i64>,
}

/// The registry's REST API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    credential: Option<Credential>,
    page_size: String,
}

impl Client {
    /// `page_size`: models or versions per request (1–1000).
    pub fn new(
        tracking_uri: &str,
        credential: Option<Credential>,
        page_size: u32,
    ) -> anyhow::Result<Client> {
        if !(1..=1000).contains(&page_size) {
            bail!("the page size must be 1 to 1000, not {page_size}");
        }
        let base = tracking_uri.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--tracking-uri must be an http:// or https:// URL, not {tracking_uri:?}");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            base,
            credential,
            page_size: page_size.to_string(),
        })
    }

    /// A client on an HTTP client of the caller's (the write-back's, shared by its attempts).
    pub fn from_parts(
        http: reqwest::Client,
        tracking_uri: &str,
        credential: Option<Credential>,
    ) -> Client {
        Client {
            http,
            base: tracking_uri.trim_end_matches('/').to_owned(),
            credential,
            page_size: PAGE_SIZE.to_string(),
        }
    }

    pub fn tracking_uri(&self) -> &str {
        &self.base
    }

    /// GET one page; `what` names the item for errors.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        self.send(self.http.get(&url).query(query), what).await
    }

    /// POST a JSON body; `what` names the change for errors.
    pub(crate) async fn post(&self, path: &str, body: &Value, what: &str) -> anyhow::Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        self.send(self.http.post(&url).json(body), what).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        req = match &self.credential {
            Some(Credential::Bearer(t)) => req.bearer_auth(t),
            Some(Credential::Basic { user, password }) => req.basic_auth(user, Some(password)),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            anyhow!(
                "MLflow at {} did not answer while {what}: {:#}",
                self.base,
                anyhow::Error::new(e)
            )
        })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| {
            anyhow!(
                "MLflow at {} broke off its answer while {what}: {:#}",
                self.base,
                anyhow::Error::new(e)
            )
        })?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let fix = match &self.credential {
                None => {
                    "it needs credentials: give --username with --password-file or --token-file \
                         (a source: username with password_file, or token_file), or set MLflow's \
                         MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"
                        .to_owned()
                }
                Some(Credential::Basic { user, .. }) => format!(
                    "it refused user {user:?} and that password: correct the password file \
                     (--password-file, a source's password_file) or MLFLOW_TRACKING_PASSWORD"
                ),
                Some(Credential::Bearer(_)) => {
                    "it refused the bearer token: correct the token file \
                     (--token-file, a source's token_file) or MLFLOW_TRACKING_TOKEN"
                        .to_owned()
                }
            };
            bail!(
                "MLflow at {} answered HTTP 401 while {what}: {fix}",
                self.base
            );
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            let who = match &self.credential {
                Some(Credential::Basic { user, .. }) => format!("user {user:?}"),
                Some(Credential::Bearer(_)) => "the token's user".to_owned(),
                None => "an anonymous caller".to_owned(),
            };
            bail!(
                "MLflow at {} answered HTTP 403 while {what}: {who} lacks the permission; \
                 grant it in MLflow (READ to import and follow, EDIT on the model to write aliases back): {}",
                self.base,
                excerpt(&body)
            );
        }
        if !status.is_success() {
            bail!(
                "MLflow at {} answered HTTP {} while {what}: {}",
                self.base,
                status.as_u16(),
                excerpt(&body)
            );
        }
        let value: Value = serde_json::from_str(&body).map_err(|e| {
            anyhow!(
                "MLflow at {} answered malformed JSON while {what} ({e}): {}",
                self.base,
                excerpt(&body)
            )
        })?;
        if !value.is_object() {
            bail!(
                "MLflow at {} answered {} instead of a JSON object while {what}",
                self.base,
                excerpt(&body)
            );
        }
        Ok(value)
    }

    /// Every registered model, following page tokens.
    pub async fn registered_models(&self) -> anyhow::Result<Vec<RegisteredModel>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for page in 1.. {
            let what = format!("listing registered models (page {page})");
            let mut query = vec![("max_results", self.page_size.as_str())];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let v = self.get("registered-models/search", &query, &what).await?;
            for m in array(&v, "registered_models", &what)? {
                out.push(registered_model(m).with_context(|| what.clone())?);
            }
            token = next_token(&v);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Every version of one registered model, following page tokens.
    pub async fn versions(&self, name: &str) -> anyhow::Result<Vec<MlflowVersion>> {
        let filter = if name.contains('"') && name.contains('\'') {
            bail!("MLflow name {name:?} holds both quote characters: it cannot be put in a search filter");
        } else if name.contains('"') {
            format!("name='{name}'")
        } else {
            format!("name=\"{name}\"")
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for page in 1.. {
            let what = format!("listing the versions of MLflow model {name:?} (page {page})");
            let mut query = vec![
                ("filter", filter.as_str()),
                ("max_results", self.page_size.as_str()),
            ];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let v = self.get("model-versions/search", &query, &what).await?;
            for mv in array(&v, "model_versions", &what)? {
                out.push(model_version(mv).with_context(|| what.clone())?);
            }
            token = next_token(&v);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }
}

fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// MLflow leaves the key out for an empty list.
fn array<'a>(v: &'a Value, key: &str, what: &str) -> anyhow::Result<&'a [Value]> {
    match v.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => bail!("malformed answer while {what}: {key:?} is not a list"),
    }
}

fn next_token(v: &Value) -> Option<String> {
    v.get("next_page_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn registered_model(m: &Value) -> anyhow::Result<RegisteredModel> {
    let name = text(m, "name").ok_or_else(|| anyhow!("a registered model without a name: {m}"))?;
    let mut aliases = BTreeMap::new();
    if let Some(list) = m.get("aliases").and_then(Value::as_array) {
        for a in list {
            match (text(a, "alias"), text(a, "version")) {
                (Some(alias), Some(version)) => {
                    aliases.insert(alias, version);
                }
                _ => bail!("model {name:?} has a malformed alias: {a}"),
            }
        }
    }
    Ok(RegisteredModel {
        last_updated: m.get("last_updated_timestamp").and_then(Value::as_i64),
        name,
        aliases,
    })
}

fn model_version(v: &Value) -> anyhow::Result<MlflowVersion> {
    let name = text(v, "name").ok_or_else(|| anyhow!("a model version without a name: {v}"))?;
    let version = text(v, "version")
        .ok_or_else(|| anyhow!("a version of model {name:?} without a version number"))?;
    let mut tags = BTreeMap::new();
    if let Some(list) = v.get("tags").and_then(Value::as_array) {
        for t in list {
            match (text(t, "key"), text(t, "value")) {
                (Some(k), value) => {
                    tags.insert(k, value.unwrap_or_default());
                }
                _ => bail!("version {version} of model {name:?} has a malformed tag: {t}"),
            }
        }
    }
    Ok(MlflowVersion {
        source: text(v, "source"),
        run_id: text(v, "run_id"),
        description: text(v, "description"),
        creation_timestamp: v.get("creation_timestamp").and_then(Value::as_i64),
        current_stage: text(v, "current_stage"),
        status: text(v, "status"),
        model_id: text(v, "model_id").filter(|m| !m.is_empty()),
        signature: v.get("signature").cloned(),
        flavors: v.get("flavors").cloned(),
        tags,
        name,
        version,
    })
}

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--models`: a glob on MLflow names.
    pub pattern: Option<String>,
    pub dry_run: bool,
    /// alias → environment.
    pub aliases: BTreeMap<String, String>,
    /// MLflow stage (`Staging`, `Production`) → environment whose stage the version gets.
    pub stages: BTreeMap<String, String>,
    /// Only models MLflow updated at or after this instant (ms): follow's cursor.
    pub changed_since: Option<i64>,
    /// Only the MLflow model of this exact name (a webhook's pass); names
    /// are still mapped with every model the pattern selects, so collisions
    /// are refused as in a full pass.
    pub only: Option<String>,
    /// Print each line on standard output (the command line) or log it (follow).
    pub print: bool,
    /// Put before every mapped model id: the source's prefix (`research-`), often empty.
    pub prefix: String,
    /// The source's name (`SWITCHYARD_MLFLOW_SOURCES`), kept in each import's ledger details.
    pub source: Option<String>,
    /// Where the report so far is shown while the import runs (the console's import page).
    pub progress: Option<Progress>,
    /// The person who started it from the console, kept in each import's ledger details.
    pub started_by: Option<String>,
}

/// An import's report while it runs, for another task to read (the
/// console's progress page): updated with every line said and after every
/// model, so its counts lag by at most one model.
#[derive(Clone, Default)]
pub struct Progress(std::sync::Arc<std::sync::Mutex<ImportReport>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl Progress {
    /// The report as far as the import got.
    pub fn snapshot(&self) -> ImportReport {
        match self.0.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Copies the counts and appends the lines not copied yet (lines are
    /// only ever appended, so this stays linear over an import).
    fn publish(&self, from: &ImportReport) {
        let mut to = match self.0.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let known = to.lines.len().min(from.lines.len());
        to.lines.extend_from_slice(&from.lines[known..]);
        to.created = from.created;
        to.unchanged = from.unchanged;
        to.conflicts = from.conflicts;
        to.refused = from.refused;
        to.gone = from.gone;
        to.versions_read = from.versions_read;
        to.models_done = from.models_done;
        to.models_total = from.models_total;
        to.models_begun = from.models_begun;
        to.elapsed = from.elapsed;
        to.newest_update = from.newest_update;
        to.stopped = from.stopped.clone();
        to.source = from.source.clone();
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The lines printed, in order.
    pub lines: Vec<String>,
    pub created: usize,
    pub unchanged: usize,
    pub conflicts: usize,
    /// Refused models and versions.
    pub refused: usize,
    /// Imported versions no longer in MLflow (kept).
    pub gone: usize,
    pub versions_read: usize,
    pub models_done: usize,
    /// The models this pass reads (after the pattern and the cursor), once listed.
    pub models_total: usize,
    /// The models reached so far (being read, imported or refused): the progress.
    pub models_begun: usize,
    pub elapsed: Duration,
    /// The newest `last_updated_timestamp` of the models listed: follow's next cursor.
    pub newest_update: Option<i64>,
    /// Why it stopped early, naming the item; nothing of that item was written.
    pub stopped: Option<String>,
    /// The source's name, in the log lines.
    pub source: Option<String>,
    /// Where the report is published while the import runs.
    progress: Option<Progress>,
}

impl ImportReport {
    fn say(&mut self, print: bool, line: String) {
        if print {
            println!("{line}");
        } else {
            tracing::info!(
                source = "mlflow",
                mlflow_source = self.source.as_deref().unwrap_or_default(),
                "{line}"
            );
        }
        self.lines.push(line);
        self.publish();
    }

    fn publish(&self) {
        if let Some(p) = &self.progress {
            p.publish(self);
        }
    }

    pub fn summary(&self, dry_run: bool, uri: &str) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        let mut s = String::new();
        let _ = write!(
            s,
            "{} from {uri}: {} {}, {} already imported, {} conflict(s), {} refused; \
             {} model(s), {} version(s) read in {:.1}s ({:.0} versions/s)",
            if dry_run { "dry run" } else { "import" },
            self.created,
            if dry_run {
                "would be created"
            } else {
                "created"
            },
            self.unchanged,
            self.conflicts,
            self.refused,
            self.models_done,
            self.versions_read,
            secs,
            self.versions_read as f64 / secs,
        );
        if self.gone > 0 {
            let _ = write!(
                s,
                "; {} version(s) deleted in MLflow since their import (kept)",
                self.gone
            );
        }
        if let Some(why) = &self.stopped {
            let _ = write!(s, "\nSTOPPED: {why}; run the import again to resume");
        }
        s
    }
}

/// Imports (or, with `dry_run`, describes) the registry at `client`.
pub async fn import(store: &dyn Store, client: &Client, opts: &ImportOptions) -> ImportReport {
    let started = Instant::now();
    let mut report = ImportReport {
        source: opts.source.clone(),
        progress: opts.progress.clone(),
        ..ImportReport::default()
    };
    let models = match client.registered_models().await {
        Ok(m) => m,
        Err(e) => {
            report.stopped = Some(format!("{e:#}"));
            report.elapsed = started.elapsed();
            report.publish();
            return report;
        }
    };
    let wanted: Vec<&RegisteredModel> = models
        .iter()
        .filter(|m| {
            opts.pattern
                .as_deref()
                .is_none_or(|p| rules::glob_matches(p, &m.name))
        })
        .collect();
    let ids = rules::map_models(&opts.prefix, wanted.iter().map(|m| m.name.as_str()));
    report.newest_update = wanted.iter().filter_map(|m| m.last_updated).max();
    // At or after the cursor: a change in the cursor's millisecond is read again (idempotent).
    let changed = |m: &&RegisteredModel| {
        opts.changed_since
            .is_none_or(|c| m.last_updated.is_none_or(|t| t >= c))
    };
    let only = |m: &&RegisteredModel| opts.only.as_deref().is_none_or(|n| m.name == n);
    let wanted: Vec<&RegisteredModel> = wanted.into_iter().filter(changed).filter(only).collect();
    report.models_total = wanted.len();
    report.elapsed = started.elapsed();
    report.publish();
    for model in wanted {
        report.models_begun += 1;
        report.publish();
        let id = match &ids[&model.name] {
            Ok(id) => id.clone(),
            Err(why) => {
                report.refused += 1;
                report.say(
                    opts.print,
                    format!("refused   MLflow model {:?}: {why}", model.name),
                );
                continue;
            }
        };
        // A Switchyard model of that id holding versions from elsewhere is
        // not mixed with this MLflow model's.
        let existing = match existing_versions(store, &id).await {
            Ok(v) => v,
            Err(e) => {
                report.stopped = Some(format!("at MLflow model {:?}: {e:#}", model.name));
                break;
            }
        };
        // Another source (another tracking server) got there first: refused, never merged.
        if !existing.is_empty() {
            match imported_from_model(store, &id).await {
                Ok(Some(from)) if !same_server(&from, client.tracking_uri()) => {
                    report.refused += 1;
                    report.say(
                        opts.print,
                        format!(
                            "refused   MLflow model {:?}: model id {id} already holds versions imported from MLflow at {from}, \
                             not from {}: refused, not merged (give one of the two sources a prefix)",
                            model.name,
                            client.tracking_uri()
                        ),
                    );
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    report.stopped = Some(format!("at MLflow model {:?}: {e:#}", model.name));
                    break;
                }
            }
        }
        let foreign = existing
            .iter()
            .find(|v| imported_field(v, "name") != Some(model.name.as_str()));
        match foreign.map(|v| &v.full_id) {
            None => {}
            Some(other) => {
                report.refused += 1;
                report.say(
                    opts.print,
                    format!(
                        "refused   MLflow model {:?}: model id {id} already holds {other}, not imported from this MLflow model: refused, not merged",
                        model.name
                    ),
                );
                continue;
            }
        }
        // The whole model is read before anything of it is written, so a
        // failure mid-pagination leaves this model untouched.
        let versions = match client.versions(&model.name).await {
            Ok(v) => v,
            Err(e) => {
                report.stopped = Some(format!("at MLflow model {:?}: {e:#}", model.name));
                break;
            }
        };
        // Imported before, gone from MLflow since: kept (versions are immutable), reported.
        for old in &existing {
            let full_id = &old.full_id;
            if let Some(n) = imported_field(old, "version") {
                if !versions.iter().any(|v| v.version == n) {
                    report.gone += 1;
                    report.say(
                        opts.print,
                        format!(
                            "gone      {full_id} ← MLflow {:?} version {n}: deleted in MLflow after import; kept in Switchyard (versions are immutable)",
                            model.name
                        ),
                    );
                }
            }
        }
        let known: HashMap<FullId, Version> = existing
            .into_iter()
            .map(|v| (v.full_id.clone(), v))
            .collect();
        if let Err(e) = import_model(
            store,
            client,
            opts,
            model,
            (&id, &known),
            versions,
            &mut report,
        )
        .await
        {
            report.stopped = Some(format!("{e:#}"));
            break;
        }
        report.models_done += 1;
        report.elapsed = started.elapsed();
        report.publish();
    }
    report.elapsed = started.elapsed();
    report.publish();
    report
}

/// The versions Switchyard holds under `id` (none for an unknown model).
async fn existing_versions(store: &dyn Store, id: &ModelId) -> anyhow::Result<Vec<Version>> {
    match store.list_versions(id).await {
        Ok(v) => Ok(v),
        Err(StoreError::Domain(DomainError::NotFound(_))) => Ok(Vec::new()),
        Err(e) => Err(anyhow!("reading model {id}: {e}")),
    }
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The tracking URI the model's newest registration was imported from
/// (none when it was not imported from MLflow). Every version of a model
/// id comes from one source (this check keeps it so), so one event tells.
async fn imported_from_model(store: &dyn Store, id: &ModelId) -> anyhow::Result<Option<String>> {
    let q = crate::store::AuditQuery {
        action: Some(switchyard_domain::ledger::action::VERSION_REGISTERED.to_owned()),
        model: Some(id.to_string()),
        limit: 1,
        ..crate::store::AuditQuery::default()
    };
    let page = store
        .audit_page(&q)
        .await
        .map_err(|e| anyhow!("reading the registrations of model {id}: {e}"))?;
    Ok(page.events.first().and_then(|ev| {
        let import = &ev.details["import"];
        (import["source"] == "mlflow")
            .then(|| import["tracking_uri"].as_str().map(str::to_owned))
            .flatten()
    }))
}

/// The MLflow field `f` a version was imported with (none when not imported).
fn imported_field<'a>(v: &'a Version, f: &str) -> Option<&'a str> {
    v.config
        .get("mlflow")
        .and_then(|m| m.get(f))
        .and_then(Value::as_str)
}

async fn import_model(
    store: &dyn Store,
    client: &Client,
    opts: &ImportOptions,
    model: &RegisteredModel,
    (id, known): (&ModelId, &HashMap<FullId, Version>),
    mut versions: Vec<MlflowVersion>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    report.versions_read += versions.len();
    versions.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(u64::MAX));
    for mv in versions {
        let label = format!("MLflow {:?} version {}", mv.name, mv.version);
        let full_id = match rules::full_id_for(id, &mv.version) {
            Ok(f) => f,
            Err(why) => {
                report.refused += 1;
                report.say(opts.print, format!("refused   {label}: {why}"));
                continue;
            }
        };
        if let Some(status) = mv.status.as_deref().filter(|s| *s != "READY") {
            report.refused += 1;
            report.say(opts.print, format!("refused   {label}: its status in MLflow is {status}, not READY (imported once it is)"));
            continue;
        }
        let plan = plan_version(opts, model, &mv);
        let config = mv.config();
        let hash = config_hash(&config).map_err(|e| anyhow!("{label}: {e}"))?;
        let new = NewVersion {
            full_id: full_id.clone(),
            config,
            config_hash: hash,
            artifact_uri: mv.source.clone().filter(|s| !s.is_empty()),
            labels: None,
        };
        let what = describe(&full_id, &label, &plan);
        // Already here (read with the model, no transaction): unchanged or a conflict.
        if let Some(v) = known.get(&full_id) {
            match crate::store::registration_conflict(v, &new) {
                None => report.unchanged += 1,
                Some(why) => {
                    report.conflicts += 1;
                    report.say(opts.print, format!("conflict  {full_id} ← {label}: changed in MLflow after import, not overwritten: {why}"));
                }
            }
            continue;
        }
        if opts.dry_run {
            report.created += 1;
            report.say(opts.print, format!("create    {what}"));
            continue;
        }
        let mut details = json!({
            "source": "mlflow",
            "tracking_uri": client.tracking_uri(),
            "mlflow_name": mv.name,
            "mlflow_version": mv.version,
            "mlflow_created_at": mv.creation_timestamp
                .map(|ms| Timestamp::from_micros(ms.saturating_mul(1000)).to_rfc3339()),
            "mlflow_stage": mv.current_stage,
            "aliases": plan.aliases,
            "mlflow_source": opts.source,
        });
        if let Some(who) = &opts.started_by {
            details["started_by"] = json!(who);
        }
        let item = ImportItem {
            new,
            stages: rules::path_to(plan.stage).to_vec(),
            pins: plan.pins.clone(),
            details,
            reason: format!(
                "imported from MLflow {}: {}",
                client.tracking_uri(),
                plan.why()
            ),
        };
        match store
            .import_version(item, IMPORT_ACTOR, Timestamp::now())
            .await
        {
            Ok(r) if r.created => {
                report.created += 1;
                report.say(opts.print, format!("created   {what}"));
            }
            Ok(_) => report.unchanged += 1,
            Err(StoreError::Domain(DomainError::Conflict(why))) => {
                report.conflicts += 1;
                report.say(opts.print, format!("conflict  {full_id} ← {label}: changed in MLflow after import, not overwritten: {why}"));
            }
            Err(StoreError::Domain(e)) => {
                report.refused += 1;
                report.say(opts.print, format!("refused   {label}: {e}"));
            }
            Err(e) => return Err(anyhow!("{label} ({full_id}) was not imported: {e}")),
        }
    }
    Ok(())
}

/// Where one version goes: the stage and the pins, and why.
#[derive(Debug, Clone)]
struct Plan {
    stage: Stage,
    pins: Vec<String>,
    aliases: Vec<String>,
    from_stage: Option<String>,
}

impl Plan {
    fn why(&self) -> String {
        let mut parts = Vec::new();
        if !self.aliases.is_empty() {
            parts.push(format!("alias {}", self.aliases.join(", ")));
        }
        if let Some(s) = &self.from_stage {
            parts.push(format!("stage {s}"));
        }
        if parts.is_empty() {
            "registered".into()
        } else {
            parts.join("; ")
        }
    }
}

fn plan_version(opts: &ImportOptions, model: &RegisteredModel, mv: &MlflowVersion) -> Plan {
    let aliases: Vec<String> = model
        .aliases
        .iter()
        .filter(|(_, v)| **v == mv.version)
        .map(|(a, _)| a.clone())
        .collect();
    let mut pins: Vec<String> = aliases
        .iter()
        .filter_map(|a| opts.aliases.get(a).cloned())
        .collect();
    pins.sort();
    pins.dedup();
    let from_stage = mv
        .current_stage
        .as_ref()
        .filter(|s| opts.stages.contains_key(*s))
        .cloned();
    let mut stage = Stage::Development;
    let envs = pins
        .iter()
        .chain(from_stage.as_ref().and_then(|s| opts.stages.get(s)));
    for env in envs {
        let s = rules::stage_for_environment(env);
        if rules::path_to(s).len() > rules::path_to(stage).len() {
            stage = s;
        }
    }
    Plan {
        stage,
        pins,
        aliases,
        from_stage,
    }
}

fn describe(full_id: &FullId, label: &str, plan: &Plan) -> String {
    let mut s = format!("{full_id} ← {label} (stage {}", plan.stage.as_str());
    if !plan.pins.is_empty() {
        let _ = write!(s, ", pinned in {}", plan.pins.join(", "));
    }
    if !plan.aliases.is_empty() {
        let _ = write!(s, "; alias {}", plan.aliases.join(", "));
    }
    s.push(')');
    s
}

/// One MLflow registry followed: where it is, how its names map (the
/// source's prefix, aliases, stages, models), its credential and poll
/// interval. `serve` follows every configured source
/// (`SWITCHYARD_MLFLOW_FOLLOW`, `SWITCHYARD_MLFLOW_SOURCES`);
/// `switchyard follow mlflow` follows one given by flags, or the same ones.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    /// The source's name in logs and ledger details.
    pub name: String,
    pub tracking_uri: String,
    pub credential: Option<Credential>,
    pub opts: ImportOptions,
    pub interval: Duration,
}

/// The default poll interval of a source.
pub const DEFAULT_INTERVAL_MS: u64 = 2000;

/// Checks a poll interval (100 ms to an hour).
pub fn interval(ms: u64, what: &str) -> anyhow::Result<Duration> {
    if !(100..=3_600_000).contains(&ms) {
        bail!("{what} must be 100 to 3600000 (milliseconds), not {ms}");
    }
    Ok(Duration::from_millis(ms))
}

/// One source of `SWITCHYARD_MLFLOW_SOURCES` (a YAML file: `sources:` and a
/// list of these). See docs/mlflow.md.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    name: String,
    tracking_uri: String,
    #[serde(default)]
    prefix: String,
    models: Option<String>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(default)]
    stages: BTreeMap<String, String>,
    token_file: Option<std::path::PathBuf>,
    username: Option<String>,
    password_file: Option<std::path::PathBuf>,
    interval_ms: Option<u64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    sources: Vec<SourceEntry>,
}

impl FollowSettings {
    /// One source, checked: the tracking URI, the prefix.
    pub fn new(
        name: &str,
        tracking_uri: &str,
        credential: Option<Credential>,
        opts: ImportOptions,
        interval: Duration,
    ) -> anyhow::Result<FollowSettings> {
        let tracking_uri = tracking_uri.trim().trim_end_matches('/').to_owned();
        if !(tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://")) {
            bail!("the MLflow tracking URI of source {name:?} must be an http:// or https:// URL, not {tracking_uri:?}");
        }
        rules::check_prefix(&opts.prefix).map_err(|e| anyhow!("source {name:?}: {e}"))?;
        Ok(FollowSettings {
            name: name.to_owned(),
            tracking_uri,
            credential,
            opts: ImportOptions {
                source: Some(name.to_owned()),
                ..opts
            },
            interval,
        })
    }

    /// Every source `serve` follows: `SWITCHYARD_MLFLOW_FOLLOW=URL` (source
    /// `mlflow`; `SWITCHYARD_MLFLOW_FOLLOW_ALIASES` and `_STAGES` take
    /// `NAME=ENV` pairs separated by commas, `_MODELS` a glob, `_PREFIX` a
    /// model-id prefix, `_INTERVAL_MS` the poll interval, default 2000;
    /// MLflow's own credential variables) and the sources of the YAML file
    /// `SWITCHYARD_MLFLOW_SOURCES`. Checked together by [`check_sources`].
    pub fn from_env() -> anyhow::Result<Vec<FollowSettings>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mut out = Vec::new();
        if let Some(tracking_uri) = var("SWITCHYARD_MLFLOW_FOLLOW") {
            let pairs = |k: &str| -> anyhow::Result<BTreeMap<String, String>> {
                let mut out = BTreeMap::new();
                for item in var(k)
                    .unwrap_or_default()
                    .split(',')
                    .filter(|i| !i.trim().is_empty())
                {
                    let (a, e) =
                        rules::AliasMap::parse_pair(item).map_err(|e| anyhow!("{k}: {e}"))?;
                    out.insert(a, e);
                }
                Ok(out)
            };
            let interval_ms: u64 = match var("SWITCHYARD_MLFLOW_FOLLOW_INTERVAL_MS") {
                None => DEFAULT_INTERVAL_MS,
                Some(v) => v.parse().map_err(|_| {
                    anyhow!(
                        "SWITCHYARD_MLFLOW_FOLLOW_INTERVAL_MS must be 100 to 3600000, not {v:?}"
                    )
                })?,
            };
            out.push(FollowSettings::new(
                "mlflow",
                &tracking_uri,
                Credential::from_env(None)?,
                ImportOptions {
                    pattern: var("SWITCHYARD_MLFLOW_FOLLOW_MODELS"),
                    aliases: pairs("SWITCHYARD_MLFLOW_FOLLOW_ALIASES")?,
                    stages: pairs("SWITCHYARD_MLFLOW_FOLLOW_STAGES")?,
                    prefix: var("SWITCHYARD_MLFLOW_FOLLOW_PREFIX").unwrap_or_default(),
                    ..ImportOptions::default()
                },
                interval(interval_ms, "SWITCHYARD_MLFLOW_FOLLOW_INTERVAL_MS")?,
            )?);
        }
        if let Some(path) = var("SWITCHYARD_MLFLOW_SOURCES") {
            out.extend(sources_file(std::path::Path::new(&path))?);
        }
        check_sources(&out)?;
        Ok(out)
    }
}

/// Reads a sources file (`SWITCHYARD_MLFLOW_SOURCES`).
pub fn sources_file(path: &std::path::Path) -> anyhow::Result<Vec<FollowSettings>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the MLflow sources file {}", path.display()))?;
    let file: SourcesFile = serde_yaml::from_str(&text).map_err(|e| {
        anyhow!(
            "the MLflow sources file {} is malformed: {e}",
            path.display()
        )
    })?;
    let mut out = Vec::new();
    for e in file.sources {
        let at = |err: anyhow::Error| anyhow!("{}: source {:?}: {err:#}", path.display(), e.name);
        let credential = Credential::resolve(
            e.token_file.as_deref(),
            e.username.as_deref(),
            e.password_file.as_deref(),
        )
        .map_err(at)?;
        let ms = e.interval_ms.unwrap_or(DEFAULT_INTERVAL_MS);
        out.push(
            FollowSettings::new(
                &e.name,
                &e.tracking_uri,
                credential,
                ImportOptions {
                    pattern: e.models.clone(),
                    aliases: e.aliases.clone(),
                    stages: e.stages.clone(),
                    prefix: e.prefix.clone(),
                    ..ImportOptions::default()
                },
                interval(ms, "interval_ms").map_err(at)?,
            )
            .map_err(|err| anyhow!("{}: {err:#}", path.display()))?,
        );
    }
    if out.is_empty() {
        bail!("the MLflow sources file {} lists no source", path.display());
    }
    Ok(out)
}

/// Sources followed together: names distinct, and no registry followed
/// twice under one prefix (both would write the same model ids). Models
/// two sources would both map to one id are refused when met
/// (`import`: the model id already holds another tracking server's versions).
pub fn check_sources(sources: &[FollowSettings]) -> anyhow::Result<()> {
    for (i, a) in sources.iter().enumerate() {
        rules::check_source_name(&a.name).map_err(|e| anyhow!(e))?;
        for b in &sources[i + 1..] {
            if a.name == b.name {
                bail!(
                    "two MLflow sources are named {:?}: give each its own name",
                    a.name
                );
            }
            if same_server(&a.tracking_uri, &b.tracking_uri) && a.opts.prefix == b.opts.prefix {
                bail!(
                    "MLflow sources {:?} and {:?} follow {} with the same prefix {:?}: they would import the same model ids; \
                     give one a different prefix or keep one source",
                    a.name,
                    b.name,
                    a.tracking_uri,
                    a.opts.prefix
                );
            }
        }
    }
    Ok(())
}

/// The environments the sources map aliases and stages to must exist.
pub fn check_environments(sources: &[FollowSettings], known: &[String]) -> anyhow::Result<()> {
    for s in sources {
        for (what, map) in [("alias", &s.opts.aliases), ("stage", &s.opts.stages)] {
            if let Some((name, env)) = map.iter().find(|(_, e)| !known.contains(e)) {
                bail!(
                    "MLflow source {:?} maps {what} {name} to environment {env:?}, which does not exist (environments: {})",
                    s.name,
                    known.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Follows every source, each in its own job; the webhook's model names
/// (when `passes` is given) go to every source, whose pass reads that name
/// if its registry has it.
pub fn spawn_sources(
    store: crate::store::DynStore,
    sources: Vec<FollowSettings>,
    passes: Option<tokio::sync::mpsc::Receiver<String>>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut jobs = Vec::new();
    let mut senders = Vec::new();
    for source in sources {
        let rx = passes.as_ref().map(|_| {
            let (tx, rx) = tokio::sync::mpsc::channel(webhook::QUEUE);
            senders.push(tx);
            rx
        });
        jobs.push(spawn_follow(store.clone(), source, rx)?);
    }
    if let Some(mut passes) = passes {
        jobs.push(tokio::spawn(async move {
            while let Some(name) = passes.recv().await {
                for tx in &senders {
                    // A full queue: that source's next poll reads the model anyway.
                    let _ = tx.try_send(name.clone());
                }
            }
        }));
    }
    Ok(jobs)
}

/// One follow pass in this many reads every model (the others only those changed since the cursor).
pub const FULL_PASS_EVERY: u64 = 30;

/// The follow job: every `interval`, imports the models MLflow changed since
/// the cursor (the newest `last_updated_timestamp` of the last complete
/// pass; the first pass reads everything). A failed pass keeps the cursor
/// and is retried at the next tick; every item is idempotent, so several
/// servers following one registry create each version once. Model names
/// received on `passes` (MLflow's webhooks) are read at once, whatever the
/// cursor, which they do not move.
pub fn spawn_follow(
    store: crate::store::DynStore,
    settings: FollowSettings,
    mut passes: Option<tokio::sync::mpsc::Receiver<String>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = Client::new(
        &settings.tracking_uri,
        settings.credential.clone(),
        PAGE_SIZE,
    )?;
    Ok(tokio::spawn(async move {
        let mut cursor: Option<i64> = None;
        let mut passes_done: u64 = 0;
        let mut ticks = tokio::time::interval(settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Some(None): the webhook side is gone; polls only from then on.
            let woke: Option<Option<String>> = match passes.as_mut() {
                Some(rx) => tokio::select! {
                    _ = ticks.tick() => None,
                    name = rx.recv() => Some(name),
                },
                None => {
                    ticks.tick().await;
                    None
                }
            };
            let asked = match woke {
                Some(None) => {
                    passes = None;
                    continue;
                }
                Some(Some(name)) => Some(name),
                None => None,
            };
            if let Some(first) = asked {
                // Names queued meanwhile are read in the same pass, each once.
                let mut names = std::collections::BTreeSet::from([first]);
                if let Some(rx) = passes.as_mut() {
                    while let Ok(n) = rx.try_recv() {
                        names.insert(n);
                    }
                }
                for name in names {
                    let opts = ImportOptions {
                        only: Some(name.clone()),
                        ..settings.opts.clone()
                    };
                    let report = import(store.as_ref(), &client, &opts).await;
                    match &report.stopped {
                        Some(why) => {
                            tracing::warn!(source = "mlflow", mlflow_source = %settings.name, model = %name,
                            "webhook pass stopped; the next poll reads the model again: {why}")
                        }
                        None => {
                            tracing::info!(source = "mlflow", mlflow_source = %settings.name, model = %name,
                            created = report.created, conflicts = report.conflicts, "webhook pass done")
                        }
                    }
                }
                continue;
            }
            // Every FULL_PASS_EVERY-th pass reads every model, whatever the cursor: a
            // change MLflow makes without moving the model's last update
            // (a version becoming READY) is picked up too.
            passes_done += 1;
            let opts = ImportOptions {
                changed_since: cursor.filter(|_| passes_done % FULL_PASS_EVERY != 0),
                ..settings.opts.clone()
            };
            let report = import(store.as_ref(), &client, &opts).await;
            match &report.stopped {
                Some(why) => tracing::warn!(
                    source = "mlflow",
                    mlflow_source = %settings.name,
                    "follow pass stopped, retried at the next tick: {why}"
                ),
                None => {
                    if report.newest_update.is_some() {
                        cursor = report.newest_update;
                    }
                    if report.created > 0 || report.conflicts > 0 {
                        tracing::info!(
                            source = "mlflow",
                            mlflow_source = %settings.name,
                            created = report.created,
                            conflicts = report.conflicts,
                            "follow pass done"
                        );
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sy-mlflow-sources-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        std::fs::write(&path, text).expect("written");
        path
    }

    fn refused(text: &str) -> String {
        let path = file("refused.yaml", text);
        let r = sources_file(&path).and_then(|s| check_sources(&s).map(|()| s));
        format!("{:#}", r.expect_err("refused"))
    }

    #[test]
    fn a_sources_file_gives_each_source_its_name_prefix_mapping_and_credential() {
        let password = file("research.password", "s3cret\n");
        let token = file("prod.token", "tok-123\n");
        let path = file(
            "sources.yaml",
            &format!(
                "sources:\n\
                 - name: research\n  tracking_uri: http://mlflow-research:5000/\n  prefix: research-\n  models: \"fraud-*\"\n  \
                 aliases: {{champion: staging}}\n  username: switchyard\n  password_file: {}\n  interval_ms: 500\n\
                 - name: prod\n  tracking_uri: https://mlflow.internal\n  aliases: {{champion: production}}\n  \
                 stages: {{Production: production}}\n  token_file: {}\n",
                password.display(),
                token.display()
            ),
        );
        let sources = sources_file(&path).expect("read");
        check_sources(&sources).expect("consistent");
        assert_eq!(sources.len(), 2);
        let r = &sources[0];
        assert_eq!(r.name, "research");
        assert_eq!(r.tracking_uri, "http://mlflow-research:5000");
        assert_eq!(r.opts.prefix, "research-");
        assert_eq!(r.opts.pattern.as_deref(), Some("fraud-*"));
        assert_eq!(r.opts.source.as_deref(), Some("research"));
        assert_eq!(r.interval, Duration::from_millis(500));
        assert!(
            matches!(&r.credential, Some(Credential::Basic { user, password })
            if user == "switchyard" && password == "s3cret")
        );
        let p = &sources[1];
        assert_eq!(p.interval, Duration::from_millis(DEFAULT_INTERVAL_MS));
        assert_eq!(p.opts.stages["Production"], "production");
        assert!(matches!(&p.credential, Some(Credential::Bearer(t)) if t == "tok-123"));
        let known = ["development".to_owned(), "staging".to_owned()];
        let e = check_environments(&sources, &known).expect_err("production is unknown");
        assert!(
            format!("{e}").contains("source \"prod\" maps alias champion to environment \"production\", which does not exist"),
            "{e}"
        );
    }

    #[test]
    fn sources_that_would_write_the_same_model_ids_or_are_malformed_are_refused_with_the_fix() {
        let twice = refused(
            "sources:\n- name: a\n  tracking_uri: http://m:5000\n- name: b\n  tracking_uri: http://m:5000/\n",
        );
        assert!(
            twice.contains("same prefix") && twice.contains("give one a different prefix"),
            "{twice}"
        );
        let named = refused(
            "sources:\n- name: a\n  tracking_uri: http://m:5000\n- name: a\n  tracking_uri: http://n:5000\n",
        );
        assert!(
            named.contains("two MLflow sources are named \"a\""),
            "{named}"
        );
        let prefix =
            refused("sources:\n- name: a\n  tracking_uri: http://m:5000\n  prefix: Team/\n");
        assert!(
            prefix.contains("source \"a\"") && prefix.contains("must start with a lowercase"),
            "{prefix}"
        );
        let unknown = refused("sources:\n- name: a\n  tracking_uri: http://m:5000\n  passwd: x\n");
        assert!(
            unknown.contains("malformed") && unknown.contains("passwd"),
            "{unknown}"
        );
        let scheme = refused("sources:\n- name: a\n  tracking_uri: m:5000\n");
        assert!(scheme.contains("http:// or https://"), "{scheme}");
        let half = refused("sources:\n- name: a\n  tracking_uri: http://m:5000\n  username: u\n");
        assert!(
            half.contains("source \"a\"") && half.contains("needs a password file"),
            "{half}"
        );
        let missing = refused(
            "sources:\n- name: a\n  tracking_uri: http://m:5000\n  username: u\n  password_file: /nonexistent/pw\n",
        );
        assert!(
            missing.contains("cannot read the password file /nonexistent/pw"),
            "{missing}"
        );
        let bad_name = refused("sources:\n- name: Research Team\n  tracking_uri: http://m:5000\n");
        assert!(
            bad_name.contains("source name \"Research Team\""),
            "{bad_name}"
        );
        assert!(refused("sources: []\n").contains("lists no source"));
        let slow =
            refused("sources:\n- name: a\n  tracking_uri: http://m:5000\n  interval_ms: 5\n");
        assert!(
            slow.contains("interval_ms must be 100 to 3600000"),
            "{slow}"
        );
    }
}
