//! Cluster operations as both the REST API and the console ask for them:
//! who may run one, checked the same way for a token and a session.

use switchyard_domain::access::role_for_operation;
use switchyard_domain::analysis::Decision;
use switchyard_domain::operations::Operation;
use switchyard_domain::{DomainError, Timestamp};

use crate::store::identity::Identity;
use crate::store::{Store, StoreResult};

/// Checks that `who` may run an operation, or a rollback, on `cluster`:
/// bound as deployer in the cluster's environment (or on all) outside
/// production, as approver in production-policy environments
/// (`access::role_for_operation`). The lower bar (deployer somewhere) is
/// checked first, so a viewer is told "forbidden" whether or not the cluster
/// exists; an unknown cluster passes here and the operation itself answers 404.
pub async fn require_operator(
    store: &dyn Store,
    who: &Identity,
    cluster: &str,
    rollback: bool,
) -> StoreResult<()> {
    let what = if rollback {
        "rolling back a cluster"
    } else {
        "running an operation on a cluster"
    };
    who.check_somewhere(role_for_operation(false), what)
        .map_err(DomainError::from)?;
    let Some(c) = store.get_cluster(cluster).await? else {
        return Ok(());
    };
    let production = is_production(store, &c.environment).await?;
    let what = if rollback {
        format!("rolling back {} (environment {})", c.name, c.environment)
    } else {
        format!(
            "running an operation on {} (environment {})",
            c.name, c.environment
        )
    };
    who.check(role_for_operation(production), Some(&c.environment), &what)
        .map_err(DomainError::from)?;
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

/// The operation a person steers (pause, continue, roll back) and their
/// reason, once they may: the lower bar first, so a viewer is told
/// "forbidden" whether or not the operation exists; then, as weighty as a
/// rollback, approvers in production.
pub async fn steered<'r>(
    store: &dyn Store,
    who: &Identity,
    id: i64,
    reason: Option<&'r str>,
    what: &str,
) -> StoreResult<(Operation, &'r str)> {
    who.check_somewhere(role_for_operation(false), what)
        .map_err(DomainError::from)?;
    let reason = switchyard_domain::text::required_reason(reason)?;
    let op = store
        .get_operation(id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("operation {id} does not exist")))?;
    require_operator(store, who, &op.cluster, true).await?;
    Ok((op, reason))
}

/// A person's answer to an operation, as the REST API and the console give
/// it: continue a paused one, or roll back a paused or running one (a
/// running one is paused where it is first, then rolled back).
pub async fn decide(
    store: &dyn Store,
    who: &Identity,
    id: i64,
    decision: Decision,
    reason: Option<&str>,
    at: Timestamp,
) -> StoreResult<Operation> {
    let (op, reason) = steered(store, who, id, reason, "answering a paused operation").await?;
    if decision == Decision::RollBack && op.paused.is_none() && !op.state.is_final() {
        store.pause_operation(id, &who.username, reason, at).await?;
    }
    store
        .decide_operation(id, decision, &who.username, reason, at)
        .await
}
