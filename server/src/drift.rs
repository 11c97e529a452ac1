//! The drift watcher: every `SWITCHYARD_DRIFT_INTERVAL_SECS` (default 60)
//! each server asks the driver of every cluster without a running operation
//! what really runs (the router's weights and each slot's `Running`), each
//! look bounded by a timeout, and gives the look to
//! `ClusterStore::record_observation`, which judges it (`drift::judge`) and
//! records `cluster.drift_detected` / `cluster.drift_cleared` when the drift
//! changed — re-checked in the store's transaction, so several servers on
//! one database record each change once. A driver that cannot answer
//! records no drift (an outage is not drift): the reason is logged and kept
//! for the cluster page ("could not read what runs: …").

use std::collections::HashMap;
use std::time::Duration;

use switchyard_domain::clusters::{Cluster, SlotName};
use switchyard_domain::drift::{self, Sighting, SlotSeen};
use switchyard_domain::Timestamp;
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use crate::drivers::{Drivers, Running};
use crate::store::clusters::ObservationOutcome;
use crate::store::DynStore;

/// How often the watcher looks when `SWITCHYARD_DRIFT_INTERVAL_SECS` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How long one look at one cluster may take before it counts as unreadable.
pub const LOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// The first pass, soon after start so a restarted server catches up.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(3);

/// The watcher's interval from `SWITCHYARD_DRIFT_INTERVAL_SECS` (1–86400 seconds; unset: 60).
pub fn interval_from_env() -> anyhow::Result<Duration> {
    parse_interval(std::env::var("SWITCHYARD_DRIFT_INTERVAL_SECS").ok().as_deref())
}

fn parse_interval(value: Option<&str>) -> anyhow::Result<Duration> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_INTERVAL),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=86_400).contains(&n) => Ok(Duration::from_secs(n)),
            _ => anyhow::bail!(
                "SWITCHYARD_DRIFT_INTERVAL_SECS={v:?} must be a whole number of seconds from 1 to 86400 (default 60)"
            ),
        },
    }
}

/// Starts the watcher: a pass every `every`, the first soon after start.
/// Errors are logged and the watcher carries on.
pub fn spawn(store: DynStore, drivers: Drivers, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = interval_at(Instant::now() + FIRST_PASS_AFTER.min(every), every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut watcher = Watcher::new(store, drivers, LOOK_TIMEOUT);
        loop {
            ticks.tick().await;
            watcher.pass().await;
        }
    })
}

/// The drift watcher's passes. It remembers why each unreadable cluster
/// could not be read, so a driver that stays down is logged once per
/// reason, not at every pass.
pub struct Watcher {
    store: DynStore,
    drivers: Drivers,
    timeout: Duration,
    unreadable: HashMap<String, String>,
}

impl Watcher {
    /// A watcher whose looks at one cluster each take at most `timeout`.
    pub fn new(store: DynStore, drivers: Drivers, timeout: Duration) -> Watcher {
        Watcher {
            store,
            drivers,
            timeout,
            unreadable: HashMap::new(),
        }
    }

    /// One pass over every cluster without a running operation; answers
    /// what was done with each look, by cluster name.
    pub async fn pass(&mut self) -> Vec<(String, ObservationOutcome)> {
        let clusters = match self.store.list_clusters().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "the drift watcher cannot list the clusters; it will try again");
                return Vec::new();
            }
        };
        let mut done = Vec::new();
        for cluster in clusters
            .into_iter()
            .filter(|c| c.running_operation.is_none())
        {
            let seen = look(&self.drivers, &cluster, self.timeout).await;
            match &seen {
                Err(why) => {
                    if self.unreadable.get(&cluster.name) != Some(why) {
                        tracing::warn!(cluster = %cluster.name, error = %why,
                            "the drift watcher cannot read what the cluster runs; no drift is recorded or cleared until it can");
                        self.unreadable.insert(cluster.name.clone(), why.clone());
                    }
                }
                Ok(_) => {
                    if self.unreadable.remove(&cluster.name).is_some() {
                        tracing::info!(cluster = %cluster.name, "the drift watcher reads what the cluster runs again");
                    }
                }
            }
            match self
                .store
                .record_observation(&cluster.name, cluster.state_event_id, seen, Timestamp::now())
                .await
            {
                Ok(outcome) => {
                    if let ObservationOutcome::Recorded {
                        action, findings, ..
                    } = &outcome
                    {
                        tracing::warn!(cluster = %cluster.name, %action,
                            drift = %drift::summary(findings, &cluster.environment), "drift changed");
                    }
                    done.push((cluster.name, outcome));
                }
                Err(e) => tracing::error!(cluster = %cluster.name, error = %e,
                    "the drift watcher could not record its look; it will try again"),
            }
        }
        done
    }
}

/// Asks `cluster`'s driver for the router's weights and what each slot
/// runs, all within `timeout`; why not, in words, when it cannot say.
pub async fn look(
    drivers: &Drivers,
    cluster: &Cluster,
    timeout: Duration,
) -> Result<Sighting, String> {
    let driver = drivers.for_cluster(cluster).map_err(|e| e.to_string())?;
    let asked = async {
        let (observed, blue, green) = tokio::join!(
            driver.observe(),
            driver.running(SlotName::Blue),
            driver.running(SlotName::Green)
        );
        let seen = |slot: SlotName, r: Result<Running, crate::drivers::DriverError>| {
            r.map(|running| SlotSeen {
                slot,
                running: match running {
                    Running::Version { version } => drift::Running::Version { version },
                    Running::Nothing => drift::Running::Nothing,
                    Running::Unclear { detail } => drift::Running::Unclear { detail },
                },
            })
            .map_err(|e| format!("slot {slot}: {e}"))
        };
        Ok::<_, String>(Sighting {
            weights: observed.map_err(|e| format!("router: {e}"))?.weights,
            slots: vec![seen(SlotName::Blue, blue)?, seen(SlotName::Green, green)?],
        })
    };
    match tokio::time::timeout(timeout, asked).await {
        Ok(answer) => answer,
        Err(_) => Err(format!(
            "no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_60_seconds_unless_set_and_a_bad_value_names_the_fix() {
        assert_eq!(parse_interval(None).ok(), Some(DEFAULT_INTERVAL));
        assert_eq!(parse_interval(Some("")).ok(), Some(DEFAULT_INTERVAL));
        assert_eq!(parse_interval(Some("5")).ok(), Some(Duration::from_secs(5)));
        for bad in ["0", "-1", "1.5", "a minute", "86401"] {
            let e = parse_interval(Some(bad)).expect_err(bad).to_string();
            assert!(e.contains("from 1 to 86400"), "{e}");
        }
    }
}
