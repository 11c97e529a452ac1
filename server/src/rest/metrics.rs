//! Prometheus metrics at `/metrics`, kept by hand: a handful of counters and
//! one histogram do not justify a metrics framework and its dependencies.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Upper bounds (seconds) of the request duration histogram's buckets.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How a resolve call ended; the `outcome` label of `switchyard_resolve_total`.
pub const RESOLVE_OUTCOMES: [&str; 7] = [
    "ok",
    "deprecated",
    "not_found",
    "retired",
    "policy_violation",
    "invalid_input",
    "error",
];

#[derive(Default)]
pub struct Metrics {
    /// matched path → method → series. Keyed by the route, not the raw URI,
    /// so the number of series stays bounded.
    http: Mutex<HashMap<Box<str>, HashMap<Method, RouteSeries>>>,
    resolve: [AtomicU64; RESOLVE_OUTCOMES.len()],
    records_ingested: AtomicU64,
}

#[derive(Default)]
struct RouteSeries {
    by_status: Vec<(u16, u64)>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Metrics {
    fn observe_http(&self, path: &str, method: &Method, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        if !http.contains_key(path) {
            http.insert(path.into(), HashMap::new());
        }
        let Some(by_method) = http.get_mut(path) else {
            return;
        };
        let series = by_method.entry(method.clone()).or_default();
        match series.by_status.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => series.by_status.push((status, 1)),
        }
        for (bucket, le) in series.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *bucket += 1;
            }
        }
        series.count += 1;
        series.sum_seconds += seconds;
    }

    /// Counts one resolve call; `outcome` is one of [`RESOLVE_OUTCOMES`]
    /// (anything else counts as `error`).
    pub fn resolved(&self, outcome: &str) {
        let i = RESOLVE_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(RESOLVE_OUTCOMES.len() - 1);
        self.resolve[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn records_ingested(&self, n: u64) {
        self.records_ingested.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = self.render_http(&mut out);
        let _ = writeln!(
            out,
            "# HELP switchyard_resolve_total Resolve calls by outcome."
        );
        let _ = writeln!(out, "# TYPE switchyard_resolve_total counter");
        for (outcome, n) in RESOLVE_OUTCOMES.iter().zip(&self.resolve) {
            let _ = writeln!(
                out,
                "switchyard_resolve_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_request_records_ingested_total Request records stored."
        );
        let _ = writeln!(
            out,
            "# TYPE switchyard_request_records_ingested_total counter"
        );
        let _ = writeln!(
            out,
            "switchyard_request_records_ingested_total {}",
            self.records_ingested.load(Ordering::Relaxed)
        );
        out
    }

    fn render_http(&self, out: &mut String) -> std::fmt::Result {
        let http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        let mut routes: Vec<_> = http
            .iter()
            .flat_map(|(p, m)| m.iter().map(move |(m, s)| (p, m, s)))
            .collect();
        routes.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
        writeln!(
            out,
            "# HELP http_requests_total HTTP requests by method, matched path and status."
        )?;
        writeln!(out, "# TYPE http_requests_total counter")?;
        for (path, method, s) in &routes {
            for (status, n) in &s.by_status {
                writeln!(out, "http_requests_total{{method=\"{method}\",path=\"{path}\",status=\"{status}\"}} {n}")?;
            }
        }
        writeln!(
            out,
            "# HELP http_request_duration_seconds HTTP request latency by method and matched path."
        )?;
        writeln!(out, "# TYPE http_request_duration_seconds histogram")?;
        for (path, method, s) in &routes {
            let labels = format!("method=\"{method}\",path=\"{path}\"");
            for (le, n) in BUCKETS.iter().zip(s.buckets) {
                writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                )?;
            }
            writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            )?;
            writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            )?;
            writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            )?;
        }
        Ok(())
    }
}

/// Middleware counting every request by method, matched path and status.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    let path = path.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.observe_http(
        path,
        &method,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /metrics`: never anonymous. `Authorization: Bearer` with the
/// scraper's secret (`SWITCHYARD_METRICS_TOKEN`, if set) or any valid API token.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "Neither `SWITCHYARD_METRICS_TOKEN` nor a valid API token as `Authorization: Bearer`", body = ref("#/components/schemas/Error")),
    ))]
pub async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    State(app): State<crate::state::AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, crate::error::ApiError> {
    // Never open to anyone: the scraper's own secret, or any valid API token.
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|g| !g.is_empty());
    let Some(given) = given else {
        return Err(crate::error::ApiError::unauthenticated());
    };
    let scraper = app
        .config
        .metrics_token
        .as_deref()
        .is_some_and(|expected| crate::auth::secret::constant_time_eq(given, expected));
    if !scraper
        && app
            .store
            .token_identity(
                &crate::auth::secret::hash(given),
                switchyard_domain::Timestamp::now(),
            )
            .await?
            .is_none()
    {
        return Err(crate::error::ApiError::unauthenticated());
    }
    let mut text = metrics.render();
    // The outbox is shared by every server; an unreachable database leaves
    // only this process's counters out.
    let stats = app.store.queue_stats().await.ok();
    crate::notify::render_metrics(
        &mut text,
        stats.as_ref(),
        switchyard_domain::Timestamp::now(),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_shows_up_in_the_counter_and_every_larger_bucket() {
        let m = Metrics::default();
        m.observe_http("/healthz", &Method::GET, 200, 0.003);
        let text = m.render();
        assert!(
            text.contains(r#"http_requests_total{method="GET",path="/healthz",status="200"} 1"#)
        );
        assert!(text.contains(
            r#"http_request_duration_seconds_bucket{method="GET",path="/healthz",le="0.0025"} 0"#
        ));
        assert!(text.contains(
            r#"http_request_duration_seconds_bucket{method="GET",path="/healthz",le="0.005"} 1"#
        ));
    }

    #[test]
    fn resolve_outcomes_are_counted_separately() {
        let m = Metrics::default();
        m.resolved("retired");
        m.resolved("retired");
        assert!(m
            .render()
            .contains(r#"switchyard_resolve_total{outcome="retired"} 2"#));
    }
}
