use leptos::prelude::*;
use switchyard_domain::freeze::FreezeWindow;

use crate::error::AppError;

/// Adds a change-freeze window, one-off or weekly in an IANA zone (admin on all).
#[server(prefix = "/console/fn", endpoint = "add_freeze", client = crate::api::client::ConsoleClient)]
#[allow(clippy::too_many_arguments)]
pub async fn add_freeze(
    name: String,
    environment: String,
    kind: String,
    from: Option<String>,
    to: Option<String>,
    days: Option<String>,
    start: Option<String>,
    duration_minutes: Option<String>,
    time_zone: Option<String>,
) -> Result<FreezeWindow, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services
        .add_freeze(crate::data::FreezeForm {
            name,
            environment,
            kind,
            from: from.unwrap_or_default(),
            to: to.unwrap_or_default(),
            days: days.unwrap_or_default(),
            start: start.unwrap_or_default(),
            duration_minutes: duration_minutes.unwrap_or_default(),
            time_zone: time_zone.unwrap_or_default(),
        })
        .await
}
