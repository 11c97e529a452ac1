//! The `switchyard` binary, run the way an operator or a pipeline runs it,
//! each test against a fresh SQLite database of its own.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use switchyard::store::{self, AuditQuery, DynStore, StoreSettings};
use switchyard_domain::{Stage, Timestamp};

/// A scratch directory and a fresh database: a SQLite file in the directory,
/// or a new PostgreSQL database (dropped by `drop_postgres`).
struct TestDb {
    dir: PathBuf,
    url: String,
    /// The admin URL and name of the PostgreSQL database to drop.
    postgres: Option<(String, String)>,
}

/// The PostgreSQL server for tests: `SWITCHYARD_TEST_PG`, as in the API tests.
fn pg_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDb {
    fn scratch(name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    fn new(name: &str) -> TestDb {
        let dir = TestDb::scratch(name);
        let url = format!("sqlite://{}", dir.join("switchyard.db").display());
        TestDb {
            dir,
            url,
            postgres: None,
        }
    }

    async fn new_postgres(name: &str) -> TestDb {
        let admin_url = pg_admin_url();
        let database = format!(
            "sy_cli_{}_{:016x}",
            name.replace('-', "_"),
            rand::random::<u64>()
        );
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL is reachable at SWITCHYARD_TEST_PG (start it, or point the variable at one)");
        admin
            .execute(format!("CREATE DATABASE {database}").as_str())
            .await
            .expect("create database");
        let (server, _) = admin_url
            .rsplit_once('/')
            .expect("a URL with a database name");
        let url = format!("{server}/{database}");
        TestDb {
            dir: TestDb::scratch(name),
            url,
            postgres: Some((admin_url, database)),
        }
    }

    async fn drop_postgres(self) {
        if let Some((admin_url, database)) = self.postgres {
            let mut admin = PgConnection::connect(&admin_url)
                .await
                .expect("PostgreSQL is reachable");
            admin
                .execute(format!("DROP DATABASE {database} WITH (FORCE)").as_str())
                .await
                .expect("drop database");
        }
    }

    /// A database that `switchyard demo` has filled.
    fn with_demo(name: &str) -> TestDb {
        let db = TestDb::new(name);
        db.run(&["demo"]).succeeds();
        db
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", &self.url)
            .env_remove("LOG_FORMAT")
            .env_remove("SWITCHYARD_ADDR")
            .env_remove("SWITCHYARD_DEPRECATION_DAYS")
            .env_remove("SWITCHYARD_URL")
            .env_remove("SWITCHYARD_TOKEN");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = self
            .command(args)
            .output()
            .expect("the switchyard binary runs");
        Run {
            args: args.join(" "),
            output,
        }
    }

    /// Runs with `input` on standard input (how passwords are given).
    fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the switchyard binary runs");
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("input written");
        }
        let output = child
            .wait_with_output()
            .expect("the switchyard binary ends");
        Run {
            args: args.join(" "),
            output,
        }
    }

    /// Creates an admin and prints a token for them, as an operator would.
    fn admin_token(&self) -> String {
        self.run_with_input(
            &["user", "create", "--username", "ops", "--role", "admin"],
            "ops-password-1\n",
        )
        .succeeds();
        self.run(&["token", "create", "--user", "ops", "--name", "ops-cli"])
            .succeeds()
            .stdout()
            .trim()
            .to_owned()
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    async fn store(&self) -> DynStore {
        store::connect(&self.url, StoreSettings::default())
            .await
            .expect("the database opens")
    }

    /// Runs SQL by hand, as someone with access to the database could.
    async fn sql(&self, statements: &[&str]) {
        if self.postgres.is_some() {
            let mut db = PgConnection::connect(&self.url)
                .await
                .expect("the database opens");
            for statement in statements {
                db.execute(*statement).await.expect("the statement runs");
            }
        } else {
            let mut db = SqliteConnection::connect(&self.url)
                .await
                .expect("the database opens");
            for statement in statements {
                db.execute(*statement).await.expect("the statement runs");
            }
        }
    }

    /// What `audit verify` says after `statement` changed the ledger by
    /// hand (past the append-only triggers); it must exit 1.
    async fn verify_after_tampering(&self, statement: &str) -> String {
        self.run(&["audit", "verify"]).succeeds();
        self.tamper(&[statement]).await;
        self.run(&["audit", "verify"]).exits(1).stderr()
    }

    /// Runs `statements` on the ledger by hand, past its append-only triggers.
    async fn tamper(&self, statements: &[&str]) {
        let lift_triggers: &[&str] = if self.postgres.is_some() {
            &["ALTER TABLE ledger DISABLE TRIGGER USER"]
        } else {
            &[
                "DROP TRIGGER IF EXISTS ledger_no_update",
                "DROP TRIGGER IF EXISTS ledger_no_delete",
            ]
        };
        self.sql(&[lift_triggers, statements].concat()).await;
    }

    /// The ledger head's event id.
    async fn head_id(&self) -> i64 {
        self.store()
            .await
            .ledger_head()
            .await
            .expect("the head reads")
            .expect("the ledger has events")
            .0
    }

    /// Writes a few ledger events the way an operator would (a new user).
    fn add_events(&self, username: &str) {
        self.run_with_input(
            &["user", "create", "--username", username, "--role", "viewer"],
            "viewer-password-1\n",
        )
        .succeeds();
    }

    /// A new checkpoint key in the scratch directory: (key file, public key).
    fn keygen(&self) -> (String, String) {
        let key = self.path("checkpoint.key");
        let public = self
            .run(&["audit", "keygen", "--out", &key])
            .succeeds()
            .stdout()
            .trim()
            .to_owned();
        (key, public)
    }

    fn checkpoint(&self, key: &str, file: &str) {
        self.run(&["audit", "checkpoint", "--key", key, "--out", file])
            .succeeds();
    }

    fn verify_checkpoints(&self, file: &str, public: &str) -> Run {
        self.run(&[
            "audit",
            "verify",
            "--checkpoints",
            file,
            "--public-key",
            public,
        ])
    }
}

