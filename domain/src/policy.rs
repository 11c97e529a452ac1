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

    /// Checks that `full_id`, currently in `stage`, may be pinned (or deployed)
    /// in environment `env` under this policy.
    pub fn check_pin(&self, env: &str, full_id: &FullId, stage: Stage) -> Result<(), DomainError> {
        if stage == Stage::Retired {
            return Err(DomainError::Retired(format!(
                "{full_id} is retired and can never be pinned or deployed"
            )));
        }
        if !self.admits(stage) {
            return Err(DomainError::PolicyViolation(format!(
                "environment {env} requires versions in stage {} or later; {full_id} is {stage}",
                self.min_stage
            )));
        }
        Ok(())
    }
}
