//! A serving cluster as the clusters pages show it: its slots with version,
//! health and traffic weight, drift against the environment's pin (as recorded,
//! and as the drift watcher last observed what really runs), the
//! running operation's steps (polled live in the browser), and the buttons
//! that start operations, each behind a confirmation in words.

use leptos::prelude::*;
use switchyard_domain::analysis::Measurement;
use switchyard_domain::clusters::{ClusterState, DriverKind, SlotName, SlotView};
use switchyard_domain::operations::{
    plan, Operation, OperationKind, OperationState, Pause, Step, StepRecord, StepState,
};
use switchyard_domain::FullId;

use crate::api::continue_operation::ContinueOperation;
use crate::api::get_operation::get_operation;
use crate::api::roll_back_cluster::RollBackCluster;
use crate::api::roll_back_operation::RollBackOperation;
use crate::api::start_operation::{parse_steps, StartOperation};
use crate::components::measurement_chart::MeasurementCharts;
use crate::components::table::ColumnHeads;
use crate::data::ClusterView;
use crate::format::utc_seconds;
use crate::session::csrf_token;

/// How often a running operation's steps are asked for.
const POLL_MS: u64 = 1000;

/// What serves now, in words: `chat:v3 (blue, 100%)`, or `nothing`.
pub fn serving_words(state: &ClusterState) -> String {
    let serving: Vec<String> = state
        .serving()
        .iter()
        .map(|(slot, v, w)| format!("{v} ({slot}, {w}%)"))
        .collect();
    if serving.is_empty() {
        "nothing".to_owned()
    } else {
        serving.join(" and ")
    }
}

/// What an operation updating the serving slot in place will do (a
/// `rolling` update on Kubernetes, every operation on an Argo Rollout;
/// `DriverKind::plans_in_place`), in words; or why it cannot start.
pub fn confirmation_in_place(
    cluster: &str,
    state: &ClusterState,
    kind: OperationKind,
    target: &FullId,
    rolling: &[u8],
) -> Result<String, String> {
    let steps = switchyard_domain::operations::plan_in_place(kind, state, target, rolling)
        .map_err(|e| e.to_string())?;
    let now = serving_words(state);
    let slot = steps
        .iter()
        .find_map(|s| match s {
            Step::Roll { slot, .. } => Some(slot.as_str()),
            _ => None,
        })
        .unwrap_or("the serving slot");
    Ok(format!(
        "Update {cluster} in place from {now} to {target}: the pods of {slot} are replaced by the \
         platform's own rolling update (its rollout strategy paces it), watched until complete; \
         if it fails, it is rolled back to the previous revision and {now} keeps serving."
    ))
}

/// What an operation will do, in words, for its confirmation; or why it
/// cannot start from the cluster's state (the same plan the server makes).
pub fn confirmation(
    cluster: &str,
    state: &ClusterState,
    kind: OperationKind,
    target: &FullId,
    rolling: &[u8],
) -> Result<String, String> {
    let steps = plan(kind, state, target, rolling).map_err(|e| e.to_string())?;
    let now = serving_words(state);
    let loads_into = steps.iter().find_map(|s| match s {
        Step::Load { slot, full_id } if full_id == target => Some(*slot),
        _ => None,
    });
    let final_slot = steps.iter().rev().find_map(|s| match s {
        Step::Shift { weights } => weights.sole(),
        _ => None,
    });
    let shifts: Vec<u8> = steps
        .iter()
        .filter_map(|s| match (s, final_slot) {
            (Step::Shift { weights }, Some(to)) => Some(weights.of(to)),
            _ => None,
        })
        .collect();
    let slot = loads_into
        .or(final_slot)
        .map_or("the idle slot", SlotName::as_str);
    let checks = if loads_into.is_some() {
        format!("after {slot} passes its health check and smoke request")
    } else {
        format!("after {slot}, which already holds {target}, passes its health check")
    };
    Ok(match kind {
        OperationKind::BlueGreen => format!(
            "Switch {cluster} from {now} to {target} on {slot}. Traffic moves all at once {checks}; {now} stays loaded as the rollback target."
        ),
        OperationKind::Rolling => {
            let percents: Vec<String> = shifts.iter().map(|p| format!("{p}%")).collect();
            format!(
                "Roll {target} out on {cluster} in {slot}, moving traffic from {now} in steps of {}, {checks}. \
                 A health gate follows every step; if one fails, traffic goes back to what serves now.",
                percents.join(", ")
            )
        }
        OperationKind::HotReload => {
            let live = final_slot.map_or("the live slot", SlotName::as_str);
            format!(
                "Hot reload {cluster}: traffic first moves to a copy of what serves now ({now}) in the other slot, \
                 then {target} is loaded into {live}, checked by its health check and a smoke request, \
                 and all traffic moves back to {live} at once."
            )
        }
        OperationKind::Rollback => format!(
            "Roll back {cluster} from {now} to {target}. Traffic moves back in one step{}.",
            if loads_into.is_some() { format!(", {checks}") } else { String::new() }
        ),
    })
}

