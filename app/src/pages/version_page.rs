use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use switchyard_domain::types::VersionDetail;

use crate::api::get_version_detail::get_version_detail;
use crate::components::stage_badge::StageBadge;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::format::utc;

/// A version: its config, its stage history and where it is pinned now.
#[component]
pub fn VersionPage() -> impl IntoView {
    let params = use_params_map();
    let full_id = move || params.read().get("full_id").unwrap_or_default();
    let detail = Resource::new(full_id, get_version_detail);
    view! {
        <Title text=move || format!("{} · Switchyard", full_id())/>
        <Suspense fallback=|| view! { <Loading what="the version"/> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) => view! { <VersionBody d/> }.into_any(),
                    Err(error) => view! {
                        <div class="page-head"><h1 class="mono">{full_id()}</h1></div>
                        <ErrorNote doing="load this version" error/>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn VersionBody(d: VersionDetail) -> impl IntoView {
    let v = d.version;
    let model = v.model_id.to_string();
    let config = serde_json::to_string_pretty(&v.config).unwrap_or_else(|_| v.config.to_string());
    let labels = v
        .labels
        .as_ref()
        .map(|l| {
            l.iter()
                .map(|(k, val)| format!("{k}={val}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|l| !l.is_empty());
    let pinned = if d.pinned_in.is_empty() {
        "not pinned in any environment".to_owned()
    } else {
        d.pinned_in.join(", ")
    };
    view! {
        <div class="page-head">
            <p class="crumbs">
                <a href="/">"Overview"</a>" / "<a href=format!("/models/{model}")>{model.clone()}</a>" / version"
            </p>
            <h1 class="mono">{v.full_id.to_string()} " " <StageBadge stage=v.stage/></h1>
        </div>
        <dl class="facts">
            <dt>"Pinned now in"</dt><dd>{pinned}</dd>
            <dt>"Stage"</dt><dd>{format!("{} since {}", v.stage, utc(v.stage_since))}</dd>
            {d.retires_at.map(|t| view! { <dt>"Retires"</dt><dd>{format!("not before {}", utc(t))}</dd> })}
            <dt>"Config hash"</dt><dd><code class="wrap">{v.config_hash.clone()}</code></dd>
            <dt>"Artifact"</dt><dd><code class="wrap">{v.artifact_uri.clone().unwrap_or_else(|| "none".into())}</code></dd>
            <dt>"Labels"</dt><dd>{labels.unwrap_or_else(|| "none".into())}</dd>
            <dt>"Registered"</dt><dd>{format!("{} by {}", utc(v.created_at), v.created_by)}</dd>
        </dl>
        <p><a href=format!("/board?model={model}")>"Move it on the lifecycle board"</a></p>
        <section aria-labelledby="history-h">
            <h2 id="history-h">"Stage history"</h2>
            <div class="table-wrap">
                <table>
                    <ColumnHeads names=&["When", "Change", "By", "Why", "Event"]/>
                    <tbody>
                        {d.stage_history.into_iter().map(|c| view! {
                            <tr>
                                <td>{utc(c.at)}</td>
                                <td>
                                    {c.from.map(|f| view! { <StageBadge stage=f/>" → " })}
                                    <StageBadge stage=c.to/>
                                </td>
                                <td>{c.actor}</td>
                                <td>{c.reason.unwrap_or_default()}</td>
                                <td class="mono">{format!("#{}", c.event_id)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
        <section aria-labelledby="config-h">
            <h2 id="config-h">"Config"</h2>
            <pre class="config" tabindex="0" aria-label="Config as JSON">{config}</pre>
        </section>
    }
}
