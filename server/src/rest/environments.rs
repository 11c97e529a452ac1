//! Environments, their policies, and the pins that say which version each must use.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use switchyard_domain::policy::parse_environment_name;
use switchyard_domain::types::Pin;
use switchyard_domain::{FullId, ModelId, Timestamp, VersionName};
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/environments", tag = "environments",
    responses((status = 200, description = "Environments with their policies and pins", body = ref("#/components/schemas/EnvironmentList"))))]
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "environments": app.store.list_environments().await? }),
    ))
}

/// The body of `PUT /api/v1/environments/{env}/pins/{model_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPin {
    /// An exact version of the model; never `latest`.
    #[schema(example = "v2.1.3", pattern = "^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]
    pub version: String,
    /// Why (required: 422 `field "reason" is required` without one).
    #[schema(value_type = String, required = true, min_length = 1, pattern = "\\S")]
    pub reason: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/environments/{env}/pins/{model_id}", tag = "environments",
    params(("env" = String, Path), ("model_id" = String, Path)),
    request_body = SetPin,
    responses(
        (status = 200, description = "Pinned", body = ref("#/components/schemas/Pin")),
        (status = 404, description = "Unknown environment or version", body = ref("#/components/schemas/Error")),
        (status = 410, description = "The version is retired", body = ref("#/components/schemas/Error")),
        (status = 422, description = "The environment's policy forbids this version, no reason was given, or the input is malformed", body = ref("#/components/schemas/Error")),
    ))]
pub async fn set_pin(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath((env, model_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetPin>,
) -> Result<Json<Pin>, ApiError> {
    let env = parse_environment_name(&env)?;
    actor.require_in(
        pin_role(&app, &env).await?,
        &env,
        &format!("pinning by hand in {env}"),
    )?;
    let full_id = FullId::new(
        ModelId::parse(&model_id)?,
        VersionName::parse(&body.version)?,
    );
    let reason = super::required_reason(body.reason.as_deref())?;
    let pin = app
        .store
        .set_pin(&env, &full_id, Some(reason), &actor.name, Timestamp::now())
        .await?;
    Ok(Json(pin))
}

/// Pins by hand: deployers outside production-policy environments; in those
/// only admins, since production pins otherwise move only through approved
/// promotions.
async fn pin_role(app: &AppState, env: &str) -> Result<Role, ApiError> {
    let environments = app.store.list_environments().await?;
    let production = environments
        .iter()
        .find(|e| e.name == env)
        .is_some_and(|e| e.policy.is_production());
    Ok(if production {
        Role::Admin
    } else {
        Role::Deployer
    })
}
