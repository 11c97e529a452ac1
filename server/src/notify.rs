//! Notifications: the delivery worker that runs in every server, the
//! payloads (a signed webhook body; a Slack-compatible chat message), and the
//! checks on a destination before it is saved.
//!
//! The worker claims due deliveries from the outbox (`NotifyStore`), sends
//! each with a timeout, and records the attempt: delivered; failed, to be
//! tried again after an exponential back-off with jitter; or dead once the
//! retry period has passed. A subscription that fails `breaker_threshold`
//! times in a row is paused for `breaker_cooldown` (the circuit breaker).
//! Webhooks are signed with the `standardwebhooks` crate; `webhook-id` is
//! `evt_<ledger event id>` in every attempt, so receivers can drop duplicates.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use switchyard_domain::ledger::LedgerEvent;
use switchyard_domain::Timestamp;
use tokio::task::JoinHandle;

pub mod sealed;

use crate::store::notify::{AfterAttempt, Attempt, ClaimedDelivery, DestinationKind, QueueStats};
use crate::store::DynStore;

/// How often each worker deletes deliveries older than `keep_delivered`.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Bytes of a failed answer kept with the delivery.
const ERROR_EXCERPT: usize = 300;

#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Longest wait for a destination's answer.
    pub timeout: Duration,
    /// How long a delivery is retried before it is marked dead (default 24 h).
    pub retry_period: Duration,
    /// First back-off; doubled after each failure, up to `backoff_max`, with jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Failures in a row after which a subscription is paused…
    pub breaker_threshold: i64,
    /// … for this long.
    pub breaker_cooldown: Duration,
    /// How often the outbox is polled when it was empty.
    pub poll: Duration,
    /// Deliveries claimed at once, in all.
    pub batch: u32,
    /// Deliveries of one subscription claimed at once, sent one after the
    /// other in event order (a run stops at the first failure); default 1.
    /// More amortise the claims over bursts, but after a crash the dead
    /// server's whole run is sent again, not only its delivery in flight.
    pub run: u32,
    /// Deliveries of one parallel subscription in flight at once, on all
    /// servers (`SWITCHYARD_WEBHOOK_PARALLEL`, default 8); ordered
    /// subscriptions are sent one at a time (or in runs) whatever this says.
    pub parallel: u32,
    /// The console's address as its users reach it, for links in messages.
    pub console_url: String,
    /// Delivered deliveries are kept this long (for the subscription's page), then pruned.
    pub keep_delivered: Duration,
    /// Opens the stored signing secrets (`SWITCHYARD_SECRETS_KEY`).
    pub secrets_key: Option<sealed::SecretsKey>,
    /// A subscription whose attempts have failed for this long since its last
    /// success is reported once in the ledger (`subscription.failing`, sent
    /// to the other subscriptions); its next success records `subscription.recovered`.
    pub failing_alert_after: Duration,
    /// Send to loopback and private addresses too (`SWITCHYARD_WEBHOOK_ALLOW_PRIVATE=1`).
    /// Off, the worker refuses them at every attempt, whatever a name resolves to by then.
    pub allow_private: bool,
    /// The MLflow write-back's credential toward an MLflow whose source has
    /// none (MLflow's own `MLFLOW_TRACKING_TOKEN`, or
    /// `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`).
    pub mlflow_credential: Option<crate::mlflow::Credential>,
    /// The credential of each MLflow written back to that has its own (a
    /// followed source's), by tracking URI; the others use `mlflow_credential`.
    pub mlflow_credentials: std::collections::BTreeMap<String, crate::mlflow::Credential>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            timeout: Duration::from_secs(10),
            retry_period: Duration::from_secs(24 * 3600),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(60),
            poll: Duration::from_millis(250),
            batch: 32,
            run: 1,
            parallel: crate::store::notify::DEFAULT_PARALLEL,
            console_url: "http://127.0.0.1:3000".to_owned(),
            keep_delivered: Duration::from_secs(30 * 86_400),
            secrets_key: None,
            failing_alert_after: Duration::from_secs(15 * 60),
            allow_private: false,
            mlflow_credential: None,
            mlflow_credentials: std::collections::BTreeMap::new(),
        }
    }
}

