//! A crash between a router command and its record in the database.
//!
//! A runner writes the change it is about to make to the router (the
//! *intent*: step, state before, state after, time) in the same transaction
//! that marks the step started, before it sends anything. If it dies before
//! the step is recorded done, the runner that resumes the operation asks the
//! router what it really does and reconciles: the router is still where it
//! was (the command never took effect), or it already is where it was told
//! to go, or somewhere else, or it cannot be asked. When the router may have
//! moved, the state history gets an explicit interval "in transition from
//! the old state to the new one" from the intent's time to the observation
//! (the real switch instant lies inside it and cannot be known closer), and
//! the observed state from the observation on. Serving at T inside that
//! interval names both sides, never only the old one.

use serde::{Deserialize, Serialize};

use crate::clusters::{ClusterState, Weights};
use crate::{DomainError, FullId, Timestamp};

/// The router change a runner is about to make, written before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterIntent {
    /// The operation's step that sends it.
    pub step: usize,
    /// The cluster state recorded before the command.
    pub from: ClusterState,
    /// The state once the router has done it.
    pub to: ClusterState,
    /// When it was written, just before the command was sent.
    pub at: Timestamp,
}

/// What the router was found doing when a resumed operation reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The router already routes as the intent said: the command took effect.
    Switched,
    /// The router still routes as before: the command never took effect.
    NotSent,
    /// The router routes neither way (weights changed by someone else).
    Elsewhere(Weights),
    /// The router could not be asked (why).
    Unknown(String),
}

impl Finding {
    /// `switched`, `not_sent`, `elsewhere` or `unknown`, as the ledger records it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Finding::Switched => "switched",
            Finding::NotSent => "not_sent",
            Finding::Elsewhere(_) => "elsewhere",
            Finding::Unknown(_) => "unknown",
        }
    }
}

/// What to write after reconciling an interrupted router command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub finding: Finding,
    /// A state history value in force from the intent's time: the router was
    /// between `transition.from` and `transition.state` (until the next change).
    pub transition: Option<HistoryValue>,
    /// The state the router is in from the observation on, when it differs
    /// from the one recorded.
    pub state: Option<ClusterState>,
}

/// Reconciles `intent` with the router's weights as observed at `at` (or why
/// they could not be read), given the cluster state the database holds.
pub fn reconcile(
    intent: &RouterIntent,
    recorded: &ClusterState,
    observed: Result<Weights, String>,
    at: Timestamp,
) -> Result<Reconciliation, DomainError> {
    if at < intent.at {
        return Err(DomainError::Invalid(format!(
            "an observation at {at} cannot precede the router command it reconciles ({})",
            intent.at
        )));
    }
    let between = |to: &ClusterState| HistoryValue {
        state: to.clone(),
        transition_from: Some(intent.from.clone()),
    };
    let moved = |to: ClusterState| Reconciliation {
        transition: (to != intent.from).then(|| between(&to)),
        state: (&to != recorded).then_some(to),
        finding: Finding::Switched,
    };
    Ok(match observed {
        Ok(w) if w == intent.from.weights && intent.from.weights != intent.to.weights => {
            Reconciliation {
                finding: Finding::NotSent,
                transition: None,
                state: None,
            }
        }
        Ok(w) if w == intent.to.weights => moved(intent.to.clone()),
        Ok(w) => Reconciliation {
            finding: Finding::Elsewhere(w),
            ..moved(intent.from.with_weights(w))
        },
        // Nothing is known: in transition from the intent's time until the
        // next recorded change; the state recorded stays.
        Err(why) => Reconciliation {
            finding: Finding::Unknown(why),
            transition: Some(between(&intent.to)),
            state: None,
        },
    })
}

/// The value of a cluster's state history: its state and, for an interval
/// in which the router was caught between two states, the one it was
/// leaving. Stored as the state's JSON with a `transition_from` field beside
/// it, so a reader of plain `ClusterState` sees the state being entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HistoryFields", into = "HistoryFields")]
pub struct HistoryValue {
    pub state: ClusterState,
    pub transition_from: Option<ClusterState>,
}

#[derive(Serialize, Deserialize)]
struct HistoryFields {
    blue: Option<FullId>,
    green: Option<FullId>,
    weights: Weights,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transition_from: Option<ClusterState>,
}

impl From<HistoryFields> for HistoryValue {
    fn from(f: HistoryFields) -> Self {
        HistoryValue {
            state: ClusterState {
                blue: f.blue,
                green: f.green,
                weights: f.weights,
            },
            transition_from: f.transition_from,
        }
    }
}

