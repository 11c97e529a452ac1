//! Who is making an API request: every `/api/v1` route runs `authenticate`
//! first (401 without a valid bearer token), and handlers take the `Actor`
//! it leaves behind, checking the role they need with `Actor::require`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

use crate::auth::{self, secret, workload, Identity};
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller. `name` is the ledger actor handlers hand to
/// the store (the person; the token used is recorded beside it by
/// `store::acting_with_token`), so no handler invents one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    pub identity: Identity,
}

impl Actor {
    /// 403 naming the binding `what` (tied to no environment) needs: the role on all.
    pub fn require(&self, needed: Role, what: &str) -> Result<(), ApiError> {
        auth::require(&self.identity, needed, what)
    }

    /// 403 naming the binding `what` needs in `environment`.
    pub fn require_in(&self, needed: Role, environment: &str, what: &str) -> Result<(), ApiError> {
        auth::require_in(&self.identity, needed, environment, what)
    }

    /// The lower bar before the environment is known: `needed` somewhere.
    pub fn require_somewhere(&self, needed: Role, what: &str) -> Result<(), ApiError> {
        Ok(self.identity.check_somewhere(needed, what)?)
    }

    /// `needed` in each of `environments` (none: on all).
    pub fn require_each(&self, needed: Role, environments: &[String], what: &str) -> Result<(), ApiError> {
        Ok(self.identity.check_each(needed, environments, what)?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(parts: &Request) -> Option<&str> {
    let value = parts.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware on every `/api/v1` route: a valid (unrevoked, unexpired) API
/// token, or — when workload identity is configured — a JWT access token from
/// its issuer (`auth::workload`), or 401 naming what failed. Every valid
/// token may read (viewer); handlers ask for more.
pub async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(token) = bearer(&req) else {
        return ApiError::unauthenticated().into_response();
    };
    if let Some(verifier) = app
        .sso
        .jwt
        .as_ref()
        .filter(|_| workload::looks_like_jwt(token))
    {
        let identity = match verifier.verify(token).await {
            Ok(w) => match workload::identity(&w, &app.sso.settings.role_map, app.store.as_ref()).await {
                Ok(Some(identity)) => identity,
                Ok(None) => return ApiError::forbidden(workload::no_role(&w)).into_response(),
                Err(e) => return ApiError::from(e).into_response(),
            },
            Err(refusal) => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    refusal.to_string(),
                )
                .into_response()
            }
        };
        let actor = Actor {
            name: identity.actor(),
            role: identity.role,
            identity,
        };
        req.extensions_mut().insert(actor);
        return next.run(req).await;
    }
    if app.sso.jwt.is_none() && workload::looks_like_jwt(token) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "this server accepts no JWTs: workload identity is not configured (SWITCHYARD_JWT_ISSUER); send an API token",
        )
        .into_response();
    }
    let identity = match app
        .store
        .token_identity(&secret::hash(token), Timestamp::now())
        .await
    {
        Ok(Some(identity)) => identity,
        Ok(None) => return ApiError::unauthenticated().into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let token = identity.token.clone();
    let actor = Actor {
        name: identity.actor(),
        role: identity.role,
        identity,
    };
    req.extensions_mut().insert(actor);
    crate::store::acting_with_token(token, next.run(req)).await
}
