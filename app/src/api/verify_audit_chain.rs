use leptos::prelude::*;

use crate::data::AuditVerification;
use crate::error::AppError;

/// Walks the whole ledger and checks every link of the hash chain; with
/// `public_key` (the auditor's copy, 64 hex digits), also every signed
/// checkpoint in the server's checkpoint file against the ledger.
#[server(prefix = "/console/fn", endpoint = "verify_audit_chain", client = crate::api::client::ConsoleClient)]
pub async fn verify_audit_chain(public_key: Option<String>) -> Result<AuditVerification, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    services.audit_verify(public_key.as_deref()).await
}
