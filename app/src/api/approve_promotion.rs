use leptos::prelude::*;
use switchyard_domain::promotion::Promotion;

use crate::error::AppError;

/// One approval of a pending promotion; the last one needed applies it.
#[server(prefix = "/console/fn", endpoint = "approve_promotion", client = crate::api::client::ConsoleClient)]
pub async fn approve_promotion(id: i64, reason: Option<String>) -> Result<Promotion, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let reason = super::given(reason);
    let p = services
        .approve_promotion(id, reason.as_deref())
        .await
        .map_err(|e| e.about(id))?;
    super::show_after_form_post(&format!("/approvals?approved={}", p.id));
    Ok(p)
}
