//! The SQL both backends share, and the mapping of its rows to domain types.
//!
//! The statements run unchanged on SQLite and PostgreSQL (`$N` placeholders,
//! integer microseconds, JSON as text); `sql_store.rs` runs them. What differs
//! per backend — connecting, migrations and the bulk insert of request
//! records — is in `sqlite.rs` and `postgres.rs`.

use std::str::FromStr;

use serde_json::{json, Value};
use switchyard_domain::ledger::{action, LedgerEvent};
use switchyard_domain::lifecycle::{MoveContext, MoveVia};
use switchyard_domain::policy::EnvPolicy;
use switchyard_domain::types::{
    Labels, ModelHistory, NewVersion, Pin, PinChange, RequestRecord, StageChange, Version,
    VersionStageChange,
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
pub(crate) const SELECT_HEAD_ID: &str = "SELECT last_id FROM ledger_head WHERE singleton = 1";
/// The channel every writing transaction notifies on PostgreSQL (payload: the new head id).
pub(crate) const CHANGES_CHANNEL: &str = "switchyard_changes";
pub(crate) const NOTIFY_CHANGE: &str = "SELECT pg_notify('switchyard_changes', $1)";

pub(crate) const INSERT_ENVIRONMENT: &str = "INSERT INTO environments \
     (name, allow_latest, required_approvals, min_stage, position) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (name) DO NOTHING";
macro_rules! policy_columns {
    () => {
        "name, allow_latest, required_approvals, min_stage, required_groups, \
         requester_group_may_approve, expiry_hours"
    };
}
pub(crate) const SELECT_POLICY: &str = concat!(
    "SELECT ",
    policy_columns!(),
    " FROM environments WHERE name = $1"
);
pub(crate) const SELECT_ENVIRONMENTS: &str = concat!(
    "SELECT ",
    policy_columns!(),
    " FROM environments ORDER BY position, name"
);
pub(crate) const UPDATE_POLICY: &str = "UPDATE environments SET allow_latest = $2, \
     required_approvals = $3, min_stage = $4, required_groups = $5, \
     requester_group_may_approve = $6, expiry_hours = $7 WHERE name = $1";

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
/// `SELECT_VERSIONS_OF_MODEL`, `$2` of them after the first `$3`.
pub(crate) const SELECT_VERSIONS_PAGE: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE model_id = $1 ORDER BY created_at DESC, version DESC LIMIT $2 OFFSET $3"
);
/// How many versions a model has, and when its first was registered.
pub(crate) const COUNT_VERSIONS_OF_MODEL: &str =
    "SELECT COUNT(*), MIN(created_at) FROM versions WHERE model_id = $1";
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
pub(crate) const INSERT_STATE: &str =
    "INSERT INTO state_history (subject, valid_from, event_id, value) VALUES ($1, $2, $3, $4)";
/// The pin, cluster (and cluster drift) rows of `state_history` of the events in (`$1`, `$2`],
/// with their event's actor and reason, and for a cluster's row its event's
/// details (which name the operation that set the state): what the temporal
/// index loads (`state_history_by_event` finds the few new rows of a catch-up).
pub(crate) const SELECT_HISTORY_BETWEEN: &str =
    "SELECT h.subject, h.valid_from, h.event_id, h.value, \
       l.actor, l.reason, \
       CASE WHEN h.subject LIKE 'cluster/%' THEN l.details END AS details \
     FROM state_history h JOIN ledger l ON l.id = h.event_id \
     WHERE h.event_id > $1 AND h.event_id <= $2 \
       AND (h.subject LIKE 'pin/%' OR h.subject LIKE 'cluster/%' OR h.subject LIKE 'removed-cluster/%' \
            OR h.subject LIKE 'cluster-drift/%')";
/// Environment names in their standard order, for the temporal index.
pub(crate) const SELECT_ENVIRONMENT_ORDER: &str =
    "SELECT name FROM environments ORDER BY position, name";
/// Every cluster's fixed columns, for the temporal index.
/// The stage (and since when) of each of `count` versions, one query:
/// `(model_id, version) IN (($1, $2), ($3, $4), …)`.
pub(crate) fn select_stages(count: usize) -> String {
    let pairs: Vec<String> = (0..count)
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    format!(
        "SELECT model_id, version, stage, stage_since FROM versions WHERE (model_id, version) IN ({})",
        pairs.join(", ")
    )
}

/// The instant of the ledger's first event (NULL when it is empty).
pub(crate) const SELECT_LEDGER_BEGINS: &str = "SELECT MIN(at) FROM ledger";

