//! Observed drift: what a cluster really runs, as its driver reports it,
//! judged against what its environment pins and what Switchyard recorded.
//!
//! `clusters::drift` answers from the recorded state alone (what Switchyard
//! itself put there); this module answers from an observation — the
//! router's weights and each slot's running version read from the serving
//! platform — so that a version changed by hand, or a slot whose replicas
//! disagree, is seen too. The drift watcher (server) observes every cluster
//! without a running operation, calls [`judge`], and records a ledger event
//! when the findings' [`key`] changes: `cluster.drift_detected` with the
//! findings, or `cluster.drift_cleared` once there are none.

use serde::{Deserialize, Serialize};

use crate::clusters::{ClusterState, SlotName, Weights};
use crate::{FullId, Timestamp};

/// What one slot really runs, as the serving platform reported it (the same
/// JSON shape as the server's `drivers::Running`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Running {
    /// Every ready replica serves exactly this version.
    Version { version: FullId },
    /// Nothing is loaded, or no replica is ready.
    Nothing,
    /// Something that is not one registered version (replicas on different
    /// versions, an image naming no version); `detail` says what, in words.
    Unclear { detail: String },
}

impl Running {
    /// The version, if the slot runs exactly one.
    pub fn version(&self) -> Option<&FullId> {
        match self {
            Running::Version { version } => Some(version),
            _ => None,
        }
    }

    /// `chat:v2`, `nothing` or `unclear (…)`.
    pub fn words(&self) -> String {
        match self {
            Running::Version { version } => version.to_string(),
            Running::Nothing => "nothing".to_owned(),
            Running::Unclear { detail } => format!("unclear ({detail})"),
        }
    }
}

/// One slot as it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSeen {
    pub slot: SlotName,
    pub running: Running,
}

/// A cluster as its driver reported it at one moment: the router's weights
/// and what each slot runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub weights: Weights,
    pub slots: Vec<SlotSeen>,
}

impl Sighting {
    pub fn running(&self, slot: SlotName) -> Option<&Running> {
        self.slots.iter().find(|s| s.slot == slot).map(|s| &s.running)
    }
}

/// One thing wrong with what a cluster serves, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A slot with traffic runs a version its environment does not pin for
    /// its model (`pinned` is the pin, or `None`: the model is not pinned there).
    NotPinned {
        slot: SlotName,
        weight: u8,
        serving: FullId,
        pinned: Option<FullId>,
    },
    /// A slot with traffic runs something other than what Switchyard
    /// recorded in it: someone changed it outside Switchyard.
    ChangedByHand {
        slot: SlotName,
        weight: u8,
        running: Running,
        recorded: Option<FullId>,
    },
    /// The router's weights are not the recorded ones: someone moved traffic
    /// outside Switchyard.
    WeightsChangedByHand { observed: Weights, recorded: Weights },
}

impl Finding {
    /// What identifies the finding across watcher passes: the same facts
    /// give the same key (a slot's weight is left out unless it is the
    /// finding, so traffic moving between two drifted slots is not news).
    pub fn key(&self) -> String {
        match self {
            Finding::NotPinned {
                slot,
                serving,
                pinned,
                ..
            } => format!(
                "not_pinned:{slot}:{serving}:{}",
                pinned.as_ref().map_or("-".to_owned(), ToString::to_string)
            ),
            Finding::ChangedByHand {
                slot,
                running,
                recorded,
                ..
            } => format!(
                "changed_by_hand:{slot}:{}:{}",
                running.words(),
                recorded.as_ref().map_or("-".to_owned(), ToString::to_string)
            ),
            Finding::WeightsChangedByHand { observed, recorded } => format!(
                "weights_changed_by_hand:{}/{}:{}/{}",
                observed.blue, observed.green, recorded.blue, recorded.green
            ),
        }
    }

