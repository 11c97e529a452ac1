//! Structured logs with tracing: human-readable by default, JSON with
//! `LOG_FORMAT=json`. Every HTTP request gets one span (see [`request_span`])
//! and one "request finished" event carrying its status and latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use switchyard_domain::FullId;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, TraceLayer};
use tracing::field::Empty;
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; the level comes from `RUST_LOG` (default `info`).
pub fn init(log_json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter);
    // A second call (a subscriber is already set) leaves the first in place.
    let _ = if log_json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        fmt.try_init()
    };
}

/// For tests: quiet unless `RUST_LOG` asks, captured per test, safe to call many times.
pub fn init_for_test() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub type RequestTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request) -> Span,
    (),
    fn(&Response, Duration, &Span),
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
>;

/// One span per request and one event when it is answered; failures are
/// not logged again here (the error type logs internal ones with detail).
pub fn trace_layer() -> RequestTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> Span)
        .on_request(())
        .on_response(record_response as fn(&Response, Duration, &Span))
        .on_failure(())
}

/// The span of one HTTP request. `status`, `latency_ms` and `model_version`
/// are filled in as they become known.
fn request_span(req: &Request) -> Span {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(req.uri().path(), MatchedPath::as_str);
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
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

fn record_response(res: &Response, latency: Duration, span: &Span) {
    span.record("status", res.status().as_u16());
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    tracing::info!("request finished");
}

/// Request ids for requests that come without one: a random prefix per
/// process and a counter, e.g. `3f9c2a7e1b04d8c6-1a2b`. Unique across
/// restarts and servers (64 random bits) without asking the kernel for
/// randomness on every request, as a UUID v4 per request did.
#[derive(Clone)]
pub struct SequentialRequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl SequentialRequestIds {
    pub fn new() -> Self {
        SequentialRequestIds {
            prefix: format!("{:016x}", rand::random::<u64>()).into(),
            next: Arc::default(),
        }
    }
}

impl Default for SequentialRequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl MakeRequestId for SequentialRequestIds {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Notes on the current request's span which model version it resolved to.
pub fn record_model_version(full_id: &FullId) {
    Span::current().record("model_version", tracing::field::display(full_id));
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn request_ids_are_distinct_and_share_the_process_prefix() {
        let mut ids = SequentialRequestIds::new();
        let req = axum::http::Request::new(());
        let mut make = || {
            let id = ids.make_request_id(&req).expect("an id");
            id.header_value().to_str().expect("ascii").to_owned()
        };
        let (a, b) = (make(), make());
        assert_ne!(a, b);
        assert_eq!(
            a.split_once('-').map(|p| p.0),
            b.split_once('-').map(|p| p.0)
        );
        assert_eq!(a.split_once('-').map(|p| p.0.len()), Some(16));
        assert_ne!(
            SequentialRequestIds::new().prefix,
            SequentialRequestIds::new().prefix
        );
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_is_logged_with_method_matched_path_status_latency_and_model_version() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        async fn resolve() -> &'static str {
            record_model_version(&FullId::parse("chat:v2").expect("full id"));
            "ok"
        }
        let app = Router::new()
            .route("/resolve/{reference}", get(resolve))
            .layer(trace_layer());
        let req = Request::get("/resolve/chat?env=production")
            .body(Body::empty())
            .expect("request");
        app.oneshot(req).await.expect("response");

        let logs =
            String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8");
        let line: serde_json::Value =
            serde_json::from_str(logs.lines().last().expect("a log line")).expect("JSON");
        let span = &line["span"];
        assert_eq!(span["method"], "GET");
        assert_eq!(span["path"], "/resolve/{reference}");
        assert_eq!(span["status"], 200);
        assert!(span["latency_ms"].is_number());
        assert_eq!(span["model_version"], "chat:v2");
    }
}
