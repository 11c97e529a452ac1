use leptos::prelude::*;

use crate::data::ImportRunView;
use crate::error::AppError;

/// Starts an import from an MLflow registry in the background (admins); a
/// plain form post is sent on to the import's progress page.
#[server(prefix = "/console/fn", endpoint = "start_mlflow_import", client = crate::api::client::ConsoleClient)]
pub async fn start_mlflow_import(
    tracking_uri: String,
    models: Option<String>,
    aliases: Option<String>,
    stages: Option<String>,
    prefix: Option<String>,
    credential: Option<String>,
    dry_run: Option<String>,
) -> Result<ImportRunView, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    // A checkbox posts its value when ticked and nothing otherwise.
    let dry_run = match dry_run.as_deref().map(str::trim) {
        None | Some("") | Some("false") => false,
        Some("true") | Some("on") => true,
        Some(other) => {
            return Err(AppError::new(
                "invalid_input",
                format!("dry_run must be true or false (a ticked or empty box), not {other:?}"),
            ))
        }
    };
    let form = crate::data::MlflowImportForm {
        tracking_uri,
        models: models.unwrap_or_default(),
        aliases: aliases.unwrap_or_default(),
        stages: stages.unwrap_or_default(),
        prefix: prefix.unwrap_or_default(),
        credential: credential.unwrap_or_default(),
        dry_run,
    };
    let run = services.start_mlflow_import(form).await?;
    super::show_after_form_post(&format!("/import/mlflow/{}", run.id));
    Ok(run)
}
