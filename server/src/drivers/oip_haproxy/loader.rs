//! The Switchyard loader in a model server that reads versions from their
//! `artifact_uri` (`deploy: "artifact_uri"`): for MLServer,
//! `contrib/mlserver/switchyard_loader.py`, a model repository with a small
//! HTTP listener. MLServer's repository load takes no body, so the version to
//! load is named to the loader first (`PUT /v1/models/{model}`); it checks
//! the URI on the model server's host and refuses with the reason.

use serde_json::{json, Value};

use crate::drivers::{DriverError, DriverResult};

/// What the loader answers at `GET /v1/health`.
pub(super) const PROTOCOL: u64 = 1;

pub(super) struct Loader<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub model: &'a str,
}

impl Loader<'_> {
    fn base(&self) -> &str {
        self.base.trim_end_matches('/')
    }

    /// Names `version` at `artifact_uri` as what the next load reads.
    pub async fn point(&self, version: &str, artifact_uri: &str) -> DriverResult<()> {
        let url = format!("{}/v1/models/{}", self.base(), self.model);
        let res = self
            .http
            .put(&url)
            .json(&json!({ "version": version, "artifact_uri": artifact_uri }))
            .send()
            .await
            .map_err(|e| {
                DriverError::new(format!(
                    "the model server's loader at {} is unreachable: {e}",
                    self.base()
                ))
            })?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        if status == 200 {
            return Ok(());
        }
        let why = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {status}: {}", short(&text)));
        Err(DriverError::new(format!(
            "the model server's loader at {} refused version {version}: {why}",
            self.base()
        )))
    }

    /// `GET /v1/health`: the loader answers, with the protocol this driver speaks.
    pub async fn health(&self) -> Result<(), String> {
        let url = format!("{}/v1/health", self.base());
        let res = self
            .http
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|_| format!("{url} answered HTTP {status}, not as Switchyard's loader"))?;
        match (body.get("loader").and_then(Value::as_str), body.get("protocol").and_then(Value::as_u64)) {
            (Some("switchyard"), Some(PROTOCOL)) => Ok(()),
            (Some("switchyard"), p) => Err(format!(
                "{url} is Switchyard's loader speaking protocol {p:?}, not {PROTOCOL}: use the loader of this Switchyard release"
            )),
            _ => Err(format!("{url} answered HTTP {status}, not as Switchyard's loader")),
        }
    }
}

fn short(s: &str) -> &str {
    let end = s.char_indices().nth(300).map_or(s.len(), |(i, _)| i);
    &s[..end]
}
