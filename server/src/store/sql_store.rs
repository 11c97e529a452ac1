//! The `Store` implementation both backends share, written once.
//!
//! [`sql_store!`] expands to the implementation for one concrete sqlx
//! database type, running the statements of `sql.rs`. A macro over the two
//! concrete types, because with sqlx's generic `Database` the bounds on
//! encoding, decoding and executors would have to be repeated on every
//! function (Rust does not imply them).
//!
//! Every writing method goes through a `Writer`: its first statement locks the
//! ledger head, then come the domain checks, the change, its ledger events and
//! state history, and finally the head moves and the transaction commits.

use switchyard_domain::types::VerifyReport;

use super::sql::LedgerRow;

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

/// The turn of this process's writers on SQLite, one at a time, in arrival
/// order. SQLite has one writer; without this, a writing transaction that
/// meets another (the delivery worker's claim or record, another request)
/// is put to sleep by SQLite's busy handler, 1, 2, 5, 10… ms at a time, however
/// soon the other commits (with subscriptions active, the worker's claim and
/// record meet every other write). Waiting here instead wakes each writer the
/// moment the one before it is done. Correctness never rests on it: the
/// database's write lock still serialises writers (and other processes, which
/// still meet the busy handler). PostgreSQL's writers queue on row locks and
/// need no gate.
pub(crate) struct WriteGate(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

/// Longest wait for the turn; after it the writer goes ahead and SQLite's
/// own lock decides (a writer holding the turn never waits for itself forever).
const GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl WriteGate {
    pub(crate) fn queued() -> Self {
        WriteGate(Some(std::sync::Arc::default()))
    }

    pub(crate) fn open() -> Self {
        WriteGate(None)
    }

    /// Waits for this writer's turn; held until the guard is dropped.
    pub(crate) async fn turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let gate = self.0.clone()?;
        tokio::time::timeout(GATE_WAIT, gate.lock_owned())
            .await
            .ok()
    }
}