/// The applied promotion that set a pin (same environment, version and
/// instant), with its approvers in the order they approved.
/// An applied promotion of ($2, $3) in environment $1 with its approvers
/// (and who they are at the identity provider), for the decision instant
/// the caller's condition names (`$4`).
macro_rules! promotion_behind_sql {
    ($decided:literal) => {
        concat!(
            "SELECT p.id, p.requested_by, a.approver, \
             a.approver_groups, a.at, p.policy, p.applied_requirements, \
             s.issuer, s.subject, s.display_name, s.email \
             FROM promotions p JOIN promotion_approvals a ON a.promotion_id = p.id \
             LEFT JOIN sso_identities s ON s.username = a.approver \
             WHERE p.status = 'applied' AND p.environment = $1 AND p.model_id = $2 AND p.version = $3 \
             AND p.decided_at = ",
            $decided,
            " ORDER BY a.at, a.approver"
        )
    };
}
/// The promotion applied exactly at $4 (the instant a pin moved).
pub(crate) const SELECT_PIN_PROMOTION: &str = promotion_behind_sql!("$4");
/// The last promotion applied at or before $4 (what put the version a
/// request record names into its cluster's environment).
pub(crate) const SELECT_PROMOTION_IN_FORCE: &str = promotion_behind_sql!(
    "(SELECT MAX(p2.decided_at) FROM promotions p2 WHERE p2.status = 'applied' \
     AND p2.environment = $1 AND p2.model_id = $2 AND p2.version = $3 AND p2.decided_at <= $4)"
);
pub(crate) const SELECT_CLUSTER_ENVIRONMENT: &str =
    "SELECT environment FROM clusters WHERE name = $1";
pub(crate) const ENVIRONMENT_EXISTS: &str = "SELECT 1 FROM environments WHERE name = $1";
pub(crate) const MODEL_EXISTS: &str = "SELECT 1 FROM versions WHERE model_id = $1 LIMIT 1";
pub(crate) const CLUSTER_EXISTS: &str = "SELECT 1 FROM clusters WHERE name = $1";

/// A filter value of the audit log, and the query that tells whether it
/// names something that exists: a user or an actor of some event, a
/// registered model, an environment, a cluster. (Actions are a fixed list:
/// `ledger::action::ALL`.)
pub(crate) fn audit_filter_checks(
    q: &crate::store::AuditQuery,
) -> Vec<(&'static str, &'static str, &str)> {
    let mut out = Vec::new();
    for (what, sql, value) in [
        (
            "actor",
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM users WHERE username = $1) \
             OR EXISTS (SELECT 1 FROM ledger WHERE actor = $1)",
            &q.actor,
        ),
        ("model", MODEL_EXISTS, &q.model),
        ("environment", ENVIRONMENT_EXISTS, &q.environment),
        ("cluster", CLUSTER_EXISTS, &q.cluster),
    ] {
        if let Some(v) = value {
            out.push((what, sql, v.as_str()));
        }
    }
    out
}

pub(crate) const SELECT_CLUSTER_META: &str = "SELECT name, environment, driver FROM clusters";

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
/// The first event id at or after $1 and the last before $2 (`audit export`'s period).
pub(crate) const SELECT_LEDGER_PERIOD: &str =
    "SELECT (SELECT MIN(id) FROM ledger WHERE at >= $1), \
     (SELECT MAX(id) FROM ledger WHERE at < $2)";
pub(crate) const COUNT_EVENTS_UP_TO: &str = "SELECT COUNT(*) FROM ledger WHERE id <= $1";
pub(crate) const SELECT_STAGE_EVENTS: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    " FROM ledger WHERE model_id = $1 AND version = $2 \
     AND action IN ('version.registered', 'stage.changed') ORDER BY id"
);

/// A model's stage and pin events, oldest first (by `ledger_by_version`).
pub(crate) const SELECT_MODEL_HISTORY: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    " FROM ledger WHERE model_id = $1 \
     AND action IN ('version.registered', 'stage.changed', 'pin.changed') ORDER BY id"
);

/// `SELECT_MODEL_HISTORY` for a window (`$2`..=`$3`): its stage and pin
/// events inside it, and each environment's last pin event before it. Both
/// halves are ranges of `ledger_by_model_action` (migration 0024): the
/// window's events alone, then one index seek per environment — not a walk
/// over every event of the model (its operations' steps are most of them).
pub(crate) const SELECT_MODEL_HISTORY_BETWEEN: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    " FROM ledger WHERE model_id = $1 \
     AND action IN ('version.registered', 'stage.changed', 'pin.changed') \
     AND at >= $2 AND at <= $3 \
     UNION ALL SELECT ",
    ledger_columns!(),
    " FROM ledger WHERE id IN (SELECT (SELECT l.id FROM ledger l \
       WHERE l.model_id = $1 AND l.action = 'pin.changed' AND l.environment = e.name AND l.at < $2 \
       ORDER BY l.at DESC, l.id DESC LIMIT 1) FROM environments e) \
     ORDER BY id"
);

