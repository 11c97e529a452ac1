//! The notification part of the contract, on SQLite and PostgreSQL:
//! subscriptions, the outbox written with the ledger event, claims (order,
//! leases, two servers), secrets and their rotation, the circuit breaker,
//! dead deliveries and redelivery.

use std::collections::HashSet;

use serde_json::json;
use switchyard_domain::ledger::action;
use switchyard_domain::{DomainError, Stage, Timestamp};

use super::{all_events, at, domain, move_to, register, run, TestDb, MANUAL};
use crate::store::notify::{
    AfterAttempt, Attempt, ClaimedDelivery, Configured, DeliveryStatus, DestinationKind, Filter,
    NewSubscription, SUBSCRIPTION_CREATED,
};

contract_tests!(
    each_event_a_filter_admits_gets_one_pending_delivery_written_with_it,
    subscriptions_are_listed_without_secrets_names_are_unique_and_delete_takes_their_deliveries,
    a_subscriptions_deliveries_are_claimed_one_at_a_time_in_event_order_and_leased,
    two_servers_claiming_at_once_never_get_the_same_delivery,
    a_failed_attempt_waits_for_its_retry_and_repeated_failures_pause_the_subscription,
    a_dead_delivery_lets_the_next_go_and_can_be_redelivered,
    rotated_secrets_sign_together_until_the_overlap_ends,
    a_test_message_is_queued_behind_the_subscriptions_pending_deliveries,
    a_dead_delivery_is_a_ledger_event_sent_to_the_other_subscriptions_only,
    a_subscription_failing_longer_than_the_alert_time_is_reported_once_and_its_recovery_too,
    a_batch_is_claimed_with_events_and_secrets_and_its_attempts_recorded_together_by_its_holder,
    runs_of_a_subscriptions_line_are_claimed_in_order_up_to_the_first_delivery_not_due_and_released_unsent,
    two_servers_claiming_runs_at_once_never_split_a_subscriptions_line,
    a_configured_subscription_is_created_updated_in_place_with_its_deliveries_or_left_alone,
    an_attempts_own_event_is_recorded_exactly_when_its_delivery_is_marked_delivered,
    a_parallel_subscriptions_deliveries_are_claimed_together_up_to_the_bound_past_a_failed_one_while_an_ordered_one_keeps_its_line,
    several_servers_claiming_a_parallel_subscription_at_once_get_each_delivery_once,
);

fn subscription(name: &str, filter: Filter) -> NewSubscription {
    NewSubscription {
        name: name.to_owned(),
        kind: DestinationKind::Webhook,
        url: format!("https://hooks.example.com/{name}"),
        filter,
        secret: crate::notify::new_secret(),
        options: serde_json::Value::Null,
        parallel: false,
    }
}

fn models(m: &[&str]) -> Filter {
    Filter {
        models: m.iter().map(|s| (*s).to_owned()).collect(),
        ..Filter::default()
    }
}

fn later(seconds: i64) -> Timestamp {
    Timestamp::from_micros(Timestamp::now().micros() + seconds * 1_000_000)
}

async fn claim(db: &TestDb, owner: &str, limit: u32) -> Vec<ClaimedDelivery> {
    db.store
        .claim_deliveries(owner, Timestamp::now(), later(30), limit)
        .await
        .expect("claim")
}

fn event_ids(claimed: &[ClaimedDelivery]) -> Vec<Option<i64>> {
    claimed.iter().map(|c| c.delivery.event_id).collect()
}

fn delivered() -> Attempt {
    Attempt {
        response_code: Some(200),
        latency_ms: 3,
        error: None,
        next: AfterAttempt::Delivered,
        failing_alert_after: std::time::Duration::from_secs(3600),
        record: None,
    }
}

fn failed(retry_in_seconds: i64, breaker_threshold: i64) -> Attempt {
    Attempt {
        response_code: Some(500),
        latency_ms: 4,
        error: Some("HTTP 500: boom".into()),
        next: AfterAttempt::RetryAt {
            at: later(retry_in_seconds),
            breaker_threshold,
            pause_until: later(60),
        },
        failing_alert_after: std::time::Duration::from_secs(3600),
        record: None,
    }
}

async fn each_event_a_filter_admits_gets_one_pending_delivery_written_with_it(
    db: std::sync::Arc<TestDb>,
) {
    let chat = db
        .store
        .create_subscription(subscription("chat-only", models(&["chat"])), "admin", at(0))
        .await
        .expect("create");
    let staged = Filter {
        events: vec![action::STAGE_CHANGED.into()],
        ..Filter::default()
    };
    let stages = db
        .store
        .create_subscription(subscription("stages", staged), "admin", at(0))
        .await
        .expect("create");
    register(&db, "chat:v1", at(1)).await;
    register(&db, "other:v1", at(2)).await;
    move_to(&db, "chat:v1", Stage::Staging, MANUAL, at(3)).await;
    let events = all_events(&db).await;
    let id_of = |act: &str, model: &str| {
        events
            .iter()
            .find(|e| e.action == act && e.model_id.as_deref() == Some(model))
            .map(|e| e.id)
            .unwrap_or_else(|| panic!("no {act} of {model}"))
    };
    assert!(
        events.iter().any(|e| e.action == SUBSCRIPTION_CREATED),
        "subscription changes are audited"
    );
    let to_chat = db
        .store
        .recent_deliveries(chat.id, 10)
        .await
        .expect("deliveries");
    // The default kinds: the registration, not the stage change.
    assert_eq!(
        to_chat.iter().map(|d| d.event_id).collect::<Vec<_>>(),
        vec![Some(id_of(action::VERSION_REGISTERED, "chat"))]
    );
    let d = &to_chat[0];
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0));
    assert_eq!(
        d.message_id,
        format!("evt_{}", id_of(action::VERSION_REGISTERED, "chat"))
    );
    let to_stages = db
        .store
        .recent_deliveries(stages.id, 10)
        .await
        .expect("deliveries");
    assert_eq!(
        to_stages.iter().map(|d| d.event_id).collect::<Vec<_>>(),
        vec![Some(id_of(action::STAGE_CHANGED, "chat"))]
    );
    // A write that is refused writes no delivery either.
    let conflicting = super::new_version("chat:v1", json!({ "temperature": 0.9 }), None);
    domain(db.store.register_version(conflicting, "ci", at(4)).await);
    assert_eq!(
        db.store
            .recent_deliveries(chat.id, 10)
            .await
            .expect("deliveries")
            .len(),
        1
    );
    let stats = db.store.queue_stats().await.expect("stats");
    assert_eq!((stats.pending, stats.dead), (2, 0));
    assert!(stats.oldest_pending.is_some());
}

