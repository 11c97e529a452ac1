use leptos::prelude::*;

use crate::data::RotatedSecret;
use crate::error::AppError;

/// A new signing secret for a webhook subscription (admins), shown this once.
#[server(prefix = "/console/fn", endpoint = "rotate_subscription_secret", client = crate::api::client::ConsoleClient)]
pub async fn rotate_subscription_secret(
    name: String,
    overlap_hours: Option<String>,
) -> Result<RotatedSecret, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = name.trim().to_owned();
    let hours = super::given(overlap_hours)
        .map(|h| {
            h.parse::<i64>().map_err(|_| {
                AppError::new(
                    "invalid_input",
                    format!("overlap hours must be a whole number from 0 to 720, not {h:?}"),
                )
            })
        })
        .transpose()
        .map_err(|e| e.about(&name))?;
    services
        .rotate_subscription_secret(&name, hours)
        .await
        .map_err(|e| e.about(&name))
}
