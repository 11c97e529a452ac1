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
pub const MAX_OUTCOME_LEN: usize = 64;

impl RawRequestRecord {
    /// Checks every field; the first problem found is reported, naming the field.
    pub fn validate(self) -> Result<RequestRecord, DomainError> {
        let missing = |f: &str| DomainError::Invalid(format!("field {f:?} is missing"));
        let field = |f: &str, e: DomainError| DomainError::Invalid(format!("field {f:?}: {e}"));

        let request_id = self.request_id.ok_or_else(|| missing("request_id"))?;
        check_text("request_id", &request_id, MAX_REQUEST_ID_LEN)?;

        let at = self.at.ok_or_else(|| missing("at"))?;
        let at = Timestamp::parse(&at).map_err(|e| field("at", e))?;

        let cluster = self.cluster.ok_or_else(|| missing("cluster"))?;
        crate::policy::parse_environment_name(&cluster).map_err(|_| {
            DomainError::Invalid(format!(
                "field \"cluster\": {cluster:?} is not a valid cluster name ([a-z0-9][a-z0-9._-]{{0,63}})"
            ))
        })?;

        let slot = self.slot.ok_or_else(|| missing("slot"))?;
        if slot != "blue" && slot != "green" {
            return Err(DomainError::Invalid(format!(
                "field \"slot\" must be \"blue\" or \"green\", not {slot:?}"
            )));
        }

        let full_id = self.full_id.ok_or_else(|| missing("full_id"))?;
        let full_id = FullId::parse(&full_id).map_err(|e| field("full_id", e))?;

        let latency_ms = self.latency_ms.ok_or_else(|| missing("latency_ms"))?;
        if !latency_ms.is_finite() || latency_ms < 0.0 {
            return Err(DomainError::Invalid(format!(
                "field \"latency_ms\" must be a finite number ≥ 0, not {latency_ms}"
            )));
        }

        if let Some(o) = &self.outcome {
            check_text("outcome", o, MAX_OUTCOME_LEN)?;
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

/// A free-text identifier: 1 to `max` characters, not blank, no control characters.
fn check_text(name: &str, value: &str, max: usize) -> Result<(), DomainError> {
    let len = value.chars().count();
    let problem = if value.trim().is_empty() {
        Some("is empty".to_owned())
    } else if len > max {
        Some(format!("is {len} characters long, more than {max}"))
    } else if value.chars().any(char::is_control) {
        Some("contains a control character".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(DomainError::Invalid(format!("field {name:?} {p}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn good() -> Value {
        json!({
            "request_id": "req-7f3a",
            "at": "2026-03-03T15:00:00.250+01:00",
            "cluster": "eu-prod-1",
            "slot": "blue",
            "full_id": "chat:v2.1.3",
            "latency_ms": 41.5,
            "outcome": "approved"
        })
    }

    fn validate(v: Value) -> Result<RequestRecord, DomainError> {
        serde_json::from_value::<RawRequestRecord>(v)
            .expect("deserialises")
            .validate()
    }

    fn message(v: Value) -> String {
        match validate(v) {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = good();
        v[field] = value;
        v
    }

    fn without(field: &str) -> Value {
        let mut v = good();
        v.as_object_mut().expect("object").remove(field);
        v
    }

    #[test]
    fn a_complete_record_is_accepted_with_its_time_in_utc() {
        let r = validate(good()).expect("valid");
        assert_eq!(r.request_id, "req-7f3a");
        assert_eq!(r.at.to_string(), "2026-03-03T14:00:00.250000Z");
        assert_eq!(r.cluster, "eu-prod-1");
        assert_eq!(r.slot, "blue");
        assert_eq!(r.full_id.to_string(), "chat:v2.1.3");
        assert_eq!(r.latency_ms, 41.5);
        assert_eq!(r.outcome.as_deref(), Some("approved"));
    }

    #[test]
    fn the_outcome_may_be_left_out() {
        assert_eq!(validate(without("outcome")).expect("valid").outcome, None);
    }

    #[test]
    fn each_missing_required_field_is_named() {
        for f in [
            "request_id",
            "at",
            "cluster",
            "slot",
            "full_id",
            "latency_ms",
        ] {
            assert_eq!(message(without(f)), format!("field {f:?} is missing"));
            assert_eq!(
                message(with(f, Value::Null)),
                format!("field {f:?} is missing"),
                "null {f}"
            );
        }
    }

    #[test]
    fn an_empty_blank_or_overlong_request_id_is_refused() {
        assert_eq!(
            message(with("request_id", json!(""))),
            "field \"request_id\" is empty"
        );
        assert_eq!(
            message(with("request_id", json!("   "))),
            "field \"request_id\" is empty"
        );
        assert_eq!(
            message(with("request_id", json!("r".repeat(129)))),
            "field \"request_id\" is 129 characters long, more than 128"
        );
        assert!(validate(with("request_id", json!("r".repeat(128)))).is_ok());
        assert!(message(with("request_id", json!("a\nb"))).contains("control character"));
    }

    #[test]
    fn a_time_without_a_zone_is_refused_naming_the_field() {
        let m = message(with("at", json!("2026-03-03T14:00:00")));
        assert!(m.starts_with("field \"at\": "), "{m}");
        assert!(m.contains("has no time zone"), "{m}");
    }

    #[test]
    fn a_time_in_utc_with_z_is_accepted() {
        let r = validate(with("at", json!("2026-03-03T14:00:00Z"))).expect("valid");
        assert_eq!(r.at.to_string(), "2026-03-03T14:00:00.000000Z");
    }

    #[test]
    fn an_invalid_cluster_name_is_refused() {
        let m = message(with("cluster", json!("EU Prod")));
        assert!(
            m.starts_with("field \"cluster\": \"EU Prod\" is not a valid cluster name"),
            "{m}"
        );
    }

    #[test]
    fn a_slot_other_than_blue_or_green_is_refused() {
        assert_eq!(
            message(with("slot", json!("red"))),
            "field \"slot\" must be \"blue\" or \"green\", not \"red\""
        );
        assert!(validate(with("slot", json!("green"))).is_ok());
        assert!(validate(with("slot", json!("Blue"))).is_err());
    }

    #[test]
    fn an_invalid_full_id_is_refused_naming_the_field_and_the_problem() {
        let m = message(with("full_id", json!("chat")));
        assert!(m.starts_with("field \"full_id\": "), "{m}");
        assert!(m.contains("expected model_id:version"), "{m}");
        assert!(message(with("full_id", json!("chat:latest"))).starts_with("field \"full_id\": "));
    }

    #[test]
    fn a_negative_latency_is_refused_and_zero_is_accepted() {
        assert_eq!(
            message(with("latency_ms", json!(-1.0))),
            "field \"latency_ms\" must be a finite number ≥ 0, not -1"
        );
        assert!(validate(with("latency_ms", json!(0))).is_ok());
    }

    #[test]
    fn a_latency_that_is_not_a_number_is_refused() {
        let raw = RawRequestRecord {
            latency_ms: Some(f64::NAN),
            ..serde_json::from_value(good()).expect("deserialises")
        };
        assert!(matches!(raw.validate(), Err(DomainError::Invalid(m)) if m.contains("latency_ms")));
    }

    #[test]
    fn an_overlong_outcome_is_refused() {
        assert_eq!(
            message(with("outcome", json!("x".repeat(65)))),
            "field \"outcome\" is 65 characters long, more than 64"
        );
        assert!(validate(with("outcome", json!("x".repeat(64)))).is_ok());
    }
}
