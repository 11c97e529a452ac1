//! The contract of `SsoStore`: started sign-ins are single-use and expire;
//! a person from the identity provider becomes one user, never taking over
//! another; role and groups follow the provider at each sign-in.

use std::sync::Arc;

use switchyard_domain::access::Role;
use switchyard_domain::ledger::action;
use switchyard_domain::sso::disambiguated_username;

use super::{all_events, at, run, TestDb};
use crate::store::sso::{PendingSignIn, SsoPerson};

contract_tests!(
    a_started_sign_in_is_taken_once_and_not_after_it_expires,
    the_first_sign_in_creates_the_user_and_later_ones_follow_the_providers_role_and_groups,
    a_person_from_the_provider_never_takes_over_an_existing_username,
    a_disabled_user_signing_in_changes_nothing,
    serving_at_names_an_approver_from_the_provider_by_issuer_subject_name_and_email,
    request_lookup_names_the_approvers_by_their_provider_identity_and_the_policy_in_force,
);

fn pending(state: &str, minutes: i64) -> PendingSignIn {
    PendingSignIn {
        state_hash: state.to_owned(),
        nonce: format!("nonce-{state}"),
        pkce_verifier: format!("verifier-{state}"),
        created_at: at(minutes),
        expires_at: at(minutes + 10),
    }
}

fn person<'a>(subject: &'a str, groups: &'a [String], role: Role) -> SsoPerson<'a> {
    SsoPerson {
        issuer: "https://idp.example.test",
        subject,
        preferred_username: Some(subject),
        display_name: Some("Alice Admin"),
        email: Some("alice@example.test"),
        groups,
        role,
        role_from_map: true,
    }
}

async fn a_started_sign_in_is_taken_once_and_not_after_it_expires(db: Arc<TestDb>) {
    let s = &db.store;
    s.start_sso_sign_in(&pending("s1", 0))
        .await
        .expect("stored");
    s.start_sso_sign_in(&pending("s2", 1))
        .await
        .expect("stored");
    assert_eq!(
        s.take_sso_sign_in("s1", at(2)).await.expect("taken"),
        Some(pending("s1", 0))
    );
    // Replayed: gone.
    assert_eq!(s.take_sso_sign_in("s1", at(2)).await.expect("read"), None);
    assert_eq!(
        s.take_sso_sign_in("never", at(2)).await.expect("read"),
        None
    );
    // Past its expiry it is not answered, and it is gone afterwards too.
    assert_eq!(s.take_sso_sign_in("s2", at(11)).await.expect("read"), None);
    assert_eq!(s.take_sso_sign_in("s2", at(5)).await.expect("read"), None);
    // Starting a sign-in prunes the expired ones.
    s.start_sso_sign_in(&pending("s3", 0))
        .await
        .expect("stored");
    s.start_sso_sign_in(&pending("s4", 30))
        .await
        .expect("stored");
    assert_eq!(s.take_sso_sign_in("s3", at(5)).await.expect("read"), None);
    // The same state twice is refused by the database.
    assert!(s.start_sso_sign_in(&pending("s4", 31)).await.is_err());
    // No ledger events: a started sign-in is not yet anything.
    assert!(all_events(&db).await.is_empty());
}

