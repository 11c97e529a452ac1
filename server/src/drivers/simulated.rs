//! The simulated driver: slots and router in memory. For the demo and fast
//! tests; clusters using it are labelled "simulated" wherever they show.
//! Faults can be configured per cluster to exercise failure paths, and the
//! router can be kept in a file (`state_file`) so that it outlives the
//! server process, as a real router outlives a crashed server.
//!
//! A change made outside Switchyard (someone loading another version into a
//! slot by hand, or moving traffic) is what the drift watcher must see; for
//! the demo and tests, [`Simulated::change_by_hand`] (in-process router)
//! and [`change_state_file_by_hand`] (a cluster with `state_file`; any
//! process can) make one. `running` then reports it, as a real platform would.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use switchyard_domain::clusters::{ClusterState, SlotName, Weights};
use switchyard_domain::operations::{GatePolicy, Traffic};
use switchyard_domain::{DomainError, FullId};
use tokio::sync::Mutex;

use super::{Check, Driver, DriverError, DriverResult, Observed, Running, SlotHealth};

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
    /// Versions that answer this share (percent) of their simulated requests with errors.
    #[serde(default)]
    pub error_percent: BTreeMap<String, f64>,
    /// Simulated requests per second through the router (default 1000), split by weight.
    pub requests_per_second: Option<u32>,
    /// How long each action takes, to watch (or interrupt) an operation
    /// mid-way: a load or a traffic shift takes effect half-way through.
    #[serde(default)]
    pub action_ms: u64,
    /// A file holding the router's state (slots and weights) across server
    /// restarts; without it the router lives in memory and starts from the
    /// database's state.
    pub state_file: Option<PathBuf>,
    /// The error-rate gate of rolling updates.
    #[serde(default)]
    pub health_gate: GatePolicy,
}

impl SimulatedConfig {
    pub fn parse(config: &serde_json::Value) -> Result<SimulatedConfig, DomainError> {
        if config.is_null() {
            return Ok(SimulatedConfig::default());
        }
        let c: SimulatedConfig = serde_json::from_value(config.clone())
            .map_err(|e| DomainError::Invalid(format!("simulated driver config: {e}")))?;
        if c.error_percent.values().any(|p| !(0.0..=100.0).contains(p)) {
            return Err(DomainError::Invalid(
                "simulated driver config: error_percent values are 0 to 100".to_owned(),
            ));
        }
        Ok(c)
    }
}

struct Router {
    state: ClusterState,
    /// Simulated requests and errors per slot (blue, green), fractional.
    served: [(f64, f64); 2],
    counted_until: Instant,
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
    /// A simulated cluster starting as its state file says, or else as the
    /// database last recorded it.
    pub fn new(config: SimulatedConfig, state: &ClusterState) -> Simulated {
        let state = config
            .state_file
            .as_ref()
            .and_then(|f| read_state(f).ok().flatten())
            .unwrap_or_else(|| state.clone());
        Simulated {
            config,
            router: Mutex::new(Router {
                state,
                served: [(0.0, 0.0); 2],
                counted_until: Instant::now(),
            }),
        }
    }

    async fn pause(&self, share: u64) {
        if self.config.action_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.action_ms * share / 2)).await;
        }
    }

    fn named(list: &[String], id: &FullId) -> bool {
        list.iter().any(|v| v == &id.to_string())
    }

    /// The router, first brought up to date with its state file and the
    /// simulated requests served since it was last looked at.
    async fn router(&self) -> DriverResult<tokio::sync::MutexGuard<'_, Router>> {
        let mut r = self.router.lock().await;
        if let Some(f) = &self.config.state_file {
            if let Some(s) = read_state(f)? {
                r.state = s;
            }
        }
        let now = Instant::now();
        let seconds = now.duration_since(r.counted_until).as_secs_f64();
        let rate = f64::from(self.config.requests_per_second.unwrap_or(1000));
        for slot in SlotName::ALL {
            let share = f64::from(r.state.weights.of(slot)) / 100.0;
            let Some(v) = r.state.version(slot).map(ToString::to_string) else {
                continue;
            };
            let requests = seconds * rate * share;
            let failing = self.config.error_percent.get(&v).copied().unwrap_or(0.0) / 100.0;
            let served = &mut r.served[index(slot)];
            served.0 += requests;
            served.1 += requests * failing;
        }
        r.counted_until = now;
        Ok(r)
    }

    /// A change made outside Switchyard, for the demo and tests: `slot` now
    /// holds `version` (or nothing) and the router sends `weights` (`None`:
    /// as they are), without anything being recorded. What the drift
    /// watcher must notice.
    pub async fn change_by_hand(
        &self,
        slot: SlotName,
        version: Option<FullId>,
        weights: Option<Weights>,
    ) -> DriverResult<()> {
        let mut r = self.router().await?;
        let mut changed = r.state.with_version(slot, version);
        if let Some(w) = weights {
            changed = changed.with_weights(w);
        }
        self.set(&mut r, changed)
    }

    /// Changes the router's state (in its file too, when it has one).
    fn set(&self, r: &mut Router, state: ClusterState) -> DriverResult<()> {
        if let Some(f) = &self.config.state_file {
            write_state(f, &state)?;
        }
        r.state = state;
        Ok(())
    }
}

