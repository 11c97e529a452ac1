//! The operation runner: a background task in every server that claims
//! running operations from the database (a lease, so one runner works on an
//! operation at a time, across servers), runs their steps through the
//! cluster's driver — each step written before it runs and after — and, when
//! a step fails after traffic moved, restores what served before (trigger
//! `health_gate`). A runner that dies leaves its lease to expire; another
//! runner resumes the operation at the interrupted step (every step is safe
//! to run again: loads, readiness, smoke requests and weight changes).

use std::time::{Duration, Instant};

use switchyard_domain::analysis::{render_query, Measurement, Outcome, Subject};
use switchyard_domain::clusters::{SlotName, Weights};
use switchyard_domain::operations::{
    restore_plan, Operation, OperationState, Progress, Step, StepState,
};
use switchyard_domain::{FullId, Timestamp};
use tokio::task::{JoinHandle, JoinSet};

use crate::analysis::Prometheus;
use crate::drivers::{Driver, Drivers};
use crate::store::{DynStore, StoreError};

#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// How long a claim holds without renewal; after it, another runner may take over.
    pub lease: Duration,
    /// How often the database is asked for work.
    pub poll: Duration,
    /// Longest wait for a slot to become ready.
    pub ready_timeout: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            lease: Duration::from_secs(15),
            poll: Duration::from_millis(250),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

impl RunnerSettings {
    /// The defaults, with the lease and poll interval taken from
    /// `SWITCHYARD_OPERATION_LEASE_MS` (200–600000) and
    /// `SWITCHYARD_OPERATION_POLL_MS` (10–60000) when set. A shorter lease
    /// resumes an operation sooner after a crash, at the cost of more renewals.
    pub fn from_env() -> anyhow::Result<RunnerSettings> {
        let ms =
            |key: &str, range: std::ops::RangeInclusive<u64>| -> anyhow::Result<Option<Duration>> {
                match std::env::var(key).ok().filter(|v| !v.is_empty()) {
                    None => Ok(None),
                    Some(v) => match v.parse::<u64>() {
                        Ok(n) if range.contains(&n) => Ok(Some(Duration::from_millis(n))),
                        _ => anyhow::bail!(
                            "{key}={v:?} must be a number of milliseconds from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    },
                }
            };
        let d = RunnerSettings::default();
        Ok(RunnerSettings {
            lease: ms("SWITCHYARD_OPERATION_LEASE_MS", 200..=600_000)?.unwrap_or(d.lease),
            poll: ms("SWITCHYARD_OPERATION_POLL_MS", 10..=60_000)?.unwrap_or(d.poll),
            ..d
        })
    }
}

/// Starts the runner. Aborting the returned task stops every operation it
/// runs mid-step, as a crash would; their leases then expire.
pub fn spawn(store: DynStore, drivers: Drivers, settings: RunnerSettings) -> JoinHandle<()> {
    let owner = format!(
        "runner-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    tokio::spawn(async move {
        let mut running = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let now = Timestamp::now();
            match store
                .claim_operation(&owner, now, later(now, settings.lease))
                .await
            {
                Ok(Some(op)) => {
                    tracing::info!(operation = op.id, cluster = %op.cluster, kind = %op.kind, "operation claimed");
                    let (store, drivers, owner, settings) = (
                        store.clone(),
                        drivers.clone(),
                        owner.clone(),
                        settings.clone(),
                    );
                    running.spawn(async move { run(store, drivers, owner, settings, op).await });
                    continue; // there may be more
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot claim operations; trying again"),
            }
            tokio::time::sleep(settings.poll).await;
        }
    })
}

fn later(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_micros(t.micros() + i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2))
}