/// A slot's health in words, from the most recent step that checked or
/// changed it (operations newest first).
pub fn slot_health(slot: &SlotView, operations: &[Operation]) -> String {
    let Some(version) = &slot.full_id else {
        return "empty".to_owned();
    };
    for op in operations {
        for r in op.steps.iter().rev() {
            let about = match &r.step {
                Step::Load { slot: s, full_id }
                | Step::WaitReady { slot: s, full_id }
                | Step::Smoke { slot: s, full_id }
                | Step::Roll { slot: s, full_id } => *s == slot.slot && full_id == version,
                Step::Gate => slot.weight > 0 && r.state != StepState::Pending,
                Step::Shift { .. } | Step::Release { .. } => false,
            };
            if !about {
                continue;
            }
            return match r.state {
                StepState::Running => format!("checking: {}", r.step.describe()),
                StepState::Failed => {
                    format!("failed: {}", r.note.as_deref().unwrap_or("check failed"))
                }
                StepState::Done => match r.finished_at {
                    Some(t) => format!("ready, checked {}", utc_seconds(t)),
                    None => "ready".to_owned(),
                },
                StepState::Pending => continue,
            };
        }
    }
    "loaded, not checked since".to_owned()
}

/// A slot's health cell: what the driver says now, and below it what the
/// last operation's checks recorded; when the driver cannot say (or was not
/// asked), the recorded words lead.
pub fn health_words(now: Option<&str>, recorded: String) -> (String, Option<String>) {
    match now {
        Some("empty") => ("empty".to_owned(), None),
        Some(now) if !now.starts_with("unknown") => {
            let last = (recorded != "empty").then(|| format!("last operation: {recorded}"));
            (format!("{now} now"), last)
        }
        Some(unknown) => (recorded, Some(format!("now: {unknown}"))),
        None => (recorded, None),
    }
}

/// "blue-green switch, hot reload" → "Blue-green switch, hot reload".
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

fn step_state_words(s: StepState) -> &'static str {
    match s {
        StepState::Pending => "planned",
        StepState::Running => "running",
        StepState::Done => "done",
        StepState::Failed => "failed",
    }
}

pub fn operation_state_words(s: OperationState) -> &'static str {
    match s {
        OperationState::Running => "running",
        OperationState::Succeeded => "succeeded",
        OperationState::Failed => "failed, traffic unmoved",
        OperationState::RolledBack => "rolled back",
    }
}

/// `1.2 s` between two instants.
fn took(r: &StepRecord) -> String {
    match (r.started_at, r.finished_at) {
        (Some(a), Some(b)) => crate::format::seconds_between(a, b),
        (Some(a), None) => format!("since {}", utc_seconds(a)),
        _ => String::new(),
    }
}

