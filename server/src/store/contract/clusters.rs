//! The cluster and operation part of the contract, on SQLite and PostgreSQL.
//! Operations run through the real runner with the simulated driver.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_domain::clusters::{ClusterState, DriverKind, NewCluster, SlotName, Weights};
use switchyard_domain::ledger::action;
use switchyard_domain::lifecycle::MoveVia;
use switchyard_domain::operations::{
    Operation, OperationKind, OperationState, Progress, StepState, Trigger,
};
use switchyard_domain::types::RequestRecord;
use switchyard_domain::{DomainError, Stage, Timestamp};

use super::{all_events, domain, id, in_production, move_to, register, run, TestDb, MANUAL};
use crate::drivers::Drivers;
use crate::operations::{spawn, RunnerSettings};
use crate::store::clusters::OperationRequest;
use crate::store::{AuditQuery, DynStore};

contract_tests!(
    request_records_are_checked_against_versions_clusters_and_the_ledger,
    a_new_cluster_serves_nothing_and_its_creation_is_in_the_ledger_and_state_history,
    an_operation_on_a_version_the_environment_does_not_allow_is_refused_before_anything_moves,
    two_concurrent_operations_on_one_cluster_exactly_one_runs,
    a_claimed_operation_is_not_claimed_again_until_its_lease_expires,
    a_blue_green_switch_moves_all_traffic_and_serving_at_answers_per_cluster_with_drift,
    a_version_that_fails_to_load_or_a_failing_smoke_request_aborts_with_traffic_unmoved,
    a_failing_health_gate_during_a_rolling_update_rolls_back_with_trigger_health_gate,
    a_rollback_sends_traffic_back_to_the_previous_version_and_is_recorded,
    a_runner_stopped_mid_operation_is_resumed_by_another_and_router_and_database_agree,
    a_router_switched_by_a_runner_that_died_before_recording_it_is_reconciled_as_a_transition,
    a_router_command_that_never_took_effect_is_reconciled_without_a_transition,
    a_router_that_cannot_be_asked_after_a_crash_leaves_the_transition_open,
    the_audit_log_filters_by_cluster,
    a_clusters_operations_list_newest_first_and_its_history_shows_each_state_it_held,
    a_cluster_that_never_ran_an_operation_is_removed_from_serving_at_and_one_running_one_is_kept,
    an_operation_on_a_cluster_that_updates_in_place_is_one_roll_of_the_serving_slot,
    each_change_of_observed_drift_is_recorded_once_even_by_two_watchers_at_once,
);

