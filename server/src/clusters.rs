//! Clusters as both the REST API and the console ask for them: adding,
//! testing and removing one, and who may run an operation on one, checked
//! the same way for a token and a session.

use std::time::Duration;

use serde_json::{json, Value};
use switchyard_domain::access::{role_for_operation, Role};
use switchyard_domain::analysis::Decision;
use switchyard_domain::clusters::{parse_cluster_name, Cluster, DriverKind, NewCluster};
use switchyard_domain::operations::Operation;
use switchyard_domain::policy::parse_environment_name;
use switchyard_domain::{DomainError, Timestamp};

use crate::drivers::{Check, Drivers};
use crate::store::identity::Identity;
use crate::store::{Store, StoreResult};

/// Who may add and remove clusters, and who may test one (in its environment).
pub const MANAGE_CLUSTERS: Role = Role::Admin;
/// Testing changes nothing but reaches into the cluster's parts.
pub const TEST_CLUSTER: Role = Role::Deployer;

/// How long a connection test waits for all its checks.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A cluster to register, as `POST /api/v1/clusters` and the console's form give it.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub environment: String,
    /// `simulated`, `oip+haproxy` or `kubernetes`.
    pub driver: String,
    /// The driver's settings: an object, or null for none.
    pub config: Value,
}

/// Registers a cluster (admins on all): its name, environment and driver
/// config checked by the driver's own parser, then stored with
/// `cluster.created`; refused as a whole otherwise, so nothing is
/// half-registered. Whether its parts answer is `test`'s question: a
/// cluster may be registered before its router runs (its HAProxy
/// configuration is generated from the registration).
pub async fn add(
    store: &dyn Store,
    who: &Identity,
    r: Registration,
    at: Timestamp,
) -> StoreResult<Cluster> {
    who.check(MANAGE_CLUSTERS, None, "creating a cluster")
        .map_err(DomainError::from)?;
    let driver: DriverKind = r.driver.parse()?;
    // No settings is an empty object: a cluster's config is always one.
    let config = match r.config {
        Value::Null => json!({}),
        config @ Value::Object(_) => config,
        _ => {
            return Err(DomainError::Invalid(
                "config must be a JSON object of driver settings (or left out for none)".into(),
            )
            .into())
        }
    };
    crate::drivers::validate_config(driver, &config)?;
    let new = NewCluster {
        name: parse_cluster_name(&r.name)?,
        environment: parse_environment_name(&r.environment)?,
        driver,
        config,
    };
    store.create_cluster(new, &who.actor(), at).await
}

/// A driver config as a person writes it (the console's text box, the
/// CLI's file): JSON or YAML; blank is none (null).
pub fn parse_config_text(text: &str) -> Result<Value, DomainError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        // Text that opens like JSON gets JSON's complaint, with its line and column.
        Err(e) if text.starts_with('{') || text.starts_with('[') => Err(DomainError::Invalid(
            format!("the config is not valid JSON: {e}"),
        )),
        Err(json_error) => serde_yaml::from_str::<Value>(text).map_err(|yaml_error| {
            DomainError::Invalid(format!(
                "the config is neither JSON ({json_error}) nor YAML ({yaml_error})"
            ))
        }),
    }
}

/// Runs the driver's checks of `name` (`cluster test`, the console's Test
/// connection button): deployers and up in the cluster's environment. The
/// lower bar is checked first, so a viewer is told "forbidden" whether or
/// not the cluster exists.
pub async fn test(
    store: &dyn Store,
    drivers: &Drivers,
    who: &Identity,
    name: &str,
) -> StoreResult<(Cluster, Vec<Check>)> {
    who.check_somewhere(TEST_CLUSTER, "testing a cluster")
        .map_err(DomainError::from)?;
    let name = parse_cluster_name(name)?;
    let cluster = store
        .get_cluster(&name)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("cluster {name} does not exist")))?;
    who.check(
        TEST_CLUSTER,
        Some(&cluster.environment),
        &format!("testing {name} (environment {})", cluster.environment),
    )
    .map_err(DomainError::from)?;
    let checks = crate::drivers::test_cluster(drivers, &cluster, TEST_TIMEOUT).await;
    Ok((cluster, checks))
}

