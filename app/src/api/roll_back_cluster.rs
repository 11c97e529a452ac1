use leptos::prelude::*;
use switchyard_domain::operations::Operation;

use crate::error::AppError;

/// Sends a cluster's traffic back to what served before its last operation.
#[server(prefix = "/console/fn", endpoint = "roll_back_cluster", client = crate::api::client::ConsoleClient)]
pub async fn roll_back_cluster(
    cluster: String,
    reason: Option<String>,
) -> Result<Operation, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let reason = super::given(reason);
    let op = services
        .roll_back(cluster.trim(), reason.as_deref())
        .await
        .map_err(|e| e.about(cluster.trim()))?;
    super::show_after_form_post(&format!("/clusters/{}?started={}", op.cluster, op.id));
    Ok(op)
}
