//! Registering versions and reading models and versions.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::config_hash::config_hash;
use switchyard_domain::types::{Labels, NewVersion};
use switchyard_domain::{FullId, ModelId, Timestamp, VersionName};
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;

/// The body of `POST /api/v1/models/{model_id}/versions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterVersion {
    /// `[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`, never `latest`.
    #[schema(example = "v2.1.3", pattern = "^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]
    pub version: String,
    /// The serving configuration; must be a JSON object. Its canonical
    /// JSON (RFC 8785) hash becomes the version's `config_hash`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub artifact_uri: Option<String>,
    pub labels: Option<Labels>,
}

#[utoipa::path(post, path = "/api/v1/models/{model_id}/versions", tag = "versions",
    params(("model_id" = String, Path, description = "`[a-z0-9][a-z0-9._-]{0,63}`")),
    request_body = RegisterVersion,
    responses(
        (status = 201, description = "Registered (in development)", body = ref("#/components/schemas/Version")),
        (status = 200, description = "Already registered with the same config and artifact", body = ref("#/components/schemas/Version")),
        (status = 409, description = "Registered before with another config or artifact; nothing changed", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Invalid model id, version, or config", body = ref("#/components/schemas/Error")),
    ))]
pub async fn register(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(model_id): ApiPath<String>,
    ApiJson(body): ApiJson<RegisterVersion>,
) -> Result<impl IntoResponse, ApiError> {
    crate::access::check_register(app.store.as_ref(), &actor.identity).await?;
    let full_id = FullId::new(
        ModelId::parse(&model_id)?,
        VersionName::parse(&body.version)?,
    );
    if let Some(uri) = &body.artifact_uri {
        switchyard_domain::text::check_free_text("artifact_uri", uri)?;
    }
    for (key, value) in body.labels.iter().flatten() {
        switchyard_domain::text::check_free_text("labels", key)?;
        switchyard_domain::text::check_free_text("labels", value)?;
    }
    let new = NewVersion {
        full_id,
        config_hash: config_hash(&body.config)?,
        config: body.config,
        artifact_uri: body.artifact_uri,
        labels: body.labels,
    };
    let registered = app
        .store
        .register_version(new, &actor.name, Timestamp::now())
        .await?;
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/api/v1/versions/{}", registered.version.full_id);
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(registered.version),
    ))
}

#[utoipa::path(get, path = "/api/v1/models", tag = "versions",
    responses((status = 200, description = "Every model with a registered version", body = ref("#/components/schemas/ModelList"))))]
pub async fn list_models(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "models": app.store.list_models().await? })))
}

#[utoipa::path(get, path = "/api/v1/models/{model_id}/versions", tag = "versions",
    params(("model_id" = String, Path)),
    responses(
        (status = 200, description = "The model's versions, newest first", body = ref("#/components/schemas/VersionList")),
        (status = 404, description = "No such model", body = ref("#/components/schemas/Error")),
    ))]
pub async fn list_versions(
    State(app): State<AppState>,
    ApiPath(model_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let model_id = ModelId::parse(&model_id)?;
    Ok(Json(
        json!({ "versions": app.store.list_versions(&model_id).await? }),
    ))
}

#[utoipa::path(get, path = "/api/v1/versions/{full_id}", tag = "versions",
    params(("full_id" = String, Path, description = "model_id:version, e.g. chat:v2.1.3")),
    responses(
        (status = 200, description = "The version with its stage history", body = ref("#/components/schemas/VersionDetail")),
        (status = 404, description = "Not registered", body = ref("#/components/schemas/Error")),
    ))]
pub async fn detail(
    State(app): State<AppState>,
    ApiPath(full_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let full_id = FullId::parse(&full_id)?;
    match app.store.version_detail(&full_id).await? {
        Some(detail) => Ok(Json(detail)),
        None => Err(ApiError::not_found(format!(
            "version {full_id} is not registered"
        ))),
    }
}
