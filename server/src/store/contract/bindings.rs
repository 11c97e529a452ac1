//! The contract of role bindings: created, listed and removed with a ledger
//! event each, carried by token and session identities (through the token
//! cache), and followed by who may approve where.

use std::sync::Arc;

use serde_json::json;
use switchyard_domain::access::{Binding, Role, Scope, Subject};
use switchyard_domain::ledger::action;
use switchyard_domain::{DomainError, Stage};

use super::{all_events, at, domain, id, in_production, move_to, register, run, TestDb, MANUAL};
use crate::store::identity::NewSession;

contract_tests!(
    creating_a_user_binds_their_role_on_all_and_bindings_are_added_and_removed_with_ledger_events,
    tokens_and_sessions_carry_the_users_and_their_groups_bindings_and_see_changes_at_once,
    bad_bindings_are_refused_and_change_nothing,
    the_last_admin_binding_on_all_is_kept,
    who_may_approve_follows_the_bindings_of_the_promotions_environment,
    bindings_are_found_by_group_names_for_callers_that_are_not_stored_users,
);

fn user_binding(name: &str, role: Role, scope: Scope) -> Binding {
    Binding::new(Subject::User(name.into()), role, scope)
}

fn group_binding(name: &str, role: Role, scope: Scope) -> Binding {
    Binding::new(Subject::Group(name.into()), role, scope)
}

fn env(e: &str) -> Scope {
    Scope::Environment(e.into())
}

async fn creating_a_user_binds_their_role_on_all_and_bindings_are_added_and_removed_with_ledger_events(
    db: Arc<TestDb>,
) {
    let s = &db.store;
    s.create_user("alice", Role::Viewer, "$argon2id$x", "root", at(0))
        .await
        .expect("user");
    let listed = s.list_bindings().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].binding,
        user_binding("alice", Role::Viewer, Scope::All)
    );
    assert_eq!(listed[0].created_by, "root");
    let staging = s
        .create_binding(
            &group_binding("platform", Role::Deployer, env("staging")),
            "root",
            at(1),
        )
        .await
        .expect("group binding");
    assert_eq!(s.list_bindings().await.expect("list").len(), 2);
    let removed = s
        .remove_binding(staging.id, "root", at(2))
        .await
        .expect("removed");
    assert_eq!(removed.binding, staging.binding);
    let left: Vec<Binding> = s
        .list_bindings()
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.binding)
        .collect();
    assert_eq!(left, [user_binding("alice", Role::Viewer, Scope::All)]);
    let events: Vec<_> = all_events(&db)
        .await
        .into_iter()
        .filter(|e| e.action.starts_with("binding."))
        .collect();
    let seen: Vec<(&str, &serde_json::Value, Option<&str>)> = events
        .iter()
        .map(|e| (e.action.as_str(), &e.details, e.environment.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                action::BINDING_CREATED,
                &json!({"binding_id": listed[0].id, "subject_kind": "user", "subject": "alice", "role": "viewer", "scope": "all"}),
                None
            ),
            (
                action::BINDING_CREATED,
                &json!({"binding_id": staging.id, "subject_kind": "group", "subject": "platform", "role": "deployer", "scope": "staging"}),
                Some("staging")
            ),
            (
                action::BINDING_REMOVED,
                &json!({"binding_id": staging.id, "subject_kind": "group", "subject": "platform", "role": "deployer", "scope": "staging"}),
                Some("staging")
            ),
        ]
    );
    assert!(events.iter().all(|e| e.actor == "root"));
}

