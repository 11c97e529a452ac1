//! Notification subscriptions (admin): create (the signing secret is shown
//! once), list, show with recent deliveries, delete, rotate the secret, send a
//! test message, redeliver. Destinations are checked before anything is
//! stored, and are shown back without credentials or tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::notify::display_url;
use crate::state::AppState;
use crate::store::notify::{Delivery, Filter, Subscription};
use crate::subscriptions;

/// Every subscription route is for admins: destinations and their traffic are configuration.
const REQUIRED: Role = Role::Admin;

/// Deliveries shown with a subscription.
const RECENT: u32 = 50;

/// The body of `POST /api/v1/subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    #[schema(example = "release-channel", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// `webhook` (default: the event as signed JSON) or `chat` (a Slack-compatible message).
    #[schema(example = "webhook", pattern = "^(webhook|chat)$")]
    pub kind: Option<String>,
    /// http or https.
    #[schema(example = "https://hooks.example.com/switchyard")]
    pub url: String,
    /// Which events; every list empty or absent admits any.
    #[serde(default)]
    pub filter: FilterBody,
    /// `false` (default): deliveries are sent one after the other, in event order.
    /// `true`: they may be sent concurrently by any server (at most
    /// `SWITCHYARD_WEBHOOK_PARALLEL` in flight), out of order; for receivers that
    /// do not care about order and want throughput.
    #[serde(default)]
    pub parallel: bool,
}

/// `events` (kinds; absent: the release events), `models`, `environments`, `clusters`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FilterBody {
    #[schema(example = json!(["promotion.requested", "rollback"]))]
    pub events: Vec<String>,
    #[schema(example = json!(["chat"]))]
    pub models: Vec<String>,
    #[schema(example = json!(["production"]))]
    pub environments: Vec<String>,
    pub clusters: Vec<String>,
}

/// The body of `POST /api/v1/subscriptions/{name}/rotate-secret`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// Hours the previous secrets keep signing beside the new one (0–720, default 24).
    #[schema(example = 24, minimum = 0, maximum = 720)]
    pub overlap_hours: Option<i64>,
}

fn shown(s: &Subscription) -> Value {
    let now = Timestamp::now();
    let paused = s.paused_until.filter(|t| t.micros() > now.micros());
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "kind": s.kind,
        "url": display_url(&s.url),
        "filter": s.filter,
        "created_at": s.created_at,
        "created_by": s.created_by,
        "status": if paused.is_some() { "paused" } else { "active" },
        "paused_until": paused,
        "consecutive_failures": s.consecutive_failures,
        "failing_since": s.failing_since,
        "parallel": s.parallel,
    });
    if !s.options.is_null() {
        v["options"] = s.options.clone();
    }
    v
}

fn shown_delivery(d: &Delivery) -> Value {
    json!(d)
}

impl From<FilterBody> for Filter {
    fn from(body: FilterBody) -> Filter {
        Filter {
            events: body.events,
            models: body.models,
            environments: body.environments,
            clusters: body.clusters,
        }
    }
}

fn unknown(name: &str) -> ApiError {
    ApiError::not_found(format!("no subscription named {name:?}"))
}

#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions",
    request_body = CreateSubscription,
    responses(
        (status = 201, description = "Created; `secret` (webhooks) is shown this once", body = ref("#/components/schemas/SubscriptionCreated")),
        (status = 409, description = "A subscription by that name exists", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Bad name, kind or URL; unknown event kind, model, environment or cluster in the filter; nothing stored", body = ref("#/components/schemas/Error")),
    ))]
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateSubscription>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    actor.require(REQUIRED, "creating a subscription")?;
    let requested = subscriptions::Requested {
        name: body.name,
        kind: body.kind,
        url: body.url,
        filter: body.filter.into(),
        parallel: body.parallel,
    };
    let (created, secret) =
        subscriptions::create(&app, requested, &actor.name, Timestamp::now()).await?;
    let mut v = shown(&created);
    if let (Some(secret), Some(o)) = (secret, v.as_object_mut()) {
        o.insert("secret".into(), json!(secret));
    }
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions",
    responses((status = 200, description = "Every subscription, by name; URLs without credentials or tokens", body = ref("#/components/schemas/SubscriptionList"))))]
pub async fn list(State(app): State<AppState>, actor: Actor) -> Result<Json<Value>, ApiError> {
    actor.require(REQUIRED, "listing subscriptions")?;
    let all = app.store.list_subscriptions().await?;
    Ok(Json(
        json!({ "subscriptions": all.iter().map(shown).collect::<Vec<_>>() }),
    ))
}

