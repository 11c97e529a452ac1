//! The temporal index: a per-process, in-memory copy of the pin and cluster
//! subjects of `state_history`, so that "what was serving at T" is a binary
//! search per subject instead of three correlated index lookups per pin and
//! cluster in SQL.
//!
//! For each subject it keeps the changes sorted by (valid_from, event_id), each
//! with the actor and reason of its ledger event; for clusters also their
//! environment and driver, and the environments' order. Nothing here does I/O:
//! `sql_store!` loads it lazily on the first `serving_at` and, before every
//! answer, reads the ledger head and applies the rows of the events after the
//! last one applied (`TemporalIndex::applied`). That is exact because ledger
//! ids are assigned under the head lock, so they commit in order: once the head
//! reads H, every state row of an event ≤ H is committed and visible, and none
//! of an event > H is taken. History inserted out of order (a backdated `at`)
//! is placed where it sorts, as the SQL index placed it.
//!
//! Memory: one entry per pin or cluster change (not per ledger event, nor per
//! request record); actors and reasons are interned. `footprint` estimates it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use switchyard_domain::clusters::{self as cl, ClusterChange, ClusterState, DriverKind};
use switchyard_domain::history::{as_of_position, StateEntry};
use switchyard_domain::reconcile::HistoryValue;
use switchyard_domain::types::{
    ClusterAt, ClusterServing, DriftAt, PinAt, ServingAt, TransitionAt,
};
use switchyard_domain::{FullId, ModelId, Timestamp};

use super::sql::stored_full_id;
use super::{StoreError, StoreResult};

/// A row of `state_history` (a pin's or a cluster's) with its event's actor and reason.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct HistoryRow {
    pub(crate) subject: String,
    pub(crate) valid_from: i64,
    pub(crate) event_id: i64,
    pub(crate) value: String,
    pub(crate) actor: String,
    pub(crate) reason: Option<String>,
    /// A cluster row's event details (JSON): its `operation_id` names the
    /// operation whose step set the state. `None` for other subjects.
    pub(crate) details: Option<String>,
}

/// The operation a runner's ledger event names in its details
/// (`"operation_id": 12`), as `analysis` reads it from the event.
fn operation_in(details: Option<&str>) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Details {
        operation_id: Option<serde_json::Value>,
    }
    serde_json::from_str::<Details>(details?)
        .ok()?
        .operation_id?
        .as_i64()
}

/// A cluster's fixed columns.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClusterMetaRow {
    pub(crate) name: String,
    pub(crate) environment: String,
    pub(crate) driver: String,
}

/// A value with who set it and why, and the operation whose step set it
/// (so that gate results need no read of the ledger event).
#[derive(Debug, Clone)]
struct Held<V> {
    value: V,
    actor: Arc<str>,
    reason: Option<Arc<str>>,
    operation_id: Option<i64>,
}

/// A subject's changes, sorted by (valid_from, event_id), and their instants
/// alone in the same order: a lookup searches only `instants` (a few cache
/// lines) and then reads the one change it found.
#[derive(Debug)]
struct History<V> {
    instants: Vec<Timestamp>,
    changes: Vec<StateEntry<Held<V>>>,
}

impl<V> Default for History<V> {
    fn default() -> Self {
        History {
            instants: Vec::new(),
            changes: Vec::new(),
        }
    }
}

impl<V> History<V> {
    /// Inserts `entry` where it sorts by (valid_from, event_id); an entry with
    /// the same key (the table's primary key) is replaced.
    fn insert(&mut self, entry: StateEntry<Held<V>>) {
        let key = (entry.valid_from, entry.event_id);
        let at = self
            .changes
            .partition_point(|e| (e.valid_from, e.event_id) < key);
        match self.changes.get_mut(at) {
            Some(e) if (e.valid_from, e.event_id) == key => *e = entry,
            _ => {
                self.instants.insert(at, entry.valid_from);
                self.changes.insert(at, entry);
            }
        }
    }

    /// The change in force at `at` (`history::as_of`) and the instant of the next one.
    fn at(&self, at: Timestamp) -> (Option<&StateEntry<Held<V>>>, Option<Timestamp>) {
        let (current, next) = as_of_position(&self.instants, at);
        (
            current.and_then(|i| self.changes.get(i)),
            next.and_then(|n| self.instants.get(n).copied()),
        )
    }

    fn len(&self) -> usize {
        self.changes.len()
    }

    fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Drops the changes of events before `event_id` (a removed subject's).
    fn forget_before(&mut self, event_id: i64) {
        let keep: Vec<bool> = self.changes.iter().map(|e| e.event_id > event_id).collect();
        let mut k = keep.iter();
        self.changes.retain(|_| *k.next().unwrap_or(&true));
        let mut k = keep.iter();
        self.instants.retain(|_| *k.next().unwrap_or(&true));
    }

    /// Bytes of the two lists (not of what the changes point to).
    fn heap_bytes(&self) -> usize {
        self.instants.capacity() * std::mem::size_of::<Timestamp>()
            + self.changes.capacity() * std::mem::size_of::<StateEntry<Held<V>>>()
    }
}

/// A pinned version and a cluster state as stored, parsed once when loaded; a
/// value that does not parse keeps its error, reported when an answer needs it.
type StoredPin = Result<FullId, String>;
type StoredState = Result<HistoryValue, String>;
type StoredDrift = Result<Vec<switchyard_domain::drift::Finding>, String>;

#[derive(Debug, Default)]
struct ClusterHistory {
    /// (environment, driver) from `clusters`; `None` until read (a subject
    /// without a `clusters` row is not answered, as the SQL join did not).
    meta: Option<(String, String)>,
    changes: History<StoredState>,
    /// The drift the watcher recorded (`cluster-drift/NAME`), each value the
    /// findings then (empty: cleared).
    drift: History<StoredDrift>,
    /// The models some valid change served with traffic, so the model
    /// timeline's lanes need not walk every cluster's changes.
    served: HashSet<String>,
    /// Some change does not parse: the lanes walk its changes and fail when
    /// they reach it, as before the set existed.
    corrupt: bool,
}

/// Adds the models `value` serves with traffic to `served`; false if it is corrupt.
fn note_served(served: &mut HashSet<String>, value: &StoredState) -> bool {
    match value {
        Ok(v) => {
            for (_, id, _) in v.state.serving() {
                if !served.contains(id.model_id.as_str()) {
                    served.insert(id.model_id.to_string());
                }
            }
            true
        }
        Err(_) => false,
    }
}

impl ClusterHistory {
    /// `served` and `corrupt` again from the changes left (after a removal).
    fn recount_served(&mut self) {
        let mut served = HashSet::new();
        let mut corrupt = false;
        for e in &self.changes.changes {
            corrupt |= !note_served(&mut served, &e.value.value);
        }
        self.served = served;
        self.corrupt = corrupt;
    }

    /// Whether some change served `model` with traffic; a corrupt change
    /// met before one that did is an error.
    fn ever_served(&self, name: &str, model: &ModelId) -> StoreResult<bool> {
        if !self.corrupt {
            return Ok(self.served.contains(model.as_str()));
        }
        for e in &self.changes.changes {
            if valid_state(name, e)?
                .state
                .serving()
                .iter()
                .any(|(_, v, _)| &v.model_id == model)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Estimated memory of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub subjects: usize,
    pub entries: usize,
    pub bytes: usize,
}

#[derive(Debug)]
pub(crate) struct TemporalIndex {
    /// The last ledger id whose state rows are applied; `None`: not loaded.
    applied: Option<i64>,
    /// Environment names in their standard order (position, then name).
    environments: Vec<String>,
    /// environment → model → the pin's changes.
    pins: HashMap<String, BTreeMap<String, History<StoredPin>>>,
    /// By name, the order of the answer.
    clusters: BTreeMap<String, ClusterHistory>,
    /// A pin of an unknown environment or a cluster without its row was applied.
    metadata_stale: bool,
    strings: HashSet<Arc<str>>,
}

impl Default for TemporalIndex {
    /// Empty and not loaded; the environments' order and the clusters' rows are still to be read.
    fn default() -> Self {
        TemporalIndex {
            applied: None,
            environments: Vec::new(),
            pins: HashMap::new(),
            clusters: BTreeMap::new(),
            metadata_stale: true,
            strings: HashSet::new(),
        }
    }
}

/// A cluster's stored state, or why it is corrupt.
fn valid_state<'a>(
    cluster: &str,
    entry: &'a StateEntry<Held<StoredState>>,
) -> StoreResult<&'a HistoryValue> {
    entry.value.value.as_ref().map_err(|why| {
        StoreError::Corrupt(format!(
            "state history of cluster {cluster} is not valid: {why}"
        ))
    })
}

fn pinned(stored: &StoredPin) -> StoreResult<&FullId> {
    stored.as_ref().map_err(|e| StoreError::Corrupt(e.clone()))
}

impl TemporalIndex {
    /// The last ledger id applied, if the index is loaded.
    pub(crate) fn applied(&self) -> Option<i64> {
        self.applied
    }

