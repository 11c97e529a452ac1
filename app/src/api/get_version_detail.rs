use leptos::prelude::*;
use switchyard_domain::types::VersionDetail;

use crate::error::AppError;

/// A version with its config, stage history and current pins.
#[server(prefix = "/console/fn", endpoint = "get_version_detail")]
pub async fn get_version_detail(full_id: String) -> Result<VersionDetail, AppError> {
    let id = switchyard_domain::FullId::parse(&full_id)?;
    crate::services::services()?.version_detail(&id).await
}
