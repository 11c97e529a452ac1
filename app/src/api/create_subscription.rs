use leptos::prelude::*;

use crate::data::{CreatedSubscription, SubscriptionForm};
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
) -> Result<CreatedSubscription, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let form = SubscriptionForm {
        name,
        kind: kind.unwrap_or_default(),
        url,
        events: events.unwrap_or_default(),
        models: models.unwrap_or_default(),
        environments: environments.unwrap_or_default(),
        clusters: clusters.unwrap_or_default(),
    };
    services.create_subscription(&form).await
}
