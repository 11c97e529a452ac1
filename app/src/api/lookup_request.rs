use leptos::prelude::*;
use switchyard_domain::types::RequestLookup;

use crate::error::AppError;

/// The version that served a request, and the ledger events that put it in service.
#[server(prefix = "/console/fn", endpoint = "lookup_request", client = crate::api::client::ConsoleClient)]
pub async fn lookup_request(request_id: String) -> Result<RequestLookup, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let request_id = request_id.trim();
    if request_id.is_empty() {
        return Err(AppError::new("invalid", "Enter a request id."));
    }
    services.request_lookup(request_id).await
}
