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
