use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use switchyard_domain::checkpoint::CheckpointReport;
use switchyard_domain::ledger::{action, LedgerEvent};
use switchyard_domain::types::VerifyReport;
use switchyard_domain::Timestamp;

use crate::api::get_audit_page::get_audit_page;
use crate::api::verify_audit_chain::verify_audit_chain;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{encode, AuditFilter, AuditVerification, AuditView, CheckpointCheck};
use crate::format::utc_seconds;

/// The action filter's menu, grouped as a release manager thinks of them.
const ACTIONS: [(&str, &[&str]); 4] = [
    (
        "Versions and pins",
        &[
            action::VERSION_REGISTERED,
            action::STAGE_CHANGED,
            action::PIN_CHANGED,
            action::DEPRECATION,
            action::RETIREMENT,
            action::RETIREMENT_HELD,
            action::ENVIRONMENT_CHANGED,
        ],
    ),
    (
        "Promotions",
        &[
            action::PROMOTION_REQUESTED,
            action::PROMOTION_APPROVED,
            action::PROMOTION_REJECTED,
            action::PROMOTION_EXPIRED,
            action::PROMOTION_APPLIED,
        ],
    ),
    (
        "Clusters",
        &[
            action::CLUSTER_CREATED,
            action::OPERATION_STARTED,
            action::OPERATION_STEP,
            action::OPERATION_INTERRUPTED,
            action::OPERATION_RESUMED,
            action::OPERATION_RECONCILED,
            action::OPERATION_COMPLETED,
            action::OPERATION_FAILED,
            action::ROLLBACK,
        ],
    ),
    (
        "Users and access",
        &[
            action::USER_CREATED,
            action::USER_DISABLED,
            action::TOKEN_CREATED,
            action::TOKEN_REVOKED,
            action::SIGNED_IN,
            action::SIGN_IN_FAILED,
            action::SIGNED_OUT,
        ],
    ),
];

