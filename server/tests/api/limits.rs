//! Abuse limits: each route's body limit named in its 413 (with and without a
//! declared length), the request-record batch limit, the audit page limit,
//! failed sign-ins per address; every refusal changes nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::console::{call_server_fn, no_redirects, post_sign_in, sign_in};
use crate::helpers::{assert_error, spawn_app, TEST_PASSWORD};
use crate::request_records::{cluster_with_chat_v1, record};

fn message(error: &Value) -> &str {
    error["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn each_routes_body_limit_is_named_in_its_413_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    let events_before = app.get_json("/api/v1/audit/verify").await["checked"].clone();
    let promotions_before = app.get_json("/api/v1/promotions").await;

    // A promotion request is small: 256 KiB.
    let long = "r".repeat(300 * 1024);
    let res = app
        .post_json(
            "/api/v1/promotions",
            &json!({"full_id": "chat:v1", "environment": "staging", "reason": long}),
        )
        .await;
    let error = assert_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(error["code"], "payload_too_large");
    assert!(
        message(&error).contains("this endpoint accepts at most 256 KiB")
            && message(&error).contains("bytes; send less"),
        "{error}"
    );
    assert_eq!(error["details"]["limit_bytes"], 256 * 1024);

    // A registration carries its config: 1 MiB, so 600 KiB goes in…
    let padding = "p".repeat(600 * 1024);
    let res = app
        .post_json(
            "/api/v1/models/big/versions",
            &json!({"version": "v1", "config": {"padding": padding}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // … and 1.5 MiB is told where large things belong.
    let padding = "p".repeat(1536 * 1024);
    let res = app
        .post_json(
            "/api/v1/models/big/versions",
            &json!({"version": "v2", "config": {"padding": padding}}),
        )
        .await;
    let error = assert_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(
        message(&error).contains("a version registration (POST /api/v1/models/{model_id}/versions) accepts at most 1 MiB")
            && message(&error).contains("artifact_uri"),
        "{error}"
    );
    assert_error(
        app.get("/api/v1/versions/big:v2").await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Without a declared length (chunked), the limit is met while reading: the same answer.
    let addr = app.address.trim_start_matches("http://").to_owned();
    let conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut read, mut write) = conn.into_split();
    // Read while writing: the answer comes before the body ends.
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    });
    let head = format!(
        "POST /api/v1/promotions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.token
    );
    write.write_all(head.as_bytes()).await.expect("head");
    let body = format!(r#"{{"full_id":"chat:v1","environment":"staging","reason":"{long}"}}"#);
    for chunk in body.as_bytes().chunks(16 * 1024) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if write.write_all(&frame).await.is_err() {
            break; // answered and closed before the end: fine
        }
    }
    let _ = write.write_all(b"0\r\n\r\n").await;
    let answer = reader.await.expect("reader");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("this endpoint accepts at most 256 KiB"),
        "{answer}"
    );

    // Nothing but the one registration was written.
    let events_after = app.get_json("/api/v1/audit/verify").await["checked"].clone();
    assert_eq!(
        events_after.as_u64(),
        events_before.as_u64().map(|n| n + 1),
        "only big:v1's registration"
    );
    assert_eq!(app.get_json("/api/v1/promotions").await, promotions_before);
}

#[tokio::test]
async fn a_batch_of_more_than_10000_request_records_is_refused_whole_with_413() {
    let app = spawn_app().await;
    cluster_with_chat_v1(&app).await;
    let lines: Vec<String> = (0..10_001)
        .map(|i| record(&format!("r{i}")).to_string())
        .collect();
    let res = app
        .post_raw(
            "/api/v1/request-records",
            "application/x-ndjson",
            lines.join("\n"),
        )
        .await;
    let error = assert_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(
        message(&error).contains("at most 10000 request records; this one has 10001")
            && message(&error).contains("split it"),
        "{error}"
    );
    assert_eq!(error["details"]["limit_records"], 10_000);
    assert_error(
        app.get("/api/v1/request-records/r0").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // 10 000 is a batch.
    let res = app
        .post_raw(
            "/api/v1/request-records",
            "application/x-ndjson",
            lines[..10_000].join("\n"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.expect("JSON")["accepted"], 10_000);
}

#[tokio::test]
async fn an_audit_page_above_the_maximum_is_refused_naming_the_maximum() {
    let app = spawn_app().await;
    let error = assert_error(
        app.get("/api/v1/audit?limit=501").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(message(&error), "limit must be between 1 and 500, not 501");
    assert_eq!(
        app.get("/api/v1/audit?limit=500").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn twenty_failed_sign_ins_from_one_address_hold_off_every_account_from_it() {
    let app = spawn_app().await;
    app.user_with_token("erin", Role::Viewer, None).await;
    // Four names, five failures each: no single account reaches its own limit of five…
    for n in 0..20 {
        let res = post_sign_in(&app, &format!("guess-{}", n % 4), "wrong-password-123").await;
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            location.starts_with("/signin?error=invalid"),
            "attempt {n}: {location}"
        );
    }
    // … but the address has: erin's right password is refused from it too, and no session is made.
    let res = post_sign_in(&app, "erin", TEST_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        res.headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("900")
    );
    assert!(res.headers().get(reqwest::header::SET_COOKIE).is_none());
    let page = res.text().await.unwrap_or_default();
    assert!(
        page.contains("Signing in is paused") && page.contains("value=\"erin\""),
        "{page}"
    );
}

#[tokio::test]
async fn a_console_request_above_64_kib_is_refused_with_413_in_the_apis_shape_whatever_its_type() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    app.register("chat", "v2", json!({})).await;
    let browser = sign_in(&app, "test-admin").await;
    let promotions_before = app.get_json("/api/v1/promotions").await;
    let long = "r".repeat(70 * 1024);

    // A form post to a server function, as the console sends it.
    let form = serde_urlencoded::to_string([
        ("full_id", "chat:v2"),
        ("environment", "staging"),
        ("reason", long.as_str()),
    ])
    .expect("form");
    let answer = call_server_fn(
        &app,
        "POST",
        "/console/fn/request_promotion",
        &form,
        Some(&browser),
    )
    .await;
    assert!(
        answer.starts_with("413 "),
        "{}",
        &answer[..answer.len().min(300)]
    );
    let body: Value = serde_json::from_str(answer.trim_start_matches("413 Payload Too Large "))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"));
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert!(
        message(&body["error"]).contains("a console request accepts at most 64 KiB"),
        "{body}"
    );

    // Any other content type is bounded the same way: the server function never reads more.
    let res = no_redirects()
        .post(format!("{}/console/fn/request_promotion", app.address))
        .header(reqwest::header::ORIGIN, &app.address)
        .header(reqwest::header::COOKIE, &browser.cookie)
        .header("x-csrf-token", &browser.csrf)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({"full_id": "chat:v2", "environment": "staging", "reason": long}).to_string())
        .send()
        .await
        .expect("sent");
    let error = assert_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(message(&error).contains("at most 64 KiB"), "{error}");

    assert_eq!(app.get_json("/api/v1/promotions").await, promotions_before);
}
