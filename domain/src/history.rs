//! State history: for each subject (a pin, a version's stage, later a cluster
//! slot), the values it held and since when. The database stores one row per
//! change, indexed by (subject, valid_from), so "what held at T" is one
//! indexed lookup per subject — O(log n) — never a replay of the ledger.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The key of a subject whose state is tracked over time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// The pin of `model_id` in `environment`.
    Pin { environment: String, model_id: String },
    /// The lifecycle stage of a version.
    Stage { full_id: String },
}

impl Subject {
    /// The stored key, e.g. `pin/production/chat` or `stage/chat:v1`.
    pub fn key(&self) -> String {
        match self {
            Subject::Pin { environment, model_id } => format!("pin/{environment}/{model_id}"),
            Subject::Stage { full_id } => format!("stage/{full_id}"),
        }
    }

    pub fn parse(key: &str) -> Option<Subject> {
        let (kind, rest) = key.split_once('/')?;
        match kind {
            "pin" => {
                let (environment, model_id) = rest.split_once('/')?;
                Some(Subject::Pin {
                    environment: environment.to_owned(),
                    model_id: model_id.to_owned(),
                })
            }
            "stage" => Some(Subject::Stage { full_id: rest.to_owned() }),
            _ => None,
        }
    }
}

/// One change of a subject's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEntry<V> {
    pub valid_from: Timestamp,
    /// The ledger event that made the change; ties at one instant are broken by it.
    pub event_id: i64,
    pub value: V,
}

/// The entry in force at `t` and the instant of the next change after `t`,
/// from entries sorted by (valid_from, event_id). This is the rule the
/// database's indexed lookup implements; it is here so it can be tested and
/// used on in-memory history (the timeline chart).
pub fn as_of<V>(entries: &[StateEntry<V>], t: Timestamp) -> (Option<&StateEntry<V>>, Option<Timestamp>) {
    let idx = entries.partition_point(|e| e.valid_from <= t);
    let current = idx.checked_sub(1).map(|i| &entries[i]);
    let next = entries.get(idx).map(|e| e.valid_from);
    (current, next)
}
