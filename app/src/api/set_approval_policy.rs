use leptos::prelude::*;

use crate::data::SavedPolicy;
use crate::error::AppError;

/// Sets an environment's approval policy (admin on all); a policy nobody
/// bound to approve there could satisfy is refused.
#[server(prefix = "/console/fn", endpoint = "set_approval_policy", client = crate::api::client::ConsoleClient)]
pub async fn set_approval_policy(
    environment: String,
    required_approvals: String,
    required_groups: Option<String>,
    requester_group_may_approve: String,
    expiry_hours: String,
) -> Result<SavedPolicy, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services
        .set_approval_policy(
            &environment,
            &required_approvals,
            required_groups.as_deref().unwrap_or_default(),
            &requester_group_may_approve,
            &expiry_hours,
        )
        .await
        .map_err(|e| e.about(&environment))
}