async fn tokens_and_sessions_carry_the_users_and_their_groups_bindings_and_see_changes_at_once(
    db: Arc<TestDb>,
) {
    let s = &db.store;
    s.create_user("gina", Role::Viewer, "$argon2id$x", "root", at(0))
        .await
        .expect("user");
    s.create_token("gina-ci", "gina", "hash-g", None, "root", at(1))
        .await
        .expect("token");
    let before = s
        .token_identity("hash-g", at(2))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(
        before.bindings,
        [user_binding("gina", Role::Viewer, Scope::All)]
    );
    // Read again (the cache may answer) after a change: it must show the change.
    s.set_user_groups("gina", &["platform".into()], "root", at(3))
        .await
        .expect("groups");
    let b = s
        .create_binding(
            &group_binding("platform", Role::Deployer, env("staging")),
            "root",
            at(4),
        )
        .await
        .expect("binding");
    s.create_binding(
        &group_binding("ml-risk", Role::Approver, Scope::All),
        "root",
        at(4),
    )
    .await
    .expect("another group's binding");
    let after = s
        .token_identity("hash-g", at(5))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(
        after.bindings,
        [
            user_binding("gina", Role::Viewer, Scope::All),
            group_binding("platform", Role::Deployer, env("staging")),
        ]
    );
    assert!(after.check(Role::Deployer, Some("staging"), "x").is_ok());
    assert!(after
        .check(Role::Deployer, Some("production"), "x")
        .is_err());
    s.create_session(
        NewSession {
            id_hash: "sess-g",
            csrf_token: "c",
            username: "gina",
            address: "127.0.0.1",
            expires_at: at(60),
        },
        at(6),
    )
    .await
    .expect("session");
    let session = s
        .session("sess-g", at(7))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(session.identity.bindings, after.bindings);
    s.remove_binding(b.id, "root", at(8))
        .await
        .expect("removed");
    let removed = s
        .token_identity("hash-g", at(9))
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(
        removed.bindings,
        [user_binding("gina", Role::Viewer, Scope::All)]
    );
    assert_eq!(
        s.bindings_of("gina").await.expect("bindings"),
        [user_binding("gina", Role::Viewer, Scope::All)]
    );
}

async fn bad_bindings_are_refused_and_change_nothing(db: Arc<TestDb>) {
    let s = &db.store;
    s.create_user("alice", Role::Deployer, "$argon2id$x", "root", at(0))
        .await
        .expect("user");
    let head = all_events(&db).await.len();
    assert!(matches!(
        domain(s.create_binding(&user_binding("nobody", Role::Admin, Scope::All), "root", at(1)).await),
        DomainError::NotFound(m) if m.contains("nobody")
    ));
    assert!(matches!(
        domain(s.create_binding(&user_binding("alice", Role::Admin, env("moon")), "root", at(1)).await),
        DomainError::NotFound(m) if m.contains("moon")
    ));
    assert!(matches!(
        domain(s.create_binding(&user_binding("alice", Role::Deployer, Scope::All), "root", at(1)).await),
        DomainError::Conflict(m) if m.contains("already has")
    ));
    assert!(matches!(
        domain(s.remove_binding(999, "root", at(1)).await),
        DomainError::NotFound(_)
    ));
    assert_eq!(all_events(&db).await.len(), head);
    assert_eq!(s.list_bindings().await.expect("list").len(), 1);
}

async fn the_last_admin_binding_on_all_is_kept(db: Arc<TestDb>) {
    let s = &db.store;
    s.create_user("root", Role::Admin, "$argon2id$x", "setup", at(0))
        .await
        .expect("user");
    let first = s.list_bindings().await.expect("list").remove(0);
    assert!(matches!(
        domain(s.remove_binding(first.id, "root", at(1)).await),
        DomainError::Conflict(m) if m.contains("last admin binding")
    ));
    // Through a group it counts too.
    s.set_user_groups("root", &["ops".into()], "root", at(2))
        .await
        .expect("groups");
    s.create_binding(
        &group_binding("ops", Role::Admin, Scope::All),
        "root",
        at(3),
    )
    .await
    .expect("group admin");
    s.remove_binding(first.id, "root", at(4))
        .await
        .expect("another admin binding remains");
}

