//! The SQL of `NotifyStore`, shared by both backends like `sql.rs`, and the
//! macro that implements the trait inside `sql_store!`'s module (so that
//! subscription changes write their ledger events through the same `Writer`).

use switchyard_domain::Timestamp;

use super::notify::{
    ClaimedDelivery, Delivery, DeliveryStatus, DestinationKind, Filter, Subscription,
};
use super::sql::LedgerRow;
use super::{StoreError, StoreResult};

macro_rules! subscription_columns {
    () => {
        "s.id, s.name, s.kind, s.url, s.filter, s.created_at, s.created_by, s.consecutive_failures, s.paused_until, \
         s.failing_since, s.failing_reported, s.options, s.parallel"
    };
}
macro_rules! delivery_columns {
    () => {
        "d.id, d.subscription_id, d.event_id, d.message_id, d.status, d.attempts, d.created_at, \
         d.next_attempt_at, d.last_attempt_at, d.response_code, d.latency_ms, d.last_error, d.delivered_at"
    };
}
pub(crate) const SELECT_SUBSCRIPTIONS: &str = concat!(
    "SELECT ",
    subscription_columns!(),
    " FROM subscriptions s ORDER BY s.name"
);
pub(crate) const SELECT_SUBSCRIPTION: &str = concat!(
    "SELECT ",
    subscription_columns!(),
    " FROM subscriptions s WHERE s.name = $1"
);
/// What `Writer::append` matches each event against.
pub(crate) const SELECT_SUBSCRIBERS: &str = "SELECT id, filter FROM subscriptions ORDER BY id";
pub(crate) const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions \
     (name, kind, url, filter, created_at, created_by, options, parallel) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
pub(crate) const UPDATE_SUBSCRIPTION: &str =
    "UPDATE subscriptions SET url = $2, filter = $3, options = $4 WHERE id = $1";
pub(crate) const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscriptions WHERE id = $1";
pub(crate) const INSERT_SECRET: &str = "INSERT INTO subscription_secrets \
     (subscription_id, secret, created_at, expires_at) VALUES ($1, $2, $3, NULL)";
/// Older secrets sign until the overlap ends (or their own earlier expiry).
pub(crate) const EXPIRE_SECRETS: &str = "UPDATE subscription_secrets SET expires_at = $2 \
     WHERE subscription_id = $1 AND (expires_at IS NULL OR expires_at > $2)";
pub(crate) const INSERT_DELIVERY: &str = "INSERT INTO deliveries \
     (subscription_id, event_id, message_id, status, attempts, created_at, retry_since, next_attempt_at) \
     VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id";
/// One pending delivery of an event (`$1` event id, `$2` message id, `$3`
/// now) to each of `n` subscriptions (`$4`…).
pub(crate) fn insert_deliveries(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("(${}, $1, $2, 'pending', 0, $3, $3, $3)", i + 4))
        .collect();
    format!(
        "INSERT INTO deliveries (subscription_id, event_id, message_id, status, attempts, \
         created_at, retry_since, next_attempt_at) VALUES {}",
        rows.join(", ")
    )
}
pub(crate) const SELECT_DELIVERY: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM deliveries d WHERE d.id = $1"
);
pub(crate) const SELECT_DELIVERIES_OF: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM deliveries d WHERE d.subscription_id = $1 ORDER BY d.id DESC LIMIT $2"
);
pub(crate) const REDELIVER: &str = "UPDATE deliveries SET status = 'pending', retry_since = $2, \
     next_attempt_at = $2, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND status <> 'pending'";
/// A run of each ordered subscription's line: its oldest pending deliveries (at
/// most `$5`), if the subscription is not paused and each of them, and every
/// pending one before it, is due and free; so a run is sent in event order
/// and nothing of the subscription is claimable while any of its run is
/// leased. `h` is the head of the line. Driven from the subscriptions: index
/// probes (`deliveries_pending`) for each, however long the backlog (a scan
/// of every pending delivery made a backlog of 1 000 send at 26
/// deliveries/s on PostgreSQL). `$4` deliveries at most in all.
macro_rules! claimable {
    () => {
        "SELECT d.id FROM subscriptions s \
         JOIN deliveries h ON h.id = (SELECT MIN(e.id) FROM deliveries e \
                                      WHERE e.subscription_id = s.id AND e.status = 'pending') \
         JOIN deliveries d ON d.subscription_id = s.id AND d.status = 'pending' \
              AND d.id IN (SELECT f.id FROM deliveries f WHERE f.subscription_id = s.id \
                           AND f.status = 'pending' ORDER BY f.id LIMIT $5) \
         WHERE NOT s.parallel AND (s.paused_until IS NULL OR s.paused_until <= $3) \
         AND h.next_attempt_at <= $3 AND (h.lease_until IS NULL OR h.lease_until < $3) \
         AND NOT EXISTS (SELECT 1 FROM deliveries g WHERE g.subscription_id = s.id \
              AND g.status = 'pending' AND g.id <= d.id AND (g.next_attempt_at > $3 OR g.lease_until >= $3)) \
         ORDER BY h.next_attempt_at, h.id, d.id LIMIT $4"
    };
}
/// Of each parallel subscription that is not paused: its oldest due and free
/// deliveries, whatever is pending before them, as many as keep its leased
/// ones (in flight, on any server) at most `$6`: a delivery is taken when
/// the leased ones plus the free due ones before it are fewer than `$6`.
/// `$4` deliveries at most in all.
macro_rules! claimable_parallel {
    () => {
        "SELECT d.id FROM subscriptions s \
         JOIN deliveries d ON d.subscription_id = s.id AND d.status = 'pending' \
              AND d.id IN (SELECT f.id FROM deliveries f WHERE f.subscription_id = s.id \
                           AND f.status = 'pending' AND f.next_attempt_at <= $3 \
                           AND (f.lease_until IS NULL OR f.lease_until < $3) ORDER BY f.id LIMIT $6) \
         WHERE s.parallel AND (s.paused_until IS NULL OR s.paused_until <= $3) \
         AND (SELECT COUNT(*) FROM deliveries g WHERE g.subscription_id = s.id \
              AND g.status = 'pending' AND g.lease_until >= $3) \
           + (SELECT COUNT(*) FROM deliveries r WHERE r.subscription_id = s.id AND r.status = 'pending' \
              AND r.next_attempt_at <= $3 AND (r.lease_until IS NULL OR r.lease_until < $3) AND r.id < d.id) < $6 \
         ORDER BY d.next_attempt_at, d.id LIMIT $4"
    };
}
/// A cheap read first, so that idle servers polling take no write lock.
pub(crate) const ANY_DUE: &str =
    "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 LIMIT 1";
