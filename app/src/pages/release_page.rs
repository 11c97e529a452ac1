//! `/release`: release policy — each environment's approval policy, the
//! change-freeze windows, and emergency overrides. Everyone signed in reads
//! it; admins bound on all change policies and freezes and request overrides
//! (with a reason); a second person (approver or admin on all) approves an
//! override. The same rules as the REST API (`server/src/release.rs`); the
//! buttons are greyed out, with the reason, for everyone else.

use leptos::prelude::*;
use leptos_meta::Title;
use switchyard_domain::freeze::{FreezeWindow, OverrideStatus, Schedule};
use switchyard_domain::types::Environment;

use crate::api::add_freeze::AddFreeze;
use crate::api::approve_override::ApproveOverride;
use crate::api::get_release_policy::get_release_policy;
use crate::api::remove_freeze::RemoveFreeze;
use crate::api::request_override::RequestOverride;
use crate::api::set_approval_policy::SetApprovalPolicy;
use crate::components::form::{Field, Submit};
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{OverrideRow, ReleasePolicyView};
use crate::format::utc;
use crate::session::csrf_token;

/// The page's actions, handed to the parts that post them.
#[derive(Clone, Copy)]
struct Actions {
    policy: ServerAction<SetApprovalPolicy>,
    add: ServerAction<AddFreeze>,
    remove: ServerAction<RemoveFreeze>,
    request: ServerAction<RequestOverride>,
    approve: ServerAction<ApproveOverride>,
}

