//! The contract of `ReleaseStore` and of the release policy promotions and
//! operations obey: approval policies per environment, change freezes and
//! emergency overrides, on SQLite and PostgreSQL like the rest of the suite.

use std::sync::Arc;

use serde_json::json;
use switchyard_domain::access::Role;
use switchyard_domain::freeze::{Day, NewFreeze, Schedule};
use switchyard_domain::ledger::action;
use switchyard_domain::operations::{OperationKind, OperationState};
use switchyard_domain::policy::EnvPolicy;
use switchyard_domain::promotion::PromotionStatus;
use switchyard_domain::{DomainError, Stage, Timestamp};

use super::clusters::{fast, finished, request, serving_v1, start};
use super::identity::{pending_promotion, user};
use super::{all_events, at, domain, id, register, run, TestDb};
use crate::drivers::Drivers;
use crate::operations::spawn;
use crate::store::identity::Identity;

contract_tests!(
    two_of_n_with_a_required_group_applies_once_the_group_approved_and_keeps_the_policy_in_force,
    a_policy_that_could_never_be_satisfied_is_refused_and_nothing_changes,
    the_requesters_groups_may_not_approve_when_the_policy_says_so_and_expiry_follows_the_policy,
    a_freeze_refuses_the_approval_that_would_apply_a_promotion_and_stores_nothing,
    a_weekly_freeze_across_the_spring_dst_change_refuses_requests_in_berlin_wall_clock_time,
    a_freeze_refuses_operations_with_its_name_and_end_never_rollbacks_and_an_approved_override_lets_them_through,
);

/// Gives `name` (already a user) `groups` and returns their identity.
async fn in_groups(db: &TestDb, name: &str, role: Role, groups: &[&str]) -> Identity {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    db.store
        .set_user_groups(name, &groups, "admin", at(0))
        .await
        .expect("groups set");
    Identity {
        username: name.to_owned(),
        role,
        groups,
        token: None,
        bindings: vec![switchyard_domain::access::Binding::new(
            switchyard_domain::access::Subject::User(name.to_owned()),
            role,
            switchyard_domain::access::Scope::All,
        )],
    }
}

async fn member(db: &TestDb, name: &str, role: Role, groups: &[&str]) -> Identity {
    user(db, name, role).await;
    in_groups(db, name, role, groups).await
}

async fn policy_of(db: &TestDb, env: &str) -> EnvPolicy {
    db.store
        .list_environments()
        .await
        .expect("environments")
        .into_iter()
        .find(|e| e.name == env)
        .expect("environment")
        .policy
}

