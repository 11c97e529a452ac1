//! Where an action happens, for the role-binding checks that both the REST
//! API and the console make (`switchyard_domain::access` decides; this finds
//! the environments an action concerns).
//!
//! - Operations, rollbacks, pause/continue: the cluster's environment
//!   (`clusters::require_operator`).
//! - Promotions: the environment requested; approving and rejecting, the
//!   promotion's environment (`promotions`).
//! - Pins: the environment pinned in.
//! - Hand stage moves: every environment whose policy takes the stage the move
//!   concerns (`access::stage_move_concerns`: a move to staging, the
//!   staging-policy environments; deprecation and retirement, the
//!   production-policy ones); with no such environment, the role on all.
//! - Registering a version (it enters development): every development-policy
//!   environment, as a move to development.
//! - Request records: deployer somewhere, and in the environment of each
//!   cluster the records name.
//! - Everything else (users, tokens, bindings, clusters' configuration,
//!   analysis templates, subscriptions): the role on all.

use switchyard_domain::access::{self, Role};
use switchyard_domain::{DomainError, Stage};

use crate::store::identity::Identity;
use crate::store::{Store, StoreResult};

/// The environments whose policy's minimum stage is `stage`, in their order.
pub async fn environments_taking(store: &dyn Store, stage: Stage) -> StoreResult<Vec<String>> {
    Ok(store
        .list_environments()
        .await?
        .into_iter()
        .filter(|e| e.policy.min_stage == stage)
        .map(|e| e.name)
        .collect())
}

/// Checks a hand move to `to` and answers whether the mover is admin where
/// it happens (admins may retire before the deprecation period is over).
pub async fn check_stage_move(store: &dyn Store, who: &Identity, to: Stage) -> StoreResult<bool> {
    let environments = environments_taking(store, access::stage_move_concerns(to)).await?;
    let needed = access::role_for_stage_move(to, false);
    who.check_each(needed, &environments, &format!("moving a version to {to}"))
        .map_err(DomainError::from)?;
    Ok(who
        .check_each(Role::Admin, &environments, "retiring early")
        .is_ok())
}

/// Registering a version: deployer in every development-policy environment.
pub async fn check_register(store: &dyn Store, who: &Identity) -> StoreResult<()> {
    who.check_somewhere(Role::Deployer, "registering a version")
        .map_err(DomainError::from)?;
    let environments = environments_taking(store, Stage::Development).await?;
    who.check_each(Role::Deployer, &environments, "registering a version")
        .map_err(DomainError::from)?;
    Ok(())
}

/// Reporting request records about `clusters`: deployer in each known
/// cluster's environment (unknown clusters are refused by the records' own check).
pub async fn check_records(
    store: &dyn Store,
    who: &Identity,
    clusters: Vec<String>,
) -> StoreResult<()> {
    who.check_somewhere(Role::Deployer, "reporting request records")
        .map_err(DomainError::from)?;
    let mut clusters = clusters;
    clusters.sort();
    clusters.dedup();
    for name in &clusters {
        if let Some(c) = store.get_cluster(name).await? {
            who.check(
                Role::Deployer,
                Some(&c.environment),
                &format!(
                    "reporting request records of {} (environment {})",
                    c.name, c.environment
                ),
            )
            .map_err(DomainError::from)?;
        }
    }
    Ok(())
}