    fn intern(&mut self, s: String) -> Arc<str> {
        if let Some(known) = self.strings.get(s.as_str()) {
            return known.clone();
        }
        let shared: Arc<str> = s.into();
        self.strings.insert(shared.clone());
        shared
    }

    /// Applies `rows` (in any order) and records that every state row of the
    /// events up to `head` is now in. Rows of other subjects are ignored.
    pub(crate) fn apply(&mut self, rows: Vec<HistoryRow>, head: i64) {
        for row in rows {
            let (valid_from, event_id) = (Timestamp::from_micros(row.valid_from), row.event_id);
            let actor = self.intern(row.actor);
            let reason = row.reason.map(|r| self.intern(r));
            let operation_id = operation_in(row.details.as_deref());
            if let Some(rest) = row.subject.strip_prefix("pin/") {
                let Some((environment, model)) = rest.split_once('/') else {
                    continue;
                };
                if !self.environments.iter().any(|e| e == environment) {
                    self.metadata_stale = true;
                }
                let history = self
                    .pins
                    .entry(environment.to_owned())
                    .or_default()
                    .entry(model.to_owned())
                    .or_default();
                let pinned = stored_full_id(model, &row.value).map_err(|e| match e {
                    StoreError::Corrupt(why) => why,
                    other => other.to_string(),
                });
                let value = Held {
                    value: pinned,
                    actor,
                    reason,
                    operation_id,
                };
                history.insert(StateEntry {
                    valid_from,
                    event_id,
                    value,
                });
            } else if let Some(name) = row.subject.strip_prefix("removed-cluster/") {
                // Rows may come in any order: forget only what the removal preceded.
                if let Some(cluster) = self.clusters.get_mut(name) {
                    cluster.changes.forget_before(event_id);
                    cluster.drift.forget_before(event_id);
                    if cluster.changes.is_empty() && cluster.drift.is_empty() {
                        self.clusters.remove(name);
                    } else {
                        cluster.recount_served();
                    }
                }
            } else if let Some(name) = row.subject.strip_prefix("cluster-drift/") {
                let findings = serde_json::from_str(&row.value).map_err(|e| e.to_string());
                let value = Held {
                    value: findings,
                    actor,
                    reason,
                    operation_id,
                };
                self.clusters
                    .entry(name.to_owned())
                    .or_default()
                    .drift
                    .insert(StateEntry {
                        valid_from,
                        event_id,
                        value,
                    });
            } else if let Some(name) = row.subject.strip_prefix("cluster/") {
                let cluster = self.clusters.entry(name.to_owned()).or_default();
                if cluster.meta.is_none() {
                    self.metadata_stale = true;
                }
                // A plain state, or one marked in transition (`reconcile`).
                let state =
                    serde_json::from_str::<HistoryValue>(&row.value).map_err(|e| e.to_string());
                if !note_served(&mut cluster.served, &state) {
                    cluster.corrupt = true;
                }
                let value = Held {
                    value: state,
                    actor,
                    reason,
                    operation_id,
                };
                cluster.changes.insert(StateEntry {
                    valid_from,
                    event_id,
                    value,
                });
            }
        }
        self.applied = Some(self.applied.map_or(head, |a| a.max(head)));
    }

    /// Whether the environments' order or some cluster's row must be read
    /// (before the first answer, and after a new environment or cluster appears).
    pub(crate) fn metadata_stale(&self) -> bool {
        self.metadata_stale
    }

    /// The environments' names in the order `environments.position, name`,
    /// and every cluster's environment and driver.
    pub(crate) fn set_metadata(
        &mut self,
        environments: Vec<String>,
        clusters: Vec<ClusterMetaRow>,
    ) {
        self.environments = environments;
        for c in clusters {
            self.clusters.entry(c.name).or_default().meta = Some((c.environment, c.driver));
        }
        self.metadata_stale = false;
    }

    /// Whether `cluster` is one Switchyard manages (its `clusters` row is read).
    pub(crate) fn has_cluster(&self, cluster: &str) -> bool {
        self.clusters.get(cluster).is_some_and(|c| c.meta.is_some())
    }