async fn two_of_n_with_a_required_group_applies_once_the_group_approved_and_keeps_the_policy_in_force(
    db: Arc<TestDb>,
) {
    let bob = member(&db, "bob", Role::Approver, &["platform"]).await;
    let carol = member(&db, "carol", Role::Approver, &["platform"]).await;
    let rita = member(&db, "rita", Role::Approver, &["ml-risk"]).await;
    let policy = EnvPolicy {
        required_groups: vec!["ml-risk".into()],
        ..EnvPolicy::default_for("production")
    };
    db.store
        .set_environment_policy("production", &policy, "alice", at(1))
        .await
        .expect("policy saved");
    assert_eq!(policy_of(&db, "production").await, policy);
    let events = all_events(&db).await;
    let changed = events.last().expect("an event");
    assert_eq!(changed.action, action::POLICY_CHANGED);
    assert_eq!(changed.environment.as_deref(), Some("production"));
    assert_eq!(changed.details["before"]["required_groups"], json!([]));
    assert_eq!(
        changed.details["after"]["required_groups"],
        json!(["ml-risk"])
    );

    let p = pending_promotion(&db).await;
    assert_eq!(p.policy.required_groups, ["ml-risk"]);
    assert_eq!(p.requirements.len(), 2);
    assert!(p.requirements.iter().all(|r| !r.met));

    for who in [&bob, &carol] {
        let p = db
            .store
            .approve_promotion(p.id, Some("ok"), who, at(10))
            .await
            .expect("approved");
        assert_eq!(
            p.status,
            PromotionStatus::Pending,
            "no one from ml-risk yet"
        );
    }
    let read = db.store.get_promotion(p.id).await.unwrap().unwrap();
    assert_eq!(
        read.requirements
            .iter()
            .map(|r| (r.requirement.as_str(), r.met, r.status.as_str()))
            .collect::<Vec<_>>(),
        [
            ("2 distinct approvers", true, "2 of 2: bob, carol"),
            ("one approval from ml-risk", false, "open"),
        ]
    );
    assert_eq!(read.approvals[0].groups, ["platform"]);

    let applied = db
        .store
        .approve_promotion(p.id, Some("risk ok"), &rita, at(11))
        .await
        .expect("approved");
    assert_eq!(applied.status, PromotionStatus::Applied);
    assert!(applied.requirements.iter().all(|r| r.met));
    // The requirements as met are kept, whatever the policy becomes later.
    db.store
        .set_environment_policy(
            "production",
            &EnvPolicy::default_for("production"),
            "alice",
            at(12),
        )
        .await
        .expect("policy reset");
    let read = db.store.get_promotion(p.id).await.unwrap().unwrap();
    assert_eq!(read.requirements[1].status, "met by rita");
    assert_eq!(read.policy.required_groups, ["ml-risk"]);
    let events = all_events(&db).await;
    let applied_event = events
        .iter()
        .rfind(|e| e.action == action::PROMOTION_APPLIED)
        .expect("promotion.applied");
    assert_eq!(
        applied_event.details["policy"]["required_groups"],
        json!(["ml-risk"])
    );
    assert_eq!(
        applied_event.details["requirements"][1]["status"],
        json!("met by rita")
    );
    assert_eq!(
        applied_event.details["approvals"][2]["groups"],
        json!(["ml-risk"])
    );
    let v2 = db.store.get_version(&id("chat:v2")).await.unwrap().unwrap();
    assert_eq!(v2.stage, Stage::Production);
}

