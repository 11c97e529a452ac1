//! End to end against real peers, nothing mocked: two MLServer processes
//! (blue, green) serving a tiny model whose every version answers with its
//! own version id, HAProxy in front with an admin socket, and a real
//! switchyard server with the operation runner. A bounded load generator
//! sends a few hundred requests per second through HAProxy the whole time,
//! reporting each request through `POST /api/v1/request-records`.
//!
//! The switch instant: a switch is the `Shift` step of an operation. Its
//! step record is written before the `set map` command and its done record
//! (whose time is the state history's `valid_from`) after HAProxy
//! acknowledged. A request that started before the step started was routed
//! by the old state, one that started after the step was recorded done by
//! the new one; one that started in between may be answered by either, and
//! is checked against both.
//!
//! Needs `scripts/peers.sh` (the test command runs it). Without the peers the
//! test says so and passes, unless `SWITCHYARD_PEERS_REQUIRED=1`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard::auth::{password, secret};
use switchyard::config::Config;
use switchyard::drivers::oip_haproxy::{haproxy_config, OipHaproxy, OipHaproxyConfig};
use switchyard::drivers::{Driver, Drivers};
use switchyard::operations::RunnerSettings;
use switchyard::startup::Application;
use switchyard::store::DynStore;
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

#[path = "support/prometheus.rs"]
mod prometheus;

const MODEL: &str = "echo";
const CLUSTER: &str = "peers";

const MODEL_PY: &str = r#"
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class VersionModel(MLModel):
    """Answers every request with its own version id; `mode` breaks it on purpose."""

    def _mode(self):
        extra = self.settings.parameters.extra if self.settings.parameters else None
        return (extra or {}).get("mode")

    async def load(self) -> bool:
        if self._mode() == "fail_load":
            raise RuntimeError("this version fails to load on purpose")
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if self._mode() == "fail_predict":
            raise RuntimeError("this version fails every request on purpose")
        if self._mode() == "fail_traffic" and "smoke" not in repr(payload.inputs[0].data):
            raise RuntimeError("this version passes its smoke request and fails real traffic on purpose")
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[ResponseOutput(name="version", shape=[1], datatype="BYTES", data=[self.version])],
        )
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn peers() -> Option<(PathBuf, PathBuf)> {
    let from_env = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mlserver =
        from_env("SWITCHYARD_MLSERVER").unwrap_or_else(|| root.join(".tools/venv/bin/mlserver"));
    let haproxy =
        from_env("SWITCHYARD_HAPROXY").unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"));
    (mlserver.exists() && haproxy.exists()).then_some((mlserver, haproxy))
}

/// Writes version `v` of the model into `ARTIFACTS/echo/v/`.
fn write_version(artifacts: &Path, v: u32, mode: Option<&str>) {
    let dir = artifacts.join(MODEL).join(v.to_string());
    std::fs::create_dir_all(&dir).expect("version dir");
    std::fs::write(dir.join("model.py"), MODEL_PY).expect("model.py");
    let mut params = json!({ "version": v.to_string() });
    if let Some(m) = mode {
        params["extra"] = json!({ "mode": m });
    }
    let settings =
        json!({ "name": MODEL, "implementation": "model.VersionModel", "parameters": params });
    std::fs::write(dir.join("model-settings.json"), settings.to_string())
        .expect("model-settings.json");
}

/// Starts MLServer on `port` with `dir` as its repository; with `loader`,
/// as docs/clusters.md says for `deploy: "artifact_uri"`: Switchyard's loader
/// (`contrib/mlserver/switchyard_loader.py`) is its model repository,
/// listening on that port.
async fn start_mlserver(bin: &Path, dir: &Path, port: u16, loader: Option<u16>) -> Child {
    std::fs::create_dir_all(dir.join("metrics")).expect("dir");
    std::fs::create_dir_all(dir.join("envs")).expect("dir");
    let mut settings = json!({
        "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
        "metrics_dir": dir.join("metrics"), "environments_dir": dir.join("envs"),
        "load_models_at_startup": false, "parallel_workers": 0,
    });
    let mut command = Command::new(bin);
    if let Some(loader) = loader {
        settings["model_repository_implementation"] = json!("switchyard_loader.ArtifactRepository");
        settings["model_repository_implementation_args"] =
            json!({ "listen": format!("127.0.0.1:{loader}") });
        command.env(
            "PYTHONPATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/mlserver"),
        );
    }
    std::fs::write(dir.join("settings.json"), settings.to_string()).expect("settings.json");
    let log = std::fs::File::create(dir.join("mlserver.log")).expect("log");
    let child = command
        .arg("start")
        .arg(dir)
        .current_dir(dir)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("mlserver starts");
    let http = reqwest::Client::new();
    // Up to a minute: MLServer's start-up is ~5 s alone but far slower on two
    // cores busy compiling.
    for _ in 0..600 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/v2/health/ready"))
            .send()
            .await
        {
            if r.status().is_success() {
                return child;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "MLServer on port {port} did not start; see {}",
        dir.join("mlserver.log").display()
    );
}

/// One request the load generator sent.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    start: Timestamp,
    ok: bool,
    slot: String,
    version: String,
    latency_ms: f64,
    error: Option<String>,
}

