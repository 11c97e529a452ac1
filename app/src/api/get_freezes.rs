use leptos::prelude::*;
use switchyard_domain::freeze::FreezeState;

use crate::error::AppError;

/// The change freezes in force now (the banner on the overview and clusters pages).
#[server(prefix = "/console/fn", endpoint = "get_freezes", client = crate::api::client::ConsoleClient)]
pub async fn get_freezes() -> Result<Vec<FreezeState>, AppError> {
    let services = crate::services::services()?;
    services.freezes().await
}
