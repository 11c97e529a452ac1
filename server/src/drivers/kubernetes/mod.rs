//! The `kubernetes` driver (kube-rs): one namespace, a Deployment per slot
//! and a Service whose selector picks the slot that carries traffic.
//!
//! Routing contract (docs/clusters.md): the pod template of Deployment
//! `deployments.blue` carries the label `SLOT_LABEL: blue` (green likewise),
//! and the Service's selector holds `SLOT_LABEL: blue|green` next to labels
//! both templates share. A switch is one merge patch of that selector key —
//! atomic as far as Kubernetes goes: the endpoints controller then moves the
//! Service's endpoints to the other Deployment's ready pods.
//!
//! Loading a version into the idle slot is a strategic merge patch of its
//! Deployment's pod template (the container's image tag and/or a version
//! environment variable, as `kubectl set image` / `set env` do, plus the
//! annotation `switchyard.io/version`), after which the driver waits for the
//! rollout exactly as `kubectl rollout status` judges it (observedGeneration,
//! updated, available and old replicas; `ProgressDeadlineExceeded` fails at
//! once). Every write carries the object's `resourceVersion`: a 409 Conflict
//! means someone else changed it, and the driver reads it again rather than
//! overwriting.
//!
//! Releasing a slot after a bake (`unload`) scales its Deployment to 0
//! replicas with one merge patch, recording the replica count it had in the
//! Deployment's annotation `switchyard.io/released-replicas`; the next load
//! into that slot sets that count back in the same patch as the version (and
//! drops the annotation), then waits for the rollout as any load does.
//!
//! What a slot really runs (`Driver::running`, drift) is read from the Ready
//! pods its Deployment's selector picks, each pod's serving container mapped
//! back to a version (running.rs) — not from the template Switchyard wrote.
//!
//! Traffic moves all at once: a Service selector has no weights, so split
//! weights are refused before anything moves. A `rolling` operation is
//! instead the rolling update of the serving Deployment in place, as
//! `kubectl set image` + `kubectl rollout status` + (on failure) `kubectl
//! rollout undo` do it (`Driver::roll`, in rolling.rs).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{Selector, SelectorExt};
use kube::{Client, Config};
use serde::Deserialize;
use serde_json::json;
use switchyard_domain::clusters::{ClusterState, SlotName, Weights};
use switchyard_domain::operations::{GatePolicy, Traffic};
use switchyard_domain::{DomainError, FullId};
use tokio::sync::OnceCell;

use super::{Check, Driver, DriverError, DriverResult, Observed, Running, SlotHealth};

mod rolling;
pub mod rollout;
pub mod running;

/// Checks a `kubernetes` cluster's config: an Argo Rollout (`rollout`) or
/// Deployments + Service; answers its health gate.
pub fn validate(config: &serde_json::Value) -> Result<GatePolicy, DomainError> {
    if config.get("rollout").is_some() {
        Ok(rollout::ArgoConfig::parse(config)?.health_gate)
    } else {
        Ok(KubernetesConfig::parse(config)?.health_gate)
    }
}

/// The driver of a `kubernetes` cluster for its mode.
pub fn build(config: &serde_json::Value) -> Result<std::sync::Arc<dyn Driver>, DomainError> {
    if config.get("rollout").is_some() {
        Ok(std::sync::Arc::new(rollout::ArgoRollout::new(
            rollout::ArgoConfig::parse(config)?,
        )))
    } else {
        Ok(std::sync::Arc::new(Kubernetes::new(
            KubernetesConfig::parse(config)?,
        )))
    }
}

/// The field manager of every write (`metadata.managedFields` shows it).
pub const FIELD_MANAGER: &str = "switchyard";
/// The pod template annotation that names the version a Deployment holds.
pub const VERSION_ANNOTATION: &str = "switchyard.io/version";
/// The Deployment annotation holding the replica count a released slot had
/// (a load into the slot scales it back to that).
pub const RELEASED_ANNOTATION: &str = "switchyard.io/released-replicas";
/// The label whose value (`blue`, `green`) tells the slots' pods apart.
pub const DEFAULT_SLOT_LABEL: &str = "switchyard.io/slot";

/// The revision the deployment controller gives a ReplicaSet (and the
/// Deployment, for its newest ReplicaSet).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label the controller adds to tell a Deployment's ReplicaSets apart.
const HASH_LABEL: &str = "pod-template-hash";

/// How many times a write is tried again after a 409 Conflict (each time
/// after reading the object again).
const CONFLICT_RETRIES: usize = 5;

/// The Deployment of each slot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotDeployments {
    pub blue: String,
    pub green: String,
}

/// `config` of a `kubernetes` cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file on Switchyard's host; absent: `KUBECONFIG`,
    /// `~/.kube/config`, or the pod's service account when Switchyard runs
    /// in the cluster.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (its current context if absent).
    pub context: Option<String>,
    /// Everything the driver touches lives in this namespace.
    pub namespace: String,
    /// The model the cluster serves (the model id of its versions).
    pub model: String,
    /// The Service whose selector is switched.
    pub service: String,
    pub deployments: SlotDeployments,
    /// The container of the pod template that serves the model.
    pub container: String,
    /// The image repository: a version `v` runs as `IMAGE:v`.
    pub image: Option<String>,
    /// An environment variable of the container set to the version
    /// (for servers that fetch the version themselves).
    pub version_env: Option<String>,
    #[serde(default = "default_slot_label")]
    pub slot_label: String,
    /// Kept for the operations' health gate; a Service has no request
    /// counters, so the error-rate half is never judged here.
    #[serde(default)]
    pub health_gate: GatePolicy,
}

fn default_slot_label() -> String {
    DEFAULT_SLOT_LABEL.to_owned()
}

/// A DNS-1123 label: what Kubernetes accepts as a namespace or Service name.
fn dns_label(what: &str, s: &str) -> Result<(), DomainError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "kubernetes driver config: {what} {s:?} is not a Kubernetes name \
             (lower-case letters, digits and '-', at most 63, starting and ending alphanumeric)"
        )))
    }
}