/// Why a run stopped before the operation ended.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("the lease was lost to another runner")]
    LeaseLost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn run(
    store: DynStore,
    drivers: Drivers,
    owner: String,
    settings: RunnerSettings,
    op: Operation,
) {
    let id = op.id;
    let lease = settings.lease;
    let work = drive(store.clone(), drivers, &owner, &settings, op);
    // Renew the lease while working; stop working if it is lost.
    let renew = async {
        loop {
            tokio::time::sleep(lease / 3).await;
            match store
                .renew_lease(id, &owner, later(Timestamp::now(), lease))
                .await
            {
                Ok(true) => {}
                Ok(false) => return Stop::LeaseLost,
                Err(e) => tracing::warn!(operation = id, error = %e, "cannot renew the lease"),
            }
        }
    };
    let outcome = tokio::select! {
        r = work => r,
        stop = renew => Err(stop),
    };
    match outcome {
        Ok(op) if op.paused.is_some() => {
            tracing::info!(operation = id, "operation paused for a person")
        }
        Ok(op) => tracing::info!(operation = id, state = op.state.as_str(), "operation ended"),
        Err(e) => {
            tracing::error!(operation = id, error = %e, "operation stopped; another runner will resume it")
        }
    }
}

/// Records progress as `owner`; a conflict means the lease went to another runner.
async fn record(store: &DynStore, owner: &str, op_id: i64, p: Progress) -> Result<Operation, Stop> {
    store
        .record_progress(op_id, owner, p, Timestamp::now())
        .await
        .map_err(|e| match e {
            StoreError::Domain(switchyard_domain::DomainError::Conflict(_)) => Stop::LeaseLost,
            e => Stop::Store(e),
        })
}

