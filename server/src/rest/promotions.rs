//! Promotions: a deployer requests, other people approve (two for
//! production by default); the last approval applies it atomically.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use switchyard_domain::promotion::{Promotion, PromotionStatus};
use switchyard_domain::Timestamp;
use utoipa::{IntoParams, ToSchema};

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::error::ApiError;
use crate::state::AppState;

/// The body of `POST /api/v1/promotions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPromotion {
    #[schema(
        example = "chat:v2.1.3",
        pattern = "^[a-z0-9][a-z0-9._-]{0,63}:[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
    )]
    pub full_id: String,
    #[schema(example = "production", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub environment: String,
    /// Why (required, not blank).
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
}

/// The body of `POST /api/v1/promotions/{id}/approve`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovePromotion {
    /// Why (required: 422 `field "reason" is required` without one).
    #[schema(value_type = String, required = true, min_length = 1, pattern = "\\S")]
    pub reason: Option<String>,
}

/// The body of `POST /api/v1/promotions/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectPromotion {
    /// Why (required, not blank).
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
}

/// The body of `POST /api/v1/promotions/{id}/withdraw`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawPromotion {
    /// Why (required, not blank).
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromotionFilter {
    /// pending, applied, rejected, expired or withdrawn (empty: all).
    #[param(pattern = "^(pending|applied|rejected|expired|withdrawn)?$")]
    status: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/promotions", tag = "promotions",
    request_body = RequestPromotion,
    responses(
        (status = 201, description = "Requested; pending approvals", body = ref("#/components/schemas/Promotion")),
        (status = 403, description = "Needs the deployer role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "Unknown version or environment", body = ref("#/components/schemas/Error")),
        (status = 409, description = "The lifecycle does not allow it, or one is already pending", body = ref("#/components/schemas/Error")),
        (status = 422, description = "The approval policy could never let this requester's request through (a required group they are in, when the requester's groups may not approve)", body = ref("#/components/schemas/Error")),
        (status = 423, description = "A change freeze is in force in the environment (code `change_freeze`; the message names the window and its end) and no approved emergency override is", body = ref("#/components/schemas/Error")),
        (status = 410, description = "The version is retired", body = ref("#/components/schemas/Error")),
    ))]
pub async fn request(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<RequestPromotion>,
) -> Result<(StatusCode, Json<Promotion>), ApiError> {
    let promotion = crate::promotions::request(
        &app.store,
        &actor.identity,
        &body.full_id,
        &body.environment,
        &body.reason,
        Timestamp::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(promotion)))
}

#[utoipa::path(post, path = "/api/v1/promotions/{id}/approve", tag = "promotions",
    params(("id" = i64, Path)),
    request_body = ApprovePromotion,
    responses(
        (status = 200, description = "Approved; `requirements` shows what is met and open; `status` is `applied` when every requirement of the policy is met", body = ref("#/components/schemas/Promotion")),
        (status = 403, description = "Needs the approver role, the caller requested it, or the policy forbids approvals from the requester's groups", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such promotion", body = ref("#/components/schemas/Error")),
        (status = 409, description = "Already approved by this person, or no longer pending (applied, rejected, expired, withdrawn)", body = ref("#/components/schemas/Error")),
        (status = 423, description = "This approval would meet the policy and apply the promotion, but a change freeze is in force (code `change_freeze`); nothing was stored: approve again after the window's end or once an override is approved", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason given (`field \"reason\" is required`)", body = ref("#/components/schemas/Error")),
    ))]
pub async fn approve(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> Result<Json<Promotion>, ApiError> {
    // The role is checked before the body is read.
    crate::promotions::require(&actor.identity, Role::Approver, "approving a promotion")?;
    // A missing or empty body is an approval without a reason: refused below.
    let body: ApprovePromotion = if body.iter().all(u8::is_ascii_whitespace) {
        ApprovePromotion::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("the body is not an approval: {e}")))?
    };
    Ok(Json(
        crate::promotions::approve(
            &app.store,
            &actor.identity,
            id,
            body.reason.as_deref(),
            Timestamp::now(),
        )
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/promotions/{id}/reject", tag = "promotions",
    params(("id" = i64, Path)),
    request_body = RejectPromotion,
    responses(
        (status = 200, description = "Rejected; it can never be approved again", body = ref("#/components/schemas/Promotion")),
        (status = 403, description = "Needs the approver role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such promotion", body = ref("#/components/schemas/Error")),
        (status = 409, description = "No longer pending", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason given", body = ref("#/components/schemas/Error")),
    ))]
pub async fn reject(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RejectPromotion>,
) -> Result<Json<Promotion>, ApiError> {
    Ok(Json(
        crate::promotions::reject(
            &app.store,
            &actor.identity,
            id,
            &body.reason,
            Timestamp::now(),
        )
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/promotions/{id}/withdraw", tag = "promotions",
    params(("id" = i64, Path)),
    request_body = WithdrawPromotion,
    responses(
        (status = 200, description = "Withdrawn by the person who requested it; it can never be approved again", body = ref("#/components/schemas/Promotion")),
        (status = 403, description = "Only the requester may withdraw a promotion (others reject it)", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such promotion", body = ref("#/components/schemas/Error")),
        (status = 409, description = "No longer pending (applied, rejected, expired, withdrawn)", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason given", body = ref("#/components/schemas/Error")),
    ))]
pub async fn withdraw(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<WithdrawPromotion>,
) -> Result<Json<Promotion>, ApiError> {
    Ok(Json(
        crate::promotions::withdraw(
            &app.store,
            &actor.identity,
            id,
            &body.reason,
            Timestamp::now(),
        )
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/promotions", tag = "promotions",
    params(PromotionFilter),
    responses((status = 200, description = "Newest first", body = ref("#/components/schemas/PromotionList"))))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(filter): ApiQuery<PromotionFilter>,
) -> Result<Json<Value>, ApiError> {
    let status = super::filter(filter.status.as_deref())
        .map(str::parse::<PromotionStatus>)
        .transpose()?;
    Ok(Json(
        json!({ "promotions": app.store.list_promotions(status).await? }),
    ))
}
