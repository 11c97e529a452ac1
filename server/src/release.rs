//! Release policy as the REST API (`rest/release.rs`) and the console
//! (`console/release.rs`) both change it: an environment's approval policy,
//! change-freeze windows, and emergency overrides — who may (admin on all;
//! a second person, approver or admin on all, approves an override), the
//! form of each change checked before anything is stored, one path to the
//! store whoever asks.

use switchyard_domain::access::Role;
use switchyard_domain::freeze::{
    Day, FreezeOverride, FreezeWindow, NewFreeze, Schedule, DEFAULT_OVERRIDE_HOURS,
};
use switchyard_domain::policy::{parse_environment_name, EnvPolicy};
use switchyard_domain::{DomainError, Stage, Timestamp};

use crate::store::identity::Identity;
use crate::store::{Store, StoreResult};

/// The role that changes policies and freezes and asks for overrides, on all.
pub const CHANGE: Role = Role::Admin;
/// The role of the second person who approves an override, on all.
pub const APPROVE_OVERRIDE: Role = Role::Approver;

fn require(who: &Identity, needed: Role, what: &str) -> StoreResult<()> {
    who.check(needed, None, what)
        .map_err(|m| DomainError::from(m).into())
}

/// A change to an environment's policy: fields left `None` keep their value.
#[derive(Debug, Clone, Default)]
pub struct PolicyChange {
    pub allow_latest: Option<bool>,
    pub required_approvals: Option<u32>,
    pub min_stage: Option<String>,
    pub required_groups: Option<Vec<String>>,
    pub requester_group_may_approve: Option<bool>,
    pub expiry_hours: Option<u32>,
}

/// Changes `env`'s policy (ledger: `policy.changed`); the store refuses a
/// policy out of range or one nobody bound to approve there could satisfy.
pub async fn set_policy(
    store: &dyn Store,
    who: &Identity,
    env: &str,
    change: PolicyChange,
    at: Timestamp,
) -> StoreResult<EnvPolicy> {
    let env = parse_environment_name(env)?;
    require(who, CHANGE, &format!("changing the policy of {env}"))?;
    let current = store
        .list_environments()
        .await?
        .into_iter()
        .find(|e| e.name == env)
        .ok_or_else(|| DomainError::NotFound(format!("no environment named {env}")))?
        .policy;
    let policy = EnvPolicy {
        allow_latest: change.allow_latest.unwrap_or(current.allow_latest),
        required_approvals: change
            .required_approvals
            .unwrap_or(current.required_approvals),
        min_stage: match change.min_stage.as_deref() {
            Some(s) => s.parse::<Stage>()?,
            None => current.min_stage,
        },
        required_groups: change.required_groups.unwrap_or(current.required_groups),
        requester_group_may_approve: change
            .requester_group_may_approve
            .unwrap_or(current.requester_group_may_approve),
        expiry_hours: change.expiry_hours.unwrap_or(current.expiry_hours),
    };
    store
        .set_environment_policy(&env, &policy, &who.username, at)
        .await
}

/// A freeze window as asked for, unchecked: `kind` is `one_off` (with
/// `from`, `to`) or `weekly` (with `days`, `start`, `duration_minutes`,
/// `time_zone`).
#[derive(Debug, Clone, Default)]
pub struct FreezeRequest {
    pub name: String,
    pub environment: String,
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub days: Option<Vec<String>>,
    pub start: Option<String>,
    pub duration_minutes: Option<u32>,
    pub time_zone: Option<String>,
}

fn day(s: &str) -> Result<Day, DomainError> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_lowercase())).map_err(|_| {
        DomainError::Invalid(format!(
            "day {s:?} is unknown: name days as mon, tue, wed, thu, fri, sat or sun"
        ))
    })
}