impl NotifySettings {
    /// The defaults, overridden by `SWITCHYARD_WEBHOOK_TIMEOUT_MS`,
    /// `SWITCHYARD_WEBHOOK_RETRY_PERIOD_S`, `SWITCHYARD_WEBHOOK_BACKOFF_MS`,
    /// `SWITCHYARD_WEBHOOK_BACKOFF_MAX_MS`, `SWITCHYARD_WEBHOOK_BREAKER_FAILURES`,
    /// `SWITCHYARD_WEBHOOK_BREAKER_COOLDOWN_MS`, `SWITCHYARD_WEBHOOK_POLL_MS`,
    /// `SWITCHYARD_WEBHOOK_FAILING_ALERT_S`, `SWITCHYARD_WEBHOOK_RUN`,
    /// `SWITCHYARD_WEBHOOK_PARALLEL` and `SWITCHYARD_PUBLIC_URL` when set.
    pub fn from_env() -> anyhow::Result<NotifySettings> {
        let num =
            |key: &str, range: std::ops::RangeInclusive<u64>| -> anyhow::Result<Option<u64>> {
                match std::env::var(key).ok().filter(|v| !v.is_empty()) {
                    None => Ok(None),
                    Some(v) => match v.parse::<u64>() {
                        Ok(n) if range.contains(&n) => Ok(Some(n)),
                        _ => anyhow::bail!(
                            "{key}={v:?} must be a number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    },
                }
            };
        let mut s = NotifySettings::default();
        if let Some(n) = num("SWITCHYARD_WEBHOOK_TIMEOUT_MS", 100..=120_000)? {
            s.timeout = Duration::from_millis(n);
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_RETRY_PERIOD_S", 1..=30 * 86_400)? {
            s.retry_period = Duration::from_secs(n);
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_BACKOFF_MS", 10..=3_600_000)? {
            s.backoff_base = Duration::from_millis(n);
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_BACKOFF_MAX_MS", 10..=86_400_000)? {
            s.backoff_max = Duration::from_millis(n);
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_BREAKER_FAILURES", 1..=1000)? {
            s.breaker_threshold = i64::try_from(n)?;
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_BREAKER_COOLDOWN_MS", 10..=86_400_000)? {
            s.breaker_cooldown = Duration::from_millis(n);
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_KEEP_DAYS", 1..=3650)? {
            s.keep_delivered = Duration::from_secs(n * 86_400);
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_POLL_MS", 10..=60_000)? {
            s.poll = Duration::from_millis(n);
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_RUN", 1..=64)? {
            s.run = u32::try_from(n)?;
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_PARALLEL", 1..=256)? {
            s.parallel = u32::try_from(n)?;
        }
        if let Some(n) = num("SWITCHYARD_WEBHOOK_FAILING_ALERT_S", 0..=30 * 86_400)? {
            s.failing_alert_after = Duration::from_secs(n);
        }
        s.secrets_key = sealed::SecretsKey::from_env().map_err(anyhow::Error::msg)?;
        s.mlflow_credential = crate::mlflow::Credential::from_env(None)?;
        s.allow_private = std::env::var("SWITCHYARD_WEBHOOK_ALLOW_PRIVATE")
            .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        if let Some(url) = std::env::var("SWITCHYARD_PUBLIC_URL")
            .ok()
            .filter(|v| !v.is_empty())
        {
            s.console_url = url.trim_end_matches('/').to_owned();
        } else if let Ok(addr) = std::env::var("SWITCHYARD_ADDR") {
            if !addr.is_empty() {
                s.console_url = format!("http://{addr}");
            }
        }
        Ok(s)
    }

    /// A claim outlives the slowest attempt, or run: a run's next delivery
    /// is sent only while the run has taken less than `timeout`, so it ends
    /// within two.
    fn lease(&self) -> Duration {
        let attempts = if self.run > 1 { 2 } else { 1 };
        self.timeout * attempts + Duration::from_secs(2)
    }

    /// The wait before attempt `attempts + 1`: base · 2^(attempts−1), at most
    /// `backoff_max`, of which a random 50–100 % (jitter, so that failed
    /// destinations are not retried in lockstep).
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let full = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.backoff_max);
        full.mul_f64(rand::random_range(0.5..=1.0))
    }
}

/// Deliveries counted by this process since it started (for `/metrics`).
pub struct DeliveryCounters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dead: AtomicU64,
}

pub static COUNTERS: DeliveryCounters = DeliveryCounters {
    sent: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    dead: AtomicU64::new(0),
};

