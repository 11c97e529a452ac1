//! Storage of release policy (`ReleaseStore`, a supertrait of `Store`):
//! environments' approval policies, change-freeze windows and emergency
//! overrides. The SQL is in `release_sql.rs`, implemented for both backends
//! on the same `Writer` as the rest, so every change writes its ledger event
//! in its own transaction; the freeze check that promotions and operations
//! run (`check_not_frozen` there) reads in the transaction that changes.

use async_trait::async_trait;
pub use switchyard_domain::freeze::FreezeState;
use switchyard_domain::freeze::{FreezeOverride, FreezeWindow, NewFreeze};
use switchyard_domain::policy::EnvPolicy;
use switchyard_domain::Timestamp;

use super::identity::Identity;
use super::StoreResult;

#[async_trait]
pub trait ReleaseStore: Send + Sync + 'static {
    /// Replaces an environment's policy (ledger: `policy.changed` with
    /// before and after; nothing when unchanged). Refused (`Invalid`) if it
    /// does not validate and (`PolicyViolation`) if it could never be
    /// satisfied by the enabled users who may approve — a required group
    /// none of them is in, or more approvers than there are.
    async fn set_environment_policy(
        &self,
        env: &str,
        policy: &EnvPolicy,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<EnvPolicy>;

    /// Creates a freeze window (ledger: `freeze.created`); its name is unique
    /// in its environment (`Conflict`).
    async fn create_freeze(
        &self,
        new: &NewFreeze,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<FreezeWindow>;

    /// Removes a window (ledger: `freeze.removed`). Unknown: `NotFound`.
    async fn remove_freeze(&self, id: i64, actor: &str, at: Timestamp)
        -> StoreResult<FreezeWindow>;

    /// The windows, of one environment or all, by environment and name.
    async fn list_freezes(&self, env: Option<&str>) -> StoreResult<Vec<FreezeWindow>>;

    /// The freezes in force at `at`, one per frozen environment (the window
    /// ending last), with the override that lets changes through, if any.
    async fn freezes_in_force(&self, at: Timestamp) -> StoreResult<Vec<FreezeState>>;

    /// An admin's request for an emergency override of `env`'s freezes
    /// (ledger: `freeze.override_requested`). The caller checks the role.
    async fn request_override(
        &self,
        env: &str,
        reason: &str,
        hours: u32,
        by: &Identity,
        at: Timestamp,
    ) -> StoreResult<FreezeOverride>;

    /// A second person's approval: the override is in force from `at` for
    /// its hours (ledger: `freeze.override_approved`). The requester is
    /// refused (`Forbidden`); so is a lapsed or already approved request.
    async fn approve_override(
        &self,
        id: i64,
        by: &Identity,
        at: Timestamp,
    ) -> StoreResult<FreezeOverride>;

    /// Overrides, of one environment or all, newest first.
    async fn list_overrides(&self, env: Option<&str>) -> StoreResult<Vec<FreezeOverride>>;
}
