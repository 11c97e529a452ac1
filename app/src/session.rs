//! The signed-in user as the console sees them.

use serde::{Deserialize, Serialize};
use switchyard_domain::access::{Grants, Role};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub username: String,
    /// The role on all (viewer with only environment bindings), for the header.
    pub role: Role,
    /// The user's bindings (their own and their groups'), which decide the
    /// buttons they may press in each environment.
    pub grants: Grants,
    /// Sent back with every state-changing request (see `api::client`).
    pub csrf_token: String,
}

impl SignedInUser {
    /// Refuses `what` (tied to no environment) unless the user is bound to
    /// `needed` on all (reading: bound anywhere), naming the missing binding.
    pub fn require(&self, needed: Role, what: &str) -> Result<(), AppError> {
        self.grants
            .check(needed, None, what)
            .map_err(|m| AppError::new("forbidden", m.to_string()))
    }

    /// Refuses `what` in `environment` unless the user is bound to `needed` there or on all.
    pub fn require_in(&self, needed: Role, environment: &str, what: &str) -> Result<(), AppError> {
        self.grants
            .check(needed, Some(environment), what)
            .map_err(|m| AppError::new("forbidden", m.to_string()))
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

/// How people may sign in here: through the identity provider (the
/// button's name) and/or with a local username and password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOptions {
    /// `SWITCHYARD_OIDC_NAME` when single sign-on is configured.
    pub sso_name: Option<String>,
    /// False when `SWITCHYARD_LOCAL_SIGNIN=off`.
    pub local: bool,
}

impl Default for SignInOptions {
    fn default() -> Self {
        SignInOptions {
            sso_name: None,
            local: true,
        }
    }
}
