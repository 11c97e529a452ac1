//! The console's subscriptions page and the overview's notification
//! warning, over `crate::subscriptions` (the rules the REST API uses too).

use app::data::{
    CreatedSubscription, DeliveryRow, NotificationStatus, NotificationWarning, RotatedSecret,
    SubscriptionDetail, SubscriptionForm, SubscriptionRow, Subscriptions,
};
use app::error::AppError;
use app::session::SignedInUser;
use switchyard_domain::access::Role;
use switchyard_domain::{DomainError, Timestamp};

use super::to_app_error;
use crate::notify::display_url;
use crate::state::AppState;
use crate::store::notify::{
    Delivery, Filter, Subscription, SubscriptionHealth, DEFAULT_EVENT_KINDS, EVENT_KINDS,
};
use crate::subscriptions::{self, Requested};

/// Deliveries shown with a subscription.
const RECENT: u32 = 50;

fn not_found(name: &str) -> AppError {
    to_app_error(DomainError::NotFound(format!("no subscription named {name:?}")).into())
}

fn row(s: &Subscription, health: Option<&SubscriptionHealth>, now: Timestamp) -> SubscriptionRow {
    SubscriptionRow {
        name: s.name.clone(),
        kind: s.kind.as_str().to_owned(),
        url: display_url(&s.url),
        events: s.filter.events.clone(),
        models: s.filter.models.clone(),
        environments: s.filter.environments.clone(),
        clusters: s.filter.clusters.clone(),
        created_at: s.created_at,
        created_by: s.created_by.clone(),
        warning: health.and_then(|h| h.warning(now)).map(str::to_owned),
        pending: health.map_or(0, |h| h.pending),
        dead: health.map_or(0, |h| h.dead),
        consecutive_failures: s.consecutive_failures,
        failing_since: s.failing_since,
        paused_until: s.paused_until.filter(|t| t.micros() > now.micros()),
        last_error: health.and_then(|h| h.last_error.clone()),
        parallel: s.parallel,
    }
}

fn delivery_row(d: Delivery) -> DeliveryRow {
    DeliveryRow {
        id: d.id,
        event_id: d.event_id,
        status: serde_json::to_value(d.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        attempts: d.attempts,
        created_at: d.created_at,
        next_attempt_at: d.next_attempt_at,
        last_attempt_at: d.last_attempt_at,
        response_code: d.response_code,
        latency_ms: d.latency_ms,
        last_error: d.last_error,
        delivered_at: d.delivered_at,
    }
}

/// "a, b,, c " → ["a", "b", "c"].
fn listed(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) async fn list(app: &AppState, user: &SignedInUser) -> Result<Subscriptions, AppError> {
    user.require(Role::Admin, "Reading subscriptions")?;
    let now = Timestamp::now();
    let all = app.store.list_subscriptions().await.map_err(to_app_error)?;
    let health = app
        .store
        .subscription_health()
        .await
        .map_err(to_app_error)?;
    Ok(Subscriptions {
        rows: all
            .iter()
            .map(|s| row(s, health.iter().find(|h| h.name == s.name), now))
            .collect(),
        event_kinds: EVENT_KINDS.iter().map(|k| (*k).to_owned()).collect(),
        default_kinds: DEFAULT_EVENT_KINDS
            .iter()
            .map(|k| (*k).to_owned())
            .collect(),
    })
}

pub(super) async fn detail(
    app: &AppState,
    user: &SignedInUser,
    name: &str,
) -> Result<SubscriptionDetail, AppError> {
    user.require(Role::Admin, "Reading a subscription")?;
    let s = app
        .store
        .get_subscription(name)
        .await
        .map_err(to_app_error)?
        .ok_or_else(|| not_found(name))?;
    let health = app
        .store
        .subscription_health()
        .await
        .map_err(to_app_error)?;
    let deliveries = app
        .store
        .recent_deliveries(s.id, RECENT)
        .await
        .map_err(to_app_error)?;
    Ok(SubscriptionDetail {
        row: row(
            &s,
            health.iter().find(|h| h.name == s.name),
            Timestamp::now(),
        ),
        deliveries: deliveries.into_iter().map(delivery_row).collect(),
    })
}

pub(super) async fn create(
    app: &AppState,
    user: &SignedInUser,
    form: &SubscriptionForm,
) -> Result<CreatedSubscription, AppError> {
    user.require(Role::Admin, "Creating a subscription")?;
    let requested = Requested {
        name: form.name.clone(),
        kind: Some(form.kind.clone()),
        url: form.url.clone(),
        filter: Filter {
            events: listed(&form.events),
            models: listed(&form.models),
            environments: listed(&form.environments),
            clusters: listed(&form.clusters),
        },
        parallel: form.parallel,
    };
    let (created, secret) = subscriptions::create(app, requested, &user.username, Timestamp::now())
        .await
        .map_err(to_app_error)?;
    Ok(CreatedSubscription {
        name: created.name,
        secret,
    })
}

pub(super) async fn delete(
    app: &AppState,
    user: &SignedInUser,
    name: &str,
) -> Result<(), AppError> {
    user.require(Role::Admin, "Deleting a subscription")?;
    if app
        .store
        .delete_subscription(name, &user.username, Timestamp::now())
        .await
        .map_err(to_app_error)?
    {
        Ok(())
    } else {
        Err(not_found(name))
    }
}

pub(super) async fn send_test(
    app: &AppState,
    user: &SignedInUser,
    name: &str,
) -> Result<(), AppError> {
    user.require(Role::Admin, "Sending a test message")?;
    app.store
        .enqueue_test(name, Timestamp::now())
        .await
        .map_err(to_app_error)?;
    Ok(())
}

pub(super) async fn redeliver(
    app: &AppState,
    user: &SignedInUser,
    id: i64,
) -> Result<(), AppError> {
    user.require(Role::Admin, "Redelivering")?;
    app.store
        .redeliver(id, Timestamp::now())
        .await
        .map_err(to_app_error)?;
    Ok(())
}

pub(super) async fn rotate(
    app: &AppState,
    user: &SignedInUser,
    name: &str,
    overlap_hours: Option<i64>,
) -> Result<RotatedSecret, AppError> {
    user.require(Role::Admin, "Rotating a subscription's secret")?;
    let (secret, until) =
        subscriptions::rotate_secret(app, name, overlap_hours, &user.username, Timestamp::now())
            .await
            .map_err(to_app_error)?;
    Ok(RotatedSecret {
        name: name.to_owned(),
        secret,
        previous_valid_until: until,
    })
}

pub(super) async fn status(
    app: &AppState,
    user: &SignedInUser,
) -> Result<NotificationStatus, AppError> {
    user.require(Role::Viewer, "Reading the notification status")?;
    let admin = user.role.allows(Role::Admin);
    let (count, warnings) = subscriptions::status(app, admin, Timestamp::now())
        .await
        .map_err(to_app_error)?;
    Ok(NotificationStatus {
        subscriptions: count,
        warnings: warnings
            .into_iter()
            .map(|w| NotificationWarning {
                subscription: w.subscription,
                warning: w.warning.to_owned(),
                failing_since: w.failing_since,
                pending: w.pending,
                dead: w.dead,
            })
            .collect(),
        can_manage: admin,
    })
}
