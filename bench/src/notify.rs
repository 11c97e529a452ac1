//! Notifications (issue 14), measured against the real server in-process and
//! a fast local receiver in another process (`bench --receiver`): the write path (version register, promotion apply)
//! with 0 and with 5 subscriptions side by side, in alternating rounds so
//! that both see the same moments of a noisy machine; delivery throughput
//! (a backlog sent by one delivery worker); and the latency from a ledger
//! event (its `at`) to its receipt. The delivery worker runs throughout, as in
//! `switchyard serve`, so the write path pays for the sending too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use switchyard::auth::{password, secret};
use switchyard::notify::NotifySettings;
use switchyard::store::DynStore;
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;
use tokio::task::JoinHandle;

use crate::report::{percentile_ms, Figure};
use crate::size::Size;

const MODEL: &str = "bench-notify";
const SUBSCRIPTIONS: usize = 5;
/// The write path with subscriptions may be this much slower (p99) than without.
const WRITE_PATH_TARGET: f64 = 1.10;

/// How much each part does, by size.
struct Counts {
    rounds: usize,
    registrations_per_round: usize,
    promotions_per_round: usize,
    burst_events: usize,
    latency_events: usize,
}

impl Counts {
    fn for_size(size: &Size) -> Counts {
        if size.name == "smoke" {
            Counts {
                rounds: 2,
                registrations_per_round: 10,
                promotions_per_round: 3,
                burst_events: 20,
                latency_events: 20,
            }
        } else {
            Counts {
                rounds: 6,
                registrations_per_round: 60,
                promotions_per_round: 15,
                burst_events: 200,
                latency_events: 200,
            }
        }
    }
}

/// One request the receiver answered: when it arrived and the `at` of the
/// ledger event it carries (µs).
#[derive(Debug, Clone)]
struct Arrival {
    at: i64,
    received: i64,
}

/// The program that runs the receiver (`bench --receiver`): the running
/// `bench` binary unless set (the smoke test sets the one cargo built).
static RECEIVER_PROGRAM: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Runs the receiver with `program --receiver` instead of this executable.
pub fn set_receiver_program(program: impl Into<std::path::PathBuf>) {
    let _ = RECEIVER_PROGRAM.set(program.into());
}

/// The receiver process: an HTTP server on loopback that answers 200 at
/// once, prints `listening PORT`, then one line `AT RECEIVED` (µs) per
/// request. Another process, so that the server under test does not share its
/// runtime with it (it shares the machine's cores, as a receiver on the same
/// host would).
pub async fn serve_receiver() -> anyhow::Result<()> {
    use std::io::Write;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let router = Router::new().route(
        "/hook/{n}",
        post(move |_headers: HeaderMap, body: Bytes| async move {
            let received = Timestamp::now().micros();
            let at = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| serde_json::from_value::<Timestamp>(b["data"]["at"].clone()).ok())
                .map_or(received, Timestamp::micros);
            let mut out = std::io::stdout().lock();
            // The parent reads every line; one it cannot read is a lost arrival, reported by its count.
            let _ = writeln!(out, "{at} {received}").and_then(|()| out.flush());
            "ok"
        }),
    );
    axum::serve(listener, router).await?;
    Ok(())
}

