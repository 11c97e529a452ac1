//! The contract of `IdentityStore`: users, tokens, sessions, failed sign-ins
//! and promotions, on SQLite and PostgreSQL like the rest of the suite.

use std::sync::Arc;

use switchyard_domain::access::Role;
use switchyard_domain::ledger::action;
use switchyard_domain::promotion::{Promotion, PromotionStatus};
use switchyard_domain::{DomainError, Stage};

use super::{all_events, at, domain, id, in_production, move_to, register, run, TestDb, MANUAL};
use crate::store::identity::{Identity, NewSession};

contract_tests!(
    groups_are_replaced_as_a_whole_recorded_when_they_change_and_carried_by_tokens_and_sessions,
    tokens_speak_for_their_user_until_revoked_expired_or_the_user_is_disabled,
    sessions_last_until_they_expire_or_end_and_each_sign_in_is_in_the_ledger,
    failed_sign_ins_are_counted_per_username_and_per_address,
    the_requester_cannot_approve_and_two_other_approvers_apply_the_promotion_atomically,
    one_person_approves_once,
    twenty_concurrent_approvals_from_two_servers_apply_the_promotion_exactly_once,
    an_expired_request_cannot_be_approved_and_is_expired_exactly_once,
    a_rejected_request_cannot_be_approved_or_rejected_again,
    only_the_requester_withdraws_a_pending_request_which_then_cannot_be_decided,
    a_retired_version_can_never_be_promoted,
);

fn person(name: &str, role: Role) -> Identity {
    Identity {
        username: name.to_owned(),
        role,
        groups: Vec::new(),
        token: None,
        bindings: vec![switchyard_domain::access::Binding::new(
            switchyard_domain::access::Subject::User(name.to_owned()),
            role,
            switchyard_domain::access::Scope::All,
        )],
    }
}

pub(super) async fn user(db: &TestDb, name: &str, role: Role) -> Identity {
    db.store
        .create_user(name, role, "$argon2id$not-checked-here", "test", at(0))
        .await
        .expect("user created");
    person(name, role)
}

/// chat:v1 in production and pinned there, chat:v2 in staging, and a
/// pending production promotion of chat:v2 requested by dave.
pub(super) async fn pending_promotion(db: &TestDb) -> Promotion {
    in_production(db, "chat:v1", at(1)).await;
    db.store
        .set_pin("production", &id("chat:v1"), None, "admin", at(2))
        .await
        .expect("pinned");
    register(db, "chat:v2", at(3)).await;
    move_to(db, "chat:v2", Stage::Staging, MANUAL, at(4)).await;
    let dave = user(db, "dave", Role::Deployer).await;
    db.store
        .request_promotion(
            &id("chat:v2"),
            "production",
            "better answers",
            &dave,
            at(5),
        )
        .await
        .expect("requested")
}

async fn groups_are_replaced_as_a_whole_recorded_when_they_change_and_carried_by_tokens_and_sessions(
    db: Arc<TestDb>,
) {
    let s = &db.store;
    user(&db, "gina", Role::Deployer).await;
    assert!(matches!(
        domain(
            s.set_user_groups("nobody", &["x".into()], "test", at(1))
                .await
        ),
        DomainError::NotFound(_)
    ));
    let set = s
        .set_user_groups(
            "gina",
            &[
                "ml-risk".into(),
                " platform ".into(),
                "ml-risk".into(),
                "".into(),
            ],
            "test",
            at(2),
        )
        .await
        .expect("groups set");
    assert_eq!(set, ["ml-risk", "platform"]);
    // The same groups again change nothing and record nothing.
    s.set_user_groups(
        "gina",
        &["platform".into(), "ml-risk".into()],
        "test",
        at(3),
    )
    .await
    .expect("same groups");
    s.create_token("gina-ci", "gina", "hash-g", None, "test", at(4))
        .await
        .expect("token");
    let by_token = s
        .token_identity("hash-g", at(5))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(by_token.groups, ["ml-risk", "platform"]);
    s.set_user_groups("gina", &["platform".into()], "test", at(6))
        .await
        .expect("groups narrowed");
    let new = NewSession {
        id_hash: "sess-g",
        csrf_token: "csrf",
        username: "gina",
        address: "127.0.0.1",
        expires_at: at(60),
    };
    s.create_session(new, at(7)).await.expect("session");
    let session = s
        .session("sess-g", at(8))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(session.identity.groups, ["platform"]);
    assert_eq!(s.user_groups("gina").await.expect("groups"), ["platform"]);
    let changes: Vec<_> = all_events(&db)
        .await
        .into_iter()
        .filter(|e| e.action == action::USER_GROUPS_CHANGED)
        .collect();
    assert_eq!(changes.len(), 2, "one event per real change");
    assert_eq!(
        changes[1].details["groups"],
        serde_json::json!(["platform"])
    );
    assert_eq!(
        changes[1].details["before"],
        serde_json::json!(["ml-risk", "platform"])
    );
}

