use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use switchyard_domain::types::{PinApprover, PinPromotion, RequestLookup};

use crate::api::lookup_request::lookup_request;
use crate::components::gate_results::GateResultsDetails;
use crate::components::stage_badge::StageBadge;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::format::{milliseconds, utc, utc_seconds};

/// Request id → the version that served it, its config hash, and how it got there.
#[component]
pub fn RequestPage() -> impl IntoView {
    let query = use_query_map();
    let id = move || {
        query
            .read()
            .get("id")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let found = Resource::new(id, |id| async move {
        match id {
            Some(id) => Some(lookup_request(id).await),
            None => None,
        }
    });
    view! {
        <Title text="Request lookup · Switchyard"/>
        <div class="page-head">
            <h1>"Request lookup"</h1>
            <p class="lede">"Which model version served a request, with its config hash and the ledger events that put it in service."</p>
        </div>
        <form class="toolbar" method="get" action="/requests" role="search">
            <label for="request-id">"Request id"</label>
            <input id="request-id" type="search" name="id" required=true autocomplete="off"
                placeholder="e.g. req-7f3a…" value=move || id().unwrap_or_default()/>
            <button class="button" type="submit">"Look up"</button>
        </form>
        <Transition fallback=|| view! { <Loading what="the request"/> }>
            {move || Suspend::new(async move {
                match found.await {
                    None => view! { <p class="empty">"Enter the request id your model server logged."</p> }.into_any(),
                    Some(Ok(found)) => view! { <Found found/> }.into_any(),
                    Some(Err(error)) => view! { <ErrorNote doing="look up this request" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Found(found: RequestLookup) -> impl IntoView {
    let RequestLookup {
        record,
        version,
        provenance,
        notice,
        environment,
        promotion,
        gates,
        ..
    } = found;
    let full_id = record.full_id.to_string();
    view! {
        <section aria-labelledby="served-h" class="answer">
            <h2 id="served-h">"Served by " <a class="version" href=format!("/versions/{full_id}")>{full_id.clone()}</a></h2>
            <dl class="facts">
                <dt>"Request"</dt><dd><code class="wrap">{record.request_id}</code></dd>
                <dt>"At"</dt><dd>{utc_seconds(record.at)}</dd>
                <dt>"Where"</dt><dd>{format!("cluster {}, {} slot", record.cluster, record.slot)}</dd>
                <dt>"Latency"</dt><dd>{milliseconds(record.latency_ms)}</dd>
                <dt>"Outcome"</dt><dd>{record.outcome.unwrap_or_else(|| "not reported".into())}</dd>
                {match version {
                    Some(v) => view! {
                        <dt>"Config hash"</dt><dd><code class="wrap config-hash">{v.config_hash}</code></dd>
                        <dt>"Stage now"</dt><dd><StageBadge stage=v.stage/></dd>
                    }.into_any(),
                    None => view! { <dt>"Version"</dt><dd>"not registered (the record names an unknown version)"</dd> }.into_any(),
                }}
            </dl>
        </section>
        {environment.map(|env| view! { <Approval environment=env promotion/> })}
        {gates.map(|g| view! {
            <section aria-labelledby="analysis-h">
                <h2 id="analysis-h">"Analysis"</h2>
                <p class="sub">"The measurements that let this version into the cluster's traffic, up to the moment of the request."</p>
                <GateResultsDetails gates=g/>
            </section>
        })}
        <section aria-labelledby="prov-h">
            <h2 id="prov-h">"Provenance"</h2>
            <p class="sub">"Ledger events about this version and its cluster up to the moment of the request, oldest first."</p>
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <div class="table-wrap">
                <table>
                    <ColumnHeads names=&["#", "When", "Actor", "Action", "Where", "Reason"]/>
                    <tbody>
                        {provenance.into_iter().map(|e| view! {
                            <tr>
                                <td class="mono">{e.id}</td>
                                <td class="nowrap">{utc(e.at)}</td>
                                <td>{e.actor}</td>
                                <td><code>{e.action}</code></td>
                                <td>{e.environment.unwrap_or_default()}</td>
                                <td>{e.reason.unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// Who approved the version into the cluster's environment, as who they are
/// at the identity provider, and the policy that was in force.
#[component]
fn Approval(environment: String, promotion: Option<PinPromotion>) -> impl IntoView {
    let Some(p) = promotion else {
        return view! {
            <section aria-labelledby="approval-h">
                <h2 id="approval-h">"Approval"</h2>
                <p class="empty">{format!("No promotion put this version into {environment}: it was not approved there.")}</p>
            </section>
        }
        .into_any();
    };
    let policy = p.policy.map(|pol| {
        let mut parts = vec![format!(
            "{} distinct approver{}",
            pol.required_approvals,
            if pol.required_approvals == 1 { "" } else { "s" }
        )];
        if !pol.required_groups.is_empty() {
            parts.push(format!(
                "one approval from each of {}",
                pol.required_groups.join(", ")
            ));
        }
        if !pol.requester_group_may_approve {
            parts.push("none from the requester's groups".to_owned());
        }
        parts.push(format!("expiry {} h", pol.expiry_hours));
        parts.join("; ")
    });
    view! {
        <section aria-labelledby="approval-h" class="approval">
            <h2 id="approval-h">{format!("Approval into {environment}")}</h2>
            <dl class="facts">
                <dt>"Promotion"</dt><dd>{format!("#{}, requested by {}", p.id, p.requested_by)}</dd>
                <dt>"Policy in force"</dt>
                <dd class="policy">{policy.unwrap_or_else(|| "from before approval policies (the approval count alone)".into())}</dd>
            </dl>
            <div class="table-wrap">
                <table class="approvers">
                    <ColumnHeads names=&["Approver", "Identity provider", "Groups then", "When"]/>
                    <tbody>
                        {p.approvers.into_iter().map(|a| view! { <ApproverRow a/> }).collect_view()}
                    </tbody>
                </table>
            </div>
            <ul class="requirements">
                {p.requirements.into_iter().map(|r| view! {
                    <li>{format!("{} {} — {}", if r.met { "✓" } else { "○" }, r.requirement, r.status)}</li>
                }).collect_view()}
            </ul>
        </section>
    }
    .into_any()
}

#[component]
fn ApproverRow(a: PinApprover) -> impl IntoView {
    let idp = match a.sso {
        Some(s) => {
            let who = match (s.name, s.email) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (Some(n), None) => n,
                (None, Some(e)) => e,
                (None, None) => String::new(),
            };
            format!("{who} (subject {} at {})", s.subject, s.issuer)
                .trim()
                .to_owned()
        }
        None => "local user".to_owned(),
    };
    view! {
        <tr>
            <td>{a.username}</td>
            <td class="sso">{idp}</td>
            <td>{if a.groups.is_empty() { "none".to_owned() } else { a.groups.join(", ") }}</td>
            <td class="nowrap">{utc(a.at)}</td>
        </tr>
    }
}