    /// What `slot` of `cluster` held at `at` by the ledger: `None` when the
    /// cluster had no recorded state then (or is not known). Inside a
    /// transition interval either side may have answered: the side holding
    /// `seen` is chosen when it is one of them.
    pub(crate) fn slot_at(
        &self,
        cluster: &str,
        at: Timestamp,
        slot: cl::SlotName,
        seen: &FullId,
    ) -> StoreResult<Option<Option<FullId>>> {
        let Some(history) = self.clusters.get(cluster) else {
            return Ok(None);
        };
        let (Some(current), _) = history.changes.at(at) else {
            return Ok(None);
        };
        let held = current.value.value.as_ref().map_err(|e| {
            StoreError::Corrupt(format!(
                "state history of cluster {cluster} is not valid: {e}"
            ))
        })?;
        let after = held.state.version(slot);
        let before = held
            .transition_from
            .as_ref()
            .and_then(|from| from.version(slot));
        let chosen = if before == Some(seen) { before } else { after };
        Ok(Some(chosen.cloned()))
    }

    /// The version `environment` pinned for `model` at `at`, if any.
    fn pinned_at(
        &self,
        environment: &str,
        model: &str,
        at: Timestamp,
    ) -> StoreResult<Option<&FullId>> {
        let Some(history) = self
            .pins
            .get(environment)
            .and_then(|models| models.get(model))
        else {
            return Ok(None);
        };
        history
            .at(at)
            .0
            .map(|current| pinned(&current.value.value))
            .transpose()
    }

    /// What each environment (`env`, if given) pinned (for `model`, if given)
    /// at `at`, and what each cluster of those environments served (serving
    /// `model`, if given) with its drift against the pins then. Pins come in
    /// the environments' order, then by model; clusters by name. Pins and
    /// clusters that did not exist yet at `at` are left out.
    pub(crate) fn serving_at(
        &self,
        at: Timestamp,
        env: Option<&str>,
        model: Option<&ModelId>,
    ) -> StoreResult<ServingAt> {
        let mut pins = Vec::new();
        for environment in self
            .environments
            .iter()
            .filter(|e| env.is_none_or(|f| f == e.as_str()))
        {
            let Some(models) = self.pins.get(environment) else {
                continue;
            };
            let mut push = |history: &History<StoredPin>| -> StoreResult<()> {
                if let (Some(current), next_change) = history.at(at) {
                    let full_id = pinned(&current.value.value)?.clone();
                    pins.push(PinAt {
                        environment: environment.clone(),
                        model_id: full_id.model_id.clone(),
                        full_id,
                        since: current.valid_from,
                        event_id: current.event_id,
                        actor: current.value.actor.to_string(),
                        reason: current.value.reason.as_deref().map(str::to_owned),
                        next_change,
                        promotion: None,
                    });
                }
                Ok(())
            };
            match model {
                Some(m) => {
                    if let Some(history) = models.get(m.as_str()) {
                        push(history)?;
                    }
                }
                None => {
                    for history in models.values() {
                        push(history)?;
                    }
                }
            }
        }
        let mut clusters = Vec::new();
        for (name, cluster) in &self.clusters {
            let Some((environment, driver)) = &cluster.meta else {
                continue;
            };
            if env.is_some_and(|f| f != environment) {
                continue;
            }
            let (Some(current), next_change) = cluster.changes.at(at) else {
                continue;
            };
            let value = current.value.value.as_ref().map_err(|e| {
                StoreError::Corrupt(format!("state history of cluster {name} is not valid: {e}"))
            })?;
            let held = &value.state;
            // Inside a transition either side may have served: a model is
            // served here if it is on either side.
            let transition = value.transition_from.as_ref().map(|from| TransitionAt {
                from: from.slot_views(),
                versions: value.versions(),
                since: current.valid_from,
                until: next_change,
            });
            let serving = held.serving();
            let left = value.transition_from.as_ref().map(ClusterState::serving);
            let serves = |m: &ModelId| {
                serving
                    .iter()
                    .chain(left.iter().flatten())
                    .any(|(_, v, _)| &v.model_id == m)
            };
            if model.is_some_and(|m| !serves(m)) {
                continue; // serves other models
            }
            let mut pinned: Vec<FullId> = Vec::new();
            for (_, v, _) in &serving {
                if let Some(p) = self.pinned_at(environment, v.model_id.as_str(), at)? {
                    pinned.push(p.clone());
                }
            }
            // The drift the watcher had recorded by then, unless cleared.
            let observed_drift = match cluster.drift.at(at).0 {
                Some(d) => {
                    let findings = d.value.value.as_ref().map_err(|e| {
                        StoreError::Corrupt(format!(
                            "drift history of cluster {name} is not valid: {e}"
                        ))
                    })?;
                    (!findings.is_empty()).then(|| DriftAt {
                        findings: findings.clone(),
                        since: d.valid_from,
                        event_id: d.event_id,
                    })
                }
                None => None,
            };
            clusters.push(ClusterAt {
                drift: cl::drift(held, &pinned),
                slots: held.slot_views(),
                driver: DriverKind::from_str(driver).map_err(|_| {
                    StoreError::Corrupt(format!("stored driver {driver:?} is unknown"))
                })?,
                cluster: name.clone(),
                environment: environment.clone(),
                since: current.valid_from,
                event_id: current.event_id,
                actor: current.value.actor.to_string(),
                reason: current.value.reason.as_deref().map(str::to_owned),
                operation_id: current.value.operation_id,
                next_change,
                transition,
                observed_drift,
            });
        }
        Ok(ServingAt {
            at,
            pins,
            clusters,
            gates: Vec::new(),
            notice: None,
        })
    }

