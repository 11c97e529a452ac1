//! One smoke test on PostgreSQL: the API's store calls work on the
//! production backend too (the store's contract suite covers the rest).
//! The server is `SWITCHYARD_TEST_PG` (default postgres://postgres@127.0.0.1:5432/postgres);
//! when it is unreachable the test fails rather than skips.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::spawn_app_on_database;

#[tokio::test]
async fn the_api_registers_pins_and_resolves_on_postgresql() {
    let admin_url = std::env::var("SWITCHYARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("sy_api_{:016x}", rand::random::<u64>());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("PostgreSQL is reachable at SWITCHYARD_TEST_PG (start it, or point the variable at one)");
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database name");
    let app = spawn_app_on_database(format!("{base}/{name}")).await;

    app.register("chat", "v1", json!({"temperature": 0.2})).await;
    assert_eq!(app.move_stage("chat:v1", "staging").await.status(), StatusCode::OK);
    let res = app.put_json("/api/v1/environments/staging/pins/chat", &json!({"version": "v1", "reason": "smoke"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get_json("/api/v1/resolve/chat?env=staging").await["full_id"], "chat:v1");
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
}
