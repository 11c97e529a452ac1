//! Storage for identity (users, API tokens, browser sessions, failed
//! sign-ins) and promotions: a supertrait of `Store`, implemented for both
//! backends by `identity_sql.rs` on the same `Writer` as the rest, so every
//! change writes its ledger event in its own transaction.
//!
//! Secrets never reach this layer: it stores and compares hashes (argon2 PHC
//! strings for passwords, SHA-256 for tokens and session ids).

use async_trait::async_trait;
use switchyard_domain::access::{self, Binding, Role};
use switchyard_domain::promotion::{Promotion, PromotionStatus};
use switchyard_domain::{FullId, Timestamp};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct User {
    pub username: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiToken {
    pub name: String,
    pub username: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A stored role binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBinding {
    pub id: i64,
    pub binding: Binding,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// Whom a valid credential speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    /// The role the user's bindings give on all (viewer when they have only
    /// environment bindings): for showing and for callers that predate
    /// bindings. Decisions go through `Identity::check`.
    pub role: Role,
    /// The groups the user belongs to (`user_groups`; from the identity
    /// provider's group claim for users who sign in through it), sorted.
    pub groups: Vec<String>,
    /// The API token's name, when the request came with a token.
    pub token: Option<String>,
    /// The role bindings that apply to the user: their own and their groups'.
    pub bindings: Vec<Binding>,
}

impl Identity {
    /// The ledger actor: always the person. The token a request came with
    /// is recorded separately, as `details.via_token` of each event
    /// (`store::acting_with_token`), so filtering the audit by a person
    /// finds what they did at the console and with their tokens alike.
    /// A person with `role` bound on all environments and no groups: the
    /// identity of a user made with `user create --role` (tests, tools).
    pub fn with_role_on_all(username: &str, role: Role) -> Identity {
        Identity {
            username: username.to_owned(),
            role,
            groups: Vec::new(),
            token: None,
            bindings: vec![Binding::new(
                access::Subject::User(username.to_owned()),
                role,
                access::Scope::All,
            )],
        }
    }

    pub fn actor(&self) -> String {
        self.username.clone()
    }

    /// Whether the user's bindings allow `what`, which needs `needed` in
    /// `environment` (`None`: tied to no environment, so on all).
    pub fn check(
        &self,
        needed: Role,
        environment: Option<&str>,
        what: &str,
    ) -> Result<(), access::Missing> {
        access::check(&self.bindings, &self.username, &self.groups, needed, environment, what)
    }

    /// The user and their bindings, as the console carries them.
    pub fn grants(&self) -> access::Grants {
        access::Grants {
            username: self.username.clone(),
            groups: self.groups.clone(),
            bindings: self.bindings.clone(),
        }
    }

    /// The lower bar before the environment is known: `needed` somewhere.
    pub fn check_somewhere(&self, needed: Role, what: &str) -> Result<(), access::Missing> {
        access::check_somewhere(&self.bindings, &self.username, &self.groups, needed, what)
    }

    /// `needed` in each of `environments` (none: on all).
    pub fn check_each(
        &self,
        needed: Role,
        environments: &[String],
        what: &str,
    ) -> Result<(), access::Missing> {
        access::check_each(&self.bindings, &self.username, &self.groups, needed, environments, what)
    }

    /// The role shown for a user with these bindings: theirs on all, else viewer.
    pub fn summary_role(username: &str, groups: &[String], bindings: &[Binding]) -> Role {
        access::role_in(bindings, username, groups, None).unwrap_or(Role::Viewer)
    }
}

/// A browser session, found by the hash of its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub identity: Identity,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

/// A new browser session: the hash of its cookie and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub address: &'a str,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Creates a user with a binding of `role` on all (ledger: `user.created`,
    /// `binding.created`); an existing username is a `Conflict`.
    async fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<User>;

    /// Every role binding, oldest first.
    async fn list_bindings(&self) -> StoreResult<Vec<StoredBinding>>;

    /// Adds a binding (ledger: `binding.created`). A user subject must
    /// exist, an environment scope must exist (`NotFound`); the same binding
    /// twice is a `Conflict`.
    async fn create_binding(
        &self,
        binding: &Binding,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<StoredBinding>;

    /// Removes binding `id` (ledger: `binding.removed`). Unknown: `NotFound`;
    /// the last admin binding on all of an enabled user is kept (`Conflict`),
    /// so that someone can still administer.
    async fn remove_binding(&self, id: i64, actor: &str, at: Timestamp)
        -> StoreResult<StoredBinding>;

    /// The bindings that apply to `username` (theirs and their groups').
    async fn bindings_of(&self, username: &str) -> StoreResult<Vec<Binding>>;

    /// The bindings on any of `groups` (not on users), oldest first.
    async fn group_bindings(&self, groups: &[String]) -> StoreResult<Vec<Binding>>;

    /// The identity of a caller who is not a stored user but whose groups
    /// are known from a verified credential (a workload's JWT): the bindings
    /// on its name and on those groups, read by the same query that gives
    /// sessions and API tokens theirs (with the user's stored groups).
    async fn caller_identity(&self, name: &str, groups: &[String]) -> StoreResult<Identity>;

    /// Replaces the user's groups (ledger: `user.groups_changed`, only when
    /// they differ). Unknown user: `NotFound`.
    async fn set_user_groups(
        &self,
        username: &str,
        groups: &[String],
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<String>>;

    /// The user's groups, sorted.
    async fn user_groups(&self, username: &str) -> StoreResult<Vec<String>>;

    /// Disables a user: their sessions end and their tokens stop working.
    async fn disable_user(&self, username: &str, actor: &str, at: Timestamp) -> StoreResult<User>;

    async fn list_users(&self) -> StoreResult<Vec<User>>;

    /// The user and their password hash, for signing in.
    async fn user_credentials(&self, username: &str) -> StoreResult<Option<(User, String)>>;

    /// Stores a token's hash for an enabled user; the name is unique.
    async fn create_token(
        &self,
        name: &str,
        username: &str,
        token_hash: &str,
        expires_at: Option<Timestamp>,
        actor: &str,
        at: Timestamp,
    ) -> StoreResult<ApiToken>;

    async fn revoke_token(&self, name: &str, actor: &str, at: Timestamp) -> StoreResult<ApiToken>;

    /// Whom the token with this hash speaks for, if it is neither revoked nor
    /// expired and its user is enabled.
    async fn token_identity(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Identity>>;

    /// Opens a session after a successful sign-in (ledger: `user.signed_in`).
    async fn create_session(&self, new: NewSession<'_>, at: Timestamp) -> StoreResult<()>;

    /// The unexpired session of an enabled user with this cookie hash.
    async fn session(&self, id_hash: &str, now: Timestamp) -> StoreResult<Option<Session>>;

    /// Ends a session (ledger: `user.signed_out`); an unknown one is a no-op.
    async fn end_session(&self, id_hash: &str, at: Timestamp) -> StoreResult<()>;

    /// Records a failed sign-in (ledger: `user.sign_in_failed`, never the password).
    async fn record_failed_sign_in(
        &self,
        username: &str,
        address: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Failed sign-ins since `since`: (for this username, from this address).
    async fn failed_sign_ins_since(
        &self,
        username: &str,
        address: &str,
        since: Timestamp,
    ) -> StoreResult<(u64, u64)>;

    /// Requests a promotion of `full_id` into `environment`, judged later by
    /// the environment's approval policy as it is now (kept with the request,
    /// with the requester's groups); it expires after the policy's
    /// `expiry_hours`. Refused for retired versions, moves the lifecycle does
    /// not allow, a requester the policy could never let through, and inside
    /// a change freeze without an approved override (`DomainError::Frozen`).
    async fn request_promotion(
        &self,
        full_id: &FullId,
        environment: &str,
        reason: &str,
        by: &Identity,
        at: Timestamp,
    ) -> StoreResult<Promotion>;

    /// Approves (with the approver's groups as they are now); the approval
    /// that meets every requirement of the policy applies the promotion in
    /// the same transaction (stage, previous production version deprecated,
    /// pin, the requirements as met, ledger events) — unless a change freeze
    /// is in force without an approved override: then that approval is
    /// refused (`Frozen`) and nothing is stored.
    async fn approve_promotion(
        &self,
        id: i64,
        reason: Option<&str>,
        by: &Identity,
        at: Timestamp,
    ) -> StoreResult<Promotion>;

    async fn reject_promotion(
        &self,
        id: i64,
        reason: &str,
        by: &Identity,
        at: Timestamp,
    ) -> StoreResult<Promotion>;

    /// The requester takes a pending promotion back, with a reason
    /// (`promotion::check_withdrawal`); a `promotion.withdrawn` event.
    async fn withdraw_promotion(
        &self,
        id: i64,
        reason: &str,
        by: &Identity,
        at: Timestamp,
    ) -> StoreResult<Promotion>;

    async fn get_promotion(&self, id: i64) -> StoreResult<Option<Promotion>>;

    /// Newest first, optionally only those with `status`.
    async fn list_promotions(&self, status: Option<PromotionStatus>)
        -> StoreResult<Vec<Promotion>>;

    /// Marks pending promotions past their expiry as expired (actor
    /// `system`), each in its own transaction so that every server may run
    /// this and each is expired exactly once. Returns the ids it expired.
    async fn expire_promotions(&self, now: Timestamp) -> StoreResult<Vec<i64>>;
}
