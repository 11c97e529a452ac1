use leptos::prelude::*;

use crate::error::AppError;

/// Queues a delivery again, with the same webhook-id (admins).
#[server(prefix = "/console/fn", endpoint = "redeliver", client = crate::api::client::ConsoleClient)]
pub async fn redeliver(id: i64) -> Result<i64, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.redeliver(id).await.map_err(|e| e.about(id))?;
    Ok(id)
}
