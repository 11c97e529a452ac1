//! Clusters and operations through the API, with the simulated driver and
//! the operation runner started beside the server, as `serve` does.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::drivers::Drivers;
use switchyard::operations::RunnerSettings;

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn with_runner(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let store = app.store().await;
    let settings = RunnerSettings {
        poll: Duration::from_millis(20),
        ..RunnerSettings::default()
    };
    switchyard::operations::spawn(store, Drivers::default(), settings)
}

async fn finished(app: &TestApp, id: i64) -> Value {
    for _ in 0..500 {
        let op = app.get_json(&format!("/api/v1/operations/{id}")).await;
        if op["state"] != "running" {
            return op;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("operation {id} did not end");
}

async fn create(app: &TestApp, name: &str, env: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/clusters",
        &json!({ "name": name, "environment": env, "driver": "simulated", "config": {} }),
    )
    .await
}

#[tokio::test]
async fn a_simulated_cluster_is_created_listed_and_labelled_simulated() {
    let app = spawn_app().await;
    let res = create(&app, "dev-1", "development").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let c: Value = res.json().await.expect("JSON");
    assert_eq!(
        (c["simulated"].as_bool(), c["driver"].as_str()),
        (Some(true), Some("simulated"))
    );
    assert_eq!(c["slots"].as_array().map(Vec::len), Some(2));
    let list = app.get_json("/api/v1/clusters").await;
    assert_eq!(list["clusters"][0]["name"], "dev-1");
    assert_eq!(
        app.get_json("/api/v1/clusters/dev-1").await["environment"],
        "development"
    );
    assert_error(
        app.get("/api/v1/clusters/nope").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        create(&app, "dev-1", "development").await,
        StatusCode::CONFLICT,
    )
    .await;
    let bad_driver = json!({ "name": "k", "environment": "development", "driver": "nomad" });
    assert_error(
        app.post_json("/api/v1/clusters", &bad_driver).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let bad_config = json!({ "name": "o", "environment": "development", "driver": "oip+haproxy", "config": { "model": "x" } });
    assert_error(
        app.post_json("/api/v1/clusters", &bad_config).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn an_operation_is_accepted_run_in_the_background_and_a_second_one_meanwhile_is_refused_naming_it(
) {
    let app = spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    app.register("chat", "2", json!({ "t": 2 })).await;
    create(&app, "dev-1", "development").await;
    let path = "/api/v1/clusters/dev-1/operations";
    let res = app
        .post_json(
            path,
            &json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "first" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("an id");
    let second = app
        .post_json(
            path,
            &json!({ "kind": "rolling", "full_id": "chat:2", "reason": "test" }),
        )
        .await;
    let error = assert_error(second, StatusCode::CONFLICT).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("operation {id}")),
        "{error}"
    );

    let runner = with_runner(&app).await;
    let op = finished(&app, id).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(op["steps"]
        .as_array()
        .is_some_and(|s| s.iter().all(|s| s["state"] == "done")));
    let res = app
        .post_json(
            path,
            &json!({ "kind": "rolling", "full_id": "chat:2", "steps": [10, 50, 100], "reason": "test" }),
        )
        .await;
    let id = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("an id");
    assert_eq!(finished(&app, id).await["state"], "succeeded");
    let res = app
        .post_json(
            "/api/v1/clusters/dev-1/rollback",
            &json!({ "reason": "bad answers" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("an id");
    let op = finished(&app, id).await;
    runner.abort();
    assert_eq!(
        (
            op["kind"].as_str(),
            op["full_id"].as_str(),
            op["state"].as_str()
        ),
        (Some("rollback"), Some("chat:1"), Some("succeeded"))
    );
    let now = switchyard_domain::Timestamp::now().to_rfc3339();
    let serving = app
        .get_json(&format!("/api/v1/serving?at={}", now.replace('+', "%2B")))
        .await;
    let slots = &serving["clusters"][0]["slots"];
    let live: Vec<_> = slots
        .as_array()
        .expect("slots")
        .iter()
        .filter(|s| s["weight"] == 100)
        .collect();
    assert_eq!(live[0]["full_id"], "chat:1");
    assert_eq!(
        serving["clusters"][0]["drift"][0]["serving"], "chat:1",
        "nothing is pinned in development"
    );
}

#[tokio::test]
async fn operations_are_refused_before_anything_moves_for_versions_the_environment_does_not_allow()
{
    let app = spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    create(&app, "prod-1", "production").await;
    let path = "/api/v1/clusters/prod-1/operations";
    let e = assert_error(
        app.post_json(
            path,
            &json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "test" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(e["code"], "policy_violation");
    assert_error(
        app.post_json(
            path,
            &json!({ "kind": "blue_green", "full_id": "chat:9", "reason": "test" }),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.post_json(
            path,
            &json!({ "kind": "teleport", "full_id": "chat:1", "reason": "test" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_error(
        app.post_json(
            "/api/v1/clusters/prod-1/rollback",
            &json!({ "reason": "test" }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_error(
        app.get("/api/v1/operations/99").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        app.get_json("/api/v1/clusters/prod-1").await["running_operation"],
        Value::Null
    );
}

#[tokio::test]
async fn an_operation_with_a_version_of_another_model_or_with_steps_it_ignores_is_refused() {
    let app = spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    app.register("chat", "2", json!({ "t": 2 })).await;
    app.register("rerank", "1", json!({ "r": 1 })).await;
    create(&app, "dev-1", "development").await;
    let path = "/api/v1/clusters/dev-1/operations";
    let res = app
        .post_json(
            path,
            &json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "first" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("an id");
    let runner = with_runner(&app).await;
    assert_eq!(finished(&app, id).await["state"], "succeeded");
    runner.abort();

    for kind in ["blue_green", "hot_reload", "rolling"] {
        let e = assert_error(
            app.post_json(
                path,
                &json!({ "kind": kind, "full_id": "rerank:1", "reason": "wrong model" }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let message = e["message"].as_str().unwrap_or("");
        assert!(
            message.contains("rerank") && message.contains("serves chat"),
            "{kind}: {e}"
        );
    }
    let e = assert_error(
        app.post_json(
            path,
            &json!({ "kind": "blue_green", "full_id": "chat:2", "steps": [10, 100], "reason": "r" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(e["message"].as_str().unwrap_or("").contains("steps"), "{e}");
    assert_eq!(
        app.get_json("/api/v1/clusters/dev-1").await["running_operation"],
        Value::Null,
        "nothing was started"
    );
}

/// A rolling update to a version whose simulated requests fail 40% of the
/// time: the health gate after the first traffic step judges the error rate
/// and rolls back (trigger `health_gate`); a healthy version passes the same gate.
#[tokio::test]
async fn a_rolling_step_whose_error_rate_exceeds_the_threshold_rolls_back_with_trigger_health_gate()
{
    let app = &spawn_app().await;
    for v in ["1", "2", "3"] {
        app.register("chat", v, json!({ "t": v })).await;
    }
    let config = json!({
        "error_percent": { "chat:3": 40.0, "chat:2": 1.0 },
        "requests_per_second": 20000,
        "health_gate": { "max_error_percent": 5.0, "min_requests": 50, "window_ms": 150 },
    });
    let res = app.post_json("/api/v1/clusters", &json!({ "name": "dev-1", "environment": "development", "driver": "simulated", "config": config })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let bad_gate = json!({ "name": "dev-2", "environment": "development", "driver": "simulated", "config": { "health_gate": { "max_error_percent": 150 } } });
    assert_error(
        app.post_json("/api/v1/clusters", &bad_gate).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let runner = with_runner(app).await;
    let path = "/api/v1/clusters/dev-1/operations";
    let start = |body: Value| async move {
        let res = app.post_json(path, &body).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        res.json::<Value>().await.expect("JSON")["operation_id"]
            .as_i64()
            .expect("an id")
    };
    let first = start(json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "test" })).await;
    assert_eq!(finished(&app, first).await["state"], "succeeded");
    // 1% errors is under the 5% threshold: every gate passes and says what it measured.
    let healthy = finished(
        &app,
        start(
            json!({ "kind": "rolling", "full_id": "chat:2", "steps": [20, 100], "reason": "test" }),
        )
        .await,
    )
    .await;
    assert_eq!(healthy["state"], "succeeded", "{healthy}");
    let gates: Vec<&str> = healthy["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["action"] == "gate")
        .filter_map(|s| s["note"].as_str())
        .collect();
    assert_eq!(gates.len(), 2, "{healthy}");
    assert!(
        gates
            .iter()
            .all(|n| n.starts_with("error rate ") && n.contains("on blue")),
        "{gates:?}"
    );

    let op = finished(
        &app,
        start(json!({ "kind": "rolling", "full_id": "chat:3", "steps": [10, 50, 100], "reason": "test" })).await,
    )
    .await;
    runner.abort();
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("health_gate")),
        "{op}"
    );
    let steps = op["steps"].as_array().expect("steps");
    let failed = steps
        .iter()
        .find(|s| s["state"] == "failed")
        .expect("a failed step");
    assert_eq!(failed["action"], "gate");
    let note = failed["note"].as_str().unwrap_or("");
    assert!(
        note.contains("error rate") && note.contains("exceeds 5%"),
        "{note}"
    );
    let last = steps.last().expect("a restore step");
    assert_eq!(
        (last["restore"].as_bool(), last["state"].as_str()),
        (Some(true), Some("done")),
        "{op}"
    );
    // No step after the failed gate moved traffic further: the 50% step never ran.
    assert!(!steps.iter().any(|s| s["weights"]["green"] == 50), "{op}");
    let cluster = app.get_json("/api/v1/clusters/dev-1").await;
    let live: Vec<(&str, &str, i64)> = cluster["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| {
            (
                s["full_id"].as_str().unwrap_or(""),
                s["health"].as_str().unwrap_or(""),
                s["weight"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    // The server asks its own (simulated) driver, which starts from the database's state.
    assert_eq!(
        live,
        [("chat:2", "ready", 100), ("chat:3", "ready", 0)],
        "{cluster}"
    );
    assert_eq!(
        cluster["router"]["weights"],
        json!({ "blue": 100, "green": 0 }),
        "{cluster}"
    );
    let rollbacks = app.get_json("/api/v1/audit?action=rollback").await;
    let e = &rollbacks["events"][0];
    assert_eq!(
        (
            e["details"]["trigger"].as_str(),
            e["details"]["outcome"].as_str()
        ),
        (Some("health_gate"), Some("rolled_back")),
        "{e}"
    );
}

/// What the driver cannot tell is shown as `unknown: <why>`, not as the stored value.
#[tokio::test]
async fn live_slot_health_says_unknown_and_why_when_the_driver_cannot_answer() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("sy-live-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("dir");
    let state_file = dir.join("router.json");
    std::fs::write(&state_file, "{ not json").expect("written");
    let res = app
        .post_json("/api/v1/clusters", &json!({ "name": "sim", "environment": "development", "driver": "simulated", "config": { "state_file": state_file } }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let c = app.get_json("/api/v1/clusters/sim").await;
    for slot in c["slots"].as_array().expect("slots") {
        let h = slot["health"].as_str().unwrap_or("");
        assert!(
            h.starts_with("unknown: ") && h.contains("router.json"),
            "{h}"
        );
    }
    assert!(
        c["router"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("unknown: ")),
        "{c}"
    );
    // A router whose admin socket is not there: empty slots are `empty`, the router unknown.
    let config = json!({
        "model": "echo",
        "blue": { "url": "http://127.0.0.1:9", "repository": dir.join("b") },
        "green": { "url": "http://127.0.0.1:9", "repository": dir.join("g") },
        "artifacts": dir.join("a"),
        "haproxy": { "socket": dir.join("nothing.sock"), "route_map": dir.join("m"), "weights_file": dir.join("w") },
    });
    let res = app.post_json("/api/v1/clusters", &json!({ "name": "real", "environment": "development", "driver": "oip+haproxy", "config": config })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let c = app.get_json("/api/v1/clusters/real").await;
    assert_eq!(c["slots"][0]["health"], "empty", "{c}");
    let why = c["router"]["error"].as_str().unwrap_or("");
    assert!(
        why.starts_with("unknown: ") && why.contains("nothing.sock"),
        "{why}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real `switchyard serve` binary as a child process, killed with
/// SIGKILL when dropped (a failing test leaves no server behind).
pub(crate) struct Served(std::process::Child);

impl Served {
    /// Starts `switchyard serve` on `database_url`, with a short operation
    /// lease so that a crashed run is resumed within a second.
    pub(crate) fn start(database_url: &str, log: &std::path::Path) -> Served {
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
            .env("SWITCHYARD_OPERATION_LEASE_MS", "700")
            .env("SWITCHYARD_OPERATION_POLL_MS", "20")
            .env_remove("LOG_FORMAT")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("switchyard serve starts");
        Served(child)
    }

    /// kill -9, and reap it.
    pub(crate) fn kill9(mut self) {
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

/// The simulated router as its state file holds it (it outlives the server).
fn router_in(file: &std::path::Path) -> Value {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// The cluster's state as the database holds it, in the router file's shape.
async fn stored_state(app: &TestApp, cluster: &str) -> Value {
    let c = app.get_json(&format!("/api/v1/clusters/{cluster}")).await;
    let slots = c["slots"].as_array().cloned().unwrap_or_default();
    let get = |slot: &str| {
        slots
            .iter()
            .find(|s| s["slot"] == slot)
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "blue": get("blue")["full_id"], "green": get("green")["full_id"],
        "weights": { "blue": get("blue")["weight"], "green": get("green")["weight"] },
    })
}

/// Polls the operation until `ready` says so (10 ms apart, 30 s at most).
async fn until(app: &TestApp, id: i64, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..3000 {
        let op = app.get_json(&format!("/api/v1/operations/{id}")).await;
        if ready(&op) {
            return op;
        }
        assert_eq!(
            op["state"], "running",
            "operation {id} ended while waiting for {what}: {op}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("operation {id}: {what} did not happen");
}

/// Whether `step` has taken effect in the router file `r`.
fn acted(step: &Value, r: &Value) -> bool {
    match step["action"].as_str() {
        Some("load") => r[step["slot"].as_str().unwrap_or("")] == step["full_id"],
        Some("shift") => r["weights"] == step["weights"],
        _ => true,
    }
}

/// kill -9 of the real server binary in the middle of every step of a
/// rolling update (for a load or a traffic shift: after the router acted and
/// before the step was recorded done, when router and database disagree),
/// and in the middle of the restore step of a health-gate rollback. After
/// each restart the operation is resumed and ends consistent: the router
/// (the simulated driver's state file) and the database agree, the ledger
/// tells of each interruption and resumption, and `audit verify` passes.
async fn kill_9_in_every_step(app: &TestApp, dir: &std::path::Path) {
    for v in ["1", "2", "3"] {
        app.register("chat", v, json!({ "t": v })).await;
    }
    let router = dir.join("router.json");
    let log = dir.join("serve.log");
    let config = json!({
        // Each action takes 1 s, a load or shift taking effect half-way: a wide window to kill in.
        "action_ms": 1000,
        "state_file": router,
        "error_percent": { "chat:3": 40.0 },
        "requests_per_second": 20000,
        "health_gate": { "window_ms": 100, "min_requests": 50, "max_error_percent": 5.0 },
    });
    let res = app.post_json("/api/v1/clusters", &json!({ "name": "crash-1", "environment": "development", "driver": "simulated", "config": config })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut served = Served::start(&app.database_url, &log);
    let path = "/api/v1/clusters/crash-1/operations";
    let start = |body: Value| async move {
        let res = app.post_json(path, &body).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        res.json::<Value>().await.expect("JSON")["operation_id"]
            .as_i64()
            .expect("an id")
    };
    let first = start(json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "test" })).await;
    assert_eq!(
        until(app, first, "the first deploy", |o| o["state"] != "running").await["state"],
        "succeeded"
    );

    let id = start(
        json!({ "kind": "rolling", "full_id": "chat:2", "steps": [10, 50, 100], "reason": "test" }),
    )
    .await;
    let plan = app.get_json(&format!("/api/v1/operations/{id}")).await["steps"]
        .as_array()
        .cloned()
        .expect("steps");
    assert_eq!(
        plan.len(),
        9,
        "load, ready, smoke, then shift and gate three times"
    );
    for (index, step) in plan.iter().enumerate() {
        let running = until(app, id, &format!("step {index} running"), |o| {
            o["steps"][index]["state"] == "running"
        })
        .await;
        let mutates = matches!(step["action"].as_str(), Some("load" | "shift"));
        if mutates {
            for _ in 0..3000 {
                if acted(step, &router_in(&router)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        served.kill9();
        let op = app.get_json(&format!("/api/v1/operations/{id}")).await;
        assert_eq!(
            op["steps"][index]["state"], "running",
            "killed in the middle of step {index}: {op}"
        );
        if mutates {
            assert!(
                acted(step, &router_in(&router)),
                "the router acted on step {index}"
            );
            assert_ne!(
                router_in(&router),
                stored_state(app, "crash-1").await,
                "killed after the router acted on step {index}, before the database knew"
            );
        }
        eprintln!(
            "kill -9 in step {index} ({}), started {}",
            step["action"], running["steps"][index]["started_at"]
        );
        served = Served::start(&app.database_url, &log);
    }
    let op = until(app, id, "the end", |o| o["state"] != "running").await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(
        router_in(&router),
        stored_state(app, "crash-1").await,
        "router and database agree"
    );
    // chat:1 went to green first (the idle slot of a new cluster), chat:2 to blue.
    assert_eq!(
        router_in(&router)["weights"],
        json!({ "blue": 100, "green": 0 })
    );
    let cluster = app.get_json("/api/v1/clusters/crash-1").await;
    assert_eq!(
        cluster["router"]["weights"],
        json!({ "blue": 100, "green": 0 }),
        "{cluster}"
    );
    assert!(
        cluster["slots"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["health"] == "ready")),
        "{cluster}"
    );
    let interrupted = app
        .get_json("/api/v1/audit?action=operation.interrupted&limit=100")
        .await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let resumed = app
        .get_json("/api/v1/audit?action=operation.resumed&limit=100")
        .await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (interrupted.len(), resumed.len()),
        (9, 9),
        "one interruption and one resumption per kill"
    );
    let mut steps: Vec<i64> = interrupted
        .iter()
        .filter_map(|e| e["details"]["step"].as_i64())
        .collect();
    steps.sort_unstable();
    assert_eq!(steps, (0..9).collect::<Vec<_>>());
    assert!(
        interrupted
            .iter()
            .all(|e| e["details"]["step_state"] == "running"
                && e["details"]["previous_runner"].is_string()),
        "{interrupted:?}"
    );

    // Each shift killed after the router acted was reconciled on resumption:
    // between the command and the observation serving at T reports the
    // transition naming both versions, never only the old one — in the API
    // and on the console's page.
    let reconciled = app
        .get_json("/api/v1/audit?action=operation.reconciled&limit=100")
        .await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shifts: Vec<usize> = (0..plan.len())
        .filter(|i| plan[*i]["action"] == "shift")
        .collect();
    let mut found: Vec<usize> = reconciled
        .iter()
        .filter(|e| e["details"]["operation_id"] == id)
        .filter_map(|e| e["details"]["step"].as_u64().map(|s| s as usize))
        .collect();
    found.sort_unstable();
    assert_eq!(
        found, shifts,
        "one reconciliation per interrupted traffic step: {reconciled:?}"
    );
    app.user_with_token("erin", switchyard_domain::access::Role::Viewer, None)
        .await;
    let browser = crate::console::sign_in(app, "erin").await;
    for e in reconciled
        .iter()
        .filter(|e| e["details"]["operation_id"] == id)
    {
        assert_eq!(e["details"]["finding"], "switched", "{e}");
        let micros = |v: &Value| {
            switchyard_domain::Timestamp::parse(v.as_str().expect("a time"))
                .expect("RFC 3339")
                .micros()
        };
        let (t1, t2) = (micros(&e["details"]["intent"]["at"]), micros(&e["at"]));
        assert!(t1 < t2, "{e}");
        let mid = switchyard_domain::Timestamp::from_micros((t1 + t2) / 2)
            .to_rfc3339()
            .replace('+', "%2B");
        let s = app.get_json(&format!("/api/v1/serving?at={mid}")).await;
        let c = s["clusters"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["cluster"] == "crash-1"))
            .cloned()
            .expect("crash-1 at T");
        let mut versions: Vec<&str> = c["transition"]["versions"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        versions.sort_unstable();
        assert_eq!(
            versions,
            ["chat:1", "chat:2"],
            "in transition at {mid}: {c}"
        );
        let html = reqwest::Client::new()
            .get(format!("{}/serving?at={mid}", app.address))
            .header(reqwest::header::COOKIE, &browser.cookie)
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .unwrap_or_default();
        assert!(
            html.contains("In transition") && html.contains("between chat:"),
            "the serving page shows the transition at {mid}"
        );
    }

    // A health-gate rollback interrupted in its restore step: resumed, it
    // still ends rolled back, router and database agreeing.
    let id = start(
        json!({ "kind": "rolling", "full_id": "chat:3", "steps": [10, 50, 100], "reason": "test" }),
    )
    .await;
    let op = until(app, id, "a restore step running", |o| {
        o["steps"]
            .as_array()
            .and_then(|s| s.last())
            .is_some_and(|s| s["restore"] == true && s["state"] == "running")
    })
    .await;
    let restore = op["steps"]
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .expect("the restore step");
    for _ in 0..3000 {
        if acted(&restore, &router_in(&router)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    served.kill9();
    assert_ne!(
        router_in(&router),
        stored_state(app, "crash-1").await,
        "killed after the router restored, before the database knew"
    );
    let served = Served::start(&app.database_url, &log);
    let op = until(app, id, "the end", |o| o["state"] != "running").await;
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("health_gate")),
        "{op}"
    );
    assert_eq!(
        router_in(&router),
        stored_state(app, "crash-1").await,
        "router and database agree after the rollback"
    );
    assert_eq!(
        router_in(&router)["weights"],
        json!({ "blue": 100, "green": 0 }),
        "chat:2 in blue serves again"
    );
    let interrupted = app
        .get_json("/api/v1/audit?action=operation.interrupted&limit=100")
        .await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        interrupted
            .iter()
            .any(|e| e["details"]["operation_id"] == id && e["details"]["restore"] == true),
        "{interrupted:?}"
    );
    let rollback = app.get_json("/api/v1/audit?action=rollback").await["events"][0].clone();
    assert_eq!(
        (
            rollback["details"]["operation_id"].as_i64(),
            rollback["details"]["trigger"].as_str()
        ),
        (Some(id), Some("health_gate"))
    );
    served.kill9();

    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("switchyard audit verify runs");
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

pub(crate) fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_in_the_middle_of_every_step_on_sqlite_resumes_or_rolls_back_consistently(
) {
    let app = spawn_app().await;
    let dir = temp_dir("sy-crash");
    kill_9_in_every_step(&app, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_in_the_middle_of_every_step_on_postgresql_resumes_or_rolls_back_consistently(
) {
    let (app, mut admin, name) = crate::postgres::spawn_app_on_fresh_postgres().await;
    let dir = temp_dir("sy-crash-pg");
    kill_9_in_every_step(&app, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    use sqlx::Executor;
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}

/// The JSON body of a `call_server_fn` answer ("200 OK {…}").
fn body(answer: &str) -> &str {
    answer.find('{').map_or(answer, |i| &answer[i..])
}

#[tokio::test]
async fn the_consoles_operation_buttons_obey_the_same_rules_as_the_api() {
    use crate::console::{call_server_fn, sign_in};
    use switchyard_domain::access::Role;
    let app = spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    app.register("chat", "2", json!({ "t": 2 })).await;
    create(&app, "dev-1", "development").await;
    create(&app, "prod-1", "production").await;
    app.user_with_token("dave", Role::Deployer, None).await;
    let dave = sign_in(&app, "dave").await;
    let start = |cluster: &str, full_id: &str| {
        serde_urlencoded::to_string(json!({ "cluster": cluster, "kind": "blue_green", "full_id": full_id, "reason": "console" }))
            .expect("form")
    };

    let answer = call_server_fn(
        &app,
        "POST",
        "/console/fn/start_operation",
        &start("dev-1", "chat:1"),
        Some(&dave),
    )
    .await;
    assert!(answer.starts_with("200 "), "{answer}");
    let op: Value = serde_json::from_str(body(&answer)).expect("an operation");
    assert_eq!(
        (op["actor"].as_str(), op["reason"].as_str()),
        (Some("dave"), Some("console"))
    );
    let second = call_server_fn(
        &app,
        "POST",
        "/console/fn/roll_back_cluster",
        "cluster=dev-1&reason=console",
        Some(&dave),
    )
    .await;
    assert!(
        second.contains(&format!(
            "operation {} (blue_green) is running on cluster dev-1",
            op["id"]
        )),
        "{second}"
    );

    let production = call_server_fn(
        &app,
        "POST",
        "/console/fn/start_operation",
        &start("prod-1", "chat:1"),
        Some(&dave),
    )
    .await;
    assert!(
        production.contains("needs an approver binding for production or all; dave has: deployer on all"),
        "{production}"
    );

    let runner = with_runner(&app).await;
    let done = finished(&app, op["id"].as_i64().expect("an id")).await;
    runner.abort();
    assert_eq!(done["state"], "succeeded");
    let page = call_server_fn(
        &app,
        "POST",
        "/console/fn/get_cluster",
        "name=dev-1",
        Some(&dave),
    )
    .await;
    let view: Value = serde_json::from_str(body(&page)).expect("a cluster view");
    assert_eq!(view["operations"][0]["state"], "succeeded");
    assert_eq!(
        view["refused"],
        Value::Null,
        "a deployer may operate a development cluster"
    );
    let allowed: Vec<&str> = view["allowed"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        allowed,
        ["chat:2", "chat:1"],
        "development admits both versions, newest first"
    );
}

#[tokio::test]
async fn a_cluster_created_without_settings_shows_an_empty_config_and_one_with_a_non_object_config_is_refused(
) {
    let app = spawn_app().await;
    let null_config =
        json!({ "name": "n", "environment": "development", "driver": "simulated", "config": null });
    let res = app.post_json("/api/v1/clusters", &null_config).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let c: Value = res.json().await.expect("JSON");
    assert_eq!(c["config"], json!({}));
    assert_eq!(
        app.get_json("/api/v1/clusters/n").await["config"],
        json!({})
    );
    assert_eq!(
        app.get_json("/api/v1/clusters").await["clusters"][0]["config"],
        json!({})
    );
    let list_config =
        json!({ "name": "l", "environment": "development", "driver": "simulated", "config": [] });
    let error = assert_error(
        app.post_json("/api/v1/clusters", &list_config).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("JSON object"), "{message}");
}