async fn tokens_speak_for_their_user_until_revoked_expired_or_the_user_is_disabled(
    db: Arc<TestDb>,
) {
    let s = &db.store;
    user(&db, "ci", Role::Deployer).await;
    assert!(matches!(
        domain(s.create_user("ci", Role::Admin, "x", "test", at(1)).await),
        DomainError::Conflict(_)
    ));
    s.create_token("ci-main", "ci", "hash-a", None, "test", at(1))
        .await
        .expect("token");
    s.create_token("ci-old", "ci", "hash-b", Some(at(10)), "test", at(1))
        .await
        .expect("token");
    assert!(matches!(
        domain(
            s.create_token("ci-main", "ci", "hash-c", None, "test", at(1))
                .await
        ),
        DomainError::Conflict(_)
    ));

    let who = s
        .token_identity("hash-a", at(20))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(
        (
            who.username.as_str(),
            who.role,
            who.actor(),
            who.token.as_deref()
        ),
        ("ci", Role::Deployer, "ci".to_owned(), Some("ci-main"))
    );
    assert!(s
        .token_identity("hash-b", at(9))
        .await
        .expect("lookup")
        .is_some());
    assert!(
        s.token_identity("hash-b", at(10))
            .await
            .expect("lookup")
            .is_none(),
        "expired"
    );
    assert!(s
        .token_identity("unknown", at(1))
        .await
        .expect("lookup")
        .is_none());

    s.revoke_token("ci-main", "test", at(21))
        .await
        .expect("revoked");
    assert!(
        s.token_identity("hash-a", at(22))
            .await
            .expect("lookup")
            .is_none(),
        "revoked"
    );

    s.create_token("ci-new", "ci", "hash-d", None, "test", at(23))
        .await
        .expect("token");
    s.disable_user("ci", "test", at(24))
        .await
        .expect("disabled");
    assert!(
        s.token_identity("hash-d", at(25))
            .await
            .expect("lookup")
            .is_none(),
        "user disabled"
    );

    let events = all_events(&db).await;
    for secret in ["hash-a", "hash-b", "hash-d"] {
        assert!(
            !events
                .iter()
                .any(|e| e.details.to_string().contains(secret)),
            "{secret} in the ledger"
        );
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for a in [
        action::USER_CREATED,
        action::TOKEN_CREATED,
        action::TOKEN_REVOKED,
        action::USER_DISABLED,
    ] {
        assert!(kinds.contains(&a), "{a} missing from {kinds:?}");
    }
}

async fn sessions_last_until_they_expire_or_end_and_each_sign_in_is_in_the_ledger(db: Arc<TestDb>) {
    let s = &db.store;
    user(&db, "alice", Role::Admin).await;
    let new = NewSession {
        id_hash: "sess",
        csrf_token: "csrf",
        username: "alice",
        address: "10.0.0.1",
        expires_at: at(60),
    };
    s.create_session(new, at(1)).await.expect("session");
    let found = s
        .session("sess", at(2))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(
        (found.identity.username.as_str(), found.csrf_token.as_str()),
        ("alice", "csrf")
    );
    assert!(
        s.session("sess", at(60)).await.expect("lookup").is_none(),
        "expired"
    );
    s.end_session("sess", at(3)).await.expect("ended");
    assert!(
        s.session("sess", at(4)).await.expect("lookup").is_none(),
        "signed out"
    );
    let events = all_events(&db).await;
    let signed_in = events
        .iter()
        .find(|e| e.action == action::SIGNED_IN)
        .expect("signed in event");
    assert_eq!(
        (
            signed_in.actor.as_str(),
            signed_in.details["address"].as_str()
        ),
        ("alice", Some("10.0.0.1"))
    );
    assert!(events
        .iter()
        .any(|e| e.action == action::SIGNED_OUT && e.actor == "alice"));
}

async fn failed_sign_ins_are_counted_per_username_and_per_address(db: Arc<TestDb>) {
    let s = &db.store;
    for (name, address) in [
        ("alice", "10.0.0.1"),
        ("alice", "10.0.0.2"),
        ("bob", "10.0.0.1"),
    ] {
        s.record_failed_sign_in(name, address, at(10))
            .await
            .expect("recorded");
    }
    assert_eq!(
        s.failed_sign_ins_since("alice", "10.0.0.1", at(5))
            .await
            .expect("count"),
        (2, 2)
    );
    assert_eq!(
        s.failed_sign_ins_since("alice", "10.0.0.1", at(11))
            .await
            .expect("count"),
        (0, 0)
    );
    let failed: Vec<_> = all_events(&db)
        .await
        .into_iter()
        .filter(|e| e.action == action::SIGN_IN_FAILED)
        .collect();
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[0].details["username"], "alice");
}

