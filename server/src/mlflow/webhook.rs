//! Follow by MLflow's registry webhooks (MLflow 3.x): MLflow POSTs an event
//! when a model, version, alias or tag changes; `POST /api/v1/mlflow/webhook`
//! checks its signature and asks the follow job for an immediate pass over
//! that model. The poll stays the source of truth: a webhook only brings the
//! next read of one model forward, and every import is idempotent, so a
//! repeated, late or lost webhook changes nothing but the delay.
//!
//! MLflow's scheme: `X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret,
//! "{X-MLflow-Delivery-Id}.{X-MLflow-Timestamp}.{raw body}")>`, the
//! timestamp in Unix seconds.

use std::sync::{Arc, RwLock};

use base64::Engine;
use serde_json::Value;
use tokio::sync::mpsc;

/// How far a webhook's timestamp may be from this server's clock (replays
/// of an old signed body are refused).
pub const TOLERANCE_SECS: i64 = 300;

/// Model names waiting for a pass; more are dropped (the periodic poll reads them anyway).
pub const QUEUE: usize = 256;

/// `SWITCHYARD_MLFLOW_WEBHOOK_SECRET`, or the first line of
/// `SWITCHYARD_MLFLOW_WEBHOOK_SECRET_FILE`: the secret given to MLflow's
/// `create_webhook`. Unset: the endpoint answers 404.
pub fn secret_from_env() -> anyhow::Result<Option<Vec<u8>>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let secret = match (
        var("SWITCHYARD_MLFLOW_WEBHOOK_SECRET"),
        var("SWITCHYARD_MLFLOW_WEBHOOK_SECRET_FILE"),
    ) {
        (Some(_), Some(_)) => anyhow::bail!(
            "set SWITCHYARD_MLFLOW_WEBHOOK_SECRET or SWITCHYARD_MLFLOW_WEBHOOK_SECRET_FILE, not both"
        ),
        (Some(s), None) => s,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read SWITCHYARD_MLFLOW_WEBHOOK_SECRET_FILE {path}: {e}"))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        (None, None) => return Ok(None),
    };
    if secret.len() < 16 {
        anyhow::bail!("the MLflow webhook secret must be at least 16 characters");
    }
    Ok(Some(secret.into_bytes()))
}

/// The webhook side of the follow job, shared with the REST handler; empty
/// until `serve` connects it (follow and a secret configured).
#[derive(Clone, Default)]
pub struct FollowTrigger {
    inner: Arc<RwLock<Option<Connected>>>,
}

#[derive(Clone)]
pub struct Connected {
    secret: Arc<Vec<u8>>,
    passes: mpsc::Sender<String>,
}

impl FollowTrigger {
    pub fn connect(&self, secret: Vec<u8>, passes: mpsc::Sender<String>) {
        if let Ok(mut inner) = self.inner.write() {
            *inner = Some(Connected {
                secret: Arc::new(secret),
                passes,
            });
        }
    }

    pub fn connected(&self) -> Option<Connected> {
        self.inner.read().ok().and_then(|c| c.clone())
    }
}

impl Connected {
    pub fn verify(
        &self,
        delivery_id: &str,
        timestamp: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<(), String> {
        verify(
            &self.secret,
            delivery_id,
            timestamp,
            body,
            signature,
            unix_now(),
        )
    }

    /// Asks for a pass over `model`; false when the queue is full (the
    /// periodic poll reads it anyway).
    pub fn request_pass(&self, model: String) -> bool {
        self.passes.try_send(model).is_ok()
    }
}

fn unix_now() -> i64 {
    switchyard_domain::Timestamp::now().micros() / 1_000_000
}

/// Checks MLflow's signature of `body`, in constant time, and that the
/// timestamp is within [`TOLERANCE_SECS`] of `now`.
pub fn verify(
    secret: &[u8],
    delivery_id: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), String> {
    if delivery_id.is_empty() || timestamp.is_empty() || signature.is_empty() {
        return Err(
            "X-MLflow-Delivery-Id, X-MLflow-Timestamp and X-MLflow-Signature are required"
                .to_owned(),
        );
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| format!("X-MLflow-Timestamp {timestamp:?} is not Unix seconds"))?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(format!(
            "X-MLflow-Timestamp is {}s from this server's clock (at most {TOLERANCE_SECS}s): a replay, or a clock out of step",
            now - ts
        ));
    }
    let Some(b64) = signature.strip_prefix("v1,") else {
        return Err("X-MLflow-Signature must start with v1,".to_owned());
    };
    let given = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| "X-MLflow-Signature is not base64".to_owned())?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut message = Vec::with_capacity(delivery_id.len() + timestamp.len() + body.len() + 2);
    message.extend_from_slice(delivery_id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    ring::hmac::verify(&key, &message, &given)
        .map_err(|_| "the signature does not match the body with the configured secret".to_owned())
}

