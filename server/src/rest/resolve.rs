//! `resolve`: the hot path model servers call at start-up and on reload.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use switchyard_domain::types::Resolved;
use switchyard_domain::VersionRef;
use utoipa::IntoParams;

use super::extract::{ApiPath, ApiQuery};
use super::metrics::Metrics;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// The environment asking, e.g. `production`.
    env: String,
}

const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");

#[utoipa::path(get, path = "/api/v1/resolve/{reference}", tag = "resolve",
    params(
        ("reference" = String, Path, description = "`chat` (through the pin), `chat:v2.1.3` (exact) or `chat:latest` (where allowed)"),
        ResolveQuery,
    ),
    responses(
        (status = 200, description = "The version to serve. A deprecated one comes with `Deprecation: true` and `Warning` headers.", body = ref("#/components/schemas/Resolved")),
        (status = 404, description = "Unknown model, version, environment, or no pin", body = ref("#/components/schemas/Error")),
        (status = 410, description = "The version is retired", body = ref("#/components/schemas/Error")),
        (status = 422, description = "`latest` where the environment forbids it (the message says why), a stage below the policy, or a malformed reference", body = ref("#/components/schemas/Error")),
    ))]
pub async fn resolve(
    State(app): State<AppState>,
    State(metrics): State<Arc<Metrics>>,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(q): ApiQuery<ResolveQuery>,
) -> Response {
    let result = match VersionRef::parse(&reference) {
        Ok(r) => app.store.resolve(&r, &q.env).await.map_err(ApiError::from),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(resolved) => {
            metrics.resolved(if resolved.deprecated {
                "deprecated"
            } else {
                "ok"
            });
            crate::telemetry::record_model_version(&resolved.full_id);
            respond(resolved)
        }
        Err(e) => {
            metrics.resolved(e.code);
            e.into_response()
        }
    }
}

fn respond(resolved: Resolved) -> Response {
    let warning = resolved.warning.as_deref().and_then(|w| {
        HeaderValue::from_str(&format!("299 - \"{}\"", w.replace(['"', '\\'], "'"))).ok()
    });
    let mut res = Json(resolved).into_response();
    if let Some(warning) = warning {
        res.headers_mut()
            .insert(DEPRECATION, HeaderValue::from_static("true"));
        res.headers_mut()
            .insert(axum::http::header::WARNING, warning);
    }
    res
}
