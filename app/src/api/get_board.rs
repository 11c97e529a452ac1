use leptos::prelude::*;

use crate::data::Board;
use crate::error::AppError;

/// The lifecycle board of a model (the first model when none is named).
#[server(prefix = "/console/fn", endpoint = "get_board", client = crate::api::client::ConsoleClient)]
pub async fn get_board(model_id: Option<String>) -> Result<Board, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let model = super::given(model_id)
        .map(|m| switchyard_domain::ModelId::parse(&m))
        .transpose()?;
    services.board(model.as_ref()).await
}
