//! Serving clusters: create (admin), list, show, test, remove (admin); the
//! rules are `crate::clusters`'s, which the console calls too.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::clusters::{parse_cluster_name, Cluster, DriverKind};
use switchyard_domain::Timestamp;
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;

/// The body of `POST /api/v1/clusters`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    #[schema(example = "eu-1", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    #[schema(example = "production", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub environment: String,
    /// `simulated`, `oip+haproxy` or `kubernetes`.
    #[schema(
        example = "simulated",
        pattern = "^(simulated|oip\\+haproxy|kubernetes)$"
    )]
    pub driver: String,
    /// Driver settings (addresses, socket and file paths); absent or null: none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Value,
}

/// A cluster as shown: simulated clusters say so.
pub(super) fn shown(c: Cluster) -> Value {
    let simulated = c.driver == DriverKind::Simulated;
    let mut v = json!(c);
    if let Some(o) = v.as_object_mut() {
        o.insert("simulated".into(), json!(simulated));
        // Clusters created with `"config": null` before it became `{}`.
        if o.get("config").is_some_and(Value::is_null) {
            o.insert("config".into(), json!({}));
        }
    }
    v
}

#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters",
    request_body = CreateCluster,
    responses(
        (status = 201, description = "Created, serving nothing yet", body = ref("#/components/schemas/Cluster")),
        (status = 404, description = "Unknown environment", body = ref("#/components/schemas/Error")),
        (status = 409, description = "A cluster by that name exists", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Bad name, driver or driver config", body = ref("#/components/schemas/Error")),
    ))]
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateCluster>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let registration = crate::clusters::Registration {
        name: body.name,
        environment: body.environment,
        driver: body.driver,
        config: body.config,
    };
    let cluster = crate::clusters::add(
        app.store.as_ref(),
        &actor.identity,
        registration,
        Timestamp::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(shown(cluster))))
}

#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters",
    responses((status = 200, description = "Every cluster with its slots, weights and running operation", body = ref("#/components/schemas/ClusterList"))))]
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let clusters: Vec<Value> = app
        .store
        .list_clusters()
        .await?
        .into_iter()
        .map(shown)
        .collect();
    Ok(Json(json!({ "clusters": clusters })))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "The cluster: slots, versions, weights, the running operation; each slot's `health` \
            as the driver reports it now (`ready`, `empty`, `not ready: …`, or `unknown: …` when the driver cannot answer \
            within 1.5 s) and the router's weights now (`router`)", body = ref("#/components/schemas/Cluster")),
        (status = 404, description = "No such cluster", body = ref("#/components/schemas/Error")),
    ))]
pub async fn detail(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let name = parse_cluster_name(&name)?;
    let cluster = app
        .store
        .get_cluster(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("cluster {name} does not exist")))?;
    let live = crate::drivers::live_view(&app.drivers, &cluster, LIVE_TIMEOUT).await;
    let mut v = shown(cluster);
    if let Some(slots) = v.get_mut("slots").and_then(Value::as_array_mut) {
        for s in slots.iter_mut() {
            let health = live
                .health
                .iter()
                .find(|(slot, _)| s["slot"] == slot.as_str())
                .map(|(_, h)| h.clone());
            if let (Some(o), Some(h)) = (s.as_object_mut(), health) {
                o.insert("health".into(), json!(h));
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        let router = match live.router {
            Ok(w) => json!({ "weights": w }),
            Err(why) => json!({ "weights": null, "error": why }),
        };
        o.insert("router".into(), router);
    }
    Ok(Json(v))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Removed (`cluster.removed` in the ledger)"),
        (status = 404, description = "No such cluster", body = ref("#/components/schemas/Error")),
        (status = 409, description = "An operation runs on it, or it has run operations: its history answers \
            serving-at-T and the audit, so only a cluster that never ran an operation can be removed", body = ref("#/components/schemas/Error")),
    ))]
pub async fn remove(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    crate::clusters::remove(
        app.store.as_ref(),
        &app.drivers,
        &actor.identity,
        &name,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/test", tag = "clusters",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "Every part the driver needs, checked without changing anything: \
            `{ok, checks: [{check, ok, detail, advice?}]}`; `ok` is true when every check passed", body = Object),
        (status = 404, description = "No such cluster", body = ref("#/components/schemas/Error")),
    ))]
pub async fn test(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (cluster, checks) =
        crate::clusters::test(app.store.as_ref(), &app.drivers, &actor.identity, &name).await?;
    let ok = checks.iter().all(|c| c.ok);
    Ok(Json(
        json!({ "cluster": cluster.name, "driver": cluster.driver.as_str(), "ok": ok, "checks": checks }),
    ))
}

/// How long `GET /api/v1/clusters/{name}` waits for the driver to say how the slots are.
const LIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Checks that `actor` may run an operation (or a rollback) on `cluster`;
/// the rule is shared with the console (`crate::clusters::require_operator`).
pub(super) async fn require_operator(
    app: &AppState,
    actor: &Actor,
    cluster: &str,
    rollback: bool,
) -> Result<(), ApiError> {
    crate::clusters::require_operator(app.store.as_ref(), &actor.identity, cluster, rollback)
        .await?;
    Ok(())
}
