//! Cluster drivers: what actually moves versions into slots and traffic
//! between them. `simulated` runs in process (demo, fast tests) and says so
//! wherever it shows; `oip_haproxy` drives Open Inference Protocol model
//! servers behind HAProxy; `kubernetes` switches a Service's selector
//! between two Deployments.

pub mod kubernetes;
pub mod oip_haproxy;
pub mod simulated;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use switchyard_domain::clusters::{Cluster, ClusterState, DriverKind, SlotName, Weights};
use switchyard_domain::operations::{GatePolicy, Traffic};
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

/// What one slot really runs now, as the serving platform reports it (the
/// model server's loaded model, the ready pods of a Deployment), not as
/// Switchyard recorded it. Drift is judged from this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Running {
    /// Every ready replica serves exactly this version.
    Version { version: FullId },
    /// Nothing is loaded, or no replica is ready.
    Nothing,
    /// Something that is not one registered version: replicas on different
    /// versions in the middle of a rollout, or an image naming no version.
    /// `detail` says what was found, in words.
    Unclear { detail: String },
}

#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Makes `slot` hold exactly `full_id`. Only called for a slot without traffic.
    async fn load(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()>;

    /// `load`, given the version's registered `artifact_uri`: a driver whose
    /// model servers read versions from their artifact themselves uses it.
    async fn load_from(
        &self,
        slot: SlotName,
        full_id: &FullId,
        artifact_uri: Option<&str>,
    ) -> DriverResult<()> {
        let _ = artifact_uri;
        self.load(slot, full_id).await
    }

    /// Waits until `full_id` in `slot` answers ready and the router sees the slot up.
    async fn wait_ready(
        &self,
        slot: SlotName,
        full_id: &FullId,
        timeout: Duration,
    ) -> DriverResult<()>;

    /// Sends one inference request straight to the slot; it must answer as `full_id`.
    async fn smoke(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()>;

    /// Unloads whatever `slot` holds (it carries no traffic): the release of
    /// the previous version after a bake. A slot already empty is fine, so a
    /// release run again after a crash succeeds.
    async fn unload(&self, slot: SlotName) -> DriverResult<()>;

    /// Updates the pods of `slot`, which keeps its traffic, to `full_id`
    /// with the platform's own rolling update, and watches it until it is
    /// complete (within `timeout`); a rollout that fails (or does not finish
    /// in time) is undone to the previous revision before the error is
    /// returned. Run again after a crash, it finds the slot already set to
    /// `full_id` and only watches. Only drivers that roll in place
    /// (`DriverKind::plans_in_place`) can.
    async fn roll(&self, slot: SlotName, full_id: &FullId, timeout: Duration) -> DriverResult<()> {
        let _ = (slot, timeout);
        Err(DriverError::new(format!(
            "this cluster's driver cannot update a serving slot in place (to {full_id}); \
             use a blue-green switch or a rolling update with split weights"
        )))
    }

    /// Sets the router's weights and returns once the router acknowledged;
    /// all traffic on one slot is an atomic switch. The slot left without
    /// traffic keeps its version loaded: it is the rollback target, and
    /// after a map switch no new request reaches it (so no drain is needed).
    async fn shift(&self, weights: Weights) -> DriverResult<()>;

    /// Checks that every slot with traffic in `state` is ready and healthy.
    async fn gate(&self, state: &ClusterState) -> DriverResult<()>;

    /// The router's weights as they are.
    async fn observe(&self) -> DriverResult<Observed>;

    /// What `slot` really runs now, read from the serving platform.
    async fn running(&self, slot: SlotName) -> DriverResult<Running>;

    /// Requests the router sent to `slot` and how many failed, since it started.
    async fn traffic(&self, slot: SlotName) -> DriverResult<Traffic>;

    /// Whether `traffic` can answer: a router without request counters (a
    /// Kubernetes Service) leaves the error rate to analysis templates.
    fn counts_traffic(&self) -> bool {
        true
    }

    /// The error-rate gate of this cluster (from its config).
    fn gate_policy(&self) -> GatePolicy;

    /// Checks every part the driver needs (reachable, permissions, the
    /// routing contract, each slot of `state` ready); changes nothing.
    async fn test(&self, state: &ClusterState) -> Vec<Check>;

    /// What the driver wrote to the cluster since it was last asked (object,
    /// patch, resulting generation), kept in the step's ledger record. Most
    /// drivers' writes say no more than the step itself: none by default.
    fn take_writes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether `slot`, expected to hold `version`, answers ready now.
    async fn slot_health(
        &self,
        slot: SlotName,
        version: Option<&FullId>,
    ) -> DriverResult<SlotHealth>;
}

/// One finding of `cluster test`: a part the driver needs, whether it is in
/// place, what was found and, when it is not, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `HAProxy backend be_green`.
    pub check: String,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it (failed checks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl Check {
    pub fn ok(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            ok: true,
            detail: detail.into(),
            advice: None,
        }
    }

    pub fn failed(
        check: impl Into<String>,
        detail: impl Into<String>,
        advice: impl Into<String>,
    ) -> Check {
        Check {
            check: check.into(),
            ok: false,
            detail: detail.into(),
            advice: Some(advice.into()),
        }
    }
}

/// A slot's health as the driver reports it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotHealth {
    Ready,
    /// The slot holds nothing (nothing to be ready).
    Empty,
    NotReady(String),
    /// The driver could not answer (in time).
    Unknown(String),
}

impl SlotHealth {
    /// `ready`, `empty`, `not ready: <why>` or `unknown: <why>`.
    pub fn text(&self) -> String {
        match self {
            SlotHealth::Ready => "ready".to_owned(),
            SlotHealth::Empty => "empty".to_owned(),
            SlotHealth::NotReady(why) => format!("not ready: {why}"),
            SlotHealth::Unknown(why) => format!("unknown: {why}"),
        }
    }
}

