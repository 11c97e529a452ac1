//! The SQL of `ClusterStore`, shared by both backends like `sql.rs`, and the
//! macro that implements the trait inside `sql_store!`'s module (so it
//! writes through the same `Writer`).

use std::str::FromStr;

use switchyard_domain::clusters::{Cluster, ClusterState, DriverKind};
use switchyard_domain::operations::{
    Operation, OperationKind, OperationState, StepRecord, Trigger,
};
use switchyard_domain::{FullId, Timestamp};

use super::{StoreError, StoreResult};

macro_rules! cluster_columns {
    () => {
        "c.name, c.environment, c.driver, c.config, c.state, c.state_event, c.state_since, \
         c.rollback_to, c.created_at, c.created_by, c.analysis, c.observed, \
         (SELECT o.id FROM operations o WHERE o.cluster = c.name AND o.state = 'running') AS running_operation"
    };
}
pub(crate) const SELECT_CLUSTERS: &str = concat!(
    "SELECT ",
    cluster_columns!(),
    " FROM clusters c ORDER BY c.name"
);
pub(crate) const SELECT_CLUSTER: &str = concat!(
    "SELECT ",
    cluster_columns!(),
    " FROM clusters c WHERE c.name = $1"
);
pub(crate) const INSERT_CLUSTER: &str = "INSERT INTO clusters \
     (name, environment, driver, config, state, state_event, state_since, rollback_to, created_at, created_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)";
pub(crate) const UPDATE_CLUSTER_STATE: &str =
    "UPDATE clusters SET state = $2, state_event = $3, state_since = $4 WHERE name = $1";
pub(crate) const UPDATE_CLUSTER_ANALYSIS: &str =
    "UPDATE clusters SET analysis = $2 WHERE name = $1";
pub(crate) const SELECT_CLUSTER_ANALYSIS: &str =
    "SELECT name, analysis FROM clusters WHERE analysis IS NOT NULL ORDER BY name";
pub(crate) const UPDATE_CLUSTER_OBSERVED: &str =
    "UPDATE clusters SET observed = $2 WHERE name = $1";
pub(crate) const SELECT_PINS_OF: &str =
    "SELECT model_id, version FROM pins WHERE environment = $1 ORDER BY model_id";
pub(crate) const UPDATE_ROLLBACK_TO: &str = "UPDATE clusters SET rollback_to = $2 WHERE name = $1";

macro_rules! operation_columns {
    () => {
        "id, cluster, kind, full_id, state, steps, next_step, before, reason, actor, trigger, error, \
         created_at, finished_at, lease_owner, intent, analysis, paused, bake_ms"
    };
}
pub(crate) const SELECT_OPERATION: &str = concat!(
    "SELECT ",
    operation_columns!(),
    " FROM operations WHERE id = $1"
);
/// The operations whose id is one of `count` parameters.
pub(crate) fn select_operations_in(count: usize) -> String {
    let ids: Vec<String> = (1..=count).map(|i| format!("${i}")).collect();
    format!(
        "SELECT {} FROM operations WHERE id IN ({})",
        operation_columns!(),
        ids.join(", ")
    )
}
pub(crate) const SELECT_OPERATIONS_OF: &str = concat!(
    "SELECT ",
    operation_columns!(),
    " FROM operations WHERE cluster = $1 ORDER BY id DESC LIMIT $2"
);
pub(crate) const SELECT_CLUSTER_HISTORY: &str =
    "SELECT h.valid_from, h.event_id, h.value, l.actor, l.reason \
     FROM state_history h JOIN ledger l ON l.id = h.event_id \
     WHERE h.subject = $1 ORDER BY h.valid_from, h.event_id";
pub(crate) const COUNT_OPERATIONS_OF: &str = "SELECT COUNT(*) FROM operations WHERE cluster = $1";
pub(crate) const DELETE_CLUSTER: &str = "DELETE FROM clusters WHERE name = $1";
pub(crate) const DELETE_STATE_OF: &str = "DELETE FROM state_history WHERE subject = $1";
pub(crate) const SELECT_RUNNING_OPERATION: &str =
    "SELECT id, kind FROM operations WHERE cluster = $1 AND state = 'running'";
pub(crate) const INSERT_OPERATION: &str = "INSERT INTO operations \
     (cluster, kind, full_id, state, steps, next_step, before, reason, actor, created_at, analysis, bake_ms) \
     VALUES ($1, $2, $3, 'running', $4, 0, $5, $6, $7, $8, $9, $10) RETURNING id";
pub(crate) const UPDATE_OPERATION: &str =
    "UPDATE operations SET state = $2, steps = $3, next_step = $4, \
     trigger = $5, error = $6, finished_at = $7, intent = $8, paused = $9 WHERE id = $1";
/// A paused operation is given back: the next runner claims it at once
/// when a person has answered.
pub(crate) const RELEASE_LEASE: &str =
    "UPDATE operations SET lease_owner = NULL, lease_until = NULL WHERE id = $1";
pub(crate) const CLAIMABLE: &str = "SELECT id FROM operations \
     WHERE state = 'running' AND paused IS NULL AND (lease_until IS NULL OR lease_until < $1) ORDER BY id LIMIT 1";
/// The claim on SQLite: one statement, so it runs under the write lock
/// without another writer in between.
pub(crate) const CLAIM_SQLITE: &str = "UPDATE operations SET lease_owner = $1, lease_until = $2 \
     WHERE id = (SELECT id FROM operations WHERE state = 'running' AND paused IS NULL \
                 AND (lease_until IS NULL OR lease_until < $3) ORDER BY id LIMIT 1) \
     AND state = 'running' AND paused IS NULL AND (lease_until IS NULL OR lease_until < $3) RETURNING id";
/// The claim on PostgreSQL: a row another server is claiming is skipped, not
/// waited for; the outer conditions are checked again on the locked row.
pub(crate) const CLAIM_POSTGRES: &str = "UPDATE operations SET lease_owner = $1, lease_until = $2 \
     WHERE id = (SELECT id FROM operations WHERE state = 'running' AND paused IS NULL \
                 AND (lease_until IS NULL OR lease_until < $3) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     AND state = 'running' AND paused IS NULL AND (lease_until IS NULL OR lease_until < $3) RETURNING id";