/// Implements `Store` for `$store`, in a child module `shared` of the
/// backend's module so that it can reach the backend's private parts: the
/// fields `pool: sqlx::Pool<$db>`, `settings: StoreSettings`, `cache:
/// Arc<ReadCache>`, `temporal: tokio::sync::RwLock<TemporalIndex>` and
/// `writes: WriteGate`, the method
/// `insert_records(&self, &[RequestRecord]) -> StoreResult<u64>` and the
/// static `MIGRATOR`.
macro_rules! sql_store {
    ($store:ident, $db:ty, $backend:ident) => {
      mod shared {
        use super::{$store, MIGRATOR};
        use $crate::store::sql::{self as q, Arg};
        use $crate::store::sql_store::ChainWalk;
        use $crate::store::temporal::{ClusterMetaRow, HistoryRow, TemporalIndex};
        use $crate::store::{
            AuditQuery, Backend, ImportItem, Registered, RetireReport, Store, StoreResult,
        };
        use serde_json::json;
        use switchyard_domain::history::Subject;
        use switchyard_domain::ledger::{action, LedgerEvent, NewEvent};
        use switchyard_domain::lifecycle::{self, MoveVia};
        use switchyard_domain::policy::EnvPolicy;
        use switchyard_domain::types::{
            AuditPage, Environment, ModelHistory, ModelSummary, NewVersion, Pin, RequestLookup,
            RequestRecord, Resolved, ServingAt, Version, VersionDetail, VerifyReport,
        };
        use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp, VersionRef};

        /// A writing transaction that holds the ledger head: events appended
        /// through it get contiguous ids, and the head moves on commit.
        pub(super) struct Writer {
            pub(super) tx: sqlx::Transaction<'static, $db>,
            first_id: i64,
            last_id: i64,
            last_hash: String,
            cache: std::sync::Arc<$crate::store::cache::ReadCache>,
            /// The subscriptions and their filters, read (under the head lock)
            /// at the first event appended: every event gets its deliveries in
            /// its own transaction (the outbox).
            subscribers: Option<Vec<(i64, $crate::store::notify::Filter)>>,
            /// Deliveries were written: wake this process's delivery worker on commit.
            enqueued: bool,
            /// This process's turn to write (SQLite), until commit or drop.
            _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
        }

        impl Writer {
            pub(super) async fn begin(store: &$store) -> StoreResult<Writer> {
                let turn = store.writes.turn().await;
                let mut tx = store.pool.begin().await?;
                let (last_id, last_hash) = sqlx::query_as::<_, (i64, String)>(q::LOCK_HEAD)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok(Writer {
                    tx,
                    first_id: last_id,
                    last_id,
                    last_hash,
                    cache: store.cache.clone(),
                    subscribers: None,
                    enqueued: false,
                    _turn: turn,
                })
            }

            pub(super) async fn append(&mut self, event: NewEvent) -> StoreResult<LedgerEvent> {
                let token = crate::store::token_in_use();
                let ev = event.via_token(token.as_deref()).seal(self.last_id + 1, &self.last_hash);
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
                self.enqueue_deliveries(&ev).await?;
                Ok(ev)
            }

            /// Writes a pending delivery of `ev` for every subscription whose filter admits it.
            async fn enqueue_deliveries(&mut self, ev: &LedgerEvent) -> StoreResult<()> {
                if self.subscribers.is_none() {
                    let rows: Vec<(i64, String)> = sqlx::query_as($crate::store::notify_sql::SELECT_SUBSCRIBERS)
                        .fetch_all(&mut *self.tx)
                        .await?;
                    let parsed = rows
                        .into_iter()
                        .map(|(id, text)| Ok((id, $crate::store::notify_sql::parse_filter(&text)?)))
                        .collect::<StoreResult<Vec<_>>>()?;
                    self.subscribers = Some(parsed);
                }
                let Some(subscribers) = self.subscribers.as_ref() else { return Ok(()) };
                let message_id = format!("evt_{}", ev.id);
                // A delivery's own failure is not sent to the subscription that failed.
                let about = $crate::store::notify::about_subscription(ev);
                let to: Vec<i64> = subscribers
                    .iter()
                    .filter(|(id, f)| f.admits(ev) && about != Some(*id))
                    .map(|(id, _)| *id)
                    .collect();
                if to.is_empty() {
                    return Ok(());
                }
                // One statement for all of them: the write path pays one round trip per event.
                let sql = $crate::store::notify_sql::insert_deliveries(to.len());
                let mut insert = sqlx::query(&sql).bind(ev.id).bind(&message_id).bind(Timestamp::now().micros());
                for subscription in to {
                    insert = insert.bind(subscription);
                }
                insert.execute(&mut *self.tx).await?;
                self.enqueued = true;
                Ok(())
            }

            /// Subscriptions were added or removed in this transaction: read them again at the next event.
            pub(super) fn subscribers_changed(&mut self) {
                self.subscribers = None;
            }

            pub(super) async fn record_state(&mut self, subject: Subject, at: Timestamp, event_id: i64, value: &str) -> StoreResult<()> {
                sqlx::query(q::INSERT_STATE)
                    .bind(subject.key())
                    .bind(at.micros())
                    .bind(event_id)
                    .bind(value)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            /// Moves the head and commits; when events were appended, tells
            /// this process's cache at once and other processes by `NOTIFY`
            /// (PostgreSQL delivers it on commit; SQLite servers poll the head).
            pub(super) async fn commit(mut self) -> StoreResult<()> {
                sqlx::query(q::UPDATE_HEAD)
                    .bind(self.last_id)
                    .bind(&self.last_hash)
                    .execute(&mut *self.tx)
                    .await?;
                let changed = self.last_id != self.first_id;
                if changed && Backend::$backend == Backend::Postgres {
                    sqlx::query(q::NOTIFY_CHANGE).bind(self.last_id.to_string()).execute(&mut *self.tx).await?;
                }
                self.tx.commit().await?;
                if changed {
                    self.cache.changed();
                }
                if self.enqueued {
                    $crate::store::notify::DELIVERIES_WRITTEN.notify_waiters();
                }
                Ok(())
            }

            /// Moves `v` to `to` (already allowed by `check_move`) and records
            /// it: `stage.changed`, the deprecation or retirement event with
            /// `details`, and the stage's state history.
            pub(super) async fn move_stage(
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

            /// `move_stage`, and when `to` is production also deprecates the
            /// model's previous production version, in the same transaction so
            /// no reader sees two production versions.
            #[allow(clippy::too_many_arguments)]
            pub(super) async fn move_stage_superseding(
                &mut self,
                v: &Version,
                to: Stage,
                reason: Option<&str>,
                actor: &str,
                at: Timestamp,
                details: serde_json::Value,
                days: u32,
            ) -> StoreResult<Version> {
                let moved = self.move_stage(v, to, reason, actor, at, details).await?;
                if to == Stage::Production {
                    let previous = fetch_versions(q::SELECT_OTHER_PRODUCTION_VERSIONS)
                        .bind(v.model_id.as_str())
                        .bind(v.version.as_str())
                        .fetch_all(&mut *self.tx)
                        .await?;
                    let why = format!("superseded by {}", v.full_id);
                    for row in previous {
                        let prev = row.into_version()?;
                        let ctx = q::move_context(&prev, MoveVia::Superseded, at, days, Some(&why));
                        lifecycle::check_move(prev.stage, Stage::Deprecated, &ctx)?;
                        let details = json!({ "superseded_by": v.full_id.to_string() });
                        self.move_stage(&prev, Stage::Deprecated, Some(&why), actor, at, details).await?;
                    }
                }
                Ok(moved)
            }

            /// Inserts a new version in development with its `version.registered`
            /// event (plus `import` in its details when imported) and stage history.
            pub(super) async fn insert_version(
                &mut self,
                new: NewVersion,
                actor: &str,
                at: Timestamp,
                import: Option<&serde_json::Value>,
            ) -> StoreResult<Version> {
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
                    .execute(&mut *self.tx)
                    .await?;
                let mut details = json!({
                    "config_hash": v.config_hash,
                    "artifact_uri": v.artifact_uri,
                    "stage": v.stage,
                });
                if let Some(import) = import {
                    details["import"] = import.clone();
                }
                let ev = self
                    .append(
                        NewEvent::new(at, actor, action::VERSION_REGISTERED)
                            .full_id(&v.full_id)
                            .details(details),
                    )
                    .await?;
                let subject = Subject::Stage { full_id: v.full_id.to_string() };
                self.record_state(subject, at, ev.id, v.stage.as_str()).await?;
                Ok(v)
            }

            /// Pins `v` (already checked against the policy) in `env` and
            /// records it; pinning what is already pinned records nothing.
            pub(super) async fn pin(&mut self, env: &str, v: &Version, reason: Option<&str>, actor: &str, at: Timestamp) -> StoreResult<Pin> {
                let id = &v.full_id;
                let previous = fetch_pin(&mut *self.tx, env, &id.model_id).await?;
                if let Some(pin) = previous.as_ref().filter(|p| p.version == id.version) {
                    return Ok(pin.clone());
                }
                let ev = self
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
                    .execute(&mut *self.tx)
                    .await?;
                let subject = Subject::Pin { environment: env.to_owned(), model_id: id.model_id.to_string() };
                self.record_state(subject, at, ev.id, id.version.as_str()).await?;
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
        }

        /// The applied promotion `sql` finds for `full_id` in `env` at `at`
        /// (`q::SELECT_PIN_PROMOTION`: applied at that instant;
        /// `q::SELECT_PROMOTION_IN_FORCE`: the last applied by then), with its
        /// approvers (their groups then, and who they are at the identity
        /// provider), the policy in force and its requirements as met.
        async fn promotion_behind<'e, E>(
            db: E,
            sql: &'static str,
            env: &str,
            full_id: &FullId,
            at: Timestamp,
        ) -> StoreResult<Option<switchyard_domain::types::PinPromotion>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            type Row = (
                i64, String, String, String, i64, Option<String>, Option<String>,
                Option<String>, Option<String>, Option<String>, Option<String>,
            );
            let rows: Vec<Row> = sqlx::query_as(sql)
                .bind(env)
                .bind(full_id.model_id.as_str())
                .bind(full_id.version.as_str())
                .bind(at.micros())
                .fetch_all(db)
                .await?;
            let Some((id, requested_by, _, _, _, policy, requirements, ..)) = rows.first() else {
                return Ok(None);
            };
            let corrupt = |what: &str, e: serde_json::Error| {
                $crate::store::StoreError::Corrupt(format!("promotion {id} has an unreadable {what}: {e}"))
            };
            let policy = policy
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt("policy", e))?;
            let requirements = requirements
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt("requirements", e))?
                .unwrap_or_default();
            let approvers = rows
                .iter()
                .map(|(_, _, a, groups, at, _, _, issuer, subject, name, email)| {
                    Ok(switchyard_domain::types::PinApprover {
                        username: a.clone(),
                        groups: serde_json::from_str(groups).map_err(|e| corrupt("approver groups", e))?,
                        at: Timestamp::from_micros(*at),
                        sso: issuer.clone().zip(subject.clone()).map(|(issuer, subject)| {
                            switchyard_domain::types::SsoIdentity {
                                issuer,
                                subject,
                                name: name.clone(),
                                email: email.clone(),
                            }
                        }),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some(switchyard_domain::types::PinPromotion {
                id: *id,
                requested_by: requested_by.clone(),
                approved_by: rows.iter().map(|(_, _, a, ..)| a.clone()).collect(),
                approvers,
                policy,
                requirements,
            }))
        }

        pub(super) async fn fetch_version<'e, E>(db: E, id: &FullId) -> StoreResult<Option<Version>>
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

        pub(super) async fn fetch_policy<'e, E>(db: E, env: &str) -> StoreResult<EnvPolicy>
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

        pub(super) async fn fetch_pin<'e, E>(db: E, env: &str, model: &ModelId) -> StoreResult<Option<Pin>>
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

        $crate::store::clusters_sql::cluster_sql!($store, $db, $backend);
        $crate::store::notify_sql::notify_sql!($store, $db, $backend);

        fn fetch_versions<'q>(
            sql: &'q str,
        ) -> sqlx::query::QueryAs<'q, $db, q::VersionRow, <$db as sqlx::Database>::Arguments<'q>> {
            sqlx::query_as::<_, q::VersionRow>(sql)
        }

        impl $store {
            /// Reads the ledger head every `every`: a move empties the cache,
            /// and each read vouches for it a little longer. Returns only on error.
            pub(super) async fn poll_head(&self, every: std::time::Duration) -> StoreResult<()> {
                let mut last = None;
                loop {
                    let checked_at = std::time::Instant::now();
                    let head: Option<i64> = sqlx::query_scalar(q::SELECT_HEAD_ID).fetch_optional(&self.pool).await?;
                    if last != Some(head) {
                        self.cache.changed();
                        last = Some(head);
                    }
                    self.cache.vouch(checked_at);
                    tokio::time::sleep(every).await;
                }
            }

            /// Whether `sql` (one `$1` parameter) finds a row for `value`.
            async fn exists(&self, sql: &str, value: &str) -> StoreResult<Option<i32>> {
                Ok(sqlx::query_scalar::<_, i32>(sql).bind(value).fetch_optional(&self.pool).await?)
            }

            /// The temporal index with every state row of the events up to the
            /// ledger head as read now: loaded on first use, then caught up with
            /// the rows of the events after the last one applied (ids commit in
            /// order under the head lock, so none can be missed; see `store/temporal.rs`).
            async fn temporal_at_head(&self) -> StoreResult<tokio::sync::RwLockReadGuard<'_, TemporalIndex>> {
                let head: i64 = sqlx::query_scalar(q::SELECT_HEAD_ID).fetch_one(&self.pool).await?;
                {
                    let index = self.temporal.read().await;
                    if index.applied().is_some_and(|applied| applied >= head) && !index.metadata_stale() {
                        return Ok(index);
                    }
                }
                let mut index = self.temporal.write().await;
                let loading = index.applied().is_none();
                if index.applied().is_none_or(|applied| applied < head) {
                    let rows = sqlx::query_as::<_, HistoryRow>(q::SELECT_HISTORY_BETWEEN)
                        .bind(index.applied().unwrap_or(0))
                        .bind(head)
                        .fetch_all(&self.pool)
                        .await?;
                    index.apply(rows, head);
                }
                if index.metadata_stale() {
                    let environments = sqlx::query_scalar::<_, String>(q::SELECT_ENVIRONMENT_ORDER)
                        .fetch_all(&self.pool)
                        .await?;
                    let clusters = sqlx::query_as::<_, ClusterMetaRow>(q::SELECT_CLUSTER_META)
                        .fetch_all(&self.pool)
                        .await?;
                    index.set_metadata(environments, clusters);
                }
                if loading {
                    let f = index.footprint();
                    tracing::info!(head, subjects = f.subjects, entries = f.entries, bytes = f.bytes, "temporal index loaded");
                }
                Ok(tokio::sync::RwLockWriteGuard::downgrade(index))
            }

            /// `resolve` straight from the database: the policy, then the candidate version.
            async fn resolve_uncached(&self, reference: &VersionRef, env: &str) -> StoreResult<Resolved> {
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

            /// Retires `id` or flags it as held, in its own transaction, if
            /// it is still deprecated and due (another server may have got there first).
            async fn retire_one(&self, id: &FullId, now: Timestamp, report: &mut RetireReport) -> StoreResult<()> {
                let mut w = Writer::begin(self).await?;
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
                let mut w = Writer::begin(self).await?;
                if let Some(existing) = fetch_version(&mut *w.tx, &new.full_id).await? {
                    return match q::registration_conflict(&existing, &new) {
                        None => Ok(Registered { version: existing, created: false }),
                        Some(why) => Err(DomainError::Conflict(why).into()),
                    };
                }
                let v = w.insert_version(new, actor, at, None).await?;
                w.commit().await?;
                Ok(Registered { version: v, created: true })
            }

            async fn import_version(&self, item: ImportItem, actor: &str, at: Timestamp) -> StoreResult<Registered> {
                let days = self.settings.deprecation_days;
                let mut w = Writer::begin(self).await?;
                if let Some(existing) = fetch_version(&mut *w.tx, &item.new.full_id).await? {
                    return match q::registration_conflict(&existing, &item.new) {
                        None => Ok(Registered { version: existing, created: false }),
                        Some(why) => Err(DomainError::Conflict(why).into()),
                    };
                }
                let mut v = w.insert_version(item.new, actor, at, Some(&item.details)).await?;
                let reason = Some(item.reason.as_str());
                for to in item.stages {
                    let details = json!({ "import": item.details });
                    v = w.move_stage_superseding(&v, to, reason, actor, at, details, days).await?;
                }
                for env in &item.pins {
                    let policy = fetch_policy(&mut *w.tx, env).await?;
                    policy.check_pin(env, &v.full_id, v.stage)?;
                    w.pin(env, &v, reason, actor, at).await?;
                }
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

            async fn model_history(&self, model: &ModelId) -> StoreResult<ModelHistory> {
                let events = sqlx::query_as::<_, q::LedgerRow>(q::SELECT_MODEL_HISTORY)
                    .bind(model.as_str())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::LedgerRow::into_event)
                    .collect::<StoreResult<Vec<_>>>()?;
                q::model_history(model, events)
            }

            async fn versions_page(&self, model: &ModelId, page: u32, per_page: u32) -> StoreResult<switchyard_domain::types::VersionsPage> {
                let (count, first): (i64, Option<i64>) = sqlx::query_as(q::COUNT_VERSIONS_OF_MODEL)
                    .bind(model.as_str())
                    .fetch_one(&self.pool)
                    .await?;
                let Some(first) = first.filter(|_| count > 0) else {
                    return Err(DomainError::NotFound(format!("model {model} has no registered version")).into());
                };
                let total = u32::try_from(count).unwrap_or(u32::MAX);
                let info = switchyard_domain::paging::locate(total, page, per_page, "versions")?;
                let versions = fetch_versions(q::SELECT_VERSIONS_PAGE)
                    .bind(model.as_str())
                    .bind(i64::from(info.per_page))
                    .bind(i64::from(info.skip()))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::VersionRow::into_version)
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(switchyard_domain::types::VersionsPage {
                    versions,
                    page: info,
                    first_registered: Timestamp::from_micros(first),
                })
            }

            async fn model_history_between(&self, model: &ModelId, start: Timestamp, end: Timestamp) -> StoreResult<ModelHistory> {
                let events = sqlx::query_as::<_, q::LedgerRow>(q::SELECT_MODEL_HISTORY_BETWEEN)
                    .bind(model.as_str())
                    .bind(start.micros())
                    .bind(end.micros())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::LedgerRow::into_event)
                    .collect::<StoreResult<Vec<_>>>()?;
                q::model_history(model, events)
            }

            async fn clusters_serving(
                &self,
                model: &ModelId,
                start: Timestamp,
                end: Timestamp,
            ) -> StoreResult<Vec<switchyard_domain::types::ClusterServing>> {
                self.temporal_at_head().await?.clusters_serving(model, start, end)
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
                let mut w = Writer::begin(self).await?;
                let v = fetch_version(&mut *w.tx, id).await?.ok_or_else(|| q::not_found_version(id))?;
                let ctx = q::move_context(&v, via, at, days, reason);
                lifecycle::check_move(v.stage, to, &ctx)?;
                let details = match to {
                    Stage::Retired => json!({ "early": at < lifecycle::retires_at(v.stage_since, days) }),
                    _ => json!({}),
                };
                let moved = w.move_stage_superseding(&v, to, reason, actor, at, details, days).await?;
                w.commit().await?;
                Ok(moved)
            }

            async fn environment_names(&self) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar::<_, String>(q::SELECT_ENVIRONMENT_ORDER).fetch_all(&self.pool).await?)
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
                let mut w = Writer::begin(self).await?;
                let policy = fetch_policy(&mut *w.tx, env).await?;
                let v = fetch_version(&mut *w.tx, id).await?.ok_or_else(|| q::not_found_version(id))?;
                policy.check_pin(env, id, v.stage)?;
                let pin = w.pin(env, &v, reason, actor, at).await?;
                w.commit().await?;
                Ok(pin)
            }

            async fn resolve(&self, reference: &VersionRef, env: &str) -> StoreResult<Resolved> {
                use $crate::store::cache::Lookup;
                let key = reference.to_string();
                let epoch = match self.cache.resolve(&key, env) {
                    Lookup::Hit(answer) => return answer.map_err(Into::into),
                    Lookup::Miss(epoch) => Some(epoch),
                    Lookup::Bypass => None,
                };
                let answer = self.resolve_uncached(reference, env).await;
                if let Some(epoch) = epoch {
                    // Rules' answers (404, 410, 422) are cached too; database errors are not.
                    match &answer {
                        Ok(r) => self.cache.put_resolve(epoch, &key, env, Ok(r.clone())),
                        Err($crate::store::StoreError::Domain(e)) => self.cache.put_resolve(epoch, &key, env, Err(e.clone())),
                        Err(_) => {}
                    }
                }
                answer
            }

            async fn watch_changes(&self) -> StoreResult<()> {
                self.watch().await
            }

            async fn insert_request_records(&self, records: &[RequestRecord]) -> StoreResult<u64> {
                if records.is_empty() {
                    return Ok(0);
                }
                self.insert_records(records).await
            }

            async fn check_request_records(&self, records: &[RequestRecord], now: Timestamp) -> StoreResult<$crate::store::RecordCheck> {
                use std::collections::HashMap;
                use switchyard_domain::records as rr;
                let begins: Option<i64> = sqlx::query_scalar(q::SELECT_LEDGER_BEGINS).fetch_one(&self.pool).await?;
                let begins = begins.map(Timestamp::from_micros);
                // The batch's distinct versions in one query per 200 (the hot
                // path: a batch names few versions); clusters from the temporal index.
                let mut distinct: Vec<&FullId> = records.iter().map(|r| &r.full_id).collect();
                distinct.sort_unstable_by(|a, b| (a.model_id.as_str(), a.version.as_str()).cmp(&(b.model_id.as_str(), b.version.as_str())));
                distinct.dedup();
                let mut versions: HashMap<(String, String), (Stage, Timestamp)> = HashMap::new();
                for chunk in distinct.chunks(200) {
                    let sql = q::select_stages(chunk.len());
                    let mut select = sqlx::query_as::<_, (String, String, String, i64)>(&sql);
                    for v in chunk {
                        select = select.bind(v.model_id.as_str()).bind(v.version.as_str());
                    }
                    for (model_id, version, stage, since) in select.fetch_all(&self.pool).await? {
                        let stage = q::stored_stage(&stage)?;
                        versions.insert((model_id, version), (stage, Timestamp::from_micros(since)));
                    }
                }
                let index = self.temporal_at_head().await?;
                let mut check = $crate::store::RecordCheck::default();
                for (i, r) in records.iter().enumerate() {
                    let stage = versions
                        .get(&(r.full_id.model_id.to_string(), r.full_id.version.to_string()))
                        .copied();
                    let known_cluster = index.has_cluster(&r.cluster);
                    let verdict = rr::check_record_time(r.at, now, begins)
                        .and_then(|()| rr::check_record_version(&r.full_id, r.at, stage))
                        .and_then(|()| if known_cluster {
                            Ok(())
                        } else {
                            Err(DomainError::Invalid(format!(
                                "field \"cluster\": {:?} is not a cluster Switchyard manages",
                                r.cluster
                            )))
                        });
                    if let Err(e) = verdict {
                        check.refused.push((i, e.to_string()));
                        continue;
                    }
                    let slot: switchyard_domain::clusters::SlotName = r.slot.parse()?;
                    let held = index.slot_at(&r.cluster, r.at, slot, &r.full_id)?;
                    if let Some(why) = rr::contradiction(r, held.as_ref().map(Option::as_ref)) {
                        check.flagged.push((i, why));
                    }
                }
                Ok(check)
            }

            async fn request_lookup(&self, request_id: &str) -> StoreResult<Option<RequestLookup>> {
                let sql = match Backend::$backend {
                    Backend::Sqlite => q::SELECT_REQUEST_LOOKUP_SQLITE,
                    Backend::Postgres => q::SELECT_REQUEST_LOOKUP_POSTGRES,
                };
                let Some(row) = sqlx::query_as::<_, q::RequestLookupRow>(sql)
                    .bind(request_id)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let provenance = row.events()?;
                let cluster_known = row.cluster_known == 1;
                let (record, version) = row.record.into_parts()?;
                let notice = (!cluster_known).then(|| format!(
                    "cluster {:?} is not one Switchyard manages: no operation of it is known, and the events shown concern the version only",
                    record.cluster
                ));
                let environment = match cluster_known {
                    true => sqlx::query_scalar::<_, String>(q::SELECT_CLUSTER_ENVIRONMENT)
                        .bind(&record.cluster)
                        .fetch_optional(&self.pool)
                        .await?,
                    false => None,
                };
                let promotion = match &environment {
                    Some(env) => promotion_behind(
                        &self.pool,
                        q::SELECT_PROMOTION_IN_FORCE,
                        env,
                        &record.full_id,
                        record.at,
                    )
                    .await?,
                    None => None,
                };
                Ok(Some(RequestLookup { record, version, provenance, cluster_known, notice, environment, promotion, gates: None }))
            }

            async fn serving_at(&self, at: Timestamp, env: Option<&str>, model: Option<&ModelId>) -> StoreResult<ServingAt> {
                if let Some(env) = env {
                    if self.exists(q::ENVIRONMENT_EXISTS, env).await?.is_none() {
                        return Err(DomainError::NotFound(format!("environment {env:?} does not exist")).into());
                    }
                }
                if let Some(model) = model {
                    if self.exists(q::MODEL_EXISTS, model.as_str()).await?.is_none() {
                        return Err(DomainError::NotFound(format!("model {model:?} is unknown: no version of it was ever registered")).into());
                    }
                }
                let mut answer = self.temporal_at_head().await?.serving_at(at, env, model)?;
                for pin in &mut answer.pins {
                    pin.promotion = promotion_behind(
                        &self.pool,
                        q::SELECT_PIN_PROMOTION,
                        &pin.environment,
                        &pin.full_id,
                        pin.since,
                    )
                    .await?;
                }
                let begins: Option<i64> = sqlx::query_scalar(q::SELECT_LEDGER_BEGINS).fetch_one(&self.pool).await?;
                answer.notice = switchyard_domain::history::outside_the_ledger(
                    at,
                    Timestamp::now(),
                    begins.map(Timestamp::from_micros),
                );
                Ok(answer)
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
                if let Some(a) = query.action.as_deref() {
                    if !switchyard_domain::ledger::action::ALL.contains(&a) {
                        return Err(DomainError::NotFound(format!(
                            "unknown action {a:?}: the ledger's actions are {}",
                            switchyard_domain::ledger::action::ALL.join(", ")
                        ))
                        .into());
                    }
                }
                if events.is_empty() && query.cursor.is_none() {
                    // Nothing matched: a filter value nothing ever carried is
                    // named as unknown rather than answered with an empty page.
                    for (what, sql, value) in q::audit_filter_checks(query) {
                        if self.exists(sql, value).await?.is_none() {
                            return Err(DomainError::NotFound(format!(
                                "unknown {what} {value:?}: no such {what} in the ledger"
                            ))
                            .into());
                        }
                    }
                }
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
                let mut walk = ChainWalk::new();
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

            async fn ledger_head(&self) -> StoreResult<Option<(i64, String)>> {
                Ok(sqlx::query_as::<_, (i64, String)>(q::SELECT_HEAD)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn ledger_event(
                &self,
                id: i64,
            ) -> StoreResult<(Option<switchyard_domain::ledger::LedgerEvent>, i64)> {
                let row = sqlx::query_as::<_, q::LedgerRow>(q::SELECT_EVENTS_PAGE)
                    .bind(id.saturating_sub(1))
                    .bind(id)
                    .bind(1_i64)
                    .fetch_optional(&self.pool)
                    .await?;
                let event = row.map(q::LedgerRow::into_event).transpose()?;
                let (count,) = sqlx::query_as::<_, (i64,)>(q::COUNT_EVENTS_UP_TO)
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok((event, count))
            }

            async fn ledger_period(
                &self,
                from: Timestamp,
                to: Timestamp,
            ) -> StoreResult<Option<(i64, i64)>> {
                let (first, last) = sqlx::query_as::<_, (Option<i64>, Option<i64>)>(q::SELECT_LEDGER_PERIOD)
                    .bind(from.micros())
                    .bind(to.micros())
                    .fetch_one(&self.pool)
                    .await?;
                Ok(first.zip(last).filter(|(first, last)| first <= last))
            }

            async fn ledger_events(
                &self,
                after: i64,
                up_to: i64,
                limit: i64,
            ) -> StoreResult<Vec<switchyard_domain::ledger::LedgerEvent>> {
                sqlx::query_as::<_, q::LedgerRow>(q::SELECT_EVENTS_PAGE)
                    .bind(after)
                    .bind(up_to)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::LedgerRow::into_event)
                    .collect()
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
