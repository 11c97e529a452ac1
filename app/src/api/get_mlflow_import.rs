use leptos::prelude::*;

use crate::data::ImportRunView;
use crate::error::AppError;

/// One MLflow import started from the console, with its progress (admins).
#[server(prefix = "/console/fn", endpoint = "get_mlflow_import", client = crate::api::client::ConsoleClient)]
pub async fn get_mlflow_import(id: String) -> Result<ImportRunView, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.mlflow_import(id.trim()).await
}
