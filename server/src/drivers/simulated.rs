//! The simulated driver: slots and router in memory. For the demo and fast
//! tests; clusters using it are labelled "simulated" wherever they show.
//! Faults can be configured per cluster to exercise failure paths.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use switchyard_domain::clusters::{ClusterState, SlotName, Weights};
use switchyard_domain::{DomainError, FullId};
use tokio::sync::Mutex;

use super::{Driver, DriverError, DriverResult, Observed};

/// `config` of a simulated cluster; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedConfig {
    /// Versions whose load fails.
    #[serde(default)]
    pub fail_load: Vec<String>,
    /// Versions whose smoke request fails.
    #[serde(default)]
    pub fail_smoke: Vec<String>,
    /// The health gate fails once this share (percent) of traffic is on a new version.
    pub fail_gate_at: Option<u8>,
    /// How long each action takes, to watch (or interrupt) an operation mid-way.
    #[serde(default)]
    pub action_ms: u64,
}

impl SimulatedConfig {
    pub fn parse(config: &serde_json::Value) -> Result<SimulatedConfig, DomainError> {
        if config.is_null() {
            return Ok(SimulatedConfig::default());
        }
        serde_json::from_value(config.clone())
            .map_err(|e| DomainError::Invalid(format!("simulated driver config: {e}")))
    }
}

struct Router {
    slots: [Option<FullId>; 2],
    weights: Weights,
}

pub struct Simulated {
    config: SimulatedConfig,
    router: Mutex<Router>,
}

fn index(slot: SlotName) -> usize {
    match slot {
        SlotName::Blue => 0,
        SlotName::Green => 1,
    }
}

impl Simulated {
    /// A simulated cluster starting as the database last recorded it.
    pub fn new(config: SimulatedConfig, state: &ClusterState) -> Simulated {
        Simulated {
            config,
            router: Mutex::new(Router { slots: [state.blue.clone(), state.green.clone()], weights: state.weights }),
        }
    }

    async fn act(&self) {
        if self.config.action_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.action_ms)).await;
        }
    }

    fn named(list: &[String], id: &FullId) -> bool {
        list.iter().any(|v| v == &id.to_string())
    }
}

#[async_trait]
impl Driver for Simulated {
    async fn load(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.act().await;
        let mut r = self.router.lock().await;
        if r.weights.of(slot) > 0 {
            return Err(DriverError::new(format!("simulated: {slot} carries traffic and cannot be loaded")));
        }
        r.slots[index(slot)] = None;
        if Self::named(&self.config.fail_load, full_id) {
            return Err(DriverError::new(format!("simulated: {full_id} failed to load into {slot}")));
        }
        r.slots[index(slot)] = Some(full_id.clone());
        Ok(())
    }

    async fn wait_ready(&self, slot: SlotName, full_id: &FullId, _timeout: Duration) -> DriverResult<()> {
        self.act().await;
        let r = self.router.lock().await;
        match &r.slots[index(slot)] {
            Some(v) if v == full_id => Ok(()),
            other => Err(DriverError::new(format!(
                "simulated: {slot} holds {}, not {full_id}",
                other.as_ref().map_or("nothing".to_owned(), ToString::to_string)
            ))),
        }
    }

    async fn smoke(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.act().await;
        if Self::named(&self.config.fail_smoke, full_id) {
            return Err(DriverError::new(format!("simulated: the smoke request to {full_id} in {slot} failed")));
        }
        self.wait_ready(slot, full_id, Duration::ZERO).await
    }

    async fn shift(&self, weights: Weights) -> DriverResult<()> {
        self.act().await;
        self.router.lock().await.weights = weights;
        Ok(())
    }

    async fn gate(&self, state: &ClusterState) -> DriverResult<()> {
        self.act().await;
        let r = self.router.lock().await;
        if let Some(p) = self.config.fail_gate_at {
            // Any slot at exactly that share: the shares a rolling update steps through.
            if SlotName::ALL.into_iter().any(|s| r.weights.of(s) == p && state.version(s).is_some()) {
                return Err(DriverError::new(format!("simulated: health gate failed with {p}% on the new version")));
            }
        }
        Ok(())
    }

    async fn observe(&self) -> DriverResult<Observed> {
        Ok(Observed { weights: self.router.lock().await.weights })
    }
}
