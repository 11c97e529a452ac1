//! The SQL both backends share, written once.
//!
//! The statements below run unchanged on SQLite and PostgreSQL (`$N`
//! placeholders, integer microseconds, JSON as text). The business logic
//! that runs them lives in [`sql_store!`], which expands to the `Store`
//! implementation for one concrete sqlx database type: sqlx's generic
//! `Database` bounds would have to be repeated on every function (Rust does
//! not imply them), so a macro over the two concrete types stays readable.
//! What differs per backend — connecting, migrations and the bulk insert of
//! request records — is in `sqlite.rs` and `postgres.rs`.

use std::str::FromStr;

use serde_json::{json, Value};
use switchyard_domain::ledger::{action, LedgerEvent};
use switchyard_domain::lifecycle::{MoveContext, MoveVia};
use switchyard_domain::policy::EnvPolicy;
use switchyard_domain::types::{
    Labels, NewVersion, Pin, RequestRecord, StageChange, VerifyReport, Version,
};
use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp, VersionName};

use super::{AuditQuery, StoreError, StoreResult};

/// The environments `migrate` creates, in their standard order.
pub(crate) const STANDARD_ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// Events per page when walking the chain.
pub(crate) const VERIFY_PAGE: i64 = 5000;

/// The first statement of every writing transaction: it takes the lock that
/// serialises writers (a row lock on PostgreSQL; on SQLite the database write
/// lock, taken at once so two deferred transactions never deadlock upgrading).
pub(crate) const LOCK_HEAD: &str =
    "UPDATE ledger_head SET last_id = last_id WHERE singleton = 1 RETURNING last_id, last_hash";
pub(crate) const UPDATE_HEAD: &str =
    "UPDATE ledger_head SET last_id = $1, last_hash = $2 WHERE singleton = 1";
pub(crate) const SELECT_HEAD: &str =
    "SELECT last_id, last_hash FROM ledger_head WHERE singleton = 1";

pub(crate) const INSERT_ENVIRONMENT: &str = "INSERT INTO environments \
     (name, allow_latest, required_approvals, min_stage, position) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (name) DO NOTHING";
pub(crate) const SELECT_POLICY: &str =
    "SELECT name, allow_latest, required_approvals, min_stage FROM environments WHERE name = $1";
pub(crate) const SELECT_ENVIRONMENTS: &str =
    "SELECT name, allow_latest, required_approvals, min_stage FROM environments ORDER BY position, name";

macro_rules! version_columns {
    () => {
        "model_id, version, stage, config_hash, config, artifact_uri, labels, \
         created_at, created_by, stage_since"
    };
}
pub(crate) const SELECT_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE model_id = $1 AND version = $2"
);
pub(crate) const SELECT_VERSIONS_OF_MODEL: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE model_id = $1 ORDER BY created_at DESC, version DESC"
);
pub(crate) const SELECT_LATEST_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE model_id = $1 AND stage <> 'retired' \
     ORDER BY created_at DESC, version DESC LIMIT 1"
);
pub(crate) const SELECT_PINNED_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE model_id = $2 \
     AND version = (SELECT version FROM pins WHERE environment = $1 AND model_id = $2)"
);
pub(crate) const SELECT_OTHER_PRODUCTION_VERSIONS: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE model_id = $1 AND stage = 'production' AND version <> $2 ORDER BY version"
);
pub(crate) const INSERT_VERSION: &str = concat!(
    "INSERT INTO versions (",
    version_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
// A new stage clears the retirement flag: it belonged to the old deprecation.
pub(crate) const UPDATE_STAGE: &str =
    "UPDATE versions SET stage = $3, stage_since = $4, retirement_held_at = NULL \
     WHERE model_id = $1 AND version = $2";
pub(crate) const FLAG_RETIREMENT_HELD: &str = "UPDATE versions SET retirement_held_at = $3 \
     WHERE model_id = $1 AND version = $2 AND retirement_held_at IS NULL";
pub(crate) const SELECT_DEPRECATED_SINCE: &str = "SELECT model_id, version FROM versions \
     WHERE stage = 'deprecated' AND stage_since <= $1 ORDER BY stage_since, model_id, version";
pub(crate) const SELECT_MODELS: &str = "SELECT m.model_id, m.version_count, m.updated_at, \
     (SELECT v.version FROM versions v WHERE v.model_id = m.model_id \
      ORDER BY v.created_at DESC, v.version DESC LIMIT 1) AS latest_version, \
     (SELECT v.version FROM versions v WHERE v.model_id = m.model_id AND v.stage = 'production' \
      ORDER BY v.stage_since DESC, v.version DESC LIMIT 1) AS production_version \
     FROM (SELECT model_id, COUNT(*) AS version_count, MAX(stage_since) AS updated_at \
           FROM versions GROUP BY model_id) m \
     ORDER BY m.model_id";

pub(crate) const SELECT_PIN: &str =
    "SELECT p.environment, p.model_id, p.version, v.stage, p.since, p.set_by, \
     p.reason, p.event_id FROM pins p \
     JOIN versions v ON v.model_id = p.model_id AND v.version = p.version \
     WHERE p.environment = $1 AND p.model_id = $2";
pub(crate) const SELECT_ALL_PINS: &str =
    "SELECT p.environment, p.model_id, p.version, v.stage, p.since, p.set_by, \
     p.reason, p.event_id FROM pins p \
     JOIN versions v ON v.model_id = p.model_id AND v.version = p.version \
     ORDER BY p.environment, p.model_id";
pub(crate) const UPSERT_PIN: &str = "INSERT INTO pins \
     (environment, model_id, version, since, set_by, reason, event_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (environment, model_id) DO UPDATE SET version = excluded.version, \
     since = excluded.since, set_by = excluded.set_by, reason = excluded.reason, \
     event_id = excluded.event_id";
pub(crate) const SELECT_PINNED_IN: &str = "SELECT p.environment FROM pins p \
     JOIN environments e ON e.name = p.environment \
     WHERE p.model_id = $1 AND p.version = $2 ORDER BY e.position, p.environment";
pub(crate) const SELECT_PIN_SUBJECTS: &str = "SELECT p.environment, p.model_id FROM pins p \
     JOIN environments e ON e.name = p.environment \
     WHERE ($1 IS NULL OR p.environment = $1) AND ($2 IS NULL OR p.model_id = $2) \
     ORDER BY e.position, p.environment, p.model_id";

pub(crate) const INSERT_STATE: &str =
    "INSERT INTO state_history (subject, valid_from, event_id, value) VALUES ($1, $2, $3, $4)";
pub(crate) const SELECT_STATE_AT: &str =
    "SELECT h.valid_from, h.event_id, h.value, l.actor, l.reason \
     FROM state_history h JOIN ledger l ON l.id = h.event_id \
     WHERE h.subject = $1 AND h.valid_from <= $2 \
     ORDER BY h.valid_from DESC, h.event_id DESC LIMIT 1";
pub(crate) const SELECT_NEXT_STATE: &str = "SELECT valid_from FROM state_history \
     WHERE subject = $1 AND valid_from > $2 ORDER BY valid_from LIMIT 1";

macro_rules! ledger_columns {
    () => {
        "id, at, actor, action, model_id, version, environment, cluster, reason, details, prev_hash, hash"
    };
}
pub(crate) const INSERT_EVENT: &str = concat!(
    "INSERT INTO ledger (",
    ledger_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
pub(crate) const SELECT_EVENTS_PAGE: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    " FROM ledger WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3"
);
pub(crate) const SELECT_PROVENANCE: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    " FROM ledger WHERE model_id = $1 AND version = $2 AND at <= $3 ORDER BY id"
);
pub(crate) const SELECT_STAGE_EVENTS: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    " FROM ledger WHERE model_id = $1 AND version = $2 \
     AND action IN ('version.registered', 'stage.changed') ORDER BY id"
);

