use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use switchyard_domain::types::Version;
use switchyard_domain::Timestamp;

use crate::api::get_model_page::get_model_page;
use crate::components::stage_badge::StageBadge;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::components::timeline::{Timeline, Window};
use crate::data::ModelPage as ModelData;
use crate::format::{short_hash, utc};

/// The zoom presets: query value, button text, hours (None: all of history).
const RANGES: [(&str, &str, Option<i64>); 5] = [
    ("24h", "24 hours", Some(24)),
    ("30d", "30 days", Some(30 * 24)),
    ("90d", "90 days", Some(90 * 24)),
    ("1y", "1 year", Some(365 * 24)),
    ("all", "All", None),
];

/// The preset shown when the address names none.
const DEFAULT_RANGE: usize = 2;

/// Reads `YYYY-MM-DD` (the whole day: its first or last instant, as `end_of_day`
/// says) or `YYYY-MM-DD HH:MM[:SS]` (that minute), in UTC.
fn parse_instant(s: &str, end_of_day: bool) -> Option<Timestamp> {
    let s = s.trim();
    if s.len() == 10 {
        let day = Timestamp::parse(&format!("{s}T00:00:00Z")).ok()?;
        return Some(if end_of_day { day.plus_days(1) } else { day });
    }
    let s = s.replacen(' ', "T", 1);
    let with_seconds = if s.len() == 16 { format!("{s}:00") } else { s };
    Timestamp::parse(&format!("{with_seconds}Z")).ok()
}

/// The chart's window from the query: explicit from/to dates win over a
/// preset ("All" spans from the model's `earliest` change to `now`). Also
/// returns a note when a date could not be read. The server reads only the
/// history inside it.
pub fn window_for(
    range: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
    earliest: Option<Timestamp>,
) -> (Window, Option<String>) {
    let earliest = earliest.unwrap_or(now);
    let preset = RANGES
        .iter()
        .find(|(key, ..)| Some(*key) == range)
        .unwrap_or(&RANGES[DEFAULT_RANGE]);
    let mut window = match preset.2 {
        Some(hours) => Window {
            start: now.plus_hours(-hours),
            end: now,
        },
        None => Window {
            start: earliest.plus_hours(-12),
            end: now.plus_hours(12),
        },
    };
    let mut note = None;
    let given = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(f) = given(from) {
        match parse_instant(&f, false) {
            Some(t) => window.start = t,
            None => {
                note = Some(format!(
                    "“{f}” is not a date like 2026-03-03 or 2026-03-03 14:30 (UTC); the range starts as the preset says."
                ))
            }
        }
    }
    if let Some(t) = given(to) {
        match parse_instant(&t, true) {
            Some(d) => window.end = d,
            None => {
                note = Some(format!(
                    "“{t}” is not a date like 2026-03-03 or 2026-03-03 14:30 (UTC); the range ends as the preset says."
                ))
            }
        }
    }
    if window.end <= window.start {
        note = Some("The range ends before it starts; showing 90 days instead.".to_owned());
        window = Window {
            start: now.plus_days(-90),
            end: now,
        };
    }
    (window, note)
}

