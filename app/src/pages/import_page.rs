//! Importing an MLflow Model Registry from the console (admins): the form
//! that starts an import in the background — the pass `switchyard import
//! mlflow` makes — and each import's progress page, fetched again every
//! second while it runs (with JavaScript) or refreshed by the browser
//! every two seconds (without).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::get_mlflow_import::get_mlflow_import;
use crate::api::get_mlflow_imports::get_mlflow_imports;
use crate::api::start_mlflow_import::StartMlflowImport;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{ImportRunView, MlflowImports};
use crate::format::utc_seconds;
use crate::session::csrf_token;

/// How often a hydrated progress page asks again while the import runs.
const POLL_MS: u64 = 1000;

const IMPORT_COUNTS: [&str; 7] = [
    "Models",
    "Versions read",
    "Created",
    "Already imported",
    "Conflicts",
    "Refused",
    "Deleted in MLflow",
];
const DRY_RUN_COUNTS: [&str; 7] = [
    "Models",
    "Versions read",
    "Would be created",
    "Already imported",
    "Conflicts",
    "Refused",
    "Deleted in MLflow",
];

/// The counts' column heads: a dry run creates nothing, it would.
fn count_heads(dry_run: bool) -> &'static [&'static str] {
    if dry_run {
        &DRY_RUN_COUNTS
    } else {
        &IMPORT_COUNTS
    }
}

/// Without JavaScript the browser reloads a running import's page every 2
/// seconds; with it, `<noscript>` is inert and the page polls instead.
const RELOAD: &str = r#"<meta http-equiv="refresh" content="2">"#;

/// How a run stands, in words.
pub fn state_words(r: &ImportRunView) -> String {
    match r.state.as_str() {
        "running" if r.models_total == 0 => "running: listing the registered models".to_owned(),
        "running" => format!("running: model {} of {}", r.models_begun, r.models_total),
        "stopped" => "stopped before the end (run it again to resume)".to_owned(),
        _ if r.dry_run => "done: nothing was changed (dry run)".to_owned(),
        _ => "done".to_owned(),
    }
}

