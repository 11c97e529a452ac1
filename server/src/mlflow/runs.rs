//! Imports started from the console (`/import/mlflow`): each is one pass of
//! `mlflow::import` — the pass `switchyard import mlflow` makes — run as a
//! background task of the server that took the form, with its report
//! published while it runs (`Progress`) for the progress page.
//!
//! The runs live in that server's memory, the last `RUNS_KEPT`: a restart
//! forgets them (what they imported stays in the ledger, actor
//! `import:mlflow`), and behind a load balancer the progress page must reach
//! the same server. That is said on the page.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_domain::Timestamp;

use super::{import, same_server, Client, Credential, FollowSettings, ImportOptions, Progress};
use crate::store::DynStore;

/// Runs kept per server, newest first; older finished ones are forgotten.
pub const RUNS_KEPT: usize = 20;

/// A configured source (`SWITCHYARD_MLFLOW_SOURCES`, `SWITCHYARD_MLFLOW_FOLLOW`)
/// whose credential a console import may name. The secret never reaches a
/// page, and is sent only to that source's own tracking server.
#[derive(Debug, Clone)]
pub struct CredentialSource {
    pub name: String,
    pub tracking_uri: String,
    credential: Option<Credential>,
}

impl CredentialSource {
    /// What the credential is, in words, without the secret.
    pub fn describe(&self) -> String {
        match &self.credential {
            Some(Credential::Basic { user, .. }) => {
                format!("user {user} with the source's password")
            }
            Some(Credential::Bearer(_)) => "the source's bearer token".to_owned(),
            None => "no credential (the source has none)".to_owned(),
        }
    }
}

/// What an admin asked for on the import page, checked by the console.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub tracking_uri: String,
    pub pattern: Option<String>,
    pub aliases: BTreeMap<String, String>,
    pub stages: BTreeMap<String, String>,
    pub prefix: String,
    /// The name of a configured source whose credential is used.
    pub credential: Option<String>,
    pub dry_run: bool,
}

/// One console import: what was asked, by whom, and its report so far.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub started_at: Timestamp,
    pub started_by: String,
    pub request: ImportRequest,
    pub progress: Progress,
    /// When the pass ended (done or stopped); `None` while it runs.
    pub finished_at: Option<Timestamp>,
    /// The summary line `import mlflow` prints, once finished.
    pub summary: Option<String>,
}

/// Why a console import was not started.
#[derive(Debug)]
pub enum Refusal {
    /// The request names something that cannot be used (credential, URI).
    Invalid(String),
    /// The tracking server did not answer as an MLflow registry, or refused the credential.
    Unreachable(String),
    /// Another import is running on this server.
    Busy(String),
}

/// This server's console imports, and the sources whose credentials they may use.
#[derive(Clone, Default)]
pub struct ImportRuns {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    runs: VecDeque<Run>,
    sources: Vec<CredentialSource>,
}

impl ImportRuns {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The sources `serve` follows: their credentials may be named by a console import.
    pub fn set_sources(&self, sources: &[FollowSettings]) {
        self.lock().sources = sources
            .iter()
            .map(|s| CredentialSource {
                name: s.name.clone(),
                tracking_uri: s.tracking_uri.clone(),
                credential: s.credential.clone(),
            })
            .collect();
    }

    pub fn sources(&self) -> Vec<CredentialSource> {
        self.lock().sources.clone()
    }