/// A model: its version timeline and its versions.
#[component]
pub fn ModelPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let model_id = move || params.read().get("model_id").unwrap_or_default();
    // The versions table's page and the timeline's range are in the
    // address, so both work without JavaScript; the server sends only the
    // page of versions and the history inside the range.
    let data = Resource::new(
        move || {
            let q = query.read();
            (
                model_id(),
                q.get("page"),
                q.get("range"),
                q.get("from"),
                q.get("to"),
            )
        },
        |(model, page, range, from, to)| get_model_page(model, page, range, from, to),
    );

    view! {
        <Title text=move || format!("{} · Switchyard", model_id())/>
        <div class="page-head">
            <p class="crumbs"><a href="/">"Overview"</a>" / model"</p>
            <h1 class="mono">{model_id}</h1>
            <p class="lede">
                "Which version each environment pinned and each cluster served, and when each version changed stage. "
                <a href=move || format!("/board?model={}", model_id())>"Open the lifecycle board"</a>
            </p>
        </div>
        <Suspense fallback=|| view! { <Loading what="the model's history"/> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <ModelBody data query/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load this model" error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ModelBody(data: ModelData, query: Memo<leptos_router::params::ParamsMap>) -> impl IntoView {
    let model = data.model_id.to_string();
    let data = StoredValue::new(data);
    let q = move |k: &str| query.read().get(k);
    let chart = move || {
        let at = q("at");
        data.with_value(|d| {
            let (window, note) = (d.window, d.window_note.clone());
            // The chart falls back to a range it can draw, but the address
            // asked for something that does not exist: said so, and a 4xx.
            if note.is_some() {
                crate::components::status::set_page_status(422);
            }
            let marker = at.and_then(|a| Timestamp::parse(&a).ok());
            let timeline = match marker {
                Some(m) => view! {
                    <Timeline history=d.history.clone() environments=d.environments.clone() window now=d.now marker=m clusters=d.clusters.clone()/>
                }
                .into_any(),
                None => view! {
                    <Timeline history=d.history.clone() environments=d.environments.clone() window now=d.now clusters=d.clusters.clone()/>
                }
                .into_any(),
            };
            view! {
                {note.map(|n| view! { <p class="error" role="alert">{n}</p> })}
                {timeline}
            }
        })
    };
    let zoom_link = {
        let model = model.clone();
        move |key: &'static str| format!("/models/{model}?range={key}")
    };
    let active = move |key: &'static str| {
        let range = q("range");
        let custom =
            q("from").is_some_and(|v| !v.is_empty()) || q("to").is_some_and(|v| !v.is_empty());
        let current = range.as_deref().unwrap_or(RANGES[DEFAULT_RANGE].0);
        (!custom && current == key).then_some("page")
    };

    view! {
        <section aria-labelledby="timeline-h">
            <div class="section-head">
                <h2 id="timeline-h">"Version timeline"</h2>
                <nav class="zoom" aria-label="Time range">
                    {RANGES.iter().map(|(key, text, _)| view! {
                        <a class="button secondary" href=zoom_link(key) aria-current=move || active(key)>{*text}</a>
                    }).collect_view()}
                </nav>
                <form class="range-form" method="get" action=format!("/models/{model}")>
                    <label>"From " <input type="text" name="from" size="16" inputmode="numeric" placeholder="YYYY-MM-DD HH:MM"
                        title="A day (YYYY-MM-DD) or a minute (YYYY-MM-DD HH:MM), UTC" value=move || q("from").unwrap_or_default()/></label>
                    <label>"to " <input type="text" name="to" size="16" inputmode="numeric" placeholder="YYYY-MM-DD HH:MM"
                        title="A day (YYYY-MM-DD, up to its end) or a minute (YYYY-MM-DD HH:MM), UTC" value=move || q("to").unwrap_or_default()/></label>
                    <span class="sub">"UTC"</span>
                    <button class="button secondary" type="submit">"Zoom"</button>
                </form>
            </div>
            {chart}
        </section>
        <section aria-labelledby="versions-h">
            <h2 id="versions-h">"Versions"</h2>
            <VersionTable versions=data.with_value(|d| d.versions.clone())/>
            <Pager model=model.clone() info=data.with_value(|d| d.versions_page) query/>
        </section>
    }
}

/// The address of page `page` of the versions table, keeping the timeline's range.
pub fn page_href(model: &str, page: u32, query: &leptos_router::params::ParamsMap) -> String {
    let mut pairs: Vec<String> = ["range", "from", "to", "at"]
        .iter()
        .filter_map(|k| query.get(k).map(|v| format!("{k}={}", encode_query(&v))))
        .collect();
    pairs.push(format!("page={page}"));
    format!("/models/{model}?{}#versions-h", pairs.join("&"))
}

/// Percent-encodes a query value (dates and range names need little, but a
/// hand-typed value may hold anything).
fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// "Versions 51–100 of 1 000", with links to the newer and older pages.
#[component]
fn Pager(
    model: String,
    info: switchyard_domain::paging::PageInfo,
    query: Memo<leptos_router::params::ParamsMap>,
) -> impl IntoView {
    let (first, last) = info.range();
    let summary = if info.total == 0 {
        "No versions yet.".to_owned()
    } else {
        format!(
            "Versions {first}–{last} of {}, newest first (page {} of {})",
            info.total, info.page, info.pages
        )
    };
    let link = move |page: u32, text: &'static str, rel: &'static str| {
        let model = model.clone();
        view! { <a class="button secondary" rel=rel href=move || query.with(|q| page_href(&model, page, q))>{text}</a> }
    };
    view! {
        <nav class="pager" aria-label="Pages of versions">
            <span class="sub" role="status">{summary}</span>
            {(info.page > 1).then(|| link(1, "« Newest", "first"))}
            {(info.page > 1).then(|| link(info.page - 1, "‹ Newer", "prev"))}
            {(info.page < info.pages).then(|| link(info.page + 1, "Older ›", "next"))}
            {(info.page < info.pages).then(|| link(info.pages, "Oldest »", "last"))}
        </nav>
    }
}

