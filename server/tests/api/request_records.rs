use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app};

fn record(id: &str) -> Value {
    json!({"request_id": id, "at": "2026-03-03T14:00:00Z", "cluster": "eu-1", "slot": "blue",
           "full_id": "chat:v1", "latency_ms": 12.5, "outcome": "ok"})
}

#[tokio::test]
async fn a_json_array_batch_is_accepted_with_202_and_each_record_can_be_looked_up() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let res = app
        .post_json(
            "/api/v1/request-records",
            &json!([record("r1"), record("r2")]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"accepted": 2}));
    let found = app.get_json("/api/v1/request-records/r2").await;
    assert_eq!(found["record"]["request_id"], "r2");
    assert_eq!(found["record"]["full_id"], "chat:v1");
    assert_eq!(found["version"]["full_id"], "chat:v1");
    assert!(found["provenance"].is_array());
}

#[tokio::test]
async fn an_ndjson_batch_is_accepted_with_202() {
    let app = spawn_app().await;
    let body = format!("{}\n{}\n", record("r1"), record("r2"));
    let res = app
        .post_raw("/api/v1/request-records", "application/x-ndjson", body)
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["accepted"], 2);
}

#[tokio::test]
async fn a_batch_with_bad_ndjson_lines_is_refused_with_422_naming_each_line_and_nothing_is_stored()
{
    let app = spawn_app().await;
    let mut bad_slot = record("r3");
    bad_slot["slot"] = json!("red");
    let body = format!("{}\n{{not json\n{bad_slot}\n", record("r1"));
    let res = app
        .post_raw("/api/v1/request-records", "application/x-ndjson", body)
        .await;
    let error = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["details"]["invalid_count"], 2);
    let lines: Vec<u64> = error["details"]["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3]);
    assert!(error["details"]["invalid"][1]["message"]
        .as_str()
        .unwrap()
        .contains("slot"));
    assert_error(
        app.get("/api/v1/request-records/r1").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn an_empty_batch_is_refused_with_422() {
    let app = spawn_app().await;
    assert_error(
        app.post_json("/api/v1/request-records", &json!([])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn a_batch_in_another_format_is_refused_with_415() {
    let app = spawn_app().await;
    let res = app
        .post_raw("/api/v1/request-records", "text/csv", "request_id,at\n")
        .await;
    assert_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn a_50_mb_batch_is_refused_with_413_and_nothing_is_stored() {
    let app = spawn_app().await;
    let line = format!("{}\n", record("r1"));
    let body = line.repeat(50 * 1024 * 1024 / line.len() + 1);
    let res = app
        .post_raw("/api/v1/request-records", "application/x-ndjson", body)
        .await;
    assert_eq!(
        assert_error(res, StatusCode::PAYLOAD_TOO_LARGE).await["code"],
        "payload_too_large"
    );
    assert_error(
        app.get("/api/v1/request-records/r1").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn an_unknown_request_id_answers_404() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/v1/request-records/nope").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}
