//! Analysis templates (admin to change, anyone signed in to read): the
//! metric gates operations attach. A template is checked before it is
//! stored — its fields by the domain, its query by the Prometheus it names
//! (that server's own PromQL parser) — and nothing is stored when a check fails.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use switchyard_domain::analysis::AnalysisTemplate;
use switchyard_domain::Timestamp;
use utoipa::{IntoParams, ToSchema};

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::error::ApiError;
use crate::state::AppState;

/// The body of `PUT /api/v1/analysis-templates/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTemplate {
    /// The Prometheus server's base URL.
    #[schema(example = "http://prometheus:9090")]
    pub prometheus_url: String,
    /// A file on the Switchyard server holding a bearer token for Prometheus (read at each measurement).
    pub bearer_token_file: Option<String>,
    /// PromQL answering one number. Placeholders, inside quoted label values only:
    /// `{{cluster}}`, `{{slot}}`, `{{model}}`, `{{version}}`, `{{full_id}}` (escaped, never pasted raw).
    #[schema(
        example = "sum(rate(haproxy_backend_http_responses_total{proxy=\"be_{{slot}}\",code=\"5xx\"}[30s])) / sum(rate(haproxy_backend_http_responses_total{proxy=\"be_{{slot}}\"}[30s]))"
    )]
    pub query: String,
    /// Comparisons of `result` with numbers, joined by and/or.
    #[schema(example = "result < 0.01")]
    pub success: String,
    /// A value matching both conditions counts as a failure.
    #[schema(example = "result > 0.05")]
    pub failure: String,
    /// Milliseconds between measurements (100–3600000).
    #[schema(example = 30000)]
    pub interval_ms: u64,
    /// Measurements to take (1–1000).
    #[schema(example = 5)]
    pub count: u32,
    /// Failed measurements that roll the operation back (1–count).
    #[schema(example = 2)]
    pub failure_limit: u32,
    /// Inconclusive measurements (no data, matches neither condition, Prometheus unreachable) that pause the operation for a person (1–count).
    #[schema(example = 1)]
    pub inconclusive_limit: u32,
    /// Also measure the newly loaded slot before any traffic moves to it (default false): a failure
    /// there fails the operation with traffic unmoved; an inconclusive result pauses it before the switch.
    pub pre_switch: Option<bool>,
    /// Why it is saved (required; recorded in the ledger event `analysis_template.saved`).
    #[schema(example = "error budget tightened after the March incident")]
    pub reason: Option<String>,
}

/// The query of `DELETE /api/v1/analysis-templates/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveTemplate {
    /// Why it is removed (required; recorded in the ledger event `analysis_template.removed`).
    pub reason: Option<String>,
}

fn unknown(name: &str) -> ApiError {
    ApiError::not_found(format!("analysis template {name} does not exist"))
}

#[utoipa::path(get, path = "/api/v1/analysis-templates", tag = "analysis",
    responses((status = 200, description = "Every analysis template, by name", body = ref("#/components/schemas/AnalysisTemplateList"))))]
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = app.store.list_analysis_templates().await?;
    Ok(Json(json!({ "templates": all })))
}

#[utoipa::path(get, path = "/api/v1/analysis-templates/{name}", tag = "analysis",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "The template", body = ref("#/components/schemas/AnalysisTemplate")),
        (status = 404, description = "Unknown template", body = ref("#/components/schemas/Error")),
    ))]
pub async fn detail(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<AnalysisTemplate>, ApiError> {
    let t = app
        .store
        .get_analysis_template(&name)
        .await?
        .ok_or_else(|| unknown(&name))?;
    Ok(Json(t))
}

#[utoipa::path(put, path = "/api/v1/analysis-templates/{name}", tag = "analysis",
    params(("name" = String, Path)),
    request_body = PutTemplate,
    responses(
        (status = 201, description = "Created", body = ref("#/components/schemas/AnalysisTemplate")),
        (status = 200, description = "Replaced, or unchanged (operations already started keep their copy)", body = ref("#/components/schemas/AnalysisTemplate")),
        (status = 403, description = "Needs the admin role", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason, a field is out of range, a condition does not parse, a placeholder is unknown or unquoted, Prometheus's parser refused the query (its message given), or the named Prometheus could not be asked to check it (code `prometheus_unreachable`); nothing stored", body = ref("#/components/schemas/Error")),
    ))]
pub async fn put(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PutTemplate>,
) -> Result<(StatusCode, Json<AnalysisTemplate>), ApiError> {
    actor.require(Role::Admin, "saving an analysis template")?;
    let template = AnalysisTemplate {
        name,
        prometheus_url: body.prometheus_url.trim().to_owned(),
        bearer_token_file: body.bearer_token_file,
        query: body.query,
        success: body.success,
        failure: body.failure,
        interval_ms: body.interval_ms,
        count: body.count,
        failure_limit: body.failure_limit,
        inconclusive_limit: body.inconclusive_limit,
        pre_switch: body.pre_switch.unwrap_or(false),
    };
    let created = crate::analysis::save_template(
        app.store.as_ref(),
        template.clone(),
        &actor.name,
        body.reason.as_deref(),
        Timestamp::now(),
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(template)))
}

#[utoipa::path(delete, path = "/api/v1/analysis-templates/{name}", tag = "analysis",
    params(("name" = String, Path), RemoveTemplate),
    responses(
        (status = 204, description = "Removed (`analysis_template.removed` with the reason); operations that attached it keep their copy"),
        (status = 403, description = "Needs the admin role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "Unknown template", body = ref("#/components/schemas/Error")),
        (status = 409, description = "A cluster attaches it: detach it there first", body = ref("#/components/schemas/Error")),
        (status = 422, description = "No reason; nothing removed", body = ref("#/components/schemas/Error")),
    ))]
pub async fn remove(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RemoveTemplate>,
) -> Result<StatusCode, ApiError> {
    actor.require(Role::Admin, "removing an analysis template")?;
    crate::analysis::remove_template(
        app.store.as_ref(),
        &name,
        &actor.name,
        q.reason.as_deref(),
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `PUT /api/v1/clusters/{name}/analysis`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterAnalysis {
    /// Templates every operation on the cluster runs (but a rollback), before those the operation names; empty detaches all.
    #[schema(example = json!(["error-rate"]))]
    pub templates: Vec<String>,
}

#[utoipa::path(put, path = "/api/v1/clusters/{name}/analysis", tag = "analysis",
    params(("name" = String, Path)),
    request_body = ClusterAnalysis,
    responses(
        (status = 200, description = "The cluster with its templates (`cluster.analysis_set` in the ledger when they changed)", body = ref("#/components/schemas/Cluster")),
        (status = 403, description = "Needs the admin role", body = ref("#/components/schemas/Error")),
        (status = 404, description = "Unknown cluster or template", body = ref("#/components/schemas/Error")),
        (status = 422, description = "A template named twice", body = ref("#/components/schemas/Error")),
    ))]
pub async fn set_for_cluster(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ClusterAnalysis>,
) -> Result<Json<Value>, ApiError> {
    actor.require(Role::Admin, "attaching analysis templates to a cluster")?;
    let cluster = app
        .store
        .set_cluster_analysis(&name, body.templates, &actor.name, Timestamp::now())
        .await?;
    Ok(Json(super::clusters::shown(cluster)))
}
