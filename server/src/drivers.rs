//! Cluster drivers: what actually moves versions into slots and traffic
//! between them. `simulated` runs in process (demo, fast tests) and says so
//! wherever it shows; `oip_haproxy` drives Open Inference Protocol model
//! servers behind HAProxy.

pub mod oip_haproxy;
pub mod simulated;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use switchyard_domain::clusters::{Cluster, ClusterState, DriverKind, SlotName, Weights};
use switchyard_domain::{DomainError, FullId};

/// A driver action that did not work; the message is shown in the
/// operation's steps and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

impl DriverError {
    pub fn new(msg: impl Into<String>) -> Self {
        DriverError(msg.into())
    }
}

pub type DriverResult<T> = Result<T, DriverError>;

/// What the router and slots really do now, as the driver sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub weights: Weights,
}

#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Makes `slot` hold exactly `full_id`. Only called for a slot without traffic.
    async fn load(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()>;

    /// Waits until `full_id` in `slot` answers ready and the router sees the slot up.
    async fn wait_ready(&self, slot: SlotName, full_id: &FullId, timeout: Duration) -> DriverResult<()>;

    /// Sends one inference request straight to the slot; it must answer as `full_id`.
    async fn smoke(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()>;

    /// Sets the router's weights and returns once the router acknowledged;
    /// all traffic on one slot is an atomic switch. The slot left without
    /// traffic keeps its version loaded: it is the rollback target, and
    /// after a map switch no new request reaches it (so no drain is needed).
    async fn shift(&self, weights: Weights) -> DriverResult<()>;

    /// Checks that every slot with traffic in `state` is ready and healthy.
    async fn gate(&self, state: &ClusterState) -> DriverResult<()>;

    /// The router's weights as they are.
    async fn observe(&self) -> DriverResult<Observed>;
}

/// Checks a cluster's driver config when the cluster is created.
pub fn validate_config(kind: DriverKind, config: &serde_json::Value) -> Result<(), DomainError> {
    match kind {
        DriverKind::Simulated => simulated::SimulatedConfig::parse(config).map(|_| ()),
        DriverKind::OipHaproxy => oip_haproxy::OipHaproxyConfig::parse(config).map(|_| ()),
    }
}

/// The drivers of this process, one per cluster, built on first use.
/// Simulated routers live here, so they outlast an operation runner that
/// stops (as a real router outlasts a crashed server).
#[derive(Clone, Default)]
pub struct Drivers {
    built: Arc<Mutex<HashMap<String, Arc<dyn Driver>>>>,
}

impl Drivers {
    pub fn for_cluster(&self, cluster: &Cluster) -> DriverResult<Arc<dyn Driver>> {
        let mut built = self.built.lock().map_err(|_| DriverError::new("driver registry poisoned"))?;
        if let Some(d) = built.get(&cluster.name) {
            return Ok(d.clone());
        }
        let invalid = |e: DomainError| DriverError::new(format!("cluster {} has an invalid config: {e}", cluster.name));
        let driver: Arc<dyn Driver> = match cluster.driver {
            DriverKind::Simulated => Arc::new(simulated::Simulated::new(
                simulated::SimulatedConfig::parse(&cluster.config).map_err(invalid)?,
                &cluster.state,
            )),
            DriverKind::OipHaproxy => {
                Arc::new(oip_haproxy::OipHaproxy::new(oip_haproxy::OipHaproxyConfig::parse(&cluster.config).map_err(invalid)?)?)
            }
        };
        built.insert(cluster.name.clone(), driver.clone());
        Ok(driver)
    }
}
