use leptos::prelude::*;

use crate::data::ClusterForm;
use crate::error::AppError;

/// What the clusters page's "Add a cluster" form offers: the environments,
/// and whether the signed-in user may add a cluster.
#[server(prefix = "/console/fn", endpoint = "get_cluster_form", client = crate::api::client::ConsoleClient)]
pub async fn get_cluster_form() -> Result<ClusterForm, AppError> {
    crate::services::services()?.cluster_form().await
}
