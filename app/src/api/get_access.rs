use leptos::prelude::*;

use crate::data::AccessView;
use crate::error::AppError;

/// The Access page: every role binding, and whether the user may change them.
#[server(prefix = "/console/fn", endpoint = "get_access", client = crate::api::client::ConsoleClient)]
pub async fn get_access() -> Result<AccessView, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.access().await
}
