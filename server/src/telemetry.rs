//! Structured logs with tracing: human-readable by default, JSON with
//! `LOG_FORMAT=json`. Every HTTP request gets one span (see [`request_span`])
//! and one "request finished" event carrying its status and latency.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use switchyard_domain::FullId;
use tracing::field::Empty;
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; the level comes from `RUST_LOG` (default `info`).
pub fn init(log_json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter);
    // A second call (a subscriber is already set) leaves the first in place.
    let _ = if log_json {
        fmt.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        fmt.try_init()
    };
}

/// For tests: quiet unless `RUST_LOG` asks, captured per test, safe to call many times.
pub fn init_for_test() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// The span of one HTTP request. `status`, `latency_ms` and `model_version`
/// are filled in as they become known.
pub fn request_span(req: &Request) -> Span {
    let path = req.extensions().get::<MatchedPath>().map_or(req.uri().path(), MatchedPath::as_str);
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %req.method(),
        path,
        request_id,
        status = Empty,
        latency_ms = Empty,
        model_version = Empty,
    )
}

pub fn record_response(res: &Response, latency: Duration, span: &Span) {
    span.record("status", res.status().as_u16());
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    tracing::info!("request finished");
}

/// Notes on the current request's span which model version it resolved to.
pub fn record_model_version(full_id: &FullId) {
    Span::current().record("model_version", tracing::field::display(full_id));
}