/// A request record with the version it names (NULL columns if that version
/// is not registered) and, one per row, the events of that version up to the
/// record's instant, oldest first (one row of NULL event columns if none):
/// `request_lookup` in one round trip.
/// The request lookup as one row: the record, its version, whether its
/// cluster is one Switchyard manages, and the ledger events up to the request
/// that concern its version and its cluster (events of the version with no
/// cluster, in no environment or in the cluster's environment, and the
/// cluster's own events of that version — never another cluster's) as one
/// JSON array of arrays (column order of [`LookupEvent`]), oldest first. One row rather than a row per
/// event: sqlx hands SQLite rows from its worker thread one message at a
/// time, and the version's columns are not repeated per event.
macro_rules! request_lookup_sql {
    ($events:literal) => {
        concat!(
            "SELECT r.request_id, r.at, r.cluster, r.slot, r.model_id, r.version, r.latency_ms, r.outcome, \
             v.stage AS v_stage, v.config_hash AS v_config_hash, v.config AS v_config, \
             v.artifact_uri AS v_artifact_uri, v.labels AS v_labels, v.created_at AS v_created_at, \
             v.created_by AS v_created_by, v.stage_since AS v_stage_since, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM clusters c WHERE c.name = r.cluster) THEN 1 ELSE 0 END AS BIGINT) AS cluster_known, ",
            $events,
            " AS events \
             FROM request_records r \
             LEFT JOIN versions v ON v.model_id = r.model_id AND v.version = r.version \
             WHERE r.request_id = $1"
        )
    };
}

pub(crate) const SELECT_REQUEST_LOOKUP_SQLITE: &str = request_lookup_sql!(
    "(SELECT json_group_array(json_array(l.id, l.at, l.actor, l.action, l.model_id, l.version, \
     l.environment, l.cluster, l.reason, l.details, l.prev_hash, l.hash) ORDER BY l.id) \
     FROM ledger l WHERE l.model_id = r.model_id AND l.version = r.version AND l.at <= r.at \
     AND (l.cluster = r.cluster OR (l.cluster IS NULL AND (l.environment IS NULL OR l.environment = \
     (SELECT c.environment FROM clusters c WHERE c.name = r.cluster)))))"
);

pub(crate) const SELECT_REQUEST_LOOKUP_POSTGRES: &str = request_lookup_sql!(
    "(SELECT json_agg(json_build_array(l.id, l.at, l.actor, l.action, l.model_id, l.version, \
     l.environment, l.cluster, l.reason, l.details, l.prev_hash, l.hash) ORDER BY l.id)::text \
     FROM ledger l WHERE l.model_id = r.model_id AND l.version = r.version AND l.at <= r.at \
     AND (l.cluster = r.cluster OR (l.cluster IS NULL AND (l.environment IS NULL OR l.environment = \
     (SELECT c.environment FROM clusters c WHERE c.name = r.cluster)))))"
);

/// One provenance event as the lookup's JSON carries it.
type LookupEvent = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

pub(crate) const REQUEST_RECORD_COLUMNS: &str =
    "request_id, at, cluster, slot, model_id, version, latency_ms, outcome";

/// The records of a batch whose request_id is stored with other content:
/// (index in the batch, why). `stored` holds what the database has for the
/// batch's ids (for an id repeated in the batch, the copy stored first).
pub(crate) fn record_conflicts(
    records: &[RequestRecord],
    stored: &std::collections::HashMap<String, RequestRecord>,
) -> Vec<(usize, String)> {
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let s = stored.get(&r.request_id)?;
            (s != r).then(|| {
                (
                    i,
                    format!(
                        "request_id {:?} is already stored with other content ({} on cluster {} {} slot at {}, {} ms)",
                        r.request_id,
                        s.full_id,
                        s.cluster,
                        s.slot,
                        s.at.to_rfc3339(),
                        s.latency_ms
                    ),
                )
            })
        })
        .collect()
}

/// Rows of `request_records` as a map by request_id.
pub(crate) fn records_by_id(
    rows: Vec<RequestRecordRow>,
) -> StoreResult<std::collections::HashMap<String, RequestRecord>> {
    rows.into_iter()
        .map(|row| row.into_record().map(|r| (r.request_id.clone(), r)))
        .collect()
}

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

pub(crate) fn stored_stage(s: &str) -> StoreResult<Stage> {
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
    required_groups: String,
    requester_group_may_approve: bool,
    expiry_hours: i64,
}