/// Who held an operation's lease last and until when (read before a claim
/// takes it over, for the ledger's `operation.interrupted`).
pub(crate) const SELECT_LEASE: &str =
    "SELECT lease_owner, lease_until FROM operations WHERE id = $1";
pub(crate) const RENEW_LEASE: &str = "UPDATE operations SET lease_until = $3 \
     WHERE id = $1 AND lease_owner = $2 AND state = 'running' AND paused IS NULL";

pub(crate) const SELECT_TEMPLATES: &str = "SELECT template FROM analysis_templates ORDER BY name";
pub(crate) const SELECT_TEMPLATE: &str = "SELECT template FROM analysis_templates WHERE name = $1";
pub(crate) const INSERT_TEMPLATE: &str = "INSERT INTO analysis_templates \
     (name, template, created_at, created_by, updated_at, updated_by) VALUES ($1, $2, $3, $4, $3, $4)";
pub(crate) const UPDATE_TEMPLATE: &str =
    "UPDATE analysis_templates SET template = $2, updated_at = $3, updated_by = $4 WHERE name = $1";
pub(crate) const DELETE_TEMPLATE: &str = "DELETE FROM analysis_templates WHERE name = $1";

pub(crate) fn template_of(
    text: &str,
) -> StoreResult<switchyard_domain::analysis::AnalysisTemplate> {
    json_of(text, "analysis template")
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn json_of<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(format_args!("stored {what} is not valid: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| corrupt(format_args!("cannot serialise: {e}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClusterRow {
    name: String,
    environment: String,
    driver: String,
    config: String,
    state: String,
    state_event: i64,
    state_since: i64,
    rollback_to: Option<String>,
    created_at: i64,
    created_by: String,
    analysis: Option<String>,
    observed: Option<String>,
    running_operation: Option<i64>,
}

impl ClusterRow {
    pub(crate) fn into_cluster(self) -> StoreResult<Cluster> {
        let state: ClusterState = json_of(&self.state, "cluster state")?;
        Ok(Cluster {
            driver: DriverKind::from_str(&self.driver)
                .map_err(|_| corrupt(format_args!("driver {:?}", self.driver)))?,
            config: json_of(&self.config, "cluster config")?,
            slots: state.slot_views(),
            state,
            rollback_to: self
                .rollback_to
                .map(|r| FullId::parse(&r).map_err(|_| corrupt(format_args!("rollback_to {r:?}"))))
                .transpose()?,
            analysis: self
                .analysis
                .map(|a| json_of(&a, "cluster analysis"))
                .transpose()?
                .unwrap_or_default(),
            observed: self
                .observed
                .map(|o| json_of(&o, "cluster observation"))
                .transpose()?,
            state_event_id: self.state_event,
            state_since: Timestamp::from_micros(self.state_since),
            created_at: Timestamp::from_micros(self.created_at),
            created_by: self.created_by,
            running_operation: self.running_operation,
            name: self.name,
            environment: self.environment,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OperationRow {
    id: i64,
    cluster: String,
    kind: String,
    full_id: String,
    state: String,
    steps: String,
    next_step: i64,
    before: String,
    reason: Option<String>,
    actor: String,
    trigger: Option<String>,
    error: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
    pub(crate) lease_owner: Option<String>,
    intent: Option<String>,
    analysis: Option<String>,
    paused: Option<String>,
    bake_ms: Option<i64>,
}

impl OperationRow {
    pub(crate) fn into_operation(self) -> StoreResult<Operation> {
        let steps: Vec<StepRecord> = json_of(&self.steps, "operation steps")?;
        Ok(Operation {
            id: self.id,
            cluster: self.cluster,
            kind: OperationKind::from_str(&self.kind)
                .map_err(|_| corrupt(format_args!("kind {:?}", self.kind)))?,
            full_id: FullId::parse(&self.full_id)
                .map_err(|_| corrupt(format_args!("full id {:?}", self.full_id)))?,
            state: OperationState::from_str(&self.state)
                .map_err(|_| corrupt(format_args!("state {:?}", self.state)))?,
            next_step: usize::try_from(self.next_step)
                .map_err(|_| corrupt("negative next_step"))?,
            steps,
            before: json_of(&self.before, "operation before-state")?,
            reason: self.reason,
            actor: self.actor,
            trigger: self
                .trigger
                .map(|t| json_of::<Trigger>(&format!("\"{t}\""), "trigger"))
                .transpose()?,
            error: self.error,
            created_at: Timestamp::from_micros(self.created_at),
            finished_at: self.finished_at.map(Timestamp::from_micros),
            intent: self
                .intent
                .map(|i| json_of(&i, "operation intent"))
                .transpose()?,
            analysis: self
                .analysis
                .map(|a| json_of(&a, "operation analysis"))
                .transpose()?
                .unwrap_or_default(),
            paused: self
                .paused
                .map(|p| json_of(&p, "operation pause"))
                .transpose()?,
            bake_ms: self.bake_ms.and_then(|b| u64::try_from(b).ok()),
        })
    }
}

pub(crate) fn trigger_text(t: Option<Trigger>) -> Option<&'static str> {
    t.map(Trigger::as_str)
}

/// Implements `ClusterStore` for `$store`. Expanded inside `sql_store!`'s
/// `shared` module, where `Writer`, `fetch_version` and `fetch_policy` live.
macro_rules! cluster_sql {
    ($store:ident, $db:ty, $backend:ident) => {
        use $crate::store::clusters::{ClusterStore, OperationRequest};
        use $crate::store::clusters_sql as cq;
        use switchyard_domain::clusters::{self as cl, Cluster, ClusterState, NewCluster};
        use switchyard_domain::operations::{
            self as ops, Operation, OperationKind, OperationState, Progress, StepRecord, Trigger,
        };
        use switchyard_domain::analysis::{AnalysisTemplate, Decision};

        async fn fetch_cluster<'e, E>(db: E, name: &str) -> StoreResult<Option<Cluster>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_as::<_, cq::ClusterRow>(cq::SELECT_CLUSTER)
                .bind(name)
                .fetch_optional(db)
                .await?
                .map(cq::ClusterRow::into_cluster)
                .transpose()
        }

        async fn fetch_operation<'e, E>(db: E, id: i64) -> StoreResult<Option<(Operation, Option<String>)>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            match sqlx::query_as::<_, cq::OperationRow>(cq::SELECT_OPERATION).bind(id).fetch_optional(db).await? {
                None => Ok(None),
                Some(row) => {
                    let owner = row.lease_owner.clone();
                    Ok(Some((row.into_operation()?, owner)))
                }
            }
        }

        fn unknown_cluster(name: &str) -> $crate::store::StoreError {
            DomainError::NotFound(format!("cluster {name} does not exist")).into()
        }

        impl Writer {
            /// Writes the cluster's new slots and weights, set by event `event_id`.
            async fn set_cluster_state(&mut self, name: &str, state: &ClusterState, event_id: i64, at: Timestamp) -> StoreResult<()> {
                let value = cq::to_json(state)?;
                sqlx::query(cq::UPDATE_CLUSTER_STATE)
                    .bind(name)
                    .bind(&value)
                    .bind(event_id)
                    .bind(at.micros())
                    .execute(&mut *self.tx)
                    .await?;
                self.record_state(Subject::Cluster { name: name.to_owned() }, at, event_id, &value).await
            }

            async fn save_operation(&mut self, op: &Operation) -> StoreResult<()> {
                sqlx::query(cq::UPDATE_OPERATION)
                    .bind(op.id)
                    .bind(op.state.as_str())
                    .bind(cq::to_json(&op.steps)?)
                    .bind(op.next_step as i64)
                    .bind(cq::trigger_text(op.trigger))
                    .bind(&op.error)
                    .bind(op.finished_at.map(Timestamp::micros))
                    .bind(op.intent.as_ref().map(cq::to_json).transpose()?)
                    .bind(op.paused.as_ref().map(cq::to_json).transpose()?)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            /// Applies `progress` to `op` with its ledger event, the cluster's
            /// new state and, at the end, the rollback record; saves `op`.
            async fn progress(&mut self, op: &mut Operation, progress: Progress, at: Timestamp) -> StoreResult<()> {
                let id = op.id;
                let cluster = fetch_cluster(&mut *self.tx, &op.cluster).await?.ok_or_else(|| unknown_cluster(&op.cluster))?;
                let new_state = op.apply(&progress, &cluster.state, at)?;
                let base = NewEvent::new(at, "system", action::OPERATION_STEP)
                    .full_id(&op.full_id)
                    .environment(&cluster.environment)
                    .cluster(&op.cluster);
                let event = match &progress {
                    Progress::StepStarted { index } | Progress::StepDone { index, .. } | Progress::StepFailed { index, .. } => {
                        let r = &op.steps[*index];
                        let phase = match &progress {
                            Progress::StepStarted { .. } => "started",
                            Progress::StepDone { .. } => "done",
                            _ => "failed",
                        };
                        // The runner acts for whoever started the operation: say who, and why.
                        let reason = if phase == "failed" { r.note.clone() } else { Some(op.provenance()) };
                        Some(base.reason(reason.as_deref()).details(json!({
                            "operation_id": id,
                            "index": index,
                            "step": r.step.describe(),
                            "phase": phase,
                            "restore": r.restore,
                            "note": r.note,
                            "state": new_state,
                        })))
                    }
                    Progress::RestoreAdded { .. } => None,
                    Progress::Measured { index, measurement } => {
                        let conditions = op.analysis.iter().find(|t| t.name == measurement.template);
                        Some(NewEvent { action: action::OPERATION_MEASURED.to_owned(), ..base }
                            .reason(Some(&op.provenance()))
                            .details(json!({
                                "operation_id": id,
                                "index": index,
                                "template": measurement.template,
                                "query": measurement.query,
                                "value": measurement.value,
                                "verdict": measurement.verdict,
                                "note": measurement.note,
                                "measured_at": measurement.at,
                                "success": conditions.map(|t| &t.success),
                                "failure": conditions.map(|t| &t.failure),
                            })))
                    }
                    Progress::Paused { index, reason } => Some(
                        NewEvent { action: action::OPERATION_PAUSED.to_owned(), ..base }
                            .reason(Some(reason))
                            .details(json!({
                                "operation_id": id,
                                "index": index,
                                "step": op.steps[*index].step.describe(),
                                "measurements": op.steps[*index].measurements,
                            })),
                    ),
                    Progress::PauseRequested { by, reason } => {
                        let step = op.paused.as_ref().map(|p| p.step);
                        Some(NewEvent { action: action::OPERATION_PAUSED.to_owned(), actor: by.clone(), ..base }
                            .reason(Some(reason))
                            .details(json!({
                                "operation_id": id,
                                "index": step,
                                "step": step.and_then(|i| op.steps.get(i)).map(|r| r.step.describe()),
                                "by": by,
                            })))
                    }
                    Progress::Decided { index, decision, by, reason } => {
                        let a = match decision {
                            Decision::Continue => action::OPERATION_CONTINUED,
                            Decision::RollBack => action::OPERATION_ROLLBACK_CHOSEN,
                        };
                        Some(NewEvent { action: a.to_owned(), actor: by.clone(), ..base }
                            .reason(Some(reason))
                            .details(json!({
                                "operation_id": id,
                                "index": index,
                                "decision": decision,
                                "note": op.steps[*index].note,
                            })))
                    }
                    Progress::Finished { state, .. } => {
                        let a = match state {
                            OperationState::Succeeded => action::OPERATION_COMPLETED,
                            _ => action::OPERATION_FAILED,
                        };
                        Some(NewEvent { action: a.to_owned(), ..base }.reason(op.error.as_deref()).details(json!({
                            "operation_id": id,
                            "kind": op.kind,
                            "state": op.state,
                            "duration_ms": (at.micros() - op.created_at.micros()) / 1000,
                        })))
                    }
                };
                let event_id = match event {
                    Some(e) => Some(self.append(e).await?.id),
                    None => None,
                };
                if let (Some(state), Some(event_id)) = (&new_state, event_id) {
                    self.set_cluster_state(&op.cluster, state, event_id, at).await?;
                }
                if let Progress::Finished { state, .. } = progress {
                    let rolled_back = state == OperationState::RolledBack;
                    if rolled_back || op.kind == OperationKind::Rollback {
                        // Time to restore: from the failure (or the request) to traffic back.
                        let from = if rolled_back {
                            op.steps.iter().find(|r| r.state == ops::StepState::Failed).and_then(|r| r.finished_at)
                        } else {
                            Some(op.created_at)
                        };
                        let restored = op.steps.iter().rev().find(|r| r.step.moves_traffic()).and_then(|r| r.finished_at);
                        let ttr = from.zip(restored).map(|(a, b)| (b.micros() - a.micros()) / 1000);
                        self.append(
                            NewEvent::new(at, if rolled_back { "system" } else { op.actor.as_str() }, action::ROLLBACK)
                                .full_id(&op.full_id)
                                .environment(&cluster.environment)
                                .cluster(&op.cluster)
                                .reason(op.reason.as_deref().filter(|_| !rolled_back).or(op.error.as_deref()))
                                .details(json!({
                                    "operation_id": id,
                                    "trigger": op.trigger.unwrap_or(Trigger::Person),
                                    // The evidence an analysis rollback was decided on.
                                    "analysis": op.steps.iter().filter(|r| !r.measurements.is_empty()).map(|r| json!({
                                        "step": r.step.describe(),
                                        "measurements": r.measurements,
                                    })).collect::<Vec<_>>(),
                                    "templates": op.analysis.iter().map(|t| json!({
                                        "name": t.name, "success": t.success, "failure": t.failure,
                                        "failure_limit": t.failure_limit, "inconclusive_limit": t.inconclusive_limit,
                                    })).collect::<Vec<_>>(),
                                    "at": at,
                                    "time_to_restore_ms": ttr,
                                    "outcome": op.state,
                                    "serving": op.before.sole_version(),
                                })),
                        )
                        .await?;
                    }
                    if state == OperationState::Succeeded {
                        let back_to = op.before.sole_version().map(ToString::to_string);
                        sqlx::query(cq::UPDATE_ROLLBACK_TO).bind(&op.cluster).bind(back_to).execute(&mut *self.tx).await?;
                    }
                }
                self.save_operation(op).await
            }
        }

        #[async_trait::async_trait]
        impl ClusterStore for $store {
            async fn create_cluster(&self, new: NewCluster, actor: &str, at: Timestamp) -> StoreResult<Cluster> {
                let mut w = Writer::begin(self).await?;
                fetch_policy(&mut *w.tx, &new.environment).await?;
                if fetch_cluster(&mut *w.tx, &new.name).await?.is_some() {
                    return Err(DomainError::Conflict(format!("cluster {} already exists", new.name)).into());
                }
                let state = ClusterState::default();
                let ev = w
                    .append(
                        NewEvent::new(at, actor, action::CLUSTER_CREATED)
                            .environment(&new.environment)
                            .cluster(&new.name)
                            .details(json!({ "driver": new.driver.as_str(), "config": new.config, "state": state })),
                    )
                    .await?;
                sqlx::query(cq::INSERT_CLUSTER)
                    .bind(&new.name)
                    .bind(&new.environment)
                    .bind(new.driver.as_str())
                    .bind(new.config.to_string())
                    .bind(cq::to_json(&state)?)
                    .bind(ev.id)
                    .bind(at.micros())
                    .bind(at.micros())
                    .bind(actor)
                    .execute(&mut *w.tx)
                    .await?;
                w.record_state(Subject::Cluster { name: new.name.clone() }, at, ev.id, &cq::to_json(&state)?).await?;
                w.commit().await?;
                fetch_cluster(&self.pool, &new.name).await?.ok_or_else(|| unknown_cluster(&new.name))
            }

            async fn remove_cluster(&self, name: &str, actor: &str, at: Timestamp) -> StoreResult<()> {
                let mut w = Writer::begin(self).await?;
                let cluster = fetch_cluster(&mut *w.tx, name).await?.ok_or_else(|| unknown_cluster(name))?;
                if let Some(id) = cluster.running_operation {
                    return Err(DomainError::Conflict(format!(
                        "operation {id} is running on cluster {name}; wait for it to finish (or for its rollback) before removing the cluster"
                    ))
                    .into());
                }
                let (ran,): (i64,) = sqlx::query_as(cq::COUNT_OPERATIONS_OF).bind(name).fetch_one(&mut *w.tx).await?;
                if ran > 0 || cl::SlotName::ALL.iter().any(|s| cluster.state.version(*s).is_some()) {
                    return Err(DomainError::Conflict(format!(
                        "cluster {name} has run {ran} operation(s): its history answers \"what served at T\" and the audit, so it is kept; \
                         register the new setup under another name instead"
                    ))
                    .into());
                }
                let ev = w.append(
                    NewEvent::new(at, actor, action::CLUSTER_REMOVED)
                        .environment(&cluster.environment)
                        .cluster(name)
                        .details(json!({ "driver": cluster.driver.as_str(), "config": cluster.config })),
                )
                .await?;
                // Only the empty state rows of a cluster that never served anything.
                sqlx::query(cq::DELETE_STATE_OF).bind(Subject::Cluster { name: name.to_owned() }.key()).execute(&mut *w.tx).await?;
                sqlx::query(cq::DELETE_CLUSTER).bind(name).execute(&mut *w.tx).await?;
                w.record_state(Subject::RemovedCluster { name: name.to_owned() }, at, ev.id, "{}").await?;
                w.commit().await
            }

            async fn record_observation(
                &self,
                name: &str,
                state_event_id: i64,
                seen: Result<switchyard_domain::drift::Sighting, String>,
                at: Timestamp,
            ) -> StoreResult<$crate::store::clusters::ObservationOutcome> {
                use $crate::store::clusters::ObservationOutcome as Outcome;
                use switchyard_domain::drift::{self, Change, Observation};
                let mut w = Writer::begin(self).await?;
                let cluster = fetch_cluster(&mut *w.tx, name).await?.ok_or_else(|| unknown_cluster(name))?;
                if cluster.running_operation.is_some() || cluster.state_event_id != state_event_id {
                    return Ok(Outcome::Stale);
                }
                let before = cluster.observed.clone();
                let recorded = before.as_ref().map(|o| o.findings.clone()).unwrap_or_default();
                let mut next = Observation {
                    at,
                    seen: None,
                    unreadable: None,
                    findings: recorded.clone(),
                    event_id: before.as_ref().and_then(|o| o.event_id),
                    since: before.as_ref().and_then(|o| o.since),
                };
                let outcome = match seen {
                    Err(why) => {
                        next.unreadable = Some(why);
                        Outcome::Unreadable
                    }
                    Ok(sighting) => {
                        let pins = sqlx::query_as::<_, (String, String)>(cq::SELECT_PINS_OF)
                            .bind(&cluster.environment)
                            .fetch_all(&mut *w.tx)
                            .await?
                            .into_iter()
                            .map(|(m, v)| q::stored_full_id(&m, &v))
                            .collect::<StoreResult<Vec<FullId>>>()?;
                        let findings = drift::judge(&pins, &cluster.state, &sighting);
                        let change = Change::between(&recorded, &findings);
                        let details = json!({
                            "findings": findings,
                            "summary": drift::summary(&findings, &cluster.environment),
                            "previous": recorded,
                            "observed": sighting,
                            "recorded": cluster.state.slot_views(),
                            "pinned": pins.iter().filter(|p| {
                                findings.iter().chain(recorded.iter()).any(|f| f.serving().is_some_and(|s| s.model_id == p.model_id))
                            }).collect::<Vec<_>>(),
                        });
                        next.seen = Some(sighting);
                        let action = match change {
                            Change::Unchanged => None,
                            Change::Detected => Some(action::CLUSTER_DRIFT_DETECTED),
                            Change::Cleared => Some(action::CLUSTER_DRIFT_CLEARED),
                        };
                        match action {
                            None => Outcome::Unchanged,
                            Some(action) => {
                                // The model (and version) the drift is about, when it is one:
                                // what subscriptions filtered by model match.
                                let about = if findings.is_empty() { &recorded } else { &findings };
                                let mut served: Vec<&FullId> = about.iter().filter_map(|f| f.serving()).collect();
                                served.sort();
                                served.dedup();
                                let mut event = NewEvent::new(at, "system", action)
                                    .environment(&cluster.environment)
                                    .cluster(name)
                                    .details(details);
                                if let Some(first) = served.first() {
                                    if served.len() == 1 {
                                        event = event.full_id(first);
                                    } else if served.iter().all(|v| v.model_id == first.model_id) {
                                        event = event.model(&first.model_id);
                                    }
                                }
                                let ev = w.append(event).await?;
                                // What serving-at-T notes: the drift standing from then on.
                                w.record_state(
                                    Subject::ClusterDrift { name: name.to_owned() },
                                    at,
                                    ev.id,
                                    &cq::to_json(&findings)?,
                                )
                                .await?;
                                next.findings = findings.clone();
                                next.event_id = Some(ev.id);
                                next.since = Some(at);
                                Outcome::Recorded { event_id: ev.id, action, findings }
                            }
                        }
                    }
                };
                sqlx::query(cq::UPDATE_CLUSTER_OBSERVED)
                    .bind(name)
                    .bind(cq::to_json(&next)?)
                    .execute(&mut *w.tx)
                    .await?;
                w.commit().await?;
                Ok(outcome)
            }

            async fn list_clusters(&self) -> StoreResult<Vec<Cluster>> {
                sqlx::query_as::<_, cq::ClusterRow>(cq::SELECT_CLUSTERS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(cq::ClusterRow::into_cluster)
                    .collect()
            }

            async fn get_cluster(&self, name: &str) -> StoreResult<Option<Cluster>> {
                fetch_cluster(&self.pool, name).await
            }

            async fn start_operation(&self, request: OperationRequest, actor: &str, at: Timestamp) -> StoreResult<Operation> {
                let mut w = Writer::begin(self).await?;
                let cluster = fetch_cluster(&mut *w.tx, &request.cluster)
                    .await?
                    .ok_or_else(|| unknown_cluster(&request.cluster))?;
                if let Some((id, kind)) = sqlx::query_as::<_, (i64, String)>(cq::SELECT_RUNNING_OPERATION)
                    .bind(&cluster.name)
                    .fetch_optional(&mut *w.tx)
                    .await?
                {
                    return Err(DomainError::Conflict(format!(
                        "operation {id} ({kind}) is running on cluster {}; wait for it to finish",
                        cluster.name
                    ))
                    .into());
                }
                let target = match (request.kind, request.full_id) {
                    (OperationKind::Rollback, _) => cluster.rollback_to.clone().ok_or_else(|| {
                        DomainError::Conflict(format!("cluster {} has nothing to roll back to", cluster.name))
                    })?,
                    (_, Some(id)) => id,
                    (_, None) => return Err(DomainError::Invalid("full_id is required".to_owned()).into()),
                };
                let version = fetch_version(&mut *w.tx, &target).await?.ok_or_else(|| q::not_found_version(&target))?;
                if request.kind == OperationKind::Rollback {
                    // Going back to what served before is allowed even though a
                    // promotion has since deprecated it; a retired version never serves.
                    if version.stage == Stage::Retired {
                        return Err(DomainError::Retired(format!("{target} is retired and can never be deployed")).into());
                    }
                } else {
                    fetch_policy(&mut *w.tx, &cluster.environment)
                        .await?
                        .check_pin(&cluster.environment, &target, version.stage)?;
                }
                // Rollbacks are never blocked by a change freeze; everything else is,
                // unless an approved override is in force (recorded with the operation).
                let freeze_override = if request.kind == OperationKind::Rollback {
                    None
                } else {
                    super::release::check_not_frozen(
                        &mut *w.tx,
                        &cluster.environment,
                        &format!("operation {} of {target} on cluster {}", request.kind.as_str(), cluster.name),
                        at,
                    )
                    .await?
                };
                // The cluster's templates first, then the operation's own; a rollback is never gated.
                let mut names: Vec<&String> = Vec::new();
                if request.kind != OperationKind::Rollback {
                    names.extend(cluster.analysis.iter());
                }
                for n in &request.analysis {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                let mut analysis: Vec<AnalysisTemplate> = Vec::with_capacity(names.len());
                for name in names {
                    let text: Option<String> =
                        sqlx::query_scalar(cq::SELECT_TEMPLATE).bind(name).fetch_optional(&mut *w.tx).await?;
                    let text = text.ok_or_else(|| {
                        DomainError::NotFound(format!(
                            "analysis template {name} does not exist; an admin creates it with POST /api/v1/analysis-templates"
                        ))
                    })?;
                    analysis.push(cq::template_of(&text)?);
                }
                let pre_switch = request.kind != OperationKind::Rollback && analysis.iter().any(|t| t.pre_switch);
                // A rolling update on Kubernetes is the platform's own, in place (`Step::Roll`),
                // and so is every operation on an Argo Rollout.
                let in_place = cluster.driver.plans_in_place(request.kind, &cluster.config);
                let plan = if in_place {
                    if pre_switch {
                        return Err(DomainError::Invalid(format!(
                            "an operation on cluster {} updates the serving pods in place, giving {target} traffic \
                             as its pods start, so a `pre_switch` analysis template has no moment to measure it first",
                            cluster.name
                        ))
                        .into());
                    }
                    ops::plan_in_place(request.kind, &cluster.state, &target, &request.rolling_steps)?
                } else {
                    ops::plan(request.kind, &cluster.state, &target, &request.rolling_steps)?
                };
                let plan = ops::with_pre_switch_gate(&cluster.state, &target, plan, pre_switch);
                let plan = ops::with_analysis(request.kind, plan, !analysis.is_empty() || request.bake_ms.is_some())?;
                // In place, the other slot never held what served: nothing to release after the bake.
                let plan = if in_place { plan } else { ops::with_release(&cluster.state, plan, request.bake_ms.is_some()) };
                let steps: Vec<StepRecord> = plan.into_iter().map(StepRecord::pending).collect();
                let id: i64 = sqlx::query_scalar(cq::INSERT_OPERATION)
                    .bind(&cluster.name)
                    .bind(request.kind.as_str())
                    .bind(target.to_string())
                    .bind(cq::to_json(&steps)?)
                    .bind(cq::to_json(&cluster.state)?)
                    .bind(&request.reason)
                    .bind(actor)
                    .bind(at.micros())
                    .bind((!analysis.is_empty()).then(|| cq::to_json(&analysis)).transpose()?)
                    .bind(request.bake_ms.map(|b| b.min(ops::MAX_BAKE_MS) as i64))
                    .fetch_one(&mut *w.tx)
                    .await?;
                let plan_text: Vec<String> = steps.iter().map(|s| s.step.describe()).collect();
                w.append(
                    NewEvent::new(at, actor, action::OPERATION_STARTED)
                        .full_id(&target)
                        .environment(&cluster.environment)
                        .cluster(&cluster.name)
                        .reason(request.reason.as_deref())
                        .details(json!({
                            "operation_id": id,
                            "kind": request.kind,
                            "plan": plan_text,
                            "before": cluster.state,
                            "analysis": analysis,
                            "bake_ms": request.bake_ms,
                            "freeze_override": freeze_override,
                        })),
                )
                .await?;
                w.commit().await?;
                Ok(fetch_operation(&self.pool, id).await?.map(|(op, _)| op).ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("operation {id} vanished after it was written"))
                })?)
            }

            async fn get_operation(&self, id: i64) -> StoreResult<Option<Operation>> {
                Ok(fetch_operation(&self.pool, id).await?.map(|(op, _)| op))
            }

            async fn operations_by_id(&self, ids: &[i64]) -> StoreResult<Vec<Operation>> {
                let mut found = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let sql = cq::select_operations_in(chunk.len());
                    let mut query = sqlx::query_as::<_, cq::OperationRow>(&sql);
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    for row in query.fetch_all(&self.pool).await? {
                        found.push(row.into_operation()?);
                    }
                }
                Ok(found)
            }

            async fn claim_operation(&self, owner: &str, now: Timestamp, lease_until: Timestamp) -> StoreResult<Option<Operation>> {
                // A cheap read first, so idle servers polling take no write lock.
                let free: Option<i64> = sqlx::query_scalar(cq::CLAIMABLE).bind(now.micros()).fetch_optional(&self.pool).await?;
                if free.is_none() {
                    return Ok(None);
                }
                let previous: Option<(Option<String>, Option<i64>)> =
                    sqlx::query_as(cq::SELECT_LEASE).bind(free).fetch_optional(&self.pool).await?;
                let claim = match Backend::$backend {
                    Backend::Sqlite => cq::CLAIM_SQLITE,
                    Backend::Postgres => cq::CLAIM_POSTGRES,
                };
                let claimed: Option<i64> = sqlx::query_scalar(claim)
                    .bind(owner)
                    .bind(lease_until.micros())
                    .bind(now.micros())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(id) = claimed else { return Ok(None) };
                let Some((op, _)) = fetch_operation(&self.pool, id).await? else { return Ok(None) };
                let released = matches!(previous, Some((None, _)));
                if op.has_progress() && !released {
                    // Another runner (or this server before a restart) left it half-done:
                    // the ledger says where it stopped, then that it is resumed.
                    let mut w = Writer::begin(self).await?;
                    let (previous_runner, lease_expired_at) = match previous.filter(|_| free == Some(id)) {
                        Some((owner, until)) => (owner, until.map(Timestamp::from_micros)),
                        None => (None, None),
                    };
                    let at_step = op.steps.get(op.next_step);
                    w.append(
                        NewEvent::new(now, "system", action::OPERATION_INTERRUPTED)
                            .full_id(&op.full_id)
                            .cluster(&op.cluster)
                            .details(json!({
                                "operation_id": id,
                                "step": op.next_step,
                                "step_action": at_step.map(|r| r.step.describe()),
                                // `running`: stopped in the middle of the step; `pending`: between steps.
                                "step_state": at_step.map(|r| r.state),
                                "restore": at_step.is_some_and(|r| r.restore),
                                "previous_runner": previous_runner,
                                "lease_expired_at": lease_expired_at,
                            })),
                    )
                    .await?;
                    w.append(
                        NewEvent::new(now, "system", action::OPERATION_RESUMED)
                            .full_id(&op.full_id)
                            .cluster(&op.cluster)
                            .details(json!({ "operation_id": id, "next_step": op.next_step, "runner": owner })),
                    )
                    .await?;
                    w.commit().await?;
                }
                Ok(Some(op))
            }

            async fn renew_lease(&self, id: i64, owner: &str, lease_until: Timestamp) -> StoreResult<bool> {
                let n = sqlx::query(cq::RENEW_LEASE)
                    .bind(id)
                    .bind(owner)
                    .bind(lease_until.micros())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn record_progress(&self, id: i64, owner: &str, progress: Progress, at: Timestamp) -> StoreResult<Operation> {
                let mut w = Writer::begin(self).await?;
                let (mut op, lease_owner) = fetch_operation(&mut *w.tx, id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("operation {id} does not exist")))?;
                if lease_owner.as_deref() != Some(owner) {
                    return Err(DomainError::Conflict(format!(
                        "operation {id} is now run by another runner ({})",
                        lease_owner.as_deref().unwrap_or("none")
                    ))
                    .into());
                }
                let paused = matches!(progress, Progress::Paused { .. });
                w.progress(&mut op, progress, at).await?;
                if paused {
                    sqlx::query(cq::RELEASE_LEASE).bind(id).execute(&mut *w.tx).await?;
                }
                w.save_operation(&op).await?;
                w.commit().await?;
                Ok(op)
            }

            async fn decide_operation(
                &self,
                id: i64,
                decision: Decision,
                actor: &str,
                reason: &str,
                at: Timestamp,
            ) -> StoreResult<Operation> {
                let mut w = Writer::begin(self).await?;
                let (mut op, _) = fetch_operation(&mut *w.tx, id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("operation {id} does not exist")))?;
                let index = op.paused.as_ref().map(|p| p.step).ok_or_else(|| {
                    DomainError::Conflict(format!(
                        "operation {id} is {} and not paused; only an operation paused by an inconclusive analysis is continued or rolled back this way",
                        op.state.as_str()
                    ))
                })?;
                let progress = Progress::Decided { index, decision, by: actor.to_owned(), reason: reason.to_owned() };
                // The lease is left as it is: free already after an analysis
                // pause; after a person's pause, the runner that held it stops
                // at its next renewal, and the next runner waits for it to expire.
                w.progress(&mut op, progress, at).await?;
                w.commit().await?;
                Ok(op)
            }

            async fn pause_operation(&self, id: i64, actor: &str, reason: &str, at: Timestamp) -> StoreResult<Operation> {
                let mut w = Writer::begin(self).await?;
                let (mut op, _) = fetch_operation(&mut *w.tx, id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("operation {id} does not exist")))?;
                let progress = Progress::PauseRequested { by: actor.to_owned(), reason: reason.to_owned() };
                w.progress(&mut op, progress, at).await?;
                w.commit().await?;
                Ok(op)
            }

            async fn save_analysis_template(&self, template: AnalysisTemplate, actor: &str, reason: &str, at: Timestamp) -> StoreResult<bool> {
                template.check()?;
                switchyard_domain::text::required_reason(Some(reason))?;
                let mut w = Writer::begin(self).await?;
                let old: Option<String> =
                    sqlx::query_scalar(cq::SELECT_TEMPLATE).bind(&template.name).fetch_optional(&mut *w.tx).await?;
                let old = old.map(|t| cq::template_of(&t)).transpose()?;
                if old.as_ref() == Some(&template) {
                    return Ok(false);
                }
                let text = cq::to_json(&template)?;
                let sql = if old.is_some() { cq::UPDATE_TEMPLATE } else { cq::INSERT_TEMPLATE };
                sqlx::query(sql).bind(&template.name).bind(&text).bind(at.micros()).bind(actor).execute(&mut *w.tx).await?;
                w.append(
                    NewEvent::new(at, actor, action::ANALYSIS_TEMPLATE_SAVED)
                        .reason(Some(reason))
                        .details(json!({ "name": template.name, "template": template, "previous": old })),
                )
                .await?;
                w.commit().await?;
                Ok(true)
            }

            async fn list_analysis_templates(&self) -> StoreResult<Vec<AnalysisTemplate>> {
                let rows: Vec<String> = sqlx::query_scalar(cq::SELECT_TEMPLATES).fetch_all(&self.pool).await?;
                rows.iter().map(|t| cq::template_of(t)).collect()
            }

            async fn get_analysis_template(&self, name: &str) -> StoreResult<Option<AnalysisTemplate>> {
                let row: Option<String> = sqlx::query_scalar(cq::SELECT_TEMPLATE).bind(name).fetch_optional(&self.pool).await?;
                row.map(|t| cq::template_of(&t)).transpose()
            }

            async fn set_cluster_analysis(&self, cluster: &str, templates: Vec<String>, actor: &str, at: Timestamp) -> StoreResult<Cluster> {
                let mut w = Writer::begin(self).await?;
                let c = fetch_cluster(&mut *w.tx, cluster).await?.ok_or_else(|| unknown_cluster(cluster))?;
                for (i, name) in templates.iter().enumerate() {
                    if templates[..i].contains(name) {
                        return Err(DomainError::Invalid(format!("template {name} is named twice")).into());
                    }
                    let found: Option<String> =
                        sqlx::query_scalar(cq::SELECT_TEMPLATE).bind(name).fetch_optional(&mut *w.tx).await?;
                    if found.is_none() {
                        return Err(DomainError::NotFound(format!(
                            "analysis template {name} does not exist; an admin creates it with PUT /api/v1/analysis-templates/{name}"
                        ))
                        .into());
                    }
                }
                if c.analysis == templates {
                    return Ok(c);
                }
                let value = (!templates.is_empty()).then(|| cq::to_json(&templates)).transpose()?;
                sqlx::query(cq::UPDATE_CLUSTER_ANALYSIS).bind(cluster).bind(value).execute(&mut *w.tx).await?;
                w.append(
                    NewEvent::new(at, actor, action::CLUSTER_ANALYSIS_SET)
                        .environment(&c.environment)
                        .cluster(cluster)
                        .details(json!({ "analysis": templates, "previous": c.analysis })),
                )
                .await?;
                w.commit().await?;
                fetch_cluster(&self.pool, cluster).await?.ok_or_else(|| unknown_cluster(cluster))
            }

            async fn remove_analysis_template(&self, name: &str, actor: &str, reason: &str, at: Timestamp) -> StoreResult<()> {
                switchyard_domain::text::required_reason(Some(reason))?;
                let mut w = Writer::begin(self).await?;
                let attached: Vec<(String, String)> =
                    sqlx::query_as(cq::SELECT_CLUSTER_ANALYSIS).fetch_all(&mut *w.tx).await?;
                for (cluster, list) in attached {
                    let names: Vec<String> = serde_json::from_str(&list).unwrap_or_default();
                    if names.iter().any(|n| n == name) {
                        return Err(DomainError::Conflict(format!(
                            "cluster {cluster} runs analysis template {name} on every operation; detach it there first (PUT /api/v1/clusters/{cluster}/analysis)"
                        ))
                        .into());
                    }
                }
                let old: Option<String> =
                    sqlx::query_scalar(cq::SELECT_TEMPLATE).bind(name).fetch_optional(&mut *w.tx).await?;
                let old = old
                    .map(|t| cq::template_of(&t))
                    .transpose()?
                    .ok_or_else(|| DomainError::NotFound(format!("analysis template {name} does not exist")))?;
                sqlx::query(cq::DELETE_TEMPLATE).bind(name).execute(&mut *w.tx).await?;
                w.append(
                    NewEvent::new(at, actor, action::ANALYSIS_TEMPLATE_REMOVED)
                        .reason(Some(reason))
                        .details(json!({ "name": name, "template": old })),
                )
                .await?;
                w.commit().await?;
                Ok(())
            }

            async fn reconcile_operation(
                &self,
                id: i64,
                owner: &str,
                observed: Result<cl::Weights, String>,
                at: Timestamp,
            ) -> StoreResult<(Operation, Option<switchyard_domain::reconcile::Finding>)> {
                use switchyard_domain::reconcile::{self as rc, Finding};
                let mut w = Writer::begin(self).await?;
                let (mut op, lease_owner) = fetch_operation(&mut *w.tx, id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("operation {id} does not exist")))?;
                if lease_owner.as_deref() != Some(owner) {
                    return Err(DomainError::Conflict(format!(
                        "operation {id} is now run by another runner ({})",
                        lease_owner.as_deref().unwrap_or("none")
                    ))
                    .into());
                }
                let Some(intent) = op.intent.take() else {
                    return Ok((op, None));
                };
                let cluster = fetch_cluster(&mut *w.tx, &op.cluster).await?.ok_or_else(|| unknown_cluster(&op.cluster))?;
                let r = rc::reconcile(&intent, &cluster.state, observed.clone(), at)?;
                let step = op.steps.get(intent.step).map(|s| s.step.describe()).unwrap_or_default();
                let (t1, t2) = (intent.at, at);
                let reason = match &r.finding {
                    Finding::Switched => format!(
                        "the router already routed as \"{step}\" told it: it switched between {t1} (command about to be sent) and {t2} (router observed); in transition in between"
                    ),
                    Finding::NotSent => format!(
                        "the router still routed as before \"{step}\": the command never took effect; the step runs again"
                    ),
                    Finding::Elsewhere(w) => format!(
                        "the router routed blue {} / green {}, neither as before nor as \"{step}\" told it: in transition from {t1} to {t2}, then recorded as found",
                        w.blue, w.green
                    ),
                    Finding::Unknown(why) => format!(
                        "the router could not be asked ({why}): in transition since {t1} (command about to be sent) until the step is recorded"
                    ),
                };
                let ev = w
                    .append(
                        NewEvent::new(at, "system", action::OPERATION_RECONCILED)
                            .full_id(&op.full_id)
                            .environment(&cluster.environment)
                            .cluster(&op.cluster)
                            .reason(Some(&reason))
                            .details(json!({
                                "operation_id": id,
                                "step": intent.step,
                                "step_action": step,
                                "finding": r.finding.as_str(),
                                "intent": intent,
                                "observed": observed.as_ref().ok(),
                                "observe_error": observed.as_ref().err(),
                                "transition": r.transition.as_ref().map(|t| json!({
                                    "from": t1,
                                    "until": r.state.as_ref().map(|_| t2),
                                    "versions": t.versions(),
                                })),
                                "state": r.state,
                            })),
                    )
                    .await?;
                // The state row at `at` and the transition row at the intent's
                // time share the event; at one instant only the state is kept.
                if let Some(t) = r.transition.as_ref().filter(|_| r.state.is_none() || t1 < t2) {
                    let subject = Subject::Cluster { name: op.cluster.clone() };
                    w.record_state(subject, t1, ev.id, &cq::to_json(t)?).await?;
                }
                if let Some(state) = &r.state {
                    w.set_cluster_state(&op.cluster, state, ev.id, at).await?;
                }
                w.save_operation(&op).await?;
                w.commit().await?;
                Ok((op, Some(r.finding)))
            }

            async fn list_operations(&self, cluster: &str, limit: u32) -> StoreResult<Vec<Operation>> {
                sqlx::query_as::<_, cq::OperationRow>(cq::SELECT_OPERATIONS_OF)
                    .bind(cluster)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(cq::OperationRow::into_operation)
                    .collect()
            }

            async fn cluster_history(&self, cluster: &str) -> StoreResult<Vec<cl::ClusterChange>> {
                let key = Subject::Cluster { name: cluster.to_owned() }.key();
                sqlx::query_as::<_, q::StateAtRow>(cq::SELECT_CLUSTER_HISTORY)
                    .bind(&key)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| {
                        let state: ClusterState = serde_json::from_str(&row.value).map_err(|e| {
                            $crate::store::StoreError::Corrupt(format!("state history of cluster {cluster} is not valid: {e}"))
                        })?;
                        Ok(cl::ClusterChange {
                            at: Timestamp::from_micros(row.valid_from),
                            slots: state.slot_views(),
                            event_id: row.event_id,
                            actor: row.actor,
                            reason: row.reason,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use cluster_sql;