async fn the_requester_cannot_approve_and_two_other_approvers_apply_the_promotion_atomically(
    db: Arc<TestDb>,
) {
    let s = &db.store;
    let p = pending_promotion(&db).await;
    assert_eq!(
        (p.status, p.required_approvals, p.to_stage),
        (PromotionStatus::Pending, 2, Stage::Production)
    );
    // Not even an admin may approve their own request.
    let dave_as_admin = person("dave", Role::Admin);
    assert!(matches!(
        domain(s.approve_promotion(p.id, None, &dave_as_admin, at(6)).await),
        DomainError::Forbidden(_)
    ));

    let bob = user(&db, "bob", Role::Approver).await;
    let carol = user(&db, "carol", Role::Approver).await;
    let after_one = s
        .approve_promotion(p.id, Some("looks good"), &bob, at(7))
        .await
        .expect("approved");
    assert_eq!(
        (after_one.status, after_one.approvals.len()),
        (PromotionStatus::Pending, 1)
    );
    assert_eq!(
        s.get_version(&id("chat:v2"))
            .await
            .expect("read")
            .expect("v2")
            .stage,
        Stage::Staging
    );

    let applied = s
        .approve_promotion(p.id, None, &carol, at(8))
        .await
        .expect("approved");
    assert_eq!(applied.status, PromotionStatus::Applied);
    assert!(
        applied
            .approvals
            .iter()
            .all(|a| a.config_hash == p.config_hash),
        "approvals bind to the config"
    );
    let stage = |v: &'static str| {
        let s = s.clone();
        async move {
            s.get_version(&id(v))
                .await
                .expect("read")
                .expect("version")
                .stage
        }
    };
    assert_eq!(stage("chat:v2").await, Stage::Production);
    assert_eq!(stage("chat:v1").await, Stage::Deprecated);
    let env = s.list_environments().await.expect("environments");
    let prod = env
        .iter()
        .find(|e| e.name == "production")
        .expect("production");
    assert_eq!(prod.pins[0].full_id, id("chat:v2"));

    let events = all_events(&db).await;
    let applying: Vec<&str> = events
        .iter()
        .filter(|e| e.at == at(8))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        applying,
        [
            action::PROMOTION_APPROVED,
            action::STAGE_CHANGED,
            action::STAGE_CHANGED,
            action::DEPRECATION,
            action::PIN_CHANGED,
            action::PROMOTION_APPLIED
        ]
    );
    assert!(events
        .iter()
        .filter(|e| e.at == at(8))
        .all(|e| e.actor == "carol"));
    assert_eq!(
        s.list_promotions(Some(PromotionStatus::Applied))
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(s
        .list_promotions(Some(PromotionStatus::Pending))
        .await
        .expect("list")
        .is_empty());
}

