use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;
use switchyard_domain::access::Role;

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
async fn a_persons_token_actions_and_console_sign_in_are_all_found_under_their_name() {
    let app = spawn_app().await;
    let dave = app.user_with_token("dave", Role::Deployer, None).await;
    let res = app
        .post_json_as(
            &dave,
            "/api/v1/models/chat/versions",
            &json!({ "version": "v1", "config": {} }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post_json_as(
            &dave,
            "/api/v1/versions/chat:v1/stage",
            &json!({ "to": "staging", "reason": "feature complete" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    crate::console::sign_in(&app, "dave").await;

    let page = app.get_json("/api/v1/audit?actor=dave").await;
    let events = page["events"].as_array().unwrap();
    let seen: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["details"]["via_token"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("user.signed_in", None),
            ("stage.changed", Some("dave")),
            ("version.registered", Some("dave")),
        ]
    );
    assert!(events.iter().all(|e| e["actor"] == "dave"));
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
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

#[tokio::test]
async fn free_text_with_control_or_bidi_characters_is_refused_and_csv_cells_cannot_be_formulas() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    for (reason, code) in [("evil\u{0}nul", "U+0000"), ("\u{202E}lun live", "U+202E")] {
        let e = assert_error(
            app.post_json(
                "/api/v1/versions/chat:v1/stage",
                &json!({ "to": "staging", "reason": reason }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(e["message"].as_str().unwrap_or("").contains(code), "{e}");
    }
    let e = assert_error(
        app.post_json(
            "/api/v1/models/chat/versions",
            &json!({ "version": "v2", "config": {}, "labels": { "team": "a\u{2067}b" } }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"].as_str().unwrap_or("").contains("labels"),
        "{e}"
    );
    let formula = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let res = app
        .post_json(
            "/api/v1/versions/chat:v1/stage",
            &json!({ "to": "staging", "reason": formula }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let e = assert_error(
        app.post_json(
            "/api/v1/promotions",
            &json!({ "full_id": "chat:v1", "environment": "production", "reason": "ok\u{202D}" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"].as_str().unwrap_or("").contains("U+202D"),
        "{e}"
    );

    let browser = crate::console::sign_in(&app, "test-admin").await;
    let csv = reqwest::Client::new()
        .get(format!("{}/console/export/audit.csv", app.address))
        .header(reqwest::header::COOKIE, &browser.cookie)
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("text");
    let row = csv
        .lines()
        .find(|l| l.contains("HYPERLINK"))
        .expect("the stage change is exported");
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\","),
        "{row}"
    );
}
