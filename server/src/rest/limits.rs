//! How much one request may send: the body size per route, answered with a
//! 413 that names the route's limit and what to do instead. The limits are
//! applied twice: `DefaultBodyLimit` per route makes the extractors stop
//! reading at the limit (bodies without a length too), and [`enforce`]
//! refuses a declared `Content-Length` above it before anything is read, and
//! gives every 413 of the route the message naming its limit.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchyard_domain::records::MAX_RECORDS_PER_BATCH;

use crate::error::{
    size_words, ApiError, LimitNamed, BODY_LIMIT, RECORDS_BODY_LIMIT, SMALL_BODY_LIMIT,
};

/// The body limit of one route, with the words of its 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    pub bytes: usize,
    /// What is limited, as the message names it.
    pub what: &'static str,
}

impl BodyLimit {
    /// The limit of `method` on `path` (an API path as requested).
    pub fn of(method: &Method, path: &str) -> BodyLimit {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::POST, ["", "api", "v1", "request-records"]) => BodyLimit {
                bytes: RECORDS_BODY_LIMIT,
                what: "a batch of request records (POST /api/v1/request-records)",
            },
            (&Method::POST, ["", "api", "v1", "models", _, "versions"]) => BodyLimit {
                bytes: BODY_LIMIT,
                what: "a version registration (POST /api/v1/models/{model_id}/versions)",
            },
            _ => BodyLimit {
                bytes: SMALL_BODY_LIMIT,
                what: "this endpoint",
            },
        }
    }

    /// The 413 of this route.
    pub fn refusal(&self, sent: Option<u64>) -> ApiError {
        let sent = sent
            .map(|n| format!("this one is {n} bytes; "))
            .unwrap_or_default();
        let fix = if self.bytes == RECORDS_BODY_LIMIT {
            format!(
                "{sent}split the records into batches of at most {MAX_RECORDS_PER_BATCH} records and {}",
                size_words(RECORDS_BODY_LIMIT)
            )
        } else if self.bytes == BODY_LIMIT {
            format!("{sent}keep the version's config under {}: put large files in the artifact (artifact_uri) instead", size_words(BODY_LIMIT))
        } else {
            format!("{sent}send less (a shorter reason, fewer items)")
        };
        ApiError::body_too_large(self.what, self.bytes, &fix)
    }
}

/// Middleware on the REST routes: a declared body above the route's limit
/// is refused before it is read, and any 413 of the route (a body without a
/// length that ran past the limit) names the limit.
pub async fn enforce(req: Request, next: Next) -> Response {
    let limit = BodyLimit::of(req.method(), req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.bytes as u64) {
        return limit.refusal(declared).into_response();
    }
    let res = next.run(req).await;
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE && res.extensions().get::<LimitNamed>().is_none() {
        return limit.refusal(None).into_response();
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_has_its_limit_and_the_refusal_names_it_and_the_fix() {
        let records = BodyLimit::of(&Method::POST, "/api/v1/request-records");
        assert_eq!(records.bytes, RECORDS_BODY_LIMIT);
        let register = BodyLimit::of(&Method::POST, "/api/v1/models/chat/versions");
        assert_eq!(register.bytes, BODY_LIMIT);
        for (method, path) in [
            (Method::GET, "/api/v1/models/chat/versions"),
            (Method::POST, "/api/v1/promotions"),
            (Method::POST, "/api/v1/models/chat/versions/extra"),
            (Method::PUT, "/api/v1/request-records"),
        ] {
            assert_eq!(BodyLimit::of(&method, path).bytes, SMALL_BODY_LIMIT, "{method} {path}");
        }
        let e = records.refusal(Some(20_000_000));
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            e.message.contains("at most 16 MiB")
                && e.message.contains("this one is 20000000 bytes")
                && e.message.contains(&format!("batches of at most {MAX_RECORDS_PER_BATCH} records")),
            "{}",
            e.message
        );
        let e = BodyLimit::of(&Method::POST, "/api/v1/promotions").refusal(None);
        assert!(e.message.contains("this endpoint accepts at most 256 KiB"), "{}", e.message);
        assert!(register.refusal(None).message.contains("artifact_uri"));
    }
}