/// The router state kept in `file`, if the file exists.
pub fn read_state(file: &std::path::Path) -> DriverResult<Option<ClusterState>> {
    match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            DriverError::new(format!(
                "simulated: state file {} is not valid: {e}",
                file.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DriverError::new(format!(
            "simulated: cannot read {}: {e}",
            file.display()
        ))),
    }
}

/// [`Simulated::change_by_hand`] for a cluster configured with
/// `state_file`, from any process (the demo, a test, a person at a shell):
/// the file's `slot` now holds `version` (or nothing), and the router sends
/// `weights` when given. A file that does not exist yet starts from `from`
/// (the cluster's recorded state).
pub fn change_state_file_by_hand(
    file: &std::path::Path,
    from: &ClusterState,
    slot: SlotName,
    version: Option<FullId>,
    weights: Option<Weights>,
) -> DriverResult<()> {
    let mut state = read_state(file)?
        .unwrap_or_else(|| from.clone())
        .with_version(slot, version);
    if let Some(w) = weights {
        state = state.with_weights(w);
    }
    write_state(file, &state)
}

fn write_state(file: &std::path::Path, state: &ClusterState) -> DriverResult<()> {
    let fail =
        |e: String| DriverError::new(format!("simulated: cannot write {}: {e}", file.display()));
    let text = serde_json::to_string(state).map_err(|e| fail(e.to_string()))?;
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, file).map_err(|e| fail(e.to_string()))
}

#[async_trait]
impl Driver for Simulated {
    async fn test(&self, state: &ClusterState) -> Vec<Check> {
        let mut checks = vec![Check::ok(
            "simulated router",
            "runs inside the Switchyard server; nothing to connect (simulated clusters serve no real requests)",
        )];
        if let Some(path) = &self.config.state_file {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let found = match dir {
                Some(d) => tokio::fs::metadata(d)
                    .await
                    .map(|m| m.is_dir())
                    .unwrap_or(false),
                None => true,
            };
            checks.push(if found {
                Check::ok("state file", format!("{} can be kept", path.display()))
            } else {
                Check::failed(
                    "state file",
                    format!("the folder of {} does not exist", path.display()),
                    "create the folder, or register the cluster with another state_file",
                )
            });
        }
        for slot in SlotName::ALL {
            let version = state.version(slot);
            let health = self.slot_health(slot, version).await;
            checks.push(match health {
                Ok(SlotHealth::Ready) | Ok(SlotHealth::Empty) => Check::ok(
                    format!("slot {slot}"),
                    version.map_or("empty".to_owned(), |v| format!("{v} ready")),
                ),
                Ok(h) => Check::failed(
                    format!("slot {slot}"),
                    h.text(),
                    "run a rollback or deploy another version",
                ),
                Err(e) => Check::failed(
                    format!("slot {slot}"),
                    e.to_string(),
                    "run a rollback or deploy another version",
                ),
            });
        }
        checks
    }

    async fn load(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.pause(1).await;
        {
            let mut r = self.router().await?;
            if r.state.weights.of(slot) > 0 {
                return Err(DriverError::new(format!(
                    "simulated: {slot} carries traffic and cannot be loaded"
                )));
            }
            let emptied = r.state.with_version(slot, None);
            self.set(&mut r, emptied)?;
            if Self::named(&self.config.fail_load, full_id) {
                return Err(DriverError::new(format!(
                    "simulated: {full_id} failed to load into {slot}"
                )));
            }
            let loaded = r.state.with_version(slot, Some(full_id.clone()));
            self.set(&mut r, loaded)?;
        }
        self.pause(1).await;
        Ok(())
    }

    async fn wait_ready(
        &self,
        slot: SlotName,
        full_id: &FullId,
        _timeout: Duration,
    ) -> DriverResult<()> {
        self.pause(2).await;
        let r = self.router().await?;
        match r.state.version(slot) {
            Some(v) if v == full_id => Ok(()),
            other => Err(DriverError::new(format!(
                "simulated: {slot} holds {}, not {full_id}",
                other.map_or("nothing".to_owned(), ToString::to_string)
            ))),
        }
    }

    async fn unload(&self, slot: SlotName) -> DriverResult<()> {
        self.pause(1).await;
        let mut r = self.router().await?;
        if r.state.weights.of(slot) > 0 {
            return Err(DriverError::new(format!(
                "simulated: {slot} carries traffic and cannot be unloaded"
            )));
        }
        let emptied = r.state.with_version(slot, None);
        self.set(&mut r, emptied)
    }

