//! Release policy over REST: an environment's approval policy, change-freeze
//! windows, and emergency overrides (an admin asks with a reason, a second
//! person approves; then changes pass for a bounded time). Thin: the rules
//! are `crate::release`'s, which the console calls too.
//!
//! Inside a freeze, promotions and operations (not rollbacks) answer
//! **423 Locked** with code `change_freeze`, naming the window and its end.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::freeze::{FreezeOverride, FreezeWindow};
use switchyard_domain::policy::{parse_environment_name, EnvPolicy};
use switchyard_domain::Timestamp;
use utoipa::{IntoParams, ToSchema};

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::error::ApiError;
use crate::release::{self, FreezeRequest, PolicyChange};
use crate::state::AppState;

/// The body of `PUT /api/v1/environments/{env}/policy`: fields left out
/// keep their current value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    pub allow_latest: Option<bool>,
    /// Minimum number of distinct approvers (never the requester), 1 to 10.
    #[schema(minimum = 1, maximum = 10)]
    pub required_approvals: Option<u32>,
    #[schema(pattern = "^(development|staging|production)$")]
    pub min_stage: Option<String>,
    /// Groups from each of which one approval is required (e.g. `["ml-risk", "platform"]`).
    /// Refused (422 `policy_violation`) if no user who may approve is in one of them.
    pub required_groups: Option<Vec<String>>,
    /// Whether someone sharing a group with the requester may approve.
    pub requester_group_may_approve: Option<bool>,
    /// Hours a request waits for its approvals (1 to 720; default 72).
    #[schema(minimum = 1, maximum = 720)]
    pub expiry_hours: Option<u32>,
}

#[utoipa::path(put, path = "/api/v1/environments/{env}/policy", tag = "environments",
    params(("env" = String, Path)),
    request_body = PutPolicy,
    responses(
        (status = 200, description = "The policy now in force (ledger: `policy.changed`)", body = ref("#/components/schemas/EnvPolicy")),
        (status = 403, description = "Needs the admin role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "Unknown environment", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Out of range, or a policy that could never be satisfied (a required group no approver is in; more approvers than there are)", body = ref("#/components/schemas/Error")),
    ))]
pub async fn put_policy(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(env): ApiPath<String>,
    ApiJson(body): ApiJson<PutPolicy>,
) -> Result<Json<EnvPolicy>, ApiError> {
    let change = PolicyChange {
        allow_latest: body.allow_latest,
        required_approvals: body.required_approvals,
        min_stage: body.min_stage,
        required_groups: body.required_groups,
        requester_group_may_approve: body.requester_group_may_approve,
        expiry_hours: body.expiry_hours,
    };
    Ok(Json(
        release::set_policy(
            app.store.as_ref(),
            &actor.identity,
            &env,
            change,
            Timestamp::now(),
        )
        .await?,
    ))
}

/// The body of `POST /api/v1/freezes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFreeze {
    /// Shown in every refusal, e.g. "year-end freeze".
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    #[schema(example = "production", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub environment: String,
    /// `one_off` (with `from`, `to`) or `weekly` (with `days`, `start`,
    /// `duration_minutes`, `time_zone`).
    #[schema(pattern = "^(one_off|weekly)$")]
    pub kind: String,
    /// one_off: RFC 3339 start (inclusive).
    #[schema(example = "2026-12-24T00:00:00Z")]
    pub from: Option<String>,
    /// one_off: RFC 3339 end (exclusive).
    #[schema(example = "2026-12-27T00:00:00Z")]
    pub to: Option<String>,
    /// weekly: the days it starts on (mon … sun).
    #[schema(example = json!(["fri"]))]
    pub days: Option<Vec<String>>,
    /// weekly: local start time, HH:MM.
    #[schema(example = "18:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub start: Option<String>,
    /// weekly: wall-clock length in minutes (1 to 10080).
    #[schema(example = 3600, minimum = 1, maximum = 10080)]
    pub duration_minutes: Option<u32>,
    /// weekly: IANA time zone name.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: Option<String>,
}

