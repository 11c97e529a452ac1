//! The benchmark's own connection to the database, beside the server's: bulk
//! loading of generated rows (multi-row INSERTs on SQLite, `COPY` on
//! PostgreSQL) and the raw-engine baselines the server is compared with.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Executor, PgConnection};

/// One column value of a generated row.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    Float(f64),
    Text(String),
    Null,
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Float(v)
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}

impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        v.map_or(Val::Null, Val::Text)
    }
}

/// Binds every `Val` of `values` to the query `q`, in order. A macro
/// because the query's type differs per database.
macro_rules! bind_all {
    ($q:expr, $values:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match v {
                Val::Int(i) => q.bind(*i),
                Val::Float(f) => q.bind(*f),
                Val::Text(s) => q.bind(s.as_str()),
                Val::Null => q.bind(None::<i64>),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// SQLite allows 32 766 parameters per statement.
const SQLITE_MAX_PARAMS: usize = 32_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Loading,
    Baseline,
}

pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// A single connection. `Mode::Loading` is for generation only: on
    /// SQLite without fsync and foreign key checks. `Mode::Baseline` opens
    /// SQLite as the server does (WAL, synchronous FULL, 64 MiB cache), so
    /// the raw engine is measured with the same durability.
    pub async fn open(url: &str, mode: Mode) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30));
            let options = match mode {
                Mode::Loading => options
                    .synchronous(SqliteSynchronous::Off)
                    .foreign_keys(false)
                    .pragma("cache_size", "-262144"),
                Mode::Baseline => options.pragma("cache_size", "-65536"),
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
            Ok(Db::Postgres(pool))
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }

    /// Inserts `rows` into `table` in one transaction.
    pub async fn bulk_insert(
        &self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Val>],
    ) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        match self {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let per_statement = (SQLITE_MAX_PARAMS / columns.len()).max(1);
                for chunk in rows.chunks(per_statement) {
                    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
                    let sql = format!(
                        "INSERT INTO {table} ({}) VALUES {}",
                        columns.join(", "),
                        vec![tuple.as_str(); chunk.len()].join(", ")
                    );
                    bind_all!(sqlx::query(&sql), chunk.iter().flatten())
                        .execute(&mut *tx)
                        .await
                        .with_context(|| format!("bulk insert into {table}"))?;
                }
                tx.commit().await?;
            }
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                copy_rows(&mut conn, table, columns, rows).await?;
            }
        }
        Ok(())
    }

    /// Runs a query with `args` and fetches at most one row: the raw
    /// engine's side of a lookup. Answers whether a row was found.
    pub async fn lookup(&self, sql: &str, args: &[Val]) -> anyhow::Result<bool> {
        Ok(match self {
            Db::Sqlite(pool) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(pool)
                .await?
                .is_some(),
            Db::Postgres(pool) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(pool)
                .await?
                .is_some(),
        })
    }

    /// Latest rows are visible to the server; on SQLite also folds the WAL
    /// back into the database file so the server starts on a small WAL. On
    /// PostgreSQL the freshly loaded tables are vacuumed as well as analysed:
    /// otherwise autovacuum starts on the ten million new request records
    /// in the middle of the measurements (a database in service is not
    /// minutes past a bulk load of its whole history).
    pub async fn finish_loading(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(pool) => {
                pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
                pool.execute("ANALYZE").await?;
            }
            Db::Postgres(pool) => {
                pool.execute("VACUUM (ANALYZE)").await?;
            }
        }
        Ok(())
    }
}

/// `COPY table (columns) FROM STDIN` in text format.
pub async fn copy_rows(
    conn: &mut PgConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Val>],
) -> anyhow::Result<()> {
    let mut buf = String::with_capacity(rows.len() * 128);
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                buf.push('\t');
            }
            match v {
                Val::Int(n) => {
                    let _ = write!(buf, "{n}");
                }
                Val::Float(f) => {
                    let _ = write!(buf, "{f}");
                }
                Val::Text(s) => escape_copy(&mut buf, s),
                Val::Null => buf.push_str("\\N"),
            }
        }
        buf.push('\n');
    }
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT text)",
            columns.join(", ")
        ))
        .await?;
    copy.send(buf.into_bytes()).await?;
    copy.finish()
        .await
        .with_context(|| format!("COPY into {table}"))?;
    Ok(())
}

/// Text-format COPY escapes: backslash, tab, newline and carriage return.
fn escape_copy(buf: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

/// A fresh, empty database for one run: a SQLite file in a new temporary
/// directory, or a new PostgreSQL database on the server `admin_url` names.
pub struct FreshDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl FreshDatabase {
    pub fn sqlite() -> anyhow::Result<FreshDatabase> {
        let dir =
            std::env::temp_dir().join(format!("sy-bench-{:016x}", crate::rng::seed_from_time()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(FreshDatabase {
            url: format!("sqlite://{}/switchyard.db", dir.display()),
            cleanup: Cleanup::Dir(dir),
        })
    }

    pub async fn postgres(admin_url: &str) -> anyhow::Result<FreshDatabase> {
        let name = format!("sy_bench_{:016x}", crate::rng::seed_from_time());
        let mut admin = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("PostgreSQL is not reachable at {admin_url}"))?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        admin.close().await?;
        let (base, _) = admin_url
            .rsplit_once('/')
            .context("the PostgreSQL URL must name a database, e.g. postgres://postgres@127.0.0.1:5432/postgres")?;
        Ok(FreshDatabase {
            url: format!("{base}/{name}"),
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// Removes the database (the servers using it are expected to be done).
    pub async fn remove(self) -> anyhow::Result<()> {
        match self.cleanup {
            Cleanup::Dir(dir) => std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display())),
            Cleanup::Postgres { admin_url, name } => {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                    .await?;
                Ok(())
            }
        }
    }
}