/// The drift watcher's looks (`record_observation`): a version changed by
/// hand is recorded once as `cluster.drift_detected` though two servers look
/// at the same moment, a look like the last one records nothing, an
/// unreadable driver and a look overtaken by an operation record no drift,
/// and setting the version back records `cluster.drift_cleared` once.
async fn each_change_of_observed_drift_is_recorded_once_even_by_two_watchers_at_once(
    db: Arc<TestDb>,
) {
    use crate::store::clusters::ObservationOutcome as Outcome;
    use switchyard_domain::drift::{Finding, Running, Sighting, SlotSeen};
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    db.store
        .set_pin("development", &id("chat:1"), None, "alice", Timestamp::now())
        .await
        .unwrap();
    let c = db.store.get_cluster("dev-1").await.unwrap().unwrap();
    assert_eq!(c.observed, None, "never looked at");
    let green = Weights::all_on(SlotName::Green);
    assert_eq!(c.state.weights, green);
    let sight = |runs: &str| Sighting {
        weights: green,
        slots: vec![
            SlotSeen {
                slot: SlotName::Blue,
                running: Running::Nothing,
            },
            SlotSeen {
                slot: SlotName::Green,
                running: Running::Version { version: id(runs) },
            },
        ],
    };
    let state_event = c.state_event_id;
    let look = |runs: Result<&str, &str>| {
        let store = db.store.clone();
        let seen = runs.map(sight).map_err(str::to_owned);
        async move {
            store
                .record_observation("dev-1", state_event, seen, Timestamp::now())
                .await
                .unwrap()
        }
    };
    let drift_events = || async {
        all_events(&db)
            .await
            .into_iter()
            .filter(|e| e.action.starts_with("cluster.drift_"))
            .collect::<Vec<_>>()
    };
    assert_eq!(look(Ok("chat:1")).await, Outcome::Unchanged, "as recorded and pinned");
    assert!(drift_events().await.is_empty());

    // Someone put chat:2 into the serving slot by hand; two servers look at once.
    let before_detected = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let (a, b) = tokio::join!(look(Ok("chat:2")), look(Ok("chat:2")));
    let recorded: Vec<&Outcome> = [&a, &b]
        .into_iter()
        .filter(|o| matches!(o, Outcome::Recorded { .. }))
        .collect();
    assert_eq!(recorded.len(), 1, "{a:?} {b:?}");
    assert!(a == Outcome::Unchanged || b == Outcome::Unchanged, "{a:?} {b:?}");
    let Outcome::Recorded { action: what, findings, event_id } = recorded[0].clone() else {
        unreachable!()
    };
    assert_eq!(what, action::CLUSTER_DRIFT_DETECTED);
    assert_eq!(
        findings,
        vec![
            Finding::ChangedByHand {
                slot: SlotName::Green,
                weight: 100,
                running: Running::Version { version: id("chat:2") },
                recorded: Some(id("chat:1")),
            },
            Finding::NotPinned {
                slot: SlotName::Green,
                weight: 100,
                serving: id("chat:2"),
                pinned: Some(id("chat:1")),
            },
        ]
    );
    assert_eq!(look(Ok("chat:2")).await, Outcome::Unchanged, "a third look");
    let events = drift_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(
        (ev.id, ev.actor.as_str(), ev.cluster.as_deref(), ev.environment.as_deref()),
        (event_id, "system", Some("dev-1"), Some("development"))
    );
    assert_eq!(
        (ev.model_id.as_deref(), ev.version.as_deref()),
        (Some("chat"), Some("2"))
    );
    assert_eq!(ev.details["observed"]["slots"][1]["running"]["version"], "chat:2");
    assert_eq!(ev.details["recorded"][1]["full_id"], "chat:1");
    assert_eq!(ev.details["pinned"], json!(["chat:1"]));
    assert!(
        ev.details["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("green (100%) runs chat:2; development pins chat:1"),
        "{}",
        ev.details
    );

    // Serving at T notes the drift observed by T and still standing.
    let after_detected = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let noted = |t: Timestamp| {
        let store = db.store.clone();
        async move {
            store
                .serving_at(t, None, None)
                .await
                .unwrap()
                .clusters
                .into_iter()
                .find(|c| c.cluster == "dev-1")
                .expect("dev-1 at T")
                .observed_drift
        }
    };
    assert_eq!(noted(before_detected).await, None);
    let standing = noted(after_detected).await.expect("noted after");
    assert_eq!((standing.findings, standing.event_id), (findings.clone(), event_id));

    // The driver cannot answer: no drift recorded or cleared, the reason kept for the page.
    assert_eq!(look(Err("connection refused")).await, Outcome::Unreadable);
    let o = db.store.get_cluster("dev-1").await.unwrap().unwrap().observed.unwrap();
    assert_eq!(o.unreadable.as_deref(), Some("connection refused"));
    assert_eq!((o.findings.len(), o.event_id), (2, Some(event_id)));
    // A look made before the recorded state last changed is not judged.
    let stale = db
        .store
        .record_observation("dev-1", c.state_event_id - 1, Ok(sight("chat:1")), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(stale, Outcome::Stale);
    assert_eq!(drift_events().await.len(), 1);

    // Set back: cleared once, though two servers look.
    let (a, b) = tokio::join!(look(Ok("chat:1")), look(Ok("chat:1")));
    let cleared: Vec<&Outcome> = [&a, &b]
        .into_iter()
        .filter(|o| matches!(o, Outcome::Recorded { action: what, .. } if *what == action::CLUSTER_DRIFT_CLEARED))
        .collect();
    assert_eq!(cleared.len(), 1, "{a:?} {b:?}");
    let events = drift_events().await;
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [action::CLUSTER_DRIFT_DETECTED, action::CLUSTER_DRIFT_CLEARED]
    );
    assert_eq!(events[1].version.as_deref(), Some("2"), "what the drift was about");
    let o = db.store.get_cluster("dev-1").await.unwrap().unwrap().observed.unwrap();
    assert!(o.findings.is_empty() && o.unreadable.is_none(), "{o:?}");
    assert_eq!(o.event_id, Some(events[1].id));
    assert_eq!(noted(Timestamp::now()).await, None, "cleared");
    assert!(noted(after_detected).await.is_some(), "it stood then");
    assert!(db.store.audit_verify().await.unwrap().ok);
}

/// Kubernetes clusters update in place (`DriverKind::plans_in_place`): a
/// rolling update of Deployments + Service, every operation on an Argo
/// Rollout, planned as one `roll` of the serving slot; what such a plan
/// cannot take is refused before anything is recorded. (Planned only: no
/// runner runs here, the kubernetes tests run them against the fake API.)
async fn an_operation_on_a_cluster_that_updates_in_place_is_one_roll_of_the_serving_slot(
    db: Arc<TestDb>,
) {
    use switchyard_domain::operations::Step;
    register(&db, "chat:1", super::at(0)).await;
    for (name, config) in [
        ("k8s-1", json!({ "service": "chat" })),
        ("argo-1", json!({ "rollout": "chat" })),
    ] {
        let new = NewCluster {
            name: name.into(),
            environment: "development".into(),
            driver: DriverKind::Kubernetes,
            config,
        };
        db.store
            .create_cluster(new, "admin", Timestamp::now())
            .await
            .expect("cluster created");
    }
    let events = all_events(&db).await.len();
    let mut r = request("argo-1", OperationKind::Rolling, Some("chat:1"));
    let e = domain(
        db.store
            .start_operation(r.clone(), "alice", Timestamp::now())
            .await,
    );
    assert!(
        matches!(&e, DomainError::Invalid(m) if m.contains("leave `steps` out")),
        "{e:?}"
    );
    r.kind = OperationKind::HotReload;
    r.rolling_steps = Vec::new();
    let e = domain(
        db.store
            .start_operation(r.clone(), "alice", Timestamp::now())
            .await,
    );
    assert!(
        matches!(&e, DomainError::Invalid(m) if m.contains("use blue_green")),
        "{e:?}"
    );
    // Deployments + Service: a rolling update needs something serving in place.
    let mut k = request("k8s-1", OperationKind::Rolling, Some("chat:1"));
    k.rolling_steps = Vec::new();
    let e = domain(
        db.store
            .start_operation(k.clone(), "alice", Timestamp::now())
            .await,
    );
    assert!(
        matches!(&e, DomainError::Conflict(m) if m.contains("blue_green first")),
        "{e:?}"
    );
    assert_eq!(all_events(&db).await.len(), events, "nothing recorded");
    // An Argo Rollout's first deploy: one roll of slot blue, then the bake's gate, no release.
    r.kind = OperationKind::BlueGreen;
    r.bake_ms = Some(1000);
    let op = db
        .store
        .start_operation(r, "alice", Timestamp::now())
        .await
        .expect("started");
    let steps: Vec<Step> = op.steps.iter().map(|s| s.step.clone()).collect();
    assert_eq!(
        steps,
        [
            Step::Roll {
                slot: SlotName::Blue,
                full_id: id("chat:1")
            },
            Step::Gate
        ]
    );
    // A blue-green switch of Deployments + Service loads the idle slot as before.
    k.kind = OperationKind::BlueGreen;
    let op = db
        .store
        .start_operation(k, "alice", Timestamp::now())
        .await
        .expect("started");
    assert!(
        matches!(op.steps[0].step, Step::Load { .. }),
        "{:?}",
        op.steps
    );
}

async fn a_cluster_that_never_ran_an_operation_is_removed_from_serving_at_and_one_running_one_is_kept(
    db: Arc<TestDb>,
) {
    let names = |s: &switchyard_domain::types::ServingAt| -> Vec<String> {
        s.clusters.iter().map(|c| c.cluster.clone()).collect()
    };
    cluster(&db, "typo", "development", json!({})).await;
    let created = Timestamp::now();
    // The temporal index is loaded with the cluster in it.
    let before = db
        .store
        .serving_at(Timestamp::now(), None, None)
        .await
        .unwrap();
    assert_eq!(names(&before), ["typo"]);
    db.store
        .remove_cluster("typo", "admin", Timestamp::now())
        .await
        .unwrap();
    assert!(db.store.get_cluster("typo").await.unwrap().is_none());
    let now = db
        .store
        .serving_at(Timestamp::now(), None, None)
        .await
        .unwrap();
    assert!(names(&now).is_empty(), "{:?}", names(&now));
    let then = db.store.serving_at(created, None, None).await.unwrap();
    assert!(names(&then).is_empty(), "{:?}", names(&then));
    let events = all_events(&db).await;
    assert_eq!(
        events
            .last()
            .map(|e| (e.action.as_str(), e.cluster.as_deref())),
        Some((action::CLUSTER_REMOVED, Some("typo")))
    );
    assert!(matches!(
        domain(
            db.store
                .remove_cluster("typo", "admin", Timestamp::now())
                .await
        ),
        DomainError::NotFound(_)
    ));
    // Added again: a fresh history.
    cluster(&db, "typo", "staging", json!({})).await;
    let again = db
        .store
        .serving_at(Timestamp::now(), None, None)
        .await
        .unwrap();
    assert_eq!(names(&again), ["typo"]);
    assert_eq!(db.store.cluster_history("typo").await.unwrap().len(), 1);

    register(&db, "chat:1", super::at(0)).await;
    cluster(&db, "dev-1", "development", json!({})).await;
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:1").await;
    match domain(
        db.store
            .remove_cluster("dev-1", "admin", Timestamp::now())
            .await,
    ) {
        DomainError::Conflict(why) => assert!(
            why.contains(&format!("operation {} is running", op.id)),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(db.store.get_cluster("dev-1").await.unwrap().is_some());
}

pub(super) fn fast() -> RunnerSettings {
    RunnerSettings {
        lease: Duration::from_millis(600),
        poll: Duration::from_millis(20),
        ready_timeout: Duration::from_secs(2),
    }
}

pub(super) async fn cluster(db: &TestDb, name: &str, env: &str, config: Value) {
    let new = NewCluster {
        name: name.into(),
        environment: env.into(),
        driver: DriverKind::Simulated,
        config,
    };
    db.store
        .create_cluster(new, "admin", Timestamp::now())
        .await
        .expect("cluster created");
}

pub(super) fn request(
    cluster: &str,
    kind: OperationKind,
    full_id: Option<&str>,
) -> OperationRequest {
    OperationRequest {
        cluster: cluster.into(),
        kind,
        full_id: full_id.map(id),
        rolling_steps: vec![10, 50, 100],
        reason: Some("test".into()),
        analysis: Vec::new(),
        bake_ms: None,
    }
}

pub(super) async fn start(
    store: &DynStore,
    cluster: &str,
    kind: OperationKind,
    full_id: &str,
) -> Operation {
    store
        .start_operation(
            request(cluster, kind, Some(full_id)),
            "alice",
            Timestamp::now(),
        )
        .await
        .expect("started")
}

/// Waits for the operation to end (the runner works in the background).
pub(super) async fn finished(store: &DynStore, op: i64) -> Operation {
    for _ in 0..500 {
        let o = store
            .get_operation(op)
            .await
            .expect("read")
            .expect("exists");
        if o.state.is_final() {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("operation {op} did not end");
}

pub(super) async fn state(db: &TestDb, name: &str) -> ClusterState {
    db.store
        .get_cluster(name)
        .await
        .expect("read")
        .expect("exists")
        .state
}

/// `chat:1` and `chat:2` registered (development) and the cluster `dev-1` serving chat:1 on blue.
pub(super) async fn serving_v1(db: &TestDb, drivers: &Drivers, config: Value) {
    register(db, "chat:1", super::at(0)).await;
    register(db, "chat:2", super::at(1)).await;
    cluster(db, "dev-1", "development", config).await;
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:1").await;
    assert_eq!(
        finished(&db.store, op.id).await.state,
        OperationState::Succeeded
    );
    runner.abort();
}

async fn request_records_are_checked_against_versions_clusters_and_the_ledger(db: Arc<TestDb>) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    in_production(&db, "old:1", super::at(2)).await;
    move_to(&db, "old:1", Stage::Deprecated, MANUAL, super::at(3)).await;
    db.store
        .change_stage(
            &id("old:1"),
            Stage::Retired,
            MoveVia::Manual { is_admin: true },
            Some("test"),
            "alice",
            super::at(4),
        )
        .await
        .expect("retired");
    let now = Timestamp::now();
    let live = db
        .store
        .get_cluster("dev-1")
        .await
        .unwrap()
        .unwrap()
        .state
        .weights
        .sole()
        .expect("one slot serves");
    let rec = |n: &str, full_id: &str, cluster: &str, slot: &str, at: Timestamp| RequestRecord {
        request_id: n.into(),
        at,
        cluster: cluster.into(),
        // "blue" is the live slot, "green" the idle one.
        slot: if slot == "blue" { live } else { live.other() }
            .as_str()
            .into(),
        full_id: id(full_id),
        latency_ms: 3.0,
        outcome: None,
    };
    let batch = [
        rec("ok", "chat:1", "dev-1", "blue", now),
        rec("future", "chat:1", "dev-1", "blue", now.plus_days(3000)),
        rec(
            "ancient",
            "chat:1",
            "dev-1",
            "blue",
            Timestamp::from_micros(0),
        ),
        rec("ghost", "ghost:9", "dev-1", "blue", now),
        rec("retired", "old:1", "dev-1", "blue", now),
        rec("elsewhere", "chat:1", "edge-9", "blue", now),
        rec("wrong-slot", "chat:1", "dev-1", "green", now),
        rec("wrong-version", "chat:2", "dev-1", "blue", now),
        rec("before-retirement", "old:1", "dev-1", "blue", super::at(3)),
    ];
    let check = db
        .store
        .check_request_records(&batch, now)
        .await
        .expect("checked");
    let refused: Vec<usize> = check.refused.iter().map(|(i, _)| *i).collect();
    assert_eq!(refused, [1, 2, 3, 4, 5], "{check:?}");
    for (i, word) in [
        (1, "future"),
        (2, "before the ledger"),
        (3, "not a registered"),
        (4, "retired"),
        (5, "edge-9"),
    ] {
        assert!(check.refused[i - 1].1.contains(word), "{i}: {check:?}");
    }
    let flagged: Vec<usize> = check.flagged.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        flagged,
        [6, 7, 8],
        "the slot held nothing, another version, nothing yet: {check:?}"
    );
    assert!(check.flagged[1].1.contains("held chat:1"), "{check:?}");
}

async fn a_new_cluster_serves_nothing_and_its_creation_is_in_the_ledger_and_state_history(
    db: Arc<TestDb>,
) {
    cluster(&db, "eu-1", "production", json!({})).await;
    let c = db.store.get_cluster("eu-1").await.unwrap().unwrap();
    assert_eq!(
        (c.environment.as_str(), c.driver, c.running_operation),
        ("production", DriverKind::Simulated, None)
    );
    assert_eq!(c.state, ClusterState::default());
    let events = all_events(&db).await;
    assert_eq!(
        events
            .last()
            .map(|e| (e.action.as_str(), e.cluster.as_deref())),
        Some((action::CLUSTER_CREATED, Some("eu-1")))
    );
    let dup = NewCluster {
        name: "eu-1".into(),
        environment: "staging".into(),
        driver: DriverKind::Simulated,
        config: json!({}),
    };
    assert!(matches!(
        domain(
            db.store
                .create_cluster(dup, "admin", Timestamp::now())
                .await
        ),
        DomainError::Conflict(_)
    ));
    let nowhere = NewCluster {
        name: "x".into(),
        environment: "moon".into(),
        driver: DriverKind::Simulated,
        config: json!({}),
    };
    assert!(matches!(
        domain(
            db.store
                .create_cluster(nowhere, "admin", Timestamp::now())
                .await
        ),
        DomainError::NotFound(_)
    ));
    let at = db
        .store
        .serving_at(Timestamp::now(), None, None)
        .await
        .unwrap();
    assert_eq!(at.clusters.len(), 1);
    assert!(at.clusters[0].slots.iter().all(|s| s.full_id.is_none()));
}

async fn an_operation_on_a_version_the_environment_does_not_allow_is_refused_before_anything_moves(
    db: Arc<TestDb>,
) {
    register(&db, "chat:1", super::at(0)).await;
    in_production(&db, "chat:2", super::at(1)).await;
    move_to(&db, "chat:2", Stage::Deprecated, MANUAL, super::at(2)).await;
    db.store
        .change_stage(
            &id("chat:2"),
            Stage::Retired,
            super::ADMIN,
            Some("gone"),
            "root",
            super::at(3),
        )
        .await
        .unwrap();
    cluster(&db, "stg", "staging", json!({})).await;
    let before = all_events(&db).await.len();
    let refused = |v: Option<&'static str>, kind| {
        let store = db.store.clone();
        async move {
            domain(
                store
                    .start_operation(request("stg", kind, v), "a", Timestamp::now())
                    .await,
            )
        }
    };
    let e = refused(Some("chat:1"), OperationKind::BlueGreen).await;
    assert!(
        matches!(e, DomainError::PolicyViolation(_)),
        "a development version in staging: {e:?}"
    );
    let e = refused(Some("chat:9"), OperationKind::Rolling).await;
    assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
    let e = refused(Some("chat:2"), OperationKind::HotReload).await;
    assert!(matches!(e, DomainError::Retired(_)), "{e:?}");
    let e = refused(None, OperationKind::Rollback).await;
    assert!(
        matches!(e, DomainError::Conflict(_)),
        "nothing to roll back to: {e:?}"
    );
    assert_eq!(all_events(&db).await.len(), before, "nothing was recorded");
    assert_eq!(state(&db, "stg").await, ClusterState::default());
}

async fn two_concurrent_operations_on_one_cluster_exactly_one_runs(db: Arc<TestDb>) {
    register(&db, "chat:1", super::at(0)).await;
    register(&db, "chat:2", super::at(0)).await;
    cluster(&db, "dev-1", "development", json!({})).await;
    let other = db.another_server().await;
    let (a, b) = tokio::join!(
        db.store.start_operation(
            request("dev-1", OperationKind::BlueGreen, Some("chat:1")),
            "alice",
            Timestamp::now()
        ),
        other.start_operation(
            request("dev-1", OperationKind::BlueGreen, Some("chat:2")),
            "bob",
            Timestamp::now()
        ),
    );
    let (won, lost) = match (a, b) {
        (Ok(op), Err(e)) | (Err(e), Ok(op)) => (op, e),
        (a, b) => panic!("expected exactly one to start: {a:?} / {b:?}"),
    };
    match domain(Err::<(), _>(lost)) {
        DomainError::Conflict(m) => assert!(
            m.contains(&format!("operation {}", won.id)),
            "names the running one: {m}"
        ),
        e => panic!("expected a conflict, got {e:?}"),
    }
    let c = db.store.get_cluster("dev-1").await.unwrap().unwrap();
    assert_eq!(c.running_operation, Some(won.id));
}

async fn a_claimed_operation_is_not_claimed_again_until_its_lease_expires(db: Arc<TestDb>) {
    register(&db, "chat:1", super::at(0)).await;
    cluster(&db, "dev-1", "development", json!({})).await;
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:1").await;
    let t = Timestamp::now();
    let lease = Timestamp::from_micros(t.micros() + 60_000_000);
    let other = db.another_server().await;
    let (a, b) = tokio::join!(
        db.store.claim_operation("r1", t, lease),
        other.claim_operation("r2", t, lease)
    );
    let claimed: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(claimed.len(), 1, "one claim wins");
    let started = |who: &'static str| {
        let store = db.store.clone();
        async move {
            store
                .record_progress(op.id, who, Progress::StepStarted { index: 0 }, t)
                .await
        }
    };
    let (r1, r2) = (started("r1").await, started("r2").await);
    let owner = if r1.is_ok() { "r1" } else { "r2" };
    let refused = if r1.is_ok() { r2 } else { r1 };
    assert!(
        matches!(domain(refused), DomainError::Conflict(_)),
        "the runner without the lease is refused"
    );
    // After expiry a third runner takes over, and the first is fenced off.
    let later = Timestamp::from_micros(lease.micros() + 1);
    let resumed = db
        .store
        .claim_operation(
            "r3",
            later,
            Timestamp::from_micros(later.micros() + 60_000_000),
        )
        .await
        .unwrap();
    assert_eq!(resumed.map(|o| o.id), Some(op.id));
    assert!(db
        .store
        .record_progress(
            op.id,
            owner,
            Progress::StepDone {
                index: 0,
                note: None
            },
            later
        )
        .await
        .is_err());
    assert!(all_events(&db)
        .await
        .iter()
        .any(|e| e.action == action::OPERATION_RESUMED));
}

async fn a_blue_green_switch_moves_all_traffic_and_serving_at_answers_per_cluster_with_drift(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let t1 = Timestamp::now();
    db.store
        .set_pin(
            "development",
            &id("chat:2"),
            None,
            "alice",
            Timestamp::now(),
        )
        .await
        .unwrap();
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:2").await;
    let op = finished(&db.store, op.id).await;
    runner.abort();
    assert_eq!(op.state, OperationState::Succeeded);
    assert!(op
        .steps
        .iter()
        .all(|s| s.state == StepState::Done && s.started_at.is_some() && s.finished_at.is_some()));
    let switch = op.steps.last().unwrap();
    assert!(
        switch
            .note
            .as_deref()
            .unwrap_or("")
            .contains("acknowledged"),
        "{switch:?}"
    );
    let s = state(&db, "dev-1").await;
    // A new cluster's router points at the empty blue, so chat:1 went to green and chat:2 to blue.
    assert_eq!(
        (s.blue, s.green, s.weights),
        (
            Some(id("chat:2")),
            Some(id("chat:1")),
            Weights::all_on(SlotName::Blue)
        )
    );
    assert_eq!(
        db.store
            .get_cluster("dev-1")
            .await
            .unwrap()
            .unwrap()
            .rollback_to,
        Some(id("chat:1"))
    );

    let before = db.store.serving_at(t1, None, None).await.unwrap();
    let c = &before.clusters[0];
    assert_eq!(
        c.slots
            .iter()
            .find(|s| s.weight == 100)
            .and_then(|s| s.full_id.clone()),
        Some(id("chat:1"))
    );
    assert!(c.next_change.is_some());
    assert_eq!(
        c.drift.len(),
        1,
        "chat:1 served while nothing was pinned: {c:?}"
    );
    let after = db
        .store
        .serving_at(Timestamp::now(), Some("development"), None)
        .await
        .unwrap();
    let c = &after.clusters[0];
    assert_eq!(
        c.slots
            .iter()
            .find(|s| s.weight == 100)
            .and_then(|s| s.full_id.clone()),
        Some(id("chat:2"))
    );
    assert!(c.drift.is_empty(), "serving the pin: {c:?}");
    assert_eq!(c.next_change, None);
    assert_eq!(c.actor, "system", "the runner wrote the step");
    assert_eq!(
        c.operation_id,
        Some(op.id),
        "the state names the operation whose step set it (gate results read only that)"
    );
    let read = db
        .store
        .operations_by_id(&[op.id, op.id + 1000])
        .await
        .unwrap();
    assert_eq!(
        read,
        vec![db.store.get_operation(op.id).await.unwrap().unwrap()],
        "one query for every id, unknown ids left out"
    );
    assert!(db.store.operations_by_id(&[]).await.unwrap().is_empty());
    let why = c.reason.as_deref().unwrap_or_default();
    assert!(
        why.starts_with("blue-green switch #") && why.contains(" to chat:2, started by "),
        "for whom: {why}"
    );
    super::register(&db, "embed:1", Timestamp::now()).await;
    let other_model = db
        .store
        .serving_at(Timestamp::now(), None, Some(&super::model("embed")))
        .await
        .unwrap();
    assert!(
        other_model.clusters.is_empty(),
        "a model filter leaves out clusters serving other models"
    );
    let events = all_events(&db).await;
    assert_eq!(
        events
            .iter()
            .find(|e| e.id == c.event_id)
            .map(|e| e.action.as_str()),
        Some(action::OPERATION_STEP)
    );
    assert!(events
        .iter()
        .any(|e| e.action == action::OPERATION_COMPLETED));
    assert!(db.store.audit_verify().await.unwrap().ok);
}

async fn a_version_that_fails_to_load_or_a_failing_smoke_request_aborts_with_traffic_unmoved(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(
        &db,
        &drivers,
        json!({ "fail_load": ["chat:2"], "fail_smoke": ["chat:3"] }),
    )
    .await;
    register(&db, "chat:3", super::at(2)).await;
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    for (v, failing) in [("chat:2", 0), ("chat:3", 2)] {
        let op = start(&db.store, "dev-1", OperationKind::BlueGreen, v).await;
        let op = finished(&db.store, op.id).await;
        assert_eq!(op.state, OperationState::Failed, "{v}: {op:?}");
        assert_eq!(op.steps[failing].state, StepState::Failed, "{v}");
        assert!(op.error.is_some());
        let s = state(&db, "dev-1").await;
        assert_eq!(
            (s.green.clone(), s.weights),
            (Some(id("chat:1")), Weights::all_on(SlotName::Green)),
            "{v}: traffic unmoved"
        );
    }
    runner.abort();
    assert!(
        all_events(&db)
            .await
            .iter()
            .filter(|e| e.action == action::OPERATION_FAILED)
            .count()
            == 2
    );
}

async fn a_failing_health_gate_during_a_rolling_update_rolls_back_with_trigger_health_gate(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({ "fail_gate_at": 50 })).await;
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = start(&db.store, "dev-1", OperationKind::Rolling, "chat:2").await;
    let op = finished(&db.store, op.id).await;
    runner.abort();
    assert_eq!(op.state, OperationState::RolledBack, "{op:?}");
    assert_eq!(op.trigger, Some(Trigger::HealthGate));
    assert!(op.steps.last().unwrap().restore);
    let s = state(&db, "dev-1").await;
    assert_eq!(s.sole_version(), Some(&id("chat:1")));
    let events = all_events(&db).await;
    let rb = events
        .iter()
        .rfind(|e| e.action == action::ROLLBACK)
        .expect("a rollback event");
    assert_eq!(rb.details["trigger"], "health_gate");
    assert_eq!(rb.details["outcome"], "rolled_back");
    assert!(rb.details["time_to_restore_ms"].is_i64(), "{}", rb.details);
    // The split was recorded in the history while it lasted.
    let splits = events
        .iter()
        .filter(|e| e.details["state"]["weights"]["green"] == 50)
        .count();
    assert_eq!(splits, 1);
}

