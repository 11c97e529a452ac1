use leptos::prelude::*;

use crate::error::AppError;

/// Removes a cluster that never ran an operation (admins); the name typed
/// again confirms it. From a plain form post, the browser is sent to the
/// clusters page, which says it was removed.
#[server(prefix = "/console/fn", endpoint = "remove_cluster", client = crate::api::client::ConsoleClient)]
pub async fn remove_cluster(name: String, confirm: Option<String>) -> Result<String, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = name.trim().to_owned();
    if super::given(confirm).as_deref() != Some(name.as_str()) {
        return Err(AppError::new(
            "invalid_input",
            format!("Type the cluster's name, {name}, to confirm removing it."),
        )
        .about(&name));
    }
    services
        .remove_cluster(&name)
        .await
        .map_err(|e| e.about(&name))?;
    super::show_after_form_post(&removed_path(&name));
    Ok(name)
}

/// The clusters page, saying which cluster was removed.
pub fn removed_path(name: &str) -> String {
    format!("/clusters?removed={}", crate::data::encode(name))
}