    /// The finding in words, for the console, chat and logs, e.g.
    /// `blue (100%) runs chat:v9; production pins chat:v2`.
    pub fn words(&self, environment: &str) -> String {
        match self {
            Finding::NotPinned {
                slot,
                weight,
                serving,
                pinned: Some(p),
            } => format!("{slot} ({weight}%) runs {serving}; {environment} pins {p}"),
            Finding::NotPinned {
                slot,
                weight,
                serving,
                pinned: None,
            } => format!(
                "{slot} ({weight}%) runs {serving}; {environment} pins no version of {}",
                serving.model_id
            ),
            Finding::ChangedByHand {
                slot,
                weight,
                running,
                recorded,
            } => format!(
                "{slot} ({weight}%) runs {} but Switchyard recorded {} there (changed outside Switchyard)",
                running.words(),
                recorded
                    .as_ref()
                    .map_or("nothing".to_owned(), ToString::to_string)
            ),
            Finding::WeightsChangedByHand { observed, recorded } => format!(
                "the router sends blue {}% / green {}% but Switchyard recorded blue {}% / green {}% (changed outside Switchyard)",
                observed.blue, observed.green, recorded.blue, recorded.green
            ),
        }
    }

    /// The version this finding says is served, if it names one.
    pub fn serving(&self) -> Option<&FullId> {
        match self {
            Finding::NotPinned { serving, .. } => Some(serving),
            Finding::ChangedByHand { running, .. } => running.version(),
            Finding::WeightsChangedByHand { .. } => None,
        }
    }
}

/// The findings of a cluster seen as `seen`, recorded as `recorded`, in an
/// environment pinning `pins`, in a stable order (weights first, then per
/// slot blue before green). Only slots with traffic (by the observed
/// weights) can drift: an idle slot holding the previous version is the
/// rollback target, not drift. A slot the sighting does not mention is
/// taken as running what was recorded.
pub fn judge(pins: &[FullId], recorded: &ClusterState, seen: &Sighting) -> Vec<Finding> {
    let mut out = Vec::new();
    if seen.weights != recorded.weights {
        out.push(Finding::WeightsChangedByHand {
            observed: seen.weights,
            recorded: recorded.weights,
        });
    }
    for slot in SlotName::ALL {
        let weight = seen.weights.of(slot);
        if weight == 0 {
            continue;
        }
        let was = recorded.version(slot);
        let running = match seen.running(slot) {
            Some(r) => r.clone(),
            None => was.map_or(Running::Nothing, |v| Running::Version { version: v.clone() }),
        };
        let same_as_recorded = match (&running, was) {
            (Running::Version { version }, Some(w)) => version == w,
            (Running::Nothing, None) => true,
            _ => false,
        };
        if !same_as_recorded {
            out.push(Finding::ChangedByHand {
                slot,
                weight,
                running: running.clone(),
                recorded: was.cloned(),
            });
        }
        if let Running::Version { version } = &running {
            let pinned = pins.iter().find(|p| p.model_id == version.model_id);
            if pinned != Some(version) {
                out.push(Finding::NotPinned {
                    slot,
                    weight,
                    serving: version.clone(),
                    pinned: pinned.cloned(),
                });
            }
        }
    }
    out
}

/// The key of a set of findings (empty for none): the watcher records an
/// event only when it changes.
pub fn key(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(Finding::key)
        .collect::<Vec<_>>()
        .join(";")
}

/// What changed between the findings last recorded and the findings now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The same findings as last recorded (or none before and none now).
    Unchanged,
    /// Drift now, different from what was recorded (none, or other findings).
    Detected,
    /// No drift now; there was some.
    Cleared,
}

impl Change {
    pub fn between(recorded: &[Finding], now: &[Finding]) -> Change {
        if key(recorded) == key(now) {
            Change::Unchanged
        } else if now.is_empty() {
            Change::Cleared
        } else {
            Change::Detected
        }
    }
}

