//! A small chart of one template's measurements against its thresholds:
//! inline SVG made on the server (no chart library, no JavaScript needed),
//! with the same facts in words beside it. Each measured value is a point,
//! in the order taken; the numbers the success and the failure condition
//! compare with are horizontal lines; an inconclusive measurement is a
//! hollow point, and one without a value (no data, Prometheus unreachable)
//! a cross on the bottom edge.

use leptos::prelude::*;
use switchyard_domain::analysis::{AnalysisTemplate, Condition, Measurement, Verdict};

use crate::format::utc_seconds;

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 132.0;
const LEFT: f64 = 8.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 16.0;

/// Where a chart's marks go, in SVG user units.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub points: Vec<Point>,
    pub lines: Vec<Line>,
    /// The values at the plot's bottom and top edges.
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    /// On the bottom edge when there is no value.
    pub y: f64,
    pub value: Option<f64>,
    pub verdict: Verdict,
    /// What hovering it says: the value, the verdict, the time, the note.
    pub title: String,
}

/// A threshold: a number a condition compares `result` with.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub y: f64,
    pub value: f64,
    /// `Verdict::Success` or `Verdict::Failure`: whose condition it is.
    pub of: Verdict,
}

/// Places `measurements` (one template's, in the order taken) and the
/// thresholds of `template`'s conditions on the chart.
pub fn layout(template: &AnalysisTemplate, measurements: &[&Measurement]) -> Layout {
    let thresholds = |c: &str| {
        Condition::parse(c)
            .map(|c| c.thresholds())
            .unwrap_or_default()
    };
    let (success, failure) = (thresholds(&template.success), thresholds(&template.failure));
    let values: Vec<f64> = measurements
        .iter()
        .filter_map(|m| m.value)
        .filter(|v| v.is_finite())
        .collect();
    let all = values.iter().chain(&success).chain(&failure).copied();
    let (mut low, mut high) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if low > high {
        (low, high) = (0.0, 1.0);
    }
    // A margin, so that no point or line sits on the edge.
    let pad = if high > low {
        (high - low) * 0.1
    } else if low == 0.0 {
        1.0
    } else {
        low.abs() * 0.1
    };
    (low, high) = (low - pad, high + pad);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    // Tenths of a unit are finer than any screen shows, and keep the markup short.
    let tenth = |v: f64| (v * 10.0).round() / 10.0;
    let y = |v: f64| tenth(TOP + (high - v) / (high - low) * plot_h);
    let n = measurements.len().max(1) as f64;
    let points = measurements
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let value = m.value.filter(|v| v.is_finite());
            let shown = value.map_or_else(|| "no value".to_owned(), number);
            Point {
                x: tenth(LEFT + plot_w * (i as f64 + 0.5) / n),
                y: value.map_or(TOP + plot_h, y),
                value,
                verdict: m.verdict,
                title: format!(
                    "#{} {shown}: {} at {}{}",
                    i + 1,
                    m.verdict.as_str(),
                    utc_seconds(m.at),
                    if m.note.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", m.note)
                    }
                ),
            }
        })
        .collect();
    let lines = success
        .iter()
        .map(|v| (*v, Verdict::Success))
        .chain(failure.iter().map(|v| (*v, Verdict::Failure)))
        .map(|(value, of)| Line {
            y: y(value),
            value,
            of,
        })
        .collect();
    Layout {
        points,
        lines,
        low,
        high,
    }
}

/// A number as a chart label: up to four significant digits, no trailing zeros.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        return format!("{v:.2e}");
    }
    let decimals = (3 - magnitude).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The chart's facts in words: its text alternative.
