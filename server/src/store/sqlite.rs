//! The embedded backend: one SQLite file in WAL mode, created on first start.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use switchyard_domain::types::RequestRecord;

use super::cache::ReadCache;
use super::sql::REQUEST_RECORD_COLUMNS;
use super::temporal::TemporalIndex;
use super::{StoreError, StoreResult, StoreSettings};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Records per INSERT: 8 parameters each stays well under SQLite's limit of
/// 32766, and long statements amortise the per-statement cost.
const RECORDS_PER_STATEMENT: usize = 1000;

/// How often `watch_changes` reads the ledger head (a local file: cheap).
const POLL: Duration = Duration::from_millis(100);

pub struct SqliteStore {
    pool: SqlitePool,
    settings: StoreSettings,
    cache: Arc<ReadCache>,
    temporal: tokio::sync::RwLock<TemporalIndex>,
    writes: super::sql_store::WriteGate,
}

impl SqliteStore {
    pub async fn connect(url: &str, settings: StoreSettings) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Writers wait for each other (the ledger head) instead of failing.
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // 64 MiB of page cache per connection (default 2 MiB): request
            // ids arrive in random order, so bulk ingest touches pages all over the index.
            .pragma("cache_size", "-65536");
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A connection to a local file does not go stale; sqlx's default
            // ping before every acquire would add a round trip to each query.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(15))
            // SQLite may leave a transaction open when a statement or its
            // COMMIT fails (a full disk, an I/O error: "the transaction may or
            // may not be rolled back automatically"), and sqlx then returns
            // the connection to the pool believing it idle: later writes on it
            // would be answered 201 inside that transaction and vanish with it.
            // So every released connection is rolled back; a ROLLBACK that
            // succeeds means one was left open, and the connection is closed.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    match sqlx::Executor::execute(&mut *conn, "ROLLBACK").await {
                        Ok(_) => {
                            tracing::warn!("a SQLite connection came back inside a transaction; rolled back and closed");
                            Ok(false)
                        }
                        Err(_) => Ok(true),
                    }
                })
            })
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            settings,
            cache: Arc::default(),
            temporal: Default::default(),
            writes: super::sql_store::WriteGate::queued(),
        })
    }

    /// Writes a consistent copy of the database to `path` while others keep
    /// reading and writing (`VACUUM INTO`: one read transaction, so the copy
    /// is the database as of one instant; SQLite refuses an existing file).
    pub async fn vacuum_into(&self, path: &std::path::Path) -> StoreResult<()> {
        sqlx::query("VACUUM INTO ?")
            .bind(path.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes every connection, so that the file is whole on its own (no
    /// `-wal` beside it) and can be moved.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Other processes' changes are seen by polling the ledger head.
    async fn watch(&self) -> StoreResult<()> {
        let result = self.poll_head(POLL).await;
        self.cache.withdraw();
        result
    }

    /// One transaction, multi-row INSERTs of `RECORDS_PER_STATEMENT` rows.
    async fn insert_records(&self, records: &[RequestRecord]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in records.chunks(RECORDS_PER_STATEMENT) {
            let sql = insert_records_sql(chunk.len());
            let mut statement = sqlx::query(&sql);
            for r in chunk {
                statement = statement
                    .bind(&r.request_id)
                    .bind(r.at.micros())
                    .bind(&r.cluster)
                    .bind(&r.slot)
                    .bind(r.full_id.model_id.as_str())
                    .bind(r.full_id.version.as_str())
                    .bind(r.latency_ms)
                    .bind(r.outcome.as_deref());
            }
            inserted += statement.execute(&mut *tx).await?.rows_affected();
        }
        if inserted < records.len() as u64 {
            // Some ids were stored already (or repeated): only the same content may repeat.
            let mut stored = Vec::new();
            for chunk in records.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let sql = format!(
                    "SELECT {REQUEST_RECORD_COLUMNS} FROM request_records WHERE request_id IN ({marks})"
                );
                let mut select = sqlx::query_as::<_, super::sql::RequestRecordRow>(&sql);
                for r in chunk {
                    select = select.bind(&r.request_id);
                }
                stored.extend(select.fetch_all(&mut *tx).await?);
            }
            let conflicts =
                super::sql::record_conflicts(records, &super::sql::records_by_id(stored)?);
            if !conflicts.is_empty() {
                tx.rollback().await?;
                return Err(super::StoreError::RecordConflicts(conflicts));
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

/// The INSERT for `rows` records; the full-size one is built once.
fn insert_records_sql(rows: usize) -> std::borrow::Cow<'static, str> {
    static FULL: OnceLock<String> = OnceLock::new();
    let build = |rows: usize| {
        let tuples = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
        format!(
            "INSERT INTO request_records ({REQUEST_RECORD_COLUMNS}) VALUES {tuples} \
             ON CONFLICT (request_id) DO NOTHING"
        )
    };
    if rows == RECORDS_PER_STATEMENT {
        FULL.get_or_init(|| build(rows)).as_str().into()
    } else {
        build(rows).into()
    }
}

super::sql_store::sql_store!(SqliteStore, sqlx::Sqlite, Sqlite);
super::identity_sql::identity_store!(SqliteStore, sqlx::Sqlite);
super::release_sql::release_store!(SqliteStore, sqlx::Sqlite);
super::sso_sql::sso_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod migration_tests {
    use super::*;

    /// A fresh database file migrated up to (not including) `version`.
    async fn migrated_before(version: i64) -> (SqlitePool, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("sy-mig-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}/switchyard.db", dir.display());
        let options = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePool::connect_with(options).await.expect("open");
        let before = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                MIGRATOR
                    .migrations
                    .iter()
                    .filter(|m| m.version < version)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before.run(&pool).await.expect("migrated up to the one tested");
        (pool, dir)
    }

    /// Users made before role bindings keep exactly their role: migration
    /// 0018 turns each `users.role` into a binding on all.
    #[tokio::test]
    async fn existing_users_roles_become_bindings_on_all() {
        let (pool, dir) = migrated_before(18).await;
        for (name, role) in [("ann", "admin"), ("bea", "deployer"), ("cy", "viewer")] {
            sqlx::query("INSERT INTO users (username, role, password_hash, created_at) VALUES ($1, $2, 'x', 7)")
                .bind(name)
                .bind(role)
                .execute(&pool)
                .await
                .expect("user");
        }
        MIGRATOR.run(&pool).await.expect("migrated to the end");
        let rows: Vec<(i64, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, subject_kind, subject, role, scope, created_at FROM role_bindings ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .expect("bindings");
        let seen: Vec<(i64, &str, &str, &str, &str, i64)> = rows
            .iter()
            .map(|(id, k, s, r, sc, at)| (*id, k.as_str(), s.as_str(), r.as_str(), sc.as_str(), *at))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "user", "ann", "admin", "*", 7),
                (2, "user", "bea", "deployer", "*", 7),
                (3, "user", "cy", "viewer", "*", 7),
            ]
        );
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Migration 0030 rebuilds promotions (and promotion_approvals, which
    /// refers to it) to admit `withdrawn`: every row and column is kept,
    /// the foreign key still holds, and the new status is accepted.
    #[tokio::test]
    async fn promotions_and_their_approvals_survive_the_rebuild_that_admits_withdrawn() {
        let (pool, dir) = migrated_before(30).await;
        for sql in [
            "INSERT INTO environments (name, allow_latest, required_approvals, min_stage, position) VALUES ('production', 0, 2, 'production', 3)",
            "INSERT INTO versions (model_id, version, stage, config_hash, config, created_at, created_by, stage_since) VALUES ('chat', 'v2', 'staging', 'h', '{}', 1, 'ci', 1)",
            "INSERT INTO promotions (id, model_id, version, environment, to_stage, config_hash, reason, requested_by, requested_at, expires_at, required_approvals, status, policy, requester_groups) VALUES (7, 'chat', 'v2', 'production', 'production', 'h', 'r', 'dave', 1, 99, 2, 'pending', '{}', '[\"ml\"]')",
            "INSERT INTO promotion_approvals (promotion_id, approver, actor, config_hash, reason, at, approver_groups) VALUES (7, 'bob', 'bob', 'h', 'ok', 2, '[\"risk\"]')",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        assert!(
            sqlx::query("UPDATE promotions SET status = 'withdrawn'")
                .execute(&pool)
                .await
                .is_err(),
            "refused before the migration"
        );
        MIGRATOR.run(&pool).await.expect("migrated to the end");
        let promotion: (i64, String, String, String) =
            sqlx::query_as("SELECT id, status, policy, requester_groups FROM promotions")
                .fetch_one(&pool)
                .await
                .expect("kept");
        assert_eq!(promotion, (7, "pending".into(), "{}".into(), "[\"ml\"]".into()));
        let approval: (i64, String, String) =
            sqlx::query_as("SELECT promotion_id, approver, approver_groups FROM promotion_approvals")
                .fetch_one(&pool)
                .await
                .expect("kept");
        assert_eq!(approval, (7, "bob".into(), "[\"risk\"]".into()));
        sqlx::query("UPDATE promotions SET status = 'withdrawn'")
            .execute(&pool)
            .await
            .expect("accepted after the migration");
        assert!(
            sqlx::query("INSERT INTO promotion_approvals (promotion_id, approver, actor, config_hash, at) VALUES (99, 'x', 'x', 'h', 1)")
                .execute(&pool)
                .await
                .is_err(),
            "the foreign key to promotions still holds"
        );
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
