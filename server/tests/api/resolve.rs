use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn a_model_resolves_through_the_environments_pin() {
    let app = spawn_app().await;
    let v1 = app.production_version("chat", "v1").await;
    let res = app
        .put_json(
            "/api/v1/environments/production/pins/chat",
            &json!({"version": "v1", "reason": "go"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/api/v1/resolve/chat?env=production").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("deprecation").is_none());
    let r: serde_json::Value = res.json().await.unwrap();
    assert_eq!(r["full_id"], v1.to_string());
    assert_eq!(
        (
            r["stage"].as_str(),
            r["pinned"].as_bool(),
            r["deprecated"].as_bool()
        ),
        (Some("production"), Some(true), Some(false))
    );
    assert!(r["config_hash"].as_str().unwrap().starts_with("sha256:"));
}

#[tokio::test]
async fn an_exact_version_resolves_unpinned() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let r = app
        .get_json("/api/v1/resolve/chat:v1?env=development")
        .await;
    assert_eq!(
        (r["full_id"].as_str(), r["pinned"].as_bool()),
        (Some("chat:v1"), Some(false))
    );
}

#[tokio::test]
async fn an_unknown_version_or_a_model_without_a_pin_answers_404() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    assert_error(
        app.get("/api/v1/resolve/chat:v9?env=development").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.get("/api/v1/resolve/chat?env=production").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_retired_version_answers_410() {
    let app = spawn_app().await;
    let v1 = app.production_version("chat", "v1").await;
    app.retire(&v1).await;
    let error = assert_error(
        app.get("/api/v1/resolve/chat:v1?env=production").await,
        StatusCode::GONE,
    )
    .await;
    assert_eq!(error["code"], "retired");
}

#[tokio::test]
async fn latest_is_refused_with_422_where_the_environment_forbids_it_and_the_message_says_why() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    let error = assert_error(
        app.get("/api/v1/resolve/chat:latest?env=production").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error["code"], "policy_violation");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("does not allow \"latest\""),
        "{error}"
    );
}

#[tokio::test]
async fn latest_resolves_to_the_newest_version_in_development() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({"n": 1})).await;
    app.register("chat", "v2", json!({"n": 2})).await;
    assert_eq!(
        app.get_json("/api/v1/resolve/chat:latest?env=development")
            .await["full_id"],
        "chat:v2"
    );
}

#[tokio::test]
async fn a_deprecated_version_resolves_with_a_deprecation_header_and_a_warning() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    assert_eq!(
        app.move_stage("chat:v1", "deprecated").await.status(),
        StatusCode::OK
    );
    let res = app.get("/api/v1/resolve/chat:v1?env=production").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["deprecation"], "true");
    assert!(res.headers()["warning"]
        .to_str()
        .unwrap()
        .starts_with("299 - \"chat:v1 is deprecated"));
    let r: serde_json::Value = res.json().await.unwrap();
    assert_eq!(r["deprecated"], true);
}

#[tokio::test]
async fn resolving_without_an_environment_is_refused_with_422() {
    let app = spawn_app().await;
    let error = assert_error(
        app.get("/api/v1/resolve/chat").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("env"),
        "{error}"
    );
}

async fn resolved_full_id(s: &crate::helpers::TestApp) -> serde_json::Value {
    s.get("/api/v1/resolve/chat?env=staging")
        .await
        .json::<serde_json::Value>()
        .await
        .expect("JSON")["full_id"]
        .clone()
}

/// Two servers on one database, each with its resolve and token cache: a pin
/// changed through one is resolved by the other within a second, every time;
/// a token revoked behind both servers' backs stops working on both within a second.
pub async fn changes_reach_every_servers_cache_within_a_second(app: crate::helpers::TestApp) {
    use std::time::{Duration, Instant};
    let second = app.another_server().await;
    for v in ["v1", "v2"] {
        app.register("chat", v, json!({ "v": v })).await;
        assert_eq!(
            app.move_stage(&format!("chat:{v}"), "staging")
                .await
                .status(),
            StatusCode::OK
        );
    }
    for (round, (writer, reader, version)) in [
        (&app, &second, "v1"),
        (&second, &app, "v2"),
        (&app, &second, "v1"),
        (&second, &app, "v2"),
    ]
    .into_iter()
    .enumerate()
    {
        // Both servers answer (and cache) the current pin first.
        for s in [writer, reader] {
            s.get("/api/v1/resolve/chat?env=staging").await;
        }
        let res = writer
            .put_json(
                "/api/v1/environments/staging/pins/chat",
                &json!({"version": version, "reason": "test"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let want = format!("chat:{version}");
        assert_eq!(
            writer.get_json("/api/v1/resolve/chat?env=staging").await["full_id"],
            want.as_str(),
            "round {round}: the writer at once"
        );
        let changed = Instant::now();
        // Until then the reader answers what it had cached: the old pin, or 404 before the first.
        while resolved_full_id(reader).await != want.as_str() {
            assert!(
                changed.elapsed() < Duration::from_secs(1),
                "round {round}: {want} not visible on the other server after a second"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let token = app
        .user_with_token("ci", switchyard_domain::access::Role::Viewer, None)
        .await;
    for s in [&app, &second] {
        let res = s
            .client
            .get(format!("{}/api/v1/resolve/chat?env=staging", s.address))
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::OK);
    }
    let store = app.store().await;
    store
        .revoke_token("ci", "test", switchyard_domain::Timestamp::now())
        .await
        .expect("revoked");
    let revoked = Instant::now();
    for s in [&app, &second] {
        loop {
            let res = s
                .client
                .get(format!("{}/api/v1/resolve/chat?env=staging", s.address))
                .bearer_auth(&token)
                .send()
                .await
                .expect("sent");
            if res.status() == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "a revoked token still works after a second"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test]
async fn changes_reach_every_servers_cache_within_a_second_on_sqlite() {
    changes_reach_every_servers_cache_within_a_second(spawn_app().await).await;
}