pub fn words(template: &AnalysisTemplate, measurements: &[&Measurement]) -> String {
    let count = |v: Verdict| measurements.iter().filter(|m| m.verdict == v).count();
    let values = measurements
        .iter()
        .map(|m| {
            m.value
                .filter(|v| v.is_finite())
                .map_or_else(|| "no value".to_owned(), number)
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{}: {} measurement(s) in order: {values}. Success when {}, failure when {}. {} success, {} failure, {} inconclusive.",
        template.name,
        measurements.len(),
        template.success,
        template.failure,
        count(Verdict::Success),
        count(Verdict::Failure),
        count(Verdict::Inconclusive),
    )
}

/// One chart per template of `templates` that has measurements among
/// `measurements`.
#[component]
pub fn MeasurementCharts(
    templates: Vec<AnalysisTemplate>,
    measurements: Vec<Measurement>,
) -> impl IntoView {
    templates
        .into_iter()
        .filter_map(|t| {
            let mine: Vec<Measurement> = measurements
                .iter()
                .filter(|m| m.template == t.name)
                .cloned()
                .collect();
            (!mine.is_empty()).then(|| view! { <MeasurementChart template=t measurements=mine/> })
        })
        .collect_view()
}

/// One template's measurements against its thresholds.
#[component]
pub fn MeasurementChart(
    template: AnalysisTemplate,
    measurements: Vec<Measurement>,
) -> impl IntoView {
    let refs: Vec<&Measurement> = measurements.iter().collect();
    let l = layout(&template, &refs);
    let text = words(&template, &refs);
    let plot_bottom = HEIGHT - BOTTOM;
    let lines = l
        .lines
        .iter()
        .map(|line| {
            let (class, who) = match line.of {
                Verdict::Failure => ("threshold failure", "failure"),
                _ => ("threshold success", "success"),
            };
            let label = format!("{who} {}", number(line.value));
            view! {
                <g class=class>
                    <line x1=LEFT y1=line.y x2=WIDTH - RIGHT y2=line.y/>
                    <text x=WIDTH - RIGHT - 3.0 y=line.y - 3.0 text-anchor="end">{label}</text>
                </g>
            }
        })
        .collect_view();
    let points = l
        .points
        .iter()
        .map(|p| {
            let title = p.title.clone();
            let verdict = p.verdict.as_str();
            let (x, y) = (p.x, p.y);
            let mark = match (p.verdict, p.value) {
                (_, None) => view! {
                    <path d=format!("M{} {} l8 -8 m0 8 l-8 -8", x - 4.0, y)/>
                }
                .into_any(),
                (Verdict::Success, _) => view! { <circle cx=x cy=y r="4"/> }.into_any(),
                (Verdict::Failure, _) => {
                    view! { <rect x=x - 4.0 y=y - 4.0 width="8" height="8"/> }.into_any()
                }
                (Verdict::Inconclusive, _) => view! {
                    <path d=format!("M{x} {} l4.5 4.5 l-4.5 4.5 l-4.5 -4.5 z", y - 4.5)/>
                }
                .into_any(),
            };
            view! { <g class="point" data-verdict=verdict><title>{title}</title>{mark}</g> }
        })
        .collect_view();
    let (low, high) = (number(l.low), number(l.high));
    let label = format!("Chart of {}", text);
    view! {
        <figure class="measure-chart" data-template=template.name.clone()>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") width=WIDTH height=HEIGHT role="img" aria-label=label>
                <rect class="plot" x=LEFT y=TOP width=WIDTH - LEFT - RIGHT height=plot_bottom - TOP/>
                <text class="scale" x=LEFT + 2.0 y=TOP + 9.0>{high}</text>
                <text class="scale" x=LEFT + 2.0 y=plot_bottom - 2.0>{low}</text>
                {lines}
                {points}
                <text class="axis" x=LEFT y=HEIGHT - 3.0>"measurements, in the order taken →"</text>
            </svg>
            <figcaption>{text}</figcaption>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::Timestamp;

    fn template() -> AnalysisTemplate {
        AnalysisTemplate {
            name: "errors".into(),
            prometheus_url: "http://prometheus:9090".into(),
            bearer_token_file: None,
            query: "x".into(),
            success: "result < 0.01".into(),
            failure: "result > 0.05".into(),
            interval_ms: 1000,
            count: 3,
            failure_limit: 2,
            inconclusive_limit: 1,
            pre_switch: false,
        }
    }

    fn measured(value: Option<f64>, verdict: Verdict) -> Measurement {
        Measurement {
            template: "errors".into(),
            at: Timestamp::from_micros(1_700_000_000_000_000),
            query: "x".into(),
            value,
            verdict,
            note: String::new(),
        }
    }

    #[test]
    fn points_go_left_to_right_higher_values_higher_and_a_missing_value_on_the_bottom_edge() {
        let m = [
            measured(Some(0.002), Verdict::Success),
            measured(Some(0.2), Verdict::Failure),
            measured(None, Verdict::Inconclusive),
        ];
        let refs: Vec<&Measurement> = m.iter().collect();
        let l = layout(&template(), &refs);
        let p = &l.points;
        assert!(p[0].x < p[1].x && p[1].x < p[2].x);
        assert!(
            p[1].y < p[0].y,
            "0.2 is drawn above 0.002 (SVG y grows downwards)"
        );
        assert_eq!(p[2].y, HEIGHT - BOTTOM);
        assert!(l.low < 0.002 && l.high > 0.2, "{l:?}");
        for p in p {
            assert!(
                (TOP..=HEIGHT - BOTTOM).contains(&p.y) && (LEFT..=WIDTH - RIGHT).contains(&p.x),
                "{p:?}"
            );
        }
    }

    #[test]
    fn each_threshold_is_a_line_between_the_values_it_separates() {
        let m = [
            measured(Some(0.0), Verdict::Success),
            measured(Some(0.1), Verdict::Failure),
        ];
        let refs: Vec<&Measurement> = m.iter().collect();
        let l = layout(&template(), &refs);
        let at = |of: Verdict| l.lines.iter().find(|x| x.of == of).expect("a line");
        let (success, failure) = (at(Verdict::Success), at(Verdict::Failure));
        assert_eq!((success.value, failure.value), (0.01, 0.05));
        assert!(
            l.points[1].y < failure.y && failure.y < success.y && success.y < l.points[0].y,
            "{l:?}"
        );
    }

    #[test]
    fn equal_values_and_no_values_still_make_a_chart_with_room_around_them() {
        let t = AnalysisTemplate {
            success: "result == 5".into(),
            failure: "result != 5".into(),
            ..template()
        };
        let m = [measured(Some(5.0), Verdict::Success)];
        let l = layout(&t, &m.iter().collect::<Vec<_>>());
        assert!(
            l.low < 5.0 && l.high > 5.0 && l.points[0].y > TOP && l.points[0].y < HEIGHT - BOTTOM,
            "{l:?}"
        );
        let m = [measured(None, Verdict::Inconclusive)];
        let l = layout(&t, &m.iter().collect::<Vec<_>>());
        assert!(l.high > l.low, "{l:?}");
    }

    #[test]
    fn numbers_are_short_and_the_words_say_every_value_and_both_conditions() {
        assert_eq!(number(0.01), "0.01");
        assert_eq!(number(0.30000000000000004), "0.3");
        assert_eq!(number(1234.56), "1235");
        assert_eq!(number(0.000012), "1.20e-5");
        assert_eq!(number(-2.0), "-2");
        let m = [
            measured(Some(0.002), Verdict::Success),
            measured(None, Verdict::Inconclusive),
        ];
        let w = words(&template(), &m.iter().collect::<Vec<_>>());
        assert_eq!(
            w,
            "errors: 2 measurement(s) in order: 0.002, no value. Success when result < 0.01, failure when result > 0.05. 1 success, 0 failure, 1 inconclusive."
        );
    }
}
