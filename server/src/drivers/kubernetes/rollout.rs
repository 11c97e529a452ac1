//! The `kubernetes` driver's Argo Rollouts mode: one `Rollout` object
//! (argoproj.io/v1alpha1) instead of two Deployments and a Service. The
//! Rollout's own strategy moves the traffic — `blueGreen` (the new pods come
//! up behind the `previewService`, a promote moves the `activeService` to
//! them) or `canary` (its `steps`, promoted through each pause) — so every
//! operation on such a cluster is one `Step::Roll` of slot blue (the
//! Rollout), done as the `kubectl argo rollouts` plugin does it:
//!
//! - *set image*: a JSON merge patch of the pod template (custom resources
//!   take no strategic merge patch, so the `containers` list is sent whole,
//!   changed only in the serving container's image / version variable) plus
//!   the `switchyard.io/version` annotation, guarded by the resourceVersion;
//!   a version an earlier ReplicaSet of the Rollout ran is put back as
//!   `undo` does instead (that ReplicaSet's template, without its
//!   `rollouts-pod-template-hash` label);
//! - *promote*: while the Rollout is paused (`status.pauseConditions`), a
//!   merge patch of the status subresource `{"status":{"pauseConditions":null}}`;
//! - *abort*: `{"status":{"abort":true}}` on the status subresource; *retry*
//!   (the same version again after an abort): `{"status":{"abort":false}}`;
//! - *undo*: the template of the ReplicaSet with the wanted revision;
//!
//! and the phase is read only when `status.observedGeneration` (a string)
//! equals `metadata.generation`. A rollout that ends `Degraded` (its
//! progress deadline) or misses the step's time is aborted and undone to the
//! stable ReplicaSet's template, whose pods never stopped serving. A rollback
//! in the middle of an update aborts it first, then undoes. Every write
//! carries the resourceVersion it was computed from (a 409 is read again)
//! and goes into the step's record.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PostParams};
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::clusters::{ClusterState, SlotName, Weights};
use switchyard_domain::operations::{GatePolicy, Traffic};
use switchyard_domain::{DomainError, FullId};

use super::running::{running_of, VersionMap};
use super::{
    api_error, dns_label, is_conflict, list_pods, merge_diff, patch_params, retry_conflicts,
    Connection, VERSION_ANNOTATION,
};
use crate::drivers::{Check, Driver, DriverError, DriverResult, Observed, Running, SlotHealth};

/// The revision Argo Rollouts gives a Rollout's ReplicaSets.
pub const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";
/// The label Argo Rollouts adds to tell a Rollout's ReplicaSets apart.
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";
/// How many times a write is tried again after a 409 Conflict.
const CONFLICT_RETRIES: usize = 5;
/// How often the Rollout is read while it moves.
const POLL: Duration = Duration::from_millis(100);

/// `config` of a `kubernetes` cluster in Argo Rollouts mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgoConfig {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: String,
    /// The model the cluster serves.
    pub model: String,
    /// The Rollout (argoproj.io/v1alpha1) that serves it.
    pub rollout: String,
    /// The container of the pod template that serves the model.
    pub container: String,
    /// The image repository: a version `v` runs as `IMAGE:v`.
    pub image: Option<String>,
    /// An environment variable of the container set to the version.
    pub version_env: Option<String>,
    #[serde(default)]
    pub health_gate: GatePolicy,
}

impl ArgoConfig {
    pub fn parse(config: &Value) -> Result<ArgoConfig, DomainError> {
        let c: ArgoConfig = serde_json::from_value(config.clone()).map_err(|e| {
            DomainError::Invalid(format!(
                "kubernetes driver config (Argo Rollouts mode, `rollout` given): {e}"
            ))
        })?;
        switchyard_domain::ModelId::parse(&c.model)?;
        dns_label("namespace", &c.namespace)?;
        dns_label("rollout", &c.rollout)?;
        dns_label("container", &c.container)?;
        if c.image.is_none() && c.version_env.is_none() {
            return Err(DomainError::Invalid(
                "kubernetes driver config: say how a version reaches the pods: `image` (the \
                 repository; version v runs as IMAGE:v) and/or `version_env` (an environment \
                 variable set to the version)"
                    .to_owned(),
            ));
        }
        Ok(c)
    }
}

/// How a Rollout stands, read as `kubectl argo rollouts status` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The controller has not observed the latest spec: the status is old.
    Stale,
    /// The current template is stable and all of it available.
    Healthy,
    /// Waiting at a pause (the reasons: `BlueGreenPause`, `CanaryPauseStep`).
    Paused(String),
    /// Aborted: the stable pods serve; the words say which update.
    Aborted(String),
    /// It will not finish without a change (e.g. `ProgressDeadlineExceeded`).
    Degraded(String),
    /// Still moving; the words say how far.
    Progressing(String),
}

