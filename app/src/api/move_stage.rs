use leptos::prelude::*;
use switchyard_domain::types::Version;

use crate::error::AppError;

/// Moves a version to another stage from the lifecycle board.
#[server(prefix = "/console/fn", endpoint = "move_stage", client = crate::api::client::ConsoleClient)]
pub async fn move_stage(full_id: String, to: String, reason: Option<String>) -> Result<Version, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let id = switchyard_domain::FullId::parse(&full_id)?;
    let to: switchyard_domain::Stage = to.parse()?;
    let reason = super::given(reason);
    services.move_stage(&id, to, reason.as_deref()).await
}
