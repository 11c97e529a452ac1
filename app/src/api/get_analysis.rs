use leptos::prelude::*;

use crate::data::AnalysisView;
use crate::error::AppError;

/// The Analysis page: every template, what each cluster attaches, and
/// whether the user may change them.
#[server(prefix = "/console/fn", endpoint = "get_analysis", client = crate::api::client::ConsoleClient)]
pub async fn get_analysis() -> Result<AnalysisView, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.analysis().await
}
