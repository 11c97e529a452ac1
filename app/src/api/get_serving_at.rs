use leptos::prelude::*;

use crate::data::ServingAnswer;
use crate::error::AppError;

/// What each environment pinned at an instant.
#[server(prefix = "/console/fn", endpoint = "get_serving_at", client = crate::api::client::ConsoleClient)]
pub async fn get_serving_at(
    at: Option<String>,
    local: Option<String>,
    tz: Option<String>,
    env: Option<String>,
    model: Option<String>,
) -> Result<ServingAnswer, AppError> {
    use super::given;
    let model = given(model)
        .map(|m| switchyard_domain::ModelId::parse(&m))
        .transpose()?;
    let tz = given(tz).unwrap_or_else(|| "UTC".to_owned());
    let (at, local, env) = (given(at), given(local), given(env));
    crate::services::services()?
        .serving_at(
            at.as_deref(),
            local.as_deref(),
            &tz,
            env.as_deref(),
            model.as_ref(),
        )
        .await
}
