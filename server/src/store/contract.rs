//! The contract every store meets, written once and run against SQLite and
//! PostgreSQL (`store::contract::sqlite::…` and `store::contract::postgres::…`).
//!
//! Each test gets a fresh database: a temporary SQLite file, or a new
//! PostgreSQL database on the server named by `SWITCHYARD_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards. If
//! PostgreSQL is unreachable the PostgreSQL tests fail; they never skip.

use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_domain::clusters::{DriverKind, NewCluster};
use switchyard_domain::config_hash::config_hash;
use switchyard_domain::ledger::{action, LedgerEvent};
use switchyard_domain::lifecycle::MoveVia;
use switchyard_domain::types::{NewVersion, RequestRecord, ServingAt, Version};
use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp, VersionRef};

use super::{connect, AuditQuery, Backend, DynStore, StoreError, StoreSettings};

/// A fresh, migrated database for one test.
struct TestDb {
    backend: Backend,
    url: String,
    store: DynStore,
    /// The PostgreSQL database to drop, or the SQLite file to delete.
    cleanup: String,
}

fn pg_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = base[host_start..]
        .find('/')
        .map_or(base, |i| &base[..host_start + i]);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn pg_admin() -> sqlx::PgConnection {
    let url = pg_admin_url();
    sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url} ({e}); the PostgreSQL contract tests need it: \
             start it or point SWITCHYARD_TEST_PG at one"
        )
    })
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let path =
            std::env::temp_dir().join(format!("switchyard-test-{:016x}.db", rand::random::<u64>()));
        let url = format!("sqlite://{}", path.display());
        TestDb::open(Backend::Sqlite, url, path.display().to_string()).await
    }

    async fn postgres() -> TestDb {
        let name = format!("sy_{:016x}", rand::random::<u64>());
        let mut admin = pg_admin().await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let url = with_database(&pg_admin_url(), &name);
        TestDb::open(Backend::Postgres, url, name).await
    }

    async fn open(backend: Backend, url: String, cleanup: String) -> TestDb {
        let store = connect(&url, StoreSettings::default())
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        TestDb {
            backend,
            url,
            store,
            cleanup,
        }
    }

    /// Another pool on the same database, as another server process would have.
    async fn another_server(&self) -> DynStore {
        connect(&self.url, StoreSettings::default())
            .await
            .expect("connect again")
    }

    /// Raw SQL behind the store's back.
    async fn execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::Executor::execute(&mut c, sql).await?;
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await?;
                sqlx::Executor::execute(&mut c, sql).await?;
            }
        }
        Ok(())
    }

    /// Edits the ledger as someone with full access to the database would:
    /// first removing the append-only triggers, then running `sql`.
    async fn tamper(&self, sql: &str) {
        let unprotect = match self.backend {
            Backend::Sqlite => "DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete;",
            Backend::Postgres => "ALTER TABLE ledger DISABLE TRIGGER USER;",
        };
        self.execute(&format!("{unprotect} {sql}"))
            .await
            .expect(sql);
    }

    /// Best effort: a leftover test database is harmless.
    async fn remove(&self) {
        match self.backend {
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.cleanup));
                }
            }
            Backend::Postgres => {
                let mut admin = pg_admin().await;
                let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.cleanup);
                let _ = sqlx::query(&drop).execute(&mut admin).await;
            }
        }
    }
}

/// Runs `test` on a fresh database and removes the database afterwards, even
/// when the test fails.
async fn run<T, F>(db: impl Future<Output = TestDb>, test: T)
where
    T: FnOnce(Arc<TestDb>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(db.await);
    let outcome = tokio::spawn(test(db.clone())).await;
    db.remove().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! contract_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::run(super::TestDb::sqlite(), super::$test).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::run(super::TestDb::postgres(), super::$test).await
                }
            )*
        }
    };
}

contract_tests!(
    registering_the_same_version_twice_returns_the_stored_one_without_a_new_event,
    registering_a_known_version_with_another_config_or_artifact_is_a_conflict_and_changes_nothing,
    models_and_versions_are_listed_with_counts_latest_and_production,
    every_allowed_lifecycle_move_succeeds_and_shows_in_the_stage_history,
    refused_lifecycle_moves_name_the_allowed_moves,
    staging_to_production_is_refused_except_through_a_promotion,
    promoting_a_version_deprecates_the_previous_production_version,
    a_reader_never_sees_two_or_zero_production_versions_during_promotions,
    retiring_before_the_deprecation_period_needs_an_admin_with_a_reason,
    pins_obey_the_environment_policy,
    pin_changes_are_recorded_with_the_previous_version,
    a_models_history_in_a_window_has_its_changes_there_and_each_environments_pin_before_it,
    a_page_of_versions_is_read_alone_in_the_lists_order_and_a_page_past_the_end_is_refused,
    resolving_a_model_follows_the_environments_pin,
    resolving_an_exact_version_warns_when_deprecated_and_refuses_when_retired,
    resolving_latest_gives_the_newest_unretired_version_only_where_allowed,
    request_records_are_stored_all_or_nothing_and_retries_are_skipped,
    a_stored_request_id_repeated_with_other_content_is_a_conflict_and_nothing_is_stored,
    request_lookup_names_the_version_and_the_events_that_put_it_in_service,
    request_lookup_shows_only_its_clusters_events_and_says_when_the_cluster_is_unknown,
    serving_at_answers_what_each_environment_pinned_at_an_instant,
    serving_at_sees_what_another_server_wrote_after_its_first_answer,
    serving_at_places_backdated_changes_and_orders_changes_at_one_instant_by_event,
    a_models_history_lists_its_pin_and_stage_changes_oldest_first,
    the_audit_log_filters_and_paginates_newest_first,
    a_malformed_cursor_or_limit_is_refused,
    verify_accepts_an_untouched_ledger,
    the_database_refuses_to_edit_or_delete_ledger_events,
    verify_detects_an_edited_reason_at_that_event,
    verify_detects_a_deleted_first_or_middle_event,
    verify_detects_a_deleted_last_event,
    a_periods_events_are_found_by_time_and_read_by_id,
    retire_due_retires_unpinned_versions_and_holds_pinned_ones,
    concurrent_registrations_of_one_version_with_different_configs_have_one_winner,
    concurrent_writes_from_several_servers_keep_the_ledger_chain_contiguous,
    events_written_while_acting_with_a_token_name_the_person_and_the_token,
    serving_at_names_an_unknown_environment_or_model_and_says_when_t_is_outside_the_ledger,
    an_audit_filter_value_nothing_ever_carried_is_named_as_unknown,
    an_imported_version_is_registered_moved_and_pinned_in_one_transaction_or_not_at_all,
);

mod analysis;
mod bindings;
mod cache;
mod identity;
mod notify;
mod release;
mod sso;

// ---- helpers ----

/// 2026-03-01T00:00:00Z plus `minutes`.
fn at(minutes: i64) -> Timestamp {
    Timestamp::from_micros(1_772_323_200_000_000 + minutes * 60_000_000)
}

fn day(days: i64) -> Timestamp {
    at(days * 24 * 60)
}

fn id(s: &str) -> FullId {
    FullId::parse(s).expect("a valid full id")
}

fn model(s: &str) -> ModelId {
    ModelId::parse(s).expect("a valid model id")
}

fn new_version(full_id: &str, config: Value, artifact: Option<&str>) -> NewVersion {
    NewVersion {
        full_id: id(full_id),
        config_hash: config_hash(&config).expect("an object config"),
        config,
        artifact_uri: artifact.map(str::to_owned),
        labels: None,
    }
}

async fn register(db: &TestDb, full_id: &str, when: Timestamp) -> Version {
    let new = new_version(
        full_id,
        json!({ "temperature": 0.2, "id": full_id }),
        Some("s3://models/x"),
    );
    db.store
        .register_version(new, "ci", when)
        .await
        .expect("register")
        .version
}

const MANUAL: MoveVia = MoveVia::Manual { is_admin: false };
const ADMIN: MoveVia = MoveVia::Manual { is_admin: true };

async fn move_to(db: &TestDb, full_id: &str, to: Stage, via: MoveVia, when: Timestamp) -> Version {
    db.store
        .change_stage(&id(full_id), to, via, None, "alice", when)
        .await
        .unwrap_or_else(|e| panic!("{full_id} → {to}: {e}"))
}

