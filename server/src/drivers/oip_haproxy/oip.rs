//! The Open Inference Protocol (KServe V2) calls the driver makes to one model server.

use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::FullId;

use crate::drivers::{DriverError, DriverResult, Running};

/// One entry of a model server's repository index
/// (`POST /v2/repository/index`): MLServer answers one per model settings
/// file, its state judged per model name; Triton one per version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexEntry {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    /// `READY`, `UNAVAILABLE`, `LOADING`, `UNLOADING` or `UNKNOWN`.
    #[serde(default)]
    pub state: Option<String>,
}

/// The versions of `model` the index calls READY: the ones to ask for
/// their per-version readiness.
pub fn ready_candidates<'a>(model: &str, entries: &'a [IndexEntry]) -> Vec<&'a str> {
    let mut versions: Vec<&str> = entries
        .iter()
        .filter(|e| e.name == model && e.state.as_deref() == Some("READY"))
        .filter_map(|e| e.version.as_deref())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

/// What a model server runs of `model`, from its repository index and the
/// READY versions that also answered their per-version ready endpoint
/// (`confirmed`): none READY — nothing; exactly one confirmed — that
/// version; more than one, or READY without a version that answers — unclear.
pub fn running_of(model: &str, entries: &[IndexEntry], confirmed: &[&str]) -> Running {
    let ready: Vec<&IndexEntry> = entries
        .iter()
        .filter(|e| e.name == model && e.state.as_deref() == Some("READY"))
        .collect();
    if ready.is_empty() {
        return Running::Nothing;
    }
    let mut confirmed = confirmed.to_vec();
    confirmed.sort_unstable();
    confirmed.dedup();
    match confirmed.as_slice() {
        [v] => match FullId::parse(&format!("{model}:{v}")) {
            Ok(version) => Running::Version { version },
            Err(_) => Running::Unclear {
                detail: format!(
                    "the model server has {model} version {v:?} loaded and ready, which is not a \
                     version Switchyard can name"
                ),
            },
        },
        [] => {
            let named = ready_candidates(model, entries);
            Running::Unclear {
                detail: if named.is_empty() {
                    format!("the model server reports {model} READY without a version")
                } else {
                    format!(
                        "the model server's repository index reports {model} READY as version {}, \
                         but no such version answers ready (another version may be loaded from a \
                         folder that has changed since)",
                        named.join(", ")
                    )
                },
            }
        }
        many => Running::Unclear {
            detail: format!(
                "the model server has {} versions of {model} loaded and ready: {}",
                many.len(),
                many.join(", ")
            ),
        },
    }
}

pub(super) struct Server<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub model: &'a str,
}

