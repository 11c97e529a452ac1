//! Faults while serving: the database restarted, its connections killed, or
//! slowed down by a lock, under a load of writes and during an operation.
//!
//! These tests start a PRIVATE PostgreSQL of their own (initdb into a temp
//! directory, a free port, the Debian binaries from `SWITCHYARD_PG_BIN` or
//! /usr/lib/postgresql/*/bin) and restart only that one: the machine's shared
//! server is never touched. They print their figures and assert that every
//! write answered 2xx is present afterwards, that every refusal while the
//! database was away was a 503 `database_unavailable` with `Retry-After`, and
//! that the server recovered by itself. The SQLite disk-full test runs a
//! `switchyard serve` child under RLIMIT_FSIZE (no root, no loop device).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::drivers::Drivers;
use switchyard::operations::RunnerSettings;

use crate::helpers::{spawn_app_on_database, TestApp};

/// A PostgreSQL cluster of this test's own, stopped and removed on drop.
struct PrivatePg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn pg_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("SWITCHYARD_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's Debian binaries in /usr/lib/postgresql (scripts/test installs them), or SWITCHYARD_PG_BIN")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb
/// and the server refuse to run as root).
fn run_pg(bin: &Path, tool: &str, args: &[&str]) {
    let program = bin.join(tool);
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        std::process::Command::new(&program)
    };
    let out = cmd.args(args).output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let bin = pg_bin();
        let dir = std::env::temp_dir().join(format!("sy-pg-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let _ = std::process::Command::new("chown")
            .args(["postgres"])
            .arg(&dir)
            .status();
        let pg = PrivatePg {
            bin,
            dir,
            port: free_port(),
        };
        let data = pg.data();
        run_pg(
            &pg.bin,
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"],
        );
        pg.ctl_start();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn ctl_start(&self) {
        let (data, log) = (
            self.data(),
            self.dir.join("server.log").display().to_string(),
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run_pg(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
        );
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    async fn create_database(&self, name: &str) -> String {
        use sqlx::{Connection, Executor};
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("the private PostgreSQL answers");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        self.url(name)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::process::Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a load of writers saw.
#[derive(Default)]
struct Tally {
    /// Versions whose registration was answered 201: they must be stored.
    acknowledged: Vec<String>,
    /// (when, status, code) of every refused or failed request.
    failures: Vec<(Instant, Option<StatusCode>, String)>,
    /// When each success was answered.
    successes: Vec<Instant>,
}

/// `writers` tasks registering versions `load:<w>-<i>` until `stop` is set.
fn start_load(
    app: &TestApp,
    writers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Tally>>, Vec<tokio::task::JoinHandle<()>>) {
    start_load_at(&app.address, &app.token, writers, stop)
}

fn start_load_at(
    address: &str,
    token: &str,
    writers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Tally>>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (client, address, token, tally, stop) = (
            reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            address.to_owned(),
            token.to_owned(),
            tally.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let version = format!("{w}-{i}");
                let res = client
                    .post(format!("{address}/api/v1/models/load/versions"))
                    .bearer_auth(&token)
                    .json(&json!({ "version": version, "config": { "i": i } }))
                    .send()
                    .await;
                let now = Instant::now();
                match res {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let mut t = tally.lock().expect("tally");
                        t.acknowledged.push(version);
                        t.successes.push(now);
                    }
                    Ok(r) => {
                        let status = r.status();
                        let retry_after = r.headers().contains_key("retry-after");
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
                        let code = if status == StatusCode::SERVICE_UNAVAILABLE && !retry_after {
                            format!("{code} (no Retry-After)")
                        } else {
                            code
                        };
                        tally
                            .lock()
                            .expect("tally")
                            .failures
                            .push((now, Some(status), code));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        tally
                            .lock()
                            .expect("tally")
                            .failures
                            .push((now, None, e.to_string()));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    (tally, tasks)
}

async fn stop_load(stop: &std::sync::atomic::AtomicBool, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.expect("writer task");
    }
}

/// Every acknowledged version is stored, read back through the API.
async fn assert_all_acknowledged_present(app: &TestApp, acknowledged: &[String]) {
    let mut lost = Vec::new();
    for v in acknowledged {
        let res = app.get(&format!("/api/v1/versions/load:{v}")).await;
        if res.status() != StatusCode::OK {
            lost.push(format!("load:{v} ({})", res.status()));
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged writes lost: {} of {}: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}

/// Every failure is a 503 `database_unavailable` with Retry-After: no 500, no
/// hang-up, no other code.
fn assert_failures_are_clear_503s(tally: &Tally) {
    for (_, status, code) in &tally.failures {
        assert_eq!(
            (*status, code.as_str()),
            (
                Some(StatusCode::SERVICE_UNAVAILABLE),
                "database_unavailable"
            ),
            "a request failed otherwise than with a clear 503"
        );
    }
}

async fn readyz_status(app: &TestApp) -> StatusCode {
    app.get("/readyz").await.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_restart_under_load_and_during_an_operation_loses_no_acknowledged_write_and_recovers_without_restart(
) {
    let pg = PrivatePg::start();
    let url = pg.create_database("sy_faults").await;
    let app = spawn_app_on_database(url).await;

    // A pinned version for resolve, and an operation on a simulated cluster.
    app.register("chat", "1", json!({ "t": 1 })).await;
    app.register("chat", "2", json!({ "t": 2 })).await;
    let res = app
        .post_json(
            "/api/v1/clusters",
            &json!({ "name": "dev-1", "environment": "development", "driver": "simulated", "config": {} }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let runner = switchyard::operations::spawn(
        app.store().await,
        Drivers::default(),
        RunnerSettings {
            lease: Duration::from_millis(1500),
            poll: Duration::from_millis(50),
            ..RunnerSettings::default()
        },
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tally, tasks) = start_load(&app, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // An operation started right before the restart.
    let res = app
        .post_json(
            "/api/v1/clusters/dev-1/operations",
            &json!({ "kind": "rolling", "full_id": "chat:2", "steps": [10, 25, 50, 75, 100], "reason": "during a restart" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let op_id = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("an id");

    // The database goes away for about three seconds.
    let down_at = Instant::now();
    tokio::task::spawn_blocking({
        let data = pg.data();
        let bin = pg.bin.clone();
        move || run_pg(&bin, "pg_ctl", &["-D", &data, "-w", "-m", "fast", "stop"])
    })
    .await
    .expect("stop");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let during = app.get("/readyz").await;
    assert_eq!(
        during.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "readyz while the database is down"
    );
    let resolve_during = app.get("/api/v1/resolve/chat:1").await;
    let resolve_during_status = resolve_during.status();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::spawn_blocking({
        let (data, log) = (pg.data(), pg.dir.join("server.log").display().to_string());
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            pg.port,
            pg.dir.display()
        );
        let bin = pg.bin.clone();
        move || {
            run_pg(
                &bin,
                "pg_ctl",
                &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
            )
        }
    })
    .await
    .expect("start");
    let back_at = Instant::now();

    // Recovery: the first acknowledged write after the database is back.
    let mut recovered = None;
    while back_at.elapsed() < Duration::from_secs(30) {
        if let Some(t) = tally
            .lock()
            .expect("tally")
            .successes
            .iter()
            .find(|t| **t > back_at)
        {
            recovered = Some(t.duration_since(back_at));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = recovered.expect(
        "writes succeed again within 30 s of the database being back, without a server restart",
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop_load(&stop, tasks).await;
    assert_eq!(readyz_status(&app).await, StatusCode::OK);

    // The operation ends (resumed by the runner once its lease expired, or
    // finished before the stop); it is not left running.
    let mut op = Value::Null;
    for _ in 0..300 {
        op = app.get_json(&format!("/api/v1/operations/{op_id}")).await;
        if op["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    runner.abort();
    assert!(
        matches!(op["state"].as_str(), Some("succeeded" | "rolled_back")),
        "the operation ended after the restart: {op}"
    );

    let tally = tally.lock().expect("tally");
    let outage = back_at.duration_since(down_at);
    println!(
        "PostgreSQL restart under load (4 writers, outage {:.1} s): {} writes acknowledged, \
         {} requests failed (all 503 database_unavailable), first write {:.0} ms after the \
         database was back; resolve during the outage answered {}; operation {op_id} ended {}",
        outage.as_secs_f64(),
        tally.acknowledged.len(),
        tally.failures.len(),
        recovered.as_secs_f64() * 1000.0,
        resolve_during_status.as_u16(),
        op["state"],
    );
    assert!(
        !tally.failures.is_empty(),
        "the outage was noticed by some request"
    );
    assert_failures_are_clear_503s(&tally);
    // More than the cache's 600 ms vouch into the outage: not from the cache.
    assert_eq!(
        resolve_during_status,
        StatusCode::SERVICE_UNAVAILABLE,
        "resolve during the outage"
    );
    assert_all_acknowledged_present(&app, &tally.acknowledged).await;
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_servers_database_connections_under_load_loses_no_acknowledged_write() {
    let pg = PrivatePg::start();
    let url = pg.create_database("sy_kill").await;
    let app = spawn_app_on_database(url).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tally, tasks) = start_load(&app, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut killed = 0i64;
    {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&pg.url("postgres"))
            .await
            .expect("admin connection");
        for _ in 0..5 {
            // Only this private cluster's test database.
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = 'sy_kill' AND pid <> pg_backend_pid()) t",
            )
            .fetch_one(&mut admin)
            .await
            .expect("terminate");
            killed += n;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
    let after_kills = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop_load(&stop, tasks).await;
    let tally = tally.lock().expect("tally");
    let ok_after = tally.successes.iter().filter(|t| **t > after_kills).count();
    println!(
        "pg_terminate_backend x5 under load (4 writers): {killed} connections killed, {} writes \
         acknowledged, {} requests failed (all 503 database_unavailable), {ok_after} writes in the second after",
        tally.acknowledged.len(),
        tally.failures.len()
    );
    assert!(killed > 0, "the server's connections were killed");
    assert!(ok_after > 0, "writes succeed again right after the kills");
    assert_failures_are_clear_503s(&tally);
    assert_all_acknowledged_present(&app, &tally.acknowledged).await;
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_slowed_by_a_held_lock_delays_writes_but_refuses_or_loses_none() {
    use sqlx::{Connection, Executor};
    let pg = PrivatePg::start();
    let url = pg.create_database("sy_slow").await;
    let app = spawn_app_on_database(url.clone()).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tally, tasks) = start_load(&app, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another connection holds the ledger head (every write takes it) for 3 s.
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
    let held_at = Instant::now();
    blocker.execute("BEGIN").await.expect("begin");
    blocker
        .execute("LOCK TABLE ledger_head IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    tokio::time::sleep(Duration::from_secs(3)).await;
    blocker.execute("COMMIT").await.expect("commit");
    let released_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop_load(&stop, tasks).await;
    let tally = tally.lock().expect("tally");
    let during = tally
        .successes
        .iter()
        .filter(|t| **t > held_at && **t < released_at)
        .count();
    let after = tally.successes.iter().filter(|t| **t > released_at).count();
    println!(
        "a 3 s lock on ledger_head under load (4 writers): {} writes acknowledged ({during} while \
         held, {after} in the second after), {} failed",
        tally.acknowledged.len(),
        tally.failures.len()
    );
    assert!(after > 0, "writes go on once the lock is released");
    assert_failures_are_clear_503s(&tally);
    assert_all_acknowledged_present(&app, &tally.acknowledged).await;
}

/// A `switchyard serve` child process whose files may not grow past
/// `fsize` bytes (RLIMIT_FSIZE, with SIGXFSZ ignored so a write past it fails
/// with EFBIG as on a full disk); the limit is lifted later with `prlimit --pid`.
struct LimitedServer {
    child: std::process::Child,
    address: String,
}

impl LimitedServer {
    async fn start(database_url: &str, fsize: u64) -> LimitedServer {
        let port = free_port();
        let child = std::process::Command::new("bash")
            .arg("-c")
            .arg(r#"trap "" XFSZ; exec prlimit --fsize="$1":unlimited -- "$0" serve"#)
            .arg(env!("CARGO_BIN_EXE_switchyard"))
            .arg(fsize.to_string())
            .env("DATABASE_URL", database_url)
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("LOG_FORMAT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("switchyard serve starts under prlimit");
        let address = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if reqwest::get(format!("{address}/healthz")).await.is_ok() {
                return LimitedServer { child, address };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the limited server did not start");
    }

    fn lift_limit(&self) {
        let out = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &self.child.id().to_string(),
                "--fsize=unlimited:unlimited",
            ])
            .output()
            .expect("prlimit");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_size(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_under_sqlite_answers_503_loses_no_acknowledged_write_and_recovers_when_space_is_back(
) {
    let app = crate::helpers::spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    let path = app
        .database_url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL")
        .to_owned();
    // Room for a few dozen more writes, then the "disk" is full.
    let largest = file_size(&path).max(file_size(&format!("{path}-wal")));
    let server = LimitedServer::start(&app.database_url, largest + 256 * 1024).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tally, tasks) = start_load_at(&server.address, &app.token, 2, stop.clone());
    // Until the disk is full: the first refusal.
    let full_at = Instant::now();
    while tally.lock().expect("tally").failures.is_empty() {
        assert!(
            full_at.elapsed() < Duration::from_secs(60),
            "the size limit was never reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let reads_while_full = reqwest::Client::new()
        .get(format!("{}/api/v1/versions/chat:1", server.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("read while full")
        .status();
    server.lift_limit();
    let freed_at = Instant::now();
    let mut recovered = None;
    while freed_at.elapsed() < Duration::from_secs(30) {
        if let Some(t) = tally
            .lock()
            .expect("tally")
            .successes
            .iter()
            .find(|t| **t > freed_at)
        {
            recovered = Some(t.duration_since(freed_at));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = recovered.expect("writes succeed again once space is back, without a restart");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_load(&stop, tasks).await;
    let tally = tally.lock().expect("tally");
    println!(
        "SQLite disk full (RLIMIT_FSIZE) under load (2 writers): {} writes acknowledged, {} \
         refused while full (all 503 database_unavailable), reads while full answered {}, first \
         write {:.0} ms after space was back",
        tally.acknowledged.len(),
        tally.failures.len(),
        reads_while_full.as_u16(),
        recovered.as_secs_f64() * 1000.0
    );
    assert_eq!(
        reads_while_full,
        StatusCode::OK,
        "reads go on while the disk is full"
    );
    assert_failures_are_clear_503s(&tally);
    assert_all_acknowledged_present(&app, &tally.acknowledged).await;
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
}
