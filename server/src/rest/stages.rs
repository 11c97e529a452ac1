//! Moving a version through its lifecycle by hand.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use switchyard_domain::lifecycle::MoveVia;
use switchyard_domain::types::Version;
use switchyard_domain::{FullId, Stage, Timestamp};
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;

/// The body of `POST /api/v1/versions/{full_id}/stage`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageMove {
    /// development, staging, production, deprecated or retired.
    #[schema(
        example = "staging",
        pattern = "^(development|staging|production|deprecated|retired)$"
    )]
    pub to: String,
    /// Why (required: 422 `field "reason" is required` without one).
    #[schema(value_type = String, required = true, min_length = 1, pattern = "\\S")]
    pub reason: Option<String>,
    /// An admin's explicit request to retire before the deprecation period
    /// ends (a reason is then required). Without it admins get the same
    /// answer as everyone, so an early retirement is never an accident.
    #[serde(default)]
    pub early: bool,
}

#[utoipa::path(post, path = "/api/v1/versions/{full_id}/stage", tag = "versions",
    params(("full_id" = String, Path, description = "model_id:version")),
    request_body = StageMove,
    responses(
        (status = 200, description = "Moved", body = ref("#/components/schemas/Version")),
        (status = 404, description = "Not registered", body = ref("#/components/schemas/Error")),
        (status = 409, description = "Move not allowed; the message names the allowed moves (to production: request a promotion)", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Unknown stage, malformed id, or no reason (`field \"reason\" is required`)", body = ref("#/components/schemas/Error")),
    ))]
pub async fn change_stage(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(full_id): ApiPath<String>,
    ApiJson(body): ApiJson<StageMove>,
) -> Result<Json<Version>, ApiError> {
    let full_id = FullId::parse(&full_id)?;
    let to: Stage = body.to.parse()?;
    let admin_there =
        crate::access::check_stage_move(app.store.as_ref(), &actor.identity, to).await?;
    if body.early {
        actor.require_each(
            switchyard_domain::access::role_for_stage_move(to, true),
            &crate::access::environments_taking(
                app.store.as_ref(),
                switchyard_domain::access::stage_move_concerns(to),
            )
            .await?,
            &format!("moving a version to {to} early"),
        )?;
    }
    let via = MoveVia::Manual {
        is_admin: admin_there && body.early,
    };
    let reason = super::required_reason(body.reason.as_deref())?;
    let version = app
        .store
        .change_stage(
            &full_id,
            to,
            via,
            Some(reason),
            &actor.name,
            Timestamp::now(),
        )
        .await?;
    Ok(Json(version))
}
