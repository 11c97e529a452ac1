//! Analysis templates and operations paused by an inconclusive analysis, on
//! SQLite and PostgreSQL. The runner is the real one with the simulated
//! driver; its Prometheus is a closed port here (Prometheus down), which the
//! gate must take as inconclusive. Real Prometheus answers are tested in
//! server/tests/analysis.rs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchyard_domain::analysis::{AnalysisTemplate, Decision, Verdict};
use switchyard_domain::ledger::action;
use switchyard_domain::operations::{Operation, OperationKind, OperationState, Step, Trigger};
use switchyard_domain::{DomainError, Timestamp};

use super::clusters::{fast, request, serving_v1, state};
use super::{all_events, domain, run, TestDb};
use crate::drivers::Drivers;
use crate::operations::spawn;
use crate::store::DynStore;

contract_tests!(
    analysis_templates_are_checked_saved_replaced_and_removed_with_ledger_events,
    an_operation_names_only_existing_templates_and_keeps_a_copy_with_a_gate_after_the_switch,
    prometheus_down_pauses_the_operation_which_no_runner_claims_until_a_person_rolls_it_back,
    a_person_continues_a_paused_operation_past_its_gate_and_it_succeeds,
    a_runner_that_dies_mid_analysis_is_succeeded_by_one_that_keeps_the_measurements_made,
    a_person_pauses_a_running_analysis_no_runner_goes_on_and_rolling_back_restores_once,
);

fn template(name: &str, url: &str) -> AnalysisTemplate {
    AnalysisTemplate {
        name: name.into(),
        prometheus_url: url.into(),
        bearer_token_file: None,
        query: "sum(errors{model=\"{{model}}\",version=\"{{version}}\"})".into(),
        success: "result < 0.01".into(),
        failure: "result > 0.05".into(),
        interval_ms: 100,
        count: 2,
        failure_limit: 1,
        inconclusive_limit: 1,
        pre_switch: false,
    }
}

/// Nothing listens there: Prometheus is down.
const DOWN: &str = "http://127.0.0.1:9";

async fn analysis_templates_are_checked_saved_replaced_and_removed_with_ledger_events(
    db: Arc<TestDb>,
) {
    let s = &db.store;
    let t = template("errors", DOWN);
    assert!(s
        .save_analysis_template(t.clone(), "admin", "a reason", Timestamp::now())
        .await
        .unwrap());
    assert!(
        !s.save_analysis_template(t.clone(), "admin", "a reason", Timestamp::now())
            .await
            .unwrap(),
        "saving it unchanged writes nothing"
    );
    let changed = AnalysisTemplate {
        failure: "result > 0.1".into(),
        ..t.clone()
    };
    assert!(s
        .save_analysis_template(changed.clone(), "admin", "a reason", Timestamp::now())
        .await
        .unwrap());
    let bad = AnalysisTemplate {
        success: "result <".into(),
        name: "bad".into(),
        ..t.clone()
    };
    assert!(matches!(
        domain(s.save_analysis_template(bad, "admin", "a reason", Timestamp::now()).await),
        DomainError::Invalid(m) if m.starts_with("success: condition")
    ));
    assert_eq!(
        s.list_analysis_templates().await.unwrap(),
        vec![changed.clone()]
    );
    assert_eq!(s.get_analysis_template("bad").await.unwrap(), None);
    assert!(matches!(
        domain(s.save_analysis_template(template("other", DOWN), "admin", "  ", Timestamp::now()).await),
        DomainError::Invalid(m) if m == switchyard_domain::text::REASON_REQUIRED
    ));
    assert_eq!(s.get_analysis_template("other").await.unwrap(), None, "no reason, nothing saved");
    let saved: Vec<_> = all_events(&db)
        .await
        .into_iter()
        .filter(|e| e.action == action::ANALYSIS_TEMPLATE_SAVED)
        .collect();
    assert_eq!(saved.len(), 2);
    assert!(saved.iter().all(|e| e.reason.as_deref() == Some("a reason")), "{saved:?}");
    assert_eq!(
        saved[1].details["previous"]["failure"],
        json!("result > 0.05")
    );
    assert_eq!(
        saved[1].details["template"]["failure"],
        json!("result > 0.1")
    );
    assert!(matches!(
        domain(s.remove_analysis_template("errors", "admin", "", Timestamp::now()).await),
        DomainError::Invalid(m) if m == switchyard_domain::text::REASON_REQUIRED
    ));
    assert_eq!(s.list_analysis_templates().await.unwrap().len(), 1, "no reason, nothing removed");
    s.remove_analysis_template("errors", "admin", "retired", Timestamp::now())
        .await
        .unwrap();
    assert!(s.list_analysis_templates().await.unwrap().is_empty());
    assert!(matches!(
        domain(
            s.remove_analysis_template("errors", "admin", "a reason", Timestamp::now())
                .await
        ),
        DomainError::NotFound(_)
    ));
    let last = all_events(&db).await.pop().expect("events");
    assert_eq!(
        (last.action.as_str(), last.actor.as_str(), last.reason.as_deref()),
        (action::ANALYSIS_TEMPLATE_REMOVED, "admin", Some("retired"))
    );
}

