use leptos::prelude::*;
use switchyard_domain::promotion::Promotion;

use crate::error::AppError;

/// Requests a promotion of a version into an environment, from the board.
#[server(prefix = "/console/fn", endpoint = "request_promotion", client = crate::api::client::ConsoleClient)]
pub async fn request_promotion(
    full_id: String,
    environment: String,
    reason: Option<String>,
) -> Result<Promotion, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    // A missing reason is refused by the promotion rules, in their words.
    let reason = reason.unwrap_or_default();
    let p = services
        .request_promotion(&full_id, &environment, &reason)
        .await
        .map_err(|e| e.about(full_id.trim()))?;
    super::show_after_form_post(&format!("/approvals?requested={}", p.id));
    Ok(p)
}