/// Registers `full_id` and takes it to production (staging, then a promotion).
async fn in_production(db: &TestDb, full_id: &str, when: Timestamp) -> Version {
    register(db, full_id, when).await;
    move_to(db, full_id, Stage::Staging, MANUAL, when).await;
    move_to(db, full_id, Stage::Production, MoveVia::Promotion, when).await
}

fn domain(result: Result<impl std::fmt::Debug, StoreError>) -> DomainError {
    match result {
        Err(StoreError::Domain(e)) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

async fn all_events(db: &TestDb) -> Vec<LedgerEvent> {
    let q = AuditQuery {
        limit: 1000,
        ..Default::default()
    };
    let mut events = db.store.audit_page(&q).await.expect("audit page").events;
    events.reverse();
    events
}

fn actions(events: &[LedgerEvent]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

fn record(request_id: &str, full_id: &str, when: Timestamp) -> RequestRecord {
    RequestRecord {
        request_id: request_id.to_owned(),
        at: when,
        cluster: "prod-eu".into(),
        slot: "blue".into(),
        full_id: id(full_id),
        latency_ms: 12.5,
        outcome: Some("approved".into()),
    }
}

// ---- registration and listing ----

async fn registering_the_same_version_twice_returns_the_stored_one_without_a_new_event(
    db: Arc<TestDb>,
) {
    let first = db
        .store
        .register_version(
            new_version("chat:v1", json!({"a": 1, "b": [1, 2]}), None),
            "ci",
            at(0),
        )
        .await
        .expect("first registration");
    assert!(first.created);
    assert_eq!(first.version.stage, Stage::Development);
    assert_eq!(first.version.created_by, "ci");

    // Same config written with another key order: the same canonical hash.
    let again = db
        .store
        .register_version(
            new_version("chat:v1", json!({"b": [1, 2], "a": 1}), None),
            "ci-retry",
            at(5),
        )
        .await
        .expect("second registration");
    assert!(!again.created);
    assert_eq!(again.version, first.version);
    assert_eq!(
        actions(&all_events(&db).await),
        [action::VERSION_REGISTERED]
    );
}

async fn registering_a_known_version_with_another_config_or_artifact_is_a_conflict_and_changes_nothing(
    db: Arc<TestDb>,
) {
    let stored = register(&db, "chat:v1", at(0)).await;

    let other_config = new_version(
        "chat:v1",
        json!({"temperature": 0.9}),
        Some("s3://models/x"),
    );
    let e = domain(db.store.register_version(other_config, "ci", at(1)).await);
    assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
    assert_eq!(e.http_status(), 409);
    assert!(e.to_string().contains("config"), "{e}");

    let other_artifact = new_version("chat:v1", stored.config.clone(), Some("s3://models/y"));
    let e = domain(db.store.register_version(other_artifact, "ci", at(2)).await);
    assert!(e.to_string().contains("artifact_uri"), "{e}");

    assert_eq!(
        db.store.get_version(&id("chat:v1")).await.unwrap(),
        Some(stored)
    );
    assert_eq!(all_events(&db).await.len(), 1);
}

async fn models_and_versions_are_listed_with_counts_latest_and_production(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    register(&db, "chat:v2", at(10)).await;
    register(&db, "embed:e1", at(20)).await;

    let models = db.store.list_models().await.unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0].model_id.as_str(), "chat");
    assert_eq!(models[0].version_count, 2);
    assert_eq!(models[0].latest_version.as_ref().unwrap().as_str(), "v2");
    assert_eq!(
        models[0].production_version.as_ref().unwrap().as_str(),
        "v1"
    );
    assert_eq!(models[0].updated_at, at(10));
    assert_eq!(models[1].production_version, None);

    let versions = db.store.list_versions(&model("chat")).await.unwrap();
    let names: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(names, ["v2", "v1"]);
    let e = domain(db.store.list_versions(&model("nope")).await);
    assert!(matches!(e, DomainError::NotFound(_)));
    assert_eq!(db.store.get_version(&id("chat:v9")).await.unwrap(), None);

    db.store
        .set_pin("production", &id("chat:v1"), None, "bob", at(30))
        .await
        .unwrap();
    let detail = db
        .store
        .version_detail(&id("chat:v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.pinned_in, ["production"]);
    assert_eq!(detail.retires_at, None);

    let envs = db.store.list_environments().await.unwrap();
    let names: Vec<_> = envs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["development", "staging", "production"]);
    assert_eq!(envs[2].policy.required_approvals, 2);
    assert!(envs[0].policy.allow_latest && !envs[2].policy.allow_latest);
    assert_eq!(envs[2].pins.len(), 1);
    assert_eq!(envs[2].pins[0].stage, Stage::Production);
    assert!(envs[0].pins.is_empty());
}

// ---- lifecycle ----

async fn every_allowed_lifecycle_move_succeeds_and_shows_in_the_stage_history(db: Arc<TestDb>) {
    register(&db, "chat:v1", day(0)).await;
    move_to(&db, "chat:v1", Stage::Staging, MANUAL, day(1)).await;
    move_to(&db, "chat:v1", Stage::Development, MANUAL, day(2)).await;
    move_to(&db, "chat:v1", Stage::Staging, MANUAL, day(3)).await;
    move_to(
        &db,
        "chat:v1",
        Stage::Production,
        MoveVia::Promotion,
        day(4),
    )
    .await;
    move_to(&db, "chat:v1", Stage::Deprecated, MANUAL, day(5)).await;
    move_to(
        &db,
        "chat:v1",
        Stage::Production,
        MoveVia::Promotion,
        day(6),
    )
    .await;
    let v = move_to(&db, "chat:v1", Stage::Deprecated, MANUAL, day(7)).await;
    assert_eq!((v.stage, v.stage_since), (Stage::Deprecated, day(7)));
    let detail = db
        .store
        .version_detail(&id("chat:v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.retires_at, Some(day(37)));
    let v = move_to(&db, "chat:v1", Stage::Retired, MoveVia::System, day(37)).await;
    assert_eq!(v.stage, Stage::Retired);

    let detail = db
        .store
        .version_detail(&id("chat:v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.version.stage, Stage::Retired);
    let steps: Vec<_> = detail
        .stage_history
        .iter()
        .map(|c| (c.from, c.to))
        .collect();
    use Stage::*;
    assert_eq!(
        steps,
        [
            (None, Development),
            (Some(Development), Staging),
            (Some(Staging), Development),
            (Some(Development), Staging),
            (Some(Staging), Production),
            (Some(Production), Deprecated),
            (Some(Deprecated), Production),
            (Some(Production), Deprecated),
            (Some(Deprecated), Retired),
        ]
    );
    assert_eq!(detail.stage_history[1].actor, "alice");
    let events = all_events(&db).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == action::DEPRECATION)
            .count(),
        2
    );
    assert_eq!(events.last().unwrap().action, action::RETIREMENT);
}

async fn refused_lifecycle_moves_name_the_allowed_moves(db: Arc<TestDb>) {
    register(&db, "chat:v1", day(0)).await;
    for (to, via) in [
        (Stage::Production, ADMIN),
        (Stage::Production, MoveVia::Promotion),
        (Stage::Deprecated, ADMIN),
        (Stage::Retired, ADMIN),
        (Stage::Development, MANUAL),
    ] {
        let e = domain(
            db.store
                .change_stage(&id("chat:v1"), to, via, Some("why"), "alice", day(1))
                .await,
        );
        assert!(
            matches!(e, DomainError::IllegalMove(_)),
            "development → {to}: {e:?}"
        );
        assert!(
            e.to_string()
                .contains("allowed moves from development: development → staging"),
            "{e}"
        );
    }
    in_production(&db, "chat:v2", day(0)).await;
    let e = domain(
        db.store
            .change_stage(&id("chat:v2"), Stage::Staging, ADMIN, None, "alice", day(1))
            .await,
    );
    assert!(e.to_string().contains("production → deprecated"), "{e}");

    move_to(&db, "chat:v2", Stage::Deprecated, MANUAL, day(1)).await;
    move_to(&db, "chat:v2", Stage::Retired, MANUAL, day(31)).await;
    let e = domain(
        db.store
            .change_stage(
                &id("chat:v2"),
                Stage::Production,
                MoveVia::Promotion,
                None,
                "alice",
                day(32),
            )
            .await,
    );
    assert!(e.to_string().contains("never moves again"), "{e}");
    assert_eq!(
        db.store
            .get_version(&id("chat:v1"))
            .await
            .unwrap()
            .unwrap()
            .stage,
        Stage::Development
    );
}

async fn staging_to_production_is_refused_except_through_a_promotion(db: Arc<TestDb>) {
    register(&db, "chat:v1", at(0)).await;
    move_to(&db, "chat:v1", Stage::Staging, MANUAL, at(1)).await;
    for via in [MANUAL, ADMIN, MoveVia::System, MoveVia::Superseded] {
        let e = domain(
            db.store
                .change_stage(&id("chat:v1"), Stage::Production, via, None, "alice", at(2))
                .await,
        );
        assert!(matches!(e, DomainError::IllegalMove(_)));
        assert!(e.to_string().contains("promotion"), "{e}");
    }
    let v = move_to(&db, "chat:v1", Stage::Production, MoveVia::Promotion, at(3)).await;
    assert_eq!(v.stage, Stage::Production);
}

async fn promoting_a_version_deprecates_the_previous_production_version(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    in_production(&db, "other:v1", at(0)).await;
    in_production(&db, "chat:v2", at(10)).await;

    let stage = |v: &'static str| {
        let db = db.clone();
        async move { db.store.get_version(&id(v)).await.unwrap().unwrap().stage }
    };
    assert_eq!(stage("chat:v1").await, Stage::Deprecated);
    assert_eq!(stage("chat:v2").await, Stage::Production);
    assert_eq!(
        stage("other:v1").await,
        Stage::Production,
        "other models are untouched"
    );

    let events = all_events(&db).await;
    let deprecation = events
        .iter()
        .find(|e| e.action == action::DEPRECATION)
        .expect("a deprecation event");
    assert_eq!(deprecation.full_id().as_deref(), Some("chat:v1"));
    assert_eq!(deprecation.details["superseded_by"], "chat:v2");
    let v1 = db
        .store
        .version_detail(&id("chat:v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.version.stage_since, at(10));
    assert_eq!(v1.retires_at, Some(at(10).plus_days(30)));
}

async fn a_reader_never_sees_two_or_zero_production_versions_during_promotions(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    for n in 2..=6 {
        register(&db, &format!("chat:v{n}"), at(n)).await;
        move_to(&db, &format!("chat:v{n}"), Stage::Staging, MANUAL, at(n)).await;
    }
    let reader = db.another_server().await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let versions = reader.list_versions(&model("chat")).await.unwrap();
                let production = versions
                    .iter()
                    .filter(|v| v.stage == Stage::Production)
                    .count();
                assert_eq!(
                    production, 1,
                    "a reader saw {production} production versions"
                );
                reads += 1;
            }
        })
    };
    for n in 2..=6 {
        move_to(
            &db,
            &format!("chat:v{n}"),
            Stage::Production,
            MoveVia::Promotion,
            at(10 + n),
        )
        .await;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watching
        .await
        .expect("the reader saw exactly one production version every time");
}

async fn retiring_before_the_deprecation_period_needs_an_admin_with_a_reason(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", day(0)).await;
    move_to(&db, "chat:v1", Stage::Deprecated, MANUAL, day(1)).await;
    let retire = |via: MoveVia, reason: Option<&'static str>, when: Timestamp| {
        let db = db.clone();
        async move {
            db.store
                .change_stage(&id("chat:v1"), Stage::Retired, via, reason, "alice", when)
                .await
        }
    };
    let e = domain(retire(MoveVia::System, None, day(20)).await);
    assert!(matches!(e, DomainError::IllegalMove(_)));
    assert!(e.to_string().contains("deprecation period ends"), "{e}");
    assert!(matches!(
        domain(retire(MANUAL, Some("cleanup"), day(20)).await),
        DomainError::IllegalMove(_)
    ));
    assert!(matches!(
        domain(retire(ADMIN, None, day(20)).await),
        DomainError::Invalid(_)
    ));
    assert!(matches!(
        domain(retire(ADMIN, Some("  "), day(20)).await),
        DomainError::Invalid(_)
    ));

    let v = retire(ADMIN, Some("security issue"), day(20))
        .await
        .expect("an admin with a reason retires early");
    assert_eq!(v.stage, Stage::Retired);
    let retirement = all_events(&db).await.pop().unwrap();
    assert_eq!(retirement.action, action::RETIREMENT);
    assert_eq!(retirement.reason.as_deref(), Some("security issue"));
    assert_eq!(retirement.details["early"], true);
}

// ---- pins ----

async fn pins_obey_the_environment_policy(db: Arc<TestDb>) {
    register(&db, "chat:dev", at(0)).await;
    register(&db, "chat:stg", at(0)).await;
    move_to(&db, "chat:stg", Stage::Staging, MANUAL, at(1)).await;
    in_production(&db, "chat:old", at(0)).await;
    in_production(&db, "chat:prod", at(2)).await; // chat:old is now deprecated
    let pin = |env: &'static str, v: &'static str| {
        let db = db.clone();
        async move {
            db.store
                .set_pin(env, &id(v), Some("test"), "bob", at(10))
                .await
        }
    };

    assert!(matches!(
        domain(pin("production", "chat:stg").await),
        DomainError::PolicyViolation(_)
    ));
    assert!(matches!(
        domain(pin("production", "chat:old").await),
        DomainError::PolicyViolation(_)
    ));
    assert!(matches!(
        domain(pin("staging", "chat:dev").await),
        DomainError::PolicyViolation(_)
    ));
    assert!(matches!(
        domain(pin("nowhere", "chat:prod").await),
        DomainError::NotFound(_)
    ));
    assert!(matches!(
        domain(pin("production", "chat:v404").await),
        DomainError::NotFound(_)
    ));
    assert!(all_events(&db)
        .await
        .iter()
        .all(|e| e.action != action::PIN_CHANGED));

    assert_eq!(
        pin("production", "chat:prod").await.unwrap().stage,
        Stage::Production
    );
    assert_eq!(
        pin("staging", "chat:stg").await.unwrap().full_id,
        id("chat:stg")
    );
    assert_eq!(
        pin("development", "chat:dev").await.unwrap().environment,
        "development"
    );

    db.store
        .change_stage(
            &id("chat:old"),
            Stage::Retired,
            ADMIN,
            Some("broken"),
            "alice",
            at(20),
        )
        .await
        .unwrap();
    let e = domain(pin("development", "chat:old").await);
    assert!(
        matches!(e, DomainError::Retired(_)),
        "a retired version is never pinned: {e:?}"
    );
}

async fn a_models_history_in_a_window_has_its_changes_there_and_each_environments_pin_before_it(
    db: Arc<TestDb>,
) {
    register(&db, "chat:v1", at(0)).await;
    let pin = |env: &'static str, v: &'static str, when: Timestamp| {
        let db = db.clone();
        async move {
            db.store
                .set_pin(env, &id(v), None, "bob", when)
                .await
                .unwrap_or_else(|e| panic!("pin {v} in {env}: {e}"))
        }
    };
    pin("development", "chat:v1", at(1)).await;
    register(&db, "chat:v2", at(2)).await;
    pin("development", "chat:v2", at(3)).await;
    register(&db, "chat:v3", at(10)).await;
    pin("development", "chat:v3", at(11)).await;
    register(&db, "embed:e1", at(4)).await;
    let chat = ModelId::parse("chat").unwrap();
    let whole = db.store.model_history(&chat).await.unwrap();
    let everything = db
        .store
        .model_history_between(&chat, at(-10), at(100))
        .await
        .unwrap();
    assert_eq!(
        everything, whole,
        "a window around everything has all of it"
    );

    let window = db
        .store
        .model_history_between(&chat, at(2), at(5))
        .await
        .unwrap();
    let versions = |h: &switchyard_domain::types::ModelHistory| {
        (
            h.stage_changes
                .iter()
                .map(|c| (c.version.to_string(), c.change.at))
                .collect::<Vec<_>>(),
            h.pin_changes
                .iter()
                .map(|p| (p.environment.clone(), p.version.to_string(), p.at))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        versions(&window),
        (
            vec![("v2".to_owned(), at(2))],
            vec![
                ("development".to_owned(), "v1".to_owned(), at(1)),
                ("development".to_owned(), "v2".to_owned(), at(3)),
            ]
        ),
        "the registration inside, and the pin in force at the start with the one inside"
    );
    let later = db
        .store
        .model_history_between(&chat, at(5), at(9))
        .await
        .unwrap();
    assert_eq!(
        versions(&later),
        (
            vec![],
            vec![("development".to_owned(), "v2".to_owned(), at(3))]
        ),
        "nothing changed inside: only the pin in force"
    );
}

async fn a_page_of_versions_is_read_alone_in_the_lists_order_and_a_page_past_the_end_is_refused(
    db: Arc<TestDb>,
) {
    for (i, v) in ["v1", "v2", "v3", "v4", "v5"].iter().enumerate() {
        register(&db, &format!("chat:{v}"), at(10 + i as i64)).await;
    }
    register(&db, "embed:e1", at(1)).await;
    let chat = ModelId::parse("chat").unwrap();
    let names: Vec<String> = db
        .store
        .list_environments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(db.store.environment_names().await.unwrap(), names);
    let all = db.store.list_versions(&chat).await.unwrap();
    let page = db.store.versions_page(&chat, 2, 2).await.unwrap();
    assert_eq!(
        page.versions,
        all[2..4].to_vec(),
        "newest first, the third and fourth"
    );
    assert_eq!(
        (
            page.page.page,
            page.page.pages,
            page.page.total,
            page.first_registered
        ),
        (2, 3, 5, at(10))
    );
    let last = db.store.versions_page(&chat, 3, 2).await.unwrap();
    assert_eq!(last.versions, all[4..].to_vec());
    let past = db.store.versions_page(&chat, 4, 2).await.unwrap_err();
    assert!(
        matches!(past, StoreError::Domain(DomainError::NotFound(_))),
        "{past}"
    );
    assert!(past.to_string().contains("pages 1 to 3"), "{past}");
    let unknown = db
        .store
        .versions_page(&ModelId::parse("nope").unwrap(), 1, 2)
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("no registered version"),
        "{unknown}"
    );
}

async fn pin_changes_are_recorded_with_the_previous_version(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    let first = db
        .store
        .set_pin("production", &id("chat:v1"), Some("launch"), "bob", at(5))
        .await
        .unwrap();
    in_production(&db, "chat:v2", at(6)).await;
    let second = db
        .store
        .set_pin(
            "production",
            &id("chat:v2"),
            Some("upgrade"),
            "carol",
            at(7),
        )
        .await
        .unwrap();
    assert!(second.event_id > first.event_id);
    let again = db
        .store
        .set_pin("production", &id("chat:v2"), None, "dave", at(8))
        .await
        .unwrap();
    assert_eq!(again, second, "pinning the pinned version changes nothing");

    let pins: Vec<_> = all_events(&db)
        .await
        .into_iter()
        .filter(|e| e.action == action::PIN_CHANGED)
        .collect();
    assert_eq!(pins.len(), 2);
    assert_eq!(pins[0].details, json!({"from": null, "to": "v1"}));
    assert_eq!(pins[1].details, json!({"from": "v1", "to": "v2"}));
    assert_eq!(pins[1].environment.as_deref(), Some("production"));
    assert_eq!(
        (pins[1].actor.as_str(), pins[1].reason.as_deref()),
        ("carol", Some("upgrade"))
    );
    assert_eq!(pins[1].id, second.event_id);

    let envs = db.store.list_environments().await.unwrap();
    assert_eq!(envs[2].pins, [second]);
}

// ---- resolve ----

async fn resolving_a_model_follows_the_environments_pin(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    in_production(&db, "chat:v2", at(1)).await;
    db.store
        .set_pin("production", &id("chat:v2"), None, "bob", at(2))
        .await
        .unwrap();
    let pinned = VersionRef::parse("chat").unwrap();

    let r = db.store.resolve(&pinned, "production").await.unwrap();
    assert_eq!(r.full_id, id("chat:v2"));
    assert!(r.pinned && !r.deprecated && r.warning.is_none());
    let v2 = db.store.get_version(&id("chat:v2")).await.unwrap().unwrap();
    assert_eq!(r.config_hash, v2.config_hash);

    let e = domain(db.store.resolve(&pinned, "staging").await);
    assert!(matches!(e, DomainError::NotFound(_)));
    assert!(e.to_string().contains("no pin"), "{e}");
    let e = domain(db.store.resolve(&pinned, "moon").await);
    assert!(matches!(e, DomainError::NotFound(_)));
}

async fn resolving_an_exact_version_warns_when_deprecated_and_refuses_when_retired(
    db: Arc<TestDb>,
) {
    in_production(&db, "chat:v1", day(0)).await;
    in_production(&db, "chat:v2", day(1)).await;
    register(&db, "chat:v3", day(1)).await;
    let exact = |s: &str| VersionRef::parse(s).unwrap();

    let r = db
        .store
        .resolve(&exact("chat:v2"), "production")
        .await
        .unwrap();
    assert!(!r.pinned && !r.deprecated && r.stage == Stage::Production);

    let r = db
        .store
        .resolve(&exact("chat:v1"), "production")
        .await
        .unwrap();
    assert!(r.deprecated);
    assert!(r.warning.as_deref().unwrap_or("").contains("deprecated"));

    let e = domain(db.store.resolve(&exact("chat:v3"), "production").await);
    assert!(matches!(e, DomainError::PolicyViolation(_)), "{e:?}");
    assert!(matches!(
        domain(db.store.resolve(&exact("chat:v9"), "production").await),
        DomainError::NotFound(_)
    ));

    move_to(&db, "chat:v1", Stage::Retired, MoveVia::System, day(31)).await;
    let e = domain(db.store.resolve(&exact("chat:v1"), "development").await);
    assert!(matches!(e, DomainError::Retired(_)));
    assert_eq!(e.http_status(), 410);
}

async fn resolving_latest_gives_the_newest_unretired_version_only_where_allowed(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", day(0)).await;
    register(&db, "chat:v2", day(1)).await;
    let latest = VersionRef::parse("chat:latest").unwrap();

    let r = db.store.resolve(&latest, "development").await.unwrap();
    assert_eq!(r.full_id, id("chat:v2"));
    assert!(!r.pinned);

    for env in ["staging", "production"] {
        let e = domain(db.store.resolve(&latest, env).await);
        assert!(matches!(e, DomainError::PolicyViolation(_)));
        assert!(e.to_string().contains("does not allow \"latest\""), "{e}");
    }

    // Retire the newest: latest falls back to the one before it.
    in_production(&db, "chat:v2b", day(2)).await; // deprecates chat:v1
    move_to(&db, "chat:v2b", Stage::Deprecated, MANUAL, day(3)).await;
    move_to(&db, "chat:v2b", Stage::Retired, MoveVia::System, day(40)).await;
    let r = db.store.resolve(&latest, "development").await.unwrap();
    assert_eq!(r.full_id, id("chat:v2"));
    assert!(matches!(
        domain(
            db.store
                .resolve(&VersionRef::parse("nope:latest").unwrap(), "development")
                .await
        ),
        DomainError::NotFound(_)
    ));
}

// ---- request records ----

async fn request_records_are_stored_all_or_nothing_and_retries_are_skipped(db: Arc<TestDb>) {
    let batch: Vec<_> = (0..2500)
        .map(|i| record(&format!("req-{i}"), "chat:v1", at(i)))
        .collect();
    assert_eq!(db.store.insert_request_records(&batch).await.unwrap(), 2500);
    assert_eq!(db.store.insert_request_records(&[]).await.unwrap(), 0);

    let mut retry = batch[..10].to_vec();
    retry.push(record("req-new", "chat:v1", at(1)));
    retry.push(record("req-new", "chat:v1", at(1)));
    assert_eq!(
        db.store.insert_request_records(&retry).await.unwrap(),
        1,
        "only the new record is stored"
    );

    // A record the database refuses fails the whole batch.
    let mut broken = vec![
        record("req-a", "chat:v1", at(1)),
        record("req-b", "chat:v1", at(1)),
    ];
    broken[1].slot = "purple".into();
    assert!(db.store.insert_request_records(&broken).await.is_err());
    assert!(
        db.store.request_lookup("req-a").await.unwrap().is_none(),
        "nothing of a failed batch is stored"
    );

    let found = db
        .store
        .request_lookup("req-2499")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(found.record, batch[2499]);
    assert!(found.version.is_none(), "chat:v1 was never registered here");
    assert!(found.provenance.is_empty(), "nor has it any event");
    assert!(db
        .store
        .request_lookup("req-unknown")
        .await
        .unwrap()
        .is_none());
}

async fn new_cluster(db: &TestDb, name: &str, env: &str) {
    let new = NewCluster {
        name: name.into(),
        environment: env.into(),
        driver: DriverKind::Simulated,
        config: json!({}),
    };
    db.store
        .create_cluster(new, "admin", at(0))
        .await
        .expect("cluster created");
}

async fn a_stored_request_id_repeated_with_other_content_is_a_conflict_and_nothing_is_stored(
    db: Arc<TestDb>,
) {
    register(&db, "chat:v1", at(0)).await;
    register(&db, "chat:v2", at(0)).await;
    db.store
        .insert_request_records(&[record("r1", "chat:v1", at(1))])
        .await
        .unwrap();
    let batch = [
        record("r1", "chat:v1", at(1)),
        record("r2", "chat:v1", at(2)),
        record("r1", "chat:v2", at(1)),
    ];
    match db.store.insert_request_records(&batch).await {
        Err(StoreError::RecordConflicts(c)) => {
            assert_eq!(c.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [2]);
            assert!(c[0].1.contains("r1") && c[0].1.contains("chat:v1"), "{c:?}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(
        db.store.request_lookup("r2").await.unwrap().is_none(),
        "nothing of the batch is stored"
    );
    let repeated_in_batch = [
        record("r3", "chat:v1", at(3)),
        record("r3", "chat:v2", at(3)),
    ];
    assert!(matches!(
        db.store.insert_request_records(&repeated_in_batch).await,
        Err(StoreError::RecordConflicts(c)) if c.len() == 1 && c[0].0 == 1
    ));
    assert!(db.store.request_lookup("r3").await.unwrap().is_none());
    assert_eq!(
        db.store
            .insert_request_records(&[record("r1", "chat:v1", at(1))])
            .await
            .unwrap(),
        0,
        "the same content again is a retry, skipped"
    );
}

async fn request_lookup_names_the_version_and_the_events_that_put_it_in_service(db: Arc<TestDb>) {
    new_cluster(&db, "prod-eu", "production").await;
    in_production(&db, "chat:v1", at(0)).await;
    db.store
        .set_pin("production", &id("chat:v1"), Some("launch"), "bob", at(5))
        .await
        .unwrap();
    register(&db, "chat:v2", at(6)).await;
    db.store
        .insert_request_records(&[record("decision-42", "chat:v1", at(30))])
        .await
        .unwrap();
    move_to(&db, "chat:v1", Stage::Deprecated, MANUAL, at(60)).await;

    let found = db
        .store
        .request_lookup("decision-42")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(found.version.expect("registered").full_id, id("chat:v1"));
    assert_eq!(
        actions(&found.provenance),
        [
            action::VERSION_REGISTERED,
            action::STAGE_CHANGED,
            action::STAGE_CHANGED,
            action::PIN_CHANGED
        ],
        "events of chat:v1 up to the request, not later ones nor other versions'"
    );
    assert_eq!(found.provenance[3].actor, "bob");
    assert!(
        found.provenance.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );
    assert_eq!(
        found.record,
        record("decision-42", "chat:v1", at(30)),
        "one record, however many events"
    );
    let ledger = all_events(&db).await;
    for event in &found.provenance {
        let stored = ledger
            .iter()
            .find(|e| e.id == event.id)
            .expect("in the ledger");
        assert_eq!(
            event, stored,
            "every field as the ledger holds it, details and hashes too"
        );
    }

    db.store
        .insert_request_records(&[record("stray-1", "ghost:v9", at(31))])
        .await
        .unwrap();
    let stray = db
        .store
        .request_lookup("stray-1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (stray.version, stray.provenance),
        (None, vec![]),
        "an unknown version has no events"
    );
    assert!(db.store.request_lookup("nobody").await.unwrap().is_none());
}

// ---- serving at T ----

async fn serving_at_answers_what_each_environment_pinned_at_an_instant(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    register(&db, "embed:e1", at(0)).await;
    db.store
        .set_pin("production", &id("chat:v1"), Some("launch"), "bob", at(10))
        .await
        .unwrap();
    db.store
        .set_pin("development", &id("embed:e1"), None, "erin", at(12))
        .await
        .unwrap();
    in_production(&db, "chat:v2", at(15)).await;
    db.store
        .set_pin(
            "production",
            &id("chat:v2"),
            Some("upgrade"),
            "carol",
            at(20),
        )
        .await
        .unwrap();

    let before = db.store.serving_at(at(5), None, None).await.unwrap();
    assert!(before.pins.is_empty(), "nothing was pinned yet: {before:?}");

    let between = db.store.serving_at(at(15), None, None).await.unwrap();
    assert_eq!(between.at, at(15));
    let envs: Vec<_> = between
        .pins
        .iter()
        .map(|p| p.environment.as_str())
        .collect();
    assert_eq!(envs, ["development", "production"]);
    let chat = &between.pins[1];
    assert_eq!(chat.full_id, id("chat:v1"));
    assert_eq!((chat.since, chat.next_change), (at(10), Some(at(20))));
    assert_eq!(
        (chat.actor.as_str(), chat.reason.as_deref()),
        ("bob", Some("launch"))
    );

    let exactly = db
        .store
        .serving_at(at(20), Some("production"), None)
        .await
        .unwrap();
    assert_eq!(exactly.pins.len(), 1);
    assert_eq!(
        exactly.pins[0].full_id,
        id("chat:v2"),
        "a change holds from its own instant"
    );
    assert_eq!(exactly.pins[0].next_change, None);
    assert_eq!(exactly.pins[0].actor, "carol");

    let after = db
        .store
        .serving_at(at(100), None, Some(&model("embed")))
        .await
        .unwrap();
    assert_eq!(after.pins.len(), 1);
    assert_eq!(after.pins[0].full_id, id("embed:e1"));
}

/// The answers at every instant from 0 to 40 minutes, every 5 minutes.
async fn answers_over_time(store: &DynStore) -> Vec<ServingAt> {
    let mut out = Vec::new();
    for minute in (0..=40).step_by(5) {
        out.push(
            store
                .serving_at(at(minute), None, None)
                .await
                .expect("serving at"),
        );
    }
    out
}

async fn serving_at_sees_what_another_server_wrote_after_its_first_answer(db: Arc<TestDb>) {
    register(&db, "chat:v1", at(0)).await;
    register(&db, "chat:v2", at(0)).await;
    db.store
        .set_pin("development", &id("chat:v1"), Some("first"), "bob", at(10))
        .await
        .unwrap();
    let other = db.another_server().await;
    let first = other.serving_at(at(15), None, None).await.unwrap();
    assert_eq!(first.pins.len(), 1);
    assert_eq!(
        (first.pins[0].full_id.clone(), first.pins[0].next_change),
        (id("chat:v1"), None)
    );

    // Written through the first server after the other one answered.
    db.store
        .set_pin(
            "development",
            &id("chat:v2"),
            Some("second"),
            "carol",
            at(20),
        )
        .await
        .unwrap();
    let cluster = NewCluster {
        name: "dev-1".into(),
        environment: "development".into(),
        driver: DriverKind::Simulated,
        config: json!({}),
    };
    db.store
        .create_cluster(cluster, "admin", at(22))
        .await
        .unwrap();

    let then = other.serving_at(at(15), None, None).await.unwrap();
    assert_eq!(then.pins[0].full_id, id("chat:v1"));
    assert_eq!(
        then.pins[0].next_change,
        Some(at(20)),
        "the later change is seen as the next one"
    );
    assert!(then.clusters.is_empty(), "the cluster did not exist yet");
    let now = other.serving_at(at(25), None, None).await.unwrap();
    assert_eq!(now.pins.len(), 1);
    let pin = &now.pins[0];
    assert_eq!(
        (
            pin.full_id.clone(),
            pin.since,
            pin.actor.as_str(),
            pin.reason.as_deref()
        ),
        (id("chat:v2"), at(20), "carol", Some("second"))
    );
    assert_eq!(
        now.clusters.len(),
        1,
        "a cluster created by another server is answered: {now:?}"
    );
    let c = &now.clusters[0];
    assert_eq!(
        (
            c.cluster.as_str(),
            c.environment.as_str(),
            c.driver,
            c.since
        ),
        ("dev-1", "development", DriverKind::Simulated, at(22))
    );
    assert_eq!(
        answers_over_time(&other).await,
        answers_over_time(&db.store).await,
        "both servers answer alike"
    );
}

async fn serving_at_places_backdated_changes_and_orders_changes_at_one_instant_by_event(
    db: Arc<TestDb>,
) {
    for v in ["chat:v1", "chat:v2", "chat:v3", "embed:e1"] {
        register(&db, v, at(0)).await;
    }
    db.store
        .set_pin("development", &id("chat:v3"), None, "bob", at(30))
        .await
        .unwrap();
    let loaded = db.store.serving_at(at(35), None, None).await.unwrap();
    assert_eq!(
        loaded
            .pins
            .iter()
            .map(|p| p.full_id.clone())
            .collect::<Vec<_>>(),
        [id("chat:v3")]
    );

    // Written after the index was loaded, dated before what it holds; two at one instant.
    db.store
        .set_pin("development", &id("chat:v1"), None, "carol", at(10))
        .await
        .unwrap();
    let v2 = db
        .store
        .set_pin(
            "development",
            &id("chat:v2"),
            Some("same instant"),
            "dave",
            at(10),
        )
        .await
        .unwrap();
    db.store
        .set_pin("development", &id("embed:e1"), None, "erin", at(12))
        .await
        .unwrap();

    assert!(
        db.store
            .serving_at(at(5), None, None)
            .await
            .unwrap()
            .pins
            .is_empty(),
        "nothing was pinned yet"
    );
    let at_10 = db
        .store
        .serving_at(at(10), None, Some(&model("chat")))
        .await
        .unwrap();
    assert_eq!(at_10.pins.len(), 1);
    let pin = &at_10.pins[0];
    assert_eq!(
        pin.full_id,
        id("chat:v2"),
        "of two changes at one instant the later event holds"
    );
    assert_eq!(
        (pin.since, pin.event_id, pin.next_change),
        (at(10), v2.event_id, Some(at(30)))
    );
    let at_30 = db
        .store
        .serving_at(at(30), Some("development"), None)
        .await
        .unwrap();
    let pins: Vec<_> = at_30
        .pins
        .iter()
        .map(|p| (p.full_id.clone(), p.next_change))
        .collect();
    assert_eq!(
        pins,
        [(id("chat:v3"), None), (id("embed:e1"), None)],
        "by model within the environment"
    );
    let fresh = db.another_server().await;
    assert_eq!(
        answers_over_time(&fresh).await,
        answers_over_time(&db.store).await,
        "loaded at once or caught up, the same answers"
    );
}

// ---- model history (the timeline) ----

async fn a_models_history_lists_its_pin_and_stage_changes_oldest_first(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await;
    register(&db, "embed:e1", at(1)).await;
    db.store
        .set_pin("production", &id("chat:v1"), Some("launch"), "bob", at(10))
        .await
        .unwrap();
    db.store
        .set_pin("development", &id("embed:e1"), None, "erin", at(11))
        .await
        .unwrap();
    in_production(&db, "chat:v2", at(15)).await;
    db.store
        .set_pin(
            "production",
            &id("chat:v2"),
            Some("upgrade"),
            "carol",
            at(20),
        )
        .await
        .unwrap();

    let history = db.store.model_history(&model("chat")).await.unwrap();
    assert_eq!(history.model_id, model("chat"));
    let pins: Vec<_> = history
        .pin_changes
        .iter()
        .map(|p| {
            (
                p.environment.as_str(),
                p.version.as_str(),
                p.at,
                p.actor.as_str(),
                p.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        pins,
        [
            ("production", "v1", at(10), "bob", Some("launch")),
            ("production", "v2", at(20), "carol", Some("upgrade")),
        ],
        "only chat's pins, oldest first"
    );
    let stages: Vec<_> = history
        .stage_changes
        .iter()
        .map(|s| (s.version.as_str(), s.change.from, s.change.to, s.change.at))
        .collect();
    assert_eq!(
        stages,
        [
            ("v1", None, Stage::Development, at(0)),
            ("v1", Some(Stage::Development), Stage::Staging, at(0)),
            ("v1", Some(Stage::Staging), Stage::Production, at(0)),
            ("v2", None, Stage::Development, at(15)),
            ("v2", Some(Stage::Development), Stage::Staging, at(15)),
            ("v2", Some(Stage::Staging), Stage::Production, at(15)),
            ("v1", Some(Stage::Production), Stage::Deprecated, at(15)),
        ],
        "the promotion of v2 deprecated v1 in the same instant"
    );
    let superseded = &history.stage_changes[6].change;
    assert_eq!(superseded.reason.as_deref(), Some("superseded by chat:v2"));

    let unknown = db.store.model_history(&model("nothing")).await.unwrap();
    assert!(unknown.pin_changes.is_empty() && unknown.stage_changes.is_empty());
}

// ---- audit ----

async fn the_audit_log_filters_and_paginates_newest_first(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", at(0)).await; // events 1–3
    register(&db, "embed:e1", at(10)).await; // 4
    db.store
        .set_pin("production", &id("chat:v1"), None, "bob", at(20))
        .await
        .unwrap(); // 5
    db.store
        .set_pin("development", &id("embed:e1"), None, "bob", at(30))
        .await
        .unwrap(); // 6

    let page = |q: AuditQuery| {
        let db = db.clone();
        async move { db.store.audit_page(&q).await.unwrap() }
    };
    let ids = |events: &[LedgerEvent]| events.iter().map(|e| e.id).collect::<Vec<_>>();

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(AuditQuery {
            limit: 4,
            cursor: cursor.clone(),
            ..Default::default()
        })
        .await;
        seen.extend(ids(&p.events));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1]);
    let full = page(AuditQuery {
        limit: 6,
        ..Default::default()
    })
    .await;
    assert_eq!((full.events.len(), full.next_cursor), (6, None));
    assert_eq!(
        page(AuditQuery::default()).await.events.len(),
        6,
        "limit 0 means the default page"
    );

    let by = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(&page(by(|q| q.action = Some("pin.changed".into())))
            .await
            .events),
        [6, 5]
    );
    assert_eq!(
        ids(&page(by(|q| q.actor = Some("ci".into()))).await.events),
        [4, 1]
    );
    assert_eq!(
        ids(&page(by(|q| q.model = Some("embed".into()))).await.events),
        [6, 4]
    );
    assert_eq!(
        ids(&page(by(|q| q.environment = Some("production".into())))
            .await
            .events),
        [5]
    );
    let window = by(|q| {
        q.after = Some(at(10));
        q.before = Some(at(30));
    });
    assert_eq!(ids(&page(window).await.events), [5, 4]);
    let combined = by(|q| {
        q.actor = Some("bob".into());
        q.model = Some("chat".into());
        q.limit = 1;
    });
    let p = page(combined).await;
    assert_eq!((ids(&p.events), p.next_cursor), (vec![5], None));
}

async fn a_malformed_cursor_or_limit_is_refused(db: Arc<TestDb>) {
    for q in [
        AuditQuery {
            cursor: Some("abc".into()),
            ..Default::default()
        },
        AuditQuery {
            cursor: Some("-3".into()),
            ..Default::default()
        },
        AuditQuery {
            limit: 1001,
            ..Default::default()
        },
    ] {
        assert!(
            matches!(
                domain(db.store.audit_page(&q).await),
                DomainError::Invalid(_)
            ),
            "{q:?}"
        );
    }
}

/// A few versions, stage changes and pins: 8 events.
async fn some_history(db: &TestDb) {
    in_production(db, "chat:v1", at(0)).await; // 1–3
    db.store
        .set_pin("production", &id("chat:v1"), Some("launch"), "bob", at(1))
        .await
        .unwrap(); // 4
    register(db, "chat:v2", at(2)).await; // 5
    move_to(db, "chat:v2", Stage::Staging, MANUAL, at(3)).await; // 6
    db.store
        .set_pin("staging", &id("chat:v2"), Some("try"), "bob", at(4))
        .await
        .unwrap(); // 7
    register(db, "chat:v3", at(5)).await; // 8
}

async fn verify_accepts_an_untouched_ledger(db: Arc<TestDb>) {
    let empty = db.store.audit_verify().await.unwrap();
    assert!(empty.ok, "an empty ledger verifies: {empty:?}");
    assert_eq!(empty.checked, 0);

    some_history(&db).await;
    let report = db.store.audit_verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.checked, report.first_broken_id), (8, None));
}