async fn a_rollback_sends_traffic_back_to_the_previous_version_and_is_recorded(db: Arc<TestDb>) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:2").await;
    finished(&db.store, op.id).await;
    let rb = db
        .store
        .start_operation(
            request("dev-1", OperationKind::Rollback, None),
            "carol",
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(rb.full_id, id("chat:1"));
    assert_eq!(rb.steps.len(), 2, "no load: blue still holds chat:1");
    let rb = finished(&db.store, rb.id).await;
    runner.abort();
    assert_eq!(rb.state, OperationState::Succeeded);
    assert_eq!(
        state(&db, "dev-1").await.sole_version(),
        Some(&id("chat:1"))
    );
    let events = all_events(&db).await;
    let e = events
        .iter()
        .rfind(|e| e.action == action::ROLLBACK)
        .expect("a rollback event");
    assert_eq!(
        (e.actor.as_str(), e.details["trigger"].as_str()),
        ("carol", Some("person"))
    );
    assert_eq!(
        db.store
            .get_cluster("dev-1")
            .await
            .unwrap()
            .unwrap()
            .rollback_to,
        Some(id("chat:2"))
    );
}

async fn a_runner_stopped_mid_operation_is_resumed_by_another_and_router_and_database_agree(
    db: Arc<TestDb>,
) {
    // Each simulated action takes 150 ms, so the first runner is stopped mid-way.
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({ "action_ms": 150 })).await;
    let op = start(&db.store, "dev-1", OperationKind::HotReload, "chat:2").await;
    let steps = op.steps.len();
    for stop_after in [250_u64, 500, 750] {
        let runner = spawn(db.store.clone(), drivers.clone(), fast());
        tokio::time::sleep(Duration::from_millis(stop_after)).await;
        runner.abort();
        let o = db.store.get_operation(op.id).await.unwrap().unwrap();
        if o.state.is_final() {
            break;
        }
        // Let the lease expire, as after a crash.
        tokio::time::sleep(fast().lease).await;
    }
    let other = db.another_server().await;
    let runner = spawn(other.clone(), drivers.clone(), fast());
    let o = finished(&other, op.id).await;
    runner.abort();
    assert_eq!(o.state, OperationState::Succeeded, "{o:?}");
    assert_eq!(o.steps.len(), steps);
    let s = state(&db, "dev-1").await;
    assert_eq!(s.sole_version(), Some(&id("chat:2")));
    let cluster = db.store.get_cluster("dev-1").await.unwrap().unwrap();
    let observed = drivers
        .for_cluster(&cluster)
        .unwrap()
        .observe()
        .await
        .unwrap();
    assert_eq!(
        observed.weights, s.weights,
        "the router and the database agree"
    );
    let events = all_events(&db).await;
    assert!(events.iter().any(|e| e.action == action::OPERATION_RESUMED));
    // Each resumption follows an interruption naming the step and the runner that stopped.
    let interrupted: Vec<_> = events
        .iter()
        .filter(|e| e.action == action::OPERATION_INTERRUPTED)
        .collect();
    assert_eq!(
        interrupted.len(),
        events
            .iter()
            .filter(|e| e.action == action::OPERATION_RESUMED)
            .count()
    );
    for e in &interrupted {
        assert_eq!(e.details["operation_id"], op.id);
        assert!(
            e.details["step"].is_u64() && e.details["previous_runner"].is_string(),
            "{}",
            e.details
        );
        assert!(e.details["lease_expired_at"].is_string(), "{}", e.details);
    }
    assert!(db.store.audit_verify().await.unwrap().ok);
}

