use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, ADMIN_ACTOR};

#[tokio::test]
async fn serving_at_an_instant_shows_what_each_environment_pinned_and_who_set_it() {
    let app = spawn_app().await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    app.register("chat", "v1", json!({})).await;
    app.move_stage("chat:v1", "staging").await;
    app.put_json(
        "/api/v1/environments/staging/pins/chat",
        &json!({"version": "v1", "reason": "release 7"}),
    )
    .await;

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let serving = app
        .get_json(&format!(
            "/api/v1/serving?at={now}&environment=staging&model=chat"
        ))
        .await;
    let pins = serving["pins"].as_array().unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0]["full_id"], "chat:v1");
    assert_eq!(pins[0]["actor"], ADMIN_ACTOR);
    assert_eq!(pins[0]["reason"], "release 7");
    assert!(pins[0]["next_change"].is_null());

    let earlier = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        app.get_json(&format!("/api/v1/serving?at={earlier}")).await["pins"],
        json!([])
    );
}

#[tokio::test]
async fn serving_at_names_unknown_filters_and_says_when_t_is_outside_the_ledger() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for (query, name) in [("environment=nope", "nope"), ("model=nope", "nope")] {
        let e = assert_error(
            app.get(&format!("/api/v1/serving?at={now}&{query}")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(e["message"].as_str().unwrap_or("").contains(name), "{e}");
    }
    let e = assert_error(
        app.get("/api/v1/audit?actor=nobody-at-all").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("nobody-at-all"),
        "{e}"
    );
    let future = app
        .get_json("/api/v1/serving?at=9999-01-01T00:00:00Z")
        .await;
    assert!(
        future["notice"]
            .as_str()
            .unwrap_or("")
            .contains("in the future"),
        "{future}"
    );
    let past = app
        .get_json("/api/v1/serving?at=1970-01-02T00:00:00Z")
        .await;
    assert!(
        past["notice"]
            .as_str()
            .unwrap_or("")
            .contains("before the ledger begins"),
        "{past}"
    );
    assert!(app
        .get_json(&format!("/api/v1/serving?at={now}"))
        .await
        .get("notice")
        .is_none());
}

#[tokio::test]
async fn a_zone_offset_in_the_url_is_understood() {
    let app = spawn_app().await;
    // `+` unencoded in a query string arrives as a space.
    let serving = app
        .get_json("/api/v1/serving?at=2026-03-03T15:00:00+01:00")
        .await;
    assert_eq!(serving["at"], "2026-03-03T14:00:00.000000Z");
}

#[tokio::test]
async fn a_timestamp_without_a_zone_is_refused_with_422_saying_so() {
    let app = spawn_app().await;
    let error = assert_error(
        app.get("/api/v1/serving?at=2026-03-03T14:00:00").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("time zone"),
        "{error}"
    );
}

#[tokio::test]
async fn serving_without_an_instant_is_refused_with_422() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/v1/serving").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}
