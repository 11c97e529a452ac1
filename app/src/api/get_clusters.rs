use leptos::prelude::*;

use crate::data::ClusterView;
use crate::error::AppError;

/// Every serving cluster: slots, weights, drift and recent operations; with
/// `summary`, only what the overview shows (the running operation and drift:
/// no slot health asked of the drivers, no versions an operation may bring in).
#[server(prefix = "/console/fn", endpoint = "get_clusters", client = crate::api::client::ConsoleClient)]
pub async fn get_clusters(summary: bool) -> Result<Vec<ClusterView>, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.clusters(summary).await
}
