//! Operations on clusters: ask for one (202, run by the background runner),
//! roll back, and follow one's steps.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::analysis::Decision;
use switchyard_domain::clusters::parse_cluster_name;
use switchyard_domain::operations::{Operation, OperationKind};
use switchyard_domain::{FullId, Timestamp};
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::clusters::OperationRequest;

/// The body of `POST /api/v1/clusters/{name}/operations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartOperation {
    /// `blue_green`, `rolling` or `hot_reload`.
    #[schema(example = "blue_green", pattern = "^(blue_green|rolling|hot_reload)$")]
    pub kind: String,
    #[schema(
        example = "chat:v2",
        pattern = "^[a-z0-9][a-z0-9._-]{0,63}:[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
    )]
    pub full_id: String,
    /// Rolling only (refused with other kinds): percent of traffic on the new version per step (default 10, 50, 100). A kubernetes cluster updates in place and takes none.
    pub steps: Option<Vec<u8>>,
    /// Why (required: 422 `field "reason" is required` without one).
    #[schema(value_type = String, required = true, min_length = 1, pattern = "\\S")]
    pub reason: Option<String>,
    /// Analysis templates (names) its gates run: after each rolling step, and
    /// after the switch of a blue-green switch or a hot reload.
    #[schema(example = json!(["error-rate"]))]
    pub analysis: Option<Vec<String>>,
    /// Bake time in seconds (0–86400): the last gate passes no sooner than this long after the
    /// last traffic step, while the previous version stays loaded in the other slot for an instant rollback.
    #[schema(example = 600)]
    pub bake_seconds: Option<u64>,
}

/// The body of `POST /api/v1/operations/{id}/continue` and `…/rollback`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// Why (required: 422 `field "reason" is required` without one).
    pub reason: Option<String>,
}

/// The body of `POST /api/v1/clusters/{name}/rollback`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// Why (required: 422 `field "reason" is required` without one).
    #[schema(value_type = String, required = true, min_length = 1, pattern = "\\S")]
    pub reason: Option<String>,
}

/// Template names as given: valid and each once.
fn analysis_names(names: Vec<String>) -> Result<Vec<String>, ApiError> {
    for (i, name) in names.iter().enumerate() {
        parse_cluster_name(name)
            .map_err(|_| ApiError::invalid(format!("analysis: {name:?} is not a template name")))?;
        if names[..i].contains(name) {
            return Err(ApiError::invalid(format!(
                "analysis: template {name} is named twice"
            )));
        }
    }
    Ok(names)
}

fn accepted(op: &Operation) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(json!({ "operation_id": op.id, "state": op.state })),
    )
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/operations", tag = "clusters",
    params(("name" = String, Path)),
    request_body = StartOperation,
    responses(
        (status = 202, description = "Accepted; follow it at /api/v1/operations/{operation_id}", body = ref("#/components/schemas/OperationAccepted")),
        (status = 404, description = "Unknown cluster or version", body = ref("#/components/schemas/Error")),
        (status = 409, description = "Another operation runs on the cluster (named), or the plan is impossible from its state", body = ref("#/components/schemas/Error")),
        (status = 423, description = "A change freeze is in force in the cluster's environment (code `change_freeze`; the message names the window and its end) and no approved emergency override is", body = ref("#/components/schemas/Error")),
        (status = 410, description = "The version is retired", body = ref("#/components/schemas/Error")),
        (status = 422, description = "The environment's policy forbids the version, the version is of a model the cluster does not serve, no reason was given, steps were sent with another kind than rolling or to a kubernetes cluster (which updates in place: a rolling update there is the Deployment's or Rollout's own), or the input is malformed", body = ref("#/components/schemas/Error")),
    ))]
pub async fn start(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<StartOperation>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    super::clusters::require_operator(&app, &actor, &name, false).await?;
    let kind: OperationKind = body.kind.parse()?;
    if kind == OperationKind::Rollback {
        return Err(ApiError::invalid(format!(
            "roll back with POST /api/v1/clusters/{name}/rollback"
        )));
    }
    switchyard_domain::operations::check_steps_given(kind, body.steps.as_deref())?;
    let request = OperationRequest {
        cluster: parse_cluster_name(&name)?,
        kind,
        full_id: Some(FullId::parse(&body.full_id)?),
        // None given: empty, which the plan reads as the default steps (and a
        // kubernetes cluster, which rolls in place, as none).
        rolling_steps: body.steps.unwrap_or_default(),
        reason: Some(super::required_reason(body.reason.as_deref())?.to_owned()),
        analysis: analysis_names(body.analysis.unwrap_or_default())?,
        bake_ms: match body.bake_seconds {
            Some(s) if s > 86_400 => {
                return Err(ApiError::invalid(format!(
                    "bake_seconds must be 0 to 86400 (a day), not {s}"
                )))
            }
            Some(0) | None => None,
            Some(s) => Some(s * 1000),
        },
    };
    let op = app
        .store
        .start_operation(request, &actor.name, Timestamp::now())
        .await?;
    Ok(accepted(&op))
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/rollback", tag = "clusters",
    params(("name" = String, Path)),
    request_body = Rollback,
    responses(
        (status = 202, description = "Accepted: traffic goes back to the version that served before the last operation", body = ref("#/components/schemas/OperationAccepted")),
        (status = 404, description = "Unknown cluster", body = ref("#/components/schemas/Error")),
        (status = 409, description = "Another operation runs, or there is nothing to roll back to", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason given (`field \"reason\" is required`)", body = ref("#/components/schemas/Error")),
    ))]
