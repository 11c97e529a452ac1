//! The version timeline: an SVG chart with time on the x axis, a lane of
//! lifecycle markers (registration, staging, promotion, deprecation,
//! retirement) and one lane per environment with a bar for each pinned
//! version, then one lane per cluster that served the model with a bar for
//! what it served when and a marker for each rollback. Every bar and marker
//! is focusable and names who did what and why, in its `<title>` (hover)
//! and in the detail line below (focus).

use leptos::prelude::*;
use switchyard_domain::clusters::ClusterChange;
use switchyard_domain::types::{ModelHistory, PinChange, VersionStageChange};
use switchyard_domain::{ModelId, Stage, Timestamp};

use crate::data::ClusterLane;
use crate::format::{utc, utc_seconds};

const DAY: i64 = 86_400_000_000;
// Whole SVG units: the chart is 1000 wide, so a unit is a pixel or so.
const WIDTH: i32 = 1000;
const LABELS: i32 = 118;
const RIGHT: i32 = 14;
const AXIS: i32 = 30;
const LANE: i32 = 42;
const BAR: i32 = 26;

/// How close (in chart units) two lifecycle markers may be before they are
/// drawn as one group marker with a count.
const GROUP_WIDTH: i32 = 12;
/// Changes a group marker names in its title before "and N more".
const GROUP_NAMED: usize = 5;

/// Lifecycle markers that would overlap, together: at 1 000 versions over
/// two years a year's view has ~20 changes per marker width, and drawing
/// each one would be an unreadable smear (and thousands of SVG nodes).
#[derive(Debug, Clone, PartialEq)]
pub struct MarkerGroup<'a> {
    /// Where the group is drawn: its first change's position.
    pub x: i32,
    /// Oldest first.
    pub changes: Vec<&'a VersionStageChange>,
}

/// The window's stage changes, oldest first, in groups of markers closer
/// than [`GROUP_WIDTH`] to the group's first.
pub fn marker_groups(changes: &[VersionStageChange], window: Window) -> Vec<MarkerGroup<'_>> {
    let mut inside: Vec<&VersionStageChange> = changes
        .iter()
        .filter(|c| window.contains(c.change.at))
        .collect();
    inside.sort_by_key(|c| c.change.at);
    let mut groups: Vec<MarkerGroup> = Vec::new();
    for c in inside {
        let x = window.x(c.change.at);
        match groups.last_mut() {
            Some(g) if x - g.x < GROUP_WIDTH => g.changes.push(c),
            _ => groups.push(MarkerGroup {
                x,
                changes: vec![c],
            }),
        }
    }
    groups
}

/// The instants a chart shows: `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    fn x(&self, t: Timestamp) -> i32 {
        let span = (self.end.micros() - self.start.micros()).max(1) as f64;
        let f = ((t.micros() - self.start.micros()) as f64 / span).clamp(0.0, 1.0);
        LABELS + (f * f64::from(WIDTH - LABELS - RIGHT)).round() as i32
    }

    fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t <= self.end
    }
}

/// One bar: a version pinned in an environment from `start` until `end` (None: still).
#[derive(Debug, Clone, PartialEq)]
pub struct PinSpan {
    pub version: String,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    pub actor: String,
    pub reason: Option<String>,
}

/// An environment's pin changes as consecutive spans, oldest first.
pub fn pin_spans(changes: &[PinChange], environment: &str) -> Vec<PinSpan> {
    let mut mine: Vec<&PinChange> = changes
        .iter()
        .filter(|c| c.environment == environment)
        .collect();
    mine.sort_by_key(|c| (c.at, c.event_id));
    mine.iter()
        .enumerate()
        .map(|(i, c)| PinSpan {
            version: c.version.to_string(),
            start: c.at,
            end: mine.get(i + 1).map(|next| next.at),
            actor: c.actor.clone(),
            reason: c.reason.clone(),
        })
        .collect()
}

