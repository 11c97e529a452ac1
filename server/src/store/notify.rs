//! Storage of notification subscriptions and their deliveries outbox
//! (`NotifyStore`), a supertrait of `Store`. The SQL is in `notify_sql.rs`,
//! expanded inside each backend's `Store` implementation.
//!
//! Deliveries are written by `Writer::append` in the transaction of the
//! ledger event they carry (the outbox): an event that commits has its
//! deliveries, one that rolls back has none. Workers in every server claim
//! them with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
//! UPDATE … RETURNING under the write lock), one subscription's deliveries
//! strictly in order: only the oldest pending delivery of a subscription is
//! claimable.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use switchyard_domain::ledger::{action, LedgerEvent};
use switchyard_domain::Timestamp;

use super::StoreResult;

/// Deliveries of one parallel subscription in flight at once when the
/// server's settings do not say (`SWITCHYARD_WEBHOOK_PARALLEL`).
pub const DEFAULT_PARALLEL: u32 = 8;

/// Woken when this process commits deliveries, so that its worker sends them
/// at once instead of at its next poll (other servers' workers poll).
pub static DELIVERIES_WRITTEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Event kinds a subscription may name. An empty `events` filter means
/// [`DEFAULT_EVENT_KINDS`]; sign-ins and operation steps are never sent unless named.
pub const EVENT_KINDS: &[&str] = &action::ALL;

/// What a subscription with no `events` filter receives: the release events.
pub const DEFAULT_EVENT_KINDS: &[&str] = &[
    action::VERSION_REGISTERED,
    action::DEPRECATION,
    action::RETIREMENT,
    action::RETIREMENT_HELD,
    action::PROMOTION_REQUESTED,
    action::PROMOTION_APPROVED,
    action::PROMOTION_REJECTED,
    action::PROMOTION_WITHDRAWN,
    action::PROMOTION_EXPIRED,
    action::PROMOTION_APPLIED,
    action::OPERATION_STARTED,
    action::OPERATION_INTERRUPTED,
    action::OPERATION_COMPLETED,
    action::OPERATION_FAILED,
    action::ROLLBACK,
    // An operation paused (by an inconclusive analysis or a person), and the answer.
    action::OPERATION_PAUSED,
    action::OPERATION_CONTINUED,
    action::OPERATION_ROLLBACK_CHOSEN,
    // A cluster seen serving what its environment does not pin (or what was not recorded), and its end.
    action::CLUSTER_DRIFT_DETECTED,
    action::CLUSTER_DRIFT_CLEARED,
    DELIVERY_DEAD,
    SUBSCRIPTION_FAILING,
    SUBSCRIPTION_RECOVERED,
    action::LEDGER_VERIFICATION_FAILED,
];

/// A delivery failed for the whole retry period and was given up (actor
/// `system`); never sent to the subscription it is about.
pub const DELIVERY_DEAD: &str = action::DELIVERY_DEAD;

/// A subscription has failed for longer than `Attempt::failing_alert_after`
/// (raised once per failing streak) and has delivered again (actor `system`);
/// like `delivery.dead`, never sent to the subscription they are about.
pub const SUBSCRIPTION_FAILING: &str = action::SUBSCRIPTION_FAILING;
pub const SUBSCRIPTION_RECOVERED: &str = action::SUBSCRIPTION_RECOVERED;

/// Whether a ledger event is about one subscription's own deliveries: such an
/// event is not sent to that subscription (it is the one failing). Returns its id.
pub fn about_subscription(ev: &LedgerEvent) -> Option<i64> {
    let about = ev.action.starts_with("delivery.")
        || ev.action == SUBSCRIPTION_FAILING
        || ev.action == SUBSCRIPTION_RECOVERED;
    if !about {
        return None;
    }
    ev.details
        .get("subscription_id")
        .and_then(serde_json::Value::as_i64)
}

/// Whether `subscription.failing` is due after a failed attempt at `at`: the
/// subscription has been failing since `failing_since`, for at least `after`,
/// and this streak was not reported yet.
pub fn failing_alert_due(
    failing_since: Option<Timestamp>,
    reported: Option<Timestamp>,
    at: Timestamp,
    after: std::time::Duration,
) -> bool {
    let after = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
    match (failing_since, reported) {
        (Some(since), None) => at.micros().saturating_sub(since.micros()) >= after,
        _ => false,
    }
}

