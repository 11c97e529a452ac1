use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, ADMIN_ACTOR};

#[tokio::test]
async fn the_audit_log_pages_through_every_event_newest_first() {
    let app = spawn_app().await;
    for v in ["v1", "v2", "v3", "v4", "v5"] {
        app.register("chat", v, json!({ "v": v })).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/audit?action=version.registered&limit=2".to_owned();
    loop {
        let page = app.get_json(&path).await;
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["version"].as_str().unwrap().to_owned(),
            )
        }));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/audit?action=version.registered&limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    let versions: Vec<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(versions, ["v5", "v4", "v3", "v2", "v1"]);
    assert_eq!(
        seen.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(),
        5
    );
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_and_model() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    app.register("embed", "e1", json!({})).await;
    let page = app
        .get_json(&format!("/api/v1/audit?model=embed&actor={ADMIN_ACTOR}"))
        .await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["model_id"].as_str(), events[0]["action"].as_str()),
        (Some("embed"), Some("version.registered"))
    );
}

#[tokio::test]
async fn a_bad_audit_filter_is_refused_with_422() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/v1/audit?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_error(
        app.get("/api/v1/audit?limit=many").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_error(
        app.get("/api/v1/audit?after=yesterday").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn an_untouched_ledger_verifies() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    app.move_stage("chat:v1", "staging").await;
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true);
    assert!(report["checked"].as_u64().unwrap() >= 2);
    assert!(report["first_broken_id"].is_null());
}