async fn drive(
    store: DynStore,
    drivers: Drivers,
    owner: &str,
    settings: &RunnerSettings,
    mut op: Operation,
) -> Result<Operation, Stop> {
    let record = |op_id: i64, p: Progress| record(&store, owner, op_id, p);
    let cluster = store.get_cluster(&op.cluster).await?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "operation {} names unknown cluster {}",
            op.id, op.cluster
        ))
    })?;
    let driver = match drivers.for_cluster(&cluster) {
        Ok(d) => d,
        Err(e) => {
            return record(
                op.id,
                Progress::Finished {
                    state: OperationState::Failed,
                    error: Some(e.to_string()),
                },
            )
            .await;
        }
    };
    if op.intent.is_some() {
        // The previous runner died between telling the router and recording
        // that it had: ask the router, and record what it really did.
        let observed = observe_router(driver.as_ref()).await;
        let at = Timestamp::now();
        let (reconciled, finding) = store
            .reconcile_operation(op.id, owner, observed, at)
            .await
            .map_err(|e| match e {
                StoreError::Domain(switchyard_domain::DomainError::Conflict(_)) => Stop::LeaseLost,
                e => Stop::Store(e),
            })?;
        if let Some(f) = finding {
            tracing::warn!(
                operation = op.id,
                finding = f.as_str(),
                "interrupted router command reconciled"
            );
        }
        op = reconciled;
    }
    loop {
        if let Some(step) = op.next().cloned() {
            let index = op.next_step;
            op = record(op.id, Progress::StepStarted { index }).await?;
            let state = store
                .get_cluster(&op.cluster)
                .await?
                .map(|c| c.state)
                .unwrap_or_default();
            // A load hands the driver the version's artifact_uri: model
            // servers that read versions themselves are told where from.
            let artifact_uri = match &step {
                Step::Load { full_id, .. } => store
                    .get_version(full_id)
                    .await?
                    .and_then(|v| v.artifact_uri),
                _ => None,
            };
            op = match execute_loading(
                driver.as_ref(),
                &step,
                &state,
                &op.full_id,
                settings,
                artifact_uri.as_deref(),
            )
            .await
            {
                Ok(note) if step == Step::Gate && !op.analysis.is_empty() => {
                    let (measured, end) = analyse(&store, owner, op, index, &state).await?;
                    op = measured;
                    match end {
                        GateEnd::Passed(summary) => {
                            let mut note = match note {
                                Some(n) => format!("{n}; {summary}"),
                                None => summary,
                            };
                            if let Some(baked) = bake(&op, index).await {
                                note = format!("{note}; {baked}");
                            }
                            record(
                                op.id,
                                Progress::StepDone {
                                    index,
                                    note: Some(note),
                                },
                            )
                            .await?
                        }
                        GateEnd::Failed(error) => {
                            tracing::warn!(operation = op.id, %error, "analysis failed; rolling back");
                            record(op.id, Progress::StepFailed { index, error }).await?
                        }
                        GateEnd::Inconclusive(reason) => {
                            tracing::warn!(operation = op.id, %reason, "analysis inconclusive; the operation waits for a person");
                            return record(op.id, Progress::Paused { index, reason }).await;
                        }
                    }
                }
                Ok(mut note) => {
                    if step == Step::Gate {
                        if let Some(baked) = bake(&op, index).await {
                            note = Some(
                                note.map_or_else(|| baked.clone(), |n| format!("{n}; {baked}")),
                            );
                        }
                    }
                    record(op.id, Progress::StepDone { index, note }).await?
                }
                Err(error) => {
                    tracing::warn!(operation = op.id, step = %step.describe(), %error, "step failed");
                    record(op.id, Progress::StepFailed { index, error }).await?
                }
            };
            continue;
        }
        // Nothing left to run: conclude, or restore first after a failure.
        let failed = |restore: bool| {
            if restore {
                op.steps
                    .iter()
                    .any(|r| r.state == StepState::Failed && r.restore)
            } else {
                op.must_restore_or_fail()
            }
        };
        let restored = op
            .steps
            .iter()
            .any(|r| r.restore && r.state == StepState::Done);
        let end = |state, error| Progress::Finished { state, error };
        let progress = if !failed(false) {
            end(OperationState::Succeeded, None)
        } else if failed(true) {
            end(
                OperationState::Failed,
                Some("restoring traffic failed; see the steps".to_owned()),
            )
        } else if restored {
            end(OperationState::RolledBack, None)
        } else {
            let now = store
                .get_cluster(&op.cluster)
                .await?
                .map(|c| c.state)
                .unwrap_or_default();
            match restore_plan(&op.before, &now) {
                Ok(None) => end(OperationState::Failed, None),
                Ok(Some(step)) => Progress::RestoreAdded {
                    step,
                    trigger: op.failure_trigger(),
                },
                Err(e) => end(OperationState::Failed, Some(e.to_string())),
            }
        };
        let finished = matches!(progress, Progress::Finished { .. });
        op = record(op.id, progress).await?;
        if finished {
            return Ok(op);
        }
    }
}

/// The router's weights now, asked up to three times (5 s each), or why not.
async fn observe_router(driver: &dyn Driver) -> Result<Weights, String> {
    let mut why = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        match tokio::time::timeout(Duration::from_secs(5), driver.observe()).await {
            Ok(Ok(o)) => return Ok(o.weights),
            Ok(Err(e)) => why = e.to_string(),
            Err(_) => why = "no answer within 5 s".to_owned(),
        }
    }
    Err(why)
}

/// Runs one step of an operation bringing `target` into service; `Ok`
/// carries a note worth keeping (the measured switch time, the error rate).
pub async fn execute(
    driver: &dyn Driver,
    step: &Step,
    state: &switchyard_domain::clusters::ClusterState,
    target: &FullId,
    settings: &RunnerSettings,
) -> Result<Option<String>, String> {
    execute_loading(driver, step, state, target, settings, None).await
}

