use leptos::prelude::*;

use crate::error::AppError;

/// Queues a test message to a subscription (admins).
#[server(prefix = "/console/fn", endpoint = "send_test_message", client = crate::api::client::ConsoleClient)]
pub async fn send_test_message(name: String) -> Result<String, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = name.trim().to_owned();
    services
        .send_test_message(&name)
        .await
        .map_err(|e| e.about(&name))?;
    Ok(name)
}