async fn the_audit_log_filters_by_cluster(db: Arc<TestDb>) {
    cluster(&db, "eu-1", "production", json!({})).await;
    cluster(&db, "us-1", "staging", json!({})).await;
    let of = |name: &str| {
        let q = AuditQuery {
            cluster: Some(name.to_owned()),
            ..Default::default()
        };
        let db = db.clone();
        async move { db.store.audit_page(&q).await.expect("audit page").events }
    };
    let eu = of("eu-1").await;
    assert_eq!(
        eu.iter()
            .map(|e| (e.action.as_str(), e.cluster.as_deref()))
            .collect::<Vec<_>>(),
        [(action::CLUSTER_CREATED, Some("eu-1"))]
    );
    let us = of("us-1").await;
    assert_eq!(
        us.iter().map(|e| e.cluster.as_deref()).collect::<Vec<_>>(),
        [Some("us-1")]
    );
    let unknown = AuditQuery {
        cluster: Some("nowhere".to_owned()),
        ..Default::default()
    };
    assert!(
        matches!(
            db.store.audit_page(&unknown).await,
            Err(crate::store::StoreError::Domain(DomainError::NotFound(m))) if m.contains("nowhere")
        ),
        "an unknown cluster is named, not answered with an empty page"
    );
}

async fn a_clusters_operations_list_newest_first_and_its_history_shows_each_state_it_held(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:2").await;
    finished(&db.store, op.id).await;
    runner.abort();
    let ops = db.store.list_operations("dev-1", 10).await.expect("listed");
    let ids: Vec<String> = ops.iter().map(|o| o.full_id.to_string()).collect();
    assert_eq!(ids, ["chat:2", "chat:1"], "newest first");
    assert_eq!(
        db.store
            .list_operations("dev-1", 1)
            .await
            .expect("listed")
            .len(),
        1,
        "the limit holds"
    );
    assert!(db
        .store
        .list_operations("nowhere", 10)
        .await
        .expect("listed")
        .is_empty());

    let history = db.store.cluster_history("dev-1").await.expect("history");
    assert!(
        history.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first"
    );
    // The timeline's cluster lanes, from the temporal index: the same
    // changes, cut to a window (with the one in force at its start).
    let chat = super::model("chat");
    let lanes = |start: Timestamp, end: Timestamp| {
        let store = db.store.clone();
        let chat = chat.clone();
        async move {
            store
                .clusters_serving(&chat, start, end)
                .await
                .expect("lanes")
        }
    };
    let all = lanes(Timestamp::from_micros(0), Timestamp::now().plus_days(1)).await;
    assert_eq!(
        all.iter()
            .map(|l| (l.cluster.as_str(), l.environment.as_str(), &l.history))
            .collect::<Vec<_>>(),
        [("dev-1", "development", &history)],
        "every change of the one cluster that served chat"
    );
    let (start, end) = (
        Timestamp::from_micros(history[1].at.micros() + 1),
        history[history.len() - 2].at,
    );
    let expected: Vec<_> = history
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            (c.at > start && c.at <= end)
                || (c.at <= start && history.get(i + 1).is_none_or(|n| n.at > start))
        })
        .map(|(_, c)| c.clone())
        .collect();
    assert_eq!(lanes(start, end).await[0].history, expected);
    assert!(
        lanes(Timestamp::from_micros(0), Timestamp::now())
            .await
            .iter()
            .all(|l| l.cluster == "dev-1"),
        "a cluster that never served chat has no lane"
    );
    assert!(db
        .store
        .clusters_serving(
            &super::model("embed"),
            Timestamp::from_micros(0),
            Timestamp::now()
        )
        .await
        .expect("lanes")
        .is_empty());
    let first = history.first().expect("the creation");
    assert!(
        first.slots.iter().all(|s| s.full_id.is_none()),
        "created serving nothing"
    );
    let serving = |c: &switchyard_domain::clusters::ClusterChange| -> Option<String> {
        c.slots
            .iter()
            .find(|s| s.weight == 100)
            .and_then(|s| s.full_id.as_ref())
            .map(ToString::to_string)
    };
    let mut served: Vec<String> = history.iter().filter_map(serving).collect();
    served.dedup();
    assert_eq!(
        served,
        ["chat:1", "chat:2"],
        "each version in the order it served"
    );
    let last = history.last().expect("a last state");
    let held: Vec<String> = last
        .slots
        .iter()
        .filter_map(|s| s.full_id.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(
        held.len(),
        2,
        "the previous version stays loaded as the rollback target: {held:?}"
    );
}