#[component]
fn VersionTable(versions: Vec<Version>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Versions of this model, newest first"</caption>
                <ColumnHeads names=&["Version", "Stage", "Config hash", "Created", "By"]/>
                <tbody>
                    {versions.into_iter().map(|v| view! {
                        <tr>
                            <th scope="row"><a class="version" href=format!("/versions/{}", v.full_id)>{v.version.to_string()}</a></th>
                            <td><StageBadge stage=v.stage/><span class="sub">{format!("since {}", utc(v.stage_since))}</span></td>
                            <td><code title=v.config_hash.clone()>{short_hash(&v.config_hash)}</code></td>
                            <td>{utc(v.created_at)}</td>
                            <td>{v.created_by}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn now() -> Timestamp {
        Timestamp::from_micros(1000 * DAY)
    }

    #[test]
    fn all_spans_from_half_a_day_before_the_first_change_to_half_a_day_after_now() {
        let (w, note) = window_for(
            Some("all"),
            None,
            None,
            now(),
            Some(Timestamp::from_micros(300 * DAY)),
        );
        assert_eq!(
            (w.start, w.end, note),
            (
                Timestamp::from_micros(300 * DAY - DAY / 2),
                Timestamp::from_micros(1000 * DAY + DAY / 2),
                None
            )
        );
    }

    #[test]
    fn the_default_range_is_the_last_ninety_days() {
        let (w, note) = window_for(None, None, None, now(), None);
        assert_eq!(
            (w.start, w.end, note),
            (
                Timestamp::from_micros(910 * DAY),
                Timestamp::from_micros(1000 * DAY),
                None
            )
        );
    }

    #[test]
    fn from_and_to_dates_include_the_whole_last_day() {
        let (w, _) = window_for(
            Some("30d"),
            Some("1970-01-02"),
            Some("1970-01-03"),
            now(),
            None,
        );
        assert_eq!(
            (w.start, w.end),
            (Timestamp::from_micros(DAY), Timestamp::from_micros(3 * DAY))
        );
    }

    #[test]
    fn a_range_may_be_a_day_or_hours_given_to_the_minute() {
        const HOUR: i64 = DAY / 24;
        let (w, note) = window_for(Some("24h"), None, None, now(), None);
        assert_eq!(
            (w.start, w.end, note),
            (
                Timestamp::from_micros(999 * DAY),
                Timestamp::from_micros(1000 * DAY),
                None
            )
        );
        let (w, note) = window_for(
            None,
            Some("1970-01-02 06:30"),
            Some("1970-01-02T09:00:00"),
            now(),
            None,
        );
        assert_eq!(
            (w.start, w.end, note),
            (
                Timestamp::from_micros(DAY + 6 * HOUR + HOUR / 2),
                Timestamp::from_micros(DAY + 9 * HOUR),
                None
            )
        );
        let (_, note) = window_for(None, Some("1970-01-02 25:00"), None, now(), None);
        assert!(note.is_some_and(|n| n.contains("“1970-01-02 25:00”")));
    }

    #[test]
    fn page_links_keep_the_timeline_range_and_encode_what_was_typed() {
        let mut q = leptos_router::params::ParamsMap::new();
        q.insert("range", "1y".to_owned());
        q.insert("from", "2026-01-01 &x".to_owned());
        q.insert("page", "3".to_owned());
        assert_eq!(
            page_href("chat", 4, &q),
            "/models/chat?range=1y&from=2026-01-01%20%26x&page=4#versions-h"
        );
    }

    #[test]
    fn an_unreadable_date_is_said_so_and_the_preset_is_kept() {
        let (w, note) = window_for(Some("30d"), Some("yesterday"), None, now(), None);
        assert_eq!(w.start, Timestamp::from_micros(970 * DAY));
        assert!(note.is_some_and(|n| n.contains("yesterday")));
    }
}