async fn who_may_approve_follows_the_bindings_of_the_promotions_environment(db: Arc<TestDb>) {
    let s = &db.store;
    in_production(&db, "chat:v1", at(1)).await;
    register(&db, "chat:v2", at(2)).await;
    move_to(&db, "chat:v2", Stage::Staging, MANUAL, at(3)).await;
    s.create_user("dave", Role::Deployer, "$argon2id$x", "root", at(4))
        .await
        .expect("dave");
    s.create_user("anna", Role::Approver, "$argon2id$x", "root", at(4))
        .await
        .expect("anna: approver on all");
    s.create_user("sam", Role::Viewer, "$argon2id$x", "root", at(4))
        .await
        .expect("sam");
    s.create_binding(
        &user_binding("sam", Role::Approver, env("staging")),
        "root",
        at(5),
    )
    .await
    .expect("sam approves in staging only");
    s.create_user("rita", Role::Viewer, "$argon2id$x", "root", at(4))
        .await
        .expect("rita");
    s.set_user_groups("rita", &["ml-risk".into()], "root", at(5))
        .await
        .expect("groups");
    s.create_binding(
        &group_binding("ml-risk", Role::Approver, env("production")),
        "root",
        at(5),
    )
    .await
    .expect("ml-risk approves in production");
    let dave = s.bindings_of("dave").await.expect("bindings");
    let dave = crate::store::identity::Identity {
        username: "dave".into(),
        role: Role::Deployer,
        groups: vec![],
        token: None,
        bindings: dave,
    };
    let p = s
        .request_promotion(&id("chat:v2"), "production", "better", &dave, at(6))
        .await
        .expect("requested");
    let requested = all_events(&db)
        .await
        .into_iter()
        .find(|e| e.action == action::PROMOTION_REQUESTED)
        .expect("requested event");
    assert_eq!(
        requested.details["approvers"],
        json!(["anna", "rita"]),
        "{}",
        p.id
    );
}

async fn bindings_are_found_by_group_names_for_callers_that_are_not_stored_users(db: Arc<TestDb>) {
    let s = &db.store;
    s.create_user("alice", Role::Admin, "$argon2id$x", "root", at(0))
        .await
        .expect("alice");
    s.set_user_groups("alice", &["repository:acme/models".into()], "root", at(1))
        .await
        .expect("groups");
    let models = group_binding("repository:acme/models", Role::Deployer, env("staging"));
    let risk = group_binding("ml-risk", Role::Approver, env("production"));
    let other = group_binding("repository:acme/website", Role::Viewer, Scope::All);
    for b in [&models, &risk, &other] {
        s.create_binding(b, "alice", at(2)).await.expect("binding");
    }
    // By group names only: never a user's own binding, never another group's.
    assert_eq!(
        s.group_bindings(&[
            "ml-risk".into(),
            "repository:acme/models".into(),
            "nobody".into()
        ])
        .await
        .expect("by groups"),
        [models.clone(), risk.clone()]
    );
    assert!(s.group_bindings(&[]).await.expect("none").is_empty());
    assert!(s
        .group_bindings(&["alice".into(), "ml-".into(), "%".into()])
        .await
        .expect("no pattern match")
        .is_empty());
    // A caller with groups from its credential gets what a user in those
    // groups gets, through the same query.
    let ci = s
        .caller_identity("jwt:ci", &["repository:acme/models".into()])
        .await
        .expect("caller");
    assert_eq!(ci.bindings, [models.clone()]);
    assert_eq!(ci.role, Role::Viewer, "no role on all");
    assert!(ci.check(Role::Deployer, Some("staging"), "deploy").is_ok());
    let refused = ci
        .check(Role::Deployer, Some("production"), "deploy")
        .expect_err("not in production");
    assert!(refused.to_string().contains("production"), "{refused}");
    let alice = s.bindings_of("alice").await.expect("alice");
    assert_eq!(
        alice,
        [
            user_binding("alice", Role::Admin, Scope::All),
            models.clone()
        ],
        "sessions and tokens read the same bindings for the user's stored groups"
    );
    assert!(s
        .caller_identity("jwt:nobody", &["unbound".into()])
        .await
        .expect("caller")
        .bindings
        .is_empty());
}
