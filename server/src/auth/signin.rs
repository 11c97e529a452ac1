//! The sign-in and sign-out form posts (plain HTML forms, so they work
//! without JavaScript). Failed sign-ins are rate-limited per username and
//! per client address, through the database so the limit holds across
//! servers, and each is a ledger event naming the username, never the password.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use switchyard_domain::Timestamp;

use super::session::{self, SESSION_HOURS};
use super::{password, secret};
use crate::state::AppState;
use crate::store::identity::NewSession;

/// The window failed sign-ins are counted over, and the limits in it.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_FAILURES_PER_USERNAME: u64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: u64 = 20;
const FORM_LIMIT: usize = 16 * 1024;
const MAX_USERNAME_CHARS: usize = 64;

#[derive(Deserialize)]
struct SignInForm {
    username: String,
    password: String,
}

fn back_to_signin(error: &str) -> Response {
    Redirect::to(&format!("/signin?error={error}")).into_response()
}

/// Back to the form with the reason and the username given, so that only
/// the password has to be typed again.
fn back_to_signin_as(error: &str, username: &str) -> Response {
    let query = serde_urlencoded::to_string([("error", error), ("username", username)])
        .unwrap_or_else(|_| format!("error={error}"));
    Redirect::to(&format!("/signin?{query}")).into_response()
}

/// Marks a sign-in refused by the failure limits: the answer is 429 with
/// `Retry-After`, and the console router gives it the sign-in page as its
/// body, showing the limit with the username filled in
/// (`console::limited_sign_in_page`).
#[derive(Debug, Clone)]
pub struct SignInLimited {
    pub username: String,
}

/// Seconds until a limited sign-in may succeed, at the latest: the refused
/// attempt itself is counted, so once the window has passed since it, every
/// failure that held the limit has left the window.
pub fn retry_after_secs() -> u64 {
    FAILURE_WINDOW.as_secs()
}

/// 429 Too Many Requests with `Retry-After`, marked for the page.
fn too_many_failures(username: &str) -> Response {
    let mut res = StatusCode::TOO_MANY_REQUESTS.into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs()));
    res.extensions_mut().insert(SignInLimited {
        username: username.to_owned(),
    });
    res
}

fn client_address(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |ConnectInfo(a)| a.ip().to_string())
}

/// `POST /signin` (form: username, password): on success a session cookie
/// and a redirect to the overview; past the failure limits 429 with
/// `Retry-After` and the form; otherwise back to the form with a reason.
pub async fn sign_in(State(app): State<AppState>, req: Request) -> Response {
    if !app.sso.settings.local_sign_in {
        return back_to_signin("local_off");
    }
    let address = client_address(&req);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return back_to_signin("invalid");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<SignInForm>(&bytes) else {
        return back_to_signin("invalid");
    };
    // Bounded, since failed attempts record the name given in the ledger.
    let username: String = form
        .username
        .trim()
        .chars()
        .take(MAX_USERNAME_CHARS)
        .collect();
    let username = username.as_str();
    let now = Timestamp::now();
    let window = i64::try_from(FAILURE_WINDOW.as_micros()).unwrap_or(i64::MAX);
    let window_start = Timestamp::from_micros(now.micros().saturating_sub(window));
    let failed = app
        .store
        .failed_sign_ins_since(username, &address, window_start)
        .await;
    let limited = match failed {
        Ok((by_user, by_address)) => {
            by_user >= MAX_FAILURES_PER_USERNAME || by_address >= MAX_FAILURES_PER_ADDRESS
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot count failed sign-ins");
            return back_to_signin("unavailable");
        }
    };
    let user = if limited {
        None
    } else {
        match app.store.user_credentials(username).await {
            Ok(Some((user, stored)))
                if !user.disabled && password::verify(&form.password, &stored) =>
            {
                Some(user)
            }
            Ok(found) => {
                if found.is_none() {
                    password::verify_nothing(&form.password);
                }
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot look up a user");
                return back_to_signin("unavailable");
            }
        }
    };
    let Some(user) = user else {
        if let Err(e) = app
            .store
            .record_failed_sign_in(username, &address, now)
            .await
        {
            tracing::error!(error = %e, "cannot record a failed sign-in");
        }
        tracing::info!(%address, "sign-in refused");
        if limited {
            return too_many_failures(username);
        }
        return back_to_signin_as("invalid", username);
    };
    let id = secret::generate("");
    let csrf_token = secret::generate("");
    let id_hash = secret::hash(&id);
    let new = NewSession {
        id_hash: &id_hash,
        csrf_token: &csrf_token,
        username: &user.username,
        address: &address,
        expires_at: now.plus_hours(SESSION_HOURS),
    };
    if let Err(e) = app.store.create_session(new, now).await {
        tracing::error!(error = %e, "cannot open a session");
        return back_to_signin("unavailable");
    }
    tracing::info!(username = %user.username, "signed in");
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(&parts.headers, Some(&id)),
    );
    res
}

/// `POST /signout` (form: csrf_token, checked by the console gate). A
/// session that began at the identity provider continues to its
/// end-session endpoint (RP-initiated logout), which comes back to `/signin`.
pub async fn sign_out(State(app): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let mut logout = None;
    if let Some(id) = session::cookie(&headers) {
        let hash = secret::hash(id);
        logout = super::oidc::logout_url(&app, &hash).await;
        if let Err(e) = app.store.end_session(&hash, Timestamp::now()).await {
            tracing::error!(error = %e, "cannot end a session");
        }
    }
    let mut res = match logout {
        Some(url) => super::oidc::continue_page("Signed out", &url),
        None => Redirect::to("/signin").into_response(),
    };
    res.headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(&headers, None));
    res
}