    /// The runs, newest first.
    pub fn list(&self) -> Vec<Run> {
        self.lock().runs.iter().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<Run> {
        self.lock().runs.iter().find(|r| r.id == id).cloned()
    }

    /// The credential `request` names: a configured source's, and only
    /// toward that source's own tracking server.
    fn credential_for(&self, request: &ImportRequest) -> Result<Option<Credential>, Refusal> {
        let Some(name) = &request.credential else {
            return Ok(None);
        };
        let sources = self.sources();
        let Some(source) = sources.iter().find(|s| &s.name == name) else {
            let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
            return Err(Refusal::Invalid(format!(
                "no MLflow source named {name:?} is configured on this server ({}): \
                 credentials come from SWITCHYARD_MLFLOW_SOURCES or SWITCHYARD_MLFLOW_FOLLOW, never from the page",
                if known.is_empty() {
                    "none is".to_owned()
                } else {
                    format!("known: {}", known.join(", "))
                }
            )));
        };
        if !same_server(&source.tracking_uri, &request.tracking_uri) {
            return Err(Refusal::Invalid(format!(
                "the credential of source {name:?} is for {}: it is not sent to {}",
                source.tracking_uri, request.tracking_uri
            )));
        }
        Ok(source.credential.clone())
    }

    /// Starts an import in the background after asking the tracking server
    /// for one registered model, so an unreachable server, a URL that is not
    /// MLflow or a refused credential is answered at once and nothing runs.
    pub async fn start(
        &self,
        store: DynStore,
        request: ImportRequest,
        started_by: &str,
    ) -> Result<Run, Refusal> {
        let credential = self.credential_for(&request)?;
        let client = Client::new(&request.tracking_uri, credential, super::PAGE_SIZE)
            .map_err(|e| Refusal::Invalid(format!("{e:#}")))?;
        client
            .get(
                "registered-models/search",
                &[("max_results", "1")],
                "checking it answers as an MLflow registry",
            )
            .await
            .map_err(|e| Refusal::Unreachable(format!("{e:#}")))?;
        let run = Run {
            id: format!("{:016x}", rand::random::<u64>()),
            started_at: Timestamp::now(),
            started_by: started_by.to_owned(),
            request,
            progress: Progress::default(),
            finished_at: None,
            summary: None,
        };
        {
            let mut inner = self.lock();
            if let Some(busy) = inner.runs.iter().find(|r| r.finished_at.is_none()) {
                return Err(Refusal::Busy(format!(
                    "the import from {} started by {} at {} is still running on this server \
                     (/import/mlflow/{}): start another when it is done",
                    busy.request.tracking_uri,
                    busy.started_by,
                    busy.started_at.to_rfc3339(),
                    busy.id
                )));
            }
            inner.runs.push_front(run.clone());
            inner.runs.truncate(RUNS_KEPT);
        }
        let opts = ImportOptions {
            pattern: run.request.pattern.clone(),
            dry_run: run.request.dry_run,
            aliases: run.request.aliases.clone(),
            stages: run.request.stages.clone(),
            prefix: run.request.prefix.clone(),
            started_by: Some(started_by.to_owned()),
            progress: Some(run.progress.clone()),
            ..ImportOptions::default()
        };
        let (runs, id, progress) = (self.clone(), run.id.clone(), run.progress.clone());
        let (dry_run, uri) = (run.request.dry_run, client.tracking_uri().to_owned());
        let pass = tokio::spawn(async move { import(store.as_ref(), &client, &opts).await });
        tokio::spawn(async move {
            let report = match pass.await {
                Ok(report) => report,
                Err(e) => {
                    let mut failed = progress.snapshot();
                    failed.stopped = Some(format!("the import task failed: {e}"));
                    progress.publish(&failed);
                    failed
                }
            };
            let summary = report.summary(dry_run, &uri);
            tracing::info!(source = "mlflow", run = %id, "console import finished: {summary}");
            let mut inner = runs.lock();
            if let Some(r) = inner.runs.iter_mut().find(|r| r.id == id) {
                r.finished_at = Some(Timestamp::now());
                r.summary = Some(summary);
            }
        });
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(uri: &str, credential: Option<&str>) -> ImportRequest {
        ImportRequest {
            tracking_uri: uri.to_owned(),
            pattern: None,
            aliases: BTreeMap::new(),
            stages: BTreeMap::new(),
            prefix: String::new(),
            credential: credential.map(str::to_owned),
            dry_run: true,
        }
    }

    #[test]
    fn a_sources_credential_goes_only_to_its_own_tracking_server_and_is_never_shown() {
        let runs = ImportRuns::default();
        let source = FollowSettings::new(
            "research",
            "http://mlflow-research:5000/",
            Some(Credential::Basic {
                user: "switchyard".into(),
                password: "s3cret".into(),
            }),
            ImportOptions::default(),
            Duration::from_secs(2),
        )
        .expect("a source");
        runs.set_sources(&[source]);
        let ok = runs.credential_for(&request("http://mlflow-research:5000", Some("research")));
        assert!(matches!(ok, Ok(Some(Credential::Basic { ref user, .. })) if user == "switchyard"));
        assert!(matches!(
            runs.credential_for(&request("http://x:1", None)),
            Ok(None)
        ));
        let elsewhere = runs.credential_for(&request("http://attacker:5000", Some("research")));
        assert!(
            matches!(&elsewhere, Err(Refusal::Invalid(why))
                if why == "the credential of source \"research\" is for http://mlflow-research:5000: it is not sent to http://attacker:5000"),
            "{elsewhere:?}"
        );
        let unknown = runs.credential_for(&request("http://mlflow-research:5000", Some("prod")));
        assert!(
            matches!(&unknown, Err(Refusal::Invalid(why)) if why.contains("known: research")),
            "{unknown:?}"
        );
        let described = runs.sources()[0].describe();
        assert_eq!(described, "user switchyard with the source's password");
        assert!(!format!("{:?}", runs.sources()).contains("s3cret"));
    }
}
