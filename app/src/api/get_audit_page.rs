use leptos::prelude::*;

use crate::data::AuditView;
use crate::error::AppError;

/// One page of the filtered audit log, newest first. The filters are
/// separate arguments: an all-empty nested struct would not survive the
/// URL encoding of server function arguments.
#[server(prefix = "/console/fn", endpoint = "get_audit_page", client = crate::api::client::ConsoleClient)]
pub async fn get_audit_page(
    from: Option<String>,
    to: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    model: Option<String>,
    env: Option<String>,
    cluster: Option<String>,
    cursor: Option<String>,
) -> Result<AuditView, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    let filter = crate::data::AuditFilter {
        from,
        to,
        action,
        actor,
        model,
        env,
        cluster,
    };
    let cursor = super::given(cursor);
    services.audit_page(&filter, cursor.as_deref()).await
}
