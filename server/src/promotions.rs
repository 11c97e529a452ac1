//! Promotions as the REST API (`rest/promotions.rs`) and the console
//! (`console.rs`) both make them: the role each step needs, the parsing of
//! what was asked, the expiry — one path to the store's rules, whoever asks.

use switchyard_domain::access::Role;
use switchyard_domain::policy::parse_environment_name;
use switchyard_domain::promotion::Promotion;
use switchyard_domain::{DomainError, FullId, Timestamp};

use crate::store::identity::Identity;
use crate::store::{DynStore, StoreResult};

/// Refuses `what` unless `by`'s role includes `needed`, naming both roles.
pub fn require(by: &Identity, needed: Role, what: &str) -> Result<(), DomainError> {
    if by.role.allows(needed) {
        return Ok(());
    }
    Err(DomainError::Forbidden(format!(
        "{what} needs the {needed} role; {} has the {} role",
        by.actor(),
        by.role
    )))
}

/// A request for `full_id` to enter `environment` (deployer and up); it
/// expires after the environment's `expiry_hours` unless approved or rejected.
pub async fn request(
    store: &DynStore,
    by: &Identity,
    full_id: &str,
    environment: &str,
    reason: &str,
    now: Timestamp,
) -> StoreResult<Promotion> {
    require(by, Role::Deployer, "requesting a promotion")?;
    let full_id = FullId::parse(full_id.trim())?;
    let env = parse_environment_name(environment.trim())?;
    store
        .request_promotion(&full_id, &env, reason, by, now)
        .await
}

/// One approval (approver and up), with its reason.
pub async fn approve(
    store: &DynStore,
    by: &Identity,
    id: i64,
    reason: Option<&str>,
    now: Timestamp,
) -> StoreResult<Promotion> {
    require(by, Role::Approver, "approving a promotion")?;
    let reason = switchyard_domain::text::required_reason(reason)?;
    store.approve_promotion(id, Some(reason), by, now).await
}

/// A rejection (approver and up), which needs a reason.
pub async fn reject(
    store: &DynStore,
    by: &Identity,
    id: i64,
    reason: &str,
    now: Timestamp,
) -> StoreResult<Promotion> {
    require(by, Role::Approver, "rejecting a promotion")?;
    store.reject_promotion(id, reason, by, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(role: Role, token: Option<&str>) -> Identity {
        Identity {
            username: "erin".into(),
            role,
            groups: Vec::new(),
            token: token.map(str::to_owned),
        }
    }

    #[test]
    fn a_role_below_the_one_needed_is_refused_with_both_roles_named() {
        let refused = require(
            &identity(Role::Deployer, Some("ci")),
            Role::Approver,
            "approving a promotion",
        );
        assert_eq!(
            refused,
            Err(DomainError::Forbidden(
                "approving a promotion needs the approver role; erin has the deployer role".into()
            ))
        );
        assert_eq!(
            require(
                &identity(Role::Admin, None),
                Role::Approver,
                "approving a promotion"
            ),
            Ok(())
        );
    }
}