async fn subscriptions_are_listed_without_secrets_names_are_unique_and_delete_takes_their_deliveries(
    db: std::sync::Arc<TestDb>,
) {
    let new = subscription("ops", Filter::default());
    let secret = new.secret.clone();
    let created = db
        .store
        .create_subscription(new, "admin", at(0))
        .await
        .expect("create");
    assert_eq!(
        (
            created.name.as_str(),
            created.kind,
            created.created_by.as_str()
        ),
        ("ops", DestinationKind::Webhook, "admin")
    );
    assert!(matches!(
        domain(
            db.store
                .create_subscription(subscription("ops", Filter::default()), "admin", at(1))
                .await
        ),
        DomainError::Conflict(_)
    ));
    let listed = db.store.list_subscriptions().await.expect("list");
    assert_eq!(listed.len(), 1);
    let shown = serde_json::to_string(&listed).expect("json");
    assert!(
        !shown.contains(&secret) && !shown.contains("hooks.example.com"),
        "{shown}"
    );
    register(&db, "chat:v1", at(2)).await;
    assert_eq!(
        db.store
            .recent_deliveries(created.id, 10)
            .await
            .expect("deliveries")
            .len(),
        1
    );
    assert!(db
        .store
        .delete_subscription("ops", "admin", at(3))
        .await
        .expect("delete"));
    assert!(!db
        .store
        .delete_subscription("ops", "admin", at(3))
        .await
        .expect("delete"));
    assert!(db
        .store
        .get_subscription("ops")
        .await
        .expect("get")
        .is_none());
    assert_eq!(
        db.store
            .recent_deliveries(created.id, 10)
            .await
            .expect("deliveries")
            .len(),
        0
    );
    assert_eq!(db.store.queue_stats().await.expect("stats").pending, 0);
    register(&db, "chat:v2", at(4)).await;
    assert!(claim(&db, "w", 10).await.is_empty());
}

