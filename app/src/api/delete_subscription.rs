use leptos::prelude::*;

use crate::error::AppError;

/// Deletes a subscription (admins); the name typed again confirms it.
#[server(prefix = "/console/fn", endpoint = "delete_subscription", client = crate::api::client::ConsoleClient)]
pub async fn delete_subscription(
    name: String,
    confirm: Option<String>,
) -> Result<String, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = name.trim().to_owned();
    if super::given(confirm).as_deref() != Some(name.as_str()) {
        return Err(AppError::new(
            "invalid_input",
            format!("type the subscription's name, {name}, to confirm deleting it"),
        )
        .about(&name));
    }
    services
        .delete_subscription(&name)
        .await
        .map_err(|e| e.about(&name))?;
    Ok(name)
}