/// Up to `$4` deliveries in runs of up to `$5` per ordered subscription,
/// and up to `$4` of parallel subscriptions (at most `$6` of each in flight),
/// claimed in one statement (one commit for the batch).
/// SQLite: one statement, so it runs under the write lock with no other writer in between.
pub(crate) const CLAIM_SQLITE: &str = concat!(
    "UPDATE deliveries SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, last_attempt_at = $3 \
     WHERE (id IN (",
    claimable!(),
    ") OR id IN (",
    claimable_parallel!(),
    ")) AND status = 'pending' AND (lease_until IS NULL OR lease_until < $3) RETURNING id"
);
/// PostgreSQL: a row another server is claiming is skipped, not waited for;
/// the head of the line is locked with each row of its run, so two servers
/// never split a run; the conditions are checked again on the locked rows.
/// `ARRAY(…)` runs the claim to the end before any row is updated (as a
/// join, the update of the head made its next rows skip it as locked).
pub(crate) const CLAIM_POSTGRES: &str = concat!(
    "UPDATE deliveries SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, last_attempt_at = $3 \
     WHERE id = ANY(ARRAY(",
    claimable!(),
    " FOR UPDATE OF h, d SKIP LOCKED) || ARRAY(",
    claimable_parallel!(),
    " FOR UPDATE OF d SKIP LOCKED)) AND status = 'pending' AND (lease_until IS NULL OR lease_until < $3) RETURNING id"
);
/// Deliveries claimed but not attempted (their run stopped at a failure):
/// free again, their claim not counted. `$1` owner, `$2`… ids.
pub(crate) fn release_deliveries(n: usize) -> String {
    format!(
        "UPDATE deliveries SET attempts = attempts - 1, \
         last_attempt_at = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempt_at END, \
         lease_owner = NULL, lease_until = NULL \
         WHERE id IN ({}) AND lease_owner = $1 AND status = 'pending'",
        placeholders(2, n)
    )
}
/// `$1, $2, …, $n` from `$first` on.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
/// The claimed deliveries `$1`…`$n` with their subscriptions and events, in
/// one query (`ClaimedRow`).
pub(crate) fn select_claimed(n: usize) -> String {
    format!(
        "SELECT d.id AS d_id, d.subscription_id AS d_subscription_id, d.event_id AS d_event_id, \
         d.message_id AS d_message_id, d.status AS d_status, d.attempts AS d_attempts, \
         d.created_at AS d_created_at, d.retry_since AS d_retry_since, d.next_attempt_at AS d_next_attempt_at, \
         d.last_attempt_at AS d_last_attempt_at, d.response_code AS d_response_code, d.latency_ms AS d_latency_ms, \
         d.last_error AS d_last_error, d.delivered_at AS d_delivered_at, \
         s.name AS s_name, s.kind AS s_kind, s.url AS s_url, s.filter AS s_filter, s.created_at AS s_created_at, \
         s.created_by AS s_created_by, s.consecutive_failures AS s_consecutive_failures, \
         s.paused_until AS s_paused_until, s.failing_since AS s_failing_since, s.failing_reported AS s_failing_reported, \
         s.options AS s_options, s.parallel AS s_parallel, \
         l.id AS l_id, l.at AS l_at, l.actor AS l_actor, l.action AS l_action, l.model_id AS l_model_id, \
         l.version AS l_version, l.environment AS l_environment, l.cluster AS l_cluster, l.reason AS l_reason, \
         l.details AS l_details, l.prev_hash AS l_prev_hash, l.hash AS l_hash \
         FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
         LEFT JOIN ledger l ON l.id = d.event_id WHERE d.id IN ({}) ORDER BY d.id",
        placeholders(1, n)
    )
}
/// The secrets valid at `$1` of subscriptions `$2`…, newest first.
pub(crate) fn select_valid_secrets_of(n: usize) -> String {
    format!(
        "SELECT subscription_id, secret FROM subscription_secrets WHERE subscription_id IN ({}) \
         AND (expires_at IS NULL OR expires_at > $1) ORDER BY id DESC",
        placeholders(2, n)
    )
}
/// After successful attempts: the subscriptions `$1`… that were failing
/// (streak not reported) are healthy again. Healthy ones are not written.
pub(crate) fn subscriptions_succeeded(n: usize) -> String {
    format!(
        "UPDATE subscriptions SET consecutive_failures = 0, paused_until = NULL, failing_since = NULL \
         WHERE id IN ({}) AND failing_reported IS NULL \
         AND (consecutive_failures <> 0 OR paused_until IS NOT NULL OR failing_since IS NOT NULL)",
        placeholders(1, n)
    )
}
/// Which of the subscriptions `$1`… have a reported failing streak (their
/// next success is recorded in the ledger).
pub(crate) fn select_reported(n: usize) -> String {
    format!(
        "SELECT id FROM subscriptions WHERE id IN ({}) AND failing_reported IS NOT NULL",
        placeholders(1, n)
    )
}
/// `$2` owner, `$3` status, `$4` next attempt, `$5` code, `$6` latency, `$7` error, `$8` delivered at.
pub(crate) const FINISH_DELIVERY: &str = "UPDATE deliveries SET status = $3, next_attempt_at = $4, \
     response_code = $5, latency_ms = $6, last_error = $7, delivered_at = $8, lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND lease_owner = $2 AND status = 'pending' RETURNING subscription_id";
