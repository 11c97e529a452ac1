//! Validation of request records reported by model servers and routers.

use serde::Deserialize;

use crate::types::RequestRecord;
use crate::{DomainError, FullId, Stage, Timestamp};

/// A record as it arrives, before validation (all fields optional so that a
/// missing one gets a precise message; a field not listed here is refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
/// Records one ingest request may carry (and 16 MiB): a batch is checked and
/// stored in one transaction, so its size bounds what one request holds.
pub const MAX_RECORDS_PER_BATCH: usize = 10_000;
pub const MAX_OUTCOME_LEN: usize = 64;

impl RawRequestRecord {
    /// Checks every field; the first problem found is reported, naming the field.
    pub fn validate(self) -> Result<RequestRecord, DomainError> {
        let missing = |f: &str| DomainError::Invalid(format!("field {f:?} is missing"));
        let field = |f: &str, e: DomainError| DomainError::Invalid(format!("field {f:?}: {e}"));

        let request_id = self.request_id.ok_or_else(|| missing("request_id"))?;
        check_text("request_id", &request_id, MAX_REQUEST_ID_LEN)?;
        check_request_id_path(&request_id)?;

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

/// How far ahead of the server's clock a record's `at` may be (clock skew).
pub const MAX_FUTURE_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// Every accepted id must be retrievable at
/// `/api/v1/request-records/{percent-encoded id}`: a `/` would split the path
/// (many clients and proxies decode `%2F`), and `.`/`..` are removed by URL
/// normalisation. Those are refused at ingest; anything else, percent-encoded, works.
fn check_request_id_path(id: &str) -> Result<(), DomainError> {
    if id.contains('/') {
        return Err(DomainError::Invalid(
            "field \"request_id\" must not contain \"/\" (ids are looked up as one URL path segment)".to_owned(),
        ));
    }
    if id == "." || id == ".." {
        return Err(DomainError::Invalid(format!(
            "field \"request_id\" cannot be {id:?} (URLs drop such a path segment)"
        )));
    }
    Ok(())
}

/// Refuses a record time more than `MAX_FUTURE_SKEW_MICROS` ahead of `now`,
/// or before the ledger's first event (nothing could have served then).
pub fn check_record_time(
    at: Timestamp,
    now: Timestamp,
    ledger_begins: Option<Timestamp>,
) -> Result<(), DomainError> {
    if at.micros() > now.micros().saturating_add(MAX_FUTURE_SKEW_MICROS) {
        return Err(DomainError::Invalid(format!(
            "field \"at\": {} is in the future (the server's clock says {})",
            at.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    match ledger_begins {
        Some(first) if at < first => Err(DomainError::Invalid(format!(
            "field \"at\": {} is before the ledger begins ({}); no registered version served then",
            at.to_rfc3339(),
            first.to_rfc3339()
        ))),
        None => Err(DomainError::Invalid(
            "the ledger is empty: no version is registered, so no request can have been served"
                .to_owned(),
        )),
        Some(_) => Ok(()),
    }
}

/// Refuses a record naming a version that is not registered (`stage` None)
/// or that was already retired at the record's time.
pub fn check_record_version(
    full_id: &FullId,
    at: Timestamp,
    stage: Option<(Stage, Timestamp)>,
) -> Result<(), DomainError> {
    match stage {
        None => Err(DomainError::Invalid(format!(
            "field \"full_id\": {full_id} is not a registered version"
        ))),
        Some((Stage::Retired, since)) if since <= at => Err(DomainError::Invalid(format!(
            "field \"full_id\": {full_id} was retired at {}, before this request; a retired version never serves",
            since.to_rfc3339()
        ))),
        Some(_) => Ok(()),
    }
}

/// Why a record contradicts what the ledger says its cluster's slot held at
/// its time (`held`: `None` when the cluster had no recorded state yet).
pub fn contradiction(record: &RequestRecord, held: Option<Option<&FullId>>) -> Option<String> {
    match held {
        None => Some(format!(
            "cluster {} had no recorded state at {}",
            record.cluster,
            record.at.to_rfc3339()
        )),
        Some(v) if v == Some(&record.full_id) => None,
        Some(None) => Some(format!(
            "the ledger says the {} slot of cluster {} held no version at {}, not {}",
            record.slot,
            record.cluster,
            record.at.to_rfc3339(),
            record.full_id
        )),
        Some(Some(v)) => Some(format!(
            "the ledger says the {} slot of cluster {} held {v} at {}, not {}",
            record.slot,
            record.cluster,
            record.at.to_rfc3339(),
            record.full_id
        )),
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
    } else if value.chars().any(crate::text::is_bidi_control) {
        Some("contains a bidirectional formatting character".to_owned())
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

    #[test]
    fn unknown_fields_and_ids_that_cannot_be_looked_up_are_refused() {
        let mut v = good();
        v["versoin"] = json!("x");
        let e = serde_json::from_value::<RawRequestRecord>(v).expect_err("unknown field");
        assert!(e.to_string().contains("versoin"), "{e}");
        for id in ["a/b", ".", ".."] {
            let mut v = good();
            v["request_id"] = json!(id);
            assert!(message(v).contains("request_id"), "{id}");
        }
        let mut v = good();
        v["request_id"] = json!("a?b#c%d e\\f");
        assert!(
            validate(v).is_ok(),
            "percent-encoded, these are retrievable"
        );
    }

    #[test]
    fn a_record_time_in_the_future_or_before_the_ledger_is_refused() {
        let t = |s: i64| Timestamp::from_micros(1_772_323_200_000_000 + s * 1_000_000);
        assert!(check_record_time(t(100), t(100), Some(t(0))).is_ok());
        assert!(
            check_record_time(t(100 + 299), t(100), Some(t(0))).is_ok(),
            "clock skew"
        );
        assert!(check_record_time(t(100 + 301), t(100), Some(t(0))).is_err());
        assert!(check_record_time(t(-1), t(100), Some(t(0))).is_err());
        assert!(check_record_time(t(1), t(100), None).is_err());
    }

    #[test]
    fn unknown_versions_and_versions_retired_before_the_request_are_refused() {
        let t = |s: i64| Timestamp::from_micros(1_772_323_200_000_000 + s * 1_000_000);
        let v = FullId::parse("chat:v1").expect("id");
        assert!(check_record_version(&v, t(5), None).is_err());
        assert!(check_record_version(&v, t(5), Some((Stage::Retired, t(4)))).is_err());
        assert!(check_record_version(&v, t(5), Some((Stage::Retired, t(6)))).is_ok());
        assert!(check_record_version(&v, t(5), Some((Stage::Production, t(1)))).is_ok());
    }

    #[test]
    fn a_record_contradicting_the_slot_the_ledger_recorded_is_explained() {
        let r = validate(good()).expect("valid");
        let other = FullId::parse("chat:v1").expect("id");
        assert_eq!(contradiction(&r, Some(Some(&r.full_id.clone()))), None);
        assert!(contradiction(&r, Some(Some(&other))).is_some_and(|m| m.contains("held chat:v1")));
        assert!(contradiction(&r, Some(None)).is_some_and(|m| m.contains("no version")));
        assert!(contradiction(&r, None).is_some());
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
