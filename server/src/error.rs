//! The one error type users see: an HTTP status, a stable machine-readable
//! code and a sentence for the person who made the request, answered as
//! `{"error":{"code":"…","message":"…"}}`.
//!
//! Policy: a refusal by a domain rule is shown as is; a failure of the
//! database (or anything else internal) is logged here with its detail and
//! answered with a generic 500, so internals never leak to clients.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use switchyard_domain::DomainError;

use crate::store::StoreError;

/// The body limits; named here so the 413 message states them
/// (`rest/limits.rs` says which route takes which). A version registration
/// (its config) may be this large…
pub const BODY_LIMIT: usize = 1024 * 1024;
/// … a batch of request records this large…
pub const RECORDS_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// … and every other body this large.
pub const SMALL_BODY_LIMIT: usize = 256 * 1024;
/// Seconds a client is asked to wait after a 503 for an unavailable database.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Structured extras, e.g. the list of invalid request records.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 422: the input is well-formed JSON but not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401: no credentials, or ones that are unknown, revoked or expired.
    pub fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "this endpoint needs `Authorization: Bearer <token>` with a valid, unrevoked, unexpired API token",
        )
    }

    /// 403: authenticated, but the role is too low.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 with a generic message; the caller has already logged the cause.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// 503: the database is away, full or too slow; the same request may
    /// succeed later. Nothing was changed by the refused request.
    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            format!(
                "the database is unavailable (unreachable, restarting, full or too slow); \
                 nothing was changed: retry the request in a few seconds (Retry-After: {UNAVAILABLE_RETRY_AFTER_SECS})"
            ),
        )
    }

    /// 413 where the route is not known: every limit named.
    pub fn too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is too large: the API accepts at most {} ({} for a version \
                 registration, {} for a batch of request records)",
                size_words(SMALL_BODY_LIMIT),
                size_words(BODY_LIMIT),
                size_words(RECORDS_BODY_LIMIT)
            ),
        )
    }

    /// 413 naming what was sent to (`what`), its limit, and what to do instead.
    pub fn body_too_large(what: &str, limit: usize, fix: &str) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is too large: {what} accepts at most {}; {fix}",
                size_words(limit)
            ),
        )
        .with_details(serde_json::json!({ "limit_bytes": limit }))
    }

    /// An error status produced without a body by the framework or a layer
    /// (405, 408, 413…), given our JSON shape.
    pub fn from_bare_status(status: StatusCode) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::too_large();
        }
        if status.is_server_error() {
            return ApiError::internal();
        }
        let message = status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase();
        ApiError::new(status, code_for_status(status), message)
    }

    /// An extractor's rejection: its status, our code, its explanation.
    fn rejection(status: StatusCode, text: String) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::too_large();
        }
        if status.is_server_error() {
            tracing::error!(error = %text, "request extraction failed");
            return ApiError::internal();
        }
        ApiError::new(status, code_for_status(status), text)
    }
}

/// `262144` → "256 KiB", `1048576` → "1 MiB".
pub fn size_words(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_input",
        _ => "bad_request",
    }
}

/// A missing role binding: 403 naming it (`access::check`).
impl From<switchyard_domain::access::Missing> for ApiError {
    fn from(m: switchyard_domain::access::Missing) -> Self {
        ApiError::forbidden(m.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::RecordConflicts(conflicts) => {
                let count = conflicts.len();
                let first = conflicts
                    .first()
                    .map(|(i, m)| format!("; index {}: {m}", i + 1))
                    .unwrap_or_default();
                let listed: Vec<serde_json::Value> = conflicts
                    .iter()
                    .take(100)
                    .map(|(i, m)| serde_json::json!({ "index": i + 1, "message": m }))
                    .collect();
                ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("{count} request records repeat a stored request_id with other content, so none was stored{first}"),
                )
                .with_details(serde_json::json!({ "conflict_count": count, "conflicts": listed }))
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, detail = ?e, "store call failed: the database is unavailable");
                ApiError::unavailable()
            }
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Corrupt(_) => {
                // The request span around this event names the method and path.
                tracing::error!(error = %e, detail = ?e, "store call failed");
                ApiError::internal()
            }
        }
    }
}

/// The framework's rejection text in the API's own words: its prefixes
/// ("Failed to deserialize the JSON body into the target type: …") dropped,
/// and a value that is not of the type asked for named as such.
fn plain_words(text: &str) -> String {
    let text = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
        "Failed to deserialize query string: ",
        "Invalid URL: ",
    ]
    .iter()
    .fold(text.trim(), |t, prefix| t.strip_prefix(prefix).unwrap_or(t));
    let text = serde_types_in_words(text);
    let text = text.as_str();
    if let Some((value, ty)) = text
        .strip_prefix("Cannot parse `")
        .and_then(|rest| rest.split_once("` to a `"))
    {
        let kind = match ty.trim_end_matches('`') {
            "i64" | "i32" | "u64" | "u32" | "u16" | "u8" | "usize" => "a whole number",
            "f64" | "f32" => "a number",
            "bool" => "true or false",
            other => return format!("“{value}” is not a valid {other}"),
        };
        return format!("“{value}” is not {kind}");
    }
    text.to_owned()
}

