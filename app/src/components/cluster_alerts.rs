//! The overview's cluster notices: operations running now and clusters
//! serving something other than their environment's pin (drift), as
//! recorded and as the drift watcher last observed it.

use leptos::prelude::*;
use switchyard_domain::clusters::Cluster;
use switchyard_domain::drift;
use switchyard_domain::ModelId;

use crate::data::ClusterView;
use crate::error::AppError;
use crate::format::utc;

/// What the drift watcher last saw of a cluster, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedWords {
    /// Observed drift (recorded in the ledger since `since`): one line per finding.
    Drift { findings: Vec<String>, when: String },
    /// The driver could not say what runs; an outage is not drift.
    Unreadable(String),
    /// Runs what is recorded and pinned.
    Clean(String),
}

/// The watcher's last look at `cluster` in words, `None` before its first look.
pub fn observed_words(cluster: &Cluster) -> Option<ObservedWords> {
    let o = cluster.observed.as_ref()?;
    let at = utc(o.at);
    if let Some(why) = &o.unreadable {
        let mut text = format!("Could not read what runs: {why} (at {at})");
        if !o.findings.is_empty() {
            text.push_str("; the drift observed before still stands");
        }
        text.push('.');
        return Some(ObservedWords::Unreadable(text));
    }
    if o.findings.is_empty() {
        return Some(ObservedWords::Clean(format!(
            "Observed at {at}: runs what Switchyard recorded and {} pins.",
            cluster.environment
        )));
    }
    let since = o.since.map_or_else(String::new, |s| format!(", drift since {}", utc(s)));
    Some(ObservedWords::Drift {
        findings: o
            .findings
            .iter()
            .map(|f| f.words(&cluster.environment))
            .collect(),
        when: format!("observed at {at}{since}"),
    })
}

/// Observed drift of one cluster for the overview, one line per finding
/// (still listed while the driver cannot be read: an outage clears nothing).
fn observed_drift_lines(cluster: &Cluster) -> Vec<String> {
    let Some(o) = cluster.observed.as_ref() else {
        return Vec::new();
    };
    let since = o.since.map_or_else(String::new, |s| format!(", since {}", utc(s)));
    o.findings
        .iter()
        .map(|f| {
            format!(
                "{}: {} (observed{since})",
                cluster.name,
                f.words(&cluster.environment)
            )
        })
        .collect()
}

/// The observed findings' serving versions (for the pin matrix's cells).
fn observed_cells(c: &ClusterView) -> Vec<DriftCell> {
    let Some(o) = c.cluster.observed.as_ref() else {
        return Vec::new();
    };
    o.findings
        .iter()
        .filter_map(|f| match f {
            drift::Finding::NotPinned { serving, .. } => Some(serving),
            drift::Finding::ChangedByHand { running, .. } => running.version(),
            drift::Finding::WeightsChangedByHand { .. } => None,
        })
        .filter(|v| !c.drift.iter().any(|d| &d.serving == *v))
        .map(|v| DriftCell {
            environment: c.cluster.environment.clone(),
            model_id: v.model_id.clone(),
            words: format!("observed drift: cluster {} runs {v}", c.cluster.name),
        })
        .collect()
}

/// Drift of one environment × model cell of the pin matrix, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCell {
    pub environment: String,
    pub model_id: ModelId,
    pub words: String,
}

/// Every drift, per environment and model.
pub fn drift_cells(clusters: &[ClusterView]) -> Vec<DriftCell> {
    clusters
        .iter()
        .flat_map(|c| {
            c.drift
                .iter()
                .map(|d| DriftCell {
                    environment: c.cluster.environment.clone(),
                    model_id: d.model_id.clone(),
                    words: format!("drift: cluster {} serves {}", c.cluster.name, d.serving),
                })
                .chain(observed_cells(c))
        })
        .collect()
}

