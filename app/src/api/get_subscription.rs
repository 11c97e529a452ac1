use leptos::prelude::*;

use crate::data::SubscriptionDetail;
use crate::error::AppError;

/// One subscription with its recent deliveries (admins).
#[server(prefix = "/console/fn", endpoint = "get_subscription", client = crate::api::client::ConsoleClient)]
pub async fn get_subscription(name: String) -> Result<SubscriptionDetail, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.subscription(name.trim()).await
}
