use leptos::prelude::*;

use crate::data::ModelPage;
use crate::error::AppError;

/// A model's versions and the history its timeline draws.
#[server(prefix = "/console/fn", endpoint = "get_model_page", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonAnswer)]
pub async fn get_model_page(model_id: String) -> Result<ModelPage, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let model = switchyard_domain::ModelId::parse(&model_id)?;
    services.model_page(&model).await
}
