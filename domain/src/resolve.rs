//! The resolve rule: what `chat`, `chat:v2.1.3` and `chat:latest` mean in an
//! environment. The caller looks up the candidate version that the reference
//! points at (the pinned one, the exact one, or the newest non-retired one);
//! this decides whether it may be served.

use crate::policy::{or_list, EnvPolicy};
use crate::types::{Resolved, Version};
use crate::{DomainError, Stage, VersionRef};

/// Decides what `reference` resolves to in environment `env`, given the
/// version the caller looked up for it (`None`: there is none).
///
/// A version reached through the pin is served whatever its stage but
/// retired: the pin was checked when it was set, and refusing a pinned
/// version that was deprecated since would take a serving model down.
/// An exact or `latest` reference must meet the environment's minimum stage,
/// except that deprecated versions resolve exactly, with a warning.
pub fn decide(
    reference: &VersionRef,
    env: &str,
    policy: &EnvPolicy,
    candidate: Option<&Version>,
) -> Result<Resolved, DomainError> {
    if let VersionRef::Latest(model) = reference {
        if !policy.allow_latest {
            return Err(DomainError::PolicyViolation(format!(
                "environment {env} does not allow \"latest\": its versions must be explicit and pinned \
                 so that behaviour is reproducible; resolve {model} (through the pin) or {model}:<version>"
            )));
        }
    }
    let Some(v) = candidate else {
        return Err(DomainError::NotFound(match reference {
            VersionRef::Pinned(m) => format!("model {m} has no pin in environment {env}"),
            VersionRef::Exact(f) => format!("version {f} is not registered"),
            VersionRef::Latest(m) => format!("model {m} has no version that is not retired"),
        }));
    };
    if v.stage == Stage::Retired {
        let hint = match reference {
            VersionRef::Pinned(_) => {
                format!("; it is still pinned in {env}: pin a current version")
            }
            VersionRef::Exact(_) | VersionRef::Latest(_) => String::new(),
        };
        return Err(DomainError::Retired(format!(
            "{} is retired and can no longer be resolved{hint}",
            v.full_id
        )));
    }
    let pinned = matches!(reference, VersionRef::Pinned(_));
    let deprecated = v.stage == Stage::Deprecated;
    if !pinned && !deprecated && !policy.admits(v.stage) {
        return Err(DomainError::PolicyViolation(format!(
            "environment {env} only serves versions in stage {}; {} is {}",
            policy_stage_list(policy),
            v.full_id,
            v.stage
        )));
    }
    Ok(Resolved {
        full_id: v.full_id.clone(),
        config_hash: v.config_hash.clone(),
        stage: v.stage,
        pinned,
        deprecated,
        warning: deprecated
            .then(|| format!("{} is deprecated: migrate to a current version", v.full_id)),
    })
}

