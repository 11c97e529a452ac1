//! The SQL of `IdentityStore`, shared by both backends, and the macro that
//! implements it for one of them on the `Writer` of `sql_store.rs`.

use std::str::FromStr;

use switchyard_domain::access::Role;
use switchyard_domain::policy::{ApprovalPolicy, EnvPolicy, Requirement};
use switchyard_domain::promotion::{Approval, Promotion, PromotionStatus};
use switchyard_domain::{Stage, Timestamp};

use switchyard_domain::access::{Binding, Scope, Subject};

use super::identity::{ApiToken, Identity, StoredBinding, User};
use super::sql::stored_full_id;
use super::{StoreError, StoreResult};

/// Failed sign-ins older than this are pruned; rate limits look back less far.
pub(crate) const FAILURES_KEPT_HOURS: i64 = 24;

pub(crate) const INSERT_USER: &str =
    "INSERT INTO users (username, role, password_hash, created_at) VALUES ($1, $2, $3, $4)";
pub(crate) const SELECT_USER: &str =
    "SELECT username, role, created_at, disabled_at, password_hash FROM users WHERE username = $1";
pub(crate) const SELECT_USERS: &str =
    "SELECT username, role, created_at, disabled_at, password_hash FROM users ORDER BY username";
/// The join of enabled users to the bindings that apply to them (their own
/// and their groups').
macro_rules! users_with_bindings {
    () => {
        "FROM users u JOIN role_bindings b ON \
         (b.subject_kind = 'user' AND b.subject = u.username) \
         OR (b.subject_kind = 'group' AND b.subject IN \
             (SELECT g.group_name FROM user_groups g WHERE g.username = u.username)) \
         WHERE u.disabled_at IS NULL "
    };
}
/// Enabled users with an admin binding on all, other than through binding $1.
pub(crate) const COUNT_OTHER_ADMINS: &str = concat!(
    "SELECT COUNT(DISTINCT u.username) ",
    users_with_bindings!(),
    "AND b.role = 'admin' AND b.scope = '*' AND b.id <> $1"
);
/// The bindings on user `$1` (when `with_user`) or on any of `groups`
/// groups (the following placeholders): the one query behind every identity
/// — sessions and API tokens (with the user's stored groups), workload JWTs
/// (with the token's groups) — and behind single sign-on's check for
/// bindings on a person's groups (no user).
pub(crate) fn select_bindings_for(with_user: bool, groups: usize) -> String {
    let mut clauses = Vec::new();
    if with_user {
        clauses.push("(subject_kind = 'user' AND subject = $1)".to_owned());
    }
    if groups > 0 {
        let first = usize::from(with_user) + 1;
        let list: Vec<String> = (first..first + groups).map(|i| format!("${i}")).collect();
        clauses.push(format!("(subject_kind = 'group' AND subject IN ({}))", list.join(", ")));
    }
    if clauses.is_empty() {
        clauses.push("1 = 0".to_owned());
    }
    format!(
        "SELECT subject_kind, subject, role, scope FROM role_bindings WHERE {} ORDER BY id",
        clauses.join(" OR ")
    )
}
macro_rules! binding_columns {
    () => {
        "id, subject_kind, subject, role, scope, created_at, created_by"
    };
}
pub(crate) const SELECT_BINDINGS: &str =
    concat!("SELECT ", binding_columns!(), " FROM role_bindings ORDER BY id");
pub(crate) const SELECT_BINDING: &str =
    concat!("SELECT ", binding_columns!(), " FROM role_bindings WHERE id = $1");
pub(crate) const SELECT_SAME_BINDING: &str = "SELECT id FROM role_bindings \
     WHERE subject_kind = $1 AND subject = $2 AND role = $3 AND scope = $4";