    /// The clusters (by name) that ever served `model` with traffic, each
    /// with its changes inside `[start, end]` and the one in force at `start`:
    /// the model timeline's cluster lanes, without a query per cluster.
    pub(crate) fn clusters_serving(
        &self,
        model: &ModelId,
        start: Timestamp,
        end: Timestamp,
    ) -> StoreResult<Vec<ClusterServing>> {
        let mut lanes = Vec::new();
        for (name, cluster) in &self.clusters {
            let Some((environment, _)) = &cluster.meta else {
                continue;
            };
            if !cluster.ever_served(name, model)? {
                continue;
            }
            let changes = &cluster.changes;
            // The change in force at `start` (if any), then those up to `end`.
            let first = as_of_position(&changes.instants, start).0.unwrap_or(0);
            let mut history = Vec::new();
            for e in changes.changes[first..]
                .iter()
                .take_while(|e| e.valid_from <= end)
            {
                history.push(ClusterChange {
                    at: e.valid_from,
                    slots: valid_state(name, e)?.state.slot_views(),
                    event_id: e.event_id,
                    actor: e.value.actor.to_string(),
                    reason: e.value.reason.as_deref().map(str::to_owned),
                });
            }
            lanes.push(ClusterServing {
                cluster: name.clone(),
                environment: environment.clone(),
                history,
            });
        }
        Ok(lanes)
    }