/// The stages a version may be in to resolve exactly (deprecated aside).
fn policy_stage_list(policy: &EnvPolicy) -> String {
    let stages: Vec<Stage> = policy
        .accepted_stages()
        .into_iter()
        .filter(|s| *s != Stage::Deprecated)
        .collect();
    or_list(&stages)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{FullId, Timestamp};
    use Stage::*;

    fn version(full_id: &str, stage: Stage) -> Version {
        let full_id = FullId::parse(full_id).expect("valid full id");
        Version {
            model_id: full_id.model_id.clone(),
            version: full_id.version.clone(),
            full_id,
            stage,
            config_hash: "sha256:abc".into(),
            config: json!({}),
            artifact_uri: None,
            labels: None,
            created_at: Timestamp::from_micros(0),
            created_by: "ci".into(),
            stage_since: Timestamp::from_micros(0),
        }
    }

    fn r(s: &str) -> VersionRef {
        VersionRef::parse(s).expect("valid reference")
    }

    fn production() -> EnvPolicy {
        EnvPolicy::default_for("production")
    }

    #[test]
    fn a_bare_model_resolves_to_the_pinned_version() {
        let v = version("chat:v3", Production);
        let got = decide(&r("chat"), "production", &production(), Some(&v)).expect("resolves");
        assert_eq!(got.full_id.to_string(), "chat:v3");
        assert_eq!(got.config_hash, "sha256:abc");
        assert!(got.pinned);
        assert!(!got.deprecated);
        assert_eq!(got.warning, None);
    }

    #[test]
    fn a_model_without_a_pin_is_not_found_naming_the_environment() {
        let err = decide(&r("chat"), "production", &production(), None).expect_err("no pin");
        assert_eq!(
            err,
            DomainError::NotFound("model chat has no pin in environment production".into())
        );
        assert_eq!(err.http_status(), 404);
    }

    #[test]
    fn an_exact_production_version_resolves_in_production_without_the_pin() {
        let v = version("chat:v3", Production);
        let got = decide(&r("chat:v3"), "production", &production(), Some(&v)).expect("resolves");
        assert!(!got.pinned);
    }

    #[test]
    fn an_unregistered_exact_version_is_not_found() {
        let err = decide(&r("chat:v9"), "production", &production(), None).expect_err("unknown");
        assert_eq!(
            err,
            DomainError::NotFound("version chat:v9 is not registered".into())
        );
    }

    #[test]
    fn an_exact_version_below_the_environment_minimum_is_refused_with_both_stages() {
        let v = version("chat:v4", Staging);
        let err =
            decide(&r("chat:v4"), "production", &production(), Some(&v)).expect_err("too low");
        assert_eq!(
            err,
            DomainError::PolicyViolation(
                "environment production only serves versions in stage production; chat:v4 is staging".into()
            )
        );
        let dev = version("chat:v5", Development);
        let staging = EnvPolicy::default_for("staging");
        let err = decide(&r("chat:v5"), "staging", &staging, Some(&dev)).expect_err("too low");
        assert!(
            err.to_string()
                .contains("staging or production; chat:v5 is development"),
            "{err}"
        );
    }

    #[test]
    fn latest_is_refused_in_production_with_the_reason_and_what_to_use_instead() {
        let v = version("chat:v3", Production);
        let err = decide(&r("chat:latest"), "production", &production(), Some(&v))
            .expect_err("no latest");
        let DomainError::PolicyViolation(msg) = &err else {
            panic!("expected PolicyViolation, got {err:?}");
        };
        assert!(
            msg.contains("environment production does not allow \"latest\""),
            "{msg}"
        );
        assert!(msg.contains("reproducible"), "{msg}");
        assert!(msg.contains("chat:<version>"), "{msg}");
        assert_eq!(err.http_status(), 422);
    }

    #[test]
    fn latest_is_refused_in_staging_too() {
        let v = version("chat:v3", Staging);
        let staging = EnvPolicy::default_for("staging");
        assert!(matches!(
            decide(&r("chat:latest"), "staging", &staging, Some(&v)),
            Err(DomainError::PolicyViolation(_))
        ));
    }

    #[test]
    fn latest_in_development_resolves_to_the_newest_version_given() {
        let dev = EnvPolicy::default_for("development");
        let v = version("chat:v5", Development);
        let got = decide(&r("chat:latest"), "development", &dev, Some(&v)).expect("resolves");
        assert_eq!(got.full_id.to_string(), "chat:v5");
        assert!(!got.pinned);
    }

    #[test]
    fn latest_with_no_live_version_is_not_found() {
        let dev = EnvPolicy::default_for("development");
        let err = decide(&r("chat:latest"), "development", &dev, None).expect_err("none");
        assert_eq!(
            err,
            DomainError::NotFound("model chat has no version that is not retired".into())
        );
    }

    #[test]
    fn a_retired_version_is_refused_with_gone_whichever_way_it_is_asked_for() {
        let v = version("chat:v1", Retired);
        let dev = EnvPolicy::default_for("development");
        for (reference, policy) in [
            ("chat", &production()),
            ("chat:v1", &production()),
            ("chat:latest", &dev),
        ] {
            let err = decide(&r(reference), "production", policy, Some(&v)).expect_err("retired");
            assert!(
                matches!(&err, DomainError::Retired(m) if m.starts_with("chat:v1 is retired")),
                "{err:?}"
            );
            assert_eq!(err.http_status(), 410);
        }
    }

    #[test]
    fn a_deprecated_exact_version_resolves_even_in_production_with_a_warning() {
        let v = version("chat:v2", Deprecated);
        let got = decide(&r("chat:v2"), "production", &production(), Some(&v)).expect("resolves");
        assert!(got.deprecated);
        assert_eq!(got.stage, Deprecated);
        assert_eq!(
            got.warning.as_deref(),
            Some("chat:v2 is deprecated: migrate to a current version")
        );
    }

    #[test]
    fn a_pinned_version_deprecated_since_it_was_pinned_keeps_resolving_with_a_warning() {
        let v = version("chat:v2", Deprecated);
        let got = decide(&r("chat"), "production", &production(), Some(&v)).expect("resolves");
        assert!(got.pinned);
        assert!(got.deprecated);
        assert!(got.warning.is_some());
    }

    #[test]
    fn the_warning_is_left_out_of_the_json_when_there_is_none() {
        let v = version("chat:v3", Production);
        let got = decide(&r("chat"), "production", &production(), Some(&v)).expect("resolves");
        let json = serde_json::to_value(&got).expect("serialises");
        assert!(json.get("warning").is_none(), "{json}");
        assert_eq!(json["full_id"], "chat:v3");
    }
}
