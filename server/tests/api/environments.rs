use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, ADMIN_ACTOR};

#[tokio::test]
async fn the_three_standard_environments_are_listed_with_their_policies() {
    let app = spawn_app().await;
    let envs = app.get_json("/api/v1/environments").await;
    let envs = envs["environments"].as_array().unwrap();
    let names: Vec<&str> = envs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["development", "staging", "production"]);
    let production = &envs[2]["policy"];
    assert_eq!(
        (
            production["allow_latest"].as_bool(),
            production["min_stage"].as_str()
        ),
        (Some(false), Some("production"))
    );
}

#[tokio::test]
async fn pinning_a_staging_version_in_staging_answers_200_and_the_pin_is_listed() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    app.move_stage("chat:v1", "staging").await;
    let res = app
        .put_json(
            "/api/v1/environments/staging/pins/chat",
            &json!({"version": "v1", "reason": "release 7"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let pin: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (pin["full_id"].as_str(), pin["set_by"].as_str()),
        (Some("chat:v1"), Some(ADMIN_ACTOR))
    );
    let envs = app.get_json("/api/v1/environments").await;
    assert_eq!(envs["environments"][1]["pins"][0]["full_id"], "chat:v1");
}

#[tokio::test]
async fn pinning_a_development_version_in_production_is_refused_with_422_and_nothing_is_pinned() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let res = app
        .put_json(
            "/api/v1/environments/production/pins/chat",
            &json!({"version": "v1", "reason": "hotfix"}),
        )
        .await;
    assert_eq!(
        assert_error(res, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "policy_violation"
    );
    assert_eq!(
        app.get_json("/api/v1/environments").await["environments"][2]["pins"],
        json!([])
    );
}

#[tokio::test]
async fn pinning_latest_is_refused_with_422() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let res = app
        .put_json(
            "/api/v1/environments/development/pins/chat",
            &json!({"version": "latest", "reason": "test"}),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn pinning_in_an_unknown_environment_or_an_unknown_version_answers_404() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let res = app
        .put_json(
            "/api/v1/environments/moon/pins/chat",
            &json!({"version": "v1", "reason": "test"}),
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND).await;
    let res = app
        .put_json(
            "/api/v1/environments/development/pins/chat",
            &json!({"version": "v9", "reason": "test"}),
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn pinning_a_retired_version_answers_410() {
    let app = spawn_app().await;
    let v1 = app.production_version("chat", "v1").await;
    app.retire(&v1).await;
    let res = app
        .put_json(
            "/api/v1/environments/development/pins/chat",
            &json!({"version": "v1", "reason": "test"}),
        )
        .await;
    assert_eq!(assert_error(res, StatusCode::GONE).await["code"], "retired");
}