impl FreezeRequest {
    /// The window, once its schedule is complete and valid.
    pub fn into_new(self) -> Result<NewFreeze, DomainError> {
        let missing =
            |f: &str| DomainError::Invalid(format!("a {} freeze needs field {f:?}", self.kind));
        let schedule = match self.kind.as_str() {
            "one_off" => Schedule::OneOff {
                from: Timestamp::parse(self.from.as_deref().ok_or_else(|| missing("from"))?)?,
                to: Timestamp::parse(self.to.as_deref().ok_or_else(|| missing("to"))?)?,
            },
            "weekly" => Schedule::Weekly {
                days: self
                    .days
                    .as_deref()
                    .ok_or_else(|| missing("days"))?
                    .iter()
                    .map(|d| day(d))
                    .collect::<Result<_, _>>()?,
                start: self.start.clone().ok_or_else(|| missing("start"))?,
                duration_minutes: self
                    .duration_minutes
                    .ok_or_else(|| missing("duration_minutes"))?,
                time_zone: self.time_zone.clone().ok_or_else(|| missing("time_zone"))?,
            },
            other => {
                return Err(DomainError::Invalid(format!(
                    "kind {other:?} is unknown: one_off or weekly"
                )))
            }
        };
        let new = NewFreeze {
            name: self.name,
            environment: self.environment,
            schedule,
        };
        new.validate()?;
        Ok(new)
    }
}

/// Adds a freeze window (ledger: `freeze.created`).
pub async fn create_freeze(
    store: &dyn Store,
    who: &Identity,
    request: FreezeRequest,
    at: Timestamp,
) -> StoreResult<FreezeWindow> {
    require(who, CHANGE, "creating a freeze window")?;
    let new = request.into_new()?;
    store.create_freeze(&new, &who.username, at).await
}

/// Removes freeze window `id` (ledger: `freeze.removed`).
pub async fn remove_freeze(
    store: &dyn Store,
    who: &Identity,
    id: i64,
    at: Timestamp,
) -> StoreResult<FreezeWindow> {
    require(who, CHANGE, "removing a freeze window")?;
    store.remove_freeze(id, &who.username, at).await
}

/// Asks for an emergency override of `env`'s freezes for `hours` (default
/// `DEFAULT_OVERRIDE_HOURS`) with a reason (ledger: `freeze.override_requested`).
pub async fn request_override(
    store: &dyn Store,
    who: &Identity,
    env: &str,
    reason: &str,
    hours: Option<u32>,
    at: Timestamp,
) -> StoreResult<FreezeOverride> {
    let env = parse_environment_name(env)?;
    require(
        who,
        CHANGE,
        &format!("requesting an emergency override in {env}"),
    )?;
    let hours = hours.unwrap_or(DEFAULT_OVERRIDE_HOURS);
    store.request_override(&env, reason, hours, who, at).await
}

/// Approves override `id` as the second person (ledger: `freeze.override_approved`).
pub async fn approve_override(
    store: &dyn Store,
    who: &Identity,
    id: i64,
    at: Timestamp,
) -> StoreResult<FreezeOverride> {
    require(who, APPROVE_OVERRIDE, "approving an emergency override")?;
    store.approve_override(id, who, at).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(days: &[&str]) -> FreezeRequest {
        FreezeRequest {
            name: "weekend".into(),
            environment: "production".into(),
            kind: "weekly".into(),
            days: Some(days.iter().map(|d| (*d).to_owned()).collect()),
            start: Some("18:00".into()),
            duration_minutes: Some(3600),
            time_zone: Some("Europe/Berlin".into()),
            ..FreezeRequest::default()
        }
    }

    #[test]
    fn a_freeze_request_names_what_is_missing_or_wrong() {
        let new = weekly(&["Fri", " sat"]).into_new().expect("valid");
        assert!(
            matches!(new.schedule, Schedule::Weekly { ref days, .. } if days == &[Day::Fri, Day::Sat])
        );
        let err = weekly(&["friday"]).into_new().expect_err("bad day");
        assert!(err.to_string().contains("\"friday\""), "{err}");
        let err = FreezeRequest {
            days: None,
            ..weekly(&[])
        }
        .into_new()
        .expect_err("no days");
        assert!(err.to_string().contains("\"days\""), "{err}");
        let err = FreezeRequest {
            kind: "monthly".into(),
            ..weekly(&["fri"])
        }
        .into_new()
        .expect_err("kind");
        assert!(err.to_string().contains("one_off or weekly"), "{err}");
    }
}