async fn the_first_sign_in_creates_the_user_and_later_ones_follow_the_providers_role_and_groups(
    db: Arc<TestDb>,
) {
    let s = &db.store;
    let groups = vec!["platform".to_owned(), "ml-admins".to_owned()];
    let first = s
        .sso_sign_in(&person("alice", &groups, Role::Admin), at(1))
        .await
        .expect("signed in");
    assert!(first.created);
    assert_eq!(first.user.username, "alice");
    assert_eq!(first.user.role, Role::Admin);
    assert_eq!(first.groups, ["ml-admins", "platform"]);
    assert_eq!(
        s.user_groups("alice").await.expect("groups"),
        ["ml-admins", "platform"]
    );
    let account = s
        .sso_account("alice")
        .await
        .expect("read")
        .expect("an sso account");
    assert_eq!(
        (
            account.issuer.as_str(),
            account.subject.as_str(),
            account.email.as_deref()
        ),
        (
            "https://idp.example.test",
            "alice",
            Some("alice@example.test")
        )
    );
    // No password matches an SSO user's.
    let (_, hash) = s
        .user_credentials("alice")
        .await
        .expect("read")
        .expect("a user");
    assert!(!crate::auth::password::verify("", &hash));

    // The same groups again: the same user, nothing recorded but the sign-in time.
    let events_before = all_events(&db).await.len();
    let again = s
        .sso_sign_in(&person("alice", &groups, Role::Admin), at(2))
        .await
        .expect("signed in");
    assert!(!again.created);
    assert_eq!(again.user.username, "alice");
    assert_eq!(all_events(&db).await.len(), events_before);
    assert_eq!(
        s.sso_account("alice")
            .await
            .expect("read")
            .expect("account")
            .last_sign_in_at,
        at(2)
    );

    // The provider moved her to ml-risk: the role and groups follow.
    let risk = vec!["ml-risk".to_owned()];
    let moved = s
        .sso_sign_in(&person("alice", &risk, Role::Approver), at(3))
        .await
        .expect("signed in");
    assert_eq!(
        (moved.user.role, moved.groups.clone()),
        (Role::Approver, risk.clone())
    );
    let users = s.list_users().await.expect("users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, Role::Approver);

    let events = all_events(&db).await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            action::USER_CREATED,
            action::USER_GROUPS_CHANGED,
            action::USER_ROLE_CHANGED,
            action::USER_GROUPS_CHANGED
        ]
    );
    assert_eq!(events[0].details["source"], "sso");
    assert_eq!(events[0].details["subject"], "alice");
    assert_eq!(events[0].actor, "alice");
    assert_eq!(events[2].details["before"], "admin");
    assert_eq!(events[2].details["role"], "approver");
}

async fn a_person_from_the_provider_never_takes_over_an_existing_username(db: Arc<TestDb>) {
    let s = &db.store;
    s.create_user("alice", Role::Viewer, "$argon2id$local", "test", at(0))
        .await
        .expect("local user");
    let groups = vec!["ml-admins".to_owned()];
    let sso = s
        .sso_sign_in(&person("alice", &groups, Role::Admin), at(1))
        .await
        .expect("signed in");
    let expected = disambiguated_username("alice", "https://idp.example.test", "alice");
    assert_eq!(sso.user.username, expected);
    // The local alice is untouched.
    let (local, hash) = s
        .user_credentials("alice")
        .await
        .expect("read")
        .expect("local alice");
    assert_eq!(
        (local.role, hash.as_str()),
        (Role::Viewer, "$argon2id$local")
    );
    assert!(s.user_groups("alice").await.expect("groups").is_empty());
    assert_eq!(s.sso_account("alice").await.expect("read"), None);
    // The next sign-in finds the same user again.
    let again = s
        .sso_sign_in(&person("alice", &groups, Role::Admin), at(2))
        .await
        .expect("signed in");
    assert_eq!(
        (again.user.username.as_str(), again.created),
        (expected.as_str(), false)
    );
    // Another issuer's "alice" is another person.
    let other = SsoPerson {
        issuer: "https://other.example.test",
        ..person("alice", &groups, Role::Admin)
    };
    let third = s.sso_sign_in(&other, at(3)).await.expect("signed in");
    assert_ne!(third.user.username, expected);
    assert_ne!(third.user.username, "alice");
    assert_eq!(s.list_users().await.expect("users").len(), 3);
}

async fn a_disabled_user_signing_in_changes_nothing(db: Arc<TestDb>) {
    let s = &db.store;
    let groups = vec!["ml-admins".to_owned()];
    s.sso_sign_in(&person("alice", &groups, Role::Admin), at(1))
        .await
        .expect("signed in");
    s.disable_user("alice", "admin", at(2))
        .await
        .expect("disabled");
    let before = all_events(&db).await.len();
    let risk = vec!["ml-risk".to_owned()];
    let refused = s
        .sso_sign_in(&person("alice", &risk, Role::Approver), at(3))
        .await
        .expect("answered");
    assert!(refused.user.disabled);
    assert_eq!(refused.user.role, Role::Admin);
    assert_eq!(refused.groups, ["ml-admins"]);
    assert_eq!(all_events(&db).await.len(), before);
}

