use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use switchyard_domain::ledger::{action, LedgerEvent};
use switchyard_domain::types::VerifyReport;

use crate::api::get_audit_page::get_audit_page;
use crate::api::verify_audit_chain::verify_audit_chain;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{encode, AuditFilter, AuditView};
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
    let verify_asked = move || query.read().get("verify").is_some_and(|v| v == "1");
    let verify = Resource::new(verify_asked, |asked| async move {
        if asked {
            Some(verify_audit_chain().await)
        } else {
            None
        }
    });
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
            <form method="get" action="/audit" class="inline">
                {move || filter.get().query_string().split('&').filter(|p| !p.is_empty()).map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    view! { <input type="hidden" name=k.to_owned() value=decode(v)/> }
                }).collect_view()}
                <input type="hidden" name="verify" value="1"/>
                <button class="button" type="submit">"Verify chain"</button>
            </form>
        </div>
        <Suspense fallback=|| view! { <Loading what="the verification (walking the whole chain)"/> }>
            {move || Suspend::new(async move {
                verify.await.map(|result| match result {
                    Ok(report) => view! { <VerifyResult report/> }.into_any(),
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

#[component]
fn VerifyResult(report: VerifyReport) -> impl IntoView {
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
