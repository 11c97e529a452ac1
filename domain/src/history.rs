//! State history: for each subject (a pin, a version's stage, later a cluster
//! slot), the values it held and since when. The database stores one row per
//! change, indexed by (subject, valid_from), so "what held at T" is one
//! indexed lookup per subject — O(log n) — never a replay of the ledger.

use serde::{Deserialize, Serialize};

use crate::policy::parse_environment_name;
use crate::{FullId, ModelId, Timestamp};

/// The key of a subject whose state is tracked over time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// The pin of `model_id` in `environment`.
    Pin {
        environment: String,
        model_id: String,
    },
    /// The lifecycle stage of a version.
    Stage { full_id: String },
    /// A serving cluster's slots and weights (`clusters::ClusterState` as JSON).
    Cluster { name: String },
    /// A tombstone: the cluster was removed (it never served; its `cluster/`
    /// rows were deleted with it). The value is `{}`.
    RemovedCluster { name: String },
    /// The drift the watcher recorded for a cluster (`drift::Finding`s as a
    /// JSON list; empty once cleared), set by `cluster.drift_detected` /
    /// `cluster.drift_cleared`: what serving-at-T notes.
    ClusterDrift { name: String },
}

impl Subject {
    /// The stored key, e.g. `pin/production/chat` or `stage/chat:v1`.
    pub fn key(&self) -> String {
        match self {
            Subject::Pin {
                environment,
                model_id,
            } => format!("pin/{environment}/{model_id}"),
            Subject::Stage { full_id } => format!("stage/{full_id}"),
            Subject::Cluster { name } => format!("cluster/{name}"),
            Subject::RemovedCluster { name } => format!("removed-cluster/{name}"),
            Subject::ClusterDrift { name } => format!("cluster-drift/{name}"),
        }
    }

    /// Reads a stored key back; `None` for anything `key` cannot produce
    /// from valid names.
    pub fn parse(key: &str) -> Option<Subject> {
        let (kind, rest) = key.split_once('/')?;
        match kind {
            "pin" => {
                let (environment, model_id) = rest.split_once('/')?;
                Some(Subject::Pin {
                    environment: parse_environment_name(environment).ok()?,
                    model_id: ModelId::parse(model_id).ok()?.to_string(),
                })
            }
            "stage" => Some(Subject::Stage {
                full_id: FullId::parse(rest).ok()?.to_string(),
            }),
            "cluster" => Some(Subject::Cluster {
                name: crate::clusters::parse_cluster_name(rest).ok()?,
            }),
            "removed-cluster" => Some(Subject::RemovedCluster {
                name: crate::clusters::parse_cluster_name(rest).ok()?,
            }),
            "cluster-drift" => Some(Subject::ClusterDrift {
                name: crate::clusters::parse_cluster_name(rest).ok()?,
            }),
            _ => None,
        }
    }
}

/// One change of a subject's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEntry<V> {
    pub valid_from: Timestamp,
    /// The ledger event that made the change; ties at one instant are broken by it.
    pub event_id: i64,
    pub value: V,
}

/// The entry in force at `t` and the instant of the next change after `t`,
/// from entries sorted by (valid_from, event_id). This is the rule the
/// database's indexed lookup implements; it is here so it can be tested and
/// used on in-memory history (the timeline chart).
///
/// Several changes at one instant all take effect at it, in event order, so
/// the one with the highest event id is in force from then on.
pub fn as_of<V>(
    entries: &[StateEntry<V>],
    t: Timestamp,
) -> (Option<&StateEntry<V>>, Option<Timestamp>) {
    debug_assert!(
        entries
            .windows(2)
            .all(|w| (w[0].valid_from, w[0].event_id) <= (w[1].valid_from, w[1].event_id)),
        "state entries must be sorted by (valid_from, event_id)"
    );
    let idx = entries.partition_point(|e| e.valid_from <= t);
    let current = idx.checked_sub(1).map(|i| &entries[i]);
    let next = entries.get(idx).map(|e| e.valid_from);
    (current, next)
}

/// `as_of` over the instants alone, for history kept as parallel lists (the
/// server's temporal index searches only the instants, which fit in fewer
/// cache lines): `instants` are the entries' `valid_from`, in the entries'
/// (valid_from, event_id) order. Answers the position of the entry in force
/// at `t` and that of the next change.
pub fn as_of_position(instants: &[Timestamp], t: Timestamp) -> (Option<usize>, Option<usize>) {
    debug_assert!(
        instants.windows(2).all(|w| w[0] <= w[1]),
        "instants must be sorted"
    );
    let idx = instants.partition_point(|v| *v <= t);
    (idx.checked_sub(1), (idx < instants.len()).then_some(idx))
}

