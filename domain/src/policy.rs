//! Environments and their policies: may `latest` be used, how many approvals a
//! promotion needs, and the lowest stage a pinned or deployed version may be in.

use serde::{Deserialize, Serialize};

use crate::{DomainError, FullId, Stage};

/// An environment name: same shape as a model id.
pub fn parse_environment_name(s: &str) -> Result<String, DomainError> {
    crate::ModelId::parse(s)
        .map(|m| m.as_str().to_owned())
        .map_err(|_| {
            DomainError::Invalid(format!(
                "environment name {s:?} is not valid: it must match [a-z0-9][a-z0-9._-]{{0,63}}"
            ))
        })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvPolicy {
    pub allow_latest: bool,
    pub required_approvals: u32,
    pub min_stage: Stage,
}

impl EnvPolicy {
    /// The defaults for the three standard environments.
    pub fn default_for(env: &str) -> EnvPolicy {
        match env {
            "production" => EnvPolicy {
                allow_latest: false,
                required_approvals: 2,
                min_stage: Stage::Production,
            },
            "staging" => EnvPolicy {
                allow_latest: false,
                required_approvals: 1,
                min_stage: Stage::Staging,
            },
            _ => EnvPolicy {
                allow_latest: true,
                required_approvals: 1,
                min_stage: Stage::Development,
            },
        }
    }

    /// Whether this is a production-policy environment (its pins must name
    /// production-stage versions).
    pub fn is_production(&self) -> bool {
        self.min_stage == Stage::Production
    }

    /// Whether a version in `stage` satisfies this policy's minimum stage.
    ///
    /// Stages are ranked development < staging < production. Deprecated
    /// versions keep serving existing clients but are not for new adoption,
    /// so they satisfy only a development minimum; retired satisfies nothing.
    pub fn admits(&self, stage: Stage) -> bool {
        fn rank(s: Stage) -> u8 {
            match s {
                Stage::Development | Stage::Deprecated => 0,
                Stage::Staging => 1,
                Stage::Production => 2,
                Stage::Retired => u8::MAX,
            }
        }
        stage != Stage::Retired && rank(stage) >= rank(self.min_stage)
    }

    /// The stages this policy admits, in lifecycle order.
    pub fn accepted_stages(&self) -> Vec<Stage> {
        Stage::ALL.into_iter().filter(|s| self.admits(*s)).collect()
    }

    /// Checks that `full_id`, currently in `stage`, may be pinned (or deployed)
    /// in environment `env` under this policy.
    pub fn check_pin(&self, env: &str, full_id: &FullId, stage: Stage) -> Result<(), DomainError> {
        if stage == Stage::Retired {
            return Err(DomainError::Retired(format!(
                "{full_id} is retired and can never be pinned or deployed"
            )));
        }
        if !self.admits(stage) {
            let why = if stage == Stage::Deprecated {
                " (a deprecated version keeps serving where it is already pinned, \
                 but is not pinned anew)"
            } else {
                ""
            };
            return Err(DomainError::PolicyViolation(format!(
                "environment {env} only accepts versions in stage {}; {full_id} is {stage}{why}",
                or_list(&self.accepted_stages())
            )));
        }
        Ok(())
    }

    /// Checks a policy an admin sets on an environment.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !matches!(
            self.min_stage,
            Stage::Development | Stage::Staging | Stage::Production
        ) {
            return Err(DomainError::Invalid(format!(
                "min_stage must be development, staging or production, not {}",
                self.min_stage
            )));
        }
        if !(1..=MAX_REQUIRED_APPROVALS).contains(&self.required_approvals) {
            return Err(DomainError::Invalid(format!(
                "required_approvals must be between 1 and {MAX_REQUIRED_APPROVALS}, not {}",
                self.required_approvals
            )));
        }
        Ok(())
    }
}

/// Most approvals an environment may require: more could never be gathered
/// in a small team and would block releases for good.
pub const MAX_REQUIRED_APPROVALS: u32 = 10;

