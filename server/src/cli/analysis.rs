//! `switchyard analysis put|list|show|remove` (analysis templates) and
//! `switchyard operation pause|continue|rollback` (a running operation, or
//! one an inconclusive analysis paused): clients of a running server's REST API
//! (`SWITCHYARD_URL`, `SWITCHYARD_TOKEN`), so roles, checks and the ledger
//! apply as for any other client.

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use super::cluster::{read_config, Api};
use super::{Failure, Outcome};

/// Saves a template from a JSON or YAML file (`-`: standard input) with
/// the reason given (`--reason`, for the ledger); the server checks its
/// query against the Prometheus it names.
pub(super) async fn put(api: &Api, name: &str, file: &Path, reason: &str) -> Outcome {
    let mut body = read_config(file)?;
    if let Some(fields) = body.as_object_mut() {
        fields.insert("reason".to_owned(), Value::from(reason));
    } else {
        return Err(Failure::usage(format!(
            "{} must hold an object with prometheus_url, query, success, failure, interval_ms, count, failure_limit and inconclusive_limit",
            file.display()
        )));
    }
    let saved = api
        .call(
            Method::PUT,
            &format!("/api/v1/analysis-templates/{name}"),
            Some(&body),
        )
        .await?;
    println!(
        "analysis template {name} saved: every {} ms, {} measurements of {}",
        saved["interval_ms"], saved["count"], saved["query"]
    );
    Ok(())
}

pub(super) async fn list(api: &Api) -> Outcome {
    let all = api
        .call(Method::GET, "/api/v1/analysis-templates", None)
        .await?;
    let templates = all["templates"].as_array().cloned().unwrap_or_default();
    if templates.is_empty() {
        println!("no analysis templates (an admin adds one with `switchyard analysis put NAME --file T.yaml`)");
    }
    for t in templates {
        println!(
            "{}\t{}\tsuccess: {}\tfailure: {}\t{} x {} ms",
            t["name"].as_str().unwrap_or(""),
            t["prometheus_url"].as_str().unwrap_or(""),
            t["success"].as_str().unwrap_or(""),
            t["failure"].as_str().unwrap_or(""),
            t["count"],
            t["interval_ms"],
        );
    }
    Ok(())
}

pub(super) async fn show(api: &Api, name: &str) -> Outcome {
    let t = api
        .call(
            Method::GET,
            &format!("/api/v1/analysis-templates/{name}"),
            None,
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&t).unwrap_or_default());
    Ok(())
}

pub(super) async fn remove(api: &Api, name: &str, reason: &str) -> Outcome {
    let query = serde_urlencoded::to_string([("reason", reason)])
        .map_err(|e| Failure::usage(format!("--reason cannot be sent: {e}")))?;
    api.call(
        Method::DELETE,
        &format!("/api/v1/analysis-templates/{name}?{query}"),
        None,
    )
    .await?;
    println!("analysis template {name} removed (operations that attached it keep their copy)");
    Ok(())
}

/// Pauses, continues or rolls back an operation (`what`: the endpoint).
pub(super) async fn answer(api: &Api, id: i64, what: &str, reason: &str) -> Outcome {
    let body: Value = json!({ "reason": reason });
    api.call(
        Method::POST,
        &format!("/api/v1/operations/{id}/{what}"),
        Some(&body),
    )
    .await?;
    println!(
        "operation {id}: {}",
        match what {
            "pause" => "paused before its next step; continue or roll it back",
            "continue" => "goes on",
            _ => "rolls back to what served before",
        }
    );
    Ok(())
}
