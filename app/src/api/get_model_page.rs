use leptos::prelude::*;

use crate::data::ModelPage;
use crate::error::AppError;

/// The timeline's range as the address gives it: a preset (`range`) or dates (`from`, `to`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineRange {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A model's history inside the timeline's range (`range`, `from`, `to` as
/// written in the address), and one page of its versions (`page`; none: the
/// first).
#[server(prefix = "/console/fn", endpoint = "get_model_page", client = crate::api::client::ConsoleClient)]
pub async fn get_model_page(
    model_id: String,
    page: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<ModelPage, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let model = switchyard_domain::ModelId::parse(&model_id)?;
    let page = switchyard_domain::paging::parse_page(page.as_deref())?;
    let range = TimelineRange { range, from, to };
    services.model_page(&model, page, &range).await
}
