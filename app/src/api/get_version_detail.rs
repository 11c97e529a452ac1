use leptos::prelude::*;
use switchyard_domain::types::VersionDetail;

use crate::error::AppError;

/// A version with its config, stage history and current pins.
#[server(prefix = "/console/fn", endpoint = "get_version_detail", client = crate::api::client::ConsoleClient)]
pub async fn get_version_detail(full_id: String) -> Result<VersionDetail, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let id = switchyard_domain::FullId::parse(&full_id)?;
    services.version_detail(&id).await
}
