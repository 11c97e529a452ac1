//! Prometheus, the metric provider of analysis gates: its HTTP API's
//! instant query (`/api/v1/query`) for measurements, and its own PromQL
//! parser (`/api/v1/format_query`) to check a template's query before it is
//! saved, so the query language accepted is exactly the server's.
//! Every fault here is a reason, never a value: the gate counts it as
//! inconclusive.

use std::time::Duration;

use serde_json::Value;
use switchyard_domain::analysis::{render_query, AnalysisTemplate, Subject};
use switchyard_domain::ledger::LedgerEvent;
use switchyard_domain::operations::{Operation, OperationKind};
use switchyard_domain::types::{GateResults, RequestLookup, ServingAt};
use switchyard_domain::Timestamp;

use crate::store::StoreResult;

/// How long one Prometheus request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Prometheus {
    http: reqwest::Client,
}

/// Why a template's query cannot be saved.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The query is not valid PromQL (Prometheus's parse error), or its placeholders are wrong.
    #[error("{0}")]
    Invalid(String),
    /// Prometheus could not be asked.
    #[error("{0}")]
    Unreachable(String),
}

impl From<CheckError> for crate::error::ApiError {
    fn from(e: CheckError) -> crate::error::ApiError {
        match e {
            CheckError::Invalid(m) => crate::error::ApiError::invalid(m),
            // A 4xx: the template names a Prometheus this server cannot
            // use; the fix is in the request (or in starting Prometheus).
            CheckError::Unreachable(m) => crate::error::ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "prometheus_unreachable",
                m,
            ),
        }
    }
}

/// Why a template was not saved: its check, or the store.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<SaveError> for crate::error::ApiError {
    fn from(e: SaveError) -> crate::error::ApiError {
        match e {
            SaveError::Check(e) => e.into(),
            SaveError::Store(e) => e.into(),
        }
    }
}

/// Saves `template` as the REST API and the console both do: the admin's
/// reason and the template checked by the domain, then its query by the
/// PromQL parser of the Prometheus it names, then stored
/// (`analysis_template.saved`, with the reason). True when it was created.
pub async fn save_template(
    store: &dyn crate::store::Store,
    template: AnalysisTemplate,
    actor: &str,
    reason: Option<&str>,
    at: switchyard_domain::Timestamp,
) -> Result<bool, SaveError> {
    let reason =
        switchyard_domain::text::required_reason(reason).map_err(crate::store::StoreError::from)?;
    template.check().map_err(crate::store::StoreError::from)?;
    Prometheus::new().check(&template).await?;
    let existed = store.get_analysis_template(&template.name).await?.is_some();
    store
        .save_analysis_template(template, actor, reason, at)
        .await?;
    Ok(!existed)
}

/// Removes a template as the REST API and the console both do: a reason
/// required (recorded in `analysis_template.removed`).
pub async fn remove_template(
    store: &dyn crate::store::Store,
    name: &str,
    actor: &str,
    reason: Option<&str>,
    at: switchyard_domain::Timestamp,
) -> StoreResult<()> {
    let reason = switchyard_domain::text::required_reason(reason)?;
    store
        .remove_analysis_template(name, actor, reason, at)
        .await
}

/// The operation a runner's ledger event concerns.
fn operation_of(e: &LedgerEvent) -> Option<i64> {
    e.details.get("operation_id").and_then(Value::as_i64)
}

/// An analysed operation's forward gates' measurements taken up to `at`,
/// with the templates that judged them; `None` without templates.
fn results_of(op: Operation, cluster: &str, at: Timestamp) -> Option<GateResults> {
    if op.analysis.is_empty() {
        return None;
    }
    let measurements = op
        .steps
        .iter()
        .filter(|r| !r.restore)
        .flat_map(|r| r.measurements.iter())
        .filter(|m| m.at <= at)
        .cloned()
        .collect();
    Some(GateResults {
        cluster: cluster.to_owned(),
        operation_id: op.id,
        kind: op.kind,
        full_id: op.full_id,
        state: op.state,
        measurements,
        analysis: op.analysis,
    })
}

/// `serving` with the gate results behind each of its clusters' states, as
/// REST and the console both show them: the ledger event that set a state
/// names the operation (a step the runner wrote), carried in
/// `ClusterAt.operation_id` by the temporal index, and every such operation
/// is read in one query. None for a state no operation with analysis set (a
/// hand switch, a rollback, an operation without templates).
pub async fn with_gate_results(
    store: &dyn crate::store::Store,
    mut serving: ServingAt,
) -> StoreResult<ServingAt> {
    let at = serving.at;
    // One read of every operation named (the temporal index carries each
    // cluster state's operation id), not one per cluster.
    let mut ids: Vec<i64> = serving
        .clusters
        .iter()
        .filter_map(|c| c.operation_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let operations: std::collections::HashMap<i64, Operation> = store
        .operations_by_id(&ids)
        .await?
        .into_iter()
        .map(|op| (op.id, op))
        .collect();
    serving.gates = serving
        .clusters
        .iter()
        .filter_map(|c| {
            let op = c.operation_id.and_then(|id| operations.get(&id).cloned())?;
            results_of(op, &c.cluster, at)
        })
        .collect();
    Ok(serving)
}

/// `found` with the gate results that let its version into its cluster's
/// traffic: those of the last operation before the record (found in its
/// provenance) that brought that version in. Rollbacks are passed over (they
/// return to what served before and are never gated); when that last
/// operation had no analysis, there is none to show.
pub async fn lookup_with_gate_results(
    store: &dyn crate::store::Store,
    mut found: RequestLookup,
) -> StoreResult<RequestLookup> {
    if !found.cluster_known {
        return Ok(found);
    }
    let mut asked = std::collections::HashSet::new();
    let ids: Vec<i64> = found
        .provenance
        .iter()
        .rev()
        .filter(|e| e.cluster.as_deref() == Some(found.record.cluster.as_str()))
        .filter_map(operation_of)
        .filter(|id| asked.insert(*id))
        .collect();
    for id in ids {
        let Some(op) = store.get_operation(id).await? else {
            continue;
        };
        if op.kind == OperationKind::Rollback || op.full_id != found.record.full_id {
            continue;
        }
        found.gates = results_of(op, &found.record.cluster, found.record.at);
        break;
    }
    Ok(found)
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus::new()
    }
}

