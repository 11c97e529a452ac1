//! Validation of request records reported by model servers and routers.

use serde::Deserialize;

use crate::types::RequestRecord;
use crate::{DomainError, FullId, Timestamp};

/// A record as it arrives, before validation (all fields optional so that a
/// missing one gets a precise message).
#[derive(Debug, Deserialize)]
pub struct RawRequestRecord {
    pub request_id: Option<String>,
    pub at: Option<String>,
    pub cluster: Option<String>,
    pub slot: Option<String>,
    pub full_id: Option<String>,
    pub latency_ms: Option<f64>,
    pub outcome: Option<String>,
}

pub const MAX_REQUEST_ID_LEN: usize = 128;

impl RawRequestRecord {
    pub fn validate(self) -> Result<RequestRecord, DomainError> {
        let missing = |f: &str| DomainError::Invalid(format!("field {f:?} is missing"));
        let request_id = self.request_id.ok_or_else(|| missing("request_id"))?;
        if request_id.is_empty() || request_id.len() > MAX_REQUEST_ID_LEN {
            return Err(DomainError::Invalid(format!(
                "request_id must be 1 to {MAX_REQUEST_ID_LEN} characters"
            )));
        }
        let at = Timestamp::parse(&self.at.ok_or_else(|| missing("at"))?)?;
        let cluster = self.cluster.ok_or_else(|| missing("cluster"))?;
        crate::policy::parse_environment_name(&cluster).map_err(|_| {
            DomainError::Invalid(format!(
                "cluster {cluster:?} is not a valid cluster name ([a-z0-9][a-z0-9._-]{{0,63}})"
            ))
        })?;
        let slot = self.slot.ok_or_else(|| missing("slot"))?;
        if slot != "blue" && slot != "green" {
            return Err(DomainError::Invalid(format!(
                "slot must be \"blue\" or \"green\", not {slot:?}"
            )));
        }
        let full_id = FullId::parse(&self.full_id.ok_or_else(|| missing("full_id"))?)?;
        let latency_ms = self.latency_ms.ok_or_else(|| missing("latency_ms"))?;
        if !latency_ms.is_finite() || latency_ms < 0.0 {
            return Err(DomainError::Invalid(
                "latency_ms must be a finite number ≥ 0".into(),
            ));
        }
        if let Some(o) = &self.outcome {
            if o.len() > 64 {
                return Err(DomainError::Invalid("outcome must be at most 64 characters".into()));
            }
        }
        Ok(RequestRecord {
            request_id,
            at,
            cluster,
            slot,
            full_id,
            latency_ms,
            outcome: self.outcome,
        })
    }
}