#[component]
pub fn ReleasePage() -> impl IntoView {
    let actions = Actions {
        policy: ServerAction::new(),
        add: ServerAction::new(),
        remove: ServerAction::new(),
        request: ServerAction::new(),
        approve: ServerAction::new(),
    };
    let release = Resource::new(
        move || {
            (
                actions.policy.version().get(),
                actions.add.version().get(),
                actions.remove.version().get(),
                actions.request.version().get(),
                actions.approve.version().get(),
            )
        },
        |_| get_release_policy(),
    );
    view! {
        <Title text="Release policy · Switchyard"/>
        <div class="page-head">
            <h1>"Release policy"</h1>
            <p class="lede">
                "Per environment: who must approve a promotion, the change freezes in which promotions and "
                "operations are refused (rollbacks never are), and emergency overrides — requested by an admin "
                "with a reason, in force once a second person approves."
            </p>
        </div>
        <Transition fallback=|| view! { <Loading what="the release policy"/> }>
            {move || Suspend::new(async move {
                match release.await {
                    Ok(r) => view! { <ReleaseBody r actions/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the release policy" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ReleaseBody(r: ReleasePolicyView, actions: Actions) -> impl IntoView {
    let ReleasePolicyView {
        environments,
        freezes,
        in_force,
        overrides,
        refused,
        approve_refused,
        username,
    } = r;
    let names: Vec<String> = environments.iter().map(|e| e.name.clone()).collect();
    let policies = environments
        .into_iter()
        .map(|e| view! { <PolicyForm e action=actions.policy refused=refused.clone()/> })
        .collect_view();
    let windows = freezes
        .into_iter()
        .map(|w| view! { <FreezeLine w remove=actions.remove refused=refused.clone()/> })
        .collect_view();
    let override_rows = overrides
        .into_iter()
        .map(|o| {
            let own = (o.over.requested_by == username)
                .then(|| "You requested it: a second person must approve it.".to_owned());
            view! { <OverrideLine o approve=actions.approve refused=approve_refused.clone().or(own)/> }
        })
        .collect_view();
    view! {
        {refused.clone().map(|why| view! { <p class="notice" role="status">{why}</p> })}
        <section aria-labelledby="policies-h">
            <h2 id="policies-h">"Approval policies"</h2>
            <p class="sub">
                "A policy nobody bound to approve in the environment could satisfy (a required group none of them "
                "is in, more approvers than there are) is refused when it is saved."
            </p>
            <div class="policies">{policies}</div>
        </section>
        <section aria-labelledby="freezes-h">
            <h2 id="freezes-h">"Change freezes"</h2>
            {in_force.into_iter().map(|f| view! {
                <p class="freeze-banner" role="status">{format!(
                    "{} is frozen by “{}” until {}{}",
                    f.environment,
                    f.window.name,
                    utc(f.ends_at),
                    if f.overridden_by.is_some() { " — an approved emergency override lets changes through" } else { "" }
                )}</p>
            }).collect_view()}
            <div class="table-wrap">
                <table class="freezes">
                    <ColumnHeads names=&["Name", "Environment", "When", "Added by"] action="Remove"/>
                    <tbody>{windows}</tbody>
                </table>
            </div>
            <h3>"Add a freeze window"</h3>
            <AddFreezeForm environments=names.clone() action=actions.add refused=refused.clone()/>
        </section>
        <section aria-labelledby="overrides-h">
            <h2 id="overrides-h">"Emergency overrides"</h2>
            <div class="table-wrap">
                <table class="overrides">
                    <ColumnHeads names=&["#", "Environment", "Reason", "Requested", "Status"] action="Approve"/>
                    <tbody>{override_rows}</tbody>
                </table>
            </div>
            <h3>"Request an override"</h3>
            <RequestOverrideForm environments=names action=actions.request refused/>
        </section>
    }
}

#[component]
fn PolicyForm(
    e: Environment,
    action: ServerAction<SetApprovalPolicy>,
    refused: Option<String>,
) -> impl IntoView {
    let Environment { name, policy, .. } = e;
    let disabled = refused.is_some();
    let (for_ok, for_err) = (name.clone(), name.clone());
    let (heading, field, submit_id) = (name.clone(), name.clone(), format!("policy-{name}"));
    let may = policy.requester_group_may_approve;
    view! {
        <ActionForm action attr:class="policy-form stacked" attr:data-environment=name>
            <h3>{heading}</h3>
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="environment" value=field/>
            <Field label="Minimum distinct approvers">
                <input type="number" name="required_approvals" min="1" max="10" required=true
                    value=policy.required_approvals.to_string() disabled=disabled/>
            </Field>
            <Field label="Required groups" hint="one approval from each; comma-separated">
                <input type="text" name="required_groups" autocomplete="off"
                    value=policy.required_groups.join(", ") disabled=disabled/>
            </Field>
            <Field label="Requester's groups may approve">
                <select name="requester_group_may_approve" disabled=disabled>
                    <option value="yes" selected=may>"yes"</option>
                    <option value="no" selected=!may>"no"</option>
                </select>
            </Field>
            <Field label="Expiry" hint="hours">
                <input type="number" name="expiry_hours" min="1" max="720" required=true
                    value=policy.expiry_hours.to_string() disabled=disabled/>
            </Field>
            <Submit label="Save policy" id=submit_id refused/>
            {move || action.value().get().map(|r| match r {
                Ok(saved) if saved.environment == for_ok => view! {
                    <p class="done" role="status">{format!("Saved the policy of {}.", saved.environment)}</p>
                }.into_any(),
                Err(e) if e.concerns(&for_err) => view! {
                    <p class="error" role="alert">{format!("Not saved: {}", e.message)}</p>
                }.into_any(),
                _ => ().into_any(),
            })}
        </ActionForm>
    }
}

/// "one-off 2026-12-24 00:00 UTC → 2026-12-27 00:00 UTC", "weekly fri, sat 18:00 for 60 h (Europe/Berlin)".
fn describe(s: &Schedule) -> String {
    match s {
        Schedule::OneOff { from, to } => format!("one-off {} → {}", utc(*from), utc(*to)),
        Schedule::Weekly {
            days,
            start,
            duration_minutes,
            time_zone,
        } => {
            let days: Vec<String> = days
                .iter()
                .map(|d| {
                    serde_json::to_value(d)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            let length = if duration_minutes % 60 == 0 {
                format!("{} h", duration_minutes / 60)
            } else {
                format!("{duration_minutes} min")
            };
            format!(
                "weekly {} {start} for {length} ({time_zone})",
                days.join(", ")
            )
        }
    }
}

#[component]
fn FreezeLine(
    w: FreezeWindow,
    remove: ServerAction<RemoveFreeze>,
    refused: Option<String>,
) -> impl IntoView {
    let id = w.id.to_string();
    let (row_id, field_id, for_error) = (id.clone(), id.clone(), id);
    let disabled = refused.is_some();
    view! {
        <tr data-freeze=row_id>
            <td>{w.name.clone()}</td>
            <td>{w.environment.clone()}</td>
            <td>{describe(&w.schedule)}</td>
            <td>{format!("{}, {}", w.created_by, utc(w.created_at))}</td>
            <td>
                <ActionForm action=remove attr:class="remove-freeze">
                    <input type="hidden" name="id" value=field_id/>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <button class="button secondary" type="submit" disabled=disabled title=refused.unwrap_or_default()>
                        "Remove"
                    </button>
                </ActionForm>
                {move || remove.value().get().and_then(Result::err).filter(|e| e.concerns(&for_error)).map(|e| view! {
                    <p class="error" role="alert">{format!("Not removed: {}", e.message)}</p>
                })}
            </td>
        </tr>
    }
}

#[component]
fn AddFreezeForm(
    environments: Vec<String>,
    action: ServerAction<AddFreeze>,
    refused: Option<String>,
) -> impl IntoView {
    let disabled = refused.is_some();
    view! {
        <ActionForm action attr:class="add-freeze stacked">
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <Field label="Name">
                <input type="text" name="name" required=true autocomplete="off" disabled=disabled/>
            </Field>
            <Field label="Environment">
                <select name="environment" disabled=disabled>
                    {environments.into_iter().map(|e| view! { <option value=e.clone()>{e.clone()}</option> }).collect_view()}
                </select>
            </Field>
            <Field label="Kind">
                <select name="kind" disabled=disabled>
                    <option value="one_off">"one-off"</option>
                    <option value="weekly">"weekly"</option>
                </select>
            </Field>
            <fieldset>
                <legend>"One-off (UTC)"</legend>
                <Field label="From">
                    <input type="text" name="from" placeholder="2026-12-24 00:00" autocomplete="off" disabled=disabled/>
                </Field>
                <Field label="To">
                    <input type="text" name="to" placeholder="2026-12-27 00:00" autocomplete="off" disabled=disabled/>
                </Field>
            </fieldset>
            <fieldset>
                <legend>"Weekly (wall-clock time in the zone)"</legend>
                <Field label="Days" hint="comma-separated">
                    <input type="text" name="days" placeholder="fri" autocomplete="off" disabled=disabled/>
                </Field>
                <Field label="Start" hint="HH:MM">
                    <input type="text" name="start" placeholder="18:00" autocomplete="off" disabled=disabled/>
                </Field>
                <Field label="Duration" hint="minutes">
                    <input type="number" name="duration_minutes" min="1" max="10080" placeholder="3600" disabled=disabled/>
                </Field>
                <Field label="Time zone" hint="IANA">
                    <input type="text" name="time_zone" value="UTC" placeholder="Europe/Berlin" autocomplete="off" disabled=disabled/>
                </Field>
            </fieldset>
            <Submit label="Add freeze" id="add-freeze" refused/>
            {move || action.pending().get().then(|| view! { <p class="loading" role="status">"Adding…"</p> })}
            {move || action.value().get().map(|r| match r {
                Ok(w) => view! { <p class="done" role="status">{format!("Added freeze “{}” in {}.", w.name, w.environment)}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{format!("Not added: {}", e.message)}</p> }.into_any(),
            })}
        </ActionForm>
    }
}

#[component]
fn OverrideLine(
    o: OverrideRow,
    approve: ServerAction<ApproveOverride>,
    refused: Option<String>,
) -> impl IntoView {
    let OverrideRow { over, status } = o;
    let id = over.id.to_string();
    let (row_id, field_id, for_error) = (id.clone(), id.clone(), id);
    let status_text = match (&over.approved_by, over.valid_until) {
        (Some(by), Some(until)) => format!("{status}: approved by {by}, until {}", utc(until)),
        _ => status.to_string(),
    };
    let pending = status == OverrideStatus::Pending;
    let disabled = refused.is_some();
    view! {
        <tr data-override=row_id>
            <td class="mono">{over.id}</td>
            <td>{over.environment.clone()}</td>
            <td>{format!("{} ({} h)", over.reason, over.hours)}</td>
            <td>{format!("{}, {}", over.requested_by, utc(over.requested_at))}</td>
            <td>{status_text}</td>
            <td>
                {pending.then(|| view! {
                    <ActionForm action=approve attr:class="approve-override">
                        <input type="hidden" name="id" value=field_id/>
                        <input type="hidden" name="csrf_token" value=csrf_token()/>
                        <button class="button" type="submit" disabled=disabled title=refused.unwrap_or_default()>
                            "Approve"
                        </button>
                    </ActionForm>
                })}
                {move || approve.value().get().and_then(Result::err).filter(|e| e.concerns(&for_error)).map(|e| view! {
                    <p class="error" role="alert">{format!("Not approved: {}", e.message)}</p>
                })}
            </td>
        </tr>
    }
}

#[component]
fn RequestOverrideForm(
    environments: Vec<String>,
    action: ServerAction<RequestOverride>,
    refused: Option<String>,
) -> impl IntoView {
    let disabled = refused.is_some();
    view! {
        <ActionForm action attr:class="request-override stacked">
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <Field label="Environment">
                <select name="environment" disabled=disabled>
                    {environments.into_iter().map(|e| view! { <option value=e.clone()>{e.clone()}</option> }).collect_view()}
                </select>
            </Field>
            <Field label="Reason">
                <input type="text" name="reason" required=true autocomplete="off" disabled=disabled/>
            </Field>
            <Field label="Hours once approved" hint="1–24">
                <input type="number" name="hours" min="1" max="24" value="4" disabled=disabled/>
            </Field>
            <Submit label="Request override" id="request-override" refused/>
            {move || action.value().get().map(|r| match r {
                Ok(o) => view! { <p class="done" role="status">{format!("Requested override {} in {}: a second person must approve it.", o.id, o.environment)}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{format!("Not requested: {}", e.message)}</p> }.into_any(),
            })}
        </ActionForm>
    }
}
