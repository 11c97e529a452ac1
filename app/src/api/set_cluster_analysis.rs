use leptos::prelude::*;

use crate::data::ClusterAnalysis;
use crate::error::AppError;

/// Sets the templates every operation on a cluster runs (admin on all):
/// `templates` is their names, comma-separated; empty detaches all.
#[server(prefix = "/console/fn", endpoint = "set_cluster_analysis", client = crate::api::client::ConsoleClient)]
pub async fn set_cluster_analysis(
    cluster: String,
    templates: Option<String>,
) -> Result<ClusterAnalysis, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let cluster = cluster.trim().to_owned();
    services
        .set_cluster_analysis(
            &cluster,
            template_names(templates.as_deref().unwrap_or_default()),
        )
        .await
        .map_err(|e| e.about(&cluster))
}

/// `"errors, p99"` → `["errors", "p99"]` (blanks dropped; names checked by the server).
pub fn template_names(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::template_names;

    #[test]
    fn template_names_are_split_at_commas_and_blanks_dropped() {
        assert_eq!(template_names(" errors, p99 ,, "), ["errors", "p99"]);
        assert!(template_names("  ").is_empty());
    }
}