/// The ledger: filtered, paginated, exportable, verifiable.
#[component]
pub fn AuditLogPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        let q = query.read();
        AuditFilter {
            from: q.get("from"),
            to: q.get("to"),
            action: q.get("action"),
            actor: q.get("actor"),
            model: q.get("model"),
            env: q.get("env"),
            cluster: q.get("cluster"),
        }
    });
    let cursor = move || query.read().get("cursor").filter(|c| !c.is_empty());
    let page = Resource::new(
        move || (filter.get(), cursor()),
        |(f, c)| {
            get_audit_page(
                f.from, f.to, f.action, f.actor, f.model, f.env, f.cluster, c,
            )
        },
    );
    // `?verify=1&public_key=HEX`: an address that can be bookmarked and
    // works without JavaScript (a GET form, rendered on the server).
    let verify_asked = move || query.read().get("verify").is_some_and(|v| v == "1");
    let public_key = move || {
        query
            .read()
            .get("public_key")
            .filter(|k| !k.trim().is_empty())
    };
    let verify = Resource::new(
        move || (verify_asked(), public_key()),
        |(asked, key)| async move {
            if asked {
                Some(verify_audit_chain(key).await)
            } else {
                None
            }
        },
    );
    let value = move |k: &'static str| move || query.read().get(k).unwrap_or_default();

    view! {
        <Title text="Audit log · Switchyard"/>
        <div class="page-head">
            <h1>"Audit log"</h1>
            <p class="lede">"Every change, newest first, in a hash-chained ledger that cannot be edited without it showing."</p>
        </div>
        <form class="filters" method="get" action="/audit" aria-label="Filter the audit log">
            <label>"From (UTC)" <input type="text" name="from" value=value("from") inputmode="numeric" autocomplete="off" placeholder="YYYY-MM-DD HH:MM"/></label>
            <label>"To (UTC)" <input type="text" name="to" value=value("to") inputmode="numeric" autocomplete="off" placeholder="YYYY-MM-DD HH:MM"/></label>
            <label>"Action"
                <select name="action">
                    <option value="">"any action"</option>
                    {ACTIONS.into_iter().map(|(group, actions)| view! {
                        <optgroup label=group>
                            {actions.iter().map(|&a| view! {
                                <option value=a selected=move || query.read().get("action").as_deref() == Some(a)>{a}</option>
                            }).collect_view()}
                        </optgroup>
                    }).collect_view()}
                </select>
            </label>
            <label>"Actor" <input type="text" name="actor" value=value("actor") placeholder="e.g. alice"/></label>
            <label>"Model" <input type="text" name="model" value=value("model") placeholder="e.g. chat"/></label>
            <label>"Environment"
                <select name="env">
                    <option value="">"any environment"</option>
                    {["development", "staging", "production"].into_iter().map(|e| view! {
                        <option value=e selected=move || query.read().get("env").as_deref() == Some(e)>{e}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Cluster" <input type="text" name="cluster" value=value("cluster") placeholder="e.g. prod-eu"/></label>
            <div class="form-actions">
                <button class="button" type="submit">"Apply filters"</button>
                <a class="button secondary" href="/audit">"Clear"</a>
            </div>
        </form>
        <div class="toolbar">
            <span>"Export the filtered events:"</span>
            <a class="button secondary" download="" href=move || format!("/console/export/audit.csv?{}", filter.get().query_string())>"CSV"</a>
            <a class="button secondary" download="" href=move || format!("/console/export/audit.json?{}", filter.get().query_string())>"JSON"</a>
        </div>
        <form method="get" action="/audit" class="filters verify-form" aria-label="Verify the ledger">
            {move || filter.get().query_string().split('&').filter(|p| !p.is_empty()).map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                view! { <input type="hidden" name=k.to_owned() value=decode(v)/> }
            }).collect_view()}
            <input type="hidden" name="verify" value="1"/>
            <label>"Checkpoint public key (your own copy)"
                <input type="text" name="public_key" value=value("public_key") autocomplete="off" spellcheck="false"
                    placeholder="64 hex digits, as switchyard audit public-key prints" aria-describedby="verify-why"/>
            </label>
            <div class="form-actions">
                <button class="button" type="submit">"Verify chain"</button>
            </div>
            <p class="hint" id="verify-why">
                "Verify walks the hash chain; with the public key it also checks every signed checkpoint in the server's checkpoint file: that the ledger still holds each signed head unchanged. "
                "Paste the key from where it was published to you, not from this server: whoever can change the database could also make the server show a key of their own, and the server's word about its own key proves nothing."
            </p>
        </form>
        <Suspense fallback=|| view! { <Loading what="the verification (walking the whole chain)"/> }>
            {move || Suspend::new(async move {
                verify.await.map(|result| match result {
                    Ok(found) => view! { <VerifyResult found/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="verify the chain" error/> }.into_any(),
                })
            })}
        </Suspense>
        <Transition fallback=|| view! { <Loading what="the audit log"/> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(view) => view! { <Events view filter=filter.get_untracked()/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the audit log" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Undoes `encode` for hidden inputs (the browser encodes them again on submit).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The verdict of "Verify chain": the hash chain, then the signed checkpoints.
#[component]
fn VerifyResult(found: AuditVerification) -> impl IntoView {
    let AuditVerification { chain, checkpoints } = found;
    view! {
        <ChainResult report=chain/>
        <CheckpointResult check=checkpoints/>
    }
}

#[component]
fn ChainResult(report: VerifyReport) -> impl IntoView {
    if report.ok {
        view! {
            <p class="verify ok" role="status">
                <strong>"Chain OK. "</strong>
                {format!("All {} events link up to the recorded head; nothing was edited, removed or inserted.", report.checked)}
            </p>
        }
        .into_any()
    } else {
        let at = report
            .first_broken_id
            .map(|id| format!(" at event #{id}"))
            .unwrap_or_default();
        view! {
            <p class="verify broken" role="alert">
                <strong>{format!("Chain broken{at}. ")}</strong>
                {report.problem.unwrap_or_else(|| "The ledger does not match its hashes.".into())}
                {format!(" ({} events checked before it.)", report.checked)}
            </p>
        }
        .into_any()
    }
}

#[component]
fn CheckpointResult(check: CheckpointCheck) -> impl IntoView {
    match check {
        CheckpointCheck::NotConfigured => view! {
            <p class="verify note" role="status" data-checkpoints="not-configured">
                <strong>"Signed checkpoints not checked: this server has no checkpoint file. "</strong>
                "The hash chain alone does not notice the newest events deleted, or rewritten with their hashes recomputed. "
                "To check them here, set SWITCHYARD_CHECKPOINT_FILE (the checkpoint file) and SWITCHYARD_CHECKPOINT_KEY "
                "(a signing key from switchyard audit keygen, so that the server signs checkpoints into it) and restart the server; "
                "or check a copy of a checkpoint file with switchyard audit verify --checkpoints FILE --public-key KEY."
            </p>
        }
        .into_any(),
        CheckpointCheck::NoKey { file } => view! {
            <p class="verify note" role="status" data-checkpoints="no-key">
                <strong>"Signed checkpoints not checked: no public key was given. "</strong>
                {format!("Paste your copy of the public key above and verify again to check the checkpoints in {file}.")}
            </p>
        }
        .into_any(),
        CheckpointCheck::Unreadable { file, problem } => view! {
            <p class="verify broken" role="alert" data-checkpoints="unreadable">
                <strong>{format!("Signed checkpoints not checked: the checkpoint file {file} cannot be used. ")}</strong>
                {problem}
            </p>
        }
        .into_any(),
        CheckpointCheck::Checked { file, public_key, report } => {
            view! { <CheckedCheckpoints file public_key report/> }.into_any()
        }
    }
}

#[component]
fn CheckedCheckpoints(file: String, public_key: String, report: CheckpointReport) -> impl IntoView {
    let key = view! { <code class="key">{public_key}</code> };
    if !report.holds() {
        let n = report.problems.len();
        return view! {
            <div class="verify broken" role="alert" data-checkpoints="contradicted">
                <p><strong>{format!(
                    "Checkpoints CONTRADICTED: {n} {} in {} ({} {}, public key ",
                    if n == 1 { "finding" } else { "findings" },
                    file,
                    report.checked,
                    if report.checked == 1 { "checkpoint" } else { "checkpoints" }
                )}</strong>{key}<strong>")."</strong></p>
                <ul class="findings">
                    {report.problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
                </ul>
            </div>
        }
        .into_any();
    }
    match report.newest {
        None => view! {
            <p class="verify note" role="status" data-checkpoints="empty">
                <strong>{format!("The checkpoint file {file} holds no checkpoint yet. ")}</strong>
                {format!("Nothing vouches for the ledger's {} events beyond the hash chain.", report.events_after_newest)}
            </p>
        }
        .into_any(),
        Some(newest) => view! {
            <p class="verify ok" role="status" data-checkpoints="hold">
                <strong>"Checkpoints OK. "</strong>
                {format!(
                    "{} signed {} checked in {file} with public key ",
                    report.checked,
                    if report.checked == 1 { "checkpoint" } else { "checkpoints" }
                )}
                {key}
                {format!(
                    ": the ledger still holds each signed head unchanged. Newest: checkpoint #{} — event #{} at {}, signed {}. \
                     Events after the newest checkpoint: {}. Compare the newest with your own copy of the file: \
                     checkpoints removed from the end of the server's copy show only there.",
                    newest.seq,
                    newest.event_id,
                    utc_seconds(Timestamp::from_micros(newest.event_at)),
                    utc_seconds(Timestamp::from_micros(newest.signed_at)),
                    report.events_after_newest
                )}
            </p>
        }
        .into_any(),
    }
}

#[component]
fn Events(view: AuditView, filter: AuditFilter) -> impl IntoView {
    let AuditView { page, .. } = view;
    let base = filter.query_string();
    let older = page.next_cursor.map(|c| {
        let sep = if base.is_empty() { "" } else { "&" };
        format!("/audit?{base}{sep}cursor={}", encode(&c))
    });
    let newest = format!("/audit?{base}");
    let empty = page.events.is_empty();
    view! {
        <div class="table-wrap">
            <table class="audit">
                <caption class="visually-hidden">"Ledger events, newest first"</caption>
                <ColumnHeads names=&["#", "When", "Actor", "Action", "Subject", "Reason", "Details"]/>
                <tbody>
                    {page.events.into_iter().map(|e| view! { <EventRow e/> }).collect_view()}
                </tbody>
            </table>
        </div>
        {empty.then(|| view! { <p class="empty">"No event matches these filters."</p> })}
        <nav class="pager" aria-label="Pages">
            <a class="button secondary" href=newest>"Newest"</a>
            {match older {
                Some(href) => view! { <a class="button secondary" href=href>"Older events →"</a> }.into_any(),
                None => view! { <span class="sub">"This is the oldest page."</span> }.into_any(),
            }}
        </nav>
    }
}

#[component]
fn EventRow(e: LedgerEvent) -> impl IntoView {
    let subject = match (&e.model_id, &e.version) {
        (Some(m), Some(v)) => {
            let id = format!("{m}:{v}");
            view! { <a class="mono" href=format!("/versions/{id}")>{id.clone()}</a> }.into_any()
        }
        (Some(m), None) => {
            view! { <a class="mono" href=format!("/models/{m}")>{m.clone()}</a> }.into_any()
        }
        _ => view! { <span>"—"</span> }.into_any(),
    };
    let place = [e.environment.clone(), e.cluster.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    // Folded: the field names in one line, the formatted JSON on a click.
    let details = (!e.details.is_null() && e.details.as_object().is_none_or(|o| !o.is_empty()))
        .then(|| {
            let summary = details_summary(&e.details);
            let pretty = serde_json::to_string_pretty(&e.details).unwrap_or_default();
            view! {
                <details class="details">
                    <summary>{summary}</summary>
                    <pre>{pretty}</pre>
                </details>
            }
        });
    view! {
        <tr>
            <td class="mono">{e.id}</td>
            <td class="nowrap">{utc_seconds(e.at)}</td>
            <td>{e.actor}</td>
            <td><code>{e.action}</code></td>
            <td>{subject}<span class="sub">{place}</span></td>
            <td>{e.reason.unwrap_or_default()}</td>
            <td>{details}</td>
        </tr>
    }
}

/// A line naming what an event's details hold: `steps, before, trigger`, or
/// the value itself when it is short.
pub fn details_summary(details: &serde_json::Value) -> String {
    const MAX: usize = 60;
    let line = match details.as_object() {
        Some(o) => o.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
        None => details.to_string(),
    };
    if line.chars().count() > MAX {
        let cut: String = line.chars().take(MAX - 1).collect();
        format!("{cut}…")
    } else {
        line
    }
}

#[cfg(test)]
mod details_tests {
    use super::details_summary;
    use serde_json::json;

    #[test]
    fn details_are_summarised_by_their_field_names_and_long_lines_are_cut() {
        assert_eq!(
            details_summary(&json!({"steps": [1], "before": {}})),
            "before, steps"
        );
        let long =
            json!({"a_very_long_field_name_one": 1, "a_very_long_field_name_two": 2, "three": 3});
        let s = details_summary(&long);
        assert_eq!(s.chars().count(), 60);
        assert!(s.ends_with('…'));
        assert_eq!(details_summary(&json!("text")), "\"text\"");
    }
}
