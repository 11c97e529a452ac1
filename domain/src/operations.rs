//! Operations on a cluster as persisted state machines: the plan (a list of
//! steps) is computed when the operation is asked for, each step is written
//! before it runs, and the rules here say which plans are safe — a slot is
//! only ever loaded while it carries no traffic — and how a failed operation
//! gets back to serving what it served before.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisTemplate, Decision, Measurement, Outcome};
use crate::clusters::{ClusterState, SlotName, Weights};
use crate::reconcile::RouterIntent;
use crate::{DomainError, FullId, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    BlueGreen,
    Rolling,
    HotReload,
    Rollback,
}

impl OperationKind {
    pub const ALL: [OperationKind; 4] = [
        OperationKind::BlueGreen,
        OperationKind::Rolling,
        OperationKind::HotReload,
        OperationKind::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::BlueGreen => "blue_green",
            OperationKind::Rolling => "rolling",
            OperationKind::HotReload => "hot_reload",
            OperationKind::Rollback => "rollback",
        }
    }

    /// In words, for people: `blue-green switch`.
    pub fn words(self) -> &'static str {
        match self {
            OperationKind::BlueGreen => "blue-green switch",
            OperationKind::Rolling => "rolling update",
            OperationKind::HotReload => "hot reload",
            OperationKind::Rollback => "rollback",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OperationKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "unknown operation kind {s:?}: expected blue_green, rolling or hot_reload"
                ))
            })
    }
}

/// Where an operation is. `Running` is the only state that is not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Running,
    /// Every step done.
    Succeeded,
    /// Aborted before traffic moved: traffic is where it was.
    Failed,
    /// Traffic had moved, then was sent back to what served before.
    RolledBack,
}

impl OperationState {
    pub const ALL: [OperationState; 4] = [
        OperationState::Running,
        OperationState::Succeeded,
        OperationState::Failed,
        OperationState::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Running => "running",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::RolledBack => "rolled_back",
        }
    }

    pub fn is_final(self) -> bool {
        self != OperationState::Running
    }

    /// Only a running operation moves, and only to a final state.
    pub fn check_move(self, to: OperationState) -> Result<(), DomainError> {
        if self == OperationState::Running && to.is_final() {
            Ok(())
        } else {
            Err(DomainError::IllegalMove(format!(
                "an operation moves from running to succeeded, failed or rolled_back, not from {} to {}",
                self.as_str(),
                to.as_str()
            )))
        }
    }
}

impl FromStr for OperationState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DomainError::Invalid(format!("unknown operation state {s:?}")))
    }
}

/// Who or what asked for a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Person,
    HealthGate,
    /// An analysis template's failure limit was reached.
    Analysis,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Person => "person",
            Trigger::HealthGate => "health_gate",
            Trigger::Analysis => "analysis",
        }
    }
}

/// One step of a plan. Written as an object with an `action` and the
/// variant's fields side by side (`{"action": "load", "slot": "green", …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// Make `slot` hold exactly `full_id` (the slot carries no traffic).
    Load { slot: SlotName, full_id: FullId },
    /// Wait until the version answers ready and the router sees the slot up.
    WaitReady { slot: SlotName, full_id: FullId },
    /// One real inference request straight to the slot; it must answer as `full_id`.
    Smoke { slot: SlotName, full_id: FullId },
    /// Set the router's weights (all on one slot: an atomic switch).
    Shift { weights: Weights },
    /// Check every slot with traffic is ready and healthy, then run the
    /// operation's analysis templates, if any.
    Gate,
    /// Unload the previous version from `slot` (no traffic) once the bake
    /// passed: the seed's "decommission blue after the confidence period".
    Release { slot: SlotName, full_id: FullId },
    /// Update the pods of `slot`, which keeps its traffic, to `full_id` in
    /// place with the platform's own rolling update (`kubectl set image`),
    /// watched until complete; a rollout that fails is undone to the
    /// previous revision by the driver. Only for drivers that roll in
    /// place (`DriverKind::plans_in_place`).
    Roll { slot: SlotName, full_id: FullId },
}

impl Step {
    /// Whether the step changes what serves traffic.
    pub fn moves_traffic(&self) -> bool {
        matches!(self, Step::Shift { .. })
    }

    /// Whether the step changes which version serves traffic: a shift of
    /// the router's weights, or a rolling update of the serving slot in
    /// place (the bake time counts from it).
    pub fn changes_serving(&self) -> bool {
        matches!(self, Step::Shift { .. } | Step::Roll { .. })
    }

    /// The cluster state once the step is done, from the state before it.
    pub fn after(&self, s: &ClusterState) -> ClusterState {
        match self {
            Step::Load { slot, full_id } | Step::Roll { slot, full_id } => {
                s.with_version(*slot, Some(full_id.clone()))
            }
            Step::Shift { weights } => s.with_weights(*weights),
            Step::Release { slot, .. } => s.with_version(*slot, None),
            _ => s.clone(),
        }
    }

    /// The state written before the step runs: a slot being loaded holds
    /// nothing we can vouch for until the load is done.
    pub fn during(&self, s: &ClusterState) -> Option<ClusterState> {
        match self {
            Step::Load { slot, .. } if s.version(*slot).is_some() => {
                Some(s.with_version(*slot, None))
            }
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Step::Load { slot, full_id } => format!("load {full_id} into {slot}"),
            Step::WaitReady { slot, full_id } => format!("wait until {full_id} in {slot} is ready"),
            Step::Smoke { slot, full_id } => format!("smoke request to {full_id} in {slot}"),
            Step::Shift { weights } => match weights.sole() {
                Some(slot) => format!("switch all traffic to {slot}"),
                None => format!(
                    "shift traffic to blue {} / green {}",
                    weights.blue, weights.green
                ),
            },
            Step::Gate => "health gate".to_owned(),
            Step::Release { slot, full_id } => {
                format!("release {full_id} from {slot} after the bake")
            }
            Step::Roll { slot, full_id } => {
                format!("rolling update of {slot} to {full_id} in place")
            }
        }
    }
}

/// The rolling steps used when none are given: percent of traffic on the new slot.
pub const DEFAULT_ROLLING_STEPS: [u8; 3] = [10, 50, 100];

/// Checks rolling steps: strictly increasing percentages ending at 100.
pub fn check_rolling_steps(steps: &[u8]) -> Result<(), DomainError> {
    let increasing = steps.windows(2).all(|w| w[0] < w[1]);
    if steps.is_empty()
        || !increasing
        || steps.last() != Some(&100)
        || steps[0] == 0
        || steps.len() > 20
    {
        return Err(DomainError::Invalid(format!(
            "rolling steps must be 1 to 20 strictly increasing percentages ending at 100, e.g. [10, 50, 100], not {steps:?}"
        )));
    }
    Ok(())
}

fn refuse(msg: String) -> DomainError {
    DomainError::Conflict(msg)
}

/// The slot that will receive a new version: the one with no traffic.
fn idle(state: &ClusterState) -> Result<SlotName, DomainError> {
    state.idle_slot().ok_or_else(|| {
        refuse(
            "traffic is split between the slots; finish or roll back the rolling update first"
                .to_owned(),
        )
    })
}

/// Steps that put `target` in `slot` (no traffic there) unless it already holds it.
fn deploy(state: &ClusterState, slot: SlotName, target: &FullId, smoke: bool) -> Vec<Step> {
    if state.version(slot) == Some(target) {
        return vec![Step::WaitReady {
            slot,
            full_id: target.clone(),
        }];
    }
    let mut steps = vec![
        Step::Load {
            slot,
            full_id: target.clone(),
        },
        Step::WaitReady {
            slot,
            full_id: target.clone(),
        },
    ];
    if smoke {
        steps.push(Step::Smoke {
            slot,
            full_id: target.clone(),
        });
    }
    steps
}

/// The models a cluster serves: those of the versions its slots hold. A
/// cluster that holds nothing yet takes the model of its first deployment.
pub fn served_models(state: &ClusterState) -> Vec<&crate::ModelId> {
    let mut models: Vec<&crate::ModelId> = Vec::new();
    for slot in [SlotName::Blue, SlotName::Green] {
        if let Some(v) = state.version(slot) {
            if !models.contains(&&v.model_id) {
                models.push(&v.model_id);
            }
        }
    }
    models
}

/// Refuses (422) a version of a model the cluster does not serve: a switch
/// must never put another model behind the cluster's traffic.
pub fn check_model(state: &ClusterState, target: &FullId) -> Result<(), DomainError> {
    let models = served_models(state);
    if models.is_empty() || models.contains(&&target.model_id) {
        return Ok(());
    }
    let names: Vec<&str> = models.iter().map(|m| m.as_str()).collect();
    Err(DomainError::Invalid(format!(
        "{target} is a version of model {}, but this cluster serves {}; an operation deploys only a version of a model the cluster serves",
        target.model_id,
        names.join(", ")
    )))
}

