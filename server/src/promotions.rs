//! Promotions as the REST API (`rest/promotions.rs`) and the console
//! (`console.rs`) both make them: the role each step needs, the parsing of
//! what was asked, the expiry — one path to the store's rules, whoever asks.

use switchyard_domain::access::Role;
use switchyard_domain::policy::parse_environment_name;
use switchyard_domain::promotion::Promotion;
use switchyard_domain::{DomainError, FullId, Timestamp};

use crate::store::identity::Identity;
use crate::store::{DynStore, StoreResult};

/// The lower bar, before the promotion (and so its environment) is read:
/// `needed` in some environment or on all.
pub fn require(by: &Identity, needed: Role, what: &str) -> Result<(), DomainError> {
    Ok(by.check_somewhere(needed, what)?)
}

/// Refuses `what` on promotion `id` unless `by` is bound as approver in its
/// environment (or on all). Unknown promotion: `NotFound`.
async fn require_approver_for(
    store: &DynStore,
    by: &Identity,
    id: i64,
    what: &str,
) -> StoreResult<()> {
    require(by, Role::Approver, what)?;
    let p = store
        .get_promotion(id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no promotion {id}")))?;
    by.check(
        Role::Approver,
        Some(&p.environment),
        &format!("{what} {id} of {} to {}", p.full_id, p.environment),
    )
    .map_err(DomainError::from)?;
    Ok(())
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
    by.check(
        Role::Deployer,
        Some(&env),
        &format!("requesting a promotion of {full_id} to {env}"),
    )
    .map_err(DomainError::from)?;
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
    // The lower bar, then the reason, then the binding in the promotion's environment.
    require(by, Role::Approver, "approving a promotion")?;
    let reason = switchyard_domain::text::required_reason(reason)?;
    require_approver_for(store, by, id, "approving promotion").await?;
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
    require_approver_for(store, by, id, "rejecting promotion").await?;
    store.reject_promotion(id, reason, by, now).await
}

/// The requester takes their own pending promotion back, with a reason.
/// No binding is needed: only the person who asked may, whatever their
/// role now (`promotion::check_withdrawal`, inside the store's transaction).
pub async fn withdraw(
    store: &DynStore,
    by: &Identity,
    id: i64,
    reason: &str,
    now: Timestamp,
) -> StoreResult<Promotion> {
    store.withdraw_promotion(id, reason, by, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::access::{Binding, Scope, Subject};

    fn identity(role: Role, scope: Scope, token: Option<&str>) -> Identity {
        Identity {
            username: "erin".into(),
            role,
            groups: Vec::new(),
            token: token.map(str::to_owned),
            bindings: vec![Binding::new(Subject::User("erin".into()), role, scope)],
        }
    }

    #[test]
    fn a_role_below_the_one_needed_is_refused_naming_the_missing_binding() {
        let refused = require(
            &identity(Role::Deployer, Scope::All, Some("ci")),
            Role::Approver,
            "approving a promotion",
        );
        assert_eq!(
            refused,
            Err(DomainError::Forbidden(
                "approving a promotion needs an approver binding for some environment or all; \
                 erin has: deployer on all"
                    .into()
            ))
        );
        assert_eq!(
            require(
                &identity(Role::Admin, Scope::Environment("staging".into()), None),
                Role::Approver,
                "approving a promotion"
            ),
            Ok(())
        );
    }
}
