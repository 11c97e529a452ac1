//! Signing in through the identity provider (OpenID Connect authorization
//! code flow with PKCE S256, `state` and `nonce`), with the `openidconnect`
//! crate doing discovery, the code exchange and ID token verification
//! (signature from the provider's JWKS, `iss`, `aud`, `exp`, `nonce`).
//!
//! `GET /auth/oidc/start` stores the sign-in server-side (`SsoStore`,
//! keyed by the hash of `state`, single-use, 10 minutes), binds it to the
//! browser with a cookie, and sends the browser to the provider.
//! `GET /auth/oidc/callback` takes the stored sign-in (a replayed `state`
//! finds nothing), exchanges the code, verifies the ID token, maps the
//! groups claim to a role (`RoleMap::role_for`), creates or updates the
//! user and opens a session exactly as a local sign-in does. Every failure
//! goes back to `/signin?error=<code>` (`switchyard_domain::sso::SsoFailure`)
//! with nothing created.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, CsrfToken, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse,
};
use switchyard_domain::sso::SsoFailure;
use switchyard_domain::Timestamp;

use super::secret;
use super::session::{self, SESSION_HOURS};
use crate::sso::{Discovered, IdToken, KEY_REFETCH_INTERVAL, PENDING_MINUTES};
use crate::state::AppState;
use crate::store::identity::NewSession;
use crate::store::sso::{PendingSignIn, SsoPerson};

/// The cookie binding a started sign-in to the browser that started it
/// (`SameSite=Lax`: it must come back with the provider's redirect).
pub const STATE_COOKIE: &str = "sy_sso_state";
pub const START_PATH: &str = "/auth/oidc/start";
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

fn back_to_signin(failure: SsoFailure) -> Response {
    let mut res = Redirect::to(&format!("/signin?error={}", failure.code())).into_response();
    clear_state_cookie(&mut res);
    res
}

fn clear_state_cookie(res: &mut Response) {
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "sy_sso_state=; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=0",
        ),
    );
}

fn client_address(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |ConnectInfo(a)| a.ip().to_string())
}