/// Refuses (422) `steps` for any kind but a rolling update, instead of
/// ignoring them.
pub fn check_steps_given(kind: OperationKind, steps: Option<&[u8]>) -> Result<(), DomainError> {
    match (kind, steps) {
        (OperationKind::Rolling, Some(steps)) => check_rolling_steps(steps),
        (_, None) => Ok(()),
        (kind, Some(_)) => Err(DomainError::Invalid(format!(
            "steps apply to rolling updates only; a {} operation takes none",
            kind.as_str()
        ))),
    }
}

/// The plan of an operation of `kind` bringing `target` into service.
pub fn plan(
    kind: OperationKind,
    state: &ClusterState,
    target: &FullId,
    rolling: &[u8],
) -> Result<Vec<Step>, DomainError> {
    check_model(state, target)?;
    if state.sole_version() == Some(target) {
        return Err(refuse(format!("{target} already serves all traffic")));
    }
    let plan = match kind {
        OperationKind::BlueGreen | OperationKind::Rollback => {
            let slot = idle(state)?;
            let mut steps = deploy(state, slot, target, true);
            steps.push(Step::Shift {
                weights: Weights::all_on(slot),
            });
            steps
        }
        OperationKind::Rolling => {
            // No steps given: the default ones.
            let rolling = if rolling.is_empty() {
                &DEFAULT_ROLLING_STEPS[..]
            } else {
                rolling
            };
            check_rolling_steps(rolling)?;
            let slot = idle(state)?;
            let mut steps = deploy(state, slot, target, true);
            for &p in rolling {
                steps.push(Step::Shift {
                    weights: Weights::split(slot, p),
                });
                steps.push(Step::Gate);
            }
            steps
        }
        OperationKind::HotReload => {
            // The live slot is reloaded only once its traffic has moved to a
            // copy of the serving version in the other slot: a model server
            // busy loading cannot answer.
            let live = state.weights.sole().ok_or_else(|| {
                refuse("traffic is split between the slots; finish or roll back the rolling update first".to_owned())
            })?;
            let serving = state.version(live).cloned().ok_or_else(|| {
                refuse(
                    "nothing is serving yet: deploy with blue_green first, then hot reload"
                        .to_owned(),
                )
            })?;
            let carrier = live.other();
            let mut steps = deploy(state, carrier, &serving, false);
            steps.push(Step::Shift {
                weights: Weights::all_on(carrier),
            });
            steps.push(Step::Load {
                slot: live,
                full_id: target.clone(),
            });
            steps.push(Step::WaitReady {
                slot: live,
                full_id: target.clone(),
            });
            steps.push(Step::Smoke {
                slot: live,
                full_id: target.clone(),
            });
            steps.push(Step::Shift {
                weights: Weights::all_on(live),
            });
            steps
        }
    };
    debug_assert!(loads_only_idle_slots(state, &plan));
    Ok(plan)
}

/// The plan of an operation of `kind` on a cluster that updates in place
/// (`DriverKind::plans_in_place`): the slot with all traffic is updated to
/// `target` by the platform's own rollout, paced by the platform (a
/// Deployment's `maxSurge` / `maxUnavailable`, an Argo Rollout's strategy),
/// so `rolling` steps (split weights) cannot be set and are refused. The
/// other slot is left as it is. A rolling update needs something serving;
/// a blue-green switch (or a rollback) in place may be the first deploy. A
/// hot reload needs two slots and is refused.
pub fn plan_in_place(
    kind: OperationKind,
    state: &ClusterState,
    target: &FullId,
    rolling: &[u8],
) -> Result<Vec<Step>, DomainError> {
    check_model(state, target)?;
    if kind == OperationKind::HotReload {
        return Err(DomainError::Invalid(
            "a hot reload moves traffic to a copy in the other slot, and this cluster updates one \
             object in place (an Argo Rollout): use blue_green"
                .to_owned(),
        ));
    }
    if !rolling.is_empty() {
        return Err(DomainError::Invalid(format!(
            "a rolling update on this cluster is the platform's own (kubectl set image): its pace is \
             the Deployment's maxSurge and maxUnavailable, not traffic percentages; leave `steps` \
             out (got {rolling:?})"
        )));
    }
    if state.sole_version() == Some(target) {
        return Err(refuse(format!("{target} already serves all traffic")));
    }
    let live = state.weights.sole().ok_or_else(|| {
        refuse(
            "traffic is split between the slots; finish or roll back the rolling update first"
                .to_owned(),
        )
    })?;
    if state.version(live).is_none() && kind == OperationKind::Rolling {
        return Err(refuse(
            "nothing is serving yet: deploy with blue_green first, then update it in place"
                .to_owned(),
        ));
    }
    Ok(vec![Step::Roll {
        slot: live,
        full_id: target.clone(),
    }])
}

/// Longest bake time: a day.
pub const MAX_BAKE_MS: u64 = 86_400_000;

/// The moment the last gate of `op` may pass: its bake time after the last
/// traffic step was done (`None`: no bake, or no traffic step done yet).
pub fn bake_until(op: &Operation) -> Option<Timestamp> {
    let bake = op.bake_ms?;
    let switched = op
        .steps
        .iter()
        .rev()
        .find(|r| r.step.changes_serving() && !r.restore && r.state == StepState::Done)?
        .finished_at?;
    let ms = i64::try_from(bake.min(MAX_BAKE_MS)).unwrap_or(0);
    Some(Timestamp::from_micros(switched.micros() + ms * 1000))
}

/// The plan with a gate after its last traffic step when analysis templates
/// (or a bake time) are attached: a rolling update already gates every step; a blue-green
/// switch and a hot reload get one after the switch, where the analysis
/// bakes the new version while the old one stays loaded for an instant
/// rollback. A rollback is never gated: it returns to what served before.
pub fn with_analysis(
    kind: OperationKind,
    mut plan: Vec<Step>,
    analysed: bool,
) -> Result<Vec<Step>, DomainError> {
    if !analysed {
        return Ok(plan);
    }
    if kind == OperationKind::Rollback {
        return Err(DomainError::Invalid(
            "a rollback takes no analysis: it returns to what served before at once".to_owned(),
        ));
    }
    if !matches!(plan.last(), Some(Step::Gate)) {
        plan.push(Step::Gate);
    }
    Ok(plan)
}

/// With `pre_switch`, a gate before the first traffic step that gives
/// `target` traffic: the templates marked `pre_switch` measure the newly
/// loaded slot while it still has none, and a failure there fails the
/// operation before anything moved. A hot reload's first traffic step moves
/// traffic to a copy of what serves, so its gate comes before the last one.
pub fn with_pre_switch_gate(
    state: &ClusterState,
    target: &FullId,
    mut plan: Vec<Step>,
    pre_switch: bool,
) -> Vec<Step> {
    if !pre_switch {
        return plan;
    }
    let mut s = state.clone();
    let mut at = None;
    for (i, step) in plan.iter().enumerate() {
        let after = step.after(&s);
        if step.moves_traffic() && carries(&after, target) {
            at = Some(i);
            break;
        }
        s = after;
    }
    if let Some(i) = at {
        plan.insert(i, Step::Gate);
    }
    plan
}

/// Whether `target` has traffic in `state`.
fn carries(state: &ClusterState, target: &FullId) -> bool {
    state.serving().into_iter().any(|(_, v, _)| v == target)
}

/// Whether a gate run in `state` is a pre-switch gate of an operation
/// bringing `target` into service: `target` has no traffic yet.
pub fn is_pre_switch(state: &ClusterState, target: &FullId) -> bool {
    !carries(state, target)
}

/// With a bake time, a `Release` after the last gate: once the bake passed,
/// the slot left without traffic gives up the previous version it kept
/// loaded for an instant rollback (every driver can: the kubernetes driver
/// scales the idle Deployment to 0). Not when nothing is left behind.
pub fn with_release(state: &ClusterState, mut plan: Vec<Step>, baked: bool) -> Vec<Step> {
    if !baked || !matches!(plan.last(), Some(Step::Gate)) {
        return plan;
    }
    let end = plan.iter().fold(state.clone(), |s, step| step.after(&s));
    let Some(live) = end.weights.sole() else {
        return plan;
    };
    let idle = live.other();
    if let Some(previous) = end.version(idle).cloned() {
        plan.push(Step::Release {
            slot: idle,
            full_id: previous,
        });
    }
    plan
}