async fn a_periods_events_are_found_by_time_and_read_by_id(db: Arc<TestDb>) {
    assert_eq!(db.store.ledger_period(at(0), at(10)).await.unwrap(), None);
    some_history(&db).await;
    // Events 1–3 at minute 0, then one a minute: 4 at 1, … 8 at 5.
    assert_eq!(
        db.store.ledger_period(at(1), at(4)).await.unwrap(),
        Some((4, 6))
    );
    assert_eq!(
        db.store.ledger_period(at(0), at(1)).await.unwrap(),
        Some((1, 3))
    );
    assert_eq!(db.store.ledger_period(at(6), at(9)).await.unwrap(), None);
    let ids = |events: Vec<LedgerEvent>| events.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.store.ledger_events(3, 6, 10).await.unwrap()),
        [4, 5, 6]
    );
    assert_eq!(ids(db.store.ledger_events(3, 6, 2).await.unwrap()), [4, 5]);
    let events = db.store.ledger_events(0, 8, 100).await.unwrap();
    assert_eq!(events.len(), 8);
    assert!(
        events.iter().all(|e| e.compute_hash() == e.hash),
        "read back as hashed"
    );
}

async fn the_database_refuses_to_edit_or_delete_ledger_events(db: Arc<TestDb>) {
    some_history(&db).await;
    for sql in [
        "UPDATE ledger SET reason = 'nothing to see' WHERE id = 4",
        "DELETE FROM ledger WHERE id = 8",
    ] {
        let e = db.execute(sql).await.expect_err(sql);
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    assert!(db.store.audit_verify().await.unwrap().ok);
}

async fn verify_detects_an_edited_reason_at_that_event(db: Arc<TestDb>) {
    some_history(&db).await;
    db.tamper("UPDATE ledger SET reason = 'nothing to see' WHERE id = 4")
        .await;
    let report = db.store.audit_verify().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken_id, Some(4), "{report:?}");
    assert!(report.problem.unwrap().contains("edited"));
}

