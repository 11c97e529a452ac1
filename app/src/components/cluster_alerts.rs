//! The overview's cluster notices: operations running now and clusters
//! serving something other than their environment's pin (drift).

use leptos::prelude::*;
use switchyard_domain::ModelId;

use crate::data::ClusterView;
use crate::error::AppError;

/// Drift of one environment × model cell of the pin matrix, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCell {
    pub environment: String,
    pub model_id: ModelId,
    pub words: String,
}

/// Every drift, per environment and model.
pub fn drift_cells(clusters: &[ClusterView]) -> Vec<DriftCell> {
    clusters
        .iter()
        .flat_map(|c| {
            c.drift.iter().map(|d| DriftCell {
                environment: c.cluster.environment.clone(),
                model_id: d.model_id.clone(),
                words: format!("drift: cluster {} serves {}", c.cluster.name, d.serving),
            })
        })
        .collect()
}

#[component]
pub fn ClusterAlerts(clusters: Resource<Result<Vec<ClusterView>, AppError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading clusters…"</p> }>
            {move || Suspend::new(async move {
                // The overview reads without clusters; their error shows on the clusters page.
                let list = clusters.await.unwrap_or_default();
                let running: Vec<String> = list
                    .iter()
                    .filter_map(|c| c.running().map(|o| {
                        let done = o.steps.iter().filter(|r| r.finished_at.is_some()).count();
                        format!("{}: {} to {} running, step {} of {}", c.cluster.name, o.kind.words(), o.full_id, (done + 1).min(o.steps.len()), o.steps.len())
                    }))
                    .collect();
                let drift: Vec<String> = list
                    .iter()
                    .flat_map(|c| c.drift.iter().map(move |d| match &d.pinned {
                        Some(p) => format!("{} serves {}, but {} pins {p}", c.cluster.name, d.serving, c.cluster.environment),
                        None => format!("{} serves {}, which {} does not pin", c.cluster.name, d.serving, c.cluster.environment),
                    }))
                    .collect();
                (!list.is_empty()).then(|| view! {
                    <section class="alerts" aria-label="Clusters">
                        <div class="alert-box">
                            <h2>"Running operations"</h2>
                            {if running.is_empty() {
                                view! { <p class="sub">"None."</p> }.into_any()
                            } else {
                                view! { <ul>{running.into_iter().map(|r| view! { <li><a href="/clusters">{r}</a></li> }).collect_view()}</ul> }.into_any()
                            }}
                        </div>
                        <div class="alert-box">
                            <h2>"Drift"</h2>
                            {if drift.is_empty() {
                                view! { <p class="sub">"Every cluster serves what its environment pins."</p> }.into_any()
                            } else {
                                view! { <ul class="drift">{drift.into_iter().map(|d| view! { <li><a href="/clusters">{d}</a></li> }).collect_view()}</ul> }.into_any()
                            }}
                        </div>
                    </section>
                })
            })}
        </Suspense>
    }
}