impl KubernetesConfig {
    pub fn parse(config: &serde_json::Value) -> Result<KubernetesConfig, DomainError> {
        let c: KubernetesConfig = serde_json::from_value(config.clone())
            .map_err(|e| DomainError::Invalid(format!("kubernetes driver config: {e}")))?;
        switchyard_domain::ModelId::parse(&c.model)?;
        dns_label("namespace", &c.namespace)?;
        dns_label("service", &c.service)?;
        dns_label("deployments.blue", &c.deployments.blue)?;
        dns_label("deployments.green", &c.deployments.green)?;
        dns_label("container", &c.container)?;
        if c.deployments.blue == c.deployments.green {
            return Err(DomainError::Invalid(
                "kubernetes driver config: deployments.blue and deployments.green name the same \
                 Deployment; each slot needs its own"
                    .to_owned(),
            ));
        }
        if c.image.is_none() && c.version_env.is_none() {
            return Err(DomainError::Invalid(
                "kubernetes driver config: say how a version reaches the pods: `image` (the \
                 repository; version v runs as IMAGE:v) and/or `version_env` (an environment \
                 variable set to the version)"
                    .to_owned(),
            ));
        }
        if c.slot_label.is_empty() || c.slot_label.contains(char::is_whitespace) {
            return Err(DomainError::Invalid(format!(
                "kubernetes driver config: slot_label {:?} is not a label key",
                c.slot_label
            )));
        }
        Ok(c)
    }

    pub fn deployment(&self, slot: SlotName) -> &str {
        match slot {
            SlotName::Blue => &self.deployments.blue,
            SlotName::Green => &self.deployments.green,
        }
    }
}

/// How a Deployment's rollout stands, judged as `kubectl rollout status` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Complete,
    /// Still moving; the words say how far.
    Waiting(String),
    /// It will not finish without a change (progress deadline exceeded).
    Failed(String),
}

/// `kubectl rollout status`'s judgement of a Deployment (its
/// `DeploymentStatusViewer`), in the same order.
pub fn rollout(d: &Deployment) -> Rollout {
    let name = d.metadata.name.as_deref().unwrap_or("?");
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("waiting for the deployment spec update to be observed".into());
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
    {
        if c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Rollout::Failed(format!(
                "deployment {name} exceeded its progress deadline ({})",
                c.message.as_deref().unwrap_or("no message")
            ));
        }
    }
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        return Rollout::Waiting(format!(
            "{updated} of {desired} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return Rollout::Waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Rollout::Waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Rollout::Complete
}

/// The version a pod template holds (its annotation).
fn template_version_of(t: &k8s_openapi::api::core::v1::PodTemplateSpec) -> Option<&str> {
    t.metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(VERSION_ANNOTATION)
        .map(String::as_str)
}

/// The version a Deployment's pod template holds (its annotation).
pub fn template_version(d: &Deployment) -> Option<&str> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(VERSION_ANNOTATION)
        .map(String::as_str)
}

/// The replica count to give back to a released Deployment (scaled to 0
/// with `RELEASED_ANNOTATION`): `None` when it is not released by
/// Switchyard. An annotation that is not a positive count is an error.
pub fn released_replicas(d: &Deployment) -> DriverResult<Option<i32>> {
    let name = d.metadata.name.as_deref().unwrap_or("?");
    let Some(value) = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RELEASED_ANNOTATION))
    else {
        return Ok(None);
    };
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if replicas > 0 {
        // Scaled up since (by hand): that count stands.
        return Ok(None);
    }
    match value.parse::<i32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(DriverError::new(format!(
            "Deployment {name}'s annotation {RELEASED_ANNOTATION} is {value:?}, not a replica count;              scale the Deployment by hand and remove the annotation"
        ))),
    }
}

/// The RFC 7386 merge patch that turns `from` into `to` (a member of
/// `from` missing in `to` becomes `null`; arrays are replaced whole).
pub fn merge_diff(from: &serde_json::Value, to: &serde_json::Value) -> serde_json::Value {
    match (from.as_object(), to.as_object()) {
        (Some(f), Some(t)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in t {
                match f.get(k) {
                    Some(old) if old == v => {}
                    Some(old) => {
                        patch.insert(k.clone(), merge_diff(old, v));
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in f.keys().filter(|k| !t.contains_key(*k)) {
                patch.insert(k.clone(), serde_json::Value::Null);
            }
            serde_json::Value::Object(patch)
        }
        _ => to.clone(),
    }
}

/// A pod template as the controller compares them (`EqualIgnoreHash`).
fn template_ignoring_hash(
    t: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> serde_json::Value {
    let mut v = t.map_or(serde_json::Value::Null, |t| json!(t));
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        labels.remove(HASH_LABEL);
    }
    v
}

/// The ReplicaSet `kubectl rollout undo` restores: among the ReplicaSets
/// the Deployment controls, the newest revision whose template is not the
/// Deployment's current one (kubectl's "previous revision", also when the
/// newest ReplicaSet has not been created yet).
pub fn undo_target<'a>(d: &Deployment, owned: &'a [ReplicaSet]) -> Option<(i64, &'a ReplicaSet)> {
    let current = template_ignoring_hash(d.spec.as_ref().map(|s| &s.template));
    let uid = d.metadata.uid.as_deref();
    owned
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
        })
        .filter(|rs| {
            template_ignoring_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref())) != current
        })
        .filter_map(|rs| {
            let rev = rs
                .metadata
                .annotations
                .as_ref()?
                .get(REVISION_ANNOTATION)?
                .parse::<i64>()
                .ok()?;
            Some((rev, rs))
        })
        .max_by_key(|(rev, _)| *rev)
}

