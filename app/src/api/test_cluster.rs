use leptos::prelude::*;

use crate::data::ConnectionTest;
use crate::error::AppError;

/// Runs a cluster's connection test, the checks of `switchyard cluster
/// test` (deployers and up in its environment). Changes nothing.
#[server(prefix = "/console/fn", endpoint = "test_cluster", client = crate::api::client::ConsoleClient)]
pub async fn test_cluster(name: String) -> Result<ConnectionTest, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = name.trim();
    services.test_cluster(name).await.map_err(|e| e.about(name))
}
