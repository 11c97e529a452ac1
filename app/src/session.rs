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