/// The Prometheus text of the delivery metrics.
pub fn render_metrics(out: &mut String, stats: Option<&QueueStats>, now: Timestamp) {
    use std::fmt::Write;
    let c = &COUNTERS;
    let _ = write!(
        out,
        "# HELP switchyard_deliveries_total Delivery attempts of notifications by this server, by outcome.\n\
         # TYPE switchyard_deliveries_total counter\n\
         switchyard_deliveries_total{{outcome=\"sent\"}} {}\n\
         switchyard_deliveries_total{{outcome=\"failed\"}} {}\n\
         switchyard_deliveries_total{{outcome=\"dead\"}} {}\n",
        c.sent.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        c.dead.load(Ordering::Relaxed),
    );
    if let Some(s) = stats {
        let age = s
            .oldest_pending
            .map(|t| (now.micros() - t.micros()).max(0) as f64 / 1e6)
            .unwrap_or(0.0);
        let _ = write!(
            out,
            "# HELP switchyard_delivery_queue_pending Deliveries waiting to be sent (all servers).\n\
             # TYPE switchyard_delivery_queue_pending gauge\n\
             switchyard_delivery_queue_pending {}\n\
             # HELP switchyard_delivery_queue_age_seconds Age of the oldest pending delivery.\n\
             # TYPE switchyard_delivery_queue_age_seconds gauge\n\
             switchyard_delivery_queue_age_seconds {age:.3}\n\
             # HELP switchyard_deliveries_dead Deliveries given up (all servers).\n\
             # TYPE switchyard_deliveries_dead gauge\n\
             switchyard_deliveries_dead {}\n",
            s.pending, s.dead
        );
    }
}

/// Starts the delivery worker of this process.
pub fn spawn(store: DynStore, settings: NotifySettings) -> JoinHandle<()> {
    tokio::spawn(async move {
        let worker = Worker::new(store, settings);
        worker.run().await
    })
}

struct Worker {
    store: DynStore,
    settings: NotifySettings,
    client: reqwest::Client,
    /// For the MLflow write-back: the tracking server comes from the
    /// server's own settings, usually on the internal network, so it is not
    /// held to the public-only rule of subscriptions made through the API.
    mlflow: reqwest::Client,
    owner: String,
}

