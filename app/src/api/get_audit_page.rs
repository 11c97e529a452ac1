use leptos::prelude::*;

use crate::data::{AuditFilter, AuditView};
use crate::error::AppError;

/// One page of the filtered audit log, newest first.
#[server(prefix = "/console/fn", endpoint = "get_audit_page")]
pub async fn get_audit_page(filter: AuditFilter, cursor: Option<String>) -> Result<AuditView, AppError> {
    let cursor = super::given(cursor);
    crate::services::services()?.audit_page(&filter, cursor.as_deref()).await
}
