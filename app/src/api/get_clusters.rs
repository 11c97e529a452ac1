use leptos::prelude::*;

use crate::data::ClusterView;
use crate::error::AppError;

/// Every serving cluster: slots, weights, drift and recent operations.
#[server(prefix = "/console/fn", endpoint = "get_clusters", client = crate::api::client::ConsoleClient)]
pub async fn get_clusters() -> Result<Vec<ClusterView>, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.clusters().await
}