async fn verify_detects_a_deleted_first_or_middle_event(db: Arc<TestDb>) {
    some_history(&db).await;
    db.tamper("DELETE FROM ledger WHERE id = 5").await;
    let report = db.store.audit_verify().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken_id, Some(5), "{report:?}");
    assert!(report.problem.unwrap().contains("missing"));

    db.execute("DELETE FROM ledger WHERE id = 1").await.unwrap();
    let report = db.store.audit_verify().await.unwrap();
    assert_eq!(
        (report.ok, report.first_broken_id),
        (false, Some(1)),
        "{report:?}"
    );
}

async fn verify_detects_a_deleted_last_event(db: Arc<TestDb>) {
    some_history(&db).await;
    db.tamper("DELETE FROM ledger WHERE id = 8").await;
    let report = db.store.audit_verify().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken_id, Some(8), "{report:?}");

    // Deleting every event is caught by the head as well.
    db.execute("DELETE FROM ledger").await.unwrap();
    let report = db.store.audit_verify().await.unwrap();
    assert_eq!(
        (report.ok, report.first_broken_id),
        (false, Some(1)),
        "{report:?}"
    );
}

// ---- retirement job ----

async fn retire_due_retires_unpinned_versions_and_holds_pinned_ones(db: Arc<TestDb>) {
    in_production(&db, "chat:v1", day(0)).await;
    db.store
        .set_pin("production", &id("chat:v1"), None, "bob", day(0))
        .await
        .unwrap();
    in_production(&db, "chat:v2", day(1)).await; // v1 deprecated at day 1, still pinned
    in_production(&db, "embed:e1", day(0)).await;
    in_production(&db, "embed:e2", day(2)).await; // e1 deprecated at day 2, not pinned
    in_production(&db, "chat:v3", day(20)).await; // v2 deprecated at day 20: not due at day 40

    let report = db.store.retire_due(day(40)).await.unwrap();
    assert_eq!(report.retired, [id("embed:e1")]);
    assert_eq!(report.held, [id("chat:v1")]);
    let stage = |v: &'static str| {
        let db = db.clone();
        async move { db.store.get_version(&id(v)).await.unwrap().unwrap().stage }
    };
    assert_eq!(stage("embed:e1").await, Stage::Retired);
    assert_eq!(stage("chat:v1").await, Stage::Deprecated);
    assert_eq!(stage("chat:v2").await, Stage::Deprecated);

    let events = all_events(&db).await;
    let held: Vec<_> = events
        .iter()
        .filter(|e| e.action == action::RETIREMENT_HELD)
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].actor, "system");
    let retired = events
        .iter()
        .find(|e| e.action == action::RETIREMENT)
        .unwrap();
    assert_eq!(
        (retired.actor.as_str(), retired.full_id().as_deref()),
        ("system", Some("embed:e1"))
    );

    // A second pass (another server) flags nothing twice and retires nothing twice.
    let again = db.another_server().await.retire_due(day(41)).await.unwrap();
    assert_eq!((again.retired.len(), again.held.len()), (0, 1));
    assert_eq!(all_events(&db).await.len(), events.len());

    // Once unpinned (the pin moves on), it is retired.
    db.store
        .set_pin("production", &id("chat:v3"), None, "bob", day(42))
        .await
        .unwrap();
    let last = db.store.retire_due(day(60)).await.unwrap();
    assert_eq!(last.retired, [id("chat:v1"), id("chat:v2")]);
    assert!(db.store.audit_verify().await.unwrap().ok);
}

