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
    /// MLflow's registry webhooks reach the follow job through this (empty unless following with a secret).
    pub mlflow: crate::mlflow::webhook::FollowTrigger,
    /// Imports started from the console's MLflow import page (this server's memory).
    pub imports: crate::mlflow::runs::ImportRuns,
    /// Single sign-on and workload identity (`sso`); `Sso::disabled()` when not configured.
    pub sso: Arc<crate::sso::Sso>,
}
