//! Who is asking, and whether they may: passwords (argon2), API tokens and
//! browser sessions (random secrets stored only as SHA-256 hashes), CSRF
//! checks for the console's state-changing requests, and sign-in rate limits.
//!
//! Roles come from role bindings (`switchyard_domain::access`): which role each
//! REST route needs, and where, is decided in its handler (`Actor::require`,
//! `Actor::require_in`), and the access
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

/// 403 naming the missing binding, for `what`, tied to no environment: it
/// needs `needed` on all (reading: any binding).
pub fn require(identity: &Identity, needed: Role, what: &str) -> Result<(), ApiError> {
    Ok(identity.check(needed, None, what)?)
}

/// 403 naming the missing binding, for `what` in `environment`.
pub fn require_in(
    identity: &Identity,
    needed: Role,
    environment: &str,
    what: &str,
) -> Result<(), ApiError> {
    Ok(identity.check(needed, Some(environment), what)?)
}