struct Run {
    args: String,
    output: Output,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn exits(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            Some(code),
            "switchyard {} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }

    fn succeeds(&self) -> &Run {
        self.exits(0)
    }
}

/// The version names of `model` that are in `stage` now.
async fn versions_in(store: &DynStore, model: &str, stage: Stage) -> Vec<String> {
    let model = switchyard_domain::ModelId::parse(model).expect("a model id");
    let versions = store.list_versions(&model).await.expect("versions");
    versions
        .into_iter()
        .filter(|v| v.stage == stage)
        .map(|v| v.version.to_string())
        .collect()
}

#[test]
fn migrate_creates_a_database_whose_empty_ledger_verifies() {
    let db = TestDb::new("migrate");
    db.run(&["migrate"]).succeeds();
    db.run(&["migrate"]).succeeds();
    let verify = db.run(&["audit", "verify"]);
    assert!(
        verify
            .succeeds()
            .stdout()
            .contains("ledger OK: 0 events checked"),
        "{}",
        verify.stdout()
    );
}

#[test]
fn demo_fills_a_fresh_database_and_refuses_one_that_holds_versions() {
    let db = TestDb::new("demo-twice");
    let first = db.run(&["demo"]);
    assert!(
        first.succeeds().stdout().contains("6 models"),
        "{}",
        first.stdout()
    );
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        assert!(
            first.stdout().contains(&format!("{user} ")),
            "demo user {user} is printed: {}",
            first.stdout()
        );
    }
    let second = db.run(&["demo"]);
    assert!(
        second.exits(1).stderr().contains("already holds versions"),
        "{}",
        second.stderr()
    );
    assert_eq!(
        second.stderr().lines().count(),
        1,
        "one line: {}",
        second.stderr()
    );
}

