//! The append-only, hash-chained audit ledger.
//!
//! `hash = sha256(prev_hash + "\n" + canonical_json(content))`, where content
//! holds every field of the event but the hashes. Editing any field of any
//! row, deleting a row or reordering rows breaks the chain at that row.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config_hash::{canonical_json, sha256_prefixed};
use crate::types::VerifyReport;
use crate::Timestamp;

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Action names, the same in the API, the database and the console.
pub mod action {
    pub const VERSION_REGISTERED: &str = "version.registered";
    pub const STAGE_CHANGED: &str = "stage.changed";
    pub const PIN_CHANGED: &str = "pin.changed";
    pub const DEPRECATION: &str = "version.deprecated";
    pub const RETIREMENT: &str = "version.retired";
    pub const RETIREMENT_HELD: &str = "version.retirement_held";
    pub const ENVIRONMENT_CHANGED: &str = "environment.changed";
}

/// An event about to be appended: everything but id and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub model_id: Option<String>,
    pub version: Option<String>,
    pub environment: Option<String>,
    pub cluster: Option<String>,
    pub reason: Option<String>,
    pub details: Value,
}

impl NewEvent {
    pub fn new(at: Timestamp, actor: &str, action: &str) -> Self {
        NewEvent {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            model_id: None,
            version: None,
            environment: None,
            cluster: None,
            reason: None,
            details: json!({}),
        }
    }

    pub fn full_id(mut self, full_id: &crate::FullId) -> Self {
        self.model_id = Some(full_id.model_id.to_string());
        self.version = Some(full_id.version.to_string());
        self
    }

    pub fn model(mut self, model_id: &crate::ModelId) -> Self {
        self.model_id = Some(model_id.to_string());
        self
    }

    pub fn environment(mut self, env: &str) -> Self {
        self.environment = Some(env.to_owned());
        self
    }

    pub fn reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.map(str::to_owned);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Seals the event as number `id` after the event whose hash is `prev_hash`.
    pub fn seal(self, id: i64, prev_hash: &str) -> LedgerEvent {
        let mut ev = LedgerEvent {
            id,
            at: self.at,
            actor: self.actor,
            action: self.action,
            model_id: self.model_id,
            version: self.version,
            environment: self.environment,
            cluster: self.cluster,
            reason: self.reason,
            details: self.details,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        ev.hash = ev.compute_hash();
        ev
    }
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub model_id: Option<String>,
    pub version: Option<String>,
    pub environment: Option<String>,
    pub cluster: Option<String>,
    pub reason: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl LedgerEvent {
    /// The canonical content the hash covers.
    pub fn content(&self) -> Value {
        json!({
            "id": self.id,
            "at": self.at.micros(),
            "actor": self.actor,
            "action": self.action,
            "model_id": self.model_id,
            "version": self.version,
            "environment": self.environment,
            "cluster": self.cluster,
            "reason": self.reason,
            "details": self.details,
        })
    }

    pub fn compute_hash(&self) -> String {
        let mut bytes = self.prev_hash.clone().into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(canonical_json(&self.content()).as_bytes());
        sha256_prefixed(&bytes)
    }

    pub fn full_id(&self) -> Option<String> {
        match (&self.model_id, &self.version) {
            (Some(m), Some(v)) => Some(format!("{m}:{v}")),
            _ => None,
        }
    }
}

/// Walks the ledger in id order, checking each link. Feed it events in
/// ascending id order (in pages, for a large ledger), then call `finish`
/// with the chain head the database recorded.
#[derive(Debug, Clone)]
pub struct Verifier {
    prev_hash: String,
    checked: u64,
    broken: Option<(i64, String)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
            broken: None,
        }
    }
}

impl Verifier {
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    pub fn check(&mut self, ev: &LedgerEvent) {
        if self.broken.is_some() {
            return;
        }
        self.checked += 1;
        if ev.prev_hash != self.prev_hash {
            self.broken = Some((
                ev.id,
                format!(
                    "event {} does not follow the event before it (an event was deleted, inserted or edited)",
                    ev.id
                ),
            ));
        } else if ev.compute_hash() != ev.hash {
            self.broken = Some((
                ev.id,
                format!("event {} was edited after it was written", ev.id),
            ));
        }
        self.prev_hash = ev.hash.clone();
    }

    /// `head`: the (id, hash) of the last event as the database's chain head
    /// records it, so deleting the newest rows is detected too.
    pub fn finish(self, head: Option<(i64, &str)>, last_id: Option<i64>) -> VerifyReport {
        if let Some((id, problem)) = self.broken {
            return VerifyReport {
                ok: false,
                checked: self.checked,
                first_broken_id: Some(id),
                problem: Some(problem),
            };
        }
        match head {
            Some((head_id, head_hash)) if head_hash != self.prev_hash || Some(head_id) != last_id => {
                VerifyReport {
                    ok: false,
                    checked: self.checked,
                    first_broken_id: Some(last_id.map_or(head_id, |l| l.min(head_id) + 1).min(head_id)),
                    problem: Some(format!(
                        "the chain ends at event {} but the ledger head records event {head_id}: events at the end were deleted or edited",
                        last_id.map_or("none".to_string(), |l| l.to_string())
                    )),
                }
            }
            None if self.checked > 0 => VerifyReport {
                ok: false,
                checked: self.checked,
                first_broken_id: last_id,
                problem: Some("the ledger head is missing".into()),
            },
            _ => VerifyReport {
                ok: true,
                checked: self.checked,
                first_broken_id: None,
                problem: None,
            },
        }
    }
}
