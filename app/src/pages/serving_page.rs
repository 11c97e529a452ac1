use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::get_serving_at::get_serving_at;
use crate::components::gate_results::GateResultsDetails;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{encode, ServingAnswer};
use crate::format::utc_seconds as utc;

use switchyard_domain::types::{ClusterAt, GateResults};
use switchyard_domain::Timestamp;

/// Time zones offered besides the browser's own (any IANA name is accepted in the URL).
const ZONES: [&str; 16] = [
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
];

/// "What was pinned where at instant T?" with a permalink.
#[component]
pub fn ServingPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &'static str| move || query.read().get(k).filter(|v| !v.is_empty());
    let answer = Resource::new(
        move || (q("at")(), q("local")(), q("tz")(), q("env")(), q("model")()),
        |(at, local, tz, env, model)| get_serving_at(at, local, tz, env, model),
    );
    view! {
        <Title text="Serving at T · Switchyard"/>
        <div class="page-head">
            <h1>"Serving at T"</h1>
            <p class="lede">"Which version each environment pinned at an instant, who set it, why, and until when."</p>
        </div>
        <Transition fallback=|| view! { <Loading what="what was pinned then"/> }>
            {move || Suspend::new(async move {
                match answer.await {
                    Ok(a) => view! { <ServingBody a tz_given=q("tz")().is_some() env=q("env")() model=q("model")()/> }.into_any(),
                    Err(error) => view! {
                        <ErrorNote doing="answer for that instant" error/>
                        <p><a href="/serving">"Start again from now"</a></p>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ServingBody(
    a: ServingAnswer,
    tz_given: bool,
    env: Option<String>,
    model: Option<String>,
) -> impl IntoView {
    let ServingAnswer {
        serving,
        local,
        tz,
        environments,
        models,
    } = a;
    let at = serving.at;
    let gates = serving.gates.clone();
    let tz_sel = RwSignal::new(tz.clone());
    let local_val = RwSignal::new(local);
    let zones = RwSignal::new({
        let mut z: Vec<String> = ZONES.iter().map(|s| s.to_string()).collect();
        if !z.contains(&tz) {
            z.insert(1, tz.clone());
        }
        z
    });
    // In the browser, a page opened without a zone shows the same instant in the browser's zone.
    Effect::new(move |_| {
        if !tz_given {
            if let Some((zone, value)) = browser_zone_local(at.micros()) {
                if !zones.get_untracked().contains(&zone) {
                    zones.update(|z| z.insert(1, zone.clone()));
                }
                tz_sel.set(zone);
                local_val.set(value);
            }
        }
    });
    let mut permalink = format!("/serving?at={}", encode(&at.to_rfc3339()));
    for (k, v) in [("env", &env), ("model", &model)] {
        if let Some(v) = v {
            permalink.push_str(&format!("&{k}={}", encode(v)));
        }
    }
    let utc_text = utc(at);
    let rows = serving.pins.clone();
    let empty = rows.is_empty();
    let clusters = serving.clusters.clone();
    let notice = serving.notice.clone();
    view! {
        <form class="filters" method="get" action="/serving" aria-label="Choose an instant">
            <label>"Date and time"
                <input type="text" name="local" required=true inputmode="numeric" autocomplete="off"
                    placeholder="YYYY-MM-DD HH:MM:SS" pattern="\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}(:\\d{2})?"
                    title="YYYY-MM-DD HH:MM:SS, 24-hour, in the time zone chosen"
                    value=local_val.get_untracked()
                    prop:value=move || local_val.get()
                    on:input=move |ev| local_val.set(event_target_value(&ev))/>
            </label>
            <label>"Time zone"
                <select name="tz" prop:value=move || tz_sel.get() on:change=move |ev| tz_sel.set(event_target_value(&ev))>
                    <For each=move || zones.get() key=|z| z.clone() let:z>
                        <option value=z.clone() selected=move || tz_sel.get() == z>{z.clone()}</option>
                    </For>
                </select>
            </label>
            <label>"Environment"
                <select name="env">
                    <option value="">"all environments"</option>
                    {environments.into_iter().map(|e| {
                        let selected = env.as_deref() == Some(e.as_str());
                        view! { <option value=e.clone() selected=selected>{e.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Model"
                <select name="model">
                    <option value="">"all models"</option>
                    {models.into_iter().map(|m| {
                        let selected = model.as_deref() == Some(m.as_str());
                        view! { <option value=m.to_string() selected=selected>{m.to_string()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <div class="form-actions">
                <button class="button" type="submit">"Show"</button>
                <a class="button secondary" href="/serving">"Now"</a>
            </div>
        </form>
        <section aria-labelledby="answer-h" class="answer">
            <h2 id="answer-h">
                {format!("Pinned at {utc_text} ")}
                {(tz != "UTC").then(|| view! {
                    <span class="sub inline">{format!("({} {tz})", local_val.get_untracked().replace('T', " "))}</span>
                })}
            </h2>
            <p>
                <a href=permalink.clone() class="permalink">"Permalink to this instant"</a>
                " "
                <code class="wrap">{permalink}</code>
            </p>
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            {if empty {
                view! { <p class="empty">"Nothing was pinned at that instant (with these filters)."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="serving">
                            <caption class="visually-hidden">"Pins in force at the instant"</caption>
                            <ColumnHeads names=&["Environment", "Model", "Pinned version", "Since", "Set by (approved by)", "Next change"]/>
                            <tbody>
                                {rows.into_iter().map(|p| view! {
                                    <tr>
                                        <td>{p.environment.clone()}</td>
                                        <td><a href=format!("/models/{}?range=all&at={}", p.model_id, encode(&at.to_rfc3339()))>{p.model_id.to_string()}</a></td>
                                        <td><a class="version" href=format!("/versions/{}", p.full_id)>{p.full_id.to_string()}</a></td>
                                        <td>{utc(p.since)}</td>
                                        <td>
                                            {p.actor.clone()}
                                            <span class="sub">{format!("event #{}", p.event_id)}{p.reason.clone().map(|r| format!(" — {r}"))}</span>
                                            {p.promotion.clone().map(|pr| view! {
                                                <span class="sub approved-by">{format!(
                                                    "promotion {} requested by {}, approved by {}",
                                                    pr.id, pr.requested_by, pr.approved_by.join(", ")
                                                )}</span>
                                            })}
                                        </td>
                                        <td>{p.next_change.map_or_else(|| "still pinned".to_owned(), utc)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
        <ClustersAt clusters at gates/>
    }
}

/// What each cluster's slots served at the instant, with traffic weights and
/// drift from the environment's pin spelled out (and the drift the watcher
/// had observed by then, if it stood).
#[component]
fn ClustersAt(clusters: Vec<ClusterAt>, at: Timestamp, gates: Vec<GateResults>) -> impl IntoView {
    if clusters.is_empty() {
        return view! {
            <section aria-labelledby="clusters-at-h">
                <h2 id="clusters-at-h">"Clusters at that instant"</h2>
                <p class="empty">"No cluster existed then (with these filters)."</p>
            </section>
        }
        .into_any();
    }
    let rows = clusters
        .into_iter()
        .map(|c| {
            let serving = c
                .slots
                .iter()
                .filter_map(|s| s.full_id.as_ref().map(|id| (s.slot, id.to_string(), s.weight)))
                .map(|(slot, id, weight)| {
                    let traffic = if weight == 0 { "idle".to_owned() } else { format!("{weight}% of traffic") };
                    view! {
                        <li>
                            <span class="slot-name">{slot.to_string()}</span>" "
                            <a class="version" href=format!("/versions/{id}")>{id.clone()}</a>
                            <span class="sub">{format!(" {traffic}")}</span>
                        </li>
                    }
                })
                .collect_view();
            let drift = if c.drift.is_empty() {
                view! { <span>"matches the pin"</span> }.into_any()
            } else {
                let words = c
                    .drift
                    .iter()
                    .map(|d| match &d.pinned {
                        Some(p) => format!("serves {} while {} pins {p}", d.serving, c.environment),
                        None => format!("serves {} which {} does not pin", d.serving, c.environment),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                view! { <span class="drift"><strong>"Drift: "</strong>{words}</span> }.into_any()
            };
            // What the drift watcher had seen really run by then (and not seen cleared).
            let observed = c.observed_drift.as_ref().map(|d| {
                let words = d.findings.iter().map(|f| f.words(&c.environment)).collect::<Vec<_>>().join("; ");
                view! {
                    <p class="observed-drift" role="note">
                        <strong>"Observed drift: "</strong>
                        {format!("{words} (recorded at {}, event #{}).", utc(d.since), d.event_id)}
                    </p>
                }
            });
            // A crash between the router command and its record: either side may have answered.
            let transition = c.transition.as_ref().map(|t| {
                let versions = t.versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ");
                let until = t.until.map_or_else(|| "an unknown end".to_owned(), utc);
                view! {
                    <p class="transition" role="note">
                        <strong>"In transition: "</strong>
                        {format!("the router was switching between {versions} from {} to {until}; either may have answered.", utc(t.since))}
                    </p>
                }
            });
            let analysis = gates
                .iter()
                .find(|g| g.cluster == c.cluster)
                .cloned()
                .map(|g| view! { <GateResultsDetails gates=g/> });
            let driver = c.driver.as_str();
            view! {
                <tr>
                    <td>
                        <a href=format!("/clusters/{}", c.cluster)>{c.cluster.clone()}</a>
                        <span class="sub">{format!("{} · {driver}", c.environment)}</span>
                    </td>
                    <td><ul class="plain">{serving}</ul>{transition}</td>
                    <td>{drift}{observed}</td>
                    <td>{utc(c.since)}</td>
                    <td>
                        {c.actor.clone()}
                        <span class="sub">{format!("event #{}", c.event_id)}{c.reason.clone().map(|r| format!(" — {r}"))}</span>
                    </td>
                    <td>{c.next_change.map_or_else(|| "still serving".to_owned(), utc)}</td>
                </tr>
                {analysis.map(|a| view! { <tr class="gate-row"><td colspan="6">{a}</td></tr> })}
            }
        })
        .collect_view();
    view! {
        <section aria-labelledby="clusters-at-h">
            <h2 id="clusters-at-h">{format!("Clusters at {}", utc(at))}</h2>
            <div class="table-wrap">
                <table class="serving">
                    <caption class="visually-hidden">"What each cluster served at the instant"</caption>
                    <ColumnHeads names=&["Cluster", "Serving (slot, version, traffic)", "Against the pin", "Since", "Set by", "Next change"]/>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

/// The browser's IANA time zone and `micros` as a `datetime-local` value in it.
#[cfg(feature = "hydrate")]
fn browser_zone_local(micros: i64) -> Option<(String, String)> {
    use wasm_bindgen::JsValue;
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    let zone = js_sys::Reflect::get(&options, &JsValue::from_str("timeZone"))
        .ok()?
        .as_string()?;
    let d = js_sys::Date::new(&JsValue::from_f64((micros / 1000) as f64));
    let value = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    );
    Some((zone, value))
}

#[cfg(not(feature = "hydrate"))]
fn browser_zone_local(_micros: i64) -> Option<(String, String)> {
    None
}