/// The phase of a Rollout (JSON), only from a status that observed the
/// current generation.
pub fn phase(r: &Value) -> Phase {
    let generation = r["metadata"]["generation"].as_i64().unwrap_or(0);
    let status = &r["status"];
    let observed = match &status["observedGeneration"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if observed != generation.to_string() {
        return Phase::Stale;
    }
    let message = status["message"].as_str().unwrap_or("").to_owned();
    if status["abort"] == true {
        return Phase::Aborted(message);
    }
    let pauses: Vec<&str> = status["pauseConditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["reason"].as_str())
        .collect();
    if !pauses.is_empty() {
        return Phase::Paused(pauses.join(", "));
    }
    match status["phase"].as_str() {
        Some("Healthy") if status["currentPodHash"] == status["stableRS"] => Phase::Healthy,
        // Aborted, and the abort cleared since (a retry) the controller has
        // not acted on yet: it is moving again, not failed.
        Some("Degraded") if message.starts_with("RolloutAborted") => Phase::Progressing(format!(
            "retried after an abort ({message}); waiting for the controller"
        )),
        Some("Degraded") => Phase::Degraded(message),
        other => Phase::Progressing(format!(
            "{}{}; {} updated, {} available of {}",
            other.unwrap_or("no phase yet"),
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            },
            status["updatedReplicas"].as_i64().unwrap_or(0),
            status["availableReplicas"].as_i64().unwrap_or(0),
            r["spec"]["replicas"].as_i64().unwrap_or(1)
        )),
    }
}

/// A pod template (JSON) without the ReplicaSet hash label.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    t
}

/// The version a pod template (JSON) holds (its annotation).
fn version_of(template: &Value) -> Option<&str> {
    template["metadata"]["annotations"][VERSION_ANNOTATION].as_str()
}

/// The newest ReplicaSet owned by the Rollout `uid` whose template satisfies
/// `wanted`: (its revision, its template without the hash label).
fn revision_where(
    uid: &str,
    sets: &[ReplicaSet],
    wanted: impl Fn(&ReplicaSet, &Value) -> bool,
) -> Option<(i64, Value)> {
    sets.iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .filter_map(|rs| {
            let rev = rs
                .metadata
                .annotations
                .as_ref()?
                .get(REVISION_ANNOTATION)?
                .parse::<i64>()
                .ok()?;
            let template = without_hash(&json!(rs.spec.as_ref()?.template.as_ref()?));
            wanted(rs, &template).then_some((rev, template))
        })
        .max_by_key(|(rev, _)| *rev)
}

pub struct ArgoRollout {
    config: ArgoConfig,
    resource: ApiResource,
    conn: Connection,
}

impl ArgoRollout {
    pub fn new(config: ArgoConfig) -> ArgoRollout {
        ArgoRollout {
            resource: ApiResource {
                group: "argoproj.io".into(),
                version: "v1alpha1".into(),
                api_version: "argoproj.io/v1alpha1".into(),
                kind: "Rollout".into(),
                plural: "rollouts".into(),
            },
            conn: Connection::new(
                config.kubeconfig.clone(),
                config.context.clone(),
                config.namespace.clone(),
            ),
            config,
        }
    }

    async fn rollouts(&self) -> DriverResult<Api<DynamicObject>> {
        Ok(Api::namespaced_with(
            self.conn.client().await?,
            self.conn.ns(),
            &self.resource,
        ))
    }

    fn what(&self) -> String {
        format!("Rollout {}", self.config.rollout)
    }

    /// The Rollout as JSON.
    async fn get(&self) -> DriverResult<Value> {
        let r = self
            .rollouts()
            .await?
            .get(&self.config.rollout)
            .await
            .map_err(|e| api_error(&self.what(), self.conn.ns(), e))?;
        serde_json::to_value(&r).map_err(|e| DriverError::new(format!("{}: {e}", self.what())))
    }

