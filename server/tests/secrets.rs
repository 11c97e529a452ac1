//! Tokens and passwords appear nowhere: not in the server's logs (captured
//! at debug level for the whole run), the ledger, or API responses.

#[allow(dead_code)] // shared with the API tests; this run uses part of it
#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use serde_json::json;
use switchyard_domain::access::Role;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use helpers::{spawn_app, TEST_PASSWORD};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn tokens_and_passwords_appear_in_no_log_ledger_event_or_api_response() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("debug"))
        .with_writer(logs.clone())
        .with_ansi(false)
        .init();

    let app = spawn_app().await;
    let deployer = app.user_with_token("dave", Role::Deployer, None).await;
    let approver = app.user_with_token("bob", Role::Approver, None).await;
    let second = app.user_with_token("carol", Role::Approver, None).await;
    let wrong_password = "not-the-password-42";
    let mut responses = String::new();

    // A full release through the API, with every token.
    app.register("chat", "v1", json!({"v": 1})).await;
    app.move_stage("chat:v1", "staging").await;
    let p = app
        .post_json_as(
            &deployer,
            "/api/v1/promotions",
            &json!({"full_id": "chat:v1", "environment": "production", "reason": "ship"}),
        )
        .await;
    let p: serde_json::Value = p.json().await.expect("JSON");
    let id = p["id"].as_i64().expect("id");
    responses.push_str(&p.to_string());
    for token in [&approver, &second] {
        let res = app
            .post_json_as(
                token,
                &format!("/api/v1/promotions/{id}/approve"),
                &json!({}),
            )
            .await;
        responses.push_str(&res.text().await.unwrap_or_default());
    }
    let bad = app
        .client
        .get(format!("{}/api/v1/models", app.address))
        .bearer_auth("sy_not-a-real-token")
        .send()
        .await
        .expect("sent");
    responses.push_str(&bad.text().await.unwrap_or_default());

    // Signing in: once wrong, once right, then using the session.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for password in [wrong_password, TEST_PASSWORD] {
        let res = client
            .post(format!("{}/signin", app.address))
            .header(ORIGIN, &app.address)
            .form(&[("username", "bob"), ("password", password)])
            .send()
            .await
            .expect("sent");
        responses.push_str(&format!(
            "{:?}",
            res.headers().get(reqwest::header::LOCATION)
        ));
        if let Some(cookie) = res.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let cookie = cookie.split(';').next().unwrap_or_default().to_owned();
            let page = client
                .get(format!("{}/", app.address))
                .header(COOKIE, &cookie)
                .send()
                .await
                .expect("sent");
            assert_eq!(page.status(), reqwest::StatusCode::OK);
            let session_id = cookie
                .split_once('=')
                .map(|(_, v)| v.to_owned())
                .unwrap_or_default();
            let text = logs_text(&logs);
            assert!(!text.contains(&session_id), "the session id is in the logs");
        }
    }

    let ledger = app
        .get("/api/v1/audit?limit=1000")
        .await
        .text()
        .await
        .unwrap_or_default();
    let logs = logs_text(&logs);
    assert!(
        logs.contains("request finished") || logs.contains("signed in"),
        "the logs were captured"
    );
    let secrets = [
        app.token.as_str(),
        &deployer,
        &approver,
        &second,
        TEST_PASSWORD,
        wrong_password,
        "sy_not-a-real-token",
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret is in the logs");
        assert!(!ledger.contains(secret), "a secret is in the ledger");
        assert!(
            !responses.contains(secret),
            "a secret is in an API response"
        );
    }
}

fn logs_text(logs: &Captured) -> String {
    String::from_utf8_lossy(&logs.0.lock().map(|l| l.clone()).unwrap_or_default()).into_owned()
}