/// Ledger actions of subscription changes (admin configuration is audited too).
pub const SUBSCRIPTION_CREATED: &str = action::SUBSCRIPTION_CREATED;
pub const SUBSCRIPTION_DELETED: &str = action::SUBSCRIPTION_DELETED;
pub const SUBSCRIPTION_SECRET_ROTATED: &str = action::SUBSCRIPTION_SECRET_ROTATED;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationKind {
    /// The event as JSON, signed (Standard Webhooks).
    Webhook,
    /// A Slack-compatible incoming-webhook message (also Mattermost, Rocket.Chat).
    Chat,
    /// The MLflow write-back: a `promotion.applied` sets the MLflow aliases
    /// that follow its environment (`options.aliases`) on the version it was
    /// imported from; `url` is the tracking server. Configured by the server
    /// (`SWITCHYARD_MLFLOW_WRITE_BACK`), not through the API.
    MlflowAlias,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Webhook => "webhook",
            DestinationKind::Chat => "chat",
            DestinationKind::MlflowAlias => "mlflow-alias",
        }
    }

    pub fn parse(s: &str) -> Option<DestinationKind> {
        match s {
            "webhook" => Some(DestinationKind::Webhook),
            "chat" => Some(DestinationKind::Chat),
            "mlflow-alias" => Some(DestinationKind::MlflowAlias),
            _ => None,
        }
    }
}

/// Which events a subscription receives; each empty list admits anything
/// (an empty `events` list: [`DEFAULT_EVENT_KINDS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    pub events: Vec<String>,
    pub models: Vec<String>,
    pub environments: Vec<String>,
    pub clusters: Vec<String>,
}

impl Filter {
    /// Whether `ev` is for this subscription. A filter naming environments
    /// (or clusters) admits only events about one of them.
    pub fn admits(&self, ev: &LedgerEvent) -> bool {
        let kind_ok = if self.events.is_empty() {
            DEFAULT_EVENT_KINDS.contains(&ev.action.as_str())
        } else {
            self.events.contains(&ev.action)
        };
        let within = |list: &[String], v: &Option<String>| {
            list.is_empty() || v.as_ref().is_some_and(|v| list.iter().any(|x| x == v))
        };
        kind_ok
            && within(&self.models, &ev.model_id)
            && within(&self.environments, &ev.environment)
            && within(&self.clusters, &ev.cluster)
    }
}

/// A subscription to create; already validated (URL, kinds, models).
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub name: String,
    pub kind: DestinationKind,
    pub url: String,
    pub filter: Filter,
    /// The first signing secret (`whsec_…`); empty for kinds that sign nothing (`mlflow-alias`).
    pub secret: String,
    /// The kind's options (`mlflow-alias`: `{"aliases": {environment: [alias, …]}}`); null for the others.
    pub options: serde_json::Value,
    /// Deliveries may be sent concurrently, out of event order (see [`Subscription::parallel`]).
    pub parallel: bool,
}

/// A subscription as stored; its secrets are not part of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    pub id: i64,
    pub name: String,
    pub kind: DestinationKind,
    /// The full destination URL: callers show `notify::display_url` of it.
    #[serde(skip)]
    pub url: String,
    pub filter: Filter,
    pub created_at: Timestamp,
    pub created_by: String,
    pub consecutive_failures: i64,
    pub paused_until: Option<Timestamp>,
    /// The first failed attempt since the last success; `None` while healthy.
    pub failing_since: Option<Timestamp>,
    /// When `subscription.failing` was recorded for this failing streak.
    pub failing_reported: Option<Timestamp>,
    /// The kind's options (see `NewSubscription::options`).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub options: serde_json::Value,
    /// Off (the default): its deliveries are sent one after the other, in
    /// ledger order. On: any due one may be claimed and sent, by any server,
    /// up to a bound in flight at once (`claim_runs`'s `parallel`), so a slow
    /// receiver does not hold back the others; a failed one does not stop
    /// the later ones.
    pub parallel: bool,
}

/// What `NotifyStore::configure_subscription` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Configured {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }
}

