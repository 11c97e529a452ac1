//! Browser sessions: the cookie, and the gate in front of the console that
//! finds the session, enforces CSRF on state-changing requests and sends
//! signed-out visitors to the sign-in page.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use switchyard_domain::Timestamp;

use super::{csrf, secret};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::identity::Session;

pub const COOKIE: &str = "sy_session";
/// How long a session lasts after sign-in.
pub const SESSION_HOURS: i64 = 12;
/// Largest form body the gate reads to find a CSRF field.
const FORM_LIMIT: usize = 64 * 1024;

/// The session id in the request's cookies, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(name, value)| (name == COOKIE).then_some(value))
}

/// Whether the client reached us over TLS (directly or through a proxy).
fn is_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The `Set-Cookie` value for a session id (`None`: clear the cookie).
pub fn set_cookie(headers: &HeaderMap, id: Option<&str>) -> HeaderValue {
    let secure = if is_tls(headers) { "; Secure" } else { "" };
    let value = match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_HOURS * 3600
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    // Built from hex and fixed text only, so always a valid header value.
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("sy_session=; Max-Age=0"))
}

/// The session a request's cookie names, if it is valid. A store failure is
/// logged and treated as signed out, so the console fails closed.
pub async fn current(app: &AppState, headers: &HeaderMap) -> Option<Session> {
    let id = cookie(headers)?;
    match app.store.session(&secret::hash(id), Timestamp::now()).await {
        Ok(session) => session,
        Err(e) => {
            tracing::error!(error = %e, "cannot look up a session");
            None
        }
    }
}

/// Pages answer signed-out visitors with a redirect; assets, the sign-in
/// page and server functions (which refuse by themselves) do not.
fn is_page(req: &Request) -> bool {
    let path = req.uri().path();
    matches!(*req.method(), Method::GET | Method::HEAD)
        && path != "/signin"
        && !path.starts_with("/auth/")
        && !path.starts_with("/pkg/")
        && !path.starts_with("/console/fn/")
        && !path.rsplit('/').next().unwrap_or_default().contains('.')
}

fn refused(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "csrf", message).into_response()
}

/// The CSRF token of a form body, and the body to pass on. Every body is
/// read within the limit, whatever its type, so that no console request
/// (server functions read their whole body) can send more.
async fn form_token(req: Request) -> Result<(Option<String>, Request), Response> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        ApiError::body_too_large(
            "a console request",
            FORM_LIMIT,
            "send less (a shorter reason or list)",
        )
        .into_response()
    })?;
    if !is_form {
        return Ok((None, Request::from_parts(parts, Body::from(bytes))));
    }
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| {
            fields
                .into_iter()
                .find(|(k, _)| k == csrf::FIELD)
                .map(|(_, v)| v)
        });
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// The console's gate: puts the session (if any) in the request's
/// extensions for the console to read, checks CSRF on every request that is
/// not GET/HEAD, and redirects signed-out page views to `/signin`.
pub async fn console_gate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let session = current(&app, req.headers()).await;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Err(why) = csrf::same_origin(req.headers()) {
            return refused(why);
        }
        // Signing in has no session yet; the origin check covers it.
        if req.uri().path() != "/signin" {
            let header_token = req
                .headers()
                .get(csrf::HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let (field_token, rebuilt) = match form_token(req).await {
                Ok(found) => found,
                Err(response) => return response,
            };
            req = rebuilt;
            let given = header_token.or(field_token);
            // Without a session the server function refuses with
            // `unauthenticated`; with one, the token must match.
            if let Some(s) = &session {
                if !csrf::token_matches(given.as_deref(), s) {
                    return refused(
                        "refused: the request lacks this session's CSRF token; reload the page"
                            .to_owned(),
                    );
                }
            }
        }
    } else if session.is_none() && is_page(&req) {
        return Redirect::to("/signin").into_response();
    }
    if let Some(s) = session {
        req.extensions_mut().insert(s);
    }
    next.run(req).await
}