async fn one_person_approves_once(db: Arc<TestDb>) {
    let p = pending_promotion(&db).await;
    let bob = user(&db, "bob", Role::Approver).await;
    db.store
        .approve_promotion(p.id, None, &bob, at(6))
        .await
        .expect("approved");
    let again = Identity {
        token: Some("bob-ci".into()),
        ..bob
    };
    assert!(matches!(
        domain(db.store.approve_promotion(p.id, None, &again, at(7)).await),
        DomainError::Conflict(_)
    ));
    assert_eq!(
        db.store
            .get_promotion(p.id)
            .await
            .expect("read")
            .expect("found")
            .approvals
            .len(),
        1
    );
}

async fn twenty_concurrent_approvals_from_two_servers_apply_the_promotion_exactly_once(
    db: Arc<TestDb>,
) {
    let p = pending_promotion(&db).await;
    let other = db.another_server().await;
    let mut approvers = Vec::new();
    for n in 0..20 {
        approvers.push(user(&db, &format!("approver{n}"), Role::Approver).await);
    }
    let pid = p.id;
    let mut tasks = Vec::new();
    for (n, who) in approvers.into_iter().enumerate() {
        let store = if n % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            store.approve_promotion(pid, None, &who, at(10)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(e) => assert!(
                matches!(
                    e,
                    crate::store::StoreError::Domain(DomainError::Conflict(_))
                ),
                "{e}"
            ),
        }
    }
    assert_eq!(ok, 2, "exactly the two approvals needed land");
    let events = all_events(&db).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == action::PROMOTION_APPLIED)
            .count(),
        1
    );
    assert_eq!(
        db.store
            .get_promotion(p.id)
            .await
            .expect("read")
            .expect("found")
            .status,
        PromotionStatus::Applied
    );
    assert!(db.store.audit_verify().await.expect("verify").ok);
}

async fn an_expired_request_cannot_be_approved_and_is_expired_exactly_once(db: Arc<TestDb>) {
    let p = pending_promotion(&db).await;
    let bob = user(&db, "bob", Role::Approver).await;
    let late = p.expires_at;
    let other = db.another_server().await;
    let (a, b) = tokio::join!(
        db.store.expire_promotions(late),
        other.expire_promotions(late)
    );
    let expired: Vec<i64> = [a.expect("job"), b.expect("job")].concat();
    assert_eq!(expired, [p.id], "one server expires it");
    assert!(matches!(
        domain(db.store.approve_promotion(p.id, None, &bob, late).await),
        DomainError::Conflict(_)
    ));
    let events = all_events(&db).await;
    let expiries: Vec<_> = events
        .iter()
        .filter(|e| e.action == action::PROMOTION_EXPIRED)
        .collect();
    assert_eq!(expiries.len(), 1);
    assert_eq!(expiries[0].actor, "system");
    assert_eq!(
        db.store
            .get_version(&id("chat:v2"))
            .await
            .expect("read")
            .expect("v2")
            .stage,
        Stage::Staging
    );
}

