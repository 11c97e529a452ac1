use leptos::prelude::*;

use crate::data::Approvals;
use crate::error::AppError;

/// The approvals inbox: pending promotions with their config diffs, and the
/// recently decided ones.
#[server(prefix = "/console/fn", endpoint = "get_approvals", client = crate::api::client::ConsoleClient)]
pub async fn get_approvals() -> Result<Approvals, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.approvals().await
}
