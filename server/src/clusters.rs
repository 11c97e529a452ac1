//! Cluster operations as both the REST API and the console ask for them:
//! who may run one, checked the same way for a token and a session.

use switchyard_domain::access::{role_for_operation, Role};
use switchyard_domain::DomainError;

use crate::store::{Store, StoreResult};

/// Checks that `who` (with `role`) may run an operation, or a rollback, on
/// `cluster`: deployers outside production, approvers in production-policy
/// environments (`access::role_for_operation`). The lower bar is checked
/// first, so a viewer is told "forbidden" whether or not the cluster exists;
/// an unknown cluster passes here and the operation itself answers 404.
pub async fn require_operator(
    store: &dyn Store,
    who: &str,
    role: Role,
    cluster: &str,
    rollback: bool,
) -> StoreResult<()> {
    let what = if rollback {
        "rolling back a cluster"
    } else {
        "running an operation on a cluster"
    };
    let refuse = |needed: Role, what: &str| -> StoreResult<()> {
        if role.allows(needed) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "{what} needs the {needed} role; {who} has the {role} role"
            ))
            .into())
        }
    };
    refuse(role_for_operation(false), what)?;
    let Some(c) = store.get_cluster(cluster).await? else {
        return Ok(());
    };
    if is_production(store, &c.environment).await? {
        refuse(
            role_for_operation(true),
            &format!("{what} in production environment {}", c.environment),
        )?;
    }
    Ok(())
}

/// Whether `environment` has a production policy (unknown: no).
pub async fn is_production(store: &dyn Store, environment: &str) -> StoreResult<bool> {
    Ok(store
        .list_environments()
        .await?
        .iter()
        .any(|e| e.name == environment && e.policy.is_production()))
}
