//! `switchyard binding add|list|remove`: role bindings, through a running
//! server's REST API (`SWITCHYARD_URL`, an admin's token in
//! `SWITCHYARD_TOKEN` to change them), so the server checks the caller's own
//! bindings and writes `binding.created` / `binding.removed` to the ledger.

use reqwest::Method;
use serde_json::{json, Value};

use super::cluster::{print_table, text, Api};
use super::{Failure, Outcome};

/// Adds a binding of `role` for exactly one of `user` and `group`, in
/// `environment` (`all` or absent: every environment).
pub(super) async fn add(
    api: &Api,
    user: Option<&str>,
    group: Option<&str>,
    role: &str,
    environment: Option<&str>,
) -> Outcome {
    if user.is_some() == group.is_some() {
        return Err(Failure::usage(
            "give exactly one of --user NAME and --group NAME",
        ));
    }
    let body = json!({ "user": user, "group": group, "role": role, "environment": environment });
    let b = api
        .call(Method::POST, "/api/v1/role-bindings", Some(&body))
        .await?;
    println!("binding {} added: {}", text(&b["id"]), describe(&b));
    Ok(())
}

pub(super) async fn list(api: &Api) -> Outcome {
    let answer = api.call(Method::GET, "/api/v1/role-bindings", None).await?;
    let bindings = answer["bindings"].as_array().cloned().unwrap_or_default();
    if bindings.is_empty() {
        println!(
            "no role bindings: switchyard binding add --user NAME --role ROLE --environment ENV"
        );
        return Ok(());
    }
    let rows: Vec<[String; 5]> = bindings
        .iter()
        .map(|b| {
            [
                text(&b["id"]),
                subject(b),
                text(&b["role"]),
                text(&b["environment"]),
                text(&b["created_by"]),
            ]
        })
        .collect();
    print_table(["ID", "SUBJECT", "ROLE", "ENVIRONMENT", "ADDED BY"], &rows);
    Ok(())
}

pub(super) async fn remove(api: &Api, id: i64) -> Outcome {
    let b = api
        .call(Method::DELETE, &format!("/api/v1/role-bindings/{id}"), None)
        .await?;
    println!("binding {id} removed: {}", describe(&b));
    Ok(())
}

fn subject(b: &Value) -> String {
    match (b["user"].as_str(), b["group"].as_str()) {
        (Some(u), _) => format!("user {u}"),
        (_, Some(g)) => format!("group {g}"),
        _ => "?".to_owned(),
    }
}

/// "user alice: deployer on staging".
fn describe(b: &Value) -> String {
    format!(
        "{}: {} on {}",
        subject(b),
        text(&b["role"]),
        text(&b["environment"])
    )
}
