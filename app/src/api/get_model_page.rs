use leptos::prelude::*;

use crate::data::ModelPage;
use crate::error::AppError;

/// A model's versions and the history its timeline draws.
#[server(prefix = "/console/fn", endpoint = "get_model_page")]
pub async fn get_model_page(model_id: String) -> Result<ModelPage, AppError> {
    let model = switchyard_domain::ModelId::parse(&model_id)?;
    crate::services::services()?.model_page(&model).await
}
