use leptos::prelude::*;

use crate::data::Subscriptions;
use crate::error::AppError;

/// Every notification subscription with its health (admins).
#[server(prefix = "/console/fn", endpoint = "get_subscriptions", client = crate::api::client::ConsoleClient)]
pub async fn get_subscriptions() -> Result<Subscriptions, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.subscriptions().await
}