/// What a cluster served of `model` from each change on, consecutive equal
/// states merged: `v2`, or `v1 90% · v2 10%` during a rolling update. Spans
/// where it served nothing of the model are left out.
pub fn serving_spans(history: &[ClusterChange], model: &ModelId) -> Vec<PinSpan> {
    let mut spans: Vec<PinSpan> = Vec::new();
    let mut open: Option<PinSpan> = None;
    for change in history {
        let serving: Vec<String> = change
            .slots
            .iter()
            .filter(|s| s.weight > 0)
            .filter_map(|s| {
                s.full_id
                    .as_ref()
                    .filter(|v| &v.model_id == model)
                    .map(|v| (v, s.weight))
            })
            .map(|(v, w)| {
                if w == 100 {
                    v.version.to_string()
                } else {
                    format!("{} {w}%", v.version)
                }
            })
            .collect();
        let label = serving.join(" · ");
        if open.as_ref().is_some_and(|o| o.version == label) {
            continue;
        }
        if let Some(mut o) = open.take() {
            o.end = Some(change.at);
            spans.push(o);
        }
        if !label.is_empty() {
            open = Some(PinSpan {
                version: label,
                start: change.at,
                end: None,
                actor: change.actor.clone(),
                reason: change.reason.clone(),
            });
        }
    }
    spans.extend(open);
    spans
}

/// Tick instants and their labels for a window: at most about eight, on
/// whole hours for a window of two days or less (labelled `14:00`, and the
/// day at midnight), else on whole days.
pub fn ticks(w: Window) -> Vec<(Timestamp, String)> {
    const HOUR: i64 = DAY / 24;
    let span = (w.end.micros() - w.start.micros()).max(1);
    let hourly = span <= 2 * DAY;
    let step = if hourly {
        [1, 2, 3, 6, 12, 24]
            .into_iter()
            .find(|h| span / (h * HOUR) <= 8)
            .unwrap_or(24)
            * HOUR
    } else {
        let span_days = (span / DAY).max(1);
        [1, 2, 7, 14, 30, 61, 91, 182, 365]
            .into_iter()
            .find(|s| span_days / s <= 8)
            .unwrap_or(730)
            * DAY
    };
    let by_day = span <= 400 * DAY;
    let first = (w.start.micros().div_euclid(step) + 1) * step;
    (0..)
        .map(|i| Timestamp::from_micros(first + i * step))
        .take_while(|t| *t <= w.end)
        .map(|t| {
            let label = if hourly && t.micros().rem_euclid(DAY) != 0 {
                crate::format::hour(t)
            } else {
                crate::format::month_or_day(t, by_day)
            };
            (t, label)
        })
        .collect()
}

/// The version name shortened to fit a bar `width` units wide (12px
/// monospace is about 7.3 units a character), or None when not even a few
/// characters fit.
fn fit_label(version: &str, width: i32) -> Option<String> {
    let room = (f64::from(width - 10) / 7.3).floor().max(0.0) as usize;
    let chars = version.chars().count();
    if chars <= room {
        Some(version.to_owned())
    } else if room >= 4 {
        Some(
            version
                .chars()
                .take(room - 1)
                .chain(std::iter::once('…'))
                .collect(),
        )
    } else {
        None
    }
}

/// Labels written above bars too narrow for their version inside (a short
/// production period): for each bar `(x, width, version)` of one lane in
/// order, the text above it, or None when it fits inside or when the label
/// would run into the one before (10px monospace: about 6 units a
/// character; names shortened to 16 characters).
pub fn labels_above(bars: &[(i32, i32, &str)]) -> Vec<Option<String>> {
    let mut free_from = i32::MIN;
    bars.iter()
        .map(|&(x, width, version)| {
            if fit_label(version, width).is_some() || x < free_from {
                return None;
            }
            let text: String = if version.chars().count() > 16 {
                version
                    .chars()
                    .take(15)
                    .chain(std::iter::once('…'))
                    .collect()
            } else {
                version.to_owned()
            };
            free_from = x + text.chars().count() as i32 * 6 + 6;
            Some(text)
        })
        .collect()
}

fn stage_word(from: Option<Stage>, to: Stage) -> &'static str {
    match (from, to) {
        (None, _) => "registered",
        (Some(Stage::Staging), Stage::Development) => "sent back to development",
        (_, Stage::Staging) => "sent to staging",
        (Some(Stage::Deprecated), Stage::Production) => "un-deprecated (promotion)",
        (_, Stage::Production) => "promoted to production",
        (_, Stage::Deprecated) => "deprecated",
        (_, Stage::Retired) => "retired",
        (_, Stage::Development) => "moved to development",
    }
}