/// Words for a failed API call, with what to do about it.
fn api_error(what: &str, namespace: &str, e: kube::Error) -> DriverError {
    match e {
        kube::Error::Api(s) => match s.code {
            404 => DriverError::new(format!(
                "{what}: not found in namespace {namespace} ({}); create it as docs/clusters.md shows \
                 or correct the name in the cluster's config",
                s.message
            )),
            401 => DriverError::new(format!(
                "{what}: the API server refused the credentials ({}); renew the token in the kubeconfig",
                s.message
            )),
            403 => DriverError::new(format!(
                "{what}: forbidden ({}); bind the Role of docs/clusters.md to Switchyard's identity \
                 in namespace {namespace}",
                s.message
            )),
            code => DriverError::new(format!(
                "{what}: the API server answered {code} {}: {}",
                s.reason, s.message
            )),
        },
        other => DriverError::new(format!(
            "{what}: cannot reach the Kubernetes API server: {other}"
        )),
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// A client from a kubeconfig (or `KUBECONFIG`, `~/.kube/config`, the pod's
/// service account), with timeouts so a hanging call cannot hold a step.
async fn connect(kubeconfig: Option<&PathBuf>, context: Option<&String>) -> DriverResult<Client> {
    let options = KubeConfigOptions {
        context: context.cloned(),
        ..Default::default()
    };
    let mut config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                DriverError::new(format!(
                    "cannot read the kubeconfig {}: {e}",
                    path.display()
                ))
            })?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| {
                    DriverError::new(format!(
                        "the kubeconfig {} is not usable: {e}",
                        path.display()
                    ))
                })?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| DriverError::new(format!("the default kubeconfig is not usable: {e}")))?,
        None => Config::infer().await.map_err(|e| {
            DriverError::new(format!(
                "no Kubernetes credentials: no kubeconfig and not running in a cluster ({e}); \
                             set `kubeconfig` in the cluster's config"
            ))
        })?,
    };
    // A call that hangs must not hold an operation step forever.
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(15));
    Client::try_from(config)
        .map_err(|e| DriverError::new(format!("cannot build the Kubernetes client: {e}")))
}

/// What both modes share: the client to one cluster (built on first use,
/// reading a kubeconfig is async), the namespace everything lives in, and the
/// writes not yet handed to a step record (`Driver::take_writes`).
struct Connection {
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    namespace: String,
    client: OnceCell<Client>,
    writes: std::sync::Mutex<Vec<String>>,
}

impl Connection {
    fn new(kubeconfig: Option<PathBuf>, context: Option<String>, namespace: String) -> Connection {
        Connection {
            kubeconfig,
            context,
            namespace,
            client: OnceCell::new(),
            writes: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn ns(&self) -> &str {
        &self.namespace
    }

    async fn client(&self) -> DriverResult<Client> {
        let c = self
            .client
            .get_or_try_init(|| connect(self.kubeconfig.as_ref(), self.context.as_ref()))
            .await?;
        Ok(c.clone())
    }

    /// Remembers a write for the step's record: object, patch, what it became.
    fn wrote(&self, what: String) {
        tracing::info!(namespace = self.ns(), "{what}");
        if let Ok(mut w) = self.writes.lock() {
            w.push(what);
        }
    }

    fn take_writes(&self) -> Vec<String> {
        self.writes
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

/// The parameters of every write: Switchyard as the field manager.
fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    }
}

/// Read, compute, write — again after each 409 Conflict, never overwriting:
/// `attempt` reads the object and sends its write guarded by the
/// resourceVersion it read, answering `Some` when done and `None` on a 409.
/// After `CONFLICT_RETRIES` conflicts: an error saying that `object` keeps
/// changing while Switchyard was `doing` it.
async fn retry_conflicts<T, F, Fut>(object: &str, doing: &str, mut attempt: F) -> DriverResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DriverResult<Option<T>>>,
{
    for _ in 0..CONFLICT_RETRIES {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(DriverError::new(format!(
        "{object} changed {CONFLICT_RETRIES} times while Switchyard {doing} (409 Conflict); \
         something else keeps writing it"
    )))
}

pub struct Kubernetes {
    config: KubernetesConfig,
    conn: Connection,
}

/// The pods in `namespace` that `selector` (a Deployment's or Rollout's,
/// with any further terms) picks; `what` names them in errors.
pub(crate) async fn list_pods(
    client: Client,
    namespace: &str,
    what: &str,
    selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> DriverResult<Vec<Pod>> {
    let selector = Selector::try_from(selector)
        .map_err(|e| DriverError::new(format!("{what}: the selector is not usable: {e}")))?;
    if selector.selects_all() {
        return Err(DriverError::new(format!(
            "{what}: the selector is empty, so it would pick every pod in namespace {namespace}; \
             give it the labels of the pod template"
        )));
    }
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let pods = api
        .list(&ListParams::default().labels_from(&selector))
        .await
        .map_err(|e| api_error(what, namespace, e))?
        .items;
    // The API server filtered already; a selector it did not fully apply must not widen the set.
    Ok(pods
        .into_iter()
        .filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&Default::default())))
        .collect())
}

impl Kubernetes {
    /// How a version shows in the serving container.
    fn version_map(&self) -> running::VersionMap<'_> {
        running::VersionMap {
            model: &self.config.model,
            container: &self.config.container,
            image: self.config.image.as_deref(),
            version_env: self.config.version_env.as_deref(),
        }
    }

    pub fn new(config: KubernetesConfig) -> Kubernetes {
        let conn = Connection::new(
            config.kubeconfig.clone(),
            config.context.clone(),
            config.namespace.clone(),
        );
        Kubernetes { config, conn }
    }

    async fn deployments(&self) -> DriverResult<Api<Deployment>> {
        Ok(Api::namespaced(
            self.conn.client().await?,
            &self.config.namespace,
        ))
    }