/// Removes a cluster that never ran an operation (admins on all); one that
/// did, or one with an operation running, is refused by the store (its
/// history answers serving-at-T and the audit).
pub async fn remove(
    store: &dyn Store,
    drivers: &Drivers,
    who: &Identity,
    name: &str,
    at: Timestamp,
) -> StoreResult<()> {
    who.check(MANAGE_CLUSTERS, None, "removing a cluster")
        .map_err(DomainError::from)?;
    let name = parse_cluster_name(name)?;
    store.remove_cluster(&name, &who.actor(), at).await?;
    drivers.forget(&name);
    Ok(())
}

/// Checks that `who` may run an operation, or a rollback, on `cluster`:
/// bound as deployer in the cluster's environment (or on all) outside
/// production, as approver in production-policy environments
/// (`access::role_for_operation`). The lower bar (deployer somewhere) is
/// checked first, so a viewer is told "forbidden" whether or not the cluster
/// exists; an unknown cluster passes here and the operation itself answers 404.
pub async fn require_operator(
    store: &dyn Store,
    who: &Identity,
    cluster: &str,
    rollback: bool,
) -> StoreResult<()> {
    let what = if rollback {
        "rolling back a cluster"
    } else {
        "running an operation on a cluster"
    };
    who.check_somewhere(role_for_operation(false), what)
        .map_err(DomainError::from)?;
    let Some(c) = store.get_cluster(cluster).await? else {
        return Ok(());
    };
    let production = is_production(store, &c.environment).await?;
    let what = if rollback {
        format!("rolling back {} (environment {})", c.name, c.environment)
    } else {
        format!(
            "running an operation on {} (environment {})",
            c.name, c.environment
        )
    };
    who.check(role_for_operation(production), Some(&c.environment), &what)
        .map_err(DomainError::from)?;
    Ok(())
}

/// Whether `environment` has a production policy (unknown: no).
pub async fn is_production(store: &dyn Store, environment: &str) -> StoreResult<bool> {
    Ok(store
        .list_environments()
        .await?
        .iter()
        .any(|e| e.name == environment && e.policy.is_production()))
}

/// The operation a person steers (pause, continue, roll back) and their
/// reason, once they may: the lower bar first, so a viewer is told
/// "forbidden" whether or not the operation exists; then, as weighty as a
/// rollback, approvers in production.
pub async fn steered<'r>(
    store: &dyn Store,
    who: &Identity,
    id: i64,
    reason: Option<&'r str>,
    what: &str,
) -> StoreResult<(Operation, &'r str)> {
    who.check_somewhere(role_for_operation(false), what)
        .map_err(DomainError::from)?;
    let reason = switchyard_domain::text::required_reason(reason)?;
    let op = store
        .get_operation(id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("operation {id} does not exist")))?;
    require_operator(store, who, &op.cluster, true).await?;
    Ok((op, reason))
}

/// A person's answer to an operation, as the REST API and the console give
/// it: continue a paused one, or roll back a paused or running one (a
/// running one is paused where it is first, then rolled back).
pub async fn decide(
    store: &dyn Store,
    who: &Identity,
    id: i64,
    decision: Decision,
    reason: Option<&str>,
    at: Timestamp,
) -> StoreResult<Operation> {
    let (op, reason) = steered(store, who, id, reason, "answering a paused operation").await?;
    if decision == Decision::RollBack && op.paused.is_none() && !op.state.is_final() {
        store.pause_operation(id, &who.username, reason, at).await?;
    }
    store
        .decide_operation(id, decision, &who.username, reason, at)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_config_is_read_as_json_or_yaml_and_blank_is_none() {
        assert_eq!(parse_config_text(" \n"), Ok(Value::Null));
        assert_eq!(
            parse_config_text(r#"{"action_ms": 5}"#),
            Ok(json!({ "action_ms": 5 }))
        );
        assert_eq!(
            parse_config_text("action_ms: 5\nfail_smoke: true\n"),
            Ok(json!({ "action_ms": 5, "fail_smoke": true }))
        );
        // Broken JSON is told as JSON, with where it broke, not as YAML.
        let broken = parse_config_text("{\n  \"model\": \"echo\",\n").unwrap_err();
        assert!(
            broken
                .to_string()
                .starts_with("the config is not valid JSON")
                && broken.to_string().contains("line"),
            "{broken}"
        );
        let neither = parse_config_text("model: [echo\n").unwrap_err();
        assert!(neither.to_string().contains("neither JSON"), "{neither}");
    }
}
