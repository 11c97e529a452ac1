//! PostgreSQL: one smoke test that the API's store calls work on the
//! production backend too (the store's contract suite covers the rest), and
//! readiness when the database goes away. The server is `SWITCHYARD_TEST_PG`
//! (default postgres://postgres@127.0.0.1:5432/postgres); when it is
//! unreachable these tests fail rather than skip.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use switchyard_domain::access::Role;

use crate::helpers::{assert_error, spawn_app_on_database, TestApp};

/// A server on a fresh database `sy_api_<random>`, and an admin connection to drop it.
pub(crate) async fn spawn_app_on_fresh_postgres() -> (TestApp, PgConnection, String) {
    let admin_url = std::env::var("SWITCHYARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("sy_api_{:016x}", rand::random::<u64>());
    let mut admin = PgConnection::connect(&admin_url).await.expect(
        "PostgreSQL is reachable at SWITCHYARD_TEST_PG (start it, or point the variable at one)",
    );
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database name");
    (
        spawn_app_on_database(format!("{base}/{name}")).await,
        admin,
        name,
    )
}

#[tokio::test]
async fn the_api_registers_pins_and_resolves_on_postgresql() {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    app.register("chat", "v1", json!({"temperature": 0.2}))
        .await;
    assert_eq!(
        app.move_stage("chat:v1", "staging").await.status(),
        StatusCode::OK
    );
    let res = app
        .put_json(
            "/api/v1/environments/staging/pins/chat",
            &json!({"version": "v1", "reason": "smoke"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.get_json("/api/v1/resolve/chat?env=staging").await["full_id"],
        "chat:v1"
    );
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}

#[tokio::test]
async fn readyz_answers_503_when_the_database_is_gone_while_healthz_stays_200() {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
    assert_eq!(
        assert_error(app.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE).await["code"],
        "not_ready"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn twenty_concurrent_approvals_through_two_servers_apply_a_production_promotion_exactly_once()
{
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    let second = app.another_server().await;
    app.register("chat", "v2", json!({"v": 2})).await;
    assert_eq!(
        app.move_stage("chat:v2", "staging").await.status(),
        StatusCode::OK
    );
    let deployer = app.user_with_token("dave", Role::Deployer, None).await;
    let request = json!({"full_id": "chat:v2", "environment": "production", "reason": "ship"});
    let promotion: serde_json::Value = app
        .post_json_as(&deployer, "/api/v1/promotions", &request)
        .await
        .json()
        .await
        .expect("JSON");
    let path = format!("/api/v1/promotions/{}/approve", promotion["id"]);
    let mut approvers = Vec::new();
    for n in 0..20 {
        approvers.push(
            app.user_with_token(&format!("approver{n}"), Role::Approver, None)
                .await,
        );
    }
    let body = json!({ "reason": "reviewed" });
    let calls = approvers.iter().enumerate().map(|(n, token)| {
        let server = if n % 2 == 0 { &app } else { &second };
        server.post_json_as(token, &path, &body)
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(calls)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        2,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let applied = app.get_json("/api/v1/audit?action=promotion.applied").await;
    assert_eq!(applied["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        second.get_json("/api/v1/versions/chat:v2").await["stage"],
        "production"
    );
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}

#[tokio::test]
async fn changes_reach_every_servers_cache_within_a_second_on_postgresql() {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    crate::resolve::changes_reach_every_servers_cache_within_a_second(app).await;
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}
