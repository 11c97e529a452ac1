use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn a_model_resolves_through_the_environments_pin() {
    let app = spawn_app().await;
    let v1 = app.production_version("chat", "v1").await;
    let res = app.put_json("/api/v1/environments/production/pins/chat", &json!({"version": "v1", "reason": "go"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/api/v1/resolve/chat?env=production").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("deprecation").is_none());
    let r: serde_json::Value = res.json().await.unwrap();
    assert_eq!(r["full_id"], v1.to_string());
    assert_eq!((r["stage"].as_str(), r["pinned"].as_bool(), r["deprecated"].as_bool()), (Some("production"), Some(true), Some(false)));
    assert!(r["config_hash"].as_str().unwrap().starts_with("sha256:"));
}

#[tokio::test]
async fn an_exact_version_resolves_unpinned() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let r = app.get_json("/api/v1/resolve/chat:v1?env=development").await;
    assert_eq!((r["full_id"].as_str(), r["pinned"].as_bool()), (Some("chat:v1"), Some(false)));
}

#[tokio::test]
async fn an_unknown_version_or_a_model_without_a_pin_answers_404() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    assert_error(app.get("/api/v1/resolve/chat:v9?env=development").await, StatusCode::NOT_FOUND).await;
    assert_error(app.get("/api/v1/resolve/chat?env=production").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_retired_version_answers_410() {
    let app = spawn_app().await;
    let v1 = app.production_version("chat", "v1").await;
    app.retire(&v1).await;
    let error = assert_error(app.get("/api/v1/resolve/chat:v1?env=production").await, StatusCode::GONE).await;
    assert_eq!(error["code"], "retired");
}

#[tokio::test]
async fn latest_is_refused_with_422_where_the_environment_forbids_it_and_the_message_says_why() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    let error = assert_error(app.get("/api/v1/resolve/chat:latest?env=production").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["code"], "policy_violation");
    assert!(error["message"].as_str().unwrap().contains("does not allow \"latest\""), "{error}");
}

#[tokio::test]
async fn latest_resolves_to_the_newest_version_in_development() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({"n": 1})).await;
    app.register("chat", "v2", json!({"n": 2})).await;
    assert_eq!(app.get_json("/api/v1/resolve/chat:latest?env=development").await["full_id"], "chat:v2");
}

#[tokio::test]
async fn a_deprecated_version_resolves_with_a_deprecation_header_and_a_warning() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    assert_eq!(app.move_stage("chat:v1", "deprecated").await.status(), StatusCode::OK);
    let res = app.get("/api/v1/resolve/chat:v1?env=production").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["deprecation"], "true");
    assert!(res.headers()["warning"].to_str().unwrap().starts_with("299 - \"chat:v1 is deprecated"));
    let r: serde_json::Value = res.json().await.unwrap();
    assert_eq!(r["deprecated"], true);
}

#[tokio::test]
async fn resolving_without_an_environment_is_refused_with_422() {
    let app = spawn_app().await;
    let error = assert_error(app.get("/api/v1/resolve/chat").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(error["message"].as_str().unwrap().contains("env"), "{error}");
}
