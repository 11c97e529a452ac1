//! Storage: one trait, a SQLite and a PostgreSQL implementation, one
//! contract test suite run against both (`store/contract.rs`).
//!
//! Every method that changes state writes its ledger event(s) in the same
//! transaction as the change. Writers serialise on the ledger head row
//! (`ledger_head`), which both backends lock the same way (an UPDATE first
//! in the transaction): PostgreSQL by row lock, SQLite by taking the write
//! lock at once. That keeps the hash chain unbroken and every invariant true
//! across several server processes — no in-process mutex is relied on.

pub mod cache;
pub mod clusters;
mod clusters_sql;
pub mod identity;
mod identity_sql;
pub mod notify;
mod notify_sql;
pub mod postgres;
pub mod release;
mod release_sql;
mod sql;
pub(crate) use sql::registration_conflict;
mod sql_store;
pub mod sqlite;
pub mod sso;
mod sso_sql;
pub mod temporal;

#[cfg(test)]
mod contract;

use std::sync::Arc;

use async_trait::async_trait;
pub use identity::IdentityStore;
pub use release::ReleaseStore;
use switchyard_domain::lifecycle::MoveVia;
use switchyard_domain::types::{
    AuditPage, Environment, ModelHistory, ModelSummary, NewVersion, Pin, RequestLookup,
    RequestRecord, Resolved, ServingAt, VerifyReport, Version, VersionDetail,
};
use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp, VersionRef};

/// What went wrong in a store call: a rule said no (shown to the user), or
/// the database failed (logged, shown as a generic 500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Request records whose id is stored (or repeated in the batch) with
    /// other content: (index in the batch, why). Nothing of the batch was stored.
    #[error("{} request records conflict with stored ones", .0.len())]
    RecordConflicts(Vec<(usize, String)>),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database is away, full or too slow, rather than the request or the
    /// data being wrong: worth retrying the same request later (answered 503).
    /// Connection failures and pool timeouts of either engine; PostgreSQL's
    /// connection exceptions (SQLSTATE class 08), shutdown and start-up
    /// (57P01-57P03), insufficient resources (class 53: disk full, too many
    /// connections) and a cancelled statement (57014, `statement_timeout`);
    /// SQLite's busy, locked, full and I/O errors.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => sqlx_unavailable(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => sqlx_unavailable(e),
            _ => false,
        }
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                return code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code, "57P01" | "57P02" | "57P03" | "57014");
            }
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // The primary result code is the low byte of the extended one.
                let primary = db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(|c| c & 0xff);
                // SQLITE_BUSY 5, SQLITE_LOCKED 6, SQLITE_IOERR 10, SQLITE_FULL 13.
                return matches!(primary, Some(5 | 6 | 10 | 13));
            }
            false
        }
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Settings every store needs to apply the domain rules.
#[derive(Debug, Clone, Copy)]
pub struct StoreSettings {
    /// Days a version stays deprecated before it may be retired (30–90).
    pub deprecation_days: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            deprecation_days: switchyard_domain::lifecycle::DEPRECATION_DAYS_DEFAULT,
        }
    }
}

/// The result of a registration: the stored version, and whether this call created it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub version: Version,
    pub created: bool,
}

/// A version imported from another registry (`switchyard import mlflow`):
/// registered, walked along `stages` and pinned in `pins`, all in one
/// transaction with its ledger events, or not at all.
#[derive(Debug, Clone)]
pub struct ImportItem {
    pub new: NewVersion,
    /// The stages to move through after development, in order (each move
    /// allowed by the lifecycle; production supersedes the previous one).
    pub stages: Vec<Stage>,
    /// Environments to pin the version in (checked against their policy).
    pub pins: Vec<String>,
    /// Where it came from (source URL, its creation time there, …): in the
    /// details of every ledger event the import writes.
    pub details: serde_json::Value,
    /// The reason recorded on the stage and pin events.
    pub reason: String,
}

/// Filters of the audit log. `cursor` is the opaque `next_cursor` of the previous page.
/// `after` is inclusive and `before` exclusive; `limit` is 1 to 1000 (0 means 100).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub after: Option<Timestamp>,
    pub before: Option<Timestamp>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub model: Option<String>,
    pub environment: Option<String>,
    pub cluster: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// What a batch of request records contradicts in what is stored, per record