#[tokio::test]
async fn demo_data_has_all_five_stages_pins_in_three_environments_and_months_of_verified_ledger() {
    let db = TestDb::with_demo("demo-properties");
    let store = db.store().await;

    let mut stages = BTreeSet::new();
    let mut versions = 0;
    let models = store.list_models().await.expect("models");
    assert!(models.len() >= 5, "{} models", models.len());
    for m in &models {
        for v in store.list_versions(&m.model_id).await.expect("versions") {
            stages.insert(v.stage);
            versions += 1;
        }
    }
    assert_eq!(stages, Stage::ALL.into_iter().collect(), "stages present");
    assert!(versions >= 24, "only {versions} versions");

    for env in store.list_environments().await.expect("environments") {
        assert!(
            env.pins.len() >= 5,
            "{} has {} pins",
            env.name,
            env.pins.len()
        );
    }

    let report = store.audit_verify().await.expect("a report");
    assert!(report.ok, "{report:?}");
    let newest = store
        .audit_page(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .expect("a page");
    let oldest = store
        .audit_page(&AuditQuery {
            limit: 1,
            before: Some(Timestamp::now().plus_days(-120)),
            ..AuditQuery::default()
        })
        .await
        .expect("a page");
    assert!(
        !oldest.events.is_empty(),
        "no ledger event is older than four months"
    );
    assert!(
        newest.events[0].at > Timestamp::now().plus_days(-7),
        "the newest event is old"
    );
    let actors: BTreeSet<String> = store
        .audit_page(&AuditQuery {
            limit: 500,
            ..AuditQuery::default()
        })
        .await
        .expect("a page")
        .events
        .into_iter()
        .map(|e| e.actor)
        .collect();
    for actor in ["alice", "bob", "carol", "dave", "ci-pipeline", "system"] {
        assert!(actors.contains(actor), "{actor} never acted: {actors:?}");
    }
}

#[tokio::test]
async fn every_demo_cluster_operation_was_started_by_a_demo_user_allowed_to_run_it() {
    let db = TestDb::with_demo("demo-operators");
    let store = db.store().await;
    let users = store.list_users().await.expect("users");
    let environments = store.list_environments().await.expect("environments");
    let clusters = store.list_clusters().await.expect("clusters");
    assert!(clusters.len() >= 2, "{} clusters", clusters.len());
    for c in &clusters {
        let production = environments
            .iter()
            .any(|e| e.name == c.environment && e.policy.is_production());
        let needed = switchyard_domain::access::role_for_operation(production);
        for op in store
            .list_operations(&c.name, 100)
            .await
            .expect("operations")
        {
            let user = users.iter().find(|u| u.username == op.actor);
            assert!(
                user.is_some_and(|u| u.role.allows(needed)),
                "operation {} on {} by {:?}, who may not run it (needs {needed})",
                op.id,
                c.name,
                user.map(|u| (&u.username, u.role))
            );
        }
    }
    // The README's walk-through deploys a promoted fraud-xgb version to prod-eu.
    let prod = clusters
        .iter()
        .find(|c| c.name == "prod-eu")
        .expect("a production cluster");
    assert!(
        prod.state
            .serving()
            .iter()
            .any(|(_, v, _)| v.model_id.as_str() == "fraud-xgb"),
        "prod-eu serves {:?}",
        prod.state.serving()
    );
}

#[tokio::test]
async fn editing_a_ledger_row_by_hand_makes_audit_verify_fail_and_name_the_event() {
    let db = TestDb::with_demo("tamper-edit");
    let stderr = db
        .verify_after_tampering("UPDATE ledger SET reason = 'approved by nobody' WHERE id = 42")
        .await;
    assert!(stderr.contains("event 42"), "{stderr}");
}

#[tokio::test]
async fn deleting_a_ledger_row_by_hand_makes_audit_verify_fail_and_name_the_missing_event() {
    let db = TestDb::with_demo("tamper-delete");
    let stderr = db
        .verify_after_tampering("DELETE FROM ledger WHERE id = 17")
        .await;
    assert!(stderr.contains("event 17"), "{stderr}");
}

#[tokio::test]
async fn on_postgresql_demo_fills_the_database_and_a_hand_edited_ledger_row_is_named_by_audit_verify(
) {
    let db = TestDb::new_postgres("tamper").await;
    db.run(&["demo"]).succeeds();
    let stderr = db
        .verify_after_tampering("UPDATE ledger SET actor = 'mallory' WHERE id = 99")
        .await;
    assert!(stderr.contains("event 99"), "{stderr}");
    db.drop_postgres().await;
}

#[tokio::test]
async fn pins_export_writes_the_environment_pins_as_yaml() {
    let db = TestDb::with_demo("export");
    let printed = db.run(&["pins", "export", "--env", "production"]);
    let yaml: serde_yaml::Value = serde_yaml::from_str(&printed.succeeds().stdout()).expect("YAML");
    let pins = db
        .store()
        .await
        .list_environments()
        .await
        .expect("environments");
    let production = pins
        .iter()
        .find(|e| e.name == "production")
        .expect("production");
    for pin in &production.pins {
        let entry = &yaml["models"][pin.model_id.as_str()];
        assert_eq!(entry["model_id"].as_str(), Some(pin.model_id.as_str()));
        assert_eq!(entry["version"].as_str(), Some(pin.version.as_str()));
    }

    let out = db.path("production.yaml");
    db.run(&["pins", "export", "--env", "production", "--out", &out])
        .succeeds();
    let written = std::fs::read_to_string(&out).expect("the file was written");
    assert_eq!(
        serde_yaml::from_str::<serde_yaml::Value>(&written).expect("YAML"),
        yaml
    );
}

#[test]
fn an_exported_pin_file_passes_pins_check() {
    let db = TestDb::with_demo("check-ok");
    let file = db.path("production.yaml");
    db.run(&["pins", "export", "--env", "production", "--out", &file])
        .succeeds();
    let check = db.run(&["pins", "check", &file, "--env", "production"]);
    assert!(
        check.succeeds().stdout().contains("pins OK: 6 pins"),
        "{}",
        check.stdout()
    );
}

#[tokio::test]
async fn pins_check_names_every_offending_line_and_why() {
    let db = TestDb::with_demo("check-bad");
    let store = db.store().await;
    let retired = versions_in(&store, "chat-llama-70b", Stage::Retired).await;
    let staging = versions_in(&store, "rerank-minilm", Stage::Staging).await;
    let production = versions_in(&store, "embed-bge-large", Stage::Production).await;
    let file = db.path("bad.yaml");
    let text = format!(
        "# hand-edited\n\
         models:\n\
         \x20 chat:\n\
         \x20   model_id: chat-llama-70b\n\
         \x20   version: latest\n\
         \x20 embed:\n\
         \x20   model_id: embed-bge-large\n\
         \x20   version: {good}\n\
         \x20 embed-next:\n\
         \x20   model_id: embed-bge-large\n\
         \x20   version: v9.9.9\n\
         \x20 chat-old:\n\
         \x20   model_id: chat-llama-70b\n\
         \x20   version: {retired}\n\
         \x20 rerank: {{model_id: rerank-minilm, version: {staging}}}\n\
         \x20 sentiment:\n\
         \x20   model_id: sentiment-bert\n\
         \x20   version: v1.0.0\n",
        good = production[0],
        retired = retired[0],
        staging = staging[0],
    );
    std::fs::write(&file, text).expect("the file is written");

    let check = db.run(&["pins", "check", &file, "--env", "production"]);
    let stderr = check.exits(1).stderr();
    for (line, why) in [
        (5, "\"latest\""),
        (11, "unknown version embed-bge-large:v9.9.9"),
        (14, "retired"),
        (15, "only accepts versions in stage production"),
        (17, "unknown model sentiment-bert"),
    ] {
        let prefix = format!("{file}:{line}: ");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(why)),
            "no line {prefix}…{why} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains(":8: "),
        "the good pin was reported:\n{stderr}"
    );
    assert!(stderr.contains("5 of 6 pins"), "{stderr}");
}