impl Worker {
    fn new(store: DynStore, settings: NotifySettings) -> Worker {
        let mut builder = reqwest::Client::builder();
        if !settings.allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        let client = builder
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A destination may not send the request on to somewhere else
            // (an address the save-time check would have refused).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let mlflow = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let owner = format!(
            "notify-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Worker {
            store,
            settings,
            client,
            mlflow,
            owner,
        }
    }

    async fn run(self) {
        let mut pruned_at: Option<Instant> = None;
        loop {
            let now = Timestamp::now();
            if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(Instant::now());
                let before = Timestamp::from_micros(
                    now.micros()
                        .saturating_sub(micros(self.settings.keep_delivered)),
                );
                if let Err(e) = self.store.prune_deliveries(before).await {
                    tracing::warn!(error = %e, "cannot prune old deliveries");
                }
            }
            let lease_until = after(now, self.settings.lease());
            match self
                .store
                .claim_runs(
                    &self.owner,
                    now,
                    lease_until,
                    self.settings.batch,
                    self.settings.run,
                    self.settings.parallel,
                )
                .await
            {
                Ok(claimed) if !claimed.is_empty() => {
                    // Subscriptions at once, each ordered one's run in order and
                    // each delivery of a parallel one on its own; recorded together.
                    let mut runs: Vec<Vec<ClaimedDelivery>> = Vec::new();
                    for c in claimed {
                        let ordered_run = if c.subscription.parallel {
                            None
                        } else {
                            runs.iter_mut()
                                .find(|r| r[0].subscription.id == c.subscription.id)
                        };
                        match ordered_run {
                            Some(run) => run.push(c),
                            None => runs.push(vec![c]),
                        }
                    }
                    let sent =
                        futures::future::join_all(runs.into_iter().map(|r| self.send_run(r))).await;
                    let mut finished = Vec::new();
                    let mut not_sent = Vec::new();
                    for (done, rest) in sent {
                        finished.extend(done);
                        not_sent.extend(rest);
                    }
                    self.finish(finished).await;
                    if let Err(e) = self.store.release_deliveries(&self.owner, &not_sent).await {
                        tracing::warn!(deliveries = ?not_sent, error = %e,
                            "cannot release unsent deliveries; they are sent when their leases end");
                    }
                }
                Ok(_) => {
                    // Until the next poll, or at once when this process writes deliveries.
                    tokio::select! {
                        () = tokio::time::sleep(self.settings.poll) => {}
                        () = crate::store::notify::DELIVERIES_WRITTEN.notified() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim deliveries; trying again");
                    tokio::time::sleep(self.settings.poll.max(Duration::from_secs(1))).await;
                }
            }
        }
    }

    /// Sends one subscription's run in order, up to its first failure and
    /// while it has taken less than one timeout: the attempts, and the ids
    /// of the deliveries not sent.
    async fn send_run(
        &self,
        run: Vec<ClaimedDelivery>,
    ) -> (Vec<(i64, Attempt, Timestamp)>, Vec<i64>) {
        let started = Instant::now();
        let mut done = Vec::with_capacity(run.len());
        let mut rest = Vec::new();
        let mut run = run.into_iter();
        while let Some(c) = run.next() {
            if !done.is_empty() && started.elapsed() >= self.settings.timeout {
                rest.push(c.delivery.id);
                break;
            }
            let attempt = self.deliver(c).await;
            let delivered = attempt.1.next == AfterAttempt::Delivered;
            done.push(attempt);
            if !delivered {
                break;
            }
        }
        rest.extend(run.map(|c| c.delivery.id));
        (done, rest)
    }

    /// Sends one claimed delivery: what the attempt came to, to be recorded.
    async fn deliver(&self, c: ClaimedDelivery) -> (i64, Attempt, Timestamp) {
        let started = Instant::now();
        let (result, record) = if c.subscription.kind == DestinationKind::MlflowAlias {
            let credential = self
                .settings
                .mlflow_credentials
                .get(c.subscription.url.trim_end_matches('/'))
                .or(self.settings.mlflow_credential.as_ref());
            match crate::mlflow::write_back::attempt(&self.store, &self.mlflow, credential, &c)
                .await
            {
                Ok((code, record)) => (Ok((code, String::new())), record),
                Err(e) => (Err(e), None),
            }
        } else {
            (self.send(&c).await, None)
        };
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = Timestamp::now();
        let (response_code, error) = match result {
            Ok((code, _)) if (200..300).contains(&code) => (Some(i64::from(code)), None),
            Ok((code, body)) => (
                Some(i64::from(code)),
                Some(format!("HTTP {code}: {}", excerpt(&body))),
            ),
            Err(e) => (None, Some(e)),
        };
        let next = if error.is_none() {
            COUNTERS.sent.fetch_add(1, Ordering::Relaxed);
            AfterAttempt::Delivered
        } else {
            let retry_end = after(c.retry_since, self.settings.retry_period);
            if now.micros() >= retry_end.micros() {
                COUNTERS.dead.fetch_add(1, Ordering::Relaxed);
                AfterAttempt::Dead
            } else {
                COUNTERS.failed.fetch_add(1, Ordering::Relaxed);
                let wait = self.settings.backoff(c.delivery.attempts);
                AfterAttempt::RetryAt {
                    at: after(now, wait),
                    breaker_threshold: self.settings.breaker_threshold,
                    pause_until: after(now, self.settings.breaker_cooldown),
                }
            }
        };
        if let Some(e) = &error {
            tracing::info!(delivery = c.delivery.id, subscription = %c.subscription.name,
                attempts = c.delivery.attempts, error = %e, "delivery attempt failed");
        }
        let attempt = Attempt {
            response_code,
            latency_ms,
            error,
            next,
            failing_alert_after: self.settings.failing_alert_after,
            record: record.filter(|_| next == AfterAttempt::Delivered),
        };
        (c.delivery.id, attempt, now)
    }

    /// Records a batch of attempts.
    async fn finish(&self, finished: Vec<(i64, Attempt, Timestamp)>) {
        let ids: Vec<i64> = finished.iter().map(|(id, _, _)| *id).collect();
        match self.store.finish_deliveries(&self.owner, finished).await {
            Ok(recorded) => {
                for (id, ok) in ids.iter().zip(recorded) {
                    if !ok {
                        tracing::warn!(
                            delivery = id,
                            "the delivery's lease was lost before its attempt was recorded; it is sent again"
                        );
                    }
                }
            }
            Err(e) => {
                tracing::warn!(deliveries = ?ids, error = %e, "cannot record delivery attempts; they are sent again when their leases end")
            }
        }
    }

    /// One attempt: the status code and body, or why there was no answer.
    async fn send(&self, c: &ClaimedDelivery) -> Result<(u16, String), String> {
        if !self.settings.allow_private {
            // Names are checked by the resolver (`PublicOnly`); addresses here.
            refuse_internal_literal(&c.subscription.url)?;
        }
        let link = console_link(&self.settings.console_url, c.event.as_ref());
        let body = match c.subscription.kind {
            DestinationKind::Webhook => {
                webhook_body(c.event.as_ref(), &c.delivery.message_id, &link)
            }
            DestinationKind::Chat => chat_body(c.event.as_ref(), &link),
            DestinationKind::MlflowAlias => {
                return Err("an mlflow-alias delivery is not a message".to_owned())
            }
        };
        let body =
            serde_json::to_vec(&body).map_err(|e| format!("cannot serialise the message: {e}"))?;
        let mut request = self
            .client
            .post(&c.subscription.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if c.subscription.kind == DestinationKind::Webhook {
            let timestamp = Timestamp::now().micros() / 1_000_000;
            let secrets = c
                .secrets
                .iter()
                .map(|s| sealed::open(self.settings.secrets_key.as_ref(), s))
                .collect::<Result<Vec<_>, _>>()?;
            let signature = sign(&secrets, &c.delivery.message_id, timestamp, &body)?;
            request = request
                .header(standardwebhooks::HEADER_WEBHOOK_ID, &c.delivery.message_id)
                .header(
                    standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                    timestamp.to_string(),
                )
                .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature);
        }
        let mut response = request.body(body).send().await.map_err(transport_error)?;
        let code = response.status().as_u16();
        // The answer is read only as far as the excerpt needs (the client's
        // timeout covers the body too), so a huge one costs nothing.
        let mut head = Vec::new();
        while head.len() <= ERROR_EXCERPT {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        Ok((code, String::from_utf8_lossy(&head).into_owned()))
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `t` plus `d`, saturating.
fn after(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_micros(t.micros().saturating_add(micros(d)))
}

/// Resolves destination names for the worker, keeping only public
/// addresses: a name that passed the check when it was saved but resolves to
/// an internal address now (DNS rebinding) is not connected to.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> =
                all.into_iter().filter(|a| !is_internal(&a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to internal addresses only, which are refused \
                     (SWITCHYARD_WEBHOOK_ALLOW_PRIVATE=1 allows them)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Refuses a URL whose host is an internal IP address.
fn refuse_internal_literal(url: &str) -> Result<(), String> {
    let ip = match reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_internal(&ip) {
        return Err(format!(
            "the destination is an internal address ({ip}), which is refused \
             (SWITCHYARD_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
        ));
    }
    Ok(())
}

fn transport_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // Without the URL: it may hold a token (chat webhooks do).
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    excerpt(&text)
}

fn excerpt(s: &str) -> String {
    if s.len() <= ERROR_EXCERPT {
        return s.to_owned();
    }
    let mut end = ERROR_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `webhook-signature`: one `v1,<base64>` per valid secret, newest first,
/// separated by spaces (receivers accept any one that verifies: rotation).
pub fn sign(
    secrets: &[String],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, String> {
    if secrets.is_empty() {
        return Err("the subscription has no valid signing secret".to_owned());
    }
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let wh = standardwebhooks::Webhook::new(secret)
            .map_err(|e| format!("a stored signing secret is not valid: {e}"))?;
        signatures.push(
            wh.sign(message_id, timestamp, body)
                .map_err(|e| format!("cannot sign: {e}"))?,
        );
    }
    Ok(signatures.join(" "))
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The console page an event is about.
pub fn console_link(console: &str, event: Option<&LedgerEvent>) -> String {
    let Some(ev) = event else {
        return format!("{console}/");
    };
    let path = if ev.action.starts_with("promotion.") {
        "/approvals".to_owned()
    } else if let Some(cluster) = &ev.cluster {
        format!("/clusters/{cluster}")
    } else if let (Some(m), Some(v)) = (&ev.model_id, &ev.version) {
        format!("/versions/{m}:{v}")
    } else if let Some(m) = &ev.model_id {
        format!("/models/{m}")
    } else {
        "/audit".to_owned()
    };
    format!("{console}{path}")
}

/// The body of a webhook: `{type, timestamp, data}` (Standard Webhooks'
/// recommended shape), `data` being the ledger event and its console link.
pub fn webhook_body(event: Option<&LedgerEvent>, message_id: &str, link: &str) -> Value {
    match event {
        Some(ev) => json!({
            "type": ev.action,
            "timestamp": ev.at,
            "data": {
                "id": ev.id,
                "kind": ev.action,
                "at": ev.at,
                "actor": ev.actor,
                "model_id": ev.model_id,
                "version": ev.version,
                "environment": ev.environment,
                "cluster": ev.cluster,
                "reason": ev.reason,
                "details": ev.details,
                "hash": ev.hash,
                "link": link,
            }
        }),
        None => json!({
            "type": "test",
            "timestamp": Timestamp::now(),
            "data": { "message_id": message_id, "text": "Test message from Switchyard", "link": link },
        }),
    }
}

/// What happened, in words, for chat.
fn headline(ev: &LedgerEvent) -> String {
    let what = match ev.action.as_str() {
        "version.registered" => "Version registered",
        "version.deprecated" => "Version deprecated",
        "version.retired" => "Version retired",
        "version.retirement_held" => "Retirement held: still in use",
        "promotion.requested" => "Promotion waits for approval",
        "promotion.approved" => "Promotion approved",
        "promotion.rejected" => "Promotion rejected",
        "promotion.withdrawn" => "Promotion withdrawn by its requester",
        "promotion.expired" => "Promotion expired",
        "promotion.applied" => "Promotion applied",
        "operation.started" => "Operation started",
        "operation.completed" => "Operation finished",
        "operation.failed" => "Operation failed",
        "operation.interrupted" => "Operation interrupted",
        "operation.paused" => "Operation paused: continue it or roll it back",
        "operation.continued" => "Paused operation continued",
        "operation.rollback_chosen" => "Paused operation rolled back",
        "rollback" => "Rolled back",
        "cluster.drift_detected" => "Drift: a cluster serves what is not pinned",
        "cluster.drift_cleared" => "Drift cleared: the cluster serves what is pinned",
        "delivery.dead" => "Notification given up",
        "subscription.failing" => "Notifications failing",
        "subscription.recovered" => "Notifications delivered again",
        "ledger.verification_failed" => "Ledger verification FAILED",
        "mlflow.alias_set" => "MLflow alias set",
        "mlflow.alias_skipped" => "MLflow write-back skipped",
        other => other,
    };
    what.to_owned()
}

/// A Slack-compatible incoming-webhook message: `text` (the notification's
/// fallback) and blocks with what happened, to which version where, by
/// whom, why, and a button to the console page.
pub fn chat_body(event: Option<&LedgerEvent>, link: &str) -> Value {
    let Some(ev) = event else {
        return json!({
            "text": "Test message from Switchyard",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "Test message from *Switchyard*: this channel receives its notifications."}},
                {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open console"}, "url": link}]},
            ]
        });
    };
    let what = headline(ev);
    let subject = match (&ev.model_id, &ev.version) {
        (Some(m), Some(v)) => format!("*{m}* `{v}`"),
        (Some(m), None) => format!("*{m}*"),
        _ => String::new(),
    };
    let mut place = Vec::new();
    if let Some(env) = &ev.environment {
        place.push(format!("in *{env}*"));
    }
    if let Some(cluster) = &ev.cluster {
        place.push(format!("on cluster *{cluster}*"));
    }
    let line = [subject.clone(), place.join(" ")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Slack shows `text` only in notifications (the blocks in the channel);
    // Mattermost and Rocket.Chat ignore the blocks and show `text`, so it
    // carries the console link too (a bare URL, which all three link).
    let text = if line.is_empty() {
        format!("{what} (by {}) {link}", ev.actor)
    } else {
        format!("{what}: {line} (by {}) {link}", ev.actor)
    };
    let mut fields = vec![json!({"type": "mrkdwn", "text": format!("*By:*\n{}", ev.actor)})];
    if let Some(reason) = &ev.reason {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Why:*\n{reason}")}));
    }
    if ev.action == "promotion.requested" {
        if let Some(n) = ev.details.get("required_approvals").and_then(Value::as_i64) {
            fields.push(json!({"type": "mrkdwn", "text": format!("*Approvals needed:*\n{n}")}));
        }
    }
    if ev.action == "promotion.approved" {
        if let Some(n) = ev
            .details
            .get("approvals_still_needed")
            .and_then(Value::as_i64)
        {
            fields
                .push(json!({"type": "mrkdwn", "text": format!("*Approvals still needed:*\n{n}")}));
        }
    }
    if let Some(names) = ev.details.get("approvers").and_then(Value::as_array) {
        let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
        let text = if names.is_empty() {
            "nobody: no other active user may approve".to_owned()
        } else {
            names.join(", ")
        };
        fields.push(json!({"type": "mrkdwn", "text": format!("*Can approve:*\n{text}")}));
    }
    // Drift: what runs against what is pinned, in the watcher's words.
    if ev.action == "cluster.drift_detected" || ev.action == "cluster.drift_cleared" {
        if let Some(summary) = ev.details.get("summary").and_then(Value::as_str) {
            let label = if ev.action == "cluster.drift_detected" {
                "What runs vs what is pinned"
            } else {
                "Now"
            };
            fields.push(json!({"type": "mrkdwn", "text": format!("*{label}:*\n{summary}")}));
        }
    }
    if let Some(problem) = ev.details.get("problem").and_then(Value::as_str) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Problem:*\n{problem}")}));
    }
    if let Some(name) = ev.details.get("subscription").and_then(Value::as_str) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Subscription:*\n{name}")}));
    }
    if let Some(trigger) = ev.details.get("trigger").and_then(Value::as_str) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Trigger:*\n{trigger}")}));
    }
    if let Some(ms) = ev.details.get("time_to_restore_ms").and_then(Value::as_i64) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Time to restore:*\n{:.1} s", ms as f64 / 1000.0)}));
    }
    let button = if ev.action == "promotion.requested" || ev.action == "promotion.approved" {
        "Review promotion"
    } else if ev.action == "cluster.drift_detected" {
        "Open cluster"
    } else {
        "Open in console"
    };
    json!({
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": what}},
            {"type": "section", "text": {"type": "mrkdwn", "text": if line.is_empty() { "—".to_owned() } else { line }}, "fields": fields},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": button}, "url": link}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Switchyard ledger event {} `{}` at {}", ev.id, ev.action, ev.at)}]},
        ]
    })
}