impl From<CreateFreeze> for FreezeRequest {
    fn from(b: CreateFreeze) -> FreezeRequest {
        FreezeRequest {
            name: b.name,
            environment: b.environment,
            kind: b.kind,
            from: b.from,
            to: b.to,
            days: b.days,
            start: b.start,
            duration_minutes: b.duration_minutes,
            time_zone: b.time_zone,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvFilter {
    /// Only this environment (empty: all).
    #[param(pattern = "^([a-z0-9][a-z0-9._-]{0,63})?$")]
    environment: Option<String>,
}

impl EnvFilter {
    fn env(&self) -> Result<Option<String>, ApiError> {
        Ok(super::filter(self.environment.as_deref())
            .map(parse_environment_name)
            .transpose()?)
    }
}

#[utoipa::path(get, path = "/api/v1/freezes", tag = "environments",
    params(EnvFilter),
    responses((status = 200, description = "The windows, and the freezes in force now (with the override letting changes through, if any)", body = ref("#/components/schemas/FreezeList"))))]
pub async fn list_freezes(
    State(app): State<AppState>,
    ApiQuery(filter): ApiQuery<EnvFilter>,
) -> Result<Json<Value>, ApiError> {
    let env = filter.env()?;
    let freezes = app.store.list_freezes(env.as_deref()).await?;
    let in_force: Vec<_> = app
        .store
        .freezes_in_force(Timestamp::now())
        .await?
        .into_iter()
        .filter(|s| env.as_deref().is_none_or(|e| e == s.environment))
        .collect();
    Ok(Json(json!({ "freezes": freezes, "in_force": in_force })))
}

#[utoipa::path(post, path = "/api/v1/freezes", tag = "environments",
    request_body = CreateFreeze,
    responses(
        (status = 201, description = "Created (ledger: `freeze.created`)", body = ref("#/components/schemas/FreezeWindow")),
        (status = 403, description = "Needs the admin role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "Unknown environment", body = ref("#/components/schemas/Error")),
        (status = 409, description = "The environment has a window of that name", body = ref("#/components/schemas/Error")),
        (status = 422, description = "A bad schedule: the message says what", body = ref("#/components/schemas/Error")),
    ))]
pub async fn create_freeze(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateFreeze>,
) -> Result<(StatusCode, Json<FreezeWindow>), ApiError> {
    let w = release::create_freeze(
        app.store.as_ref(),
        &actor.identity,
        body.into(),
        Timestamp::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(w)))
}

#[utoipa::path(delete, path = "/api/v1/freezes/{id}", tag = "environments",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Removed (ledger: `freeze.removed`); the window as it was", body = ref("#/components/schemas/FreezeWindow")),
        (status = 403, description = "Needs the admin role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such window", body = ref("#/components/schemas/Error")),
    ))]
pub async fn remove_freeze(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<FreezeWindow>, ApiError> {
    Ok(Json(
        release::remove_freeze(app.store.as_ref(), &actor.identity, id, Timestamp::now()).await?,
    ))
}

/// The body of `POST /api/v1/environments/{env}/overrides`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestOverride {
    /// Why the freeze must be broken (required, not blank).
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
    /// How long it lasts once approved: 1 to 24 hours (default 4).
    #[schema(minimum = 1, maximum = 24)]
    pub hours: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/environments/{env}/overrides", tag = "environments",
    params(("env" = String, Path)),
    request_body = RequestOverride,
    responses(
        (status = 201, description = "Requested (ledger: `freeze.override_requested`); in force once a second person approves it", body = ref("#/components/schemas/FreezeOverride")),
        (status = 403, description = "Needs the admin role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "Unknown environment", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason, or hours out of range", body = ref("#/components/schemas/Error")),
    ))]
pub async fn request_override(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(env): ApiPath<String>,
    ApiJson(body): ApiJson<RequestOverride>,
) -> Result<(StatusCode, Json<FreezeOverride>), ApiError> {
    let o = release::request_override(
        app.store.as_ref(),
        &actor.identity,
        &env,
        &body.reason,
        body.hours,
        Timestamp::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(o)))
}

#[utoipa::path(post, path = "/api/v1/overrides/{id}/approve", tag = "environments",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Approved (ledger: `freeze.override_approved`): changes pass until `valid_until`", body = ref("#/components/schemas/FreezeOverride")),
        (status = 403, description = "Needs the approver role, or the caller requested it", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such override", body = ref("#/components/schemas/Error")),
        (status = 409, description = "Already approved, or not approved within 24 hours of the request", body = ref("#/components/schemas/Error")),
    ))]
pub async fn approve_override(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<FreezeOverride>, ApiError> {
    Ok(Json(
        release::approve_override(app.store.as_ref(), &actor.identity, id, Timestamp::now())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/overrides", tag = "environments",
    params(EnvFilter),
    responses((status = 200, description = "Emergency overrides, newest first", body = ref("#/components/schemas/OverrideList"))))]
pub async fn list_overrides(
    State(app): State<AppState>,
    ApiQuery(filter): ApiQuery<EnvFilter>,
) -> Result<Json<Value>, ApiError> {
    let env = filter.env()?;
    Ok(Json(
        json!({ "overrides": app.store.list_overrides(env.as_deref()).await? }),
    ))
}
