//! The resolve rule: what `chat`, `chat:v2.1.3` and `chat:latest` mean in an
//! environment. The caller looks up the candidate version that the reference
//! points at (the pinned one, the exact one, or the newest non-retired one);
//! this decides whether it may be served.

use crate::policy::EnvPolicy;
use crate::types::{Resolved, Version};
use crate::{DomainError, Stage, VersionRef};

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
        return Err(DomainError::Retired(format!(
            "{} is retired and can no longer be resolved",
            v.full_id
        )));
    }
    if let VersionRef::Exact(_) = reference {
        if v.stage != Stage::Deprecated && !policy.admits(v.stage) {
            return Err(DomainError::PolicyViolation(format!(
                "environment {env} serves only versions in stage {} or later; {} is {}",
                policy.min_stage, v.full_id, v.stage
            )));
        }
    }
    let deprecated = v.stage == Stage::Deprecated;
    Ok(Resolved {
        full_id: v.full_id.clone(),
        config_hash: v.config_hash.clone(),
        stage: v.stage,
        pinned: matches!(reference, VersionRef::Pinned(_)),
        deprecated,
        warning: deprecated.then(|| {
            format!("{} is deprecated: migrate to a current version", v.full_id)
        }),
    })
}