#[component]
pub fn ClusterCard(
    view: ClusterView,
    refresh: RwSignal<u32>,
    #[prop(optional)] heading_link: bool,
) -> impl IntoView {
    let c = &view.cluster;
    let name = c.name.clone();
    let state = ClusterState::from_slots(&c.slots).unwrap_or_default();
    let simulated = c.driver == DriverKind::Simulated;
    let heading_id = format!("cluster-{name}");
    let labelled_by = heading_id.clone();
    let slots = c
        .slots
        .iter()
        .map(|s| {
            let recorded = slot_health(s, &view.operations);
            let now = view.health_now.iter().find(|h| h.slot == s.slot).map(|h| h.health.as_str());
            let (health, checked) = health_words(now, recorded);
            let version = s.full_id.as_ref().map_or_else(|| "empty".to_owned(), ToString::to_string);
            let weight = s.weight;
            view! {
                <tr data-slot=s.slot.as_str()>
                    <th scope="row"><span class=format!("slot-name slot-{}", s.slot)>{s.slot.as_str()}</span></th>
                    <td class="slot-version">{version}</td>
                    <td class="slot-health">{health}{checked.map(|c| view! { <span class="sub">{c}</span> })}</td>
                    <td class="slot-weight">
                        <span class="weight" aria-hidden="true">
                            <span class="weight-bar" style=format!("width: {weight}%")></span>
                        </span>
                        <span class="weight-n">{format!("{weight}% of traffic")}</span>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let drift = if view.drift.is_empty() {
        let pins: Vec<String> = view.pins.iter().map(ToString::to_string).collect();
        let words = if state.serving().is_empty() {
            "Serves nothing yet.".to_owned()
        } else if pins.is_empty() {
            format!("In line with {}.", c.environment)
        } else {
            format!(
                "No drift: serves what {} pins ({}).",
                c.environment,
                pins.join(", ")
            )
        };
        view! { <p class="drift-ok">{words}</p> }.into_any()
    } else {
        let words: Vec<String> = view
            .drift
            .iter()
            .map(|d| match &d.pinned {
                Some(p) => format!("serves {}, but {} pins {p}", d.serving, c.environment),
                None => format!("serves {}, which {} does not pin", d.serving, c.environment),
            })
            .collect();
        view! { <p class="drift" role="note"><strong>"Drift: "</strong>{words.join("; ")}"."</p> }
            .into_any()
    };
    // What the drift watcher last saw the platform really run.
    let observed = crate::components::cluster_alerts::observed_words(c).map(|o| {
        use crate::components::cluster_alerts::ObservedWords;
        match o {
            ObservedWords::Drift { findings, when } => view! {
                <p class="observed-drift" role="note">
                    <strong>"Observed drift: "</strong>{findings.join("; ")}{format!(" ({when}).")}
                </p>
            }
            .into_any(),
            ObservedWords::Unreadable(text) => view! { <p class="observed-unreadable" role="note">{text}</p> }.into_any(),
            ObservedWords::Clean(text) => view! { <p class="observed-ok">{text}</p> }.into_any(),
        }
    });
    let running = view.running().cloned();
    // When nothing runs, the last operation, folded.
    let last = running
        .is_none()
        .then(|| view.operations.first().cloned())
        .flatten()
        .map(|op| {
            let summary = format!(
                "Last operation: {} to {} — {}",
                op.kind.words(),
                op.full_id,
                operation_state_words(op.state)
            );
            let state = op.state.as_str();
            view! {
                <details class="operation last" data-state=state>
                    <summary>{summary}</summary>
                    <OperationSteps op/>
                </details>
            }
        });
    let href = format!("/clusters/{name}");
    view! {
        <section class="cluster" aria-labelledby=labelled_by data-cluster=name.clone()>
            <div class="cluster-head">
                <h2 id=heading_id>
                    {if heading_link {
                        view! { <a href=href>{name.clone()}</a> }.into_any()
                    } else {
                        view! { <span>{name.clone()}</span> }.into_any()
                    }}
                </h2>
                <span class="env-badge">{format!("environment {}", c.environment)}</span>
                <span class="driver-badge" data-simulated=simulated.to_string()>
                    {if simulated { "simulated".to_owned() } else { format!("driver {}", c.driver.as_str()) }}
                </span>
            </div>
            <table class="slots">
                <caption class="visually-hidden">{format!("Slots of {name}")}</caption>
                <ColumnHeads names=&["Slot", "Version", "Health", "Traffic"]/>
                <tbody>{slots}</tbody>
            </table>
            {drift}
            {observed}
            {running.map(|op| view! { <LiveOperation op refresh refused=view.refused.clone()/> })}
            {last}
            <ClusterActions view=view.clone() state refresh/>
        </section>
    }
    .into_any()
}

/// A running operation's steps, asked for every second in the browser until
/// it ends; then the page reloads its clusters. While it is paused for a
/// person, the Continue and Roll back forms (greyed out, with `refused`
/// beside them, for those who may not operate the cluster).
#[component]
pub fn LiveOperation(
    op: Operation,
    refresh: RwSignal<u32>,
    refused: Option<String>,
) -> impl IntoView {
    let id = op.id;
    let current = RwSignal::new(op);
    let go_on = ServerAction::<ContinueOperation>::new();
    let back = ServerAction::<RollBackOperation>::new();
    Effect::new(move |_| {
        let answered = go_on.value().get().or_else(|| back.value().get());
        if let Some(Ok(o)) = answered {
            current.set(o);
            refresh.update(|n| *n += 1);
        }
    });
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<String>);
    // Effects run only in the browser: without JavaScript the page shows the
    // steps as they were when it was rendered.
    Effect::new(move |_| {
        let tick = move || {
            if busy.get_untracked() || current.with_untracked(|o| o.state.is_final()) {
                return;
            }
            busy.set(true);
            leptos::task::spawn_local(async move {
                match get_operation(id).await {
                    Ok(o) => {
                        let done = o.state.is_final();
                        let _ = current.try_set(o);
                        let _ = problem.try_set(None);
                        if done {
                            let _ = refresh.try_update(|n| *n += 1);
                        }
                    }
                    Err(e) => {
                        let _ = problem.try_set(Some(e.into_message()));
                    }
                }
                let _ = busy.try_set(false);
            });
        };
        if let Ok(handle) =
            set_interval_with_handle(tick, std::time::Duration::from_millis(POLL_MS))
        {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <div class="operation live" aria-live="polite">
            {move || current.with(|o| view! { <OperationSteps op=o.clone()/> })}
            {move || current.with(|o| o.paused.clone()).map(|pause| {
                view! { <PausedDecision id pause go_on back refused=refused.clone()/> }
            })}
            {move || busy.get().then(|| view! { <span class="loading" role="status">"Updating…"</span> })}
            {move || problem.get().map(|m| view! { <p class="error" role="alert">{format!("Could not update the steps: {m}")}</p> })}
        </div>
    }
    .into_any()
}

/// An operation's head line and its steps with their state and timings.
#[component]
pub fn OperationSteps(op: Operation) -> impl IntoView {
    let head = format!(
        "Operation {}: {} to {} by {} — {}",
        op.id,
        op.kind.words(),
        op.full_id,
        op.actor,
        operation_state_words(op.state)
    );
    let steps = op
        .steps
        .iter()
        .map(|r| {
            let state = step_state_words(r.state);
            let mut words = format!(
                "{}{} — {state}",
                if r.restore { "restore: " } else { "" },
                r.step.describe()
            );
            let t = took(r);
            if !t.is_empty() {
                words.push_str(&format!(" ({t})"));
            }
            let note = r.note.clone();
            let measured = (!r.measurements.is_empty())
                .then(|| view! { <Measurements measurements=r.measurements.clone()/> });
            view! {
                <li class="step" data-state=state>
                    {words}
                    {note.map(|n| view! { <span class="sub">{n}</span> })}
                    {measured}
                </li>
            }
        })
        .collect_view();
    let paused = op.paused.as_ref().map(|p| {
        let step = op
            .steps
            .get(p.step)
            .map_or_else(|| format!("step {}", p.step + 1), |r| r.step.describe());
        let by =
            p.by.as_deref()
                .map_or_else(String::new, |b| format!(" by {b}"));
        format!(
            "Paused{by} at “{step}” since {}: {}",
            utc_seconds(p.at),
            p.reason
        )
    });
    // Every forward gate's measurements, per template, against its thresholds.
    let measured: Vec<Measurement> = op
        .steps
        .iter()
        .filter(|r| !r.restore)
        .flat_map(|r| r.measurements.iter().cloned())
        .collect();
    let charts = (!measured.is_empty()).then(|| {
        view! {
            <div class="measure-charts">
                <MeasurementCharts templates=op.analysis.clone() measurements=measured/>
            </div>
        }
    });
    view! {
        <p class="operation-head" data-state=op.state.as_str()>{head}</p>
        {paused.map(|p| view! { <p class="paused-note" role="status">{p}</p> })}
        {op.reason.map(|r| view! { <p class="sub">{format!("Reason: {r}")}</p> })}
        {op.error.map(|e| view! { <p class="error">{format!("Error: {e}")}</p> })}
        <ol class="steps">{steps}</ol>
        {charts}
    }
    .into_any()
}

/// The confirmation of `kind` on `cluster` as the form gives it: the version
/// and rolling steps as typed (a rollback goes back to `rollback_to`), or
/// why it cannot start. The card's dialog and the confirmation page (the
/// same form posted without JavaScript) both say exactly this.
#[allow(clippy::too_many_arguments)]
pub fn operation_words(
    cluster: &str,
    state: &ClusterState,
    kind: OperationKind,
    version: &str,
    steps: &str,
    rollback_to: Option<&FullId>,
    driver: DriverKind,
    config: &serde_json::Value,
) -> Result<String, String> {
    let in_place = driver.plans_in_place(kind, config);
    match kind {
        OperationKind::Rollback => {
            let to =
                rollback_to.ok_or_else(|| format!("{cluster} has nothing to roll back to yet."))?;
            if in_place {
                return confirmation_in_place(cluster, state, kind, to, &[]);
            }
            confirmation(cluster, state, kind, to, &[])
        }
        _ => {
            let v =
                FullId::parse(version.trim()).map_err(|_| "Choose a version first.".to_owned())?;
            let rolling = if steps.trim().is_empty() {
                Vec::new()
            } else {
                parse_steps(steps).map_err(crate::error::AppError::into_message)?
            };
            if in_place {
                return confirmation_in_place(cluster, state, kind, &v, &rolling);
            }
            let rolling = if rolling.is_empty() {
                switchyard_domain::operations::DEFAULT_ROLLING_STEPS.to_vec()
            } else {
                rolling
            };
            confirmation(cluster, state, kind, &v, &rolling)
        }
    }
}

/// A gate's analysis measurements: the query as sent, the value, the
/// verdict and the time of each, in the order taken.
#[component]
pub fn Measurements(measurements: Vec<Measurement>) -> impl IntoView {
    let rows = measurements
        .into_iter()
        .map(|m| {
            let value = m.value.map_or_else(|| "no value".to_owned(), |v| format!("{v}"));
            let verdict = m.verdict.as_str();
            view! {
                <tr data-verdict=verdict>
                    <td>{m.template}</td>
                    <td><code class="query">{m.query}</code></td>
                    <td class="value">{value}</td>
                    <td class="verdict"><span class="verdict-badge" data-verdict=verdict>{verdict}</span></td>
                    <td>{utc_seconds(m.at)}</td>
                    <td class="sub">{m.note}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="measurements">
                <caption class="visually-hidden">"Analysis measurements"</caption>
                <ColumnHeads names=&["Template", "Query as sent", "Value", "Verdict", "Time", "Note"]/>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// Why an operation waits for a person, and their two answers, each with a
/// reason: Continue past the gate, or Roll back to what served before.
/// Plain forms, so they work without JavaScript.
#[component]
fn PausedDecision(
    id: i64,
    pause: Pause,
    go_on: ServerAction<ContinueOperation>,
    back: ServerAction<RollBackOperation>,
    refused: Option<String>,
) -> impl IntoView {
    let disabled = refused.is_some();
    let why_id = format!("why-decide-{id}");
    let (continue_id, rollback_id) = (
        format!("continue-reason-{id}"),
        format!("rollback-reason-{id}"),
    );
    let (continue_for, rollback_for) = (continue_id.clone(), rollback_id.clone());
    let about = id.to_string();
    let (described, described_too) = (
        disabled.then(|| why_id.clone()),
        disabled.then(|| why_id.clone()),
    );
    view! {
        <div class="decide" role="group" aria-label=format!("Answer paused operation {id}")>
            <p><strong>"Waiting for a person: "</strong>{pause.reason.clone()}</p>
            <div class="decide-forms">
                <ActionForm action=go_on attr:class="continue-operation">
                    <input type="hidden" name="id" value=id.to_string()/>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label for=continue_for>"Reason to continue (required)"</label>
                    <input id=continue_id type="text" name="reason" required=true autocomplete="off" disabled=disabled/>
                    <button class="button" type="submit" disabled=disabled aria-describedby=described>"Continue"</button>
                </ActionForm>
                <ActionForm action=back attr:class="roll-back-operation">
                    <input type="hidden" name="id" value=id.to_string()/>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label for=rollback_for>"Reason to roll back (required)"</label>
                    <input id=rollback_id type="text" name="reason" required=true autocomplete="off" disabled=disabled/>
                    <button class="button danger" type="submit" disabled=disabled aria-describedby=described_too>"Roll back"</button>
                </ActionForm>
            </div>
            {refused.map(|why| view! { <p class="why" id=why_id>{why}</p> })}
            {move || (go_on.pending().get() || back.pending().get())
                .then(|| view! { <p class="loading" role="status">"Sending…"</p> })}
            {move || go_on.value().get().and_then(Result::err)
                .or_else(|| back.value().get().and_then(Result::err))
                .filter(|e| e.concerns(&about))
                .map(|e| view! { <p class="error" role="alert">{format!("Not done: {}", e.message)}</p> })}
        </div>
    }
    .into_any()
}

/// The operation buttons: pick a version and a reason, press one, read what
/// will happen, confirm. Without JavaScript the same form goes to the
/// cluster's confirmation page (`/clusters/NAME/confirm`), which says the
/// same words and starts the operation with a plain form post.
#[component]
fn ClusterActions(view: ClusterView, state: ClusterState, refresh: RwSignal<u32>) -> impl IntoView {
    let name = view.cluster.name.clone();
    let slug = name.replace('.', "-");
    let start = ServerAction::<StartOperation>::new();
    let rollback = ServerAction::<RollBackCluster>::new();
    Effect::new(move |_| {
        if matches!(start.value().get(), Some(Ok(_)))
            || matches!(rollback.value().get(), Some(Ok(_)))
        {
            refresh.update(|n| *n += 1);
        }
    });
    let allowed = view.allowed.clone();
    let first = allowed
        .iter()
        .find(|v| state.sole_version() != Some(*v))
        .or(allowed.first())
        .map(ToString::to_string);
    let version = RwSignal::new(first.unwrap_or_default());
    // A cluster that updates in place takes no steps (its platform paces it).
    let in_place = view
        .cluster
        .driver
        .plans_in_place(OperationKind::Rolling, &view.cluster.config);
    let steps = RwSignal::new(if in_place {
        String::new()
    } else {
        "10, 50, 100".to_owned()
    });
    let (driver, config) = (
        view.cluster.driver,
        StoredValue::new(view.cluster.config.clone()),
    );
    let reason = RwSignal::new(String::new());
    // The action waiting for confirmation.
    let asking = RwSignal::new(None::<OperationKind>);
    let refused = view.refused.clone();
    let disabled = refused.is_some();
    let why_id = format!("why-{slug}");
    let rollback_to = StoredValue::new(view.cluster.rollback_to.clone());
    let cluster_name = StoredValue::new(name.clone());
    let state = StoredValue::new(state);

    let words = move |kind: OperationKind| -> Result<String, String> {
        let name = cluster_name.get_value();
        let to = rollback_to.get_value();
        state.with_value(|s| {
            config.with_value(|c| {
                operation_words(
                    &name,
                    s,
                    kind,
                    &version.get(),
                    &steps.get(),
                    to.as_ref(),
                    driver,
                    c,
                )
            })
        })
    };
    let confirm = move |_| {
        let Some(kind) = asking.get_untracked() else {
            return;
        };
        let cluster = cluster_name.get_value();
        let reason = Some(reason.get_untracked()).filter(|r| !r.trim().is_empty());
        if kind == OperationKind::Rollback {
            rollback.dispatch(RollBackCluster { cluster, reason });
        } else {
            start.dispatch(StartOperation {
                cluster,
                kind: kind.as_str().to_owned(),
                full_id: version.get_untracked(),
                steps: (kind == OperationKind::Rolling).then(|| steps.get_untracked()),
                reason,
            });
        }
        asking.set(None);
    };
    // A button whose plan the server would refuse (the version already
    // serves, nothing to roll back to) is disabled up front, its reason
    // written beside the buttons.
    let blocked = move |kind: OperationKind| words(kind).err();
    let button = move |kind: OperationKind, label: &'static str, class: &'static str| {
        let why_id = why_id.clone();
        let plan_id = format!("{why_id}-plan");
        // A submit button: without JavaScript it takes the form to the
        // confirmation page; in the browser, the dialog below asks instead.
        view! {
            <button
                type="submit"
                name="kind"
                value=kind.as_str()
                class=class
                disabled=move || disabled || blocked(kind).is_some()
                aria-describedby=move || if disabled { Some(why_id.clone()) } else { blocked(kind).map(|_| plan_id.clone()) }
                on:click=move |ev| {
                    ev.prevent_default();
                    start.value().set(None);
                    rollback.value().set(None);
                    asking.set(Some(kind));
                }
            >
                {label}
            </button>
        }
    };
    let initial = version.get_untracked();
    let options = allowed
        .iter()
        .map(|v| {
            let v = v.to_string();
            let selected = v == initial;
            view! { <option value=v.clone() selected=selected>{v.clone()}</option> }
        })
        .collect_view();
    let version_id = format!("version-{slug}");
    let steps_id = format!("steps-{slug}");
    let reason_id = format!("reason-{slug}");
    let (version_for, steps_for, reason_for) =
        (version_id.clone(), steps_id.clone(), reason_id.clone());
    let dialog_id = format!("confirm-{slug}");
    let confirm_page = format!("/clusters/{name}/confirm");
    let dialog = NodeRef::<leptos::html::Div>::new();
    let confirm_button = NodeRef::<leptos::html::Button>::new();
    let cancel_button = NodeRef::<leptos::html::Button>::new();
    // The dialog is brought into view (all of it) and its first button takes
    // the focus when it opens.
    Effect::new(move |_| {
        if asking.get().is_some() {
            if let Some(dialog) = dialog.get() {
                dialog.scroll_into_view_with_bool(false);
            }
            if let Some(button) = confirm_button.get().or_else(|| cancel_button.get()) {
                let _ = button.focus();
            }
        }
    });
    view! {
        <form class="cluster-actions" method="get" action=confirm_page on:submit=|ev| ev.prevent_default()>
            <div class="fields">
                <label for=version_for>"Version"</label>
                <select id=version_id name="version" prop:value=version on:change=move |ev| version.set(event_target_value(&ev)) disabled=disabled>
                    {options}
                </select>
                <label for=steps_for>"Rolling steps (%)"</label>
                <input id=steps_id name="steps" type="text" inputmode="numeric" value=steps.get_untracked() prop:value=steps
                    on:input=move |ev| steps.set(event_target_value(&ev)) disabled=disabled/>
                <label for=reason_for>"Reason (required)"</label>
                <input id=reason_id name="reason" type="text" autocomplete="off" required=true placeholder="why, for the ledger" prop:value=reason
                    on:input=move |ev| reason.set(event_target_value(&ev)) disabled=disabled/>
            </div>
            <div class="buttons">
                {button(OperationKind::BlueGreen, "Blue-green switch…", "button")}
                {button(OperationKind::Rolling, "Rolling update…", "button")}
                {button(OperationKind::HotReload, "Hot reload…", "button")}
                {button(OperationKind::Rollback, "Roll back…", "button danger")}
            </div>
            {refused.map(|why| view! { <p class="why" id=format!("why-{slug}")>{why}</p> })}
            {(!disabled).then(|| {
                let plan_id = format!("why-{slug}-plan");
                move || {
                    let mut notes: Vec<(Vec<&'static str>, String)> = Vec::new();
                    for kind in [OperationKind::BlueGreen, OperationKind::Rolling, OperationKind::HotReload, OperationKind::Rollback] {
                        if let Some(why) = blocked(kind) {
                            match notes.iter_mut().find(|(_, w)| *w == why) {
                                Some((kinds, _)) => kinds.push(kind.words()),
                                None => notes.push((vec![kind.words()], why)),
                            }
                        }
                    }
                    (!notes.is_empty()).then(|| {
                        let text = not_possible_text(notes);
                        view! { <p class="why" id=plan_id.clone()>{text}</p> }
                    })
                }
            })}
            {move || asking.get().map(|kind| {
                let text = words(kind);
                let ok = text.is_ok();
                let title = format!("Confirm the {}", kind.words());
                view! {
                    <div class="confirm" node_ref=dialog role="alertdialog" aria-modal="false" aria-labelledby=format!("{dialog_id}-t") aria-describedby=format!("{dialog_id}-d")
                        on:keydown=move |ev| if ev.key() == "Escape" { ev.prevent_default(); asking.set(None); }>
                        <p class="confirm-title" id=format!("{dialog_id}-t")><strong>{title}</strong></p>
                        <p id=format!("{dialog_id}-d")>{match text {
                            Ok(t) => t,
                            Err(e) => format!("Not possible now: {e}"),
                        }}</p>
                        <div class="buttons">
                            {ok.then(|| view! {
                                <button type="button" class="button" node_ref=confirm_button on:click=confirm>{format!("Confirm {}", kind.words())}</button>
                            })}
                            <button type="button" class="button secondary" node_ref=cancel_button on:click=move |_| asking.set(None)>"Cancel"</button>
                        </div>
                    </div>
                }
            })}
            {move || (start.pending().get() || rollback.pending().get())
                .then(|| view! { <p class="loading" role="status">"Starting…"</p> })}
            {move || start.value().get().and_then(Result::err).or_else(|| rollback.value().get().and_then(Result::err)).map(|e| view! {
                <p class="error" role="alert">{format!("Not started: {}", e.message)}</p>
            })}
        </form>
    }
    .into_any()
}

/// Why some operations are not possible, one sentence per reason (the
/// operations sharing a reason named together), each ending in a full stop.
fn not_possible_text(notes: Vec<(Vec<&'static str>, String)>) -> String {
    notes
        .into_iter()
        .map(|(kinds, why)| {
            let why = why.trim_end();
            let stop = if why.ends_with(['.', '!', '?']) { "" } else { "." };
            format!("{} not possible: {why}{stop}", capitalized(&kinds.join(", ")))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::clusters::Weights;

    #[test]
    fn reasons_why_operations_are_not_possible_are_separate_sentences() {
        let text = not_possible_text(vec![
            (
                vec!["blue-green switch", "hot reload"],
                "chat:v2 already serves all traffic".to_owned(),
            ),
            (vec!["rollback"], "nothing to roll back to.".to_owned()),
        ]);
        assert_eq!(
            text,
            "Blue-green switch, hot reload not possible: chat:v2 already serves all traffic. \
             Rollback not possible: nothing to roll back to."
        );
    }

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("a full id")
    }

    fn on_blue(v: &str) -> ClusterState {
        ClusterState {
            blue: Some(id(v)),
            green: None,
            weights: Weights::all_on(SlotName::Blue),
        }
    }

    #[test]
    fn a_blue_green_confirmation_names_both_versions_slots_and_the_checks() {
        let text = confirmation(
            "prod-eu",
            &on_blue("chat:v3"),
            OperationKind::BlueGreen,
            &id("chat:v4"),
            &[],
        )
        .expect("possible");
        assert!(
            text.starts_with("Switch prod-eu from chat:v3 (blue, 100%) to chat:v4 on green."),
            "{text}"
        );
        assert!(
            text.contains("all at once after green passes its health check and smoke request"),
            "{text}"
        );
    }

    #[test]
    fn a_rolling_confirmation_lists_its_steps() {
        let text = confirmation(
            "eu",
            &on_blue("chat:v3"),
            OperationKind::Rolling,
            &id("chat:v4"),
            &[10, 50, 100],
        )
        .expect("possible");
        assert!(text.contains("steps of 10%, 50%, 100%"), "{text}");
    }

    #[test]
    fn an_update_in_place_says_so_and_refuses_steps() {
        let deployments = serde_json::json!({ "service": "chat" });
        let text = operation_words(
            "k8s",
            &on_blue("chat:v3"),
            OperationKind::Rolling,
            "chat:v4",
            "",
            None,
            DriverKind::Kubernetes,
            &deployments,
        )
        .expect("possible");
        assert!(
            text.starts_with(
                "Update k8s in place from chat:v3 (blue, 100%) to chat:v4: the pods of blue"
            ),
            "{text}"
        );
        let err = operation_words(
            "k8s",
            &on_blue("chat:v3"),
            OperationKind::Rolling,
            "chat:v4",
            "10, 100",
            None,
            DriverKind::Kubernetes,
            &deployments,
        )
        .expect_err("steps");
        assert!(err.contains("leave `steps` out"), "{err}");
        // A blue-green switch there still loads the idle Deployment.
        let text = operation_words(
            "k8s",
            &on_blue("chat:v3"),
            OperationKind::BlueGreen,
            "chat:v4",
            "",
            None,
            DriverKind::Kubernetes,
            &deployments,
        )
        .expect("possible");
        assert!(text.starts_with("Switch k8s"), "{text}");
    }

    #[test]
    fn an_operation_the_plan_refuses_says_why_before_it_is_sent() {
        let err = confirmation(
            "eu",
            &on_blue("chat:v3"),
            OperationKind::BlueGreen,
            &id("chat:v3"),
            &[],
        )
        .expect_err("no-op");
        assert!(err.contains("already serves all traffic"), "{err}");
        let err = confirmation(
            "eu",
            &on_blue("chat:v3"),
            OperationKind::Rolling,
            &id("chat:v4"),
            &[50, 10],
        )
        .expect_err("bad steps");
        assert!(err.contains("strictly increasing"), "{err}");
    }

    #[test]
    fn an_empty_slot_is_empty_and_a_loaded_one_without_checks_says_so() {
        let empty = SlotView {
            slot: SlotName::Green,
            full_id: None,
            weight: 0,
        };
        assert_eq!(slot_health(&empty, &[]), "empty");
        assert_eq!(
            health_words(
                Some("ready"),
                "ready, checked 2026-12-07 02:02:56 UTC".into()
            ),
            (
                "ready now".into(),
                Some("last operation: ready, checked 2026-12-07 02:02:56 UTC".into())
            )
        );
        assert_eq!(
            health_words(Some("unknown: no answer within 500 ms"), "ready".into()),
            (
                "ready".into(),
                Some("now: unknown: no answer within 500 ms".into())
            )
        );
        assert_eq!(health_words(None, "empty".into()), ("empty".into(), None));
        assert_eq!(
            health_words(Some("empty"), "empty".into()),
            ("empty".into(), None)
        );
        let loaded = SlotView {
            slot: SlotName::Blue,
            full_id: Some(id("chat:v3")),
            weight: 100,
        };
        assert_eq!(slot_health(&loaded, &[]), "loaded, not checked since");
    }
}
