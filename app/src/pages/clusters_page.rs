use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use switchyard_domain::operations::Operation;

use crate::api::get_cluster::get_cluster;
use crate::api::get_clusters::get_clusters;
use crate::components::cluster_card::{operation_state_words, ClusterCard, OperationSteps};
use crate::components::freeze_banner::FreezeBanner;
use crate::components::status::{ErrorNote, Loading};
use crate::format::utc_seconds;

/// Every serving cluster: slots, traffic, drift, the running operation, and
/// the buttons that start operations.
#[component]
pub fn ClustersPage() -> impl IntoView {
    let refresh = RwSignal::new(0_u32);
    let clusters = Resource::new(move || refresh.get(), |_| get_clusters(false));
    view! {
        <Title text="Clusters · Switchyard"/>
        <div class="page-head">
            <h1>"Clusters"</h1>
            <p class="lede">"What each cluster's blue and green slots serve, with how much traffic, and the operations that move it."</p>
        </div>
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
                        view! {
                            {started}
                            <ClusterCard view refresh/>
                            <History operations/>
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
