use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

/// A record of a request served now on cluster eu-1 (see `cluster_with_chat_v1`).
pub fn record(id: &str) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({"request_id": id, "at": now, "cluster": "eu-1", "slot": "blue",
           "full_id": "chat:v1", "latency_ms": 12.5, "outcome": "ok"})
}

/// Registers chat:v1 and creates the (empty) simulated cluster eu-1 records name.
pub async fn cluster_with_chat_v1(app: &TestApp) {
    app.register("chat", "v1", json!({})).await;
    let res = app
        .post_json(
            "/api/v1/clusters",
            &json!({ "name": "eu-1", "environment": "development", "driver": "simulated", "config": {} }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn records_naming_unknown_things_or_times_outside_the_ledger_are_refused_per_record() {
    let app = spawn_app().await;
    cluster_with_chat_v1(&app).await;
    let mut future = record("future");
    future["at"] = json!("9999-01-01T00:00:00Z");
    let mut ancient = record("ancient");
    ancient["at"] = json!("1970-01-02T00:00:00Z");
    let mut unknown_version = record("ghost");
    unknown_version["full_id"] = json!("chat:v9");
    let mut unknown_cluster = record("elsewhere");
    unknown_cluster["cluster"] = json!("edge-9");
    let mut unknown_field = record("extra");
    unknown_field["versoin"] = json!("v1");
    let slash = record("a/b");
    let batch = json!([
        record("fine"),
        future,
        ancient,
        unknown_version,
        unknown_cluster,
        unknown_field,
        slash
    ]);
    let error = assert_error(
        app.post_json("/api/v1/request-records", &batch).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let listed: Vec<(u64, String)> = error["details"]["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap(),
                i["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Malformed records are found first (fields, request_id); then what contradicts the database.
    assert_eq!(
        listed.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [6, 7],
        "{listed:?}"
    );
    assert!(
        listed[0].1.contains("versoin") && listed[1].1.contains('/'),
        "{listed:?}"
    );
    let batch = json!([
        record("fine"),
        future,
        ancient,
        unknown_version,
        unknown_cluster
    ]);
    let error = assert_error(
        app.post_json("/api/v1/request-records", &batch).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let listed: Vec<(u64, String)> = error["details"]["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap(),
                i["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [2, 3, 4, 5],
        "{listed:?}"
    );
    for ((_, message), word) in
        listed
            .iter()
            .zip(["future", "before the ledger", "chat:v9", "edge-9"])
    {
        assert!(message.contains(word), "{message}");
    }
    assert_error(
        app.get("/api/v1/request-records/fine").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_repeated_id_with_other_content_is_a_conflict_and_a_contradicted_record_is_flagged() {
    let app = spawn_app().await;
    cluster_with_chat_v1(&app).await;
    let first = record("r1");
    let res = app
        .post_json("/api/v1/request-records", &json!([first]))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["accepted"], 1);
    assert!(
        answer["flagged"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("held no version"),
        "eu-1 serves nothing yet: {answer}"
    );
    let res = app
        .post_json("/api/v1/request-records", &json!([first]))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["accepted"], 0, "a retry");
    let mut changed = first.clone();
    changed["latency_ms"] = json!(99);
    let error = assert_error(
        app.post_json("/api/v1/request-records", &json!([record("r2"), changed]))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(error["details"]["conflicts"][0]["index"], 2);
    assert_error(
        app.get("/api/v1/request-records/r2").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn every_accepted_id_is_retrievable_percent_encoded() {
    let app = spawn_app().await;
    cluster_with_chat_v1(&app).await;
    let id = "a?b#c%d e\\f&g=h";
    let res = app
        .post_json("/api/v1/request-records", &json!([record(id)]))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let encoded: String = id
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let found = app
        .get_json(&format!("/api/v1/request-records/{encoded}"))
        .await;
    assert_eq!(found["record"]["request_id"], id);
}

#[tokio::test]
async fn a_json_array_batch_is_accepted_with_202_and_each_record_can_be_looked_up() {
    let app = spawn_app().await;
    cluster_with_chat_v1(&app).await;
    let res = app
        .post_json(
            "/api/v1/request-records",
            &json!([record("r1"), record("r2")]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["accepted"], 2);
    let found = app.get_json("/api/v1/request-records/r2").await;
    assert_eq!(found["record"]["request_id"], "r2");
    assert_eq!(found["record"]["full_id"], "chat:v1");
    assert_eq!(found["version"]["full_id"], "chat:v1");
    assert!(found["provenance"].is_array());
}

#[tokio::test]
async fn an_ndjson_batch_is_accepted_with_202() {
    let app = spawn_app().await;
    cluster_with_chat_v1(&app).await;
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
