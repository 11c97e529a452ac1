//! Demo serving clusters (simulated driver, labelled so): a staging and a
//! production cluster with a short operation history — switches, a rolling
//! update stopped by its health gate, a rollback by a person — written
//! through the store as a runner would, dated after the rest of the demo.

use switchyard_domain::clusters::{DriverKind, NewCluster};
use switchyard_domain::operations::{
    restore_plan, OperationKind, OperationState, Progress, Trigger,
};
use switchyard_domain::{FullId, Stage, Timestamp};

use crate::store::clusters::OperationRequest;
use crate::store::Store;

/// How long each simulated action of a demo cluster takes.
const DEMO_ACTION_MS: u64 = 1200;

/// The model the demo's production cluster serves.
const PRODUCTION_MODEL: &str = "fraud-xgb";

/// Plays one operation with each write `step` apart from `at`; with
/// `fail_gate`, the first health gate fails and traffic is restored.
async fn play(
    store: &dyn Store,
    cluster: &str,
    kind: OperationKind,
    target: Option<&FullId>,
    (actor, reason): (&str, &str),
    at: &mut Timestamp,
    fail_gate: bool,
) -> anyhow::Result<()> {
    const STEP_MICROS: i64 = 4_000_000;
    let mut tick = || {
        *at = Timestamp::from_micros(at.micros() + STEP_MICROS);
        *at
    };
    let request = OperationRequest {
        cluster: cluster.to_owned(),
        kind,
        full_id: target.cloned(),
        rolling_steps: vec![10, 50, 100],
        reason: Some(reason.to_owned()),
        analysis: Vec::new(),
        bake_ms: None,
    };
    let started = tick();
    let op = store.start_operation(request, actor, started).await?;
    let lease = Timestamp::from_micros(started.micros() + 3_600_000_000);
    store.claim_operation("demo", started, lease).await?;
    let mut failed = false;
    for (index, record) in op.steps.iter().enumerate() {
        store
            .record_progress(op.id, "demo", Progress::StepStarted { index }, tick())
            .await?;
        if fail_gate && record.step == switchyard_domain::operations::Step::Gate {
            let error = "error rate 4.2% on the new version, over the 1% gate".to_owned();
            store
                .record_progress(op.id, "demo", Progress::StepFailed { index, error }, tick())
                .await?;
            failed = true;
            break;
        }
        store
            .record_progress(
                op.id,
                "demo",
                Progress::StepDone { index, note: None },
                tick(),
            )
            .await?;
    }
    let mut end = OperationState::Succeeded;
    if failed {
        let now = store
            .get_cluster(cluster)
            .await?
            .map(|c| c.state)
            .unwrap_or_default();
        if let Some(step) = restore_plan(&op.before, &now)? {
            let op = store
                .record_progress(
                    op.id,
                    "demo",
                    Progress::RestoreAdded {
                        step,
                        trigger: Trigger::HealthGate,
                    },
                    tick(),
                )
                .await?;
            let index = op.steps.len() - 1;
            store
                .record_progress(op.id, "demo", Progress::StepStarted { index }, tick())
                .await?;
            store
                .record_progress(
                    op.id,
                    "demo",
                    Progress::StepDone { index, note: None },
                    tick(),
                )
                .await?;
        }
        end = OperationState::RolledBack;
    }
    store
        .record_progress(
            op.id,
            "demo",
            Progress::Finished {
                state: end,
                error: None,
            },
            tick(),
        )
        .await?;
    Ok(())
}

/// Versions of one model admitted by `min` (staging admits staging and production), oldest first.
async fn admitted(store: &dyn Store, stages: &[Stage]) -> anyhow::Result<Vec<FullId>> {
    for model in store.list_models().await? {
        let mut versions: Vec<_> = store
            .list_versions(&model.model_id)
            .await?
            .into_iter()
            .filter(|v| stages.contains(&v.stage))
            .collect();
        if versions.len() >= 2 {
            versions.reverse();
            return Ok(versions.into_iter().map(|v| v.full_id).collect());
        }
    }
    Ok(Vec::new())
}

/// Writes the clusters and their history between `after` and `now`.
pub async fn fill(store: &dyn Store, after: Timestamp, now: Timestamp) -> anyhow::Result<usize> {
    let start = Timestamp::from_micros(after.micros().max(now.micros() - 6 * 3_600_000_000));
    let mut at = start;
    let versions = admitted(store, &[Stage::Staging, Stage::Production]).await?;
    let [a, b, ..] = versions.as_slice() else {
        return Ok(0);
    };
    let new = |name: &str, environment: &str| NewCluster {
        name: name.to_owned(),
        environment: environment.to_owned(),
        driver: DriverKind::Simulated,
        // Each simulated action takes a moment, so an operation started
        // from the console can be watched step by step: a switch to a version
        // already loaded takes two steps (~2.5 s), with a load four (~5 s).
        config: serde_json::json!({ "action_ms": DEMO_ACTION_MS }),
    };
    store
        .create_cluster(new("staging-eu", "staging"), "admin", at)
        .await?;
    let person = ("dave", "release train");
    play(
        store,
        "staging-eu",
        OperationKind::BlueGreen,
        Some(a),
        person,
        &mut at,
        false,
    )
    .await?;
    play(
        store,
        "staging-eu",
        OperationKind::Rolling,
        Some(b),
        ("dave", "canary"),
        &mut at,
        true,
    )
    .await?;
    play(
        store,
        "staging-eu",
        OperationKind::BlueGreen,
        Some(b),
        ("dave", "after the fix in the gateway"),
        &mut at,
        false,
    )
    .await?;
    play(
        store,
        "staging-eu",
        OperationKind::Rollback,
        None,
        ("dave", "latency up 30% in the smoke dashboard"),
        &mut at,
        false,
    )
    .await?;
    let mut count = 1;
    let production: Vec<FullId> = store
        .list_environments()
        .await?
        .into_iter()
        .filter(|e| e.name == "production")
        .flat_map(|e| e.pins.into_iter().map(|p| p.full_id))
        .collect();
    // prod-eu serves the production pin of fraud-xgb, whose staging version
    // the README's walk-through promotes and then deploys there.
    let served = production
        .iter()
        .find(|p| p.model_id.as_str() == PRODUCTION_MODEL)
        .or(production.first());
    if let Some(p) = served {
        store
            .create_cluster(new("prod-eu", "production"), "admin", at)
            .await?;
        play(
            store,
            "prod-eu",
            OperationKind::BlueGreen,
            Some(p),
            ("bob", "serve the production pin"),
            &mut at,
            false,
        )
        .await?;
        count += 1;
    }
    debug_assert!(at < now, "the demo's cluster history ends before now");
    Ok(count)
}
