use leptos::prelude::*;

use crate::data::ClusterView;
use crate::error::AppError;

/// One cluster with its operations history.
#[server(prefix = "/console/fn", endpoint = "get_cluster", client = crate::api::client::ConsoleClient)]
pub async fn get_cluster(name: String) -> Result<ClusterView, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = switchyard_domain::clusters::parse_cluster_name(name.trim())?;
    services.cluster(&name).await
}
