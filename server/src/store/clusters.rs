//! Storage of serving clusters and their operations (`ClusterStore`), a
//! supertrait of `Store`. The SQL is in `clusters_sql.rs`, expanded inside
//! each backend's `Store` implementation so that it writes through the same
//! `Writer` (ledger head locked first, events and state history in the same
//! transaction).
//!
//! Operations are persisted state machines. A runner claims a running
//! operation with a lease (`claim_operation`), writes each step before it
//! runs and after it ran (`record_progress`, fenced by the lease owner), and
//! renews the lease while it works; a runner that dies leaves the lease to
//! expire, and another runner — in this process after a restart, or in
//! another server — claims the operation and resumes it.

use async_trait::async_trait;
use switchyard_domain::analysis::{AnalysisTemplate, Decision};
use switchyard_domain::clusters::Weights;
use switchyard_domain::clusters::{Cluster, ClusterChange, NewCluster};
use switchyard_domain::drift::{self, Sighting};
use switchyard_domain::operations::{Operation, OperationKind, Progress};
use switchyard_domain::reconcile::Finding;
use switchyard_domain::{FullId, Timestamp};

use super::StoreResult;

/// An operation asked for through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRequest {
    pub cluster: String,
    pub kind: OperationKind,
    /// The version to bring into service; `None` only for a rollback (it
    /// returns to the cluster's `rollback_to`).
    pub full_id: Option<FullId>,
    /// Rolling steps in percent; ignored by other kinds.
    pub rolling_steps: Vec<u8>,
    pub reason: Option<String>,
    /// Names of analysis templates its gates run (copied when it starts).
    pub analysis: Vec<String>,
    /// Bake time in milliseconds (see `Operation::bake_ms`).
    pub bake_ms: Option<u64>,
}

/// What `record_observation` did with one look of the drift watcher.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservationOutcome {
    /// Nothing recorded: an operation started, or the recorded state changed,
    /// since the driver was asked, so the look may show a moment in between.
    Stale,
    /// The driver could not say what runs; kept (`unreadable`) for the
    /// cluster page, and the drift recorded before stays as it was.
    Unreadable,
    /// The same drift (or none) as already recorded: only the time of the look is kept.
    Unchanged,
    /// The drift changed: ledger event `event_id`, `cluster.drift_detected`
    /// (with `findings`) or `cluster.drift_cleared` (findings empty).
    Recorded {
        event_id: i64,
        action: &'static str,
        findings: Vec<drift::Finding>,
    },
}

