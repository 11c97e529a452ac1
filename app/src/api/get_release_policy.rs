use leptos::prelude::*;

use crate::data::ReleasePolicyView;
use crate::error::AppError;

/// Each environment's approval policy, the freeze windows and the emergency overrides.
#[server(prefix = "/console/fn", endpoint = "get_release_policy", client = crate::api::client::ConsoleClient)]
pub async fn get_release_policy() -> Result<ReleasePolicyView, AppError> {
    let services = crate::services::services()?;
    services.release_policy().await
}
