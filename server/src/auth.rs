//! Who is asking, and whether they may: passwords (argon2), API tokens and
//! browser sessions (random secrets stored only as SHA-256 hashes), CSRF
//! checks for the console's state-changing requests, and sign-in rate limits.
//!
//! Roles come from `switchyard_domain::access::Role`; which role each REST
//! route needs is decided in its handler (`Actor::require`), and the access
//! test (`tests/api/access.rs`) holds the one table of all of them.

pub mod csrf;
pub mod oidc;
pub mod password;
pub mod secret;
pub mod session;
pub mod signin;
pub mod workload;

use switchyard_domain::access::Role;

use crate::error::ApiError;
pub use crate::store::identity::Identity;

/// 403 naming the role needed, for a caller whose role is too low.
pub fn require(identity: &Identity, needed: Role, what: &str) -> Result<(), ApiError> {
    if identity.role.allows(needed) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{what} needs the {needed} role; {} has the {} role",
        identity.actor(),
        identity.role
    )))
}