impl EnvRow {
    pub(crate) fn policy(&self) -> StoreResult<EnvPolicy> {
        Ok(EnvPolicy {
            allow_latest: self.allow_latest,
            required_approvals: non_negative_u32(self.required_approvals, "required_approvals")?,
            min_stage: stored_stage(&self.min_stage)?,
            required_groups: serde_json::from_str(&self.required_groups).map_err(|e| {
                corrupt(format_args!(
                    "environment {} has unreadable required_groups: {e}",
                    self.name
                ))
            })?,
            requester_group_may_approve: self.requester_group_may_approve,
            expiry_hours: non_negative_u32(self.expiry_hours, "expiry_hours")?,
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

/// One row of a subject's state history (a cluster's, for its timeline lane).
#[derive(sqlx::FromRow)]
pub(crate) struct StateAtRow {
    pub(crate) valid_from: i64,
    pub(crate) event_id: i64,
    pub(crate) value: String,
    pub(crate) actor: String,
    pub(crate) reason: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct LedgerRow {
    pub(crate) id: i64,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) model_id: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) cluster: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) details: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
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

/// A model's stage and pin events (oldest first) as its history.
pub(crate) fn model_history(
    model_id: &ModelId,
    events: Vec<LedgerEvent>,
) -> StoreResult<ModelHistory> {
    let mut history = ModelHistory {
        model_id: model_id.clone(),
        pin_changes: Vec::new(),
        stage_changes: Vec::new(),
    };
    for ev in events {
        let version = ev
            .version
            .as_deref()
            .and_then(|v| VersionName::parse(v).ok())
            .ok_or_else(|| {
                corrupt(format_args!(
                    "ledger event {} names no valid version",
                    ev.id
                ))
            })?;
        if ev.action == action::PIN_CHANGED {
            let environment = ev.environment.clone().ok_or_else(|| {
                corrupt(format_args!("ledger event {} names no environment", ev.id))
            })?;
            history.pin_changes.push(PinChange {
                environment,
                version,
                at: ev.at,
                actor: ev.actor,
                reason: ev.reason,
                event_id: ev.id,
            });
        } else {
            history.stage_changes.push(VersionStageChange {
                version,
                change: stage_change(ev)?,
            });
        }
    }
    Ok(history)
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

/// A row of `SELECT_REQUEST_WITH_VERSION`.
#[derive(sqlx::FromRow)]
pub(crate) struct RequestWithVersionRow {
    #[sqlx(flatten)]
    record: RequestRecordRow,
    v_stage: Option<String>,
    v_config_hash: Option<String>,
    v_config: Option<String>,
    v_artifact_uri: Option<String>,
    v_labels: Option<String>,
    v_created_at: Option<i64>,
    v_created_by: Option<String>,
    v_stage_since: Option<i64>,
}

impl RequestWithVersionRow {
    pub(crate) fn into_parts(self) -> StoreResult<(RequestRecord, Option<Version>)> {
        let version = match (
            self.v_stage,
            self.v_config_hash,
            self.v_config,
            self.v_created_at,
            self.v_created_by,
            self.v_stage_since,
        ) {
            (
                Some(stage),
                Some(config_hash),
                Some(config),
                Some(created_at),
                Some(created_by),
                Some(stage_since),
            ) => Some(
                VersionRow {
                    model_id: self.record.model_id.clone(),
                    version: self.record.version.clone(),
                    stage,
                    config_hash,
                    config,
                    artifact_uri: self.v_artifact_uri,
                    labels: self.v_labels,
                    created_at,
                    created_by,
                    stage_since,
                }
                .into_version()?,
            ),
            _ => None,
        };
        Ok((self.record.into_record()?, version))
    }
}

/// A row of the request lookup (`SELECT_REQUEST_LOOKUP_*`).
#[derive(sqlx::FromRow)]
pub(crate) struct RequestLookupRow {
    #[sqlx(flatten)]
    pub(crate) record: RequestWithVersionRow,
    /// 1 when the record's cluster is one Switchyard manages.
    pub(crate) cluster_known: i64,
    /// `NULL` on PostgreSQL when the version has no events yet.
    events: Option<String>,
}

impl RequestLookupRow {
    /// The provenance events, oldest first.
    pub(crate) fn events(&self) -> StoreResult<Vec<LedgerEvent>> {
        let Some(json) = self.events.as_deref() else {
            return Ok(Vec::new());
        };
        let events: Vec<LookupEvent> = serde_json::from_str(json).map_err(|e| {
            corrupt(format_args!(
                "the provenance of request {} cannot be read: {e}",
                self.record.record.request_id
            ))
        })?;
        events
            .into_iter()
            .map(
                |(
                    id,
                    at,
                    actor,
                    action,
                    model_id,
                    version,
                    environment,
                    cluster,
                    reason,
                    details,
                    prev_hash,
                    hash,
                )| {
                    LedgerRow {
                        id,
                        at,
                        actor,
                        action,
                        model_id,
                        version,
                        environment,
                        cluster,
                        reason,
                        details,
                        prev_hash,
                        hash,
                    }
                    .into_event()
                },
            )
            .collect()
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
        ("cluster", &q.cluster),
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