async fn a_rejected_request_cannot_be_approved_or_rejected_again(db: Arc<TestDb>) {
    let p = pending_promotion(&db).await;
    let bob = user(&db, "bob", Role::Approver).await;
    let carol = user(&db, "carol", Role::Approver).await;
    assert!(matches!(
        domain(db.store.reject_promotion(p.id, " ", &bob, at(6)).await),
        DomainError::Invalid(_)
    ));
    let rejected = db
        .store
        .reject_promotion(p.id, "eval regressed", &bob, at(6))
        .await
        .expect("rejected");
    assert_eq!(
        (rejected.status, rejected.decision_reason.as_deref()),
        (PromotionStatus::Rejected, Some("eval regressed"))
    );
    assert!(matches!(
        domain(db.store.approve_promotion(p.id, None, &carol, at(7)).await),
        DomainError::Conflict(_)
    ));
    assert!(matches!(
        domain(
            db.store
                .reject_promotion(p.id, "again", &carol, at(7))
                .await
        ),
        DomainError::Conflict(_)
    ));
}

async fn only_the_requester_withdraws_a_pending_request_which_then_cannot_be_decided(db: Arc<TestDb>) {
    let p = pending_promotion(&db).await;
    let dave = person("dave", Role::Deployer);
    let bob = user(&db, "bob", Role::Approver).await;
    let before = all_events(&db).await.len();
    assert!(matches!(
        domain(db.store.withdraw_promotion(p.id, "mine now", &bob, at(6)).await),
        DomainError::Forbidden(_)
    ));
    assert!(matches!(
        domain(db.store.withdraw_promotion(p.id, " ", &dave, at(6)).await),
        DomainError::Invalid(_)
    ));
    assert_eq!(all_events(&db).await.len(), before, "refusals record nothing");
    let withdrawn = db
        .store
        .withdraw_promotion(p.id, "found a regression first", &dave, at(6))
        .await
        .expect("withdrawn");
    assert_eq!(
        (
            withdrawn.status,
            withdrawn.decided_by.as_deref(),
            withdrawn.decision_reason.as_deref()
        ),
        (PromotionStatus::Withdrawn, Some("dave"), Some("found a regression first"))
    );
    let stored = db.store.get_promotion(p.id).await.expect("read").expect("kept");
    assert_eq!(stored.status, PromotionStatus::Withdrawn);
    let listed = db
        .store
        .list_promotions(Some(PromotionStatus::Withdrawn))
        .await
        .expect("listed");
    assert_eq!(listed.iter().map(|p| p.id).collect::<Vec<_>>(), [p.id]);
    assert!(matches!(
        domain(db.store.approve_promotion(p.id, None, &bob, at(7)).await),
        DomainError::Conflict(_)
    ));
    assert!(matches!(
        domain(db.store.withdraw_promotion(p.id, "again", &dave, at(7)).await),
        DomainError::Conflict(_)
    ));
    let events = all_events(&db).await;
    let last = events
        .iter()
        .rfind(|e| e.action == action::PROMOTION_WITHDRAWN)
        .expect("a promotion.withdrawn event");
    assert_eq!(
        (last.actor.as_str(), last.reason.as_deref()),
        ("dave", Some("found a regression first"))
    );
    assert_eq!(
        db.store
            .get_version(&id("chat:v2"))
            .await
            .expect("read")
            .expect("v2")
            .stage,
        Stage::Staging,
        "nothing moved"
    );
}

async fn a_retired_version_can_never_be_promoted(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    in_production(&db, "chat:v2", at(1)).await;
    db.store
        .change_stage(
            &id("chat:v1"),
            Stage::Retired,
            super::ADMIN,
            Some("broken"),
            "alice",
            at(2),
        )
        .await
        .expect("retired early");
    let dave = user(&db, "dave", Role::Deployer).await;
    for env in ["development", "staging", "production"] {
        let refused = db
            .store
            .request_promotion(&id("chat:v1"), env, "rollback", &dave, at(3))
            .await;
        assert!(matches!(domain(refused), DomainError::Retired(_)), "{env}");
    }
}
