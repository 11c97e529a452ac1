//! The audit ledger: filtered pages, and verification of the hash chain.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use switchyard_domain::types::{AuditPage, VerifyReport};
use utoipa::IntoParams;

use super::extract::ApiQuery;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::AuditQuery;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only events at or after this instant (RFC 3339 with a zone).
    after: Option<String>,
    /// Only events before this instant (RFC 3339 with a zone).
    before: Option<String>,
    /// e.g. `pin.changed`
    action: Option<String>,
    actor: Option<String>,
    model: Option<String>,
    environment: Option<String>,
    /// Only events about this cluster (its operations, switches and rollbacks).
    cluster: Option<String>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "Ledger events, newest first", body = ref("#/components/schemas/AuditPage")),
        (status = 404, description = "No event ever carried a filter's value (a typo?): the value is named", body = ref("#/components/schemas/Error")),
        (status = 422, description = "A malformed filter, limit or cursor", body = ref("#/components/schemas/Error")),
    ))]
pub async fn page(
    State(app): State<AppState>,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    let time = |t: Option<&str>| super::filter(t).map(super::parse_time).transpose();
    let text = |t: Option<String>| t.filter(|s| !s.is_empty());
    let query = AuditQuery {
        after: time(p.after.as_deref())?,
        before: time(p.before.as_deref())?,
        action: text(p.action),
        actor: text(p.actor),
        model: text(p.model),
        environment: text(p.environment),
        cluster: text(p.cluster),
        limit,
        cursor: text(p.cursor),
    };
    Ok(Json(app.store.audit_page(&query).await?))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "Whether the hash chain is intact, and the first broken event if not", body = ref("#/components/schemas/VerifyReport"))))]
pub async fn verify(State(app): State<AppState>) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(app.store.audit_verify().await?))
}