/// Whether every `Load` in `plan` hits a slot without traffic at that point.
pub fn loads_only_idle_slots(start: &ClusterState, plan: &[Step]) -> bool {
    let mut s = start.clone();
    for step in plan {
        if let Step::Load { slot, .. } = step {
            if s.weights.of(*slot) > 0 {
                return false;
            }
        }
        s = step.after(&s);
    }
    true
}

/// How to get back to serving `before` from `now` after a failure: `None`
/// when traffic never moved (nothing to undo). Restoring never loads a slot:
/// it shifts traffic to slots that still hold what served before — except
/// after a rolling update in place (`Step::Roll`), where no slot holds it
/// any more but traffic never left its slot: that slot is rolled back to it.
pub fn restore_plan(
    before: &ClusterState,
    now: &ClusterState,
) -> Result<Option<Step>, DomainError> {
    let versions = |s: &ClusterState| {
        let mut v: Vec<(FullId, u8)> = s
            .serving()
            .into_iter()
            .map(|(_, v, w)| (v.clone(), w))
            .collect();
        v.sort();
        v
    };
    if versions(before) == versions(now) {
        return Ok(None);
    }
    if let Some(v) = before.sole_version() {
        // Any slot still holding it will do (a hot reload leaves the copy in the other slot).
        if let Some(slot) = SlotName::ALL
            .into_iter()
            .find(|s| now.version(*s) == Some(v))
        {
            return Ok(Some(Step::Shift {
                weights: Weights::all_on(slot),
            }));
        }
        // Updated in place: the slot that served it still has all the traffic.
        if let Some(live) = before
            .weights
            .sole()
            .filter(|_| now.weights == before.weights)
        {
            return Ok(Some(Step::Roll {
                slot: live,
                full_id: v.clone(),
            }));
        }
        return Err(refuse(format!(
            "no slot holds {v} any more; traffic cannot be restored without loading it"
        )));
    }
    let same_slots = SlotName::ALL
        .into_iter()
        .all(|s| before.weights.of(s) == 0 || before.version(s) == now.version(s));
    if same_slots {
        Ok(Some(Step::Shift {
            weights: before.weights,
        }))
    } else {
        Err(refuse(
            "the slots no longer hold what served before".to_owned(),
        ))
    }
}

/// Requests a router sent to one slot and how many of them failed, counted
/// since the router started (counters only grow, unless the router restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Traffic {
    pub requests: u64,
    pub errors: u64,
}

impl Traffic {
    /// What happened between `earlier` and `self`. Counters that went down
    /// mean the router restarted in between: then `self` counts from zero.
    pub fn since(self, earlier: Traffic) -> Traffic {
        if self.requests < earlier.requests || self.errors < earlier.errors {
            return self;
        }
        Traffic {
            requests: self.requests - earlier.requests,
            errors: self.errors - earlier.errors,
        }
    }
}

/// The error-rate part of a rolling update's health gate: after each
/// traffic step, the new version's requests are watched for `window_ms`; if
/// more than `max_error_percent` of them fail the operation rolls back
/// (trigger `health_gate`). Fewer than `min_requests` in the window is too
/// little to judge, and passes (readiness is still checked).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatePolicy {
    pub max_error_percent: f64,
    pub min_requests: u64,
    pub window_ms: u64,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            max_error_percent: 5.0,
            min_requests: 20,
            window_ms: 1000,
        }
    }
}

impl GatePolicy {
    /// Checks a policy given in a cluster's config.
    pub fn check(&self) -> Result<(), DomainError> {
        if !(0.0..=100.0).contains(&self.max_error_percent) || self.window_ms > 600_000 {
            return Err(DomainError::Invalid(format!(
                "health_gate: max_error_percent must be 0 to 100 and window_ms at most 600000, not {} and {}",
                self.max_error_percent, self.window_ms
            )));
        }
        Ok(())
    }

    /// Judges what `slot` served during the window: `Ok` with a note to keep,
    /// or `Err` saying why the gate fails.
    pub fn judge(&self, slot: SlotName, seen: Traffic) -> Result<String, String> {
        let window = format!("{:.1} s", self.window_ms as f64 / 1000.0);
        if seen.requests < self.min_requests.max(1) {
            return Ok(format!(
                "error rate not judged: {} requests to {slot} in {window} (fewer than {})",
                seen.requests,
                self.min_requests.max(1)
            ));
        }
        let rate = seen.errors as f64 * 100.0 / seen.requests as f64;
        let text = format!(
            "error rate {rate:.2}% ({} of {} requests) on {slot} over {window}",
            seen.errors, seen.requests
        );
        if rate > self.max_error_percent {
            Err(format!("{text} exceeds {}%", self.max_error_percent))
        } else {
            Ok(text)
        }
    }
}

/// The progress of one step, as persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
}

/// A step with its progress: the step's fields and the progress side by
/// side in one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(flatten)]
    pub step: Step,
    pub state: StepState,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// What happened: an error, or the measured switch time.
    pub note: Option<String>,
    /// Whether this step restores traffic after a failure (not part of the plan).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore: bool,
    /// A gate's analysis measurements, in the order taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
}

impl StepRecord {
    pub fn pending(step: Step) -> StepRecord {
        StepRecord {
            step,
            state: StepState::Pending,
            started_at: None,
            finished_at: None,
            note: None,
            restore: false,
            measurements: Vec::new(),
        }
    }
}

/// Why and since when an operation waits for a person (it keeps the
/// cluster: no other operation starts until it is continued or rolled back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// The step it stopped at: the gate whose analysis was inconclusive, or
    /// the next step to run when a person paused it.
    pub step: usize,
    pub at: Timestamp,
    pub reason: String,
    /// Who paused it; absent when an inconclusive analysis did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// An operation, as `GET /api/v1/operations/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: i64,
    pub cluster: String,
    pub kind: OperationKind,
    pub full_id: FullId,
    pub state: OperationState,
    pub steps: Vec<StepRecord>,
    /// Index of the next step to run (== steps.len() when all are done).
    pub next_step: usize,
    /// What served before; a failure goes back to it.
    pub before: ClusterState,
    pub reason: Option<String>,
    pub actor: String,
    pub trigger: Option<Trigger>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The router change of the traffic step now running, written before it
    /// is sent; a runner that resumes the operation reconciles it with the
    /// router (`reconcile`). `None` between steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<RouterIntent>,
    /// The analysis templates its gates run (copies taken when it started).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<AnalysisTemplate>,
    /// Set while it waits for a person after an inconclusive analysis; no
    /// runner claims it then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// Bake time: its last gate passes no sooner than this many
    /// milliseconds after the last traffic step, the old slot loaded meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_ms: Option<u64>,
}

/// What a runner reports about an operation it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Step `index` is about to run (written before it runs).
    StepStarted { index: usize },
    /// Step `index` ran; `note` says what was measured.
    StepDone { index: usize, note: Option<String> },
    /// Step `index` failed with `error`.
    StepFailed { index: usize, error: String },
    /// A step that restores traffic after a failure, appended to the plan.
    RestoreAdded { step: Step, trigger: Trigger },
    /// A gate step took an analysis measurement.
    Measured {
        index: usize,
        measurement: Measurement,
    },
    /// A gate step's analysis was inconclusive: wait for a person.
    Paused { index: usize, reason: String },
    /// A person pauses the running operation before its next step (the
    /// runner stops at its next write; the interrupted step runs again on resume).
    PauseRequested { by: String, reason: String },
    /// A person answered the pause at step `index`.
    Decided {
        index: usize,
        decision: Decision,
        by: String,
        reason: String,
    },
    /// The operation ends in `state`.
    Finished {
        state: OperationState,
        error: Option<String>,
    },
}

