use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, ADMIN_ACTOR};

#[tokio::test]
async fn registering_a_new_version_answers_201_with_the_version_object() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/api/v1/models/chat/versions",
            &json!({"version": "v2.1.3", "config": {"temperature": 0.2}, "artifact_uri": "s3://m/chat/v2.1.3", "labels": {"team": "nlp"}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["location"], "/api/v1/versions/chat:v2.1.3");
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["full_id"], "chat:v2.1.3");
    assert_eq!(v["model_id"], "chat");
    assert_eq!(v["version"], "v2.1.3");
    assert_eq!(v["stage"], "development");
    assert_eq!(v["config"], json!({"temperature": 0.2}));
    assert!(v["config_hash"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["artifact_uri"], "s3://m/chat/v2.1.3");
    assert_eq!(v["labels"], json!({"team": "nlp"}));
    assert_eq!(v["created_by"], ADMIN_ACTOR);
    assert!(v["created_at"].is_string());
}

#[tokio::test]
async fn registering_the_same_version_with_the_same_config_again_answers_200_and_changes_nothing() {
    let app = spawn_app().await;
    let first = app
        .register("chat", "v1", json!({"a": 1, "b": [1, 2]}))
        .await;
    // The same config with its keys in another order is the same config.
    let res = app
        .post_json(
            "/api/v1/models/chat/versions",
            &json!({"version": "v1", "config": {"b": [1, 2], "a": 1}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: serde_json::Value = res.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        app.get_json("/api/v1/models/chat/versions").await["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn registering_the_same_version_with_another_config_answers_409_and_keeps_the_first() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({"temperature": 0.2}))
        .await;
    let res = app
        .post_json(
            "/api/v1/models/chat/versions",
            &json!({"version": "v1", "config": {"temperature": 0.9}}),
        )
        .await;
    let error = assert_error(res, StatusCode::CONFLICT).await;
    assert_eq!(error["code"], "conflict");
    let detail = app.get_json("/api/v1/versions/chat:v1").await;
    assert_eq!(detail["config"], json!({"temperature": 0.2}));
}

/// Registers `body` under `model`, expects a 422 whose message contains
/// `explanation`, and checks that no model was stored.
async fn assert_registration_refused(model: &str, body: serde_json::Value, explanation: &str) {
    let app = spawn_app().await;
    let res = app
        .post_json(&format!("/api/v1/models/{model}/versions"), &body)
        .await;
    let error = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        error["message"].as_str().unwrap().contains(explanation),
        "{error}"
    );
    assert_eq!(app.get_json("/api/v1/models").await["models"], json!([]));
}

#[tokio::test]
async fn a_malformed_model_id_is_refused_with_422_and_nothing_is_stored() {
    assert_registration_refused("Chat!", json!({"version": "v1", "config": {}}), "model id").await;
}

#[tokio::test]
async fn latest_as_a_version_is_refused_with_422_and_nothing_is_stored() {
    assert_registration_refused(
        "chat",
        json!({"version": "latest", "config": {}}),
        "\"latest\" is not a version",
    )
    .await;
}

#[tokio::test]
async fn a_config_that_is_not_an_object_is_refused_with_422_and_nothing_is_stored() {
    let body = json!({"version": "v1", "config": [1, 2]});
    assert_registration_refused("chat", body, "config must be a JSON object, not an array").await;
}

#[tokio::test]
async fn a_missing_config_or_an_unknown_field_is_refused_with_422_naming_it() {
    assert_registration_refused("chat", json!({"version": "v1"}), "config").await;
    let body = json!({"version": "v1", "config": {}, "artifact_url": "s3://x"});
    assert_registration_refused("chat", body, "artifact_url").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_400() {
    let app = spawn_app().await;
    let res = app
        .post_raw(
            "/api/v1/models/chat/versions",
            "application/json",
            "{\"version\": ",
        )
        .await;
    let error = assert_error(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(error["code"], "bad_request");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the body is not valid JSON: "),
        "{message}"
    );
    assert!(!message.contains("Failed to"), "{message}");
}

#[tokio::test]
async fn json_of_the_wrong_shape_and_a_path_value_of_the_wrong_type_are_422_in_plain_words() {
    let app = spawn_app().await;
    let res = app
        .post_raw(
            "/api/v1/models/chat/versions",
            "application/json",
            r#"{"version": 3, "config": {}}"#,
        )
        .await;
    let error = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["code"], "invalid_input");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.contains("Failed to deserialize"), "{message}");
    assert!(message.contains("version"), "{message}");
    let res = app
        .request(reqwest::Method::GET, "/api/v1/operations/abc")
        .send()
        .await
        .expect("sent");
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!message.contains("Cannot parse"), "{message}");
    assert!(message.contains("“abc” is not a whole number"), "{message}");
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_json_is_refused_with_415() {
    let app = spawn_app().await;
    let res = app
        .post_raw(
            "/api/v1/models/chat/versions",
            "text/plain",
            r#"{"version":"v1","config":{}}"#,
        )
        .await;
    assert_eq!(
        assert_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await["code"],
        "unsupported_media_type"
    );
}

#[tokio::test]
async fn a_50_mb_registration_is_refused_with_413_and_nothing_is_stored() {
    let app = spawn_app().await;
    let padding = "x".repeat(50 * 1024 * 1024);
    let body = format!(r#"{{"version":"v1","config":{{"padding":"{padding}"}}}}"#);
    let res = app
        .post_raw("/api/v1/models/chat/versions", "application/json", body)
        .await;
    assert_eq!(
        assert_error(res, StatusCode::PAYLOAD_TOO_LARGE).await["code"],
        "payload_too_large"
    );
    assert_eq!(app.get_json("/api/v1/models").await["models"], json!([]));
}

#[tokio::test]
async fn models_are_listed_and_their_versions_come_newest_first() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({"n": 1})).await;
    app.register("chat", "v2", json!({"n": 2})).await;
    app.register("embed", "e1", json!({})).await;
    let models = app.get_json("/api/v1/models").await;
    let ids: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat", "embed"]);
    let versions = app.get_json("/api/v1/models/chat/versions").await;
    let names: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v2", "v1"]);
}

#[tokio::test]
async fn the_versions_of_an_unknown_model_answer_404() {
    let app = spawn_app().await;
    assert_eq!(
        assert_error(
            app.get("/api/v1/models/ghost/versions").await,
            StatusCode::NOT_FOUND
        )
        .await["code"],
        "not_found"
    );
}

#[tokio::test]
async fn a_version_is_shown_with_its_stage_history_and_an_unknown_one_answers_404() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    assert_eq!(
        app.move_stage("chat:v1", "staging").await.status(),
        StatusCode::OK
    );
    let detail = app.get_json("/api/v1/versions/chat:v1").await;
    assert_eq!(detail["full_id"], "chat:v1");
    assert_eq!(detail["stage"], "staging");
    let history: Vec<&str> = detail["stage_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["to"].as_str().unwrap())
        .collect();
    assert_eq!(history.last(), Some(&"staging"));
    assert_error(
        app.get("/api/v1/versions/chat:v9").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.get("/api/v1/versions/not-a-full-id").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}