pub async fn rollback(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Rollback>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    super::clusters::require_operator(&app, &actor, &name, true).await?;
    let request = OperationRequest {
        cluster: parse_cluster_name(&name)?,
        kind: OperationKind::Rollback,
        full_id: None,
        rolling_steps: Vec::new(),
        reason: Some(super::required_reason(body.reason.as_deref())?.to_owned()),
        analysis: Vec::new(),
        bake_ms: None,
    };
    let op = app
        .store
        .start_operation(request, &actor.name, Timestamp::now())
        .await?;
    Ok(accepted(&op))
}

#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "clusters",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The operation: state, steps with timings, error and trigger", body = ref("#/components/schemas/Operation")),
        (status = 404, description = "No such operation", body = ref("#/components/schemas/Error")),
    ))]
pub async fn detail(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Operation>, ApiError> {
    let op = app
        .store
        .get_operation(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("operation {id} does not exist")))?;
    Ok(Json(op))
}

async fn decide(
    app: &AppState,
    actor: &Actor,
    id: i64,
    decision: Decision,
    body: Decide,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let op = crate::clusters::decide(
        app.store.as_ref(),
        &actor.identity,
        id,
        decision,
        body.reason.as_deref(),
        Timestamp::now(),
    )
    .await?;
    Ok(accepted(&op))
}

#[utoipa::path(post, path = "/api/v1/operations/{id}/continue", tag = "clusters",
    params(("id" = i64, Path)),
    request_body = Decide,
    responses(
        (status = 202, description = "The paused operation goes on (`operation.continued`): past its gate after an inconclusive analysis, or from the step where a person paused it", body = ref("#/components/schemas/OperationAccepted")),
        (status = 403, description = "Production needs the approver role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such operation", body = ref("#/components/schemas/Error")),
        (status = 409, description = "The operation is not paused", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason given", body = ref("#/components/schemas/Error")),
    ))]
pub async fn continue_paused(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Decide>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(&app, &actor, id, Decision::Continue, body).await
}

#[utoipa::path(post, path = "/api/v1/operations/{id}/rollback", tag = "clusters",
    params(("id" = i64, Path)),
    request_body = Decide,
    responses(
        (status = 202, description = "A paused or running operation sends traffic back to what served before: a running one is paused first (`operation.paused`), then `operation.rollback_chosen` and `rollback` with trigger `person`", body = ref("#/components/schemas/OperationAccepted")),
        (status = 403, description = "Production needs the approver role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such operation", body = ref("#/components/schemas/Error")),
        (status = 409, description = "The operation has ended, is already restoring traffic, or is sending a traffic command this instant", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason given", body = ref("#/components/schemas/Error")),
    ))]
pub async fn roll_back_paused(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Decide>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(&app, &actor, id, Decision::RollBack, body).await
}

#[utoipa::path(post, path = "/api/v1/operations/{id}/pause", tag = "clusters",
    params(("id" = i64, Path)),
    request_body = Decide,
    responses(
        (status = 202, description = "Paused before its next step (`operation.paused`); it holds the cluster until continued or rolled back, across restarts", body = ref("#/components/schemas/OperationAccepted")),
        (status = 403, description = "Production needs the approver role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such operation", body = ref("#/components/schemas/Error")),
        (status = 409, description = "Already paused or ended, a rollback or restore (never paused), or a traffic command in flight this instant", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason given", body = ref("#/components/schemas/Error")),
    ))]
pub async fn pause(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Decide>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (_, reason) = crate::clusters::steered(
        app.store.as_ref(),
        &actor.identity,
        id,
        body.reason.as_deref(),
        "pausing an operation",
    )
    .await?;
    let op = app
        .store
        .pause_operation(id, &actor.name, reason, Timestamp::now())
        .await?;
    Ok(accepted(&op))
}
