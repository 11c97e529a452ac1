use leptos::prelude::*;
use switchyard_domain::freeze::FreezeOverride;

use crate::error::AppError;

/// Approves an emergency override as the second person (approver or admin on all).
#[server(prefix = "/console/fn", endpoint = "approve_override", client = crate::api::client::ConsoleClient)]
pub async fn approve_override(id: i64) -> Result<FreezeOverride, AppError> {
    let services = crate::services::services()?;
    services.approve_override(id).await.map_err(|e| e.about(id))
}