impl Server<'_> {
    fn fail(&self, what: &str, e: impl std::fmt::Display) -> DriverError {
        DriverError::new(format!("{what} at {}: {e}", self.base))
    }

    async fn post(&self, path: &str, body: &Value) -> DriverResult<(u16, String)> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| self.fail(&format!("POST {path} failed"), e))?;
        let status = res.status().as_u16();
        let text = res
            .text()
            .await
            .map_err(|e| self.fail("reading the answer failed", e))?;
        Ok((status, text))
    }

    /// Loads every version in the repository (MLServer re-imports the model's module).
    pub async fn load(&self) -> DriverResult<()> {
        let (status, body) = self
            .post(
                &format!("/v2/repository/models/{}/load", self.model),
                &json!({}),
            )
            .await?;
        if status != 200 {
            return Err(self.fail(
                &format!("loading {} failed", self.model),
                format_args!("HTTP {status}: {}", short(&body)),
            ));
        }
        Ok(())
    }

    /// Unloads the model; a model that was not loaded is fine.
    pub async fn unload(&self) -> DriverResult<()> {
        let (status, body) = self
            .post(
                &format!("/v2/repository/models/{}/unload", self.model),
                &json!({}),
            )
            .await?;
        if status != 200 && status != 400 && status != 404 {
            return Err(self.fail(
                &format!("unloading {} failed", self.model),
                format_args!("HTTP {status}: {}", short(&body)),
            ));
        }
        Ok(())
    }

    /// The repository index (`POST /v2/repository/index`): which models and
    /// versions the server knows and their state.
    pub async fn index(&self) -> DriverResult<Vec<IndexEntry>> {
        let (status, body) = self.post("/v2/repository/index", &json!({})).await?;
        if status != 200 {
            return Err(self.fail(
                "reading the repository index failed",
                format_args!(
                    "HTTP {status}: {} (the model server must offer the Open Inference Protocol's \
                     repository extension, as MLServer and Triton do)",
                    short(&body)
                ),
            ));
        }
        serde_json::from_str(&body).map_err(|e| {
            self.fail(
                "the repository index",
                format_args!("is not a list of models ({e}): {}", short(&body)),
            )
        })
    }

    /// The server-wide liveness endpoint: the server answers the protocol.
    pub async fn live(&self) -> DriverResult<()> {
        let res = self
            .http
            .get(format!("{}/v2/health/live", self.base))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.fail("GET /v2/health/live failed", e))?;
        if !res.status().is_success() {
            return Err(self.fail(
                "GET /v2/health/live",
                format_args!(
                    "HTTP {} (is this an Open Inference Protocol server?)",
                    res.status()
                ),
            ));
        }
        Ok(())
    }

    /// The per-version ready endpoint (the server-wide one is 200 even with nothing loaded).
    pub async fn version_ready(&self, version: &str) -> DriverResult<bool> {
        let url = format!(
            "{}/v2/models/{}/versions/{version}/ready",
            self.base, self.model
        );
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.fail("readiness check failed", e))?;
        Ok(res.status().is_success())
    }

    /// One inference request to `version`; returns the `model_version` it answered with.
    pub async fn infer(&self, version: &str, body: Option<&Value>) -> DriverResult<String> {
        let default = json!({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["smoke"]}]});
        let (status, text) = self
            .post(
                &format!("/v2/models/{}/versions/{version}/infer", self.model),
                body.unwrap_or(&default),
            )
            .await?;
        if status != 200 {
            return Err(self.fail(
                "the smoke request failed",
                format_args!("HTTP {status}: {}", short(&text)),
            ));
        }
        let answer: Value = serde_json::from_str(&text)
            .map_err(|e| self.fail("the smoke answer is not JSON", e))?;
        answer
            .get("model_version")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.fail("the smoke answer", "has no model_version"))
    }
}

fn short(s: &str) -> &str {
    let end = s.char_indices().nth(300).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(v: Value) -> Vec<IndexEntry> {
        serde_json::from_value(v).expect("index")
    }

    #[test]
    fn one_ready_version_runs_that_version() {
        // MLServer's answer: the state is the model's, the version the settings file's.
        let index = entries(json!([
            { "name": "echo", "version": "2", "state": "READY", "reason": "" },
            { "name": "other", "version": "9", "state": "READY", "reason": "" }
        ]));
        assert_eq!(ready_candidates("echo", &index), ["2"]);
        assert_eq!(
            running_of("echo", &index, &["2"]),
            Running::Version {
                version: FullId::parse("echo:2").expect("id")
            }
        );
    }

    #[test]
    fn nothing_ready_runs_nothing() {
        assert_eq!(running_of("echo", &[], &[]), Running::Nothing);
        let unloaded = entries(json!([
            { "name": "echo", "version": "2", "state": "UNAVAILABLE", "reason": "" },
            { "name": "other", "version": "9", "state": "READY" }
        ]));
        assert!(ready_candidates("echo", &unloaded).is_empty());
        assert_eq!(running_of("echo", &unloaded, &[]), Running::Nothing);
    }

    #[test]
    fn two_ready_versions_or_a_ready_version_that_does_not_answer_are_unclear() {
        let two = entries(json!([
            { "name": "echo", "version": "1", "state": "READY" },
            { "name": "echo", "version": "2", "state": "READY" }
        ]));
        assert_eq!(
            running_of("echo", &two, &["2", "1"]),
            Running::Unclear {
                detail: "the model server has 2 versions of echo loaded and ready: 1, 2".into()
            }
        );
        let Running::Unclear { detail } = running_of("echo", &two[1..], &[]) else {
            panic!("READY in the index, not ready per version");
        };
        assert!(
            detail.contains("READY as version 2")
                && detail.contains("no such version answers ready"),
            "{detail}"
        );
        let unnamed = entries(json!([{ "name": "echo", "state": "READY" }]));
        assert_eq!(
            running_of("echo", &unnamed, &[]),
            Running::Unclear {
                detail: "the model server reports echo READY without a version".into()
            }
        );
        let latest = entries(json!([{ "name": "echo", "version": "latest", "state": "READY" }]));
        assert!(matches!(
            running_of("echo", &latest, &["latest"]),
            Running::Unclear { detail } if detail.contains("\"latest\"")
        ));
    }
}