/// A destination as shown back: scheme, host, port and the first path
/// segment; anything after it (chat webhook tokens), the query and any
/// credentials are left out.
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let mut segments = u
                .path_segments()
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty());
            let first = segments.next().map(|s| format!("/{s}")).unwrap_or_default();
            let more = if segments.next().is_some() || u.query().is_some() {
                "/…"
            } else {
                ""
            };
            format!("{}://{host}{port}{first}{more}", u.scheme())
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// Checks a destination before it is saved: http or https with a host, and
/// unless `allow_private`, no loopback, private, link-local or otherwise
/// internal address (its name is resolved to check). Errors are for the user
/// and never repeat the URL (it may hold credentials).
pub async fn validate_destination(url: &str, allow_private: bool) -> Result<(), String> {
    let u = reqwest::Url::parse(url.trim()).map_err(|e| format!("url is not a valid URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("url must be http or https, not {:?}", u.scheme()));
    }
    let Some(host) = u.host() else {
        return Err("url has no host".to_owned());
    };
    if allow_private {
        return Ok(());
    }
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => {
            let port = u.port_or_known_default().unwrap_or(443);
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("url's host {name:?} cannot be resolved: {e}"))?
                .map(|a| a.ip())
                .collect()
        }
    };
    if let Some(ip) = addrs.iter().find(|ip| is_internal(ip)) {
        return Err(format!(
            "url points to an internal address ({ip}); destinations on loopback or private \
             networks are refused (SWITCHYARD_WEBHOOK_ALLOW_PRIVATE=1 allows them)"
        ));
    }
    Ok(())
}

