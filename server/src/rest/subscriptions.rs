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
use switchyard_domain::{ModelId, Timestamp};
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::notify::sealed::seal;
use crate::notify::{display_url, new_secret, validate_destination};
use crate::state::AppState;
use crate::store::notify::{
    Delivery, DestinationKind, Filter, NewSubscription, Subscription, EVENT_KINDS,
};
use crate::store::StoreError;

/// Every subscription route is for admins: destinations and their traffic are configuration.
const REQUIRED: Role = Role::Admin;

/// Deliveries shown with a subscription.
const RECENT: u32 = 50;

/// Longest overlap of a rotated secret, in hours (30 days).
const MAX_OVERLAP_HOURS: i64 = 720;

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
    });
    if !s.options.is_null() {
        v["options"] = s.options.clone();
    }
    v
}

fn shown_delivery(d: &Delivery) -> Value {
    json!(d)
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid(message)
}

/// Checks names, kinds and what the filter names against what exists.
async fn checked_filter(app: &AppState, body: FilterBody) -> Result<Filter, ApiError> {
    for kind in &body.events {
        if !EVENT_KINDS.contains(&kind.as_str()) {
            return Err(invalid(format!(
                "filter.events: unknown event kind {kind:?}; known kinds: {}",
                EVENT_KINDS.join(", ")
            )));
        }
    }
    for model in &body.models {
        let id = ModelId::parse(model).map_err(|e| invalid(format!("filter.models: {e}")))?;
        match app.store.list_versions(&id).await {
            Ok(_) => {}
            Err(StoreError::Domain(switchyard_domain::DomainError::NotFound(_))) => {
                return Err(invalid(format!(
                    "filter.models: unknown model {model:?} (register a version of it first)"
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !body.environments.is_empty() {
        let known = app.store.list_environments().await?;
        for env in &body.environments {
            if !known.iter().any(|e| e.name == *env) {
                return Err(invalid(format!(
                    "filter.environments: unknown environment {env:?}"
                )));
            }
        }
    }
    for cluster in &body.clusters {
        if app.store.get_cluster(cluster).await?.is_none() {
            return Err(invalid(format!(
                "filter.clusters: unknown cluster {cluster:?}"
            )));
        }
    }
    Ok(Filter {
        events: body.events,
        models: body.models,
        environments: body.environments,
        clusters: body.clusters,
    })
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
    let name = switchyard_domain::clusters::parse_cluster_name(&body.name).map_err(|_| {
        invalid(format!(
            "subscription name {:?} is not valid: it must match [a-z0-9][a-z0-9._-]{{0,63}}",
            body.name
        ))
    })?;
    let kind = match body.kind.as_deref() {
        None => DestinationKind::Webhook,
        Some("mlflow-alias") => {
            return Err(invalid(
                "kind mlflow-alias is configured by the server's SWITCHYARD_MLFLOW_WRITE_BACK, not through the API"
                    .to_owned(),
            ))
        }
        Some(k) => DestinationKind::parse(k)
            .ok_or_else(|| invalid(format!("kind must be webhook or chat, not {k:?}")))?,
    };
    validate_destination(&body.url, app.config.webhook_allow_private)
        .await
        .map_err(invalid)?;
    let filter = checked_filter(&app, body.filter).await?;
    let secret = new_secret();
    let created = app
        .store
        .create_subscription(
            NewSubscription {
                name,
                kind,
                url: body.url.trim().to_owned(),
                filter,
                secret: seal(app.config.secrets_key.as_ref(), &secret),
                options: Value::Null,
            },
            &actor.name,
            Timestamp::now(),
        )
        .await?;
    let mut v = shown(&created);
    if kind == DestinationKind::Webhook {
        if let Some(o) = v.as_object_mut() {
            o.insert("secret".into(), json!(secret));
        }
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
    let hours = body.overlap_hours.unwrap_or(24);
    if !(0..=MAX_OVERLAP_HOURS).contains(&hours) {
        return Err(invalid(format!(
            "overlap_hours must be from 0 to {MAX_OVERLAP_HOURS}, not {hours}"
        )));
    }
    let now = Timestamp::now();
    let until = Timestamp::from_micros(now.micros() + hours * 3_600_000_000);
    let secret = new_secret();
    app.store
        .rotate_secret(
            &name,
            &seal(app.config.secrets_key.as_ref(), &secret),
            until,
            &actor.name,
            now,
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
    let now = Timestamp::now();
    let all = app.store.subscription_health().await?;
    let admin = actor.role.allows(Role::Admin);
    let mut warnings: Vec<(&'static str, Value)> = all
        .iter()
        .filter_map(|h| {
            let warning = h.warning(now)?;
            Some((
                warning,
                json!({
                    "subscription": h.name,
                    "warning": warning,
                    "failing_since": h.failing_since,
                    "reported_at": h.failing_reported,
                    "consecutive_failures": h.consecutive_failures,
                    "paused_until": h.paused_until.filter(|t| t.micros() > now.micros()),
                    "pending": h.pending,
                    "dead": h.dead,
                    "oldest_pending": h.oldest_pending,
                    // Receivers' answers are excerpted into errors: configuration, for admins.
                    "last_error": if admin { h.last_error.clone() } else { None },
                    "last_error_at": h.last_error_at,
                }),
            ))
        })
        .collect();
    let rank = |w: &str| match w {
        "dead" => 0,
        "paused" => 1,
        _ => 2,
    };
    warnings.sort_by_key(|(w, _)| rank(w));
    let count = |kind: &str| warnings.iter().filter(|(w, _)| *w == kind).count();
    Ok(Json(json!({
        "subscriptions": all.len(),
        "dead": count("dead"),
        "paused": count("paused"),
        "failing": count("failing"),
        "warnings": warnings.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })))
}
