use leptos::prelude::*;
use switchyard_domain::operations::Operation;

use crate::error::AppError;

/// Rolls back a paused operation: traffic goes back to what served before,
/// trigger `person`, with a reason.
#[server(prefix = "/console/fn", endpoint = "roll_back_operation", client = crate::api::client::ConsoleClient)]
pub async fn roll_back_operation(id: i64, reason: Option<String>) -> Result<Operation, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let reason = super::given(reason);
    services
        .decide_operation(
            id,
            switchyard_domain::analysis::Decision::RollBack,
            reason.as_deref(),
        )
        .await
        .map_err(|e| e.about(id))
}
