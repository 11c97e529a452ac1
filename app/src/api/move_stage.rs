use leptos::prelude::*;
use switchyard_domain::types::Version;

use crate::error::AppError;

/// Moves a version to another stage from the lifecycle board.
#[server(prefix = "/console/fn", endpoint = "move_stage", client = crate::api::client::ConsoleClient)]
pub async fn move_stage(
    full_id: String,
    to: String,
    reason: Option<String>,
) -> Result<Version, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let about = |e: AppError| e.about(full_id.trim());
    let id = switchyard_domain::FullId::parse(full_id.trim()).map_err(|e| about(e.into()))?;
    let to: switchyard_domain::Stage = to
        .parse()
        .map_err(|e: switchyard_domain::DomainError| about(e.into()))?;
    let reason = super::given(reason);
    services
        .move_stage(&id, to, reason.as_deref())
        .await
        .map_err(about)
}
