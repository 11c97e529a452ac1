//! Serving clusters: two slots (`blue`, `green`), each holding a deployed
//! version or none, and a router that gives each slot a traffic weight
//! (0–100, summing to 100). Also what "drift" means: a cluster serving a
//! version its environment does not pin.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, FullId, ModelId, Timestamp};

/// A cluster name: same shape as a model id.
pub fn parse_cluster_name(s: &str) -> Result<String, DomainError> {
    ModelId::parse(s)
        .map(|m| m.as_str().to_owned())
        .map_err(|_| {
            DomainError::Invalid(format!(
                "cluster name {s:?} is not valid: it must match [a-z0-9][a-z0-9._-]{{0,63}}"
            ))
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotName {
    Blue,
    Green,
}

impl SlotName {
    pub const ALL: [SlotName; 2] = [SlotName::Blue, SlotName::Green];

    pub fn as_str(self) -> &'static str {
        match self {
            SlotName::Blue => "blue",
            SlotName::Green => "green",
        }
    }

    pub fn other(self) -> SlotName {
        match self {
            SlotName::Blue => SlotName::Green,
            SlotName::Green => SlotName::Blue,
        }
    }
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SlotName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SlotName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                DomainError::Invalid(format!("unknown slot {s:?}: expected blue or green"))
            })
    }
}

/// How a cluster's slots and router are driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DriverKind {
    /// In-process, for the demo and fast tests; shown as "simulated".
    #[serde(rename = "simulated")]
    Simulated,
    /// Open Inference Protocol model servers per slot behind HAProxy.
    #[serde(rename = "oip+haproxy")]
    OipHaproxy,
    /// A Kubernetes namespace: a Deployment per slot and a Service whose
    /// selector picks the slot with traffic.
    #[serde(rename = "kubernetes")]
    Kubernetes,
}

impl DriverKind {
    /// Every driver there is, in the order the console offers them.
    pub const ALL: [DriverKind; 3] = [
        DriverKind::Simulated,
        DriverKind::OipHaproxy,
        DriverKind::Kubernetes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Simulated => "simulated",
            DriverKind::OipHaproxy => "oip+haproxy",
            DriverKind::Kubernetes => "kubernetes",
        }
    }

    /// Whether an operation of `kind` on a cluster of this driver (with
    /// `config`) updates the serving slot in place with the platform's own
    /// rollout (`Step::Roll`) rather than loading the idle slot and moving
    /// traffic between the slots. A Kubernetes Service has no weights, so a
    /// `rolling` update there is the Deployment's own (`kubectl set image`);
    /// an Argo Rollout (config `rollout`) is one object whose own strategy
    /// (blue-green or canary) moves the traffic, so every kind is in place.
    pub fn plans_in_place(
        self,
        kind: crate::operations::OperationKind,
        config: &serde_json::Value,
    ) -> bool {
        match self {
            DriverKind::Kubernetes if config.get("rollout").is_some() => true,
            DriverKind::Kubernetes => kind == crate::operations::OperationKind::Rolling,
            _ => false,
        }
    }
}

impl FromStr for DriverKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DriverKind::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "unknown driver {s:?}: expected simulated, oip+haproxy or kubernetes"
                ))
            })
    }
}

/// Traffic weights of the two slots, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Weights {
    pub blue: u8,
    pub green: u8,
}

impl Weights {
    /// Checks each weight is 0–100 and they sum to 100.
    pub fn new(blue: u8, green: u8) -> Result<Weights, DomainError> {
        if blue > 100 || green > 100 || u16::from(blue) + u16::from(green) != 100 {
            return Err(DomainError::Invalid(format!(
                "slot weights must each be 0–100 and sum to 100, not blue {blue} + green {green}"
            )));
        }
        Ok(Weights { blue, green })
    }

    /// All traffic on `slot`.
    pub fn all_on(slot: SlotName) -> Weights {
        Weights::split(slot, 100)
    }

    /// `percent` of the traffic on `slot`, the rest on the other.
    pub fn split(slot: SlotName, percent: u8) -> Weights {
        let p = percent.min(100);
        match slot {
            SlotName::Blue => Weights {
                blue: p,
                green: 100 - p,
            },
            SlotName::Green => Weights {
                blue: 100 - p,
                green: p,
            },
        }
    }

    pub fn of(self, slot: SlotName) -> u8 {
        match slot {
            SlotName::Blue => self.blue,
            SlotName::Green => self.green,
        }
    }

    /// The slot carrying all traffic, if one does.
    pub fn sole(self) -> Option<SlotName> {
        SlotName::ALL.into_iter().find(|s| self.of(*s) == 100)
    }
}

