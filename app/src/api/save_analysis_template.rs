use leptos::prelude::*;

use crate::error::AppError;

/// Creates or replaces an analysis template (admin on all); the Prometheus
/// it names checks the query with its own parser before anything is stored.
/// A reason is required (for the ledger). Answers whether it was created
/// (false: replaced).
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/console/fn", endpoint = "save_analysis_template", client = crate::api::client::ConsoleClient)]
pub async fn save_analysis_template(
    name: String,
    prometheus_url: String,
    bearer_token_file: Option<String>,
    query: String,
    success: String,
    failure: String,
    interval_ms: u64,
    count: u32,
    failure_limit: u32,
    inconclusive_limit: u32,
    pre_switch: Option<String>,
    reason: Option<String>,
) -> Result<bool, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let name = name.trim().to_owned();
    let template = switchyard_domain::analysis::AnalysisTemplate {
        name: name.clone(),
        prometheus_url: prometheus_url.trim().to_owned(),
        bearer_token_file: super::given(bearer_token_file),
        query,
        success,
        failure,
        interval_ms,
        count,
        failure_limit,
        inconclusive_limit,
        // A checkbox: sent (as "on" or "true") only when ticked.
        pre_switch: pre_switch.is_some_and(|v| v != "false"),
    };
    let reason = super::given(reason);
    services
        .save_analysis_template(template, reason.as_deref())
        .await
        .map_err(|e| e.about(name))
}
