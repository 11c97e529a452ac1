use leptos::prelude::*;

use crate::data::BindingRow;
use crate::error::AppError;

/// Gives a user or a group a role in one environment or all (admin on all).
#[server(prefix = "/console/fn", endpoint = "add_binding", client = crate::api::client::ConsoleClient)]
pub async fn add_binding(
    subject_kind: String,
    subject: String,
    role: String,
    environment: Option<String>,
) -> Result<BindingRow, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let environment = super::given(environment).unwrap_or_else(|| "all".to_owned());
    services
        .add_binding(&subject_kind, &subject, &role, &environment)
        .await
        .map_err(|e| e.about("add"))
}
