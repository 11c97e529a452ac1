use leptos::prelude::*;
use switchyard_domain::promotion::Promotion;

use crate::error::AppError;

/// Rejects a pending promotion for good; a reason is required.
#[server(prefix = "/console/fn", endpoint = "reject_promotion", client = crate::api::client::ConsoleClient)]
pub async fn reject_promotion(id: i64, reason: Option<String>) -> Result<Promotion, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    // A missing reason is refused by the promotion rules, in their words.
    let reason = reason.unwrap_or_default();
    let p = services
        .reject_promotion(id, &reason)
        .await
        .map_err(|e| e.about(id))?;
    super::show_after_form_post(&format!("/approvals?rejected={}", p.id));
    Ok(p)
}
