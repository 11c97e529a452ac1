//! `/analysis`: analysis templates — the metric gates operations run after
//! their traffic steps — and the templates each cluster attaches. Everyone
//! signed in reads them; admins bound on all save, remove and attach them
//! (each change is a ledger event). A template is checked by the PromQL
//! parser of the Prometheus it names before it is saved. The forms post
//! without JavaScript too; for everyone else they are greyed out, with why.

use leptos::prelude::*;
use leptos_meta::Title;
use switchyard_domain::analysis::{AnalysisTemplate, PLACEHOLDERS};

use crate::api::get_analysis::get_analysis;
use crate::api::remove_analysis_template::RemoveAnalysisTemplate;
use crate::api::save_analysis_template::SaveAnalysisTemplate;
use crate::api::set_cluster_analysis::SetClusterAnalysis;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{AnalysisView, ClusterAnalysis};
use crate::session::csrf_token;

#[component]
pub fn AnalysisPage() -> impl IntoView {
    let save = ServerAction::<SaveAnalysisTemplate>::new();
    let remove = ServerAction::<RemoveAnalysisTemplate>::new();
    let attach = ServerAction::<SetClusterAnalysis>::new();
    let analysis = Resource::new(
        move || {
            (
                save.version().get(),
                remove.version().get(),
                attach.version().get(),
            )
        },
        |_| get_analysis(),
    );
    view! {
        <Title text="Analysis · Switchyard"/>
        <div class="page-head">
            <h1>"Analysis"</h1>
            <p class="lede">
                "Analysis templates are the metric gates of operations: a PromQL query to a Prometheus, "
                "measured after each rolling step and after a switch or hot reload. A measurement that meets "
                "the failure condition counts towards the failure limit, which rolls the operation back; one that "
                "meets neither condition, has no data or cannot be fetched is inconclusive and pauses the "
                "operation for a person. Templates attached to a cluster gate every operation on it but a rollback."
            </p>
        </div>
        <Transition fallback=|| view! { <Loading what="the analysis templates"/> }>
            {move || Suspend::new(async move {
                match analysis.await {
                    Ok(a) => view! { <AnalysisBody a save remove attach/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the analysis templates" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AnalysisBody(
    a: AnalysisView,
    save: ServerAction<SaveAnalysisTemplate>,
    remove: ServerAction<RemoveAnalysisTemplate>,
    attach: ServerAction<SetClusterAnalysis>,
) -> impl IntoView {
    let AnalysisView {
        templates,
        clusters,
        refused,
    } = a;
    let listed = if templates.is_empty() {
        view! { <p class="sub">"No analysis templates yet."</p> }.into_any()
    } else {
        let items = templates
            .into_iter()
            .map(|t| {
                let used_by: Vec<String> = clusters
                    .iter()
                    .filter(|c| c.templates.contains(&t.name))
                    .map(|c| c.cluster.clone())
                    .collect();
                view! { <TemplateDetail t used_by remove refused=refused.clone()/> }
            })
            .collect_view();
        view! { <div class="templates">{items}</div> }.into_any()
    };
    let cluster_rows = clusters
        .into_iter()
        .map(|c| view! { <ClusterLine c attach refused=refused.clone()/> })
        .collect_view();
    view! {
        <h2>"Templates"</h2>
        {listed}
        <h2>"Save a template"</h2>
        <TemplateForm save refused=refused.clone()/>
        <h2>"Attached to clusters"</h2>
        <div class="table-wrap">
            <table class="cluster-analysis">
                <caption class="visually-hidden">"Analysis templates each cluster runs"</caption>
                <ColumnHeads names=&["Cluster", "Environment", "Templates (comma-separated; empty detaches all)"]/>
                <tbody>{cluster_rows}</tbody>
            </table>
        </div>
    }
}

/// One template with every field, the clusters attaching it, and its Remove button.
#[component]
fn TemplateDetail(
    t: AnalysisTemplate,
    used_by: Vec<String>,
    remove: ServerAction<RemoveAnalysisTemplate>,
    refused: Option<String>,
) -> impl IntoView {
    let name = t.name.clone();
    let (data_name, field_name, remove_label) =
        (name.clone(), name.clone(), format!("Remove {name}"));
    let heading = format!("template-{name}");
    let labelled_by = heading.clone();
    let for_error = name.clone();
    let disabled = refused.is_some();
    let reason_id = format!("remove-reason-{name}");
    let reason_for = reason_id.clone();
    let reason_label = format!("Reason to remove {name} (required)");
    let attached = if used_by.is_empty() {
        "no cluster (operations may name it)".to_owned()
    } else {
        used_by.join(", ")
    };
    view! {
        <section class="template" data-template=data_name aria-labelledby=labelled_by>
            <h3 id=heading>{name}</h3>
            <dl class="fields">
                <dt>"Prometheus"</dt><dd>{t.prometheus_url.clone()}</dd>
                <dt>"Bearer token file"</dt><dd>{t.bearer_token_file.clone().unwrap_or_else(|| "none".to_owned())}</dd>
                <dt>"Query"</dt><dd><code class="query">{t.query.clone()}</code></dd>
                <dt>"Success"</dt><dd><code>{t.success.clone()}</code></dd>
                <dt>"Failure"</dt><dd><code>{t.failure.clone()}</code></dd>
                <dt>"Measurements"</dt>
                <dd>{format!("{} every {} ms", t.count, t.interval_ms)}</dd>
                <dt>"Limits"</dt>
                <dd>{format!(
                    "{} failed roll back; {} inconclusive pause for a person",
                    t.failure_limit, t.inconclusive_limit
                )}</dd>
                <dt>"Before the switch"</dt>
                <dd class="pre-switch">{if t.pre_switch { "measured on the newly loaded slot before traffic moves too" } else { "no: only after traffic moved" }}</dd>
                <dt>"Attached to"</dt><dd class="attached">{attached}</dd>
            </dl>
            <ActionForm action=remove attr:class="remove-template">
                <input type="hidden" name="name" value=field_name/>
                <input type="hidden" name="csrf_token" value=csrf_token()/>
                <label for=reason_for>{reason_label}</label>
                <input id=reason_id type="text" name="reason" required=true autocomplete="off" disabled=disabled/>
                <button class="button secondary" type="submit" disabled=disabled title=refused.clone().unwrap_or_default()>
                    {remove_label}
                </button>
            </ActionForm>
            {move || remove.value().get().and_then(Result::err).filter(|e| e.concerns(&for_error)).map(|e| view! {
                <p class="error" role="alert">{format!("Not removed: {}", e.message)}</p>
            })}
        </section>
    }
}

/// The form that creates a template, or replaces the one of the same name.
#[component]
fn TemplateForm(
    save: ServerAction<SaveAnalysisTemplate>,
    refused: Option<String>,
) -> impl IntoView {
    let disabled = refused.is_some();
    let placeholders = PLACEHOLDERS
        .iter()
        .map(|p| format!("{{{{{p}}}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <ActionForm action=save attr:class="save-template">
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <p class="sub">
                {format!(
                    "Saving under an existing name replaces that template; operations already running keep their copy. \
                     Placeholders, inside quoted label values only: {placeholders}."
                )}
            </p>
            <label><span>"Name"</span>
                <input type="text" name="name" required=true autocomplete="off" pattern="[a-z0-9][a-z0-9._-]{0,63}" disabled=disabled/>
            </label>
            <label><span>"Prometheus URL"</span>
                <input type="url" name="prometheus_url" required=true placeholder="http://prometheus:9090" disabled=disabled/>
            </label>
            <label><span>"Bearer token file (optional)"</span>
                <input type="text" name="bearer_token_file" autocomplete="off" disabled=disabled/>
            </label>
            <label><span>"Query (PromQL)"</span>
                <textarea name="query" required=true rows="3" disabled=disabled></textarea>
            </label>
            <label><span>"Success condition"</span>
                <input type="text" name="success" required=true placeholder="result < 0.01" disabled=disabled/>
            </label>
            <label><span>"Failure condition"</span>
                <input type="text" name="failure" required=true placeholder="result > 0.05" disabled=disabled/>
            </label>
            <label><span>"Interval (ms)"</span>
                <input type="number" name="interval_ms" required=true min="100" max="3600000" value="30000" disabled=disabled/>
            </label>
            <label><span>"Count"</span>
                <input type="number" name="count" required=true min="1" max="1000" value="5" disabled=disabled/>
            </label>
            <label><span>"Failure limit"</span>
                <input type="number" name="failure_limit" required=true min="1" value="2" disabled=disabled/>
            </label>
            <label><span>"Inconclusive limit"</span>
                <input type="number" name="inconclusive_limit" required=true min="1" value="1" disabled=disabled/>
            </label>
            <label class="check">
                <input type="checkbox" name="pre_switch" value="on" disabled=disabled/>
                <span>"Also measure the newly loaded slot before traffic moves to it (pre-switch: a failure means no switch)"</span>
            </label>
            <label><span>"Reason (required, kept in the ledger)"</span>
                <input type="text" name="reason" required=true autocomplete="off" disabled=disabled/>
            </label>
            <div class="move">
                <button class="button" type="submit" disabled=disabled aria-describedby=disabled.then_some("why-save-template")>
                    "Save template"
                </button>
                {refused.map(|why| view! { <span class="why" id="why-save-template">{why}</span> })}
            </div>
            {move || save.pending().get().then(|| view! { <p class="loading" role="status">"Checking the query with Prometheus…"</p> })}
            {move || save.value().get().map(|r| match r {
                Ok(true) => view! { <p class="done" role="status">"Template created."</p> }.into_any(),
                Ok(false) => view! { <p class="done" role="status">"Template saved."</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{format!("Not saved: {}", e.message)}</p> }.into_any(),
            })}
        </ActionForm>
    }
}

/// A cluster's attached templates, and the form that sets them.
#[component]
fn ClusterLine(
    c: ClusterAnalysis,
    attach: ServerAction<SetClusterAnalysis>,
    refused: Option<String>,
) -> impl IntoView {
    let disabled = refused.is_some();
    let field_id = format!("attach-{}", c.cluster.replace('.', "-"));
    let label_for = field_id.clone();
    let ClusterAnalysis {
        cluster,
        environment,
        templates,
    } = c;
    let for_error = cluster.clone();
    let for_done = cluster.clone();
    let (row, href, field, label) = (
        cluster.clone(),
        format!("/clusters/{cluster}"),
        cluster.clone(),
        format!("Templates of {cluster}"),
    );
    let attached = templates.join(", ");
    view! {
        <tr data-cluster=row>
            <th scope="row"><a href=href>{cluster}</a></th>
            <td>{environment}</td>
            <td>
                <ActionForm action=attach attr:class="attach-templates">
                    <input type="hidden" name="cluster" value=field/>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label class="visually-hidden" for=label_for>{label}</label>
                    <input id=field_id type="text" name="templates" autocomplete="off" value=attached disabled=disabled/>
                    <button class="button secondary" type="submit" disabled=disabled title=refused.clone().unwrap_or_default()>
                        "Set"
                    </button>
                </ActionForm>
                {move || attach.value().get().and_then(|r| match r {
                    Ok(done) if done.cluster == for_done => Some(view! {
                        <p class="done" role="status">{format!("{} runs: {}.", done.cluster, if done.templates.is_empty() { "no templates".to_owned() } else { done.templates.join(", ") })}</p>
                    }.into_any()),
                    Err(e) if e.concerns(&for_error) => Some(view! {
                        <p class="error" role="alert">{format!("Not set: {}", e.message)}</p>
                    }.into_any()),
                    _ => None,
                })}
            </td>
        </tr>
    }
}
