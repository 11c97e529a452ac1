use leptos::prelude::*;
use switchyard_domain::types::VerifyReport;

use crate::error::AppError;

/// Walks the whole ledger and checks every link of the hash chain.
#[server(prefix = "/console/fn", endpoint = "verify_audit_chain", client = crate::api::client::ConsoleClient)]
pub async fn verify_audit_chain() -> Result<VerifyReport, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.audit_verify().await
}