/// [`execute`], with the `artifact_uri` of the version a load step loads.
pub async fn execute_loading(
    driver: &dyn Driver,
    step: &Step,
    state: &switchyard_domain::clusters::ClusterState,
    target: &FullId,
    settings: &RunnerSettings,
    artifact_uri: Option<&str>,
) -> Result<Option<String>, String> {
    let outcome = execute_step(driver, step, state, target, settings, artifact_uri).await;
    // What the driver wrote to the cluster goes into the step's record, done or failed.
    let writes = driver.take_writes();
    if writes.is_empty() {
        return outcome;
    }
    let wrote = writes.join("; ");
    match outcome {
        Ok(Some(note)) => Ok(Some(format!("{note}; {wrote}"))),
        Ok(None) => Ok(Some(wrote)),
        Err(e) => Err(format!("{e} (after: {wrote})")),
    }
}

async fn execute_step(
    driver: &dyn Driver,
    step: &Step,
    state: &switchyard_domain::clusters::ClusterState,
    target: &FullId,
    settings: &RunnerSettings,
    artifact_uri: Option<&str>,
) -> Result<Option<String>, String> {
    let r = match step {
        Step::Load { slot, full_id } => driver.load_from(*slot, full_id, artifact_uri).await,
        Step::WaitReady { slot, full_id } => {
            driver
                .wait_ready(*slot, full_id, settings.ready_timeout)
                .await
        }
        Step::Smoke { slot, full_id } => driver.smoke(*slot, full_id).await,
        Step::Roll { slot, full_id } => {
            let started = Instant::now();
            driver
                .roll(*slot, full_id, settings.ready_timeout)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Some(format!(
                "{full_id} rolled out in {slot} in {:.1} s",
                started.elapsed().as_secs_f64()
            )));
        }
        Step::Release { slot, full_id } => {
            // Run again after a crash, it finds the slot empty: unloading
            // nothing is fine for every driver.
            if state.weights.of(*slot) > 0 {
                return Err(format!(
                    "{slot} carries traffic again; {full_id} is not released"
                ));
            }
            driver.unload(*slot).await.map_err(|e| e.to_string())?;
            return Ok(Some(format!(
                "{full_id} unloaded from {slot}; a rollback now loads it again first"
            )));
        }
        Step::Gate => {
            driver.gate(state).await.map_err(|e| e.to_string())?;
            return error_rate_gate(driver, state, target).await.map(Some);
        }
        Step::Shift { weights } => {
            let started = Instant::now();
            driver.shift(*weights).await.map_err(|e| e.to_string())?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(Some(format!("router acknowledged in {ms:.2} ms")));
        }
    };
    r.map(|()| None).map_err(|e| e.to_string())
}

/// The error-rate half of the health gate: watches the requests the router
/// sends to the slots serving `target` for the policy's window and judges
/// their error rate (the readiness half is `Driver::gate`).
async fn error_rate_gate(
    driver: &dyn Driver,
    state: &switchyard_domain::clusters::ClusterState,
    target: &FullId,
) -> Result<String, String> {
    let policy = driver.gate_policy();
    let slots: Vec<SlotName> = state
        .serving()
        .into_iter()
        .filter(|(_, v, _)| *v == target)
        .map(|(s, _, _)| s)
        .collect();
    if slots.is_empty() {
        return Ok(format!(
            "{target} carries no traffic: error rate not judged"
        ));
    }
    if !driver.counts_traffic() {
        return Ok(format!(
            "{target} ready; error rate not judged: this cluster's router keeps no request \
             counters (judge it with an analysis template)"
        ));
    }
    let mut before = Vec::with_capacity(slots.len());
    for slot in &slots {
        before.push(
            driver
                .traffic(*slot)
                .await
                .map_err(|e| format!("cannot read the router's counters: {e}"))?,
        );
    }
    tokio::time::sleep(Duration::from_millis(policy.window_ms)).await;
    let mut notes = Vec::with_capacity(slots.len());
    for (slot, earlier) in slots.iter().zip(before) {
        let now = driver
            .traffic(*slot)
            .await
            .map_err(|e| format!("cannot read the router's counters: {e}"))?;
        notes.push(policy.judge(*slot, now.since(earlier))?);
    }
    Ok(notes.join("; "))
}