/// Runs `op`'s steps as a runner named `owner` would, up to and including
/// the start of step `upto` (its intent written), then "dies": when `send`,
/// the router got the command of step `upto`, but nothing more is recorded.
async fn die_in_step(
    db: &TestDb,
    drivers: &Drivers,
    op: &Operation,
    upto: usize,
    send: bool,
) -> Timestamp {
    let owner = "runner-that-dies";
    let now = Timestamp::now();
    let lease = Timestamp::from_micros(now.micros() + 300_000);
    let claimed = db
        .store
        .claim_operation(owner, now, lease)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claimed.id, op.id);
    let cluster = db.store.get_cluster(&op.cluster).await.unwrap().unwrap();
    let driver = drivers.for_cluster(&cluster).expect("driver");
    for index in 0..=upto {
        let o = db
            .store
            .record_progress(
                op.id,
                owner,
                Progress::StepStarted { index },
                Timestamp::now(),
            )
            .await
            .expect("started");
        if index == upto && !send {
            break;
        }
        let state = db
            .store
            .get_cluster(&op.cluster)
            .await
            .unwrap()
            .unwrap()
            .state;
        crate::operations::execute(
            driver.as_ref(),
            &o.steps[index].step,
            &state,
            &o.full_id,
            &fast(),
        )
        .await
        .expect("the step runs");
        if index == upto {
            break;
        }
        db.store
            .record_progress(
                op.id,
                owner,
                Progress::StepDone { index, note: None },
                Timestamp::now(),
            )
            .await
            .expect("done");
    }
    let o = db.store.get_operation(op.id).await.unwrap().unwrap();
    let intent = o
        .intent
        .expect("the intent is written before the router is told");
    assert_eq!(intent.step, upto);
    assert_eq!(Some(intent.at), o.steps[upto].started_at);
    // Lease expiry, as after kill -9.
    tokio::time::sleep(Duration::from_millis(350)).await;
    intent.at
}