/// Healthy again; touches nothing (0 rows) when it was healthy already (no
/// row written) or when the failing streak was reported: then the recovery
/// is recorded in the ledger (`SUBSCRIPTION_RECOVERED`).
pub(crate) const SUBSCRIPTION_SUCCEEDED: &str =
    "UPDATE subscriptions SET consecutive_failures = 0, \
     paused_until = NULL, failing_since = NULL WHERE id = $1 AND failing_reported IS NULL \
     AND (consecutive_failures <> 0 OR paused_until IS NOT NULL OR failing_since IS NOT NULL)";
pub(crate) const SELECT_FAILING: &str =
    "SELECT name, failing_since, failing_reported FROM subscriptions WHERE id = $1";
pub(crate) const SUBSCRIPTION_RECOVERED: &str =
    "UPDATE subscriptions SET consecutive_failures = 0, \
     paused_until = NULL, failing_since = NULL, failing_reported = NULL WHERE id = $1";
/// `$2` breaker threshold, `$3` paused until, `$4` the attempt's time.
pub(crate) const SUBSCRIPTION_FAILED: &str = "UPDATE subscriptions SET \
     consecutive_failures = consecutive_failures + 1, \
     paused_until = CASE WHEN consecutive_failures + 1 >= $2 THEN $3 ELSE paused_until END, \
     failing_since = COALESCE(failing_since, $4) \
     WHERE id = $1 RETURNING name, failing_since, failing_reported, consecutive_failures";
/// A delivery given up: the subscription is still failing (the breaker is left as it is).
pub(crate) const SUBSCRIPTION_STILL_FAILING: &str = "UPDATE subscriptions SET \
     failing_since = COALESCE(failing_since, $2) \
     WHERE id = $1 RETURNING name, failing_since, failing_reported, consecutive_failures";
pub(crate) const FAILING_REPORTED: &str =
    "UPDATE subscriptions SET failing_reported = $2 WHERE id = $1";
/// Per subscription: the breaker, the failing streak, pending and dead
/// deliveries, and the latest error still standing (delivered ones have none).
pub(crate) const SUBSCRIPTION_HEALTH: &str = "SELECT s.name, s.consecutive_failures, s.paused_until, \
     s.failing_since, s.failing_reported, \
     (SELECT COUNT(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'), \
     (SELECT COUNT(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'dead'), \
     (SELECT MIN(d.created_at) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'), \
     (SELECT d.last_error FROM deliveries d WHERE d.subscription_id = s.id AND d.last_error IS NOT NULL \
      ORDER BY d.last_attempt_at DESC, d.id DESC LIMIT 1), \
     (SELECT MAX(d.last_attempt_at) FROM deliveries d WHERE d.subscription_id = s.id AND d.last_error IS NOT NULL) \
     FROM subscriptions s ORDER BY s.name";
pub(crate) const SELECT_SUBSCRIPTION_NAME: &str = "SELECT name FROM subscriptions WHERE id = $1";
pub(crate) const PRUNE_DELIVERED: &str =
    "DELETE FROM deliveries WHERE status = 'delivered' AND delivered_at < $1";
pub(crate) const QUEUE_STATS: &str = "SELECT \
     (SELECT COUNT(*) FROM deliveries WHERE status = 'pending'), \
     (SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'), \
     (SELECT COUNT(*) FROM deliveries WHERE status = 'dead')";

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn parse_filter(text: &str) -> StoreResult<Filter> {
    serde_json::from_str(text).map_err(|e| corrupt(format_args!("stored filter is not valid: {e}")))
}

pub(crate) fn filter_text(f: &Filter) -> StoreResult<String> {
    serde_json::to_string(f).map_err(|e| corrupt(format_args!("cannot serialise a filter: {e}")))
}

/// Options are stored as JSON text, NULL when there are none.
pub(crate) fn options_text(options: &serde_json::Value) -> Option<String> {
    (!options.is_null()).then(|| options.to_string())
}

