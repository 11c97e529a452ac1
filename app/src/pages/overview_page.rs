use leptos::prelude::*;
use leptos_meta::Title;
use switchyard_domain::types::{Environment, ModelSummary, Overview};

use crate::api::get_clusters::get_clusters;
use crate::api::get_overview::get_overview;
use crate::components::cluster_alerts::{drift_cells, ClusterAlerts, DriftCell};
use crate::components::freeze_banner::FreezeBanner;
use crate::components::notification_alerts::NotificationAlerts;
use crate::components::pending_approvals::PendingApprovals;
use crate::components::stage_badge::StageBadge;
use crate::components::status::{ErrorNote, Loading};
use crate::format::utc;

/// Environments × models: which version each environment pins for each model.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_overview());
    let clusters = Resource::new(|| (), |_| get_clusters(true));
    let (filter, set_filter) = signal(String::new());

    view! {
        <Title text="Overview · Switchyard"/>
        <div class="page-head">
            <h1>"Overview"</h1>
            <p class="lede">"Which version each environment pins for each model."</p>
        </div>
        <NotificationAlerts/>
        <FreezeBanner/>
        <PendingApprovals/>
        <ClusterAlerts clusters/>
        <Suspense fallback=|| view! { <Loading what="the overview"/> }>
            {move || Suspend::new(async move {
                let drift = drift_cells(&clusters.await.unwrap_or_default());
                match overview.await {
                    Ok(data) => view! {
                        <Summary data=data.clone()/>
                        <div class="toolbar">
                            <label for="model-filter">"Filter models"</label>
                            <input
                                id="model-filter"
                                type="search"
                                placeholder="e.g. chat"
                                autocomplete="off"
                                prop:value=filter
                                on:input=move |ev| set_filter.set(event_target_value(&ev))
                            />
                        </div>
                        <PinMatrix data filter drift/>
                    }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the overview" error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Counts at the top of the page. Pending approvals, running operations and
/// drift join these cards as promotions and clusters arrive.
#[component]
fn Summary(data: Overview) -> impl IntoView {
    let versions: u64 = data.models.iter().map(|m| m.version_count).sum();
    let pins: usize = data.environments.iter().map(|e| e.pins.len()).sum();
    let in_production = data
        .models
        .iter()
        .filter(|m| m.production_version.is_some())
        .count();
    let cards = [
        ("Models", data.models.len().to_string()),
        ("Versions", versions.to_string()),
        ("Models in production", in_production.to_string()),
        ("Pins", pins.to_string()),
    ];
    view! {
        <section class="summary" aria-label="Summary">
            {cards.into_iter().map(|(label, n)| view! {
                <div class="card">
                    <span class="card-n">{n}</span>
                    <span class="card-label">{label}</span>
                </div>
            }).collect_view()}
        </section>
    }
}

#[component]
fn PinMatrix(data: Overview, filter: ReadSignal<String>, drift: Vec<DriftCell>) -> impl IntoView {
    let Overview {
        environments,
        models,
    } = data;
    let total = models.len();
    let envs = StoredValue::new(environments);
    let models = StoredValue::new(models);
    let drift = StoredValue::new(drift);
    let visible = move || {
        // Model ids are lower-case ASCII; ASCII folding is all a match needs
        // (Unicode's `to_lowercase` brings its tables into the wasm).
        let needle = filter.get().trim().to_ascii_lowercase();
        models.with_value(|ms| {
            ms.iter()
                .filter(|m| needle.is_empty() || m.model_id.as_str().contains(&needle))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let shown = move || visible().len();

    view! {
        <p class="count" aria-live="polite">
            {move || format!("Showing {} of {} models", shown(), total)}
        </p>
        <div class="table-wrap">
            <table class="matrix">
                <caption class="visually-hidden">"Pinned version per model and environment"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Model"</th>
                        {envs.with_value(|es| es.iter().map(|e| view! {
                            <th scope="col">
                                {e.name.clone()}
                                <span class="policy">{policy_summary(e)}</span>
                            </th>
                        }).collect_view())}
                    </tr>
                </thead>
                <tbody>
                    <For each=visible key=|m| m.model_id.clone() let:model>
                        <ModelRow model envs drift/>
                    </For>
                </tbody>
            </table>
        </div>
        <Show when=move || shown() == 0>
            <p class="empty">"No model matches this filter."</p>
        </Show>
    }
}

/// One model's row. The environments (with every pin) and the drift are
/// borrowed from the matrix's stored values, not copied into each of the rows.
#[component]
fn ModelRow(
    model: ModelSummary,
    envs: StoredValue<Vec<Environment>>,
    drift: StoredValue<Vec<DriftCell>>,
) -> impl IntoView {
    let cells = |envs: &[Environment], drift: &[DriftCell]| {
        envs.iter()
        .map(|env| {
            let pin = env.pins.iter().find(|p| p.model_id == model.model_id).cloned();
            let drifted: Vec<String> = drift
                .iter()
                .filter(|d| d.environment == env.name && d.model_id == model.model_id)
                .map(|d| d.words.clone())
                .collect();
            let drift_note = (!drifted.is_empty()).then(|| view! { <span class="drift-flag">{drifted.join("; ")}</span> });
            match pin {
                Some(p) => view! {
                    <td>
                        <a class="version" href=format!("/versions/{}", p.full_id)>{p.version.to_string()}</a>
                        " "
                        <StageBadge stage=p.stage/>
                        <span class="sub">{format!("since {} by {}", utc(p.since), p.set_by)}</span>
                        {drift_note}
                    </td>
                }
                .into_any(),
                None => view! { <td class="none">"not pinned" {drift_note}</td> }.into_any(),
            }
        })
        .collect_view()
    };
    let cells = envs.with_value(|envs| drift.with_value(|drift| cells(envs, drift)));
    view! {
        <tr>
            <th scope="row">
                <a class="model" href=format!("/models/{}", model.model_id)>{model.model_id.to_string()}</a>
                <span class="sub">
                    {format!("{} versions · ", model.version_count)}
                    <a href=format!("/board?model={}", model.model_id)>"board"</a>
                </span>
            </th>
            {cells}
        </tr>
    }
}

fn policy_summary(env: &Environment) -> String {
    let p = &env.policy;
    format!(
        "min stage {} · {} approval{} · latest {}",
        p.min_stage,
        p.required_approvals,
        if p.required_approvals == 1 { "" } else { "s" },
        if p.allow_latest { "allowed" } else { "refused" }
    )
}
