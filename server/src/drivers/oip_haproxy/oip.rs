//! The Open Inference Protocol (KServe V2) calls the driver makes to one model server.

use serde_json::{json, Value};

use crate::drivers::{DriverError, DriverResult};

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
