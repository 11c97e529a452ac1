use leptos::prelude::*;
use switchyard_domain::types::Overview;

use crate::error::AppError;

/// Environments × models with their pins, for the overview page.
#[server(prefix = "/console/fn", endpoint = "get_overview", client = crate::api::client::ConsoleClient)]
pub async fn get_overview() -> Result<Overview, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.overview().await
}
