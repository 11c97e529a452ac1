use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use switchyard_domain::clusters::DriverKind;
use switchyard_domain::operations::Operation;

use crate::api::add_cluster::{added_path, AddCluster};
use crate::api::get_cluster::get_cluster;
use crate::api::get_cluster_form::get_cluster_form;
use crate::api::get_clusters::get_clusters;
use crate::api::remove_cluster::{removed_path, RemoveCluster};
use crate::api::test_cluster::TestCluster;
use crate::components::cluster_card::{operation_state_words, ClusterCard, OperationSteps};
use crate::components::driver_config::{driver_words, DriverExamples};
use crate::components::freeze_banner::FreezeBanner;
use crate::components::status::{ErrorNote, Loading};
use crate::data::{ClusterForm, ClusterView};
use crate::format::utc_seconds;
use crate::pages::connection_test_page::ConnectionChecks;
use crate::session::csrf_token;

/// Every serving cluster: slots, traffic, drift, the running operation, and
/// the buttons that start operations; for admins, the form that adds one.
#[component]
pub fn ClustersPage() -> impl IntoView {
    let refresh = RwSignal::new(0_u32);
    let clusters = Resource::new(move || refresh.get(), |_| get_clusters(false));
    let form = Resource::new(|| (), |_| get_cluster_form());
    let removed = use_query_map().get_untracked().get("removed");
    view! {
        <Title text="Clusters · Switchyard"/>
        <div class="page-head">
            <h1>"Clusters"</h1>
            <p class="lede">"What each cluster's blue and green slots serve, with how much traffic, and the operations that move it."</p>
        </div>
        {removed.map(|name| view! {
            <p class="done" role="status" data-posted="true">
                {format!("Cluster {name} removed. The audit log keeps its record (cluster.removed, with its config).")}
            </p>
        })}
        <FreezeBanner/>
        <Transition fallback=|| view! { <Loading what="the clusters"/> }>
            {move || Suspend::new(async move {
                match clusters.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No cluster is registered yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <div class="clusters">
                            {list.into_iter().map(|view| view! { <ClusterCard view refresh heading_link=true/> }).collect_view()}
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the clusters" error/> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match form.await {
                    Ok(form) if form.refused.is_none() => view! { <AddClusterForm form/> }.into_any(),
                    // Only admins add clusters; others are not shown a form they cannot use.
                    Ok(_) => ().into_any(),
                    Err(error) => view! { <ErrorNote doing="load the form that adds a cluster" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The form that registers a cluster (admins): checked by the server as
/// `switchyard cluster add` is; a refusal names what to change and
/// registers nothing. Once added, the cluster's connection test is shown.
#[component]
fn AddClusterForm(form: ClusterForm) -> impl IntoView {
    let add = ServerAction::<AddCluster>::new();
    // A refused post without JavaScript comes back with what was typed in
    // the query (`back_to_form_after_refusal`); the browser keeps it otherwise.
    let typed = use_query_map().get_untracked();
    let typed_name = typed.get("name").unwrap_or_default();
    let typed_environment = typed.get("environment");
    let typed_config = typed.get("config").unwrap_or_default();
    let config_dropped = typed.get("dropped").is_some_and(|f| f == "config");
    let typed_driver = typed
        .get("driver")
        .and_then(|d| d.parse::<DriverKind>().ok())
        .unwrap_or(DriverKind::ALL[0]);
    let chosen = RwSignal::new(typed_driver);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(cluster)) = add.value().get() {
            navigate(&added_path(&cluster.name), Default::default());
        }
    });
    view! {
        <section class="new-cluster" aria-labelledby="new-cluster-h">
            <h2 id="new-cluster-h">"Add a cluster"</h2>
            <p class="hint">
                "Registering changes nothing in the cluster: Switchyard checks the config, stores it, then tests "
                "the connection. The same as " <code>"switchyard cluster add"</code> "."
            </p>
            <div class="new-cluster-body">
                <ActionForm action=add attr:class="stacked">
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label><span>"Name"</span>
                        <input type="text" name="name" required=true autocomplete="off"
                            pattern="[a-z0-9][a-z0-9._\\-]{0,63}" placeholder="echo-dev" value=typed_name/></label>
                    <label><span>"Environment"</span>
                        <select name="environment">
                            {form.environments.into_iter().map(|e| {
                                let selected = typed_environment.as_deref() == Some(e.as_str());
                                view! { <option value=e.clone() selected=selected>{e.clone()}</option> }
                            }).collect_view()}
                        </select></label>
                    <label><span>"Driver"</span>
                        <select name="driver" on:change=move |ev| {
                            let value = event_target_value(&ev);
                            if let Ok(kind) = value.parse::<DriverKind>() {
                                chosen.set(kind);
                            }
                        }>
                            {DriverKind::ALL.into_iter().map(|kind| view! {
                                <option value=kind.as_str() selected=kind == typed_driver>
                                    {format!("{} — {}", kind.as_str(), driver_words(kind))}
                                </option>
                            }).collect_view()}
                        </select></label>
                    <label><span>"Driver config (JSON or YAML; blank for none)"</span>
                        <textarea name="config" rows="14" spellcheck="false" autocomplete="off" class="mono"
                            placeholder="{ \"model\": \"echo\", … } — see the examples">{typed_config}</textarea></label>
                    {config_dropped.then(|| view! {
                        <p class="hint" role="status">"The config typed was too long to bring back here: paste it again."</p>
                    })}
                    <button type="submit" class="button">"Add cluster"</button>
                    {move || add.pending().get().then(|| view! { <p class="loading" role="status">"Checking the config…"</p> })}
                    {move || add.value().get().and_then(Result::err).map(|e| view! {
                        <p class="error" role="alert">{format!("Not added, nothing was registered: {}", e.message)}</p>
                    })}
                </ActionForm>
                <DriverExamples chosen/>
            </div>
        </section>
    }
}

/// One cluster with its operations history.
#[component]
pub fn ClusterPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let refresh = RwSignal::new(0_u32);
    let cluster = Resource::new(move || (name(), refresh.get()), |(n, _)| get_cluster(n));
    view! {
        <Title text=move || format!("{} · Clusters · Switchyard", name())/>
        <div class="page-head">
            <p class="crumbs"><a href="/clusters">"Clusters"</a></p>
            <h1 class="mono">{name}</h1>
        </div>
        <FreezeBanner/>
        <Transition fallback=|| view! { <Loading what="the cluster"/> }>
            {move || Suspend::new(async move {
                match cluster.await {
                    Ok(view) => {
                        let operations = view.operations.clone();
                        let started = started_note(&operations);
                        let (connection, removal) = (view.clone(), view.clone());
                        view! {
                            {started}
                            <ClusterCard view refresh/>
                            <Connection view=connection/>
                            <History operations/>
                            <Removal view=removal/>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorNote doing="load this cluster" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// After an operation was started by a plain form post (`?started=N`): what
/// was started and how it stands, above the cluster. Without JavaScript the
/// page does not follow the steps live, so it says how to see more.
fn started_note(operations: &[Operation]) -> Option<impl IntoView> {
    let id: i64 = leptos_router::hooks::use_query_map()
        .get_untracked()
        .get_str("started")?
        .parse()
        .ok()?;
    let op = operations.iter().find(|o| o.id == id)?;
    let follow = if op.state.is_final() { "" } else { " Reload the page to follow its steps." };
    let text = format!(
        "Started operation #{}: {} to {} — {}.{follow}",
        op.id,
        op.kind.words(),
        op.full_id,
        operation_state_words(op.state)
    );
    Some(view! { <p class="done" role="status" data-posted="true">{text}</p> })
}

/// The "Test connection" button (deployers and up): the checks of
/// `switchyard cluster test`, shown in place. Without JavaScript it is a
/// GET form to the connection test's own page.
#[component]
fn Connection(view: ClusterView) -> impl IntoView {
    let name = view.cluster.name.clone();
    let test = ServerAction::<TestCluster>::new();
    let page = format!("/clusters/{name}/test");
    let refused = view.test_refused.clone();
    let disabled = refused.is_some();
    let run = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        test.dispatch(TestCluster { name: name.clone() });
    };
    view! {
        <section class="connection" aria-labelledby="connection-h">
            <h2 id="connection-h">"Connection"</h2>
            <p class="hint">
                "Checks every part the driver needs — reachable, permitted, the routing contract in place, each slot — "
                "and changes nothing; the same checks as " <code>"switchyard cluster test"</code> "."
            </p>
            <form method="get" action=page on:submit=run>
                <button type="submit" class="button secondary" disabled=disabled
                    aria-describedby=disabled.then_some("connection-refused")>"Test connection"</button>
            </form>
            {refused.map(|why| view! { <p class="muted" id="connection-refused">{why}</p> })}
            {move || test.pending().get().then(|| view! { <p class="loading" role="status">"Testing the connection (up to 20 s)…"</p> })}
            {move || (!test.pending().get()).then(|| test.value().get()).flatten().map(|r| match r {
                Ok(test) => view! { <ConnectionChecks test/> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{format!("Not tested: {}", e.message)}</p> }.into_any(),
            })}
        </section>
    }
}

/// Removing the cluster (admins), confirmed by typing its name. A cluster
/// that ran an operation is kept: its history answers serving-at-T and the
/// audit, so the page says so instead of offering the form.
#[component]
fn Removal(view: ClusterView) -> impl IntoView {
    if view.remove_refused.is_some() {
        return ().into_any();
    }
    let name = view.cluster.name.clone();
    if !view.operations.is_empty() {
        return view! {
            <section class="removal" aria-labelledby="removal-h">
                <h2 id="removal-h">"Remove"</h2>
                <p class="muted">
                    {format!("{name} has run operations, so it is kept: its history answers “what served at T” and the audit. \
                              To connect a new setup, add it under another name.")}
                </p>
            </section>
        }
        .into_any();
    }
    let remove = ServerAction::<RemoveCluster>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(name)) = remove.value().get() {
            navigate(&removed_path(&name), Default::default());
        }
    });
    let label = format!("Type the cluster's name, {name}, to confirm");
    let about = name.clone();
    view! {
        <section class="removal" aria-labelledby="removal-h">
            <h2 id="removal-h">"Remove"</h2>
            <p class="hint">"It never ran an operation, so it can be removed; the audit log keeps the record, and the name can be registered again."</p>
            <ActionForm action=remove attr:class="stacked">
                <input type="hidden" name="csrf_token" value=csrf_token()/>
                <input type="hidden" name="name" value=name/>
                <label><span>{label}</span>
                    <input type="text" name="confirm" required=true autocomplete="off"/></label>
                <button type="submit" class="button danger">"Remove cluster"</button>
            </ActionForm>
            {move || remove.value().get().and_then(Result::err).filter(|e| e.concerns(&about)).map(|e| view! {
                <p class="error" role="alert">{format!("Not removed: {}", e.message)}</p>
            })}
        </section>
    }
    .into_any()
}

/// Recent operations, newest first, each with its steps folded away.
#[component]
fn History(operations: Vec<Operation>) -> impl IntoView {
    let empty = operations.is_empty();
    view! {
        <section class="history" aria-labelledby="history-h">
            <h2 id="history-h">"Operations"</h2>
            {empty.then(|| view! { <p class="empty">"No operation has run on this cluster yet."</p> })}
            <ol class="operations">
                {operations.into_iter().map(|op| {
                    let took = op.finished_at.map(|f| format!(" in {}", crate::format::seconds_between(op.created_at, f)));
                    let summary = format!(
                        "#{} {} to {} — {}{} · started {} by {}",
                        op.id,
                        op.kind.words(),
                        op.full_id,
                        operation_state_words(op.state),
                        took.unwrap_or_default(),
                        utc_seconds(op.created_at),
                        op.actor,
                    );
                    let state = op.state.as_str();
                    view! {
                        <li data-state=state>
                            <details>
                                <summary>{summary}</summary>
                                <OperationSteps op/>
                            </details>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
}
