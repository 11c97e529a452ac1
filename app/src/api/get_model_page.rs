use leptos::prelude::*;

use crate::data::ModelPage;
use crate::error::AppError;

/// A model's history for its timeline, and one page of its versions
/// (`page` as written in the address; none: the first).
#[server(prefix = "/console/fn", endpoint = "get_model_page", client = crate::api::client::ConsoleClient)]
pub async fn get_model_page(model_id: String, page: Option<String>) -> Result<ModelPage, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let model = switchyard_domain::ModelId::parse(&model_id)?;
    let page = switchyard_domain::paging::parse_page(page.as_deref())?;
    services.model_page(&model, page).await
}