    async fn smoke(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        if Self::named(&self.config.fail_smoke, full_id) {
            self.pause(2).await;
            return Err(DriverError::new(format!(
                "simulated: the smoke request to {full_id} in {slot} failed"
            )));
        }
        self.wait_ready(slot, full_id, Duration::ZERO).await
    }

    async fn shift(&self, weights: Weights) -> DriverResult<()> {
        self.pause(1).await;
        {
            let mut r = self.router().await?;
            let shifted = r.state.with_weights(weights);
            self.set(&mut r, shifted)?;
        }
        self.pause(1).await;
        Ok(())
    }

    async fn gate(&self, state: &ClusterState) -> DriverResult<()> {
        self.pause(2).await;
        let r = self.router().await?;
        if let Some(p) = self.config.fail_gate_at {
            // Any slot at exactly that share: the shares a rolling update steps through.
            if SlotName::ALL
                .into_iter()
                .any(|s| r.state.weights.of(s) == p && state.version(s).is_some())
            {
                return Err(DriverError::new(format!(
                    "simulated: health gate failed with {p}% on the new version"
                )));
            }
        }
        Ok(())
    }

    async fn observe(&self) -> DriverResult<Observed> {
        Ok(Observed {
            weights: self.router().await?.state.weights,
        })
    }

    /// What the in-memory (or state-file) router holds in `slot`: what
    /// Switchyard loaded, unless it was changed by hand since.
    async fn running(&self, slot: SlotName) -> DriverResult<Running> {
        let r = self.router().await?;
        Ok(match r.state.version(slot) {
            Some(v) => Running::Version { version: v.clone() },
            None => Running::Nothing,
        })
    }

    async fn traffic(&self, slot: SlotName) -> DriverResult<Traffic> {
        let (requests, errors) = self.router().await?.served[index(slot)];
        // Whole requests only; rounding down keeps errors ≤ requests.
        Ok(Traffic {
            requests: requests as u64,
            errors: (errors as u64).min(requests as u64),
        })
    }

    fn gate_policy(&self) -> GatePolicy {
        self.config.health_gate
    }

    async fn slot_health(
        &self,
        slot: SlotName,
        version: Option<&FullId>,
    ) -> DriverResult<SlotHealth> {
        let r = self.router().await?;
        Ok(match (r.state.version(slot), version) {
            (None, None) => SlotHealth::Empty,
            (Some(held), Some(v)) if held == v => SlotHealth::Ready,
            (held, _) => SlotHealth::NotReady(format!(
                "simulated: {slot} holds {}",
                held.map_or("nothing".to_owned(), ToString::to_string)
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("a full id")
    }

    #[tokio::test]
    async fn running_reports_what_the_router_holds_including_a_change_made_by_hand() {
        let recorded = ClusterState {
            blue: Some(id("chat:v1")),
            green: None,
            weights: Weights::all_on(SlotName::Blue),
        };
        let sim = Simulated::new(SimulatedConfig::default(), &recorded);
        assert_eq!(
            sim.running(SlotName::Blue).await,
            Ok(Running::Version { version: id("chat:v1") })
        );
        assert_eq!(sim.running(SlotName::Green).await, Ok(Running::Nothing));
        sim.change_by_hand(SlotName::Blue, Some(id("chat:v9")), None)
            .await
            .expect("changed");
        assert_eq!(
            sim.running(SlotName::Blue).await,
            Ok(Running::Version { version: id("chat:v9") })
        );
        assert_eq!(
            sim.observe().await.map(|o| o.weights),
            Ok(Weights::all_on(SlotName::Blue)),
            "weights left as they were"
        );
    }

    #[tokio::test]
    async fn a_state_file_changed_by_hand_is_what_another_process_router_runs() {
        let file = std::env::temp_dir().join(format!(
            "sy-sim-by-hand-{:016x}.json",
            rand::random::<u64>()
        ));
        let recorded = ClusterState {
            blue: Some(id("chat:v1")),
            green: Some(id("chat:v0")),
            weights: Weights::all_on(SlotName::Blue),
        };
        let config = SimulatedConfig {
            state_file: Some(file.clone()),
            ..SimulatedConfig::default()
        };
        let sim = Simulated::new(config, &recorded);
        change_state_file_by_hand(
            &file,
            &recorded,
            SlotName::Green,
            Some(id("chat:v7")),
            Some(Weights::all_on(SlotName::Green)),
        )
        .expect("written");
        assert_eq!(
            sim.running(SlotName::Green).await,
            Ok(Running::Version { version: id("chat:v7") })
        );
        assert_eq!(
            sim.observe().await.map(|o| o.weights),
            Ok(Weights::all_on(SlotName::Green))
        );
        assert_eq!(
            sim.running(SlotName::Blue).await,
            Ok(Running::Version { version: id("chat:v1") }),
            "the other slot as recorded"
        );
        let _ = std::fs::remove_file(&file);
    }
}