async fn a_policy_that_could_never_be_satisfied_is_refused_and_nothing_changes(db: Arc<TestDb>) {
    member(&db, "bob", Role::Approver, &["platform"]).await;
    member(&db, "carol", Role::Admin, &[]).await;
    // dave is in ml-risk but cannot approve: he does not make it satisfiable.
    member(&db, "dave", Role::Deployer, &["ml-risk"]).await;
    let before = policy_of(&db, "production").await;
    let events_before = all_events(&db).await.len();
    let nobody_in_group = EnvPolicy {
        required_groups: vec!["ml-risk".into()],
        ..before.clone()
    };
    match domain(
        db.store
            .set_environment_policy("production", &nobody_in_group, "alice", at(1))
            .await,
    ) {
        DomainError::PolicyViolation(m) => {
            assert!(m.contains("no user who may approve is in ml-risk"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let too_many = EnvPolicy {
        required_approvals: 3,
        ..before.clone()
    };
    assert!(matches!(
        domain(db.store.set_environment_policy("production", &too_many, "alice", at(1)).await),
        DomainError::PolicyViolation(m) if m.contains("only 2 users may approve")
    ));
    let bad_expiry = EnvPolicy {
        expiry_hours: 0,
        ..before.clone()
    };
    assert!(matches!(
        domain(
            db.store
                .set_environment_policy("production", &bad_expiry, "alice", at(1))
                .await
        ),
        DomainError::Invalid(_)
    ));
    assert!(matches!(
        domain(
            db.store
                .set_environment_policy("nowhere", &before, "alice", at(1))
                .await
        ),
        DomainError::NotFound(_)
    ));
    assert_eq!(policy_of(&db, "production").await, before);
    assert_eq!(
        all_events(&db).await.len(),
        events_before,
        "nothing recorded"
    );
    // Once someone who may approve is in the group, it is accepted.
    in_groups(&db, "bob", Role::Approver, &["platform", "ml-risk"]).await;
    db.store
        .set_environment_policy("production", &nobody_in_group, "alice", at(2))
        .await
        .expect("now satisfiable");
}

async fn the_requesters_groups_may_not_approve_when_the_policy_says_so_and_expiry_follows_the_policy(
    db: Arc<TestDb>,
) {
    let dave = member(&db, "dave", Role::Deployer, &["ml-eng"]).await;
    let erin = member(&db, "erin", Role::Approver, &["ml-eng", "ops"]).await;
    let bob = member(&db, "bob", Role::Approver, &["platform"]).await;
    let policy = EnvPolicy {
        requester_group_may_approve: false,
        expiry_hours: 4,
        ..EnvPolicy::default_for("staging")
    };
    db.store
        .set_environment_policy("staging", &policy, "alice", at(1))
        .await
        .expect("policy saved");
    register(&db, "chat:v2", at(2)).await;
    let p = db
        .store
        .request_promotion(&id("chat:v2"), "staging", "try it", &dave, at(5))
        .await
        .expect("requested");
    assert_eq!(p.expires_at, at(5).plus_hours(4));
    // The people named as able to approve (and notified) leave out dave's colleague erin.
    let requested = all_events(&db)
        .await
        .into_iter()
        .rfind(|e| e.action == action::PROMOTION_REQUESTED)
        .expect("promotion.requested");
    assert_eq!(requested.details["approvers"], json!(["bob"]));
    assert_eq!(p.requester_groups, ["ml-eng"]);
    match domain(
        db.store
            .approve_promotion(p.id, Some("ok"), &erin, at(6))
            .await,
    ) {
        DomainError::Forbidden(m) => assert!(m.contains("erin shares ml-eng with dave"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(db
        .store
        .get_promotion(p.id)
        .await
        .unwrap()
        .unwrap()
        .approvals
        .is_empty());
    // The requester approving their own request is refused as ever.
    assert!(matches!(
        domain(
            db.store
                .approve_promotion(p.id, Some("ok"), &dave, at(6))
                .await
        ),
        DomainError::Forbidden(_)
    ));
    let applied = db
        .store
        .approve_promotion(p.id, Some("ok"), &bob, at(7))
        .await
        .expect("approved");
    assert_eq!(applied.status, PromotionStatus::Applied);
    // Past the policy's 4 hours a request expires.
    register(&db, "chat:v3", at(8)).await;
    let late = db
        .store
        .request_promotion(&id("chat:v3"), "staging", "try it", &dave, at(10))
        .await
        .expect("requested");
    assert!(matches!(
        domain(db.store.approve_promotion(late.id, Some("ok"), &bob, at(10).plus_hours(4)).await),
        DomainError::Conflict(m) if m.contains("expired")
    ));
}

fn one_off(name: &str, env: &str, from: Timestamp, to: Timestamp) -> NewFreeze {
    NewFreeze {
        name: name.into(),
        environment: env.into(),
        schedule: Schedule::OneOff { from, to },
    }
}

async fn a_freeze_refuses_the_approval_that_would_apply_a_promotion_and_stores_nothing(
    db: Arc<TestDb>,
) {
    let bob = user(&db, "bob", Role::Approver).await;
    let carol = user(&db, "carol", Role::Approver).await;
    let p = pending_promotion(&db).await;
    let w = db
        .store
        .create_freeze(
            &one_off("quarter end", "production", at(10), at(100)),
            "alice",
            at(6),
        )
        .await
        .expect("freeze created");
    // An approval that does not complete the policy is recorded.
    db.store
        .approve_promotion(p.id, Some("ok"), &bob, at(20))
        .await
        .expect("first approval");
    match domain(
        db.store
            .approve_promotion(p.id, Some("ok"), &carol, at(30))
            .await,
    ) {
        DomainError::Frozen(m) => {
            assert!(m.contains("frozen by \"quarter end\""), "{m}");
            assert!(m.contains(&at(100).to_rfc3339()), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let read = db.store.get_promotion(p.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.approvals.len()),
        (PromotionStatus::Pending, 1)
    );
    // Staging is not frozen by production's window.
    assert!(db
        .store
        .freezes_in_force(at(30))
        .await
        .unwrap()
        .iter()
        .all(|f| f.environment == "production"));
    let applied = db
        .store
        .approve_promotion(p.id, Some("ok"), &carol, at(100))
        .await
        .expect("after the window");
    assert_eq!(applied.status, PromotionStatus::Applied);
    let removed = db
        .store
        .remove_freeze(w.id, "alice", at(101))
        .await
        .expect("removed");
    assert_eq!(removed.name, "quarter end");
    assert!(db.store.list_freezes(None).await.unwrap().is_empty());
    assert!(matches!(
        domain(db.store.remove_freeze(w.id, "alice", at(102)).await),
        DomainError::NotFound(_)
    ));
    let acts: Vec<String> = all_events(&db)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(acts.contains(&action::FREEZE_CREATED.to_owned()));
    assert!(acts.contains(&action::FREEZE_REMOVED.to_owned()));
}

async fn a_weekly_freeze_across_the_spring_dst_change_refuses_requests_in_berlin_wall_clock_time(
    db: Arc<TestDb>,
) {
    let dave = user(&db, "dave", Role::Deployer).await;
    register(&db, "chat:v2", at(0)).await;
    let weekly = NewFreeze {
        name: "saturday night".into(),
        environment: "staging".into(),
        schedule: Schedule::Weekly {
            days: vec![Day::Sat],
            start: "22:00".into(),
            duration_minutes: 8 * 60,
            time_zone: "Europe/Berlin".into(),
        },
    };
    db.store
        .create_freeze(&weekly, "alice", at(0))
        .await
        .expect("created");
    assert!(matches!(
        domain(db.store.create_freeze(&weekly, "alice", at(0)).await),
        DomainError::Conflict(_)
    ));
    // Sunday 29 March 2026 03:30Z is 05:30 CEST: inside (the window ends at 06:00 Berlin = 04:00Z).
    let inside = Timestamp::parse("2026-03-29T03:30:00Z").unwrap();
    match domain(
        db.store
            .request_promotion(&id("chat:v2"), "staging", "now", &dave, inside)
            .await,
    ) {
        DomainError::Frozen(m) => assert!(m.contains("until 2026-03-29T04:00:00"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(db.store.list_promotions(None).await.unwrap().is_empty());
    // 04:30Z would still be inside an 8-real-hour window from 21:00Z; wall clock says it is over.
    let after = Timestamp::parse("2026-03-29T04:30:00Z").unwrap();
    db.store
        .request_promotion(&id("chat:v2"), "staging", "now", &dave, after)
        .await
        .expect("after the window");
}

async fn a_freeze_refuses_operations_with_its_name_and_end_never_rollbacks_and_an_approved_override_lets_them_through(
    db: Arc<TestDb>,
) {
    let drivers = Drivers::default();
    serving_v1(&db, &drivers, json!({})).await;
    let runner = spawn(db.store.clone(), drivers.clone(), fast());
    let op = start(&db.store, "dev-1", OperationKind::BlueGreen, "chat:2").await;
    assert_eq!(
        finished(&db.store, op.id).await.state,
        OperationState::Succeeded
    );

    let now = Timestamp::now();
    let end = now.plus_hours(1);
    db.store
        .create_freeze(
            &one_off("incident 42", "development", now.plus_hours(-1), end),
            "alice",
            now,
        )
        .await
        .expect("freeze");
    let refused = db
        .store
        .start_operation(
            request("dev-1", OperationKind::BlueGreen, Some("chat:1")),
            "alice",
            Timestamp::now(),
        )
        .await;
    match domain(refused) {
        DomainError::Frozen(m) => {
            assert!(m.contains("frozen by \"incident 42\""), "{m}");
            assert!(m.contains(&end.to_rfc3339()), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let states = db.store.freezes_in_force(Timestamp::now()).await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(
        (states[0].window.name.as_str(), states[0].ends_at),
        ("incident 42", end)
    );
    assert!(states[0].overridden_by.is_none());

    // A rollback is never blocked.
    let rb = db
        .store
        .start_operation(
            request("dev-1", OperationKind::Rollback, None),
            "carol",
            Timestamp::now(),
        )
        .await
        .expect("rollback starts inside the freeze");
    assert_eq!(
        finished(&db.store, rb.id).await.state,
        OperationState::Succeeded
    );

    // An emergency override: an admin asks, a second person approves.
    let alice = user(&db, "alice", Role::Admin).await;
    let bob = user(&db, "bob", Role::Approver).await;
    assert!(matches!(
        domain(
            db.store
                .request_override("development", " ", 2, &alice, Timestamp::now())
                .await
        ),
        DomainError::Invalid(_)
    ));
    let o = db
        .store
        .request_override(
            "development",
            "hotfix for CVE-2026-1",
            2,
            &alice,
            Timestamp::now(),
        )
        .await
        .expect("override requested");
    // Requested is not yet in force.
    assert!(matches!(
        domain(
            db.store
                .start_operation(
                    request("dev-1", OperationKind::BlueGreen, Some("chat:2")),
                    "alice",
                    Timestamp::now()
                )
                .await
        ),
        DomainError::Frozen(_)
    ));
    assert!(matches!(
        domain(
            db.store
                .approve_override(o.id, &alice, Timestamp::now())
                .await
        ),
        DomainError::Forbidden(_)
    ));
    let approved = db
        .store
        .approve_override(o.id, &bob, Timestamp::now())
        .await
        .expect("approved by a second person");
    assert_eq!(approved.approved_by.as_deref(), Some("bob"));
    assert!(matches!(
        domain(
            db.store
                .approve_override(o.id, &bob, Timestamp::now())
                .await
        ),
        DomainError::Conflict(_)
    ));
    let op = db
        .store
        .start_operation(
            request("dev-1", OperationKind::BlueGreen, Some("chat:2")),
            "alice",
            Timestamp::now(),
        )
        .await
        .expect("the override lets it through");
    assert_eq!(
        finished(&db.store, op.id).await.state,
        OperationState::Succeeded
    );
    runner.abort();
    let states = db.store.freezes_in_force(Timestamp::now()).await.unwrap();
    assert_eq!(states[0].overridden_by.as_ref().map(|o| o.id), Some(o.id));
    assert_eq!(
        db.store.list_overrides(Some("development")).await.unwrap()[0],
        approved
    );

    let events = all_events(&db).await;
    let started = events
        .iter()
        .rfind(|e| e.action == action::OPERATION_STARTED)
        .expect("operation.started");
    assert_eq!(started.details["freeze_override"], json!(o.id));
    let requested = events
        .iter()
        .find(|e| e.action == action::FREEZE_OVERRIDE_REQUESTED)
        .expect("freeze.override_requested");
    assert_eq!(
        (requested.actor.as_str(), requested.reason.as_deref()),
        ("alice", Some("hotfix for CVE-2026-1"))
    );
    let approved_event = events
        .iter()
        .find(|e| e.action == action::FREEZE_OVERRIDE_APPROVED)
        .expect("freeze.override_approved");
    assert_eq!(approved_event.actor, "bob");
    assert_eq!(approved_event.details["override_id"], json!(o.id));
}