    async fn services(&self) -> DriverResult<Api<Service>> {
        Ok(Api::namespaced(
            self.conn.client().await?,
            &self.config.namespace,
        ))
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

    async fn get_deployment(&self, slot: SlotName) -> DriverResult<Deployment> {
        let name = self.config.deployment(slot);
        self.deployments()
            .await?
            .get(name)
            .await
            .map_err(|e| api_error(&format!("Deployment {name}"), self.conn.ns(), e))
    }

    async fn get_service(&self) -> DriverResult<Service> {
        let name = &self.config.service;
        self.services()
            .await?
            .get(name)
            .await
            .map_err(|e| api_error(&format!("Service {name}"), self.conn.ns(), e))
    }

    /// Which slot the Service's selector picks.
    fn selected(&self, s: &Service) -> DriverResult<SlotName> {
        let name = &self.config.service;
        let label = &self.config.slot_label;
        let value = s
            .spec
            .as_ref()
            .and_then(|spec| spec.selector.as_ref())
            .and_then(|sel| sel.get(label))
            .ok_or_else(|| {
                DriverError::new(format!(
                    "Service {name}'s selector has no {label} label, so Switchyard cannot switch it; \
                     add `{label}: blue` to its selector"
                ))
            })?;
        value.parse::<SlotName>().map_err(|_| {
            DriverError::new(format!(
                "Service {name}'s selector picks {label}={value}; expected blue or green"
            ))
        })
    }

    /// What the slot's Deployment must look like for the contract: its pod
    /// template labelled with the slot, with the serving container.
    fn deployment_contract(&self, slot: SlotName, d: &Deployment) -> Result<(), (String, String)> {
        let name = self.config.deployment(slot);
        let label = &self.config.slot_label;
        let spec = d
            .spec
            .as_ref()
            .ok_or_else(|| (format!("Deployment {name} has no spec"), String::new()))?;
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        if labels.get(label).map(String::as_str) != Some(slot.as_str()) {
            return Err((
                format!(
                    "Deployment {name}'s pod template is labelled {label}={}",
                    labels.get(label).map_or("(none)", String::as_str)
                ),
                format!(
                    "label its pod template (and its selector) `{label}: {slot}`; the Service picks \
                     a slot by that label"
                ),
            ));
        }
        let containers = spec
            .template
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        if !containers.iter().any(|c| c.name == self.config.container) {
            let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
            return Err((
                format!(
                    "Deployment {name} has no container {:?} (it has {})",
                    self.config.container,
                    names.join(", ")
                ),
                "set `container` in the cluster's config to the container that serves the model"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The strategic merge patch that puts `full_id` into a pod template,
    /// guarded by the `resourceVersion` it was computed from.
    pub fn template_patch(
        &self,
        full_id: &FullId,
        resource_version: &str,
    ) -> DriverResult<serde_json::Value> {
        let version = full_id.version.as_str();
        let mut container = json!({ "name": self.config.container });
        if let Some(image) = &self.config.image {
            // An image tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}: '+' is not allowed.
            if version.contains('+') {
                return Err(DriverError::new(format!(
                    "version {version} cannot be an image tag ('+' is not allowed in tags); \
                     set `version_env` in the cluster's config instead of `image`"
                )));
            }
            container["image"] = json!(format!("{image}:{version}"));
        }
        if let Some(env) = &self.config.version_env {
            container["env"] = json!([{ "name": env, "value": version }]);
        }
        Ok(json!({
            "metadata": { "resourceVersion": resource_version },
            "spec": { "template": {
                "metadata": { "annotations": { VERSION_ANNOTATION: full_id.to_string() } },
                "spec": { "containers": [container] }
            } }
        }))
    }

    /// `kubectl rollout undo` of the slot's Deployment: its pod template set
    /// back to the previous revision's ReplicaSet's (without the
    /// `pod-template-hash` label), as one merge patch guarded by the
    /// resourceVersion. Unlike kubectl, the Deployment's own annotations are
    /// left alone (kubectl replaces them with the ReplicaSet's, which would
    /// drop another writer's). Answers what it did, for the step's record.
    pub async fn undo(&self, slot: SlotName) -> DriverResult<String> {
        let name = self.config.deployment(slot);
        let api = self.deployments().await?;
        let replica_sets: Api<ReplicaSet> =
            Api::namespaced(self.conn.client().await?, &self.config.namespace);
        let (api, replica_sets) = (&api, &replica_sets);
        retry_conflicts(&format!("Deployment {name}"), "rolled it back", move || async move {
            let d = self.get_deployment(slot).await?;
            let selector: Vec<String> = d
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.as_ref())
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let owned = replica_sets
                .list(&ListParams::default().labels(&selector.join(",")))
                .await
                .map_err(|e| api_error(&format!("ReplicaSets of Deployment {name}"), self.conn.ns(), e))?
                .items;
            let Some((revision, rs)) = undo_target(&d, &owned) else {
                return Err(DriverError::new(format!(
                    "Deployment {name} has no earlier revision to go back to (no ReplicaSet of it \
                     with another pod template); set its pod template by hand"
                )));
            };
            let mut template = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.clone())
                .unwrap_or_default();
            if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                labels.remove(HASH_LABEL);
            }
            let rv = d.metadata.resource_version.clone().unwrap_or_default();
            let before = json!({ "spec": { "template": d.spec.as_ref().map(|s| &s.template) } });
            let wanted = json!({ "spec": { "template": template } });
            let mut patch = merge_diff(&before, &wanted);
            patch["metadata"]["resourceVersion"] = json!(rv);
            let rs_name = rs.metadata.name.as_deref().unwrap_or("?");
            match api
                .patch(name, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(after) => {
                    let what = format!(
                        "rolled back Deployment {name} to revision {revision} (ReplicaSet {rs_name}'s \
                         pod template, {}) with merge patch {patch}: generation {}, resourceVersion {}",
                        template_version_of(&template).unwrap_or("no version annotation"),
                        after.metadata.generation.unwrap_or(0),
                        after.metadata.resource_version.as_deref().unwrap_or("?")
                    );
                    self.conn.wrote(what.clone());
                    Ok(Some(what))
                }
                Err(e) if is_conflict(&e) => Ok(None),
                Err(e) => Err(api_error(&format!("Deployment {name}"), self.conn.ns(), e)),
            }
                })
        .await
    }

    /// A load that did not become ready: undo it, so the idle Deployment
    /// does not stay on a template that cannot run; the words say both.
    async fn undo_failed_load(&self, slot: SlotName, failure: String) -> DriverError {
        match self.undo(slot).await {
            Ok(_) => DriverError::new(format!(
                "{failure}; Deployment {} was rolled back to its previous revision (as kubectl \
                 rollout undo does)",
                self.config.deployment(slot)
            )),
            Err(e) => DriverError::new(format!(
                "{failure}; rolling Deployment {} back failed too: {e}",
                self.config.deployment(slot)
            )),
        }
    }

    /// The slot's Deployment holds `full_id` and its rollout is complete.
    async fn rolled_out(&self, slot: SlotName, full_id: &FullId) -> DriverResult<Rollout> {
        let d = self.get_deployment(slot).await?;
        self.rolled_out_of(slot, &d, full_id)
    }

    /// `rolled_out` of a Deployment already read: an error when its pod
    /// template holds another version than `full_id` (what runs is not what
    /// Switchyard set).
    fn rolled_out_of(
        &self,
        slot: SlotName,
        d: &Deployment,
        full_id: &FullId,
    ) -> DriverResult<Rollout> {
        let name = self.config.deployment(slot);
        let held = template_version(&d);
        if held != Some(full_id.to_string().as_str()) {
            return Err(DriverError::new(format!(
                "Deployment {name} holds {}, not {full_id}: something else changed its pod template",
                held.unwrap_or("no version")
            )));
        }
        // The annotation is Switchyard's; the image and variable are what runs.
        let container = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| c.name == self.config.container)
            });
        let version = full_id.version.as_str();
        if let Some(image) = &self.config.image {
            let wanted = format!("{image}:{version}");
            let runs = container.and_then(|c| c.image.as_deref());
            if runs != Some(wanted.as_str()) {
                return Err(DriverError::new(format!(
                    "Deployment {name} runs {} in container {}, not {wanted}: something else changed its pod template",
                    runs.unwrap_or("no image"),
                    self.config.container
                )));
            }
        }
        if let Some(env) = &self.config.version_env {
            let value = container
                .and_then(|c| c.env.as_ref())
                .and_then(|e| e.iter().find(|v| &v.name == env))
                .and_then(|v| v.value.as_deref());
            if value != Some(version) {
                return Err(DriverError::new(format!(
                    "Deployment {name} sets {env}={} in container {}, not {version}: something else changed its pod template",
                    value.unwrap_or("(unset)"),
                    self.config.container
                )));
            }
        }
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if replicas < 1 {
            return Ok(Rollout::Failed(format!(
                "Deployment {name} is scaled to 0 replicas: nothing can serve; scale it up"
            )));
        }
        Ok(rollout(&d))
    }
}