pub(crate) const NEXT_BINDING_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM role_bindings";
pub(crate) const INSERT_BINDING: &str = concat!(
    "INSERT INTO role_bindings (",
    binding_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
pub(crate) const DELETE_BINDING: &str = "DELETE FROM role_bindings WHERE id = $1";
pub(crate) const SELECT_USER_GROUPS: &str =
    "SELECT group_name FROM user_groups WHERE username = $1 ORDER BY group_name";
pub(crate) const DELETE_USER_GROUPS: &str = "DELETE FROM user_groups WHERE username = $1";
pub(crate) const INSERT_USER_GROUP: &str =
    "INSERT INTO user_groups (username, group_name) VALUES ($1, $2)";
pub(crate) const DISABLE_USER: &str =
    "UPDATE users SET disabled_at = $2 WHERE username = $1 AND disabled_at IS NULL";
pub(crate) const DELETE_SESSIONS_OF_USER: &str = "DELETE FROM sessions WHERE username = $1";

pub(crate) const INSERT_TOKEN: &str = "INSERT INTO api_tokens \
     (name, username, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SELECT_TOKEN: &str =
    "SELECT name, username, created_at, expires_at, revoked_at FROM api_tokens WHERE name = $1";
pub(crate) const REVOKE_TOKEN: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL";
pub(crate) const SELECT_TOKEN_IDENTITY: &str = "SELECT u.username, u.role, t.name, t.expires_at FROM api_tokens t \
     JOIN users u ON u.username = t.username \
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
     AND u.disabled_at IS NULL";

pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions \
     (id_hash, username, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SELECT_SESSION: &str = "SELECT u.username, u.role, s.csrf_token, s.expires_at \
     FROM sessions s JOIN users u ON u.username = s.username \
     WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL";
pub(crate) const DELETE_SESSION: &str =
    "DELETE FROM sessions WHERE id_hash = $1 RETURNING username";
pub(crate) const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";

pub(crate) const INSERT_FAILURE: &str =
    "INSERT INTO sign_in_failures (username, address, at) VALUES ($1, $2, $3)";
pub(crate) const PRUNE_FAILURES: &str = "DELETE FROM sign_in_failures WHERE at < $1";
pub(crate) const COUNT_FAILURES: &str = "SELECT \
     (SELECT COUNT(*) FROM sign_in_failures WHERE username = $1 AND at >= $3), \
     (SELECT COUNT(*) FROM sign_in_failures WHERE address = $2 AND at >= $3)";

macro_rules! promotion_columns {
    () => {
        "id, model_id, version, environment, to_stage, config_hash, reason, requested_by, \
         requested_at, expires_at, required_approvals, status, decided_at, decided_by, decision_reason, \
         policy, requester_groups, applied_requirements"
    };
}
pub(crate) const NEXT_PROMOTION_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM promotions";
pub(crate) const INSERT_PROMOTION: &str = concat!(
    "INSERT INTO promotions (",
    promotion_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
);
pub(crate) const SELECT_PROMOTION: &str = concat!(
    "SELECT ",
    promotion_columns!(),
    " FROM promotions WHERE id = $1"
);
pub(crate) const SELECT_PROMOTIONS: &str = concat!(
    "SELECT ",
    promotion_columns!(),
    " FROM promotions WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC"
);
pub(crate) const SELECT_PENDING_FOR: &str = "SELECT id FROM promotions \
     WHERE model_id = $1 AND version = $2 AND environment = $3 AND status = 'pending' AND expires_at > $4";
pub(crate) const SELECT_DUE_PROMOTIONS: &str =
    "SELECT id FROM promotions WHERE status = 'pending' AND expires_at <= $1 ORDER BY id";
pub(crate) const DECIDE_PROMOTION: &str = "UPDATE promotions \
     SET status = $2, decided_at = $3, decided_by = $4, decision_reason = $5 WHERE id = $1";
pub(crate) const INSERT_APPROVAL: &str = "INSERT INTO promotion_approvals \
     (promotion_id, approver, actor, config_hash, reason, at, approver_groups) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const SELECT_APPROVALS: &str = "SELECT approver, actor, config_hash, reason, at, approver_groups \
     FROM promotion_approvals WHERE promotion_id = $1 ORDER BY at, approver";
pub(crate) const SET_APPLIED_REQUIREMENTS: &str =
    "UPDATE promotions SET applied_requirements = $2 WHERE id = $1";
/// The enabled users bound to approve in environment $1 (as approver or
/// admin, there or on all), with their groups (one row per group; a user
/// without groups has a NULL group): who could satisfy its policy.
pub(crate) const SELECT_APPROVERS_WITH_GROUPS: &str = concat!(
    "SELECT u.username, g.group_name FROM users u \
     LEFT JOIN user_groups g ON g.username = u.username \
     WHERE u.username IN (SELECT u.username ",
    users_with_bindings!(),
    "AND b.role IN ('approver', 'admin') AND (b.scope = '*' OR b.scope = $1)) \
     ORDER BY u.username, g.group_name"
);

/// (username, groups) from the rows of `SELECT_APPROVERS_WITH_GROUPS`.
pub(crate) fn approvers_with_groups(rows: Vec<(String, Option<String>)>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (user, group) in rows {
        match out.last_mut() {
            Some((last, groups)) if *last == user => groups.extend(group),
            _ => out.push((user, group.into_iter().collect())),
        }
    }
    out
}

/// A JSON list of strings as stored (`'[]'` by default).
pub(crate) fn stored_list(text: &str, what: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| corrupt(format_args!("stored {what} is unreadable: {e}")))
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn stored_role(s: &str) -> StoreResult<Role> {
    Role::from_str(s).map_err(|_| corrupt(format_args!("stored role {s:?} is unknown")))
}

pub(crate) fn user_not_found(username: &str) -> StoreError {
    switchyard_domain::DomainError::NotFound(format!("no user named {username}")).into()
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    username: String,
    role: String,
    created_at: i64,
    disabled_at: Option<i64>,
    password_hash: String,
}

impl UserRow {
    pub(crate) fn into_user(self) -> StoreResult<(User, String)> {
        Ok((
            User {
                role: stored_role(&self.role)?,
                username: self.username,
                created_at: Timestamp::from_micros(self.created_at),
                disabled: self.disabled_at.is_some(),
            },
            self.password_hash,
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    name: String,
    username: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TokenRow {
    pub(crate) fn into_token(self) -> ApiToken {
        ApiToken {
            name: self.name,
            username: self.username,
            created_at: Timestamp::from_micros(self.created_at),
            expires_at: self.expires_at.map(Timestamp::from_micros),
            revoked_at: self.revoked_at.map(Timestamp::from_micros),
        }
    }
}

/// A row of `select_bindings_for`: (subject_kind, subject, role, scope).
pub(crate) type BindingOfRow = (String, String, String, String);

pub(crate) fn stored_binding_of(row: BindingOfRow) -> StoreResult<Binding> {
    let (kind, subject, role, scope) = row;
    Ok(Binding {
        subject: Subject::parse(&kind, &subject)
            .map_err(|_| corrupt(format_args!("stored binding subject {kind:?} {subject:?} is bad")))?,
        role: stored_role(&role)?,
        scope: Scope::from_stored(&scope),
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct BindingRow {
    id: i64,
    subject_kind: String,
    subject: String,
    role: String,
    scope: String,
    created_at: i64,
    created_by: String,
}

impl BindingRow {
    pub(crate) fn into_binding(self) -> StoreResult<StoredBinding> {
        Ok(StoredBinding {
            id: self.id,
            binding: stored_binding_of((self.subject_kind, self.subject, self.role, self.scope))?,
            created_at: Timestamp::from_micros(self.created_at),
            created_by: self.created_by,
        })
    }
}

/// The identity of `username` with their groups and the bindings that apply
/// to them (`role`: theirs on all, for showing).
pub(crate) fn identity(
    username: String,
    groups: Vec<String>,
    bindings: Vec<Binding>,
    token: Option<String>,
) -> Identity {
    Identity {
        role: Identity::summary_role(&username, &groups, &bindings),
        username,
        groups,
        token,
        bindings,
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PromotionRow {
    id: i64,
    model_id: String,
    version: String,
    environment: String,
    to_stage: String,
    config_hash: String,
    reason: String,
    requested_by: String,
    requested_at: i64,
    expires_at: i64,
    required_approvals: i64,
    status: String,
    decided_at: Option<i64>,
    decided_by: Option<String>,
    decision_reason: Option<String>,
    policy: Option<String>,
    requester_groups: String,
    applied_requirements: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApprovalRow {
    approver: String,
    actor: String,
    config_hash: String,
    reason: Option<String>,
    at: i64,
    approver_groups: String,
}

impl PromotionRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn into_promotion(self, approvals: Vec<ApprovalRow>) -> StoreResult<Promotion> {
        let id = self.id;
        let required_approvals = u32::try_from(self.required_approvals)
            .map_err(|_| corrupt(format_args!("promotion {id} has a bad approval count")))?;
        // Rows from before approval policies: the count alone, default expiry.
        let policy = match &self.policy {
            Some(text) => serde_json::from_str::<ApprovalPolicy>(text)
                .map_err(|e| corrupt(format_args!("promotion {id} has an unreadable policy: {e}")))?,
            None => ApprovalPolicy {
                required_groups: Vec::new(),
                ..EnvPolicy::approvals(required_approvals).approval_policy()
            },
        };
        let applied: Option<Vec<Requirement>> = self
            .applied_requirements
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format_args!("promotion {id} has unreadable requirements: {e}")))?;
        let approvals = approvals
            .into_iter()
            .map(|a| {
                Ok(Approval {
                    groups: stored_list(&a.approver_groups, "approver groups")?,
                    approver: a.approver,
                    actor: a.actor,
                    config_hash: a.config_hash,
                    reason: a.reason,
                    at: Timestamp::from_micros(a.at),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut p = Promotion {
            id,
            full_id: stored_full_id(&self.model_id, &self.version)?,
            environment: self.environment,
            to_stage: Stage::from_str(&self.to_stage)
                .map_err(|_| corrupt(format_args!("promotion {id} has an unknown stage")))?,
            config_hash: self.config_hash,
            reason: self.reason,
            requested_by: self.requested_by,
            requested_at: Timestamp::from_micros(self.requested_at),
            expires_at: Timestamp::from_micros(self.expires_at),
            requester_groups: stored_list(&self.requester_groups, "requester groups")?,
            required_approvals,
            policy,
            requirements: Vec::new(),
            status: PromotionStatus::from_str(&self.status)
                .map_err(|_| corrupt(format_args!("promotion {id} has an unknown status")))?,
            approvals,
            decided_at: self.decided_at.map(Timestamp::from_micros),
            decided_by: self.decided_by,
            decision_reason: self.decision_reason,
        };
        // Applied: the requirements as they were met then; else as they stand.
        match applied {
            Some(reqs) => p.requirements = reqs,
            None => p.refresh_requirements(),
        }
        Ok(p)
    }
}

/// Implements `IdentityStore` for `$store` in a child module `identity` of
/// the backend's module, next to `shared` (from `sql_store!`), whose `Writer`
/// and fetch helpers it reuses.
macro_rules! identity_store {
    ($store:ident, $db:ty) => {
      mod identity {
        use super::shared::{fetch_policy, fetch_version, Writer};
        use super::$store;
        use $crate::store::identity::{ApiToken, Identity, IdentityStore, NewSession, Session, StoredBinding, User};
        use switchyard_domain::access::{Binding, Scope, Subject};
        use $crate::store::identity_sql::{self as iq, ApprovalRow, PromotionRow};
        use $crate::store::sql as q;
        use $crate::store::StoreResult;
        use serde_json::json;
        use switchyard_domain::access::Role;
        use switchyard_domain::ledger::{action, NewEvent};
        use switchyard_domain::promotion::{self, Promotion, PromotionStatus};
        use switchyard_domain::{DomainError, FullId, Timestamp};

        async fn fetch_promotion<'e, E>(db: E, id: i64) -> StoreResult<Option<PromotionRow>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            Ok(sqlx::query_as::<_, PromotionRow>(iq::SELECT_PROMOTION).bind(id).fetch_optional(db).await?)
        }

        async fn with_approvals<'e, E>(db: E, row: PromotionRow, id: i64) -> StoreResult<Promotion>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let approvals = sqlx::query_as::<_, ApprovalRow>(iq::SELECT_APPROVALS).bind(id).fetch_all(db).await?;
            row.into_promotion(approvals)
        }

        /// The users who can still usefully approve `p` (named in its ledger
        /// events, so that notifications reach them): bound as approver in its
        /// environment, and whose approval the policy would count towards what
        /// is still open (`promotion::remaining_approvers`).
        async fn remaining_approvers(w: &mut Writer, p: &Promotion) -> StoreResult<Vec<String>> {
            let rows = sqlx::query_as::<_, (String, Option<String>)>(iq::SELECT_APPROVERS_WITH_GROUPS)
                .bind(&p.environment)
                .fetch_all(&mut *w.tx)
                .await?;
            Ok(promotion::remaining_approvers(p, &iq::approvers_with_groups(rows)))
        }

        /// `username`'s identity: their groups and the bindings that apply to them.
        async fn load_identity<'e, E>(db: E, username: String, token: Option<String>) -> StoreResult<Identity>
        where
            E: sqlx::Executor<'e, Database = $db> + Copy,
        {
            let groups = sqlx::query_scalar::<_, String>(iq::SELECT_USER_GROUPS)
                .bind(&username)
                .fetch_all(db)
                .await?;
            let bindings = select_bindings(db, Some(username.as_str()), &groups).await?;
            Ok(iq::identity(username, groups, bindings, token))
        }

        /// The bindings on `username` (if any) and on `groups`
        /// (`iq::select_bindings_for`), oldest first.
        async fn select_bindings<'e, E>(db: E, username: Option<&str>, groups: &[String]) -> StoreResult<Vec<Binding>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let sql = iq::select_bindings_for(username.is_some(), groups.len());
            let mut query = sqlx::query_as::<_, iq::BindingOfRow>(&sql);
            if let Some(username) = username {
                query = query.bind(username);
            }
            for group in groups {
                query = query.bind(group);
            }
            query
                .fetch_all(db)
                .await?
                .into_iter()
                .map(iq::stored_binding_of)
                .collect()
        }

        /// Inserts `binding` with its ledger event inside `w`.
        async fn insert_binding(w: &mut Writer, binding: &Binding, actor: &str, at: Timestamp) -> StoreResult<StoredBinding> {
            if let Some(existing) = sqlx::query_scalar::<_, i64>(iq::SELECT_SAME_BINDING)
                .bind(binding.subject.kind())
                .bind(binding.subject.name())
                .bind(binding.role.as_str())
                .bind(binding.scope.stored())
                .fetch_optional(&mut *w.tx)
                .await?
            {
                return Err(DomainError::Conflict(format!(
                    "{} {} already has the binding {} on {} (binding {existing})",
                    binding.subject.kind(), binding.subject.name(), binding.role, binding.scope
                ))
                .into());
            }
            let id = sqlx::query_scalar::<_, i64>(iq::NEXT_BINDING_ID).fetch_one(&mut *w.tx).await?;
            sqlx::query(iq::INSERT_BINDING)
                .bind(id)
                .bind(binding.subject.kind())
                .bind(binding.subject.name())
                .bind(binding.role.as_str())
                .bind(binding.scope.stored())
                .bind(at.micros())
                .bind(actor)
                .execute(&mut *w.tx)
                .await?;
            w.append(binding_event(id, binding, actor, action::BINDING_CREATED, at)).await?;
            Ok(StoredBinding { id, binding: binding.clone(), created_at: at, created_by: actor.to_owned() })
        }

        fn binding_event(id: i64, binding: &Binding, actor: &str, what: &str, at: Timestamp) -> NewEvent {
            let event = NewEvent::new(at, actor, what).details(json!({
                "binding_id": id,
                "subject_kind": binding.subject.kind(),
                "subject": binding.subject.name(),
                "role": binding.role,
                "scope": binding.scope.to_string(),
            }));
            match binding.scope.environment() {
                Some(env) => event.environment(env),
                None => event,
            }
        }

        /// The promotion `id` as this transaction sees it.
        async fn locked_promotion(w: &mut Writer, id: i64) -> StoreResult<Promotion> {
            let row = fetch_promotion(&mut *w.tx, id)
                .await?
                .ok_or_else(|| DomainError::NotFound(format!("no promotion {id}")))?;
            with_approvals(&mut *w.tx, row, id).await
        }

        async fn decide(w: &mut Writer, p: &mut Promotion, status: PromotionStatus, by: &str, reason: Option<&str>, at: Timestamp) -> StoreResult<()> {
            sqlx::query(iq::DECIDE_PROMOTION)
                .bind(p.id)
                .bind(status.as_str())
                .bind(at.micros())
                .bind(by)
                .bind(reason)
                .execute(&mut *w.tx)
                .await?;
            p.status = status;
            p.decided_at = Some(at);
            p.decided_by = Some(by.to_owned());
            p.decision_reason = reason.map(str::to_owned);
            Ok(())
        }

        fn promotion_event(p: &Promotion, actor: &str, what: &str, at: Timestamp) -> NewEvent {
            NewEvent::new(at, actor, what).full_id(&p.full_id).environment(&p.environment)
        }

        /// What ends a pending promotion by a person's decision (a rejection, a
        /// withdrawal): an expired one is expired instead (and that kept, as
        /// `Closed::Expired`); else `check`, then the status and its event.
        async fn close(
            w: &mut Writer,
            id: i64,
            reason: &str,
            by: &Identity,
            at: Timestamp,
            (status, what): (PromotionStatus, &str),
            check: impl FnOnce(&Promotion) -> Result<(), DomainError>,
        ) -> StoreResult<Closed> {
            let mut p = locked_promotion(w, id).await?;
            if promotion::is_expired(&p, at) {
                expire(w, &mut p, at).await?;
                return Ok(Closed::Expired(p));
            }
            check(&p)?;
            decide(w, &mut p, status, &by.username, Some(reason.trim()), at).await?;
            w.append(
                promotion_event(&p, &by.actor(), what, at)
                    .reason(Some(reason.trim()))
                    .details(json!({ "promotion_id": p.id })),
            )
            .await?;
            Ok(Closed::Decided(p))
        }

        /// How `close` ended: decided, or found expired (which is kept too).
        enum Closed {
            Decided(Promotion),
            Expired(Promotion),
        }

        /// Commits what `close` wrote; an expiry found on the way is committed
        /// and then refused as expired.
        async fn finish_close(w: Writer, closed: StoreResult<Closed>) -> StoreResult<Promotion> {
            match closed? {
                Closed::Decided(p) => {
                    w.commit().await?;
                    Ok(p)
                }
                Closed::Expired(p) => {
                    w.commit().await?;
                    Err(promotion::expired_error(&p).into())
                }
            }
        }

        /// Marks `p` expired with its ledger event (actor `system`).
        async fn expire(w: &mut Writer, p: &mut Promotion, now: Timestamp) -> StoreResult<()> {
            decide(w, p, PromotionStatus::Expired, "system", None, now).await?;
            w.append(
                promotion_event(p, "system", action::PROMOTION_EXPIRED, now)
                    .details(json!({ "promotion_id": p.id, "expires_at": p.expires_at.to_rfc3339(), "approvals": p.approvals.len() })),
            )
            .await?;
            Ok(())
        }

        impl $store {
            /// Applies a fully approved promotion inside `w`: the stage move
            /// (deprecating the previous production version), the pin, and
            /// `promotion.applied`.
            async fn apply(&self, w: &mut Writer, p: &mut Promotion, actor: &str, at: Timestamp) -> StoreResult<()> {
                // A freeze refuses the approval that would apply it (nothing is
                // stored); an approved override lets it through, recorded below.
                let freeze_override = super::release::check_not_frozen(
                    &mut *w.tx,
                    &p.environment,
                    &format!("applying promotion {} of {}", p.id, p.full_id),
                    at,
                )
                .await?;
                let v = fetch_version(&mut *w.tx, &p.full_id).await?.ok_or_else(|| q::not_found_version(&p.full_id))?;
                let policy = fetch_policy(&mut *w.tx, &p.environment).await?;
                // Re-judged now: the version may have moved since the request.
                let to = promotion::target_stage(&v, &p.environment, &policy, at)?;
                let why = format!("promotion {} applied", p.id);
                let v = if to == v.stage {
                    v
                } else {
                    let days = self.settings.deprecation_days;
                    w.move_stage_superseding(&v, to, Some(&why), actor, at, json!({ "promotion_id": p.id }), days).await?
                };
                policy.check_pin(&p.environment, &v.full_id, v.stage)?;
                w.pin(&p.environment, &v, Some(&why), actor, at).await?;
                decide(w, p, PromotionStatus::Applied, actor, None, at).await?;
                // The policy in force and how it was met, kept with the promotion.
                p.refresh_requirements();
                let requirements = serde_json::to_string(&p.requirements)
                    .map_err(|e| $crate::store::StoreError::Corrupt(format!("requirements: {e}")))?;
                sqlx::query(iq::SET_APPLIED_REQUIREMENTS).bind(p.id).bind(requirements).execute(&mut *w.tx).await?;
                let approvers: Vec<&str> = p.approvals.iter().map(|a| a.approver.as_str()).collect();
                let approvals: Vec<_> = p
                    .approvals
                    .iter()
                    .map(|a| json!({ "approver": a.approver, "groups": a.groups, "at": a.at }))
                    .collect();
                let mut details = json!({
                    "promotion_id": p.id,
                    "requested_by": p.requested_by,
                    "approved_by": approvers,
                    "approvals": approvals,
                    "config_hash": p.config_hash,
                    "to_stage": to,
                    "policy": p.policy,
                    "requirements": p.requirements,
                });
                if let Some(o) = freeze_override {
                    details["freeze_override"] = json!(o);
                }
                w.append(
                    promotion_event(p, actor, action::PROMOTION_APPLIED, at)
                        .reason(Some(&p.reason))
                        .details(details),
                )
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl IdentityStore for $store {
            async fn create_user(&self, username: &str, role: Role, password_hash: &str, actor: &str, at: Timestamp) -> StoreResult<User> {
                let mut w = Writer::begin(self).await?;
                if sqlx::query(iq::SELECT_USER).bind(username).fetch_optional(&mut *w.tx).await?.is_some() {
                    return Err(DomainError::Conflict(format!("a user named {username} already exists")).into());
                }
                sqlx::query(iq::INSERT_USER)
                    .bind(username)
                    .bind(role.as_str())
                    .bind(password_hash)
                    .bind(at.micros())
                    .execute(&mut *w.tx)
                    .await?;
                w.append(NewEvent::new(at, actor, action::USER_CREATED).details(json!({ "username": username, "role": role })))
                    .await?;
                insert_binding(&mut w, &Binding::new(Subject::User(username.to_owned()), role, Scope::All), actor, at).await?;
                w.commit().await?;
                Ok(User { username: username.to_owned(), role, created_at: at, disabled: false })
            }

            async fn list_bindings(&self) -> StoreResult<Vec<StoredBinding>> {
                sqlx::query_as::<_, iq::BindingRow>(iq::SELECT_BINDINGS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(iq::BindingRow::into_binding)
                    .collect()
            }

            async fn create_binding(&self, binding: &Binding, actor: &str, at: Timestamp) -> StoreResult<StoredBinding> {
                let mut w = Writer::begin(self).await?;
                if let Subject::User(name) = &binding.subject {
                    sqlx::query_as::<_, iq::UserRow>(iq::SELECT_USER)
                        .bind(name)
                        .fetch_optional(&mut *w.tx)
                        .await?
                        .ok_or_else(|| iq::user_not_found(name))?;
                }
                if let Some(env) = binding.scope.environment() {
                    sqlx::query(q::ENVIRONMENT_EXISTS)
                        .bind(env)
                        .fetch_optional(&mut *w.tx)
                        .await?
                        .ok_or_else(|| q::not_found_environment(env))?;
                }
                let stored = insert_binding(&mut w, binding, actor, at).await?;
                w.commit().await?;
                Ok(stored)
            }

            async fn remove_binding(&self, id: i64, actor: &str, at: Timestamp) -> StoreResult<StoredBinding> {
                let mut w = Writer::begin(self).await?;
                let stored = sqlx::query_as::<_, iq::BindingRow>(iq::SELECT_BINDING)
                    .bind(id)
                    .fetch_optional(&mut *w.tx)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("no role binding {id}")))?
                    .into_binding()?;
                if stored.binding.role == Role::Admin && stored.binding.scope == Scope::All {
                    let others = sqlx::query_scalar::<_, i64>(iq::COUNT_OTHER_ADMINS).bind(id).fetch_one(&mut *w.tx).await?;
                    if others == 0 {
                        return Err(DomainError::Conflict(format!(
                            "binding {id} ({} {}: admin on all) is the last admin binding on all of an enabled user; \
                             add another before removing it",
                            stored.binding.subject.kind(), stored.binding.subject.name()
                        ))
                        .into());
                    }
                }
                sqlx::query(iq::DELETE_BINDING).bind(id).execute(&mut *w.tx).await?;
                w.append(binding_event(id, &stored.binding, actor, action::BINDING_REMOVED, at)).await?;
                w.commit().await?;
                Ok(stored)
            }

            async fn bindings_of(&self, username: &str) -> StoreResult<Vec<Binding>> {
                Ok(load_identity(&self.pool, username.to_owned(), None).await?.bindings)
            }

            async fn group_bindings(&self, groups: &[String]) -> StoreResult<Vec<Binding>> {
                select_bindings(&self.pool, None, groups).await
            }

            async fn caller_identity(&self, name: &str, groups: &[String]) -> StoreResult<Identity> {
                let mut groups = groups.to_vec();
                groups.sort();
                groups.dedup();
                let bindings = select_bindings(&self.pool, Some(name), &groups).await?;
                Ok(iq::identity(name.to_owned(), groups, bindings, None))
            }

            async fn set_user_groups(&self, username: &str, groups: &[String], actor: &str, at: Timestamp) -> StoreResult<Vec<String>> {
                let mut wanted: Vec<String> = groups.iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
                wanted.sort();
                wanted.dedup();
                let mut w = Writer::begin(self).await?;
                sqlx::query_as::<_, iq::UserRow>(iq::SELECT_USER)
                    .bind(username)
                    .fetch_optional(&mut *w.tx)
                    .await?
                    .ok_or_else(|| iq::user_not_found(username))?;
                let before = sqlx::query_scalar::<_, String>(iq::SELECT_USER_GROUPS)
                    .bind(username)
                    .fetch_all(&mut *w.tx)
                    .await?;
                if before == wanted {
                    return Ok(before);
                }
                sqlx::query(iq::DELETE_USER_GROUPS).bind(username).execute(&mut *w.tx).await?;
                for group in &wanted {
                    sqlx::query(iq::INSERT_USER_GROUP).bind(username).bind(group).execute(&mut *w.tx).await?;
                }
                w.append(NewEvent::new(at, actor, action::USER_GROUPS_CHANGED)
                    .details(json!({ "username": username, "groups": wanted, "before": before })))
                    .await?;
                w.commit().await?;
                Ok(wanted)
            }

            async fn user_groups(&self, username: &str) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar::<_, String>(iq::SELECT_USER_GROUPS)
                    .bind(username)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn disable_user(&self, username: &str, actor: &str, at: Timestamp) -> StoreResult<User> {
                let mut w = Writer::begin(self).await?;
                let (user, _) = sqlx::query_as::<_, iq::UserRow>(iq::SELECT_USER)
                    .bind(username)
                    .fetch_optional(&mut *w.tx)
                    .await?
                    .ok_or_else(|| iq::user_not_found(username))?
                    .into_user()?;
                if user.disabled {
                    return Ok(user);
                }
                sqlx::query(iq::DISABLE_USER).bind(username).bind(at.micros()).execute(&mut *w.tx).await?;
                sqlx::query(iq::DELETE_SESSIONS_OF_USER).bind(username).execute(&mut *w.tx).await?;
                w.append(NewEvent::new(at, actor, action::USER_DISABLED).details(json!({ "username": username })))
                    .await?;
                w.commit().await?;
                Ok(User { disabled: true, ..user })
            }

            async fn list_users(&self) -> StoreResult<Vec<User>> {
                sqlx::query_as::<_, iq::UserRow>(iq::SELECT_USERS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| r.into_user().map(|(u, _)| u))
                    .collect()
            }

            async fn user_credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
                sqlx::query_as::<_, iq::UserRow>(iq::SELECT_USER)
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(iq::UserRow::into_user)
                    .transpose()
            }

            async fn create_token(
                &self,
                name: &str,
                username: &str,
                token_hash: &str,
                expires_at: Option<Timestamp>,
                actor: &str,
                at: Timestamp,
            ) -> StoreResult<ApiToken> {
                let mut w = Writer::begin(self).await?;
                let (user, _) = sqlx::query_as::<_, iq::UserRow>(iq::SELECT_USER)
                    .bind(username)
                    .fetch_optional(&mut *w.tx)
                    .await?
                    .ok_or_else(|| iq::user_not_found(username))?
                    .into_user()?;
                if user.disabled {
                    return Err(DomainError::Conflict(format!("user {username} is disabled")).into());
                }
                if sqlx::query(iq::SELECT_TOKEN).bind(name).fetch_optional(&mut *w.tx).await?.is_some() {
                    return Err(DomainError::Conflict(format!("a token named {name} already exists")).into());
                }
                sqlx::query(iq::INSERT_TOKEN)
                    .bind(name)
                    .bind(username)
                    .bind(token_hash)
                    .bind(at.micros())
                    .bind(expires_at.map(Timestamp::micros))
                    .execute(&mut *w.tx)
                    .await?;
                w.append(NewEvent::new(at, actor, action::TOKEN_CREATED).details(json!({
                    "token": name,
                    "username": username,
                    "role": user.role,
                    "expires_at": expires_at.map(Timestamp::to_rfc3339),
                })))
                .await?;
                w.commit().await?;
                Ok(ApiToken { name: name.to_owned(), username: username.to_owned(), created_at: at, expires_at, revoked_at: None })
            }

            async fn revoke_token(&self, name: &str, actor: &str, at: Timestamp) -> StoreResult<ApiToken> {
                let mut w = Writer::begin(self).await?;
                let token = sqlx::query_as::<_, iq::TokenRow>(iq::SELECT_TOKEN)
                    .bind(name)
                    .fetch_optional(&mut *w.tx)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("no token named {name}")))?
                    .into_token();
                if token.revoked_at.is_some() {
                    return Ok(token);
                }
                sqlx::query(iq::REVOKE_TOKEN).bind(name).bind(at.micros()).execute(&mut *w.tx).await?;
                w.append(NewEvent::new(at, actor, action::TOKEN_REVOKED).details(json!({ "token": name, "username": token.username })))
                    .await?;
                w.commit().await?;
                Ok(ApiToken { revoked_at: Some(at), ..token })
            }

            async fn token_identity(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Identity>> {
                use $crate::store::cache::{CachedToken, Lookup};
                let epoch = match self.cache.token(token_hash, now) {
                    Lookup::Hit(identity) => return Ok(identity),
                    Lookup::Miss(epoch) => Some(epoch),
                    Lookup::Bypass => None,
                };
                let Some((username, _role, name, expires_at)) =
                    sqlx::query_as::<_, (String, String, String, Option<i64>)>(iq::SELECT_TOKEN_IDENTITY)
                        .bind(token_hash)
                        .bind(now.micros())
                        .fetch_optional(&self.pool)
                        .await?
                else {
                    // Unknown tokens are not cached: anyone can send any number of them.
                    return Ok(None);
                };
                let identity = load_identity(&self.pool, username, Some(name)).await?;
                if let Some(epoch) = epoch {
                    let expires_at = expires_at.map(Timestamp::from_micros);
                    self.cache.put_token(epoch, token_hash, CachedToken { identity: identity.clone(), expires_at });
                }
                Ok(Some(identity))
            }

            async fn create_session(&self, new: NewSession<'_>, at: Timestamp) -> StoreResult<()> {
                let mut w = Writer::begin(self).await?;
                // Expired sessions are swept here, where a writer already holds the lock.
                sqlx::query(iq::DELETE_EXPIRED_SESSIONS).bind(at.micros()).execute(&mut *w.tx).await?;
                sqlx::query(iq::INSERT_SESSION)
                    .bind(new.id_hash)
                    .bind(new.username)
                    .bind(new.csrf_token)
                    .bind(at.micros())
                    .bind(new.expires_at.micros())
                    .execute(&mut *w.tx)
                    .await?;
                w.append(NewEvent::new(at, new.username, action::SIGNED_IN).details(json!({ "address": new.address })))
                    .await?;
                w.commit().await
            }

            async fn session(&self, id_hash: &str, now: Timestamp) -> StoreResult<Option<Session>> {
                let Some((username, _role, csrf_token, expires_at)) = sqlx::query_as::<_, (String, String, String, i64)>(iq::SELECT_SESSION)
                    .bind(id_hash)
                    .bind(now.micros())
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                Ok(Some(Session {
                    identity: load_identity(&self.pool, username, None).await?,
                    csrf_token,
                    expires_at: Timestamp::from_micros(expires_at),
                }))
            }

            async fn end_session(&self, id_hash: &str, at: Timestamp) -> StoreResult<()> {
                let mut w = Writer::begin(self).await?;
                let Some(username) = sqlx::query_scalar::<_, String>(iq::DELETE_SESSION)
                    .bind(id_hash)
                    .fetch_optional(&mut *w.tx)
                    .await?
                else {
                    return Ok(());
                };
                w.append(NewEvent::new(at, &username, action::SIGNED_OUT)).await?;
                w.commit().await
            }

            async fn record_failed_sign_in(&self, username: &str, address: &str, at: Timestamp) -> StoreResult<()> {
                let mut w = Writer::begin(self).await?;
                sqlx::query(iq::PRUNE_FAILURES)
                    .bind(at.plus_hours(-iq::FAILURES_KEPT_HOURS).micros())
                    .execute(&mut *w.tx)
                    .await?;
                sqlx::query(iq::INSERT_FAILURE).bind(username).bind(address).bind(at.micros()).execute(&mut *w.tx).await?;
                w.append(
                    NewEvent::new(at, "anonymous", action::SIGN_IN_FAILED)
                        .details(json!({ "username": username, "address": address })),
                )
                .await?;
                w.commit().await
            }

            async fn failed_sign_ins_since(&self, username: &str, address: &str, since: Timestamp) -> StoreResult<(u64, u64)> {
                let (by_user, by_address) = sqlx::query_as::<_, (i64, i64)>(iq::COUNT_FAILURES)
                    .bind(username)
                    .bind(address)
                    .bind(since.micros())
                    .fetch_one(&self.pool)
                    .await?;
                Ok((by_user.unsigned_abs(), by_address.unsigned_abs()))
            }

            async fn request_promotion(
                &self,
                full_id: &FullId,
                environment: &str,
                reason: &str,
                by: &Identity,
                at: Timestamp,
            ) -> StoreResult<Promotion> {
                promotion::check_reason(reason)?;
                let mut w = Writer::begin(self).await?;
                let policy = fetch_policy(&mut *w.tx, environment).await?;
                let v = fetch_version(&mut *w.tx, full_id).await?.ok_or_else(|| q::not_found_version(full_id))?;
                let to_stage = promotion::target_stage(&v, environment, &policy, at)?;
                let approval_policy = policy.approval_policy();
                approval_policy.check_requester(&by.username, &by.groups)?;
                let freeze_override = super::release::check_not_frozen(
                    &mut *w.tx,
                    environment,
                    &format!("requesting a promotion of {full_id} to {environment}"),
                    at,
                )
                .await?;
                let expires_at = at.plus_hours(i64::from(policy.expiry_hours));
                if let Some(open) = sqlx::query_scalar::<_, i64>(iq::SELECT_PENDING_FOR)
                    .bind(full_id.model_id.as_str())
                    .bind(full_id.version.as_str())
                    .bind(environment)
                    .bind(at.micros())
                    .fetch_optional(&mut *w.tx)
                    .await?
                {
                    return Err(DomainError::Conflict(format!(
                        "promotion {open} of {full_id} to {environment} is already pending; approve or reject it"
                    ))
                    .into());
                }
                let id = sqlx::query_scalar::<_, i64>(iq::NEXT_PROMOTION_ID).fetch_one(&mut *w.tx).await?;
                let p = Promotion {
                    id,
                    full_id: full_id.clone(),
                    environment: environment.to_owned(),
                    to_stage,
                    config_hash: v.config_hash.clone(),
                    reason: reason.trim().to_owned(),
                    requested_by: by.username.clone(),
                    requester_groups: by.groups.clone(),
                    requested_at: at,
                    expires_at,
                    required_approvals: policy.required_approvals,
                    policy: approval_policy,
                    requirements: Vec::new(),
                    status: PromotionStatus::Pending,
                    approvals: vec![],
                    decided_at: None,
                    decided_by: None,
                    decision_reason: None,
                };
                sqlx::query(iq::INSERT_PROMOTION)
                    .bind(p.id)
                    .bind(full_id.model_id.as_str())
                    .bind(full_id.version.as_str())
                    .bind(environment)
                    .bind(to_stage.as_str())
                    .bind(&p.config_hash)
                    .bind(&p.reason)
                    .bind(&p.requested_by)
                    .bind(at.micros())
                    .bind(expires_at.micros())
                    .bind(i64::from(p.required_approvals))
                    .bind(p.status.as_str())
                    .bind(None::<i64>)
                    .bind(None::<String>)
                    .bind(None::<String>)
                    .bind(json!(p.policy).to_string())
                    .bind(json!(p.requester_groups).to_string())
                    .bind(None::<String>)
                    .execute(&mut *w.tx)
                    .await?;
                let mut p = p;
                p.refresh_requirements();
                let approvers = remaining_approvers(&mut w, &p).await?;
                w.append(
                    promotion_event(&p, &by.actor(), action::PROMOTION_REQUESTED, at)
                        .reason(Some(&p.reason))
                        .details(json!({
                            "promotion_id": p.id,
                            "config_hash": p.config_hash,
                            "to_stage": to_stage,
                            "required_approvals": p.required_approvals,
                            "expires_at": expires_at.to_rfc3339(),
                            "approvers": approvers,
                            "policy": p.policy,
                            "requester_groups": p.requester_groups,
                            "freeze_override": freeze_override,
                        })),
                )
                .await?;
                w.commit().await?;
                Ok(p)
            }

            async fn approve_promotion(&self, id: i64, reason: Option<&str>, by: &Identity, at: Timestamp) -> StoreResult<Promotion> {
                let mut w = Writer::begin(self).await?;
                let mut p = locked_promotion(&mut w, id).await?;
                if promotion::is_expired(&p, at) {
                    // Recorded now rather than at the job's next pass, then refused.
                    expire(&mut w, &mut p, at).await?;
                    w.commit().await?;
                    return Err(promotion::expired_error(&p).into());
                }
                let v = fetch_version(&mut *w.tx, &p.full_id).await?.ok_or_else(|| q::not_found_version(&p.full_id))?;
                promotion::check_approval(&p, &by.username, &by.groups, &v.config_hash, at)?;
                let actor = by.actor();
                sqlx::query(iq::INSERT_APPROVAL)
                    .bind(p.id)
                    .bind(&by.username)
                    .bind(&actor)
                    .bind(&v.config_hash)
                    .bind(reason)
                    .bind(at.micros())
                    .bind(json!(by.groups).to_string())
                    .execute(&mut *w.tx)
                    .await?;
                p.approvals.push(promotion::Approval {
                    approver: by.username.clone(),
                    actor: actor.clone(),
                    config_hash: v.config_hash.clone(),
                    reason: reason.map(str::to_owned),
                    at,
                    groups: by.groups.clone(),
                });
                p.refresh_requirements();
                let mut details = json!({
                    "promotion_id": p.id,
                    "config_hash": v.config_hash,
                    "approvals": p.approvals.len(),
                    "required_approvals": p.required_approvals,
                    "groups": by.groups,
                    "requirements": p.requirements,
                });
                if !p.is_fully_approved() {
                    // Still waiting: say for how many more, and who can give them.
                    let approvers = remaining_approvers(&mut w, &p).await?;
                    details["approvals_still_needed"] = json!(promotion::approvals_still_needed(&p));
                    details["approvers"] = json!(approvers);
                }
                w.append(
                    promotion_event(&p, &actor, action::PROMOTION_APPROVED, at)
                        .reason(reason)
                        .details(details),
                )
                .await?;
                if p.is_fully_approved() {
                    self.apply(&mut w, &mut p, &actor, at).await?;
                }
                w.commit().await?;
                Ok(p)
            }

            async fn reject_promotion(&self, id: i64, reason: &str, by: &Identity, at: Timestamp) -> StoreResult<Promotion> {
                let mut w = Writer::begin(self).await?;
                let checked = |p: &Promotion| promotion::check_rejection(p, reason, at);
                let p = close(&mut w, id, reason, by, at, (PromotionStatus::Rejected, action::PROMOTION_REJECTED), checked).await;
                finish_close(w, p).await
            }

            async fn withdraw_promotion(&self, id: i64, reason: &str, by: &Identity, at: Timestamp) -> StoreResult<Promotion> {
                let mut w = Writer::begin(self).await?;
                let checked = |p: &Promotion| promotion::check_withdrawal(p, &by.username, reason, at);
                let p = close(&mut w, id, reason, by, at, (PromotionStatus::Withdrawn, action::PROMOTION_WITHDRAWN), checked).await;
                finish_close(w, p).await
            }

            async fn get_promotion(&self, id: i64) -> StoreResult<Option<Promotion>> {
                let Some(row) = fetch_promotion(&self.pool, id).await? else {
                    return Ok(None);
                };
                Ok(Some(with_approvals(&self.pool, row, id).await?))
            }

            async fn list_promotions(&self, status: Option<PromotionStatus>) -> StoreResult<Vec<Promotion>> {
                let rows = sqlx::query_as::<_, PromotionRow>(iq::SELECT_PROMOTIONS)
                    .bind(status.map(PromotionStatus::as_str))
                    .fetch_all(&self.pool)
                    .await?;
                let mut promotions = Vec::with_capacity(rows.len());
                for row in rows {
                    let id = row.id();
                    promotions.push(with_approvals(&self.pool, row, id).await?);
                }
                Ok(promotions)
            }

            async fn expire_promotions(&self, now: Timestamp) -> StoreResult<Vec<i64>> {
                let due = sqlx::query_scalar::<_, i64>(iq::SELECT_DUE_PROMOTIONS)
                    .bind(now.micros())
                    .fetch_all(&self.pool)
                    .await?;
                let mut expired = Vec::new();
                for id in due {
                    // Re-read under the head lock: another server may have
                    // expired, approved or rejected it meanwhile.
                    let mut w = Writer::begin(self).await?;
                    let mut p = locked_promotion(&mut w, id).await?;
                    if promotion::is_expired(&p, now) {
                        expire(&mut w, &mut p, now).await?;
                        w.commit().await?;
                        expired.push(id);
                    }
                }
                Ok(expired)
            }
        }
      }
    };
}
pub(crate) use identity_store;