/// The form, and this server's recent imports.
#[component]
pub fn MlflowImportPage() -> impl IntoView {
    let page = Resource::new(|| (), |_| get_mlflow_imports());
    let start = ServerAction::<StartMlflowImport>::new();
    // Hydrated: a started import is followed on its own page (a plain form
    // post is sent there by the server).
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(run)) = start.value().get() {
            navigate(&format!("/import/mlflow/{}", run.id), Default::default());
        }
    });
    view! {
        <Title text="Import from MLflow · Switchyard"/>
        <div class="page-head">
            <h1>"Import from MLflow"</h1>
            <p class="lede">
                "Registers the versions of an MLflow Model Registry as Switchyard versions, as "
                <code>"switchyard import mlflow"</code>
                " does: names mapped by the rules in the README, aliases pinned in the environments you map them to, "
                "every item a ledger event by import:mlflow. Importing again creates nothing twice; a dry run changes nothing."
            </p>
        </div>
        <Transition fallback=|| view! { <Loading what="the import page"/> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <ImportBody p start/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="open the MLflow import page" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ImportBody(p: MlflowImports, start: ServerAction<StartMlflowImport>) -> impl IntoView {
    let MlflowImports {
        credentials,
        environments,
        runs,
        kept,
    } = p;
    let envs = environments.join(", ");
    view! {
        <section aria-labelledby="new-import-h">
            <h2 id="new-import-h">"Start an import"</h2>
            <ActionForm action=start attr:class="stacked">
                <input type="hidden" name="csrf_token" value=csrf_token()/>
                <label><span>"Tracking URI (http or https)"</span>
                    <input type="url" name="tracking_uri" required=true autocomplete="off" placeholder="http://mlflow.internal:5000"/></label>
                <label><span>"Model names (a pattern: * any run of characters, ? one character; empty: every model)"</span>
                    <input type="text" name="models" autocomplete="off" placeholder="fraud-*"/></label>
                <label><span>{format!("Aliases to environments (alias=environment, separated by commas; environments: {envs})")}</span>
                    <input type="text" name="aliases" autocomplete="off" placeholder="champion=production, challenger=staging"/></label>
                <label><span>"MLflow's deprecated stages to environments (Stage=environment; optional)"</span>
                    <input type="text" name="stages" autocomplete="off" placeholder="Production=production"/></label>
                <label><span>"Model id prefix (optional; keeps two registries apart)"</span>
                    <input type="text" name="prefix" autocomplete="off" placeholder="research-"/></label>
                <label><span>"Credential (a configured source's; the secret stays on the server)"</span>
                    <select name="credential">
                        <option value="" selected=true>"None"</option>
                        {credentials.into_iter().map(|c| {
                            let words = format!("{} — {}, for {} only", c.source, c.what, c.tracking_uri);
                            view! { <option value=c.source>{words}</option> }
                        }).collect_view()}
                    </select></label>
                <label class="check"><input type="checkbox" name="dry_run" value="true"/>
                    <span>"Dry run — show what would be created and refused, change nothing"</span></label>
                <button type="submit" class="button">"Start import"</button>
                {move || start.pending().get().then(|| view! { <p class="loading" role="status">"Asking MLflow…"</p> })}
                {move || start.value().get().and_then(Result::err).map(|e| view! {
                    <p class="error" role="alert">{format!("Not started: {}", e.message)}</p>
                })}
            </ActionForm>
            <p class="sub">
                "Credentials are never typed here: an import may use the credential of a source this server follows "
                "(SWITCHYARD_MLFLOW_SOURCES, SWITCHYARD_MLFLOW_FOLLOW), and only toward that source's own tracking server."
            </p>
        </section>
        <section aria-labelledby="runs-h">
            <h2 id="runs-h">"Recent imports on this server"</h2>
            <p class="sub">{format!(
                "Imports run in the server that took the form and are kept in its memory (the last {kept}); \
                 a restart forgets them, the ledger keeps what they imported."
            )}</p>
            {if runs.is_empty() {
                view! { <p class="empty">"No import was started here yet."</p> }.into_any()
            } else {
                view! {
                    <table class="imports">
                        <ColumnHeads names=&["Started", "By", "Tracking URI", "Kind", "State", "Created", "Refused", ""]/>
                        <tbody>
                            {runs.into_iter().map(|r| {
                                let href = format!("/import/mlflow/{}", r.id);
                                view! {
                                    <tr data-import=r.id.clone() data-state=r.state.clone()>
                                        <td>{utc_seconds(r.started_at)}</td>
                                        <td>{r.started_by.clone()}</td>
                                        <td><code class="wrap">{r.tracking_uri.clone()}</code></td>
                                        <td>{if r.dry_run { "dry run" } else { "import" }}</td>
                                        <td>{state_words(&r)}</td>
                                        <td>{r.created}</td>
                                        <td>{r.refused}</td>
                                        <td><a href=href>"Details"</a></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

/// One import's progress, then its result.
#[component]
pub fn MlflowImportRunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let tick = RwSignal::new(0_u32);
    let run = Resource::new(move || (id(), tick.get()), |(id, _)| get_mlflow_import(id));
    // Effects run only in the browser: while the import runs, ask again
    // every second; without JavaScript the page refreshes itself instead.
    Effect::new(move |_| {
        let again = move || {
            let running = run.with_untracked(|r| matches!(r, Some(Ok(r)) if r.running()));
            if running {
                tick.update(|n| *n += 1);
            }
        };
        if let Ok(handle) =
            set_interval_with_handle(again, std::time::Duration::from_millis(POLL_MS))
        {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <Title text="MLflow import · Switchyard"/>
        <div class="page-head">
            <p class="crumbs"><a href="/import/mlflow">"Import from MLflow"</a></p>
            <h1>"MLflow import"</h1>
        </div>
        <Transition fallback=|| view! { <Loading what="the import"/> }>
            {move || Suspend::new(async move {
                match run.await {
                    Ok(r) => view! { <RunView r/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="show this import" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn RunView(r: ImportRunView) -> impl IntoView {
    let running = r.running();
    let kind = if r.dry_run { "Dry run" } else { "Import" };
    let head = format!(
        "{kind} from {}, started {} by {}: {}",
        r.tracking_uri,
        utc_seconds(r.started_at),
        r.started_by,
        state_words(&r)
    );
    let listed = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let self_href = format!("/import/mlflow/{}", r.id);
    view! {
        {running.then(|| view! {
            <noscript inner_html=RELOAD></noscript>
        })}
        <p class="import-head" data-state=r.state.clone() role="status" aria-live="polite">{head}</p>
        {running.then(|| view! {
            <p class="sub">
                "This page follows the import while it runs (without JavaScript it reloads every 2 seconds: "
                <a href=self_href.clone()>"refresh now"</a>")."
            </p>
            <progress max=r.models_total.max(1).to_string() value=r.models_begun.to_string()></progress>
        })}
        <dl class="facts">
            <dt>"Model names"</dt><dd>{r.pattern.clone().unwrap_or_else(|| "every model".to_owned())}</dd>
            <dt>"Aliases"</dt><dd>{listed(&r.aliases)}</dd>
            <dt>"Stages"</dt><dd>{listed(&r.stages)}</dd>
            <dt>"Prefix"</dt><dd>{if r.prefix.is_empty() { "none".to_owned() } else { r.prefix.clone() }}</dd>
            <dt>"Credential"</dt><dd>{r.credential.clone().map_or_else(|| "none".to_owned(), |s| format!("source {s}'s"))}</dd>
            {r.finished_at.map(|t| view! { <dt>"Finished"</dt><dd>{utc_seconds(t)}</dd> })}
        </dl>
        <table class="import-counts">
            <ColumnHeads names=count_heads(r.dry_run)/>
            <tbody>
                <tr>
                    <td data-count="models">{format!("{} of {}", r.models_begun, r.models_total)}</td>
                    <td data-count="versions">{r.versions_read}</td>
                    <td data-count="created">{r.created}</td>
                    <td data-count="unchanged">{r.unchanged}</td>
                    <td data-count="conflicts">{r.conflicts}</td>
                    <td data-count="refused">{r.refused}</td>
                    <td data-count="gone">{r.gone}</td>
                </tr>
            </tbody>
        </table>
        {r.stopped.clone().map(|why| view! { <p class="error" role="alert">{format!("Stopped: {why}")}</p> })}
        {r.summary.clone().map(|s| view! { <p class="done"><code class="wrap">{s}</code></p> })}
        <section aria-labelledby="items-h">
            <h2 id="items-h">"Items"</h2>
            {if r.lines.is_empty() {
                view! { <p class="empty">{if running { "Nothing yet." } else { "Nothing to create or refuse: every version was already imported." }}</p> }.into_any()
            } else {
                view! {
                    <table class="import-items">
                        <ColumnHeads names=&["What", "Item"]/>
                        <tbody>
                            {r.lines.into_iter().map(|line| {
                                let (what, item) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                                let (what, item) = (what.to_owned(), item.trim_start().to_owned());
                                let kind = what.clone();
                                view! { <tr data-item=kind><td>{what}</td><td><span class="wrap">{item}</span></td></tr> }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::Timestamp;

    fn run() -> ImportRunView {
        ImportRunView {
            id: "00ff".into(),
            started_at: Timestamp::from_micros(0),
            started_by: "ada".into(),
            tracking_uri: "http://mlflow:5000".into(),
            pattern: None,
            aliases: vec![],
            stages: vec![],
            prefix: String::new(),
            credential: None,
            dry_run: false,
            state: "running".into(),
            finished_at: None,
            models_total: 0,
            models_begun: 0,
            versions_read: 0,
            created: 0,
            unchanged: 0,
            conflicts: 0,
            refused: 0,
            gone: 0,
            lines: vec![],
            stopped: None,
            summary: None,
        }
    }

    #[test]
    fn the_state_says_how_far_an_import_got_and_that_a_dry_run_changed_nothing() {
        assert_eq!(
            state_words(&run()),
            "running: listing the registered models"
        );
        let reading = ImportRunView {
            models_total: 50,
            models_begun: 3,
            ..run()
        };
        assert_eq!(state_words(&reading), "running: model 3 of 50");
        let dry = ImportRunView {
            state: "done".into(),
            dry_run: true,
            ..run()
        };
        assert_eq!(state_words(&dry), "done: nothing was changed (dry run)");
        let stopped = ImportRunView {
            state: "stopped".into(),
            ..run()
        };
        assert!(state_words(&stopped).contains("run it again to resume"));
    }
}