fn reconciled(
    events: &[switchyard_domain::ledger::LedgerEvent],
) -> Vec<&switchyard_domain::ledger::LedgerEvent> {
    events
        .iter()
        .filter(|e| e.action == action::OPERATION_RECONCILED)
        .collect()
}

async fn a_router_switched_by_a_runner_that_died_before_recording_it_is_reconciled_as_a_transition(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:2").await;
    let shift = op
        .steps
        .iter()
        .position(|r| r.step.moves_traffic())
        .expect("a switch");
    let t1 = die_in_step(&db, &drivers, &op, shift, true).await;
    let recorded = state(&db, "dev-1").await;
    assert_eq!(
        recorded.sole_version(),
        Some(&id("chat:1")),
        "the database does not know yet"
    );
    // Meanwhile serving at T names only chat:1: the record is behind the router.
    let other = db.another_server().await;
    let runner = spawn(other.clone(), drivers.clone(), fast());
    let o = finished(&other, op.id).await;
    runner.abort();
    assert_eq!(o.state, OperationState::Succeeded, "{o:?}");
    assert_eq!(o.intent, None);
    let events = all_events(&db).await;
    let r = reconciled(&events);
    assert_eq!(r.len(), 1, "one reconciliation");
    let (e, t2) = (r[0], r[0].at);
    assert_eq!(e.details["finding"], "switched", "{}", e.details);
    assert_eq!(e.details["operation_id"], op.id);
    assert_eq!(e.details["step"], shift);
    assert!(
        e.reason
            .as_deref()
            .is_some_and(|r| r.contains("in transition")),
        "{:?}",
        e.reason
    );
    assert!(t1 < t2);
    // Inside [t1, t2): in transition, naming both versions; before: chat:1; from t2: chat:2.
    let cluster_at = |s: switchyard_domain::types::ServingAt| {
        s.clusters
            .into_iter()
            .find(|c| c.cluster == "dev-1")
            .expect("dev-1")
    };
    for t in [
        t1,
        Timestamp::from_micros((t1.micros() + t2.micros()) / 2),
        Timestamp::from_micros(t2.micros() - 1),
    ] {
        let c = cluster_at(db.store.serving_at(t, None, None).await.unwrap());
        let tr = c
            .transition
            .clone()
            .unwrap_or_else(|| panic!("in transition at {t}: {c:?}"));
        assert_eq!(tr.versions, [id("chat:1"), id("chat:2")]);
        assert_eq!((tr.since, tr.until), (t1, Some(t2)));
        assert_eq!(c.event_id, e.id);
    }
    let before = cluster_at(
        db.store
            .serving_at(Timestamp::from_micros(t1.micros() - 1), None, None)
            .await
            .unwrap(),
    );
    assert_eq!(before.transition, None);
    assert_eq!(
        ClusterState::from_slots(&before.slots)
            .unwrap()
            .sole_version(),
        Some(&id("chat:1"))
    );
    assert_eq!(
        before.next_change,
        Some(t1),
        "the old state ends where the transition begins"
    );
    let after = cluster_at(db.store.serving_at(t2, None, None).await.unwrap());
    assert_eq!(after.transition, None);
    assert_eq!(
        ClusterState::from_slots(&after.slots)
            .unwrap()
            .sole_version(),
        Some(&id("chat:2"))
    );
    // The other server's index sees it too, and the chain is intact.
    let c = cluster_at(other.serving_at(t1, None, None).await.unwrap());
    assert!(c.transition.is_some());
    assert!(db.store.audit_verify().await.unwrap().ok);
}

