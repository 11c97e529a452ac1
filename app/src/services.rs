//! What server functions may ask of the server, implemented in the `server`
//! crate on top of the store and handed in through Leptos context — so the
//! app never depends on the server crate, and the browser and the REST API
//! share one implementation of every rule.
//!
//! The server provides services only for a request with a valid session,
//! built for that user: `services()` refuses everything else with
//! `unauthenticated`, and each method checks the user's role
//! (`SignedInUser::require`) before it acts.

use std::sync::Arc;

use leptos::prelude::use_context;
use switchyard_domain::types::Overview;

use crate::error::AppError;
use crate::session::SignedInUser;

#[async_trait::async_trait]
pub trait Services: Send + Sync + 'static {
    /// Whom these services act for.
    fn user(&self) -> &SignedInUser;

    async fn overview(&self) -> Result<Overview, AppError>;
}

pub type DynServices = Arc<dyn Services>;

/// The services of the current request, if it comes with a valid session.
pub fn services() -> Result<DynServices, AppError> {
    use_context::<DynServices>().ok_or_else(AppError::unauthenticated)
}