async fn analysed(
    store: &DynStore,
    templates: &[&str],
) -> Result<Operation, crate::store::StoreError> {
    let mut r = request("dev-1", OperationKind::BlueGreen, Some("chat:2"));
    r.analysis = templates.iter().map(|t| (*t).to_owned()).collect();
    store.start_operation(r, "alice", Timestamp::now()).await
}

async fn an_operation_names_only_existing_templates_and_keeps_a_copy_with_a_gate_after_the_switch(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let t = template("errors", DOWN);
    db.store
        .save_analysis_template(t.clone(), "admin", "a reason", Timestamp::now())
        .await
        .unwrap();
    assert!(matches!(
        domain(analysed(&db.store, &["errors", "nope"]).await),
        DomainError::NotFound(m) if m.contains("analysis template nope does not exist")
    ));
    let op = analysed(&db.store, &["errors"]).await.expect("started");
    assert_eq!(op.analysis, vec![t.clone()]);
    assert_eq!(op.steps.last().map(|r| &r.step), Some(&Step::Gate));
    // Editing the template later does not change the operation's copy.
    let edited = AnalysisTemplate {
        count: 1,
        failure_limit: 1,
        ..t
    };
    db.store
        .save_analysis_template(edited, "admin", "a reason", Timestamp::now())
        .await
        .unwrap();
    let read = db
        .store
        .get_operation(op.id)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(read.analysis[0].count, 2);
    let started = all_events(&db)
        .await
        .into_iter()
        .rfind(|e| e.action == action::OPERATION_STARTED)
        .expect("started event");
    assert_eq!(
        started.details["analysis"][0]["query"],
        json!(read.analysis[0].query)
    );
}