/// What the router and the slots serve: the version in each slot and the weights.
/// This is the value of a cluster's state history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub blue: Option<FullId>,
    pub green: Option<FullId>,
    pub weights: Weights,
}

impl Default for ClusterState {
    /// A new cluster: nothing deployed, the router pointing at blue.
    fn default() -> Self {
        ClusterState {
            blue: None,
            green: None,
            weights: Weights::all_on(SlotName::Blue),
        }
    }
}

impl ClusterState {
    pub fn version(&self, slot: SlotName) -> Option<&FullId> {
        match slot {
            SlotName::Blue => self.blue.as_ref(),
            SlotName::Green => self.green.as_ref(),
        }
    }

    pub fn with_version(&self, slot: SlotName, v: Option<FullId>) -> ClusterState {
        let mut s = self.clone();
        match slot {
            SlotName::Blue => s.blue = v,
            SlotName::Green => s.green = v,
        }
        s
    }

    pub fn with_weights(&self, weights: Weights) -> ClusterState {
        ClusterState {
            weights,
            ..self.clone()
        }
    }

    /// The versions that receive traffic, with their weights (an empty slot
    /// with weight serves nothing and is left out).
    pub fn serving(&self) -> Vec<(SlotName, &FullId, u8)> {
        SlotName::ALL
            .into_iter()
            .filter(|s| self.weights.of(*s) > 0)
            .filter_map(|s| self.version(s).map(|v| (s, v, self.weights.of(s))))
            .collect()
    }

    /// The slot with no traffic, if exactly one has none.
    pub fn idle_slot(&self) -> Option<SlotName> {
        self.weights.sole().map(SlotName::other)
    }

    /// The version carrying all traffic, if one does.
    pub fn sole_version(&self) -> Option<&FullId> {
        self.weights.sole().and_then(|s| self.version(s))
    }
}

/// One slot as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotView {
    pub slot: SlotName,
    pub full_id: Option<FullId>,
    pub weight: u8,
}

impl ClusterState {
    /// The state back from its slot views (as the API and console show it).
    pub fn from_slots(slots: &[SlotView]) -> Result<ClusterState, DomainError> {
        let find = |n: SlotName| slots.iter().find(|s| s.slot == n);
        let (blue, green) = (find(SlotName::Blue), find(SlotName::Green));
        Ok(ClusterState {
            blue: blue.and_then(|s| s.full_id.clone()),
            green: green.and_then(|s| s.full_id.clone()),
            weights: Weights::new(blue.map_or(0, |s| s.weight), green.map_or(0, |s| s.weight))?,
        })
    }

    pub fn slot_views(&self) -> Vec<SlotView> {
        SlotName::ALL
            .into_iter()
            .map(|s| SlotView {
                slot: s,
                full_id: self.version(s).cloned(),
                weight: self.weights.of(s),
            })
            .collect()
    }
}

/// A cluster, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub environment: String,
    pub driver: DriverKind,
    /// Driver settings (addresses, sockets, files); never secrets.
    pub config: serde_json::Value,
    pub slots: Vec<SlotView>,
    #[serde(skip)]
    pub state: ClusterState,
    /// What a rollback goes back to: the version that served all traffic
    /// before the last completed operation.
    pub rollback_to: Option<FullId>,
    /// The ledger event that set the current slots and weights.
    pub state_event_id: i64,
    pub state_since: Timestamp,
    pub created_at: Timestamp,
    pub created_by: String,
    /// The operation running now, if any.
    pub running_operation: Option<i64>,
    /// Analysis templates every operation on it runs (but a rollback), beside those the operation names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<String>,
    /// The drift watcher's last look: what really runs (or why it could not
    /// be read) and the drift it recorded; absent before its first look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<crate::drift::Observation>,
}

/// A cluster about to be created, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCluster {
    pub name: String,
    pub environment: String,
    pub driver: DriverKind,
    pub config: serde_json::Value,
}

/// One entry of a cluster's state history: what its slots held from `at`
/// on, and the ledger event that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterChange {
    pub at: Timestamp,
    pub slots: Vec<SlotView>,
    pub event_id: i64,
    pub actor: String,
    pub reason: Option<String>,
}

/// A version that serves traffic in a cluster but is not what the
/// environment pins for its model (or the model is not pinned there at all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub model_id: ModelId,
    pub serving: FullId,
    pub pinned: Option<FullId>,
}