async fn a_subscriptions_deliveries_are_claimed_one_at_a_time_in_event_order_and_leased(
    db: std::sync::Arc<TestDb>,
) {
    let a = db
        .store
        .create_subscription(subscription("a", models(&["chat"])), "admin", at(0))
        .await
        .expect("create");
    db.store
        .create_subscription(subscription("b", models(&["other"])), "admin", at(0))
        .await
        .expect("create");
    for v in 1..=3 {
        register(&db, &format!("chat:v{v}"), at(v)).await;
    }
    register(&db, "other:v1", at(5)).await;
    let first = claim(&db, "w1", 10).await;
    assert_eq!(first.len(), 2, "the head of each subscription's line");
    let a_first = first
        .iter()
        .find(|c| c.subscription.id == a.id)
        .expect("a's first");
    let a_all = db
        .store
        .recent_deliveries(a.id, 10)
        .await
        .expect("deliveries");
    let oldest = a_all.iter().map(|d| d.id).min().expect("some");
    assert_eq!(a_first.delivery.id, oldest);
    assert_eq!(a_first.delivery.attempts, 1);
    let ev = a_first
        .event
        .as_ref()
        .expect("the event travels with the claim");
    assert_eq!(
        (ev.action.as_str(), ev.version.as_deref()),
        (action::VERSION_REGISTERED, Some("v1"))
    );
    assert_eq!(a_first.secrets.len(), 1);
    // Leased: another worker gets nothing, and a's later events wait for its first.
    assert!(claim(&db, "w2", 10).await.is_empty());
    // Only the holder of the lease records the attempt.
    assert!(!db
        .store
        .finish_delivery(a_first.delivery.id, "w2", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    assert!(db
        .store
        .finish_delivery(a_first.delivery.id, "w1", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    let next = claim(&db, "w2", 10).await;
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].event.as_ref().and_then(|e| e.version.as_deref()),
        Some("v2")
    );
    // A lease that expires (a worker that died) makes the delivery claimable again: at least once.
    let expired = db
        .store
        .claim_deliveries("w3", later(60), later(90), 10)
        .await
        .expect("claim");
    let mut ids = event_ids(&expired);
    ids.sort();
    let mut expected = vec![
        next[0].delivery.event_id,
        first
            .iter()
            .find(|c| c.subscription.id != a.id)
            .and_then(|c| c.delivery.event_id),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(expired.iter().all(|c| c.delivery.attempts == 2));
    let shown = db
        .store
        .recent_deliveries(a.id, 10)
        .await
        .expect("deliveries");
    let done = shown.iter().find(|d| d.id == oldest).expect("first");
    assert_eq!(
        (done.status, done.response_code, done.latency_ms),
        (DeliveryStatus::Delivered, Some(200), Some(3))
    );
    assert!(done.delivered_at.is_some());
}

async fn two_servers_claiming_at_once_never_get_the_same_delivery(db: std::sync::Arc<TestDb>) {
    for n in 0..12 {
        db.store
            .create_subscription(
                subscription(&format!("s{n}"), Filter::default()),
                "admin",
                at(0),
            )
            .await
            .expect("create");
    }
    register(&db, "chat:v1", at(1)).await;
    let other = db.another_server().await;
    let mut tasks = Vec::new();
    for (n, store) in [db.store.clone(), other.clone(), db.store.clone(), other]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..6 {
                let claimed = store
                    .claim_deliveries(&format!("w{n}"), Timestamp::now(), later(30), 2)
                    .await
                    .expect("claim");
                got.extend(claimed.into_iter().map(|c| c.delivery.id));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "claimed twice: {all:?}");
    assert_eq!(distinct.len(), 12);
}

async fn a_failed_attempt_waits_for_its_retry_and_repeated_failures_pause_the_subscription(
    db: std::sync::Arc<TestDb>,
) {
    let s = db
        .store
        .create_subscription(subscription("flaky", Filter::default()), "admin", at(0))
        .await
        .expect("create");
    register(&db, "chat:v1", at(1)).await;
    register(&db, "chat:v2", at(2)).await;
    let c = claim(&db, "w", 10).await;
    assert_eq!(c.len(), 1);
    assert!(db
        .store
        .finish_delivery(c[0].delivery.id, "w", failed(30, 2), Timestamp::now())
        .await
        .expect("finish"));
    // Not due yet, and the second event waits behind it.
    assert!(claim(&db, "w", 10).await.is_empty());
    let d = &db
        .store
        .recent_deliveries(s.id, 10)
        .await
        .expect("deliveries")[1];
    assert_eq!(
        (d.status, d.attempts, d.response_code),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500: boom"));
    let shown = db
        .store
        .get_subscription("flaky")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((shown.consecutive_failures, shown.paused_until), (1, None));
    // Due again (in 40 s): claimed; a second failure in a row opens the breaker.
    let again = db
        .store
        .claim_deliveries("w", later(40), later(70), 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert!(db
        .store
        .finish_delivery(again[0].delivery.id, "w", failed(0, 2), Timestamp::now())
        .await
        .expect("finish"));
    let paused = db
        .store
        .get_subscription("flaky")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(paused.consecutive_failures, 2);
    assert!(paused
        .paused_until
        .is_some_and(|t| t.micros() > Timestamp::now().micros()));
    assert!(claim(&db, "w", 10).await.is_empty(), "paused");
    // After the pause, a success closes the breaker.
    let probe = db
        .store
        .claim_deliveries("w", later(61), later(90), 10)
        .await
        .expect("claim");
    assert_eq!(probe.len(), 1);
    assert!(db
        .store
        .finish_delivery(probe[0].delivery.id, "w", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    let healthy = db
        .store
        .get_subscription("flaky")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (healthy.consecutive_failures, healthy.paused_until),
        (0, None)
    );
    assert_eq!(
        event_ids(&claim(&db, "w", 10).await).len(),
        1,
        "the second event follows"
    );
}

async fn a_dead_delivery_lets_the_next_go_and_can_be_redelivered(db: std::sync::Arc<TestDb>) {
    let s = db
        .store
        .create_subscription(subscription("gone", Filter::default()), "admin", at(0))
        .await
        .expect("create");
    register(&db, "chat:v1", at(1)).await;
    register(&db, "chat:v2", at(2)).await;
    let c = claim(&db, "w", 10).await;
    let dead = Attempt {
        next: AfterAttempt::Dead,
        ..failed(0, 100)
    };
    assert!(db
        .store
        .finish_delivery(c[0].delivery.id, "w", dead, Timestamp::now())
        .await
        .expect("finish"));
    assert_eq!(db.store.queue_stats().await.expect("stats").dead, 1);
    let next = claim(&db, "w", 10).await;
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].delivery.id, c[0].delivery.id);
    assert!(db
        .store
        .finish_delivery(next[0].delivery.id, "w", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    let again = db
        .store
        .redeliver(c[0].delivery.id, Timestamp::now())
        .await
        .expect("redeliver");
    assert_eq!(again.status, DeliveryStatus::Pending);
    assert!(matches!(
        domain(db.store.redeliver(c[0].delivery.id, Timestamp::now()).await),
        DomainError::Conflict(_)
    ));
    assert!(matches!(
        domain(db.store.redeliver(999_999, Timestamp::now()).await),
        DomainError::NotFound(_)
    ));
    let retried = claim(&db, "w", 10).await;
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0].delivery.id, retried[0].delivery.attempts),
        (c[0].delivery.id, 2)
    );
    assert_eq!(
        retried[0].delivery.message_id, c[0].delivery.message_id,
        "the same idempotency key"
    );
    let _ = s;
}

async fn rotated_secrets_sign_together_until_the_overlap_ends(db: std::sync::Arc<TestDb>) {
    let new = subscription("rot", Filter::default());
    let first = new.secret.clone();
    db.store
        .create_subscription(new, "admin", at(0))
        .await
        .expect("create");
    let second = crate::notify::new_secret();
    db.store
        .rotate_secret("rot", &second, later(3600), "admin", Timestamp::now())
        .await
        .expect("rotate");
    register(&db, "chat:v1", at(1)).await;
    let c = claim(&db, "w", 10).await;
    assert_eq!(
        c[0].secrets,
        vec![second.clone(), first.clone()],
        "newest first, the old one during the overlap"
    );
    assert!(db
        .store
        .finish_delivery(c[0].delivery.id, "w", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    let third = crate::notify::new_secret();
    // No overlap: the older secrets stop at once.
    db.store
        .rotate_secret("rot", &third, Timestamp::now(), "admin", Timestamp::now())
        .await
        .expect("rotate");
    register(&db, "chat:v2", at(2)).await;
    let c = claim(&db, "w", 10).await;
    assert_eq!(c[0].secrets, vec![third]);
    assert!(matches!(
        domain(
            db.store
                .rotate_secret("nope", &second, Timestamp::now(), "admin", Timestamp::now())
                .await
        ),
        DomainError::NotFound(_)
    ));
    // Rotations are in the ledger, the secrets are not.
    let events = all_events(&db).await;
    let rotations: Vec<_> = events
        .iter()
        .filter(|e| e.action == crate::store::notify::SUBSCRIPTION_SECRET_ROTATED)
        .collect();
    assert_eq!(rotations.len(), 2);
    let ledger = serde_json::to_string(&events).expect("json");
    assert!(!ledger.contains(&first) && !ledger.contains(&second));
    // Delivered deliveries are pruned once old; pending ones never.
    assert_eq!(
        db.store.prune_deliveries(later(-60)).await.expect("prune"),
        0
    );
    assert_eq!(
        db.store.prune_deliveries(later(60)).await.expect("prune"),
        1
    );
    assert_eq!(db.store.queue_stats().await.expect("stats").pending, 1);
}

async fn a_test_message_is_queued_behind_the_subscriptions_pending_deliveries(
    db: std::sync::Arc<TestDb>,
) {
    db.store
        .create_subscription(subscription("t", Filter::default()), "admin", at(0))
        .await
        .expect("create");
    register(&db, "chat:v1", at(1)).await;
    let test = db
        .store
        .enqueue_test("t", Timestamp::now())
        .await
        .expect("test");
    assert!(test.event_id.is_none() && test.message_id.starts_with("test_"));
    let c = claim(&db, "w", 10).await;
    assert!(c[0].delivery.event_id.is_some());
    assert!(db
        .store
        .finish_delivery(c[0].delivery.id, "w", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    let c = claim(&db, "w", 10).await;
    assert_eq!((c[0].delivery.id, c[0].event.is_none()), (test.id, true));
    assert!(matches!(
        domain(db.store.enqueue_test("nope", Timestamp::now()).await),
        DomainError::NotFound(_)
    ));
}

async fn a_dead_delivery_is_a_ledger_event_sent_to_the_other_subscriptions_only(
    db: std::sync::Arc<TestDb>,
) {
    let gone = db
        .store
        .create_subscription(subscription("gone", Filter::default()), "admin", at(0))
        .await
        .expect("create");
    let ops = db
        .store
        .create_subscription(subscription("ops", models(&["other"])), "admin", at(0))
        .await
        .expect("create");
    register(&db, "chat:v1", at(1)).await;
    let c = claim(&db, "w", 10).await;
    assert_eq!(c.len(), 1);
    let dead = Attempt {
        next: AfterAttempt::Dead,
        ..failed(0, 100)
    };
    assert!(db
        .store
        .finish_delivery(c[0].delivery.id, "w", dead, Timestamp::now())
        .await
        .expect("finish"));
    let events = all_events(&db).await;
    let ev = events
        .iter()
        .find(|e| e.action == crate::store::notify::DELIVERY_DEAD)
        .expect("delivery.dead in the ledger");
    assert_eq!(ev.actor, "system");
    assert_eq!(ev.reason.as_deref(), Some("HTTP 500: boom"));
    assert_eq!(ev.details["subscription"], "gone");
    assert_eq!(ev.details["message_id"], c[0].delivery.message_id.as_str());
    assert_eq!(ev.details["attempts"], 1);
    // The default filter wants it, but not about itself; a filter naming no
    // model admits it (it is about no model), one naming models does not.
    let to_gone = db
        .store
        .recent_deliveries(gone.id, 10)
        .await
        .expect("deliveries");
    assert_eq!(to_gone.len(), 1, "only the dead one: {to_gone:?}");
    let watcher_filter = Filter {
        events: vec![crate::store::notify::DELIVERY_DEAD.into()],
        ..Filter::default()
    };
    let watcher = db
        .store
        .create_subscription(subscription("watcher", watcher_filter), "admin", at(2))
        .await
        .expect("create");
    register(&db, "chat:v2", at(3)).await;
    let c = claim(&db, "w", 10).await;
    let dead = Attempt {
        next: AfterAttempt::Dead,
        ..failed(0, 100)
    };
    assert!(db
        .store
        .finish_delivery(c[0].delivery.id, "w", dead, Timestamp::now())
        .await
        .expect("finish"));
    let to_watcher = db
        .store
        .recent_deliveries(watcher.id, 10)
        .await
        .expect("deliveries");
    assert_eq!(to_watcher.len(), 1);
    assert!(db
        .store
        .recent_deliveries(ops.id, 10)
        .await
        .expect("deliveries")
        .is_empty());
}

async fn a_subscription_failing_longer_than_the_alert_time_is_reported_once_and_its_recovery_too(
    db: std::sync::Arc<TestDb>,
) {
    let flaky = db
        .store
        .create_subscription(subscription("flaky", Filter::default()), "admin", at(0))
        .await
        .expect("create");
    let watching = Filter {
        events: vec![
            action::SUBSCRIPTION_FAILING.into(),
            action::SUBSCRIPTION_RECOVERED.into(),
        ],
        ..Filter::default()
    };
    let ops = db
        .store
        .create_subscription(subscription("ops", watching), "admin", at(0))
        .await
        .expect("create");
    register(&db, "chat:v1", at(1)).await;
    let alerts = |events: &[switchyard_domain::ledger::LedgerEvent], kind: &str| {
        events
            .iter()
            .filter(|e| e.action == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let db_ref = &db;
    let fail_once = |alert_after: u64| async move {
        let db = db_ref;
        let c = claim(db, "w", 10).await;
        let mine = c
            .iter()
            .find(|c| c.subscription.name == "flaky")
            .expect("flaky's delivery is due");
        let attempt = Attempt {
            failing_alert_after: std::time::Duration::from_secs(alert_after),
            record: None,
            ..failed(0, 100)
        };
        assert!(db
            .store
            .finish_delivery(mine.delivery.id, "w", attempt, Timestamp::now())
            .await
            .expect("finish"));
    };
    // Failing, but not for an hour yet: nothing is raised.
    fail_once(3600).await;
    let shown = db
        .store
        .get_subscription("flaky")
        .await
        .expect("get")
        .expect("exists");
    assert!(
        shown.failing_since.is_some() && shown.failing_reported.is_none(),
        "{shown:?}"
    );
    assert!(alerts(&all_events(&db).await, action::SUBSCRIPTION_FAILING).is_empty());
    // Failing for longer than the alert time (here 0 s): raised once, however often it fails after.
    fail_once(0).await;
    fail_once(0).await;
    let events = all_events(&db).await;
    let raised = alerts(&events, action::SUBSCRIPTION_FAILING);
    assert_eq!(raised.len(), 1, "raised once");
    assert_eq!(raised[0].actor, "system");
    assert_eq!(raised[0].details["subscription"], "flaky");
    assert_eq!(raised[0].details["consecutive_failures"], 2);
    assert_eq!(raised[0].reason.as_deref(), Some("HTTP 500: boom"));
    let health = db.store.subscription_health().await.expect("health");
    let h = health.iter().find(|h| h.name == "flaky").expect("flaky");
    assert_eq!(h.warning(Timestamp::now()), Some("failing"));
    assert_eq!((h.pending, h.dead, h.consecutive_failures), (1, 0, 3));
    assert_eq!(h.last_error.as_deref(), Some("HTTP 500: boom"));
    assert!(h.failing_reported.is_some());
    let o = health.iter().find(|h| h.name == "ops").expect("ops");
    assert_eq!(o.warning(Timestamp::now()), None);
    // Sent to the other subscription that wants it, not to the failing one.
    let to_ops = db
        .store
        .recent_deliveries(ops.id, 10)
        .await
        .expect("deliveries");
    assert_eq!(to_ops.len(), 1);
    assert_eq!(to_ops[0].event_id, Some(raised[0].id));
    assert_eq!(
        db.store
            .recent_deliveries(flaky.id, 10)
            .await
            .expect("deliveries")
            .len(),
        1
    );

    // Delivered again: cleared, and the recovery is recorded once.
    let c = claim(&db, "w", 10).await;
    let mine = c
        .iter()
        .find(|c| c.subscription.name == "flaky")
        .expect("flaky's delivery is due");
    assert!(db
        .store
        .finish_delivery(mine.delivery.id, "w", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    let recovered = alerts(&all_events(&db).await, action::SUBSCRIPTION_RECOVERED);
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].details["subscription"], "flaky");
    assert!(recovered[0].details["failed_for_ms"]
        .as_i64()
        .is_some_and(|ms| ms >= 0));
    let healthy = db
        .store
        .get_subscription("flaky")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (
            healthy.consecutive_failures,
            healthy.failing_since,
            healthy.failing_reported
        ),
        (0, None, None)
    );
    // A later success of a healthy subscription records nothing.
    register(&db, "chat:v2", at(2)).await;
    let c = claim(&db, "w", 10).await;
    let mine = c
        .iter()
        .find(|c| c.subscription.name == "flaky")
        .expect("flaky's next delivery");
    assert!(db
        .store
        .finish_delivery(mine.delivery.id, "w", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    assert_eq!(
        alerts(&all_events(&db).await, action::SUBSCRIPTION_RECOVERED).len(),
        1
    );
}

async fn a_batch_is_claimed_with_events_and_secrets_and_its_attempts_recorded_together_by_its_holder(
    db: std::sync::Arc<TestDb>,
) {
    let mut subs = Vec::new();
    for name in ["a", "b", "c"] {
        subs.push(
            db.store
                .create_subscription(subscription(name, Filter::default()), "admin", at(0))
                .await
                .expect("create"),
        );
    }
    db.store
        .rotate_secret("a", "whsec_newer", later(600), "admin", at(0))
        .await
        .expect("rotate");
    for v in 1..=2 {
        register(&db, &format!("chat:v{v}"), at(v)).await;
    }
    db.store
        .enqueue_test("c", at(3))
        .await
        .expect("test message");
    let version_of = |c: &ClaimedDelivery| c.event.as_ref().and_then(|e| e.version.clone());

    // One claim: the head of each subscription's line, with what it needs.
    let first = claim(&db, "w1", 10).await;
    assert_eq!(first.len(), 3);
    for (c, s) in first.iter().zip(&subs) {
        assert_eq!(
            c.subscription, *s,
            "ordered by delivery, loaded with its subscription"
        );
        assert_eq!(version_of(c).as_deref(), Some("v1"));
        assert_eq!(c.delivery.attempts, 1);
    }
    assert_eq!(first[0].secrets.len(), 2);
    assert_eq!(first[0].secrets[0], "whsec_newer", "newest first");
    assert_eq!((first[1].secrets.len(), first[2].secrets.len()), (1, 1));
    assert!(claim(&db, "w2", 10).await.is_empty(), "leased");

    // Another worker's records are refused and write nothing.
    let of = |claimed: &[ClaimedDelivery], attempts: Vec<Attempt>| {
        claimed
            .iter()
            .zip(attempts)
            .map(|(c, a)| (c.delivery.id, a, Timestamp::now()))
            .collect::<Vec<_>>()
    };
    let refused = db
        .store
        .finish_deliveries(
            "w2",
            of(&first, vec![delivered(), delivered(), delivered()]),
        )
        .await
        .expect("finish");
    assert_eq!(refused, vec![false, false, false]);
    // b fails for longer than its alert time (0 s): subscription.failing.
    let b_fails = Attempt {
        failing_alert_after: std::time::Duration::ZERO,
        ..failed(0, 100)
    };
    let recorded = db
        .store
        .finish_deliveries("w1", of(&first, vec![delivered(), b_fails, delivered()]))
        .await
        .expect("finish");
    assert_eq!(recorded, vec![true, true, true]);
    let shown = |name: &'static str| {
        let db = db.clone();
        async move {
            db.store
                .get_subscription(name)
                .await
                .expect("get")
                .expect("exists")
        }
    };
    assert_eq!(
        shown("a").await,
        subs[0],
        "a healthy subscription is not written"
    );
    let b = shown("b").await;
    assert_eq!(b.consecutive_failures, 1);
    assert!(b.failing_reported.is_some());

    // Next batch: a and c go on, b tries v1 again (its line waits for it).
    let lines = |claimed: &[ClaimedDelivery]| {
        let mut lines: Vec<(String, String)> = claimed
            .iter()
            .map(|c| {
                let what = match &c.event {
                    Some(e) => format!("{} {}", e.action, e.version.as_deref().unwrap_or("-")),
                    None => "test".to_owned(),
                };
                (c.subscription.name.clone(), what)
            })
            .collect();
        lines.sort();
        lines
    };
    let second = claim(&db, "w1", 10).await;
    let registered = |v: &str| format!("{} {v}", action::VERSION_REGISTERED);
    assert_eq!(
        lines(&second),
        vec![
            ("a".to_owned(), registered("v2")),
            ("b".to_owned(), registered("v1")),
            ("c".to_owned(), registered("v2")),
        ]
    );
    let b_again = second
        .iter()
        .find(|c| c.subscription.name == "b")
        .expect("b");
    assert_eq!(b_again.delivery.attempts, 2);
    let recorded = db
        .store
        .finish_deliveries(
            "w1",
            of(&second, vec![delivered(), delivered(), delivered()]),
        )
        .await
        .expect("finish");
    assert_eq!(recorded, vec![true, true, true]);
    // b's success ends its reported streak: healthy, and recorded in the ledger once.
    let b = shown("b").await;
    assert_eq!(
        (b.consecutive_failures, b.failing_since, b.failing_reported),
        (0, None, None)
    );
    let events = all_events(&db).await;
    let count = |kind: &str| events.iter().filter(|e| e.action == kind).count();
    assert_eq!(
        (
            count(action::SUBSCRIPTION_FAILING),
            count(action::SUBSCRIPTION_RECOVERED)
        ),
        (1, 1)
    );
    // Then c's test message after its events, b's v2 after its v1; a and c
    // (not b) hear of b's failing streak, in order.
    let third = claim(&db, "w1", 10).await;
    assert_eq!(
        lines(&third),
        vec![
            (
                "a".to_owned(),
                format!("{} -", action::SUBSCRIPTION_FAILING)
            ),
            ("b".to_owned(), registered("v2")),
            ("c".to_owned(), "test".to_owned()),
        ]
    );
    let test = third
        .iter()
        .find(|c| c.event.is_none())
        .expect("the test message");
    assert_eq!(test.delivery.event_id, None);
}

async fn runs_of_a_subscriptions_line_are_claimed_in_order_up_to_the_first_delivery_not_due_and_released_unsent(
    db: std::sync::Arc<TestDb>,
) {
    let a = db
        .store
        .create_subscription(subscription("a", models(&["chat"])), "admin", at(0))
        .await
        .expect("create");
    db.store
        .create_subscription(subscription("b", models(&["other"])), "admin", at(0))
        .await
        .expect("create");
    for v in 1..=4 {
        register(&db, &format!("chat:v{v}"), at(v)).await;
    }
    register(&db, "other:v1", at(5)).await;
    let runs = |owner: &'static str, now: Timestamp, limit: u32, run: u32| {
        let db = db.clone();
        async move {
            db.store
                .claim_runs(owner, now, later(30), limit, run, 8)
                .await
                .expect("claim")
        }
    };
    let versions = |claimed: &[ClaimedDelivery]| {
        claimed
            .iter()
            .map(|c| {
                let e = c.event.as_ref().expect("an event");
                format!(
                    "{}:{}",
                    e.model_id.as_deref().unwrap_or("-"),
                    e.version.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
    };
    // Runs of 3: a's first three in order, and b's only one.
    let first = runs("w1", Timestamp::now(), 10, 3).await;
    assert_eq!(
        versions(&first),
        ["chat:v1", "chat:v2", "chat:v3", "other:v1"]
    );
    assert!(first.iter().all(|c| c.delivery.attempts == 1));
    assert!(
        runs("w2", Timestamp::now(), 10, 3).await.is_empty(),
        "leased"
    );
    // v1 delivered, v2 failed (retry in 30 s), v3 never sent: released, its claim not counted.
    let recorded = db
        .store
        .finish_deliveries(
            "w1",
            vec![
                (first[0].delivery.id, delivered(), Timestamp::now()),
                (first[1].delivery.id, failed(30, 100), Timestamp::now()),
                (first[3].delivery.id, delivered(), Timestamp::now()),
            ],
        )
        .await
        .expect("finish");
    assert_eq!(recorded, vec![true, true, true]);
    assert_eq!(
        db.store
            .release_deliveries("w2", &[first[2].delivery.id])
            .await
            .expect("release"),
        0,
        "only by its holder"
    );
    assert_eq!(
        db.store
            .release_deliveries("w1", &[first[2].delivery.id])
            .await
            .expect("release"),
        1
    );
    let shown = db
        .store
        .recent_deliveries(a.id, 10)
        .await
        .expect("deliveries");
    let v3 = shown
        .iter()
        .find(|d| d.id == first[2].delivery.id)
        .expect("v3");
    assert_eq!(
        (v3.status, v3.attempts, v3.last_attempt_at),
        (DeliveryStatus::Pending, 0, None)
    );
    // v2 waits for its retry, and v3 and v4 wait behind it.
    assert!(runs("w1", Timestamp::now(), 10, 3).await.is_empty());
    // A redelivered v1 goes first again, alone: v2 is not due yet.
    db.store
        .redeliver(first[0].delivery.id, Timestamp::now())
        .await
        .expect("redeliver");
    let again = runs("w1", Timestamp::now(), 10, 3).await;
    assert_eq!(versions(&again), ["chat:v1"]);
    assert!(db
        .store
        .finish_deliveries(
            "w1",
            vec![(again[0].delivery.id, delivered(), Timestamp::now())]
        )
        .await
        .expect("finish")
        .iter()
        .all(|ok| *ok));
    // Once v2 is due: v2, v3, v4 in order (v2's second attempt); the limit counts deliveries.
    let due = runs("w1", later(40), 10, 3).await;
    assert_eq!(versions(&due), ["chat:v2", "chat:v3", "chat:v4"]);
    assert_eq!(
        due.iter().map(|c| c.delivery.attempts).collect::<Vec<_>>(),
        [2, 1, 1]
    );
    db.store
        .release_deliveries("w1", &due.iter().map(|c| c.delivery.id).collect::<Vec<_>>())
        .await
        .expect("release");
    assert_eq!(
        versions(&runs("w1", later(40), 2, 3).await),
        ["chat:v2", "chat:v3"]
    );
}

async fn two_servers_claiming_runs_at_once_never_split_a_subscriptions_line(
    db: std::sync::Arc<TestDb>,
) {
    let mut subs = Vec::new();
    for n in 0..6 {
        subs.push(
            db.store
                .create_subscription(
                    subscription(&format!("s{n}"), Filter::default()),
                    "admin",
                    at(0),
                )
                .await
                .expect("create")
                .id,
        );
    }
    for v in 1..=3 {
        register(&db, &format!("chat:v{v}"), at(v)).await;
    }
    let other = db.another_server().await;
    let mut tasks = Vec::new();
    for (n, store) in [db.store.clone(), other.clone(), db.store.clone(), other]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..4 {
                let claimed = store
                    .claim_runs(&format!("w{n}"), Timestamp::now(), later(30), 6, 3, 8)
                    .await
                    .expect("claim");
                got.extend(
                    claimed
                        .into_iter()
                        .map(|c| (n, c.subscription.id, c.delivery.id)),
                );
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let distinct: HashSet<i64> = all.iter().map(|(_, _, d)| *d).collect();
    assert_eq!(distinct.len(), all.len(), "claimed twice: {all:?}");
    assert_eq!(distinct.len(), 18, "{all:?}");
    for s in subs {
        let owners: HashSet<usize> = all
            .iter()
            .filter(|(_, sub, _)| *sub == s)
            .map(|(n, _, _)| *n)
            .collect();
        assert_eq!(owners.len(), 1, "subscription {s}'s line split: {all:?}");
    }
}

fn write_back(url: &str, environments: &[&str]) -> NewSubscription {
    NewSubscription {
        name: "mlflow-write-back".to_owned(),
        kind: DestinationKind::MlflowAlias,
        url: url.to_owned(),
        filter: Filter {
            events: vec![action::PROMOTION_APPLIED.into()],
            environments: environments.iter().map(|e| (*e).to_owned()).collect(),
            ..Filter::default()
        },
        secret: String::new(),
        options: json!({ "aliases": { "production": ["champion"] } }),
        parallel: false,
    }
}

async fn a_configured_subscription_is_created_updated_in_place_with_its_deliveries_or_left_alone(
    db: std::sync::Arc<TestDb>,
) {
    let s = &db.store;
    let (created, done) = s
        .configure_subscription(
            write_back("http://mlflow:5000", &["production"]),
            "system",
            at(1),
        )
        .await
        .expect("configured");
    assert_eq!(done, Configured::Created);
    assert_eq!(created.kind, DestinationKind::MlflowAlias);
    assert_eq!(created.options["aliases"]["production"][0], "champion");
    // A pending delivery, to see it kept across the update.
    s.enqueue_test("mlflow-write-back", at(2))
        .await
        .expect("queued");
    let before = all_events(&db).await.len();
    let (_, again) = s
        .configure_subscription(
            write_back("http://mlflow:5000", &["production"]),
            "system",
            at(3),
        )
        .await
        .expect("configured");
    assert_eq!(again, Configured::Unchanged);
    assert_eq!(
        all_events(&db).await.len(),
        before,
        "nothing written when unchanged"
    );
    let (updated, done) = s
        .configure_subscription(
            write_back("http://mlflow2:5000", &["production", "staging"]),
            "system",
            at(4),
        )
        .await
        .expect("configured");
    assert_eq!(done, Configured::Updated);
    assert_eq!(
        (updated.id, updated.url.as_str()),
        (created.id, "http://mlflow2:5000")
    );
    assert_eq!(updated.filter.environments, vec!["production", "staging"]);
    let events = all_events(&db).await;
    let last = events.last().expect("an event");
    assert_eq!(last.action, action::SUBSCRIPTION_UPDATED);
    assert_eq!(last.details["before"]["url"], "http://mlflow:5000");
    assert_eq!(last.details["after"]["url"], "http://mlflow2:5000");
    assert_eq!(
        s.recent_deliveries(created.id, 10)
            .await
            .expect("deliveries")
            .len(),
        1,
        "the update keeps the deliveries"
    );
    // Another kind under that name is not taken over.
    s.create_subscription(subscription("hook", Filter::default()), "admin", at(5))
        .await
        .expect("create");
    let mut other = write_back("http://mlflow:5000", &["production"]);
    other.name = "hook".into();
    assert!(matches!(
        domain(s.configure_subscription(other, "system", at(6)).await),
        DomainError::Conflict(_)
    ));
}

async fn an_attempts_own_event_is_recorded_exactly_when_its_delivery_is_marked_delivered(
    db: std::sync::Arc<TestDb>,
) {
    let s = &db.store;
    s.configure_subscription(write_back("http://mlflow:5000", &[]), "system", at(1))
        .await
        .expect("configured");
    s.enqueue_test("mlflow-write-back", at(2))
        .await
        .expect("queued");
    s.enqueue_test("mlflow-write-back", at(2))
        .await
        .expect("queued");
    let record = || {
        switchyard_domain::ledger::NewEvent::new(at(3), "system", action::MLFLOW_ALIAS_SET)
            .details(json!({ "answer": { "champion": { "version": "2" } } }))
    };
    let c = claim(&db, "w", 10).await;
    assert_eq!(c.len(), 1);
    // Lease lost (another owner): nothing recorded, the event neither.
    let with_record = Attempt {
        record: Some(record()),
        ..delivered()
    };
    assert!(!s
        .finish_delivery(c[0].delivery.id, "someone-else", with_record.clone(), at(3))
        .await
        .expect("finish"));
    assert!(!all_events(&db)
        .await
        .iter()
        .any(|e| e.action == action::MLFLOW_ALIAS_SET));
    let recorded = s
        .finish_deliveries("w", vec![(c[0].delivery.id, with_record, at(3))])
        .await
        .expect("finish");
    assert_eq!(recorded, vec![true]);
    let set: Vec<_> = all_events(&db)
        .await
        .into_iter()
        .filter(|e| e.action == action::MLFLOW_ALIAS_SET)
        .collect();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].details["answer"]["champion"]["version"], "2");
    let d = s
        .recent_deliveries(c[0].subscription.id, 10)
        .await
        .expect("deliveries");
    assert_eq!(
        d.iter()
            .find(|d| d.id == c[0].delivery.id)
            .map(|d| d.status),
        Some(DeliveryStatus::Delivered)
    );
}

fn parallel(name: &str) -> NewSubscription {
    NewSubscription {
        parallel: true,
        ..subscription(name, models(&["chat"]))
    }
}

async fn a_parallel_subscriptions_deliveries_are_claimed_together_up_to_the_bound_past_a_failed_one_while_an_ordered_one_keeps_its_line(
    db: std::sync::Arc<TestDb>,
) {
    let ordered = db
        .store
        .create_subscription(subscription("ordered", models(&["chat"])), "admin", at(0))
        .await
        .expect("create");
    assert!(!ordered.parallel, "in order unless asked");
    let p = db
        .store
        .create_subscription(parallel("fast"), "admin", at(0))
        .await
        .expect("create");
    assert!(p.parallel);
    let stored = db.store.get_subscription("fast").await.expect("read");
    assert!(stored.is_some_and(|s| s.parallel), "stored");
    for v in 1..=6 {
        register(&db, &format!("chat:v{v}"), at(v)).await;
    }
    let mut p_ids: Vec<i64> = db
        .store
        .recent_deliveries(p.id, 10)
        .await
        .expect("deliveries")
        .iter()
        .map(|d| d.id)
        .collect();
    p_ids.sort_unstable();
    assert_eq!(p_ids.len(), 6);
    let claim = |owner: &'static str| {
        let store = db.store.clone();
        async move {
            store
                .claim_runs(owner, Timestamp::now(), later(30), 32, 1, 4)
                .await
                .expect("claim")
        }
    };
    let of = |claimed: &[ClaimedDelivery], id: i64| -> Vec<i64> {
        let mut ids: Vec<i64> = claimed
            .iter()
            .filter(|c| c.subscription.id == id)
            .map(|c| c.delivery.id)
            .collect();
        ids.sort_unstable();
        ids
    };

    // The ordered one: its head only. The parallel one: its four oldest at once (the bound).
    let first = claim("w1").await;
    let ordered_head = of(&first, ordered.id);
    assert_eq!(ordered_head.len(), 1, "{:?}", event_ids(&first));
    assert_eq!(of(&first, p.id), p_ids[..4].to_vec());
    assert!(first
        .iter()
        .filter(|c| c.subscription.id == p.id)
        .all(|c| c.subscription.parallel && c.event.is_some() && c.secrets.len() == 1));

    // Four in flight: nothing more of it, whoever asks; the ordered line waits for its head.
    assert!(claim("w2").await.is_empty());

    // Its second finishes before its first: the fifth may go (four in flight again), not the sixth.
    assert!(db
        .store
        .finish_delivery(p_ids[1], "w1", delivered(), Timestamp::now())
        .await
        .expect("finish"));
    let second = claim("w2").await;
    assert_eq!(of(&second, p.id), vec![p_ids[4]]);
    assert!(of(&second, ordered.id).is_empty());

    // Its first fails and waits for its retry: the sixth does not wait for it.
    assert!(db
        .store
        .finish_delivery(p_ids[0], "w1", failed(60, 10), Timestamp::now())
        .await
        .expect("finish"));
    let third = claim("w3").await;
    assert_eq!(of(&third, p.id), vec![p_ids[5]]);
    assert!(of(&third, ordered.id).is_empty(), "the ordered head is still leased");

    // The ordered one's failed head holds back the rest of its line.
    assert!(db
        .store
        .finish_delivery(ordered_head[0], "w1", failed(60, 10), Timestamp::now())
        .await
        .expect("finish"));
    assert!(claim("w4").await.is_empty());

    // With a bound of 1 a parallel subscription is claimed one at a time, but not in order:
    // its failed first delivery does not hold back the others.
    for (id, owner) in [(p_ids[2], "w1"), (p_ids[3], "w1"), (p_ids[4], "w2")] {
        assert!(db
            .store
            .finish_delivery(id, owner, delivered(), Timestamp::now())
            .await
            .expect("finish"));
    }
    let none_left = db
        .store
        .claim_runs("w5", Timestamp::now(), later(30), 32, 1, 1)
        .await
        .expect("claim");
    assert!(none_left.is_empty(), "the sixth is in flight: {:?}", event_ids(&none_left));
    // At +61 s the sixth's lease has run out and the first is due again: the oldest of them goes.
    let retried = db
        .store
        .claim_runs("w5", later(61), later(90), 32, 1, 1)
        .await
        .expect("claim");
    assert_eq!(of(&retried, p.id), vec![p_ids[0]]);
    assert_eq!(of(&retried, ordered.id), ordered_head);
}

async fn several_servers_claiming_a_parallel_subscription_at_once_get_each_delivery_once(
    db: std::sync::Arc<TestDb>,
) {
    let p = db
        .store
        .create_subscription(parallel("fast"), "admin", at(0))
        .await
        .expect("create");
    for v in 1..=24 {
        register(&db, &format!("chat:v{v}"), at(v)).await;
    }
    let other = db.another_server().await;
    let mut tasks = Vec::new();
    for (n, store) in [db.store.clone(), other.clone(), db.store.clone(), other]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{n}");
            let mut got = Vec::new();
            // Until nothing is pending (a claim that meets another's locked rows skips them).
            let started = std::time::Instant::now();
            while store.queue_stats().await.expect("stats").pending > 0 {
                assert!(started.elapsed() < std::time::Duration::from_secs(20), "{owner}: still pending");
                let claimed = store
                    .claim_runs(&owner, Timestamp::now(), later(30), 3, 1, 64)
                    .await
                    .expect("claim");
                let ids: Vec<i64> = claimed.iter().map(|c| c.delivery.id).collect();
                let finished = ids
                    .iter()
                    .map(|id| (*id, delivered(), Timestamp::now()))
                    .collect();
                let recorded = store
                    .finish_deliveries(&owner, finished)
                    .await
                    .expect("finish");
                assert!(recorded.iter().all(|ok| *ok), "{owner} holds what it claimed");
                got.extend(ids);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "claimed twice: {all:?}");
    assert_eq!(distinct.len(), 24, "{all:?}");
    let shown = db.store.recent_deliveries(p.id, 50).await.expect("deliveries");
    assert!(shown
        .iter()
        .all(|d| d.status == DeliveryStatus::Delivered && d.attempts == 1));
}