/// Waits out the bake time at the last gate (`operations::bake_until`);
/// says how long the new version baked. The lease is renewed meanwhile, and a
/// person's pause stops the wait with the runner.
async fn bake(op: &Operation, index: usize) -> Option<String> {
    if !op.is_last_gate(index) {
        return None;
    }
    let until = switchyard_domain::operations::bake_until(op)?;
    let left = until.micros() - Timestamp::now().micros();
    if left > 0 {
        tokio::time::sleep(Duration::from_micros(u64::try_from(left).unwrap_or(0))).await;
    }
    Some(format!(
        "baked {:.1} s after the switch, the previous version kept loaded",
        op.bake_ms.unwrap_or(0) as f64 / 1000.0
    ))
}

/// How a gate's analysis ended.
enum GateEnd {
    Passed(String),
    Failed(String),
    Inconclusive(String),
}

/// Runs the operation's analysis templates for gate step `index`, one after
/// the other, each measured at its interval until its outcome is known.
/// Every measurement is recorded before the next is taken, so a runner that
/// resumes the step after a crash continues from the measurements already
/// made (the first one it takes is due one interval after the last).
async fn analyse(
    store: &DynStore,
    owner: &str,
    mut op: Operation,
    index: usize,
    state: &switchyard_domain::clusters::ClusterState,
) -> Result<(Operation, GateEnd), Stop> {
    let prometheus = Prometheus::new();
    let slot = state
        .serving()
        .into_iter()
        .find(|(_, v, _)| **v == op.full_id)
        .map(|(s, _, _)| s)
        .or_else(|| {
            SlotName::ALL
                .into_iter()
                .find(|s| state.version(*s) == Some(&op.full_id))
        });
    let subject = Subject {
        cluster: op.cluster.clone(),
        slot: slot.map_or_else(String::new, |s| s.to_string()),
        model: op.full_id.model_id.to_string(),
        version: op.full_id.version.to_string(),
    };
    let mut passed = Vec::new();
    // Before the new version has traffic only the templates marked
    // `pre_switch` measure it; after, every template does.
    let pre_switch = switchyard_domain::operations::is_pre_switch(state, &op.full_id);
    let templates: Vec<_> = op
        .analysis
        .iter()
        .filter(|t| !pre_switch || t.pre_switch)
        .cloned()
        .collect();
    for t in templates {
        let interval = Duration::from_millis(t.interval_ms);
        loop {
            let measurements = &op.steps[index].measurements;
            match t.outcome(measurements) {
                Outcome::Measuring => {}
                Outcome::Passed(summary) => {
                    passed.push(summary);
                    break;
                }
                Outcome::Failed(why) => return Ok((op, GateEnd::Failed(why))),
                Outcome::Inconclusive(why) => return Ok((op, GateEnd::Inconclusive(why))),
            }
            let last = measurements.iter().rev().find(|m| m.template == t.name);
            let wait = match last {
                Some(m) => {
                    let since = Timestamp::now().micros() - m.at.micros();
                    interval
                        .saturating_sub(Duration::from_micros(u64::try_from(since).unwrap_or(0)))
                }
                None => interval,
            };
            tokio::time::sleep(wait).await;
            let (query, value) = match render_query(&t.query, &subject) {
                Ok(q) => {
                    let v = prometheus.measure(&t, &q).await;
                    (q, v)
                }
                Err(e) => (t.query.clone(), Err(e.to_string())),
            };
            let (verdict, note) = t.judge(&value);
            let measurement = Measurement {
                template: t.name.clone(),
                at: Timestamp::now(),
                query,
                value: value.ok().filter(|v| v.is_finite()),
                verdict,
                note,
            };
            tracing::info!(operation = op.id, template = %t.name, verdict = verdict.as_str(), value = ?measurement.value, "analysis measurement");
            op = record(
                store,
                owner,
                op.id,
                Progress::Measured { index, measurement },
            )
            .await?;
        }
    }
    Ok((op, GateEnd::Passed(passed.join("; "))))
}
