use leptos::prelude::*;
use switchyard_domain::freeze::FreezeOverride;

use crate::error::AppError;

/// Requests an emergency override of an environment's freezes, with a
/// reason (admin on all); a second person must approve it.
#[server(prefix = "/console/fn", endpoint = "request_override", client = crate::api::client::ConsoleClient)]
pub async fn request_override(
    environment: String,
    reason: String,
    hours: Option<String>,
) -> Result<FreezeOverride, AppError> {
    let services = crate::services::services()?;
    services
        .request_override(&environment, &reason, hours.as_deref().unwrap_or_default())
        .await
}
