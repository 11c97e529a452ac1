//! The signed-in user as the console sees them.

use serde::{Deserialize, Serialize};
use switchyard_domain::access::Role;

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub username: String,
    pub role: Role,
    /// Sent back with every state-changing request (see `api::client`).
    pub csrf_token: String,
}

impl SignedInUser {
    /// Refuses `what` unless the user's role includes `needed`.
    pub fn require(&self, needed: Role, what: &str) -> Result<(), AppError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(AppError::forbidden(what, needed, self))
        }
    }
}

/// The session's CSRF token while rendering on the server, for forms posted
/// without JavaScript; in the browser the server-function client sends it
/// as a header instead.
pub fn csrf_token() -> String {
    leptos::prelude::use_context::<SignedInUser>()
        .map(|u| u.csrf_token)
        .unwrap_or_default()
}
