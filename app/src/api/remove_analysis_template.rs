use leptos::prelude::*;

use crate::error::AppError;

/// Removes an analysis template (admin on all), with a reason; operations
/// that attached it keep their copy.
#[server(prefix = "/console/fn", endpoint = "remove_analysis_template", client = crate::api::client::ConsoleClient)]
pub async fn remove_analysis_template(
    name: String,
    reason: Option<String>,
) -> Result<String, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = name.trim().to_owned();
    let reason = super::given(reason);
    services
        .remove_analysis_template(&name, reason.as_deref())
        .await
        .map_err(|e| e.about(&name))?;
    Ok(name)
}
