//! Analysis gates against a real Prometheus (Debian's `prometheus`, started
//! once per test run on loopback with its own config and data directory),
//! scraping a small exporter in this process that serves the values each
//! test chooses (`switchyard_test_error_ratio{model,version}`), every second.
//! Operations run on the simulated driver; what is real is Prometheus: its
//! PromQL parser checks templates, its query API answers measurements, and
//! stopping it makes a gate inconclusive.
//!
//! Without `prometheus` installed the tests say so and pass, unless
//! `SWITCHYARD_PEERS_REQUIRED=1` (the test command sets it).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::drivers::Drivers;
use switchyard::operations::RunnerSettings;
use switchyard_domain::access::Role;

use crate::console::{server_fn_json, sign_in, Browser};
use crate::helpers::{assert_error, spawn_app, TestApp};

#[path = "../support/prometheus.rs"]
mod prometheus;
use prometheus::{prometheus_binary, Prometheus};

/// The values the exporter serves, by (model, version).
static VALUES: Mutex<BTreeMap<(String, String), f64>> = Mutex::new(BTreeMap::new());

struct Peer {
    /// The shared Prometheus's base URL.
    url: String,
    /// The exporter's `host:port`, for a second Prometheus.
    exporter: String,
}

static PEER: OnceLock<Option<Peer>> = OnceLock::new();

/// The shared Prometheus and exporter, started on first use; `None` (and
/// the test passes saying so) when Prometheus is not installed and not required.
fn peer() -> Option<&'static Peer> {
    PEER.get_or_init(|| {
        let Some(bin) = prometheus_binary() else {
            assert!(
                std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
                "prometheus is not installed: scripts/test installs it (Debian package prometheus)"
            );
            eprintln!("skipped: prometheus is not installed (scripts/test installs it)");
            return None;
        };
        let exporter = start_exporter();
        let prometheus = Prometheus::start(&bin, &[exporter.as_str()], true);
        let url = prometheus.url.clone();
        // Lives as long as the test process; its watchdog stops it when the process ends.
        std::mem::forget(prometheus);
        Some(Peer { url, exporter })
    })
    .as_ref()
}

