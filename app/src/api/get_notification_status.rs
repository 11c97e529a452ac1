use leptos::prelude::*;

use crate::data::NotificationStatus;
use crate::error::AppError;

/// Whether notifications are being delivered, for the overview's warning.
#[server(prefix = "/console/fn", endpoint = "get_notification_status", client = crate::api::client::ConsoleClient)]
pub async fn get_notification_status() -> Result<NotificationStatus, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.notification_status().await
}
