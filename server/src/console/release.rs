//! The console's Release policy page, over `crate::release` (the rules the
//! REST API uses too): form fields arrive as text and are read here, with
//! errors that name the field and what to write.

use app::data::{FreezeForm, OverrideRow, ReleasePolicyView, SavedPolicy};
use app::error::AppError;
use app::session::SignedInUser;
use switchyard_domain::access::Role;
use switchyard_domain::freeze::{FreezeOverride, FreezeWindow};
use switchyard_domain::Timestamp;

use super::{filter_time, invalid, to_app_error};
use crate::release::{self, FreezeRequest, PolicyChange, APPROVE_OVERRIDE, CHANGE};
use crate::state::AppState;
use crate::store::identity::Identity;

/// A whole number from a form field, or an error naming the field.
fn number(value: &str, field: &str) -> Result<u32, AppError> {
    value.trim().parse::<u32>().map_err(|_| {
        invalid(format!(
            "{field} “{}” is not a whole number: write it in digits, e.g. 2.",
            value.trim()
        ))
    })
}

/// A number from an optional form field: none when blank.
fn optional_number(value: &str, field: &str) -> Result<Option<u32>, AppError> {
    match value.trim() {
        "" => Ok(None),
        v => number(v, field).map(Some),
    }
}

/// "a, b,, c " → ["a", "b", "c"].
fn listed(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn given(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub(super) async fn view(
    app: &AppState,
    user: &SignedInUser,
) -> Result<ReleasePolicyView, AppError> {
    user.require(Role::Viewer, "reading the console")?;
    let store = &app.store;
    let now = Timestamp::now();
    let overrides = store
        .list_overrides(None)
        .await
        .map_err(to_app_error)?
        .into_iter()
        .map(|o| OverrideRow {
            status: o.status(now),
            over: o,
        })
        .collect();
    Ok(ReleasePolicyView {
        environments: store.list_environments().await.map_err(to_app_error)?,
        freezes: store.list_freezes(None).await.map_err(to_app_error)?,
        in_force: store.freezes_in_force(now).await.map_err(to_app_error)?,
        overrides,
        refused: user
            .require(CHANGE, "Changing release policy")
            .err()
            .map(AppError::into_message),
        approve_refused: user
            .require(APPROVE_OVERRIDE, "Approving an emergency override")
            .err()
            .map(AppError::into_message),
        username: user.username.clone(),
    })
}

pub(super) async fn set_approval_policy(
    app: &AppState,
    who: &Identity,
    environment: &str,
    required_approvals: &str,
    required_groups: &str,
    requester_group_may_approve: &str,
    expiry_hours: &str,
) -> Result<SavedPolicy, AppError> {
    // Refuse non-admins before reading their fields.
    who.check(
        CHANGE,
        None,
        &format!("changing the policy of {}", environment.trim()),
    )
    .map_err(|m| AppError::new("forbidden", m.to_string()))?;
    let may = match requester_group_may_approve.trim() {
        "yes" => true,
        "no" => false,
        other => {
            return Err(invalid(format!(
                "“requester's groups may approve” is {other:?}: choose yes or no."
            )))
        }
    };
    let change = PolicyChange {
        required_approvals: Some(number(required_approvals, "Minimum approvers")?),
        required_groups: Some(listed(required_groups)),
        requester_group_may_approve: Some(may),
        expiry_hours: Some(number(expiry_hours, "Expiry hours")?),
        ..PolicyChange::default()
    };
    let environment = environment.trim();
    let policy = release::set_policy(
        app.store.as_ref(),
        who,
        environment,
        change,
        Timestamp::now(),
    )
    .await
    .map_err(to_app_error)?;
    Ok(SavedPolicy {
        environment: environment.to_owned(),
        policy,
    })
}

pub(super) async fn add_freeze(
    app: &AppState,
    who: &Identity,
    form: FreezeForm,
) -> Result<FreezeWindow, AppError> {
    who.check(CHANGE, None, "creating a freeze window")
        .map_err(|m| AppError::new("forbidden", m.to_string()))?;
    let kind = form.kind.trim().to_owned();
    let (from, to) = match kind.as_str() {
        "one_off" => (
            given(&form.from)
                .map(|t| filter_time(&t, "“from”"))
                .transpose()?
                .map(Timestamp::to_rfc3339),
            given(&form.to)
                .map(|t| filter_time(&t, "“to”"))
                .transpose()?
                .map(Timestamp::to_rfc3339),
        ),
        _ => (None, None),
    };
    let weekly = kind == "weekly";
    let request = FreezeRequest {
        name: form.name.trim().to_owned(),
        environment: form.environment.trim().to_owned(),
        from,
        to,
        days: weekly.then(|| listed(&form.days)).filter(|d| !d.is_empty()),
        start: weekly.then(|| given(&form.start)).flatten(),
        duration_minutes: if weekly {
            optional_number(&form.duration_minutes, "Duration (minutes)")?
        } else {
            None
        },
        time_zone: weekly.then(|| given(&form.time_zone)).flatten(),
        kind,
    };
    release::create_freeze(app.store.as_ref(), who, request, Timestamp::now())
        .await
        .map_err(to_app_error)
}

pub(super) async fn remove_freeze(
    app: &AppState,
    who: &Identity,
    id: i64,
) -> Result<FreezeWindow, AppError> {
    release::remove_freeze(app.store.as_ref(), who, id, Timestamp::now())
        .await
        .map_err(to_app_error)
}

pub(super) async fn request_override(
    app: &AppState,
    who: &Identity,
    environment: &str,
    reason: &str,
    hours: &str,
) -> Result<FreezeOverride, AppError> {
    who.check(CHANGE, None, "requesting an emergency override")
        .map_err(|m| AppError::new("forbidden", m.to_string()))?;
    let hours = optional_number(hours, "Hours")?;
    release::request_override(
        app.store.as_ref(),
        who,
        environment.trim(),
        reason,
        hours,
        Timestamp::now(),
    )
    .await
    .map_err(to_app_error)
}

pub(super) async fn approve_override(
    app: &AppState,
    who: &Identity,
    id: i64,
) -> Result<FreezeOverride, AppError> {
    release::approve_override(app.store.as_ref(), who, id, Timestamp::now())
        .await
        .map_err(to_app_error)
}
