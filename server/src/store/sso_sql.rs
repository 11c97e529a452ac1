//! The SQL of `SsoStore`, shared by both backends, and the macro that
//! implements it for one of them on the `Writer` of `sql_store.rs`.

/// What single sign-on users have instead of a password hash: not a PHC
/// string, so no password ever matches it (`auth::password::verify`).
pub(crate) const NO_PASSWORD: &str = "!sso";

pub(crate) const INSERT_PENDING: &str = "INSERT INTO sso_pending \
     (state_hash, nonce, pkce_verifier, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const PRUNE_PENDING: &str = "DELETE FROM sso_pending WHERE expires_at <= $1";
pub(crate) const TAKE_PENDING: &str = "DELETE FROM sso_pending WHERE state_hash = $1 \
     RETURNING state_hash, nonce, pkce_verifier, created_at, expires_at";
pub(crate) const SELECT_SSO_USERNAME: &str =
    "SELECT username FROM sso_identities WHERE issuer = $1 AND subject = $2";
pub(crate) const SELECT_SSO_ACCOUNT: &str = "SELECT issuer, subject, username, display_name, \
     email, created_at, last_sign_in_at FROM sso_identities WHERE username = $1";
pub(crate) const INSERT_SSO_IDENTITY: &str = "INSERT INTO sso_identities \
     (issuer, subject, username, display_name, email, created_at, last_sign_in_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6)";
pub(crate) const UPDATE_SSO_IDENTITY: &str = "UPDATE sso_identities \
     SET display_name = $3, email = $4, last_sign_in_at = $5 WHERE issuer = $1 AND subject = $2";
pub(crate) const UPDATE_USER_ROLE: &str = "UPDATE users SET role = $2 WHERE username = $1";
/// The binding on all that `SWITCHYARD_OIDC_ROLE_MAP` gives a user, re-made at each sign-in.
pub(crate) const ROLE_MAP_CREATOR: &str = "sso:role-map";
pub(crate) const DELETE_ROLE_MAP_BINDING: &str = "DELETE FROM role_bindings \
     WHERE subject_kind = 'user' AND subject = $1 AND scope = '*' AND created_by = $2";
pub(crate) const PRUNE_ID_TOKENS: &str = "DELETE FROM sso_sessions WHERE expires_at <= $1";
pub(crate) const INSERT_ID_TOKEN: &str =
    "INSERT INTO sso_sessions (session_hash, id_token, expires_at) VALUES ($1, $2, $3)";
pub(crate) const TAKE_ID_TOKEN: &str =
    "DELETE FROM sso_sessions WHERE session_hash = $1 RETURNING id_token";
pub(crate) const USERNAME_TAKEN: &str = "SELECT username FROM users WHERE username = $1";

#[derive(sqlx::FromRow)]
pub(crate) struct PendingRow {
    state_hash: String,
    nonce: String,
    pkce_verifier: String,
    created_at: i64,
    expires_at: i64,
}

