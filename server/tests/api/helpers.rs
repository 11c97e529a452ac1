//! Starting a server per test and talking to it.

use std::path::PathBuf;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use switchyard::auth::secret;
use switchyard::config::Config;
use switchyard::notify::sealed::SecretsKey;
use switchyard::startup::Application;
use switchyard::store::{DynStore, StoreSettings};
use switchyard_domain::access::Role;
use switchyard_domain::lifecycle::MoveVia;
use switchyard_domain::{FullId, Stage, Timestamp};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database_url: String,
    /// An admin's API token; the request helpers send it.
    pub token: String,
    _dir: Option<TempDir>,
}

/// The ledger actor of requests made with `TestApp::token`: the person
/// (the token's name is recorded as `details.via_token`).
pub const ADMIN_ACTOR: &str = "test-admin";

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server on a fresh SQLite database.
pub async fn spawn_app() -> TestApp {
    let dir = std::env::temp_dir().join(format!("sy-api-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/switchyard.db", dir.display());
    spawn_app_on(url, Some(TempDir(dir)), None, None, None).await
}

/// A server on a fresh SQLite database whose `/metrics` needs `metrics_token`.
pub async fn spawn_app_with_metrics_token(metrics_token: &str) -> TestApp {
    let dir = std::env::temp_dir().join(format!("sy-api-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/switchyard.db", dir.display());
    spawn_app_on(
        url,
        Some(TempDir(dir)),
        Some(metrics_token.to_owned()),
        None,
        None,
    )
    .await
}

/// A server on a fresh SQLite database that seals webhook secrets with `key`.
pub async fn spawn_app_with_secrets_key(key: SecretsKey) -> TestApp {
    let dir = std::env::temp_dir().join(format!("sy-api-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/switchyard.db", dir.display());
    spawn_app_on(url, Some(TempDir(dir)), None, Some(key), None).await
}

/// A server on a fresh SQLite database configured with the checkpoint file
/// `checkpoints.jsonl` beside it (`SWITCHYARD_CHECKPOINT_FILE`; not created
/// here): the server and that file's path.
pub async fn spawn_app_with_checkpoint_file() -> (TestApp, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sy-api-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/switchyard.db", dir.display());
    let file = dir.join("checkpoints.jsonl");
    let app = spawn_app_on(url, Some(TempDir(dir)), None, None, Some(file.clone())).await;
    (app, file)
}

/// A server on the database at `database_url` (a fresh PostgreSQL database in the smoke test).
pub async fn spawn_app_on_database(database_url: String) -> TestApp {
    spawn_app_on(database_url, None, None, None, None).await
}

/// A server on `database_url` (a fresh SQLite file when `None`) listening on
/// `addr`, with single sign-on `sso` (tests/api/sso.rs).
pub async fn spawn_app_with_sso(
    database_url: Option<String>,
    addr: std::net::SocketAddr,
    sso: switchyard::sso::SsoSettings,
) -> TestApp {
    switchyard::telemetry::init_for_test();
    let (database_url, dir) = match database_url {
        Some(url) => (url, None),
        None => {
            let dir = std::env::temp_dir().join(format!("sy-api-{:016x}", rand::random::<u64>()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            (format!("sqlite://{}/switchyard.db", dir.display()), Some(TempDir(dir)))
        }
    };
    let config = Config {
        database_url: database_url.clone(),
        addr,
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
        checkpoint_file: None,
    };
    let app = Application::build_with_sso(config, sso)
        .await
        .expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let mut test_app = TestApp {
        address,
        client: reqwest::Client::new(),
        database_url,
        token: String::new(),
        _dir: dir,
    };
    test_app.token = test_app
        .user_with_token("test-admin", Role::Admin, None)
        .await;
    test_app
}

/// Starts a server on `database_url`; answers its address.
async fn start_server(
    database_url: &str,
    metrics_token: Option<String>,
    secrets_key: Option<SecretsKey>,
    checkpoint_file: Option<PathBuf>,
) -> String {
    switchyard::telemetry::init_for_test();
    let config = Config {
        database_url: database_url.to_owned(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token,
        webhook_allow_private: true,
        secrets_key,
        checkpoint_file,
    };
    let app = Application::build(config).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    address
}

async fn spawn_app_on(
    database_url: String,
    dir: Option<TempDir>,
    metrics_token: Option<String>,
    secrets_key: Option<SecretsKey>,
    checkpoint_file: Option<PathBuf>,
) -> TestApp {
    let address = start_server(&database_url, metrics_token, secrets_key, checkpoint_file).await;
    let mut test_app = TestApp {
        address,
        client: reqwest::Client::new(),
        database_url,
        token: String::new(),
        _dir: dir,
    };
    test_app.token = test_app
        .user_with_token("test-admin", Role::Admin, None)
        .await;
    test_app
}

/// The password every test user gets.
pub const TEST_PASSWORD: &str = "test-password";

impl TestApp {
    /// A second server process on the same database, with the same admin token.
    pub async fn another_server(&self) -> TestApp {
        let address = start_server(&self.database_url, None, None, None).await;
        TestApp {
            address,
            client: reqwest::Client::new(),
            database_url: self.database_url.clone(),
            token: self.token.clone(),
            _dir: None,
        }
    }

    /// A second server on the same database with single sign-on `sso`
    /// (started sign-ins are in the database, so either server finishes them).
    pub async fn another_server_with_sso(&self, sso: switchyard::sso::SsoSettings) -> TestApp {
        let config = Config {
            database_url: self.database_url.clone(),
            addr: "127.0.0.1:0".parse().expect("address"),
            log_json: false,
            deprecation_days: 30,
            metrics_token: None,
            webhook_allow_private: true,
            secrets_key: None,
            checkpoint_file: None,
        };
        let app = Application::build_with_sso(config, sso)
            .await
            .expect("the server starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: reqwest::Client::new(),
            database_url: self.database_url.clone(),
            token: self.token.clone(),
            _dir: None,
        }
    }

    /// Creates user `name` (password `TEST_PASSWORD`) and an API token named
    /// `name`, expiring at `expires_at`; returns the token.
    pub async fn user_with_token(
        &self,
        name: &str,
        role: Role,
        expires_at: Option<Timestamp>,
    ) -> String {
        let store = self.store().await;
        let hash = switchyard::auth::password::hash(TEST_PASSWORD).expect("hashed");
        store
            .create_user(name, role, &hash, "test", Timestamp::now())
            .await
            .expect("user created");
        let token = secret::generate(secret::TOKEN_PREFIX);
        store
            .create_token(
                name,
                name,
                &secret::hash(&token),
                expires_at,
                "test",
                Timestamp::now(),
            )
            .await
            .expect("token created");
        token
    }

    /// A request to `path` with the admin token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POST with another token.
    pub async fn post_json_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.request(reqwest::Method::PUT, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.request(reqwest::Method::POST, path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("JSON body")
    }

    /// Registers `model:version` with `config` and asserts it was created.
    pub async fn register(&self, model: &str, version: &str, config: Value) -> Value {
        let res = self
            .post_json(
                &format!("/api/v1/models/{model}/versions"),
                &json!({ "version": version, "config": config }),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "registering {model}:{version}"
        );
        res.json().await.expect("JSON body")
    }

    pub async fn move_stage(&self, full_id: &str, to: &str) -> Response {
        self.post_json(
            &format!("/api/v1/versions/{full_id}/stage"),
            &json!({ "to": to, "reason": "test" }),
        )
        .await
    }

    /// Registers a version and brings it to production. The last step goes
    /// to the store directly, as an applied promotion would, to keep tests
    /// that are not about promotions short.
    pub async fn production_version(&self, model: &str, version: &str) -> FullId {
        self.register(model, version, json!({ "v": version })).await;
        let full_id = format!("{model}:{version}");
        assert_eq!(
            self.move_stage(&full_id, "staging").await.status(),
            StatusCode::OK
        );
        let id = FullId::parse(&full_id).expect("full id");
        self.store()
            .await
            .change_stage(
                &id,
                Stage::Production,
                MoveVia::Promotion,
                Some("test"),
                "test",
                Timestamp::now(),
            )
            .await
            .expect("promoted");
        settle().await;
        id
    }

    /// Retires a production version: deprecated through the API, then
    /// retired early as an admin would, through the store (the API's early
    /// retirement has its own tests).
    pub async fn retire(&self, full_id: &FullId) {
        assert_eq!(
            self.move_stage(&full_id.to_string(), "deprecated")
                .await
                .status(),
            StatusCode::OK
        );
        self.store()
            .await
            .change_stage(
                full_id,
                Stage::Retired,
                MoveVia::Manual { is_admin: true },
                Some("test"),
                "admin",
                Timestamp::now(),
            )
            .await
            .expect("retired");
        settle().await;
    }

    /// A second connection to the server's database, for set-up the API cannot do yet.
    pub async fn store(&self) -> DynStore {
        switchyard::store::connect(&self.database_url, StoreSettings::default())
            .await
            .expect("store")
    }
}

/// Waits until a change made through `TestApp::store` (another process, as
/// far as the server knows) has reached the server's resolve and token cache:
/// it polls the ledger head every 100 ms on SQLite (PostgreSQL notifies at once).
pub async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

/// Asserts that `res` is an error in the API's format with `status`, and returns its `error` object.
pub async fn assert_error(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
    let body: Value = res.json().await.expect("JSON error body");
    let error = body["error"].clone();
    assert!(error["code"].is_string(), "no error.code in {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no error.message in {body}"
    );
    error
}