async fn a_router_command_that_never_took_effect_is_reconciled_without_a_transition(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:2").await;
    let shift = op
        .steps
        .iter()
        .position(|r| r.step.moves_traffic())
        .expect("a switch");
    let t1 = die_in_step(&db, &drivers, &op, shift, false).await;
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let o = finished(&db.store, op.id).await;
    runner.abort();
    assert_eq!(o.state, OperationState::Succeeded, "{o:?}");
    let events = all_events(&db).await;
    let r = reconciled(&events);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].details["finding"], "not_sent", "{}", r[0].details);
    assert!(r[0].details["transition"].is_null());
    let history = db.store.cluster_history("dev-1").await.unwrap();
    let done = o.steps[shift].finished_at.expect("done");
    for t in [t1, r[0].at, Timestamp::from_micros(done.micros() - 1)] {
        let s = db.store.serving_at(t, None, None).await.unwrap();
        let c = s
            .clusters
            .iter()
            .find(|c| c.cluster == "dev-1")
            .expect("dev-1");
        assert_eq!(c.transition, None, "at {t}");
        assert_eq!(
            ClusterState::from_slots(&c.slots).unwrap().sole_version(),
            Some(&id("chat:1")),
            "at {t}"
        );
    }
    assert_eq!(
        history.last().map(|h| h.at),
        Some(done),
        "chat:2 from the step's record on"
    );
}

