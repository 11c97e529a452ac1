//! Promotions over the REST API: two people besides the requester bring a
//! version to production, and nothing else does.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_domain::access::Role;

use crate::helpers::{assert_error, spawn_app, TestApp};

struct People {
    dave: String,
    bob: String,
    carol: String,
}

/// chat:v1 in production (pinned), chat:v2 in staging, and the tokens of a
/// deployer (dave) and two approvers (bob, carol).
async fn release_ready(app: &TestApp) -> People {
    let v1 = app.production_version("chat", "v1").await;
    let res = app
        .put_json(
            "/api/v1/environments/production/pins/chat",
            &json!({"version": v1.version.to_string(), "reason": "test"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.register("chat", "v2", json!({"v": 2})).await;
    assert_eq!(
        app.move_stage("chat:v2", "staging").await.status(),
        StatusCode::OK
    );
    People {
        dave: app.user_with_token("dave", Role::Deployer, None).await,
        bob: app.user_with_token("bob", Role::Approver, None).await,
        carol: app.user_with_token("carol", Role::Approver, None).await,
    }
}

fn urlencode(v: &Value) -> String {
    v.as_str()
        .unwrap_or_default()
        .replace('+', "%2B")
        .replace(':', "%3A")
}

async fn request(app: &TestApp, token: &str, full_id: &str) -> reqwest::Response {
    app.post_json_as(
        token,
        "/api/v1/promotions",
        &json!({"full_id": full_id, "environment": "production", "reason": "better answers"}),
    )
    .await
}

async fn approve(app: &TestApp, token: &str, id: i64) -> reqwest::Response {
    app.post_json_as(
        token,
        &format!("/api/v1/promotions/{id}/approve"),
        &json!({"reason": "reviewed"}),
    )
    .await
}

#[tokio::test]
async fn a_request_answers_201_pending_with_the_approvals_it_needs_and_its_expiry() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    let res = request(&app, &people.dave, "chat:v2").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let p: Value = res.json().await.expect("JSON");
    assert_eq!(
        (p["status"].as_str(), p["required_approvals"].as_i64()),
        (Some("pending"), Some(2))
    );
    assert_eq!(p["approvals"], json!([]));
    assert!(p["id"].is_i64() && p["expires_at"].is_string(), "{p}");
    let listed = app.get_json("/api/v1/promotions?status=pending").await;
    assert_eq!(listed["promotions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_requester_cannot_approve_and_two_distinct_approvers_apply_the_promotion() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    // Even an admin cannot approve their own request.
    let p: Value = request(&app, &app.token, "chat:v2")
        .await
        .json()
        .await
        .expect("JSON");
    let id = p["id"].as_i64().expect("id");
    let own = assert_error(approve(&app, &app.token, id).await, StatusCode::FORBIDDEN).await;
    assert!(
        own["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot approve"),
        "{own}"
    );

    assert_eq!(
        approve(&app, &people.bob, id).await.status(),
        StatusCode::OK
    );
    assert_error(approve(&app, &people.bob, id).await, StatusCode::CONFLICT).await;
    assert_eq!(
        app.get_json("/api/v1/versions/chat:v2").await["stage"],
        "staging"
    );
    let done: Value = approve(&app, &people.carol, id)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(done["status"], "applied");

    assert_eq!(
        app.get_json("/api/v1/versions/chat:v2").await["stage"],
        "production"
    );
    assert_eq!(
        app.get_json("/api/v1/versions/chat:v1").await["stage"],
        "deprecated"
    );
    assert_eq!(
        app.get_json("/api/v1/resolve/chat?env=production").await["full_id"],
        "chat:v2"
    );
    // "Which version was serving, and who approved it?" — serving at T says.
    let serving = app
        .get_json(&format!(
            "/api/v1/serving?environment=production&model=chat&at={}",
            urlencode(&json!(switchyard_domain::Timestamp::now().to_rfc3339()))
        ))
        .await;
    let pin = &serving["pins"][0];
    assert_eq!(pin["full_id"], "chat:v2", "{serving}");
    assert_eq!(pin["promotion"]["id"], id, "{serving}");
    assert_eq!(pin["promotion"]["requested_by"], "test-admin", "{serving}");
    assert_eq!(
        pin["promotion"]["approved_by"],
        json!(["bob", "carol"]),
        "{serving}"
    );
    // A pin set by hand names no promotion.
    let before = app
        .get_json(&format!(
            "/api/v1/serving?environment=production&model=chat&at={}",
            urlencode(&p["requested_at"])
        ))
        .await;
    assert_eq!(before["pins"][0]["full_id"], "chat:v1", "{before}");
    assert!(before["pins"][0].get("promotion").is_none(), "{before}");
    let applied = app.get_json("/api/v1/audit?action=promotion.applied").await;
    assert_eq!(applied["events"][0]["actor"], "carol");
    assert_eq!(
        applied["events"][0]["details"]["approved_by"],
        json!(["bob", "carol"])
    );
}

#[tokio::test]
async fn a_deployer_cannot_approve_and_a_viewer_cannot_request() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    let viewer = app.user_with_token("erin", Role::Viewer, None).await;
    let refused = assert_error(
        request(&app, &viewer, "chat:v2").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deployer"),
        "{refused}"
    );
    let p: Value = request(&app, &people.dave, "chat:v2")
        .await
        .json()
        .await
        .expect("JSON");
    let other_deployer = app.user_with_token("frank", Role::Deployer, None).await;
    let refused = assert_error(
        approve(&app, &other_deployer, p["id"].as_i64().expect("id")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("approver"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_rejected_request_cannot_be_revived() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    let p: Value = request(&app, &people.dave, "chat:v2")
        .await
        .json()
        .await
        .expect("JSON");
    let id = p["id"].as_i64().expect("id");
    let path = format!("/api/v1/promotions/{id}/reject");
    assert_error(
        app.post_json_as(&people.bob, &path, &json!({"reason": ""}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let rejected: Value = app
        .post_json_as(&people.bob, &path, &json!({"reason": "eval regressed"}))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(rejected["status"], "rejected");
    assert_error(approve(&app, &people.carol, id).await, StatusCode::CONFLICT).await;
    assert_error(
        app.post_json_as(&people.carol, &path, &json!({"reason": "again"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        app.get_json("/api/v1/versions/chat:v2").await["stage"],
        "staging"
    );
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    let p: Value = request(&app, &people.dave, "chat:v2")
        .await
        .json()
        .await
        .expect("JSON");
    let id = p["id"].as_i64().expect("id");
    // 73 hours later, as the expiry job sees it.
    let later = switchyard_domain::Timestamp::now().plus_hours(73);
    switchyard::jobs::expire_promotions(app.store().await.as_ref(), later).await;
    let refused = assert_error(approve(&app, &people.bob, id).await, StatusCode::CONFLICT).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{refused}"
    );
    let expired = app.get_json("/api/v1/audit?action=promotion.expired").await;
    assert_eq!(expired["events"][0]["actor"], "system");
}

#[tokio::test]
async fn a_retired_version_can_never_be_promoted() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    let v0 = app.production_version("chat", "v0").await;
    app.retire(&v0).await;
    let refused = assert_error(
        request(&app, &people.dave, "chat:v0").await,
        StatusCode::GONE,
    )
    .await;
    assert_eq!(refused["code"], "retired");
}

#[tokio::test]
async fn a_request_and_each_approval_short_of_the_last_name_who_can_still_approve() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    // A disabled approver and a viewer are never named.
    app.user_with_token("olga", Role::Approver, None).await;
    app.store()
        .await
        .disable_user("olga", "test-admin", switchyard_domain::Timestamp::now())
        .await
        .expect("disabled");
    app.user_with_token("vera", Role::Viewer, None).await;
    let p: Value = request(&app, &people.dave, "chat:v2")
        .await
        .json()
        .await
        .expect("JSON");
    let event = |action: &str| {
        let app = &app;
        let action = action.to_owned();
        async move {
            app.get_json(&format!("/api/v1/audit?action={action}&limit=1"))
                .await["events"][0]
                .clone()
        }
    };
    let requested = event("promotion.requested").await;
    assert_eq!(
        requested["details"]["approvers"],
        json!(["bob", "carol", "test-admin"]),
        "approvers and admins, not the requester dave: {requested}"
    );
    let id = p["id"].as_i64().expect("id");
    assert_eq!(
        approve(&app, &people.bob, id).await.status(),
        StatusCode::OK
    );
    let approved = event("promotion.approved").await;
    assert_eq!(approved["details"]["approvals_still_needed"], 1);
    assert_eq!(
        approved["details"]["approvers"],
        json!(["carol", "test-admin"])
    );
    // The last approval applies it: nobody is waited for any more.
    assert_eq!(
        approve(&app, &people.carol, id).await.status(),
        StatusCode::OK
    );
    let last = event("promotion.approved").await;
    assert!(last["details"].get("approvers").is_none(), "{last}");
}

#[tokio::test]
async fn a_malformed_promotion_id_is_422_for_everyone_and_an_unknown_one_404_for_those_who_may_approve(
) {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    let viewer = app.user_with_token("erin", Role::Viewer, None).await;
    // Whether an id is well formed says nothing about which promotions
    // exist, so it is answered before the caller's role is looked at.
    for token in [&viewer, &people.dave, &people.bob] {
        for action in ["approve", "reject", "withdraw"] {
            let refused = assert_error(
                app.post_json_as(
                    token,
                    &format!("/api/v1/promotions/abc/{action}"),
                    &json!({"reason": "reviewed"}),
                )
                .await,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
            assert!(
                refused["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("whole number"),
                "{action}: {refused}"
            );
        }
    }
    // A well-formed id that names no promotion: someone who may approve is
    // told it does not exist; someone who may not is refused first, so the
    // answer never reveals which ids exist to those without the role.
    assert_error(
        approve(&app, &people.bob, 987_654).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let refused = assert_error(approve(&app, &viewer, 987_654).await, StatusCode::FORBIDDEN).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("approver"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_requester_withdraws_a_waiting_promotion_and_nobody_can_approve_it_after() {
    let app = spawn_app().await;
    let people = release_ready(&app).await;
    let p: Value = request(&app, &people.dave, "chat:v2")
        .await
        .json()
        .await
        .expect("JSON");
    let id = p["id"].as_i64().expect("id");
    let withdraw = |token: String, body: Value| {
        let app = &app;
        async move {
            app.post_json_as(&token, &format!("/api/v1/promotions/{id}/withdraw"), &body)
                .await
        }
    };
    // An approver rejects; only the requester withdraws.
    let refused = assert_error(
        withdraw(people.bob.clone(), json!({"reason": "not yours"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("only dave"),
        "{refused}"
    );
    assert_error(
        withdraw(people.dave.clone(), json!({"reason": " "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let res = withdraw(
        people.dave.clone(),
        json!({"reason": "a regression in the eval"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let withdrawn: Value = res.json().await.expect("JSON");
    assert_eq!(
        (
            withdrawn["status"].as_str(),
            withdrawn["decided_by"].as_str()
        ),
        (Some("withdrawn"), Some("dave"))
    );
    assert_error(approve(&app, &people.bob, id).await, StatusCode::CONFLICT).await;
    let listed = app.get_json("/api/v1/promotions?status=withdrawn").await;
    assert_eq!(listed["promotions"][0]["id"], id, "{listed}");
    let audit = app
        .get_json("/api/v1/audit?action=promotion.withdrawn")
        .await;
    assert_eq!(audit["events"][0]["actor"], "dave", "{audit}");
    assert_eq!(
        audit["events"][0]["reason"], "a regression in the eval",
        "{audit}"
    );
}