// ---- concurrency across servers ----

async fn concurrent_registrations_of_one_version_with_different_configs_have_one_winner(
    db: Arc<TestDb>,
) {
    let mut tasks = Vec::new();
    for n in 0..10 {
        let server = db.another_server().await;
        tasks.push(tokio::spawn(async move {
            let new = new_version("chat:v1", json!({ "writer": n }), None);
            server
                .register_version(new, &format!("ci-{n}"), at(n))
                .await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => {
                assert!(r.created);
                winners += 1;
            }
            Err(e) => assert!(matches!(domain(Err::<(), _>(e)), DomainError::Conflict(_))),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(all_events(&db).await.len(), 1);
    assert!(db.store.audit_verify().await.unwrap().ok);
}

async fn concurrent_writes_from_several_servers_keep_the_ledger_chain_contiguous(db: Arc<TestDb>) {
    for n in 0..20 {
        register(&db, &format!("chat:v{n}"), at(n)).await;
    }
    let mut tasks = Vec::new();
    for n in 0..20 {
        let server = db.another_server().await;
        tasks.push(tokio::spawn(async move {
            let v = id(&format!("chat:v{n}"));
            server
                .set_pin("development", &v, None, "bob", at(100 + n))
                .await
                .unwrap();
            server
                .change_stage(&v, Stage::Staging, MANUAL, None, "alice", at(100 + n))
                .await
                .unwrap();
            server
                .set_pin("staging", &v, None, "bob", at(100 + n))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.expect("every write succeeds");
    }

    let report = db.store.audit_verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 20 + 20 * 3);
    let events = all_events(&db).await;
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=80).collect::<Vec<_>>());

    let envs = db.store.list_environments().await.unwrap();
    let last_dev_pin = events
        .iter()
        .rfind(|e| {
            e.action == action::PIN_CHANGED && e.environment.as_deref() == Some("development")
        })
        .unwrap();
    assert_eq!(
        envs[0].pins[0].event_id, last_dev_pin.id,
        "the pin is the one the last event set"
    );
    assert_eq!(envs[1].pins.len(), 1);
}

async fn events_written_while_acting_with_a_token_name_the_person_and_the_token(db: Arc<TestDb>) {
    super::acting_with_token(Some("t-dave".into()), register(&db, "chat:v1", at(1))).await;
    register(&db, "chat:v2", at(2)).await;
    let events = all_events(&db).await;
    let seen: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.details["via_token"].as_str()))
        .collect();
    assert_eq!(seen[0].1, Some("t-dave"));
    assert_eq!(seen[1].1, None);
    assert_eq!(seen[0].0, seen[1].0, "the actor is the same either way");
    assert!(db.store.audit_verify().await.unwrap().ok);
}

async fn serving_at_names_an_unknown_environment_or_model_and_says_when_t_is_outside_the_ledger(
    db: Arc<TestDb>,
) {
    register(&db, "chat:v1", at(10)).await;
    let unknown_env = domain(db.store.serving_at(at(20), Some("prodution"), None).await);
    assert!(
        matches!(&unknown_env, DomainError::NotFound(m) if m.contains("prodution")),
        "{unknown_env:?}"
    );
    let nope = ModelId::parse("nope").unwrap();
    let unknown_model = domain(db.store.serving_at(at(20), None, Some(&nope)).await);
    assert!(
        matches!(&unknown_model, DomainError::NotFound(m) if m.contains("nope")),
        "{unknown_model:?}"
    );
    let chat = ModelId::parse("chat").unwrap();
    let within = db
        .store
        .serving_at(at(20), Some("production"), Some(&chat))
        .await
        .unwrap();
    assert_eq!(within.notice, None);
    let before = db.store.serving_at(at(5), None, None).await.unwrap();
    assert!(
        before
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("before the ledger begins")),
        "{before:?}"
    );
    let future = Timestamp::now().plus_days(365);
    let later = db.store.serving_at(future, None, None).await.unwrap();
    assert!(
        later
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("in the future")),
        "{later:?}"
    );
}

