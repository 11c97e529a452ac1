use leptos::prelude::*;

use crate::data::BindingRow;
use crate::error::AppError;

/// Removes a role binding (admin on all); the last admin binding on all is kept.
#[server(prefix = "/console/fn", endpoint = "remove_binding", client = crate::api::client::ConsoleClient)]
pub async fn remove_binding(id: i64) -> Result<BindingRow, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.remove_binding(id).await.map_err(|e| e.about(id))
}
