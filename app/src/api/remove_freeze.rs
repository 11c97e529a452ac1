use leptos::prelude::*;
use switchyard_domain::freeze::FreezeWindow;

use crate::error::AppError;

/// Removes a change-freeze window (admin on all).
#[server(prefix = "/console/fn", endpoint = "remove_freeze", client = crate::api::client::ConsoleClient)]
pub async fn remove_freeze(id: i64) -> Result<FreezeWindow, AppError> {
    let services = crate::services::services()?;
    services.remove_freeze(id).await.map_err(|e| e.about(id))
}