async fn an_audit_filter_value_nothing_ever_carried_is_named_as_unknown(db: Arc<TestDb>) {
    register(&db, "chat:v1", at(1)).await;
    let query = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    for (what, q) in [
        ("actor", query(|q| q.actor = Some("dvae".into()))),
        ("model", query(|q| q.model = Some("nope".into()))),
        (
            "environment",
            query(|q| q.environment = Some("prod".into())),
        ),
        ("cluster", query(|q| q.cluster = Some("eu-9".into()))),
        (
            "action",
            query(|q| q.action = Some("version.deleted".into())),
        ),
    ] {
        let e = domain(db.store.audit_page(&q).await);
        assert!(
            matches!(&e, DomainError::NotFound(m) if m.contains(what)),
            "{what}: {e:?}"
        );
    }
    // Known values that match nothing (together) are an empty page, not an error:
    // an action nothing did yet, a user who did nothing yet.
    let none = query(|q| {
        q.actor = Some("ci".into());
        q.environment = Some("production".into());
    });
    assert!(db.store.audit_page(&none).await.unwrap().events.is_empty());
    let not_yet = query(|q| q.action = Some(action::PROMOTION_EXPIRED.into()));
    assert!(db
        .store
        .audit_page(&not_yet)
        .await
        .unwrap()
        .events
        .is_empty());
    db.store
        .create_user(
            "erin",
            switchyard_domain::access::Role::Viewer,
            "hash",
            "admin",
            at(2),
        )
        .await
        .expect("user created");
    let quiet = query(|q| q.actor = Some("erin".into()));
    assert!(db.store.audit_page(&quiet).await.unwrap().events.is_empty());
}

