//! The SQL of `ReleaseStore`, shared by both backends, and the macro that
//! implements it for one of them on the `Writer` of `sql_store.rs`.

use switchyard_domain::freeze::{FreezeOverride, FreezeWindow, Schedule};
use switchyard_domain::Timestamp;

use super::{StoreError, StoreResult};

pub(crate) const NEXT_FREEZE_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM freeze_windows";
pub(crate) const INSERT_FREEZE: &str = "INSERT INTO freeze_windows \
     (id, name, environment, schedule, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const SELECT_FREEZE_BY_NAME: &str =
    "SELECT id FROM freeze_windows WHERE environment = $1 AND name = $2";
macro_rules! freeze_columns {
    () => {
        "id, name, environment, schedule, created_by, created_at"
    };
}
pub(crate) const SELECT_FREEZE: &str = concat!(
    "SELECT ",
    freeze_columns!(),
    " FROM freeze_windows WHERE id = $1"
);
pub(crate) const SELECT_FREEZES: &str = concat!(
    "SELECT ",
    freeze_columns!(),
    " FROM freeze_windows WHERE ($1 IS NULL OR environment = $1) ORDER BY environment, name"
);
pub(crate) const DELETE_FREEZE: &str = "DELETE FROM freeze_windows WHERE id = $1";

macro_rules! override_columns {
    () => {
        "id, environment, reason, hours, requested_by, requested_at, approved_by, approved_at, valid_until"
    };
}
pub(crate) const NEXT_OVERRIDE_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM freeze_overrides";
pub(crate) const INSERT_OVERRIDE: &str = concat!(
    "INSERT INTO freeze_overrides (",
    override_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL)"
);
pub(crate) const SELECT_OVERRIDE: &str = concat!(
    "SELECT ",
    override_columns!(),
    " FROM freeze_overrides WHERE id = $1"
);
pub(crate) const SELECT_OVERRIDES: &str = concat!(
    "SELECT ",
    override_columns!(),
    " FROM freeze_overrides WHERE ($1 IS NULL OR environment = $1) ORDER BY id DESC"
);
/// Approved overrides of an environment still in force at $2.
pub(crate) const SELECT_OVERRIDES_IN_FORCE: &str = concat!(
    "SELECT ",
    override_columns!(),
    " FROM freeze_overrides WHERE environment = $1 AND approved_at <= $2 AND valid_until > $2 \
     ORDER BY valid_until DESC"
);
pub(crate) const APPROVE_OVERRIDE: &str = "UPDATE freeze_overrides \
     SET approved_by = $2, approved_at = $3, valid_until = $4 WHERE id = $1";

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

#[derive(sqlx::FromRow)]
pub(crate) struct FreezeRow {
    id: i64,
    name: String,
    environment: String,
    schedule: String,
    created_by: String,
    created_at: i64,
}