/// What an answer "as of `at`" must say beside its lists when `at` lies
/// outside what the ledger can know: in the future (after `now`), or before
/// its first event (`ledger_begins`; `None` for an empty ledger).
pub fn outside_the_ledger(
    at: Timestamp,
    now: Timestamp,
    ledger_begins: Option<Timestamp>,
) -> Option<String> {
    if at > now {
        return Some(format!(
            "{} is in the future: this is what holds now ({}), and it may still change before then",
            at.to_rfc3339(),
            now.to_rfc3339()
        ));
    }
    match ledger_begins {
        None => Some(format!(
            "the ledger has no events yet, so nothing is known at {}",
            at.to_rfc3339()
        )),
        Some(first) if at < first => Some(format!(
            "{} is before the ledger begins ({}): nothing was recorded then",
            at.to_rfc3339(),
            first.to_rfc3339()
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_in_the_future_or_before_the_first_event_is_said_so() {
        let t = |m: i64| Timestamp::from_micros(1_772_323_200_000_000 + m * 60_000_000);
        let future = outside_the_ledger(t(10), t(5), Some(t(0))).expect("a notice");
        assert!(future.contains("in the future"), "{future}");
        let before = outside_the_ledger(t(-1), t(5), Some(t(0))).expect("a notice");
        assert!(before.contains("before the ledger begins"), "{before}");
        assert!(outside_the_ledger(t(1), t(5), None).is_some());
        assert_eq!(outside_the_ledger(t(0), t(5), Some(t(0))), None);
        assert_eq!(outside_the_ledger(t(5), t(5), Some(t(0))), None);
    }

    fn at(us: i64) -> Timestamp {
        Timestamp::from_micros(us)
    }

    fn entry(valid_from: i64, event_id: i64, value: &'static str) -> StateEntry<&'static str> {
        StateEntry {
            valid_from: at(valid_from),
            event_id,
            value,
        }
    }

    /// chat in production: v1 from 100, v2 from 200, v3 from 300.
    fn pins() -> Vec<StateEntry<&'static str>> {
        vec![
            entry(100, 1, "v1"),
            entry(200, 5, "v2"),
            entry(300, 9, "v3"),
        ]
    }

    fn value_at(
        entries: &[StateEntry<&'static str>],
        t: i64,
    ) -> (Option<&'static str>, Option<i64>) {
        let (current, next) = as_of(entries, at(t));
        (current.map(|e| e.value), next.map(Timestamp::micros))
    }

    #[test]
    fn before_the_first_change_nothing_held_and_the_first_change_is_next() {
        assert_eq!(value_at(&pins(), 99), (None, Some(100)));
    }

    #[test]
    fn exactly_at_a_change_the_new_value_holds() {
        assert_eq!(value_at(&pins(), 100), (Some("v1"), Some(200)));
        assert_eq!(value_at(&pins(), 200), (Some("v2"), Some(300)));
    }

    #[test]
    fn between_changes_the_earlier_value_holds_until_the_next_change() {
        assert_eq!(value_at(&pins(), 150), (Some("v1"), Some(200)));
        assert_eq!(value_at(&pins(), 299), (Some("v2"), Some(300)));
    }

    #[test]
    fn after_the_last_change_it_still_holds_and_nothing_is_next() {
        assert_eq!(value_at(&pins(), 300), (Some("v3"), None));
        assert_eq!(value_at(&pins(), i64::MAX), (Some("v3"), None));
    }

    #[test]
    fn a_subject_with_no_history_held_nothing_at_any_time() {
        assert_eq!(value_at(&[], 100), (None, None));
    }

    #[test]
    fn of_two_changes_at_one_instant_the_later_event_holds() {
        let entries = vec![
            entry(100, 1, "v1"),
            entry(200, 4, "v2"),
            entry(200, 6, "v3"),
            entry(400, 7, "v4"),
        ];
        let (current, next) = as_of(&entries, at(200));
        assert_eq!(current.map(|e| (e.value, e.event_id)), Some(("v3", 6)));
        assert_eq!(next, Some(at(400)));
        // Just before the instant, the next change is that instant, not the event after it.
        assert_eq!(value_at(&entries, 199), (Some("v1"), Some(200)));
    }

    #[test]
    fn the_entry_returned_names_the_event_that_made_the_change() {
        let entries = pins();
        let (current, _) = as_of(&entries, at(250));
        assert_eq!(current.map(|e| e.event_id), Some(5));
    }

    #[test]
    fn the_position_over_instants_alone_follows_the_same_rule() {
        let entries = vec![
            entry(100, 1, "v1"),
            entry(200, 4, "v2"),
            entry(200, 6, "v3"),
            entry(400, 7, "v4"),
        ];
        let instants: Vec<Timestamp> = entries.iter().map(|e| e.valid_from).collect();
        for t in [0, 99, 100, 150, 199, 200, 201, 399, 400, i64::MAX] {
            let (current, next) = as_of(&entries, at(t));
            let (i, n) = as_of_position(&instants, at(t));
            assert_eq!(i.map(|i| &entries[i]), current, "at {t}");
            assert_eq!(n.map(|n| instants[n]), next, "at {t}");
        }
        assert_eq!(as_of_position(&[], at(5)), (None, None));
    }

    #[test]
    fn subject_keys_read_back_as_the_same_subject() {
        for subject in [
            Subject::Pin {
                environment: "production".into(),
                model_id: "chat".into(),
            },
            Subject::Stage {
                full_id: "chat:v2.1.3+build.7".into(),
            },
            Subject::Cluster {
                name: "eu-1".into(),
            },
            Subject::ClusterDrift {
                name: "eu-1".into(),
            },
        ] {
            assert_eq!(Subject::parse(&subject.key()), Some(subject));
        }
    }

    #[test]
    fn subject_keys_look_as_documented() {
        let pin = Subject::Pin {
            environment: "production".into(),
            model_id: "chat".into(),
        };
        assert_eq!(pin.key(), "pin/production/chat");
        assert_eq!(
            Subject::Stage {
                full_id: "chat:v1".into()
            }
            .key(),
            "stage/chat:v1"
        );
    }

    #[test]
    fn malformed_subject_keys_are_not_read() {
        for bad in [
            "",
            "pin",
            "pin/production",
            "pin/production/",
            "pin//chat",
            "pin/production/chat/extra",
            "stage/",
            "stage/chat",
            "stage/chat:latest",
            "slot/eu-1/blue",
            "cluster/",
            "cluster/EU 1",
        ] {
            assert_eq!(Subject::parse(bad), None, "{bad:?}");
        }
    }
}
