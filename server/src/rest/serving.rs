//! "What was serving at time T?"

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use switchyard_domain::policy::parse_environment_name;
use switchyard_domain::types::ServingAt;
use switchyard_domain::ModelId;
use utoipa::IntoParams;

use super::extract::ApiQuery;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServingQuery {
    /// RFC 3339 with a time zone, e.g. `2026-03-03T14:00:00Z`.
    #[param(format = DateTime)]
    at: String,
    /// Only this environment (empty: all).
    #[param(pattern = "^([a-z0-9][a-z0-9._-]{0,63})?$")]
    environment: Option<String>,
    /// Only this model (empty: all).
    #[param(pattern = "^([a-z0-9][a-z0-9._-]{0,63})?$")]
    model: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/serving", tag = "audit",
    params(ServingQuery),
    responses(
        (status = 200, description = "What each environment pinned and each cluster served at that instant, since when, by which event and actor, and when it next changed; `gates`: for each cluster whose state an operation with analysis set, that operation's measurements up to the instant and the templates that judged them", body = ref("#/components/schemas/ServingAt")),
        (status = 404, description = "An unknown environment or model, named", body = ref("#/components/schemas/Error")),
        (status = 422, description = "`at` missing or without a time zone, or a malformed filter", body = ref("#/components/schemas/Error")),
    ))]
pub async fn serving_at(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<ServingQuery>,
) -> Result<Json<ServingAt>, ApiError> {
    let at = super::parse_time(&q.at)?;
    let environment = super::filter(q.environment.as_deref())
        .map(parse_environment_name)
        .transpose()?;
    let model = super::filter(q.model.as_deref())
        .map(ModelId::parse)
        .transpose()?;
    let serving = app
        .store
        .serving_at(at, environment.as_deref(), model.as_ref())
        .await?;
    let serving = crate::analysis::with_gate_results(app.store.as_ref(), serving).await?;
    Ok(Json(serving))
}