pub(crate) const SELECT_REQUEST_RECORD: &str =
    "SELECT request_id, at, cluster, slot, model_id, version, \
     latency_ms, outcome FROM request_records WHERE request_id = $1";
pub(crate) const REQUEST_RECORD_COLUMNS: &str =
    "request_id, at, cluster, slot, model_id, version, latency_ms, outcome";

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn stored_full_id(model_id: &str, version: &str) -> StoreResult<FullId> {
    match (ModelId::parse(model_id), VersionName::parse(version)) {
        (Ok(m), Ok(v)) => Ok(FullId::new(m, v)),
        _ => Err(corrupt(format_args!(
            "stored id {model_id}:{version} is not a valid full id"
        ))),
    }
}

fn stored_stage(s: &str) -> StoreResult<Stage> {
    Stage::from_str(s).map_err(|_| corrupt(format_args!("stored stage {s:?} is unknown")))
}

fn non_negative_u32(n: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(n).map_err(|_| corrupt(format_args!("stored {what} {n} is out of range")))
}

pub(crate) fn not_found_version(id: &FullId) -> StoreError {
    DomainError::NotFound(format!("version {id} is not registered")).into()
}

pub(crate) fn not_found_environment(env: &str) -> StoreError {
    DomainError::NotFound(format!("environment {env} does not exist")).into()
}

#[derive(sqlx::FromRow)]
pub(crate) struct VersionRow {
    model_id: String,
    version: String,
    stage: String,
    config_hash: String,
    config: String,
    artifact_uri: Option<String>,
    labels: Option<String>,
    created_at: i64,
    created_by: String,
    stage_since: i64,
}

impl VersionRow {
    pub(crate) fn into_version(self) -> StoreResult<Version> {
        let full_id = stored_full_id(&self.model_id, &self.version)?;
        let config: Value = serde_json::from_str(&self.config)
            .map_err(|e| corrupt(format_args!("config of {full_id} is not JSON: {e}")))?;
        let labels: Option<Labels> = self
            .labels
            .map(|l| serde_json::from_str(&l))
            .transpose()
            .map_err(|e| {
                corrupt(format_args!(
                    "labels of {full_id} are not a JSON object of strings: {e}"
                ))
            })?;
        Ok(Version {
            model_id: full_id.model_id.clone(),
            version: full_id.version.clone(),
            full_id,
            stage: stored_stage(&self.stage)?,
            config_hash: self.config_hash,
            config,
            artifact_uri: self.artifact_uri,
            labels,
            created_at: Timestamp::from_micros(self.created_at),
            created_by: self.created_by,
            stage_since: Timestamp::from_micros(self.stage_since),
        })
    }
}