    /// The ReplicaSets the Rollout's selector picks.
    async fn replica_sets(&self, r: &Value) -> DriverResult<Vec<ReplicaSet>> {
        let selector: Vec<String> = r["spec"]["selector"]["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
            .collect();
        let api: Api<ReplicaSet> = Api::namespaced(self.conn.client().await?, self.conn.ns());
        Ok(api
            .list(&ListParams::default().labels(&selector.join(",")))
            .await
            .map_err(|e| {
                api_error(
                    &format!("ReplicaSets of {}", self.what()),
                    self.conn.ns(),
                    e,
                )
            })?
            .items)
    }

    fn check_model(&self, full_id: &FullId) -> DriverResult<()> {
        if full_id.model_id.as_str() != self.config.model {
            return Err(DriverError::new(format!(
                "this cluster serves model {}, not {}",
                self.config.model, full_id.model_id
            )));
        }
        Ok(())
    }

    /// Whether the Rollout's template runs `full_id` (annotation, image,
    /// variable); the error says what it runs instead.
    fn holds(&self, r: &Value, full_id: &FullId) -> Result<(), String> {
        let t = &r["spec"]["template"];
        let name = &self.config.rollout;
        let held = version_of(t);
        if held != Some(full_id.to_string().as_str()) {
            return Err(format!(
                "Rollout {name} holds {}, not {full_id}",
                held.unwrap_or("no version")
            ));
        }
        let container = t["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == self.config.container.as_str());
        let version = full_id.version.as_str();
        if let Some(image) = &self.config.image {
            let wanted = format!("{image}:{version}");
            let runs = container.and_then(|c| c["image"].as_str());
            if runs != Some(wanted.as_str()) {
                return Err(format!(
                    "Rollout {name} runs {} in container {}, not {wanted}",
                    runs.unwrap_or("no image"),
                    self.config.container
                ));
            }
        }
        if let Some(env) = &self.config.version_env {
            let value = container
                .and_then(|c| c["env"].as_array())
                .and_then(|e| e.iter().find(|v| v["name"] == env.as_str()))
                .and_then(|v| v["value"].as_str());
            if value != Some(version) {
                return Err(format!(
                    "Rollout {name} sets {env}={} in container {}, not {version}",
                    value.unwrap_or("(unset)"),
                    self.config.container
                ));
            }
        }
        Ok(())
    }

    /// The merge patch that puts `full_id` into the Rollout's template: the
    /// whole `containers` list (a merge patch replaces lists), only the
    /// serving container changed.
    pub fn template_patch(&self, r: &Value, full_id: &FullId) -> DriverResult<Value> {
        let version = full_id.version.as_str();
        let mut containers = r["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let c = containers
            .iter_mut()
            .find(|c| c["name"] == self.config.container.as_str())
            .ok_or_else(|| {
                DriverError::new(format!(
                    "Rollout {} has no container {:?}; set `container` in the cluster's config",
                    self.config.rollout, self.config.container
                ))
            })?;
        if let Some(image) = &self.config.image {
            if version.contains('+') {
                return Err(DriverError::new(format!(
                    "version {version} cannot be an image tag ('+' is not allowed in tags); \
                     set `version_env` in the cluster's config instead of `image`"
                )));
            }
            c["image"] = json!(format!("{image}:{version}"));
        }
        if let Some(env) = &self.config.version_env {
            let mut vars = c["env"].as_array().cloned().unwrap_or_default();
            match vars.iter_mut().find(|v| v["name"] == env.as_str()) {
                Some(v) => *v = json!({ "name": env, "value": version }),
                None => vars.push(json!({ "name": env, "value": version })),
            }
            c["env"] = Value::Array(vars);
        }
        Ok(json!({
            "metadata": { "resourceVersion": r["metadata"]["resourceVersion"] },
            "spec": { "template": {
                "metadata": { "annotations": { VERSION_ANNOTATION: full_id.to_string() } },
                "spec": { "containers": containers }
            } }
        }))
    }

    /// A merge patch of the Rollout (`status`: of its status subresource),
    /// recorded with what it became. A 409 comes back as `Ok(None)`.
    async fn patch(&self, patch: &Value, status: bool, doing: &str) -> DriverResult<Option<Value>> {
        let api = self.rollouts().await?;
        let name = &self.config.rollout;
        let sent = if status {
            api.patch_status(name, &patch_params(), &Patch::Merge(patch))
                .await
        } else {
            api.patch(name, &patch_params(), &Patch::Merge(patch)).await
        };
        match sent {
            Ok(after) => {
                self.conn.wrote(format!(
                    "{doing}: patched Rollout {name}{} (merge) with {patch}: generation {}, resourceVersion {}",
                    if status { "/status" } else { "" },
                    after.metadata.generation.unwrap_or(0),
                    after.metadata.resource_version.as_deref().unwrap_or("?")
                ));
                Ok(Some(json!(after)))
            }
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(api_error(&self.what(), self.conn.ns(), e)),
        }
    }

    fn changed_too_often(&self, doing: &str) -> DriverError {
        DriverError::new(format!(
            "Rollout {} changed {CONFLICT_RETRIES} times while Switchyard tried to {doing} (409 \
             Conflict); something else keeps writing it",
            self.config.rollout
        ))
    }

    /// Puts `full_id` into the Rollout's template (see the module's words):
    /// already there — nothing, or *retry* after an abort; a version an
    /// earlier ReplicaSet ran — *undo* to it, after an *abort* when an
    /// update is under way; else *set image*.
    async fn set_version(&self, full_id: &FullId) -> DriverResult<()> {
        let object = self.what();
        let doing = format!("tried to set {full_id}");
        retry_conflicts(&object, &doing, move || async move {
            let r = self.get().await?;
            let rv = r["metadata"]["resourceVersion"].clone();
            if self.holds(&r, full_id).is_ok() {
                if r["status"]["abort"] == true {
                    let patch = json!({ "metadata": { "resourceVersion": rv }, "status": { "abort": false } });
                    let retried = self
                        .patch(&patch, true, "retry (as kubectl argo rollouts retry)")
                        .await?;
                    return Ok(retried.map(|_| ()));
                }
                self.conn.wrote(format!(
                    "Rollout {} already holds {full_id} (generation {})",
                    self.config.rollout, r["metadata"]["generation"]
                ));
                return Ok(Some(()));
            }
            let uid = r["metadata"]["uid"].as_str().unwrap_or("").to_owned();
            let sets = self.replica_sets(&r).await?;
            let wanted = full_id.to_string();
            let earlier =
                revision_where(&uid, &sets, |_, t| version_of(t) == Some(wanted.as_str()));
            let Some((revision, template)) = earlier else {
                let patch = self.template_patch(&r, full_id)?;
                let set = self.patch(&patch, false, &format!("set {full_id}")).await?;
                return Ok(set.map(|_| ()));
            };
            let updating = r["status"]["currentPodHash"] != r["status"]["stableRS"];
            if updating && r["status"]["abort"] != true {
                let patch =
                    json!({ "metadata": { "resourceVersion": rv }, "status": { "abort": true } });
                // Aborted or not (409), read again before the undo.
                self.patch(
                    &patch,
                    true,
                    "abort the update under way (as kubectl argo rollouts abort)",
                )
                .await?;
                return Ok(None);
            }
            let mut patch = merge_diff(
                &json!({ "spec": { "template": r["spec"]["template"] } }),
                &json!({ "spec": { "template": template } }),
            );
            patch["metadata"]["resourceVersion"] = rv;
            let doing =
                format!("undo to revision {revision} ({full_id}, as kubectl argo rollouts undo)");
            Ok(self.patch(&patch, false, &doing).await?.map(|_| ()))
        })
        .await
    }

    /// Promote (as `kubectl argo rollouts promote`): the pause conditions
    /// cleared on the status subresource. A 409: read again by the caller.
    async fn promote(&self, r: &Value, why: &str) -> DriverResult<()> {
        let patch = json!({
            "metadata": { "resourceVersion": r["metadata"]["resourceVersion"] },
            "status": { "pauseConditions": null }
        });
        self.patch(
            &patch,
            true,
            &format!("promote past {why} (as kubectl argo rollouts promote)"),
        )
        .await?;
        Ok(())
    }

    /// A failed update: *abort* (unless aborted), then *undo* to the stable
    /// ReplicaSet's template, whose rollout is watched (within `timeout`).
    async fn abort_and_undo(&self, failure: String, timeout: Duration) -> DriverError {
        let name = self.config.rollout.clone();
        let mut undone = None;
        for _ in 0..CONFLICT_RETRIES {
            let r = match self.get().await {
                Ok(r) => r,
                Err(e) => return DriverError::new(format!("{failure}; aborting it failed: {e}")),
            };
            let rv = r["metadata"]["resourceVersion"].clone();
            if r["status"]["abort"] != true {
                let patch =
                    json!({ "metadata": { "resourceVersion": rv }, "status": { "abort": true } });
                if let Err(e) = self
                    .patch(&patch, true, "abort (as kubectl argo rollouts abort)")
                    .await
                {
                    return DriverError::new(format!("{failure}; aborting it failed: {e}"));
                }
                continue;
            }
            let uid = r["metadata"]["uid"].as_str().unwrap_or("").to_owned();
            let stable = r["status"]["stableRS"].as_str().unwrap_or("").to_owned();
            let sets = match self.replica_sets(&r).await {
                Ok(s) => s,
                Err(e) => {
                    return DriverError::new(format!("{failure}; aborted; the undo failed: {e}"))
                }
            };
            let Some((revision, template)) = revision_where(&uid, &sets, |rs, _| {
                rs.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)) == Some(&stable)
            }) else {
                return DriverError::new(format!(
                    "{failure}; aborted (the stable pods serve), but Rollout {name} has no stable \
                     ReplicaSet to undo to; set its template by hand"
                ));
            };
            let mut patch = merge_diff(
                &json!({ "spec": { "template": r["spec"]["template"] } }),
                &json!({ "spec": { "template": template } }),
            );
            patch["metadata"]["resourceVersion"] = rv;
            let doing = format!(
                "undo to the stable revision {revision} ({}, as kubectl argo rollouts undo)",
                version_of(&template).unwrap_or("no version annotation")
            );
            match self.patch(&patch, false, &doing).await {
                Ok(Some(_)) => {
                    undone = Some(revision);
                    break;
                }
                Ok(None) => continue,
                Err(e) => {
                    return DriverError::new(format!("{failure}; aborted; the undo failed: {e}"))
                }
            }
        }
        let Some(revision) = undone else {
            return DriverError::new(format!("{failure}; {}", self.changed_too_often("undo it")));
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = match self.get().await {
                Ok(r) => match phase(&r) {
                    Phase::Healthy => {
                        return DriverError::new(format!(
                            "{failure}; Rollout {name} was aborted and undone to its stable revision \
                             {revision} (as kubectl argo rollouts abort and undo do), which is healthy"
                        ))
                    }
                    other => format!("{other:?}"),
                },
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return DriverError::new(format!(
                    "{failure}; Rollout {name} was aborted and undone to its stable revision \
                     {revision}, not healthy yet ({now}); see `kubectl argo rollouts -n {} get \
                     rollout {name}`",
                    self.conn.ns()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `Driver::roll`: set the version, then watch, promoting through every
    /// pause, until healthy; abort and undo what fails.
    async fn roll_rollout(&self, full_id: &FullId, timeout: Duration) -> DriverResult<()> {
        self.check_model(full_id)?;
        self.set_version(full_id).await?;
        let name = self.config.rollout.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = String::new();
        loop {
            let last = match self.get().await {
                Ok(r) => {
                    // Another writer's template is never undone: fail at once.
                    self.holds(&r, full_id).map_err(|e| {
                        DriverError::new(format!("{e}: something else changed its pod template"))
                    })?;
                    let p = phase(&r);
                    let now = format!(
                        "Rollout {name} generation {} (observed {}): {p:?}{}",
                        r["metadata"]["generation"],
                        r["status"]["observedGeneration"].as_str().unwrap_or("none"),
                        r["status"]["currentStepIndex"]
                            .as_u64()
                            .map(|i| format!(", step {i}"))
                            .unwrap_or_default()
                    );
                    if now != seen {
                        self.conn.wrote(now.clone());
                        seen = now;
                    }
                    match p {
                        Phase::Healthy => return Ok(()),
                        Phase::Paused(why) => {
                            self.promote(&r, &why).await?;
                            Ok(why)
                        }
                        Phase::Degraded(why) => {
                            return Err(self
                                .abort_and_undo(
                                    format!("{full_id} did not roll out: {why}"),
                                    timeout,
                                )
                                .await)
                        }
                        Phase::Aborted(why) => {
                            return Err(self
                                .abort_and_undo(
                                    format!("{full_id}: the update was aborted ({why})"),
                                    timeout,
                                )
                                .await)
                        }
                        Phase::Stale => {
                            Ok("waiting for the rollout spec update to be observed".into())
                        }
                        Phase::Progressing(how) => Ok(how),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(match last {
                    Ok(how) => {
                        self.abort_and_undo(
                            format!(
                                "{full_id} did not roll out within {} s (Rollout {name}: {how})",
                                timeout.as_secs_f32()
                            ),
                            timeout,
                        )
                        .await
                    }
                    Err(e) => DriverError::new(format!(
                        "{full_id}: Rollout {name} could not be watched to its end: {e}"
                    )),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The Rollout holds `full_id` and is healthy.
    async fn healthy(&self, full_id: &FullId) -> DriverResult<Result<(), String>> {
        let r = self.get().await?;
        if let Err(e) = self.holds(&r, full_id) {
            return Ok(Err(e));
        }
        Ok(match phase(&r) {
            Phase::Healthy => Ok(()),
            other => Err(format!("Rollout {} is {other:?}", self.config.rollout)),
        })
    }

    fn in_place(&self, what: &str) -> DriverError {
        DriverError::new(format!(
            "an Argo Rollout is updated in place (its strategy moves the traffic); the driver does \
             not {what}: every operation on this cluster is one rolling update of Rollout {}",
            self.config.rollout
        ))
    }
}

#[async_trait]
impl Driver for ArgoRollout {
    async fn load(&self, _slot: SlotName, _full_id: &FullId) -> DriverResult<()> {
        Err(self.in_place("load a slot"))
    }

    async fn wait_ready(
        &self,
        slot: SlotName,
        full_id: &FullId,
        _timeout: Duration,
    ) -> DriverResult<()> {
        self.smoke(slot, full_id).await
    }

    async fn smoke(&self, _slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.check_model(full_id)?;
        self.healthy(full_id).await?.map_err(DriverError::new)
    }

    async fn unload(&self, _slot: SlotName) -> DriverResult<()> {
        Err(self.in_place("release a slot"))
    }

    async fn roll(&self, slot: SlotName, full_id: &FullId, timeout: Duration) -> DriverResult<()> {
        if slot != SlotName::Blue {
            return Err(DriverError::new(format!(
                "an Argo Rollout cluster keeps its Rollout in slot blue, not {slot}"
            )));
        }
        self.roll_rollout(full_id, timeout).await
    }

    async fn shift(&self, weights: Weights) -> DriverResult<()> {
        if weights == Weights::all_on(SlotName::Blue) {
            return Ok(());
        }
        Err(self.in_place("shift traffic between slots"))
    }

    async fn gate(&self, state: &ClusterState) -> DriverResult<()> {
        for (slot, v, _) in state.serving() {
            if slot != SlotName::Blue {
                return Err(DriverError::new(format!(
                    "an Argo Rollout cluster serves from slot blue, not {slot}"
                )));
            }
            self.healthy(v)
                .await?
                .map_err(|why| DriverError::new(format!("{v} is not healthy: {why}")))?;
        }
        Ok(())
    }

    /// The Rollout is slot blue and carries all traffic (its strategy splits
    /// it between its own ReplicaSets, which Switchyard does not weigh).
    async fn observe(&self) -> DriverResult<Observed> {
        self.get().await?;
        Ok(Observed {
            weights: Weights::all_on(SlotName::Blue),
        })
    }

    /// What the Rollout's pods that take traffic run: with the blueGreen
    /// strategy the Ready pods its `activeService` selects (the preview
    /// pods take none), with canary every Ready pod of the Rollout (stable
    /// and canary pods share the traffic, so a canary under way is unclear).
    /// Slot green holds nothing in this mode: nothing runs there.
    async fn running(&self, slot: SlotName) -> DriverResult<Running> {
        if slot != SlotName::Blue {
            return Ok(Running::Nothing);
        }
        let r = self.get().await?;
        let name = &self.config.rollout;
        let mut selector: LabelSelector = match &r["spec"]["selector"] {
            Value::Null => LabelSelector::default(),
            s => serde_json::from_value(s.clone()).map_err(|e| {
                DriverError::new(format!(
                    "Rollout {name}'s selector is not a label selector: {e}"
                ))
            })?,
        };
        let client = self.conn.client().await?;
        let what = match r["spec"]["strategy"]["blueGreen"]["activeService"].as_str() {
            Some(active) => {
                let services: Api<Service> = Api::namespaced(client.clone(), self.conn.ns());
                let svc = services.get(active).await.map_err(|e| {
                    api_error(&format!("activeService {active}"), self.conn.ns(), e)
                })?;
                let picks = svc.spec.and_then(|s| s.selector).unwrap_or_default();
                selector
                    .match_labels
                    .get_or_insert_with(Default::default)
                    .extend(picks);
                format!("pods of Rollout {name} behind its activeService {active}")
            }
            None => format!("pods of Rollout {name}"),
        };
        let pods = list_pods(client, self.conn.ns(), &what, selector).await?;
        Ok(running_of(
            &VersionMap {
                model: &self.config.model,
                container: &self.config.container,
                image: self.config.image.as_deref(),
                version_env: self.config.version_env.as_deref(),
            },
            &pods,
        ))
    }

    async fn traffic(&self, _slot: SlotName) -> DriverResult<Traffic> {
        Err(DriverError::new(
            "an Argo Rollout keeps no request counters; the kubernetes driver cannot judge an \
             error rate (use an analysis template)",
        ))
    }

    fn counts_traffic(&self) -> bool {
        false
    }

    fn gate_policy(&self) -> GatePolicy {
        self.config.health_gate
    }

    fn take_writes(&self) -> Vec<String> {
        self.conn.take_writes()
    }

    async fn slot_health(
        &self,
        slot: SlotName,
        version: Option<&FullId>,
    ) -> DriverResult<SlotHealth> {
        let Some(v) = version else {
            return Ok(SlotHealth::Empty);
        };
        if slot != SlotName::Blue {
            return Ok(SlotHealth::NotReady(format!(
                "an Argo Rollout cluster serves from slot blue; {slot} should hold nothing"
            )));
        }
        Ok(match self.healthy(v).await {
            Ok(Ok(())) => SlotHealth::Ready,
            Ok(Err(why)) => SlotHealth::NotReady(why),
            Err(e) => SlotHealth::NotReady(e.to_string()),
        })
    }

    async fn test(&self, state: &ClusterState) -> Vec<Check> {
        self.checks(state).await
    }
}

/// The verbs the Argo mode uses: (verb, API group, resource, subresource).
pub const PERMISSIONS: [(&str, &str, &str, &str); 6] = [
    ("get", "argoproj.io", "rollouts", ""),
    ("patch", "argoproj.io", "rollouts", ""),
    ("patch", "argoproj.io", "rollouts", "status"),
    ("list", "apps", "replicasets", ""),
    ("get", "", "services", ""),
    ("list", "", "pods", ""),
];

impl ArgoRollout {
    /// `cluster test`: reachable, Argo Rollouts installed, permitted, the
    /// Rollout and its strategy's Services in place, slot blue healthy.
    async fn checks(&self, state: &ClusterState) -> Vec<Check> {
        let mut checks = Vec::new();
        let ns = self.conn.ns().to_owned();
        let client = match self.conn.client().await {
            Ok(c) => c,
            Err(e) => {
                checks.push(Check::failed(
                    "Kubernetes credentials",
                    e.to_string(),
                    "point `kubeconfig` (and `context`) at a kubeconfig for this cluster, or run \
                     Switchyard in the cluster with a service account",
                ));
                return checks;
            }
        };
        match client.apiserver_version().await {
            Ok(v) => checks.push(Check::ok(
                "Kubernetes API server",
                format!("reachable, Kubernetes {}", v.git_version),
            )),
            Err(e) => {
                checks.push(Check::failed(
                    "Kubernetes API server",
                    api_error("GET /version", &ns, e).to_string(),
                    "check the server address in the kubeconfig and that Switchyard's host can reach it",
                ));
                return checks;
            }
        }
        let installed = match client
            .list_api_group_resources("argoproj.io/v1alpha1")
            .await
        {
            Ok(list) => list.resources.iter().any(|r| r.name == "rollouts"),
            Err(_) => false,
        };
        checks.push(if installed {
            Check::ok(
                "Argo Rollouts",
                "the API server serves rollouts.argoproj.io/v1alpha1",
            )
        } else {
            Check::failed(
                "Argo Rollouts",
                "the API server serves no rollouts in argoproj.io/v1alpha1",
                "install Argo Rollouts (its CRDs and controller) in the cluster",
            )
        });
        let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
        for (verb, group, resource, sub) in PERMISSIONS {
            let mut what = if group.is_empty() {
                resource.to_owned()
            } else {
                format!("{resource}.{group}")
            };
            if !sub.is_empty() {
                what = format!("{resource}/{sub}.{group}");
            }
            let check = format!("permission: {verb} {what}");
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(ns.clone()),
                        verb: Some(verb.to_owned()),
                        group: Some(group.to_owned()),
                        resource: Some(resource.to_owned()),
                        subresource: (!sub.is_empty()).then(|| sub.to_owned()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            checks.push(match reviews.create(&PostParams::default(), &review).await {
                Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {
                    Check::ok(check, format!("allowed in namespace {ns}"))
                }
                Ok(_) => Check::failed(
                    check,
                    format!("denied in namespace {ns}"),
                    format!(
                        "grant `{verb}` on `{what}` in namespace {ns}: apply the Role and RoleBinding \
                         of docs/clusters.md (Argo Rollouts mode)"
                    ),
                ),
                Err(e) => Check::failed(
                    check,
                    api_error("SelfSubjectAccessReview", &ns, e).to_string(),
                    "allow Switchyard to create selfsubjectaccessreviews (every authenticated user \
                     may by default)",
                ),
            });
        }
        let name = self.config.rollout.clone();
        let r = match self.get().await {
            Ok(r) => r,
            Err(e) => {
                checks.push(Check::failed(
                    format!("Rollout {name}"),
                    e.to_string(),
                    "create the Rollout of docs/clusters.md (Argo Rollouts mode) in the cluster's namespace",
                ));
                return checks;
            }
        };
        let strategy = &r["spec"]["strategy"];
        let services: Api<Service> = Api::namespaced(client, &ns);
        if strategy["blueGreen"].is_object() {
            let mut missing = Vec::new();
            for role in ["activeService", "previewService"] {
                match strategy["blueGreen"][role].as_str() {
                    None => missing.push(format!("no {role}")),
                    Some(svc) => {
                        if let Err(e) = services.get(svc).await {
                            missing.push(api_error(&format!("{role} {svc}"), &ns, e).to_string());
                        }
                    }
                }
            }
            checks.push(if missing.is_empty() {
                Check::ok(
                    format!("Rollout {name}"),
                    format!(
                        "blueGreen strategy: activeService {}, previewService {}{}",
                        strategy["blueGreen"]["activeService"]
                            .as_str()
                            .unwrap_or(""),
                        strategy["blueGreen"]["previewService"]
                            .as_str()
                            .unwrap_or(""),
                        if strategy["blueGreen"]["autoPromotionEnabled"] == false {
                            ", promoted by Switchyard"
                        } else {
                            ", promoted by the controller at once"
                        }
                    ),
                )
            } else {
                Check::failed(
                    format!("Rollout {name}"),
                    format!("blueGreen strategy: {}", missing.join("; ")),
                    "give the blueGreen strategy an activeService and a previewService that exist",
                )
            });
        } else if strategy["canary"].is_object() {
            let steps = strategy["canary"]["steps"].as_array().map_or(0, Vec::len);
            let pauses = strategy["canary"]["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["pause"].is_object())
                .count();
            checks.push(Check::ok(
                format!("Rollout {name}"),
                format!("canary strategy: {steps} steps, {pauses} pauses (promoted by Switchyard)"),
            ));
        } else {
            checks.push(Check::failed(
                format!("Rollout {name}"),
                "its strategy is neither blueGreen nor canary",
                "give the Rollout a blueGreen or canary strategy",
            ));
        }
        let has_container = r["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == self.config.container.as_str());
        if !has_container {
            checks.push(Check::failed(
                format!("Rollout {name} container"),
                format!(
                    "no container {:?} in its pod template",
                    self.config.container
                ),
                "set `container` in the cluster's config to the container that serves the model",
            ));
        }
        for slot in SlotName::ALL {
            let check = format!("slot {slot}");
            checks.push(match (slot, state.version(slot)) {
                (_, None) => Check::ok(check, "holds nothing yet"),
                (SlotName::Green, Some(v)) => Check::failed(
                    check,
                    format!("holds {v}, but an Argo Rollout cluster serves from slot blue only"),
                    "register the cluster again",
                ),
                (SlotName::Blue, Some(v)) => match self.holds(&r, v) {
                    Err(e) => Check::failed(check, e, "deploy a version with an operation"),
                    Ok(()) => match phase(&r) {
                        Phase::Healthy => Check::ok(check, format!("{v} healthy")),
                        other => Check::failed(
                            check,
                            format!("{v}: {other:?}"),
                            format!("see `kubectl argo rollouts -n {ns} get rollout {name}`"),
                        ),
                    },
                },
            });
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(generation: i64, status: Value) -> Value {
        json!({ "metadata": { "generation": generation }, "spec": { "replicas": 2 }, "status": status })
    }

    #[test]
    fn the_phase_is_read_only_when_the_status_observed_the_generation() {
        let healthy = json!({ "observedGeneration": "3", "phase": "Healthy",
            "currentPodHash": "abc", "stableRS": "abc" });
        assert_eq!(phase(&rollout(3, healthy.clone())), Phase::Healthy);
        assert_eq!(phase(&rollout(4, healthy.clone())), Phase::Stale);
        // Healthy, but the current pods are not the stable ones yet.
        let mut moving = healthy.clone();
        moving["currentPodHash"] = json!("def");
        assert!(matches!(phase(&rollout(3, moving)), Phase::Progressing(_)));
        let mut paused = healthy.clone();
        paused["phase"] = json!("Paused");
        paused["pauseConditions"] = json!([{ "reason": "CanaryPauseStep" }]);
        assert_eq!(
            phase(&rollout(3, paused)),
            Phase::Paused("CanaryPauseStep".into())
        );
        let mut aborted = healthy.clone();
        aborted["abort"] = json!(true);
        aborted["message"] = json!("RolloutAborted");
        assert_eq!(
            phase(&rollout(3, aborted)),
            Phase::Aborted("RolloutAborted".into())
        );
        let mut retried = healthy.clone();
        retried["phase"] = json!("Degraded");
        retried["message"] = json!("RolloutAborted: Rollout aborted update to revision 2");
        assert!(
            matches!(phase(&rollout(3, retried)), Phase::Progressing(m) if m.starts_with("retried"))
        );
        let mut degraded = healthy;
        degraded["phase"] = json!("Degraded");
        degraded["message"] = json!("ProgressDeadlineExceeded: timed out");
        assert!(
            matches!(phase(&rollout(3, degraded)), Phase::Degraded(m) if m.contains("ProgressDeadline"))
        );
    }

    #[test]
    fn a_config_names_the_rollout_and_refuses_deployment_fields() {
        let ok = json!({ "namespace": "serving", "model": "chat", "rollout": "chat",
            "container": "model", "image": "registry.example/chat" });
        assert!(ArgoConfig::parse(&ok).is_ok());
        let mut mixed = ok.clone();
        mixed["service"] = json!("chat");
        let e = ArgoConfig::parse(&mixed)
            .expect_err("mixed modes")
            .to_string();
        assert!(e.contains("unknown field `service`"), "{e}");
        let mut bad = ok;
        bad["rollout"] = json!("Chat");
        assert!(ArgoConfig::parse(&bad).is_err());
    }

    #[test]
    fn the_template_patch_sends_the_whole_container_list_with_one_container_changed() {
        let config = json!({ "namespace": "serving", "model": "chat", "rollout": "chat",
            "container": "model", "image": "registry.example/chat", "version_env": "MODEL_VERSION" });
        let a = ArgoRollout::new(ArgoConfig::parse(&config).expect("config"));
        let r = json!({ "metadata": { "resourceVersion": "7" }, "spec": { "template": { "spec": { "containers": [
            { "name": "model", "image": "registry.example/chat:v1", "env": [{ "name": "MODEL_VERSION", "value": "v1" }, { "name": "X", "value": "1" }] },
            { "name": "sidecar", "image": "proxy:1" } ] } } } });
        let patch = a
            .template_patch(&r, &FullId::parse("chat:v2").expect("id"))
            .expect("patch");
        assert_eq!(
            patch,
            json!({ "metadata": { "resourceVersion": "7" }, "spec": { "template": {
                "metadata": { "annotations": { VERSION_ANNOTATION: "chat:v2" } },
                "spec": { "containers": [
                    { "name": "model", "image": "registry.example/chat:v2", "env": [{ "name": "MODEL_VERSION", "value": "v2" }, { "name": "X", "value": "1" }] },
                    { "name": "sidecar", "image": "proxy:1" } ] } } } })
        );
    }
}