/// Waits until the operation is paused (or fails the test if it ends).
async fn paused(store: &DynStore, op: i64) -> Operation {
    for _ in 0..400 {
        let o = store.get_operation(op).await.unwrap().expect("exists");
        assert!(
            !o.state.is_final(),
            "operation ended instead of pausing: {o:?}"
        );
        if o.paused.is_some() {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("operation {op} did not pause");
}

async fn prometheus_down_pauses_the_operation_which_no_runner_claims_until_a_person_rolls_it_back(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    db.store
        .save_analysis_template(template("errors", DOWN), "admin", "a reason", Timestamp::now())
        .await
        .unwrap();
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = analysed(&db.store, &["errors"]).await.expect("started");
    let p = paused(&db.store, op.id).await;
    let gate = p.steps.len() - 1;
    let pause = p.paused.clone().expect("paused");
    assert_eq!(pause.step, gate);
    assert!(
        pause.reason.contains("cannot reach Prometheus"),
        "{}",
        pause.reason
    );
    let m = &p.steps[gate].measurements;
    assert_eq!(m.len(), 1, "the inconclusive limit is 1");
    assert_eq!((m[0].verdict, m[0].value), (Verdict::Inconclusive, None));
    assert_eq!(m[0].query, "sum(errors{model=\"chat\",version=\"2\"})");
    // The switch happened; the old slot still holds chat:1 for an instant rollback.
    let now = state(&db, "dev-1").await;
    let live = now.weights.sole().expect("all traffic on one slot");
    assert_eq!(
        now.version(live).map(ToString::to_string),
        Some("chat:2".into())
    );
    assert_eq!(
        now.version(live.other()).map(ToString::to_string),
        Some("chat:1".into())
    );
    // No runner takes a paused operation, and it keeps the cluster.
    assert!(db
        .store
        .claim_operation("r2", Timestamp::now(), Timestamp::now())
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        domain(db.store.start_operation(request("dev-1", OperationKind::Rollback, None), "bob", Timestamp::now()).await),
        DomainError::Conflict(m) if m.contains(&format!("operation {}", op.id))
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        db.store
            .get_operation(op.id)
            .await
            .unwrap()
            .expect("exists")
            .paused
            .is_some(),
        "still paused"
    );

    db.store
        .decide_operation(
            op.id,
            Decision::RollBack,
            "bob",
            "Prometheus is down; not risking it",
            Timestamp::now(),
        )
        .await
        .expect("decided");
    assert!(matches!(
        domain(db.store.decide_operation(op.id, Decision::Continue, "bob", "again", Timestamp::now()).await),
        DomainError::Conflict(m) if m.contains("not paused")
    ));
    let done = super::clusters::finished(&db.store, op.id).await;
    runner.abort();
    assert_eq!(
        (done.state, done.trigger),
        (OperationState::RolledBack, Some(Trigger::Person))
    );
    assert_eq!(
        state(&db, "dev-1")
            .await
            .sole_version()
            .map(ToString::to_string),
        Some("chat:1".into())
    );
    let events = all_events(&db).await;
    let of = |a: &str| {
        events
            .iter()
            .filter(|e| e.action == a && e.details["operation_id"] == json!(op.id))
            .collect::<Vec<_>>()
    };
    assert_eq!(of(action::OPERATION_MEASURED).len(), 1);
    assert_eq!(
        of(action::OPERATION_MEASURED)[0].details["verdict"],
        json!("inconclusive")
    );
    assert_eq!(of(action::OPERATION_PAUSED).len(), 1);
    let chosen = of(action::OPERATION_ROLLBACK_CHOSEN);
    assert_eq!((chosen.len(), chosen[0].actor.as_str()), (1, "bob"));
    assert!(
        of(action::OPERATION_INTERRUPTED).is_empty(),
        "a pause is not a crash"
    );
    let rollback = of(action::ROLLBACK);
    assert_eq!(rollback.len(), 1, "one rollback");
    assert_eq!(rollback[0].details["trigger"], json!("person"));
    assert_eq!(
        rollback[0].details["analysis"][0]["measurements"][0]["verdict"],
        json!("inconclusive")
    );
}

async fn a_person_continues_a_paused_operation_past_its_gate_and_it_succeeds(db: Arc<TestDb>) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    db.store
        .save_analysis_template(template("errors", DOWN), "admin", "a reason", Timestamp::now())
        .await
        .unwrap();
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = analysed(&db.store, &["errors"]).await.expect("started");
    let p = paused(&db.store, op.id).await;
    let gate = p.steps.len() - 1;
    db.store
        .decide_operation(
            op.id,
            Decision::Continue,
            "bob",
            "checked the dashboards by hand",
            Timestamp::now(),
        )
        .await
        .expect("continued");
    let done = super::clusters::finished(&db.store, op.id).await;
    runner.abort();
    assert_eq!(done.state, OperationState::Succeeded);
    let note = done.steps[gate].note.clone().unwrap_or_default();
    assert!(
        note.contains("continued by bob") && note.contains("cannot reach Prometheus"),
        "{note}"
    );
    assert_eq!(
        state(&db, "dev-1")
            .await
            .sole_version()
            .map(ToString::to_string),
        Some("chat:2".into())
    );
    let continued = all_events(&db)
        .await
        .into_iter()
        .filter(|e| e.action == action::OPERATION_CONTINUED)
        .collect::<Vec<_>>();
    assert_eq!(
        (continued.len(), continued[0].reason.as_deref()),
        (1, Some("checked the dashboards by hand"))
    );
}

async fn a_runner_that_dies_mid_analysis_is_succeeded_by_one_that_keeps_the_measurements_made(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let t = AnalysisTemplate {
        interval_ms: 300,
        count: 3,
        failure_limit: 3,
        inconclusive_limit: 3,
        ..template("errors", DOWN)
    };
    db.store
        .save_analysis_template(t, "admin", "a reason", Timestamp::now())
        .await
        .unwrap();
    let first = spawn(db.store.clone(), drivers.clone(), fast());
    let op = analysed(&db.store, &["errors"]).await.expect("started");
    // Let it measure once, then kill it as a crash would.
    for _ in 0..400 {
        let o = db
            .store
            .get_operation(op.id)
            .await
            .unwrap()
            .expect("exists");
        if o.steps.last().is_some_and(|r| !r.measurements.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.abort();
    let second = spawn(db.store.clone(), drivers.clone(), fast());
    let p = paused(&db.store, op.id).await;
    second.abort();
    let gate = p.steps.len() - 1;
    assert_eq!(
        p.steps[gate].measurements.len(),
        3,
        "the measurements made before the crash count"
    );
    let events = all_events(&db).await;
    let of = |a: &str| {
        events
            .iter()
            .filter(|e| e.action == a && e.details["operation_id"] == json!(op.id))
            .count()
    };
    assert_eq!(of(action::OPERATION_MEASURED), 3);
    assert_eq!(of(action::OPERATION_INTERRUPTED), 1);
    assert_eq!(of(action::OPERATION_PAUSED), 1);
    assert_eq!(of(action::ROLLBACK), 0);
}

async fn a_person_pauses_a_running_analysis_no_runner_goes_on_and_rolling_back_restores_once(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    // A long analysis: one measurement a second, ten of them, Prometheus down but tolerated.
    let t = AnalysisTemplate {
        interval_ms: 1000,
        count: 10,
        failure_limit: 10,
        inconclusive_limit: 10,
        ..template("errors", DOWN)
    };
    db.store
        .save_analysis_template(t, "admin", "a reason", Timestamp::now())
        .await
        .unwrap();
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = analysed(&db.store, &["errors"]).await.expect("started");
    for _ in 0..400 {
        let o = db
            .store
            .get_operation(op.id)
            .await
            .unwrap()
            .expect("exists");
        if o.steps
            .last()
            .is_some_and(|r| r.state == switchyard_domain::operations::StepState::Running)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let p = db
        .store
        .pause_operation(op.id, "carol", "latency alert", Timestamp::now())
        .await
        .expect("paused");
    assert_eq!(
        p.paused.as_ref().and_then(|p| p.by.as_deref()),
        Some("carol")
    );
    assert!(matches!(
        domain(
            db.store
                .pause_operation(op.id, "carol", "again", Timestamp::now())
                .await
        ),
        DomainError::Conflict(_)
    ));
    // Its runner stops: no measurement is added while it is paused.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held = db
        .store
        .get_operation(op.id)
        .await
        .unwrap()
        .expect("exists");
    let gate = held.steps.len() - 1;
    let measured = held.steps[gate].measurements.len();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let still = db
        .store
        .get_operation(op.id)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(
        still.steps[gate].measurements.len(),
        measured,
        "nothing measured while paused"
    );
    assert!(still.paused.is_some() && still.state == OperationState::Running);

    db.store
        .decide_operation(
            op.id,
            Decision::RollBack,
            "dave",
            "real alert",
            Timestamp::now(),
        )
        .await
        .expect("rolled back");
    let done = super::clusters::finished(&db.store, op.id).await;
    runner.abort();
    assert_eq!(
        (done.state, done.trigger),
        (OperationState::RolledBack, Some(Trigger::Person))
    );
    assert_eq!(
        state(&db, "dev-1")
            .await
            .sole_version()
            .map(ToString::to_string),
        Some("chat:1".into())
    );
    let events = all_events(&db).await;
    let of = |a: &str| {
        events
            .iter()
            .filter(|e| e.action == a && e.details["operation_id"] == json!(op.id))
            .collect::<Vec<_>>()
    };
    let paused_by: Vec<&str> = of(action::OPERATION_PAUSED)
        .iter()
        .map(|e| e.actor.as_str())
        .collect();
    assert_eq!(paused_by, ["carol"]);
    assert_eq!(of(action::ROLLBACK).len(), 1);
}
