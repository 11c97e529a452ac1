//! What server functions may ask of the server, implemented in the `server`
//! crate on top of the store and handed in through Leptos context — so the
//! app never depends on the server crate, and the browser and the REST API
//! share one implementation of every rule.

use std::sync::Arc;

use leptos::prelude::use_context;
use switchyard_domain::types::Overview;

use crate::error::AppError;

#[async_trait::async_trait]
pub trait Services: Send + Sync + 'static {
    async fn overview(&self) -> Result<Overview, AppError>;
}

pub type DynServices = Arc<dyn Services>;

/// The services of the current request.
pub fn services() -> Result<DynServices, AppError> {
    use_context::<DynServices>().ok_or_else(AppError::internal)
}
