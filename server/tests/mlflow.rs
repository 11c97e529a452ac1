//! `switchyard import mlflow` against a real MLflow tracking server (PyPI
//! `mlflow==3.17.2`, SQLite backend, loopback port), filled over MLflow's
//! REST API, imported by the real `switchyard` binary into SQLite and
//! PostgreSQL. Faults (HTTP 500, malformed JSON mid-pagination) come from a
//! small relay in front of the real server that breaks one chosen page.
//!
//! Needs `scripts/peers.sh` (the test command runs it; SWITCHYARD_MLFLOW).
//! Without MLflow the tests say so and pass, unless
//! `SWITCHYARD_PEERS_REQUIRED=1`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard::store::{self, AuditQuery, DynStore, StoreSettings};
use switchyard_domain::{FullId, ModelId, Stage};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `mlflow` binary, or `None` (the test is skipped) unless peers are required.
fn mlflow_bin() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = std::env::var("SWITCHYARD_MLFLOW")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".tools/mlflow-venv/bin/mlflow"));
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var("SWITCHYARD_PEERS_REQUIRED").as_deref() != Ok("1"),
        "SWITCHYARD_PEERS_REQUIRED=1 but MLflow is missing at {} (scripts/peers.sh installs it)",
        bin.display()
    );
    eprintln!(
        "SKIPPED: no MLflow at {} (run scripts/test, or install mlflow==3.17.2 there)",
        bin.display()
    );
    None
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mlflow-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// A real MLflow tracking server in its own process group (its worker
/// processes are stopped with it). Registry webhooks are allowed to reach
/// loopback, and their secrets survive a restart (a fixed encryption key).
struct Mlflow {
    child: Option<Child>,
    url: String,
    http: reqwest::Client,
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    fernet_key: String,
    /// MLflow's basic-auth app is on: the admin's user and password (the test's own calls use them).
    admin: Option<(String, String)>,
}

impl Mlflow {
    async fn start(bin: &Path, dir: &Path) -> Mlflow {
        Mlflow::start_with(bin, dir, None).await
    }

    /// The test run's shared MLflow when `SWITCHYARD_MLFLOW_URL` names one
    /// (`scripts/test` starts it beside the build, so its start-up costs no
    /// test time; not stopped here), else one of this test's own. Tests that
    /// share it use model names of their own (a random tag) and import
    /// only those (`--models`), so they stay independent.
    async fn shared(bin: &Path, dir: &Path) -> Mlflow {
        let Some(url) = std::env::var("SWITCHYARD_MLFLOW_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return Mlflow::start(bin, dir).await;
        };
        let url = url.trim_end_matches('/').to_owned();
        let port = url
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("SWITCHYARD_MLFLOW_URL={url:?} has no port"));
        let m = Mlflow {
            child: None,
            url,
            http: reqwest::Client::new(),
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            port,
            fernet_key: String::new(),
            admin: None,
        };
        // Started beside the build: it may still be starting.
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let up = m.http.get(format!("{}/health", m.url)).send().await;
            if matches!(up, Ok(ref r) if r.status().is_success()) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "the shared MLflow at SWITCHYARD_MLFLOW_URL={} did not answer /health within 240 s",
                m.url
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// With `admin_password`: MLflow's own `--app-name basic-auth`, every
    /// other user READ by default, its user store in `dir`.
    async fn start_with(bin: &Path, dir: &Path, admin_password: Option<&str>) -> Mlflow {
        use base64::Engine;
        let port = free_port();
        let mut server = Mlflow {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            port,
            fernet_key: base64::engine::general_purpose::URL_SAFE
                .encode(rand::random::<[u8; 32]>()),
            admin: admin_password.map(|p| ("admin".to_owned(), p.to_owned())),
        };
        server.restart().await;
        server
    }