/// The receiver process as the benchmark sees it: its address and the arrivals it reported.
struct Receiver {
    base: String,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    _child: tokio::process::Child,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        use tokio::io::AsyncBufReadExt;
        let program = match RECEIVER_PROGRAM.get() {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("the bench program's path")?,
        };
        let mut child = tokio::process::Command::new(&program)
            .arg("--receiver")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the receiver {} --receiver", program.display()))?;
        let stdout = child.stdout.take().context("the receiver's output")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .context("the receiver did not start within 15 s")??
            .context("the receiver ended before it listened")?;
        let port: u16 = first
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .with_context(|| format!("the receiver said {first:?}, not its port"))?;
        let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let log = arrivals.clone();
        let task = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.split_whitespace().map(str::parse::<i64>);
                if let (Some(Ok(at)), Some(Ok(received))) = (parts.next(), parts.next()) {
                    if let Ok(mut log) = log.lock() {
                        log.push(Arrival { at, received });
                    }
                }
            }
        });
        Ok(Receiver {
            base: format!("http://127.0.0.1:{port}"),
            arrivals,
            _child: child,
            task,
        })
    }

    fn count(&self) -> usize {
        self.arrivals.lock().map_or(0, |a| a.len())
    }

    fn take(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }

    /// Waits until `n` arrivals are in (at most `limit`).
    async fn wait_for(&self, n: usize, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.count() < n {
            if started.elapsed() > limit {
                bail!(
                    "{} of {n} deliveries arrived within {limit:?}",
                    self.count()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}

/// The API as the benchmark's users call it.
struct Api {
    base: String,
    client: reqwest::Client,
    admin: String,
    /// Tokens of approvers other than the admin (who requests).
    approvers: Vec<String>,
    next_version: usize,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method} {path}"))?
        })
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, token, path, Some(body))
            .await
    }

    /// Registers a new version; the time the request took.
    async fn register(&mut self) -> anyhow::Result<(String, Duration)> {
        self.next_version += 1;
        let version = format!("n{}", self.next_version);
        let started = Instant::now();
        self.post(
            &self.admin,
            &format!("/api/v1/models/{MODEL}/versions"),
            json!({ "version": version, "config": { "n": self.next_version } }),
        )
        .await?;
        Ok((version, started.elapsed()))
    }

    /// Registers a version, moves it to staging, requests its promotion to
    /// production and approves it; the time of the approval that applies it.
    async fn promote(&mut self) -> anyhow::Result<Duration> {
        let (version, _) = self.register().await?;
        let full_id = format!("{MODEL}:{version}");
        self.post(
            &self.admin,
            &format!("/api/v1/versions/{full_id}/stage"),
            json!({ "to": "staging", "reason": "bench" }),
        )
        .await?;
        let p = self
            .post(
                &self.admin,
                "/api/v1/promotions",
                json!({ "full_id": full_id, "environment": "production", "reason": "bench" }),
            )
            .await?;
        let id = p["id"].as_i64().context("the promotion's id")?;
        let needed = usize::try_from(p["required_approvals"].as_i64().unwrap_or(2)).unwrap_or(2);
        if needed == 0 || needed > self.approvers.len() {
            bail!(
                "the promotion needs {needed} approvals; the benchmark has {} approvers",
                self.approvers.len()
            );
        }
        let path = format!("/api/v1/promotions/{id}/approve");
        for token in &self.approvers[..needed - 1] {
            self.post(token, &path, json!({ "reason": "bench" }))
                .await?;
        }
        let started = Instant::now();
        let applied = self
            .post(
                &self.approvers[needed - 1],
                &path,
                json!({ "reason": "bench" }),
            )
            .await?;
        let elapsed = started.elapsed();
        if applied["status"] != "applied" {
            bail!("the last approval did not apply the promotion: {applied}");
        }
        Ok(elapsed)
    }

    async fn subscribe(&self, receiver: &Receiver) -> anyhow::Result<()> {
        for k in 0..SUBSCRIPTIONS {
            self.post(
                &self.admin,
                "/api/v1/subscriptions",
                json!({
                    "name": format!("bench-{k}"),
                    "url": format!("{}/hook/{k}", receiver.base),
                    "filter": { "models": [MODEL] },
                }),
            )
            .await?;
        }
        Ok(())
    }

    async fn unsubscribe(&self) -> anyhow::Result<()> {
        for k in 0..SUBSCRIPTIONS {
            self.send(
                reqwest::Method::DELETE,
                &self.admin,
                &format!("/api/v1/subscriptions/bench-{k}"),
                None,
            )
            .await?;
        }
        Ok(())
    }
}

/// Waits until the outbox holds no pending delivery.
async fn drained(store: &DynStore, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let stats = store.queue_stats().await?;
        if stats.pending == 0 {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{} deliveries still pending after {limit:?}", stats.pending);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn worker(store: &DynStore) -> JoinHandle<()> {
    switchyard::notify::spawn(
        store.clone(),
        NotifySettings {
            // The receiver is on loopback.
            allow_private: true,
            ..NotifySettings::default()
        },
    )
}

/// Approvers for the promotions (the admin requests them).
async fn approvers(store: &DynStore, n: usize) -> anyhow::Result<Vec<String>> {
    let now = Timestamp::now();
    let hash = password::hash("bench-password").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("bench-approver-{i}");
        store
            .create_user(&name, Role::Approver, &hash, "bench", now)
            .await?;
        let token = secret::generate(secret::TOKEN_PREFIX);
        store
            .create_token(&name, &name, &secret::hash(&token), None, "bench", now)
            .await?;
        tokens.push(token);
    }
    Ok(tokens)
}

