//! `/clusters/:name/confirm`: the cluster form's confirmation as a page, for
//! a browser without JavaScript (an emergency rollback must not depend on the
//! bundle loading). The cluster card's buttons are submit buttons of a GET
//! form to here; this page says what the operation will do, in the same
//! words as the card's dialog, and starts it with a plain form post.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use switchyard_domain::clusters::ClusterState;
use switchyard_domain::operations::OperationKind;

use crate::api::get_cluster::get_cluster;
use crate::api::roll_back_cluster::RollBackCluster;
use crate::api::start_operation::StartOperation;
use crate::components::cluster_card::operation_words;
use crate::components::status::{set_page_status, ErrorNote, Loading};
use crate::data::ClusterView;
use crate::session::csrf_token;

/// The operation the form asked for: `rollback`, or a kind the REST API
/// knows (`blue_green`, `rolling`, `hot_reload`).
pub fn asked_kind(kind: Option<&str>) -> Result<OperationKind, String> {
    match kind.map(str::trim) {
        None | Some("") => {
            Err("No operation was chosen: go back and press one of the cluster's buttons.".into())
        }
        Some("rollback") => Ok(OperationKind::Rollback),
        Some(k) => k.parse().map_err(|_| {
            format!("“{k}” is not an operation: blue_green, rolling, hot_reload or rollback.")
        }),
    }
}

#[component]
pub fn ConfirmOperationPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let cluster = Resource::new(name, get_cluster);
    view! {
        <Title text=move || format!("Confirm · {} · Switchyard", name())/>
        <div class="page-head">
            <p class="crumbs">
                <a href="/clusters">"Clusters"</a>" / "
                <a href=move || format!("/clusters/{}", name())>{name}</a>
            </p>
            <h1>"Confirm the operation"</h1>
        </div>
        <Transition fallback=|| view! { <Loading what="the cluster"/> }>
            {move || Suspend::new(async move {
                match cluster.await {
                    Ok(view) => view! { <Confirm view/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load this cluster" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Confirm(view: ClusterView) -> impl IntoView {
    let query = use_query_map().get_untracked();
    let field = |k: &str| query.get(k).unwrap_or_default();
    let name = view.cluster.name.clone();
    let back = format!("/clusters/{name}");
    let kind = match asked_kind(query.get_str("kind")) {
        Ok(kind) => kind,
        Err(why) => {
            set_page_status(422);
            return view! {
                <p class="error" role="alert">{why}</p>
                <p><a class="button secondary" href=back>"Back to the cluster"</a></p>
            }
            .into_any();
        }
    };
    let (version, steps, reason) = (field("version"), field("steps"), field("reason"));
    let state = ClusterState::from_slots(&view.cluster.slots).unwrap_or_default();
    let words = operation_words(
        &name,
        &state,
        kind,
        &version,
        &steps,
        view.cluster.rollback_to.as_ref(),
        view.cluster.driver,
        &view.cluster.config,
    );
    let start = ServerAction::<StartOperation>::new();
    let rollback = ServerAction::<RollBackCluster>::new();
    let title = format!("Confirm the {} on {name}", kind.words());
    let refused = view.refused.clone();
    let form = match (&words, &refused) {
        (Ok(_), None) => {
            let label = format!("Confirm {}", kind.words());
            let reason_field = view! {
                <label class="reason">
                    <span>"Reason (required)"</span>
                    <input type="text" name="reason" value=reason autocomplete="off" required=true placeholder="why, for the ledger"/>
                </label>
            };
            let cancel = view! { <a class="button secondary" href=back.clone()>"Cancel"</a> };
            if kind == OperationKind::Rollback {
                view! {
                    <ActionForm action=rollback attr:class="confirm-form">
                        <input type="hidden" name="cluster" value=name.clone()/>
                        <input type="hidden" name="csrf_token" value=csrf_token()/>
                        {reason_field}
                        <div class="buttons">
                            <button type="submit" class="button danger">{label}</button>
                            {cancel}
                        </div>
                    </ActionForm>
                }
                .into_any()
            } else {
                view! {
                    <ActionForm action=start attr:class="confirm-form">
                        <input type="hidden" name="cluster" value=name.clone()/>
                        <input type="hidden" name="kind" value=kind.as_str()/>
                        <input type="hidden" name="full_id" value=version.clone()/>
                        {(kind == OperationKind::Rolling).then(|| view! { <input type="hidden" name="steps" value=steps.clone()/> })}
                        <input type="hidden" name="csrf_token" value=csrf_token()/>
                        {reason_field}
                        <div class="buttons">
                            <button type="submit" class="button">{label}</button>
                            {cancel}
                        </div>
                    </ActionForm>
                }
                .into_any()
            }
        }
        _ => {
            // Nothing to confirm: the plan cannot start, or this user may not
            // operate here. The page answers 422 or 403 with the reason.
            set_page_status(if refused.is_some() { 403 } else { 422 });
            view! { <p><a class="button secondary" href=back.clone()>"Back to the cluster"</a></p> }
                .into_any()
        }
    };
    let text = match (&refused, words) {
        (Some(why), _) => why.clone(),
        (None, Ok(text)) => text,
        (None, Err(why)) => format!("Not possible now: {why}"),
    };
    // Started from this page with JavaScript: go to the cluster, where the
    // operation's steps are followed live (without JavaScript the server
    // sends the browser there itself).
    let navigate = leptos_router::hooks::use_navigate();
    let done = back.clone();
    Effect::new(move |_| {
        if matches!(start.value().get(), Some(Ok(_)))
            || matches!(rollback.value().get(), Some(Ok(_)))
        {
            navigate(&done, Default::default());
        }
    });
    view! {
        <section class="confirm-page" aria-labelledby="confirm-title">
            <h2 id="confirm-title">{title}</h2>
            <p id="confirm-text">{text}</p>
            {form}
            {move || (start.pending().get() || rollback.pending().get())
                .then(|| view! { <p class="loading" role="status">"Starting…"</p> })}
            {move || start.value().get().and_then(Result::err).or_else(|| rollback.value().get().and_then(Result::err)).map(|e| view! {
                <p class="error" role="alert">{format!("Not started: {}", e.message)}</p>
            })}
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_pressed_button_and_anything_else_is_named() {
        assert_eq!(asked_kind(Some("rollback")), Ok(OperationKind::Rollback));
        assert_eq!(asked_kind(Some("blue_green")), Ok(OperationKind::BlueGreen));
        assert!(asked_kind(None).is_err_and(|e| e.contains("No operation was chosen")));
        assert!(asked_kind(Some("explode")).is_err_and(|e| e.contains("“explode”")));
    }
}
