//! REST API v1 under `/api/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Handlers are thin: parse the input with the domain's types, take the
//! actor, call the store, and let `ApiError` map what comes back.

pub mod actor;
pub mod analysis;
pub mod audit;
pub mod bindings;
pub mod clusters;
pub mod environments;
pub mod extract;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod mlflow;
pub mod openapi;
pub mod operations;
pub mod promotions;
pub mod release;
pub mod request_records;
pub mod resolve;
pub mod serving;
pub mod stages;
pub mod subscriptions;
pub mod versions;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{any, delete, get, post, put};
use axum::{middleware, Router};
use switchyard_domain::Timestamp;

use crate::error::{ApiError, BODY_LIMIT, RECORDS_BODY_LIMIT, SMALL_BODY_LIMIT};
use crate::state::AppState;
use metrics::Metrics;

#[derive(Clone, FromRef)]
struct RestState {
    app: AppState,
    metrics: Arc<Metrics>,
}

/// The API's routes, with their state applied; `startup` merges the console's.
pub fn router(state: AppState, metrics: Arc<Metrics>) -> Router {
    let ingest = post(request_records::ingest).layer(DefaultBodyLimit::max(RECORDS_BODY_LIMIT));
    let api = Router::new()
        .route("/api/v1/models", get(versions::list_models))
        .route(
            "/api/v1/models/{model_id}/versions",
            get(versions::list_versions)
                .post(versions::register)
                .layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route("/api/v1/versions/{full_id}", get(versions::detail))
        .route(
            "/api/v1/versions/{full_id}/stage",
            post(stages::change_stage),
        )
        .route("/api/v1/environments", get(environments::list))
        .route(
            "/api/v1/environments/{env}/pins/{model_id}",
            put(environments::set_pin),
        )
        .route(
            "/api/v1/environments/{env}/policy",
            put(release::put_policy),
        )
        .route(
            "/api/v1/environments/{env}/overrides",
            post(release::request_override),
        )
        .route("/api/v1/overrides", get(release::list_overrides))
        .route(
            "/api/v1/overrides/{id}/approve",
            post(release::approve_override),
        )
        .route(
            "/api/v1/freezes",
            get(release::list_freezes).post(release::create_freeze),
        )
        .route("/api/v1/freezes/{id}", delete(release::remove_freeze))
        .route("/api/v1/resolve/{reference}", get(resolve::resolve))
        .route("/api/v1/request-records", ingest)
        .route(
            "/api/v1/request-records/{request_id}",
            get(request_records::lookup),
        )
        .route("/api/v1/serving", get(serving::serving_at))
        .route(
            "/api/v1/clusters",
            get(clusters::list).post(clusters::create),
        )
        .route(
            "/api/v1/clusters/{name}",
            get(clusters::detail).delete(clusters::remove),
        )
        .route("/api/v1/clusters/{name}/test", post(clusters::test))
        .route(
            "/api/v1/clusters/{name}/operations",
            post(operations::start),
        )
        .route(
            "/api/v1/clusters/{name}/rollback",
            post(operations::rollback),
        )
        .route("/api/v1/operations/{id}", get(operations::detail))
        .route("/api/v1/operations/{id}/pause", post(operations::pause))
        .route(
            "/api/v1/operations/{id}/continue",
            post(operations::continue_paused),
        )
        .route(
            "/api/v1/operations/{id}/rollback",
            post(operations::roll_back_paused),
        )
        .route("/api/v1/analysis-templates", get(analysis::list))
        .route(
            "/api/v1/clusters/{name}/analysis",
            put(analysis::set_for_cluster),
        )
        .route(
            "/api/v1/analysis-templates/{name}",
            get(analysis::detail)
                .put(analysis::put)
                .delete(analysis::remove),
        )
        .route("/api/v1/audit", get(audit::page))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route(
            "/api/v1/promotions",
            get(promotions::list).post(promotions::request),
        )
        .route("/api/v1/promotions/{id}/approve", post(promotions::approve))
        .route("/api/v1/promotions/{id}/reject", post(promotions::reject))
        .route("/api/v1/promotions/{id}/withdraw", post(promotions::withdraw))
        .route(
            "/api/v1/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            "/api/v1/subscriptions/{name}",
            get(subscriptions::detail).delete(subscriptions::delete),
        )
        .route(
            "/api/v1/subscriptions/{name}/rotate-secret",
            post(subscriptions::rotate_secret),
        )
        .route(
            "/api/v1/subscriptions/{name}/test",
            post(subscriptions::send_test),
        )
        .route(
            "/api/v1/deliveries/{id}/redeliver",
            post(subscriptions::redeliver),
        )
        .route("/api/v1/notifications/status", get(subscriptions::status))
        .route(
            "/api/v1/role-bindings",
            get(bindings::list).post(bindings::create),
        )
        .route("/api/v1/role-bindings/{id}", delete(bindings::remove))
        // Unknown API paths answer in the API's format, not with the console's 404 page.
        .route("/api/{*rest}", any(unknown_path))
        // Every API route, and only those: health and metrics stay anonymous.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            actor::authenticate,
        ));
    Router::new()
        .merge(api)
        // The API's description answers anyone, so a client can be generated before a token exists.
        .route("/api/v1/openapi.json", get(openapi::document))
        // Authenticated by MLflow's signature, not by an API token.
        .route("/api/v1/mlflow/webhook", post(mlflow::webhook))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        // Each route's body limit, named in its 413 (`limits.rs`).
        .layer(middleware::from_fn(limits::enforce))
        .with_state(RestState {
            app: state,
            metrics,
        })
}

async fn unknown_path(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no API endpoint at {}; see /api/v1/openapi.json",
        uri.path()
    ))
}

/// A reason as given (trimmed), or 422 `field "reason" is required`.
fn required_reason(r: Option<&str>) -> Result<&str, ApiError> {
    Ok(switchyard_domain::text::required_reason(r)?)
}

/// A query filter as given, or none when it is empty (`?model=`).
fn filter(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !v.is_empty())
}

/// Parses an RFC 3339 timestamp from a query string, where an unencoded `+`
/// of a zone offset (`…T15:00:00+01:00`) arrives decoded as a space.
fn parse_time(s: &str) -> Result<Timestamp, ApiError> {
    let s = s.trim();
    let repaired;
    let s = match s.rfind(' ') {
        Some(i) if i > "2026-03-03T00:00".len() => {
            repaired = format!("{}+{}", &s[..i], &s[i + 1..]);
            repaired.as_str()
        }
        _ => s,
    };
    Ok(Timestamp::parse(s)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_offset_whose_plus_was_decoded_as_a_space_still_parses() {
        let t = parse_time("2026-03-03T15:00:00 01:00").expect("parses");
        assert_eq!(t, Timestamp::parse("2026-03-03T14:00:00Z").expect("parses"));
    }

    #[test]
    fn a_timestamp_without_a_zone_is_refused() {
        let e = parse_time("2026-03-03T14:00:00").expect_err("refused");
        assert_eq!(e.code, "invalid_input");
        assert!(e.message.contains("time zone"), "{}", e.message);
    }
}