/// The watcher's last look at a cluster, kept with it: what it saw (or
/// why it could not read it) and the findings recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// When the watcher last looked.
    pub at: Timestamp,
    /// What it saw, when the driver answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Sighting>,
    /// Why the driver could not say what runs (a peer down, a driver that
    /// cannot read its platform); an outage is not drift, so the findings
    /// stay as last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// The drift last recorded in the ledger (empty: none).
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// The ledger event that recorded them (`cluster.drift_detected` or
    /// `cluster.drift_cleared`), and since when they hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// The one-line summary of findings, e.g. for a chat message and the ledger's details.
pub fn summary(findings: &[Finding], environment: &str) -> String {
    if findings.is_empty() {
        return format!("serves what {environment} pins, as recorded");
    }
    findings
        .iter()
        .map(|f| f.words(environment))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("a full id")
    }

    fn runs(s: &str) -> Running {
        Running::Version { version: id(s) }
    }

    fn state(blue: Option<&str>, green: Option<&str>, weights: Weights) -> ClusterState {
        ClusterState {
            blue: blue.map(id),
            green: green.map(id),
            weights,
        }
    }

    fn seen(blue: Running, green: Running, weights: Weights) -> Sighting {
        Sighting {
            weights,
            slots: vec![
                SlotSeen {
                    slot: SlotName::Blue,
                    running: blue,
                },
                SlotSeen {
                    slot: SlotName::Green,
                    running: green,
                },
            ],
        }
    }

    const ALL_BLUE: Weights = Weights {
        blue: 100,
        green: 0,
    };

    #[test]
    fn a_cluster_running_what_was_recorded_and_pinned_has_no_drift() {
        let recorded = state(Some("chat:v2"), Some("chat:v1"), ALL_BLUE);
        let s = seen(runs("chat:v2"), runs("chat:v1"), ALL_BLUE);
        assert_eq!(judge(&[id("chat:v2")], &recorded, &s), vec![]);
    }

    #[test]
    fn a_version_changed_by_hand_in_the_serving_slot_is_both_changed_and_not_pinned() {
        let recorded = state(Some("chat:v2"), None, ALL_BLUE);
        let s = seen(runs("chat:v9"), Running::Nothing, ALL_BLUE);
        let f = judge(&[id("chat:v2")], &recorded, &s);
        assert_eq!(
            f,
            vec![
                Finding::ChangedByHand {
                    slot: SlotName::Blue,
                    weight: 100,
                    running: runs("chat:v9"),
                    recorded: Some(id("chat:v2")),
                },
                Finding::NotPinned {
                    slot: SlotName::Blue,
                    weight: 100,
                    serving: id("chat:v9"),
                    pinned: Some(id("chat:v2")),
                },
            ]
        );
        assert_eq!(
            f[1].words("production"),
            "blue (100%) runs chat:v9; production pins chat:v2"
        );
        assert!(f[0].words("production").contains("changed outside Switchyard"));
    }

    #[test]
    fn the_idle_slot_never_drifts_whatever_it_holds() {
        let recorded = state(Some("chat:v2"), Some("chat:v1"), ALL_BLUE);
        let s = seen(runs("chat:v2"), runs("other:v7"), ALL_BLUE);
        assert_eq!(judge(&[id("chat:v2")], &recorded, &s), vec![]);
    }

    #[test]
    fn serving_a_recorded_version_the_environment_does_not_pin_is_drift_naming_the_pin_or_none() {
        let recorded = state(Some("chat:v1"), None, ALL_BLUE);
        let s = seen(runs("chat:v1"), Running::Nothing, ALL_BLUE);
        let pinned = judge(&[id("chat:v2")], &recorded, &s);
        assert_eq!(
            pinned,
            vec![Finding::NotPinned {
                slot: SlotName::Blue,
                weight: 100,
                serving: id("chat:v1"),
                pinned: Some(id("chat:v2")),
            }]
        );
        let unpinned = judge(&[id("other:v1")], &recorded, &s);
        assert_eq!(
            unpinned[0].words("staging"),
            "blue (100%) runs chat:v1; staging pins no version of chat"
        );
    }

    #[test]
    fn an_unclear_or_empty_slot_with_traffic_differs_from_the_recorded_version() {
        let recorded = state(Some("chat:v2"), None, ALL_BLUE);
        let unclear = Running::Unclear {
            detail: "2 pods on chat:v2, 1 on chat:v3".into(),
        };
        let f = judge(
            &[id("chat:v2")],
            &recorded,
            &seen(unclear.clone(), Running::Nothing, ALL_BLUE),
        );
        assert_eq!(
            f,
            vec![Finding::ChangedByHand {
                slot: SlotName::Blue,
                weight: 100,
                running: unclear,
                recorded: Some(id("chat:v2")),
            }]
        );
        let empty = judge(
            &[id("chat:v2")],
            &recorded,
            &seen(Running::Nothing, Running::Nothing, ALL_BLUE),
        );
        assert!(
            empty[0].words("production").starts_with("blue (100%) runs nothing but Switchyard recorded chat:v2"),
            "{empty:?}"
        );
        // A new cluster: nothing recorded, nothing running — nothing served, no drift.
        let new = ClusterState::default();
        assert_eq!(
            judge(&[], &new, &seen(Running::Nothing, Running::Nothing, ALL_BLUE)),
            vec![]
        );
    }

    #[test]
    fn traffic_moved_by_hand_onto_the_rollback_target_is_seen_by_the_observed_weights() {
        let recorded = state(Some("chat:v2"), Some("chat:v1"), ALL_BLUE);
        let all_green = Weights::all_on(SlotName::Green);
        let f = judge(
            &[id("chat:v2")],
            &recorded,
            &seen(runs("chat:v2"), runs("chat:v1"), all_green),
        );
        assert_eq!(
            f.iter().map(Finding::key).collect::<Vec<_>>(),
            vec![
                "weights_changed_by_hand:0/100:100/0".to_owned(),
                "not_pinned:green:chat:v1:chat:v2".to_owned(),
            ]
        );
    }

    #[test]
    fn keys_ignore_a_drifted_slots_weight_so_repeated_passes_change_nothing() {
        let recorded = state(Some("chat:v1"), Some("chat:v1"), Weights::split(SlotName::Blue, 50));
        let a = judge(
            &[id("chat:v2")],
            &recorded,
            &seen(runs("chat:v1"), runs("chat:v1"), recorded.weights),
        );
        let again = judge(
            &[id("chat:v2")],
            &recorded,
            &seen(runs("chat:v1"), runs("chat:v1"), recorded.weights),
        );
        assert_eq!(Change::between(&a, &again), Change::Unchanged);
        assert_eq!(Change::between(&[], &a), Change::Detected);
        assert_eq!(Change::between(&a, &[]), Change::Cleared);
        assert_eq!(Change::between(&[], &[]), Change::Unchanged);
        let other = judge(
            &[id("chat:v3")],
            &recorded,
            &seen(runs("chat:v1"), runs("chat:v1"), recorded.weights),
        );
        assert_eq!(
            Change::between(&a, &other),
            Change::Detected,
            "a new pin changes what the drift is"
        );
    }

    #[test]
    fn running_reads_back_from_the_drivers_json() {
        let r: Running =
            serde_json::from_str(r#"{"state":"version","version":"chat:v2"}"#).expect("json");
        assert_eq!(r, runs("chat:v2"));
        let n: Running = serde_json::from_str(r#"{"state":"nothing"}"#).expect("json");
        assert_eq!(n, Running::Nothing);
        let f = Finding::NotPinned {
            slot: SlotName::Green,
            weight: 10,
            serving: id("chat:v1"),
            pinned: None,
        };
        let json = serde_json::to_value(&f).expect("json");
        assert_eq!(json["kind"], "not_pinned");
        assert_eq!(json["serving"], "chat:v1");
    }
}
