use leptos::prelude::*;
use switchyard_domain::promotion::Promotion;

use crate::error::AppError;

/// The requester takes their own pending promotion back; a reason is required.
#[server(prefix = "/console/fn", endpoint = "withdraw_promotion", client = crate::api::client::ConsoleClient)]
pub async fn withdraw_promotion(id: i64, reason: Option<String>) -> Result<Promotion, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    // A missing reason is refused by the promotion rules, in their words.
    let reason = reason.unwrap_or_default();
    let p = services
        .withdraw_promotion(id, &reason)
        .await
        .map_err(|e| e.about(id))?;
    super::show_after_form_post(&format!("/approvals?withdrawn={}", p.id));
    Ok(p)
}