#[utoipa::path(get, path = "/api/v1/subscriptions/{name}", tag = "subscriptions",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "The subscription and its recent deliveries (status, attempts, response code, latency), newest first", body = ref("#/components/schemas/SubscriptionDetail")),
        (status = 404, description = "Unknown subscription", body = ref("#/components/schemas/Error")),
    ))]
pub async fn detail(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    actor.require(REQUIRED, "reading a subscription")?;
    let s = app
        .store
        .get_subscription(&name)
        .await?
        .ok_or_else(|| unknown(&name))?;
    let deliveries = app.store.recent_deliveries(s.id, RECENT).await?;
    let mut v = shown(&s);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "deliveries".into(),
            json!(deliveries.iter().map(shown_delivery).collect::<Vec<_>>()),
        );
    }
    Ok(Json(v))
}

#[utoipa::path(delete, path = "/api/v1/subscriptions/{name}", tag = "subscriptions",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Deleted with its secrets and deliveries"),
        (status = 404, description = "Unknown subscription", body = ref("#/components/schemas/Error")),
    ))]
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    actor.require(REQUIRED, "deleting a subscription")?;
    if app
        .store
        .delete_subscription(&name, &actor.name, Timestamp::now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&name))
    }
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{name}/rotate-secret", tag = "subscriptions",
    params(("name" = String, Path)),
    request_body = RotateSecret,
    responses(
        (status = 200, description = "The new secret, shown this once, and until when the previous ones still sign", body = ref("#/components/schemas/SecretRotated")),
        (status = 404, description = "Unknown subscription", body = ref("#/components/schemas/Error")),
        (status = 422, description = "overlap_hours out of range", body = ref("#/components/schemas/Error")),
    ))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> Result<Json<Value>, ApiError> {
    actor.require(REQUIRED, "rotating a subscription's secret")?;
    let (secret, until) = subscriptions::rotate_secret(
        &app,
        &name,
        body.overlap_hours,
        &actor.name,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(
        json!({ "secret": secret, "previous_secrets_valid_until": until }),
    ))
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{name}/test", tag = "subscriptions",
    params(("name" = String, Path)),
    responses(
        (status = 202, description = "A test message is queued (after the subscription's pending deliveries)", body = ref("#/components/schemas/Delivery")),
        (status = 404, description = "Unknown subscription", body = ref("#/components/schemas/Error")),
    ))]
pub async fn send_test(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    actor.require(REQUIRED, "sending a test message")?;
    let d = app.store.enqueue_test(&name, Timestamp::now()).await?;
    Ok((StatusCode::ACCEPTED, Json(shown_delivery(&d))))
}

#[utoipa::path(post, path = "/api/v1/deliveries/{id}/redeliver", tag = "subscriptions",
    params(("id" = i64, Path)),
    responses(
        (status = 202, description = "Queued again with the same webhook-id; its retry period starts anew", body = ref("#/components/schemas/Delivery")),
        (status = 404, description = "Unknown delivery", body = ref("#/components/schemas/Error")),
        (status = 409, description = "The delivery is pending already", body = ref("#/components/schemas/Error")),
    ))]
pub async fn redeliver(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    actor.require(REQUIRED, "redelivering")?;
    let d = app.store.redeliver(id, Timestamp::now()).await?;
    Ok((StatusCode::ACCEPTED, Json(shown_delivery(&d))))
}

#[utoipa::path(get, path = "/api/v1/notifications/status", tag = "subscriptions",
    responses((status = 200, description = "Whether notifications are being delivered: how many subscriptions there are, and one warning per subscription that is dead (deliveries given up), paused (circuit breaker open) or failing, worst first. For the overview's warning; any signed-in user may read it, the last error only admins", body = ref("#/components/schemas/NotificationStatus"))))]
pub async fn status(State(app): State<AppState>, actor: Actor) -> Result<Json<Value>, ApiError> {
    actor.require(Role::Viewer, "reading the notification status")?;
    let admin = actor.role.allows(Role::Admin);
    let (subscriptions, warnings) = subscriptions::status(&app, admin, Timestamp::now()).await?;
    let count = |kind: &str| warnings.iter().filter(|w| w.warning == kind).count();
    Ok(Json(json!({
        "subscriptions": subscriptions,
        "dead": count("dead"),
        "paused": count("paused"),
        "failing": count("failing"),
        "warnings": warnings,
    })))
}