    /// Subjects, entries and an estimate of the heap they take (entries,
    /// their strings and cluster states, the maps' keys, the interned strings).
    pub fn footprint(&self) -> Footprint {
        use std::mem::size_of;
        let string = |s: &str| size_of::<String>() + s.len();
        let full_id = |f: &Option<FullId>| {
            f.as_ref()
                .map_or(0, |f| f.model_id.as_str().len() + f.version.as_str().len())
        };
        let mut f = Footprint {
            subjects: 0,
            entries: 0,
            bytes: 0,
        };
        for (environment, models) in &self.pins {
            f.bytes += string(environment);
            for (model, history) in models {
                f.subjects += 1;
                f.entries += history.len();
                f.bytes += string(model) + history.heap_bytes();
                f.bytes += history
                    .changes
                    .iter()
                    .map(|e| match &e.value.value {
                        Ok(id) => id.model_id.as_str().len() + id.version.as_str().len(),
                        Err(e) => e.len(),
                    })
                    .sum::<usize>();
            }
        }
        for (name, cluster) in &self.clusters {
            f.subjects += 1;
            f.entries += cluster.changes.len();
            f.bytes += string(name) + cluster.changes.heap_bytes() + cluster.drift.heap_bytes();
            f.bytes += cluster
                .changes
                .changes
                .iter()
                .map(|e| match &e.value.value {
                    Ok(v) => {
                        full_id(&v.state.blue)
                            + full_id(&v.state.green)
                            + v.transition_from.as_ref().map_or(0, |s| {
                                size_of::<ClusterState>() + full_id(&s.blue) + full_id(&s.green)
                            })
                    }
                    Err(e) => e.len(),
                })
                .sum::<usize>();
            f.bytes += cluster.served.iter().map(|m| string(m)).sum::<usize>();
        }
        f.bytes += self
            .strings
            .iter()
            .map(|s| s.len() + 2 * size_of::<usize>())
            .sum::<usize>();
        f
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_domain::clusters::{SlotName, Weights};

    use super::*;

    fn at(us: i64) -> Timestamp {
        Timestamp::from_micros(us)
    }

    fn row(subject: &str, valid_from: i64, event_id: i64, value: &str, actor: &str) -> HistoryRow {
        HistoryRow {
            subject: subject.into(),
            valid_from,
            event_id,
            value: value.into(),
            actor: actor.into(),
            reason: None,
            details: None,
        }
    }

    fn state(blue: Option<&str>, green: Option<&str>, on: SlotName) -> String {
        let state = ClusterState {
            blue: blue.map(|b| FullId::parse(b).expect("full id")),
            green: green.map(|g| FullId::parse(g).expect("full id")),
            weights: Weights::all_on(on),
        };
        json!(state).to_string()
    }

    fn meta(name: &str, environment: &str) -> ClusterMetaRow {
        ClusterMetaRow {
            name: name.into(),
            environment: environment.into(),
            driver: "simulated".into(),
        }
    }

    fn index(rows: Vec<HistoryRow>) -> TemporalIndex {
        let mut index = TemporalIndex::default();
        index.apply(rows, 100);
        index.set_metadata(
            vec!["development".into(), "staging".into(), "production".into()],
            vec![meta("eu-1", "production"), meta("dev-1", "development")],
        );
        index
    }

    fn model(s: &str) -> ModelId {
        ModelId::parse(s).expect("model id")
    }

    fn versions(s: &ServingAt) -> Vec<String> {
        s.pins
            .iter()
            .map(|p| format!("{}/{}", p.environment, p.full_id))
            .collect()
    }

    #[test]
    fn pins_come_in_environment_order_then_by_model_and_only_once_they_exist() {
        let index = index(vec![
            row("pin/production/chat", 10, 1, "v1", "bob"),
            row("pin/development/embed", 20, 2, "e1", "erin"),
            row("pin/production/chat", 30, 3, "v2", "carol"),
            row("pin/development/chat", 5, 4, "v0", "dave"),
        ]);
        assert!(index
            .serving_at(at(4), None, None)
            .expect("answer")
            .pins
            .is_empty());
        let s = index.serving_at(at(25), None, None).expect("answer");
        assert_eq!(
            versions(&s),
            [
                "development/chat:v0",
                "development/embed:e1",
                "production/chat:v1"
            ]
        );
        let chat = &s.pins[2];
        assert_eq!(
            (
                chat.since,
                chat.next_change,
                chat.event_id,
                chat.actor.as_str()
            ),
            (at(10), Some(at(30)), 1, "bob")
        );
        let filtered = index
            .serving_at(at(30), Some("production"), Some(&model("chat")))
            .expect("answer");
        assert_eq!(versions(&filtered), ["production/chat:v2"]);
        assert_eq!(filtered.pins[0].next_change, None);
        assert!(index
            .serving_at(at(30), Some("staging"), None)
            .expect("answer")
            .pins
            .is_empty());
    }

    #[test]
    fn history_applied_out_of_order_sorts_by_instant_then_event() {
        let mut index = index(vec![row("pin/production/chat", 30, 5, "v3", "carol")]);
        // Applied later, but a backdated change and two changes at one instant.
        index.apply(
            vec![
                row("pin/production/chat", 10, 7, "v1", "bob"),
                row("pin/production/chat", 20, 9, "v2b", "bob"),
                row("pin/production/chat", 20, 8, "v2a", "bob"),
            ],
            110,
        );
        assert_eq!(index.applied(), Some(110));
        let at_15 = index.serving_at(at(15), None, None).expect("answer");
        assert_eq!(
            (versions(&at_15), at_15.pins[0].next_change),
            (vec!["production/chat:v1".to_owned()], Some(at(20)))
        );
        let at_20 = index.serving_at(at(20), None, None).expect("answer");
        assert_eq!(
            versions(&at_20),
            ["production/chat:v2b"],
            "the higher event id at one instant holds"
        );
        assert_eq!(at_20.pins[0].next_change, Some(at(30)));
    }

    #[test]
    fn a_cluster_state_names_the_operation_its_event_names_and_none_otherwise() {
        let step = |at: i64, id: i64, details: Option<&str>| HistoryRow {
            details: details.map(str::to_owned),
            ..row(
                "cluster/eu-1",
                at,
                id,
                &state(Some("chat:v1"), None, SlotName::Blue),
                "system",
            )
        };
        let index = index(vec![
            step(10, 1, Some(r#"{"operation_id": 7, "step": "switch"}"#)),
            step(20, 2, Some("{}")),
            step(30, 3, Some(r#"{"operation_id": "7"}"#)),
            step(40, 4, Some("not json")),
            step(50, 5, None),
            step(60, 6, Some(r#"{"operation_id": 9}"#)),
        ]);
        let operation = |t: i64| {
            index
                .serving_at(at(t), None, None)
                .expect("answer")
                .clusters[0]
                .operation_id
        };
        assert_eq!(
            [10, 20, 30, 40, 50, 60].map(operation),
            [Some(7), None, None, None, None, Some(9)]
        );
    }

    #[test]
    fn clusters_answer_their_state_with_drift_against_the_pins_then() {
        let index = index(vec![
            row("pin/production/chat", 10, 1, "v1", "bob"),
            row(
                "cluster/eu-1",
                5,
                2,
                &state(None, None, SlotName::Blue),
                "alice",
            ),
            row(
                "cluster/eu-1",
                20,
                3,
                &state(Some("chat:v1"), None, SlotName::Blue),
                "alice",
            ),
            row(
                "cluster/eu-1",
                40,
                4,
                &state(Some("chat:v1"), Some("chat:v2"), SlotName::Green),
                "alice",
            ),
            row(
                "cluster/dev-1",
                50,
                5,
                &state(None, Some("embed:e1"), SlotName::Green),
                "erin",
            ),
            row(
                "cluster/unknown",
                5,
                6,
                &state(None, None, SlotName::Blue),
                "alice",
            ),
        ]);
        let s = index.serving_at(at(25), None, None).expect("answer");
        let names: Vec<_> = s.clusters.iter().map(|c| c.cluster.as_str()).collect();
        assert_eq!(
            names,
            ["eu-1"],
            "dev-1 did not exist yet; a subject without a clusters row is not answered"
        );
        assert!(s.clusters[0].drift.is_empty());
        assert_eq!(
            (s.clusters[0].since, s.clusters[0].next_change),
            (at(20), Some(at(40)))
        );
        let later = index
            .serving_at(at(45), None, Some(&model("chat")))
            .expect("answer");
        assert_eq!(later.clusters.len(), 1);
        let drift = &later.clusters[0].drift;
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].serving, FullId::parse("chat:v2").expect("full id"));
        assert_eq!(
            drift[0].pinned,
            Some(FullId::parse("chat:v1").expect("full id"))
        );
        let embed = index
            .serving_at(at(60), None, Some(&model("embed")))
            .expect("answer");
        assert_eq!(
            embed
                .clusters
                .iter()
                .map(|c| c.cluster.as_str())
                .collect::<Vec<_>>(),
            ["dev-1"]
        );
        assert_eq!(
            embed.clusters[0].drift[0].pinned, None,
            "embed is pinned nowhere"
        );
        let production = index
            .serving_at(at(60), Some("production"), None)
            .expect("answer");
        assert_eq!(
            production
                .clusters
                .iter()
                .map(|c| c.cluster.as_str())
                .collect::<Vec<_>>(),
            ["eu-1"]
        );
    }

    #[test]
    fn inside_a_transition_interval_a_cluster_names_both_sides_and_says_so() {
        let v = |s: &str| FullId::parse(s).expect("full id");
        let before = ClusterState {
            blue: Some(v("chat:v1")),
            green: Some(v("chat:v2")),
            weights: Weights::all_on(SlotName::Blue),
        };
        let after = before.with_weights(Weights::all_on(SlotName::Green));
        let between = json!(HistoryValue {
            state: after.clone(),
            transition_from: Some(before.clone()),
        })
        .to_string();
        let index = index(vec![
            row("cluster/eu-1", 10, 1, &json!(before).to_string(), "system"),
            // Both rows come from the reconciliation's event: the transition is backdated.
            row("cluster/eu-1", 30, 7, &json!(after).to_string(), "system"),
            row("cluster/eu-1", 20, 7, &between, "system"),
        ]);
        let at_15 = index.serving_at(at(15), None, None).expect("answer");
        assert_eq!(at_15.clusters[0].transition, None);
        let at_25 = index.serving_at(at(25), None, None).expect("answer");
        let t = at_25.clusters[0].transition.clone().expect("in transition");
        assert_eq!(t.versions, [v("chat:v1"), v("chat:v2")]);
        assert_eq!((t.since, t.until), (at(20), Some(at(30))));
        assert_eq!(t.from, before.slot_views());
        assert_eq!(at_25.clusters[0].slots, after.slot_views());
        let chat = index
            .serving_at(at(25), None, Some(&model("chat")))
            .expect("answer");
        assert_eq!(chat.clusters.len(), 1, "the model filter sees both sides");
        assert!(index
            .serving_at(at(25), None, Some(&model("embed")))
            .expect("answer")
            .clusters
            .is_empty());
        let at_30 = index.serving_at(at(30), None, None).expect("answer");
        assert_eq!(at_30.clusters[0].transition, None);
        assert_eq!(at_30.clusters[0].since, at(30));
        // A transition with no later change stays open.
        let open = super::TemporalIndex::default();
        let mut open = open;
        open.apply(vec![row("cluster/eu-1", 20, 7, &between, "system")], 100);
        open.set_metadata(vec!["production".into()], vec![meta("eu-1", "production")]);
        let t = open
            .serving_at(at(99), None, None)
            .expect("answer")
            .clusters[0]
            .transition
            .clone()
            .expect("in transition");
        assert_eq!(t.until, None);
    }

    #[test]
    fn new_environments_and_clusters_ask_for_metadata_and_a_corrupt_state_fails_only_when_answered()
    {
        let mut index = index(vec![row(
            "cluster/eu-1",
            10,
            1,
            &state(None, None, SlotName::Blue),
            "alice",
        )]);
        assert!(!index.metadata_stale());
        index.apply(vec![row("cluster/eu-2", 20, 2, "not json", "alice")], 101);
        assert!(index.metadata_stale(), "a cluster never seen needs its row");
        index.set_metadata(
            vec!["development".into(), "staging".into(), "production".into()],
            vec![meta("eu-1", "production"), meta("eu-2", "production")],
        );
        assert!(index.serving_at(at(15), None, None).is_ok());
        assert!(matches!(
            index.serving_at(at(25), None, None),
            Err(StoreError::Corrupt(_))
        ));
        index.apply(vec![row("pin/canary/chat", 20, 3, "v1", "bob")], 102);
        assert!(
            index.metadata_stale(),
            "an environment never seen needs the environments' order"
        );
        index.apply(
            vec![row("pin/development/chat", 30, 4, "not a version!", "bob")],
            103,
        );
        assert!(index.serving_at(at(25), Some("development"), None).is_ok());
        assert!(matches!(
            index.serving_at(at(35), Some("development"), None),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn timeline_lanes_are_the_clusters_that_ever_served_the_model_even_after_a_removal() {
        let lanes = |index: &TemporalIndex| -> Vec<(String, usize)> {
            index
                .clusters_serving(&model("chat"), at(0), at(1_000))
                .expect("answer")
                .into_iter()
                .map(|l| (l.cluster, l.history.len()))
                .collect()
        };
        let mut index = index(vec![
            row("cluster/eu-1", 10, 1, &state(Some("chat:v1"), None, SlotName::Blue), "alice"),
            row("cluster/eu-1", 20, 2, &state(Some("chat:v1"), Some("embed:e1"), SlotName::Green), "alice"),
            // Loaded but never given traffic: not served.
            row("cluster/dev-1", 10, 3, &state(None, Some("chat:v1"), SlotName::Blue), "dave"),
        ]);
        assert_eq!(lanes(&index), vec![("eu-1".to_owned(), 2)]);
        // Removed, then a cluster of the same name that serves only embed
        // (its row arriving first: the removal forgets only what it preceded).
        index.apply(
            vec![
                row("cluster/eu-1", 40, 5, &state(Some("embed:e2"), None, SlotName::Blue), "alice"),
                row("removed-cluster/eu-1", 30, 4, "{}", "alice"),
            ],
            101,
        );
        assert_eq!(index.clusters["eu-1"].changes.len(), 1);
        assert_eq!(lanes(&index), Vec::<(String, usize)>::new());
        index.apply(
            vec![row("cluster/dev-1", 50, 6, &state(None, Some("chat:v2"), SlotName::Green), "dave")],
            102,
        );
        assert_eq!(lanes(&index), vec![("dev-1".to_owned(), 2)]);
        // A change that does not parse fails the answer, as it did before the served set.
        index.apply(vec![row("cluster/eu-1", 60, 7, "not json", "alice")], 103);
        assert!(matches!(
            index.clusters_serving(&model("chat"), at(0), at(1_000)),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn interned_strings_are_shared_and_counted_once() {
        let mut index = TemporalIndex::default();
        index.apply(
            (0..100)
                .map(|i| row("pin/production/chat", i, i, "v1", "bob"))
                .collect(),
            100,
        );
        let f = index.footprint();
        assert_eq!((f.subjects, f.entries), (1, 100));
        assert_eq!(index.strings.len(), 1, "one actor");
    }
}