/// One delivery of one event (or test message) to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: i64,
    /// The ledger event; `None` for a test message.
    pub event_id: Option<i64>,
    /// The `webhook-id` of every attempt.
    pub message_id: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub response_code: Option<i64>,
    pub latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// A delivery leased to a worker, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    pub subscription: Subscription,
    /// When retries started (creation or last redeliver): the retry period counts from here.
    pub retry_since: Timestamp,
    /// The secrets valid now, newest first.
    pub secrets: Vec<String>,
    /// The event carried; `None` for a test message.
    pub event: Option<LedgerEvent>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub response_code: Option<i64>,
    pub latency_ms: i64,
    /// Set when the attempt failed: the transport error or a short excerpt of the answer.
    pub error: Option<String>,
    /// What happens next.
    pub next: AfterAttempt,
    /// A subscription failing for this long since its last success is
    /// reported once (`subscription.failing`).
    pub failing_alert_after: std::time::Duration,
    /// A ledger event recorded in the transaction that marks the delivery
    /// delivered (the MLflow write-back's `mlflow.alias_set`); only with
    /// `AfterAttempt::Delivered`.
    pub record: Option<switchyard_domain::ledger::NewEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterAttempt {
    Delivered,
    /// Failed; try again at this time. `pause_until`: the circuit breaker
    /// opens if the subscription reaches `breaker_threshold` failures in a row.
    RetryAt {
        at: Timestamp,
        breaker_threshold: i64,
        pause_until: Timestamp,
    },
    /// Failed for longer than the retry period: given up.
    Dead,
}

/// The outbox at a glance, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    pub pending: i64,
    /// Creation time of the oldest pending delivery.
    pub oldest_pending: Option<Timestamp>,
    pub dead: i64,
}

/// One subscription's delivery health, for the overview's warning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionHealth {
    pub name: String,
    pub consecutive_failures: i64,
    pub paused_until: Option<Timestamp>,
    pub failing_since: Option<Timestamp>,
    pub failing_reported: Option<Timestamp>,
    pub pending: i64,
    pub dead: i64,
    /// Creation time of its oldest pending delivery.
    pub oldest_pending: Option<Timestamp>,
    /// The error of its latest failed attempt still pending or dead.
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

impl SubscriptionHealth {
    /// What the overview warns about, worst first: `dead` (deliveries were
    /// given up), `paused` (the circuit breaker is open), `failing` (attempts
    /// fail since `failing_since`); `None` when it delivers.
    pub fn warning(&self, now: Timestamp) -> Option<&'static str> {
        if self.dead > 0 {
            Some("dead")
        } else if self.paused_until.is_some_and(|t| t.micros() > now.micros()) {
            Some("paused")
        } else if self.failing_since.is_some() {
            Some("failing")
        } else {
            None
        }
    }
}

