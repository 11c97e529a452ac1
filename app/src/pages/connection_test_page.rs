//! `/clusters/:name/test`: a cluster's connection test as a page — where a
//! newly added cluster is shown, and where the cluster page's "Test
//! connection" button leads without JavaScript (a GET form; in the browser
//! the checks are shown in place instead).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::test_cluster::test_cluster;
use crate::components::status::{ErrorNote, Loading};
use crate::data::ConnectionTest;

#[component]
pub fn ConnectionTestPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let report = Resource::new(name, test_cluster);
    let added = use_query_map().get_untracked().get("added").is_some();
    view! {
        <Title text=move || format!("Connection test · {} · Switchyard", name())/>
        <div class="page-head">
            <p class="crumbs">
                <a href="/clusters">"Clusters"</a>" / "
                <a href=move || format!("/clusters/{}", name())>{name}</a>
            </p>
            <h1>"Connection test"</h1>
        </div>
        {added.then(|| view! {
            <p class="done" role="status" data-posted="true">
                {move || format!("Cluster {} added. Nothing is deployed to it yet; below, whether each part its driver needs answers.", name())}
            </p>
        })}
        <Transition fallback=|| view! { <Loading what="the connection test (up to 20 s)"/> }>
            {move || Suspend::new(async move {
                match report.await {
                    Ok(test) => view! {
                        <ConnectionChecks test/>
                        <p class="buttons">
                            <a class="button secondary" href=move || format!("/clusters/{}/test", name())>"Test again"</a>
                            " "
                            <a class="button secondary" href=move || format!("/clusters/{}", name())>"Back to the cluster"</a>
                        </p>
                    }.into_any(),
                    Err(error) => view! { <ErrorNote doing="test this cluster's connection" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Every check of a connection test: passed, or what was found and how to fix it.
#[component]
pub fn ConnectionChecks(test: ConnectionTest) -> impl IntoView {
    let failed = test.checks.iter().filter(|c| !c.ok).count();
    let total = test.checks.len();
    let summary = if test.ok {
        format!("{}: all {total} checks passed.", test.cluster)
    } else {
        format!(
            "{}: {failed} of {total} checks failed — each says what to fix.",
            test.cluster
        )
    };
    let class = if test.ok { "done" } else { "error" };
    view! {
        <div class="connection-test" data-ok=test.ok.to_string()>
            <p class=class role="status">{summary}</p>
            <ul class="checks">
                {test.checks.into_iter().map(|c| {
                    let mark = if c.ok { "passed" } else { "FAILED" };
                    let name = c.check.clone();
                    view! {
                        <li data-ok=c.ok.to_string() data-check=name>
                            <span class="mark">{mark}</span>" "
                            <strong>{c.check}</strong>": "{c.detail}
                            {c.advice.map(|a| view! { <span class="advice">" — how to fix: "{a}</span> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}
