//! Storage for single sign-on: the people who sign in through the identity
//! provider (issuer + subject → a Switchyard user) and the sign-ins started
//! and not yet finished. A supertrait of `Store`, implemented for both
//! backends by `sso_sql.rs`; the contract suite (`contract.rs`) runs it on both.

use async_trait::async_trait;
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

use super::identity::User;
use super::StoreResult;

/// A sign-in sent to the provider and not yet back: found by the hash of
/// its `state`; the nonce and PKCE verifier stay on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub state_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A person as the provider's verified ID token names them, with the role
/// their groups give.
#[derive(Debug, Clone)]
pub struct SsoPerson<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub preferred_username: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub groups: &'a [String],
    pub role: Role,
    /// Whether `role` comes from `SWITCHYARD_OIDC_ROLE_MAP`: then the user
    /// holds it as a binding on all (created by `sso:role-map`, kept in step
    /// at each sign-in). Otherwise their groups' bindings alone grant roles.
    pub role_from_map: bool,
}

/// What a single sign-on did to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoSignIn {
    pub user: User,
    /// First sign-in: the user was created.
    pub created: bool,
    pub groups: Vec<String>,
}

/// The provider's identity of a user who signs in through it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SsoAccount {
    pub issuer: String,
    pub subject: String,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub created_at: Timestamp,
    pub last_sign_in_at: Timestamp,
}

#[async_trait]
pub trait SsoStore: Send + Sync + 'static {
    /// Stores a started sign-in (and prunes expired ones).
    async fn start_sso_sign_in(&self, pending: &PendingSignIn) -> StoreResult<()>;

    /// Takes (deletes) the started sign-in with this state hash: a second
    /// take of the same state finds nothing, on any server. An expired one
    /// is deleted and not answered.
    async fn take_sso_sign_in(
        &self,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<PendingSignIn>>;

    /// Signs a verified person in: the first time creates their user
    /// (ledger `user.created`, source `sso`) under a username derived from
    /// their claims that never takes over an existing user; every time
    /// writes their role (`user.role_changed` when it differs), groups
    /// (`user.groups_changed` when they differ), name and e-mail. A disabled
    /// user is answered as it is, with nothing changed.
    async fn sso_sign_in(&self, person: &SsoPerson<'_>, at: Timestamp) -> StoreResult<SsoSignIn>;

    /// Keeps the ID token a session began with (and prunes expired ones).
    async fn remember_id_token(
        &self,
        session_hash: &str,
        id_token: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Takes (deletes) the ID token of a session, if it had one.
    async fn take_id_token(&self, session_hash: &str) -> StoreResult<Option<String>>;

    /// The provider's identity of `username`, if they sign in through one.
    async fn sso_account(&self, username: &str) -> StoreResult<Option<SsoAccount>>;
}