#[async_trait]
pub trait NotifyStore: Send + Sync + 'static {
    /// Stores a subscription and its first secret, with a `subscription.created`
    /// ledger event. A taken name is a `Conflict`.
    async fn create_subscription(
        &self,
        new: NewSubscription,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Subscription>;

    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>>;

    /// Creates the subscription, or brings the one of that name (of the same
    /// kind) to `new`'s destination, filter and options, keeping its
    /// deliveries: for subscriptions the server's settings define (the MLflow
    /// write-back). Recorded as `subscription.created` or
    /// `subscription.updated`; nothing written when unchanged. A subscription
    /// of that name and another kind is a `Conflict`.
    async fn configure_subscription(
        &self,
        new: NewSubscription,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<(Subscription, Configured)>;

    async fn get_subscription(&self, name: &str) -> StoreResult<Option<Subscription>>;

    /// Deletes it with its secrets and deliveries (`subscription.deleted` in
    /// the ledger); false if there was none by that name.
    async fn delete_subscription(
        &self,
        name: &str,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Adds `secret` as the newest; the older ones keep signing until
    /// `overlap_until` (or their own earlier expiry). Recorded in the ledger
    /// (without the secret). Unknown name: `NotFound`.
    async fn rotate_secret(
        &self,
        name: &str,
        secret: &str,
        overlap_until: Timestamp,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Deletes delivered deliveries delivered before `before` (dead ones stay
    /// until redelivered or their subscription is deleted). Returns how many.
    async fn prune_deliveries(&self, before: Timestamp) -> StoreResult<u64>;

    /// Queues a test message to the subscription (after its pending deliveries).
    async fn enqueue_test(&self, name: &str, at: Timestamp) -> StoreResult<Delivery>;

    /// Sends a delivery again (pending now, its retry period starting anew).
    /// Unknown: `NotFound`; already pending: `Conflict`.
    async fn redeliver(&self, delivery_id: i64, at: Timestamp) -> StoreResult<Delivery>;

    /// The subscription's deliveries, newest first.
    async fn recent_deliveries(
        &self,
        subscription_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;

    /// Leases up to `limit` due deliveries to `owner` until `lease_until`,
    /// each the oldest pending one of a subscription that is not paused
    /// (one statement for the batch), loaded with their subscriptions, events
    /// and secrets. Every claim counts as an attempt. Parallel subscriptions
    /// are claimed as by `claim_runs` with `DEFAULT_PARALLEL`.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// Like `claim_deliveries`, with up to `run` deliveries of each
    /// subscription: the oldest pending ones, each due and free like every
    /// one before it. They are to be sent one after the other, in order;
    /// those not attempted (the run stopped at a failure) are released with
    /// `release_deliveries`. Of a parallel subscription: its oldest due and
    /// free deliveries, whatever is pending before them, so that at most
    /// `parallel` of its deliveries are leased at once (with several
    /// PostgreSQL servers claiming in the same instant, briefly a few more);
    /// up to `limit` of those too.
    async fn claim_runs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        run: u32,
        parallel: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// Frees deliveries `owner` holds that it did not attempt: their claim
    /// does not count as an attempt. Returns how many were released.
    async fn release_deliveries(&self, owner: &str, ids: &[i64]) -> StoreResult<u64>;

    /// Records the attempt of a delivery `owner` holds; false (and nothing
    /// written) if the lease was lost or the delivery deleted meanwhile.
    async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        attempt: Attempt,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Records the attempts (`id`, what it came to, when) of deliveries
    /// `owner` holds, as `finish_delivery` does for each; successes of
    /// healthy subscriptions (most attempts) in one transaction. Whether each
    /// was recorded (false: the lease was lost or the delivery deleted), in
    /// the order given.
    async fn finish_deliveries(
        &self,
        owner: &str,
        finished: Vec<(i64, Attempt, Timestamp)>,
    ) -> StoreResult<Vec<bool>>;

    async fn queue_stats(&self) -> StoreResult<QueueStats>;

    /// Every subscription's delivery health, by name.
    async fn subscription_health(&self) -> StoreResult<Vec<SubscriptionHealth>>;

    /// Records `ledger.verification_failed` (actor `system`, `problem` as its
    /// reason and in `details`), so that subscriptions hear of it.
    async fn record_verification_failure(
        &self,
        problem: &str,
        details: serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<LedgerEvent>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    #[test]
    fn a_failing_subscription_is_reported_once_after_the_configured_time() {
        let after = Duration::from_secs(60);
        assert!(!failing_alert_due(None, None, t(100), after), "healthy");
        assert!(!failing_alert_due(Some(t(50)), None, t(109), after), "59 s");
        assert!(failing_alert_due(Some(t(50)), None, t(110), after), "60 s");
        assert!(
            !failing_alert_due(Some(t(50)), Some(t(110)), t(500), after),
            "reported already"
        );
        assert!(failing_alert_due(Some(t(50)), None, t(50), Duration::ZERO));
    }

    #[test]
    fn the_overview_warns_of_dead_then_paused_then_failing_subscriptions() {
        let healthy = SubscriptionHealth {
            name: "a".into(),
            consecutive_failures: 0,
            paused_until: None,
            failing_since: None,
            failing_reported: None,
            pending: 3,
            dead: 0,
            oldest_pending: None,
            last_error: None,
            last_error_at: None,
        };
        assert_eq!(healthy.warning(t(10)), None);
        let failing = SubscriptionHealth {
            failing_since: Some(t(5)),
            consecutive_failures: 2,
            ..healthy.clone()
        };
        assert_eq!(failing.warning(t(10)), Some("failing"));
        let paused = SubscriptionHealth {
            paused_until: Some(t(20)),
            ..failing.clone()
        };
        assert_eq!(paused.warning(t(10)), Some("paused"));
        assert_eq!(paused.warning(t(30)), Some("failing"), "the pause ended");
        let dead = SubscriptionHealth {
            dead: 1,
            ..paused.clone()
        };
        assert_eq!(dead.warning(t(10)), Some("dead"));
    }

    #[test]
    fn events_about_a_subscriptions_own_deliveries_name_it() {
        let mut ev = LedgerEvent {
            id: 1,
            at: t(0),
            actor: "system".into(),
            action: SUBSCRIPTION_FAILING.into(),
            model_id: None,
            version: None,
            environment: None,
            cluster: None,
            reason: None,
            details: serde_json::json!({"subscription_id": 7, "subscription": "ops"}),
            prev_hash: String::new(),
            hash: String::new(),
        };
        assert_eq!(about_subscription(&ev), Some(7));
        ev.action = DELIVERY_DEAD.into();
        assert_eq!(about_subscription(&ev), Some(7));
        ev.action = SUBSCRIPTION_CREATED.into();
        assert_eq!(about_subscription(&ev), None);
    }
}
