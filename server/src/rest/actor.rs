//! Who is making a request, as every state-changing handler passes it to the store.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;

/// The authenticated caller. Handlers take it as an extractor and hand
/// `name` to the store as the ledger actor, so no handler invents one.
///
/// Identity (sign-in, API tokens, roles) is a later issue, which replaces
/// the body of `from_request_parts`: until then every caller is
/// `anonymous` without admin rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub is_admin: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Actor { name: "anonymous".to_owned(), is_admin: false })
    }
}