/// Every notification figure, against the server at `base`.
pub async fn measure(
    backend: &str,
    base: &str,
    store: &DynStore,
    admin_token: &str,
    size: &Size,
) -> anyhow::Result<Vec<Figure>> {
    let counts = Counts::for_size(size);
    let receiver = Receiver::start().await?;
    let mut api = Api {
        base: base.to_owned(),
        client: reqwest::Client::new(),
        admin: admin_token.to_owned(),
        approvers: approvers(store, 3).await?,
        next_version: 0,
    };
    let limit = Duration::from_secs(120);

    // The write path in alternating rounds: no subscription (0), 5 with the
    // delivery worker sending meanwhile (1), and 5 with the worker stopped
    // (2: the outbox rows are written, nothing is sent until the round ends),
    // which tells the write path's own cost from that of the sending beside
    // it. A few writes first warm everything up and are not counted.
    let mut worker_task = Some(worker(store));
    api.register().await?;
    api.promote().await?;
    let (mut register, mut apply) = (
        [Vec::new(), Vec::new(), Vec::new()],
        [Vec::new(), Vec::new(), Vec::new()],
    );
    for round in 0..counts.rounds {
        let order = [[0, 1, 2], [1, 2, 0], [2, 0, 1]][round % 3];
        for with in order {
            if with > 0 {
                api.subscribe(&receiver).await?;
            }
            if with == 2 {
                if let Some(task) = worker_task.take() {
                    task.abort();
                    let _ = task.await;
                }
            }
            for _ in 0..counts.registrations_per_round {
                register[with].push(api.register().await?.1);
            }
            for _ in 0..counts.promotions_per_round {
                apply[with].push(api.promote().await?);
            }
            if worker_task.is_none() {
                worker_task = Some(worker(store));
            }
            if with > 0 {
                drained(store, limit).await?;
                api.unsubscribe().await?;
            }
        }
    }
    let mut worker_task = worker_task.unwrap_or_else(|| worker(store));
    receiver.take();

    // Throughput: a backlog written while no worker runs, then sent by one.
    worker_task.abort();
    let _ = worker_task.await;
    api.subscribe(&receiver).await?;
    for _ in 0..counts.burst_events {
        api.register().await?;
    }
    let expected = counts.burst_events * SUBSCRIPTIONS;
    let started = Instant::now();
    worker_task = worker(store);
    receiver.wait_for(expected, limit).await?;
    let throughput = expected as f64 / started.elapsed().as_secs_f64();
    drained(store, limit).await?;
    receiver.take();

    // Latency: one event at a time, each sent to the 5 subscriptions before
    // the next is written (so it measures the path, not a queue).
    for i in 1..=counts.latency_events {
        api.register().await?;
        receiver.wait_for(i * SUBSCRIPTIONS, limit).await?;
    }
    let latencies: Vec<Duration> = receiver
        .take()
        .iter()
        .map(|a| Duration::from_micros(u64::try_from(a.received - a.at).unwrap_or(0)))
        .collect();
    drained(store, limit).await?;
    api.unsubscribe().await?;
    worker_task.abort();

    let f = |name: &str, unit: &'static str, value: f64| Figure::new(backend, name, unit, value);
    let side_by_side = |name: &str, samples: &[Vec<Duration>; 3]| {
        let (p50, p99) = (
            (
                percentile_ms(&samples[1], 50.0),
                percentile_ms(&samples[0], 50.0),
            ),
            (
                percentile_ms(&samples[1], 99.0),
                percentile_ms(&samples[0], 99.0),
            ),
        );
        let ratio = p99.0 / p99.1;
        [
            f(&format!("{name} with {SUBSCRIPTIONS} subscriptions (baseline: none): p50"), "ms", p50.0)
                .baseline(p50.1),
            f(&format!("{name} with {SUBSCRIPTIONS} subscriptions (baseline: none): p99"), "ms", p99.0)
                .baseline(p99.1)
                .target("p99 within 10% of none", ratio <= WRITE_PATH_TARGET)
                .note(&format!(
                    "{} requests each way, in {} alternating rounds; the delivery worker sends meanwhile",
                    samples[0].len(),
                    counts.rounds
                )),
        ]
    };
    // The same subscriptions with the worker stopped: the write path's own share.
    let unsent = |name: &str, samples: &[Vec<Duration>; 3]| {
        let (with, none) = (percentile_ms(&samples[2], 99.0), percentile_ms(&samples[0], 99.0));
        f(
            &format!("{name} with {SUBSCRIPTIONS} subscriptions, worker stopped (baseline: none): p99"),
            "ms",
            with,
        )
        .baseline(none)
        .note("the outbox rows are written, nothing is sent meanwhile: the write path's own cost")
    };
    let mut figures = Vec::new();
    figures.extend(side_by_side("notifications: version register", &register));
    figures.extend(side_by_side(
        "notifications: promotion apply (last approval)",
        &apply,
    ));
    figures.push(unsent("notifications: version register", &register));
    figures.push(unsent("notifications: promotion apply (last approval)", &apply));
    figures.push(
        f("notifications: delivery throughput to a local receiver", "deliveries/s", throughput).note(&format!(
            "a backlog of {} events × {SUBSCRIPTIONS} subscriptions sent by one worker, each subscription in event order",
            counts.burst_events
        )),
    );
    figures.push(f(
        "notifications: ledger event → received: p50",
        "ms",
        percentile_ms(&latencies, 50.0),
    ));
    figures.push(
        f("notifications: ledger event → received: p99", "ms", percentile_ms(&latencies, 99.0)).note(
            &format!(
                "{} deliveries, one event at a time; from the event's `at` (taken before its commit) to the receiver's clock",
                latencies.len()
            ),
        ),
    );
    Ok(figures)
}