/// The marker's shape as an SVG path around (x, y), and its CSS class.
fn marker_shape(from: Option<Stage>, to: Stage, x: i32, y: i32) -> (String, &'static str) {
    let r = 6;
    match (from, to) {
        (None, _) => (
            format!("M{} {y}a4 4 0 1 0 8 0a4 4 0 1 0 -8 0", x - 4),
            "mk-registered",
        ),
        (Some(Stage::Staging), Stage::Development) => (
            format!("M{} {}L{} {}L{x} {}Z", x - r, y - r, x + r, y - r, y + r),
            "mk-back",
        ),
        (_, Stage::Staging) => (
            format!(
                "M{} {y}a{r} {r} 0 1 0 {} 0a{r} {r} 0 1 0 {} 0",
                x - r,
                2 * r,
                -2 * r
            ),
            "mk-staging",
        ),
        (_, Stage::Production) => (
            format!(
                "M{x} {}L{} {}L{} {}Z",
                y - r - 1,
                x + r + 1,
                y + r,
                x - r - 1,
                y + r
            ),
            "mk-promotion",
        ),
        (_, Stage::Deprecated) => (
            format!(
                "M{x} {}L{} {y}L{x} {}L{} {y}Z",
                y - r - 1,
                x + r + 1,
                y + r + 1,
                x - r - 1
            ),
            "mk-deprecated",
        ),
        (_, Stage::Retired) => (
            format!("M{} {}h{}v{}h{}Z", x - r, y - r, 2 * r, 2 * r, -2 * r),
            "mk-retired",
        ),
        (_, Stage::Development) => (
            format!("M{} {y}a4 4 0 1 0 8 0a4 4 0 1 0 -8 0", x - 4),
            "mk-registered",
        ),
    }
}

/// Where each bar of one lane starts and how wide it is (at least 2 units,
/// so a short span stays visible and hoverable). A bar widened past its own
/// end pushes the next bar's start to where it ends, so a sliver (say a
/// span cut by the window's edge) is never drawn under its successor, whose
/// words would then show when the sliver is hovered.
fn lane_extents(spans: &[(usize, PinSpan)], window: Window, now: Timestamp) -> Vec<(i32, i32)> {
    let mut widened_to = i32::MIN;
    spans
        .iter()
        .map(|(_, s)| {
            let x1 = window.x(s.start).max(widened_to);
            let end = window.x(s.end.unwrap_or(now));
            let x2 = end.max(x1 + 2);
            widened_to = if x2 > end { x2 } else { i32::MIN };
            (x1, x2 - x1)
        })
        .collect()
}

/// One span of a lane as a bar: focusable, labelled with what it was, when
/// and who set it (shown below the chart on focus or hover), with the
/// version written inside when it fits. `tone` alternates neighbours' shades.
#[allow(clippy::too_many_arguments)]
fn span_bar(
    class: &'static str,
    tone: usize,
    s: &PinSpan,
    (x1, w): (i32, i32),
    y: i32,
    label: String,
    above: Option<String>,
) -> AnyView {
    let text = fit_label(&s.version, w).map(|t| {
        view! { <text class="bar-text" x=x1 + 6 y=y + BAR / 2 + 4>{t}</text> }
    });
    let above = above.map(|t| view! { <text class="bar-above" x=x1 y=y - 2>{t}</text> });
    let aria = label.clone();
    view! {
        <g class=class tabindex="0" role="img" aria-label=aria data-detail="">
            <title>{label}</title>
            <rect class=format!("bar-fill tone-{}", tone % 2) x=x1 y=y width=w height=BAR rx=3/>
            {text}
            {above}
        </g>
    }
    .into_any()
}

/// `labels_above` for one lane's spans as drawn in `window`.
fn above_for(spans: &[(usize, PinSpan)], extents: &[(i32, i32)]) -> Vec<Option<String>> {
    let bars: Vec<(i32, i32, &str)> = spans
        .iter()
        .zip(extents)
        .map(|((_, s), &(x, w))| (x, w, s.version.as_str()))
        .collect();
    labels_above(&bars)
}