async fn serving_at_names_an_approver_from_the_provider_by_issuer_subject_name_and_email(
    db: Arc<TestDb>,
) {
    let p = super::identity::pending_promotion(&db).await;
    let groups = vec!["ml-risk".to_owned()];
    let signed = db
        .store
        .sso_sign_in(&person("bob", &groups, Role::Approver), at(6))
        .await
        .expect("signed in");
    let bob = crate::store::identity::Identity {
        groups: groups.clone(),
        ..crate::store::identity::Identity::with_role_on_all(&signed.user.username, Role::Approver)
    };
    let carol = super::identity::user(&db, "carol", Role::Approver).await;
    db.store
        .approve_promotion(p.id, None, &bob, at(7))
        .await
        .expect("bob approves");
    db.store
        .approve_promotion(p.id, None, &carol, at(8))
        .await
        .expect("carol approves");
    let answer = db
        .store
        .serving_at(at(9), Some("production"), None)
        .await
        .expect("serving at");
    let pin = answer
        .pins
        .iter()
        .find(|pin| pin.full_id.to_string() == "chat:v2")
        .expect("chat:v2 pinned");
    let promotion = pin.promotion.as_ref().expect("the promotion behind the pin");
    let by_name = |name: &str| {
        promotion
            .approvers
            .iter()
            .find(|a| a.username == name)
            .unwrap_or_else(|| panic!("{name} among {:?}", promotion.approvers))
    };
    let sso = by_name(&signed.user.username).sso.clone().expect("bob's identity at the provider");
    assert_eq!(
        (sso.issuer.as_str(), sso.subject.as_str(), sso.email.as_deref()),
        ("https://idp.example.test", "bob", Some("alice@example.test"))
    );
    assert_eq!(by_name(&signed.user.username).groups, groups);
    assert_eq!(by_name("carol").sso, None, "a local user has no provider identity");
}

async fn request_lookup_names_the_approvers_by_their_provider_identity_and_the_policy_in_force(
    db: Arc<TestDb>,
) {
    super::new_cluster(&db, "prod-eu", "production").await;
    let p = super::identity::pending_promotion(&db).await;
    let groups = vec!["ml-risk".to_owned()];
    let signed = db
        .store
        .sso_sign_in(&person("bob", &groups, Role::Approver), at(6))
        .await
        .expect("signed in");
    let bob = crate::store::identity::Identity {
        groups: groups.clone(),
        ..crate::store::identity::Identity::with_role_on_all(&signed.user.username, Role::Approver)
    };
    let carol = super::identity::user(&db, "carol", Role::Approver).await;
    db.store
        .approve_promotion(p.id, Some("risk ok"), &bob, at(7))
        .await
        .expect("bob approves");
    db.store
        .approve_promotion(p.id, None, &carol, at(8))
        .await
        .expect("carol approves");
    db.store
        .insert_request_records(&[
            super::record("before", "chat:v2", at(7)),
            super::record("after", "chat:v2", at(9)),
        ])
        .await
        .expect("records");

    let found = db
        .store
        .request_lookup("after")
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(found.environment.as_deref(), Some("production"));
    let promotion = found.promotion.expect("the promotion that put chat:v2 in production");
    assert_eq!(promotion.id, p.id);
    assert_eq!(promotion.approved_by, [signed.user.username.clone(), "carol".to_owned()]);
    let sso = promotion.approvers[0].sso.clone().expect("bob's identity at the provider");
    assert_eq!(
        (sso.issuer.as_str(), sso.subject.as_str(), sso.name.as_deref()),
        ("https://idp.example.test", "bob", Some("Alice Admin"))
    );
    assert_eq!(promotion.approvers[0].groups, groups);
    assert_eq!(promotion.approvers[1].sso, None, "carol is a local user");
    assert_eq!(
        promotion.policy,
        Some(p.policy.clone()),
        "the policy in force when it was requested"
    );
    assert!(
        !promotion.requirements.is_empty() && promotion.requirements.iter().all(|r| r.met),
        "{:?}",
        promotion.requirements
    );

    // Before the promotion was applied, nothing had approved chat:v2 there.
    let before = db
        .store
        .request_lookup("before")
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(before.environment.as_deref(), Some("production"));
    assert_eq!(before.promotion, None);
}