/// A version about to be stored, in `development` since `at`.
pub(crate) fn new_version(new: NewVersion, actor: &str, at: Timestamp) -> Version {
    Version {
        model_id: new.full_id.model_id.clone(),
        version: new.full_id.version.clone(),
        full_id: new.full_id,
        stage: Stage::Development,
        config_hash: new.config_hash,
        config: new.config,
        artifact_uri: new.artifact_uri,
        labels: new.labels,
        created_at: at,
        created_by: actor.to_owned(),
        stage_since: at,
    }
}

/// Labels as stored (a JSON object, or NULL).
pub(crate) fn labels_text(v: &Version) -> Option<String> {
    v.labels.as_ref().map(|l| json!(l).to_string())
}

/// Why re-registering `new` over `existing` is refused, or None if it is the same registration.
pub(crate) fn registration_conflict(existing: &Version, new: &NewVersion) -> Option<String> {
    let mut differs = Vec::new();
    if existing.config_hash != new.config_hash {
        differs.push(format!(
            "config (stored {}, given {})",
            existing.config_hash, new.config_hash
        ));
    }
    if existing.artifact_uri != new.artifact_uri {
        differs.push(format!(
            "artifact_uri (stored {:?}, given {:?})",
            existing.artifact_uri, new.artifact_uri
        ));
    }
    (!differs.is_empty()).then(|| {
        format!(
            "{} is already registered with a different {}; versions are immutable: register a new version instead",
            existing.full_id,
            differs.join(" and ")
        )
    })
}

/// What `check_move` needs to decide a move of `v`.
pub(crate) fn move_context(
    v: &Version,
    via: MoveVia,
    now: Timestamp,
    deprecation_days: u32,
    reason: Option<&str>,
) -> MoveContext {
    MoveContext {
        via,
        now,
        deprecated_at: (v.stage == Stage::Deprecated).then_some(v.stage_since),
        deprecation_days,
        has_reason: reason.is_some_and(|r| !r.trim().is_empty()),
    }
}

