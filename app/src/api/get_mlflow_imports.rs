use leptos::prelude::*;

use crate::data::MlflowImports;
use crate::error::AppError;

/// The MLflow import page: the credentials an import may name and this server's recent imports (admins).
#[server(prefix = "/console/fn", endpoint = "get_mlflow_imports", client = crate::api::client::ConsoleClient)]
pub async fn get_mlflow_imports() -> Result<MlflowImports, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.mlflow_imports().await
}