async fn a_router_that_cannot_be_asked_after_a_crash_leaves_the_transition_open(db: Arc<TestDb>) {
    // The simulated router lives in a file; the runner that resumes finds it unreadable.
    let file = std::env::temp_dir().join(format!("sy-router-{:016x}.json", rand::random::<u64>()));
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({ "state_file": file })).await;
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:2").await;
    let shift = op
        .steps
        .iter()
        .position(|r| r.step.moves_traffic())
        .expect("a switch");
    let t1 = die_in_step(&db, &drivers, &op, shift, true).await;
    std::fs::write(&file, "not a router state").expect("file");
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let o = finished(&db.store, op.id).await;
    runner.abort();
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        o.state,
        OperationState::Failed,
        "the switch cannot be sent either: {o:?}"
    );
    assert_eq!(o.intent, None);
    let events = all_events(&db).await;
    let r = reconciled(&events);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].details["finding"], "unknown", "{}", r[0].details);
    assert!(
        r[0].details["observe_error"]
            .as_str()
            .is_some_and(|e| e.contains("not valid")),
        "{}",
        r[0].details
    );
    // Nothing later is known: serving at T from the command on says so, naming both.
    for t in [t1, r[0].at, Timestamp::now()] {
        let s = db.store.serving_at(t, None, None).await.unwrap();
        let c = s
            .clusters
            .iter()
            .find(|c| c.cluster == "dev-1")
            .expect("dev-1");
        let tr = c
            .transition
            .clone()
            .unwrap_or_else(|| panic!("in transition at {t}: {c:?}"));
        assert_eq!((tr.since, tr.until), (t1, None));
        assert_eq!(tr.versions, [id("chat:1"), id("chat:2")]);
    }
}