impl FreezeRow {
    pub(crate) fn into_window(self) -> StoreResult<FreezeWindow> {
        let schedule: Schedule = serde_json::from_str(&self.schedule).map_err(|e| {
            corrupt(format_args!(
                "freeze window {} has an unreadable schedule: {e}",
                self.id
            ))
        })?;
        Ok(FreezeWindow {
            id: self.id,
            name: self.name,
            environment: self.environment,
            schedule,
            created_by: self.created_by,
            created_at: Timestamp::from_micros(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OverrideRow {
    id: i64,
    environment: String,
    reason: String,
    hours: i64,
    requested_by: String,
    requested_at: i64,
    approved_by: Option<String>,
    approved_at: Option<i64>,
    valid_until: Option<i64>,
}

impl OverrideRow {
    pub(crate) fn into_override(self) -> StoreResult<FreezeOverride> {
        Ok(FreezeOverride {
            id: self.id,
            hours: u32::try_from(self.hours)
                .map_err(|_| corrupt(format_args!("override {} has bad hours", self.id)))?,
            environment: self.environment,
            reason: self.reason,
            requested_by: self.requested_by,
            requested_at: Timestamp::from_micros(self.requested_at),
            approved_by: self.approved_by,
            approved_at: self.approved_at.map(Timestamp::from_micros),
            valid_until: self.valid_until.map(Timestamp::from_micros),
        })
    }
}

pub(crate) fn windows(rows: Vec<FreezeRow>) -> StoreResult<Vec<FreezeWindow>> {
    rows.into_iter().map(FreezeRow::into_window).collect()
}

pub(crate) fn overrides(rows: Vec<OverrideRow>) -> StoreResult<Vec<FreezeOverride>> {
    rows.into_iter().map(OverrideRow::into_override).collect()
}

/// Implements `ReleaseStore` for `$store` in a child module `release` of the
/// backend's module, next to `shared` (from `sql_store!`), and provides
/// `check_not_frozen` to the promotions and operations there.
macro_rules! release_store {
    ($store:ident, $db:ty) => {
      pub(super) mod release {
        use super::shared::{fetch_policy, Writer};
        use super::$store;
        use $crate::store::identity::Identity;
        use $crate::store::identity_sql as iq;
        use $crate::store::release::{FreezeState, ReleaseStore};
        use $crate::store::release_sql as rq;
        use $crate::store::StoreResult;
        use serde_json::json;
        use switchyard_domain::freeze::{self, FreezeOverride, FreezeWindow, NewFreeze};
        use switchyard_domain::ledger::{action, NewEvent};
        use switchyard_domain::policy::{parse_environment_name, EnvPolicy};
        use switchyard_domain::{DomainError, Timestamp};

        type Conn = <$db as sqlx::Database>::Connection;

        /// Refuses `what` in `env` at `at` if a freeze window is in force
        /// there and no approved override is: `Frozen`, naming the window and
        /// its end. Returns the override that let it through, if one did.
        pub(crate) async fn check_not_frozen(
            conn: &mut Conn,
            env: &str,
            what: &str,
            at: Timestamp,
        ) -> StoreResult<Option<i64>> {
            let ws = rq::windows(
                sqlx::query_as::<_, rq::FreezeRow>(rq::SELECT_FREEZES)
                    .bind(Some(env))
                    .fetch_all(&mut *conn)
                    .await?,
            )?;
            let Some((w, end)) = freeze::active_freeze(&ws, env, at) else {
                return Ok(None);
            };
            let o = sqlx::query_as::<_, rq::OverrideRow>(rq::SELECT_OVERRIDES_IN_FORCE)
                .bind(env)
                .bind(at.micros())
                .fetch_optional(&mut *conn)
                .await?;
            match o {
                Some(o) => Ok(Some(o.into_override()?.id)),
                None => Err(freeze::frozen_error(what, w, end).into()),
            }
        }

        async fn locked_override(w: &mut Writer, id: i64) -> StoreResult<FreezeOverride> {
            sqlx::query_as::<_, rq::OverrideRow>(rq::SELECT_OVERRIDE)
                .bind(id)
                .fetch_optional(&mut *w.tx)
                .await?
                .ok_or_else(|| DomainError::NotFound(format!("no freeze override {id}")))?
                .into_override()
        }

        #[async_trait::async_trait]
        impl ReleaseStore for $store {
            async fn set_environment_policy(&self, env: &str, policy: &EnvPolicy, actor: &str, at: Timestamp) -> StoreResult<EnvPolicy> {
                let env = parse_environment_name(env)?;
                policy.validate()?;
                let mut w = Writer::begin(self).await?;
                let before = fetch_policy(&mut *w.tx, &env).await?;
                if before == *policy {
                    return Ok(before);
                }
                let rows = sqlx::query_as::<_, (String, Option<String>)>(iq::SELECT_APPROVERS_WITH_GROUPS)
                    .bind(&env)
                    .fetch_all(&mut *w.tx)
                    .await?;
                policy.check_satisfiable(&env, &iq::approvers_with_groups(rows))?;
                sqlx::query($crate::store::sql::UPDATE_POLICY)
                    .bind(&env)
                    .bind(policy.allow_latest)
                    .bind(i64::from(policy.required_approvals))
                    .bind(policy.min_stage.as_str())
                    .bind(json!(policy.required_groups).to_string())
                    .bind(policy.requester_group_may_approve)
                    .bind(i64::from(policy.expiry_hours))
                    .execute(&mut *w.tx)
                    .await?;
                w.append(
                    NewEvent::new(at, actor, action::POLICY_CHANGED)
                        .environment(&env)
                        .details(json!({ "before": before, "after": policy })),
                )
                .await?;
                w.commit().await?;
                Ok(policy.clone())
            }

            async fn create_freeze(&self, new: &NewFreeze, actor: &str, at: Timestamp) -> StoreResult<FreezeWindow> {
                new.validate()?;
                let name = new.name.trim();
                let mut w = Writer::begin(self).await?;
                // The environment must exist (its policy is its row).
                fetch_policy(&mut *w.tx, &new.environment).await?;
                if let Some(id) = sqlx::query_scalar::<_, i64>(rq::SELECT_FREEZE_BY_NAME)
                    .bind(&new.environment)
                    .bind(name)
                    .fetch_optional(&mut *w.tx)
                    .await?
                {
                    return Err(DomainError::Conflict(format!(
                        "environment {} already has a freeze window named {name:?} (id {id})",
                        new.environment
                    ))
                    .into());
                }
                let id = sqlx::query_scalar::<_, i64>(rq::NEXT_FREEZE_ID).fetch_one(&mut *w.tx).await?;
                let window = FreezeWindow {
                    id,
                    name: name.to_owned(),
                    environment: new.environment.clone(),
                    schedule: new.schedule.clone(),
                    created_by: actor.to_owned(),
                    created_at: at,
                };
                sqlx::query(rq::INSERT_FREEZE)
                    .bind(id)
                    .bind(&window.name)
                    .bind(&window.environment)
                    .bind(json!(window.schedule).to_string())
                    .bind(actor)
                    .bind(at.micros())
                    .execute(&mut *w.tx)
                    .await?;
                w.append(
                    NewEvent::new(at, actor, action::FREEZE_CREATED)
                        .environment(&window.environment)
                        .details(json!({ "freeze_id": id, "name": window.name, "schedule": window.schedule })),
                )
                .await?;
                w.commit().await?;
                Ok(window)
            }

            async fn remove_freeze(&self, id: i64, actor: &str, at: Timestamp) -> StoreResult<FreezeWindow> {
                let mut w = Writer::begin(self).await?;
                let window = sqlx::query_as::<_, rq::FreezeRow>(rq::SELECT_FREEZE)
                    .bind(id)
                    .fetch_optional(&mut *w.tx)
                    .await?
                    .ok_or_else(|| DomainError::NotFound(format!("no freeze window {id}")))?
                    .into_window()?;
                sqlx::query(rq::DELETE_FREEZE).bind(id).execute(&mut *w.tx).await?;
                w.append(
                    NewEvent::new(at, actor, action::FREEZE_REMOVED)
                        .environment(&window.environment)
                        .details(json!({ "freeze_id": id, "name": window.name, "schedule": window.schedule })),
                )
                .await?;
                w.commit().await?;
                Ok(window)
            }

            async fn list_freezes(&self, env: Option<&str>) -> StoreResult<Vec<FreezeWindow>> {
                rq::windows(
                    sqlx::query_as::<_, rq::FreezeRow>(rq::SELECT_FREEZES)
                        .bind(env)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            async fn freezes_in_force(&self, at: Timestamp) -> StoreResult<Vec<FreezeState>> {
                let ws = self.list_freezes(None).await?;
                let mut envs: Vec<&str> = ws.iter().map(|w| w.environment.as_str()).collect();
                envs.dedup();
                let mut out = Vec::new();
                for env in envs {
                    let Some((w, end)) = freeze::active_freeze(&ws, env, at) else { continue };
                    let o = sqlx::query_as::<_, rq::OverrideRow>(rq::SELECT_OVERRIDES_IN_FORCE)
                        .bind(env)
                        .bind(at.micros())
                        .fetch_optional(&self.pool)
                        .await?
                        .map(rq::OverrideRow::into_override)
                        .transpose()?;
                    out.push(FreezeState { environment: env.to_owned(), window: w.clone(), ends_at: end, overridden_by: o });
                }
                Ok(out)
            }

            async fn request_override(&self, env: &str, reason: &str, hours: u32, by: &Identity, at: Timestamp) -> StoreResult<FreezeOverride> {
                let env = parse_environment_name(env)?;
                freeze::check_override_request(reason, hours)?;
                let mut w = Writer::begin(self).await?;
                fetch_policy(&mut *w.tx, &env).await?;
                let id = sqlx::query_scalar::<_, i64>(rq::NEXT_OVERRIDE_ID).fetch_one(&mut *w.tx).await?;
                let o = FreezeOverride {
                    id,
                    environment: env.clone(),
                    reason: reason.trim().to_owned(),
                    hours,
                    requested_by: by.username.clone(),
                    requested_at: at,
                    approved_by: None,
                    approved_at: None,
                    valid_until: None,
                };
                sqlx::query(rq::INSERT_OVERRIDE)
                    .bind(id)
                    .bind(&o.environment)
                    .bind(&o.reason)
                    .bind(i64::from(hours))
                    .bind(&o.requested_by)
                    .bind(at.micros())
                    .execute(&mut *w.tx)
                    .await?;
                w.append(
                    NewEvent::new(at, &by.actor(), action::FREEZE_OVERRIDE_REQUESTED)
                        .environment(&env)
                        .reason(Some(&o.reason))
                        .details(json!({ "override_id": id, "hours": hours })),
                )
                .await?;
                w.commit().await?;
                Ok(o)
            }

            async fn approve_override(&self, id: i64, by: &Identity, at: Timestamp) -> StoreResult<FreezeOverride> {
                let mut w = Writer::begin(self).await?;
                let mut o = locked_override(&mut w, id).await?;
                freeze::check_override_approval(&o, &by.username, at)?;
                let until = at.plus_hours(i64::from(o.hours));
                sqlx::query(rq::APPROVE_OVERRIDE)
                    .bind(id)
                    .bind(&by.username)
                    .bind(at.micros())
                    .bind(until.micros())
                    .execute(&mut *w.tx)
                    .await?;
                o.approved_by = Some(by.username.clone());
                o.approved_at = Some(at);
                o.valid_until = Some(until);
                w.append(
                    NewEvent::new(at, &by.actor(), action::FREEZE_OVERRIDE_APPROVED)
                        .environment(&o.environment)
                        .reason(Some(&o.reason))
                        .details(json!({
                            "override_id": id,
                            "requested_by": o.requested_by,
                            "valid_until": until.to_rfc3339(),
                        })),
                )
                .await?;
                w.commit().await?;
                Ok(o)
            }

            async fn list_overrides(&self, env: Option<&str>) -> StoreResult<Vec<FreezeOverride>> {
                rq::overrides(
                    sqlx::query_as::<_, rq::OverrideRow>(rq::SELECT_OVERRIDES)
                        .bind(env)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }
        }
      }
    };
}
pub(crate) use release_store;
