//! What every handler and server function can reach.

use std::sync::Arc;

use crate::config::Config;
use crate::drivers::Drivers;
use crate::store::DynStore;

#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub config: Arc<Config>,
    /// The cluster drivers of this process (shared with its operation runner).
    pub drivers: Drivers,
    /// Single sign-on and workload identity (`sso`); `Sso::disabled()` when not configured.
    pub sso: Arc<crate::sso::Sso>,
}