impl PendingRow {
    pub(crate) fn into_pending(self) -> super::sso::PendingSignIn {
        use switchyard_domain::Timestamp;
        super::sso::PendingSignIn {
            state_hash: self.state_hash,
            nonce: self.nonce,
            pkce_verifier: self.pkce_verifier,
            created_at: Timestamp::from_micros(self.created_at),
            expires_at: Timestamp::from_micros(self.expires_at),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    issuer: String,
    subject: String,
    username: String,
    display_name: Option<String>,
    email: Option<String>,
    created_at: i64,
    last_sign_in_at: i64,
}

impl AccountRow {
    pub(crate) fn into_account(self) -> super::sso::SsoAccount {
        use switchyard_domain::Timestamp;
        super::sso::SsoAccount {
            issuer: self.issuer,
            subject: self.subject,
            username: self.username,
            display_name: self.display_name,
            email: self.email,
            created_at: Timestamp::from_micros(self.created_at),
            last_sign_in_at: Timestamp::from_micros(self.last_sign_in_at),
        }
    }
}

/// Implements `SsoStore` for `$store` in a child module `sso` of the
/// backend's module, next to `shared` (from `sql_store!`), whose `Writer` it uses.
macro_rules! sso_store {
    ($store:ident, $db:ty) => {
      mod sso {
        use super::shared::Writer;
        use super::$store;
        use $crate::store::identity::User;
        use $crate::store::identity_sql as iq;
        use $crate::store::sso::{PendingSignIn, SsoAccount, SsoPerson, SsoSignIn, SsoStore};
        use $crate::store::sso_sql as sq;
        use $crate::store::StoreResult;
        use serde_json::json;
        use switchyard_domain::ledger::{action, NewEvent};
        use switchyard_domain::sso::{base_username, disambiguated_username};
        use switchyard_domain::{DomainError, Timestamp};

        #[async_trait::async_trait]
        impl SsoStore for $store {
            async fn start_sso_sign_in(&self, p: &PendingSignIn) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(sq::PRUNE_PENDING).bind(p.created_at.micros()).execute(&mut *tx).await?;
                sqlx::query(sq::INSERT_PENDING)
                    .bind(&p.state_hash)
                    .bind(&p.nonce)
                    .bind(&p.pkce_verifier)
                    .bind(p.created_at.micros())
                    .bind(p.expires_at.micros())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_sso_sign_in(&self, state_hash: &str, now: Timestamp) -> StoreResult<Option<PendingSignIn>> {
                let row = sqlx::query_as::<_, sq::PendingRow>(sq::TAKE_PENDING)
                    .bind(state_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(sq::PendingRow::into_pending).filter(|p| p.expires_at > now))
            }

            async fn sso_sign_in(&self, person: &SsoPerson<'_>, at: Timestamp) -> StoreResult<SsoSignIn> {
                let mut wanted: Vec<String> = person.groups.iter().map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect();
                wanted.sort();
                wanted.dedup();
                let mut w = Writer::begin(self).await?;
                let known = sqlx::query_scalar::<_, String>(sq::SELECT_SSO_USERNAME)
                    .bind(person.issuer)
                    .bind(person.subject)
                    .fetch_optional(&mut *w.tx)
                    .await?;
                let (user, created) = match known {
                    Some(username) => {
                        let (user, _) = sqlx::query_as::<_, iq::UserRow>(iq::SELECT_USER)
                            .bind(&username)
                            .fetch_optional(&mut *w.tx)
                            .await?
                            .ok_or_else(|| iq::user_not_found(&username))?
                            .into_user()?;
                        if user.disabled {
                            let groups = sqlx::query_scalar::<_, String>(iq::SELECT_USER_GROUPS)
                                .bind(&username)
                                .fetch_all(&mut *w.tx)
                                .await?;
                            return Ok(SsoSignIn { user, created: false, groups });
                        }
                        (user, false)
                    }
                    None => {
                        let base = base_username(person.preferred_username, person.email, person.subject);
                        let mut username = base.clone();
                        if sqlx::query_scalar::<_, String>(sq::USERNAME_TAKEN).bind(&username).fetch_optional(&mut *w.tx).await?.is_some() {
                            username = disambiguated_username(&base, person.issuer, person.subject);
                            if sqlx::query_scalar::<_, String>(sq::USERNAME_TAKEN).bind(&username).fetch_optional(&mut *w.tx).await?.is_some() {
                                return Err(DomainError::Conflict(format!(
                                    "the usernames {base} and {username} are both taken; {} at {} cannot be given a user",
                                    person.subject, person.issuer
                                )).into());
                            }
                        }
                        sqlx::query(iq::INSERT_USER)
                            .bind(&username)
                            .bind(person.role.as_str())
                            .bind(sq::NO_PASSWORD)
                            .bind(at.micros())
                            .execute(&mut *w.tx)
                            .await?;
                        sqlx::query(sq::INSERT_SSO_IDENTITY)
                            .bind(person.issuer)
                            .bind(person.subject)
                            .bind(&username)
                            .bind(person.display_name)
                            .bind(person.email)
                            .bind(at.micros())
                            .execute(&mut *w.tx)
                            .await?;
                        w.append(NewEvent::new(at, &username, action::USER_CREATED).details(json!({
                            "username": username,
                            "role": person.role,
                            "source": "sso",
                            "issuer": person.issuer,
                            "subject": person.subject,
                            "name": person.display_name,
                            "email": person.email,
                        })))
                        .await?;
                        let user = User { username, role: person.role, created_at: at, disabled: false };
                        (user, true)
                    }
                };
                let mut user = user;
                if !created {
                    if user.role != person.role {
                        sqlx::query(sq::UPDATE_USER_ROLE)
                            .bind(&user.username)
                            .bind(person.role.as_str())
                            .execute(&mut *w.tx)
                            .await?;
                        w.append(NewEvent::new(at, &user.username, action::USER_ROLE_CHANGED).details(json!({
                            "username": user.username,
                            "role": person.role,
                            "before": user.role,
                            "source": "sso",
                        })))
                        .await?;
                        user.role = person.role;
                    }
                    sqlx::query(sq::UPDATE_SSO_IDENTITY)
                        .bind(person.issuer)
                        .bind(person.subject)
                        .bind(person.display_name)
                        .bind(person.email)
                        .bind(at.micros())
                        .execute(&mut *w.tx)
                        .await?;
                }
                // The role map's grant is a binding on all, kept in step with the map
                // (the role itself is recorded by user.created / user.role_changed).
                sqlx::query(sq::DELETE_ROLE_MAP_BINDING)
                    .bind(&user.username)
                    .bind(sq::ROLE_MAP_CREATOR)
                    .execute(&mut *w.tx)
                    .await?;
                if person.role_from_map {
                    let same = sqlx::query_scalar::<_, i64>(iq::SELECT_SAME_BINDING)
                        .bind("user")
                        .bind(&user.username)
                        .bind(person.role.as_str())
                        .bind("*")
                        .fetch_optional(&mut *w.tx)
                        .await?;
                    if same.is_none() {
                        let id: i64 = sqlx::query_scalar(iq::NEXT_BINDING_ID).fetch_one(&mut *w.tx).await?;
                        sqlx::query(iq::INSERT_BINDING)
                            .bind(id)
                            .bind("user")
                            .bind(&user.username)
                            .bind(person.role.as_str())
                            .bind("*")
                            .bind(at.micros())
                            .bind(sq::ROLE_MAP_CREATOR)
                            .execute(&mut *w.tx)
                            .await?;
                    }
                }
                let before = sqlx::query_scalar::<_, String>(iq::SELECT_USER_GROUPS)
                    .bind(&user.username)
                    .fetch_all(&mut *w.tx)
                    .await?;
                if before != wanted {
                    sqlx::query(iq::DELETE_USER_GROUPS).bind(&user.username).execute(&mut *w.tx).await?;
                    for group in &wanted {
                        sqlx::query(iq::INSERT_USER_GROUP).bind(&user.username).bind(group).execute(&mut *w.tx).await?;
                    }
                    w.append(NewEvent::new(at, &user.username, action::USER_GROUPS_CHANGED).details(json!({
                        "username": user.username,
                        "groups": wanted,
                        "before": before,
                        "source": "sso",
                    })))
                    .await?;
                }
                w.commit().await?;
                Ok(SsoSignIn { user, created, groups: wanted })
            }

            async fn remember_id_token(&self, session_hash: &str, id_token: &str, expires_at: Timestamp, now: Timestamp) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(sq::PRUNE_ID_TOKENS).bind(now.micros()).execute(&mut *tx).await?;
                sqlx::query(sq::INSERT_ID_TOKEN)
                    .bind(session_hash)
                    .bind(id_token)
                    .bind(expires_at.micros())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_id_token(&self, session_hash: &str) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar::<_, String>(sq::TAKE_ID_TOKEN)
                    .bind(session_hash)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn sso_account(&self, username: &str) -> StoreResult<Option<SsoAccount>> {
                Ok(sqlx::query_as::<_, sq::AccountRow>(sq::SELECT_SSO_ACCOUNT)
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(sq::AccountRow::into_account))
            }
        }
      }
    };
}
pub(crate) use sso_store;
