use leptos::prelude::*;
use switchyard_domain::clusters::Cluster;

use crate::error::AppError;

/// Registers a cluster (admins), checked as `POST /api/v1/clusters` checks
/// it; `config` is the driver config as typed, JSON or YAML, blank for none.
/// From a plain form post, the browser is sent to the new cluster's
/// connection test, or, refused, back to the form with what was typed.
#[server(prefix = "/console/fn", endpoint = "add_cluster", client = crate::api::client::ConsoleClient)]
pub async fn add_cluster(
    name: String,
    environment: String,
    driver: String,
    config: Option<String>,
) -> Result<Cluster, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let config = config.unwrap_or_default();
    let cluster = match services
        .add_cluster(name.trim(), environment.trim(), driver.trim(), &config)
        .await
    {
        Ok(cluster) => cluster,
        Err(e) => {
            // Without JavaScript the form comes back with what was typed.
            super::back_to_form_after_refusal::<AddCluster>(
                "/clusters",
                &[
                    ("name", &name),
                    ("environment", &environment),
                    ("driver", &driver),
                    ("config", &config),
                ],
                &e,
            );
            return Err(e);
        }
    };
    super::show_after_form_post(&added_path(&cluster.name));
    Ok(cluster)
}

/// Where a newly added cluster is shown: its connection test, saying it was added.
pub fn added_path(name: &str) -> String {
    format!("/clusters/{name}/test?added=1")
}