fn parse_options(text: Option<&str>) -> StoreResult<serde_json::Value> {
    match text {
        None => Ok(serde_json::Value::Null),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| corrupt(format_args!("stored subscription options are not valid: {e}"))),
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SubscriptionRow {
    id: i64,
    name: String,
    kind: String,
    url: String,
    filter: String,
    created_at: i64,
    created_by: String,
    consecutive_failures: i64,
    paused_until: Option<i64>,
    failing_since: Option<i64>,
    failing_reported: Option<i64>,
    options: Option<String>,
    parallel: bool,
}

impl SubscriptionRow {
    pub(crate) fn into_subscription(self) -> StoreResult<Subscription> {
        Ok(Subscription {
            id: self.id,
            kind: DestinationKind::parse(&self.kind)
                .ok_or_else(|| corrupt(format_args!("subscription kind {:?}", self.kind)))?,
            filter: parse_filter(&self.filter)?,
            name: self.name,
            url: self.url,
            created_at: Timestamp::from_micros(self.created_at),
            created_by: self.created_by,
            consecutive_failures: self.consecutive_failures,
            paused_until: self.paused_until.map(Timestamp::from_micros),
            failing_since: self.failing_since.map(Timestamp::from_micros),
            failing_reported: self.failing_reported.map(Timestamp::from_micros),
            options: parse_options(self.options.as_deref())?,
            parallel: self.parallel,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: i64,
    subscription_id: i64,
    event_id: Option<i64>,
    message_id: String,
    status: String,
    attempts: i64,
    created_at: i64,
    next_attempt_at: i64,
    last_attempt_at: Option<i64>,
    response_code: Option<i64>,
    latency_ms: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<i64>,
}

impl DeliveryRow {
    pub(crate) fn into_delivery(self) -> StoreResult<Delivery> {
        let status = match self.status.as_str() {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "dead" => DeliveryStatus::Dead,
            other => return Err(corrupt(format_args!("delivery status {other:?}"))),
        };
        Ok(Delivery {
            id: self.id,
            subscription_id: self.subscription_id,
            event_id: self.event_id,
            message_id: self.message_id,
            status,
            attempts: self.attempts,
            created_at: Timestamp::from_micros(self.created_at),
            next_attempt_at: Timestamp::from_micros(self.next_attempt_at),
            last_attempt_at: self.last_attempt_at.map(Timestamp::from_micros),
            response_code: self.response_code,
            latency_ms: self.latency_ms,
            last_error: self.last_error,
            delivered_at: self.delivered_at.map(Timestamp::from_micros),
        })
    }
}

/// A claimed delivery with its subscription and (LEFT JOIN) event: `select_claimed`.
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    d_id: i64,
    d_subscription_id: i64,
    d_event_id: Option<i64>,
    d_message_id: String,
    d_status: String,
    d_attempts: i64,
    d_created_at: i64,
    d_retry_since: i64,
    d_next_attempt_at: i64,
    d_last_attempt_at: Option<i64>,
    d_response_code: Option<i64>,
    d_latency_ms: Option<i64>,
    d_last_error: Option<String>,
    d_delivered_at: Option<i64>,
    s_name: String,
    s_kind: String,
    s_url: String,
    s_filter: String,
    s_created_at: i64,
    s_created_by: String,
    s_consecutive_failures: i64,
    s_paused_until: Option<i64>,
    s_failing_since: Option<i64>,
    s_failing_reported: Option<i64>,
    s_options: Option<String>,
    s_parallel: bool,
    l_id: Option<i64>,
    l_at: Option<i64>,
    l_actor: Option<String>,
    l_action: Option<String>,
    l_model_id: Option<String>,
    l_version: Option<String>,
    l_environment: Option<String>,
    l_cluster: Option<String>,
    l_reason: Option<String>,
    l_details: Option<String>,
    l_prev_hash: Option<String>,
    l_hash: Option<String>,
}

impl ClaimedRow {
    /// The claimed delivery without its secrets (`secrets` is left empty).
    pub(crate) fn into_claimed(self) -> StoreResult<ClaimedDelivery> {
        let event = match self.d_event_id {
            None => None,
            Some(event_id) => {
                let missing = || {
                    corrupt(format_args!(
                        "delivery {} carries ledger event {event_id}, which does not exist",
                        self.d_id
                    ))
                };
                let row = LedgerRow {
                    id: self.l_id.ok_or_else(missing)?,
                    at: self.l_at.ok_or_else(missing)?,
                    actor: self.l_actor.clone().ok_or_else(missing)?,
                    action: self.l_action.clone().ok_or_else(missing)?,
                    model_id: self.l_model_id.clone(),
                    version: self.l_version.clone(),
                    environment: self.l_environment.clone(),
                    cluster: self.l_cluster.clone(),
                    reason: self.l_reason.clone(),
                    details: self.l_details.clone().ok_or_else(missing)?,
                    prev_hash: self.l_prev_hash.clone().ok_or_else(missing)?,
                    hash: self.l_hash.clone().ok_or_else(missing)?,
                };
                Some(row.into_event()?)
            }
        };
        let subscription = SubscriptionRow {
            id: self.d_subscription_id,
            name: self.s_name,
            kind: self.s_kind,
            url: self.s_url,
            filter: self.s_filter,
            created_at: self.s_created_at,
            created_by: self.s_created_by,
            consecutive_failures: self.s_consecutive_failures,
            paused_until: self.s_paused_until,
            failing_since: self.s_failing_since,
            failing_reported: self.s_failing_reported,
            options: self.s_options,
            parallel: self.s_parallel,
        }
        .into_subscription()?;
        let retry_since = Timestamp::from_micros(self.d_retry_since);
        let delivery = DeliveryRow {
            id: self.d_id,
            subscription_id: self.d_subscription_id,
            event_id: self.d_event_id,
            message_id: self.d_message_id,
            status: self.d_status,
            attempts: self.d_attempts,
            created_at: self.d_created_at,
            next_attempt_at: self.d_next_attempt_at,
            last_attempt_at: self.d_last_attempt_at,
            response_code: self.d_response_code,
            latency_ms: self.d_latency_ms,
            last_error: self.d_last_error,
            delivered_at: self.d_delivered_at,
        }
        .into_delivery()?;
        Ok(ClaimedDelivery {
            delivery,
            subscription,
            retry_since,
            secrets: Vec::new(),
            event,
        })
    }
}

/// Implements `NotifyStore` inside `sql_store!`'s `shared` module.
macro_rules! notify_sql {
    ($store:ident, $db:ty, $backend:ident) => {
        use $crate::store::notify::{
            AfterAttempt, Attempt, ClaimedDelivery, Configured, Delivery, NewSubscription, NotifyStore, QueueStats,
            Subscription, SubscriptionHealth, SUBSCRIPTION_CREATED, SUBSCRIPTION_DELETED, SUBSCRIPTION_FAILING,
            SUBSCRIPTION_RECOVERED, SUBSCRIPTION_SECRET_ROTATED, DELIVERY_DEAD,
        };
        use switchyard_domain::ledger::action::SUBSCRIPTION_UPDATED;
        use $crate::store::notify_sql as nq;

        async fn fetch_subscription<'e, E>(db: E, name: &str) -> StoreResult<Option<Subscription>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_as::<_, nq::SubscriptionRow>(nq::SELECT_SUBSCRIPTION)
                .bind(name)
                .fetch_optional(db)
                .await?
                .map(nq::SubscriptionRow::into_subscription)
                .transpose()
        }

        async fn fetch_delivery<'e, E>(db: E, id: i64) -> StoreResult<Option<Delivery>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_as::<_, nq::DeliveryRow>(nq::SELECT_DELIVERY)
                .bind(id)
                .fetch_optional(db)
                .await?
                .map(nq::DeliveryRow::into_delivery)
                .transpose()
        }

        fn unknown_subscription(name: &str) -> $crate::store::StoreError {
            DomainError::NotFound(format!("no subscription named {name:?}")).into()
        }

        /// Writes an attempt of a delivery `owner` holds; its subscription's
        /// id, or `None` if the lease was lost or the delivery deleted.
        async fn record_attempt(
            tx: &mut sqlx::Transaction<'static, $db>,
            id: i64,
            owner: &str,
            attempt: &Attempt,
            at: Timestamp,
        ) -> StoreResult<Option<i64>> {
            let (status, next_at, delivered_at) = match attempt.next {
                AfterAttempt::Delivered => ("delivered", at, Some(at.micros())),
                AfterAttempt::RetryAt { at: next, .. } => ("pending", next, None),
                AfterAttempt::Dead => ("dead", at, None),
            };
            Ok(sqlx::query_scalar(nq::FINISH_DELIVERY)
                .bind(id)
                .bind(owner)
                .bind(status)
                .bind(next_at.micros())
                .bind(attempt.response_code)
                .bind(attempt.latency_ms)
                .bind(attempt.error.as_deref())
                .bind(delivered_at)
                .fetch_optional(&mut **tx)
                .await?)
        }

        /// Updates the subscription after an attempt: the circuit breaker and
        /// the failing streak. Returns the ledger event this calls for, if any:
        /// `subscription.failing` once a streak lasts `failing_alert_after`,
        /// `subscription.recovered` at the first success after it was reported.
        async fn subscription_after_attempt(
            tx: &mut sqlx::Transaction<'static, $db>,
            subscription: i64,
            attempt: &Attempt,
            at: Timestamp,
        ) -> StoreResult<Option<NewEvent>> {
            let failing = match attempt.next {
                AfterAttempt::Delivered => {
                    let cleared = sqlx::query(nq::SUBSCRIPTION_SUCCEEDED)
                        .bind(subscription)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected();
                    if cleared > 0 {
                        return Ok(None);
                    }
                    let Some((name, since, reported)) = sqlx::query_as::<_, (String, Option<i64>, Option<i64>)>(nq::SELECT_FAILING)
                        .bind(subscription)
                        .fetch_optional(&mut **tx)
                        .await?
                    else {
                        return Ok(None);
                    };
                    if reported.is_none() {
                        return Ok(None); // healthy already: nothing to write
                    }
                    sqlx::query(nq::SUBSCRIPTION_RECOVERED).bind(subscription).execute(&mut **tx).await?;
                    return Ok(reported.map(|reported| {
                        NewEvent::new(at, "system", SUBSCRIPTION_RECOVERED).details(json!({
                            "subscription": name,
                            "subscription_id": subscription,
                            "failing_since": since.map(Timestamp::from_micros),
                            "reported_at": Timestamp::from_micros(reported),
                            "failed_for_ms": since.map(|s| (at.micros() - s) / 1000),
                        }))
                    }));
                }
                AfterAttempt::RetryAt { breaker_threshold, pause_until, .. } => {
                    sqlx::query_as::<_, (String, Option<i64>, Option<i64>, i64)>(nq::SUBSCRIPTION_FAILED)
                        .bind(subscription)
                        .bind(breaker_threshold)
                        .bind(pause_until.micros())
                        .bind(at.micros())
                        .fetch_optional(&mut **tx)
                        .await?
                }
                AfterAttempt::Dead => {
                    sqlx::query_as::<_, (String, Option<i64>, Option<i64>, i64)>(nq::SUBSCRIPTION_STILL_FAILING)
                        .bind(subscription)
                        .bind(at.micros())
                        .fetch_optional(&mut **tx)
                        .await?
                }
            };
            let Some((name, since, reported, failures)) = failing else {
                return Ok(None);
            };
            let since = since.map(Timestamp::from_micros);
            if !$crate::store::notify::failing_alert_due(
                since,
                reported.map(Timestamp::from_micros),
                at,
                attempt.failing_alert_after,
            ) {
                return Ok(None);
            }
            sqlx::query(nq::FAILING_REPORTED).bind(subscription).bind(at.micros()).execute(&mut **tx).await?;
            Ok(Some(
                NewEvent::new(at, "system", SUBSCRIPTION_FAILING)
                    .reason(attempt.error.as_deref())
                    .details(json!({
                        "subscription": name,
                        "subscription_id": subscription,
                        "failing_since": since,
                        "consecutive_failures": failures,
                        "alert_after_s": attempt.failing_alert_after.as_secs(),
                    })),
            ))
        }

        impl $store {
            /// The claimed deliveries `ids` with their subscriptions, events
            /// and the secrets valid at `now`: two queries for the whole batch.
            async fn claimed_deliveries(&self, ids: &[i64], now: Timestamp) -> StoreResult<Vec<ClaimedDelivery>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = nq::select_claimed(ids.len());
                let mut select = sqlx::query_as::<_, nq::ClaimedRow>(&sql);
                for id in ids {
                    select = select.bind(*id);
                }
                let mut claimed = select
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(nq::ClaimedRow::into_claimed)
                    .collect::<StoreResult<Vec<_>>>()?;
                let mut subscriptions: Vec<i64> = claimed.iter().map(|c| c.subscription.id).collect();
                subscriptions.sort_unstable();
                subscriptions.dedup();
                if subscriptions.is_empty() {
                    return Ok(claimed);
                }
                let sql = nq::select_valid_secrets_of(subscriptions.len());
                let mut select = sqlx::query_as::<_, (i64, String)>(&sql).bind(now.micros());
                for id in &subscriptions {
                    select = select.bind(*id);
                }
                // Newest first, as the query orders them.
                for (subscription, secret) in select.fetch_all(&self.pool).await? {
                    for c in claimed.iter_mut().filter(|c| c.subscription.id == subscription) {
                        c.secrets.push(secret.clone());
                    }
                }
                Ok(claimed)
            }

            /// Successful attempts of deliveries `owner` holds, in one
            /// transaction; `None` (nothing written) when one of their
            /// subscriptions has a reported failing streak, whose recovery is a
            /// ledger event (`finish_delivery` records those one by one).
            async fn finish_delivered(
                &self,
                owner: &str,
                finished: &[(i64, Attempt, Timestamp)],
            ) -> StoreResult<Option<Vec<bool>>> {
                let _turn = self.writes.turn().await;
                let mut tx = self.pool.begin().await?;
                let mut recorded = Vec::with_capacity(finished.len());
                let mut subscriptions = Vec::new();
                for (id, attempt, at) in finished {
                    let subscription = record_attempt(&mut tx, *id, owner, attempt, *at).await?;
                    recorded.push(subscription.is_some());
                    subscriptions.extend(subscription);
                }
                subscriptions.sort_unstable();
                subscriptions.dedup();
                if !subscriptions.is_empty() {
                    let sql = nq::select_reported(subscriptions.len());
                    let mut select = sqlx::query_scalar::<_, i64>(&sql);
                    for id in &subscriptions {
                        select = select.bind(*id);
                    }
                    if !select.fetch_all(&mut *tx).await?.is_empty() {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                    let sql = nq::subscriptions_succeeded(subscriptions.len());
                    let mut update = sqlx::query(&sql);
                    for id in &subscriptions {
                        update = update.bind(*id);
                    }
                    update.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(Some(recorded))
            }
        }

        #[async_trait::async_trait]
        impl NotifyStore for $store {
            async fn create_subscription(&self, new: NewSubscription, actor: &str, at: Timestamp) -> StoreResult<Subscription> {
                let mut w = Writer::begin(self).await?;
                if fetch_subscription(&mut *w.tx, &new.name).await?.is_some() {
                    return Err(DomainError::Conflict(format!("a subscription named {:?} exists", new.name)).into());
                }
                let id: i64 = sqlx::query_scalar(nq::INSERT_SUBSCRIPTION)
                    .bind(&new.name)
                    .bind(new.kind.as_str())
                    .bind(&new.url)
                    .bind(nq::filter_text(&new.filter)?)
                    .bind(at.micros())
                    .bind(actor)
                    .bind(nq::options_text(&new.options))
                    .bind(new.parallel)
                    .fetch_one(&mut *w.tx)
                    .await?;
                if !new.secret.is_empty() {
                    sqlx::query(nq::INSERT_SECRET)
                        .bind(id)
                        .bind(&new.secret)
                        .bind(at.micros())
                        .execute(&mut *w.tx)
                        .await?;
                }
                let mut details = json!({ "subscription": new.name, "kind": new.kind, "filter": new.filter, "parallel": new.parallel });
                if !new.options.is_null() {
                    details["options"] = new.options.clone();
                    details["url"] = json!($crate::notify::display_url(&new.url));
                }
                w.append(NewEvent::new(at, actor, SUBSCRIPTION_CREATED).details(details)).await?;
                w.subscribers_changed();
                w.commit().await?;
                fetch_subscription(&self.pool, &new.name).await?.ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("subscription {} vanished after it was written", new.name))
                })
            }

            async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
                sqlx::query_as::<_, nq::SubscriptionRow>(nq::SELECT_SUBSCRIPTIONS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(nq::SubscriptionRow::into_subscription)
                    .collect()
            }

            async fn configure_subscription(
                &self,
                new: NewSubscription,
                actor: &str,
                at: Timestamp,
            ) -> StoreResult<(Subscription, Configured)> {
                let mut w = Writer::begin(self).await?;
                let Some(old) = fetch_subscription(&mut *w.tx, &new.name).await? else {
                    drop(w);
                    let name = new.name.clone();
                    let created = self.create_subscription(new, actor, at).await.map_err(|e| match e {
                        // Another server created it meanwhile: configured by it.
                        $crate::store::StoreError::Domain(DomainError::Conflict(_)) => {
                            $crate::store::StoreError::Domain(DomainError::Conflict(format!(
                                "subscription {name:?} was created at the same time by another server; start again"
                            )))
                        }
                        e => e,
                    })?;
                    return Ok((created, Configured::Created));
                };
                if old.kind != new.kind {
                    return Err(DomainError::Conflict(format!(
                        "a subscription named {:?} exists with kind {}, not {}",
                        new.name,
                        old.kind.as_str(),
                        new.kind.as_str()
                    ))
                    .into());
                }
                if old.url == new.url && old.filter == new.filter && old.options == new.options {
                    return Ok((old, Configured::Unchanged));
                }
                sqlx::query(nq::UPDATE_SUBSCRIPTION)
                    .bind(old.id)
                    .bind(&new.url)
                    .bind(nq::filter_text(&new.filter)?)
                    .bind(nq::options_text(&new.options))
                    .execute(&mut *w.tx)
                    .await?;
                w.subscribers_changed();
                w.append(NewEvent::new(at, actor, SUBSCRIPTION_UPDATED).details(json!({
                    "subscription": new.name,
                    "kind": new.kind,
                    "before": { "url": $crate::notify::display_url(&old.url), "filter": old.filter, "options": old.options },
                    "after": { "url": $crate::notify::display_url(&new.url), "filter": new.filter, "options": new.options },
                })))
                .await?;
                w.commit().await?;
                let now = fetch_subscription(&self.pool, &new.name).await?.ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("subscription {} vanished after it was written", new.name))
                })?;
                Ok((now, Configured::Updated))
            }

            async fn get_subscription(&self, name: &str) -> StoreResult<Option<Subscription>> {
                fetch_subscription(&self.pool, name).await
            }

            async fn delete_subscription(&self, name: &str, actor: &str, at: Timestamp) -> StoreResult<bool> {
                let mut w = Writer::begin(self).await?;
                let Some(s) = fetch_subscription(&mut *w.tx, name).await? else {
                    return Ok(false);
                };
                sqlx::query(nq::DELETE_SUBSCRIPTION).bind(s.id).execute(&mut *w.tx).await?;
                w.subscribers_changed();
                w.append(NewEvent::new(at, actor, SUBSCRIPTION_DELETED).details(json!({ "subscription": name })))
                    .await?;
                w.commit().await?;
                Ok(true)
            }

            async fn rotate_secret(
                &self,
                name: &str,
                secret: &str,
                overlap_until: Timestamp,
                actor: &str,
                at: Timestamp,
            ) -> StoreResult<()> {
                let mut w = Writer::begin(self).await?;
                let s = fetch_subscription(&mut *w.tx, name)
                    .await?
                    .ok_or_else(|| unknown_subscription(name))?;
                sqlx::query(nq::EXPIRE_SECRETS)
                    .bind(s.id)
                    .bind(overlap_until.micros())
                    .execute(&mut *w.tx)
                    .await?;
                sqlx::query(nq::INSERT_SECRET)
                    .bind(s.id)
                    .bind(secret)
                    .bind(at.micros())
                    .execute(&mut *w.tx)
                    .await?;
                w.append(NewEvent::new(at, actor, SUBSCRIPTION_SECRET_ROTATED).details(
                    json!({ "subscription": name, "previous_secrets_valid_until": overlap_until }),
                ))
                .await?;
                w.commit().await?;
                Ok(())
            }

            async fn prune_deliveries(&self, before: Timestamp) -> StoreResult<u64> {
                Ok(sqlx::query(nq::PRUNE_DELIVERED)
                    .bind(before.micros())
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn enqueue_test(&self, name: &str, at: Timestamp) -> StoreResult<Delivery> {
                let s = fetch_subscription(&self.pool, name).await?.ok_or_else(|| unknown_subscription(name))?;
                let message_id = format!("test_{:016x}", rand::random::<u64>());
                let id: i64 = sqlx::query_scalar(nq::INSERT_DELIVERY)
                    .bind(s.id)
                    .bind(None::<i64>)
                    .bind(&message_id)
                    .bind(at.micros())
                    .fetch_one(&self.pool)
                    .await?;
                $crate::store::notify::DELIVERIES_WRITTEN.notify_waiters();
                fetch_delivery(&self.pool, id).await?.ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("delivery {id} vanished after it was written"))
                })
            }

            async fn redeliver(&self, delivery_id: i64, at: Timestamp) -> StoreResult<Delivery> {
                let n = sqlx::query(nq::REDELIVER)
                    .bind(delivery_id)
                    .bind(at.micros())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                let d = fetch_delivery(&self.pool, delivery_id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("no delivery {delivery_id}")))?;
                if n == 0 {
                    return Err(DomainError::Conflict(format!(
                        "delivery {delivery_id} is pending already; it is sent when due"
                    ))
                    .into());
                }
                $crate::store::notify::DELIVERIES_WRITTEN.notify_waiters();
                Ok(d)
            }

            async fn recent_deliveries(&self, subscription_id: i64, limit: u32) -> StoreResult<Vec<Delivery>> {
                sqlx::query_as::<_, nq::DeliveryRow>(nq::SELECT_DELIVERIES_OF)
                    .bind(subscription_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(nq::DeliveryRow::into_delivery)
                    .collect()
            }

            async fn claim_deliveries(&self, owner: &str, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<ClaimedDelivery>> {
                self.claim_runs(owner, now, lease_until, limit, 1, $crate::store::notify::DEFAULT_PARALLEL).await
            }

            async fn claim_runs(
                &self,
                owner: &str,
                now: Timestamp,
                lease_until: Timestamp,
                limit: u32,
                run: u32,
                parallel: u32,
            ) -> StoreResult<Vec<ClaimedDelivery>> {
                let due: Option<i64> = sqlx::query_scalar(nq::ANY_DUE).bind(now.micros()).fetch_optional(&self.pool).await?;
                if due.is_none() || limit == 0 || run == 0 {
                    return Ok(Vec::new());
                }
                let claim = match Backend::$backend {
                    Backend::Sqlite => nq::CLAIM_SQLITE,
                    Backend::Postgres => nq::CLAIM_POSTGRES,
                };
                // The whole batch in one statement (one commit), then loaded in two queries.
                let turn = self.writes.turn().await;
                let ids: Vec<i64> = sqlx::query_scalar(claim)
                    .bind(owner)
                    .bind(lease_until.micros())
                    .bind(now.micros())
                    .bind(i64::from(limit))
                    .bind(i64::from(run))
                    .bind(i64::from(parallel))
                    .fetch_all(&self.pool)
                    .await?;
                drop(turn);
                self.claimed_deliveries(&ids, now).await
            }

            async fn release_deliveries(&self, owner: &str, ids: &[i64]) -> StoreResult<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let sql = nq::release_deliveries(ids.len());
                let mut release = sqlx::query(&sql).bind(owner);
                for id in ids {
                    release = release.bind(*id);
                }
                let _turn = self.writes.turn().await;
                Ok(release.execute(&self.pool).await?.rows_affected())
            }

            async fn finish_deliveries(
                &self,
                owner: &str,
                finished: Vec<(i64, Attempt, Timestamp)>,
            ) -> StoreResult<Vec<bool>> {
                // Successes of healthy subscriptions, the common case, in one
                // transaction; anything that may write a ledger event one by one.
                let (delivered, others): (Vec<_>, Vec<_>) = finished
                    .into_iter()
                    .enumerate()
                    .partition(|(_, (_, attempt, _))| attempt.next == AfterAttempt::Delivered && attempt.record.is_none());
                let mut results = vec![false; delivered.len() + others.len()];
                let mut one_by_one = others;
                if !delivered.is_empty() {
                    let batch: Vec<(i64, Attempt, Timestamp)> = delivered.iter().map(|(_, f)| f.clone()).collect();
                    match self.finish_delivered(owner, &batch).await? {
                        Some(recorded) => {
                            for ((i, _), ok) in delivered.iter().zip(recorded) {
                                results[*i] = ok;
                            }
                        }
                        None => one_by_one.extend(delivered),
                    }
                }
                for (i, (id, attempt, at)) in one_by_one {
                    results[i] = self.finish_delivery(id, owner, attempt, at).await?;
                }
                Ok(results)
            }

            async fn finish_delivery(&self, id: i64, owner: &str, attempt: Attempt, at: Timestamp) -> StoreResult<bool> {
                if attempt.next == AfterAttempt::Dead {
                    // Giving up is an event of its own: in the ledger (and so sent to
                    // the other subscriptions that want it), in the same transaction.
                    let mut w = Writer::begin(self).await?;
                    let Some(subscription) = record_attempt(&mut w.tx, id, owner, &attempt, at).await? else {
                        return Ok(false);
                    };
                    let name: Option<String> = sqlx::query_scalar(nq::SELECT_SUBSCRIPTION_NAME)
                        .bind(subscription)
                        .fetch_optional(&mut *w.tx)
                        .await?;
                    let d = fetch_delivery(&mut *w.tx, id).await?;
                    w.append(NewEvent::new(at, "system", DELIVERY_DEAD).reason(attempt.error.as_deref()).details(json!({
                        "subscription": name,
                        "subscription_id": subscription,
                        "delivery_id": id,
                        "message_id": d.as_ref().map(|d| d.message_id.clone()),
                        "event_id": d.as_ref().and_then(|d| d.event_id),
                        "attempts": d.as_ref().map(|d| d.attempts),
                        "first_attempt_due": d.as_ref().map(|d| d.created_at),
                    })))
                    .await?;
                    if let Some(ev) = subscription_after_attempt(&mut w.tx, subscription, &attempt, at).await? {
                        w.append(ev).await?;
                    }
                    w.commit().await?;
                    return Ok(true);
                }
                if let Some(record) = attempt.record.clone().filter(|_| attempt.next == AfterAttempt::Delivered) {
                    // The attempt's own event (the MLflow write-back's answer) is in
                    // the ledger exactly when the delivery is marked delivered.
                    let mut w = Writer::begin(self).await?;
                    let Some(subscription) = record_attempt(&mut w.tx, id, owner, &attempt, at).await? else {
                        return Ok(false);
                    };
                    w.append(record).await?;
                    if let Some(ev) = subscription_after_attempt(&mut w.tx, subscription, &attempt, at).await? {
                        w.append(ev).await?;
                    }
                    w.commit().await?;
                    return Ok(true);
                }
                // Most attempts write no ledger event: they do not take the head lock.
                let turn = self.writes.turn().await;
                let mut tx = self.pool.begin().await?;
                let Some(subscription) = record_attempt(&mut tx, id, owner, &attempt, at).await? else {
                    return Ok(false);
                };
                if subscription_after_attempt(&mut tx, subscription, &attempt, at).await?.is_none() {
                    tx.commit().await?;
                    return Ok(true);
                }
                // This attempt raises or clears a subscription's failing streak: the
                // same writes again, with the event, under the head lock.
                tx.rollback().await?;
                drop(turn);
                let mut w = Writer::begin(self).await?;
                let Some(subscription) = record_attempt(&mut w.tx, id, owner, &attempt, at).await? else {
                    return Ok(false);
                };
                if let Some(ev) = subscription_after_attempt(&mut w.tx, subscription, &attempt, at).await? {
                    w.append(ev).await?;
                }
                w.commit().await?;
                Ok(true)
            }

            async fn record_verification_failure(
                &self,
                problem: &str,
                details: serde_json::Value,
                at: Timestamp,
            ) -> StoreResult<switchyard_domain::ledger::LedgerEvent> {
                let mut details = if details.is_object() { details } else { json!({}) };
                details["problem"] = json!(problem);
                let mut w = Writer::begin(self).await?;
                let ev = w
                    .append(
                        NewEvent::new(at, "system", switchyard_domain::ledger::action::LEDGER_VERIFICATION_FAILED)
                            .reason(Some(problem))
                            .details(details),
                    )
                    .await?;
                w.commit().await?;
                Ok(ev)
            }

            async fn subscription_health(&self) -> StoreResult<Vec<SubscriptionHealth>> {
                type Row = (String, i64, Option<i64>, Option<i64>, Option<i64>, i64, i64, Option<i64>, Option<String>, Option<i64>);
                let rows = sqlx::query_as::<_, Row>(nq::SUBSCRIPTION_HEALTH).fetch_all(&self.pool).await?;
                let ts = |t: Option<i64>| t.map(Timestamp::from_micros);
                Ok(rows
                    .into_iter()
                    .map(|(name, consecutive_failures, paused, since, reported, pending, dead, oldest, last_error, last_error_at)| {
                        SubscriptionHealth {
                            name,
                            consecutive_failures,
                            paused_until: ts(paused),
                            failing_since: ts(since),
                            failing_reported: ts(reported),
                            pending,
                            dead,
                            oldest_pending: ts(oldest),
                            last_error,
                            last_error_at: ts(last_error_at),
                        }
                    })
                    .collect())
            }

            async fn queue_stats(&self) -> StoreResult<QueueStats> {
                let (pending, oldest, dead): (i64, Option<i64>, i64) =
                    sqlx::query_as(nq::QUEUE_STATS).fetch_one(&self.pool).await?;
                Ok(QueueStats { pending, oldest_pending: oldest.map(Timestamp::from_micros), dead })
            }
        }
    };
}
pub(crate) use notify_sql;