/// "a", "a or b", "a, b or c".
pub(crate) fn or_list(stages: &[Stage]) -> String {
    match stages {
        [] => String::new(),
        [only] => only.to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(|s| s.as_str()).collect();
            format!("{} or {last}", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::*;

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("valid full id")
    }

    fn violation(r: Result<(), DomainError>) -> String {
        match r {
            Err(DomainError::PolicyViolation(m)) => m,
            other => panic!("expected PolicyViolation, got {other:?}"),
        }
    }

    #[test]
    fn production_by_default_refuses_latest_needs_two_approvals_and_production_versions() {
        let p = EnvPolicy::default_for("production");
        assert!(!p.allow_latest);
        assert_eq!(p.required_approvals, 2);
        assert_eq!(p.min_stage, Production);
        assert!(p.is_production());
    }

    #[test]
    fn staging_by_default_refuses_latest_and_needs_staging_versions() {
        let p = EnvPolicy::default_for("staging");
        assert!(!p.allow_latest);
        assert_eq!(p.min_stage, Staging);
        assert!(!p.is_production());
    }

    #[test]
    fn development_and_other_environments_by_default_allow_latest() {
        for env in ["development", "sandbox"] {
            let p = EnvPolicy::default_for(env);
            assert!(p.allow_latest, "{env}");
            assert_eq!(p.min_stage, Development, "{env}");
        }
    }

    #[test]
    fn every_default_policy_is_valid() {
        for env in ["production", "staging", "development"] {
            assert_eq!(EnvPolicy::default_for(env).validate(), Ok(()), "{env}");
        }
    }

    #[test]
    fn a_production_environment_pins_only_production_versions_and_says_so() {
        let p = EnvPolicy::default_for("production");
        assert_eq!(
            p.check_pin("production", &id("chat:v3"), Production),
            Ok(())
        );
        assert_eq!(
            violation(p.check_pin("production", &id("chat:v2"), Staging)),
            "environment production only accepts versions in stage production; chat:v2 is staging"
        );
        assert!(p
            .check_pin("production", &id("chat:v1"), Development)
            .is_err());
    }

    #[test]
    fn a_production_environment_does_not_pin_a_deprecated_version_anew() {
        let p = EnvPolicy::default_for("production");
        let msg = violation(p.check_pin("production", &id("chat:v1"), Deprecated));
        assert!(msg.contains("chat:v1 is deprecated"), "{msg}");
        assert!(msg.contains("not pinned anew"), "{msg}");
    }

    #[test]
    fn a_staging_environment_pins_staging_or_production_versions() {
        let p = EnvPolicy::default_for("staging");
        assert_eq!(p.check_pin("staging", &id("chat:v2"), Staging), Ok(()));
        assert_eq!(p.check_pin("staging", &id("chat:v2"), Production), Ok(()));
        assert_eq!(
            violation(p.check_pin("staging", &id("chat:v4"), Development)),
            "environment staging only accepts versions in stage staging or production; chat:v4 is development"
        );
        assert!(p.check_pin("staging", &id("chat:v1"), Deprecated).is_err());
    }

    #[test]
    fn a_development_environment_pins_anything_not_retired_including_deprecated() {
        let p = EnvPolicy::default_for("development");
        for stage in [Development, Staging, Production, Deprecated] {
            assert_eq!(
                p.check_pin("development", &id("chat:v1"), stage),
                Ok(()),
                "{stage}"
            );
        }
    }

    #[test]
    fn a_retired_version_is_never_pinned_anywhere() {
        for env in ["production", "staging", "development"] {
            let p = EnvPolicy::default_for(env);
            match p.check_pin(env, &id("chat:v0"), Retired) {
                Err(DomainError::Retired(m)) => assert!(m.contains("chat:v0 is retired"), "{m}"),
                other => panic!("{env}: expected Retired, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_accepted_stages_follow_the_minimum_stage() {
        assert_eq!(
            EnvPolicy::default_for("production").accepted_stages(),
            vec![Production]
        );
        assert_eq!(
            EnvPolicy::default_for("staging").accepted_stages(),
            vec![Staging, Production]
        );
        assert_eq!(
            EnvPolicy::default_for("development").accepted_stages(),
            vec![Development, Staging, Production, Deprecated]
        );
    }

    #[test]
    fn a_policy_with_a_deprecated_or_retired_minimum_or_no_approvals_is_refused() {
        let mut p = EnvPolicy::default_for("staging");
        p.min_stage = Deprecated;
        assert!(matches!(p.validate(), Err(DomainError::Invalid(m)) if m.contains("min_stage")));
        p.min_stage = Retired;
        assert!(p.validate().is_err());
        let mut p = EnvPolicy::default_for("production");
        p.required_approvals = 0;
        assert!(
            matches!(p.validate(), Err(DomainError::Invalid(m)) if m.contains("required_approvals"))
        );
        p.required_approvals = MAX_REQUIRED_APPROVALS + 1;
        assert!(p.validate().is_err());
    }

    #[test]
    fn environment_names_follow_the_model_id_rule() {
        assert_eq!(parse_environment_name("eu-prod"), Ok("eu-prod".to_owned()));
        for bad in ["", "Prod", "prod/eu", "-prod"] {
            assert!(parse_environment_name(bad).is_err(), "{bad:?}");
        }
    }
}