/// Sends requests through HAProxy at about `rate` per second with `workers`
/// connections, until `stop`.
fn load_generator(
    url: String,
    rate: u32,
    workers: u32,
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<Sent>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let every = Duration::from_secs_f64(f64::from(workers) / f64::from(rate));
    (0..workers)
        .map(|w| {
            let (url, stop, sent) = (url.clone(), stop.clone(), sent.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
                let body = json!({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]});
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut n = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    n += 1;
                    let start = Timestamp::now();
                    let t = Instant::now();
                    let res = http.post(&url).json(&body).send().await;
                    let mut s = Sent {
                        id: format!("w{w}-{n}-{:08x}", rand::random::<u32>()),
                        start,
                        ok: false,
                        slot: String::new(),
                        version: String::new(),
                        latency_ms: 0.0,
                        error: None,
                    };
                    match res {
                        Ok(r) => {
                            let status = r.status();
                            s.slot = r.headers().get("x-slot").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            s.version = v["model_version"].as_str().unwrap_or("").to_owned();
                            s.ok = status.is_success() && !s.version.is_empty();
                            if !s.ok {
                                s.error = Some(format!("HTTP {status}: {v}"));
                            }
                        }
                        Err(e) => s.error = Some(e.to_string()),
                    }
                    s.latency_ms = t.elapsed().as_secs_f64() * 1000.0;
                    sent.lock().await.push(s);
                }
            })
        })
        .collect()
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("JSON")
    }

    async fn operate(&self, body: Value) -> i64 {
        let (status, v) = self
            .post(
                &format!("/api/v1/clusters/{CLUSTER}/operations"),
                body.clone(),
            )
            .await;
        assert_eq!(status, 202, "{body}: {v}");
        v["operation_id"].as_i64().expect("an operation id")
    }

    async fn rollback(&self) -> i64 {
        let (status, v) = self
            .post(
                &format!("/api/v1/clusters/{CLUSTER}/rollback"),
                json!({"reason": "test"}),
            )
            .await;
        assert_eq!(status, 202, "{v}");
        v["operation_id"].as_i64().expect("an operation id")
    }

    async fn finished(&self, id: i64) -> Value {
        for _ in 0..1200 {
            let op = self.get(&format!("/api/v1/operations/{id}")).await;
            if op["state"] != "running" {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("operation {id} did not end");
    }
}

/// The versions with traffic at `t` (µs) per `GET /api/v1/serving?at=`,
/// remembering each answer's interval [since, next_change).
async fn serving_versions(
    api: &Api,
    cache: &mut Vec<(i64, i64, Vec<String>)>,
    t: i64,
) -> Vec<String> {
    if let Some(c) = cache.iter().find(|(from, to, _)| *from <= t && t < *to) {
        return c.2.clone();
    }
    let at = Timestamp::from_micros(t).to_rfc3339();
    let s = api
        .get(&format!(
            "/api/v1/serving?at={}&environment=development",
            at.replace('+', "%2B")
        ))
        .await;
    let c = s["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["cluster"] == CLUSTER))
        .cloned()
        .expect("the cluster at T");
    let versions: Vec<String> = c["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter(|s| s["weight"].as_u64() > Some(0))
        .filter_map(|s| {
            s["full_id"]
                .as_str()
                .map(|f| f.trim_start_matches("echo:").to_owned())
        })
        .collect();
    let to = if c["next_change"].is_null() {
        i64::MAX
    } else {
        micros(&c["next_change"])
    };
    cache.push((micros(&c["since"]), to, versions.clone()));
    versions
}

fn micros(v: &Value) -> i64 {
    Timestamp::parse(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .micros()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_rollbacks_a_rolling_update_and_a_hot_reload_under_load_fail_no_request() {
    let Some((mlserver, haproxy)) = peers() else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "MLServer or HAProxy missing: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: MLServer or HAProxy missing (scripts/peers.sh installs them)");
        return;
    };
    switchyard::telemetry::init_for_test();
    let dir = std::env::temp_dir().join(format!("sy-peers-{:08x}", rand::random::<u32>()));
    let artifacts = dir.join("artifacts");
    // 1–23 and 26–33 serve; 24 fails to load; 25 fails every request (its smoke request too).
    for v in (1..=23).chain(26..=33) {
        write_version(&artifacts, v, None);
    }
    write_version(&artifacts, 24, Some("fail_load"));
    write_version(&artifacts, 25, Some("fail_predict"));
    // 34 answers its smoke request and fails every other request: the error-rate gate catches it.
    write_version(&artifacts, 34, Some("fail_traffic"));

    let (blue_port, green_port, front_port) = (free_port(), free_port(), free_port());
    let config = json!({
        "model": MODEL,
        "blue": { "url": format!("http://127.0.0.1:{blue_port}"), "repository": dir.join("blue") },
        "green": { "url": format!("http://127.0.0.1:{green_port}"), "repository": dir.join("green") },
        "artifacts": artifacts,
        // The driver talks to HAProxy through a relay in this test, which can hold a
        // command so that the server is killed at a known point of a step.
        "haproxy": { "socket": dir.join("relay.sock"), "route_map": dir.join("route.map"), "weights_file": dir.join("weights") },
    });
    let (blue_dir, green_dir) = (dir.join("blue"), dir.join("green"));
    let (_blue, _green) = tokio::join!(
        start_mlserver(&mlserver, &blue_dir, blue_port, None),
        start_mlserver(&mlserver, &green_dir, green_port, None)
    );
    let mut direct = OipHaproxyConfig::parse(&config).expect("a valid driver config");
    direct.haproxy.socket = dir.join("haproxy.sock").display().to_string();
    let relay = Relay::start(
        dir.join("relay.sock"),
        PathBuf::from(&direct.haproxy.socket),
    );
    std::fs::write(dir.join("route.map"), "active be_blue\n").expect("map");
    std::fs::write(
        dir.join("haproxy.cfg"),
        haproxy_config(&direct, &format!("127.0.0.1:{front_port}")),
    )
    .expect("cfg");
    let _haproxy = Command::new(&haproxy)
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log")).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy starts");
    for _ in 0..100 {
        if dir.join("haproxy.sock").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let database_url = format!("sqlite://{}", dir.join("switchyard.db").display());
    let app = Application::build(Config {
        database_url: database_url.clone(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
        checkpoint_file: None,
    })
    .await
    .expect("the server starts");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let store = switchyard::store::connect(&database_url, Default::default())
        .await
        .expect("store");
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: admin_client(&store).await,
    };
    let settings = RunnerSettings {
        lease: Duration::from_secs(1),
        poll: Duration::from_millis(20),
        ready_timeout: Duration::from_secs(20),
    };
    let mut runner =
        switchyard::operations::spawn(store.clone(), Drivers::default(), settings.clone());

    for v in 1..=34 {
        let (status, body) = api
            .post(
                &format!("/api/v1/models/{MODEL}/versions"),
                json!({ "version": v.to_string(), "config": { "v": v } }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) =
        api.post("/api/v1/clusters", json!({ "name": CLUSTER, "environment": "development", "driver": "oip+haproxy", "config": config })).await;
    assert_eq!(status, 201, "{body}");
    let first = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:1", "reason": "first deploy" }))
        .await;
    assert_eq!(api.finished(first).await["state"], "succeeded");

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let workers = load_generator(
        format!("http://127.0.0.1:{front_port}/v2/models/{MODEL}/infer"),
        300,
        6,
        stop.clone(),
        sent.clone(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut ops = Vec::new();
    // The 20 switches and 10 rollbacks, whose switch time is measured.
    let mut timed = Vec::new();
    let mut version = 1;
    for i in 1..=20 {
        version += 1;
        let id = api.operate(json!({ "kind": "blue_green", "full_id": format!("echo:{version}"), "reason": "switch" })).await;
        let op = api.finished(id).await;
        assert_eq!(op["state"], "succeeded", "switch {i}: {op}");
        timed.push(op.clone());
        ops.push(op);
        tokio::time::sleep(Duration::from_millis(100)).await;
        if i % 2 == 0 {
            let op = api.finished(api.rollback().await).await;
            assert_eq!(op["state"], "succeeded", "rollback after switch {i}: {op}");
            timed.push(op.clone());
            ops.push(op);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let rolling = api.operate(json!({ "kind": "rolling", "full_id": "echo:22", "steps": [10, 50, 100], "reason": "canary" })).await;
    let op = api.finished(rolling).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    ops.push(op);
    let hot = api
        .operate(json!({ "kind": "hot_reload", "full_id": "echo:23", "reason": "reload" }))
        .await;
    let op = api.finished(hot).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    ops.push(op);

    // Two operations at once: exactly one is accepted, the other names it.
    let body = |v: &str| json!({ "kind": "blue_green", "full_id": v, "reason": "race" });
    let path = format!("/api/v1/clusters/{CLUSTER}/operations");
    let (a, b) = tokio::join!(
        api.post(&path, body("echo:21")),
        api.post(&path, body("echo:20"))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    let (won, lost) = if a.0 == 202 { (a.1, b.1) } else { (b.1, a.1) };
    let won_id = won["operation_id"].as_i64().expect("id");
    assert!(
        lost["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("operation {won_id}")),
        "{lost}"
    );
    let op = api.finished(won_id).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    ops.push(op);

    // Crash safety with the real binary: `switchyard serve` (a child process,
    // on the same database) runs the operations while the in-process runner
    // is stopped, and is killed with SIGKILL in the middle of a step: while
    // waiting for HAProxy to report the new slot UP, and in the switch itself,
    // once before HAProxy got the `set map` and once after HAProxy switched
    // but before the server heard back (router and database then disagree).
    // The relay holds the command so the kill point is exact. A restarted
    // binary resumes the operation once the lease expires.
    runner.abort();
    let log = dir.join("serve.log");
    let mut crash_version = 25;
    let mut interrupted_steps = Vec::new();
    for (hold, step) in [
        (Hold::Before("show servers state"), 1),
        (Hold::Before("set map"), 3),
        (Hold::After("set map"), 3),
    ] {
        crash_version += 1;
        let id = api.operate(body(&format!("echo:{crash_version}"))).await;
        relay.arm(hold);
        let served = Served::start(&database_url, &log);
        tokio::time::timeout(Duration::from_secs(60), relay.held.notified())
            .await
            .expect("the server reached the held command");
        let op = api.get(&format!("/api/v1/operations/{id}")).await;
        assert_eq!(op["steps"][step]["state"], "running", "{hold:?}: {op}");
        served.kill9();
        relay.arm(Hold::Nothing);
        let haproxy = OipHaproxy::new(direct.clone())
            .expect("driver")
            .observe()
            .await
            .expect("HAProxy answers")
            .weights;
        let stored = store
            .get_cluster(CLUSTER)
            .await
            .expect("read")
            .expect("cluster")
            .state
            .weights;
        if matches!(hold, Hold::After(_)) {
            assert_ne!(
                haproxy, stored,
                "killed after HAProxy switched, before the database knew"
            );
        } else {
            assert_eq!(haproxy, stored, "killed before HAProxy was told anything");
        }
        let served = Served::start(&database_url, &log);
        let op = api.finished(id).await;
        served.kill9();
        assert_eq!(op["state"], "succeeded", "after a kill -9 ({hold:?}): {op}");
        let cluster = store
            .get_cluster(CLUSTER)
            .await
            .expect("read")
            .expect("cluster");
        let observed = OipHaproxy::new(direct.clone())
            .expect("driver")
            .observe()
            .await
            .expect("observed");
        assert_eq!(
            observed.weights, cluster.state.weights,
            "HAProxy and the database agree after a kill -9 ({hold:?})"
        );
        let slot = cluster
            .state
            .weights
            .sole()
            .expect("all traffic on one slot");
        let map = std::fs::read_to_string(dir.join("route.map")).expect("map file");
        assert_eq!(
            map.trim(),
            format!("active be_{slot}"),
            "the map file agrees too"
        );
        assert_eq!(
            cluster.state.sole_version().map(ToString::to_string),
            Some(format!("echo:{crash_version}"))
        );
        eprintln!("kill -9 in step {step} ({hold:?}): resumed by the restarted binary; HAProxy, its map file and the database agree");
        interrupted_steps.push(step as i64);
        ops.push(op);
    }
    let events = api
        .get("/api/v1/audit?action=operation.interrupted&limit=100")
        .await;
    let steps: Vec<i64> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .rev()
        .filter_map(|e| e["details"]["step"].as_i64())
        .collect();
    assert_eq!(
        steps, interrupted_steps,
        "each interruption is in the ledger, naming its step"
    );
    let events = api
        .get("/api/v1/audit?action=operation.resumed&limit=100")
        .await;
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(3),
        "each resumption is in the ledger"
    );
    runner = switchyard::operations::spawn(store.clone(), Drivers::default(), settings.clone());

    // The error-rate gate: echo:34 answers its smoke request but fails real
    // traffic; the first rolling step sends it 10% of the load, the gate
    // reads HAProxy's counters (`show stat`) and rolls back (trigger health_gate).
    let gated = api.operate(json!({ "kind": "rolling", "full_id": "echo:34", "steps": [10, 50, 100], "reason": "canary" })).await;
    let op = api.finished(gated).await;
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("health_gate")),
        "{op}"
    );
    let gate = op["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["state"] == "failed"))
        .cloned()
        .expect("a failed step");
    assert_eq!(gate["action"], "gate", "{op}");
    eprintln!("health gate on real traffic: {}", gate["note"]);
    assert!(
        gate["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("error rate") && n.contains("exceeds")),
        "{op}"
    );
    let gated_slot = op["steps"][0]["slot"]
        .as_str()
        .expect("the slot loaded")
        .to_owned();
    let gate_window = (micros(&op["created_at"]), micros(&op["finished_at"]));
    ops.push(op);

    // Broken versions: the operation aborts and traffic stays where it was.
    for (v, failing_step) in [("echo:24", 0), ("echo:25", 2)] {
        let before = api.get(&format!("/api/v1/clusters/{CLUSTER}")).await["slots"].clone();
        let op = api.finished(api.operate(body(v)).await).await;
        assert_eq!(op["state"], "failed", "{v}: {op}");
        assert_eq!(op["steps"][failing_step]["state"], "failed", "{v}: {op}");
        let after = api.get(&format!("/api/v1/clusters/{CLUSTER}")).await["slots"].clone();
        let weights = |s: &Value| {
            s.as_array()
                .map(|a| a.iter().map(|x| x["weight"].clone()).collect::<Vec<_>>())
        };
        assert_eq!(weights(&before), weights(&after), "{v}: traffic unmoved");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("load generator");
    }
    runner.abort();

    let sent = sent.lock().await.clone();
    // Only echo:34 may fail: its requests while the error-rate gate watched it
    // (answered with an error by its slot, or not answered at all: after a
    // server error HAProxy may close the client's keep-alive connection).
    let by_gated = |s: &Sent| {
        (s.slot == gated_slot || s.slot.is_empty())
            && gate_window.0 <= s.start.micros()
            && s.start.micros() <= gate_window.1
    };
    let failed: Vec<&Sent> = sent.iter().filter(|s| !s.ok && !by_gated(s)).collect();
    let gated_failures = sent.iter().filter(|s| !s.ok && by_gated(s)).count();
    eprintln!("{} requests through HAProxy, {} failed, and {gated_failures} answered with errors by echo:34 before the gate rolled it back", sent.len(), failed.len());
    assert!(
        failed.is_empty(),
        "failed requests: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert!(gated_failures > 0, "the gate judged real failed requests");
    // A request echo:34 answered with an error is reported as its; one never
    // answered names no version and has no record.
    let sent: Vec<Sent> = sent
        .into_iter()
        .filter(|s| s.ok || !s.slot.is_empty())
        .map(|mut s| {
            if !s.ok {
                s.version = "34".to_owned();
            }
            s
        })
        .collect();
    assert!(sent.len() > 1000, "the load generator ran: {}", sent.len());

    // Every request is reported, as a model server or router would.
    let records: Vec<Value> = sent
        .iter()
        .map(|s| {
            json!({ "request_id": s.id, "at": s.start, "cluster": CLUSTER, "slot": s.slot,
                          "full_id": format!("{MODEL}:{}", s.version), "latency_ms": s.latency_ms,
                          "outcome": if s.ok { "ok" } else { "error" } })
        })
        .collect();
    for chunk in records.chunks(5000) {
        let (status, v) = api
            .post("/api/v1/request-records", Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["accepted"].as_u64(), Some(chunk.len() as u64));
    }

    // Switch windows: from a Shift step's start record to its done record.
    let windows: Vec<(i64, i64)> = ops
        .iter()
        .flat_map(|op| op["steps"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["action"] == "shift")
        .map(|s| (micros(&s["started_at"]), micros(&s["finished_at"])))
        .collect();
    // Every answer agrees with what serving?at= says for its start instant
    // (or, inside a switch window, with the state on either side of it).
    let mut cache = Vec::new();
    let mut in_window = 0;
    let mut by_version: HashMap<String, u64> = HashMap::new();
    for s in sent.iter().filter(|s| s.ok) {
        let t = s.start.micros();
        let mut allowed = serving_versions(&api, &mut cache, t).await;
        if let Some((a, b)) = windows.iter().find(|(a, b)| *a <= t && t <= *b) {
            in_window += 1;
            allowed.extend(serving_versions(&api, &mut cache, *a - 1).await);
            allowed.extend(serving_versions(&api, &mut cache, *b + 1).await);
        }
        assert!(
            allowed.contains(&s.version),
            "request {} at {} answered by {} but serving?at= says {allowed:?}",
            s.id,
            s.start,
            s.version
        );
        *by_version.entry(s.version.clone()).or_default() += 1;
    }
    eprintln!("every answer matches serving?at= ({in_window} requests started inside a switch window); answers per version: {by_version:?}");

    // The switch itself: command → HAProxy acknowledged, and command → the
    // last request that still went to the old slot.
    let mut acks = Vec::new();
    let mut to_all = Vec::new();
    let shifts: Vec<Value> = timed
        .iter()
        .filter_map(|op| {
            op["steps"]
                .as_array()
                .and_then(|s| s.iter().rfind(|s| s["action"] == "shift"))
                .cloned()
        })
        .collect();
    for (i, shift) in shifts.iter().enumerate() {
        let note = shift["note"].as_str().unwrap_or("");
        if let Some(ms) = note.split_whitespace().find_map(|w| w.parse::<f64>().ok()) {
            acks.push(ms);
        }
        // Until the next switch: the last request that still started on the old slot.
        let start = micros(&shift["started_at"]);
        // (The rolling update follows the last of them.)
        let until = shifts.get(i + 1).map_or_else(
            || micros(&ops[timed.len()]["created_at"]),
            |n| micros(&n["started_at"]),
        );
        let new_slot = if shift["weights"]["blue"] == 100 {
            "blue"
        } else {
            "green"
        };
        let last_old = sent
            .iter()
            .filter(|s| s.start.micros() >= start && s.start.micros() < until && s.slot != new_slot)
            .map(|s| s.start.micros())
            .max();
        to_all.push(last_old.map_or(0.0, |t| (t - start) as f64 / 1000.0));
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (ack_median, ack_max) = stats(&mut acks);
    let (all_median, all_max) = stats(&mut to_all);
    eprintln!(
        "switch, {} times: command → HAProxy acknowledged: median {ack_median:.2} ms, max {ack_max:.2} ms; \
         command → last request started on the old slot: median {all_median:.2} ms, max {all_max:.2} ms",
        acks.len()
    );
    let verify = api.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP client that sends an admin's API token on every request.
async fn admin_client(store: &DynStore) -> reqwest::Client {
    let hash = password::hash("peers-test-password").expect("hashed");
    store
        .create_user("peers-admin", Role::Admin, &hash, "test", Timestamp::now())
        .await
        .expect("user created");
    let token = secret::generate(secret::TOKEN_PREFIX);
    store
        .create_token(
            "peers-admin",
            "peers-admin",
            &secret::hash(&token),
            None,
            "test",
            Timestamp::now(),
        )
        .await
        .expect("token created");
    let mut headers = reqwest::header::HeaderMap::new();
    let value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Where the relay holds the driver's admin-socket traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Nothing,
    /// Hold the first command containing this, without passing it on.
    Before(&'static str),
    /// Pass the first command containing this to HAProxy, then hold its answer.
    After(&'static str),
}

/// A relay between the driver and HAProxy's admin socket, transparent
/// unless armed; armed, it holds one command (and signals `held`) so the
/// server can be killed at a known point.
struct Relay {
    hold: Arc<std::sync::Mutex<Hold>>,
    held: Arc<tokio::sync::Notify>,
}

impl Relay {
    fn start(listen: PathBuf, upstream: PathBuf) -> Relay {
        let _ = std::fs::remove_file(&listen);
        let listener = UnixListener::bind(&listen).expect("relay socket");
        let relay = Relay {
            hold: Arc::new(std::sync::Mutex::new(Hold::Nothing)),
            held: Arc::new(tokio::sync::Notify::new()),
        };
        let (hold, held) = (relay.hold.clone(), relay.held.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (hold, held, upstream) = (hold.clone(), held.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = Relay::pass(conn, &upstream, &hold, &held).await;
                });
            }
        });
        relay
    }

    fn arm(&self, hold: Hold) {
        *self.hold.lock().expect("relay lock") = hold;
    }

    /// Takes the hold if `command` matches it.
    fn take(hold: &std::sync::Mutex<Hold>, command: &str) -> Hold {
        let mut h = hold.lock().expect("relay lock");
        match *h {
            Hold::Before(p) | Hold::After(p) if command.contains(p) => {
                std::mem::replace(&mut *h, Hold::Nothing)
            }
            _ => Hold::Nothing,
        }
    }

    async fn pass(
        mut conn: UnixStream,
        upstream: &Path,
        hold: &std::sync::Mutex<Hold>,
        held: &tokio::sync::Notify,
    ) -> std::io::Result<()> {
        let mut command = Vec::new();
        let mut buf = [0_u8; 4096];
        while !command.contains(&b'\n') {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            command.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&command).into_owned();
        let hold = Relay::take(hold, &text);
        if matches!(hold, Hold::Before(_)) {
            held.notify_one();
            // Never passed on: wait until the (killed) server's end closes.
            let _ = conn.read(&mut buf).await;
            return Ok(());
        }
        let mut up = UnixStream::connect(upstream).await?;
        up.write_all(&command).await?;
        let mut answer = Vec::new();
        up.read_to_end(&mut answer).await?;
        if matches!(hold, Hold::After(_)) {
            held.notify_one();
            let _ = conn.read(&mut buf).await;
            return Ok(());
        }
        conn.write_all(&answer).await?;
        conn.shutdown().await
    }
}

/// The real `switchyard serve` binary as a child process (SIGKILLed when dropped).
struct Served(std::process::Child);

impl Served {
    fn start(database_url: &str, log: &Path) -> Served {
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
            // Long enough that a renewal is never late on a loaded 2-core
            // machine (at 1 s, a load average of 10 lost leases mid-step and
            // added interruptions the test did not cause); short enough that
            // the restarted binary takes over a killed one's lease quickly.
            .env("SWITCHYARD_OPERATION_LEASE_MS", "3000")
            .env("SWITCHYARD_OPERATION_POLL_MS", "20")
            .env_remove("LOG_FORMAT")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("switchyard serve starts");
        Served(child)
    }

    /// kill -9, and reap it.
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

/// Two MLServer processes (blue, green) serving the versions in `artifacts`,
/// HAProxy in front, and the relay the driver talks through.
struct Peers {
    config: Value,
    /// The driver's config with the real admin socket (not the relay).
    direct: OipHaproxyConfig,
    relay: Relay,
    front_port: u16,
    /// HAProxy's built-in Prometheus exporter (`/metrics`).
    metrics_port: u16,
    _processes: Vec<Child>,
}

impl Peers {
    /// Model servers whose repository folders Switchyard copies versions
    /// into (`deploy: "copy"`), from `dir/artifacts`.
    async fn start(mlserver: &Path, haproxy: &Path, dir: &Path) -> Peers {
        Peers::start_deploying(mlserver, haproxy, dir, false).await
    }

    /// With `from_artifact_uri`, the model servers read each version from its
    /// `artifact_uri` through Switchyard's loader (`deploy: "artifact_uri"`):
    /// the config has no `artifacts` and no repository folders.
    async fn start_deploying(
        mlserver: &Path,
        haproxy: &Path,
        dir: &Path,
        from_artifact_uri: bool,
    ) -> Peers {
        let (blue_port, green_port, front_port) = (free_port(), free_port(), free_port());
        let (blue_loader, green_loader) = if from_artifact_uri {
            (Some(free_port()), Some(free_port()))
        } else {
            (None, None)
        };
        let slot = |port: u16, loader: Option<u16>, name: &str| match loader {
            Some(l) => {
                json!({ "url": format!("http://127.0.0.1:{port}"), "deploy": "artifact_uri", "loader": format!("http://127.0.0.1:{l}") })
            }
            None => {
                json!({ "url": format!("http://127.0.0.1:{port}"), "repository": dir.join(name) })
            }
        };
        let mut config = json!({
            "model": MODEL,
            "blue": slot(blue_port, blue_loader, "blue"),
            "green": slot(green_port, green_loader, "green"),
            "haproxy": { "socket": dir.join("relay.sock"), "route_map": dir.join("route.map"), "weights_file": dir.join("weights") },
        });
        if !from_artifact_uri {
            config["artifacts"] = json!(dir.join("artifacts"));
        }
        let (blue_dir, green_dir) = (dir.join("blue"), dir.join("green"));
        let (blue, green) = tokio::join!(
            start_mlserver(mlserver, &blue_dir, blue_port, blue_loader),
            start_mlserver(mlserver, &green_dir, green_port, green_loader)
        );
        let mut direct = OipHaproxyConfig::parse(&config).expect("a valid driver config");
        direct.haproxy.socket = dir.join("haproxy.sock").display().to_string();
        let relay = Relay::start(
            dir.join("relay.sock"),
            PathBuf::from(&direct.haproxy.socket),
        );
        std::fs::write(dir.join("route.map"), "active be_blue\n").expect("map");
        let metrics_port = free_port();
        // The generated contract, plus HAProxy's Prometheus exporter for the analysis test.
        let cfg = format!(
            "{}\nfrontend stats\n    bind 127.0.0.1:{metrics_port}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n",
            haproxy_config(&direct, &format!("127.0.0.1:{front_port}"))
        );
        std::fs::write(dir.join("haproxy.cfg"), cfg).expect("cfg");
        let proxy = Command::new(haproxy)
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log")).expect("log"))
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        for _ in 0..100 {
            if dir.join("haproxy.sock").exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Peers {
            config,
            direct,
            relay,
            front_port,
            metrics_port,
            _processes: vec![blue, green, proxy],
        }
    }

    async fn router(&self) -> switchyard_domain::clusters::Weights {
        OipHaproxy::new(self.direct.clone())
            .expect("driver")
            .observe()
            .await
            .expect("HAProxy answers")
            .weights
    }
}

/// A fresh database for one run: a SQLite file in `dir`, or a new
/// PostgreSQL database on `SWITCHYARD_TEST_PG` (dropped by `drop_database`).
async fn fresh_database(postgres: bool, dir: &Path) -> String {
    if !postgres {
        return format!("sqlite://{}", dir.join("switchyard.db").display());
    }
    use sqlx::{Connection, Executor};
    let admin_url = pg_admin_url();
    let name = format!("sy_peers_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect(
        "PostgreSQL is reachable at SWITCHYARD_TEST_PG (start it, or point the variable at one)",
    );
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database name");
    format!("{base}/{name}")
}

fn pg_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn drop_database(url: &str) {
    use sqlx::{Connection, Executor};
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut admin) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

/// What `GET /api/v1/serving?at=` names for the cluster at `t` (µs): the
/// versions with traffic, plus both sides when it reports a transition, and
/// whether it does; each answer's interval [since, next_change) is cached.
async fn named_at(
    api: &Api,
    cache: &mut Vec<(i64, i64, Vec<String>, bool)>,
    t: i64,
) -> (Vec<String>, bool) {
    if let Some(c) = cache.iter().find(|(from, to, _, _)| *from <= t && t < *to) {
        return (c.2.clone(), c.3);
    }
    let at = Timestamp::from_micros(t).to_rfc3339();
    let s = api
        .get(&format!(
            "/api/v1/serving?at={}&environment=development",
            at.replace('+', "%2B")
        ))
        .await;
    let c = s["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["cluster"] == CLUSTER))
        .cloned()
        .expect("the cluster at T");
    let short = |f: &str| f.trim_start_matches("echo:").to_owned();
    let mut versions: Vec<String> = c["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter(|s| s["weight"].as_u64() > Some(0))
        .filter_map(|s| s["full_id"].as_str().map(short))
        .collect();
    let transition = !c["transition"].is_null();
    if transition {
        for v in c["transition"]["versions"].as_array().expect("versions") {
            let v = short(v.as_str().expect("a full id"));
            if !versions.contains(&v) {
                versions.push(v);
            }
        }
    }
    let to = if c["next_change"].is_null() {
        i64::MAX
    } else {
        micros(&c["next_change"])
    };
    cache.push((micros(&c["since"]), to, versions.clone(), transition));
    (versions, transition)
}

/// Issue 20: `switchyard serve` is killed with SIGKILL after HAProxy accepted
/// `set map … active be_green` but before the server recorded the step; the
/// new version answers every request from then on. A restarted server
/// resumes the operation once the lease expires, asks HAProxy, and records
/// `operation.reconciled` with a transition interval. Serving at T, for every
/// request that started inside the gap, names the version that answered (and
/// reports the transition with both) — never only the old one. On SQLite,
/// then on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_between_the_switch_and_its_record_never_leaves_serving_at_t_naming_only_the_old_version(
) {
    let Some((mlserver, haproxy)) = peers() else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "MLServer or HAProxy missing: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: MLServer or HAProxy missing (scripts/peers.sh installs them)");
        return;
    };
    switchyard::telemetry::init_for_test();
    for postgres in [false, true] {
        crash_between_switch_and_record(&mlserver, &haproxy, postgres).await;
    }
}

async fn crash_between_switch_and_record(mlserver: &Path, haproxy: &Path, postgres: bool) {
    let db = if postgres { "PostgreSQL" } else { "SQLite" };
    let dir = std::env::temp_dir().join(format!("sy-crash-{:08x}", rand::random::<u32>()));
    for v in 1..=2 {
        write_version(&dir.join("artifacts"), v, None);
    }
    let peers = Peers::start(mlserver, haproxy, &dir).await;
    let database_url = fresh_database(postgres, &dir).await;
    let app = Application::build(Config {
        database_url: database_url.clone(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
        checkpoint_file: None,
    })
    .await
    .expect("the server starts");
    let port = app.port();
    let server = tokio::spawn(app.run_until_stopped());
    let store = switchyard::store::connect(&database_url, Default::default())
        .await
        .expect("store");
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: admin_client(&store).await,
    };
    for v in 1..=2 {
        let (status, body) = api
            .post(
                &format!("/api/v1/models/{MODEL}/versions"),
                json!({ "version": v.to_string(), "config": { "v": v } }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = api.post("/api/v1/clusters", json!({ "name": CLUSTER, "environment": "development", "driver": "oip+haproxy", "config": peers.config })).await;
    assert_eq!(status, 201, "{body}");
    let log = dir.join("serve.log");
    // The first deploy (echo:1 to green) by the real binary.
    let served = Served::start(&database_url, &log);
    let first = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:1", "reason": "first deploy" }))
        .await;
    assert_eq!(api.finished(first).await["state"], "succeeded");
    served.kill9();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let workers = load_generator(
        format!(
            "http://127.0.0.1:{}/v2/models/{MODEL}/infer",
            peers.front_port
        ),
        200,
        4,
        stop.clone(),
        sent.clone(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // echo:2 into blue, then `set map … active be_blue`: HAProxy switches,
    // the relay holds its answer, and the server is killed right there.
    let id = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:2", "reason": "crash test" }))
        .await;
    peers.relay.arm(Hold::After("set map"));
    let served = Served::start(&database_url, &log);
    tokio::time::timeout(Duration::from_secs(60), peers.relay.held.notified())
        .await
        .expect("the server reached the held command");
    served.kill9();
    peers.relay.arm(Hold::Nothing);
    let op = api.get(&format!("/api/v1/operations/{id}")).await;
    let shift = op["steps"]
        .as_array()
        .and_then(|s| s.iter().position(|s| s["action"] == "shift"))
        .expect("a switch step");
    assert_eq!(op["steps"][shift]["state"], "running", "{db}: {op}");
    assert!(
        !op["intent"].is_null(),
        "{db}: the intent was written before the command: {op}"
    );
    let router = peers.router().await;
    let stored = store
        .get_cluster(CLUSTER)
        .await
        .expect("read")
        .expect("cluster")
        .state;
    assert_ne!(
        router, stored.weights,
        "{db}: HAProxy switched, the database does not know"
    );
    // The gap: the new version answers while the record says the old one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let served = Served::start(&database_url, &log);
    let op = api.finished(id).await;
    served.kill9();
    assert_eq!(op["state"], "succeeded", "{db}: {op}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("load generator");
    }

    let events = api
        .get("/api/v1/audit?action=operation.reconciled&limit=10")
        .await;
    let events = events["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{db}: one reconciliation: {events:?}");
    let e = &events[0];
    assert_eq!(e["details"]["finding"], "switched", "{db}: {e}");
    let t1 = micros(&op["steps"][shift]["started_at"]);
    let t2 = micros(&e["at"]);
    assert_eq!(micros(&e["details"]["intent"]["at"]), t1, "{db}: {e}");
    assert_eq!(
        micros(&e["details"]["transition"]["until"]),
        t2,
        "{db}: {e}"
    );

    let sent = sent.lock().await.clone();
    let failed: Vec<&Sent> = sent.iter().filter(|s| !s.ok).collect();
    assert!(
        failed.is_empty(),
        "{db}: failed requests: {:?}",
        &failed[..failed.len().min(5)]
    );
    let mut cache = Vec::new();
    let (mut in_gap, mut new_in_gap) = (0, 0);
    for s in sent
        .iter()
        .filter(|s| t1 <= s.start.micros() && s.start.micros() < t2)
    {
        let (named, transition) = named_at(&api, &mut cache, s.start.micros()).await;
        assert!(
            named.contains(&s.version),
            "{db}: request {} at {} answered by echo:{} but serving?at= names {named:?}",
            s.id,
            s.start,
            s.version
        );
        assert!(
            transition && named.contains(&"1".to_owned()) && named.contains(&"2".to_owned()),
            "{db}: at {} serving?at= names {named:?} without the transition between both",
            s.start
        );
        in_gap += 1;
        if s.version == "2" {
            new_in_gap += 1;
        }
    }
    // Without reconciliation these would be named as echo:1's.
    assert!(
        new_in_gap > 50,
        "{db}: the gap had requests answered by the new version: {new_in_gap} of {in_gap}"
    );
    // Once the restarted server recorded what HAProxy does, echo:2 alone.
    let late: Vec<&Sent> = sent.iter().filter(|s| s.start.micros() >= t2).collect();
    for s in &late {
        let (named, transition) = named_at(&api, &mut cache, s.start.micros()).await;
        assert_eq!(
            (named, transition),
            (vec!["2".to_owned()], false),
            "{db}: at {}",
            s.start
        );
        assert_eq!(s.version, "2", "{db}: {s:?}");
    }
    eprintln!(
        "{db}: kill -9 after HAProxy switched; reconciled {:.0} ms after the command; {in_gap} requests inside the gap ({new_in_gap} answered by echo:2), all named with the transition; {} after it named echo:2",
        (t2 - t1) as f64 / 1000.0,
        late.len()
    );
    let verify = api.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{db}: {verify}");
    server.abort();
    drop(store);
    drop(peers);
    if postgres {
        drop_database(&database_url).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `switchyard cluster ARGS` against the server at `url` with `token`:
/// (exit code, stdout, stderr).
async fn cli_cluster(url: &str, token: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("cluster")
        .args(args)
        .env("SWITCHYARD_URL", url)
        .env("SWITCHYARD_TOKEN", token)
        .env_remove("LOG_FORMAT")
        .output()
        .await
        .expect("the switchyard binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// HAProxy started from `config`, its admin socket on `admin_port` (TCP) answering.
async fn start_haproxy(haproxy: &Path, config: &Path, admin_port: u16, log: &Path) -> Child {
    let child = Command::new(haproxy)
        .arg("-f")
        .arg(config)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy starts");
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", admin_port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "HAProxy's admin socket did not open on port {admin_port}; see {}",
        log.display()
    );
}

/// The onboarding path of docs/clusters.md, with the real peers: HAProxy runs
/// the configuration `switchyard cluster haproxy-config` printed, its Runtime
/// API on TCP; the cluster is added with the CLI, `cluster test` passes, a
/// switch runs over the TCP admin socket, and a hand-broken configuration
/// (a renamed backend, a map at another path, servers without health checks)
/// is named by `cluster test`, check by check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_connected_from_the_generated_haproxy_config_over_tcp_passes_cluster_test_and_a_broken_contract_is_named(
) {
    let Some((mlserver, haproxy)) = peers() else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "MLServer or HAProxy missing: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: MLServer or HAProxy missing (scripts/peers.sh installs them)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("sy-onboard-{:08x}", rand::random::<u32>()));
    let artifacts = dir.join("artifacts");
    for v in 1..=2 {
        write_version(&artifacts, v, None);
    }
    let (blue_port, green_port) = (free_port(), free_port());
    let (blue_dir, green_dir) = (dir.join("blue"), dir.join("green"));
    let (_blue, _green) = tokio::join!(
        start_mlserver(&mlserver, &blue_dir, blue_port, None),
        start_mlserver(&mlserver, &green_dir, green_port, None)
    );
    // Picked once the model servers hold theirs (free_port's ports are only free until taken).
    let (front_port, admin_port) = (free_port(), free_port());
    let config = json!({
        "model": MODEL,
        "blue": { "url": format!("http://127.0.0.1:{blue_port}"), "repository": blue_dir },
        "green": { "url": format!("http://127.0.0.1:{green_port}"), "repository": green_dir },
        "artifacts": artifacts,
        "haproxy": { "socket": format!("tcp://127.0.0.1:{admin_port}"), "route_map": dir.join("route.map"), "weights_file": dir.join("weights") },
    });
    std::fs::write(dir.join("cluster.json"), config.to_string()).expect("config");

    let database_url = format!("sqlite://{}", dir.join("switchyard.db").display());
    let app = Application::build(Config {
        database_url: database_url.clone(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
        checkpoint_file: None,
    })
    .await
    .expect("the server starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let store = switchyard::store::connect(&database_url, Default::default())
        .await
        .expect("store");
    let token = admin_token(&store).await;
    let api = Api {
        base: url.clone(),
        http: bearer_client(&token),
    };
    for v in 1..=2 {
        let (status, body) = api
            .post(
                &format!("/api/v1/models/{MODEL}/versions"),
                json!({ "version": v.to_string(), "config": { "v": v } }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    let cluster_json = dir.join("cluster.json").display().to_string();
    let (code, out, err) = cli_cluster(
        &url,
        &token,
        &[
            "add",
            "onboard",
            "--environment",
            "development",
            "--driver",
            "oip+haproxy",
            "--config",
            &cluster_json,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let front = format!("127.0.0.1:{front_port}");
    let (code, generated, err) = cli_cluster(
        &url,
        &token,
        &["haproxy-config", "onboard", "--bind", &front],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        generated.contains(&format!(
            "stats socket ipv4@127.0.0.1:{admin_port} level admin"
        )),
        "{generated}"
    );
    // As the generated configuration's header says: the map file first.
    std::fs::write(dir.join("route.map"), "active be_blue\n").expect("map");
    std::fs::write(dir.join("haproxy.cfg"), &generated).expect("cfg");
    let mut proxy = start_haproxy(
        &haproxy,
        &dir.join("haproxy.cfg"),
        admin_port,
        &dir.join("haproxy.log"),
    )
    .await;

    let (code, out, err) = cli_cluster(&url, &token, &["test", "onboard"]).await;
    assert_eq!(
        code,
        Some(0),
        "cluster test of the generated configuration:\n{out}{err}"
    );
    assert!(!out.contains("FAILED") && out.contains("all "), "{out}");

    // A switch over the TCP admin socket; then the slot checks see it served.
    let runner = switchyard::operations::spawn(
        store.clone(),
        Drivers::default(),
        RunnerSettings {
            lease: Duration::from_secs(1),
            poll: Duration::from_millis(20),
            ready_timeout: Duration::from_secs(20),
        },
    );
    let (status, body) = api
        .post(
            "/api/v1/clusters/onboard/operations",
            json!({ "kind": "blue_green", "full_id": "echo:1", "reason": "first deploy" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["operation_id"].as_i64().expect("an operation id");
    let op = api.finished(id).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    runner.abort();
    let answer: Value = reqwest::Client::new()
        .post(format!("http://{front}/v2/models/{MODEL}/infer"))
        .json(&json!({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]}))
        .send()
        .await
        .expect("HAProxy answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["model_version"], "1", "{answer}");
    let (code, out, err) = cli_cluster(&url, &token, &["test", "onboard"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("echo:1 ready, HAProxy reports green UP"),
        "{out}"
    );

    // A hand-edited configuration that breaks the contract three ways.
    // Stopped and reaped before the next one starts: HAProxy binds with SO_REUSEPORT,
    // so two alive at once would share the admin port.
    proxy.kill().await.expect("HAProxy stopped");
    let broken = generated
        .replace("backend be_green", "backend be_grn")
        .replace(
            &format!("map({},be_blue)", dir.join("route.map").display()),
            &format!("map({},be_blue)", dir.join("other.map").display()),
        )
        .lines()
        .map(|l| {
            if l.contains("weight") && l.trim_start().starts_with("server ") {
                // be_split's servers (the only ones with a weight) lose their checks.
                l.replace(" check inter 100ms fall 2 rise 1", "")
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect::<String>();
    assert_ne!(broken, generated);
    std::fs::write(dir.join("other.map"), "active be_green\n").expect("map");
    std::fs::write(dir.join("broken.cfg"), &broken).expect("cfg");
    let _proxy = start_haproxy(
        &haproxy,
        &dir.join("broken.cfg"),
        admin_port,
        &dir.join("broken.log"),
    )
    .await;
    let (code, out, err) = cli_cluster(&url, &token, &["test", "onboard"]).await;
    eprintln!("cluster test of the broken configuration:\n{out}{err}");
    assert_eq!(code, Some(1), "{out}{err}");
    for named in [
        "FAILED HAProxy backend be_green: HAProxy has no backend be_green",
        &format!(
            "FAILED route map: HAProxy has not loaded a map {}",
            dir.join("route.map").display()
        ),
        "FAILED HAProxy backend be_split: server blue has no health check",
        "FAILED slot green: echo:1 ready; HAProxy cannot say whether green is UP",
        "ok     HAProxy backend be_blue",
        "ok     HAProxy Runtime API",
        "ok     HAProxy admin level",
    ] {
        assert!(out.contains(named), "{named:?} not in:\n{out}");
    }
    assert!(out.contains("fix: add `backend be_green`"), "{out}");
    assert!(err.contains("4 of"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An admin user and an API token for them (the token's text).
async fn admin_token(store: &DynStore) -> String {
    let hash = password::hash("onboard-password").expect("hashed");
    store
        .create_user(
            "onboard-admin",
            Role::Admin,
            &hash,
            "test",
            Timestamp::now(),
        )
        .await
        .expect("user created");
    let token = secret::generate(secret::TOKEN_PREFIX);
    store
        .create_token(
            "onboard-admin",
            "onboard-admin",
            &secret::hash(&token),
            None,
            "test",
            Timestamp::now(),
        )
        .await
        .expect("token created");
    token
}

fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// The analysis tests' set-up on the real peers: MLServer + HAProxy serving
/// versions `echo:1..=n` (each with its fault, if any), Prometheus scraping
/// HAProxy's exporter, Switchyard in-process (for the API) and as a separate
/// `switchyard serve` process that runs the operations (so a test can kill
/// it), the versions registered and the cluster added with the config `edit`
/// makes of the peers' own. `None` (the test skips) when a peer is missing.
struct AnalysisRig {
    dir: PathBuf,
    peers: Peers,
    prometheus: prometheus::Prometheus,
    database_url: String,
    log: PathBuf,
    api: Api,
    served: Served,
}

impl AnalysisRig {
    async fn start(
        name: &str,
        faults: &[Option<&str>],
        edit: impl FnOnce(Value) -> Value,
    ) -> Option<AnalysisRig> {
        let (Some((mlserver, haproxy)), Some(prom)) = (peers(), prometheus::prometheus_binary())
        else {
            assert!(
                std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
                "MLServer, HAProxy or Prometheus missing: run scripts/peers.sh"
            );
            eprintln!(
                "SKIPPED: MLServer, HAProxy or Prometheus missing (scripts/peers.sh installs them)"
            );
            return None;
        };
        switchyard::telemetry::init_for_test();
        let dir = std::env::temp_dir().join(format!("{name}-{:08x}", rand::random::<u32>()));
        for (i, fault) in faults.iter().enumerate() {
            write_version(&dir.join("artifacts"), i as u32 + 1, *fault);
        }
        let peers = Peers::start(&mlserver, &haproxy, &dir).await;
        let metrics = format!("127.0.0.1:{}", peers.metrics_port);
        let prometheus = tokio::task::block_in_place(|| {
            prometheus::Prometheus::start(&prom, &[metrics.as_str()], true)
        });
        let database_url = format!("sqlite://{}", dir.join("switchyard.db").display());
        let app = Application::build(Config {
            database_url: database_url.clone(),
            addr: "127.0.0.1:0".parse().expect("address"),
            log_json: false,
            deprecation_days: 30,
            metrics_token: None,
            webhook_allow_private: true,
            secrets_key: None,
            checkpoint_file: None,
        })
        .await
        .expect("the server starts");
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        let store = switchyard::store::connect(&database_url, Default::default())
            .await
            .expect("store");
        let api = Api {
            base: format!("http://127.0.0.1:{port}"),
            http: admin_client(&store).await,
        };
        let log = dir.join("serve.log");
        let served = Served::start(&database_url, &log);
        for v in 1..=faults.len() {
            let (status, body) = api
                .post(
                    &format!("/api/v1/models/{MODEL}/versions"),
                    json!({ "version": v.to_string(), "config": { "v": v } }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        let config = edit(peers.config.clone());
        let (status, body) = api
            .post("/api/v1/clusters", json!({ "name": CLUSTER, "environment": "development", "driver": "oip+haproxy", "config": config }))
            .await;
        assert_eq!(status, 201, "{body}");
        Some(AnalysisRig { dir, peers, prometheus, database_url, log, api, served })
    }
}

/// Saves an analysis template through the API (201).
async fn put_template(api: &Api, name: &str, template: Value) {
    let r = api
        .http
        .put(format!("{}/api/v1/analysis-templates/{name}", api.base))
        .json(&template)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
}

/// Deploys `echo:1` with a blue-green switch, then starts `workers` load
/// generators sending `rate` inference requests a second each through HAProxy.
async fn first_deploy_then_load(
    api: &Api,
    peers: &Peers,
    rate: u32,
    workers: u32,
) -> (Arc<AtomicBool>, Arc<Mutex<Vec<Sent>>>, Vec<tokio::task::JoinHandle<()>>) {
    let first = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:1", "reason": "first deploy" }))
        .await;
    assert_eq!(api.finished(first).await["state"], "succeeded");
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let handles = load_generator(
        format!("http://127.0.0.1:{}/v2/models/{MODEL}/infer", peers.front_port),
        rate,
        workers,
        stop.clone(),
        sent.clone(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    (stop, sent, handles)
}

/// Analysis gates end to end: HAProxy's own Prometheus exporter scraped by
/// a real Prometheus, operations run by the real `switchyard serve` binary;
/// a version that passes its smoke request and fails real traffic is rolled
/// back by its analysis (the built-in error-rate gate is set not to judge,
/// so the analysis alone decides) although the server is killed (-9) after
/// its first measurement: the next server keeps that measurement, takes the
/// second and rolls back once. Every failed request was the failing
/// version's, and the ledger holds the measured values; a good version
/// passes the same analysis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_real_traffic_is_rolled_back_by_its_analysis_on_haproxy_metrics_and_a_good_one_passes(
) {
    let Some(rig) = AnalysisRig::start("sy-analysis", &[None, None, Some("fail_traffic")], |mut config| {
        // The built-in error-rate gate never fails here: the analysis alone decides.
        config["health_gate"] = json!({ "max_error_percent": 100.0 });
        config
    })
    .await
    else {
        return;
    };
    let AnalysisRig { dir, peers, prometheus, database_url, log, api, served } = rig;
    // The share of 5xx answers of the slot under test, as in docs/analysis.md.
    put_template(&api, "haproxy-errors", json!({
        "prometheus_url": prometheus.url,
        "query": "sum(rate(haproxy_server_http_responses_total{server=\"{{slot}}\",code=\"5xx\"}[3s])) / sum(rate(haproxy_server_http_responses_total{server=\"{{slot}}\"}[3s]))",
        "success": "result < 0.01",
        "failure": "result > 0.05",
        "interval_ms": 2500,
        "count": 3,
        "failure_limit": 2,
        "inconclusive_limit": 2,
        "reason": "judge releases on the 5xx share",
    }))
    .await;
    let (stop, sent, workers) = first_deploy_then_load(&api, &peers, 100, 4).await;

    let bad = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:3", "reason": "fails real traffic", "analysis": ["haproxy-errors"] }))
        .await;
    // kill -9 once the first measurement is recorded; another server takes over.
    for _ in 0..400 {
        let op = api.get(&format!("/api/v1/operations/{bad}")).await;
        let measured = op["steps"]
            .as_array()
            .and_then(|s| s.last())
            .and_then(|g| g["measurements"].as_array())
            .map_or(0, Vec::len);
        if measured >= 1 || op["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    served.kill9();
    let served = Served::start(&database_url, &log);
    let op = api.finished(bad).await;
    assert_eq!(
        (op["state"].as_str(), op["trigger"].as_str()),
        (Some("rolled_back"), Some("analysis")),
        "{op}"
    );
    let bad_slot = op["steps"][0]["slot"]
        .as_str()
        .expect("the loaded slot")
        .to_owned();
    let good = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:2", "reason": "a good one", "analysis": ["haproxy-errors"] }))
        .await;
    let passed = api.finished(good).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    drop(served);
    assert_eq!(passed["state"], "succeeded", "{passed}");
    let gate = passed["steps"]
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .expect("steps");
    assert_eq!(
        gate["measurements"].as_array().map(Vec::len),
        Some(3),
        "{gate}"
    );
    assert!(
        gate["measurements"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|m| m["verdict"] == "success"),
        "{gate}"
    );

    // The evidence: the rollback event holds the measured error ratios (over 5%).
    let of = |events: Value| -> Vec<Value> {
        events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["details"]["operation_id"] == json!(bad))
            .cloned()
            .collect()
    };
    let rollbacks = of(api
        .get(&format!("/api/v1/audit?cluster={CLUSTER}&action=rollback"))
        .await);
    assert_eq!(rollbacks.len(), 1, "one rollback, not two: {rollbacks:?}");
    let rollback = &rollbacks[0];
    assert_eq!(rollback["details"]["trigger"], "analysis");
    let ratios: Vec<f64> = rollback["details"]["analysis"][0]["measurements"]
        .as_array()
        .expect("measurements")
        .iter()
        .filter_map(|m| m["value"].as_f64())
        .collect();
    assert_eq!(
        ratios.len(),
        2,
        "the measurement before the crash counts: {rollback}"
    );
    assert!(ratios.iter().all(|r| *r > 0.05), "{rollback}");
    assert_eq!(
        of(api
            .get(&format!(
                "/api/v1/audit?cluster={CLUSTER}&action=operation.interrupted"
            ))
            .await)
        .len(),
        1
    );

    // No failed request outside the failing version's own errors: every
    // answered failure came from its slot, and every request that got no
    // answer at all (a keep-alive connection HAProxy closed after one of its
    // 500s) was sent while it carried traffic: from its switch to the restore.
    let steps = op["steps"].as_array().expect("steps");
    let switched = steps
        .iter()
        .find(|s| s["action"] == "shift" && s["restore"] != true)
        .expect("the switch");
    let restored = steps
        .iter()
        .find(|s| s["restore"] == true)
        .expect("the restore");
    let (from, to) = (
        micros(&switched["started_at"]),
        micros(&restored["finished_at"]),
    );
    let sent = sent.lock().await;
    let failed: Vec<&Sent> = sent.iter().filter(|s| !s.ok).collect();
    assert!(!failed.is_empty(), "the failing version took traffic");
    let elsewhere: Vec<&&Sent> = failed
        .iter()
        .filter(|s| {
            if s.slot.is_empty() {
                s.start.micros() < from || s.start.micros() > to
            } else {
                s.slot != bad_slot
            }
        })
        .collect();
    assert!(elsewhere.is_empty(), "{} of {} failed requests were not the failing version's (slot {bad_slot}, {from}..{to}): {:?}", elsewhere.len(), failed.len(), elsewhere.iter().take(3).collect::<Vec<_>>());
    let answered_elsewhere = sent
        .iter()
        .filter(|s| s.ok && (s.start.micros() < from || s.start.micros() > to))
        .count();
    assert!(
        answered_elsewhere > 0,
        "requests outside the window were answered"
    );
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pre-switch analysis and the release after a bake, end to end on the
/// real peers: a template marked `pre_switch` asks the real Prometheus
/// whether HAProxy's health checks see the newly loaded (idle) slot up,
/// before any traffic moves to it (the query names that slot); after the
/// switch the old version stays loaded in the real MLServer, ready, for the
/// whole bake, and only then is it unloaded there. Not one request of the
/// load sent through HAProxy meanwhile fails, and serving at T names the
/// measurements that let the version in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_switch_gate_measures_the_idle_slot_and_the_old_version_is_unloaded_from_mlserver_only_after_the_bake(
) {
    let Some(rig) = AnalysisRig::start("sy-bake", &[None, None], |config| config).await else {
        return;
    };
    let AnalysisRig { dir, peers, prometheus, api, served, .. } = rig;
    // Whether HAProxy's health check (the model's ready endpoint) sees the
    // slot under test up: true of a loaded idle slot, before any traffic.
    put_template(&api, "slot-up", json!({
        "prometheus_url": prometheus.url,
        "query": "max(haproxy_server_status{proxy=\"be_{{slot}}\",server=\"{{slot}}\",state=\"UP\"})",
        "success": "result == 1",
        "failure": "result == 0",
        "interval_ms": 1500,
        "count": 3,
        "failure_limit": 2,
        "inconclusive_limit": 2,
        "pre_switch": true,
        "reason": "the new slot must be up in HAProxy before it takes traffic",
    }))
    .await;
    let (stop, sent, workers) = first_deploy_then_load(&api, &peers, 50, 2).await;

    let bake_ms: i64 = 3000;
    let id = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:2", "reason": "baked", "analysis": ["slot-up"], "bake_seconds": bake_ms / 1000 }))
        .await;
    // While the last gate bakes, the old version is still loaded and ready in its MLServer.
    let http = reqwest::Client::new();
    let ready = |url: String| {
        let http = http.clone();
        async move {
            http.get(format!("{url}/v2/models/{MODEL}/ready"))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        }
    };
    let mut ready_while_baking = 0;
    let mut old_url = None;
    for _ in 0..2400 {
        let op = api.get(&format!("/api/v1/operations/{id}")).await;
        if op["state"] != "running" {
            break;
        }
        let steps = op["steps"].as_array().cloned().unwrap_or_default();
        let switched = steps
            .iter()
            .any(|s| s["action"] == "shift" && s["state"] == "done");
        let releasing = steps
            .iter()
            .any(|s| s["action"] == "release" && s["state"] != "pending");
        if switched && !releasing {
            let new_slot = steps[0]["slot"].as_str().expect("the loaded slot");
            let old = if new_slot == "blue" { "green" } else { "blue" };
            let url = peers.config[old]["url"].as_str().expect("url").to_owned();
            old_url = Some(url.clone());
            if ready(url).await {
                ready_while_baking += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let op = api.finished(id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    drop(served);
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(
        ready_while_baking >= 5,
        "the old version answered ready during the bake ({ready_while_baking} times): {op}"
    );

    let steps = op["steps"].as_array().expect("steps");
    let actions: Vec<&str> = steps.iter().filter_map(|s| s["action"].as_str()).collect();
    let shift = actions.iter().position(|a| *a == "shift").expect("a switch");
    let new_slot = steps[0]["slot"].as_str().expect("the loaded slot");
    // The pre-switch gate: before the switch, measuring the idle slot.
    let pre = &steps[shift - 1];
    assert_eq!(pre["action"], "gate", "{actions:?}");
    let switch_started = micros(&steps[shift]["started_at"]);
    let measured = pre["measurements"].as_array().expect("pre-switch measurements");
    assert_eq!(measured.len(), 3, "{pre}");
    for m in measured {
        assert_eq!(m["verdict"], "success", "{pre}");
        assert!(
            m["query"]
                .as_str()
                .is_some_and(|q| q.contains(&format!("proxy=\"be_{new_slot}\""))),
            "the idle slot is measured: {m}"
        );
        assert!(micros(&m["at"]) < switch_started, "before any traffic moved: {m}");
    }
    // The release: last, at least the bake after the switch, and real.
    let release = steps.last().expect("steps");
    assert_eq!(
        (release["action"].as_str(), release["state"].as_str()),
        (Some("release"), Some("done")),
        "{op}"
    );
    assert_ne!(release["slot"], new_slot, "{release}");
    let switched = micros(&steps[shift]["finished_at"]);
    assert!(
        micros(&release["started_at"]) >= switched + bake_ms * 1000,
        "released {} ms after the switch",
        (micros(&release["started_at"]) - switched) / 1000
    );
    let old_url = old_url.expect("the bake was watched");
    assert!(!ready(old_url).await, "the old version is unloaded from its MLServer");

    let sent = sent.lock().await;
    let failed: Vec<&Sent> = sent.iter().filter(|s| !s.ok).collect();
    assert!(sent.len() > 50, "{} requests sent", sent.len());
    assert!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), sent.len(), failed.iter().take(3).collect::<Vec<_>>());
    assert!(sent.iter().any(|s| s.version == "1") && sent.iter().any(|s| s.version == "2"));

    // The evidence afterwards, in serving at T.
    let at = Timestamp::now().to_rfc3339().replace('+', "%2B");
    let serving = api.get(&format!("/api/v1/serving?at={at}")).await;
    let gates = serving["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["cluster"] == CLUSTER))
        .cloned()
        .unwrap_or_else(|| panic!("the cluster's gate results: {serving}"));
    assert_eq!(gates["operation_id"], id, "{gates}");
    assert_eq!(gates["measurements"].as_array().map(Vec::len), Some(6), "pre-switch and after: {gates}");
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Model servers on "other hosts" (`deploy: "artifact_uri"`): each MLServer
/// runs Switchyard's loader (`contrib/mlserver/switchyard_loader.py`) as its
/// model repository and reads each version from the version's registered
/// `artifact_uri`, a folder outside both servers' repository folders
/// (`file://` and a plain path); Switchyard writes nothing into their
/// folders. `cluster test` checks the loaders; blue-green switches and a
/// rollback move real traffic through HAProxy without a failed request; a
/// version whose `artifact_uri` is missing, names no folder on the model
/// server's host, has a scheme the loader does not read, or points at
/// another version's folder fails its load with the reason, and changes
/// neither the routing nor the idle slot's loaded version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_servers_reading_versions_from_their_artifact_uri_switch_roll_back_and_refuse_a_wrong_uri_leaving_routing_alone(
) {
    let Some((mlserver, haproxy)) = peers() else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "MLServer or HAProxy missing: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: MLServer or HAProxy missing (scripts/peers.sh installs them)");
        return;
    };
    switchyard::telemetry::init_for_test();
    let dir = std::env::temp_dir().join(format!("sy-artifact-uri-{:08x}", rand::random::<u32>()));
    // The artifact store: not the model servers' folders, not Switchyard's config.
    let store_dir = dir.join("artifact-store");
    for v in 1..=3 {
        write_version(&store_dir, v, None);
    }
    let folder = |v: u32| store_dir.join(MODEL).join(v.to_string());
    let peers = Peers::start_deploying(&mlserver, &haproxy, &dir, true).await;
    assert!(
        peers.config.get("artifacts").is_none() && peers.config["blue"].get("repository").is_none(),
        "{}",
        peers.config
    );

    let database_url = format!("sqlite://{}", dir.join("switchyard.db").display());
    let app = Application::build(Config {
        database_url: database_url.clone(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
        checkpoint_file: None,
    })
    .await
    .expect("the server starts");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let store = switchyard::store::connect(&database_url, Default::default())
        .await
        .expect("store");
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: admin_client(&store).await,
    };
    let settings = RunnerSettings {
        lease: Duration::from_secs(1),
        poll: Duration::from_millis(20),
        ready_timeout: Duration::from_secs(20),
    };
    let runner = switchyard::operations::spawn(store.clone(), Drivers::default(), settings);

    let file_uri = |v: u32| format!("file://{}", folder(v).display());
    let versions: [(&str, Option<String>); 8] = [
        ("1", Some(file_uri(1))),
        // A plain absolute path works as well as file://.
        ("2", Some(folder(2).display().to_string())),
        ("3", Some(file_uri(3))),
        (
            "4",
            Some(format!(
                "file://{}",
                dir.join("no-such-store/echo/4").display()
            )),
        ),
        ("5", Some("s3://models/echo/5".to_owned())),
        ("6", None),
        // Points at version 1's folder.
        ("7", Some(file_uri(1))),
        (
            "8",
            Some("file://storage.internal/models/echo/8".to_owned()),
        ),
    ];
    for (v, uri) in &versions {
        let mut body = json!({ "version": v, "config": { "v": v } });
        if let Some(uri) = uri {
            body["artifact_uri"] = json!(uri);
        }
        let (status, answer) = api
            .post(&format!("/api/v1/models/{MODEL}/versions"), body)
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, body) = api
        .post("/api/v1/clusters", json!({ "name": CLUSTER, "environment": "development", "driver": "oip+haproxy", "config": peers.config }))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, report) = api
        .post(&format!("/api/v1/clusters/{CLUSTER}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["check"].as_str())
        .collect();
    assert!(
        names.contains(&"blue loader") && names.contains(&"green loader"),
        "{report}"
    );
    // Drift's reading is checked too: nothing loaded yet.
    let index = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == "blue repository index"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(index["ok"], true, "{report}");
    assert!(
        index["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no version of echo ready")),
        "{index}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with("repository") || *n == "artifacts"),
        "nothing is copied, so no folder is checked: {report}"
    );

    // A request straight through HAProxy: the version that answered.
    let front = format!(
        "http://127.0.0.1:{}/v2/models/{MODEL}/infer",
        peers.front_port
    );
    let through_haproxy = || async {
        let http = reqwest::Client::new();
        let body = json!({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]});
        let answer: Value = http
            .post(&front)
            .json(&body)
            .send()
            .await
            .expect("HAProxy answers")
            .json()
            .await
            .expect("JSON");
        answer["model_version"].as_str().unwrap_or("").to_owned()
    };

    let first = api
        .operate(json!({ "kind": "blue_green", "full_id": "echo:1", "reason": "first deploy" }))
        .await;
    let op = api.finished(first).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(through_haproxy().await, "1");

    // Traffic the whole time through HAProxy while versions move.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let workers = load_generator(front.clone(), 100, 2, stop.clone(), sent.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (full_id, now) in [("echo:2", "2"), ("echo:3", "3")] {
        let id = api
            .operate(json!({ "kind": "blue_green", "full_id": full_id, "reason": "switch" }))
            .await;
        let op = api.finished(id).await;
        assert_eq!(op["state"], "succeeded", "{full_id}: {op}");
        assert_eq!(through_haproxy().await, now, "{full_id}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let op = api.finished(api.rollback().await).await;
    assert_eq!(op["state"], "succeeded", "rollback: {op}");
    assert_eq!(through_haproxy().await, "2", "rolled back to echo:2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let sent = sent.lock().await.clone();
    let failed: Vec<&Sent> = sent.iter().filter(|s| !s.ok).collect();
    eprintln!(
        "artifact_uri slots: {} requests through HAProxy across 2 switches and a rollback, {} failed",
        sent.len(),
        failed.len()
    );
    assert!(
        sent.len() > 50,
        "the load generator ran: {} requests",
        sent.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        sent.len(),
        &failed[..failed.len().min(3)]
    );
    let answered: std::collections::BTreeSet<&str> =
        sent.iter().map(|s| s.version.as_str()).collect();
    assert_eq!(
        answered,
        std::collections::BTreeSet::from(["1", "2", "3"]),
        "traffic moved through every version"
    );

    // Now echo:2 serves and echo:3 sits loaded in the idle slot. Every bad
    // artifact fails the load with the reason, before anything is unloaded.
    let state = store
        .get_cluster(CLUSTER)
        .await
        .expect("read")
        .expect("cluster")
        .state;
    let (serving, idle) = if state
        .weights
        .of(switchyard_domain::clusters::SlotName::Blue)
        > 0
    {
        ("blue", "green")
    } else {
        ("green", "blue")
    };
    let idle_url = peers.config[idle]["url"].as_str().expect("url").to_owned();
    let router = peers.router().await;
    for (full_id, says) in [
        ("echo:4", "is not a folder on the model server's host"),
        ("echo:5", "not s3://"),
        ("echo:6", "has no artifact_uri"),
        ("echo:7", "is version '1', not '7'"),
        ("echo:8", "names host 'storage.internal'"),
    ] {
        let id = api
            .operate(json!({ "kind": "blue_green", "full_id": full_id, "reason": "bad artifact" }))
            .await;
        let op = api.finished(id).await;
        assert_eq!(op["state"], "failed", "{full_id}: {op}");
        let load = op["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["state"] == "failed"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(load["action"], "load", "{full_id}: {op}");
        let error = load["note"].as_str().unwrap_or("");
        assert!(error.contains(says), "{full_id}: {says:?} not in {load}");
        assert_eq!(
            peers.router().await,
            router,
            "{full_id}: the routing did not change"
        );
        assert_eq!(through_haproxy().await, "2", "{full_id}");
        let ready = reqwest::get(format!("{idle_url}/v2/models/{MODEL}/versions/3/ready"))
            .await
            .expect("the idle model server answers");
        assert!(
            ready.status().is_success(),
            "{full_id}: echo:3 is still loaded in {idle}"
        );
    }
    let held = store
        .get_cluster(CLUSTER)
        .await
        .expect("read")
        .expect("cluster")
        .state;
    assert_eq!(
        held.weights, state.weights,
        "{serving} still carries all traffic: {held:?}"
    );

    // What each slot really runs, asked of its model server (the loader is
    // its repository, so the index names the version it was told to read).
    let driver = OipHaproxy::new(peers.direct.clone()).expect("driver");
    for (slot, full_id) in [(serving, "echo:2"), (idle, "echo:3")] {
        let slot: switchyard_domain::clusters::SlotName = slot.parse().expect("slot");
        assert_eq!(
            driver.running(slot).await.expect("the model server answers"),
            switchyard::drivers::Running::Version {
                version: switchyard_domain::FullId::parse(full_id).expect("id")
            },
            "{slot}"
        );
    }

    // Switchyard wrote nothing into the model servers' folders.
    for slot in ["blue", "green"] {
        assert!(
            !dir.join(slot).join(MODEL).exists(),
            "no version folder in {slot}'s repository"
        );
    }
    runner.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Copies version `v` of the model from `artifacts` into a model server's
/// repository folder `repo`, as a person would by hand (`keep` leaves the
/// versions already there).
fn copy_version_by_hand(artifacts: &Path, repo: &Path, v: u32, keep: bool) {
    let model_dir = repo.join(MODEL);
    if !keep {
        let _ = std::fs::remove_dir_all(&model_dir);
    }
    let to = model_dir.join(v.to_string());
    std::fs::create_dir_all(&to).expect("version dir");
    let from = artifacts.join(MODEL).join(v.to_string());
    for f in ["model.py", "model-settings.json"] {
        std::fs::copy(from.join(f), to.join(f)).expect("copied");
    }
}

/// `POST /v2/repository/models/echo/{load|unload}` straight to a model
/// server, behind Switchyard's back.
async fn repository_call(url: &str, what: &str) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v2/repository/models/{MODEL}/{what}"))
        .json(&json!({}))
        .send()
        .await
        .expect("the model server answers");
    assert!(r.status().is_success(), "{what}: {:?}", r.text().await);
}

/// `Driver::running` of oip+haproxy asks the slot's real MLServer what it
/// has loaded and ready (its repository index, each READY version confirmed
/// by its ready endpoint): a version loaded by the driver, another loaded by
/// hand through the repository API, two at once, and an unload by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_reports_what_mlserver_really_loaded_also_when_changed_behind_switchyards_back() {
    use switchyard::drivers::Running;
    use switchyard_domain::clusters::SlotName;
    let Some((mlserver, haproxy)) = peers() else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "MLServer or HAProxy missing: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: MLServer or HAProxy missing (scripts/peers.sh installs them)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("sy-running-{:08x}", rand::random::<u32>()));
    let artifacts = dir.join("artifacts");
    for v in 1..=3 {
        write_version(&artifacts, v, None);
    }
    let peers = Peers::start(&mlserver, &haproxy, &dir).await;
    let driver = OipHaproxy::new(peers.direct.clone()).expect("driver");
    let id = |s: &str| switchyard_domain::FullId::parse(s).expect("id");
    let version = |s: &str| Running::Version { version: id(s) };

    // Nothing loaded anywhere yet.
    for slot in SlotName::ALL {
        assert_eq!(
            driver.running(slot).await.expect("answers"),
            Running::Nothing,
            "{slot}"
        );
    }
    driver
        .load(SlotName::Blue, &id("echo:1"))
        .await
        .expect("loaded");
    driver
        .wait_ready(SlotName::Blue, &id("echo:1"), Duration::from_secs(60))
        .await
        .expect("ready");
    assert_eq!(
        driver.running(SlotName::Blue).await.expect("blue"),
        version("echo:1")
    );
    assert_eq!(
        driver.running(SlotName::Green).await.expect("green"),
        Running::Nothing
    );

    let started = Instant::now();
    for _ in 0..20 {
        driver.running(SlotName::Blue).await.expect("blue");
    }
    eprintln!(
        "running() against MLServer (repository index + one ready check): {:.1} ms each over 20",
        started.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
    // Someone loads version 3 into blue by hand through the repository API.
    let blue_url = peers.config["blue"]["url"].as_str().expect("url").to_owned();
    copy_version_by_hand(&artifacts, &dir.join("blue"), 3, false);
    repository_call(&blue_url, "load").await;
    assert_eq!(
        driver.running(SlotName::Blue).await.expect("blue"),
        version("echo:3")
    );
    // Two versions at once: unclear, and which.
    copy_version_by_hand(&artifacts, &dir.join("blue"), 2, true);
    repository_call(&blue_url, "load").await;
    assert_eq!(
        driver.running(SlotName::Blue).await.expect("blue"),
        Running::Unclear {
            detail: "the model server has 2 versions of echo loaded and ready: 2, 3".into()
        }
    );
    // Unloaded by hand: nothing runs.
    repository_call(&blue_url, "unload").await;
    assert_eq!(
        driver.running(SlotName::Blue).await.expect("blue"),
        Running::Nothing
    );
    drop(peers);
    let _ = std::fs::remove_dir_all(&dir);
}