/// The registered model a (verified) webhook body is about: `Some(name)`
/// for registry events, `None` for events follow does not read (prompts,
/// budgets); malformed bodies are an error.
pub fn model_of(body: &Value) -> Result<Option<String>, String> {
    let entity = body
        .get("entity")
        .and_then(Value::as_str)
        .ok_or("the body has no \"entity\"")?;
    if !matches!(
        entity,
        "registered_model" | "model_version" | "model_version_tag" | "model_version_alias"
    ) {
        return Ok(None);
    }
    let name = body
        .get("data")
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("a {entity} event without data.name"))?;
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let msg = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, &msg).as_ref())
        )
    }

    #[test]
    fn signatures_made_as_mlflow_makes_them_verify_and_anything_else_is_refused() {
        // The example from MLflow's documentation shape: secret, delivery id, timestamp, raw body.
        let secret = b"s3cret-hmac-0123456789";
        let body = br#"{"entity": "model_version", "action": "created", "data": {"name": "m", "version": "1"}}"#;
        let sig = sign(secret, "142032cd", "1796417652", body);
        assert_eq!(
            verify(secret, "142032cd", "1796417652", body, &sig, 1796417660),
            Ok(())
        );
        let refused = |r: Result<(), String>| r.expect_err("refused");
        assert!(refused(verify(
            b"another-secret-000000",
            "142032cd",
            "1796417652",
            body,
            &sig,
            1796417660
        ))
        .contains("does not match"));
        assert!(refused(verify(
            secret,
            "142032ce",
            "1796417652",
            body,
            &sig,
            1796417660
        ))
        .contains("does not match"));
        let edited = br#"{"entity": "model_version", "action": "created", "data": {"name": "n", "version": "1"}}"#;
        assert!(refused(verify(
            secret,
            "142032cd",
            "1796417652",
            edited,
            &sig,
            1796417660
        ))
        .contains("does not match"));
        assert!(refused(verify(
            secret,
            "142032cd",
            "1796417652",
            body,
            &sig,
            1796417652 + 301
        ))
        .contains("replay"));
        assert!(refused(verify(
            secret,
            "142032cd",
            "1796417652",
            body,
            "v2,abc",
            1796417660
        ))
        .contains("v1,"));
        assert!(refused(verify(
            secret,
            "142032cd",
            "1796417652",
            body,
            "v1,!!!",
            1796417660
        ))
        .contains("base64"));
        assert!(
            refused(verify(secret, "", "1796417652", body, &sig, 1796417660)).contains("required")
        );
        assert!(
            refused(verify(secret, "142032cd", "soon", body, &sig, 1796417660))
                .contains("Unix seconds")
        );
    }

    #[test]
    fn registry_events_name_their_model_and_others_are_ignored() {
        let v = serde_json::json!({"entity": "model_version_alias", "action": "created", "data": {"name": "fraud", "alias": "champion", "version": "1"}});
        assert_eq!(model_of(&v), Ok(Some("fraud".into())));
        let p = serde_json::json!({"entity": "prompt", "action": "created", "data": {"name": "p"}});
        assert_eq!(model_of(&p), Ok(None));
        assert!(model_of(&serde_json::json!({"entity": "model_version", "data": {}})).is_err());
        assert!(model_of(&serde_json::json!({"data": {"name": "x"}})).is_err());
    }
}