#[async_trait]
impl Driver for Kubernetes {
    async fn load(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.check_model(full_id)?;
        let name = self.config.deployment(slot);
        let api = self.deployments().await?;
        let api = &api;
        retry_conflicts(
            &format!("Deployment {name}"),
            "patched it",
            move || async move {
                let d = self.get_deployment(slot).await?;
                self.deployment_contract(slot, &d)
                    .map_err(|(found, fix)| DriverError::new(format!("{found}: {fix}")))?;
                let rv = d.metadata.resource_version.clone().unwrap_or_default();
                let mut patch = self.template_patch(full_id, &rv)?;
                let has_annotation = d
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(RELEASED_ANNOTATION));
                // A released slot gets its replicas back with the version.
                if let Some(n) = released_replicas(&d)? {
                    patch["spec"]["replicas"] = json!(n);
                }
                if has_annotation {
                    patch["metadata"]["annotations"] = json!({ RELEASED_ANNOTATION: null });
                }
                match api
                    .patch(name, &patch_params(), &Patch::Strategic(&patch))
                    .await
                {
                    Ok(after) => {
                        self.conn.wrote(format!(
                        "patched Deployment {name} (strategic merge) with {patch}: generation {}, \
                         resourceVersion {}",
                        after.metadata.generation.unwrap_or(0),
                        after.metadata.resource_version.as_deref().unwrap_or("?")
                    ));
                        Ok(Some(()))
                    }
                    Err(e) if is_conflict(&e) => Ok(None),
                    Err(e) => Err(api_error(&format!("Deployment {name}"), self.conn.ns(), e)),
                }
            },
        )
        .await
    }

    /// Scales the slot's Deployment to 0 replicas (a merge patch guarded by
    /// the resourceVersion), keeping the count it had in
    /// `RELEASED_ANNOTATION` for the next load. Already at 0: nothing to do
    /// (a release run again after a crash).
    async fn unload(&self, slot: SlotName) -> DriverResult<()> {
        let name = self.config.deployment(slot);
        let api = self.deployments().await?;
        let api = &api;
        retry_conflicts(&format!("Deployment {name}"), "scaled it to 0", move || async move {
            let d = self.get_deployment(slot).await?;
            let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if replicas < 1 {
                return Ok(Some(()));
            }
            let rv = d.metadata.resource_version.clone().unwrap_or_default();
            let patch = json!({
                "metadata": {
                    "resourceVersion": rv,
                    "annotations": { RELEASED_ANNOTATION: replicas.to_string() }
                },
                "spec": { "replicas": 0 }
            });
            match api
                .patch(name, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(after) => {
                    self.conn.wrote(format!(
                        "scaled Deployment {name} from {replicas} to 0 replicas (merge) with {patch}: \
                         generation {}, resourceVersion {}",
                        after.metadata.generation.unwrap_or(0),
                        after.metadata.resource_version.as_deref().unwrap_or("?")
                    ));
                    Ok(Some(()))
                }
                Err(e) if is_conflict(&e) => Ok(None),
                Err(e) => Err(api_error(&format!("Deployment {name}"), self.conn.ns(), e)),
            }
                })
        .await
    }

    async fn wait_ready(
        &self,
        slot: SlotName,
        full_id: &FullId,
        timeout: Duration,
    ) -> DriverResult<()> {
        self.check_model(full_id)?;
        let name = self.config.deployment(slot);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut ours = true;
            let last = match self.rolled_out(slot, full_id).await {
                Ok(Rollout::Complete) => return Ok(()),
                Ok(Rollout::Failed(why)) => {
                    let failure = format!(
                        "{full_id} in {slot} did not become ready: {why}; traffic stays where it was"
                    );
                    // Scaled to 0 is not the template's fault: nothing to undo.
                    let scaled_to_zero = self
                        .get_deployment(slot)
                        .await
                        .ok()
                        .and_then(|d| d.spec.and_then(|s| s.replicas))
                        .is_some_and(|r| r < 1);
                    if scaled_to_zero {
                        return Err(DriverError::new(failure));
                    }
                    return Err(self.undo_failed_load(slot, failure).await);
                }
                Ok(Rollout::Waiting(how)) => how,
                // The API server may be briefly away; keep asking until the deadline.
                Err(e) => {
                    ours = false;
                    e.to_string()
                }
            };
            if tokio::time::Instant::now() >= deadline {
                let failure = format!(
                    "{full_id} in {slot} did not become ready within {} s (Deployment {name}: {last})",
                    timeout.as_secs_f32()
                );
                // Only Switchyard's own template is undone (never another writer's).
                if !ours {
                    return Err(DriverError::new(failure));
                }
                return Err(self.undo_failed_load(slot, failure).await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A Service routes to pods, which Switchyard may not reach directly:
    /// the smoke check reads the slot's Deployment once more just before
    /// the switch — it still holds `full_id`, fully rolled out and available.
    async fn smoke(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.check_model(full_id)?;
        match self.rolled_out(slot, full_id).await? {
            Rollout::Complete => Ok(()),
            Rollout::Waiting(why) | Rollout::Failed(why) => Err(DriverError::new(format!(
                "{full_id} in {slot} is no longer ready: {why}"
            ))),
        }
    }

    async fn roll(&self, slot: SlotName, full_id: &FullId, timeout: Duration) -> DriverResult<()> {
        self.roll_in_place(slot, full_id, timeout).await
    }

    async fn shift(&self, weights: Weights) -> DriverResult<()> {
        let Some(slot) = weights.sole() else {
            return Err(DriverError::new(
                "a Kubernetes Service selector sends all traffic to one slot; split weights \
                 are not possible with the kubernetes driver (a `rolling` operation updates the \
                 serving Deployment in place instead)",
            ));
        };
        let name = &self.config.service;
        let api = self.services().await?;
        let api = &api;
        retry_conflicts(
            &format!("Service {name}"),
            "patched it",
            move || async move {
                let s = self.get_service().await?;
                if self.selected(&s)? == slot {
                    // Already there (an interrupted switch being run again).
                    return Ok(Some(()));
                }
                let rv = s.metadata.resource_version.clone().unwrap_or_default();
                let patch = json!({
                    "metadata": { "resourceVersion": rv },
                    "spec": { "selector": { self.config.slot_label.as_str(): slot.as_str() } }
                });
                match api
                    .patch(name, &patch_params(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(after) => {
                        self.conn.wrote(format!(
                            "patched Service {name} (merge) with {patch}: resourceVersion {}",
                            after.metadata.resource_version.as_deref().unwrap_or("?")
                        ));
                        Ok(Some(()))
                    }
                    Err(e) if is_conflict(&e) => Ok(None),
                    Err(e) => Err(api_error(&format!("Service {name}"), self.conn.ns(), e)),
                }
            },
        )
        .await
    }

    async fn gate(&self, state: &ClusterState) -> DriverResult<()> {
        let selected = self.selected(&self.get_service().await?)?;
        for (slot, v, _) in state.serving() {
            if slot != selected {
                return Err(DriverError::new(format!(
                    "Service {} selects {selected}, not {slot}",
                    self.config.service
                )));
            }
            if let Rollout::Waiting(why) | Rollout::Failed(why) = self.rolled_out(slot, v).await? {
                return Err(DriverError::new(format!(
                    "{v} in {slot} is not ready: {why}"
                )));
            }
        }
        Ok(())
    }

    async fn observe(&self) -> DriverResult<Observed> {
        let slot = self.selected(&self.get_service().await?)?;
        Ok(Observed {
            weights: Weights::all_on(slot),
        })
    }

    /// What the Ready pods of the slot's Deployment (the pods its selector
    /// picks) run, read from their serving container (see running.rs).
    async fn running(&self, slot: SlotName) -> DriverResult<Running> {
        let name = self.config.deployment(slot);
        let d = self.get_deployment(slot).await?;
        let selector = d.spec.map(|s| s.selector).unwrap_or_default();
        let what = format!("pods of Deployment {name}");
        let pods = list_pods(self.conn.client().await?, self.conn.ns(), &what, selector).await?;
        Ok(running::running_of(&self.version_map(), &pods))
    }

    async fn traffic(&self, _slot: SlotName) -> DriverResult<Traffic> {
        Err(DriverError::new(
            "a Kubernetes Service keeps no request counters; the kubernetes driver cannot judge \
             an error rate",
        ))
    }

    fn gate_policy(&self) -> GatePolicy {
        self.config.health_gate
    }

    fn counts_traffic(&self) -> bool {
        false
    }

    fn take_writes(&self) -> Vec<String> {
        self.conn.take_writes()
    }

    async fn test(&self, state: &ClusterState) -> Vec<Check> {
        self.contract_checks(state).await
    }

    async fn slot_health(
        &self,
        slot: SlotName,
        version: Option<&FullId>,
    ) -> DriverResult<SlotHealth> {
        let Some(v) = version else {
            return Ok(SlotHealth::Empty);
        };
        Ok(match self.rolled_out(slot, v).await {
            Ok(Rollout::Complete) => SlotHealth::Ready,
            Ok(Rollout::Waiting(why)) | Ok(Rollout::Failed(why)) => SlotHealth::NotReady(why),
            Err(e) => SlotHealth::NotReady(e.to_string()),
        })
    }
}

/// The verbs the driver uses: (verb, API group, resource).
pub const PERMISSIONS: [(&str, &str, &str); 6] = [
    ("get", "apps", "deployments"),
    ("patch", "apps", "deployments"),
    ("list", "apps", "replicasets"),
    ("get", "", "services"),
    ("patch", "", "services"),
    ("list", "", "pods"),
];

impl Kubernetes {
    /// `cluster test`: reachable, permitted, the contract in place, each slot ready.
    async fn contract_checks(&self, state: &ClusterState) -> Vec<Check> {
        let mut checks = Vec::new();
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
                    api_error("GET /version", self.conn.ns(), e).to_string(),
                    "check the server address in the kubeconfig and that Switchyard's host can reach it",
                ));
                return checks;
            }
        }
        let reviews: Api<SelfSubjectAccessReview> = Api::all(client);
        for (verb, group, resource) in PERMISSIONS {
            let what = if group.is_empty() {
                resource.to_owned()
            } else {
                format!("{resource}.{group}")
            };
            let check = format!("permission: {verb} {what}");
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(self.config.namespace.clone()),
                        verb: Some(verb.to_owned()),
                        group: Some(group.to_owned()),
                        resource: Some(resource.to_owned()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            checks.push(
                match reviews.create(&PostParams::default(), &review).await {
                    Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => Check::ok(
                        check,
                        format!("allowed in namespace {}", self.config.namespace),
                    ),
                    Ok(r) => Check::failed(
                        check,
                        format!(
                            "denied in namespace {}{}",
                            self.config.namespace,
                            r.status
                                .and_then(|s| s.reason)
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        ),
                        format!(
                            "grant `{verb}` on `{what}` in namespace {}: apply the Role and RoleBinding \
                             of docs/clusters.md",
                            self.config.namespace
                        ),
                    ),
                    Err(e) => Check::failed(
                        check,
                        api_error("SelfSubjectAccessReview", self.conn.ns(), e).to_string(),
                        "allow Switchyard to create selfsubjectaccessreviews (every authenticated \
                         user may by default)",
                    ),
                },
            );
        }
        let service = self.get_service().await;
        let selector = match &service {
            Ok(s) => {
                let sel = s
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.selector.clone())
                    .unwrap_or_default();
                match self.selected(s) {
                    Ok(slot) => checks.push(Check::ok(
                        format!("Service {}", self.config.service),
                        format!("selects {}={slot}", self.config.slot_label),
                    )),
                    Err(e) => checks.push(Check::failed(
                        format!("Service {}", self.config.service),
                        e.to_string(),
                        format!(
                            "the Service's selector must hold `{}: blue` or `{}: green`",
                            self.config.slot_label, self.config.slot_label
                        ),
                    )),
                }
                Some(sel)
            }
            Err(e) => {
                checks.push(Check::failed(
                    format!("Service {}", self.config.service),
                    e.to_string(),
                    "create the Service of docs/clusters.md in the cluster's namespace",
                ));
                None
            }
        };
        for slot in SlotName::ALL {
            let name = self.config.deployment(slot);
            let check = format!("Deployment {name} ({slot})");
            let d = match self.get_deployment(slot).await {
                Ok(d) => d,
                Err(e) => {
                    checks.push(Check::failed(
                        check,
                        e.to_string(),
                        "create the slot's Deployment as docs/clusters.md shows",
                    ));
                    continue;
                }
            };
            if let Err((found, fix)) = self.deployment_contract(slot, &d) {
                checks.push(Check::failed(check, found, fix));
                continue;
            }
            // The Service must select this Deployment's pods once its slot label points here.
            if let Some(sel) = &selector {
                let labels = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                let missing: Vec<String> = sel
                    .iter()
                    .filter(|(k, _)| **k != self.config.slot_label)
                    .filter(|(k, v)| labels.get(*k) != Some(*v))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                if !missing.is_empty() {
                    checks.push(Check::failed(
                        check,
                        format!(
                            "Service {} would select none of its pods: the pod template lacks {}",
                            self.config.service,
                            missing.join(", ")
                        ),
                        "give both Deployments' pod templates every label of the Service's selector \
                         but the slot label",
                    ));
                    continue;
                }
            }
            checks.push(Check::ok(
                check,
                format!(
                    "pod template labelled {}={slot}, container {}",
                    self.config.slot_label, self.config.container
                ),
            ));
        }
        for slot in SlotName::ALL {
            let check = format!("slot {slot}");
            checks.push(match state.version(slot) {
                None => Check::ok(check, "holds nothing yet"),
                Some(v) => match self.rolled_out(slot, v).await {
                    Ok(Rollout::Complete) => {
                        Check::ok(check, format!("{v} rolled out and available"))
                    }
                    Ok(Rollout::Waiting(why)) | Ok(Rollout::Failed(why)) => Check::failed(
                        check,
                        format!("{v} is not ready: {why}"),
                        format!(
                            "see `kubectl -n {} rollout status deployment/{}`",
                            self.config.namespace,
                            self.config.deployment(slot)
                        ),
                    ),
                    Err(e) => Check::failed(
                        check,
                        e.to_string(),
                        "deploy a version to the slot again with an operation",
                    ),
                },
            });
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn config() -> serde_json::Value {
        json!({
            "namespace": "serving", "model": "chat", "service": "chat",
            "deployments": { "blue": "chat-blue", "green": "chat-green" },
            "container": "model", "image": "registry.example/chat"
        })
    }

    fn deployment(generation: i64, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("chat-green".into()),
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    #[test]
    fn a_config_names_a_namespace_and_how_a_version_reaches_the_pods() {
        assert!(KubernetesConfig::parse(&config()).is_ok());
        let mut c = config();
        c.as_object_mut().map(|o| o.remove("namespace"));
        let e = KubernetesConfig::parse(&c)
            .expect_err("no namespace")
            .to_string();
        assert!(e.contains("namespace"), "{e}");
        let mut c = config();
        c["replicas"] = json!(3);
        let e = KubernetesConfig::parse(&c)
            .expect_err("unknown field")
            .to_string();
        assert!(e.contains("unknown field `replicas`"), "{e}");
        let mut c = config();
        c.as_object_mut().map(|o| o.remove("image"));
        let e = KubernetesConfig::parse(&c)
            .expect_err("no image")
            .to_string();
        assert!(e.contains("version_env"), "{e}");
        let mut c = config();
        c["namespace"] = json!("Serving");
        assert!(KubernetesConfig::parse(&c).is_err());
        let mut c = config();
        c["deployments"]["green"] = json!("chat-blue");
        assert!(KubernetesConfig::parse(&c).is_err());
    }

    #[test]
    fn a_rollout_is_complete_only_as_kubectl_rollout_status_judges_it() {
        let done = DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(2),
            updated_replicas: Some(2),
            ready_replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        };
        assert_eq!(rollout(&deployment(2, done.clone())), Rollout::Complete);
        // The controller has not seen generation 3 yet: the old status says nothing.
        assert!(matches!(
            rollout(&deployment(3, done.clone())),
            Rollout::Waiting(_)
        ));
        let old_pods_left = DeploymentStatus {
            replicas: Some(3),
            ..done.clone()
        };
        assert!(
            matches!(rollout(&deployment(2, old_pods_left)), Rollout::Waiting(w) if w.contains("old replicas"))
        );
        let unavailable = DeploymentStatus {
            available_replicas: Some(1),
            ..done.clone()
        };
        assert!(
            matches!(rollout(&deployment(2, unavailable)), Rollout::Waiting(w) if w.contains("1 of 2"))
        );
        let stuck = DeploymentStatus {
            available_replicas: Some(0),
            conditions: Some(vec![DeploymentCondition {
                type_: "Progressing".into(),
                status: "False".into(),
                reason: Some("ProgressDeadlineExceeded".into()),
                message: Some("ReplicaSet \"chat-green-1\" has timed out progressing.".into()),
                ..Default::default()
            }]),
            ..done
        };
        assert!(
            matches!(rollout(&deployment(2, stuck)), Rollout::Failed(w) if w.contains("progress deadline"))
        );
    }

    #[test]
    fn the_template_patch_sets_image_tag_and_annotation_guarded_by_resource_version() {
        let k = Kubernetes::new(KubernetesConfig::parse(&config()).expect("config"));
        let v = FullId::parse("chat:v2").expect("id");
        assert_eq!(
            k.template_patch(&v, "41").expect("patch"),
            json!({
                "metadata": { "resourceVersion": "41" },
                "spec": { "template": {
                    "metadata": { "annotations": { "switchyard.io/version": "chat:v2" } },
                    "spec": { "containers": [ { "name": "model", "image": "registry.example/chat:v2" } ] }
                } }
            })
        );
        let plus = FullId::parse("chat:1.0+b7").expect("id");
        let e = k
            .template_patch(&plus, "41")
            .expect_err("not a tag")
            .to_string();
        assert!(e.contains("version_env"), "{e}");
    }

    #[test]
    fn a_merge_diff_turns_one_template_into_the_other_and_nothing_more() {
        let from = json!({ "spec": { "template": {
            "metadata": { "labels": { "app": "chat" }, "annotations": { "a": "1", "gone": "x" } },
            "spec": { "containers": [{ "name": "model", "image": "i:v9" }] } } } });
        let to = json!({ "spec": { "template": {
            "metadata": { "labels": { "app": "chat" }, "annotations": { "a": "1" } },
            "spec": { "containers": [{ "name": "model", "image": "i:v1" }] } } } });
        let patch = merge_diff(&from, &to);
        assert_eq!(
            patch,
            json!({ "spec": { "template": {
                "metadata": { "annotations": { "gone": null } },
                "spec": { "containers": [{ "name": "model", "image": "i:v1" }] } } } })
        );
        assert_eq!(merge_diff(&to, &to), json!({}));
    }

    #[test]
    fn a_released_deployment_gets_back_the_replicas_its_annotation_holds() {
        let d = |replicas: i32, annotation: Option<&str>| -> Deployment {
            let mut v = json!({ "metadata": { "name": "chat-green" },
                "spec": { "replicas": replicas, "selector": {}, "template": {} } });
            if let Some(a) = annotation {
                v["metadata"]["annotations"] = json!({ RELEASED_ANNOTATION: a });
            }
            serde_json::from_value(v).expect("deployment")
        };
        assert_eq!(released_replicas(&d(0, Some("3"))).expect("count"), Some(3));
        // Not released by Switchyard, or scaled up by hand since: left as it is.
        assert_eq!(released_replicas(&d(0, None)).expect("none"), None);
        assert_eq!(released_replicas(&d(2, Some("3"))).expect("none"), None);
        for bad in ["many", "0", "-1", ""] {
            let e = released_replicas(&d(0, Some(bad)))
                .expect_err("not a count")
                .to_string();
            assert!(e.contains(RELEASED_ANNOTATION), "{e}");
        }
    }

    fn replica_set(name: &str, owner: &str, revision: &str, image: &str, hash: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": { "name": name, "annotations": { REVISION_ANNOTATION: revision },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": "chat-green",
                    "uid": owner, "controller": true }] },
            "spec": { "selector": {}, "template": {
                "metadata": { "labels": { "app": "chat", HASH_LABEL: hash } },
                "spec": { "containers": [{ "name": "model", "image": image }] } } }
        }))
        .expect("replica set")
    }

    #[test]
    fn undo_picks_the_newest_owned_revision_with_another_template() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": { "name": "chat-green", "uid": "u1" },
            "spec": { "selector": {}, "template": {
                "metadata": { "labels": { "app": "chat" } },
                "spec": { "containers": [{ "name": "model", "image": "i:v9" }] } } }
        }))
        .expect("deployment");
        let sets = [
            replica_set("a", "u1", "1", "i:v1", "h1"),
            replica_set("b", "u1", "2", "i:v2", "h2"),
            replica_set("c", "u1", "3", "i:v9", "h3"),
            replica_set("other", "u2", "7", "i:v7", "h7"),
        ];
        let (rev, rs) = undo_target(&d, &sets).expect("a target");
        assert_eq!((rev, rs.metadata.name.as_deref()), (2, Some("b")));
        // Before the controller made the new ReplicaSet: still the newest other one.
        let (rev, _) = undo_target(&d, &sets[..2]).expect("a target");
        assert_eq!(rev, 2);
        // Only the current template: nothing to go back to.
        assert!(undo_target(&d, &sets[2..]).is_none());
    }
}
