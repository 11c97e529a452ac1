//! Notification subscriptions as the REST API (`rest/subscriptions.rs`) and
//! the console (`console.rs`) both change them: names, kinds, destinations
//! and filters checked before anything is stored, the signing secret made
//! and sealed, rotation limits, and the health warnings the overview shows —
//! one path to the store, whoever asks.

use serde::Serialize;
use switchyard_domain::{DomainError, ModelId, Timestamp};

use crate::notify::sealed::seal;
use crate::notify::{new_secret, validate_destination};
use crate::state::AppState;
use crate::store::notify::{
    DestinationKind, Filter, NewSubscription, Subscription, SubscriptionHealth, EVENT_KINDS,
};
use crate::store::{StoreError, StoreResult};

/// Longest overlap of a rotated secret, in hours (30 days).
pub const MAX_OVERLAP_HOURS: i64 = 720;

/// Overlap of a rotated secret when none is asked for, in hours.
pub const DEFAULT_OVERLAP_HOURS: i64 = 24;

fn invalid(message: String) -> StoreError {
    DomainError::Invalid(message).into()
}

/// What a new subscription is asked to be, unchecked.
#[derive(Debug, Clone)]
pub struct Requested {
    pub name: String,
    /// `webhook` (when absent) or `chat`.
    pub kind: Option<String>,
    pub url: String,
    pub filter: Filter,
    /// Its deliveries may be sent concurrently, out of event order (default: in order).
    pub parallel: bool,
}

/// `filter` once every event kind is known and every model, environment
/// and cluster it names exists.
pub async fn checked_filter(app: &AppState, filter: Filter) -> StoreResult<Filter> {
    for kind in &filter.events {
        if !EVENT_KINDS.contains(&kind.as_str()) {
            return Err(invalid(format!(
                "filter.events: unknown event kind {kind:?}; known kinds: {}",
                EVENT_KINDS.join(", ")
            )));
        }
    }
    for model in &filter.models {
        let id = ModelId::parse(model).map_err(|e| invalid(format!("filter.models: {e}")))?;
        match app.store.list_versions(&id).await {
            Ok(_) => {}
            Err(StoreError::Domain(DomainError::NotFound(_))) => {
                return Err(invalid(format!(
                    "filter.models: unknown model {model:?} (register a version of it first)"
                )))
            }
            Err(e) => return Err(e),
        }
    }
    if !filter.environments.is_empty() {
        let known = app.store.list_environments().await?;
        for env in &filter.environments {
            if !known.iter().any(|e| e.name == *env) {
                return Err(invalid(format!(
                    "filter.environments: unknown environment {env:?}"
                )));
            }
        }
    }
    for cluster in &filter.clusters {
        if app.store.get_cluster(cluster).await?.is_none() {
            return Err(invalid(format!(
                "filter.clusters: unknown cluster {cluster:?}"
            )));
        }
    }
    Ok(filter)
}

/// Creates the subscription `actor` asked for; its signing secret (webhooks
/// only — chat messages are not signed) is returned this once.
pub async fn create(
    app: &AppState,
    requested: Requested,
    actor: &str,
    at: Timestamp,
) -> StoreResult<(Subscription, Option<String>)> {
    let name =
        switchyard_domain::clusters::parse_cluster_name(requested.name.trim()).map_err(|_| {
            invalid(format!(
                "subscription name {:?} is not valid: it must match [a-z0-9][a-z0-9._-]{{0,63}}",
                requested.name
            ))
        })?;
    let kind = match requested.kind.as_deref().map(str::trim) {
        None | Some("") => DestinationKind::Webhook,
        Some("mlflow-alias") => {
            return Err(invalid(
                "kind mlflow-alias is configured by the server's SWITCHYARD_MLFLOW_WRITE_BACK, not by hand"
                    .to_owned(),
            ))
        }
        Some(k) => DestinationKind::parse(k)
            .ok_or_else(|| invalid(format!("kind must be webhook or chat, not {k:?}")))?,
    };
    validate_destination(&requested.url, app.config.webhook_allow_private)
        .await
        .map_err(invalid)?;
    let filter = checked_filter(app, requested.filter).await?;
    let secret = new_secret();
    let created = app
        .store
        .create_subscription(
            NewSubscription {
                name,
                kind,
                url: requested.url.trim().to_owned(),
                filter,
                secret: seal(app.config.secrets_key.as_ref(), &secret),
                options: serde_json::Value::Null,
                parallel: requested.parallel,
            },
            actor,
            at,
        )
        .await?;
    let shown = (kind == DestinationKind::Webhook).then_some(secret);
    Ok((created, shown))
}

/// A new secret for `name`, shown this once; the previous ones keep signing
/// beside it for `overlap_hours` (0–720, default 24). Returns the secret and
/// until when the previous ones are valid.
pub async fn rotate_secret(
    app: &AppState,
    name: &str,
    overlap_hours: Option<i64>,
    actor: &str,
    now: Timestamp,
) -> StoreResult<(String, Timestamp)> {
    let hours = overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if !(0..=MAX_OVERLAP_HOURS).contains(&hours) {
        return Err(invalid(format!(
            "overlap_hours must be from 0 to {MAX_OVERLAP_HOURS}, not {hours}"
        )));
    }
    let until = Timestamp::from_micros(now.micros() + hours * 3_600_000_000);
    let secret = new_secret();
    app.store
        .rotate_secret(
            name,
            &seal(app.config.secrets_key.as_ref(), &secret),
            until,
            actor,
            now,
        )
        .await?;
    Ok((secret, until))
}

/// One subscription that is not delivering, for the overview's warning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub subscription: String,
    /// `dead` (deliveries given up), `paused` (circuit breaker open) or `failing`.
    pub warning: &'static str,
    pub failing_since: Option<Timestamp>,
    pub reported_at: Option<Timestamp>,
    pub consecutive_failures: i64,
    pub paused_until: Option<Timestamp>,
    pub pending: i64,
    pub dead: i64,
    pub oldest_pending: Option<Timestamp>,
    /// The receiver's last answer, excerpted: configuration, for admins only.
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// How many subscriptions there are, and one warning per subscription that
/// is dead, paused or failing, worst first. `admin` sees the last errors.
pub async fn status(
    app: &AppState,
    admin: bool,
    now: Timestamp,
) -> StoreResult<(usize, Vec<Warning>)> {
    let all = app.store.subscription_health().await?;
    let mut warnings: Vec<Warning> = all
        .iter()
        .filter_map(|h| warning_of(h, admin, now))
        .collect();
    let rank = |w: &str| match w {
        "dead" => 0,
        "paused" => 1,
        _ => 2,
    };
    warnings.sort_by_key(|w| rank(w.warning));
    Ok((all.len(), warnings))
}

fn warning_of(h: &SubscriptionHealth, admin: bool, now: Timestamp) -> Option<Warning> {
    let warning = h.warning(now)?;
    Some(Warning {
        subscription: h.name.clone(),
        warning,
        failing_since: h.failing_since,
        reported_at: h.failing_reported,
        consecutive_failures: h.consecutive_failures,
        paused_until: h.paused_until.filter(|t| t.micros() > now.micros()),
        pending: h.pending,
        dead: h.dead,
        oldest_pending: h.oldest_pending,
        last_error: if admin { h.last_error.clone() } else { None },
        last_error_at: h.last_error_at,
    })
}