/// Drift of a cluster whose state is `state`, given the environment's pins.
pub fn drift(state: &ClusterState, pins: &[FullId]) -> Vec<Drift> {
    let mut out: Vec<Drift> = Vec::new();
    for (_, v, _) in state.serving() {
        let pinned = pins.iter().find(|p| p.model_id == v.model_id);
        if pinned != Some(v) && !out.iter().any(|d| &d.serving == v) {
            out.push(Drift {
                model_id: v.model_id.clone(),
                serving: v.clone(),
                pinned: pinned.cloned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("a full id")
    }

    #[test]
    fn weights_must_each_be_between_0_and_100_and_sum_to_100() {
        assert!(Weights::new(90, 10).is_ok());
        assert!(Weights::new(100, 0).is_ok());
        assert!(Weights::new(50, 40).is_err());
        assert!(Weights::new(101, 0).is_err());
        assert!(
            Weights::new(200, 156).is_err(),
            "u8 wrap-around is not a sum of 100"
        );
    }

    #[test]
    fn a_split_puts_the_percentage_on_the_named_slot_and_the_rest_on_the_other() {
        assert_eq!(
            Weights::split(SlotName::Green, 10),
            Weights {
                blue: 90,
                green: 10
            }
        );
        assert_eq!(Weights::all_on(SlotName::Blue).sole(), Some(SlotName::Blue));
        assert_eq!(Weights::split(SlotName::Blue, 50).sole(), None);
    }

    #[test]
    fn slot_and_driver_names_read_back() {
        for s in SlotName::ALL {
            assert_eq!(s.as_str().parse::<SlotName>(), Ok(s));
        }
        assert!("red".parse::<SlotName>().is_err());
        assert_eq!(
            "oip+haproxy".parse::<DriverKind>(),
            Ok(DriverKind::OipHaproxy)
        );
        assert_eq!(
            "kubernetes".parse::<DriverKind>(),
            Ok(DriverKind::Kubernetes)
        );
        assert!("k8s".parse::<DriverKind>().is_err());
        assert!(parse_cluster_name("eu-1").is_ok());
        assert!(parse_cluster_name("EU 1").is_err());
    }

    #[test]
    fn only_slots_with_weight_and_a_version_serve() {
        let s = ClusterState {
            blue: Some(id("chat:1")),
            green: Some(id("chat:2")),
            weights: Weights::split(SlotName::Green, 10),
        };
        assert_eq!(s.serving().len(), 2);
        let all_blue = s.with_weights(Weights::all_on(SlotName::Blue));
        assert_eq!(
            all_blue.serving(),
            vec![(SlotName::Blue, &id("chat:1"), 100)]
        );
        assert_eq!(all_blue.idle_slot(), Some(SlotName::Green));
        assert!(ClusterState::default().serving().is_empty());
    }

    #[test]
    fn a_state_reads_back_from_its_slot_views() {
        let s = ClusterState {
            blue: Some(id("chat:1")),
            green: None,
            weights: Weights::split(SlotName::Blue, 90),
        };
        assert_eq!(ClusterState::from_slots(&s.slot_views()), Ok(s));
        assert!(
            ClusterState::from_slots(&[]).is_err(),
            "weights that do not sum to 100"
        );
    }

    #[test]
    fn a_cluster_drifts_when_it_serves_a_version_its_environment_does_not_pin() {
        let s = ClusterState {
            blue: Some(id("chat:1")),
            green: Some(id("chat:2")),
            weights: Weights::all_on(SlotName::Green),
        };
        assert!(
            drift(&s, &[id("chat:2")]).is_empty(),
            "serving the pin is no drift"
        );
        let d = drift(&s, &[id("chat:1")]);
        assert_eq!(
            d,
            vec![Drift {
                model_id: id("chat:2").model_id,
                serving: id("chat:2"),
                pinned: Some(id("chat:1"))
            }]
        );
        let unpinned = drift(&s, &[]);
        assert_eq!(
            unpinned[0].pinned, None,
            "an unpinned model served is drift too"
        );
        assert!(
            drift(&s, &[id("chat:2"), id("embed:1")]).is_empty(),
            "pins of other models do not matter"
        );
        // Switched to another model's version: drift, compared with that model's pin.
        let other = ClusterState {
            blue: Some(id("chat:2")),
            green: Some(id("embed:1")),
            weights: Weights::all_on(SlotName::Green),
        };
        assert_eq!(
            drift(&other, &[id("chat:2"), id("embed:2")]),
            vec![Drift {
                model_id: id("embed:1").model_id,
                serving: id("embed:1"),
                pinned: Some(id("embed:2"))
            }]
        );
        assert_eq!(
            drift(&other, &[id("chat:2")])[0].pinned,
            None,
            "another model's pin is never the one compared"
        );
    }
}
