//! What an auditor and an operator do with the ledger outside the server
//! (issue 17): `audit export` checked by the standalone auditor's script
//! (scripts/verify_audit_export.py, real Python with PyNaCl), and `backup` /
//! `restore` with the checkpoints. Each test has a fresh database of its own.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use switchyard::store::{self, DynStore, StoreSettings};
use switchyard_domain::audit_export::AuditExport;
use switchyard_domain::ledger::LedgerEvent;
use switchyard_domain::Timestamp;

struct TestDb {
    dir: PathBuf,
    url: String,
    /// The admin URL and name of a PostgreSQL database to drop.
    postgres: Option<(String, String)>,
}

fn pg_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `admin_url` with its database name replaced by `database`.
fn pg_url(admin_url: &str, database: &str) -> String {
    let (server, _) = admin_url
        .rsplit_once('/')
        .expect("a URL with a database name");
    format!("{server}/{database}")
}

async fn pg_admin(statement: &str) {
    let mut admin = PgConnection::connect(&pg_admin_url()).await.expect(
        "PostgreSQL is reachable at SWITCHYARD_TEST_PG (start it, or point the variable at one)",
    );
    admin.execute(statement).await.expect("the statement runs");
}

impl TestDb {
    fn scratch(name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("export-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    /// A SQLite database that `switchyard demo` filled.
    fn with_demo(name: &str) -> TestDb {
        let dir = TestDb::scratch(name);
        let url = format!("sqlite://{}", dir.join("switchyard.db").display());
        let db = TestDb {
            dir,
            url,
            postgres: None,
        };
        db.run(&["demo"]).succeeds();
        db
    }

    async fn postgres_with_demo(name: &str) -> TestDb {
        let database = format!("sy_export_{name}_{:016x}", rand::random::<u64>());
        pg_admin(&format!("CREATE DATABASE {database}")).await;
        let db = TestDb {
            dir: TestDb::scratch(name),
            url: pg_url(&pg_admin_url(), &database),
            postgres: Some((pg_admin_url(), database)),
        };
        db.run(&["demo"]).succeeds();
        db
    }

    async fn drop_postgres(self) {
        if let Some((_, database)) = self.postgres {
            pg_admin(&format!("DROP DATABASE {database} WITH (FORCE)")).await;
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", &self.url)
            .env_remove("LOG_FORMAT");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = self
            .command(args)
            .output()
            .expect("the switchyard binary runs");
        Run {
            what: format!("switchyard {}", args.join(" ")),
            output,
        }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    async fn store(&self) -> DynStore {
        store::connect(&self.url, StoreSettings::default())
            .await
            .expect("the database opens")
    }

    async fn head_id(&self) -> i64 {
        self.store()
            .await
            .ledger_head()
            .await
            .expect("the head reads")
            .map_or(0, |(id, _)| id)
    }

    async fn event(&self, id: i64) -> LedgerEvent {
        self.store()
            .await
            .ledger_event(id)
            .await
            .expect("the event reads")
            .0
            .expect("the event")
    }

    /// A few more ledger events, as an operator's command writes them.
    fn add_events(&self, username: &str) {
        let mut child = self
            .command(&["user", "create", "--username", username, "--role", "viewer"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the binary runs");
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, b"viewer-password-1\n").expect("input");
        }
        assert!(
            child.wait().expect("it ends").success(),
            "user create {username}"
        );
    }

    /// A new checkpoint key: (key file, public key).
    fn keygen(&self) -> (String, String) {
        let key = self.path("checkpoint.key");
        let public = self
            .run(&["audit", "keygen", "--out", &key])
            .succeeds()
            .stdout();
        (key, public.trim().to_owned())
    }

    fn checkpoint(&self, key: &str, file: &str) {
        self.run(&["audit", "checkpoint", "--key", key, "--out", file])
            .succeeds();
    }

    /// Runs SQL on a SQLite file by hand, past the ledger's append-only triggers.
    async fn tamper_sqlite(file: &str, statements: &[&str]) {
        let mut db = SqliteConnection::connect(&format!("sqlite://{file}"))
            .await
            .expect("the file opens");
        for statement in [
            "DROP TRIGGER IF EXISTS ledger_no_update",
            "DROP TRIGGER IF EXISTS ledger_no_delete",
        ]
        .iter()
        .chain(statements)
        {
            db.execute(*statement).await.expect("the statement runs");
        }
        // Closed, so the change is in the file itself and not only in its -wal.
        db.close().await.expect("the file closes");
    }
}

struct Run {
    what: String,
    output: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn exits(&self, code: i32) -> &Run {
        assert_eq!(
            self.output.status.code(),
            Some(code),
            "{} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }

    fn succeeds(&self) -> &Run {
        self.exits(0)
    }
}

// ---- the auditor's script ----

/// A Python with PyNaCl: `SWITCHYARD_AUDIT_PYTHON` (scripts/peers.sh sets
/// it), else `.tools/venv/bin/python` if it has it. Without one the test
/// fails where the test command runs it (SWITCHYARD_PEERS_REQUIRED), else skips.
fn audit_python() -> Option<String> {
    let candidates = [
        std::env::var("SWITCHYARD_AUDIT_PYTHON").ok(),
        Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python").to_owned()),
    ];
    let found = candidates.into_iter().flatten().find(|python| {
        Command::new(python)
            .args(["-c", "import nacl.signing"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "no Python with PyNaCl: run scripts/peers.sh"
        );
        eprintln!("SKIPPED: no Python with PyNaCl (scripts/peers.sh installs it)");
    }
    found
}

/// What the auditor's script says of `export`: its exit code and verdict.
fn auditor(python: &str, public: &str, export: &str) -> (i32, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/verify_audit_export.py"
    );
    let output = Command::new(python)
        .args([script, "--public-key", public, export])
        .output()
        .expect("the script runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "the script wrote to stderr: {stderr}");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

/// A period of the middle third of the ledger, an export of it with a
/// checkpoint signed after it: (export file, public key, period's last event id).
async fn exported_middle_third(db: &TestDb) -> (String, String, i64) {
    let (key, public) = db.keygen();
    let checkpoints = db.path("checkpoints.jsonl");
    db.checkpoint(&key, &checkpoints);
    db.add_events("auditor-1");
    db.checkpoint(&key, &checkpoints);
    db.add_events("auditor-2");
    db.checkpoint(&key, &checkpoints);
    db.add_events("after-the-last-checkpoint");
    let head = db.head_id().await;
    let from = db.event(head / 3).await.at;
    let to = db.event(2 * head / 3).await.at;
    let out = db.path("export.json");
    let run = db.run(&[
        "audit",
        "export",
        "--from",
        &from.to_rfc3339(),
        "--to",
        &to.to_rfc3339(),
        "--checkpoints",
        &checkpoints,
        "--out",
        &out,
    ]);
    let stdout = run.succeeds().stdout();
    assert!(stdout.contains("verify_audit_export.py"), "{stdout}");
    let export = read_export(&out);
    (out, public, export.period.last_event_id)
}

fn read_export(file: &str) -> AuditExport {
    let text = std::fs::read_to_string(file).expect("the export file");
    serde_json::from_str(&text).expect("an export in the documented format")
}

fn write_json(file: &str, value: &Value) {
    std::fs::write(file, serde_json::to_string_pretty(value).expect("JSON")).expect("written");
}

/// Recomputes each event's hash and link from `from` on, as someone who
/// rewrites history and covers their tracks would.
fn rechain(export: &mut Value, from: usize) {
    let events = export["events"].as_array_mut().expect("events");
    for i in from..events.len() {
        if i > 0 {
            events[i]["prev_hash"] = events[i - 1]["hash"].clone();
        }
        let mut ev: LedgerEvent = serde_json::from_value(Value::Object(
            events[i]
                .as_object()
                .expect("an event")
                .clone()
                .into_iter()
                .map(|(k, v)| {
                    let v = if k == "at" {
                        Value::String(
                            Timestamp::from_micros(v.as_i64().expect("micros")).to_rfc3339(),
                        )
                    } else {
                        v
                    };
                    (k, v)
                })
                .collect(),
        ))
        .expect("a ledger event");
        ev.hash = ev.compute_hash();
        events[i]["hash"] = Value::String(ev.hash);
    }
}

#[tokio::test]
async fn the_auditors_script_verifies_an_exported_period_and_its_checkpoints() {
    let Some(python) = audit_python() else { return };
    let db = TestDb::with_demo("verifies");
    let (out, public, last) = exported_middle_third(&db).await;
    let export = read_export(&out);
    // The event before the period, the period, and up to the first checkpoint signed after it.
    let first = export.period.first_event_id;
    assert_eq!(export.events.first().map(|e| e.id), Some(first - 1));
    assert_eq!(
        export.checkpoints.len(),
        1,
        "the first checkpoint covers the period"
    );
    assert_eq!(
        export.events.last().map(|e| e.id),
        Some(export.checkpoints[0].event_id)
    );
    assert!(export.events.last().map(|e| e.id) > Some(last));

    let (code, verdict) = auditor(&python, &public, &out);
    assert_eq!(code, 0, "{verdict}");
    assert!(
        verdict.starts_with(&format!("VERIFIED: events {first} to {last} ("))
            && verdict.contains("checkpoint 1 (event"),
        "{verdict}"
    );
}

#[tokio::test]
async fn the_auditors_script_rejects_a_tampered_export_and_says_how() {
    let Some(python) = audit_python() else { return };
    let db = TestDb::with_demo("tampered");
    let (out, public, _) = exported_middle_third(&db).await;
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("JSON");
    let middle = original["events"].as_array().expect("events").len() / 2;
    let middle_id = original["events"][middle]["id"].as_i64().expect("an id");
    let tampered = db.path("tampered.json");
    let verdict_of = |edit: &dyn Fn(&mut Value)| {
        let mut export = original.clone();
        edit(&mut export);
        write_json(&tampered, &export);
        auditor(&python, &public, &tampered)
    };

    let (code, verdict) =
        verdict_of(&|e| e["events"][middle]["reason"] = "nothing happened".into());
    assert_eq!(code, 1, "{verdict}");
    assert_eq!(
        verdict,
        format!("REJECTED: event {middle_id} was edited: its content no longer matches its hash")
    );

    // The reason rewritten and every hash after it recomputed: the signed head no longer matches.
    let (code, verdict) = verdict_of(&|e| {
        e["events"][middle]["reason"] = "nothing happened".into();
        rechain(e, middle);
    });
    assert_eq!(code, 1, "{verdict}");
    assert!(
        verdict.starts_with("REJECTED: checkpoint 1 (event") && verdict.contains("were rewritten"),
        "{verdict}"
    );

    let (code, verdict) = verdict_of(&|e| {
        e["events"].as_array_mut().expect("events").remove(middle);
    });
    assert_eq!(code, 1, "{verdict}");
    assert!(
        verdict.starts_with(&format!(
            "REJECTED: events {middle_id} to {middle_id} are missing"
        )),
        "{verdict}"
    );

    // A deleted event with the chain recomputed around the gap: still the signed head.
    let (code, verdict) = verdict_of(&|e| {
        let events = e["events"].as_array_mut().expect("events");
        events.remove(middle);
        for ev in events.iter_mut().skip(middle) {
            let id = ev["id"].as_i64().expect("an id");
            ev["id"] = (id - 1).into();
        }
        rechain(e, middle);
    });
    assert_eq!(code, 1, "{verdict}");
    assert!(verdict.contains("checkpoint 1 (event"), "{verdict}");

    // A checkpoint forged to sign the rewritten head: its signature fails.
    let (code, verdict) = verdict_of(&|e| {
        e["events"][middle]["reason"] = "nothing happened".into();
        rechain(e, middle);
        let head = e["events"]
            .as_array()
            .and_then(|a| a.last())
            .expect("events")["hash"]
            .clone();
        e["checkpoints"][0]["event_hash"] = head;
    });
    assert_eq!(code, 1, "{verdict}");
    assert!(
        verdict.starts_with("REJECTED: checkpoint 1 (event")
            && verdict.contains("signature does not verify"),
        "{verdict}"
    );

    // The period's first event left out: the event kept before it lies in the period.
    let (code, verdict) = verdict_of(&|e| {
        e["events"].as_array_mut().expect("events").remove(0);
        let first = e["period"]["first_event_id"].as_i64().expect("an id");
        e["period"]["first_event_id"] = (first + 1).into();
    });
    assert_eq!(code, 1, "{verdict}");
    assert!(
        verdict.contains("events at the period's start were left out"),
        "{verdict}"
    );

    // Another key's public key: nothing it signed is here.
    let other = db.path("other.key");
    let other_public = db
        .run(&["audit", "keygen", "--out", &other])
        .succeeds()
        .stdout();
    let (code, verdict) = auditor(&python, other_public.trim(), &out);
    assert_eq!(code, 1, "{verdict}");
    assert!(verdict.contains("signature does not verify"), "{verdict}");

    // The untouched export still verifies.
    assert_eq!(auditor(&python, &public, &out).0, 0);
}

/// Details with what canonical JSON (RFC 8785) is particular about: numbers
/// printed as ECMAScript prints doubles, keys in UTF-16 order, escapes.
#[test]
fn the_auditors_script_hashes_numbers_keys_and_escapes_exactly_as_the_server_does() {
    use ed25519_dalek::{Signer, SigningKey};
    use switchyard_domain::audit_export;
    use switchyard_domain::checkpoint::{Checkpoint, GENESIS};
    use switchyard_domain::ledger::{action, NewEvent, GENESIS_HASH};

    let Some(python) = audit_python() else { return };
    let details = [
        serde_json::json!({ "small": 0.1, "big": 1e21, "tiny": 1e-7, "negative_zero": -0.0,
            "beyond_2_53": 9_007_199_254_740_993_u64, "plain": 123.456, "whole": 2.0 }),
        serde_json::json!({ "\u{e000}": 1, "\u{1f600}": 2, "é": 3, "a": 4, "B": 5 }),
        serde_json::json!({ "text": "quote \" backslash \\ tab \t newline \n bell \u{7} del \u{7f} \u{2028}" }),
        serde_json::json!({ "nested": [[], {}, [1.5e300, -2.5e-300], null, true, false] }),
    ];
    let mut events: Vec<LedgerEvent> = Vec::new();
    for (i, details) in details.into_iter().enumerate() {
        let id = i as i64 + 1;
        let prev = events
            .last()
            .map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
        events.push(
            NewEvent::new(
                Timestamp::from_micros(1_000_000 * id),
                "ünïcode ✓",
                action::PIN_CHANGED,
            )
            .reason(Some("line one\nline two"))
            .details(details)
            .seal(id, &prev),
        );
    }
    let key = SigningKey::from_bytes(&[7; 32]);
    let head = events.last().expect("events");
    let mut checkpoint = Checkpoint {
        seq: 1,
        event_id: head.id,
        event_hash: head.hash.clone(),
        event_at: head.at.micros(),
        count: head.id,
        signed_at: 10_000_000,
        prev: GENESIS.to_owned(),
        signature: String::new(),
    };
    checkpoint.signature = hex::encode(key.sign(&checkpoint.message()).to_bytes());
    let checkpoints = [checkpoint];
    let (from, to) = (
        Timestamp::from_micros(2_000_000),
        Timestamp::from_micros(4_000_000),
    );
    let plan = audit_export::plan(from, to, Some((2, 3)), Some(&checkpoints)).expect("a plan");
    audit_export::check(&plan, &events, &checkpoints).expect("the events check");
    let export = audit_export::assemble(&plan, from, to, events, &checkpoints, Timestamp::now());
    let dir = TestDb::scratch("canonical");
    let file = dir.join("export.json").display().to_string();
    std::fs::write(&file, serde_json::to_string(&export).expect("JSON")).expect("written");
    let public = hex::encode(key.verifying_key().to_bytes());
    let (code, verdict) = auditor(&python, &public, &file);
    assert_eq!(code, 0, "{verdict}");
    assert!(verdict.starts_with("VERIFIED: events 2 to 3 "), "{verdict}");
}

#[tokio::test]
async fn a_deleted_checkpoint_in_an_export_is_named() {
    let Some(python) = audit_python() else { return };
    let db = TestDb::with_demo("deleted-checkpoint");
    let (key, public) = db.keygen();
    let checkpoints = db.path("checkpoints.jsonl");
    for i in 0..3 {
        db.checkpoint(&key, &checkpoints);
        db.add_events(&format!("reader-{i}"));
    }
    db.checkpoint(&key, &checkpoints);
    // The period: the event between checkpoints 3 and 4, covered by checkpoint 4.
    let head = db.head_id().await;
    let from = db.event(head).await.at;
    let out = db.path("export.json");
    db.run(&[
        "audit",
        "export",
        "--from",
        &from.to_rfc3339(),
        "--to",
        &Timestamp::from_micros(from.micros() + 1).to_rfc3339(),
        "--checkpoints",
        &checkpoints,
        "--out",
        &out,
    ])
    .succeeds();
    assert_eq!(auditor(&python, &public, &out).0, 0);
    let mut export: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("JSON");
    assert_eq!(export["checkpoints"].as_array().map(Vec::len), Some(4));
    export["checkpoints"]
        .as_array_mut()
        .expect("checkpoints")
        .remove(1);
    write_json(&out, &export);
    let (code, verdict) = auditor(&python, &public, &out);
    assert_eq!(code, 1, "{verdict}");
    assert!(verdict.contains("checkpoint 2 is missing"), "{verdict}");
}

#[tokio::test]
async fn an_export_without_a_checkpoint_signed_after_the_period_is_refused_and_one_without_checkpoints_is_unsigned(
) {
    let db = TestDb::with_demo("uncovered");
    let (key, public) = db.keygen();
    let checkpoints = db.path("checkpoints.jsonl");
    db.checkpoint(&key, &checkpoints);
    let from = db.event(1).await.at.to_rfc3339();
    let tomorrow = Timestamp::now().plus_days(1).to_rfc3339();
    let out = db.path("export.json");
    let stderr = db
        .run(&[
            "audit",
            "export",
            "--from",
            &from,
            "--to",
            &tomorrow,
            "--checkpoints",
            &checkpoints,
            "--out",
            &out,
        ])
        .exits(1)
        .stderr();
    assert!(
        stderr.contains("no checkpoint in the file was signed after the period ended")
            && stderr.contains("switchyard audit checkpoint"),
        "{stderr}"
    );
    assert!(!std::path::Path::new(&out).exists(), "nothing written");

    let stderr = db
        .run(&[
            "audit",
            "export",
            "--from",
            "yesterday",
            "--to",
            &tomorrow,
            "--out",
            &out,
        ])
        .exits(2)
        .stderr();
    assert!(
        stderr.contains("--from") && stderr.contains("2026-03-03T14:00:00Z"),
        "{stderr}"
    );

    db.run(&[
        "audit", "export", "--from", &from, "--to", &tomorrow, "--out", &out,
    ])
    .succeeds();
    let Some(python) = audit_python() else { return };
    let (code, verdict) = auditor(&python, &public, &out);
    assert_eq!(code, 3, "{verdict}");
    assert!(verdict.starts_with("UNSIGNED: events 1 to "), "{verdict}");
}

#[tokio::test]
async fn on_postgresql_an_exported_period_verifies_with_the_auditors_script() {
    let Some(python) = audit_python() else { return };
    let db = TestDb::postgres_with_demo("pg").await;
    let (out, public, _) = exported_middle_third(&db).await;
    let (code, verdict) = auditor(&python, &public, &out);
    assert_eq!(code, 0, "{verdict}");
    db.drop_postgres().await;
}

// ---- backup and restore ----

#[tokio::test]
async fn a_backup_taken_while_others_write_verifies_and_restore_brings_it_back() {
    let db = TestDb::with_demo("backup");
    let backup = db.path("backup.db");
    // Another process writes while the backup is taken.
    let writer = {
        let cmd_db = TestDb {
            dir: db.dir.clone(),
            url: db.url.clone(),
            postgres: None,
        };
        std::thread::spawn(move || {
            for i in 0..5 {
                cmd_db.add_events(&format!("writer-{i}"));
            }
        })
    };
    let stdout = db.run(&["backup", &backup]).succeeds().stdout();
    writer.join().expect("the writer ends");
    assert!(stdout.contains("ledger OK"), "{stdout}");
    let stderr = db.run(&["backup", &backup]).exits(2).stderr();
    assert!(stderr.contains("never overwrites"), "{stderr}");

    let head_at_backup = {
        let copy = TestDb {
            dir: db.dir.clone(),
            url: format!("sqlite://{backup}"),
            postgres: None,
        };
        copy.run(&["audit", "verify"]).succeeds();
        copy.head_id().await
    };
    db.add_events("after-the-backup");
    let head_before_restore = db.head_id().await;
    assert!(head_before_restore > head_at_backup);

    let stderr = db.run(&["restore", &backup]).exits(2).stderr();
    assert!(stderr.contains("--replace"), "{stderr}");
    assert_eq!(
        db.head_id().await,
        head_before_restore,
        "refused: nothing changed"
    );

    let stdout = db
        .run(&["restore", &backup, "--replace"])
        .succeeds()
        .stdout();
    assert!(
        stdout.contains("ledger OK") && stdout.contains(&format!("head event {head_at_backup}")),
        "{stdout}"
    );
    assert_eq!(db.head_id().await, head_at_backup);
    db.run(&["audit", "verify"]).succeeds();
    // The replaced database is kept, with the events written after the backup.
    let kept = std::fs::read_dir(&db.dir)
        .expect("the directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("switchyard.db.before-restore-")
                    && !n.ends_with("-wal")
                    && !n.ends_with("-shm")
            })
        })
        .expect("the replaced database is kept");
    let replaced = TestDb {
        dir: db.dir.clone(),
        url: format!("sqlite://{}", kept.display()),
        postgres: None,
    };
    assert_eq!(replaced.head_id().await, head_before_restore);

    // On a fresh host: no database yet, not even its directory.
    let fresh_host = TestDb {
        dir: db.dir.clone(),
        url: format!(
            "sqlite://{}",
            db.dir.join("new-host/data/switchyard.db").display()
        ),
        postgres: None,
    };
    fresh_host.run(&["restore", &backup]).succeeds();
    fresh_host.run(&["audit", "verify"]).succeeds();
    assert_eq!(fresh_host.head_id().await, head_at_backup);
}

#[tokio::test]
async fn restoring_a_backup_older_than_the_newest_checkpoint_says_so() {
    let db = TestDb::with_demo("older");
    let (key, public) = db.keygen();
    let checkpoints = db.path("checkpoints.jsonl");
    db.checkpoint(&key, &checkpoints);
    let backup = db.path("backup.db");
    db.run(&["backup", &backup]).succeeds();
    let at_backup = db.head_id().await;
    db.add_events("lost-in-the-restore");
    db.add_events("lost-too");
    db.checkpoint(&key, &checkpoints);
    let newest = db.head_id().await;
    let fresh = db.path("fresh.db");
    db.run(&["backup", &fresh]).succeeds();

    let stdout = db
        .run(&[
            "restore",
            &backup,
            "--replace",
            "--checkpoints",
            &checkpoints,
            "--public-key",
            &public,
        ])
        .succeeds()
        .stdout();
    assert!(
        stdout.contains(&format!(
            "the restored database is older than the newest checkpoint: checkpoint 2 (event {newest}, "
        )) && stdout.contains(&format!("events {} to {newest}", at_backup + 1)),
        "{stdout}"
    );

    // A backup as new as every checkpoint: every one holds.
    let stdout = db
        .run(&[
            "restore",
            &fresh,
            "--replace",
            "--checkpoints",
            &checkpoints,
            "--public-key",
            &public,
        ])
        .succeeds()
        .stdout();
    assert!(
        stdout.contains("checkpoints OK: 2 signed checkpoints"),
        "{stdout}"
    );

    // A checkpoint file that cannot be read is found before anything is replaced.
    db.add_events("kept");
    let head = db.head_id().await;
    let stderr = db
        .run(&[
            "restore",
            &fresh,
            "--replace",
            "--checkpoints",
            &db.path("none.jsonl"),
            "--public-key",
            &public,
        ])
        .exits(2)
        .stderr();
    assert!(
        stderr.contains("cannot read the checkpoint file"),
        "{stderr}"
    );
    assert_eq!(db.head_id().await, head);
}

#[tokio::test]
async fn a_broken_or_foreign_backup_is_refused_and_the_database_is_unchanged() {
    let db = TestDb::with_demo("broken-backup");
    let backup = db.path("backup.db");
    db.run(&["backup", &backup]).succeeds();
    TestDb::tamper_sqlite(
        &backup,
        &["UPDATE ledger SET reason = 'nothing happened' WHERE id = 5"],
    )
    .await;
    let head = db.head_id().await;
    let stderr = db.run(&["restore", &backup, "--replace"]).exits(1).stderr();
    assert!(
        stderr.contains("the backup's ledger is BROKEN at event 5")
            && stderr.contains("is unchanged"),
        "{stderr}"
    );
    let foreign = db.path("notes.txt");
    std::fs::write(
        &foreign,
        "not a database at all, just some text that is long enough",
    )
    .expect("written");
    let stderr = db
        .run(&["restore", &foreign, "--replace"])
        .exits(1)
        .stderr();
    assert!(stderr.contains("is not a"), "{stderr}");
    assert_eq!(db.head_id().await, head);
    db.run(&["audit", "verify"]).succeeds();
    let leftovers: Vec<_> = std::fs::read_dir(&db.dir)
        .expect("the directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("restor"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn on_postgresql_backup_runs_pg_dump_and_the_documented_pg_restore_brings_the_ledger_back() {
    let db = TestDb::postgres_with_demo("pgbackup").await;
    let backup = db.path("backup.dump");
    let stdout = db.run(&["backup", &backup]).succeeds().stdout();
    assert!(stdout.contains("pg_restore"), "{stdout}");
    let head = db.head_id().await;
    let restored_name = format!("sy_restored_{:016x}", rand::random::<u64>());
    pg_admin(&format!("CREATE DATABASE {restored_name}")).await;
    let restored_url = pg_url(&pg_admin_url(), &restored_name);
    let restored = Command::new("pg_restore")
        .args([
            "--no-owner",
            "--single-transaction",
            "--dbname",
            &restored_url,
            &backup,
        ])
        .output()
        .expect("pg_restore runs");
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let copy = TestDb {
        dir: db.dir.clone(),
        url: restored_url,
        postgres: None,
    };
    copy.run(&["audit", "verify"]).succeeds();
    assert_eq!(copy.head_id().await, head);
    let stderr = copy.run(&["restore", &backup]).exits(2).stderr();
    assert!(stderr.contains("pg_restore"), "{stderr}");
    pg_admin(&format!("DROP DATABASE {restored_name} WITH (FORCE)")).await;
    db.drop_postgres().await;
}