/// The chart. `now` ends the bars still in force; `marker` draws a line at an instant (serving at T).
#[component]
pub fn Timeline(
    history: ModelHistory,
    environments: Vec<String>,
    window: Window,
    now: Timestamp,
    #[prop(optional)] marker: Option<Timestamp>,
    #[prop(optional)] clusters: Vec<ClusterLane>,
) -> impl IntoView {
    let detail = RwSignal::new(None::<String>);
    let height = AXIS + LANE * ((environments.len() + clusters.len()) as i32 + 1) + 6;
    let model = history.model_id.to_string();

    let grid = ticks(window)
        .into_iter()
        .map(|(t, label)| {
            let x = window.x(t);
            view! {
                <g class="tick">
                    <line x1=x x2=x y1=AXIS - 6 y2=height - 6/>
                    <text x=x y=AXIS - 10 text-anchor="middle">{label}</text>
                </g>
            }
        })
        .collect_view();

    let lane_labels = std::iter::once("lifecycle".to_owned())
        .chain(environments.iter().cloned())
        .chain(clusters.iter().map(|c| format!("⇄ {}", c.cluster)))
        .enumerate()
        .map(|(i, name)| {
            let y = AXIS + LANE * i as i32;
            view! {
                <rect class=if i % 2 == 0 { "lane even" } else { "lane" } x=0 y=y width=WIDTH height=LANE/>
                <text class="lane-label" x=8 y=y + LANE / 2 + 4>{name}</text>
            }
        })
        .collect_view();

    // One handler for the whole chart: the detail line says what the
    // element under the pointer (or with the focus) says of itself, read
    // from its own `aria-label`. Per-element handlers would keep the
    // words of the bar drawn there before a zoom redrew the chart.
    let show_detail = move |target: Option<leptos::web_sys::EventTarget>| {
        use leptos::wasm_bindgen::JsCast;
        let label = target
            .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
            .and_then(|el| el.closest("[data-detail]").ok().flatten())
            .and_then(|el| el.get_attribute("aria-label"));
        if let Some(label) = label {
            detail.set(Some(label));
        }
    };

    let bars = environments
        .iter()
        .enumerate()
        .flat_map(|(lane, env)| {
            let y = AXIS + LANE * (lane as i32 + 1) + (LANE - BAR) / 2;
            let model = model.clone();
            let spans: Vec<(usize, PinSpan)> = pin_spans(&history.pin_changes, env)
                .into_iter()
                .enumerate()
                .filter(|(_, s)| s.start <= window.end && s.end.is_none_or(|e| e >= window.start))
                .collect();
            let extents = lane_extents(&spans, window, now);
            let above = above_for(&spans, &extents);
            spans
                .into_iter()
                .zip(extents.into_iter().zip(above))
                .map(move |((i, s), (extent, above))| {
                    let label = format!(
                        "{env}: {model}:{} pinned from {} until {}, by {}{}",
                        s.version,
                        utc(s.start),
                        s.end.map_or_else(|| "now".to_owned(), utc),
                        s.actor,
                        s.reason
                            .as_deref()
                            .map(|r| format!(" — {r}"))
                            .unwrap_or_default()
                    );
                    span_bar("bar", i, &s, extent, y, label, above)
                })
                .collect::<Vec<_>>()
        })
        .collect_view();

    let model_id = history.model_id.clone();
    let cluster_bars = clusters
        .iter()
        .enumerate()
        .flat_map(|(lane, c)| {
            let top = AXIS + LANE * ((environments.len() + lane) as i32 + 1);
            let y = top + (LANE - BAR) / 2;
            let spans: Vec<(usize, PinSpan)> = serving_spans(&c.history, &model_id)
                .into_iter()
                .enumerate()
                .filter(|(_, s)| s.start <= window.end && s.end.is_none_or(|e| e >= window.start))
                .collect();
            let extents = lane_extents(&spans, window, now);
            let above = above_for(&spans, &extents);
            let bars = spans
                .into_iter()
                .zip(extents.into_iter().zip(above))
                .map(|((i, s), (extent, above))| {
                    let label = format!(
                        "cluster {} ({}): served {} from {} until {}, set by {}{}",
                        c.cluster,
                        c.environment,
                        s.version,
                        utc_seconds(s.start),
                        s.end.map_or_else(|| "now".to_owned(), utc_seconds),
                        s.actor,
                        s.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default()
                    );
                    span_bar("cluster-bar", i, &s, extent, y, label, above)
                })
                .collect::<Vec<_>>();
            let rollbacks = c
                .rollbacks
                .iter()
                .filter(|r| window.contains(r.at))
                .map(|r| {
                    let x = window.x(r.at);
                    let label = format!(
                        "cluster {}: rolled back to {} at {}, by {} ({}){}",
                        c.cluster,
                        r.to,
                        utc_seconds(r.at),
                        r.actor,
                        r.trigger,
                        r.reason.as_deref().map(|why| format!(" — {why}")).unwrap_or_default()
                    );
                    let aria = label.clone();
                    let d = format!("M{} {}L{} {}L{} {}Z", x + 6, top + 4, x - 6, top + 10, x + 6, top + 16);
                    view! {
                        <g class="marker mk-rollback" tabindex="0" role="img" aria-label=aria data-detail="">
                            <title>{label}</title>
                            <path d=d/>
                        </g>
                    }
                    .into_any()
                })
                .collect::<Vec<_>>();
            bars.into_iter().chain(rollbacks)
        })
        .collect_view();

    let change_words = |c: &VersionStageChange| {
        format!(
            "{model}:{} {} at {} by {}{}",
            c.version,
            stage_word(c.change.from, c.change.to),
            utc(c.change.at),
            c.change.actor,
            c.change
                .reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        )
    };
    let markers = marker_groups(&history.stage_changes, window)
        .into_iter()
        .map(|group| {
            let y = AXIS + LANE / 2;
            if let [c] = group.changes.as_slice() {
                let x = window.x(c.change.at);
                let (d, class) = marker_shape(c.change.from, c.change.to, x, y);
                let label = change_words(c);
                let aria = label.clone();
                return view! {
                    <g class=format!("marker {class}") tabindex="0" role="img" aria-label=aria data-detail="">
                        <title>{label}</title>
                        <path d=d/>
                    </g>
                }
                .into_any();
            }
            // Changes closer together than a marker is wide: one marker with
            // their count, naming the first few (zoom in to see each).
            let x = group.x;
            let count = group.changes.len();
            let mut label = format!(
                "{count} changes from {} to {}: ",
                utc(group.changes[0].change.at),
                utc(group.changes[count - 1].change.at)
            );
            let named: Vec<String> = group.changes.iter().take(GROUP_NAMED).map(|c| change_words(c)).collect();
            label.push_str(&named.join("; "));
            if count > GROUP_NAMED {
                label.push_str(&format!("; and {} more — zoom in to see each", count - GROUP_NAMED));
            }
            let aria = label.clone();
            view! {
                <g class="marker mk-group" tabindex="0" role="img" aria-label=aria data-detail="" data-count=count>
                    <title>{label}</title>
                    <rect x=x - 9 y=y - 8 width=18 height=16 rx=4/>
                    <text x=x y=y + 4 text-anchor="middle">{if count > 99 { "99+".to_owned() } else { count.to_string() }}</text>
                </g>
            }
            .into_any()
        })
        .collect_view();

    let marker_line = marker.filter(|t| window.contains(*t)).map(|t| {
        let x = window.x(t);
        view! {
            <g class="at-marker">
                <line x1=x x2=x y1=AXIS - 4 y2=height - 4/>
                <text x=x + 4 y=height - 8>{format!("T = {}", utc(t))}</text>
            </g>
        }
    });

    let summary = format!(
        "Version timeline of {model} from {} to {}: {} pin changes and {} stage changes in this range.",
        utc(window.start),
        utc(window.end),
        history.pin_changes.iter().filter(|p| window.contains(p.at)).count(),
        history.stage_changes.iter().filter(|c| window.contains(c.change.at)).count(),
    );

    view! {
        <figure class="timeline">
            <div class="timeline-scroll">
                <svg
                    viewBox=format!("0 0 {WIDTH} {height}")
                    role="group"
                    aria-label=summary.clone()
                    on:mouseover=move |ev| show_detail(ev.target())
                    on:focusin=move |ev| show_detail(ev.target())
                    on:mouseleave=move |_| detail.set(None)
                >
                    {lane_labels}
                    {grid}
                    {bars}
                    {cluster_bars}
                    {markers}
                    {marker_line}
                </svg>
            </div>
            <p class="timeline-detail" aria-live="polite">
                {move || detail.get().unwrap_or_else(|| "Hover over or tab to a bar or marker to see who changed what, and why.".to_owned())}
            </p>
            <figcaption>
                <span class="visually-hidden">{summary}</span>
                <span class="legend">
                    <Legend class="mk-registered" d="M2 8a4 4 0 1 0 8 0a4 4 0 1 0 -8 0" word="registered"/>
                    <Legend class="mk-staging" d="M0 8a6 6 0 1 0 12 0a6 6 0 1 0 -12 0" word="to staging"/>
                    <Legend class="mk-back" d="M0 2L12 2L6 14Z" word="sent back"/>
                    <Legend class="mk-promotion" d="M6 1L13 14L-1 14Z" word="promoted"/>
                    <Legend class="mk-deprecated" d="M6 1L13 8L6 15L-1 8Z" word="deprecated"/>
                    <Legend class="mk-retired" d="M0 2h12v12h-12Z" word="retired"/>
                    <Legend class="mk-rollback" d="M12 2L0 8L12 14Z" word="rollback"/>
                    <span class="legend-item">
                        <svg class="marker mk-group" viewBox="0 0 20 16" width="20" height="16" aria-hidden="true">
                            <rect x=1 y=1 width=18 height=14 rx=4/>
                            <text x=10 y=12 text-anchor="middle">"3"</text>
                        </svg>
                        "changes too close to draw apart (hover or zoom in)"
                    </span>
                </span>
            </figcaption>
        </figure>
    }
}