#[component]
pub fn ClusterAlerts(clusters: Resource<Result<Vec<ClusterView>, AppError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading clusters…"</p> }>
            {move || Suspend::new(async move {
                // The overview reads without clusters; their error shows on the clusters page.
                let list = clusters.await.unwrap_or_default();
                let running: Vec<String> = list
                    .iter()
                    .filter_map(|c| c.running().map(|o| {
                        let done = o.steps.iter().filter(|r| r.finished_at.is_some()).count();
                        format!("{}: {} to {} running, step {} of {}", c.cluster.name, o.kind.words(), o.full_id, (done + 1).min(o.steps.len()), o.steps.len())
                    }))
                    .collect();
                let drift: Vec<(String, String)> = list
                    .iter()
                    .flat_map(|c| c.drift.iter().map(move |d| match &d.pinned {
                        Some(p) => format!("{} serves {}, but {} pins {p}", c.cluster.name, d.serving, c.cluster.environment),
                        None => format!("{} serves {}, which {} does not pin", c.cluster.name, d.serving, c.cluster.environment),
                    }).chain(observed_drift_lines(&c.cluster)).map(move |line| (format!("/clusters/{}", c.cluster.name), line)))
                    .collect();
                (!list.is_empty()).then(|| view! {
                    <section class="alerts" aria-label="Clusters">
                        <div class="alert-box">
                            <h2>"Running operations"</h2>
                            {if running.is_empty() {
                                view! { <p class="sub">"None."</p> }.into_any()
                            } else {
                                view! { <ul>{running.into_iter().map(|r| view! { <li><a href="/clusters">{r}</a></li> }).collect_view()}</ul> }.into_any()
                            }}
                        </div>
                        <div class="alert-box">
                            <h2>"Drift"</h2>
                            {if drift.is_empty() {
                                view! { <p class="sub">"Every cluster serves what its environment pins."</p> }.into_any()
                            } else {
                                view! { <ul class="drift">{drift.into_iter().map(|(href, d)| view! { <li><a href=href>{d}</a></li> }).collect_view()}</ul> }.into_any()
                            }}
                        </div>
                    </section>
                })
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::clusters::{ClusterState, DriverKind, SlotName};
    use switchyard_domain::drift::{Finding, Observation, Running};
    use switchyard_domain::{FullId, Timestamp};

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("a full id")
    }

    fn cluster(observed: Option<Observation>) -> Cluster {
        let state = ClusterState::default();
        Cluster {
            name: "eu-1".into(),
            environment: "production".into(),
            driver: DriverKind::Simulated,
            config: serde_json::Value::Null,
            slots: state.slot_views(),
            state,
            rollback_to: None,
            state_event_id: 1,
            state_since: Timestamp::from_micros(0),
            created_at: Timestamp::from_micros(0),
            created_by: "admin".into(),
            running_operation: None,
            analysis: Vec::new(),
            observed,
        }
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("a time")
    }

    fn by_hand() -> Vec<Finding> {
        vec![Finding::ChangedByHand {
            slot: SlotName::Blue,
            weight: 100,
            running: Running::Version { version: id("chat:v9") },
            recorded: Some(id("chat:v2")),
        }]
    }

    #[test]
    fn observed_drift_is_said_with_when_it_was_observed_and_since_when_it_holds() {
        assert_eq!(observed_words(&cluster(None)), None, "never looked");
        let o = Observation {
            at: at("2026-12-08T02:00:00Z"),
            seen: None,
            unreadable: None,
            findings: by_hand(),
            event_id: Some(7),
            since: Some(at("2026-12-08T01:00:00Z")),
        };
        let c = cluster(Some(o.clone()));
        assert_eq!(
            observed_words(&c),
            Some(ObservedWords::Drift {
                findings: vec!["blue (100%) runs chat:v9 but Switchyard recorded chat:v2 there (changed outside Switchyard)".into()],
                when: "observed at 2026-12-08 02:00 UTC, drift since 2026-12-08 01:00 UTC".into(),
            })
        );
        assert_eq!(
            observed_drift_lines(&c),
            ["eu-1: blue (100%) runs chat:v9 but Switchyard recorded chat:v2 there (changed outside Switchyard) (observed, since 2026-12-08 01:00 UTC)"]
        );
        let clean = cluster(Some(Observation { findings: Vec::new(), ..o.clone() }));
        assert_eq!(
            observed_words(&clean),
            Some(ObservedWords::Clean(
                "Observed at 2026-12-08 02:00 UTC: runs what Switchyard recorded and production pins.".into()
            ))
        );
        assert!(observed_drift_lines(&clean).is_empty());
    }

    #[test]
    fn a_driver_that_cannot_answer_is_not_drift_and_says_why() {
        let o = Observation {
            at: at("2026-12-08T02:00:00Z"),
            seen: None,
            unreadable: Some("router: connection refused".into()),
            findings: Vec::new(),
            event_id: None,
            since: None,
        };
        let c = cluster(Some(o.clone()));
        assert_eq!(
            observed_words(&c),
            Some(ObservedWords::Unreadable(
                "Could not read what runs: router: connection refused (at 2026-12-08 02:00 UTC).".into()
            ))
        );
        assert!(observed_drift_lines(&c).is_empty());
        let before = cluster(Some(Observation { findings: by_hand(), ..o }));
        assert_eq!(observed_drift_lines(&before).len(), 1, "an outage clears nothing");
        match observed_words(&before) {
            Some(ObservedWords::Unreadable(t)) => {
                assert!(t.ends_with("; the drift observed before still stands."), "{t}")
            }
            other => panic!("{other:?}"),
        }
    }
}
