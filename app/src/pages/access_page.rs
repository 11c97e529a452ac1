//! `/access`: role bindings — who (a user or an identity-provider group) has
//! which role where (one environment, or all). Everyone signed in reads it;
//! admins bound on all add and remove bindings (each change is a ledger
//! event). The buttons are greyed out, with the reason, for everyone else.

use leptos::prelude::*;
use leptos_meta::Title;
use switchyard_domain::access::{Role, Subject};

use crate::api::add_binding::AddBinding;
use crate::api::get_access::get_access;
use crate::api::remove_binding::RemoveBinding;
use crate::components::form::{Field, Submit};
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{AccessView, BindingRow};
use crate::format::utc;
use crate::session::csrf_token;

#[component]
pub fn AccessPage() -> impl IntoView {
    let add = ServerAction::<AddBinding>::new();
    let remove = ServerAction::<RemoveBinding>::new();
    let access = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| get_access(),
    );
    view! {
        <Title text="Access · Switchyard"/>
        <div class="page-head">
            <h1>"Access"</h1>
            <p class="lede">
                "Role bindings: who has which role where. A binding names a user or an identity-provider group, "
                "a role (viewer < deployer < approver < admin), and one environment or all. "
                "The highest role that applies wins; actions tied to no environment (users, tokens, clusters, "
                "subscriptions, bindings) need the role on all."
            </p>
        </div>
        <Transition fallback=|| view! { <Loading what="the bindings"/> }>
            {move || Suspend::new(async move {
                match access.await {
                    Ok(a) => view! { <AccessBody a add remove/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the bindings" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AccessBody(
    a: AccessView,
    add: ServerAction<AddBinding>,
    remove: ServerAction<RemoveBinding>,
) -> impl IntoView {
    let AccessView {
        bindings,
        environments,
        refused,
        mine,
    } = a;
    let disabled = refused.is_some();
    let rows = bindings
        .into_iter()
        .map(|b| view! { <BindingLine b remove refused=refused.clone()/> })
        .collect_view();
    view! {
        <p class="sub">{format!("Your bindings: {mine}.")}</p>
        <div class="table-wrap">
            <table class="bindings">
                <ColumnHeads names=&["Subject", "Role", "Environment", "Added", "By"] action="Remove"/>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <h2>"Add a binding"</h2>
        <ActionForm action=add attr:class="add-binding">
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <Field label="Subject">
                <select name="subject_kind" disabled=disabled>
                    <option value="user">"user"</option>
                    <option value="group">"group"</option>
                </select>
            </Field>
            <Field label="Name">
                <input type="text" name="subject" required=true autocomplete="off" disabled=disabled/>
            </Field>
            <Field label="Role">
                <select name="role" disabled=disabled>
                    {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                </select>
            </Field>
            <Field label="Environment">
                <select name="environment" disabled=disabled>
                    <option value="all">"all"</option>
                    {environments.into_iter().map(|e| view! { <option value=e.clone()>{e.clone()}</option> }).collect_view()}
                </select>
            </Field>
            <Submit label="Add binding" id="add-binding" refused/>
            {move || add.pending().get().then(|| view! { <p class="loading" role="status">"Adding…"</p> })}
            {move || add.value().get().map(|r| match r {
                Ok(b) => view! { <p class="done" role="status">{format!("Added binding {}: {}.", b.id, describe(&b))}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{format!("Not added: {}", e.message)}</p> }.into_any(),
            })}
        </ActionForm>
    }
}

#[component]
fn BindingLine(
    b: BindingRow,
    remove: ServerAction<RemoveBinding>,
    refused: Option<String>,
) -> impl IntoView {
    let id = b.id.to_string();
    let for_error = id.clone();
    let (row_id, field_id) = (id.clone(), id);
    let (kind, name) = match &b.binding.subject {
        Subject::User(u) => ("user", u.clone()),
        Subject::Group(g) => ("group", g.clone()),
    };
    let disabled = refused.is_some();
    view! {
        <tr data-binding=row_id>
            <td>{format!("{kind} {name}")}</td>
            <td><span class="role-badge" data-role=b.binding.role.as_str()>{b.binding.role.as_str()}</span></td>
            <td>{b.binding.scope.to_string()}</td>
            <td>{utc(b.created_at)}</td>
            <td>{b.created_by.clone()}</td>
            <td>
                <ActionForm action=remove attr:class="remove-binding">
                    <input type="hidden" name="id" value=field_id/>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <button class="button secondary" type="submit" disabled=disabled title=refused.clone().unwrap_or_default()>
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

/// "user alice: deployer on staging".
fn describe(b: &BindingRow) -> String {
    let subject = match &b.binding.subject {
        Subject::User(u) => format!("user {u}"),
        Subject::Group(g) => format!("group {g}"),
    };
    format!("{subject}: {} on {}", b.binding.role, b.binding.scope)
}

