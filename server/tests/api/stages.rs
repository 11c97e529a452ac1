use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn moving_a_development_version_to_staging_answers_200_with_the_version() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let res = app.move_stage("chat:v1", "staging").await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (v["full_id"].as_str(), v["stage"].as_str()),
        (Some("chat:v1"), Some("staging"))
    );
}

#[tokio::test]
async fn staging_to_production_is_refused_with_409_pointing_at_promotions() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    app.move_stage("chat:v1", "staging").await;
    let error = assert_error(
        app.move_stage("chat:v1", "production").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(error["code"], "illegal_stage_move");
    assert!(
        error["message"].as_str().unwrap().contains("promotion"),
        "{error}"
    );
    assert_eq!(
        app.get_json("/api/v1/versions/chat:v1").await["stage"],
        "staging"
    );
}

#[tokio::test]
async fn an_illegal_move_is_refused_with_409_naming_the_allowed_moves() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let error = assert_error(
        app.move_stage("chat:v1", "retired").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("development → staging"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_stage_is_refused_with_422_and_the_stage_stays() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let error = assert_error(
        app.move_stage("chat:v1", "qa").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("unknown stage"),
        "{error}"
    );
    assert_eq!(
        app.get_json("/api/v1/versions/chat:v1").await["stage"],
        "development"
    );
}

#[tokio::test]
async fn moving_an_unregistered_version_answers_404() {
    let app = spawn_app().await;
    assert_error(
        app.move_stage("chat:v1", "staging").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn every_state_change_a_person_makes_without_a_reason_is_refused_with_422_and_changes_nothing(
) {
    let app = spawn_app().await;
    app.register("chat", "v1", serde_json::json!({})).await;
    let cluster = serde_json::json!({ "name": "dev-1", "environment": "development", "driver": "simulated", "config": {} });
    assert_eq!(
        app.post_json("/api/v1/clusters", &cluster).await.status(),
        StatusCode::CREATED
    );
    let before = app.get_json("/api/v1/audit/verify").await["checked"].clone();
    let refused = |res: reqwest::Response| async move {
        let e = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(e["message"], "field \"reason\" is required", "{e}");
    };
    for reason in [None, Some("   ")] {
        let with = |mut body: serde_json::Value| {
            if let Some(r) = reason {
                body["reason"] = serde_json::json!(r);
            }
            body
        };
        refused(
            app.post_json(
                "/api/v1/versions/chat:v1/stage",
                &with(serde_json::json!({ "to": "staging" })),
            )
            .await,
        )
        .await;
        refused(
            app.put_json(
                "/api/v1/environments/development/pins/chat",
                &with(serde_json::json!({ "version": "v1" })),
            )
            .await,
        )
        .await;
        refused(
            app.post_json(
                "/api/v1/clusters/dev-1/operations",
                &with(serde_json::json!({ "kind": "blue_green", "full_id": "chat:v1" })),
            )
            .await,
        )
        .await;
        refused(
            app.post_json(
                "/api/v1/clusters/dev-1/rollback",
                &with(serde_json::json!({})),
            )
            .await,
        )
        .await;
        refused(
            app.post_json("/api/v1/promotions/1/approve", &with(serde_json::json!({})))
                .await,
        )
        .await;
    }
    assert_eq!(
        app.get_json("/api/v1/audit/verify").await["checked"],
        before,
        "nothing was written"
    );
    assert_eq!(
        app.get_json("/api/v1/versions/chat:v1").await["stage"],
        "development"
    );
    let browser = crate::console::sign_in(&app, "test-admin").await;
    for (path, form) in [
        (
            "/console/fn/move_stage",
            "full_id=chat%3Av1&to=staging&reason=",
        ),
        ("/console/fn/roll_back_cluster", "cluster=dev-1"),
        (
            "/console/fn/start_operation",
            "cluster=dev-1&kind=blue_green&full_id=chat%3Av1",
        ),
    ] {
        let answer = crate::console::call_server_fn(&app, "POST", path, form, Some(&browser)).await;
        assert!(
            answer.contains("field \\\"reason\\\" is required"),
            "{path}: {answer}"
        );
    }
}