impl From<HistoryValue> for HistoryFields {
    fn from(v: HistoryValue) -> Self {
        HistoryFields {
            blue: v.state.blue,
            green: v.state.green,
            weights: v.state.weights,
            transition_from: v.transition_from,
        }
    }
}

impl HistoryValue {
    /// Every version with traffic on either side of the transition (or in
    /// the state alone), old side first, each once.
    pub fn versions(&self) -> Vec<FullId> {
        let mut out: Vec<FullId> = Vec::new();
        let sides = self
            .transition_from
            .iter()
            .chain(std::iter::once(&self.state));
        for s in sides {
            for (_, v, _) in s.serving() {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clusters::SlotName;

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("a full id")
    }

    fn both(weights: Weights) -> ClusterState {
        ClusterState {
            blue: Some(id("chat:1")),
            green: Some(id("chat:2")),
            weights,
        }
    }

    fn switch_to_green() -> RouterIntent {
        RouterIntent {
            step: 3,
            from: both(Weights::all_on(SlotName::Blue)),
            to: both(Weights::all_on(SlotName::Green)),
            at: Timestamp::from_micros(100),
        }
    }

    const LATER: Timestamp = Timestamp::from_micros(900);

    #[test]
    fn a_router_already_switched_gives_a_transition_from_the_intent_and_the_new_state_from_the_observation(
    ) {
        let i = switch_to_green();
        let r = reconcile(&i, &i.from, Ok(i.to.weights), LATER).expect("reconciled");
        assert_eq!(r.finding, Finding::Switched);
        let t = r.transition.expect("a transition");
        assert_eq!(
            (&t.state, t.transition_from.as_ref()),
            (&i.to, Some(&i.from))
        );
        assert_eq!(t.versions(), [id("chat:1"), id("chat:2")], "both versions");
        assert_eq!(r.state, Some(i.to.clone()));
    }

    #[test]
    fn a_router_still_where_it_was_changes_no_history() {
        let i = switch_to_green();
        let r = reconcile(&i, &i.from, Ok(i.from.weights), LATER).expect("reconciled");
        assert_eq!(
            r,
            Reconciliation {
                finding: Finding::NotSent,
                transition: None,
                state: None
            }
        );
    }

    #[test]
    fn a_router_routing_neither_way_is_recorded_as_found() {
        let i = switch_to_green();
        let half = Weights::split(SlotName::Green, 50);
        let r = reconcile(&i, &i.from, Ok(half), LATER).expect("reconciled");
        assert_eq!(r.finding, Finding::Elsewhere(half));
        assert_eq!(r.state, Some(both(half)));
        assert_eq!(
            r.transition.map(|t| t.transition_from),
            Some(Some(i.from.clone()))
        );
    }

    #[test]
    fn a_router_that_cannot_be_asked_leaves_an_open_transition_and_the_recorded_state() {
        let i = switch_to_green();
        let r = reconcile(&i, &i.from, Err("no answer".into()), LATER).expect("reconciled");
        assert_eq!(r.finding, Finding::Unknown("no answer".into()));
        assert_eq!(r.state, None);
        let t = r.transition.expect("a transition");
        assert_eq!(t.versions(), [id("chat:1"), id("chat:2")]);
    }

    #[test]
    fn a_command_that_changes_nothing_needs_no_transition() {
        let i = RouterIntent {
            to: switch_to_green().from,
            ..switch_to_green()
        };
        let r = reconcile(&i, &i.from, Ok(i.from.weights), LATER).expect("reconciled");
        assert_eq!((r.transition, r.state), (None, None));
        let earlier = reconcile(&i, &i.from, Ok(i.from.weights), Timestamp::from_micros(5));
        assert!(earlier.is_err(), "an observation before the command");
    }

    #[test]
    fn history_values_read_plain_states_and_plain_state_readers_see_the_state_entered() {
        let i = switch_to_green();
        let plain = serde_json::to_string(&i.to).expect("json");
        let v: HistoryValue = serde_json::from_str(&plain).expect("reads a plain state");
        assert_eq!(
            (v.state.clone(), v.transition_from.clone()),
            (i.to.clone(), None)
        );
        assert_eq!(
            serde_json::to_string(&v).expect("json"),
            plain,
            "written the same"
        );
        let t = HistoryValue {
            state: i.to.clone(),
            transition_from: Some(i.from.clone()),
        };
        let text = serde_json::to_string(&t).expect("json");
        assert!(text.contains("\"transition_from\""), "{text}");
        let as_state: ClusterState = serde_json::from_str(&text).expect("a plain state reader");
        assert_eq!(as_state, i.to);
        assert_eq!(
            serde_json::from_str::<HistoryValue>(&text).expect("back"),
            t
        );
    }
}
