//! Notifications end to end: subscriptions over the REST API, the delivery
//! worker sending to a real HTTP receiver on loopback that can be told to
//! fail (500), hang, close the connection or go away, and `kill -9` of the
//! real server binary while deliveries are in flight. On SQLite and PostgreSQL.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::notify::NotifySettings;
use switchyard_domain::access::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::helpers::{assert_error, spawn_app, spawn_app_with_secrets_key, TestApp};
use crate::postgres::spawn_app_on_fresh_postgres;
use switchyard::notify::sealed::SecretsKey;

// ---- the receiver ----

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    /// Answers OK after this long.
    Slow(Duration),
    Status(u16),
    /// Never answers.
    Hang,
    /// Closes the connection without an answer.
    Close,
}

/// One request the receiver answered with 2xx.
#[derive(Debug, Clone)]
struct Received {
    /// The request path: one receiver serves several subscriptions.
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    /// Requests of any outcome.
    attempts: usize,
}

/// A minimal HTTP/1.1 server on loopback, written here so that it can really
/// go away: `down` closes the listener and every open connection (each answer
/// says `Connection: close`, so no pooled connection outlives it).
struct Receiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    log: Arc<Mutex<Log>>,
    tasks: Option<JoinSet<()>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut r = Receiver {
            addr,
            mode: Arc::new(Mutex::new(Mode::Ok)),
            log: Arc::default(),
            tasks: None,
        };
        r.serve(listener);
        r
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn url_at(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let (mode, log) = (self.mode.clone(), self.log.clone());
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((conn, _)) = listener.accept().await {
                connections.spawn(answer(conn, mode.clone(), log.clone()));
            }
        });
        self.tasks = Some(tasks);
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// Closes the listener and every connection: the port refuses connections.
    async fn down(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }

    /// Listens on the same port again.
    async fn up(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the same port again");
        self.serve(listener);
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log").received.clone()
    }

    fn attempts(&self) -> usize {
        self.log.lock().expect("log").attempts
    }

    /// Waits until `done` holds for what was received, or fails after `limit`.
    async fn wait_until(&self, limit: Duration, what: &str, done: impl Fn(&[Received]) -> bool) {
        let start = Instant::now();
        loop {
            if done(&self.received()) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; received {:?}",
                self.received()
                    .iter()
                    .map(|r| r.id.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_for_attempts(&self, n: usize) {
        let start = Instant::now();
        while self.attempts() < n {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{n} attempts did not come"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tasks) = self.tasks.as_mut() {
            tasks.abort_all();
        }
    }
}

/// Reads one request and answers it as `mode` says.
async fn answer(mut conn: TcpStream, mode: Arc<Mutex<Mode>>, log: Arc<Mutex<Log>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    let mode = *mode.lock().expect("mode");
    log.lock().expect("log").attempts += 1;
    let status = match mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Mode::Close => return,
        Mode::Status(s) => s,
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            200
        }
        Mode::Ok => 200,
    };
    if status < 300 {
        log.lock().expect("log").received.push(Received {
            path: head.split_whitespace().nth(1).unwrap_or("").to_owned(),
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
        });
    }
    let text = if status < 300 {
        "ok"
    } else {
        "receiver told to fail"
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = conn.write_all(response.as_bytes()).await;
    let _ = conn.shutdown().await;
}

/// Verifies a received request's signature with the `standardwebhooks` crate's verifier.
fn verifies(r: &Received, secret: &str) -> bool {
    let mut headers = axum::http::HeaderMap::new();
    for (k, v) in [
        ("webhook-id", &r.id),
        ("webhook-timestamp", &r.timestamp),
        ("webhook-signature", &r.signature),
    ] {
        match v.parse() {
            Ok(v) => {
                headers.insert(k, v);
            }
            Err(_) => return false,
        }
    }
    standardwebhooks::Webhook::new(secret)
        .and_then(|wh| wh.verify(&r.body, &headers))
        .is_ok()
}

// ---- helpers ----

/// Retries quickly, so that the tests take seconds.
fn fast_settings() -> NotifySettings {
    NotifySettings {
        timeout: Duration::from_millis(800),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        breaker_threshold: 4,
        breaker_cooldown: Duration::from_millis(300),
        poll: Duration::from_millis(20),
        // The receivers are on loopback.
        allow_private: true,
        ..NotifySettings::default()
    }
}

async fn subscribe(app: &TestApp, name: &str, url: &str, filter: Value) -> Value {
    let res = app
        .post_json(
            "/api/v1/subscriptions",
            &json!({ "name": name, "url": url, "filter": filter }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.expect("JSON")
}

/// The ledger ids of the `version.registered` events of `model`, oldest first.
async fn registrations(app: &TestApp, model: &str) -> Vec<String> {
    let page = app
        .get_json(&format!(
            "/api/v1/audit?model={model}&action=version.registered&limit=500"
        ))
        .await;
    let mut ids: Vec<String> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| format!("evt_{}", e["id"]))
        .collect();
    ids.reverse();
    ids
}

/// The received ids with consecutive repeats (at-least-once redeliveries) folded.
fn in_order_without_repeats(received: &[Received]) -> Vec<String> {
    let mut ids: Vec<String> = received.iter().map(|r| r.id.clone()).collect();
    ids.dedup();
    ids
}

/// The received ids in the order of their first arrival.
fn first_arrivals(received: &[Received]) -> Vec<String> {
    let mut seen = HashSet::new();
    received
        .iter()
        .filter(|r| seen.insert(r.id.clone()))
        .map(|r| r.id.clone())
        .collect()
}

// ---- validation ----

#[tokio::test]
async fn invalid_subscriptions_are_refused_with_422_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let cases = [
        (
            json!({"name": "a", "url": "ftp://example.com/x"}),
            "http or https",
        ),
        (json!({"name": "a", "url": "not a url"}), "not a valid URL"),
        (
            json!({"name": "a", "url": "http://example.com/x", "filter": {"events": ["promotion.requsted"]}}),
            "unknown event kind",
        ),
        (
            json!({"name": "a", "url": "http://example.com/x", "filter": {"models": ["nope"]}}),
            "unknown model",
        ),
        (
            json!({"name": "a", "url": "http://example.com/x", "filter": {"environments": ["moon"]}}),
            "unknown environment",
        ),
        (
            json!({"name": "a", "url": "http://example.com/x", "filter": {"clusters": ["eu-9"]}}),
            "unknown cluster",
        ),
        (
            json!({"name": "Bad Name", "url": "http://example.com/x"}),
            "not valid",
        ),
        (
            json!({"name": "a", "kind": "pager", "url": "http://example.com/x"}),
            "webhook or chat",
        ),
    ];
    for (body, says) in cases {
        let e = assert_error(
            app.post_json("/api/v1/subscriptions", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let message = e["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{body}: {message}");
    }
    assert_eq!(
        app.get_json("/api/v1/subscriptions").await["subscriptions"],
        json!([])
    );
    // No subscription.created in the ledger either.
    let audit = app
        .get_json("/api/v1/audit?action=subscription.created")
        .await;
    assert_eq!(audit["events"], json!([]));
    // Only admins manage subscriptions.
    let viewer = app.user_with_token("vera", Role::Viewer, None).await;
    let res = app
        .post_json_as(
            &viewer,
            "/api/v1/subscriptions",
            &json!({"name": "a", "url": "http://example.com/x"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_secret_is_shown_once_and_urls_are_shown_without_credentials() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let created = subscribe(
        &app,
        "ops",
        "https://user:pw@hooks.example.com/services/T0/B0/s3cr3t-path",
        json!({"models": ["chat"], "events": ["promotion.requested", "rollback"]}),
    )
    .await;
    let secret = created["secret"]
        .as_str()
        .expect("secret shown at creation")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["url"], "https://hooks.example.com/services/…");
    let shown = app.get_json("/api/v1/subscriptions/ops").await.to_string();
    let listed = app.get_json("/api/v1/subscriptions").await.to_string();
    for text in [&shown, &listed] {
        assert!(
            !text.contains(&secret) && !text.contains("pw") && !text.contains("s3cr3t-path"),
            "{text}"
        );
    }
    assert_error(
        app.post_json(
            "/api/v1/subscriptions",
            &json!({"name": "ops", "url": "https://example.com/"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let rotated: Value = app
        .post_json(
            "/api/v1/subscriptions/ops/rotate-secret",
            &json!({"overlap_hours": 2}),
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert!(rotated["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("whsec_") && s != secret));
    assert_error(
        app.post_json(
            "/api/v1/subscriptions/ops/rotate-secret",
            &json!({"overlap_hours": 9999}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let doc = app.get_json("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/subscriptions"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/deliveries/{id}/redeliver"]["post"].is_object());
    for schema in [
        "Subscription",
        "SubscriptionCreated",
        "SubscriptionDetail",
        "Delivery",
        "SecretRotated",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let detail = &doc["components"]["schemas"]["SubscriptionDetail"]["properties"];
    assert!(
        detail["deliveries"].is_object() && detail["filter"].is_object(),
        "{detail}"
    );
    let res = app
        .request(reqwest::Method::DELETE, "/api/v1/subscriptions/ops")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/v1/subscriptions/ops").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

// ---- delivery through faults ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_none_missing_through_500s_hangs_closed_connections_and_a_receiver_that_was_down_sqlite(
) {
    let app = spawn_app().await;
    deliveries_survive_receiver_faults(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_none_missing_through_500s_hangs_closed_connections_and_a_receiver_that_was_down_postgres(
) {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    deliveries_survive_receiver_faults(&app).await;
    drop_database(&mut admin, &name).await;
}

async fn drop_database(admin: &mut sqlx::PgConnection, name: &str) {
    let _ = sqlx::Executor::execute(
        admin,
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
    )
    .await;
}

async fn deliveries_survive_receiver_faults(app: &TestApp) {
    let mut rx = Receiver::start().await;
    app.register("chat", "v0", json!({})).await;
    let created = subscribe(app, "hook", &rx.url(), json!({"models": ["chat"]})).await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    // Two workers on two pools: two servers sharing the outbox.
    let first = switchyard::notify::spawn(app.store().await, fast_settings());
    let second = switchyard::notify::spawn(app.store().await, fast_settings());
    let limit = Duration::from_secs(30);

    app.register("chat", "v1", json!({})).await;
    rx.wait_until(limit, "v1", |r| r.len() == 1).await;
    assert_eq!(rx.attempts(), 1, "two workers, one delivery");

    rx.set(Mode::Status(500));
    app.register("chat", "v2", json!({})).await;
    app.register("chat", "v3", json!({})).await;
    rx.wait_for_attempts(3).await;
    rx.set(Mode::Hang);
    rx.wait_for_attempts(4).await;
    rx.set(Mode::Close);
    rx.wait_for_attempts(5).await;
    rx.down().await;
    app.register("chat", "v4", json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    rx.set(Mode::Ok);
    rx.up().await;
    app.register("chat", "v5", json!({})).await;

    let expected = registrations(app, "chat").await[1..].to_vec();
    assert_eq!(expected.len(), 5);
    rx.wait_until(limit, "v1..v5", |r| {
        in_order_without_repeats(r).len() >= expected.len()
    })
    .await;
    let received = rx.received();
    assert_eq!(
        in_order_without_repeats(&received),
        expected,
        "in event order, none missing"
    );
    let ids: HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert!(
        ids.iter().all(|id| expected.iter().any(|e| e == id)),
        "nothing else: {ids:?}"
    );
    for r in &received {
        assert!(verifies(r, &secret), "signature of {}", r.id);
        let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
        assert_eq!(body["type"], "version.registered");
        assert_eq!(
            format!("evt_{}", body["data"]["id"]),
            r.id,
            "webhook-id is the event id"
        );
        assert_eq!(body["data"]["model_id"], "chat");
    }

    // The subscription shows its deliveries: all delivered, v2's after failed attempts.
    // Each attempt is recorded just after the receiver answered it.
    let start = Instant::now();
    let shown = loop {
        let shown = app.get_json("/api/v1/subscriptions/hook").await;
        let settled = shown["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| d["status"] != "pending"));
        if settled || start.elapsed() > Duration::from_secs(5) {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let deliveries = shown["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 5);
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "delivered" && d["response_code"] == 200),
        "{shown}"
    );
    let v2 = deliveries
        .iter()
        .find(|d| d["message_id"] == expected[1].as_str())
        .expect("v2");
    assert!(v2["attempts"].as_i64().is_some_and(|n| n >= 4), "{v2}");
    assert!(v2["latency_ms"].is_i64());

    // A test message and a redelivery go out with their ids.
    let test: Value = app
        .post_json("/api/v1/subscriptions/hook/test", &json!({}))
        .await
        .json()
        .await
        .expect("JSON");
    let test_id = test["message_id"].as_str().expect("message id").to_owned();
    rx.wait_until(limit, "the test message", |r| {
        r.iter().any(|x| x.id == test_id)
    })
    .await;
    let v1_delivery = deliveries
        .iter()
        .find(|d| d["message_id"] == expected[0].as_str())
        .expect("v1");
    // Counted before asking: the redelivery may arrive before the answer does.
    let before = rx.received().len();
    let res = app
        .post_json(
            &format!("/api/v1/deliveries/{}/redeliver", v1_delivery["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    rx.wait_until(limit, "the redelivery", |r| {
        r.len() > before && r.last().is_some_and(|x| x.id == expected[0])
    })
    .await;

    // The last attempt is recorded just after the receiver answered it.
    let start = Instant::now();
    let metrics = loop {
        let text = app.get("/metrics").await.text().await.expect("text");
        if text.contains("switchyard_delivery_queue_pending 0")
            || start.elapsed() > Duration::from_secs(5)
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metrics.contains("switchyard_delivery_queue_pending 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_delivery_queue_age_seconds 0.000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_deliveries_total{outcome=\"failed\"}"),
        "{metrics}"
    );
    first.abort();
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_send_each_delivery_once_each_subscription_in_order_sqlite() {
    let app = spawn_app().await;
    two_servers_share_the_outbox(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_send_each_delivery_once_each_subscription_in_order_postgres() {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    two_servers_share_the_outbox(&app).await;
    drop_database(&mut admin, &name).await;
}

async fn two_servers_share_the_outbox(app: &TestApp) {
    let rx = Receiver::start().await;
    app.register("chat", "v0", json!({})).await;
    for s in ["a", "b", "c"] {
        subscribe(app, s, &rx.url_at(s), json!({"models": ["chat"]})).await;
    }
    let first = switchyard::notify::spawn(app.store().await, fast_settings());
    let second = switchyard::notify::spawn(app.store().await, fast_settings());
    for v in 1..=15 {
        app.register("chat", &format!("v{v}"), json!({})).await;
    }
    let expected = registrations(app, "chat").await[1..].to_vec();
    rx.wait_until(Duration::from_secs(30), "45 deliveries", |r| r.len() >= 45)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = rx.received();
    assert_eq!(received.len(), 45, "each delivery sent once");
    for s in ["a", "b", "c"] {
        let ids: Vec<String> = received
            .iter()
            .filter(|r| r.path == format!("/{s}"))
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(ids, expected, "subscription {s}: in event order");
    }
    first.abort();
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failing_past_the_retry_period_is_dead_and_can_be_redelivered() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.set(Mode::Status(503));
    app.register("chat", "v0", json!({})).await;
    subscribe(&app, "flaky", &rx.url(), json!({"models": ["chat"]})).await;
    let settings = NotifySettings {
        retry_period: Duration::from_secs(1),
        ..fast_settings()
    };
    let worker = switchyard::notify::spawn(app.store().await, settings);
    app.register("chat", "v1", json!({})).await;
    let start = Instant::now();
    let dead = loop {
        let shown = app.get_json("/api/v1/subscriptions/flaky").await;
        let first = shown["deliveries"][0].clone();
        if first["status"] == "dead" {
            break first;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never dead: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(dead["attempts"].as_i64().is_some_and(|n| n >= 2), "{dead}");
    assert_eq!(dead["response_code"], 503);
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 503")),
        "{dead}"
    );
    assert!(rx.received().is_empty());
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("switchyard_deliveries_dead 1"),
        "{metrics}"
    );
    // The destination is back: redeliver sends it with the same id.
    rx.set(Mode::Ok);
    let res = app
        .post_json(
            &format!("/api/v1/deliveries/{}/redeliver", dead["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    rx.wait_until(Duration::from_secs(20), "the redelivery", |r| r.len() == 1)
        .await;
    assert_eq!(
        rx.received()[0].id,
        dead["message_id"].as_str().unwrap_or("")
    );
    let res = app
        .post_json("/api/v1/deliveries/999999/redeliver", &json!({}))
        .await;
    assert_error(res, StatusCode::NOT_FOUND).await;
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_private_the_worker_never_connects_to_an_internal_address() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register("chat", "v0", json!({})).await;
    let port = rx.addr.port();
    // Saved while private addresses were allowed (or a name that resolved elsewhere then).
    subscribe(
        &app,
        "by-ip",
        &format!("http://127.0.0.1:{port}/ip"),
        json!({"models": ["chat"]}),
    )
    .await;
    subscribe(
        &app,
        "by-name",
        &format!("http://localhost:{port}/name"),
        json!({"models": ["chat"]}),
    )
    .await;
    let settings = NotifySettings {
        allow_private: false,
        ..fast_settings()
    };
    let worker = switchyard::notify::spawn(app.store().await, settings);
    app.register("chat", "v1", json!({})).await;
    for name in ["by-ip", "by-name"] {
        let start = Instant::now();
        let first = loop {
            let shown = app.get_json(&format!("/api/v1/subscriptions/{name}")).await;
            let first = shown["deliveries"][0].clone();
            if first["last_error"].is_string() {
                break first;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no attempt: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let error = first["last_error"].as_str().unwrap_or("");
        assert!(error.contains("internal address"), "{name}: {error}");
        assert_eq!(
            first["status"], "pending",
            "refused attempts are retried like failures"
        );
    }
    assert_eq!(rx.attempts(), 0, "nothing reached the receiver");
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_secrets_key_signing_secrets_are_stored_sealed_and_still_sign() {
    use base64::Engine;
    let key_text = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let key = SecretsKey::parse(&key_text).expect("key");
    let app = spawn_app_with_secrets_key(key.clone()).await;
    let rx = Receiver::start().await;
    app.register("chat", "v0", json!({})).await;
    let created = subscribe(&app, "sealed", &rx.url(), json!({"models": ["chat"]})).await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let stored: Vec<String> = {
        let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .expect("database");
        sqlx::query_scalar("SELECT secret FROM subscription_secrets")
            .fetch_all(&mut db)
            .await
            .expect("secrets")
    };
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].starts_with("sealed:v1:") && !stored[0].contains(&secret[6..]),
        "{stored:?}"
    );

    // A worker without the key cannot sign: the attempt fails and says why.
    let keyless = switchyard::notify::spawn(app.store().await, fast_settings());
    app.register("chat", "v1", json!({})).await;
    let start = Instant::now();
    loop {
        let shown = app.get_json("/api/v1/subscriptions/sealed").await;
        let error = shown["deliveries"][0]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if !error.is_empty() {
            assert!(error.contains("SWITCHYARD_SECRETS_KEY"), "{error}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no attempt: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    keyless.abort();
    assert_eq!(rx.attempts(), 0);
    // With the key it is delivered, signed with the secret shown at creation.
    let settings = NotifySettings {
        secrets_key: Some(key),
        ..fast_settings()
    };
    let worker = switchyard::notify::spawn(app.store().await, settings);
    rx.wait_until(Duration::from_secs(20), "v1", |r| r.len() == 1)
        .await;
    assert!(verifies(&rx.received()[0], &secret));
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_of_the_writing_server_sends_at_once_without_waiting_for_its_poll() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register("chat", "v0", json!({})).await;
    subscribe(&app, "quick", &rx.url(), json!({"models": ["chat"]})).await;
    let settings = NotifySettings {
        poll: Duration::from_secs(60),
        ..fast_settings()
    };
    let worker = switchyard::notify::spawn(app.store().await, settings);
    // Its first look at the outbox found nothing: it now waits a minute, or for a write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    app.register("chat", "v1", json!({})).await;
    rx.wait_until(Duration::from_secs(5), "v1", |r| r.len() == 1)
        .await;
    assert!(start.elapsed() < Duration::from_secs(5));
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_failing_longer_than_the_alert_time_is_reported_once_and_cleared_when_it_recovers(
) {
    let app = spawn_app().await;
    let broken = Receiver::start().await;
    broken.set(Mode::Status(500));
    let ops = Receiver::start().await;
    app.register("chat", "v0", json!({})).await;
    subscribe(&app, "flaky", &broken.url(), json!({"models": ["chat"]})).await;
    subscribe(
        &app,
        "ops",
        &ops.url(),
        json!({"events": ["subscription.failing", "subscription.recovered"]}),
    )
    .await;
    let quiet = app.get_json("/api/v1/notifications/status").await;
    assert_eq!(
        (quiet["subscriptions"].as_i64(), &quiet["warnings"]),
        (Some(2), &json!([]))
    );
    let settings = NotifySettings {
        failing_alert_after: Duration::from_secs(1),
        ..fast_settings()
    };
    let worker = switchyard::notify::spawn(app.store().await, settings);
    app.register("chat", "v1", json!({})).await;
    let kinds = |r: &[Received]| -> Vec<String> {
        r.iter()
            .filter_map(|x| serde_json::from_slice::<Value>(&x.body).ok())
            .map(|b| b["type"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    ops.wait_until(Duration::from_secs(20), "subscription.failing", |r| {
        kinds(r).iter().any(|k| k == "subscription.failing")
    })
    .await;
    let failing: Value = serde_json::from_slice(&ops.received()[0].body).expect("JSON");
    assert_eq!(failing["data"]["details"]["subscription"], "flaky");
    assert_eq!(failing["data"]["actor"], "system");
    assert!(
        failing["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("HTTP 500")),
        "{failing}"
    );

    // The overview's warning: the failing subscription, its error for admins only.
    let status = app.get_json("/api/v1/notifications/status").await;
    let warning = &status["warnings"][0];
    assert_eq!(warning["subscription"], "flaky", "{status}");
    assert!(
        warning["warning"] == "failing" || warning["warning"] == "paused",
        "{status}"
    );
    assert!(warning["failing_since"].is_string() && warning["reported_at"].is_string());
    assert_eq!(warning["pending"], 1);
    assert!(
        warning["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 500")),
        "{status}"
    );
    assert_eq!(status["warnings"].as_array().map(Vec::len), Some(1));
    let viewer = app.user_with_token("vera", Role::Viewer, None).await;
    let seen: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/notifications/status", app.address))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(seen["warnings"][0]["subscription"], "flaky");
    assert!(seen["warnings"][0]["last_error"].is_null(), "{seen}");

    // Still failing a while later: raised once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        kinds(&ops.received())
            .iter()
            .filter(|k| *k == "subscription.failing")
            .count(),
        1
    );
    broken.set(Mode::Ok);
    ops.wait_until(Duration::from_secs(20), "subscription.recovered", |r| {
        kinds(r).iter().any(|k| k == "subscription.recovered")
    })
    .await;
    broken
        .wait_until(Duration::from_secs(5), "v1", |r| r.len() == 1)
        .await;
    let status = app.get_json("/api/v1/notifications/status").await;
    assert_eq!(status["warnings"], json!([]), "{status}");
    assert_eq!(status["failing"], 0);
    let doc = app.get_json("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/notifications/status"]["get"].is_object());
    assert!(
        doc["components"]["schemas"]["NotificationStatus"]["properties"]["warnings"].is_object()
    );
    worker.abort();
}

// ---- kill -9 ----

/// The real `switchyard serve` binary, whose delivery worker sends
/// notifications; killed with SIGKILL when dropped.
struct Served(std::process::Child);

impl Served {
    /// `run`: `SWITCHYARD_WEBHOOK_RUN`.
    fn start(database_url: &str, log: &std::path::Path, run: u32) -> Served {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("SWITCHYARD_ADDR", "127.0.0.1:0")
            .env("SWITCHYARD_WEBHOOK_TIMEOUT_MS", "800")
            .env("SWITCHYARD_WEBHOOK_BACKOFF_MS", "50")
            .env("SWITCHYARD_WEBHOOK_BACKOFF_MAX_MS", "400")
            .env("SWITCHYARD_WEBHOOK_POLL_MS", "20")
            .env("SWITCHYARD_WEBHOOK_ALLOW_PRIVATE", "1")
            .env("SWITCHYARD_WEBHOOK_RUN", run.to_string())
            .env_remove("LOG_FORMAT")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("switchyard serve starts");
        Served(child)
    }

    fn kill9(mut self) {
        self.0.kill().expect("SIGKILL sent");
        self.0.wait().expect("reaped");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_with_deliveries_in_flight_loses_none_after_restart_sqlite() {
    let app = spawn_app().await;
    kill_9_mid_delivery(&app, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_with_deliveries_in_flight_loses_none_after_restart_postgres() {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    kill_9_mid_delivery(&app, 1).await;
    drop_database(&mut admin, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_sending_runs_killed_mid_run_sends_the_run_again_in_order_none_missing_sqlite() {
    let app = spawn_app().await;
    kill_9_mid_delivery(&app, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_sending_runs_killed_mid_run_sends_the_run_again_in_order_none_missing_postgres() {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    kill_9_mid_delivery(&app, 4).await;
    drop_database(&mut admin, &name).await;
}

/// `run` > 1: the servers send runs of that many (`SWITCHYARD_WEBHOOK_RUN`).
async fn kill_9_mid_delivery(app: &TestApp, run: u32) {
    let rx = Receiver::start().await;
    // Each answer takes a while: there is always a delivery in flight to kill.
    rx.set(Mode::Slow(Duration::from_millis(250)));
    app.register("chat", "v0", json!({})).await;
    subscribe(app, "hook", &rx.url(), json!({"models": ["chat"]})).await;
    let log = std::env::temp_dir().join(format!("sy-notify-{:016x}.log", rand::random::<u64>()));
    // The API server of the test has no worker: only the binary delivers.
    let served = Served::start(&app.database_url, &log, run);
    for v in 1..=12 {
        app.register("chat", &format!("v{v}"), json!({})).await;
    }
    let limit = Duration::from_secs(40);
    rx.wait_until(limit, "the first deliveries", |r| r.len() >= 3)
        .await;
    // Mid-request: the receiver is holding an answer.
    let attempts = rx.attempts();
    let start = Instant::now();
    while rx.attempts() == attempts && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    served.kill9();
    let at_kill = rx.received().len();
    assert!(
        at_kill < 12,
        "the kill came before the end ({at_kill} received)"
    );
    let _restarted = Served::start(&app.database_url, &log, run);
    let expected = registrations(app, "chat").await[1..].to_vec();
    assert_eq!(expected.len(), 12);
    if run > 1 {
        rx.wait_until(limit, "every event after the restart", |r| {
            first_arrivals(r).len() >= 12
        })
        .await;
        let received = rx.received();
        assert_eq!(
            first_arrivals(&received),
            expected,
            "in order, none missing"
        );
        // Repeats only of the killed server's run: from its first delivery
        // (sent, not recorded) on, everything again in order.
        let first_repeat =
            (0..received.len()).find(|&i| received[..i].iter().any(|e| e.id == received[i].id));
        if let Some(at) = first_repeat {
            let from = expected
                .iter()
                .position(|e| *e == received[at].id)
                .expect("a known id");
            assert_eq!(
                in_order_without_repeats(&received[at..]),
                expected[from..].to_vec(),
                "after the restart, in order from the run's first delivery"
            );
        }
        let _ = std::fs::remove_file(&log);
        return;
    }
    rx.wait_until(limit, "every event after the restart", |r| {
        in_order_without_repeats(r).len() >= 12
    })
    .await;
    let received = rx.received();
    assert_eq!(
        in_order_without_repeats(&received),
        expected,
        "in order, none missing"
    );
    let _ = std::fs::remove_file(&log);
}

// ---- independent verification (Python) ----

/// A Python with the PyPI `standardwebhooks` package: `SWITCHYARD_WEBHOOK_PYTHON`
/// (scripts/peers.sh sets it), else `.tools/venv/bin/python` if it has the package.
fn webhook_python() -> Option<String> {
    let candidates = [
        std::env::var("SWITCHYARD_WEBHOOK_PYTHON").ok(),
        Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python").to_owned()),
    ];
    candidates.into_iter().flatten().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import standardwebhooks"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// `webhook_receiver.py` as a child process, killed when dropped.
struct PythonReceiver {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl PythonReceiver {
    async fn start(python: &str) -> PythonReceiver {
        let dir = std::env::temp_dir().join(format!("sy-pyhook-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("secrets"), "").expect("secrets file");
        let child = std::process::Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/webhook_receiver.py"
            ))
            .arg(dir.join("secrets"))
            .arg(dir.join("log.jsonl"))
            .arg(dir.join("port"))
            .spawn()
            .expect("the Python receiver starts");
        let start = Instant::now();
        let port = loop {
            if let Some(p) = std::fs::read_to_string(dir.join("port"))
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                break p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the Python receiver did not start"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        };
        PythonReceiver { child, dir, port }
    }

    fn add_secret(&self, secret: &str) {
        let path = self.dir.join("secrets");
        let mut all = std::fs::read_to_string(&path).unwrap_or_default();
        all.push_str(secret);
        all.push('\n');
        std::fs::write(path, all).expect("secrets file");
    }

    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let log = self.log();
            if done(&log) {
                return log;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{what}: {log:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_verify_with_the_python_standardwebhooks_package_through_a_secret_rotation() {
    let Some(python) = webhook_python() else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "no Python with the standardwebhooks package: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: no Python with standardwebhooks (scripts/peers.sh installs it)");
        return;
    };
    let app = spawn_app().await;
    let rx = PythonReceiver::start(&python).await;
    app.register("chat", "v0", json!({})).await;
    let base = format!("http://127.0.0.1:{}", rx.port);
    let created = subscribe(
        &app,
        "py",
        &format!("{base}/hook"),
        json!({"models": ["chat"]}),
    )
    .await;
    rx.add_secret(created["secret"].as_str().expect("secret"));
    let chat = app
        .post_json(
            "/api/v1/subscriptions",
            &json!({"name": "room", "kind": "chat", "url": format!("{base}/services/T0/B0/s3cr3t-path"),
                    "filter": {"models": ["chat"], "events": ["promotion.requested", "version.registered"]}}),
        )
        .await;
    assert_eq!(chat.status(), StatusCode::CREATED);
    let chat: Value = chat.json().await.expect("JSON");
    assert!(
        chat.get("secret").is_none(),
        "chat messages are not signed: no secret"
    );
    let worker = switchyard::notify::spawn(app.store().await, fast_settings());

    // Rotation with an overlap: signed with the new secret and the old one.
    let rotated: Value = app
        .post_json("/api/v1/subscriptions/py/rotate-secret", &json!({}))
        .await
        .json()
        .await
        .expect("JSON");
    rx.add_secret(rotated["secret"].as_str().expect("secret"));
    app.register("chat", "v1", json!({})).await;
    let log = rx
        .wait_for("v1", |l| l.iter().any(|e| e["path"] == "/hook"))
        .await;
    let hook: Vec<&Value> = log.iter().filter(|e| e["path"] == "/hook").collect();
    assert_eq!(hook[0]["status"], 200);
    assert_eq!(
        hook[0]["verified_by"],
        json!([0, 1]),
        "each secret verifies on its own during the overlap"
    );
    assert_eq!(hook[0]["body"]["data"]["version"], "v1");

    // Without an overlap the old secrets stop at once.
    let rotated: Value = app
        .post_json(
            "/api/v1/subscriptions/py/rotate-secret",
            &json!({"overlap_hours": 0}),
        )
        .await
        .json()
        .await
        .expect("JSON");
    rx.add_secret(rotated["secret"].as_str().expect("secret"));
    app.register("chat", "v2", json!({})).await;
    let log = rx
        .wait_for("v2", |l| {
            l.iter().filter(|e| e["path"] == "/hook").count() >= 2
        })
        .await;
    let hook: Vec<&Value> = log.iter().filter(|e| e["path"] == "/hook").collect();
    assert_eq!(hook[1]["verified_by"], json!([2]));
    assert_eq!(hook[1]["body"]["data"]["version"], "v2");

    // The chat room got Slack-compatible messages, accepted like Slack accepts them.
    let chats: Vec<&Value> = log.iter().filter(|e| e["path"] != "/hook").collect();
    assert!(
        chats.len() >= 2 && chats.iter().all(|e| e["status"] == 200),
        "{chats:?}"
    );
    let message = &chats[0]["chat"];
    assert!(
        message["text"]
            .as_str()
            .is_some_and(|t| t.contains("chat") && t.contains("v1")),
        "{message}"
    );
    assert!(
        message["blocks"].to_string().contains("/versions/chat:v1"),
        "{message}"
    );
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_subscription_is_sent_concurrently_within_the_bound_and_an_ordered_one_in_event_order_at_the_python_receiver_sqlite(
) {
    let app = spawn_app().await;
    parallel_and_ordered_at_the_python_receiver(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_subscription_is_sent_concurrently_within_the_bound_and_an_ordered_one_in_event_order_at_the_python_receiver_postgres(
) {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    parallel_and_ordered_at_the_python_receiver(&app).await;
    drop_database(&mut admin, &name).await;
}

/// Two servers' workers (bound 3 each) and a receiver that takes 0.3 s per
/// webhook under /slow/: the parallel subscription's requests overlap, never
/// more than 3 at once, each event once; the ordered one's never overlap and
/// come in event order.
async fn parallel_and_ordered_at_the_python_receiver(app: &TestApp) {
    let Some(python) = webhook_python() else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "no Python with the standardwebhooks package: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: no Python with standardwebhooks (scripts/peers.sh installs it)");
        return;
    };
    let rx = PythonReceiver::start(&python).await;
    let base = format!("http://127.0.0.1:{}", rx.port);
    app.register("chat", "v0", json!({})).await;
    let filter = json!({"models": ["chat"], "events": ["version.registered"]});
    let ordered = subscribe(app, "ordered", &format!("{base}/slow/ordered"), filter.clone()).await;
    assert_eq!(ordered["parallel"], false, "in order unless asked: {ordered}");
    let res = app
        .post_json(
            "/api/v1/subscriptions",
            &json!({"name": "fast", "url": format!("{base}/slow/fast"), "filter": filter, "parallel": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let fast: Value = res.json().await.expect("JSON");
    assert_eq!(fast["parallel"], true);
    let shown = app.get_json("/api/v1/subscriptions/fast").await;
    assert_eq!(shown["parallel"], true, "{shown}");
    for s in [&ordered, &fast] {
        rx.add_secret(s["secret"].as_str().expect("secret"));
    }
    for v in 1..=12 {
        app.register("chat", &format!("v{v}"), json!({})).await;
    }
    let expected = registrations(app, "chat").await[1..].to_vec();
    let settings = NotifySettings {
        timeout: Duration::from_secs(5),
        parallel: 3,
        ..fast_settings()
    };
    let first = switchyard::notify::spawn(app.store().await, settings.clone());
    let second = switchyard::notify::spawn(app.store().await, settings);
    rx.wait_for("12 events at each", |l| {
        ["/slow/ordered", "/slow/fast"]
            .iter()
            .all(|p| l.iter().filter(|e| e["path"] == *p).count() >= 12)
    })
    .await;
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let log = rx.log();
    first.abort();
    second.abort();
    let at = |path: &str| -> Vec<Value> {
        log.iter().filter(|e| e["path"] == path).cloned().collect()
    };
    let (ordered, fast) = (at("/slow/ordered"), at("/slow/fast"));
    for (name, entries) in [("ordered", &ordered), ("fast", &fast)] {
        assert_eq!(entries.len(), 12, "{name}: each event once: {entries:?}");
        assert!(
            entries.iter().all(|e| e["status"] == 200 && e["verified_by"] != json!([])),
            "{name}: verified by the standardwebhooks package: {entries:?}"
        );
    }
    let ids = |entries: &[Value]| -> Vec<String> {
        entries.iter().map(|e| e["id"].as_str().unwrap_or("").to_owned()).collect()
    };
    // Logged when answered: the ordered one's answers come in event order, one at a time.
    assert_eq!(ids(&ordered), expected, "the ordered subscription: in event order");
    let most = |entries: &[Value]| entries.iter().filter_map(|e| e["in_flight"].as_i64()).max().unwrap_or(0);
    assert_eq!(most(&ordered), 1, "the ordered subscription's requests never overlap");
    let mut arrived = ids(&fast);
    arrived.sort();
    let mut all = expected.clone();
    all.sort();
    assert_eq!(arrived, all, "the parallel subscription: every event once");
    let overlap = most(&fast);
    assert!(
        (2..=3).contains(&overlap),
        "the parallel subscription: several at once, at most the bound (3): {overlap}"
    );
    // Sent one after the other, 12 requests of 0.3 s take 3.6 s at least; the
    // parallel ones finish in a fraction of that.
    let span = |entries: &[Value]| {
        let first = entries.iter().filter_map(|e| e["started"].as_f64()).fold(f64::MAX, f64::min);
        let last = entries.iter().filter_map(|e| e["ended"].as_f64()).fold(0.0, f64::max);
        last - first
    };
    let (ordered_s, fast_s) = (span(&ordered), span(&fast));
    assert!(ordered_s >= 3.5, "ordered took {ordered_s:.2} s");
    assert!(fast_s < ordered_s * 0.7, "parallel took {fast_s:.2} s, ordered {ordered_s:.2} s");
    eprintln!("12 deliveries of 0.3 s each: ordered {ordered_s:.2} s, parallel (bound 3) {fast_s:.2} s");
}

// ---- command line ----

/// `switchyard subscription …` against the test's server with its admin token.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    // The server answering it runs on this runtime: block only this thread.
    tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("subscription")
            .args(args)
            .env("SWITCHYARD_URL", &app.address)
            .env("SWITCHYARD_TOKEN", &app.token)
            .env_remove("LOG_FORMAT")
            .output()
            .expect("the CLI runs")
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_lists_shows_tests_and_removes_subscriptions_over_the_api() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    let rx = Receiver::start().await;
    let url = rx.url();
    let added = cli(
        &app,
        &[
            "add", "--name", "cli-hook", "--url", &url, "--model", "chat",
        ]
        .into_iter()
        .chain(["--event", "promotion.requested", "--event", "rollback"])
        .collect::<Vec<_>>(),
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let secret = text(&added.stdout).trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");

    let bad = cli(
        &app,
        &["add", "--name", "x", "--url", &url, "--model", "nope"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("unknown model"),
        "{}",
        text(&bad.stderr)
    );

    let fast = cli(
        &app,
        &["add", "--name", "cli-fast", "--url", &url, "--parallel"],
    );
    assert!(fast.status.success(), "{}", text(&fast.stderr));

    let listed = cli(&app, &["list"]);
    assert!(listed.status.success());
    let out = text(&listed.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("cli-fast\twebhook\tactive\thttp://127.0.0.1:")
            && lines[0].ends_with("\tparallel"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("cli-hook\twebhook\tactive\thttp://127.0.0.1:")
            && lines[1].ends_with("\tin order"),
        "{out}"
    );
    assert!(!out.contains(&secret));

    let shown = cli(&app, &["show", "cli-hook"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(shown["filter"]["models"], json!(["chat"]));

    let worker = switchyard::notify::spawn(app.store().await, fast_settings());
    let tested = cli(&app, &["test", "cli-hook"]);
    assert!(tested.status.success(), "{}", text(&tested.stderr));
    rx.wait_until(Duration::from_secs(20), "the test message", |r| {
        r.iter()
            .any(|x| x.id.starts_with("test_") && verifies(x, &secret))
    })
    .await;
    worker.abort();

    assert!(cli(&app, &["remove", "cli-hook"]).status.success());
    let gone = cli(&app, &["show", "cli-hook"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone.stderr).contains("no subscription named"),
        "{}",
        text(&gone.stderr)
    );
    let untokened = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["subscription", "list"])
            .env("SWITCHYARD_URL", &app.address)
            .env_remove("SWITCHYARD_TOKEN")
            .output()
            .expect("runs")
    });
    assert_eq!(untokened.status.code(), Some(2));
}

// ---- drift ----

/// The drift watcher with the simulated driver: a slot changed by hand
/// (through the router's state file, as another process would) is recorded
/// once as `cluster.drift_detected` though the watcher passes twice, a
/// subscription receives it signed, the cluster answers what was observed,
/// and setting the slot back records and delivers `cluster.drift_cleared`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_changed_by_hand_is_recorded_once_as_drift_delivered_and_cleared_when_set_back() {
    use switchyard::drivers::simulated::change_state_file_by_hand;
    use switchyard::drivers::Drivers;
    use switchyard::store::clusters::ObservationOutcome;
    use switchyard_domain::clusters::ClusterState;
    use switchyard_domain::FullId;

    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    app.register("chat", "2", json!({ "t": 2 })).await;
    let state_file = std::env::temp_dir().join(format!(
        "sy-drift-router-{:016x}.json",
        rand::random::<u64>()
    ));
    let res = app
        .post_json(
            "/api/v1/clusters",
            &json!({ "name": "dev-1", "environment": "development", "driver": "simulated",
                     "config": { "state_file": state_file } }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let store = app.store().await;
    let runner = switchyard::operations::spawn(
        store.clone(),
        Drivers::default(),
        switchyard::operations::RunnerSettings {
            poll: Duration::from_millis(20),
            ..Default::default()
        },
    );
    let res = app
        .post_json(
            "/api/v1/clusters/dev-1/operations",
            &json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "first" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let start = Instant::now();
    while app.get_json("/api/v1/clusters/dev-1").await["running_operation"].is_number() {
        assert!(start.elapsed() < Duration::from_secs(20), "the deploy did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let res = app
        .put_json(
            "/api/v1/environments/development/pins/chat",
            &json!({"version": "1", "reason": "baseline"}),
        )
        .await;
    assert!(res.status().is_success(), "{:?}", res.text().await);
    let sub = subscribe(
        &app,
        "drift",
        &rx.url(),
        json!({"events": ["cluster.drift_detected", "cluster.drift_cleared"], "clusters": ["dev-1"]}),
    )
    .await;
    let secret = sub["secret"].as_str().expect("the secret").to_owned();
    let worker = switchyard::notify::spawn(store.clone(), fast_settings());
    // The watcher's own drivers: a server other than the one that deployed.
    let mut watcher = switchyard::drift::Watcher::new(store.clone(), Drivers::default(), Duration::from_secs(2));
    let outcome = |pass: Vec<(String, ObservationOutcome)>| {
        assert_eq!(pass.len(), 1, "{pass:?}");
        pass.into_iter().next().map(|(_, o)| o).expect("one")
    };
    let first = outcome(watcher.pass().await);
    assert_eq!(first, ObservationOutcome::Unchanged, "serves the pin as recorded");

    // Someone loads chat:2 into the serving slot by hand.
    let cluster = app.get_json("/api/v1/clusters/dev-1").await;
    let recorded: ClusterState = ClusterState::from_slots(
        &serde_json::from_value::<Vec<_>>(cluster["slots"].clone()).expect("slots"),
    )
    .expect("a state");
    let serving = recorded.weights.sole().expect("one slot serves");
    let v2 = FullId::parse("chat:2").expect("id");
    change_state_file_by_hand(&state_file, &recorded, serving, Some(v2.clone()), None)
        .expect("changed by hand");
    // Two servers' watchers look at the same moment: one records it.
    let mut other = switchyard::drift::Watcher::new(store.clone(), Drivers::default(), Duration::from_secs(2));
    let (a, b) = tokio::join!(watcher.pass(), other.pass());
    let (a, b) = (outcome(a), outcome(b));
    let detected = if a == ObservationOutcome::Unchanged { b.clone() } else { a.clone() };
    assert!(
        matches!(&detected, ObservationOutcome::Recorded { action, .. } if *action == "cluster.drift_detected"),
        "{detected:?}"
    );
    assert!(a == ObservationOutcome::Unchanged || b == ObservationOutcome::Unchanged, "{a:?} / {detected:?}");
    assert_eq!(
        outcome(watcher.pass().await),
        ObservationOutcome::Unchanged,
        "a second pass records nothing new"
    );
    let audit = app
        .get_json("/api/v1/audit?action=cluster.drift_detected")
        .await;
    assert_eq!(audit["events"].as_array().map(Vec::len), Some(1), "{audit}");
    let ev = &audit["events"][0];
    assert_eq!((&ev["actor"], &ev["cluster"]), (&json!("system"), &json!("dev-1")));
    let observed = &app.get_json("/api/v1/clusters/dev-1").await["observed"];
    assert_eq!(observed["findings"].as_array().map(Vec::len), Some(2), "{observed}");
    assert_eq!(observed["event_id"], ev["id"]);

    rx.wait_until(Duration::from_secs(20), "drift detected", |r| r.len() == 1)
        .await;
    let got = &rx.received()[0];
    assert!(verifies(got, &secret), "signed");
    let body: Value = serde_json::from_slice(&got.body).expect("JSON");
    assert_eq!(body["type"], "cluster.drift_detected");
    assert_eq!(body["data"]["cluster"], "dev-1");
    assert_eq!(body["data"]["environment"], "development");
    assert_eq!((&body["data"]["model_id"], &body["data"]["version"]), (&json!("chat"), &json!("2")));
    let summary = body["data"]["details"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!("{serving} (100%) runs chat:2; development pins chat:1")),
        "{body}"
    );
    assert!(body["data"]["link"].as_str().unwrap_or_default().ends_with("/clusters/dev-1"));

    // The router cannot be read (its state file is garbage): nothing recorded, the reason kept.
    let saved = std::fs::read(&state_file).expect("the state file");
    std::fs::write(&state_file, b"not json").expect("written");
    assert_eq!(
        outcome(watcher.pass().await),
        ObservationOutcome::Unreadable
    );
    let observed = &app.get_json("/api/v1/clusters/dev-1").await["observed"];
    assert!(
        observed["unreadable"].as_str().is_some_and(|u| u.contains("not valid")),
        "{observed}"
    );
    std::fs::write(&state_file, saved).expect("restored");

    // Set back by hand: cleared, once, and delivered after the detection.
    change_state_file_by_hand(&state_file, &recorded, serving, recorded.version(serving).cloned(), None)
        .expect("set back");
    let cleared = outcome(watcher.pass().await);
    assert!(
        matches!(&cleared, ObservationOutcome::Recorded { action, findings, .. } if *action == "cluster.drift_cleared" && findings.is_empty()),
        "{cleared:?}"
    );
    assert_eq!(
        outcome(watcher.pass().await),
        ObservationOutcome::Unchanged
    );
    rx.wait_until(Duration::from_secs(20), "drift cleared", |r| r.len() == 2)
        .await;
    let kinds: Vec<String> = rx
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("JSON")["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(kinds, ["cluster.drift_detected", "cluster.drift_cleared"]);
    worker.abort();
    let _ = std::fs::remove_file(&state_file);
}
