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

/// The body limits; named here so the 413 message states them.
pub const BODY_LIMIT: usize = 1024 * 1024;
pub const RECORDS_BODY_LIMIT: usize = 16 * 1024 * 1024;

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

    pub fn too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is too large: the limit is {} MiB ({} MiB for request records)",
                BODY_LIMIT >> 20,
                RECORDS_BODY_LIMIT >> 20
            ),
        )
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
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Corrupt(_) => {
                // The request span around this event names the method and path.
                tracing::error!(error = %e, detail = ?e, "store call failed");
                ApiError::internal()
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    /// A missing or ill-typed query parameter is a well-formed request with
    /// unacceptable content: 422, like a bad body field.
    fn from(r: QueryRejection) -> Self {
        ApiError::rejection(StatusCode::UNPROCESSABLE_ENTITY, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::rejection(r.status(), r.body_text())
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
        (self.status, axum::Json(body)).into_response()
    }
}

/// Middleware for `/api/…`: an error response that carries no body of its
/// own (405 from the router, 408 from the timeout layer…) gets our JSON one.
pub async fn json_error_bodies(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    if is_api
        && (status.is_client_error() || status.is_server_error())
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
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
    fn database_failures_are_hidden_behind_a_generic_message() {
        let e: ApiError = StoreError::Corrupt("row 7 has a bad stage".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("row 7"));
    }
}