/// A cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(n, value)| (n == name).then_some(value))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A page that moves on to `to` by itself (meta refresh, no JavaScript) and
/// links there. Used instead of a redirect where one would break: after the
/// provider's cross-site redirect a `SameSite=Strict` session cookie is not
/// sent with a further redirect, and a form post may not redirect to
/// another site under the console's `form-action 'self'`.
pub fn continue_page(title: &str, to: &str) -> Response {
    let to = html_escape(to);
    let title = html_escape(title);
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={to}\"><title>{title} · Switchyard</title></head>\
         <body><main><h1>{title}</h1><p><a href=\"{to}\">Continue</a></p></main></body></html>"
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /auth/oidc/start`: to the provider's authorization endpoint.
pub async fn start(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(settings) = app.sso.oidc() else {
        return back_to_signin(SsoFailure::NotConfigured);
    };
    let Some(provider) = app.sso.provider().await else {
        return back_to_signin(SsoFailure::ProviderUnavailable);
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = provider.client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in settings.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    let now = Timestamp::now();
    let pending = PendingSignIn {
        state_hash: secret::hash(state.secret()),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        created_at: now,
        expires_at: Timestamp::from_micros(now.micros() + PENDING_MINUTES * 60_000_000),
    };
    if let Err(e) = app.store.start_sso_sign_in(&pending).await {
        tracing::error!(error = %e, "cannot store a started sign-in");
        return back_to_signin(SsoFailure::Unavailable);
    }
    let secure = if headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
    {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{STATE_COOKIE}={}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        state.secret(),
        PENDING_MINUTES * 60
    );
    let mut res = Redirect::to(url.as_str()).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, value);
    }
    res
}

#[derive(serde::Deserialize, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// RFC 9207: the issuer that answered.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Records a refused single sign-on (ledger `user.sign_in_failed`) and
/// sends the browser back to the sign-in page with the reason.
async fn refuse(
    app: &AppState,
    who: &str,
    address: &str,
    failure: SsoFailure,
    why: &str,
) -> Response {
    tracing::info!(%address, who, reason = failure.code(), why, "single sign-on refused");
    if let Err(e) = app
        .store
        .record_failed_sign_in(who, address, Timestamp::now())
        .await
    {
        tracing::error!(error = %e, "cannot record a failed sign-in");
    }
    back_to_signin(failure)
}

/// `GET /auth/oidc/callback?code&state[&iss]` (or `?error=…`).
pub async fn callback(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let address = client_address(&req);
    let headers = req.headers().clone();
    let Some(settings) = app.sso.oidc().cloned() else {
        return back_to_signin(SsoFailure::NotConfigured);
    };
    let q: CallbackQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let Some(state) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return refuse(&app, "sso", &address, SsoFailure::UnknownState, "no state").await;
    };
    // The browser that started the sign-in must be the one finishing it.
    if cookie(&headers, STATE_COOKIE) != Some(state) {
        return refuse(
            &app,
            "sso",
            &address,
            SsoFailure::UnknownState,
            "state cookie missing or different",
        )
        .await;
    }
    let now = Timestamp::now();
    let pending = match app.store.take_sso_sign_in(&secret::hash(state), now).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return refuse(
                &app,
                "sso",
                &address,
                SsoFailure::UnknownState,
                "no pending sign-in with this state",
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read a started sign-in");
            return back_to_signin(SsoFailure::Unavailable);
        }
    };
    if let Some(error) = &q.error {
        let why = format!("{error}: {}", q.error_description.as_deref().unwrap_or(""));
        return refuse(&app, "sso", &address, SsoFailure::ProviderRefused, &why).await;
    }
    if let Some(iss) = &q.iss {
        if iss.trim_end_matches('/') != settings.issuer.trim_end_matches('/') {
            return refuse(
                &app,
                "sso",
                &address,
                SsoFailure::IdTokenWrongIssuer,
                "the iss parameter names another issuer",
            )
            .await;
        }
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return refuse(
            &app,
            "sso",
            &address,
            SsoFailure::ProviderRefused,
            "no code",
        )
        .await;
    };
    let Some(provider) = app.sso.provider().await else {
        return back_to_signin(SsoFailure::ProviderUnavailable);
    };
    let request = match provider.client.exchange_code(AuthorizationCode::new(code)) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "the provider has no token endpoint");
            return back_to_signin(SsoFailure::ProviderUnavailable);
        }
    };
    let tokens = match request
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&app.sso.http)
        .await
    {
        Ok(t) => t,
        Err(RequestTokenError::ServerResponse(e)) => {
            return refuse(
                &app,
                "sso",
                &address,
                SsoFailure::ExchangeFailed,
                &e.to_string(),
            )
            .await
        }
        Err(e @ (RequestTokenError::Request(_) | RequestTokenError::Parse(..))) => {
            tracing::warn!(error = %e, "the token endpoint failed or answered garbage");
            return back_to_signin(SsoFailure::ProviderUnavailable);
        }
        Err(e) => {
            return refuse(
                &app,
                "sso",
                &address,
                SsoFailure::ExchangeFailed,
                &e.to_string(),
            )
            .await
        }
    };
    let Some(raw) = tokens.id_token().map(ToString::to_string) else {
        return refuse(&app, "sso", &address, SsoFailure::BadIdToken, "no ID token").await;
    };
    let claims = match verify_id_token(&app, provider, &raw, &pending.nonce).await {
        Ok(c) => c,
        Err(e) => return refuse(&app, "sso", &address, failure_of(&e), &e.to_string()).await,
    };
    let issuer = claims.issuer().as_str().to_owned();
    let subject = claims.subject().as_str().to_owned();
    let who = format!("sso:{subject}");
    let groups = groups_of(
        claims
            .additional_claims()
            .claims
            .get(&settings.groups_claim),
    );
    // A role from SWITCHYARD_OIDC_ROLE_MAP, or else whatever role bindings
    // Switchyard holds for the person's groups (a viewer until they apply).
    let mapped = app.sso.settings.role_map.role_for(&groups).map(|g| g.role);
    let group_bound = match mapped {
        Some(_) => true,
        None => match app.store.group_bindings(&groups).await {
            Ok(bound) => !bound.is_empty(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read role bindings");
                return back_to_signin(SsoFailure::Unavailable);
            }
        },
    };
    let granted = mapped.or(group_bound.then_some(switchyard_domain::access::Role::Viewer));
    let Some(granted) = granted else {
        let why = format!(
            "groups [{}] map to no role and no role binding names them",
            groups.join(", ")
        );
        let mut res = refuse(&app, &who, &address, SsoFailure::NoRole, &why).await;
        // The page names the groups seen, so the person can tell an admin.
        let query = serde_urlencoded::to_string([
            ("error", SsoFailure::NoRole.code()),
            ("groups", &groups.join(", ")),
        ])
        .unwrap_or_default();
        if let Ok(v) = HeaderValue::from_str(&format!("/signin?{query}")) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        return res;
    };
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned());
    let email = claims.email().map(|e| e.as_str().to_owned());
    let preferred = claims.preferred_username().map(|u| u.as_str().to_owned());
    let person = SsoPerson {
        issuer: &issuer,
        subject: &subject,
        preferred_username: preferred.as_deref(),
        display_name: name.as_deref(),
        email: email.as_deref(),
        groups: &groups,
        role: granted,
        role_from_map: mapped.is_some(),
    };
    let signed_in = match app.store.sso_sign_in(&person, Timestamp::now()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign a single sign-on user in");
            return back_to_signin(SsoFailure::Unavailable);
        }
    };
    if signed_in.user.disabled {
        return refuse(
            &app,
            &signed_in.user.username,
            &address,
            SsoFailure::Disabled,
            "disabled",
        )
        .await;
    }
    let id = secret::generate("");
    let csrf_token = secret::generate("");
    let id_hash = secret::hash(&id);
    let now = Timestamp::now();
    let expires_at = now.plus_hours(SESSION_HOURS);
    let new = NewSession {
        id_hash: &id_hash,
        csrf_token: &csrf_token,
        username: &signed_in.user.username,
        address: &address,
        expires_at,
    };
    if let Err(e) = app.store.create_session(new, now).await {
        tracing::error!(error = %e, "cannot open a session");
        return back_to_signin(SsoFailure::Unavailable);
    }
    if let Err(e) = app
        .store
        .remember_id_token(&id_hash, &raw, expires_at, now)
        .await
    {
        // Only RP-initiated logout needs it; the sign-in stands.
        tracing::warn!(error = %e, "cannot keep the ID token for sign-out");
    }
    tracing::info!(username = %signed_in.user.username, role = %granted, created = signed_in.created, "signed in through the identity provider");
    let mut res = continue_page("Signed in", "/");
    res.headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(&headers, Some(&id)));
    clear_state_cookie(&mut res);
    res
}

type Claims =
    openidconnect::IdTokenClaims<crate::sso::ExtraClaims, openidconnect::core::CoreGenderClaim>;

/// Verifies the ID token with the provider's keys; a token signed with a
/// key the cached JWKS lacks makes one rediscovery (key rotation).
async fn verify_id_token(
    app: &AppState,
    provider: std::sync::Arc<Discovered>,
    raw: &str,
    nonce: &str,
) -> Result<Claims, ClaimsVerificationError> {
    let token: IdToken = raw
        .parse()
        .map_err(|e| ClaimsVerificationError::Other(format!("the ID token is malformed: {e}")))?;
    let nonce = Nonce::new(nonce.to_owned());
    match token.claims(&provider.client.id_token_verifier(), &nonce) {
        Ok(c) => return Ok(c.clone()),
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => {}
        Err(e) => return Err(e),
    }
    let Some(fresh) = app.sso.discover(KEY_REFETCH_INTERVAL).await else {
        return Err(ClaimsVerificationError::Other(
            "the ID token's key is unknown and the provider cannot be asked again".into(),
        ));
    };
    // Bound first: the verifier borrows `fresh` until the end of the statement.
    let verified = token
        .claims(&fresh.client.id_token_verifier(), &nonce)
        .map(Clone::clone)
        .map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => ClaimsVerificationError::Other(
                "the ID token is signed with a key the provider does not publish".to_owned(),
            ),
            other => other,
        });
    verified
}

/// What the sign-in page says about an ID token that failed verification:
/// expiry, issuer and audience by name, the rest (signature, nonce,
/// malformed) as one failure. The exact reason goes to the log.
fn failure_of(e: &ClaimsVerificationError) -> SsoFailure {
    match e {
        ClaimsVerificationError::Expired(_) => SsoFailure::IdTokenExpired,
        ClaimsVerificationError::InvalidIssuer(_) => SsoFailure::IdTokenWrongIssuer,
        ClaimsVerificationError::InvalidAudience(_) => SsoFailure::IdTokenWrongAudience,
        _ => SsoFailure::BadIdToken,
    }
}

/// The groups claim as strings: an array of strings, or one string.
fn groups_of(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str())
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// For sign-out: where to send the browser to end the provider's session
/// too (RP-initiated logout), when the session began there and the
/// provider has an end-session endpoint. Takes the session's ID token.
pub async fn logout_url(app: &AppState, session_hash: &str) -> Option<String> {
    let settings = app.sso.oidc()?;
    let id_token = match app.store.take_id_token(session_hash).await {
        Ok(t) => t?,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a session's ID token");
            return None;
        }
    };
    let provider = app.sso.provider().await?;
    let end_session = provider.end_session.clone()?;
    let token: IdToken = id_token.parse().ok()?;
    let mut back = url::Url::parse(&settings.redirect_url).ok()?;
    back.set_path("/signin");
    back.set_query(None);
    let request = openidconnect::LogoutRequest::from(end_session)
        .set_id_token_hint(&token)
        .set_client_id(ClientId::new(settings.client_id.clone()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(back));
    Some(request.http_get_url().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_claims_of_either_shape_are_read() {
        let v = serde_json::json!(["a", 1, "b"]);
        assert_eq!(groups_of(Some(&v)), ["a", "b"]);
        assert_eq!(groups_of(Some(&serde_json::json!("a"))), ["a"]);
        assert!(groups_of(None).is_empty());
        assert!(groups_of(Some(&serde_json::json!({"a": 1}))).is_empty());
    }

    #[test]
    fn the_continue_page_escapes_its_target() {
        let res = continue_page("Signed <in>", "/x?a=1&b=\"2\"");
        assert_eq!(res.status(), StatusCode::OK);
    }
}