async fn request_lookup_shows_only_its_clusters_events_and_says_when_the_cluster_is_unknown(
    db: Arc<TestDb>,
) {
    new_cluster(&db, "prod-eu", "production").await;
    new_cluster(&db, "prod-us", "production").await;
    in_production(&db, "chat:v1", at(0)).await;
    db.store
        .set_pin("production", &id("chat:v1"), Some("launch"), "bob", at(5))
        .await
        .unwrap();
    let other = super::clusters::OperationRequest {
        cluster: "prod-us".into(),
        kind: switchyard_domain::operations::OperationKind::BlueGreen,
        full_id: Some(id("chat:v1")),
        rolling_steps: Vec::new(),
        reason: Some("us only".into()),
        analysis: Vec::new(),
        bake_ms: None,
    };
    db.store
        .start_operation(other, "dave", at(6))
        .await
        .expect("started on the other cluster");
    let mut elsewhere = record("edge-1", "chat:v1", at(30));
    elsewhere.cluster = "edge-9".into();
    db.store
        .insert_request_records(&[record("eu-1", "chat:v1", at(30)), elsewhere])
        .await
        .unwrap();

    let eu = db
        .store
        .request_lookup("eu-1")
        .await
        .unwrap()
        .expect("stored");
    assert!(eu.cluster_known);
    assert_eq!(eu.notice, None);
    assert!(
        eu.provenance
            .iter()
            .all(|e| e.cluster.is_none() && e.action != action::OPERATION_STARTED),
        "no event of another cluster: {:?}",
        actions(&eu.provenance)
    );
    assert!(actions(&eu.provenance).contains(&action::PIN_CHANGED));

    let edge = db
        .store
        .request_lookup("edge-1")
        .await
        .unwrap()
        .expect("stored");
    assert!(!edge.cluster_known);
    assert!(
        edge.notice.as_deref().is_some_and(|n| n.contains("edge-9")),
        "{:?}",
        edge.notice
    );
    assert_eq!(
        actions(&edge.provenance),
        [
            action::VERSION_REGISTERED,
            action::STAGE_CHANGED,
            action::STAGE_CHANGED
        ],
        "only the version's own events: no environment's, no cluster's"
    );
}

