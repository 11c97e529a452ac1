use leptos::prelude::*;

use crate::data::CreatedSubscription;
use crate::error::AppError;

/// Creates a notification subscription (admins); the webhook secret comes back this once.
#[server(prefix = "/console/fn", endpoint = "create_subscription", client = crate::api::client::ConsoleClient)]
pub async fn create_subscription(
    name: String,
    kind: Option<String>,
    url: String,
    events: Option<String>,
    models: Option<String>,
    environments: Option<String>,
    clusters: Option<String>,
    parallel: Option<String>,
) -> Result<CreatedSubscription, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    // A checkbox posts its value when ticked and nothing otherwise.
    let parallel = match parallel.as_deref().map(str::trim) {
        None | Some("") | Some("false") => false,
        Some("true") | Some("on") => true,
        Some(other) => {
            return Err(AppError::new(
                "invalid_input",
                format!("parallel must be true or false (a ticked or empty box), not {other:?}"),
            ))
        }
    };
    let form = crate::data::SubscriptionForm {
        name,
        kind: kind.unwrap_or_default(),
        url,
        events: events.unwrap_or_default(),
        models: models.unwrap_or_default(),
        environments: environments.unwrap_or_default(),
        clusters: clusters.unwrap_or_default(),
        parallel,
    };
    services.create_subscription(&form).await
}
