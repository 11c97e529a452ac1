use leptos::prelude::*;
use switchyard_domain::operations::Operation;

use crate::error::AppError;

/// An operation's state and steps; the clusters page polls it while it runs.
#[server(prefix = "/console/fn", endpoint = "get_operation", client = crate::api::client::ConsoleClient)]
pub async fn get_operation(id: i64) -> Result<Operation, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.operation(id).await
}
