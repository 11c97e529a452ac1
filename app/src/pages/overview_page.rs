use leptos::prelude::*;
use leptos_meta::Title;
use switchyard_domain::types::{Environment, ModelSummary, Overview};

use crate::api::get_overview::get_overview;
use crate::components::stage_badge::StageBadge;

/// Environments × models: which version each environment pins for each model.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_overview());
    let (filter, set_filter) = signal(String::new());
    // Effects run only in the browser: this marks the page as interactive.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    view! {
        <Title text="Overview · Switchyard"/>
        <div class="page-head">
            <h1>"Overview"</h1>
            <p class="lede">"Which version each environment pins for each model."</p>
        </div>
        <div class="toolbar" data-hydrated=move || hydrated.get().to_string()>
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
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading the overview…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(data) => view! { <PinMatrix data filter/> }.into_any(),
                    Err(e) => view! {
                        <p class="error" role="alert">"Could not load the overview: " {e.message}</p>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn PinMatrix(data: Overview, filter: ReadSignal<String>) -> impl IntoView {
    let Overview { environments, models } = data;
    let total = models.len();
    let envs = StoredValue::new(environments);
    let models = StoredValue::new(models);
    let visible = move || {
        let needle = filter.get().trim().to_lowercase();
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
                        <ModelRow model envs=envs.get_value()/>
                    </For>
                </tbody>
            </table>
        </div>
        <Show when=move || shown() == 0>
            <p class="empty">"No model matches this filter."</p>
        </Show>
    }
}

#[component]
fn ModelRow(model: ModelSummary, envs: Vec<Environment>) -> impl IntoView {
    let cells = envs
        .iter()
        .map(|env| {
            let pin = env.pins.iter().find(|p| p.model_id == model.model_id).cloned();
            match pin {
                Some(p) => view! {
                    <td>
                        <span class="version" title=format!("pinned since {} by {}", p.since, p.set_by)>
                            {p.version.to_string()}
                        </span>
                        " "
                        <StageBadge stage=p.stage/>
                    </td>
                }
                .into_any(),
                None => view! { <td class="none">"not pinned"</td> }.into_any(),
            }
        })
        .collect_view();
    view! {
        <tr>
            <th scope="row">
                <span class="model">{model.model_id.to_string()}</span>
                <span class="sub">{format!("{} versions", model.version_count)}</span>
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