#[tokio::test]
async fn a_sqlite_database_is_created_in_wal_mode_with_its_directory_on_first_start() {
    let dir = std::env::temp_dir().join(format!("switchyard-test-{:016x}", rand::random::<u64>()));
    let url = format!("sqlite://{}/data/switchyard.db", dir.display());
    let store = connect(&url, StoreSettings::default())
        .await
        .expect("created");
    store.migrate().await.expect("migrated");
    store
        .migrate()
        .await
        .expect("migrating again changes nothing");
    assert_eq!(store.backend(), Backend::Sqlite);
    assert_eq!(store.list_environments().await.unwrap().len(), 3);

    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let _ = std::fs::remove_dir_all(dir);
}

mod clusters;

async fn an_imported_version_is_registered_moved_and_pinned_in_one_transaction_or_not_at_all(
    db: Arc<TestDb>,
) {
    use super::ImportItem;
    let item = |full_id: &str, stages: Vec<Stage>, pins: Vec<&str>| ImportItem {
        new: new_version(
            full_id,
            json!({ "mlflow": { "id": full_id } }),
            Some("s3://m/1"),
        ),
        stages,
        pins: pins.into_iter().map(str::to_owned).collect(),
        details: json!({ "tracking_uri": "http://mlflow:5000", "mlflow_created_at": "2026-01-01T00:00:00Z" }),
        reason: "imported from MLflow http://mlflow:5000: alias champion".into(),
    };
    let first = db
        .store
        .import_version(
            item(
                "fraud:v1",
                vec![Stage::Staging, Stage::Production],
                vec!["production"],
            ),
            "import:mlflow",
            at(0),
        )
        .await
        .expect("imported");
    assert!(first.created);
    assert_eq!(first.version.stage, Stage::Production);
    let second = db
        .store
        .import_version(
            item(
                "fraud:v2",
                vec![Stage::Staging, Stage::Production],
                vec!["production"],
            ),
            "import:mlflow",
            at(1),
        )
        .await
        .expect("imported");
    assert_eq!(second.version.stage, Stage::Production);
    assert_eq!(
        db.store
            .get_version(&id("fraud:v1"))
            .await
            .unwrap()
            .map(|v| v.stage),
        Some(Stage::Deprecated),
        "the previous production version is superseded as by a promotion"
    );
    let events = all_events(&db).await;
    let registered: Vec<_> = events
        .iter()
        .filter(|e| e.action == action::VERSION_REGISTERED)
        .collect();
    assert_eq!(registered.len(), 2);
    assert_eq!(
        registered[0].details["import"]["tracking_uri"],
        json!("http://mlflow:5000")
    );
    assert!(events.iter().all(|e| e.actor == "import:mlflow"));
    let count = events.len();

    // Again: nothing new. Another config under the same id: a conflict, nothing changes.
    let again = db
        .store
        .import_version(
            item(
                "fraud:v2",
                vec![Stage::Staging, Stage::Production],
                vec!["production"],
            ),
            "import:mlflow",
            at(2),
        )
        .await
        .expect("idempotent");
    assert!(!again.created);
    let mut changed = item("fraud:v2", vec![], vec![]);
    changed.new = new_version(
        "fraud:v2",
        json!({ "mlflow": { "tags": { "x": "1" } } }),
        Some("s3://m/1"),
    );
    let e = domain(
        db.store
            .import_version(changed, "import:mlflow", at(3))
            .await,
    );
    assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");

    // A pin the policy refuses (development version in production): the
    // version is not registered either.
    let e = domain(
        db.store
            .import_version(
                item("fraud:v3", vec![], vec!["production"]),
                "import:mlflow",
                at(4),
            )
            .await,
    );
    assert_eq!(e.http_status(), 422, "{e}");
    assert_eq!(db.store.get_version(&id("fraud:v3")).await.unwrap(), None);
    assert_eq!(all_events(&db).await.len(), count);
}