#[test]
fn a_malformed_pin_file_exits_2_with_a_clear_message() {
    let db = TestDb::with_demo("check-malformed");
    let file = db.path("broken.yaml");
    std::fs::write(
        &file,
        "models:\n  chat:\n    model_id: chat-llama-70b\n    verison: v2.1.1\n",
    )
    .expect("written");
    let check = db.run(&["pins", "check", &file, "--env", "production"]);
    let stderr = check.exits(2).stderr();
    assert!(
        stderr.contains("is not a pin file") && stderr.contains("verison"),
        "{stderr}"
    );

    let missing = db.run(&[
        "pins",
        "check",
        &db.path("missing.yaml"),
        "--env",
        "production",
    ]);
    assert!(
        missing.exits(2).stderr().contains("cannot read"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn an_unknown_environment_is_refused_naming_the_known_ones() {
    let db = TestDb::with_demo("unknown-env");
    let export = db.run(&["pins", "export", "--env", "prod"]);
    assert!(
        export
            .exits(2)
            .stderr()
            .contains("the environments are development, staging, production"),
        "{}",
        export.stderr()
    );
}

#[test]
fn a_bad_database_url_is_one_clear_line_not_a_panic() {
    let db = TestDb::new("bad-url");
    let run = db
        .command(&["audit", "verify"])
        .env("DATABASE_URL", "mysql://x")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("sqlite://"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Stops the server when the test ends, also when it fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_with_demo_if_empty_comes_up_with_demo_data_on_a_fresh_database() {
    let db = TestDb::new("serve");
    let token = db.admin_token();
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port();
    let _server = KillOnDrop(
        db.command(&["serve", "--demo-if-empty"])
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts"),
    );

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let models = loop {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/api/v1/models"))
            .bearer_auth(&token)
            .send()
            .await;
        if let Ok(answer) = answer {
            break answer.json::<serde_json::Value>().await.expect("JSON");
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let count = models["models"].as_array().map_or(0, Vec::len);
    assert!(count >= 5, "{models}");
}

#[tokio::test]
async fn a_users_groups_are_set_from_the_command_line_and_bad_names_or_unknown_users_are_refused() {
    let db = TestDb::new("groups");
    db.run_with_input(
        &["user", "create", "--username", "rita", "--role", "approver"],
        "rita-password-1\n",
    )
    .succeeds();
    let set = db.run(&["user", "groups", "rita", "ml-risk, platform"]);
    assert!(set.succeeds().stdout().contains("rita is in ml-risk, platform"));
    let store = db.store().await;
    assert_eq!(store.user_groups("rita").await.unwrap(), ["ml-risk", "platform"]);
    db.run(&["user", "groups", "nobody", "x"]).exits(1);
    db.run(&["user", "groups", "rita", "bad\u{7}group"]).exits(2);
    assert!(db.run(&["user", "groups", "rita", ""]).succeeds().stdout().contains("in no group"));
    assert!(store.user_groups("rita").await.unwrap().is_empty());
}

#[tokio::test]
async fn users_and_tokens_are_managed_from_the_command_line_and_only_hashes_are_stored() {
    let db = TestDb::new("identity");
    let created = db.run_with_input(
        &["user", "create", "--username", "dave", "--role", "deployer"],
        "dave-password-1\n",
    );
    assert!(created.succeeds().stdout().contains("dave"));
    db.run_with_input(
        &["user", "create", "--username", "dave", "--role", "viewer"],
        "dave-password-1\n",
    )
    .exits(1);
    db.run_with_input(
        &["user", "create", "--username", "eve", "--role", "root"],
        "eve-password-1\n",
    )
    .exits(2);
    db.run_with_input(
        &["user", "create", "--username", "eve", "--role", "viewer"],
        "",
    )
    .exits(2);

    let token = db
        .run(&[
            "token",
            "create",
            "--user",
            "dave",
            "--name",
            "ci",
            "--expires",
            "90d",
        ])
        .succeeds()
        .stdout()
        .trim()
        .to_owned();
    assert!(token.starts_with("sy_"), "{token}");
    let store = db.store().await;
    let who = store
        .token_identity(&switchyard::auth::secret::hash(&token), Timestamp::now())
        .await
        .expect("lookup");
    assert_eq!(who.map(|i| i.username), Some("dave".to_owned()));

    db.run(&["token", "revoke", "ci"]).succeeds();
    let who = store
        .token_identity(&switchyard::auth::secret::hash(&token), Timestamp::now())
        .await
        .expect("lookup");
    assert!(who.is_none(), "a revoked token no longer works");
    db.run(&["user", "disable", "dave"]).succeeds();

    let events = store
        .audit_page(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit")
        .events;
    let text = serde_json::to_string(&events).expect("JSON");
    assert!(
        !text.contains(&token) && !text.contains("dave-password-1"),
        "no secret in the ledger"
    );
    for action in [
        "user.created",
        "token.created",
        "token.revoked",
        "user.disabled",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.action == action && e.actor == "cli"),
            "{action}"
        );
    }
}

/// Starts `switchyard serve` on a free port and waits until it answers.
async fn serve(db: &TestDb) -> (KillOnDrop, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port();
    let server = KillOnDrop(
        db.command(&["serve"])
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{url}/healthz")).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the server did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, url)
}

impl TestDb {
    /// Runs a `cluster` command against the server at `url` with `token`.
    fn cluster(&self, url: &str, token: &str, args: &[&str]) -> Run {
        let args: Vec<&str> = ["cluster"].iter().chain(args).copied().collect();
        let output = self
            .command(&args)
            .env("SWITCHYARD_URL", url)
            .env("SWITCHYARD_TOKEN", token)
            .output()
            .expect("the switchyard binary runs");
        Run {
            args: args.join(" "),
            output,
        }
    }
}

#[tokio::test]
async fn clusters_are_added_listed_shown_tested_and_removed_from_the_command_line_through_the_api()
{
    let db = TestDb::new("clusters");
    let token = db.admin_token();
    let (_server, url) = serve(&db).await;

    let no_token = db.run(&["cluster", "list"]);
    assert!(
        no_token.exits(2).stderr().contains("SWITCHYARD_TOKEN"),
        "{}",
        no_token.stderr()
    );
    let wrong = db.cluster(&url, "sy_not-a-token", &["list"]);
    assert!(
        wrong.exits(1).stderr().contains("refused SWITCHYARD_TOKEN"),
        "{}",
        wrong.stderr()
    );
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let unreachable = db.cluster(&format!("http://127.0.0.1:{closed}"), &token, &["list"]);
    assert!(
        unreachable
            .exits(1)
            .stderr()
            .contains("cannot reach Switchyard"),
        "{}",
        unreachable.stderr()
    );

    std::fs::write(db.path("sim.yaml"), "action_ms: 1\n").expect("config written");
    let added = db.cluster(
        &url,
        &token,
        &[
            "add",
            "sim-1",
            "--environment",
            "development",
            "--driver",
            "simulated",
            "--config",
            &db.path("sim.yaml"),
        ],
    );
    assert!(added
        .succeeds()
        .stdout()
        .contains("switchyard cluster test sim-1"));
    let refused = db.cluster(
        &url,
        &token,
        &[
            "add",
            "k-1",
            "--environment",
            "development",
            "--driver",
            "nomad",
        ],
    );
    assert!(
        refused
            .exits(1)
            .stderr()
            .contains("unknown driver \"nomad\""),
        "{}",
        refused.stderr()
    );
    let missing = db.dir.join("no-such-folder").join("router.json");
    std::fs::write(
        db.path("bad.json"),
        serde_json::json!({ "state_file": missing }).to_string(),
    )
    .expect("written");
    db.cluster(
        &url,
        &token,
        &[
            "add",
            "sim-bad",
            "--environment",
            "development",
            "--driver",
            "simulated",
            "--config",
            &db.path("bad.json"),
        ],
    )
    .succeeds();

    let list = db.cluster(&url, &token, &["list"]).succeeds().stdout();
    assert!(list.starts_with("NAME"), "{list}");
    assert!(
        list.lines().any(|l| l.starts_with("sim-1")
            && l.contains("development")
            && l.contains("simulated")),
        "{list}"
    );
    let show = db
        .cluster(&url, &token, &["show", "sim-1"])
        .succeeds()
        .stdout();
    assert!(
        show.contains("driver       simulated (simulated)") && show.contains("\"action_ms\": 1"),
        "{show}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &db.cluster(&url, &token, &["show", "sim-1", "--json"])
            .succeeds()
            .stdout(),
    )
    .expect("JSON");
    assert_eq!(json["name"], "sim-1");

    let passed = db
        .cluster(&url, &token, &["test", "sim-1"])
        .succeeds()
        .stdout();
    assert!(
        passed.contains("checks passed") && !passed.contains("FAILED"),
        "{passed}"
    );
    let failed = db.cluster(&url, &token, &["test", "sim-bad"]);
    let out = failed.exits(1).stdout();
    assert!(
        out.contains("FAILED state file") && out.contains("fix: create the folder"),
        "{out}"
    );
    assert!(failed.stderr().contains("1 of"), "{}", failed.stderr());

    let not_haproxy = db.cluster(&url, &token, &["haproxy-config", "sim-1"]);
    assert!(
        not_haproxy.exits(2).stderr().contains("simulated driver"),
        "{}",
        not_haproxy.stderr()
    );

    db.cluster(&url, &token, &["remove", "sim-1"]).succeeds();
    let gone = db.cluster(&url, &token, &["show", "sim-1"]);
    assert!(
        gone.exits(1).stderr().contains("does not exist"),
        "{}",
        gone.stderr()
    );
    let list = db.cluster(&url, &token, &["list"]).succeeds().stdout();
    assert!(
        !list.contains("sim-1") && list.contains("sim-bad"),
        "{list}"
    );
}

#[test]
fn haproxy_config_prints_the_routing_contract_from_a_config_file_without_a_server() {
    let db = TestDb::new("haproxy-config");
    let config = serde_json::json!({
        "model": "echo",
        "blue": { "url": "http://10.0.0.5:8081", "repository": "/srv/blue" },
        "green": { "url": "http://10.0.0.6:8082", "repository": "/srv/green" },
        "artifacts": "/srv/artifacts",
        "haproxy": { "socket": "tcp://127.0.0.1:9999", "route_map": "/etc/haproxy/route.map", "weights_file": "/var/lib/switchyard/weights" },
    });
    std::fs::write(db.path("oip.json"), config.to_string()).expect("written");
    let out = db
        .run(&[
            "cluster",
            "haproxy-config",
            "--config",
            &db.path("oip.json"),
            "--bind",
            "*:8080",
        ])
        .succeeds()
        .stdout();
    for expected in [
        "stats socket ipv4@127.0.0.1:9999 level admin",
        "bind *:8080",
        "use_backend %[str(active),map(/etc/haproxy/route.map,be_blue)]",
        "backend be_blue",
        "backend be_green",
        "backend be_split",
        "server blue 10.0.0.5:8081 check",
        "server green 10.0.0.6:8082 check",
        "option httpchk GET /v2/models/echo/ready",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    let bad_bind = db.run(&[
        "cluster",
        "haproxy-config",
        "--config",
        &db.path("oip.json"),
        "--bind",
        "8080",
    ]);
    assert!(
        bad_bind.exits(2).stderr().contains("HOST:PORT"),
        "{}",
        bad_bind.stderr()
    );
    std::fs::write(db.path("bad.json"), "{\"model\": \"echo\"}").expect("written");
    let bad = db.run(&[
        "cluster",
        "haproxy-config",
        "--config",
        &db.path("bad.json"),
    ]);
    assert!(
        bad.exits(2).stderr().contains("missing field"),
        "{}",
        bad.stderr()
    );
}

#[test]
fn audit_keygen_writes_a_private_key_file_and_public_key_prints_the_same_key() {
    let db = TestDb::new("keygen");
    let (key, public) = db.keygen();
    assert_eq!(public.len(), 64, "{public}");
    assert!(public.chars().all(|c| c.is_ascii_hexdigit()), "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("the key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let again = db.run(&["audit", "public-key", "--key", &key]);
    assert_eq!(again.succeeds().stdout().trim(), public);
    let stderr = db
        .run(&["audit", "keygen", "--out", &key])
        .exits(2)
        .stderr();
    assert!(stderr.contains("never overwrites"), "{stderr}");
    let garbage = db.path("garbage.key");
    std::fs::write(&garbage, "not a key\n").expect("written");
    let stderr = db
        .run(&["audit", "public-key", "--key", &garbage])
        .exits(2)
        .stderr();
    assert!(stderr.contains("does not hold a signing key"), "{stderr}");
}

/// Checkpoint 1 at the demo's head, more events, checkpoint 2; then the
/// events after checkpoint 1 are deleted by hand and the head row put back:
/// the chain alone still verifies, the checkpoints name checkpoint 2.
async fn truncation_is_named_by_the_checkpoint_it_contradicts(db: &TestDb) {
    let (key, public) = db.keygen();
    let file = db.path("checkpoints.jsonl");
    db.checkpoint(&key, &file);
    let first = db.head_id().await;
    db.add_events("auditor-one");
    db.checkpoint(&key, &file);
    let second = db.head_id().await;
    assert!(second > first);
    let ok = db.verify_checkpoints(&file, &public).succeeds().stdout();
    assert!(ok.contains("checkpoints OK: 2 signed checkpoints"), "{ok}");

    let truncate = format!("DELETE FROM ledger WHERE id > {first}");
    let head = format!(
        "UPDATE ledger_head SET last_id = {first}, \
         last_hash = (SELECT hash FROM ledger WHERE id = {first}) WHERE singleton = 1"
    );
    db.tamper(&[&truncate, &head]).await;
    db.run(&["audit", "verify"]).succeeds();
    let stderr = db.verify_checkpoints(&file, &public).exits(1).stderr();
    assert!(
        stderr.contains(&format!("checkpoint 2 (event {second}, "))
            && stderr.contains(&format!(
                ": event {second} is missing — the ledger was truncated after event {first}"
            )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("checkpoint 1 ("),
        "checkpoint 1 still holds: {stderr}"
    );
}

#[tokio::test]
async fn deleting_the_newest_events_is_named_by_the_signed_checkpoint_it_contradicts() {
    let db = TestDb::with_demo("cp-truncate");
    truncation_is_named_by_the_checkpoint_it_contradicts(&db).await;
}

#[tokio::test]
async fn on_postgresql_deleting_the_newest_events_is_named_by_the_signed_checkpoint_it_contradicts()
{
    let db = TestDb::new_postgres("cp_truncate").await;
    db.run(&["demo"]).succeeds();
    truncation_is_named_by_the_checkpoint_it_contradicts(&db).await;
    db.drop_postgres().await;
}

#[tokio::test]
async fn rewriting_the_newest_event_and_its_hash_is_named_by_the_signed_checkpoint() {
    let db = TestDb::with_demo("cp-rewrite");
    let (key, public) = db.keygen();
    let file = db.path("checkpoints.jsonl");
    db.checkpoint(&key, &file);
    let head = db.head_id().await;
    let (event, _) = db
        .store()
        .await
        .ledger_event(head)
        .await
        .expect("the event reads");
    let mut event = event.expect("the head event");
    event.reason = Some("nothing happened here".to_owned());
    let hash = event.compute_hash();
    db.tamper(&[
        &format!(
            "UPDATE ledger SET reason = 'nothing happened here', hash = '{hash}' WHERE id = {head}"
        ),
        &format!("UPDATE ledger_head SET last_hash = '{hash}' WHERE singleton = 1"),
    ])
    .await;
    db.run(&["audit", "verify"]).succeeds();
    let stderr = db.verify_checkpoints(&file, &public).exits(1).stderr();
    assert!(
        stderr.contains(&format!("checkpoint 1 (event {head}, ")) && stderr.contains("rewritten"),
        "{stderr}"
    );
}

#[test]
fn a_deleted_checkpoint_line_is_named() {
    let db = TestDb::with_demo("cp-delete");
    let (key, public) = db.keygen();
    let file = db.path("checkpoints.jsonl");
    for i in 0..3 {
        db.checkpoint(&key, &file);
        db.add_events(&format!("reader-{i}"));
    }
    db.verify_checkpoints(&file, &public).succeeds();
    let text = std::fs::read_to_string(&file).expect("the checkpoint file");
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&file, kept.join("\n") + "\n").expect("rewritten");
    let stderr = db.verify_checkpoints(&file, &public).exits(1).stderr();
    assert!(stderr.contains("checkpoint 2 is missing"), "{stderr}");
}

#[test]
fn a_forged_checkpoint_signature_is_named() {
    let db = TestDb::with_demo("cp-forge");
    let (key, public) = db.keygen();
    let file = db.path("checkpoints.jsonl");
    db.checkpoint(&key, &file);
    db.add_events("reader");
    db.checkpoint(&key, &file);
    let text = std::fs::read_to_string(&file).expect("the checkpoint file");
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // Claim fewer events than were signed (as if to cover a truncation).
    let count = lines[1]["count"].as_i64().expect("a count");
    lines[1]["count"] = serde_json::json!(count - 5);
    let forged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&file, forged.join("\n") + "\n").expect("rewritten");
    let stderr = db.verify_checkpoints(&file, &public).exits(1).stderr();
    assert!(
        stderr.contains("checkpoint 2 (event") && stderr.contains("signature does not verify"),
        "{stderr}"
    );
    assert!(!stderr.contains("checkpoint 1 ("), "{stderr}");

    // A checkpoint file signed with another key does not verify with this one.
    let other = db.path("other.key");
    db.run(&["audit", "keygen", "--out", &other]).succeeds();
    let other_file = db.path("other.jsonl");
    db.checkpoint(&other, &other_file);
    let stderr = db
        .verify_checkpoints(&other_file, &public)
        .exits(1)
        .stderr();
    assert!(
        stderr.contains("checkpoint 1 (event") && stderr.contains("signature"),
        "{stderr}"
    );
}

/// Waits until `file` holds at least `at_least` lines (30 s at most); their number.
async fn checkpoint_lines(file: &str, at_least: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = std::fs::read_to_string(file).map_or(0, |t| t.lines().count());
        if n >= at_least {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{n} checkpoints after 30 s, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn serve_signs_checkpoints_periodically_when_given_a_key_and_a_file() {
    let db = TestDb::with_demo("cp-serve");
    let (key, public) = db.keygen();
    let file = db.path("served.jsonl");
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port();
    let _server = KillOnDrop(
        db.command(&["serve"])
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_CHECKPOINT_KEY", &key)
            .env("SWITCHYARD_CHECKPOINT_FILE", &file)
            .env("SWITCHYARD_CHECKPOINT_INTERVAL_SECS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    assert_eq!(
        checkpoint_lines(&file, 1).await,
        1,
        "the head did not move: one checkpoint"
    );
    db.add_events("served-reader");
    checkpoint_lines(&file, 2).await;
    let ok = db
        .verify_checkpoints(&db.path("served.jsonl"), &public)
        .succeeds()
        .stdout();
    assert!(ok.contains("checkpoints OK"), "{ok}");

    let half = db
        .command(&["serve"])
        .env("SWITCHYARD_CHECKPOINT_KEY", &key)
        .output()
        .expect("the binary runs");
    assert_eq!(half.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&half.stderr).contains("go together"));
}

#[tokio::test]
async fn a_broken_chain_is_reported_with_the_checkpoints_it_contradicts() {
    let db = TestDb::with_demo("cp-broken");
    let (key, public) = db.keygen();
    let file = db.path("checkpoints.jsonl");
    db.checkpoint(&key, &file);
    let head = db.head_id().await;
    // The newest event deleted, the head row left alone: the chain breaks too.
    db.tamper(&[&format!("DELETE FROM ledger WHERE id = {head}")])
        .await;
    let stderr = db.verify_checkpoints(&file, &public).exits(1).stderr();
    assert!(stderr.contains("ledger BROKEN"), "{stderr}");
    assert!(
        stderr.contains(&format!("checkpoint 1 (event {head}, "))
            && stderr.contains(&format!("event {head} is missing")),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_reports_a_broken_ledger_once_to_the_subscriptions_and_signs_no_checkpoint_over_it() {
    use switchyard::store::notify::{DestinationKind, Filter, NewSubscription};
    let db = TestDb::with_demo("cp-alarm");
    let (key, _public) = db.keygen();
    let file = db.path("alarm.jsonl");
    let store = db.store().await;
    let security = store
        .create_subscription(
            NewSubscription {
                name: "security".into(),
                kind: DestinationKind::Webhook,
                url: "https://93.184.215.14/hook".into(),
                filter: Filter {
                    events: vec!["ledger.verification_failed".into()],
                    ..Filter::default()
                },
                secret: switchyard::notify::new_secret(),
                options: serde_json::Value::Null,
                parallel: false,
            },
            "test",
            Timestamp::now(),
        )
        .await
        .expect("subscribed");
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port();
    let _server = KillOnDrop(
        db.command(&["serve"])
            .env("SWITCHYARD_ADDR", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_CHECKPOINT_KEY", &key)
            .env("SWITCHYARD_CHECKPOINT_FILE", &file)
            .env("SWITCHYARD_CHECKPOINT_INTERVAL_SECS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    checkpoint_lines(&file, 1).await;
    // Someone with database access rewrites an old event.
    db.tamper(&["UPDATE ledger SET reason = 'rewritten' WHERE id = 3"])
        .await;
    let failures = || async {
        store
            .audit_page(&AuditQuery {
                action: Some("ledger.verification_failed".into()),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("the audit reads")
            .events
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while failures().await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no ledger.verification_failed within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Two more checks find the same break: still one event.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let found = failures().await;
    assert_eq!(found.len(), 1, "raised once: {found:?}");
    let ev = &found[0];
    assert_eq!(ev.actor, "system");
    assert_eq!(ev.details["first_broken_id"], 3);
    assert!(
        ev.reason
            .as_deref()
            .is_some_and(|r| r.contains("broken at event 3")),
        "{ev:?}"
    );
    // Delivered through the outbox like any event.
    let deliveries = store
        .recent_deliveries(security.id, 10)
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event_id, Some(ev.id));
    // And no checkpoint signs the broken ledger.
    assert_eq!(
        std::fs::read_to_string(&file).map_or(0, |t| t.lines().count()),
        1
    );
}

#[tokio::test]
async fn bindings_are_added_listed_and_removed_from_the_command_line_through_the_api() {
    let db = TestDb::new("bindings");
    let token = db.admin_token();
    db.run_with_input(
        &["user", "create", "--username", "alice", "--role", "viewer"],
        "alice-password-1\n",
    )
    .succeeds();
    let (_server, url) = serve(&db).await;
    let binding = |args: &[&str]| {
        let args: Vec<&str> = ["binding"].iter().chain(args).copied().collect();
        let output = db
            .command(&args)
            .env("SWITCHYARD_URL", &url)
            .env("SWITCHYARD_TOKEN", &token)
            .output()
            .expect("the switchyard binary runs");
        Run {
            args: args.join(" "),
            output,
        }
    };
    let added = binding(&["add", "--user", "alice", "--role", "deployer", "--environment", "staging"]);
    let out = added.succeeds().stdout();
    assert!(out.contains("user alice: deployer on staging"), "{out}");
    let id: i64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("binding ID added: …");
    binding(&["add", "--group", "ml-risk", "--role", "approver"]).succeeds();
    let listed = binding(&["list"]);
    let table = listed.succeeds().stdout();
    for expected in ["user alice", "viewer", "all", "deployer", "staging", "group ml-risk", "approver", "ops"] {
        assert!(table.contains(expected), "{expected} missing from:\n{table}");
    }
    let both = binding(&["add", "--user", "alice", "--group", "g", "--role", "viewer"]);
    assert!(both.exits(2).stderr().contains("exactly one of --user"), "{}", both.stderr());
    let unknown = binding(&["add", "--user", "alice", "--role", "viewer", "--environment", "moon"]);
    assert!(unknown.exits(1).stderr().contains("moon"), "{}", unknown.stderr());
    let removed = binding(&["remove", &id.to_string()]);
    assert!(removed.succeeds().stdout().contains(&format!("binding {id} removed")));
    let again = binding(&["remove", &id.to_string()]);
    assert!(again.exits(1).stderr().contains(&format!("no role binding {id}")), "{}", again.stderr());
    let last_admin = binding(&["remove", "1"]);
    assert!(last_admin.exits(1).stderr().contains("last admin binding"), "{}", last_admin.stderr());
}