impl Operation {
    /// Who and what a step's ledger event acts for (its actor is the runner,
    /// `system`): `blue-green switch #7 to chat:2, started by alice: canary ok`.
    pub fn provenance(&self) -> String {
        let mut s = format!(
            "{} #{} to {}, started by {}",
            self.kind.words(),
            self.id,
            self.full_id,
            self.actor
        );
        if let Some(reason) = self.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            s.push_str(": ");
            s.push_str(reason);
        }
        s
    }

    /// Applies `progress` to the operation and to the cluster state `cluster`
    /// (as last written), returning the cluster state to write if it changes.
    pub fn apply(
        &mut self,
        progress: &Progress,
        cluster: &ClusterState,
        at: Timestamp,
    ) -> Result<Option<ClusterState>, DomainError> {
        if self.state.is_final() {
            return Err(DomainError::Conflict(format!(
                "operation {} is already {}",
                self.id,
                self.state.as_str()
            )));
        }
        let step_at =
            |op: &mut Operation, index: usize, expect: &[StepState]| -> Result<(), DomainError> {
                match op.steps.get(index) {
                    Some(r) if expect.contains(&r.state) && index == op.next_step => Ok(()),
                    _ => Err(DomainError::Conflict(format!(
                        "operation {} is at step {}, not {index}",
                        op.id, op.next_step
                    ))),
                }
            };
        if self.paused.is_some() && !matches!(progress, Progress::Decided { .. }) {
            return Err(DomainError::Conflict(format!(
                "operation {} is paused: continue it or roll it back",
                self.id
            )));
        }
        match progress {
            Progress::Measured { index, measurement } => {
                step_at(self, *index, &[StepState::Running])?;
                self.steps[*index].measurements.push(measurement.clone());
                Ok(None)
            }
            Progress::Paused { index, reason } => {
                step_at(self, *index, &[StepState::Running])?;
                self.paused = Some(Pause {
                    step: *index,
                    at,
                    reason: reason.clone(),
                    by: None,
                });
                Ok(None)
            }
            Progress::PauseRequested { by, reason } => {
                if self.kind == OperationKind::Rollback || self.steps.iter().any(|r| r.restore) {
                    return Err(DomainError::Conflict(format!(
                        "operation {} is sending traffic back to what served before; a rollback is never paused",
                        self.id
                    )));
                }
                if self.intent.is_some() {
                    return Err(DomainError::Conflict(format!(
                        "operation {} is telling the router to move traffic right now; try again in a moment",
                        self.id
                    )));
                }
                if self.next_step >= self.steps.len() {
                    return Err(DomainError::Conflict(format!(
                        "operation {} has run every step and is finishing",
                        self.id
                    )));
                }
                self.paused = Some(Pause {
                    step: self.next_step,
                    at,
                    reason: reason.clone(),
                    by: Some(by.clone()),
                });
                Ok(None)
            }
            Progress::Decided {
                index,
                decision,
                by,
                reason,
            } => {
                if self.paused.as_ref().map(|p| p.step) != Some(*index) {
                    return Err(DomainError::Conflict(format!(
                        "operation {} is not paused{}; only a paused operation is continued or rolled back this way",
                        self.id,
                        if self.paused.is_some() { " at that step" } else { "" }
                    )));
                }
                let by_person = self.paused.as_ref().and_then(|p| p.by.clone());
                if let Some(paused_by) = by_person {
                    // Paused by a person between steps (or mid-step): resume
                    // where it stopped, or fail that step and restore.
                    step_at(self, *index, &[StepState::Pending, StepState::Running])?;
                    let why = self.paused.take().map(|p| p.reason).unwrap_or_default();
                    if *decision == Decision::RollBack {
                        let note = format!(
                            "rolled back by {by} ({reason}) while paused by {paused_by} ({why})"
                        );
                        let r = &mut self.steps[*index];
                        r.state = StepState::Failed;
                        r.started_at.get_or_insert(at);
                        r.finished_at = Some(at);
                        r.note = Some(note.clone());
                        self.error = Some(note);
                        self.trigger = Some(Trigger::Person);
                        self.steps.truncate(*index + 1);
                        self.next_step = *index + 1;
                    }
                    return Ok(None);
                }
                step_at(self, *index, &[StepState::Running])?;
                let why = self.paused.take().map(|p| p.reason).unwrap_or_default();
                let r = &mut self.steps[*index];
                r.finished_at = Some(at);
                match decision {
                    Decision::Continue => {
                        r.state = StepState::Done;
                        r.note = Some(format!("continued by {by} ({reason}) after: {why}"));
                        self.next_step += 1;
                    }
                    Decision::RollBack => {
                        let note = format!("rolled back by {by} ({reason}) after: {why}");
                        r.state = StepState::Failed;
                        r.note = Some(note.clone());
                        self.error = Some(note);
                        self.trigger = Some(Trigger::Person);
                        self.steps.truncate(*index + 1);
                        self.next_step = *index + 1;
                    }
                }
                Ok(None)
            }
            Progress::StepStarted { index } => {
                // A step found running was interrupted (the runner died): it runs again.
                step_at(self, *index, &[StepState::Pending, StepState::Running])?;
                let r = &mut self.steps[*index];
                r.state = StepState::Running;
                // A step run again keeps its first start: the switch window
                // must cover the time a crashed runner left it half-done.
                r.started_at.get_or_insert(at);
                let step = r.step.clone();
                // What is about to be sent to the router, durable before it is.
                self.intent = step.moves_traffic().then(|| RouterIntent {
                    step: *index,
                    from: cluster.clone(),
                    to: step.after(cluster),
                    at,
                });
                Ok(step.during(cluster))
            }
            Progress::StepDone { index, note } => {
                step_at(self, *index, &[StepState::Running])?;
                let r = &mut self.steps[*index];
                r.state = StepState::Done;
                r.finished_at = Some(at);
                r.note.clone_from(note);
                self.next_step += 1;
                self.intent = None;
                let after = r.step.after(cluster);
                Ok((after != *cluster).then_some(after))
            }
            Progress::StepFailed { index, error } => {
                step_at(self, *index, &[StepState::Running])?;
                let r = &mut self.steps[*index];
                r.state = StepState::Failed;
                r.finished_at = Some(at);
                r.note = Some(error.clone());
                self.error = Some(error.clone());
                self.intent = None;
                // The rest of the plan is dropped: only a restore step may follow.
                self.steps.truncate(*index + 1);
                self.next_step = *index + 1;
                Ok(None)
            }
            Progress::RestoreAdded { step, trigger } => {
                self.steps.push(StepRecord {
                    restore: true,
                    ..StepRecord::pending(step.clone())
                });
                self.trigger = Some(*trigger);
                Ok(None)
            }
            Progress::Finished { state, error } => {
                self.state.check_move(*state)?;
                if *state == OperationState::Succeeded && self.must_restore_or_fail() {
                    return Err(DomainError::Conflict(format!(
                        "operation {} cannot succeed with steps failed or left",
                        self.id
                    )));
                }
                self.state = *state;
                self.finished_at = Some(at);
                if error.is_some() {
                    self.error.clone_from(error);
                }
                Ok(None)
            }
        }
    }

    /// Whether a step of the plan failed or was left undone, so the
    /// operation cannot succeed. A failed `Release` does not count: the new
    /// version passed its gates and serves; the previous one merely stays
    /// loaded (the step's note and the operation's error say why).
    pub fn must_restore_or_fail(&self) -> bool {
        self.steps.iter().any(|r| {
            r.state != StepState::Done
                && !(r.state == StepState::Failed && matches!(r.step, Step::Release { .. }))
        })
    }

    /// Whether `index` is the operation's last gate: the one that bakes.
    pub fn is_last_gate(&self, index: usize) -> bool {
        self.steps
            .iter()
            .rposition(|r| r.step == Step::Gate && !r.restore)
            == Some(index)
    }

    /// The step to run next, if any.
    pub fn next(&self) -> Option<&Step> {
        self.steps.get(self.next_step).map(|r| &r.step)
    }

    /// Who or what a rollback after a failed step answers to: a person who
    /// chose it, a gate's analysis that reached its failure limit, or the
    /// built-in health gate.
    pub fn failure_trigger(&self) -> Trigger {
        if let Some(t) = self.trigger {
            return t;
        }
        let failed = self
            .steps
            .iter()
            .find(|r| r.state == StepState::Failed && !r.restore);
        let analysis_failed = failed.is_some_and(|r| {
            self.analysis
                .iter()
                .any(|t| matches!(t.outcome(&r.measurements), Outcome::Failed(_)))
        });
        if analysis_failed {
            Trigger::Analysis
        } else {
            Trigger::HealthGate
        }
    }

    /// Whether a runner already worked on it (a new claim is then a resumption).
    pub fn has_progress(&self) -> bool {
        self.steps.iter().any(|r| r.state != StepState::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("a full id")
    }

    fn blue_serves(v: &str) -> ClusterState {
        ClusterState {
            blue: Some(id(v)),
            green: None,
            weights: Weights::all_on(SlotName::Blue),
        }
    }

    #[test]
    fn an_operation_deploys_only_a_version_of_a_model_the_cluster_serves() {
        let chat = blue_serves("chat:v1");
        for kind in [
            OperationKind::BlueGreen,
            OperationKind::Rolling,
            OperationKind::HotReload,
        ] {
            let refused = plan(kind, &chat, &id("rerank:v1"), &DEFAULT_ROLLING_STEPS)
                .expect_err("another model is refused");
            assert!(
                matches!(&refused, DomainError::Invalid(m) if m.contains("serves chat")),
                "{refused:?}"
            );
        }
        assert!(plan(OperationKind::BlueGreen, &chat, &id("chat:v2"), &[]).is_ok());
        let empty = ClusterState::default();
        assert!(
            plan(OperationKind::BlueGreen, &empty, &id("rerank:v1"), &[]).is_ok(),
            "an empty cluster takes its first model"
        );
    }

    #[test]
    fn steps_are_refused_for_any_operation_but_a_rolling_update() {
        assert!(check_steps_given(OperationKind::Rolling, Some(&[10, 100])).is_ok());
        assert!(check_steps_given(OperationKind::BlueGreen, None).is_ok());
        for kind in [OperationKind::BlueGreen, OperationKind::HotReload] {
            assert!(matches!(
                check_steps_given(kind, Some(&[10, 100])),
                Err(DomainError::Invalid(m)) if m.contains("rolling updates only")
            ));
        }
    }

    #[test]
    fn steps_read_back_what_they_write_and_name_what_is_missing() {
        let steps = vec![
            Step::Load {
                slot: SlotName::Green,
                full_id: id("chat:v2"),
            },
            Step::WaitReady {
                slot: SlotName::Green,
                full_id: id("chat:v2"),
            },
            Step::Smoke {
                slot: SlotName::Blue,
                full_id: id("chat:v1"),
            },
            Step::Shift {
                weights: Weights::all_on(SlotName::Green),
            },
            Step::Gate,
        ];
        let mut records: Vec<StepRecord> = steps.iter().cloned().map(StepRecord::pending).collect();
        records[3].state = StepState::Done;
        records[3].note = Some("switched in 4 ms".into());
        records[4].restore = true;
        let json = serde_json::to_value(&records).expect("serializes");
        assert_eq!(
            json[0],
            serde_json::json!({
                "action": "load", "slot": "green", "full_id": "chat:v2",
                "state": "pending", "started_at": null, "finished_at": null, "note": null,
            })
        );
        assert_eq!(json[4]["restore"], true);
        let back: Vec<StepRecord> = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, records);
        let plain: Vec<Step> =
            serde_json::from_value(serde_json::to_value(&steps).expect("serializes"))
                .expect("reads back");
        assert_eq!(plain, steps);

        let err = |v: serde_json::Value| {
            serde_json::from_value::<Step>(v)
                .expect_err("refused")
                .to_string()
        };
        assert!(err(serde_json::json!({"action": "load", "slot": "blue"})).contains("`full_id`"));
        assert!(err(serde_json::json!({"action": "shift"})).contains("`weights`"));
        assert!(err(serde_json::json!({"action": "dance"})).contains("unknown variant"));
        assert!(
            serde_json::from_value::<StepRecord>(serde_json::json!({"action": "gate"})).is_err(),
            "state is required"
        );
    }

    fn actions(plan: &[Step]) -> Vec<String> {
        plan.iter().map(Step::describe).collect()
    }

    #[test]
    fn a_blue_green_switch_loads_the_idle_slot_checks_it_and_then_switches_atomically() {
        let p = plan(
            OperationKind::BlueGreen,
            &blue_serves("chat:1"),
            &id("chat:2"),
            &[],
        )
        .expect("a plan");
        assert_eq!(
            actions(&p),
            [
                "load chat:2 into green",
                "wait until chat:2 in green is ready",
                "smoke request to chat:2 in green",
                "switch all traffic to green"
            ]
        );
    }

    #[test]
    fn switching_back_to_a_version_the_idle_slot_still_holds_needs_no_load() {
        let s = ClusterState {
            blue: Some(id("chat:1")),
            green: Some(id("chat:2")),
            weights: Weights::all_on(SlotName::Green),
        };
        let p = plan(OperationKind::Rollback, &s, &id("chat:1"), &[]).expect("a plan");
        assert_eq!(
            actions(&p),
            [
                "wait until chat:1 in blue is ready",
                "switch all traffic to blue"
            ]
        );
    }

    #[test]
    fn a_rolling_update_shifts_in_the_given_steps_with_a_gate_after_each() {
        let p = plan(
            OperationKind::Rolling,
            &blue_serves("chat:1"),
            &id("chat:2"),
            &[10, 50, 100],
        )
        .expect("a plan");
        let shifts: Vec<_> = p
            .iter()
            .filter_map(|s| match s {
                Step::Shift { weights } => Some(weights.green),
                _ => None,
            })
            .collect();
        assert_eq!(shifts, [10, 50, 100]);
        assert_eq!(p.iter().filter(|s| **s == Step::Gate).count(), 3);
        // None given (empty) is the default steps; an empty list sent is
        // refused by `check_steps_given` (see the in-place test).
        for bad in [&[50, 10, 100][..], &[10, 50], &[0, 100], &[10, 10, 100]] {
            assert!(
                plan(
                    OperationKind::Rolling,
                    &blue_serves("chat:1"),
                    &id("chat:2"),
                    bad
                )
                .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_hot_reload_moves_traffic_to_a_copy_before_reloading_the_live_slot() {
        let p = plan(
            OperationKind::HotReload,
            &blue_serves("chat:1"),
            &id("chat:2"),
            &[],
        )
        .expect("a plan");
        assert_eq!(
            actions(&p),
            [
                "load chat:1 into green",
                "wait until chat:1 in green is ready",
                "switch all traffic to green",
                "load chat:2 into blue",
                "wait until chat:2 in blue is ready",
                "smoke request to chat:2 in blue",
                "switch all traffic to blue"
            ]
        );
    }

    #[test]
    fn no_plan_ever_loads_a_slot_that_carries_traffic() {
        let states = [
            blue_serves("chat:1"),
            ClusterState {
                blue: Some(id("chat:1")),
                green: Some(id("chat:3")),
                weights: Weights::all_on(SlotName::Green),
            },
            ClusterState::default(),
        ];
        for s in &states {
            for kind in OperationKind::ALL {
                if let Ok(p) = plan(kind, s, &id("chat:2"), &DEFAULT_ROLLING_STEPS) {
                    assert!(loads_only_idle_slots(s, &p), "{kind} from {s:?}");
                }
            }
        }
    }

    #[test]
    fn operations_are_refused_while_traffic_is_split_or_when_the_target_already_serves() {
        let split = ClusterState {
            blue: Some(id("chat:1")),
            green: Some(id("chat:2")),
            weights: Weights::split(SlotName::Green, 50),
        };
        assert!(plan(OperationKind::BlueGreen, &split, &id("chat:3"), &[]).is_err());
        assert!(plan(
            OperationKind::BlueGreen,
            &blue_serves("chat:1"),
            &id("chat:1"),
            &[]
        )
        .is_err());
        assert!(plan(
            OperationKind::HotReload,
            &ClusterState::default(),
            &id("chat:1"),
            &[]
        )
        .is_err());
    }

    #[test]
    fn restoring_shifts_back_to_a_slot_holding_what_served_before_and_nothing_if_traffic_never_moved(
    ) {
        let before = blue_serves("chat:1");
        assert_eq!(
            restore_plan(
                &before,
                &before.with_version(SlotName::Green, Some(id("chat:2")))
            ),
            Ok(None)
        );
        let mid_rolling = ClusterState {
            blue: Some(id("chat:1")),
            green: Some(id("chat:2")),
            weights: Weights::split(SlotName::Green, 50),
        };
        assert_eq!(
            restore_plan(&before, &mid_rolling),
            Ok(Some(Step::Shift {
                weights: Weights::all_on(SlotName::Blue)
            }))
        );
        // A hot reload that failed after switching to the reloaded blue: the copy in green serves again.
        let hot = ClusterState {
            blue: Some(id("chat:2")),
            green: Some(id("chat:1")),
            weights: Weights::all_on(SlotName::Blue),
        };
        assert_eq!(
            restore_plan(&before, &hot),
            Ok(Some(Step::Shift {
                weights: Weights::all_on(SlotName::Green)
            }))
        );
        // Traffic on the copy of the same version is not a change to undo.
        let on_copy = hot.with_weights(Weights::all_on(SlotName::Green));
        assert_eq!(restore_plan(&before, &on_copy), Ok(None));
    }

    #[test]
    fn a_rolling_update_in_place_rolls_the_serving_slot_and_takes_no_steps() {
        use crate::clusters::DriverKind;
        let before = blue_serves("chat:1").with_version(SlotName::Green, Some(id("chat:0")));
        let planned =
            plan_in_place(OperationKind::Rolling, &before, &id("chat:2"), &[]).expect("a plan");
        let roll = Step::Roll {
            slot: SlotName::Blue,
            full_id: id("chat:2"),
        };
        assert_eq!(planned, vec![roll.clone()]);
        assert!(roll.changes_serving() && !roll.moves_traffic());
        assert_eq!(roll.describe(), "rolling update of blue to chat:2 in place");
        // The slot keeps its traffic and now holds the new version; the other is untouched.
        let after = roll.after(&before);
        assert_eq!(
            (
                after.version(SlotName::Blue),
                after.version(SlotName::Green)
            ),
            (Some(&id("chat:2")), Some(&id("chat:0")))
        );
        assert_eq!(after.weights, before.weights);
        assert_eq!(
            roll.during(&before),
            None,
            "the old version serves until it is done"
        );
        let e = plan_in_place(OperationKind::Rolling, &before, &id("chat:2"), &[10, 100])
            .expect_err("steps")
            .to_string();
        assert!(e.contains("leave `steps` out"), "{e}");
        assert!(
            plan_in_place(OperationKind::Rolling, &before, &id("chat:1"), &[]).is_err(),
            "already serves"
        );
        assert!(
            plan_in_place(OperationKind::Rolling, &before, &id("rerank:1"), &[]).is_err(),
            "another model"
        );
        let nothing = ClusterState::default();
        let e = plan_in_place(OperationKind::Rolling, &nothing, &id("chat:1"), &[])
            .expect_err("nothing serves")
            .to_string();
        assert!(e.contains("blue_green first"), "{e}");
        // A blue-green switch in place (an Argo Rollout) may be the first deploy; a hot reload never.
        assert_eq!(
            plan_in_place(OperationKind::BlueGreen, &nothing, &id("chat:1"), &[]).expect("a plan"),
            vec![Step::Roll {
                slot: SlotName::Blue,
                full_id: id("chat:1")
            }]
        );
        assert!(plan_in_place(OperationKind::HotReload, &before, &id("chat:2"), &[]).is_err());
        let argo = serde_json::json!({ "rollout": "chat" });
        let deployments = serde_json::json!({ "service": "chat" });
        assert!(DriverKind::Kubernetes.plans_in_place(OperationKind::BlueGreen, &argo));
        assert!(DriverKind::Kubernetes.plans_in_place(OperationKind::Rollback, &argo));
        assert!(DriverKind::Kubernetes.plans_in_place(OperationKind::Rolling, &deployments));
        assert!(!DriverKind::Kubernetes.plans_in_place(OperationKind::BlueGreen, &deployments));
        assert!(!DriverKind::OipHaproxy.plans_in_place(OperationKind::Rolling, &deployments));
        // A failure after the roll: no slot holds chat:1, traffic never left blue: roll blue back.
        assert_eq!(
            restore_plan(&before, &after),
            Ok(Some(Step::Roll {
                slot: SlotName::Blue,
                full_id: id("chat:1")
            }))
        );
        // Traffic moved and no slot holds what served: still refused.
        let moved = after.with_weights(Weights::all_on(SlotName::Green));
        assert!(restore_plan(&before, &moved).is_err());
        // Rolling steps: none given means the default ones; given empty is refused.
        assert_eq!(
            plan(OperationKind::Rolling, &before, &id("chat:2"), &[]).expect("plan"),
            plan(
                OperationKind::Rolling,
                &before,
                &id("chat:2"),
                &DEFAULT_ROLLING_STEPS
            )
            .expect("plan")
        );
        assert!(check_steps_given(OperationKind::Rolling, Some(&[])).is_err());
        assert!(check_steps_given(OperationKind::Rolling, None).is_ok());
    }

    #[test]
    fn only_a_running_operation_moves_and_only_to_a_final_state() {
        assert!(OperationState::Running
            .check_move(OperationState::RolledBack)
            .is_ok());
        assert!(OperationState::Succeeded
            .check_move(OperationState::Failed)
            .is_err());
        assert!(OperationState::Running
            .check_move(OperationState::Running)
            .is_err());
    }

    fn operation(plan: Vec<Step>, before: ClusterState) -> Operation {
        Operation {
            id: 7,
            cluster: "eu-1".into(),
            kind: OperationKind::BlueGreen,
            full_id: id("chat:2"),
            state: OperationState::Running,
            steps: plan.into_iter().map(StepRecord::pending).collect(),
            next_step: 0,
            before,
            reason: None,
            actor: "alice".into(),
            trigger: None,
            error: None,
            created_at: Timestamp::from_micros(0),
            finished_at: None,
            intent: None,
            analysis: Vec::new(),
            paused: None,
            bake_ms: None,
        }
    }

    #[test]
    fn the_last_gate_bakes_from_the_last_traffic_step_done() {
        let s0 = blue_serves("chat:1");
        let steps = with_analysis(
            OperationKind::BlueGreen,
            plan(OperationKind::BlueGreen, &s0, &id("chat:2"), &[]).expect("plan"),
            true,
        )
        .expect("gated");
        let mut op = operation(steps, s0);
        assert_eq!(bake_until(&op), None, "no bake time");
        op.bake_ms = Some(30_000);
        assert_eq!(bake_until(&op), None, "not switched yet");
        let shift = op
            .steps
            .iter()
            .position(|r| r.step.moves_traffic())
            .expect("a shift");
        op.steps[shift].state = StepState::Done;
        op.steps[shift].finished_at = Some(Timestamp::from_micros(1_000_000));
        assert_eq!(bake_until(&op), Some(Timestamp::from_micros(31_000_000)));
    }

    fn error_rate_template() -> AnalysisTemplate {
        AnalysisTemplate {
            name: "errors".into(),
            prometheus_url: "http://127.0.0.1:9090".into(),
            bearer_token_file: None,
            query: "x{version=\"{{version}}\"}".into(),
            success: "result < 0.01".into(),
            failure: "result > 0.05".into(),
            interval_ms: 1000,
            count: 2,
            failure_limit: 1,
            inconclusive_limit: 1,
            pre_switch: false,
        }
    }

    #[test]
    fn attached_analysis_gates_a_switch_after_its_traffic_moved_and_never_a_rollback() {
        let s0 = blue_serves("chat:1");
        let bg = plan(OperationKind::BlueGreen, &s0, &id("chat:2"), &[]).expect("a plan");
        let gated = with_analysis(OperationKind::BlueGreen, bg.clone(), true).expect("gated");
        assert_eq!(
            actions(&gated).last().map(String::as_str),
            Some("health gate")
        );
        assert_eq!(gated.len(), bg.len() + 1);
        assert_eq!(
            with_analysis(OperationKind::BlueGreen, bg.clone(), false).expect("plain"),
            bg
        );
        let rolling = plan(OperationKind::Rolling, &s0, &id("chat:2"), &[50, 100]).expect("a plan");
        assert_eq!(
            with_analysis(OperationKind::Rolling, rolling.clone(), true).expect("gated"),
            rolling,
            "a rolling update already gates each step"
        );
        assert!(with_analysis(OperationKind::Rollback, bg, true).is_err());
    }

    #[test]
    fn a_pre_switch_gate_comes_before_the_first_traffic_step_that_reaches_the_new_version() {
        let s0 = blue_serves("chat:1");
        let target = id("chat:2");
        let gate_before_shift = |steps: &[Step]| {
            let shift = steps
                .iter()
                .enumerate()
                .find(|(i, st)| {
                    st.moves_traffic() && carries(&after_all(&s0, &steps[..=*i]), &target)
                })
                .map(|(i, _)| i)
                .expect("a shift to the new version");
            (shift > 0 && steps[shift - 1] == Step::Gate, shift)
        };
        for kind in [
            OperationKind::BlueGreen,
            OperationKind::Rolling,
            OperationKind::HotReload,
        ] {
            let p = plan(kind, &s0, &target, &[10, 100]).expect("a plan");
            let gated = with_pre_switch_gate(&s0, &target, p.clone(), true);
            assert_eq!(gated.len(), p.len() + 1, "{kind}: one gate added");
            let (gate_first, shift) = gate_before_shift(&gated);
            assert!(gate_first, "{kind}: {:?}", actions(&gated));
            // Nothing before the gate gave the new version traffic.
            assert!(
                is_pre_switch(&after_all(&s0, &gated[..shift - 1]), &target),
                "{kind}"
            );
            assert_eq!(with_pre_switch_gate(&s0, &target, p.clone(), false), p);
        }
        // A hot reload first moves traffic to a copy of what serves: the gate waits for the last shift.
        let p = plan(OperationKind::HotReload, &s0, &target, &[]).expect("a plan");
        let gated = with_pre_switch_gate(&s0, &target, p, true);
        assert_eq!(
            actions(&gated)[gated.len() - 2..],
            [
                "health gate".to_owned(),
                "switch all traffic to blue".to_owned()
            ]
        );
        assert!(!is_pre_switch(&after_all(&s0, &gated), &target));
    }

    #[test]
    fn a_baked_operation_releases_the_previous_version_after_its_last_gate_and_only_then() {
        let s0 = blue_serves("chat:1");
        let target = id("chat:2");
        for kind in [
            OperationKind::BlueGreen,
            OperationKind::Rolling,
            OperationKind::HotReload,
        ] {
            let p = with_analysis(
                kind,
                plan(kind, &s0, &target, &[50, 100]).expect("a plan"),
                true,
            )
            .expect("gated");
            let released = with_release(&s0, p.clone(), true);
            assert_eq!(released.len(), p.len() + 1, "{kind}");
            let last = released.last().expect("steps");
            let Step::Release { slot, full_id } = last else {
                panic!("{kind}: {last:?}")
            };
            assert_eq!(full_id, &id("chat:1"), "{kind}: the previous version");
            let end = after_all(&s0, &released);
            assert_eq!(end.version(*slot), None, "{kind}");
            assert_eq!(
                end.sole_version(),
                Some(&target),
                "{kind}: still serving the new one"
            );
            assert_eq!(
                released[released.len() - 2],
                Step::Gate,
                "{kind}: after the last gate"
            );
            // No bake: nothing released.
            assert_eq!(with_release(&s0, p.clone(), false), p);
        }
        // A first deployment leaves nothing behind.
        let empty = ClusterState::default();
        let first = with_analysis(
            OperationKind::BlueGreen,
            plan(OperationKind::BlueGreen, &empty, &target, &[]).expect("a plan"),
            true,
        )
        .expect("gated");
        assert_eq!(with_release(&empty, first.clone(), true), first);
    }

    #[test]
    fn an_operation_whose_release_failed_still_succeeds_and_its_last_gate_is_before_the_release() {
        let s0 = blue_serves("chat:1");
        let steps = with_release(
            &s0,
            with_analysis(
                OperationKind::BlueGreen,
                plan(OperationKind::BlueGreen, &s0, &id("chat:2"), &[]).expect("plan"),
                true,
            )
            .expect("gated"),
            true,
        );
        let mut op = operation(steps, s0);
        let gate = op.steps.len() - 2;
        assert!(op.is_last_gate(gate) && !op.is_last_gate(gate + 1));
        for r in &mut op.steps {
            r.state = StepState::Done;
        }
        assert!(!op.must_restore_or_fail());
        let release = op.steps.len() - 1;
        op.steps[release].state = StepState::Failed;
        assert!(
            !op.must_restore_or_fail(),
            "a failed release rolls nothing back"
        );
        op.steps[gate].state = StepState::Failed;
        assert!(op.must_restore_or_fail());
    }

    fn after_all(start: &ClusterState, steps: &[Step]) -> ClusterState {
        steps.iter().fold(start.clone(), |s, st| st.after(&s))
    }

    fn paused_at_gate() -> (Operation, ClusterState, usize) {
        let s0 = blue_serves("chat:1");
        let steps = with_analysis(
            OperationKind::BlueGreen,
            plan(OperationKind::BlueGreen, &s0, &id("chat:2"), &[]).expect("a plan"),
            true,
        )
        .expect("gated");
        let gate = steps.len() - 1;
        let mut op = operation(steps, s0);
        op.analysis = vec![error_rate_template()];
        op.steps
            .iter_mut()
            .take(gate)
            .for_each(|r| r.state = StepState::Done);
        op.next_step = gate;
        let now = blue_serves("chat:1").with_weights(Weights::all_on(SlotName::Green));
        let t = Timestamp::from_micros(5);
        op.apply(&Progress::StepStarted { index: gate }, &now, t)
            .expect("started");
        op.apply(
            &Progress::Paused {
                index: gate,
                reason: "no data".into(),
            },
            &now,
            t,
        )
        .expect("paused");
        (op, now, gate)
    }

    #[test]
    fn a_paused_operation_takes_only_a_persons_decision_and_continue_passes_its_gate() {
        let (mut op, now, gate) = paused_at_gate();
        let t = Timestamp::from_micros(9);
        assert!(
            op.apply(
                &Progress::StepDone {
                    index: gate,
                    note: None
                },
                &now,
                t
            )
            .is_err(),
            "a runner cannot pass it"
        );
        let decide = |decision| Progress::Decided {
            index: gate,
            decision,
            by: "bob".into(),
            reason: "dashboards look fine".into(),
        };
        op.apply(&decide(Decision::Continue), &now, t)
            .expect("continued");
        assert_eq!(
            (op.paused.as_ref(), op.next_step, op.steps[gate].state),
            (None, gate + 1, StepState::Done)
        );
        assert!(op.steps[gate]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("continued by bob") && n.contains("no data")));
        assert!(
            op.apply(&decide(Decision::Continue), &now, t).is_err(),
            "not paused any more"
        );
    }

    #[test]
    fn rolling_back_a_paused_operation_fails_its_gate_with_the_person_as_trigger() {
        let (mut op, now, gate) = paused_at_gate();
        op.apply(
            &Progress::Decided {
                index: gate,
                decision: Decision::RollBack,
                by: "bob".into(),
                reason: "too risky".into(),
            },
            &now,
            Timestamp::from_micros(9),
        )
        .expect("rolled back");
        assert_eq!(
            (op.steps.len(), op.next(), op.steps[gate].state),
            (gate + 1, None, StepState::Failed)
        );
        assert_eq!(op.failure_trigger(), Trigger::Person);
    }

    #[test]
    fn a_gate_whose_analysis_reached_its_failure_limit_rolls_back_with_trigger_analysis() {
        let (mut op, now, gate) = paused_at_gate();
        op.paused = None;
        let t = error_rate_template();
        let (verdict, note) = t.judge(&Ok(0.5));
        op.apply(
            &Progress::Measured {
                index: gate,
                measurement: Measurement {
                    template: t.name.clone(),
                    at: Timestamp::from_micros(6),
                    query: "x".into(),
                    value: Some(0.5),
                    verdict,
                    note,
                },
            },
            &now,
            Timestamp::from_micros(6),
        )
        .expect("measured");
        op.apply(
            &Progress::StepFailed {
                index: gate,
                error: "analysis failed".into(),
            },
            &now,
            Timestamp::from_micros(7),
        )
        .expect("failed");
        assert_eq!(op.failure_trigger(), Trigger::Analysis);
        let mut plain = op.clone();
        plain.steps[gate].measurements.clear();
        assert_eq!(plain.failure_trigger(), Trigger::HealthGate);
    }

    #[test]
    fn a_person_pauses_a_running_operation_before_its_next_step_and_resumes_or_rolls_it_back() {
        let s0 = blue_serves("chat:1");
        let steps = plan(OperationKind::Rolling, &s0, &id("chat:2"), &[50, 100]).expect("a plan");
        let mut op = operation(steps, s0.clone());
        op.steps
            .iter_mut()
            .take(5)
            .for_each(|r| r.state = StepState::Done);
        op.next_step = 5; // the gate after 50 %
        let t = Timestamp::from_micros(3);
        let pause = || Progress::PauseRequested {
            by: "carol".into(),
            reason: "latency alert".into(),
        };
        op.apply(&pause(), &s0, t).expect("paused");
        assert_eq!(
            op.paused.as_ref().map(|p| (p.step, p.by.as_deref())),
            Some((5, Some("carol")))
        );
        assert!(op.apply(&pause(), &s0, t).is_err(), "already paused");
        assert!(
            op.apply(&Progress::StepStarted { index: 5 }, &s0, t)
                .is_err(),
            "no runner goes on"
        );
        let mut resumed = op.clone();
        resumed
            .apply(
                &Progress::Decided {
                    index: 5,
                    decision: Decision::Continue,
                    by: "carol".into(),
                    reason: "false alarm".into(),
                },
                &s0,
                t,
            )
            .expect("resumed");
        assert_eq!(
            (
                resumed.paused.as_ref(),
                resumed.next_step,
                resumed.steps[5].state
            ),
            (None, 5, StepState::Pending),
            "the step runs as planned"
        );
        op.apply(
            &Progress::Decided {
                index: 5,
                decision: Decision::RollBack,
                by: "dave".into(),
                reason: "real alert".into(),
            },
            &s0,
            t,
        )
        .expect("rolled back");
        assert_eq!(
            (op.steps.len(), op.steps[5].state, op.failure_trigger()),
            (6, StepState::Failed, Trigger::Person)
        );
        assert!(op
            .error
            .as_deref()
            .is_some_and(|e| e.contains("dave") && e.contains("paused by carol")));
    }

    #[test]
    fn a_rollback_a_restore_a_traffic_command_in_flight_or_a_finished_plan_is_never_paused() {
        let s0 = blue_serves("chat:1");
        let pause = Progress::PauseRequested {
            by: "carol".into(),
            reason: "why".into(),
        };
        let t = Timestamp::from_micros(3);
        let mut rollback = operation(
            vec![Step::Shift {
                weights: Weights::all_on(SlotName::Green),
            }],
            s0.clone(),
        );
        rollback.kind = OperationKind::Rollback;
        assert!(rollback.apply(&pause, &s0, t).is_err());
        let mut shifting = operation(
            vec![Step::Shift {
                weights: Weights::all_on(SlotName::Green),
            }],
            s0.clone(),
        );
        shifting
            .apply(&Progress::StepStarted { index: 0 }, &s0, t)
            .expect("started");
        assert!(
            matches!(shifting.apply(&pause, &s0, t), Err(DomainError::Conflict(m)) if m.contains("router"))
        );
        let mut done = operation(vec![Step::Gate], s0.clone());
        done.steps[0].state = StepState::Done;
        done.next_step = 1;
        assert!(
            matches!(done.apply(&pause, &s0, t), Err(DomainError::Conflict(m)) if m.contains("finishing"))
        );
        let mut restoring = operation(vec![Step::Gate], s0.clone());
        restoring
            .apply(
                &Progress::RestoreAdded {
                    step: Step::Shift {
                        weights: Weights::all_on(SlotName::Blue),
                    },
                    trigger: Trigger::HealthGate,
                },
                &s0,
                t,
            )
            .expect("restore");
        assert!(restoring.apply(&pause, &s0, t).is_err());
    }

    #[test]
    fn a_step_names_the_operation_and_who_started_it() {
        let mut op = operation(Vec::new(), ClusterState::default());
        assert_eq!(
            op.provenance(),
            "blue-green switch #7 to chat:2, started by alice"
        );
        op.reason = Some("canary looked fine".into());
        assert_eq!(
            op.provenance(),
            "blue-green switch #7 to chat:2, started by alice: canary looked fine"
        );
    }

    #[test]
    fn steps_run_in_order_and_the_cluster_state_changes_as_each_is_started_and_done() {
        let s0 = blue_serves("chat:1");
        let mut op = operation(
            plan(OperationKind::BlueGreen, &s0, &id("chat:2"), &[]).expect("a plan"),
            s0.clone(),
        );
        let t = Timestamp::from_micros(1);
        assert!(
            op.apply(
                &Progress::StepDone {
                    index: 0,
                    note: None
                },
                &s0,
                t
            )
            .is_err(),
            "not started"
        );
        assert!(
            op.apply(&Progress::StepStarted { index: 1 }, &s0, t)
                .is_err(),
            "out of order"
        );
        assert_eq!(
            op.apply(&Progress::StepStarted { index: 0 }, &s0, t),
            Ok(None)
        );
        let s1 = op
            .apply(
                &Progress::StepDone {
                    index: 0,
                    note: None,
                },
                &s0,
                t,
            )
            .expect("done")
            .expect("green loaded");
        assert_eq!(s1.green, Some(id("chat:2")));
        for i in 1..3 {
            op.apply(&Progress::StepStarted { index: i }, &s1, t)
                .expect("started");
            assert_eq!(
                op.apply(
                    &Progress::StepDone {
                        index: i,
                        note: None
                    },
                    &s1,
                    t
                ),
                Ok(None)
            );
        }
        op.apply(&Progress::StepStarted { index: 3 }, &s1, t)
            .expect("started");
        // Started again after a crash: the interrupted step runs again.
        op.apply(&Progress::StepStarted { index: 3 }, &s1, t)
            .expect("restarted");
        let s2 = op
            .apply(
                &Progress::StepDone {
                    index: 3,
                    note: None,
                },
                &s1,
                t,
            )
            .expect("done")
            .expect("switched");
        assert_eq!(s2.weights.sole(), Some(SlotName::Green));
        op.apply(
            &Progress::Finished {
                state: OperationState::Succeeded,
                error: None,
            },
            &s2,
            t,
        )
        .expect("finished");
        assert!(
            op.apply(&Progress::StepStarted { index: 0 }, &s2, t)
                .is_err(),
            "a finished operation never moves"
        );
    }

    #[test]
    fn a_traffic_step_records_its_router_intent_before_it_runs_and_clears_it_when_recorded() {
        let s0 = blue_serves("chat:1").with_version(SlotName::Green, Some(id("chat:2")));
        let mut op = operation(
            plan(OperationKind::BlueGreen, &s0, &id("chat:2"), &[]).expect("a plan"),
            s0.clone(),
        );
        let t = |us| Timestamp::from_micros(us);
        op.apply(&Progress::StepStarted { index: 0 }, &s0, t(1))
            .expect("started");
        assert_eq!(
            op.intent, None,
            "waiting for readiness sends nothing to the router"
        );
        op.apply(
            &Progress::StepDone {
                index: 0,
                note: None,
            },
            &s0,
            t(2),
        )
        .expect("done");
        op.apply(&Progress::StepStarted { index: 1 }, &s0, t(3))
            .expect("started");
        let intent = op.intent.clone().expect("an intent");
        assert_eq!(
            (intent.step, &intent.from, intent.to.weights, intent.at),
            (1, &s0, Weights::all_on(SlotName::Green), t(3))
        );
        // It survives a write and a read, as the operation row keeps it.
        let back: Operation =
            serde_json::from_value(serde_json::to_value(&op).expect("json")).expect("reads back");
        assert_eq!(back.intent, Some(intent));
        op.apply(
            &Progress::StepDone {
                index: 1,
                note: None,
            },
            &s0,
            t(4),
        )
        .expect("done");
        assert_eq!(op.intent, None);
        let json = serde_json::to_value(&op).expect("json");
        assert!(json.get("intent").is_none(), "not shown between steps");
    }

    #[test]
    fn a_failed_step_drops_the_rest_of_the_plan_and_cannot_end_as_succeeded() {
        let s0 = blue_serves("chat:1");
        let mut op = operation(
            plan(OperationKind::BlueGreen, &s0, &id("chat:2"), &[]).expect("a plan"),
            s0.clone(),
        );
        let t = Timestamp::from_micros(1);
        op.apply(&Progress::StepStarted { index: 0 }, &s0, t)
            .expect("started");
        op.apply(
            &Progress::StepFailed {
                index: 0,
                error: "no such version".into(),
            },
            &s0,
            t,
        )
        .expect("failed");
        assert_eq!(
            (op.steps.len(), op.next(), op.error.as_deref()),
            (1, None, Some("no such version"))
        );
        assert!(op
            .apply(
                &Progress::Finished {
                    state: OperationState::Succeeded,
                    error: None
                },
                &s0,
                t
            )
            .is_err());
        assert!(op
            .apply(
                &Progress::Finished {
                    state: OperationState::Failed,
                    error: None
                },
                &s0,
                t
            )
            .is_ok());
        assert_eq!(
            op.error.as_deref(),
            Some("no such version"),
            "the first error is kept"
        );
    }

    #[test]
    fn the_error_rate_gate_fails_above_the_threshold_and_does_not_judge_too_few_requests() {
        let p = GatePolicy {
            max_error_percent: 5.0,
            min_requests: 20,
            window_ms: 1000,
        };
        let seen = |requests, errors| Traffic { requests, errors };
        assert!(
            p.judge(SlotName::Green, seen(100, 5)).is_ok(),
            "exactly at the threshold passes"
        );
        let e = p
            .judge(SlotName::Green, seen(100, 6))
            .expect_err("6% fails");
        assert!(e.contains("6.00%") && e.contains("green"), "{e}");
        let n = p
            .judge(SlotName::Green, seen(19, 19))
            .expect("too few to judge");
        assert!(n.contains("not judged"), "{n}");
        assert!(GatePolicy {
            max_error_percent: 101.0,
            ..p
        }
        .check()
        .is_err());
        assert!(p.check().is_ok());
        // Counters that went down: the router restarted, count from zero.
        assert_eq!(seen(10, 1).since(seen(50, 2)), seen(10, 1));
        assert_eq!(seen(80, 3).since(seen(50, 2)), seen(30, 1));
    }

    #[test]
    fn a_step_being_loaded_leaves_its_slot_empty_until_done() {
        let s = ClusterState {
            blue: Some(id("chat:1")),
            green: Some(id("chat:0")),
            weights: Weights::all_on(SlotName::Blue),
        };
        let load = Step::Load {
            slot: SlotName::Green,
            full_id: id("chat:2"),
        };
        assert_eq!(load.during(&s).and_then(|d| d.green), None);
        assert_eq!(load.after(&s).green, Some(id("chat:2")));
    }
}