/// (its index in the batch, and why).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordCheck {
    /// Unknown or retired versions, unknown clusters, times outside the ledger: refused.
    pub refused: Vec<(usize, String)>,
    /// Records the ledger's cluster state contradicts: stored, and said so.
    pub flagged: Vec<(usize, String)>,
}

/// What a pass of the retirement job did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetireReport {
    pub retired: Vec<FullId>,
    /// Due, but still pinned (or serving) somewhere: flagged, not retired.
    pub held: Vec<FullId>,
}

#[async_trait]
pub trait Store:
    IdentityStore
    + clusters::ClusterStore
    + notify::NotifyStore
    + release::ReleaseStore
    + sso::SsoStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;

    /// Applies pending migrations and creates the standard environments
    /// (development, staging, production) with their default policies.
    async fn migrate(&self) -> StoreResult<()>;

    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Registers a version in `development`. Idempotent for the same config
    /// and artifact; a different config or artifact under the same full id
    /// is a `DomainError::Conflict` and changes nothing.
    async fn register_version(
        &self,
        new: NewVersion,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Registered>;

    /// Imports a version: like `register_version` (idempotent for the same
    /// config and artifact, a `Conflict` otherwise, changing nothing), and
    /// when created, its stage moves and pins in the same transaction.
    async fn import_version(
        &self,
        item: ImportItem,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Registered>;

    async fn list_models(&self) -> StoreResult<Vec<ModelSummary>>;

    /// A model's versions, newest first. Unknown model: `NotFound`.
    async fn list_versions(&self, model: &ModelId) -> StoreResult<Vec<Version>>;

    async fn get_version(&self, id: &FullId) -> StoreResult<Option<Version>>;

    /// The version with its stage history, retirement date and current pins.
    async fn version_detail(&self, id: &FullId) -> StoreResult<Option<VersionDetail>>;

    /// The model's pin changes (every environment) and its versions' stage
    /// changes, oldest first: what the version timeline draws. Empty for an
    /// unknown model.
    async fn model_history(&self, model: &ModelId) -> StoreResult<ModelHistory>;

    /// Page `page` of `list_versions` (`per_page` to a page), reading only
    /// that page: `domain::paging::locate` refuses a page past the end,
    /// `NotFound` as `list_versions` for a model without versions.
    async fn versions_page(
        &self,
        model: &ModelId,
        page: u32,
        per_page: u32,
    ) -> StoreResult<switchyard_domain::types::VersionsPage>;

    /// `model_history` for a window `[start, end]`: the stage changes inside
    /// it, and the pin changes inside it with each environment's last one
    /// before it (where the window's first bar starts), oldest first.
    async fn model_history_between(
        &self,
        model: &ModelId,
        start: Timestamp,
        end: Timestamp,
    ) -> StoreResult<ModelHistory>;

    /// The clusters (in name order) that ever served `model` with traffic,
    /// each with its changes inside `[start, end]` and the one in force at
    /// `start`: from the temporal index (as `serving_at`), no query per cluster.
    async fn clusters_serving(
        &self,
        model: &ModelId,
        start: Timestamp,
        end: Timestamp,
    ) -> StoreResult<Vec<switchyard_domain::types::ClusterServing>>;

    /// Moves a version's stage after `lifecycle::check_move`. Moving to
    /// production is only done by promotions (`MoveVia::Promotion`), which
    /// also deprecate the model's previous production version in the same
    /// transaction.
    async fn change_stage(
        &self,
        id: &FullId,
        to: Stage,
        via: MoveVia,
        reason: Option<&str>,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Version>;

    /// Environments in their standard order, each with its policy and pins.
    async fn list_environments(&self) -> StoreResult<Vec<Environment>>;

    /// The environments' names alone, in the same order (no pins read).
    async fn environment_names(&self) -> StoreResult<Vec<String>>;

    /// Pins `id` in `env` if the environment's policy admits the version's stage.
    async fn set_pin(
        &self,
        env: &str,
        id: &FullId,
        reason: Option<&str>,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Pin>;

    /// The hot path model servers call: see `switchyard_domain::resolve`.
    /// While `watch_changes` runs, answers (and `token_identity`'s) come from
    /// a per-process cache that every change empties: at once for changes made
    /// through this store, within one second for those of other processes.
    async fn resolve(&self, reference: &VersionRef, env: &str) -> StoreResult<Resolved>;

    /// Watches the database for changes made by any process, for the read
    /// cache (see `store/cache.rs`): polls the ledger head, and on PostgreSQL
    /// also listens for the `NOTIFY` of every writing transaction. Runs until
    /// the database fails; the cache is used only while it runs.
    async fn watch_changes(&self) -> StoreResult<()>;

    /// Stores a validated batch in one transaction (all or nothing). A
    /// record whose request_id is already stored with the same content is
    /// skipped (retries are safe); one stored (or repeated in the batch) with
    /// other content is `StoreError::RecordConflicts` and nothing is stored.
    /// Returns the number of records accepted.
    async fn insert_request_records(&self, records: &[RequestRecord]) -> StoreResult<u64>;

    /// Checks a validated batch against what is stored (`records::check_*`):
    /// times within the ledger and not ahead of `now`, registered versions not
    /// retired at the record's time, clusters Switchyard manages; and flags
    /// records whose slot the ledger says held another version at that time.
    async fn check_request_records(
        &self,
        records: &[RequestRecord],
        now: Timestamp,
    ) -> StoreResult<RecordCheck>;

    /// The record with its version and the events that put it in service, in one query.
    async fn request_lookup(&self, request_id: &str) -> StoreResult<Option<RequestLookup>>;

    /// What each environment pinned and each cluster served at `at`, from
    /// the per-process temporal index (`store/temporal.rs`), first brought up
    /// to the ledger head so that every change committed before the call is seen.
    async fn serving_at(
        &self,
        at: Timestamp,
        env: Option<&str>,
        model: Option<&ModelId>,
    ) -> StoreResult<ServingAt>;

    /// Ledger events, newest first, filtered and paginated.
    async fn audit_page(&self, q: &AuditQuery) -> StoreResult<AuditPage>;

    /// Walks the whole chain (in pages) and checks every link and the head.
    async fn audit_verify(&self) -> StoreResult<VerifyReport>;

    /// The ledger head row (last id and hash), if any event was written.
    async fn ledger_head(&self) -> StoreResult<Option<(i64, String)>>;

    /// One ledger event by id, with the number of events whose id is at most
    /// `id` (what a signed checkpoint compares against).
    async fn ledger_event(
        &self,
        id: i64,
    ) -> StoreResult<(Option<switchyard_domain::ledger::LedgerEvent>, i64)>;

    /// The ids of the first event at or after `from` and of the last event
    /// before `to` (what `audit export` exports of that period); `None` when
    /// no event lies in it.
    async fn ledger_period(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Option<(i64, i64)>>;

    /// Ledger events with ids after `after` up to `up_to`, oldest first, at most `limit`.
    async fn ledger_events(
        &self,
        after: i64,
        up_to: i64,
        limit: i64,
    ) -> StoreResult<Vec<switchyard_domain::ledger::LedgerEvent>>;

    /// Retires deprecated versions whose period has passed (actor `system`),
    /// unless they are still pinned somewhere: those are flagged once in the ledger.
    async fn retire_due(&self, now: Timestamp) -> StoreResult<RetireReport>;
}

pub type DynStore = Arc<dyn Store>;

tokio::task_local! {
    /// The API token the current request was authenticated with.
    static VIA_TOKEN: String;
}

/// Runs `f` (an API request) so that every ledger event it writes records
/// `token` as `details.via_token`, beside the person as actor. The runner's
/// background work is not inside any request, so its events name no token.
pub async fn acting_with_token<F: std::future::Future>(token: Option<String>, f: F) -> F::Output {
    match token {
        Some(token) => VIA_TOKEN.scope(token, f).await,
        None => f.await,
    }
}

/// The token of the request being served, if it came with one.
pub(crate) fn token_in_use() -> Option<String> {
    VIA_TOKEN.try_with(Clone::clone).ok()
}

/// Opens the store a `DATABASE_URL` names: `sqlite://path` (created if
/// missing, WAL mode) or `postgres://…`.
pub async fn connect(url: &str, settings: StoreSettings) -> StoreResult<DynStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, settings).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::connect(url, settings).await?))
    } else {
        Err(StoreError::Domain(DomainError::Invalid(format!(
            "DATABASE_URL must start with sqlite:// or postgres://, got {:?}",
            url.split(':').next().unwrap_or("")
        ))))
    }
}