/// serde's names of Rust types ("expected struct StageMove", "expected i64")
/// in JSON's words, and the standard library's integer parse error.
fn serde_types_in_words(text: &str) -> String {
    let mut out = text.replace("invalid digit found in string", "not a whole number");
    if let Some(start) = out.find("expected struct ") {
        let name_end = out[start + "expected struct ".len()..]
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .map_or(out.len(), |i| start + "expected struct ".len() + i);
        out.replace_range(start..name_end, "expected a JSON object");
    }
    for (rust, words) in [
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected f64", "expected a number"),
    ] {
        out = out.replace(rust, words);
    }
    out
}

impl From<JsonRejection> for ApiError {
    /// The rule: a body that is not JSON at all is 400 `bad_request`; JSON
    /// whose fields are missing or of the wrong type is 422 `invalid_input`,
    /// like any other unacceptable value.
    fn from(r: JsonRejection) -> Self {
        let words = plain_words(&r.body_text());
        let text = match &r {
            JsonRejection::JsonSyntaxError(_) => format!("the body is not valid JSON: {words}"),
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON, with the header Content-Type: application/json".to_owned()
            }
            _ => words,
        };
        ApiError::rejection(r.status(), text)
    }
}

impl From<QueryRejection> for ApiError {
    /// A missing or ill-typed query parameter is a well-formed request with
    /// unacceptable content: 422, like a bad body field.
    fn from(r: QueryRejection) -> Self {
        let text = format!("query: {}", plain_words(&r.body_text()));
        ApiError::rejection(StatusCode::UNPROCESSABLE_ENTITY, text)
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        let text = format!("path: {}", plain_words(&r.body_text()));
        // A path value of the wrong type is unacceptable content, as in a body: 422.
        let status = match r.status() {
            StatusCode::BAD_REQUEST => StatusCode::UNPROCESSABLE_ENTITY,
            other => other,
        };
        ApiError::rejection(status, text)
    }
}

#[cfg(test)]
mod wording_tests {
    use super::plain_words;

    #[test]
    fn framework_wording_is_put_in_the_apis_own_words() {
        assert_eq!(
            plain_words("Failed to deserialize the JSON body into the target type: missing field `reason` at line 1 column 2"),
            "missing field `reason` at line 1 column 2"
        );
        assert_eq!(
            plain_words("Invalid URL: Cannot parse `abc` to a `i64`"),
            "“abc” is not a whole number"
        );
        assert_eq!(
            plain_words("Cannot parse `x` to a `bool`"),
            "“x” is not true or false"
        );
        assert_eq!(
            plain_words("Failed to deserialize query string: unknown field `x`"),
            "unknown field `x`"
        );
        assert_eq!(plain_words("plain"), "plain");
        assert_eq!(
            plain_words("invalid type: null, expected struct StageMove at line 1 column 4"),
            "invalid type: null, expected a JSON object at line 1 column 4"
        );
        assert_eq!(
            plain_words(
                "overlap_hours: invalid type: string \"x\", expected i64 at line 1 column 9"
            ),
            "overlap_hours: invalid type: string \"x\", expected a whole number at line 1 column 9"
        );
        assert_eq!(
            plain_words("limit: invalid digit found in string"),
            "limit: not a whole number"
        );
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE && self.details.is_some() {
            res.extensions_mut().insert(LimitNamed);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
            );
        }
        res
    }
}

/// Marks a 413 whose message names the exact limit that was passed (a
/// route's body limit, a batch's record count), so that `rest::limits`
/// does not replace it with the route's body limit.
#[derive(Debug, Clone, Copy)]
pub struct LimitNamed;

/// Middleware for `/api/…`: an error response that carries no body of its
/// own (405 from the router, 408 from the timeout layer…) gets our JSON one.
pub async fn json_error_bodies(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let (path, method) = (req.uri().path().to_owned(), req.method().clone());
    let res = next.run(req).await;
    let status = res.status();
    if is_api
        && (status.is_client_error() || status.is_server_error())
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        // A wrong method is told where the right ones are: the router adds
        // `Allow` after this layer has run, so it is named, not copied.
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return ApiError::new(
                status,
                "method_not_allowed",
                format!(
                    "{path} does not take {method}: the Allow header lists the methods it takes; \
                     see /api/v1/openapi.json"
                ),
            )
            .into_response();
        }
        return ApiError::from_bare_status(status).into_response();
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_keep_their_code_and_status() {
        let e: ApiError = DomainError::Retired("chat:v1 is retired".into()).into();
        assert_eq!((e.status, e.code), (StatusCode::GONE, "retired"));
        assert_eq!(e.message, "chat:v1 is retired");
    }

    #[test]
    fn an_unreachable_database_is_a_503_that_says_to_retry() {
        let e: ApiError = StoreError::Database(sqlx::Error::PoolTimedOut).into();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
        );
        assert!(e.message.contains("retry"));
        let res = e.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        let e: ApiError = StoreError::Database(sqlx::Error::RowNotFound).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn database_failures_are_hidden_behind_a_generic_message() {
        let e: ApiError = StoreError::Corrupt("row 7 has a bad stage".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("row 7"));
    }
}