fn is_internal(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(&IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_standardwebhooks_verifier_for_every_secret() {
        let (a, b) = (new_secret(), new_secret());
        let body = br#"{"type":"test"}"#;
        let ts = Timestamp::now().micros() / 1_000_000;
        let sig = sign(&[a.clone(), b.clone()], "evt_7", ts, body).expect("signed");
        for secret in [&a, &b] {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("webhook-id", "evt_7".parse().expect("header"));
            headers.insert("webhook-timestamp", ts.to_string().parse().expect("header"));
            headers.insert("webhook-signature", sig.parse().expect("header"));
            standardwebhooks::Webhook::new(secret)
                .expect("secret")
                .verify(body, &headers)
                .expect("verifies");
        }
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "evt_8".parse().expect("header"));
        headers.insert("webhook-timestamp", ts.to_string().parse().expect("header"));
        headers.insert("webhook-signature", sig.parse().expect("header"));
        assert!(standardwebhooks::Webhook::new(&a)
            .expect("secret")
            .verify(body, &headers)
            .is_err());
        assert!(sign(&[], "evt_7", ts, body).is_err());
    }

    #[test]
    fn back_off_doubles_with_jitter_up_to_the_maximum() {
        let s = NotifySettings {
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            ..NotifySettings::default()
        };
        for (attempts, full) in [(1, 2), (2, 4), (3, 8), (6, 60), (40, 60)] {
            let d = s.backoff(attempts);
            let full = Duration::from_secs(full);
            assert!(d <= full && d >= full / 2, "attempt {attempts}: {d:?}");
        }
    }

    #[test]
    fn shown_urls_hide_credentials_tokens_and_queries() {
        assert_eq!(
            display_url("https://user:pw@hooks.slack.com/services/T0/B0/s3cr3t-path?x=1"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(
            display_url("http://10.0.0.1:8080/hook"),
            "http://10.0.0.1:8080/hook"
        );
    }

    #[tokio::test]
    async fn destinations_must_be_http_and_public_unless_allowed() {
        for bad in ["ftp://example.com/x", "not a url", "file:///etc/passwd"] {
            assert!(validate_destination(bad, true).await.is_err(), "{bad}");
        }
        for internal in [
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest",
            "http://192.168.1.1/",
            "http://localhost:8080/",
        ] {
            let e = validate_destination(internal, false)
                .await
                .expect_err(internal);
            assert!(e.contains("internal address"), "{internal}: {e}");
            assert!(
                validate_destination(internal, true).await.is_ok(),
                "{internal}"
            );
        }
        assert!(validate_destination("https://93.184.215.14/hook", false)
            .await
            .is_ok());
    }

    #[test]
    fn chat_messages_say_what_where_who_why_with_a_console_button() {
        let ev = LedgerEvent {
            id: 12,
            at: Timestamp::from_micros(0),
            actor: "alice".into(),
            action: "promotion.requested".into(),
            model_id: Some("chat".into()),
            version: Some("v2".into()),
            environment: Some("production".into()),
            cluster: None,
            reason: Some("better eval".into()),
            details: json!({"required_approvals": 2, "approvers": ["bob", "carol"]}),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let link = console_link("https://sy.example", Some(&ev));
        assert_eq!(link, "https://sy.example/approvals");
        let m = chat_body(Some(&ev), &link);
        let text = m["text"].as_str().expect("text");
        assert!(
            text.contains("chat")
                && text.contains("v2")
                && text.contains("production")
                && text.contains("alice")
                && text.ends_with(" https://sy.example/approvals"),
            "{text}"
        );
        let blocks = m["blocks"].to_string();
        assert!(
            blocks.contains("better eval")
                && blocks.contains("Review promotion")
                && blocks.contains(&link),
            "{blocks}"
        );
        assert!(blocks.contains("*Approvals needed:*\\n2"), "{blocks}");
        assert!(blocks.contains("*Can approve:*\\nbob, carol"), "{blocks}");
    }

    #[test]
    fn drift_messages_name_cluster_environment_what_runs_and_the_pin_with_a_cluster_button() {
        let ev = LedgerEvent {
            id: 40,
            at: Timestamp::from_micros(0),
            actor: "system".into(),
            action: "cluster.drift_detected".into(),
            model_id: Some("chat".into()),
            version: Some("v9".into()),
            environment: Some("production".into()),
            cluster: Some("eu-1".into()),
            reason: None,
            details: json!({"summary": "blue (100%) runs chat:v9; production pins chat:v2"}),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let link = console_link("https://sy.example", Some(&ev));
        assert_eq!(link, "https://sy.example/clusters/eu-1");
        let m = chat_body(Some(&ev), &link);
        let text = m["text"].as_str().expect("text");
        assert!(
            text.starts_with("Drift: a cluster serves what is not pinned: *chat* `v9` in *production* on cluster *eu-1*"),
            "{text}"
        );
        let blocks = m["blocks"].to_string();
        assert!(
            blocks.contains("*What runs vs what is pinned:*\\nblue (100%) runs chat:v9; production pins chat:v2"),
            "{blocks}"
        );
        assert!(blocks.contains("Open cluster") && blocks.contains(&link), "{blocks}");
        let cleared = LedgerEvent {
            action: "cluster.drift_cleared".into(),
            details: json!({"summary": "serves what production pins, as recorded"}),
            ..ev
        };
        let m = chat_body(Some(&cleared), &link);
        assert!(
            m["text"].as_str().unwrap_or_default().starts_with("Drift cleared"),
            "{m}"
        );
        assert!(m["blocks"].to_string().contains("*Now:*\\nserves what production pins"));
    }
}