/// What the driver reports about a cluster now, next to what the database holds.
#[derive(Debug, Clone, Serialize)]
pub struct LiveView {
    /// Per slot (blue, green): `ready`, `empty`, `not ready: …` or `unknown: …`.
    pub health: Vec<(SlotName, String)>,
    /// The router's weights now, or `unknown: …`.
    pub router: Result<Weights, String>,
}

/// Asks the cluster's driver how each slot and the router are now, each
/// question bounded by `timeout`; what cannot be answered is "unknown: why".
pub async fn live_view(drivers: &Drivers, cluster: &Cluster, timeout: Duration) -> LiveView {
    let driver = match drivers.for_cluster(cluster) {
        Ok(d) => d,
        Err(e) => {
            let why = e.to_string();
            return LiveView {
                health: SlotName::ALL
                    .into_iter()
                    .map(|s| (s, SlotHealth::Unknown(why.clone()).text()))
                    .collect(),
                router: Err(format!("unknown: {why}")),
            };
        }
    };
    let bounded = |what: String| format!("no answer within {} ms ({what})", timeout.as_millis());
    let slot = |slot: SlotName| {
        let driver = driver.clone();
        let version = cluster.state.version(slot).cloned();
        async move {
            let h = match tokio::time::timeout(timeout, driver.slot_health(slot, version.as_ref()))
                .await
            {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => SlotHealth::Unknown(e.to_string()),
                Err(_) => SlotHealth::Unknown(bounded(format!("asking {slot}"))),
            };
            (slot, h.text())
        }
    };
    let router = async {
        match tokio::time::timeout(timeout, driver.observe()).await {
            Ok(Ok(o)) => Ok(o.weights),
            Ok(Err(e)) => Err(format!("unknown: {e}")),
            Err(_) => Err(format!(
                "unknown: {}",
                bounded("asking the router".to_owned())
            )),
        }
    };
    let (blue, green, router) = tokio::join!(slot(SlotName::Blue), slot(SlotName::Green), router);
    LiveView {
        health: vec![blue, green],
        router,
    }
}

/// Runs the driver's checks of `cluster` (`cluster test`), bounded by `timeout`.
pub async fn test_cluster(drivers: &Drivers, cluster: &Cluster, timeout: Duration) -> Vec<Check> {
    let driver = match drivers.for_cluster(cluster) {
        Ok(d) => d,
        Err(e) => {
            return vec![Check::failed(
                "driver config",
                e.to_string(),
                "remove the cluster and add it again with a valid config",
            )]
        }
    };
    let mut checks = vec![Check::ok(
        "driver config",
        format!("a valid {} config", cluster.driver.as_str()),
    )];
    match tokio::time::timeout(timeout, driver.test(&cluster.state)).await {
        Ok(found) => checks.extend(found),
        Err(_) => checks.push(Check::failed(
            "time",
            format!("the checks did not finish within {} s", timeout.as_secs()),
            "some part answers very slowly or not at all; check the addresses in the config",
        )),
    }
    checks
}

/// Checks a cluster's driver config when the cluster is created.
pub fn validate_config(kind: DriverKind, config: &serde_json::Value) -> Result<(), DomainError> {
    let gate = match kind {
        DriverKind::Simulated => simulated::SimulatedConfig::parse(config)?.health_gate,
        DriverKind::OipHaproxy => oip_haproxy::OipHaproxyConfig::parse(config)?.health_gate,
        DriverKind::Kubernetes => kubernetes::validate(config)?,
    };
    gate.check()
}

/// A cluster's driver and the config it was built from.
type Built = (serde_json::Value, Arc<dyn Driver>);

/// The drivers of this process, one per cluster, built on first use.
/// Simulated routers live here, so they outlast an operation runner that
/// stops (as a real router outlasts a crashed server).
#[derive(Clone, Default)]
pub struct Drivers {
    /// By cluster name, with the config it was built from: a cluster removed
    /// and added again (by any server) under the same name gets a new driver.
    built: Arc<Mutex<HashMap<String, Built>>>,
}

impl Drivers {
    /// Drops the driver built for a removed cluster (a cluster added again
    /// under that name gets a driver built from its new config).
    pub fn forget(&self, name: &str) {
        if let Ok(mut built) = self.built.lock() {
            built.remove(name);
        }
    }

    pub fn for_cluster(&self, cluster: &Cluster) -> DriverResult<Arc<dyn Driver>> {
        let mut built = self
            .built
            .lock()
            .map_err(|_| DriverError::new("driver registry poisoned"))?;
        if let Some((config, d)) = built.get(&cluster.name) {
            if *config == cluster.config {
                return Ok(d.clone());
            }
        }
        let invalid = |e: DomainError| {
            DriverError::new(format!(
                "cluster {} has an invalid config: {e}",
                cluster.name
            ))
        };
        let driver: Arc<dyn Driver> = match cluster.driver {
            DriverKind::Simulated => Arc::new(simulated::Simulated::new(
                simulated::SimulatedConfig::parse(&cluster.config).map_err(invalid)?,
                &cluster.state,
            )),
            DriverKind::OipHaproxy => Arc::new(oip_haproxy::OipHaproxy::new(
                oip_haproxy::OipHaproxyConfig::parse(&cluster.config).map_err(invalid)?,
            )?),
            DriverKind::Kubernetes => kubernetes::build(&cluster.config).map_err(invalid)?,
        };
        built.insert(
            cluster.name.clone(),
            (cluster.config.clone(), driver.clone()),
        );
        Ok(driver)
    }
}
