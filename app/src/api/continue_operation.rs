use leptos::prelude::*;
use switchyard_domain::operations::Operation;

use crate::error::AppError;

/// Continues an operation paused for a person (after an inconclusive
/// analysis, or paused by someone), with a reason.
#[server(prefix = "/console/fn", endpoint = "continue_operation", client = crate::api::client::ConsoleClient)]
pub async fn continue_operation(id: i64, reason: Option<String>) -> Result<Operation, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let reason = super::given(reason);
    services
        .decide_operation(
            id,
            switchyard_domain::analysis::Decision::Continue,
            reason.as_deref(),
        )
        .await
        .map_err(|e| e.about(id))
}