#[async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// Creates a cluster serving nothing yet (router on blue).
    async fn create_cluster(
        &self,
        new: NewCluster,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Cluster>;

    async fn list_clusters(&self) -> StoreResult<Vec<Cluster>>;

    /// Removes a cluster that never ran an operation and serves nothing,
    /// writing `cluster.removed`. Refused (`Conflict`, saying why) while an
    /// operation runs and once it has run any: its operations, steps and
    /// state history answer "what served at T" and the audit, so they stay.
    async fn remove_cluster(&self, name: &str, actor: &str, at: Timestamp) -> StoreResult<()>;

    async fn get_cluster(&self, name: &str) -> StoreResult<Option<Cluster>>;

    /// Plans and records an operation, refusing it before anything moves if
    /// another one runs on the cluster (`Conflict` naming it), if the version
    /// is unknown, retired or not allowed in the cluster's environment, or if
    /// the plan is not possible from the cluster's state.
    async fn start_operation(
        &self,
        request: OperationRequest,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Operation>;

    async fn get_operation(&self, id: i64) -> StoreResult<Option<Operation>>;

    /// The operations with these ids (unknown ids left out), in one query
    /// per 500 ids: what serving at T's gate results read for every cluster at once.
    async fn operations_by_id(&self, ids: &[i64]) -> StoreResult<Vec<Operation>>;

    /// Takes the oldest running operation whose lease is free or expired,
    /// leasing it to `owner` until `lease_until`. Two runners never get the
    /// same operation at once (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite:
    /// one UPDATE under the database write lock).
    async fn claim_operation(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<Operation>>;

    /// Extends `owner`'s lease; false when it is no longer the owner.
    async fn renew_lease(&self, id: i64, owner: &str, lease_until: Timestamp) -> StoreResult<bool>;

    /// Records progress with its ledger event, and the cluster's new state
    /// and state history when the step changes what serves. Refused with
    /// `Conflict` if `owner` no longer holds the lease.
    async fn record_progress(
        &self,
        id: i64,
        owner: &str,
        progress: Progress,
        at: Timestamp,
    ) -> StoreResult<Operation>;

    /// A person's answer to an operation paused by an inconclusive
    /// analysis, with its ledger event (`operation.continued` or
    /// `operation.rollback_chosen`, actor `actor`); the operation is then free
    /// for the next runner to claim (at once after an analysis pause; after a
    /// person's pause once the lease of the runner it stopped has expired).
    /// Refused with `Conflict` if it is not paused.
    async fn decide_operation(
        &self,
        id: i64,
        decision: Decision,
        actor: &str,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<Operation>;

    /// A person pauses a running operation before its next step
    /// (`operation.paused`, actor `actor`): its runner stops at its next
    /// lease renewal or write, and no runner claims it until
    /// `decide_operation`. Refused with `Conflict` for a finished operation,
    /// one already paused, a rollback or a restore, and while a traffic
    /// command is in flight.
    async fn pause_operation(
        &self,
        id: i64,
        actor: &str,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<Operation>;

    /// Creates or replaces an analysis template (checked first), writing
    /// `analysis_template.saved` with the previous one and the admin's
    /// reason; false (and nothing written) when it is unchanged.
    async fn save_analysis_template(
        &self,
        template: AnalysisTemplate,
        actor: &str,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;

    async fn list_analysis_templates(&self) -> StoreResult<Vec<AnalysisTemplate>>;

    async fn get_analysis_template(&self, name: &str) -> StoreResult<Option<AnalysisTemplate>>;

    /// Sets the templates every operation on `cluster` runs (but a
    /// rollback), writing `cluster.analysis_set`; refused naming a template
    /// that does not exist or is named twice.
    async fn set_cluster_analysis(
        &self,
        cluster: &str,
        templates: Vec<String>,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Cluster>;

    /// Removes a template (`analysis_template.removed`, with the admin's
    /// reason); operations keep their copies. Refused (`Conflict`) while a
    /// cluster attaches it.
    async fn remove_analysis_template(
        &self,
        name: &str,
        actor: &str,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Reconciles the router command an interrupted runner left unrecorded
    /// (`Operation::intent`) with the router's weights as `owner` observed
    /// them at `at` (or why they could not be read), in one transaction: the
    /// ledger event `operation.reconciled`, the state history's transition
    /// interval from the intent's time and the observed state from `at`
    /// (`reconcile::reconcile`), and the intent cleared. The finding is `None`
    /// when there was no intent. Refused with `Conflict` if `owner` no longer
    /// holds the lease.
    async fn reconcile_operation(
        &self,
        id: i64,
        owner: &str,
        observed: Result<Weights, String>,
        at: Timestamp,
    ) -> StoreResult<(Operation, Option<Finding>)>;

    /// Keeps the drift watcher's look at `cluster` (`seen`, or why the driver
    /// could not say what runs), made when the cluster's state was set by
    /// event `state_event_id`. In one transaction it re-reads the cluster,
    /// judges the look against the environment's pins and the recorded state
    /// (`drift::judge`), and, when the findings differ from those last
    /// recorded, appends `cluster.drift_detected` or `cluster.drift_cleared`
    /// (actor `system`): two servers watching one database record each
    /// change once. `Stale` (nothing written) while an operation runs or
    /// once the recorded state moved past `state_event_id`.
    async fn record_observation(
        &self,
        cluster: &str,
        state_event_id: i64,
        seen: Result<Sighting, String>,
        at: Timestamp,
    ) -> StoreResult<ObservationOutcome>;

    /// The cluster's operations, newest first, at most `limit`.
    async fn list_operations(&self, cluster: &str, limit: u32) -> StoreResult<Vec<Operation>>;

    /// Every state the cluster held (slots and weights), oldest first, from
    /// its state history: what the timeline draws.
    async fn cluster_history(&self, cluster: &str) -> StoreResult<Vec<ClusterChange>>;
}