#[component]
fn Legend(class: &'static str, d: &'static str, word: &'static str) -> impl IntoView {
    view! {
        <span class="legend-item">
            <svg class=format!("marker {class}") viewBox="-2 0 16 16" width="16" height="16" aria-hidden="true">
                <path d=d/>
            </svg>
            {word}
        </span>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::VersionName;

    #[test]
    fn a_sliver_cut_by_the_window_is_not_drawn_under_its_successor() {
        let hour = DAY / 24;
        let w = Window {
            start: Timestamp::from_micros(0),
            end: Timestamp::from_micros(90 * DAY),
        };
        let span = |v: &str, start: i64, end: Option<i64>| {
            let s = PinSpan {
                version: v.into(),
                start: Timestamp::from_micros(start),
                end: end.map(Timestamp::from_micros),
                actor: "alice".into(),
                reason: None,
            };
            (0usize, s)
        };
        let spans = [
            span("v1", -10 * DAY, Some(2 * hour)),
            span("v2", 2 * hour, Some(30 * DAY)),
            span("v3", 30 * DAY, None),
        ];
        let ext = lane_extents(&spans, w, Timestamp::from_micros(90 * DAY));
        // Two hours of 90 days is under a unit: widened to 2, and v2 starts after it.
        assert_eq!(ext[0], (w.x(Timestamp::from_micros(0)), 2));
        assert_eq!(ext[1].0, ext[0].0 + 2);
        assert_eq!(ext[1].0 + ext[1].1, w.x(Timestamp::from_micros(30 * DAY)));
        // v2 was not widened: v3 starts where its own span starts.
        assert_eq!(ext[2].0, w.x(Timestamp::from_micros(30 * DAY)));
    }

    fn change(env: &str, v: &str, day: i64, id: i64) -> PinChange {
        PinChange {
            environment: env.into(),
            version: VersionName::parse(v).expect("valid"),
            at: Timestamp::from_micros(day * DAY),
            actor: "bob".into(),
            reason: None,
            event_id: id,
        }
    }

    #[test]
    fn each_pin_lasts_until_the_next_change_in_its_own_environment() {
        let changes = [
            change("production", "v1", 1, 1),
            change("staging", "v2", 2, 2),
            change("production", "v2", 5, 3),
        ];
        let spans = pin_spans(&changes, "production");
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].version.as_str(), spans[0].end),
            ("v1", Some(Timestamp::from_micros(5 * DAY)))
        );
        assert_eq!((spans[1].version.as_str(), spans[1].end), ("v2", None));
    }

    fn state(at: i64, slots: &[(&str, u8)]) -> ClusterChange {
        use switchyard_domain::clusters::{SlotName, SlotView};
        ClusterChange {
            at: Timestamp::from_micros(at),
            slots: slots
                .iter()
                .zip(SlotName::ALL)
                .map(|((v, w), slot)| SlotView {
                    slot,
                    full_id: switchyard_domain::FullId::parse(v).ok(),
                    weight: *w,
                })
                .collect(),
            event_id: at,
            actor: "dave".into(),
            reason: None,
        }
    }

    #[test]
    fn a_cluster_lane_shows_what_served_when_with_splits_and_gaps() {
        let model = ModelId::parse("chat").expect("valid");
        let history = [
            state(1, &[("", 100), ("", 0)]),
            state(2, &[("chat:v1", 100), ("", 0)]),
            state(3, &[("chat:v1", 100), ("chat:v2", 0)]),
            state(4, &[("chat:v1", 90), ("chat:v2", 10)]),
            state(5, &[("chat:v1", 0), ("chat:v2", 100)]),
            state(6, &[("embed:v1", 100), ("chat:v2", 0)]),
        ];
        let spans = serving_spans(&history, &model);
        let got: Vec<(&str, i64, Option<i64>)> = spans
            .iter()
            .map(|s| {
                (
                    s.version.as_str(),
                    s.start.micros(),
                    s.end.map(|e| e.micros()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("v1", 2, Some(4)),
                ("v1 90% · v2 10%", 4, Some(5)),
                ("v2", 5, Some(6))
            ],
            "loading green without traffic changes nothing; serving another model is a gap"
        );
    }

    #[test]
    fn a_thirty_day_window_has_at_most_eight_ticks_inside_it() {
        let w = Window {
            start: Timestamp::from_micros(100 * DAY + 5),
            end: Timestamp::from_micros(130 * DAY),
        };
        let t = ticks(w);
        assert!(!t.is_empty() && t.len() <= 8, "{t:?}");
        assert!(t.iter().all(|(at, _)| w.contains(*at)));
    }

    #[test]
    fn a_window_of_hours_has_hour_marks_and_names_the_day_at_midnight() {
        const HOUR: i64 = DAY / 24;
        let w = Window {
            start: Timestamp::from_micros(10 * DAY + 18 * HOUR),
            end: Timestamp::from_micros(11 * DAY + 6 * HOUR),
        };
        let labels: Vec<String> = ticks(w).into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            labels,
            ["20:00", "22:00", "Jan 12", "02:00", "04:00", "06:00"]
        );
    }

    #[test]
    fn a_bar_too_narrow_for_its_name_is_labelled_above_unless_it_would_run_into_the_last() {
        let labels = labels_above(&[
            (100, 200, "v1.0.0"),
            (300, 8, "v1.1.0-hotfix"),
            (310, 8, "v1.2.0"),
            (500, 8, "20261129-shap-explanations"),
        ]);
        assert_eq!(
            labels,
            [
                None,
                Some("v1.1.0-hotfix".to_owned()),
                None,
                Some("20261129-shap-e…".to_owned())
            ]
        );
    }

    #[test]
    fn version_names_are_shortened_to_fit_their_bar() {
        assert_eq!(fit_label("v1.0.0", 100).as_deref(), Some("v1.0.0"));
        assert_eq!(
            fit_label("20261112-awq-int4", 60).as_deref(),
            Some("20261…")
        );
        assert_eq!(fit_label("v1.0.0", 20), None);
    }

    #[test]
    fn instants_outside_the_window_are_drawn_at_its_edges() {
        let w = Window {
            start: Timestamp::from_micros(10 * DAY),
            end: Timestamp::from_micros(20 * DAY),
        };
        assert_eq!(w.x(Timestamp::from_micros(0)), LABELS);
        assert_eq!(w.x(Timestamp::from_micros(30 * DAY)), WIDTH - RIGHT);
    }

    #[test]
    fn markers_closer_than_one_marker_are_drawn_as_one_group_and_far_ones_alone() {
        use switchyard_domain::types::StageChange;
        let change = |day: i64, v: &str| VersionStageChange {
            version: switchyard_domain::VersionName::parse(v).expect("valid"),
            change: StageChange {
                at: Timestamp::from_micros(day * DAY),
                from: None,
                to: Stage::Development,
                actor: "ci".into(),
                reason: None,
                event_id: day,
            },
        };
        let window = Window {
            start: Timestamp::from_micros(0),
            end: Timestamp::from_micros(730 * DAY),
        };
        // 1 000 registrations over two years, one every 17.5 hours.
        let many: Vec<VersionStageChange> = (0..1000)
            .map(|i| change(i * 730 / 1000, &format!("v{i}")))
            .collect();
        let groups = marker_groups(&many, window);
        assert!(
            groups.len() <= ((WIDTH - LABELS - RIGHT) / GROUP_WIDTH + 1) as usize,
            "{}",
            groups.len()
        );
        assert_eq!(
            groups.iter().map(|g| g.changes.len()).sum::<usize>(),
            1000,
            "every change is in a group"
        );
        let two_far = vec![change(10, "a"), change(700, "b")];
        let groups = marker_groups(&two_far, window);
        assert_eq!(
            groups.iter().map(|g| g.changes.len()).collect::<Vec<_>>(),
            vec![1, 1]
        );
        // Outside the window: not drawn.
        let late = vec![change(800, "c")];
        assert!(marker_groups(&late, window).is_empty());
    }
}