/// The event that explains a move to deprecated or retired, besides `stage.changed`.
pub(crate) fn lifecycle_action(to: Stage) -> Option<&'static str> {
    match to {
        Stage::Deprecated => Some(action::DEPRECATION),
        Stage::Retired => Some(action::RETIREMENT),
        _ => None,
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EnvRow {
    pub(crate) name: String,
    allow_latest: bool,
    required_approvals: i64,
    min_stage: String,
}

impl EnvRow {
    pub(crate) fn policy(&self) -> StoreResult<EnvPolicy> {
        Ok(EnvPolicy {
            allow_latest: self.allow_latest,
            required_approvals: non_negative_u32(self.required_approvals, "required_approvals")?,
            min_stage: stored_stage(&self.min_stage)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PinRow {
    environment: String,
    model_id: String,
    version: String,
    stage: String,
    since: i64,
    set_by: String,
    reason: Option<String>,
    event_id: i64,
}

impl PinRow {
    pub(crate) fn into_pin(self) -> StoreResult<Pin> {
        let full_id = stored_full_id(&self.model_id, &self.version)?;
        Ok(Pin {
            environment: self.environment,
            model_id: full_id.model_id.clone(),
            version: full_id.version.clone(),
            full_id,
            stage: stored_stage(&self.stage)?,
            since: Timestamp::from_micros(self.since),
            set_by: self.set_by,
            reason: self.reason,
            event_id: self.event_id,
        })
    }
}

/// One row of `state_history` joined with the event that wrote it.
#[derive(sqlx::FromRow)]
pub(crate) struct StateAtRow {
    pub(crate) valid_from: i64,
    pub(crate) event_id: i64,
    pub(crate) value: String,
    pub(crate) actor: String,
    pub(crate) reason: Option<String>,
}

impl StateAtRow {
    /// The pinned full id this row records for `model_id`.
    pub(crate) fn pinned_full_id(&self, model_id: &str) -> StoreResult<FullId> {
        stored_full_id(model_id, &self.value)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LedgerRow {
    pub(crate) id: i64,
    at: i64,
    actor: String,
    action: String,
    model_id: Option<String>,
    version: Option<String>,
    environment: Option<String>,
    cluster: Option<String>,
    reason: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

impl LedgerRow {
    pub(crate) fn into_event(self) -> StoreResult<LedgerEvent> {
        let details = serde_json::from_str(&self.details).map_err(|e| {
            corrupt(format_args!(
                "details of ledger event {} are not JSON: {e}",
                self.id
            ))
        })?;
        Ok(LedgerEvent {
            id: self.id,
            at: Timestamp::from_micros(self.at),
            actor: self.actor,
            action: self.action,
            model_id: self.model_id,
            version: self.version,
            environment: self.environment,
            cluster: self.cluster,
            reason: self.reason,
            details,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// A `version.registered` or `stage.changed` event as a step of the stage history.
pub(crate) fn stage_change(ev: LedgerEvent) -> StoreResult<StageChange> {
    let stage_at = |key: &str| -> StoreResult<Option<Stage>> {
        ev.details
            .get(key)
            .and_then(Value::as_str)
            .map(stored_stage)
            .transpose()
    };
    let (from, to) = if ev.action == action::VERSION_REGISTERED {
        (None, Some(Stage::Development))
    } else {
        (stage_at("from")?, stage_at("to")?)
    };
    let to = to.ok_or_else(|| corrupt(format_args!("ledger event {} names no stage", ev.id)))?;
    Ok(StageChange {
        at: ev.at,
        from,
        to,
        actor: ev.actor,
        reason: ev.reason,
        event_id: ev.id,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct RequestRecordRow {
    request_id: String,
    at: i64,
    cluster: String,
    slot: String,
    model_id: String,
    version: String,
    latency_ms: f64,
    outcome: Option<String>,
}

impl RequestRecordRow {
    pub(crate) fn into_record(self) -> StoreResult<RequestRecord> {
        Ok(RequestRecord {
            full_id: stored_full_id(&self.model_id, &self.version)?,
            request_id: self.request_id,
            at: Timestamp::from_micros(self.at),
            cluster: self.cluster,
            slot: self.slot,
            latency_ms: self.latency_ms,
            outcome: self.outcome,
        })
    }
}

/// A value bound to a dynamically built statement.
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// The audit query as SQL (newest first) and its arguments, after checking
/// the limit and cursor. Returns the page size asked for; the statement
/// fetches one more row to learn whether another page follows.
pub(crate) fn audit_statement(q: &AuditQuery) -> StoreResult<(String, Vec<Arg>, usize)> {
    let limit = match q.limit {
        0 => 100,
        l @ 1..=1000 => l,
        l => {
            return Err(
                DomainError::Invalid(format!("limit must be between 1 and 1000, not {l}")).into(),
            )
        }
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                DomainError::Invalid(format!("cursor {c:?} is not one this server issued"))
            })
        })
        .transpose()?;
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    let mut push = |condition: &str, arg: Arg| {
        args.push(arg);
        conditions.push(format!("{condition} ${}", args.len()));
    };
    if let Some(after) = q.after {
        push("at >=", Arg::Int(after.micros()));
    }
    if let Some(before) = q.before {
        push("at <", Arg::Int(before.micros()));
    }
    for (column, value) in [
        ("action", &q.action),
        ("actor", &q.actor),
        ("model_id", &q.model),
        ("environment", &q.environment),
    ] {
        if let Some(v) = value {
            push(&format!("{column} ="), Arg::Text(v.clone()));
        }
    }
    if let Some(id) = cursor {
        push("id <", Arg::Int(id));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        concat!(
            "SELECT ",
            ledger_columns!(),
            " FROM ledger{} ORDER BY id DESC LIMIT {}"
        ),
        filter,
        limit + 1
    );
    Ok((sql, args, limit as usize))
}

/// Walks ledger pages through the domain verifier, also checking that ids are
/// contiguous from 1: the domain `Verifier` alone names the event *after* a
/// deleted one (its `prev_hash` no longer matches), while the broken link is
/// the missing id itself.
pub(crate) struct ChainWalk {
    verifier: switchyard_domain::ledger::Verifier,
    last_id: i64,
    gap: Option<VerifyReport>,
}

impl ChainWalk {
    pub(crate) fn new() -> Self {
        ChainWalk {
            verifier: Default::default(),
            last_id: 0,
            gap: None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.gap.is_some() || self.verifier.is_broken()
    }

    pub(crate) fn last_id(&self) -> i64 {
        self.last_id
    }

    pub(crate) fn check(&mut self, row: LedgerRow) {
        let expected = self.last_id + 1;
        let broken = |id: i64, problem: String| VerifyReport {
            ok: false,
            checked: u64::try_from(expected - 1).unwrap_or(0),
            first_broken_id: Some(id),
            problem: Some(problem),
        };
        if row.id != expected {
            let missing = expected.min(row.id);
            self.gap = Some(broken(
                missing,
                format!(
                    "event {missing} is missing: the ledger goes from event {} to {}",
                    expected - 1,
                    row.id
                ),
            ));
            return;
        }
        match row.into_event() {
            Ok(ev) => self.verifier.check(&ev),
            Err(e) => {
                self.gap = Some(broken(
                    expected,
                    format!("event {expected} cannot be read: {e}"),
                ))
            }
        }
        self.last_id = expected;
    }

    /// The report, given the head row (last id and hash) if there is one.
    pub(crate) fn finish(self, head: Option<(i64, String)>) -> VerifyReport {
        if let Some(report) = self.gap {
            return report;
        }
        // The domain verifier expects `Some(0)` for an empty ledger whose head
        // is (0, genesis); with `None` it would report a fresh ledger as broken.
        self.verifier.finish(
            head.as_ref().map(|(id, hash)| (*id, hash.as_str())),
            Some(self.last_id),
        )
    }
}

/// Implements `Store` for `$store`, in a child module `shared` of the
/// backend's module so that it can reach the backend's private parts: the
/// fields `pool: sqlx::Pool<$db>` and `settings: StoreSettings`, the method
/// `insert_records(&self, &[RequestRecord]) -> StoreResult<u64>` and the
/// static `MIGRATOR`.
macro_rules! sql_store {
    ($store:ident, $db:ty, $backend:ident) => {
      mod shared {
        use super::{$store, MIGRATOR};
        use $crate::store::sql::{self as q, Arg};
        use $crate::store::{
            AuditQuery, Backend, Registered, RetireReport, Store, StoreResult,
        };
        use serde_json::json;
        use switchyard_domain::history::Subject;
        use switchyard_domain::ledger::{action, LedgerEvent, NewEvent};
        use switchyard_domain::lifecycle::{self, MoveVia};
        use switchyard_domain::policy::EnvPolicy;
        use switchyard_domain::types::{
            AuditPage, Environment, ModelSummary, NewVersion, Pin, PinAt, RequestLookup,
            RequestRecord, Resolved, ServingAt, Version, VersionDetail, VerifyReport,
        };
        use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp, VersionRef};

        /// A writing transaction that holds the ledger head: events appended
        /// through it get contiguous ids, and the head moves on commit.
        struct Writer {
            tx: sqlx::Transaction<'static, $db>,
            last_id: i64,
            last_hash: String,
        }

        impl Writer {
            async fn begin(pool: &sqlx::Pool<$db>) -> StoreResult<Writer> {
                let mut tx = pool.begin().await?;
                let (last_id, last_hash) = sqlx::query_as::<_, (i64, String)>(q::LOCK_HEAD)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok(Writer { tx, last_id, last_hash })
            }

            async fn append(&mut self, event: NewEvent) -> StoreResult<LedgerEvent> {
                let ev = event.seal(self.last_id + 1, &self.last_hash);
                sqlx::query(q::INSERT_EVENT)
                    .bind(ev.id)
                    .bind(ev.at.micros())
                    .bind(&ev.actor)
                    .bind(&ev.action)
                    .bind(&ev.model_id)
                    .bind(&ev.version)
                    .bind(&ev.environment)
                    .bind(&ev.cluster)
                    .bind(&ev.reason)
                    .bind(ev.details.to_string())
                    .bind(&ev.prev_hash)
                    .bind(&ev.hash)
                    .execute(&mut *self.tx)
                    .await?;
                self.last_id = ev.id;
                self.last_hash = ev.hash.clone();
                Ok(ev)
            }

            async fn record_state(&mut self, subject: Subject, at: Timestamp, event_id: i64, value: &str) -> StoreResult<()> {
                sqlx::query(q::INSERT_STATE)
                    .bind(subject.key())
                    .bind(at.micros())
                    .bind(event_id)
                    .bind(value)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn commit(mut self) -> StoreResult<()> {
                sqlx::query(q::UPDATE_HEAD)
                    .bind(self.last_id)
                    .bind(&self.last_hash)
                    .execute(&mut *self.tx)
                    .await?;
                self.tx.commit().await?;
                Ok(())
            }

            /// Moves `v` to `to` (already allowed by `check_move`) and records
            /// it: `stage.changed`, the deprecation or retirement event with
            /// `details`, and the stage's state history.
            async fn move_stage(
                &mut self,
                v: &Version,
                to: Stage,
                reason: Option<&str>,
                actor: &str,
                at: Timestamp,
                details: serde_json::Value,
            ) -> StoreResult<Version> {
                sqlx::query(q::UPDATE_STAGE)
                    .bind(v.model_id.as_str())
                    .bind(v.version.as_str())
                    .bind(to.as_str())
                    .bind(at.micros())
                    .execute(&mut *self.tx)
                    .await?;
                let changed = self
                    .append(
                        NewEvent::new(at, actor, action::STAGE_CHANGED)
                            .full_id(&v.full_id)
                            .reason(reason)
                            .details(json!({ "from": v.stage, "to": to })),
                    )
                    .await?;
                if let Some(explained) = q::lifecycle_action(to) {
                    self.append(
                        NewEvent::new(at, actor, explained)
                            .full_id(&v.full_id)
                            .reason(reason)
                            .details(details),
                    )
                    .await?;
                }
                let subject = Subject::Stage { full_id: v.full_id.to_string() };
                self.record_state(subject, at, changed.id, to.as_str()).await?;
                Ok(Version { stage: to, stage_since: at, ..v.clone() })
            }
        }

        async fn fetch_version<'e, E>(db: E, id: &FullId) -> StoreResult<Option<Version>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_as::<_, q::VersionRow>(q::SELECT_VERSION)
                .bind(id.model_id.as_str())
                .bind(id.version.as_str())
                .fetch_optional(db)
                .await?
                .map(q::VersionRow::into_version)
                .transpose()
        }

        async fn fetch_policy<'e, E>(db: E, env: &str) -> StoreResult<EnvPolicy>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_as::<_, q::EnvRow>(q::SELECT_POLICY)
                .bind(env)
                .fetch_optional(db)
                .await?
                .ok_or_else(|| q::not_found_environment(env))?
                .policy()
        }

        async fn fetch_pin<'e, E>(db: E, env: &str, model: &ModelId) -> StoreResult<Option<Pin>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_as::<_, q::PinRow>(q::SELECT_PIN)
                .bind(env)
                .bind(model.as_str())
                .fetch_optional(db)
                .await?
                .map(q::PinRow::into_pin)
                .transpose()
        }

        async fn fetch_pinned_in<'e, E>(db: E, id: &FullId) -> StoreResult<Vec<String>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            Ok(sqlx::query_scalar::<_, String>(q::SELECT_PINNED_IN)
                .bind(id.model_id.as_str())
                .bind(id.version.as_str())
                .fetch_all(db)
                .await?)
        }

        fn fetch_versions<'q>(
            sql: &'q str,
        ) -> sqlx::query::QueryAs<'q, $db, q::VersionRow, <$db as sqlx::Database>::Arguments<'q>> {
            sqlx::query_as::<_, q::VersionRow>(sql)
        }

        impl $store {
            /// Retires `id` or flags it as held, in its own transaction, if
            /// it is still deprecated and due (another server may have got there first).
            async fn retire_one(&self, id: &FullId, now: Timestamp, report: &mut RetireReport) -> StoreResult<()> {
                let mut w = Writer::begin(&self.pool).await?;
                let Some(v) = fetch_version(&mut *w.tx, id).await? else {
                    return Ok(());
                };
                let ctx = q::move_context(&v, MoveVia::System, now, self.settings.deprecation_days, None);
                if v.stage != Stage::Deprecated || lifecycle::check_move(v.stage, Stage::Retired, &ctx).is_err() {
                    return Ok(());
                }
                let pinned_in = fetch_pinned_in(&mut *w.tx, id).await?;
                if pinned_in.is_empty() {
                    w.move_stage(&v, Stage::Retired, None, "system", now, json!({ "early": false }))
                        .await?;
                    w.commit().await?;
                    report.retired.push(id.clone());
                    return Ok(());
                }
                report.held.push(id.clone());
                let first_time = sqlx::query(q::FLAG_RETIREMENT_HELD)
                    .bind(id.model_id.as_str())
                    .bind(id.version.as_str())
                    .bind(now.micros())
                    .execute(&mut *w.tx)
                    .await?
                    .rows_affected()
                    > 0;
                if first_time {
                    let reason = format!("still pinned in {}", pinned_in.join(", "));
                    w.append(
                        NewEvent::new(now, "system", action::RETIREMENT_HELD)
                            .full_id(id)
                            .reason(Some(&reason))
                            .details(json!({ "pinned_in": pinned_in })),
                    )
                    .await?;
                    w.commit().await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                Backend::$backend
            }

            async fn migrate(&self) -> StoreResult<()> {
                MIGRATOR.run(&self.pool).await?;
                for (position, name) in (0_i64..).zip(q::STANDARD_ENVIRONMENTS) {
                    let policy = EnvPolicy::default_for(name);
                    sqlx::query(q::INSERT_ENVIRONMENT)
                        .bind(name)
                        .bind(policy.allow_latest)
                        .bind(i64::from(policy.required_approvals))
                        .bind(policy.min_stage.as_str())
                        .bind(position)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(())
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn register_version(&self, new: NewVersion, actor: &str, at: Timestamp) -> StoreResult<Registered> {
                let mut w = Writer::begin(&self.pool).await?;
                if let Some(existing) = fetch_version(&mut *w.tx, &new.full_id).await? {
                    return match q::registration_conflict(&existing, &new) {
                        None => Ok(Registered { version: existing, created: false }),
                        Some(why) => Err(DomainError::Conflict(why).into()),
                    };
                }
                let v = q::new_version(new, actor, at);
                sqlx::query(q::INSERT_VERSION)
                    .bind(v.model_id.as_str())
                    .bind(v.version.as_str())
                    .bind(v.stage.as_str())
                    .bind(&v.config_hash)
                    .bind(v.config.to_string())
                    .bind(&v.artifact_uri)
                    .bind(q::labels_text(&v))
                    .bind(v.created_at.micros())
                    .bind(&v.created_by)
                    .bind(v.stage_since.micros())
                    .execute(&mut *w.tx)
                    .await?;
                let ev = w
                    .append(
                        NewEvent::new(at, actor, action::VERSION_REGISTERED)
                            .full_id(&v.full_id)
                            .details(json!({
                                "config_hash": v.config_hash,
                                "artifact_uri": v.artifact_uri,
                                "stage": v.stage,
                            })),
                    )
                    .await?;
                let subject = Subject::Stage { full_id: v.full_id.to_string() };
                w.record_state(subject, at, ev.id, v.stage.as_str()).await?;
                w.commit().await?;
                Ok(Registered { version: v, created: true })
            }

            async fn list_models(&self) -> StoreResult<Vec<ModelSummary>> {
                let rows = sqlx::query_as::<_, (String, i64, i64, Option<String>, Option<String>)>(q::SELECT_MODELS)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(q::model_summary).collect()
            }

            async fn list_versions(&self, model: &ModelId) -> StoreResult<Vec<Version>> {
                let rows = fetch_versions(q::SELECT_VERSIONS_OF_MODEL)
                    .bind(model.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                if rows.is_empty() {
                    return Err(DomainError::NotFound(format!("model {model} has no registered version")).into());
                }
                rows.into_iter().map(q::VersionRow::into_version).collect()
            }

            async fn get_version(&self, id: &FullId) -> StoreResult<Option<Version>> {
                fetch_version(&self.pool, id).await
            }

            async fn version_detail(&self, id: &FullId) -> StoreResult<Option<VersionDetail>> {
                let Some(version) = fetch_version(&self.pool, id).await? else {
                    return Ok(None);
                };
                let stage_history = sqlx::query_as::<_, q::LedgerRow>(q::SELECT_STAGE_EVENTS)
                    .bind(id.model_id.as_str())
                    .bind(id.version.as_str())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| row.into_event().and_then(q::stage_change))
                    .collect::<StoreResult<Vec<_>>>()?;
                let retires_at = (version.stage == Stage::Deprecated)
                    .then(|| lifecycle::retires_at(version.stage_since, self.settings.deprecation_days));
                let pinned_in = fetch_pinned_in(&self.pool, id).await?;
                Ok(Some(VersionDetail { version, stage_history, retires_at, pinned_in }))
            }

            async fn change_stage(
                &self,
                id: &FullId,
                to: Stage,
                via: MoveVia,
                reason: Option<&str>,
                actor: &str,
                at: Timestamp,
            ) -> StoreResult<Version> {
                let days = self.settings.deprecation_days;
                let mut w = Writer::begin(&self.pool).await?;
                let v = fetch_version(&mut *w.tx, id).await?.ok_or_else(|| q::not_found_version(id))?;
                let ctx = q::move_context(&v, via, at, days, reason);
                lifecycle::check_move(v.stage, to, &ctx)?;
                let details = match to {
                    Stage::Retired => json!({ "early": at < lifecycle::retires_at(v.stage_since, days) }),
                    _ => json!({}),
                };
                let moved = w.move_stage(&v, to, reason, actor, at, details).await?;
                if to == Stage::Production {
                    // In the same transaction, so no reader sees two production versions.
                    let previous = fetch_versions(q::SELECT_OTHER_PRODUCTION_VERSIONS)
                        .bind(id.model_id.as_str())
                        .bind(id.version.as_str())
                        .fetch_all(&mut *w.tx)
                        .await?;
                    let why = format!("superseded by {id}");
                    for row in previous {
                        let prev = row.into_version()?;
                        let ctx = q::move_context(&prev, MoveVia::Superseded, at, days, Some(&why));
                        lifecycle::check_move(prev.stage, Stage::Deprecated, &ctx)?;
                        let details = json!({ "superseded_by": id.to_string() });
                        w.move_stage(&prev, Stage::Deprecated, Some(&why), actor, at, details).await?;
                    }
                }
                w.commit().await?;
                Ok(moved)
            }

            async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
                let envs = sqlx::query_as::<_, q::EnvRow>(q::SELECT_ENVIRONMENTS)
                    .fetch_all(&self.pool)
                    .await?;
                let pins = sqlx::query_as::<_, q::PinRow>(q::SELECT_ALL_PINS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::PinRow::into_pin)
                    .collect::<StoreResult<Vec<_>>>()?;
                envs.into_iter()
                    .map(|env| {
                        Ok(Environment {
                            policy: env.policy()?,
                            pins: pins.iter().filter(|p| p.environment == env.name).cloned().collect(),
                            name: env.name,
                        })
                    })
                    .collect()
            }

            async fn set_pin(&self, env: &str, id: &FullId, reason: Option<&str>, actor: &str, at: Timestamp) -> StoreResult<Pin> {
                let mut w = Writer::begin(&self.pool).await?;
                let policy = fetch_policy(&mut *w.tx, env).await?;
                let v = fetch_version(&mut *w.tx, id).await?.ok_or_else(|| q::not_found_version(id))?;
                policy.check_pin(env, id, v.stage)?;
                let previous = fetch_pin(&mut *w.tx, env, &id.model_id).await?;
                if let Some(pin) = previous.as_ref().filter(|p| p.version == id.version) {
                    // Already pinned there: nothing changes, so nothing is recorded.
                    return Ok(pin.clone());
                }
                let ev = w
                    .append(
                        NewEvent::new(at, actor, action::PIN_CHANGED)
                            .full_id(id)
                            .environment(env)
                            .reason(reason)
                            .details(json!({
                                "from": previous.map(|p| p.version),
                                "to": id.version,
                            })),
                    )
                    .await?;
                sqlx::query(q::UPSERT_PIN)
                    .bind(env)
                    .bind(id.model_id.as_str())
                    .bind(id.version.as_str())
                    .bind(at.micros())
                    .bind(actor)
                    .bind(reason)
                    .bind(ev.id)
                    .execute(&mut *w.tx)
                    .await?;
                let subject = Subject::Pin { environment: env.to_owned(), model_id: id.model_id.to_string() };
                w.record_state(subject, at, ev.id, id.version.as_str()).await?;
                w.commit().await?;
                Ok(Pin {
                    environment: env.to_owned(),
                    model_id: id.model_id.clone(),
                    version: id.version.clone(),
                    full_id: id.clone(),
                    stage: v.stage,
                    since: at,
                    set_by: actor.to_owned(),
                    reason: reason.map(str::to_owned),
                    event_id: ev.id,
                })
            }

            async fn resolve(&self, reference: &VersionRef, env: &str) -> StoreResult<Resolved> {
                let policy = fetch_policy(&self.pool, env).await?;
                let candidate = match reference {
                    VersionRef::Latest(_) if !policy.allow_latest => None,
                    VersionRef::Exact(id) => fetch_version(&self.pool, id).await?,
                    VersionRef::Pinned(model) => fetch_versions(q::SELECT_PINNED_VERSION)
                        .bind(env)
                        .bind(model.as_str())
                        .fetch_optional(&self.pool)
                        .await?
                        .map(q::VersionRow::into_version)
                        .transpose()?,
                    VersionRef::Latest(model) => fetch_versions(q::SELECT_LATEST_VERSION)
                        .bind(model.as_str())
                        .fetch_optional(&self.pool)
                        .await?
                        .map(q::VersionRow::into_version)
                        .transpose()?,
                };
                Ok(switchyard_domain::resolve::decide(reference, env, &policy, candidate.as_ref())?)
            }

            async fn insert_request_records(&self, records: &[RequestRecord]) -> StoreResult<u64> {
                if records.is_empty() {
                    return Ok(0);
                }
                self.insert_records(records).await
            }

            async fn request_lookup(&self, request_id: &str) -> StoreResult<Option<RequestLookup>> {
                let Some(row) = sqlx::query_as::<_, q::RequestRecordRow>(q::SELECT_REQUEST_RECORD)
                    .bind(request_id)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let record = row.into_record()?;
                let version = fetch_version(&self.pool, &record.full_id).await?;
                let provenance = sqlx::query_as::<_, q::LedgerRow>(q::SELECT_PROVENANCE)
                    .bind(record.full_id.model_id.as_str())
                    .bind(record.full_id.version.as_str())
                    .bind(record.at.micros())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::LedgerRow::into_event)
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(Some(RequestLookup { record, version, provenance }))
            }

            async fn serving_at(&self, at: Timestamp, env: Option<&str>, model: Option<&ModelId>) -> StoreResult<ServingAt> {
                let subjects = sqlx::query_as::<_, (String, String)>(q::SELECT_PIN_SUBJECTS)
                    .bind(env)
                    .bind(model.map(ModelId::as_str))
                    .fetch_all(&self.pool)
                    .await?;
                let mut pins = Vec::with_capacity(subjects.len());
                for (environment, model_id) in subjects {
                    let key = Subject::Pin { environment: environment.clone(), model_id: model_id.clone() }.key();
                    let Some(state) = sqlx::query_as::<_, q::StateAtRow>(q::SELECT_STATE_AT)
                        .bind(&key)
                        .bind(at.micros())
                        .fetch_optional(&self.pool)
                        .await?
                    else {
                        continue; // not pinned yet at `at`
                    };
                    let next_change = sqlx::query_scalar::<_, i64>(q::SELECT_NEXT_STATE)
                        .bind(&key)
                        .bind(at.micros())
                        .fetch_optional(&self.pool)
                        .await?
                        .map(Timestamp::from_micros);
                    let full_id = state.pinned_full_id(&model_id)?;
                    pins.push(PinAt {
                        environment,
                        model_id: full_id.model_id.clone(),
                        full_id,
                        since: Timestamp::from_micros(state.valid_from),
                        event_id: state.event_id,
                        actor: state.actor,
                        reason: state.reason,
                        next_change,
                    });
                }
                Ok(ServingAt { at, pins })
            }

            async fn audit_page(&self, query: &AuditQuery) -> StoreResult<AuditPage> {
                let (sql, args, limit) = q::audit_statement(query)?;
                let mut statement = sqlx::query_as::<_, q::LedgerRow>(&sql);
                for arg in args {
                    statement = match arg {
                        Arg::Int(i) => statement.bind(i),
                        Arg::Text(s) => statement.bind(s),
                    };
                }
                let mut events = statement
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::LedgerRow::into_event)
                    .collect::<StoreResult<Vec<_>>>()?;
                let next_cursor = (events.len() > limit).then(|| {
                    events.truncate(limit);
                    events.last().map(|e| e.id.to_string())
                });
                Ok(AuditPage { events, next_cursor: next_cursor.flatten() })
            }

            async fn audit_verify(&self) -> StoreResult<VerifyReport> {
                // The head is read first and the walk stops at it, so events
                // appended meanwhile by other writers are not mistaken for tampering.
                let head = sqlx::query_as::<_, (i64, String)>(q::SELECT_HEAD)
                    .fetch_optional(&self.pool)
                    .await?;
                let end = head.as_ref().map_or(i64::MAX, |(id, _)| *id);
                let mut walk = q::ChainWalk::new();
                loop {
                    let rows = sqlx::query_as::<_, q::LedgerRow>(q::SELECT_EVENTS_PAGE)
                        .bind(walk.last_id())
                        .bind(end)
                        .bind(q::VERIFY_PAGE)
                        .fetch_all(&self.pool)
                        .await?;
                    let full_page = rows.len() as i64 == q::VERIFY_PAGE;
                    for row in rows {
                        walk.check(row);
                        if walk.is_done() {
                            break;
                        }
                    }
                    if walk.is_done() || !full_page {
                        break;
                    }
                }
                Ok(walk.finish(head))
            }

            async fn retire_due(&self, now: Timestamp) -> StoreResult<RetireReport> {
                let deprecated_by = now.plus_days(-i64::from(self.settings.deprecation_days));
                let due = sqlx::query_as::<_, (String, String)>(q::SELECT_DEPRECATED_SINCE)
                    .bind(deprecated_by.micros())
                    .fetch_all(&self.pool)
                    .await?;
                let mut report = RetireReport::default();
                for (model_id, version) in due {
                    let id = q::stored_full_id(&model_id, &version)?;
                    self.retire_one(&id, now, &mut report).await?;
                }
                Ok(report)
            }
        }
      }
    };
}
pub(crate) use sql_store;

/// A row of `SELECT_MODELS`.
pub(crate) fn model_summary(
    (model_id, count, updated_at, latest, production): (
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
    ),
) -> StoreResult<switchyard_domain::types::ModelSummary> {
    let version_name = |v: String| {
        VersionName::parse(&v).map_err(|_| {
            corrupt(format_args!(
                "stored version {v:?} of {model_id} is not valid"
            ))
        })
    };
    Ok(switchyard_domain::types::ModelSummary {
        model_id: ModelId::parse(&model_id)
            .map_err(|_| corrupt(format_args!("stored model id {model_id:?} is not valid")))?,
        version_count: u64::try_from(count).map_err(|_| corrupt("negative version count"))?,
        latest_version: latest.map(version_name).transpose()?,
        production_version: production.map(version_name).transpose()?,
        updated_at: Timestamp::from_micros(updated_at),
    })
}
