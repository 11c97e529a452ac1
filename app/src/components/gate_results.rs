//! The analysis that let a version take a cluster's traffic, as serving at
//! T and the request lookup show it: a one-line summary that opens onto the
//! measurements.

use leptos::prelude::*;
use switchyard_domain::analysis::Verdict;
use switchyard_domain::types::GateResults;

use crate::components::cluster_card::{operation_state_words, Measurements};
use crate::components::measurement_chart::MeasurementCharts;

/// "Analysis of operation #7 (blue-green switch to chat:v2, succeeded now):
/// 3 measurement(s) by then — 3 success, 0 failure, 0 inconclusive".
pub fn summary(g: &GateResults) -> String {
    let count = |v: Verdict| g.measurements.iter().filter(|m| m.verdict == v).count();
    format!(
        "Analysis of operation #{} ({} to {}, {} now): {} measurement(s) by then — {} success, {} failure, {} inconclusive",
        g.operation_id,
        g.kind.words(),
        g.full_id,
        operation_state_words(g.state),
        g.measurements.len(),
        count(Verdict::Success),
        count(Verdict::Failure),
        count(Verdict::Inconclusive),
    )
}

/// The summary, opening onto every measurement (template, query as sent,
/// value, verdict, time, note). Plain `<details>`: no JavaScript needed.
#[component]
pub fn GateResultsDetails(gates: GateResults) -> impl IntoView {
    let summary = summary(&gates);
    view! {
        <details class="gate-results" data-operation=gates.operation_id.to_string()>
            <summary>{summary}</summary>
            <div class="measure-charts">
                <MeasurementCharts templates=gates.analysis measurements=gates.measurements.clone()/>
            </div>
            <Measurements measurements=gates.measurements/>
        </details>
    }
}