    /// Starts the server (again) on its port and database.
    async fn restart(&mut self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mlflow.log"))
            .expect("log file");
        let mut command = Command::new(&self.bin);
        if let Some((user, password)) = &self.admin {
            let ini = self.dir.join("basic_auth.ini");
            std::fs::write(
                &ini,
                format!(
                    "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\n\
                     admin_username = {user}\nadmin_password = {password}\n\
                     authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
                    self.dir.join("auth.db").display()
                ),
            )
            .expect("auth config written");
            command
                .args(["server", "--app-name", "basic-auth"])
                .env("MLFLOW_AUTH_CONFIG_PATH", &ini)
                .env("MLFLOW_FLASK_SERVER_SECRET_KEY", &self.fernet_key)
                .env_remove("MLFLOW_AUTH_ADMIN_PASSWORD")
                .env_remove("MLFLOW_AUTH_ADMIN_USERNAME");
        } else {
            command.arg("server");
        }
        let child = command
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                self.dir.join("mlflow.db").display()
            ))
            .arg("--default-artifact-root")
            .arg(self.dir.join("artifacts"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--workers",
                "1",
            ])
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .env("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
            .env("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
            .env("MLFLOW_WEBHOOK_CACHE_TTL", "1")
            .env("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", &self.fernet_key)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mlflow server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let up = self.http.get(format!("{}/health", self.url)).send().await;
            // 401: the basic-auth app answers, so the server is up.
            if matches!(up, Ok(ref r) if r.status().is_success() || r.status() == 401) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "MLflow exited ({status}) before answering; log: {}",
                    std::fs::read_to_string(self.dir.join("mlflow.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "MLflow did not answer /health within 180 s; log: {}",
                std::fs::read_to_string(self.dir.join("mlflow.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops the server and its workers.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let _ = child.wait();
        }
    }

    /// The version MLflow's get-by-alias answers, if any.
    async fn alias_version(&self, name: &str, alias: &str) -> Option<String> {
        let mut req = self
            .http
            .get(format!(
                "{}/api/2.0/mlflow/registered-models/alias",
                self.url
            ))
            .query(&[("name", name), ("alias", alias)]);
        if let Some((user, password)) = &self.admin {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().await.ok()?;
        let v: Value = resp.json().await.ok()?;
        v["model_version"]["version"].as_str().map(str::to_owned)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}/api/2.0/mlflow/{path}", self.url))
            .json(&body);
        if let Some((user, password)) = &self.admin {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().await.expect("MLflow answers");
        let status = resp.status();
        let text = resp.text().await.expect("a body");
        assert!(
            status.is_success(),
            "POST {path} {body}: HTTP {status}: {text}"
        );
        serde_json::from_str(&text).expect("JSON")
    }

    async fn model(&self, name: &str) {
        self.post("registered-models/create", json!({ "name": name }))
            .await;
    }

    async fn version(&self, name: &str, source: &str, extra: Value) -> String {
        let mut body = json!({ "name": name, "source": source });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let v = self.post("model-versions/create", body).await;
        v["model_version"]["version"]
            .as_str()
            .expect("a version number")
            .to_owned()
    }

    async fn alias(&self, name: &str, alias: &str, version: &str) {
        self.post(
            "registered-models/alias",
            json!({ "name": name, "alias": alias, "version": version }),
        )
        .await;
    }
}

impl Drop for Mlflow {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `switchyard import mlflow …` on `db`.
fn import(db: &str, uri: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["import", "mlflow", "--tracking-uri", uri])
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .env_remove("MLFLOW_TRACKING_USERNAME")
        .output()
        .expect("switchyard runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn pg_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database: a SQLite file in `dir` or a new PostgreSQL database.
async fn fresh_database(postgres: bool, dir: &Path, name: &str) -> String {
    if !postgres {
        return format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    }
    use sqlx::{Connection, Executor};
    let admin_url = pg_admin_url();
    let db = format!("sy_mlflow_{name}_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect(
        "PostgreSQL is reachable at SWITCHYARD_TEST_PG (start it, or point the variable at one)",
    );
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .expect("create database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database name");
    format!("{base}/{db}")
}

async fn drop_database(url: &str) {
    use sqlx::{Connection, Executor};
    if !url.starts_with("postgres") {
        return;
    }
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut admin) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

async fn open(url: &str) -> DynStore {
    store::connect(url, StoreSettings::default())
        .await
        .expect("the database opens")
}

fn fid(s: &str) -> FullId {
    FullId::parse(s).expect("a full id")
}

async fn version_count(store: &DynStore, model: &str) -> usize {
    let id = ModelId::parse(model).expect("a model id");
    store.list_versions(&id).await.map(|v| v.len()).unwrap_or(0)
}

async fn import_events(store: &DynStore) -> Vec<switchyard_domain::ledger::LedgerEvent> {
    let mut out = Vec::new();
    let mut q = AuditQuery {
        actor: Some("import:mlflow".into()),
        limit: 1000,
        ..AuditQuery::default()
    };
    loop {
        let page = store.audit_page(&q).await.expect("the ledger reads");
        out.extend(page.events);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

/// The registry every import test reads: names to map and to refuse,
/// aliases, a deprecated stage, a run, tags, and enough versions for
/// several pages at `--page-size 2`.
async fn fill(m: &Mlflow) -> String {
    let run = m.post("runs/create", json!({ "experiment_id": "0" })).await["run"]["info"]["run_id"]
        .as_str()
        .expect("a run id")
        .to_owned();
    m.model("Fraud Detector").await;
    m.version(
        "Fraud Detector",
        &format!("runs:/{run}/model"),
        json!({ "run_id": run, "description": "first", "tags": [{ "key": "team", "value": "risk" }] }),
    )
    .await;
    m.version("Fraud Detector", "s3://models/fraud/2", json!({}))
        .await;
    m.version("Fraud Detector", "s3://models/fraud/3", json!({}))
        .await;
    m.alias("Fraud Detector", "champion", "2").await;
    m.alias("Fraud Detector", "challenger", "3").await;
    m.alias("Fraud Detector", "unmapped", "1").await;
    // Two names that map to the same model id, and one that maps to none.
    for name in ["Churn Model", "churn-model", "!!!"] {
        m.model(name).await;
        m.version(name, "s3://models/x/1", json!({})).await;
    }
    // Its model id already holds a version registered by CI in Switchyard.
    m.model("Scorer").await;
    m.version("Scorer", "s3://models/scorer/1", json!({})).await;
    m.model("ranker").await;
    for i in 1..=5 {
        m.version("ranker", &format!("gs://models/ranker/{i}"), json!({}))
            .await;
    }
    m.post(
        "model-versions/transition-stage",
        json!({ "name": "ranker", "version": "4", "stage": "Staging", "archive_existing_versions": false }),
    )
    .await;
    run
}

const MAPPING: [&str; 6] = [
    "--alias",
    "champion=production",
    "--alias",
    "challenger=staging",
    "--stage",
    "Staging=staging",
];

async fn import_scenario(m: &Mlflow, run: &str, postgres: bool, dir: &Path) {
    let db = fresh_database(postgres, dir, "main").await;
    let mut args = MAPPING.to_vec();
    args.extend(["--page-size", "2"]);

    {
        let store = open(&db).await;
        store.migrate().await.expect("migrated");
        let ci = switchyard_domain::types::NewVersion {
            full_id: fid("scorer:v1"),
            config: json!({ "temperature": 0.1 }),
            config_hash: switchyard_domain::config_hash::config_hash(
                &json!({ "temperature": 0.1 }),
            )
            .expect("a hash"),
            artifact_uri: None,
            labels: None,
        };
        store
            .register_version(ci, "ci", switchyard_domain::Timestamp::now())
            .await
            .expect("registered by CI");
    }
    // Dry run: exactly what would be created and refused, nothing written.
    let mut dry_args = args.clone();
    dry_args.push("--dry-run");
    let dry = import(&db, &m.url, &dry_args);
    let out = stdout(&dry);
    assert!(dry.status.success(), "{out}{}", stderr(&dry));
    for line in [
        "create    fraud-detector:v1 ← MLflow \"Fraud Detector\" version 1 (stage development; alias unmapped)",
        "create    fraud-detector:v2 ← MLflow \"Fraud Detector\" version 2 (stage production, pinned in production; alias champion)",
        "create    fraud-detector:v3 ← MLflow \"Fraud Detector\" version 3 (stage staging, pinned in staging; alias challenger)",
        "create    ranker:v4 ← MLflow \"ranker\" version 4 (stage staging)",
        "create    ranker:v5 ← MLflow \"ranker\" version 5 (stage development)",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(
        out.contains("refused   MLflow model \"!!!\": MLflow name \"!!!\" has no letter or digit"),
        "{out}"
    );
    assert!(
        out.contains("refused   MLflow model \"Churn Model\": MLflow name \"Churn Model\" maps to model id churn-model, as \"churn-model\" does"),
        "{out}"
    );
    assert!(
        out.contains("refused   MLflow model \"churn-model\""),
        "{out}"
    );
    assert!(
        out.contains("refused   MLflow model \"Scorer\": model id scorer already holds scorer:v1, not imported from this MLflow model"),
        "{out}"
    );
    assert!(
        out.contains("dry run from ") && out.contains(": 8 would be created, 0 already imported, 0 conflict(s), 4 refused; 2 model(s), 8 version(s)"),
        "{out}"
    );
    let store = open(&db).await;
    assert_eq!(
        version_count(&store, "fraud-detector").await,
        0,
        "a dry run writes nothing"
    );

    // The import.
    let run1 = import(&db, &m.url, &args);
    let out = stdout(&run1);
    assert!(run1.status.success(), "{out}{}", stderr(&run1));
    assert!(
        out.contains(": 8 created, 0 already imported, 0 conflict(s), 4 refused"),
        "{out}"
    );
    assert_eq!(version_count(&store, "fraud-detector").await, 3);
    assert_eq!(version_count(&store, "ranker").await, 5);
    assert_eq!(version_count(&store, "churn-model").await, 0);

    let v1 = store
        .get_version(&fid("fraud-detector:v1"))
        .await
        .expect("read")
        .expect("v1");
    assert_eq!(v1.stage, Stage::Development);
    assert_eq!(v1.config["mlflow"]["run_id"], json!(run));
    assert_eq!(v1.config["mlflow"]["tags"], json!({ "team": "risk" }));
    assert_eq!(v1.config["mlflow"]["description"], json!("first"));
    assert_eq!(
        v1.artifact_uri.as_deref(),
        Some(format!("runs:/{run}/model").as_str())
    );
    assert_eq!(v1.created_by, "import:mlflow");
    let v2 = store
        .get_version(&fid("fraud-detector:v2"))
        .await
        .expect("read")
        .expect("v2");
    assert_eq!(v2.stage, Stage::Production);
    assert_eq!(v2.artifact_uri.as_deref(), Some("s3://models/fraud/2"));
    let v3 = store
        .get_version(&fid("fraud-detector:v3"))
        .await
        .expect("read")
        .expect("v3");
    assert_eq!(v3.stage, Stage::Staging);
    let r4 = store
        .get_version(&fid("ranker:v4"))
        .await
        .expect("read")
        .expect("ranker:v4");
    assert_eq!(r4.stage, Stage::Staging);

    let envs = store.list_environments().await.expect("environments");
    let pinned = |env: &str, model: &str| {
        envs.iter()
            .find(|e| e.name == env)
            .and_then(|e| e.pins.iter().find(|p| p.model_id.as_str() == model))
            .map(|p| p.full_id.to_string())
    };
    assert_eq!(
        pinned("production", "fraud-detector").as_deref(),
        Some("fraud-detector:v2")
    );
    assert_eq!(
        pinned("staging", "fraud-detector").as_deref(),
        Some("fraud-detector:v3")
    );
    assert_eq!(pinned("production", "ranker"), None);

    // Every imported item is in the ledger as import:mlflow with its source.
    let events = import_events(&store).await;
    let registered: Vec<_> = events
        .iter()
        .filter(|e| e.action == "version.registered")
        .collect();
    assert_eq!(registered.len(), 8);
    for e in &registered {
        let imp = &e.details["import"];
        assert_eq!(imp["tracking_uri"], json!(m.url), "{}", e.details);
        assert!(
            imp["mlflow_created_at"]
                .as_str()
                .is_some_and(|t| t.starts_with("20")),
            "{}",
            e.details
        );
        assert!(imp["mlflow_version"].is_string());
    }
    let pins: Vec<_> = events
        .iter()
        .filter(|e| e.action == "pin.changed")
        .collect();
    assert_eq!(pins.len(), 2, "{pins:?}");
    assert!(pins
        .iter()
        .all(|e| e.reason.as_deref().is_some_and(|r| r.contains(&m.url))));
    let events_before = events.len();

    // Again: nothing new.
    let run2 = import(&db, &m.url, &args);
    let out = stdout(&run2);
    assert!(run2.status.success(), "{out}{}", stderr(&run2));
    assert!(
        out.contains(": 0 created, 8 already imported, 0 conflict(s), 4 refused"),
        "{out}"
    );
    assert_eq!(import_events(&store).await.len(), events_before);

    // Changed in MLflow after the import: a conflict, not overwritten.
    m.post(
        "model-versions/set-tag",
        json!({ "name": "Fraud Detector", "version": "1", "key": "validated", "value": "true" }),
    )
    .await;
    let run3 = import(&db, &m.url, &args);
    let out = stdout(&run3);
    assert!(run3.status.success(), "{out}{}", stderr(&run3));
    assert!(
        out.contains("conflict  fraud-detector:v1 ← MLflow \"Fraud Detector\" version 1: changed in MLflow after import, not overwritten"),
        "{out}"
    );
    assert!(
        out.contains(": 0 created, 7 already imported, 1 conflict(s), 4 refused"),
        "{out}"
    );
    let again = store
        .get_version(&fid("fraud-detector:v1"))
        .await
        .expect("read")
        .expect("v1");
    assert_eq!(again.config_hash, v1.config_hash);
    m.call(
        reqwest::Method::DELETE,
        "model-versions/delete-tag",
        json!({ "name": "Fraud Detector", "version": "1", "key": "validated" }),
    )
    .await;

    assert!(store.audit_verify().await.expect("verify").ok);
    drop(store);
    drop_database(&db).await;
}

/// What the relay breaks: the second page of one model's versions.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    Http500,
    Malformed,
    /// Every version list answered 1 s late: an import lasts long enough to watch.
    Slow,
    /// Every version list of `ranker` answered HTTP 500, first page included.
    RankerDown,
}

/// A relay in front of the real MLflow that breaks page 2 of `ranker`'s
/// versions as told.
async fn relay(upstream: String, fault: Arc<std::sync::Mutex<Fault>>) -> String {
    use axum::extract::State;
    use axum::http::{StatusCode, Uri};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let http = reqwest::Client::new();
    let app = axum::Router::new()
        .fallback(
            |State((up, fault, http)): State<(
                String,
                Arc<std::sync::Mutex<Fault>>,
                reqwest::Client,
            )>,
             uri: Uri| async move {
                let query = uri.query().unwrap_or_default().to_owned();
                let now = *fault.lock().expect("lock");
                if uri.path().ends_with("model-versions/search")
                    && query.contains("ranker")
                    && query.contains("page_token")
                {
                    match now {
                        Fault::Http500 => {
                            return (
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "<html>Internal Server Error</html>",
                            )
                                .into_response()
                        }
                        Fault::Malformed => {
                            return (
                                StatusCode::OK,
                                "{\"model_versions\": [{\"name\": \"ranker\"",
                            )
                                .into_response()
                        }
                        Fault::None | Fault::Slow | Fault::RankerDown => {}
                    }
                }
                if uri.path().ends_with("model-versions/search") {
                    match now {
                        Fault::Slow => tokio::time::sleep(Duration::from_millis(1000)).await,
                        Fault::RankerDown if query.contains("ranker") => {
                            return (StatusCode::INTERNAL_SERVER_ERROR, "<html>down</html>")
                                .into_response()
                        }
                        _ => {}
                    }
                }
                let url = format!("{up}{}?{query}", uri.path());
                match http.get(url).send().await {
                    Ok(r) => {
                        let status = StatusCode::from_u16(r.status().as_u16())
                            .unwrap_or(StatusCode::BAD_GATEWAY);
                        (status, r.text().await.unwrap_or_default()).into_response()
                    }
                    Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                }
            },
        )
        .with_state((upstream, fault, http));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn fault_scenario(m: &Mlflow, dir: &Path) {
    let db = fresh_database(false, dir, "faults").await;
    let fault = Arc::new(std::sync::Mutex::new(Fault::Http500));
    let uri = relay(m.url.clone(), fault.clone()).await;
    let mut args = MAPPING.to_vec();
    args.extend(["--page-size", "2"]);
    let store = open(&db).await;

    let broken = import(&db, &uri, &args);
    let err = stderr(&broken);
    assert!(!broken.status.success(), "{}", stdout(&broken));
    assert!(
        err.contains("the import stopped: at MLflow model \"ranker\"")
            && err.contains("(page 2)")
            && err.contains("HTTP 500"),
        "{err}"
    );
    assert!(stdout(&broken).contains("STOPPED: "), "{}", stdout(&broken));
    assert_eq!(
        version_count(&store, "ranker").await,
        0,
        "nothing of ranker is half-imported"
    );

    *fault.lock().expect("lock") = Fault::Malformed;
    let broken = import(&db, &uri, &args);
    let err = stderr(&broken);
    assert!(!broken.status.success());
    assert!(
        err.contains("\"ranker\"") && err.contains("malformed JSON"),
        "{err}"
    );
    assert_eq!(version_count(&store, "ranker").await, 0);

    // A pattern in another glob's syntax: refused before MLflow is asked.
    let bad = import(&db, &uri, &["--models", "fraud-[ab]"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("--models: the model name pattern \"fraud-[ab]\" holds '['"),
        "{}",
        stderr(&bad)
    );

    // Unreachable.
    let gone = format!("http://127.0.0.1:{}", free_port());
    let broken = import(&db, &gone, &args);
    assert!(!broken.status.success());
    assert!(stderr(&broken).contains("did not answer while listing registered models (page 1)"));

    // Resumed: only what was missing is created.
    *fault.lock().expect("lock") = Fault::None;
    let done = import(&db, &uri, &args);
    let out = stdout(&done);
    assert!(done.status.success(), "{out}{}", stderr(&done));
    assert_eq!(version_count(&store, "ranker").await, 5);
    assert_eq!(version_count(&store, "fraud-detector").await, 3);
    assert!(
        out.contains(" created, ") && out.contains(", 0 conflict(s), 3 refused"),
        "{out}"
    );
    assert!(store.audit_verify().await.expect("verify").ok);

    // A version deleted in MLflow after its import: reported, kept.
    m.call(
        reqwest::Method::DELETE,
        "model-versions/delete",
        json!({ "name": "ranker", "version": "1" }),
    )
    .await;
    // Through the same URL as before: versions from another tracking URI are another source's.
    let after = import(&db, &uri, &args);
    let out = stdout(&after);
    assert!(after.status.success(), "{out}{}", stderr(&after));
    assert!(
        out.contains("gone      ranker:v1 ← MLflow \"ranker\" version 1: deleted in MLflow after import; kept in Switchyard"),
        "{out}"
    );
    assert!(
        out.contains("; 1 version(s) deleted in MLflow since their import (kept)"),
        "{out}"
    );
    assert_eq!(version_count(&store, "ranker").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_a_real_mlflow_registry_with_mapping_refusals_repeats_conflicts_and_faults() {
    let Some(bin) = mlflow_bin() else { return };
    let dir = scratch("import");
    let m = Mlflow::start(&bin, &dir).await;
    let run = fill(&m).await;
    import_scenario(&m, &run, false, &dir).await;
    import_scenario(&m, &run, true, &dir).await;
    fault_scenario(&m, &dir).await;
    follow_scenario(&m, &dir).await;
    console_scenario(&m).await;
}

/// The server's follow job registers a version new in MLflow within 5 s.
async fn follow_scenario(m: &Mlflow, dir: &Path) {
    use switchyard::mlflow::{spawn_follow, FollowSettings, ImportOptions};
    let db = fresh_database(false, dir, "follow").await;
    let store = open(&db).await;
    store.migrate().await.expect("migrated");
    let settings = FollowSettings::new(
        "mlflow",
        &m.url,
        None,
        ImportOptions {
            aliases: [("champion".to_owned(), "production".to_owned())].into(),
            ..ImportOptions::default()
        },
        Duration::from_millis(500),
    )
    .expect("a source");
    let job = spawn_follow(store.clone(), settings, None).expect("follow starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while version_count(&store, "ranker").await < 4 {
        assert!(
            Instant::now() < deadline,
            "the first follow pass did not import ranker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = import_events(&store).await.len();
    let new = m.version("ranker", "gs://models/ranker/6", json!({})).await;
    assert_eq!(new, "6");
    let registered = Instant::now();
    let id = fid("ranker:v6");
    loop {
        if let Some(v) = store.get_version(&id).await.expect("read") {
            assert_eq!(v.created_by, "import:mlflow");
            break;
        }
        assert!(
            registered.elapsed() < Duration::from_secs(5),
            "ranker:v6 was not followed within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "FIGURE mlflow follow: new version registered in Switchyard {} ms after MLflow answered",
        registered.elapsed().as_millis()
    );
    // Later passes create nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(import_events(&store).await.len(), before + 1);
    assert_eq!(version_count(&store, "fraud-detector").await, 3);
    job.abort();
}

/// `SWITCHYARD_MLFLOW_IMPORT_SIZE=MODELSxVERSIONS` (default 4x10, kept small for the test command; the
/// README's figure is 50x40).
fn bulk_size() -> (usize, usize) {
    let raw = std::env::var("SWITCHYARD_MLFLOW_IMPORT_SIZE").unwrap_or_else(|_| "4x10".into());
    let parsed = raw
        .split_once('x')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    parsed.unwrap_or_else(|| panic!("SWITCHYARD_MLFLOW_IMPORT_SIZE={raw:?} is not MODELSxVERSIONS"))
}

/// The seconds and versions/s of the import line of `out`.
fn rate(out: &str) -> f64 {
    out.lines()
        .find_map(|l| {
            let (_, tail) = l.split_once(" read in ")?;
            let (_, rate) = tail.split_once('(')?;
            rate.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no rate in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_many_models_and_versions_and_prints_versions_per_second() {
    let Some(bin) = mlflow_bin() else { return };
    let (models, versions) = bulk_size();
    let dir = scratch("bulk");
    let m = Arc::new(Mlflow::shared(&bin, &dir).await);
    // Its own model names on a shared server: only they are imported.
    let tag = format!("{:08x}", rand::random::<u32>());
    let pattern = format!("bulk-{tag}-*");
    let filled = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    // Four writers at a time: MLflow numbers each model's versions itself.
    for chunk in (0..models)
        .collect::<Vec<_>>()
        .chunks(models.div_ceil(4).max(1))
    {
        let (m, chunk, tag) = (m.clone(), chunk.to_vec(), tag.clone());
        tasks.spawn(async move {
            for i in chunk {
                let name = format!("bulk-{tag}-{i:03}");
                m.model(&name).await;
                for v in 1..=versions {
                    m.version(
                        &name,
                        &format!("s3://bulk/{name}/{v}"),
                        json!({ "tags": [{ "key": "n", "value": v.to_string() }] }),
                    )
                    .await;
                }
                m.alias(&name, "champion", "1").await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a filler task");
    }
    eprintln!(
        "filled MLflow with {models} models x {versions} versions in {:.1}s",
        filled.elapsed().as_secs_f64()
    );
    let total = models * versions;
    for postgres in [false, true] {
        let db = fresh_database(postgres, &dir, "bulk").await;
        let args = ["--alias", "champion=production", "--models", &pattern];
        let first = import(&db, &m.url, &args);
        let out = stdout(&first);
        assert!(first.status.success(), "{out}{}", stderr(&first));
        assert!(
            out.contains(&format!(": {total} created, 0 already imported, 0 conflict(s), 0 refused; {models} model(s), {total} version(s)")),
            "{out}"
        );
        let store = open(&db).await;
        assert_eq!(
            version_count(&store, &format!("bulk-{tag}-000")).await,
            versions
        );
        let envs = store.list_environments().await.expect("environments");
        let production = envs
            .iter()
            .find(|e| e.name == "production")
            .expect("production");
        assert_eq!(production.pins.len(), models);
        let again = import(&db, &m.url, &args);
        let out2 = stdout(&again);
        assert!(
            out2.contains(&format!(": 0 created, {total} already imported")),
            "{out2}"
        );
        let backend = if postgres { "PostgreSQL" } else { "SQLite" };
        eprintln!(
            "FIGURE mlflow import {models}x{versions} into {backend}: first import {:.0} versions/s, repeat {:.0} versions/s",
            rate(&out),
            rate(&out2)
        );
        drop(store);
        drop_database(&db).await;
    }
}

/// `switchyard serve` following MLflow (by a long poll and by webhooks) and
/// writing promotions back, as a process that a test can kill -9.
struct Served(Child);

const WEBHOOK_SECRET: &str = "mlflow-webhook-secret-for-tests";

impl Served {
    /// Follows `mlflow` (source `mlflow`, the models named `models`) and
    /// the sources of the file `sources`, writing promotions back to each.
    async fn start(
        db: &str,
        port: u16,
        mlflow: &str,
        models: &str,
        sources: &Path,
        log: &Path,
    ) -> Served {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .env("DATABASE_URL", db)
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_MLFLOW_FOLLOW", mlflow)
            .env("SWITCHYARD_MLFLOW_FOLLOW_ALIASES", "champion=production")
            .env("SWITCHYARD_MLFLOW_FOLLOW_MODELS", models)
            .env("SWITCHYARD_MLFLOW_SOURCES", sources)
            // One poll at start-up, then only webhooks bring versions in.
            .env("SWITCHYARD_MLFLOW_FOLLOW_INTERVAL_MS", "3600000")
            .env("SWITCHYARD_MLFLOW_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SWITCHYARD_MLFLOW_WRITE_BACK", "champion=production")
            .env("SWITCHYARD_WEBHOOK_POLL_MS", "100")
            .env("SWITCHYARD_WEBHOOK_TIMEOUT_MS", "2000")
            .env("SWITCHYARD_WEBHOOK_BACKOFF_MS", "200")
            .env("SWITCHYARD_WEBHOOK_BACKOFF_MAX_MS", "1000")
            .env("SWITCHYARD_WEBHOOK_BREAKER_FAILURES", "1000")
            .env_remove("MLFLOW_TRACKING_TOKEN")
            .env_remove("MLFLOW_TRACKING_USERNAME")
            .env_remove("LOG_FORMAT")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("switchyard serve starts");
        let served = Served(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await;
            if matches!(up, Ok(ref r) if r.status().is_success()) {
                return served;
            }
            assert!(
                Instant::now() < deadline,
                "switchyard serve did not start; log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn person(
    name: &str,
    role: switchyard_domain::access::Role,
) -> switchyard::store::identity::Identity {
    switchyard::store::identity::Identity::with_role_on_all(name, role)
}

/// Takes `full_id` to staging if it is not there, then through a production
/// promotion requested by dave and approved by bob and carol.
async fn promote(store: &DynStore, full_id: &str) {
    use switchyard_domain::access::Role;
    use switchyard_domain::lifecycle::MoveVia;
    use switchyard_domain::Timestamp;
    let id = fid(full_id);
    let v = store
        .get_version(&id)
        .await
        .expect("read")
        .expect("the version");
    if v.stage == Stage::Development {
        store
            .change_stage(
                &id,
                Stage::Staging,
                MoveVia::Manual { is_admin: false },
                None,
                "alice",
                Timestamp::now(),
            )
            .await
            .expect("to staging");
    }
    let now = Timestamp::now();
    let p = store
        .request_promotion(
            &id,
            "production",
            "better",
            &person("dave", Role::Deployer),
            now,
        )
        .await
        .expect("requested");
    for approver in ["bob", "carol"] {
        store
            .approve_promotion(
                p.id,
                None,
                &person(approver, Role::Approver),
                Timestamp::now(),
            )
            .await
            .expect("approved");
    }
}

async fn events_of(store: &DynStore, action: &str) -> Vec<switchyard_domain::ledger::LedgerEvent> {
    let q = AuditQuery {
        action: Some(action.to_owned()),
        limit: 1000,
        ..AuditQuery::default()
    };
    store.audit_page(&q).await.expect("the ledger reads").events
}

async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// A TCP relay in front of a real MLflow that can cut the network: while
/// it is down, open connections are cut and new ones closed at once (an
/// outage as the server sees it, without restarting MLflow).
struct Outage {
    url: String,
    down: tokio::sync::watch::Sender<bool>,
}

impl Outage {
    async fn relay(upstream_port: u16) -> Outage {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (down, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watch = watch.clone();
                if *watch.borrow() {
                    continue; // dropped: closed at once
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Outage { url, down }
    }

    fn set_down(&self, down: bool) {
        let _ = self.down.send(down);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_are_written_back_to_the_mlflow_each_version_came_from_across_an_outage_and_a_kill_9_and_webhooks_bring_new_versions_in(
) {
    let Some(bin) = mlflow_bin() else { return };
    let dir = scratch("write-back");
    let (dir_a, dir_b) = (dir.join("a"), dir.join("b"));
    for d in [&dir_a, &dir_b] {
        std::fs::create_dir_all(d).expect("a scratch directory");
    }
    // Two MLflows, started together and used by both engines' runs (each
    // run has its own model names). `a` sends webhooks, so it is this
    // test's own; `b` may be the test run's shared one.
    let (a, b) = tokio::join!(Mlflow::start(&bin, &dir_a), Mlflow::shared(&bin, &dir_b));
    for postgres in [false, true] {
        write_back_scenario(&a, &b, &dir, postgres).await;
    }
}

/// Source `mlflow` follows MLflow `a` through a relay that can cut it off;
/// source `second` follows MLflow `b` (model ids prefixed `b-`). Both have
/// a model named `name`; a promotion sets the alias in the MLflow the
/// version came from, and `a`'s outage holds up only `a`'s write-backs.
async fn write_back_scenario(a: &Mlflow, b: &Mlflow, dir: &Path, postgres: bool) {
    use switchyard::store::notify::DestinationKind;
    use switchyard_domain::access::Role;
    let engine = if postgres { "PostgreSQL" } else { "SQLite" };
    let tag = format!("{:08x}", rand::random::<u32>());
    let name = format!("Fraud Detector {tag}");
    let id = format!("fraud-detector-{tag}");
    a.model(&name).await;
    for v in 1..=3 {
        a.version(&name, &format!("s3://models/fraud/{v}"), json!({}))
            .await;
    }
    a.alias(&name, "champion", "1").await;
    b.model(&name).await;
    for v in 1..=2 {
        b.version(&name, &format!("s3://models/fraud-b/{v}"), json!({}))
            .await;
    }
    b.alias(&name, "champion", "1").await;
    let outage = Outage::relay(a.port).await;
    let sources = dir.join(format!("sources-{tag}.yaml"));
    std::fs::write(
        &sources,
        format!(
            "sources:\n- name: second\n  tracking_uri: {}\n  prefix: b-\n  models: \"{name}\"\n  \
             aliases: {{champion: production}}\n  interval_ms: 3600000\n",
            b.url
        ),
    )
    .expect("sources written");

    let db = fresh_database(postgres, dir, "wb").await;
    let store = open(&db).await;
    store.migrate().await.expect("migrated");
    for (person, role) in [
        ("dave", Role::Deployer),
        ("bob", Role::Approver),
        ("carol", Role::Approver),
    ] {
        store
            .create_user(
                person,
                role,
                "$argon2id$not-checked-here",
                "test",
                switchyard_domain::Timestamp::now(),
            )
            .await
            .expect("user");
    }
    // A version that did not come from MLflow.
    let native = json!({ "image": "native:1" });
    store
        .register_version(
            switchyard_domain::types::NewVersion {
                full_id: fid("native:v1"),
                config_hash: switchyard_domain::config_hash::config_hash(&native).expect("hash"),
                config: native,
                artifact_uri: None,
                labels: None,
            },
            "ci",
            switchyard_domain::Timestamp::now(),
        )
        .await
        .expect("registered by CI");

    let port = free_port();
    let log = dir.join(format!("serve-{engine}.log"));
    let served = Served::start(&db, port, &outage.url, &name, &sources, &log).await;
    let b_id = format!("b-{id}");
    wait_for(
        "the start-up passes import both MLflows' models",
        Duration::from_secs(30),
        || async {
            version_count(&store, &id).await == 3 && version_count(&store, &b_id).await == 2
        },
    )
    .await;
    // One subscription per MLflow; the first records the skips.
    for (sub_name, url, others, records) in [
        (
            "mlflow-write-back",
            outage.url.as_str(),
            b.url.as_str(),
            true,
        ),
        (
            "mlflow-write-back-second",
            b.url.as_str(),
            outage.url.as_str(),
            false,
        ),
    ] {
        let sub = store
            .get_subscription(sub_name)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{engine}: no subscription {sub_name}"));
        assert_eq!(sub.kind, DestinationKind::MlflowAlias);
        assert_eq!(sub.url, url);
        assert_eq!(sub.filter.events, vec!["promotion.applied"]);
        assert_eq!(sub.filter.environments, vec!["production"]);
        assert_eq!(
            sub.options,
            json!({ "aliases": { "production": ["champion"] }, "others": [others], "records_skips": records })
        );
    }

    // A promotion applied in Switchyard moves the alias in the MLflow the version came from.
    promote(&store, &format!("{id}:v2")).await;
    let took = wait_for(
        "MLflow a's champion follows the promotion of v2",
        Duration::from_secs(15),
        || async { a.alias_version(&name, "champion").await.as_deref() == Some("2") },
    )
    .await;
    eprintln!("FIGURE mlflow write-back ({engine}): get-by-alias answers the promoted version {} ms after the promotion", took.as_millis());
    // Recorded once MLflow has answered: just after the alias moved.
    wait_for(
        "the write-back of v2 is recorded",
        Duration::from_secs(10),
        || async { !events_of(&store, "mlflow.alias_set").await.is_empty() },
    )
    .await;
    let set = events_of(&store, "mlflow.alias_set").await;
    assert_eq!(set.len(), 1, "{set:?}");
    assert_eq!(set[0].model_id.as_deref(), Some(id.as_str()));
    assert_eq!(set[0].version.as_deref(), Some("v2"));
    assert_eq!(set[0].environment.as_deref(), Some("production"));
    assert_eq!(set[0].details["tracking_uri"], outage.url.as_str());
    assert_eq!(set[0].details["answer"]["champion"]["version"], "2");
    assert_eq!(set[0].details["answer"]["champion"]["name"], name.as_str());
    let applied = events_of(&store, "promotion.applied").await;
    let applied_v2 = applied
        .iter()
        .find(|e| e.version.as_deref() == Some("v2"))
        .expect("applied");
    assert_eq!(set[0].details["promotion_event_id"], applied_v2.id);
    // MLflow b's model of the same name is not touched.
    assert_eq!(
        b.alias_version(&name, "champion").await.as_deref(),
        Some("1")
    );

    // A version not from MLflow: skipped once (not once per MLflow), with the reason.
    promote(&store, "native:v1").await;
    wait_for(
        "the skip of native:v1 is recorded",
        Duration::from_secs(15),
        || async { !events_of(&store, "mlflow.alias_skipped").await.is_empty() },
    )
    .await;
    let skipped = events_of(&store, "mlflow.alias_skipped").await;
    assert_eq!(skipped[0].model_id.as_deref(), Some("native"));
    let why = skipped[0].reason.clone().unwrap_or_default();
    assert!(why.contains("not imported from MLflow"), "{why}");
    assert_eq!(
        a.alias_version(&name, "champion").await.as_deref(),
        Some("2")
    );

    // Webhooks: MLflow sends to the server; a wrong secret is refused with 401.
    let hook = format!("http://127.0.0.1:{port}/api/v1/mlflow/webhook");
    let events = json!([
        { "entity": "MODEL_VERSION", "action": "CREATED" },
        { "entity": "MODEL_VERSION_ALIAS", "action": "CREATED" },
        { "entity": "REGISTERED_MODEL", "action": "CREATED" },
    ]);
    let bad = a
        .post("webhooks", json!({ "name": format!("wrong-secret-{tag}"), "url": hook, "secret": "not-the-configured-secret", "events": events }))
        .await;
    let bad_id = bad["webhook"]["webhook_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let tested = a.post(&format!("webhooks/{bad_id}/test"), json!({})).await;
    assert_eq!(tested["result"]["success"], false, "{tested}");
    assert_eq!(tested["result"]["response_status"], 401, "{tested}");
    a.call(
        reqwest::Method::DELETE,
        &format!("webhooks/{bad_id}"),
        json!({}),
    )
    .await;
    let good = a
        .post("webhooks", json!({ "name": format!("switchyard-{tag}"), "url": hook, "secret": WEBHOOK_SECRET, "events": events }))
        .await;
    let good_id = good["webhook"]["webhook_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let tested = a.post(&format!("webhooks/{good_id}/test"), json!({})).await;
    assert_eq!(tested["result"]["success"], true, "{tested}");
    assert_eq!(tested["result"]["response_status"], 202, "{tested}");
    // Unsigned, straight to the endpoint: 401 in the API's error shape.
    let unsigned = reqwest::Client::new()
        .post(&hook)
        .json(&json!({ "entity": "model_version", "action": "created", "data": { "name": name, "version": "9" } }))
        .send()
        .await
        .expect("answer");
    assert_eq!(unsigned.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: Value = unsigned.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("X-MLflow-Signature are required"),
        "{message}"
    );

    // The poll runs once an hour: a new version comes in by the webhook.
    tokio::time::sleep(Duration::from_millis(1200)).await; // MLflow's webhook cache (1 s)
    assert_eq!(
        a.version(&name, "s3://models/fraud/4", json!({})).await,
        "4"
    );
    let v4 = fid(&format!("{id}:v4"));
    let took = wait_for(
        "the webhook brings v4 in",
        Duration::from_secs(5),
        || async { store.get_version(&v4).await.ok().flatten().is_some() },
    )
    .await;
    eprintln!("FIGURE mlflow webhook follow ({engine}): new version registered in Switchyard {} ms after MLflow answered", took.as_millis());
    // The webhook stays out of the other engine's run.
    a.call(
        reqwest::Method::DELETE,
        &format!("webhooks/{good_id}"),
        json!({}),
    )
    .await;

    // MLflow a cut off during a promotion: retried, shown failing, and not
    // lost across a kill -9 of the server; MLflow b is written to meanwhile.
    outage.set_down(true);
    promote(&store, &format!("{id}:v3")).await;
    wait_for(
        "the write-back to a fails at least twice while a is cut off",
        Duration::from_secs(20),
        || async {
            store
                .subscription_health()
                .await
                .expect("health")
                .iter()
                .any(|h| {
                    h.name == "mlflow-write-back" && h.consecutive_failures >= 2 && h.pending == 1
                })
        },
    )
    .await;
    // Shown where an admin looks: the notification status endpoint, naming the MLflow.
    let status: Value = admin_client(&store)
        .await
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/notifications/status"
        ))
        .send()
        .await
        .expect("status answers")
        .json()
        .await
        .expect("JSON");
    let warning = status["warnings"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["subscription"] == "mlflow-write-back"))
        .unwrap_or_else(|| panic!("no warning for the write-back: {status}"));
    assert_eq!(warning["warning"], "failing", "{status}");
    assert_eq!(warning["pending"], 1, "{status}");
    let shown = warning["last_error"].as_str().unwrap_or_default();
    assert!(
        shown.contains(&format!("MLflow at {}", outage.url)),
        "{status}"
    );
    let health = store.subscription_health().await.expect("health");
    let h = health
        .iter()
        .find(|h| h.name == "mlflow-write-back")
        .expect("health");
    let error = h.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("did not answer while setting alias \"champion\""),
        "{error}"
    );
    // b's own write-back is not held up by a's outage.
    promote(&store, &format!("{b_id}:v2")).await;
    let took = wait_for(
        "MLflow b's champion follows the promotion of b's v2 while a is cut off",
        Duration::from_secs(15),
        || async { b.alias_version(&name, "champion").await.as_deref() == Some("2") },
    )
    .await;
    eprintln!("FIGURE mlflow write-back to the second MLflow during the first's outage ({engine}): {} ms after the promotion", took.as_millis());
    wait_for(
        "the write-back to b is recorded",
        Duration::from_secs(10),
        || async {
            events_of(&store, "mlflow.alias_set")
                .await
                .iter()
                .any(|e| e.model_id.as_deref() == Some(b_id.as_str()))
        },
    )
    .await;
    let to_b = events_of(&store, "mlflow.alias_set")
        .await
        .into_iter()
        .find(|e| e.model_id.as_deref() == Some(b_id.as_str()))
        .expect("b's write-back");
    assert_eq!(to_b.details["tracking_uri"], b.url.as_str());
    assert_eq!(to_b.details["subscription"], "mlflow-write-back-second");
    assert_eq!(to_b.details["answer"]["champion"]["version"], "2");

    served.kill9();
    outage.set_down(false);
    assert_eq!(
        a.alias_version(&name, "champion").await.as_deref(),
        Some("2")
    );
    let served = Served::start(&db, port, &outage.url, &name, &sources, &log).await;
    let took = wait_for(
        "MLflow a's champion follows v3 once a is reachable and the server is back",
        Duration::from_secs(30),
        || async { a.alias_version(&name, "champion").await.as_deref() == Some("3") },
    )
    .await;
    eprintln!("FIGURE mlflow write-back after an outage and kill -9 ({engine}): set {} ms after the restart", took.as_millis());
    wait_for(
        "the write-back of v3 is recorded",
        Duration::from_secs(10),
        || async { events_of(&store, "mlflow.alias_set").await.len() == 3 },
    )
    .await;
    let set = events_of(&store, "mlflow.alias_set").await;
    let v3 = set
        .iter()
        .find(|e| e.version.as_deref() == Some("v3"))
        .expect("v3 written back");
    assert!(
        v3.details["attempts"].as_i64().unwrap_or(0) >= 3,
        "{}",
        v3.details
    );
    // a's subscription still holds b's promotion (let go without a record) behind v3.
    wait_for(
        "both write-backs have nothing pending",
        Duration::from_secs(10),
        || async {
            let health = store.subscription_health().await.expect("health");
            health
                .iter()
                .filter(|h| h.name.starts_with("mlflow-write-back"))
                .all(|h| h.pending == 0)
        },
    )
    .await;
    let health = store.subscription_health().await.expect("health");
    for sub in ["mlflow-write-back", "mlflow-write-back-second"] {
        let h = health.iter().find(|h| h.name == sub).expect("health");
        assert_eq!(
            (h.pending, h.dead, h.consecutive_failures),
            (0, 0, 0),
            "{sub}"
        );
    }
    assert_eq!(events_of(&store, "mlflow.alias_skipped").await.len(), 1);
    assert_eq!(
        b.alias_version(&name, "champion").await.as_deref(),
        Some("2")
    );
    drop(served);
    drop(store);
    drop_database(&db).await;
}

#[tokio::test]
async fn a_write_back_naming_an_unknown_environment_or_a_malformed_pair_stops_serve_with_the_reason(
) {
    let dir = scratch("write-back-settings");
    let db = format!("sqlite://{}", dir.join("settings.db").display());
    for (pairs, says) in [
        (
            "champion=prod",
            "names environment \"prod\", which does not exist",
        ),
        ("champion", "is not NAME=ENVIRONMENT"),
        ("champion=production,champion=staging", "mapped twice"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .env("DATABASE_URL", &db)
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("SWITCHYARD_MLFLOW_WRITE_BACK", pairs)
            .env("SWITCHYARD_MLFLOW_WRITE_BACK_URI", "http://127.0.0.1:9")
            .env_remove("SWITCHYARD_MLFLOW_FOLLOW")
            .env_remove("LOG_FORMAT")
            .output()
            .expect("switchyard runs");
        assert_eq!(out.status.code(), Some(2), "{pairs}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{pairs}: {}", stderr(&out));
    }
    let store = open(&db).await;
    assert!(
        store
            .get_subscription("mlflow-write-back")
            .await
            .expect("read")
            .is_none(),
        "nothing configured"
    );
}

/// An HTTP client that sends an admin's API token on every request.
async fn admin_client(store: &DynStore) -> reqwest::Client {
    use switchyard::auth::{password, secret};
    let hash = password::hash("mlflow-test-password").expect("hashed");
    let now = switchyard_domain::Timestamp::now();
    store
        .create_user(
            "mlflow-admin",
            switchyard_domain::access::Role::Admin,
            &hash,
            "test",
            now,
        )
        .await
        .expect("admin created");
    let token = secret::generate(secret::TOKEN_PREFIX);
    store
        .create_token(
            "mlflow-admin",
            "mlflow-admin",
            &secret::hash(&token),
            None,
            "test",
            now,
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

/// Runs `switchyard ARGS` on `db` with `env` (MLflow's credential variables unset unless given).
fn switchyard(db: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.args(args)
        .env("DATABASE_URL", db)
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .env_remove("MLFLOW_TRACKING_USERNAME")
        .env_remove("MLFLOW_TRACKING_PASSWORD")
        .env_remove("SWITCHYARD_MLFLOW_FOLLOW")
        .env_remove("SWITCHYARD_MLFLOW_SOURCES")
        .env_remove("LOG_FORMAT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("switchyard runs")
}

const ADMIN_PASSWORD: &str = "Adm1n-Passw0rd-for-tests";
const SYNC_PASSWORD: &str = "Sync-Passw0rd-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mlflow_behind_basic_auth_is_imported_followed_from_several_sources_and_written_back_and_wrong_credentials_change_nothing(
) {
    let Some(bin) = mlflow_bin() else { return };
    let dir = scratch("auth");
    let m = Mlflow::start_with(&bin, &dir, Some(ADMIN_PASSWORD)).await;
    m.model("Ranker").await;
    for v in 1..=2 {
        m.version("Ranker", &format!("s3://models/ranker/{v}"), json!({}))
            .await;
    }
    m.alias("Ranker", "champion", "2").await;
    m.model("Scorer").await;
    m.version("Scorer", "s3://models/scorer/1", json!({})).await;
    // Switchyard's own MLflow user: READ everywhere (the default), EDIT on Ranker for the write-back.
    m.post(
        "users/create",
        json!({ "username": "switchyard", "password": SYNC_PASSWORD }),
    )
    .await;
    let (admin, admin_password) = m.admin.clone().expect("auth is on");
    let granted = m
        .http
        .post(format!("{}/api/3.0/mlflow/users/permissions/grant", m.url))
        .basic_auth(admin, Some(admin_password))
        .json(
            &json!({ "username": "switchyard", "resource_type": "registered_model",
            "resource_id": "Ranker", "permission": "EDIT" }),
        )
        .send()
        .await
        .expect("MLflow answers");
    assert!(
        granted.status().is_success(),
        "grant: {:?}",
        granted.text().await
    );
    let right = dir.join("right.password");
    std::fs::write(&right, format!("{SYNC_PASSWORD}\n")).expect("written");
    let wrong = dir.join("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").expect("written");
    for postgres in [false, true] {
        auth_scenario(&m, &dir, postgres, &right, &wrong).await;
    }
}

async fn auth_scenario(m: &Mlflow, dir: &Path, postgres: bool, right: &Path, wrong: &Path) {
    use switchyard_domain::access::Role;
    let engine = if postgres { "PostgreSQL" } else { "SQLite" };
    let db = fresh_database(postgres, dir, "switchyard").await;
    let store = open(&db).await;
    store.migrate().await.expect("migrated");
    let (right, wrong) = (right.display().to_string(), wrong.display().to_string());
    // The registry as the scenario finds it (the other engine's run added versions and moved champion).
    let champion = m
        .alias_version("Ranker", "champion")
        .await
        .expect("Ranker has a champion");
    let listed = m
        .http
        .get(format!("{}/api/2.0/mlflow/model-versions/search", m.url))
        .query(&[("filter", "name='Ranker'")])
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("MLflow answers")
        .json::<Value>()
        .await
        .expect("JSON");
    let ranker_versions = listed["model_versions"].as_array().map_or(0, Vec::len);
    let import_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "import",
            "mlflow",
            "--tracking-uri",
            &m.url,
            "--alias",
            "champion=production",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        switchyard(&db, &args, &env)
    };

    // No credentials, a wrong password (flag or MLflow's variables): a clear
    // error naming what to fix, and nothing written.
    let none = run(import_args(&[]), vec![]);
    assert_eq!(none.status.code(), Some(1), "{engine}: {}", stdout(&none));
    let said = format!("{}{}", stdout(&none), stderr(&none));
    assert!(
        said.contains("answered HTTP 401 while listing registered models (page 1): it needs credentials: give --username with --password-file"),
        "{engine}: {said}"
    );
    for out in [
        run(
            import_args(&["--username", "switchyard", "--password-file", &wrong]),
            vec![],
        ),
        run(
            import_args(&[]),
            vec![
                ("MLFLOW_TRACKING_USERNAME", "switchyard".into()),
                ("MLFLOW_TRACKING_PASSWORD", "not-the-password".into()),
            ],
        ),
    ] {
        assert_eq!(out.status.code(), Some(1), "{engine}: {}", stdout(&out));
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            said.contains(
                "it refused user \"switchyard\" and that password: correct the password file"
            ),
            "{engine}: {said}"
        );
    }
    assert!(
        events_of(&store, "version.registered").await.is_empty(),
        "{engine}: nothing imported"
    );
    assert_eq!(version_count(&store, "ranker").await, 0);

    // The right password from MLflow's own variables: imported.
    let ok = run(
        import_args(&["--models", "Ranker"]),
        vec![
            ("MLFLOW_TRACKING_USERNAME", "switchyard".into()),
            ("MLFLOW_TRACKING_PASSWORD", SYNC_PASSWORD.into()),
        ],
    );
    assert!(
        ok.status.success(),
        "{engine}: {}{}",
        stdout(&ok),
        stderr(&ok)
    );
    assert!(
        stdout(&ok).contains(&format!(": {ranker_versions} created, 0 already imported")),
        "{}",
        stdout(&ok)
    );
    let production = store.list_environments().await.expect("envs");
    let pinned = production
        .iter()
        .find(|e| e.name == "production")
        .and_then(|e| e.pins.iter().find(|p| p.model_id.as_str() == "ranker"))
        .map(|p| p.full_id.to_string());
    assert_eq!(pinned, Some(format!("ranker:v{champion}")), "{engine}");

    // `follow mlflow` in the foreground, with the password from a file: a new version within 5 s.
    let mut follower = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "follow",
            "mlflow",
            "--tracking-uri",
            &m.url,
            "--models",
            "Ranker",
            "--alias",
            "champion=production",
        ])
        .args([
            "--username",
            "switchyard",
            "--password-file",
            &right,
            "--interval-ms",
            "300",
        ])
        .env("DATABASE_URL", &db)
        .env_remove("MLFLOW_TRACKING_USERNAME")
        .env_remove("MLFLOW_TRACKING_PASSWORD")
        .env_remove("LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("follow starts");
    // Give it its first pass (nothing new), then add a version in MLflow.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let new = m
        .version("Ranker", "s3://models/ranker/new", json!({}))
        .await;
    let new_id = fid(&format!("ranker:v{new}"));
    let took = wait_for(
        "follow mlflow imports the new version",
        Duration::from_secs(5),
        || async { store.get_version(&new_id).await.ok().flatten().is_some() },
    )
    .await;
    eprintln!(
        "FIGURE mlflow follow command behind basic auth ({engine}): new version in {} ms",
        took.as_millis()
    );
    let _ = follower.kill();
    let printed = follower.wait_with_output().expect("follow output");
    let printed = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(
        printed.contains(&format!("following {} as source \"mlflow\"", m.url)),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "created   {new_id} ← MLflow \"Ranker\" version {new}"
        )),
        "{printed}"
    );

    // Several sources from one file, each with its own credential file and
    // prefix. The same registry under another URL and no prefix collides with
    // the first source's model ids: refused, naming both, nothing merged.
    let localhost = m.url.replace("127.0.0.1", "localhost");
    let sources = dir.join(format!("sources-{engine}.yaml"));
    let write_sources = |with_mirror: bool| {
        let mut text = format!(
            "sources:\n\
             - name: secured\n  tracking_uri: {}\n  aliases: {{champion: production}}\n  username: switchyard\n  password_file: {right}\n  interval_ms: 300\n\
             - name: copy\n  tracking_uri: {localhost}\n  prefix: copy-\n  username: switchyard\n  password_file: {right}\n  interval_ms: 300\n",
            m.url
        );
        if with_mirror {
            text.push_str(&format!(
                "- name: mirror\n  tracking_uri: {localhost}\n  username: switchyard\n  password_file: {right}\n"
            ));
        }
        std::fs::write(&sources, text).expect("sources written");
    };
    write_sources(true);
    let sources_env = vec![("SWITCHYARD_MLFLOW_SOURCES", sources.display().to_string())];
    let once = run(
        vec!["follow".into(), "mlflow".into(), "--once".into()],
        sources_env.clone(),
    );
    let out = stdout(&once);
    assert!(once.status.success(), "{engine}: {out}{}", stderr(&once));
    assert!(
        out.contains("created   scorer:v1 ← MLflow \"Scorer\" version 1"),
        "{out}"
    );
    assert!(
        out.contains("created   copy-ranker:v1 ← MLflow \"Ranker\" version 1"),
        "{out}"
    );
    assert!(out.contains("created   copy-scorer:v1"), "{out}");
    assert!(
        out.contains(&format!(
            "refused   MLflow model \"Ranker\": model id ranker already holds versions imported from MLflow at {}, not from {localhost}: refused, not merged (give one of the two sources a prefix)",
            m.url
        )),
        "{out}"
    );
    assert!(out.contains("[mirror] import from"), "{out}");
    assert_eq!(
        version_count(&store, "ranker").await,
        ranker_versions + 1,
        "{engine}: nothing merged into ranker"
    );
    let from_copy = import_events(&store)
        .await
        .into_iter()
        .find(|e| e.model_id.as_deref() == Some("copy-ranker"))
        .expect("copy-ranker's import event");
    assert_eq!(from_copy.details["import"]["mlflow_source"], "copy");
    assert_eq!(
        from_copy.details["import"]["tracking_uri"],
        localhost.as_str()
    );

    // `serve` follows both good sources and writes promotions back to the
    // secured MLflow with that source's credential.
    write_sources(false);
    for (name, role) in [
        ("dave", Role::Deployer),
        ("bob", Role::Approver),
        ("carol", Role::Approver),
    ] {
        store
            .create_user(
                name,
                role,
                "$argon2id$not-checked-here",
                "test",
                switchyard_domain::Timestamp::now(),
            )
            .await
            .expect("user");
    }
    let port = free_port();
    let log = dir.join(format!("serve-{engine}.log"));
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log file");
    let _served = Served(
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .env("DATABASE_URL", &db)
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_MLFLOW_SOURCES", &sources)
            .env("SWITCHYARD_MLFLOW_WRITE_BACK", "champion=production")
            .env("SWITCHYARD_MLFLOW_WRITE_BACK_URI", &m.url)
            .env("SWITCHYARD_WEBHOOK_POLL_MS", "100")
            .env("SWITCHYARD_WEBHOOK_BACKOFF_MS", "200")
            .env_remove("SWITCHYARD_MLFLOW_FOLLOW")
            .env_remove("MLFLOW_TRACKING_USERNAME")
            .env_remove("MLFLOW_TRACKING_PASSWORD")
            .env_remove("LOG_FORMAT")
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("serve starts"),
    );
    let later = m
        .version("Ranker", "s3://models/ranker/later", json!({}))
        .await;
    let (secured_id, copy_id) = (
        fid(&format!("ranker:v{later}")),
        fid(&format!("copy-ranker:v{later}")),
    );
    wait_for(
        "serve follows both sources",
        Duration::from_secs(30),
        || async {
            store
                .get_version(&secured_id)
                .await
                .ok()
                .flatten()
                .is_some()
                && store.get_version(&copy_id).await.ok().flatten().is_some()
        },
    )
    .await;
    promote(&store, &secured_id.to_string()).await;
    let moved = wait_for(
        "MLflow's champion follows the promotion",
        Duration::from_secs(15),
        || async { m.alias_version("Ranker", "champion").await.as_deref() == Some(later.as_str()) },
    )
    .await;
    eprintln!(
        "FIGURE mlflow write-back behind basic auth ({engine}): alias moved {} ms after the approval",
        moved.as_millis()
    );
    // Recorded once the alias was read back, in the delivery's own transaction.
    wait_for(
        "mlflow.alias_set is recorded",
        Duration::from_secs(10),
        || async { events_of(&store, "mlflow.alias_set").await.len() == 1 },
    )
    .await;
    drop(store);
    drop(_served);
    drop_database(&db).await;
}

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

/// A signed-in browser: its session cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn sign_in(app: &helpers::TestApp, username: &str) -> Browser {
    let res = no_redirects()
        .post(format!("{}/signin", app.address))
        .header(reqwest::header::ORIGIN, &app.address)
        .form(&[("username", username), ("password", helpers::TEST_PASSWORD)])
        .send()
        .await
        .expect("signed in");
    let cookie = res
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let user: Value = no_redirects()
        .get(format!("{}/console/fn/get_signed_in_user", app.address))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let csrf = user["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    Browser { cookie, csrf }
}

/// Calls a console server function as the hydrated page does; answers the
/// value, or the refusal's `{code, message}`, with the HTTP status.
async fn server_fn(
    app: &helpers::TestApp,
    name: &str,
    form: &[(&str, &str)],
    browser: &Browser,
) -> (u16, Value) {
    let res = no_redirects()
        .post(format!("{}/console/fn/{name}", app.address))
        .header(reqwest::header::ORIGIN, &app.address)
        .header(reqwest::header::COOKIE, &browser.cookie)
        .header("x-csrf-token", &browser.csrf)
        .form(form)
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("a JSON answer");
    let value = body.get("error").cloned().unwrap_or(body);
    (status, value)
}

/// The console page as a browser without JavaScript gets it.
async fn page_html(app: &helpers::TestApp, path: &str, browser: &Browser) -> String {
    no_redirects()
        .get(format!("{}{path}", app.address))
        .header(reqwest::header::COOKIE, &browser.cookie)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("a page")
}

/// Asks for import `id` until it is no longer running.
async fn finished_import(app: &helpers::TestApp, id: &str, ada: &Browser) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, run) = server_fn(app, "get_mlflow_import", &[("id", id)], ada).await;
        assert_eq!(status, 200, "{run}");
        if run["state"] != "running" {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "import {id} still running after 60 s: {run}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The versions of the models the console scenario imports.
async fn nothing_imported(store: &DynStore) -> usize {
    let mut n = 0;
    for model in ["fraud-detector", "scorer", "ranker"] {
        n += version_count(store, model).await;
    }
    n
}

fn has_line(run: &Value, line: &str) -> bool {
    run["lines"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x.as_str() == Some(line)))
}

/// The console's import page (/import/mlflow) against the real MLflow the
/// other scenarios filled (Fraud Detector v1–v3, Scorer v1, ranker v2–v6
/// after v1's deletion, and three names refused): refusals that import
/// nothing, a dry run, a plain form post followed to its progress page, a
/// pass stopped mid-registry and resumed, a repeat that creates nothing.
async fn console_scenario(m: &Mlflow) {
    use switchyard_domain::access::Role;
    let app = helpers::spawn_app().await;
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("dave", Role::Deployer, None).await;
    let (ada, dave) = (sign_in(&app, "ada").await, sign_in(&app, "dave").await);
    let store = app.store().await;
    let fault = Arc::new(std::sync::Mutex::new(Fault::None));
    let relayed = relay(m.url.clone(), fault.clone()).await;
    let mapping = [
        ("aliases", "champion=production, challenger=staging"),
        ("stages", "Staging=staging"),
    ];
    let form = |uri: &str, extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![("tracking_uri", uri.to_owned())];
        f.extend(
            mapping
                .iter()
                .chain(extra)
                .map(|(k, v)| (*k, (*v).to_owned())),
        );
        f
    };

    // Not an admin: refused, naming the role, and the header has no link.
    let (status, refused) = server_fn(&app, "get_mlflow_imports", &[], &dave).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("admin"),
        "{refused}"
    );
    let (status, refused) = server_fn(
        &app,
        "start_mlflow_import",
        &[("tracking_uri", m.url.as_str())],
        &dave,
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let html = page_html(&app, "/import/mlflow", &dave).await;
    assert!(html.contains("admin"), "the page says why: {html}");
    assert!(
        !html.contains("href=\"/import/mlflow\""),
        "no link for a deployer"
    );
    assert!(
        page_html(&app, "/", &ada)
            .await
            .contains("href=\"/import/mlflow\""),
        "an admin's header links the page"
    );

    // Bad input: a clear refusal, nothing started, nothing imported.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let not_mlflow = app.address.clone();
    for (fields, status, words) in [
        (
            form(&closed, &[]),
            422,
            "did not answer while checking it answers as an MLflow registry",
        ),
        (form(&not_mlflow, &[]), 422, "Nothing was imported"),
        (form("ftp://mlflow:21", &[]), 422, "http:// or https://"),
        (
            form(&m.url, &[("models", "fraud-[ab]")]),
            422,
            "only * (any run of characters) and ? (one character) are wildcards",
        ),
        (
            vec![
                ("tracking_uri", m.url.clone()),
                ("aliases", "champion=moon".into()),
            ],
            422,
            "alias champion=moon: unknown environment \"moon\"",
        ),
        (
            form(&m.url, &[("credential", "prod")]),
            422,
            "no MLflow source named \"prod\" is configured on this server",
        ),
        (form(&m.url, &[("prefix", "Team/")]), 422, "prefix"),
        (
            form(&m.url, &[("dry_run", "perhaps")]),
            422,
            "dry_run must be true or false",
        ),
    ] {
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, answer) = server_fn(&app, "start_mlflow_import", &refs, &ada).await;
        let message = answer["message"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{fields:?}: {answer}");
        assert!(message.contains(words), "{fields:?}: {message}");
    }
    let (_, page) = server_fn(&app, "get_mlflow_imports", &[], &ada).await;
    assert_eq!(page["runs"], json!([]), "nothing was started: {page}");
    assert_eq!(nothing_imported(&store).await, 0, "nothing was imported");

    // A dry run: exactly what would be created and refused, nothing written.
    let fields = form(&m.url, &[("dry_run", "true")]);
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, started) = server_fn(&app, "start_mlflow_import", &refs, &ada).await;
    assert_eq!(status, 200, "{started}");
    let dry = finished_import(&app, started["id"].as_str().expect("an id"), &ada).await;
    assert_eq!(dry["state"], "done", "{dry}");
    assert_eq!(
        (dry["created"].as_u64(), dry["refused"].as_u64()),
        (Some(9), Some(3)),
        "{dry}"
    );
    for line in [
        "create    fraud-detector:v2 ← MLflow \"Fraud Detector\" version 2 (stage production, pinned in production; alias champion)",
        "create    ranker:v4 ← MLflow \"ranker\" version 4 (stage staging)",
        "create    scorer:v1 ← MLflow \"Scorer\" version 1 (stage development)",
    ] {
        assert!(has_line(&dry, line), "missing {line:?}: {dry}");
    }
    assert!(
        dry["lines"]
            .to_string()
            .contains("refused   MLflow model \\\"!!!\\\""),
        "{dry}"
    );
    assert!(
        dry["summary"]
            .as_str()
            .unwrap_or_default()
            .starts_with("dry run from "),
        "{dry}"
    );
    assert_eq!(
        nothing_imported(&store).await,
        0,
        "a dry run writes nothing"
    );

    // Without JavaScript: the form post is sent on to the import's page,
    // which reloads itself while the import runs (slowed by the relay).
    *fault.lock().expect("lock") = Fault::Slow;
    let mut fields = form(&relayed, &[]);
    fields.push(("csrf_token", ada.csrf.clone()));
    let res = no_redirects()
        .post(format!("{}/console/fn/start_mlflow_import", app.address))
        .header(reqwest::header::ORIGIN, &app.address)
        .header(reqwest::header::COOKIE, &ada.cookie)
        .header(reqwest::header::ACCEPT, "text/html")
        .header(
            reqwest::header::REFERER,
            format!("{}/import/mlflow", app.address),
        )
        .form(&fields)
        .send()
        .await
        .expect("sent");
    assert!(res.status().is_redirection(), "{}", res.status());
    let location = res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("sent on")
        .to_owned();
    let id = location
        .strip_prefix("/import/mlflow/")
        .expect("the import's page")
        .to_owned();
    let html = page_html(&app, &location, &ada).await;
    assert!(html.contains("running: "), "{html}");
    assert!(
        html.contains(r#"<meta http-equiv="refresh" content="2">"#),
        "reloads while running: {html}"
    );
    // A second import while one runs on this server is refused.
    let (status, busy) = server_fn(
        &app,
        "start_mlflow_import",
        &[("tracking_uri", m.url.as_str())],
        &ada,
    )
    .await;
    assert_eq!(status, 409, "{busy}");
    assert!(
        busy["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is still running"),
        "{busy}"
    );
    let done = finished_import(&app, &id, &ada).await;
    eprintln!(
        "FIGURE console import through the 1 s relay: {} — {}",
        done["summary"].as_str().unwrap_or_default(),
        "progress page reloaded while running"
    );
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        (done["created"].as_u64(), done["refused"].as_u64()),
        (Some(9), Some(3)),
        "{done}"
    );
    assert_eq!(done["models_total"], 6, "{done}");
    assert!(has_line(&done, "created   fraud-detector:v2 ← MLflow \"Fraud Detector\" version 2 (stage production, pinned in production; alias champion)"), "{done}");
    let html = page_html(&app, &location, &ada).await;
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "no reload once done"
    );
    assert!(
        html.contains("created") && html.contains("fraud-detector:v2"),
        "{html}"
    );
    assert_eq!(version_count(&store, "fraud-detector").await, 3);
    assert_eq!(version_count(&store, "ranker").await, 5);
    let imported = import_events(&store).await;
    assert!(
        imported
            .iter()
            .filter(|e| e.action == "version.registered")
            .all(|e| e.details["import"]["started_by"] == "ada"),
        "each registration names who started the import"
    );

    // Stopped mid-registry: the page names the item; run again, it resumes.
    *fault.lock().expect("lock") = Fault::RankerDown;
    let fresh = helpers::spawn_app().await;
    fresh.user_with_token("ada", Role::Admin, None).await;
    let ada2 = sign_in(&fresh, "ada").await;
    let fields = form(&relayed, &[]);
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, started) = server_fn(&fresh, "start_mlflow_import", &refs, &ada2).await;
    let stopped = finished_import(&fresh, started["id"].as_str().expect("an id"), &ada2).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let why = stopped["stopped"].as_str().unwrap_or_default();
    assert!(
        why.contains("at MLflow model \"ranker\"") && why.contains("HTTP 500"),
        "{why}"
    );
    let fresh_store = fresh.store().await;
    assert_eq!(
        version_count(&fresh_store, "ranker").await,
        0,
        "nothing of ranker half-imported"
    );
    *fault.lock().expect("lock") = Fault::None;
    let (_, started) = server_fn(&fresh, "start_mlflow_import", &refs, &ada2).await;
    let resumed = finished_import(&fresh, started["id"].as_str().expect("an id"), &ada2).await;
    assert_eq!(resumed["state"], "done", "{resumed}");
    assert_eq!(version_count(&fresh_store, "ranker").await, 5);

    // Again on the first server, through the same URL: nothing is created twice.
    let fields = form(&relayed, &[]);
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, started) = server_fn(&app, "start_mlflow_import", &refs, &ada).await;
    let again = finished_import(&app, started["id"].as_str().expect("an id"), &ada).await;
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(9)),
        "{again}"
    );
    let (_, page) = server_fn(&app, "get_mlflow_imports", &[], &ada).await;
    assert_eq!(
        page["runs"].as_array().map(Vec::len),
        Some(3),
        "newest first: {page}"
    );
    assert_eq!(page["runs"][0]["id"], started["id"]);
    let (status, unknown) = server_fn(
        &app,
        "get_mlflow_import",
        &[("id", "0123456789abcdef")],
        &ada,
    )
    .await;
    assert_eq!(status, 404, "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap_or_default()
            .contains("kept in the memory of the server"),
        "{unknown}"
    );
}