impl Prometheus {
    pub fn new() -> Prometheus {
        Prometheus {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }

    async fn get(&self, t: &AnalysisTemplate, path: &str, query: &str) -> Result<Value, String> {
        let base = t.prometheus_url.trim_end_matches('/');
        let mut req = self
            .http
            .post(format!("{base}{path}"))
            .form(&[("query", query)]);
        if let Some(file) = &t.bearer_token_file {
            let token = tokio::fs::read_to_string(file)
                .await
                .map_err(|e| format!("cannot read the bearer token file {file}: {e}"))?;
            req = req.bearer_auth(token.trim());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach Prometheus at {base}: {}", error_chain(&e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("Prometheus at {base} broke off its answer: {e}"))?;
        let json: Value = serde_json::from_slice(&body).map_err(|_| {
            format!(
                "Prometheus at {base} answered {status} with something that is not its JSON API (is the URL a Prometheus?)"
            )
        })?;
        if json["status"] == "success" {
            return Ok(json["data"].clone());
        }
        Err(format!(
            "Prometheus answered {status}: {} {}",
            json["errorType"].as_str().unwrap_or("error"),
            json["error"].as_str().unwrap_or("(no message)")
        ))
    }

    /// Checks a template against its Prometheus: the query, rendered with
    /// sample values, must parse there.
    pub async fn check(&self, t: &AnalysisTemplate) -> Result<(), CheckError> {
        let rendered = render_query(&t.query, &Subject::sample())
            .map_err(|e| CheckError::Invalid(e.to_string()))?;
        let base = t.prometheus_url.trim_end_matches('/');
        match self.get(t, "/api/v1/format_query", &rendered).await {
            Ok(_) => Ok(()),
            Err(e) if e.contains("bad_data") => Err(CheckError::Invalid(format!(
                "query is not valid PromQL: {e}"
            ))),
            Err(e) => Err(CheckError::Unreachable(format!(
                "the query could not be checked against Prometheus at {base}, so the template was not saved: {e}. Check prometheus_url (and bearer_token_file) and that Prometheus runs"
            ))),
        }
    }

    /// Runs `query` (already rendered) once: the single value it answers,
    /// or why there is none (no data, several series, a fault).
    pub async fn measure(&self, t: &AnalysisTemplate, query: &str) -> Result<f64, String> {
        let data = self.get(t, "/api/v1/query", query).await?;
        value_of(&data)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The one number in an instant query's `data`.
pub fn value_of(data: &Value) -> Result<f64, String> {
    let sample = |v: &Value| -> Result<f64, String> {
        let text = v[1]
            .as_str()
            .ok_or_else(|| format!("Prometheus answered a sample without a value: {v}"))?;
        text.parse::<f64>()
            .map_err(|_| format!("Prometheus answered {text:?}, which is not a number"))
    };
    match data["resultType"].as_str() {
        Some("scalar") => sample(&data["result"]),
        Some("vector") => {
            let series = data["result"]
                .as_array()
                .ok_or_else(|| "Prometheus answered a vector without a result list".to_owned())?;
            match series.as_slice() {
                [] => Err("no data: the query returned no series".to_owned()),
                [one] => sample(&one["value"]),
                many => Err(format!(
                    "the query returned {} series ({}); reduce them to one in the query, e.g. with sum(...) or max(...)",
                    many.len(),
                    many.iter()
                        .take(3)
                        .map(|s| s["metric"].to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        Some(other) => Err(format!(
            "the query returned a {other}; an analysis needs one number (an instant vector of one series, or a scalar)"
        )),
        None => Err("Prometheus answered without a resultType".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_series_or_a_scalar_gives_a_value_and_anything_else_says_why_not() {
        let vector = |result: Value| json!({"resultType": "vector", "result": result});
        assert_eq!(
            value_of(&vector(json!([{"metric": {}, "value": [1.0, "0.25"]}]))),
            Ok(0.25)
        );
        assert_eq!(
            value_of(&json!({"resultType": "scalar", "result": [1.0, "3"]})),
            Ok(3.0)
        );
        assert!(
            value_of(&vector(json!([{"metric": {}, "value": [1.0, "NaN"]}])))
                .is_ok_and(f64::is_nan)
        );
        assert!(value_of(&vector(json!([]))).is_err_and(|e| e.starts_with("no data")));
        let two = vector(
            json!([{"metric": {"a": "1"}, "value": [1.0, "1"]}, {"metric": {"a": "2"}, "value": [1.0, "2"]}]),
        );
        assert!(value_of(&two).is_err_and(|e| e.contains("2 series") && e.contains("sum(")));
        assert!(value_of(&json!({"resultType": "matrix", "result": []}))
            .is_err_and(|e| e.contains("matrix")));
        assert!(value_of(&vector(json!([{"metric": {}, "value": [1.0, "many"]}]))).is_err());
    }
}