/// A tiny Prometheus exporter on a free port: `/metrics` serves `VALUES`.
fn start_exporter() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("exporter port");
    let addr = listener.local_addr().expect("exporter address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let mut request = Vec::new();
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let mut body = String::from(
                "# HELP switchyard_test_error_ratio Error ratio chosen by the test.\n# TYPE switchyard_test_error_ratio gauge\n",
            );
            for ((model, version), v) in VALUES.lock().expect("values").iter() {
                body.push_str(&format!(
                    "switchyard_test_error_ratio{{model=\"{model}\",version=\"{version}\"}} {v}\n"
                ));
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Sets the exporter's value and waits until Prometheus answers it.
async fn set_value(peer: &Peer, model: &str, version: &str, v: f64) {
    VALUES
        .lock()
        .expect("values")
        .insert((model.to_owned(), version.to_owned()), v);
    let q = format!("switchyard_test_error_ratio{{model=\"{model}\",version=\"{version}\"}}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        let answer: Value = client
            .get(format!("{}/api/v1/query", peer.url))
            .query(&[("query", &q)])
            .send()
            .await
            .expect("prometheus answers")
            .json()
            .await
            .expect("JSON");
        if answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            == Some(v)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("prometheus never saw {q} = {v}");
}

fn template(url: &str) -> Value {
    json!({
        "prometheus_url": url,
        "query": "max(switchyard_test_error_ratio{model=\"{{model}}\",version=\"{{version}}\"})",
        "success": "result < 0.01",
        "failure": "result > 0.05",
        "interval_ms": 400,
        "count": 3,
        "failure_limit": 2,
        "inconclusive_limit": 1,
        "reason": "gate on the error ratio",
    })
}

fn with_runner(app: &TestApp, store: switchyard::store::DynStore) -> tokio::task::JoinHandle<()> {
    let _ = app;
    let settings = RunnerSettings {
        poll: Duration::from_millis(20),
        lease: Duration::from_secs(2),
        ..RunnerSettings::default()
    };
    switchyard::operations::spawn(store, Drivers::default(), settings)
}

/// A server with `model:1` serving on a simulated cluster `name`, `model:2`
/// registered, and the template `errors` saved against `prometheus`.
async fn serving_v1(
    model: &str,
    name: &str,
    prometheus: &str,
) -> (TestApp, tokio::task::JoinHandle<()>) {
    serving_v1_on(spawn_app().await, model, name, prometheus).await
}

/// `serving_v1` on the server `app` (a fresh database of either engine).
async fn serving_v1_on(
    app: TestApp,
    model: &str,
    name: &str,
    prometheus: &str,
) -> (TestApp, tokio::task::JoinHandle<()>) {
    app.register(model, "1", json!({ "t": 1 })).await;
    app.register(model, "2", json!({ "t": 2 })).await;
    let res = app
        .post_json("/api/v1/clusters", &json!({ "name": name, "environment": "development", "driver": "simulated", "config": {} }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .put_json("/api/v1/analysis-templates/errors", &template(prometheus))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    let runner = with_runner(&app, app.store().await);
    let id = start(
        &app,
        name,
        json!({ "kind": "blue_green", "full_id": format!("{model}:1"), "reason": "first" }),
    )
    .await;
    assert_eq!(
        wait(&app, id, |op| op["state"] != "running").await["state"],
        "succeeded"
    );
    (app, runner)
}

async fn start(app: &TestApp, cluster: &str, body: Value) -> i64 {
    let res = app
        .post_json(&format!("/api/v1/clusters/{cluster}/operations"), &body)
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("an id")
}

async fn wait(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let op = app.get_json(&format!("/api/v1/operations/{id}")).await;
        if done(&op) {
            return op;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("operation {id} never got there");
}

async fn events(app: &TestApp, cluster: &str, action: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!(
            "/api/v1/audit?cluster={cluster}&action={action}&limit=500"
        ))
        .await;
    page["events"].as_array().cloned().unwrap_or_default()
}

fn values(measurements: &Value) -> Vec<Option<f64>> {
    measurements
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_f64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_template_is_refused_with_prometheus_own_parse_error_an_unknown_placeholder_or_an_unreachable_prometheus(
) {
    let Some(peer) = peer() else { return };
    let app = spawn_app().await;
    let path = "/api/v1/analysis-templates/errors";
    let mut bad = template(&peer.url);
    bad["query"] = json!("sum(rate(x{model=\"{{model}}\"}[1m])");
    let e = assert_error(
        app.put_json(path, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid PromQL") && m.contains("parse error")),
        "{e}"
    );
    bad["query"] = json!("x{model=\"{{modle}}\"}");
    let e = assert_error(
        app.put_json(path, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown placeholder {{modle}}")),
        "{e}"
    );
    let mut bad = template(&peer.url);
    bad["success"] = json!("p99 < 1");
    let e = assert_error(
        app.put_json(path, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("success: condition")),
        "{e}"
    );
    let e = assert_error(
        app.put_json(path, &template("http://127.0.0.1:9")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(e["code"], "prometheus_unreachable", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("not saved")),
        "{e}"
    );
    assert_eq!(
        app.get_json("/api/v1/analysis-templates").await["templates"],
        json!([]),
        "nothing stored"
    );

    let deployer = app.user_with_token("dee", Role::Deployer, None).await;
    let res = app
        .client
        .put(format!("{}{path}", app.address))
        .bearer_auth(&deployer)
        .json(&template(&peer.url))
        .send()
        .await
        .expect("sent");
    assert_error(res, StatusCode::FORBIDDEN).await;
    assert_eq!(
        app.put_json(path, &template(&peer.url)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.put_json(path, &template(&peer.url)).await.status(),
        StatusCode::OK
    );
    let saved = app.get_json(path).await;
    assert_eq!(
        (saved["name"].as_str(), saved["count"].as_u64()),
        (Some("errors"), Some(3))
    );
}

#[tokio::test]
async fn saving_or_removing_a_template_takes_a_reason_which_the_ledger_keeps_and_without_one_nothing_changes(
) {
    let Some(peer) = peer() else { return };
    let app = spawn_app().await;
    let path = "/api/v1/analysis-templates/errors";
    let head = || async { app.get_json("/api/v1/audit?limit=1").await["events"][0]["id"].clone() };
    let before = head().await;
    for reason in [None, Some(json!("   ")), Some(json!("hidden\u{202E}text"))] {
        let mut t = template(&peer.url);
        match &reason {
            None => t.as_object_mut().expect("object").remove("reason").map(|_| ()).expect("had one"),
            Some(r) => t["reason"] = r.clone(),
        }
        let e = assert_error(app.put_json(path, &t).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(e["message"].as_str().is_some_and(|m| m.contains("reason")), "{reason:?}: {e}");
        assert_eq!(app.get_json("/api/v1/analysis-templates").await["templates"], json!([]), "{reason:?}");
    }
    assert_eq!(head().await, before, "nothing written");

    assert_eq!(app.put_json(path, &template(&peer.url)).await.status(), StatusCode::CREATED);
    let saved = app.get_json("/api/v1/audit?action=analysis_template.saved").await;
    assert_eq!(saved["events"][0]["reason"], "gate on the error ratio", "{saved}");

    let before = head().await;
    for query in ["", "?reason=", "?reason=%20%20"] {
        let e = assert_error(
            app.request(reqwest::Method::DELETE, &format!("{path}{query}")).send().await.expect("sent"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(e["message"], "field \"reason\" is required", "{query}: {e}");
    }
    assert_eq!(app.get_json(path).await["name"], "errors", "not removed");
    assert_eq!(head().await, before, "nothing written");
    let res = app
        .request(reqwest::Method::DELETE, &format!("{path}?reason=replaced%20by%20p99"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let removed = app.get_json("/api/v1/audit?action=analysis_template.removed").await;
    assert_eq!(
        (removed["events"][0]["reason"].as_str(), removed["events"][0]["actor"].as_str()),
        (Some("replaced by p99"), Some("test-admin")),
        "{removed}"
    );
}

#[tokio::test]
async fn a_healthy_version_passes_its_analysis_and_is_promoted_with_the_measurements_kept() {
    let Some(peer) = peer() else { return };
    let (app, runner) = serving_v1("healthy", "ok-1", &peer.url).await;
    set_value(peer, "healthy", "2", 0.002).await;
    let id = start(&app, "ok-1", json!({ "kind": "blue_green", "full_id": "healthy:2", "reason": "new model", "analysis": ["errors"] })).await;
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(op["state"], "succeeded", "{op}");
    let gate = op["steps"]
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .expect("steps");
    assert_eq!(gate["action"], "gate");
    assert_eq!(values(&gate["measurements"]), vec![Some(0.002); 3]);
    assert_eq!(
        gate["measurements"][0]["query"],
        "max(switchyard_test_error_ratio{model=\"healthy\",version=\"2\"})"
    );
    assert!(
        gate["note"]
            .as_str()
            .is_some_and(|n| n.contains("3 of 3 measurements matched success")),
        "{gate}"
    );
    let measured = events(&app, "ok-1", "operation.measured").await;
    assert_eq!(measured.len(), 3);
    assert!(measured.iter().all(
        |e| e["details"]["verdict"] == "success" && e["details"]["success"] == "result < 0.01"
    ));

    // A request served by it afterwards: the lookup shows the measurements that let it through.
    let slot = op["steps"][0]["slot"]
        .as_str()
        .expect("the loaded slot")
        .to_owned();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let record = json!([{"request_id": "after-gate", "at": at, "cluster": "ok-1", "slot": slot, "full_id": "healthy:2", "latency_ms": 3.0}]);
    assert!(app
        .post_json("/api/v1/request-records", &record)
        .await
        .status()
        .is_success());
    let found = app.get_json("/api/v1/request-records/after-gate").await;
    let gate_evidence: Vec<&Value> = found["provenance"]
        .as_array()
        .expect("provenance")
        .iter()
        .filter(|e| e["action"] == "operation.measured")
        .collect();
    assert_eq!(gate_evidence.len(), 3, "{found}");
    assert!(gate_evidence
        .iter()
        .all(|e| e["details"]["verdict"] == "success"));
}

#[tokio::test]
async fn a_bad_metric_rolls_a_rolling_update_back_at_its_first_gate_with_the_values_in_the_ledger()
{
    let Some(peer) = peer() else { return };
    let (app, runner) = serving_v1("failing", "bad-1", &peer.url).await;
    set_value(peer, "failing", "2", 0.2).await;
    let id = start(&app, "bad-1", json!({ "kind": "rolling", "full_id": "failing:2", "steps": [50, 100], "reason": "try it", "analysis": ["errors"] })).await;
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("analysis")),
        "{op}"
    );
    let cluster = app.get_json("/api/v1/clusters/bad-1").await;
    let text = cluster.to_string();
    assert!(
        !text.contains("\"weights\":{\"blue\":50"),
        "traffic is not split any more: {text}"
    );
    let rollback = events(&app, "bad-1", "rollback").await;
    assert_eq!(rollback.len(), 1, "one rollback");
    let d = &rollback[0]["details"];
    assert_eq!(d["trigger"], "analysis");
    assert_eq!(
        values(&d["analysis"][0]["measurements"]),
        vec![Some(0.2), Some(0.2)],
        "failure limit 2 reached at the second"
    );
    assert_eq!(d["analysis"][0]["step"], "health gate");
    assert_eq!(d["templates"][0]["failure"], "result > 0.05");
    assert!(
        op["error"].as_str().is_some_and(|e| e
            .contains("2 of 2 measurements matched failure `result > 0.05`")
            && e.contains("0.2, 0.2")),
        "{op}"
    );
    // It failed at the 50% step: the 100% shift never ran.
    let shifts: Vec<&Value> = op["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["action"] == "shift" && s["restore"] != true)
        .collect();
    assert_eq!(shifts.len(), 1, "{op}");
}

#[tokio::test]
async fn no_data_pauses_the_operation_for_a_person_who_continues_it_or_rolls_it_back_through_the_api(
) {
    let Some(peer) = peer() else { return };
    // No series for this model: the exporter was never told about it.
    let (app, runner) = serving_v1("silent", "quiet-1", &peer.url).await;
    let id = start(&app, "quiet-1", json!({ "kind": "blue_green", "full_id": "silent:2", "reason": "new", "analysis": ["errors"] })).await;
    let op = wait(&app, id, |op| {
        !op["paused"].is_null() || op["state"] != "running"
    })
    .await;
    assert_eq!(op["state"], "running", "{op}");
    assert!(
        op["paused"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no data")),
        "{op}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = app.get_json(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(
        (still["state"].as_str(), still["paused"].is_object()),
        (Some("running"), true),
        "never passes by itself"
    );

    let path = format!("/api/v1/operations/{id}/continue");
    assert_error(
        app.post_json(&path, &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let viewer = app.user_with_token("vee", Role::Viewer, None).await;
    assert_error(
        app.post_json_as(&viewer, &path, &json!({ "reason": "x" }))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        app.post_json(&path, &json!({ "reason": "the dashboards are fine" }))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let op = wait(&app, id, |op| op["state"] != "running").await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_error(
        app.post_json(&path, &json!({ "reason": "again" })).await,
        StatusCode::CONFLICT,
    )
    .await;
    let continued = events(&app, "quiet-1", "operation.continued").await;
    assert_eq!(
        (continued.len(), continued[0]["actor"].as_str()),
        (1, Some(crate::helpers::ADMIN_ACTOR))
    );

    // Back to version 1 through a second paused operation, rolled back by a person.
    let id = start(&app, "quiet-1", json!({ "kind": "blue_green", "full_id": "silent:1", "reason": "back", "analysis": ["errors"] })).await;
    wait(&app, id, |op| !op["paused"].is_null()).await;
    let res = app
        .post_json(
            &format!("/api/v1/operations/{id}/rollback"),
            &json!({ "reason": "cannot judge it" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("person")),
        "{op}"
    );
    assert_eq!(events(&app, "quiet-1", "operation.paused").await.len(), 2);
    assert_eq!(
        events(&app, "quiet-1", "operation.rollback_chosen")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn prometheus_stopped_mid_analysis_pauses_the_operation_and_never_passes_it() {
    let Some(peer) = peer() else { return };
    let Some(bin) = prometheus_binary() else {
        return;
    };
    let mut own = Prometheus::start(&bin, &[peer.exporter.as_str()], true);
    let (app, runner) = serving_v1("orphan", "down-1", &own.url).await;
    set_value(peer, "orphan", "2", 0.0).await;
    let mut long = template(&own.url);
    long["count"] = json!(20);
    long["failure_limit"] = json!(20);
    assert_eq!(
        app.put_json("/api/v1/analysis-templates/errors", &long)
            .await
            .status(),
        StatusCode::OK
    );
    let id = start(&app, "down-1", json!({ "kind": "blue_green", "full_id": "orphan:2", "reason": "new", "analysis": ["errors"] })).await;
    let gate_measured = |op: &Value| {
        op["steps"]
            .as_array()
            .and_then(|s| s.last())
            .map_or(0, |g| {
                g["measurements"].as_array().map_or(0, |m| {
                    m.iter().filter(|m| m["verdict"] == "success").count()
                })
            })
    };
    wait(&app, id, |op| {
        gate_measured(op) >= 1 || op["state"] != "running"
    })
    .await;
    own.stop();
    let op = wait(&app, id, |op| {
        !op["paused"].is_null() || op["state"] != "running"
    })
    .await;
    runner.abort();
    assert_eq!(op["state"], "running", "{op}");
    let gate = op["steps"]
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .expect("steps");
    let m = gate["measurements"].as_array().cloned().unwrap_or_default();
    assert!(
        m.first().is_some_and(|m| m["verdict"] == "success"),
        "measured before the stop: {gate}"
    );
    let last = m.last().expect("measurements");
    assert_eq!(last["verdict"], "inconclusive");
    assert!(
        last["note"]
            .as_str()
            .is_some_and(|n| n.contains("cannot reach Prometheus")),
        "{gate}"
    );
    assert_eq!(
        gate["state"], "running",
        "the gate is neither passed nor failed"
    );
}

#[tokio::test]
async fn a_person_pauses_a_long_analysis_through_the_api_and_rolls_it_back() {
    let Some(peer) = peer() else { return };
    let (app, runner) = serving_v1("long", "long-1", &peer.url).await;
    set_value(peer, "long", "2", 0.0).await;
    let mut long = template(&peer.url);
    long["count"] = json!(50);
    assert_eq!(
        app.put_json("/api/v1/analysis-templates/errors", &long)
            .await
            .status(),
        StatusCode::OK
    );
    let id = start(&app, "long-1", json!({ "kind": "blue_green", "full_id": "long:2", "reason": "slow bake", "analysis": ["errors"] })).await;
    wait(&app, id, |op| {
        op["steps"]
            .as_array()
            .and_then(|s| s.last())
            .is_some_and(|g| g["measurements"].as_array().is_some_and(|m| !m.is_empty()))
    })
    .await;
    // The cluster's own rollback is refused while the operation runs; the operation's is not.
    assert_error(
        app.post_json(
            "/api/v1/clusters/long-1/rollback",
            &json!({ "reason": "stop" }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let res = app
        .post_json(
            &format!("/api/v1/operations/{id}/pause"),
            &json!({ "reason": "latency alert" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let paused = app.get_json(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(paused["paused"]["by"], crate::helpers::ADMIN_ACTOR);
    assert_error(
        app.post_json(
            &format!("/api/v1/operations/{id}/pause"),
            &json!({ "reason": "again" }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let res = app
        .post_json(
            &format!("/api/v1/operations/{id}/rollback"),
            &json!({ "reason": "real alert" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("person")),
        "{op}"
    );
    let measured = op["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["measurements"].as_array().map_or(0, Vec::len))
        .sum::<usize>();
    assert!(measured < 50, "stopped long before its count: {measured}");
}

/// `switchyard ARGS…` against the test's server with its admin token.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    // The server answering it runs on this runtime: block only this thread.
    tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .env("SWITCHYARD_URL", &app.address)
            .env("SWITCHYARD_TOKEN", &app.token)
            .env_remove("LOG_FORMAT")
            .output()
            .expect("the CLI runs")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_saves_lists_shows_and_removes_templates_and_names_an_unknown_operation_it_is_asked_to_continue(
) {
    let Some(peer) = peer() else { return };
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("sy-cli-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("errors.yaml");
    std::fs::write(
        &file,
        format!(
            "prometheus_url: {}\nquery: 'max(switchyard_test_error_ratio{{model=\"{{{{model}}}}\"}})'\nsuccess: result < 0.01\nfailure: result > 0.05\ninterval_ms: 1000\ncount: 5\nfailure_limit: 2\ninconclusive_limit: 1\n",
            peer.url
        ),
    )
    .expect("written");
    let file = file.to_string_lossy().into_owned();
    let out = cli(&app, &["analysis", "put", "errors", "--file", &file]);
    assert_eq!(out.status.code(), Some(2), "--reason is required");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&app, &["analysis", "put", "errors", "--file", &file, "--reason", "gate on errors"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&app, &["analysis", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains("errors") && listed.contains("result > 0.05"),
        "{listed}"
    );
    let shown: Value =
        serde_json::from_slice(&cli(&app, &["analysis", "show", "errors"]).stdout).expect("JSON");
    assert_eq!(shown["count"], 5);

    std::fs::write(dir.join("bad.yaml"), format!("prometheus_url: {}\nquery: 'rate(x[1m]'\nsuccess: result < 1\nfailure: result > 2\ninterval_ms: 1000\ncount: 1\nfailure_limit: 1\ninconclusive_limit: 1\n", peer.url)).expect("written");
    let bad = dir.join("bad.yaml").to_string_lossy().into_owned();
    let out = cli(&app, &["analysis", "put", "bad", "--file", &bad, "--reason", "try it"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("parse error"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli(&app, &["operation", "continue", "4242", "--reason", "go"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("operation 4242 does not exist"));
    let out = cli(&app, &["analysis", "remove", "errors"]);
    assert_eq!(out.status.code(), Some(2), "--reason is required");
    let out = cli(&app, &["analysis", "remove", "errors", "--reason", "no longer used & gone"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.get_json("/api/v1/analysis-templates").await["templates"],
        json!([])
    );
    let saved = app.get_json("/api/v1/audit?action=analysis_template.saved").await;
    assert_eq!(saved["events"][0]["reason"], "gate on errors", "{saved}");
    let removed = app.get_json("/api/v1/audit?action=analysis_template.removed").await;
    assert_eq!(removed["events"][0]["reason"], "no longer used & gone", "{removed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn templates_attached_to_a_cluster_gate_every_operation_but_a_rollback_and_stay_until_detached(
) {
    let Some(peer) = peer() else { return };
    let (app, runner) = serving_v1("attached", "att-1", &peer.url).await;
    set_value(peer, "attached", "2", 0.0).await;
    let path = "/api/v1/clusters/att-1/analysis";
    assert_error(
        app.put_json(path, &json!({ "templates": ["nope"] })).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let res = app
        .put_json(path, &json!({ "templates": ["errors"] }))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.expect("JSON")["analysis"],
        json!(["errors"])
    );
    assert_eq!(events(&app, "att-1", "cluster.analysis_set").await.len(), 1);
    let e = assert_error(
        app.request(reqwest::Method::DELETE, "/api/v1/analysis-templates/errors?reason=unused")
            .send()
            .await
            .expect("sent"),
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("cluster att-1")),
        "{e}"
    );

    // No analysis named: the cluster's runs.
    let id = start(
        &app,
        "att-1",
        json!({ "kind": "blue_green", "full_id": "attached:2", "reason": "gated by the cluster" }),
    )
    .await;
    let op = wait(&app, id, |op| op["state"] != "running").await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["analysis"][0]["name"], "errors");
    assert_eq!(
        values(
            &op["steps"]
                .as_array()
                .and_then(|s| s.last())
                .expect("steps")["measurements"]
        ),
        vec![Some(0.0); 3]
    );
    // A rollback is never gated.
    let res = app
        .post_json(
            "/api/v1/clusters/att-1/rollback",
            &json!({ "reason": "back" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("id");
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(
        op["analysis"].is_null()
            && op["steps"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["action"] != "gate")),
        "{op}"
    );

    assert_eq!(
        app.put_json(path, &json!({ "templates": [] }))
            .await
            .status(),
        StatusCode::OK
    );
    let res = app
        .request(reqwest::Method::DELETE, "/api/v1/analysis-templates/errors?reason=unused")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// The slots' versions as `GET /api/v1/clusters/{name}` shows them.
async fn held(app: &TestApp, cluster: &str) -> Vec<Option<String>> {
    let c = app.get_json(&format!("/api/v1/clusters/{cluster}")).await;
    c["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["full_id"].as_str().map(str::to_owned))
        .collect()
}

/// A bake holds the last gate with the previous version loaded, then that
/// version is released from the idle slot (a `release` step in the ledger).
async fn bake_then_release(app: TestApp) {
    app.register("baked", "1", json!({ "t": 1 })).await;
    app.register("baked", "2", json!({ "t": 2 })).await;
    let res = app
        .post_json("/api/v1/clusters", &json!({ "name": "bake-1", "environment": "development", "driver": "simulated", "config": {} }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let runner = with_runner(&app, app.store().await);
    let first = start(
        &app,
        "bake-1",
        json!({ "kind": "blue_green", "full_id": "baked:1", "reason": "first" }),
    )
    .await;
    assert_eq!(
        wait(&app, first, |op| op["state"] != "running").await["state"],
        "succeeded"
    );
    let e = assert_error(
        app.post_json("/api/v1/clusters/bake-1/operations", &json!({ "kind": "blue_green", "full_id": "baked:2", "reason": "r", "bake_seconds": 90_000 })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("bake_seconds")),
        "{e}"
    );

    let id = start(&app, "bake-1", json!({ "kind": "blue_green", "full_id": "baked:2", "reason": "bake it", "bake_seconds": 3 })).await;
    let plan = app.get_json(&format!("/api/v1/operations/{id}")).await["steps"]
        .as_array()
        .cloned()
        .expect("steps");
    let gate_at = plan
        .iter()
        .rposition(|s| s["action"] == "gate")
        .expect("a gate");
    assert_eq!(
        gate_at + 2,
        plan.len(),
        "the release follows the last gate: {plan:?}"
    );
    assert_eq!(
        (
            plan[gate_at + 1]["action"].as_str(),
            plan[gate_at + 1]["full_id"].as_str()
        ),
        (Some("release"), Some("baked:1"))
    );
    // While it bakes, traffic is on version 2 and version 1 stays loaded in the other slot.
    let baking = wait(&app, id, |op| {
        op["steps"][gate_at]["state"] == "running" || op["state"] != "running"
    })
    .await;
    assert_eq!(baking["state"], "running", "{baking}");
    let slots = held(&app, "bake-1").await;
    assert!(
        slots.contains(&Some("baked:1".into())) && slots.contains(&Some("baked:2".into())),
        "{slots:?}"
    );
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(op["state"], "succeeded", "{op}");
    let steps = op["steps"].as_array().expect("steps");
    let gate = &steps[gate_at];
    let release = &steps[gate_at + 1];
    let switched = steps
        .iter()
        .find(|s| s["action"] == "shift")
        .expect("the switch");
    let micros = |v: &Value| {
        switchyard_domain::Timestamp::parse(v.as_str().expect("a time"))
            .expect("a time")
            .micros()
    };
    assert!(
        micros(&gate["finished_at"]) - micros(&switched["finished_at"]) >= 3_000_000,
        "{op}"
    );
    assert!(
        gate["note"]
            .as_str()
            .is_some_and(|n| n.contains("baked 3.0 s")),
        "{gate}"
    );
    assert!(
        release["state"] == "done"
            && micros(&release["started_at"]) >= micros(&gate["finished_at"]),
        "released only after the bake passed: {op}"
    );
    let mut slots = held(&app, "bake-1").await;
    slots.sort();
    assert_eq!(
        slots,
        [None, Some("baked:2".to_owned())],
        "version 1 released"
    );
    let released: Vec<Value> = events(&app, "bake-1", "operation.step")
        .await
        .into_iter()
        .filter(|e| {
            e["details"]["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("release baked:1"))
                && e["details"]["phase"] == "done"
        })
        .collect();
    assert_eq!(
        released.len(),
        1,
        "the release is in the ledger: {released:?}"
    );
    // A rollback now loads version 1 again before moving traffic.
    let res = app
        .post_json(
            "/api/v1/clusters/bake-1/rollback",
            &json!({ "reason": "back after the release" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let back = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("id");
    let runner = with_runner(&app, app.store().await);
    let op = wait(&app, back, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["steps"][0]["action"], "load", "{op}");
}

#[tokio::test]
async fn a_bake_time_holds_the_last_gate_with_the_old_version_loaded_then_releases_it_on_sqlite() {
    bake_then_release(spawn_app().await).await;
}

#[tokio::test]
async fn a_bake_time_holds_the_last_gate_with_the_old_version_loaded_then_releases_it_on_postgresql(
) {
    let (app, mut admin, name) = crate::postgres::spawn_app_on_fresh_postgres().await;
    bake_then_release(app).await;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
    )
    .await
    .expect("drop database");
}

// The console: the Analysis page and a paused operation's answers.

/// A client that shows redirects instead of following them, as a browser's
/// form post without JavaScript is answered.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A console page's HTML as `browser` sees it.
async fn page(app: &TestApp, path: &str, browser: &Browser) -> String {
    no_redirects()
        .get(format!("{}{path}", app.address))
        .header(reqwest::header::COOKIE, &browser.cookie)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .unwrap_or_default()
}

/// Posts a server function's form as a browser without JavaScript does
/// (the CSRF token as a field, no header) from the page `from`.
async fn post_form(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    browser: &Browser,
    from: &str,
) -> StatusCode {
    let mut fields = fields.to_vec();
    fields.push(("csrf_token", &browser.csrf));
    let res = no_redirects()
        .post(format!("{}{path}", app.address))
        .header(reqwest::header::ORIGIN, &app.address)
        .header(reqwest::header::COOKIE, &browser.cookie)
        .header(reqwest::header::REFERER, format!("{}{from}", app.address))
        .form(&fields)
        .send()
        .await
        .expect("sent");
    res.status()
}

#[tokio::test]
async fn the_analysis_page_shows_templates_to_everyone_and_an_admin_saves_attaches_and_removes_them_without_javascript(
) {
    let Some(peer) = peer() else { return };
    let app = spawn_app().await;
    let res = app
        .post_json("/api/v1/clusters", &json!({ "name": "page-1", "environment": "development", "driver": "simulated", "config": {} }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("vic", Role::Viewer, None).await;
    let ada = sign_in(&app, "ada").await;
    let vic = sign_in(&app, "vic").await;

    let t = template(&peer.url);
    let field = |k: &str| match &t[k] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let (url, query, success, failure) = (
        field("prometheus_url"),
        field("query"),
        field("success"),
        field("failure"),
    );
    let (interval, count, failure_limit, inconclusive_limit) = (
        field("interval_ms"),
        field("count"),
        field("failure_limit"),
        field("inconclusive_limit"),
    );
    let mut form = vec![
        ("name", "errors"),
        ("prometheus_url", url.as_str()),
        ("bearer_token_file", ""),
        ("query", query.as_str()),
        ("success", success.as_str()),
        ("failure", failure.as_str()),
        ("interval_ms", interval.as_str()),
        ("count", count.as_str()),
        ("failure_limit", failure_limit.as_str()),
        ("inconclusive_limit", inconclusive_limit.as_str()),
        ("reason", "gate on the error ratio"),
    ];
    // A viewer is refused and nothing is stored.
    let refused = server_fn_json(
        &app,
        "/console/fn/save_analysis_template",
        &form,
        &vic,
        false,
    )
    .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    // Prometheus's own parser refuses bad PromQL, with its message.
    let mut bad = form.clone();
    bad[3] = ("query", "sum(rate(x[1m])");
    let refused = server_fn_json(
        &app,
        "/console/fn/save_analysis_template",
        &bad,
        &ada,
        false,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid PromQL")),
        "{refused}"
    );
    // No reason: refused, nothing stored.
    let mut unexplained = form.clone();
    unexplained[10] = ("reason", " ");
    let refused = server_fn_json(
        &app,
        "/console/fn/save_analysis_template",
        &unexplained,
        &ada,
        false,
    )
    .await;
    assert_eq!(refused["message"], "field \"reason\" is required", "{refused}");
    assert_eq!(
        app.get_json("/api/v1/analysis-templates").await["templates"],
        json!([])
    );

    // Saved by an admin's form post without JavaScript: redirected back to the page.
    let status = post_form(
        &app,
        "/console/fn/save_analysis_template",
        &form,
        &ada,
        "/analysis",
    )
    .await;
    assert!(status.is_redirection() || status.is_success(), "{status}");
    let saved = app.get_json("/api/v1/analysis-templates/errors").await;
    assert_eq!(
        (saved["query"].as_str(), saved["count"].as_u64()),
        (Some(query.as_str()), Some(3)),
        "{saved}"
    );
    let events = app
        .get_json("/api/v1/audit?action=analysis_template.saved")
        .await;
    assert_eq!(events["events"][0]["actor"], "ada", "{events}");
    assert_eq!(events["events"][0]["reason"], "gate on the error ratio", "{events}");
    // Saved again with another count: replaced (false = not created).
    form[7] = ("count", "4");
    let replaced = server_fn_json(
        &app,
        "/console/fn/save_analysis_template",
        &form,
        &ada,
        true,
    )
    .await;
    assert_eq!(replaced, json!(false));

    // Everyone reads it; the viewer is told why the forms are grey.
    let html = page(&app, "/analysis", &vic).await;
    assert!(html.contains("data-template=\"errors\""), "{html}");
    assert!(html.contains("switchyard_test_error_ratio"), "{html}");
    assert!(html.contains("4 every 400 ms"), "{html}");
    assert!(
        html.contains(
            "Changing analysis templates needs an admin binding for all; vic has: viewer on all"
        ),
        "{html}"
    );
    let html = page(&app, "/analysis", &ada).await;
    assert!(!html.contains("needs an admin binding"), "{html}");

    // Attached to a cluster from the page; an unknown template is refused by name.
    let refused = server_fn_json(
        &app,
        "/console/fn/set_cluster_analysis",
        &[("cluster", "page-1"), ("templates", "errors, nope")],
        &ada,
        false,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{refused}"
    );
    let status = post_form(
        &app,
        "/console/fn/set_cluster_analysis",
        &[("cluster", "page-1"), ("templates", "errors")],
        &ada,
        "/analysis",
    )
    .await;
    assert!(status.is_redirection() || status.is_success(), "{status}");
    assert_eq!(
        app.get_json("/api/v1/clusters/page-1").await["analysis"],
        json!(["errors"])
    );
    let html = page(&app, "/analysis", &vic).await;
    let attached = html
        .find("class=\"attached\"")
        .and_then(|i| html.get(i..i + 60))
        .unwrap_or_default();
    assert!(
        attached.contains("page-1"),
        "the template names the cluster attaching it: {html}"
    );

    // Not removed while attached; removed once detached.
    let refused = server_fn_json(
        &app,
        "/console/fn/remove_analysis_template",
        &[("name", "errors"), ("reason", "unused")],
        &ada,
        false,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("page-1")),
        "{refused}"
    );
    let detached = server_fn_json(
        &app,
        "/console/fn/set_cluster_analysis",
        &[("cluster", "page-1"), ("templates", "")],
        &ada,
        true,
    )
    .await;
    assert_eq!(detached["templates"], json!([]));
    let refused = server_fn_json(
        &app,
        "/console/fn/remove_analysis_template",
        &[("name", "errors")],
        &ada,
        false,
    )
    .await;
    assert_eq!(refused["message"], "field \"reason\" is required", "{refused}");
    assert_eq!(app.get_json("/api/v1/analysis-templates/errors").await["name"], "errors", "not removed");
    let status = post_form(
        &app,
        "/console/fn/remove_analysis_template",
        &[("name", "errors"), ("reason", "unused now")],
        &ada,
        "/analysis",
    )
    .await;
    assert!(status.is_redirection() || status.is_success(), "{status}");
    assert_error(
        app.get("/api/v1/analysis-templates/errors").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let html = page(&app, "/analysis", &ada).await;
    assert!(html.contains("No analysis templates yet."), "{html}");
}

/// A paused operation on `app`'s cluster seen and answered from the console:
/// its inconclusive measurement on the cluster page, the answers greyed for
/// a viewer, Continue posted without JavaScript, then a second paused
/// operation rolled back.
async fn answer_a_paused_operation_in_the_console(app: TestApp, peer: &Peer) {
    // No series for this model: every measurement is inconclusive.
    let (app, runner) = serving_v1_on(app, "mute", "mute-1", &peer.url).await;
    app.user_with_token("dee", Role::Deployer, None).await;
    app.user_with_token("vic", Role::Viewer, None).await;
    let dee = sign_in(&app, "dee").await;
    let vic = sign_in(&app, "vic").await;
    let id = start(&app, "mute-1", json!({ "kind": "blue_green", "full_id": "mute:2", "reason": "new", "analysis": ["errors"] })).await;
    wait(&app, id, |op| !op["paused"].is_null()).await;

    let html = page(&app, "/clusters/mute-1", &dee).await;
    for expected in [
        "Waiting for a person",
        "switchyard_test_error_ratio{model=",
        "data-verdict=\"inconclusive\"",
        "Reason to continue (required)",
        "Reason to roll back (required)",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    assert!(
        !html.contains(&format!("why-decide-{id}")),
        "the deployer's buttons are live: {html}"
    );
    let html = page(&app, "/clusters/mute-1", &vic).await;
    assert!(
        html.contains(&format!("id=\"why-decide-{id}\"")),
        "the viewer is told why: {html}"
    );

    let id_s = id.to_string();
    let refused = server_fn_json(
        &app,
        "/console/fn/continue_operation",
        &[("id", &id_s), ("reason", "looks fine")],
        &vic,
        false,
    )
    .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let refused = server_fn_json(
        &app,
        "/console/fn/continue_operation",
        &[("id", &id_s), ("reason", " ")],
        &dee,
        false,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("reason")),
        "{refused}"
    );
    let status = post_form(
        &app,
        "/console/fn/continue_operation",
        &[("id", &id_s), ("reason", "the dashboards are fine")],
        &dee,
        "/clusters/mute-1",
    )
    .await;
    assert!(status.is_redirection() || status.is_success(), "{status}");
    let op = wait(&app, id, |op| op["state"] != "running").await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let continued = events(&app, "mute-1", "operation.continued").await;
    assert_eq!(
        (
            continued.len(),
            continued[0]["actor"].as_str(),
            continued[0]["reason"].as_str()
        ),
        (1, Some("dee"), Some("the dashboards are fine")),
        "{continued:?}"
    );
    // The finished operation keeps its measurement on the cluster page.
    let html = page(&app, "/clusters/mute-1", &vic).await;
    assert!(html.contains("data-verdict=\"inconclusive\""), "{html}");

    let id = start(&app, "mute-1", json!({ "kind": "blue_green", "full_id": "mute:1", "reason": "back", "analysis": ["errors"] })).await;
    wait(&app, id, |op| !op["paused"].is_null()).await;
    let id_s = id.to_string();
    let answered = server_fn_json(
        &app,
        "/console/fn/roll_back_operation",
        &[("id", &id_s), ("reason", "cannot judge it")],
        &dee,
        true,
    )
    .await;
    assert_eq!(answered["id"], id, "{answered}");
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("person")),
        "{op}"
    );
    let chosen = events(&app, "mute-1", "operation.rollback_chosen").await;
    assert_eq!(
        (chosen.len(), chosen[0]["actor"].as_str()),
        (1, Some("dee")),
        "{chosen:?}"
    );
    let refused = server_fn_json(
        &app,
        "/console/fn/continue_operation",
        &[("id", &id_s), ("reason", "too late")],
        &dee,
        false,
    )
    .await;
    assert_eq!(refused["code"], "conflict", "{refused}");
}

#[tokio::test]
async fn a_paused_operation_shows_its_measurements_and_is_continued_or_rolled_back_from_the_console_on_sqlite(
) {
    let Some(peer) = peer() else { return };
    answer_a_paused_operation_in_the_console(spawn_app().await, peer).await;
}

#[tokio::test]
async fn a_paused_operation_shows_its_measurements_and_is_continued_or_rolled_back_from_the_console_on_postgresql(
) {
    let Some(peer) = peer() else { return };
    let (app, mut admin, name) = crate::postgres::spawn_app_on_fresh_postgres().await;
    answer_a_paused_operation_in_the_console(app, peer).await;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
    )
    .await
    .expect("drop database");
}

/// kill -9 of the real `switchyard serve` while an operation waits for a
/// person: one paused by an inconclusive analysis, one paused by a person
/// in the middle of its gate. After the restart each is still paused (no
/// runner touches it, the cluster still held), and a person's answer then
/// takes effect: continued → succeeded, rolled back → rolled_back (person).
async fn kill_9_while_paused(app: TestApp, peer: &Peer) {
    use crate::clusters::{temp_dir, Served};
    let dir = temp_dir("sy-paused");
    let log = dir.join("serve.log");
    app.register("hold", "1", json!({ "t": 1 })).await;
    app.register("hold", "2", json!({ "t": 2 })).await;
    let res = app
        // The simulated router in a file, so that it outlives the killed server.
        .post_json("/api/v1/clusters", &json!({ "name": "hold-1", "environment": "development", "driver": "simulated", "config": { "state_file": dir.join("router.json") } }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .put_json("/api/v1/analysis-templates/errors", &template(&peer.url))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut served = Served::start(&app.database_url, &log);
    let first = start(
        &app,
        "hold-1",
        json!({ "kind": "blue_green", "full_id": "hold:1", "reason": "first" }),
    )
    .await;
    assert_eq!(
        wait(&app, first, |op| op["state"] != "running").await["state"],
        "succeeded"
    );

    // Paused by its analysis: no series for this model, so no data.
    let id = start(&app, "hold-1", json!({ "kind": "blue_green", "full_id": "hold:2", "reason": "gated", "analysis": ["errors"] })).await;
    let paused = wait(&app, id, |op| !op["paused"].is_null()).await;
    served.kill9();
    served = Served::start(&app.database_url, &log);
    // Several lease periods (700 ms) and polls of the restarted runner.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let after = app.get_json(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(
        (
            &after["state"],
            &after["paused"],
            &after["steps"],
            &after["next_step"]
        ),
        (
            &paused["state"],
            &paused["paused"],
            &paused["steps"],
            &paused["next_step"]
        ),
        "still paused, untouched, after the restart"
    );
    assert_eq!(
        app.get_json("/api/v1/clusters/hold-1").await["running_operation"],
        id,
        "the paused operation still holds the cluster"
    );
    let res = app
        .post_json(
            &format!("/api/v1/operations/{id}/continue"),
            &json!({ "reason": "checked by hand after the restart" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let op = wait(&app, id, |op| op["state"] != "running").await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(
        values(&op["steps"].as_array().and_then(|s| s.last()).expect("gate")["measurements"]),
        vec![None]
    );

    // Paused by a person during a long analysis (value present, many measurements).
    set_value(peer, "hold", "1", 0.0).await;
    let res = app
        .put_json("/api/v1/analysis-templates/slow", &json!({
            "prometheus_url": peer.url,
            "query": "max(switchyard_test_error_ratio{model=\"{{model}}\",version=\"{{version}}\"})",
            "success": "result < 0.01", "failure": "result > 0.05",
            "interval_ms": 500, "count": 200, "failure_limit": 1, "inconclusive_limit": 1,
            "reason": "a long analysis",
        }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = start(&app, "hold-1", json!({ "kind": "blue_green", "full_id": "hold:1", "reason": "back, slowly", "analysis": ["slow"] })).await;
    wait(&app, id, |op| {
        op["steps"]
            .as_array()
            .and_then(|s| s.last())
            .is_some_and(|g| g["measurements"].as_array().is_some_and(|m| !m.is_empty()))
    })
    .await;
    let res = app
        .post_json(
            &format!("/api/v1/operations/{id}/pause"),
            &json!({ "reason": "alert on the dashboard" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    // The runner stops within a third of the lease.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused = app.get_json(&format!("/api/v1/operations/{id}")).await;
    served.kill9();
    served = Served::start(&app.database_url, &log);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let after = app.get_json(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(
        after["paused"]["by"],
        crate::helpers::ADMIN_ACTOR,
        "{after}"
    );
    assert_eq!(
        (&after["state"], &after["steps"], &after["next_step"]),
        (&paused["state"], &paused["steps"], &paused["next_step"]),
        "no measurement taken while paused, across the restart"
    );
    let res = app
        .post_json(
            &format!("/api/v1/operations/{id}/rollback"),
            &json!({ "reason": "the alert was real" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let op = wait(&app, id, |op| op["state"] != "running").await;
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("person")),
        "{op}"
    );
    let c = app.get_json("/api/v1/clusters/hold-1").await;
    let serving: Vec<&Value> = c["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter(|s| s["weight"] == 100)
        .map(|s| &s["full_id"])
        .collect();
    assert_eq!(
        serving,
        [&json!("hold:2")],
        "traffic went back to what served before: {c}"
    );
    served.kill9();
    assert_eq!(
        events(&app, "hold-1", "operation.rollback_chosen")
            .await
            .len(),
        1
    );
    assert_eq!(events(&app, "hold-1", "operation.continued").await.len(), 1);
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_operation_stays_paused_through_kill_9_and_restart_then_a_persons_answer_takes_effect_on_sqlite(
) {
    let Some(peer) = peer() else { return };
    kill_9_while_paused(spawn_app().await, peer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_operation_stays_paused_through_kill_9_and_restart_then_a_persons_answer_takes_effect_on_postgresql(
) {
    let Some(peer) = peer() else { return };
    let (app, mut admin, name) = crate::postgres::spawn_app_on_fresh_postgres().await;
    kill_9_while_paused(app, peer).await;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
    )
    .await
    .expect("drop database");
}

#[tokio::test]
async fn a_pre_switch_template_measures_the_newly_loaded_slot_and_a_failure_there_means_no_switch()
{
    let Some(peer) = peer() else { return };
    let (app, runner) = serving_v1("early", "pre-1", &peer.url).await;
    let mut t = template(&peer.url);
    t["pre_switch"] = json!(true);
    let res = app.put_json("/api/v1/analysis-templates/early", &t).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    assert_eq!(
        app.get_json("/api/v1/analysis-templates/early").await["pre_switch"],
        true
    );

    // Version 2 errs: the gate before the switch fails it, and traffic never moves.
    set_value(peer, "early", "2", 0.5).await;
    let id = start(&app, "pre-1", json!({ "kind": "blue_green", "full_id": "early:2", "reason": "measured first", "analysis": ["early"] })).await;
    let op = wait(&app, id, |op| op["state"] != "running").await;
    assert_eq!(op["state"], "failed", "traffic unmoved: {op}");
    let steps = op["steps"].as_array().expect("steps");
    assert!(
        steps.iter().all(|s| s["action"] != "shift"),
        "no switch was tried: {op}"
    );
    let gate = steps.last().expect("the gate");
    assert_eq!(
        (gate["action"].as_str(), gate["state"].as_str()),
        (Some("gate"), Some("failed")),
        "{op}"
    );
    assert_eq!(values(&gate["measurements"]), vec![Some(0.5); 2]);
    let c = app.get_json("/api/v1/clusters/pre-1").await;
    let serving: Vec<&Value> = c["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter(|s| s["weight"] == 100)
        .map(|s| &s["full_id"])
        .collect();
    assert_eq!(serving, [&json!("early:1")], "{c}");

    // Healthy: measured before the switch and after it, then switched.
    set_value(peer, "early", "2", 0.0).await;
    let id = start(&app, "pre-1", json!({ "kind": "blue_green", "full_id": "early:2", "reason": "fixed", "analysis": ["early"] })).await;
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(op["state"], "succeeded", "{op}");
    let actions: Vec<&str> = op["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["action"].as_str())
        .collect();
    let shift = actions
        .iter()
        .position(|a| *a == "shift")
        .expect("a switch");
    assert_eq!(
        (actions[shift - 1], actions.last().copied()),
        ("gate", Some("gate")),
        "{actions:?}"
    );
    for gate in [shift - 1, actions.len() - 1] {
        assert_eq!(
            values(&op["steps"][gate]["measurements"]),
            vec![Some(0.0); 3],
            "gate {gate}: {op}"
        );
    }
}

/// The gate results of `gates` for `cluster`, if any (asserting they are a list).
fn gate_of<'a>(gates: &'a Value, cluster: &str) -> Option<&'a Value> {
    gates
        .as_array()
        .unwrap_or_else(|| panic!("gates is a list: {gates}"))
        .iter()
        .find(|g| g["cluster"] == cluster)
}

/// Asserts that `gate` is operation `id`'s evidence for `full_id`: three
/// successful measurements of version 2, judged by the template `errors`.
fn assert_evidence(gate: &Value, id: i64, full_id: &str) {
    assert_eq!(gate["operation_id"], id, "{gate}");
    assert_eq!((gate["full_id"].as_str(), gate["kind"].as_str(), gate["state"].as_str()), (Some(full_id), Some("blue_green"), Some("succeeded")), "{gate}");
    assert_eq!(values(&gate["measurements"]), vec![Some(0.0); 3], "{gate}");
    assert!(
        gate["measurements"]
            .as_array()
            .expect("list")
            .iter()
            .all(|m| m["verdict"] == "success"
                && m["query"]
                    .as_str()
                    .is_some_and(|q| q.contains("version=\"2\""))),
        "{gate}"
    );
    assert_eq!(
        (gate["analysis"][0]["name"].as_str(), gate["analysis"][0]["success"].as_str(), gate["analysis"][0]["failure"].as_str()),
        (Some("errors"), Some("result < 0.01"), Some("result > 0.05")),
        "the conditions the values were judged by: {gate}"
    );
}

/// Serving at T and the request lookup, in the REST API and the console,
/// show the measurements that let a version take traffic (with the
/// templates that judged them), and nothing for a version an operation
/// without analysis brought in.
async fn gate_results_afterwards(app: TestApp, peer: &Peer, model: &str) {
    let cluster = format!("{model}-1");
    let (app, runner) = serving_v1_on(app, model, &cluster, &peer.url).await;
    set_value(peer, model, "2", 0.0).await;
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let before = now();
    let first = held(&app, &cluster).await;
    let id = start(&app, &cluster, json!({ "kind": "blue_green", "full_id": format!("{model}:2"), "reason": "measured", "analysis": ["errors"] })).await;
    let op = wait(&app, id, |op| op["state"] != "running").await;
    runner.abort();
    assert_eq!(op["state"], "succeeded", "{op}");
    let full_id = format!("{model}:2");
    let after = now();

    // REST: serving at T.
    let serving = app.get_json(&format!("/api/v1/serving?at={after}")).await;
    let gate = gate_of(&serving["gates"], &cluster).unwrap_or_else(|| panic!("the cluster's gate results: {serving}"));
    assert_evidence(gate, id, &full_id);
    let serving = app.get_json(&format!("/api/v1/serving?at={before}")).await;
    assert!(gate_of(&serving["gates"], &cluster).is_none(), "version 1 came in without analysis: {serving}");

    // REST: the request lookup, for a request version 2 served and one version 1 served before.
    let new_slot = op["steps"][0]["slot"].as_str().expect("the loaded slot").to_owned();
    let old_slot = if new_slot == "blue" { "green" } else { "blue" };
    assert_eq!(first.iter().flatten().count(), 1, "{first:?}");
    let records = json!([
        {"request_id": format!("{model}-after"), "at": after, "cluster": cluster, "slot": new_slot, "full_id": full_id, "latency_ms": 3.0},
        {"request_id": format!("{model}-before"), "at": before, "cluster": cluster, "slot": old_slot, "full_id": format!("{model}:1"), "latency_ms": 3.0},
    ]);
    let res = app.post_json("/api/v1/request-records", &records).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{:?}", res.text().await);
    let found = app.get_json(&format!("/api/v1/request-records/{model}-after")).await;
    assert_evidence(&found["gates"], id, &full_id);
    let found = app.get_json(&format!("/api/v1/request-records/{model}-before")).await;
    assert!(found.get("gates").is_none(), "version 1 came in without analysis: {found}");

    // The OpenAPI document describes both.
    let doc = app.get_json("/api/v1/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["ServingAt"]["properties"]["gates"].is_object(), "{}", schemas["ServingAt"]);
    assert!(schemas["RequestLookup"]["properties"]["gates"].is_object(), "{}", schemas["RequestLookup"]);
    assert!(schemas["GateResults"]["properties"]["measurements"].is_object(), "{}", schemas["GateResults"]);

    // The console: the same data on the serving and request pages.
    app.user_with_token("vic", Role::Viewer, None).await;
    let vic = sign_in(&app, "vic").await;
    let answer = server_fn_json(&app, "/console/fn/get_serving_at", &[], &vic, true).await;
    assert_evidence(gate_of(&answer["serving"]["gates"], &cluster).expect("gate results"), id, &full_id);
    let html = page(&app, "/serving", &vic).await;
    assert!(html.contains(&format!("Analysis of operation #{id}")), "{html}");
    assert!(html.contains("3 success, 0 failure, 0 inconclusive"), "{html}");
    let answer = server_fn_json(&app, "/console/fn/get_serving_at", &[("at", before.as_str())], &vic, true).await;
    assert!(gate_of(&answer["serving"]["gates"], &cluster).is_none(), "{answer}");
    let request_id = format!("{model}-after");
    let answer = server_fn_json(&app, "/console/fn/lookup_request", &[("request_id", request_id.as_str())], &vic, true).await;
    assert_evidence(&answer["gates"], id, &full_id);
    let html = page(&app, &format!("/requests?id={model}-after"), &vic).await;
    assert!(html.contains(&format!("Analysis of operation #{id}")), "{html}");

    // The charts of the measurements against the thresholds, with their words,
    // on the serving page and in the cluster's history.
    let words = "errors: 3 measurement(s) in order: 0, 0, 0. Success when result &lt; 0.01, failure when result &gt; 0.05. 3 success, 0 failure, 0 inconclusive.";
    for path in ["/serving".to_owned(), format!("/clusters/{cluster}")] {
        let html = page(&app, &path, &vic).await;
        let chart = html
            .find("data-template=\"errors\" class=\"measure-chart\"")
            .and_then(|i| html.get(i..))
            .and_then(|c| c.find("</figure>").and_then(|end| c.get(..end)))
            .unwrap_or_else(|| panic!("{path}: a chart: {html}"));
        assert!(chart.contains("role=\"img\"") && chart.contains(words), "{path}: {chart}");
        assert_eq!(chart.matches("data-verdict=\"success\"").count(), 3, "{path}: {chart}");
        assert!(chart.contains(">success 0.01<") && chart.contains(">failure 0.05<"), "{path}: {chart}");
    }
}

#[tokio::test]
async fn serving_at_t_and_the_request_lookup_show_the_measurements_that_let_the_version_take_traffic_on_sqlite(
) {
    let Some(peer) = peer() else { return };
    gate_results_afterwards(spawn_app().await, peer, "shown").await;
}

#[tokio::test]
async fn serving_at_t_and_the_request_lookup_show_the_measurements_that_let_the_version_take_traffic_on_postgresql(
) {
    let Some(peer) = peer() else { return };
    let (app, mut admin, name) = crate::postgres::spawn_app_on_fresh_postgres().await;
    gate_results_afterwards(app, peer, "shownpg").await;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
    )
    .await
    .expect("drop database");
}

/// kill -9 of the real `switchyard serve` while it releases the previous
/// version after a bake: the restarted server runs the release again (an
/// empty slot unloads fine) and the operation succeeds with the slot empty,
/// in the database and in the router alike.
async fn kill_9_during_the_release(app: TestApp) {
    use crate::clusters::{temp_dir, Served};
    let dir = temp_dir("sy-release");
    let log = dir.join("serve.log");
    let router = dir.join("router.json");
    app.register("rel", "1", json!({ "t": 1 })).await;
    app.register("rel", "2", json!({ "t": 2 })).await;
    let res = app
        // Each driver action takes 1 s, taking effect half-way: a window to kill in.
        .post_json("/api/v1/clusters", &json!({ "name": "rel-1", "environment": "development", "driver": "simulated", "config": { "state_file": router, "action_ms": 1000 } }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut served = Served::start(&app.database_url, &log);
    let first = start(
        &app,
        "rel-1",
        json!({ "kind": "blue_green", "full_id": "rel:1", "reason": "first" }),
    )
    .await;
    assert_eq!(
        wait(&app, first, |op| op["state"] != "running").await["state"],
        "succeeded"
    );
    let id = start(
        &app,
        "rel-1",
        json!({ "kind": "blue_green", "full_id": "rel:2", "reason": "baked", "bake_seconds": 1 }),
    )
    .await;
    let running = wait(&app, id, |op| {
        op["steps"]
            .as_array()
            .and_then(|s| s.last())
            .is_some_and(|r| r["action"] == "release" && r["state"] == "running")
            || op["state"] != "running"
    })
    .await;
    assert_eq!(running["state"], "running", "{running}");
    served.kill9();
    served = Served::start(&app.database_url, &log);
    let op = wait(&app, id, |op| op["state"] != "running").await;
    served.kill9();
    assert_eq!(op["state"], "succeeded", "{op}");
    let release = op["steps"]
        .as_array()
        .and_then(|s| s.last())
        .expect("steps");
    assert_eq!(
        (release["action"].as_str(), release["state"].as_str()),
        (Some("release"), Some("done")),
        "{op}"
    );
    let mut slots = held(&app, "rel-1").await;
    slots.sort();
    assert_eq!(slots, [None, Some("rel:2".to_owned())]);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&router).expect("router file"))
        .expect("JSON");
    let in_router: Vec<&Value> = [&file["blue"], &file["green"]]
        .into_iter()
        .filter(|v| !v.is_null())
        .collect();
    assert_eq!(
        in_router,
        [&json!("rel:2")],
        "the router released it too: {file}"
    );
    let interrupted = events(&app, "rel-1", "operation.interrupted").await;
    assert!(
        interrupted
            .iter()
            .any(|e| e["details"]["operation_id"] == id),
        "{interrupted:?}"
    );
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_release_after_a_bake_runs_it_again_and_succeeds_on_sqlite() {
    kill_9_during_the_release(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_release_after_a_bake_runs_it_again_and_succeeds_on_postgresql() {
    let (app, mut admin, name) = crate::postgres::spawn_app_on_fresh_postgres().await;
    kill_9_during_the_release(app).await;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
    )
    .await
    .expect("drop database");
}
