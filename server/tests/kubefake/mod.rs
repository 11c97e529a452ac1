//! A fake Kubernetes API server for tests: Kubernetes is the one peer that
//! cannot run on these machines (no API server package, no containers), so
//! the kubernetes driver is tested against this — held to the real wire
//! format by the real `kubectl`, which reads and writes it in
//! tests/kubernetes.rs.
//!
//! It follows the API's rules for what the driver and kubectl use:
//! discovery (`/version`, `/api`, `/apis`, the group versions' resource
//! lists), Deployments and Services in namespaces (GET, LIST with
//! `fieldSelector=metadata.name=`, WATCH streams from a `resourceVersion`,
//! POST, PUT, DELETE, PATCH as JSON merge patch, strategic merge patch
//! with the merge keys of the objects used and JSON patch, the `status`
//! subresource),
//! `resourceVersion` on every change with 409 Conflict for a stale one,
//! `metadata.generation` bumped by spec changes only, Status objects for
//! errors, SelfSubjectAccessReview, and 403 for denied verbs. A small
//! controller rolls Deployments forward over time as the deployment
//! controller reports it (observedGeneration lags the generation, updated
//! then available replicas climb), or, for a template containing a marker
//! set with `fail_marker`, never makes the new pods available and reports
//! `ProgressDeadlineExceeded` after `spec.progressDeadlineSeconds`.
//! The controller keeps the ReplicaSets of each Deployment as the real one
//! does for `kubectl rollout history` / `rollout undo` (one per pod template,
//! owned by the Deployment, `pod-template-hash`, revision annotations, an
//! old template coming back under the next revision); ReplicaSets are
//! listed with `labelSelector`. Pods follow the controllers' status (a
//! Deployment's `updatedReplicas` pods of its new ReplicaSet, the rest kept
//! from the old ones; a Rollout's stable and current ReplicaSets), each
//! labelled from its template with the hash, owned by its ReplicaSet, with
//! the template's containers and a `Ready` condition (never `True` for a
//! template with a fail marker); listed with `labelSelector` as well.
//! JSON patch (RFC 6902) too, which kubectl sends for `patch --type=json`.
//! Argo Rollouts' `Rollout` (argoproj.io/v1alpha1) is served as the API
//! server serves a CRD (its group in discovery, its resource list, merge and
//! JSON patches but 415 for a strategic merge patch, the `status`
//! subresource), moved by the small controller of rollouts.rs.
//! Not implemented (415): server-side apply, which the driver does not send.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod rollouts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deployment,
    Service,
    ReplicaSet,
    /// Argo Rollouts' `Rollout` (argoproj.io/v1alpha1), a custom resource.
    Rollout,
    Pod,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::Service => "services",
            Kind::ReplicaSet => "replicasets",
            Kind::Rollout => "rollouts",
            Kind::Pod => "pods",
        }
    }
    fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "apps",
            Kind::Service | Kind::Pod => "",
            Kind::Rollout => "argoproj.io",
        }
    }
    fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "apps/v1",
            Kind::Service | Kind::Pod => "v1",
            Kind::Rollout => "argoproj.io/v1alpha1",
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Rollout => "Rollout",
            Kind::Pod => "Pod",
        }
    }
    /// `deployments.apps`, as the API's messages name a resource.
    fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            g => format!("{}.{g}", self.plural()),
        }
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

impl Recorded {
    /// `PATCH /apis/apps/v1/namespaces/serving/deployments/chat-green`
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

struct Event {
    rv: u64,
    kind: Kind,
    namespace: String,
    name: String,
    type_: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    events: Vec<Event>,
    /// When each Deployment's current generation was written.
    changed_at: HashMap<(String, String), Instant>,
    /// A Deployment whose pod template contains one of these never gets available pods.
    fail_markers: Vec<String>,
    /// A Deployment's new ReplicaSet gets no more Ready pods than this (the
    /// cluster has no room for more): its rollout stops half-way.
    stall_at: Option<i64>,
    /// (verb, plural) refused with 403.
    deny: Vec<(String, String)>,
    /// How many of the next PATCHes another writer precedes (so a patch
    /// guarded by the resourceVersion read before meets a newer one).
    interfere: usize,
    /// The next PATCH of this kind is applied and its answer withheld.
    hold: Option<Kind>,
    requests: Vec<Recorded>,
}

struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    /// Told when a held PATCH has been applied.
    held: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `object` under a new resourceVersion and tells the watchers.
    fn commit(
        &self,
        st: &mut State,
        kind: Kind,
        ns: &str,
        name: &str,
        mut object: Value,
        type_: &'static str,
    ) -> Value {
        st.rv += 1;
        object["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        let key = (kind, ns.to_owned(), name.to_owned());
        if type_ == "DELETED" {
            st.objects.remove(&key);
        } else {
            st.objects.insert(key, object.clone());
        }
        st.events.push(Event {
            rv: st.rv,
            kind,
            namespace: ns.to_owned(),
            name: name.to_owned(),
            type_,
            object: object.clone(),
        });
        let _ = self.changed.send(st.rv);
        object
    }
}

pub struct KubeFake {
    shared: Arc<Shared>,
    pub addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
    controller: JoinHandle<()>,
}

impl Drop for KubeFake {
    fn drop(&mut self) {
        self.stop();
        self.controller.abort();
    }
}

impl KubeFake {
    pub async fn start() -> KubeFake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed,
            held: tokio::sync::Notify::new(),
        });
        let controller = tokio::spawn(controller(shared.clone()));
        let fake = KubeFake {
            shared,
            addr,
            server: Mutex::new(None),
            controller,
        };
        fake.serve(listener);
        fake
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let handle = tokio::spawn(async move {
            let app = axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let shared = shared.clone();
                    async move { handle(shared, method, uri, headers, body).await }
                },
            );
            // Connections are tasks of this set: stopping the server drops
            // the set, which ends every open connection (kept-alive ones and
            // watch streams too), as a dead API server would.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app.clone());
                conns.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    /// The API server goes away: connections refused, open ones cut.
    pub fn stop(&self) {
        if let Some(h) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.abort();
        }
    }

    /// The API server comes back on the same address with the same objects.
    pub async fn restart(&self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listener = TcpListener::bind(self.addr).await.expect("bind again");
        self.serve(listener);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this server, context `fake`, default namespace `namespace`.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: switchyard\n    namespace: {namespace}\n\
             current-context: fake\nusers:\n- name: switchyard\n  user:\n    token: fake-token\n",
            self.url()
        )
    }

    /// Deployments whose pod template contains `marker` never become available.
    pub fn fail_marker(&self, marker: &str) {
        self.shared.lock().fail_markers.push(marker.to_owned());
    }

    /// Rollouts of Deployments stop once their new ReplicaSet has `n` pods
    /// (as when the cluster has no room for more); `None` lets them finish.
    pub fn stall_rollouts(&self, n: Option<i64>) {
        self.shared.lock().stall_at = n;
    }

    /// Refuses `verb` on `plural` (e.g. `patch`, `services`) with 403, in
    /// SelfSubjectAccessReviews too.
    pub fn deny(&self, verb: &str, plural: &str) {
        self.shared
            .lock()
            .deny
            .push((verb.to_owned(), plural.to_owned()));
    }

    /// Before each of the next `n` PATCHes another writer changes the
    /// object (annotation `other-writer: N`), as a controller or a person would.
    pub fn interfere(&self, n: usize) {
        self.shared.lock().interfere = n;
    }

    /// The next PATCH of a `kind` object is applied, then its answer is
    /// never sent: the client is left waiting, as when a process dies
    /// between the API server's change and reading its answer.
    pub fn hold_next_patch(&self, kind: Kind) {
        self.shared.lock().hold = Some(kind);
    }

    /// Waits until a held PATCH has been applied.
    pub async fn held(&self) {
        self.shared.held.notified().await;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    pub fn object(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        self.shared
            .lock()
            .objects
            .get(&(kind, ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Creates an object as a POST would (for test set-up).
    pub fn create(&self, kind: Kind, ns: &str, object: Value) -> Value {
        let mut st = self.shared.lock();
        create(&self.shared, &mut st, kind, ns, object)
            .unwrap_or_else(|(_, s)| panic!("create: {s}"))
    }

    /// Changes an object as another writer would (a merge patch, no precondition).
    pub fn edit(&self, kind: Kind, ns: &str, name: &str, patch: Value) {
        let mut st = self.shared.lock();
        let key = (kind, ns.to_owned(), name.to_owned());
        let mut obj = st.objects.get(&key).cloned().expect("object exists");
        let spec_before = obj["spec"].clone();
        merge_patch(&mut obj, &patch);
        after_write(&mut st, kind, ns, name, &mut obj, &spec_before);
        self.shared.commit(&mut st, kind, ns, name, obj, "MODIFIED");
    }
}

fn status_obj(code: u16, reason: &str, message: String, details: Value) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "details": details, "code": code
    })
}

type Refusal = (StatusCode, Value);

fn refusal(code: StatusCode, reason: &str, message: String, kind: Kind, name: &str) -> Refusal {
    (
        code,
        status_obj(
            code.as_u16(),
            reason,
            message,
            json!({ "name": name, "group": kind.group(), "kind": kind.plural() }),
        ),
    )
}

fn not_found(kind: Kind, name: &str) -> Refusal {
    refusal(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", kind.qualified()),
        kind,
        name,
    )
}

fn conflict(kind: Kind, name: &str) -> Refusal {
    refusal(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            kind.qualified()
        ),
        kind,
        name,
    )
}

fn bad_request(message: String) -> Refusal {
    (
        StatusCode::BAD_REQUEST,
        status_obj(400, "BadRequest", message, json!({})),
    )
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (code, [("content-type", "application/json")], v.to_string()).into_response()
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn create(
    shared: &Shared,
    st: &mut State,
    kind: Kind,
    ns: &str,
    mut obj: Value,
) -> Result<Value, Refusal> {
    let name = obj["metadata"]["name"]
        .as_str()
        .ok_or_else(|| bad_request("metadata.name: Required value: name is required".into()))?
        .to_owned();
    if st
        .objects
        .contains_key(&(kind, ns.to_owned(), name.clone()))
    {
        return Err(refusal(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", kind.qualified()),
            kind,
            &name,
        ));
    }
    obj["apiVersion"] = json!(kind.api_version());
    obj["kind"] = json!(kind.kind());
    let meta = &mut obj["metadata"];
    meta["namespace"] = json!(ns);
    meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", st.rv + 1));
    meta["creationTimestamp"] = json!(now_rfc3339());
    if let Some(m) = meta.as_object_mut() {
        m.remove("resourceVersion");
    }
    match kind {
        Kind::Deployment => {
            obj["metadata"]["generation"] = json!(1);
            let spec = &mut obj["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = json!(1);
            }
            if spec["progressDeadlineSeconds"].is_null() {
                spec["progressDeadlineSeconds"] = json!(600);
            }
            if spec["revisionHistoryLimit"].is_null() {
                spec["revisionHistoryLimit"] = json!(10);
            }
            obj["status"] = json!({});
            st.changed_at
                .insert((ns.to_owned(), name.clone()), Instant::now());
        }
        Kind::Service => {
            if obj["spec"]["type"].is_null() {
                obj["spec"]["type"] = json!("ClusterIP");
            }
            obj["spec"]["clusterIP"] = json!(format!("10.96.0.{}", 10 + st.objects.len()));
            obj["status"] = json!({ "loadBalancer": {} });
        }
        Kind::ReplicaSet => {
            obj["metadata"]["generation"] = json!(1);
            obj["status"] = json!({ "replicas": 0 });
        }
        Kind::Rollout => {
            obj["metadata"]["generation"] = json!(1);
            if obj["spec"]["replicas"].is_null() {
                obj["spec"]["replicas"] = json!(1);
            }
            obj["status"] = json!({});
            st.changed_at
                .insert((ns.to_owned(), name.clone()), Instant::now());
        }
        Kind::Pod => {
            if obj["status"].is_null() {
                obj["status"] = json!({ "phase": "Pending" });
            }
        }
    }
    Ok(shared.commit(st, kind, ns, &name, obj, "ADDED"))
}

/// What the API server does after any write to the main resource: a spec
/// change is a new generation (Deployments), and the rollout starts over.
fn after_write(
    st: &mut State,
    kind: Kind,
    ns: &str,
    name: &str,
    obj: &mut Value,
    spec_before: &Value,
) {
    if matches!(kind, Kind::Deployment | Kind::Rollout) && obj["spec"] != *spec_before {
        let g = obj["metadata"]["generation"].as_i64().unwrap_or(1);
        obj["metadata"]["generation"] = json!(g + 1);
        st.changed_at
            .insert((ns.to_owned(), name.to_owned()), Instant::now());
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (k, v) in p {
        if v.is_null() {
            if let Some(t) = target.as_object_mut() {
                t.remove(k);
            }
        } else {
            merge_patch(&mut target[k.as_str()], v);
        }
    }
}

/// The merge key of a list field in the objects used (k8s.io/api's
/// `patchMergeKey` tags); other lists are replaced whole.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "env" | "volumes" | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "conditions" => Some("type"),
        _ => None,
    }
}

/// Strategic merge patch: a merge patch whose lists with a merge key are
/// merged element by element (`$patch: delete` removes one); `$`-directives
/// for ordering are accepted and ignored.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            if let Some(t) = target.as_object_mut() {
                t.remove(k);
            }
            continue;
        }
        match (merge_key(k), v.as_array()) {
            (Some(key), Some(items)) => {
                let mut list = target[k.as_str()].as_array().cloned().unwrap_or_default();
                for item in items {
                    let id = &item[key];
                    let pos = list.iter().position(|e| e[key] == *id);
                    let delete = item["$patch"] == "delete";
                    match (pos, delete) {
                        (Some(i), true) => {
                            list.remove(i);
                        }
                        (Some(i), false) => strategic_merge(&mut list[i], item),
                        (None, true) => {}
                        (None, false) => {
                            let mut fresh = json!({});
                            strategic_merge(&mut fresh, item);
                            list.push(fresh);
                        }
                    }
                }
                target[k.as_str()] = Value::Array(list);
            }
            _ => strategic_merge(&mut target[k.as_str()], v),
        }
    }
}

fn verb_of(method: &Method, item: bool, watching: bool) -> &'static str {
    match (method.as_str(), item) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", _) => "delete",
        _ => "unknown",
    }
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn handle(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // kubectl asks for a server-side Table to print `kubectl get` for people.
    let table = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body_json: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let (c, s) = bad_request(format!("the body is not JSON: {e}"));
                return json_response(c, &s);
            }
        }
    };
    shared.lock().requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        content_type: content_type.clone(),
        body: body_json.clone(),
    });
    let port = uri.port_u16().unwrap_or(0);
    let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let q = query_map(&uri);
    let discovery = |v: Value| json_response(StatusCode::OK, &v);
    match segs.as_slice() {
        ["version"] => discovery(json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-switchyard-kubefake",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc",
            "platform": "linux/amd64"
        })),
        ["api"] => discovery(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}") }]
        })),
        ["apis"] => {
            let group = |name: &str| {
                let gv = format!("{name}/v1");
                json!({ "name": name, "versions": [{ "groupVersion": gv, "version": "v1" }],
                        "preferredVersion": { "groupVersion": gv, "version": "v1" } })
            };
            // A CRD's group is served like any other (Argo Rollouts installed).
            let argo = json!({ "name": "argoproj.io",
                "versions": [{ "groupVersion": "argoproj.io/v1alpha1", "version": "v1alpha1" }],
                "preferredVersion": { "groupVersion": "argoproj.io/v1alpha1", "version": "v1alpha1" } });
            discovery(json!({ "kind": "APIGroupList", "apiVersion": "v1",
                "groups": [group("apps"), group("authorization.k8s.io"), argo] }))
        }
        ["api", "v1"] => discovery(resource_list(
            "v1",
            &[
                json!({ "name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
                    "verbs": ["get"], "shortNames": ["ns"] }),
                json!({ "name": "services", "singularName": "service", "namespaced": true, "kind": "Service",
                    "verbs": ["create","delete","get","list","patch","update","watch"], "shortNames": ["svc"], "categories": ["all"] }),
                json!({ "name": "services/status", "singularName": "", "namespaced": true, "kind": "Service", "verbs": ["get","patch","update"] }),
                json!({ "name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                    "verbs": ["create","delete","get","list","patch","update","watch"], "shortNames": ["po"], "categories": ["all"] }),
                json!({ "name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get","patch","update"] }),
            ],
        )),
        ["apis", "apps", "v1"] => discovery(resource_list(
            "apps/v1",
            &[
                json!({ "name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
                    "verbs": ["create","delete","get","list","patch","update","watch"], "shortNames": ["deploy"], "categories": ["all"] }),
                json!({ "name": "deployments/status", "singularName": "", "namespaced": true, "kind": "Deployment", "verbs": ["get","patch","update"] }),
                json!({ "name": "replicasets", "singularName": "replicaset", "namespaced": true, "kind": "ReplicaSet",
                    "verbs": ["create","delete","get","list","patch","update","watch"], "shortNames": ["rs"], "categories": ["all"] }),
            ],
        )),
        // The resource list the API server serves for the Rollout CRD.
        ["apis", "argoproj.io", "v1alpha1"] => discovery(resource_list(
            "argoproj.io/v1alpha1",
            &[
                json!({ "name": "rollouts", "singularName": "rollout", "namespaced": true, "kind": "Rollout",
                    "verbs": ["delete","deletecollection","get","list","patch","create","update","watch"],
                    "shortNames": ["ro"], "categories": ["all"] }),
                json!({ "name": "rollouts/status", "singularName": "", "namespaced": true, "kind": "Rollout", "verbs": ["get","patch","update"] }),
                json!({ "name": "rollouts/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
                    "version": "v1", "kind": "Scale", "verbs": ["get","patch","update"] }),
            ],
        )),
        ["apis", "argoproj.io", "v1alpha1", "namespaces", ns, "rollouts", rest @ ..] => {
            resource(
                &shared,
                Kind::Rollout,
                ns,
                rest,
                &method,
                &q,
                &content_type,
                body_json,
                table,
            )
            .await
        }
        ["apis", "authorization.k8s.io", "v1"] => discovery(resource_list(
            "authorization.k8s.io/v1",
            &[
                json!({ "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": false,
                    "kind": "SelfSubjectAccessReview", "verbs": ["create"] }),
            ],
        )),
        ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"]
            if method == Method::POST =>
        {
            let attrs = &body_json["spec"]["resourceAttributes"];
            let verb = attrs["verb"].as_str().unwrap_or("");
            let resource = attrs["resource"].as_str().unwrap_or("");
            let denied = shared
                .lock()
                .deny
                .iter()
                .any(|(v, r)| v == verb && r == resource);
            let mut review = body_json.clone();
            review["apiVersion"] = json!("authorization.k8s.io/v1");
            review["kind"] = json!("SelfSubjectAccessReview");
            review["status"] = if denied {
                json!({ "allowed": false, "reason": "no RBAC policy matched" })
            } else {
                json!({ "allowed": true, "reason": "RBAC: allowed by RoleBinding \"switchyard\"" })
            };
            json_response(StatusCode::CREATED, &review)
        }
        ["api", "v1", "namespaces", ns] if method == Method::GET => {
            // A namespace exists while something lives in it (kubectl asks
            // after a NotFound, to say which of the two is missing).
            let exists = shared.lock().objects.keys().any(|(_, n, _)| n == ns);
            if exists {
                json_response(
                    StatusCode::OK,
                    &json!({
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": { "name": ns }, "spec": { "finalizers": ["kubernetes"] },
                        "status": { "phase": "Active" }
                    }),
                )
            } else {
                json_response(
                    StatusCode::NOT_FOUND,
                    &status_obj(
                        404,
                        "NotFound",
                        format!("namespaces \"{ns}\" not found"),
                        json!({ "name": ns, "kind": "namespaces" }),
                    ),
                )
            }
        }
        ["api", "v1", "namespaces", ns, "pods", rest @ ..] => {
            resource(
                &shared,
                Kind::Pod,
                ns,
                rest,
                &method,
                &q,
                &content_type,
                body_json,
                table,
            )
            .await
        }
        ["api", "v1", "namespaces", ns, "services", rest @ ..] => {
            resource(
                &shared,
                Kind::Service,
                ns,
                rest,
                &method,
                &q,
                &content_type,
                body_json,
                table,
            )
            .await
        }
        ["apis", "apps", "v1", "namespaces", ns, "replicasets", rest @ ..] => {
            resource(
                &shared,
                Kind::ReplicaSet,
                ns,
                rest,
                &method,
                &q,
                &content_type,
                body_json,
                table,
            )
            .await
        }
        ["apis", "apps", "v1", "namespaces", ns, "deployments", rest @ ..] => {
            resource(
                &shared,
                Kind::Deployment,
                ns,
                rest,
                &method,
                &q,
                &content_type,
                body_json,
                table,
            )
            .await
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &status_obj(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                json!({}),
            ),
        ),
    }
}

fn resource_list(gv: &str, resources: &[Value]) -> Value {
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources })
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    shared: &Arc<Shared>,
    kind: Kind,
    ns: &str,
    rest: &[&str],
    method: &Method,
    q: &HashMap<String, String>,
    content_type: &str,
    body: Value,
    table: bool,
) -> Response {
    let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = verb_of(method, !rest.is_empty(), watching);
    if shared
        .lock()
        .deny
        .iter()
        .any(|(v, r)| v == verb && r == kind.plural())
    {
        let name = rest.first().copied().unwrap_or("");
        let what = if name.is_empty() {
            String::new()
        } else {
            format!(" \"{name}\"")
        };
        let (c, s) = refusal(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{}{what} is forbidden: User \"system:serviceaccount:{ns}:switchyard\" cannot {verb} resource \"{}\" in API group \"{}\" in the namespace \"{ns}\"",
                kind.qualified(), kind.plural(), kind.group()
            ),
            kind,
            name,
        );
        return json_response(c, &s);
    }
    if kind == Kind::Rollout
        && method == Method::PATCH
        && content_type.starts_with("application/strategic-merge-patch+json")
    {
        // Custom resources have no patch strategies (no Go struct tags).
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &status_obj(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    .into(),
                json!({}),
            ),
        );
    }
    let result = match (method.as_str(), rest) {
        ("GET", []) if watching => return watch_stream(shared.clone(), kind, ns.to_owned(), q),
        ("GET", []) => Ok((StatusCode::OK, list(&shared.lock(), kind, ns, q))),
        ("POST", []) => {
            let mut st = shared.lock();
            create(shared, &mut st, kind, ns, body).map(|o| (StatusCode::CREATED, o))
        }
        ("GET", [name]) | ("GET", [name, "status"]) => shared
            .lock()
            .objects
            .get(&(kind, ns.to_owned(), (*name).to_owned()))
            .cloned()
            .map(|o| (StatusCode::OK, o))
            .ok_or_else(|| not_found(kind, name)),
        ("PATCH", [name]) => {
            let r = write(shared, kind, ns, name, false, |obj| {
                patch(obj, content_type, &body)
            });
            let hold = {
                let mut st = shared.lock();
                let hold = r.is_ok() && st.hold == Some(kind);
                if hold {
                    st.hold = None;
                }
                hold
            };
            if hold {
                shared.held.notify_one();
                std::future::pending::<()>().await;
            }
            r
        }
        ("PATCH", [name, "status"]) => write(shared, kind, ns, name, true, |obj| {
            patch(obj, content_type, &body)
        }),
        ("PUT", [name]) | ("PUT", [name, "status"]) => {
            let status_only = rest.len() == 2;
            write(shared, kind, ns, name, status_only, |obj| {
                let mut new = body.clone();
                for keep in [
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "namespace",
                    "name",
                ] {
                    new["metadata"][keep] = obj["metadata"][keep].clone();
                }
                new["metadata"]["resourceVersion"] = body["metadata"]["resourceVersion"].clone();
                *obj = new;
                Ok(())
            })
        }
        ("DELETE", [name]) => {
            let mut st = shared.lock();
            match st
                .objects
                .get(&(kind, ns.to_owned(), (*name).to_owned()))
                .cloned()
            {
                Some(obj) => Ok((
                    StatusCode::OK,
                    shared.commit(&mut st, kind, ns, name, obj, "DELETED"),
                )),
                None => Err(not_found(kind, name)),
            }
        }
        _ => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            status_obj(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource".into(),
                json!({}),
            ),
        )),
    };
    match result {
        Ok((c, v)) if table && method == Method::GET => json_response(c, &as_table(kind, &v)),
        Ok((c, v)) => json_response(c, &v),
        Err((c, v)) => json_response(c, &v),
    }
}

/// The `meta.k8s.io/v1` Table the API server prints objects as (the columns
/// of `kubectl get deployments` / `kubectl get services`).
fn as_table(kind: Kind, v: &Value) -> Value {
    let items: Vec<Value> = match v["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![v.clone()],
    };
    let col = |name: &str, type_: &str| json!({ "name": name, "type": type_, "format": if name == "Name" { "name" } else { "" }, "description": "", "priority": 0 });
    type Cells = fn(&Value) -> Vec<Value>;
    let (columns, cells): (Vec<Value>, Cells) = match kind {
        Kind::Deployment => (
            vec![
                col("Name", "string"),
                col("Ready", "string"),
                col("Up-to-date", "integer"),
                col("Available", "integer"),
                col("Age", "string"),
            ],
            |o| {
                let s = &o["status"];
                let n = |f: &str| s[f].as_i64().unwrap_or(0);
                vec![
                    o["metadata"]["name"].clone(),
                    json!(format!(
                        "{}/{}",
                        n("readyReplicas"),
                        o["spec"]["replicas"].as_i64().unwrap_or(1)
                    )),
                    json!(n("updatedReplicas")),
                    json!(n("availableReplicas")),
                    json!("<unknown>"),
                ]
            },
        ),
        Kind::ReplicaSet => (
            vec![
                col("Name", "string"),
                col("Desired", "integer"),
                col("Current", "integer"),
                col("Ready", "integer"),
                col("Age", "string"),
            ],
            |o| {
                let n = |f: &str| o["status"][f].as_i64().unwrap_or(0);
                vec![
                    o["metadata"]["name"].clone(),
                    json!(o["spec"]["replicas"].as_i64().unwrap_or(0)),
                    json!(n("replicas")),
                    json!(n("readyReplicas")),
                    json!("<unknown>"),
                ]
            },
        ),
        Kind::Rollout => (
            // The CRD's additionalPrinterColumns.
            vec![
                col("Name", "string"),
                col("Desired", "integer"),
                col("Current", "integer"),
                col("Up-to-date", "integer"),
                col("Available", "integer"),
                col("Age", "string"),
            ],
            |o| {
                let n = |f: &str| o["status"][f].as_i64().unwrap_or(0);
                vec![
                    o["metadata"]["name"].clone(),
                    json!(o["spec"]["replicas"].as_i64().unwrap_or(1)),
                    json!(n("replicas")),
                    json!(n("updatedReplicas")),
                    json!(n("availableReplicas")),
                    json!("<unknown>"),
                ]
            },
        ),
        Kind::Pod => (
            vec![
                col("Name", "string"),
                col("Ready", "string"),
                col("Status", "string"),
                col("Restarts", "string"),
                col("Age", "string"),
            ],
            |o| {
                let statuses = o["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let ready = statuses.iter().filter(|c| c["ready"] == true).count();
                vec![
                    o["metadata"]["name"].clone(),
                    json!(format!("{ready}/{}", statuses.len())),
                    o["status"]["phase"].clone(),
                    json!("0"),
                    json!("<unknown>"),
                ]
            },
        ),
        Kind::Service => (
            vec![
                col("Name", "string"),
                col("Type", "string"),
                col("Cluster-IP", "string"),
                col("External-IP", "string"),
                col("Port(s)", "string"),
                col("Age", "string"),
            ],
            |o| {
                let ports: Vec<String> = o["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                    .collect();
                vec![
                    o["metadata"]["name"].clone(),
                    o["spec"]["type"].clone(),
                    o["spec"]["clusterIP"].clone(),
                    json!("<none>"),
                    json!(ports.join(",")),
                    json!("<unknown>"),
                ]
            },
        ),
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!({
            "cells": cells(o),
            "object": { "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"] }
        }))
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": v["metadata"]["resourceVersion"] },
        "columnDefinitions": columns, "rows": rows
    })
}

fn patch(obj: &mut Value, content_type: &str, body: &Value) -> Result<(), Refusal> {
    match content_type.split(';').next().unwrap_or("").trim() {
        "application/merge-patch+json" => merge_patch(obj, body),
        "application/strategic-merge-patch+json" => strategic_merge(obj, body),
        "application/json-patch+json" => json_patch(obj, body)?,
        other => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                status_obj(
                    415,
                    "UnsupportedMediaType",
                    format!("the fake API server does not implement the patch type {other:?}"),
                    json!({}),
                ),
            ))
        }
    }
    Ok(())
}

/// RFC 6902 JSON patch (add, remove, replace, test, move, copy); the whole
/// patch fails (422, as the API server answers) if any operation does.
fn json_patch(obj: &mut Value, ops: &Value) -> Result<(), Refusal> {
    let invalid = |m: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            status_obj(422, "Invalid", m, json!({})),
        )
    };
    let ops = ops
        .as_array()
        .ok_or_else(|| bad_request("a JSON patch is an array of operations".into()))?;
    let mut doc = obj.clone();
    for op in ops {
        let path = op["path"].as_str().unwrap_or("");
        let kind = op["op"].as_str().unwrap_or("");
        match kind {
            "add" | "replace" => pointer_set(&mut doc, path, op["value"].clone(), kind == "add")
                .map_err(|e| invalid(format!("{kind} {path}: {e}")))?,
            "remove" => {
                pointer_take(&mut doc, path).map_err(|e| invalid(format!("remove {path}: {e}")))?;
            }
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(invalid(format!("test {path}: the value differs")));
                }
            }
            "move" | "copy" => {
                let from = op["from"].as_str().unwrap_or("");
                let v = if kind == "move" {
                    pointer_take(&mut doc, from)
                } else {
                    doc.pointer(from).cloned().ok_or("no such path".to_owned())
                }
                .map_err(|e| invalid(format!("{kind} from {from}: {e}")))?;
                pointer_set(&mut doc, path, v, true)
                    .map_err(|e| invalid(format!("{kind} {path}: {e}")))?;
            }
            other => {
                return Err(bad_request(format!(
                    "unknown JSON patch operation {other:?}"
                )))
            }
        }
    }
    *obj = doc;
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits a JSON pointer into its parent and last token.
fn parent_of(path: &str) -> Result<(&str, String), String> {
    let (parent, last) = path.rsplit_once('/').ok_or("not a JSON pointer")?;
    Ok((parent, unescape(last)))
}

fn pointer_set(doc: &mut Value, path: &str, value: Value, add: bool) -> Result<(), String> {
    let (parent, last) = parent_of(path)?;
    match doc.pointer_mut(parent).ok_or("the parent does not exist")? {
        Value::Object(m) => {
            if !add && !m.contains_key(&last) {
                return Err("nothing to replace".into());
            }
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" && add {
                a.push(value);
            } else {
                let i: usize = last.parse().map_err(|_| "not an index")?;
                match (add, i <= a.len(), i < a.len()) {
                    (true, true, _) => a.insert(i, value),
                    (false, _, true) => a[i] = value,
                    _ => return Err("index out of range".into()),
                }
            }
        }
        _ => return Err("the parent is not an object or array".into()),
    }
    Ok(())
}

fn pointer_take(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = parent_of(path)?;
    match doc.pointer_mut(parent).ok_or("the parent does not exist")? {
        Value::Object(m) => m.remove(&last).ok_or("no such member".into()),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| "not an index")?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err("index out of range".into())
            }
        }
        _ => Err("the parent is not an object or array".into()),
    }
}

/// A write to the object or to its status subresource, with the
/// `resourceVersion` precondition the request carries (if any).
fn write(
    shared: &Arc<Shared>,
    kind: Kind,
    ns: &str,
    name: &str,
    status_only: bool,
    change: impl FnOnce(&mut Value) -> Result<(), Refusal>,
) -> Result<(StatusCode, Value), Refusal> {
    let mut st = shared.lock();
    let key = (kind, ns.to_owned(), name.to_owned());
    if st.interfere > 0 && st.objects.contains_key(&key) {
        st.interfere -= 1;
        let n = st.interfere;
        if let Some(mut other) = st.objects.get(&key).cloned() {
            other["metadata"]["annotations"]["other-writer"] = json!(n.to_string());
            shared.commit(&mut st, kind, ns, name, other, "MODIFIED");
        }
    }
    let before = st
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| not_found(kind, name))?;
    let mut obj = before.clone();
    change(&mut obj)?;
    let wanted = obj["metadata"]["resourceVersion"].clone();
    if !wanted.is_null() && wanted != before["metadata"]["resourceVersion"] {
        return Err(conflict(kind, name));
    }
    if obj["metadata"]["name"] != before["metadata"]["name"] {
        return Err(bad_request(
            "metadata.name: Invalid value: the name of an object cannot change".into(),
        ));
    }
    obj["metadata"]["resourceVersion"] = before["metadata"]["resourceVersion"].clone();
    obj["metadata"]["uid"] = before["metadata"]["uid"].clone();
    obj["metadata"]["generation"] = before["metadata"]["generation"].clone();
    if status_only {
        // The status subresource changes the status and nothing else.
        let status = obj["status"].clone();
        obj = before.clone();
        obj["status"] = status;
    } else {
        // The main resource ignores status changes.
        obj["status"] = before["status"].clone();
        after_write(&mut st, kind, ns, name, &mut obj, &before["spec"]);
    }
    if obj == before {
        return Ok((StatusCode::OK, before));
    }
    Ok((
        StatusCode::OK,
        shared.commit(&mut st, kind, ns, name, obj, "MODIFIED"),
    ))
}

fn name_filter(q: &HashMap<String, String>) -> Option<String> {
    q.get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name="))
        .map(str::to_owned)
}

/// `labelSelector=k=v,k2=v2` (equality terms, what kubectl and the driver send).
fn label_filter(q: &HashMap<String, String>) -> Vec<(String, String)> {
    q.get("labelSelector")
        .map(|s| {
            s.split(',')
                .filter_map(|term| term.split_once('='))
                .map(|(k, v)| {
                    (
                        k.trim_end_matches('=').to_owned(),
                        v.trim_start_matches('=').to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn labels_match(obj: &Value, terms: &[(String, String)]) -> bool {
    terms
        .iter()
        .all(|(k, v)| obj["metadata"]["labels"][k.as_str()].as_str() == Some(v.as_str()))
}

fn list(st: &State, kind: Kind, ns: &str, q: &HashMap<String, String>) -> Value {
    let only = name_filter(q);
    let labels = label_filter(q);
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|((k, n, name), o)| {
            *k == kind
                && n == ns
                && only.as_ref().is_none_or(|o| o == name)
                && labels_match(o, &labels)
        })
        .map(|(_, o)| o.clone())
        .collect();
    json!({
        "kind": format!("{}List", kind.kind()), "apiVersion": kind.api_version(),
        "metadata": { "resourceVersion": st.rv.to_string() },
        "items": items
    })
}

/// A watch: one JSON event per line, from the requested resourceVersion,
/// until `timeoutSeconds` (or the server stops).
fn watch_stream(
    shared: Arc<Shared>,
    kind: Kind,
    ns: String,
    q: &HashMap<String, String>,
) -> Response {
    let only = name_filter(q);
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let from: Option<u64> = q
        .get("resourceVersion")
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0);
    let initial = q.get("sendInitialEvents").map(String::as_str) == Some("true");
    let mut pending: Vec<Value> = Vec::new();
    let since = {
        let st = shared.lock();
        if from.is_none() || initial {
            for ((k, n, name), o) in &st.objects {
                if *k == kind && *n == ns && only.as_ref().is_none_or(|x| x == name) {
                    pending.push(json!({ "type": "ADDED", "object": o }));
                }
            }
        }
        if initial {
            pending.push(json!({ "type": "BOOKMARK", "object": {
                "kind": kind.kind(), "apiVersion": kind.api_version(),
                "metadata": { "resourceVersion": st.rv.to_string(),
                              "annotations": { "k8s.io/initial-events-end": "true" } } } }));
        }
        if initial {
            st.rv
        } else {
            from.unwrap_or(st.rv)
        }
    };
    let rx = shared.changed.subscribe();
    let stream = futures::stream::unfold(
        (shared, rx, since, pending),
        move |(shared, mut rx, mut since, mut pending)| {
            let only = only.clone();
            let ns = ns.clone();
            async move {
                loop {
                    if !pending.is_empty() {
                        let line = format!("{}\n", pending.remove(0));
                        return Some((
                            Ok::<_, std::io::Error>(Bytes::from(line)),
                            (shared, rx, since, pending),
                        ));
                    }
                    {
                        let st = shared.lock();
                        for e in st.events.iter().filter(|e| e.rv > since) {
                            if e.kind == kind
                                && e.namespace == ns
                                && only.as_ref().is_none_or(|o| *o == e.name)
                            {
                                pending.push(json!({ "type": e.type_, "object": e.object }));
                            }
                        }
                        since = st.rv;
                    }
                    if !pending.is_empty() {
                        continue;
                    }
                    match tokio::time::timeout_at(deadline, rx.changed()).await {
                        Ok(Ok(())) => continue,
                        _ => return None,
                    }
                }
            }
        },
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

// ---- pods ----

/// The ReplicaSets `owner` (a Deployment or Rollout, by uid) controls.
fn owned_sets(st: &State, ns: &str, owner: &Value) -> Vec<Value> {
    let uid = &owner["metadata"]["uid"];
    st.objects
        .iter()
        .filter(|((k, n, _), o)| {
            *k == Kind::ReplicaSet && n == ns && o["metadata"]["ownerReferences"][0]["uid"] == *uid
        })
        .map(|(_, o)| o.clone())
        .collect()
}

/// The pods ReplicaSet `rs` controls, oldest first.
fn pods_of(st: &State, ns: &str, rs: &Value) -> Vec<Value> {
    let uid = &rs["metadata"]["uid"];
    st.objects
        .iter()
        .filter(|((k, n, _), o)| {
            *k == Kind::Pod && n == ns && o["metadata"]["ownerReferences"][0]["uid"] == *uid
        })
        .map(|(_, o)| o.clone())
        .collect()
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// A pod of ReplicaSet `rs`, as the ReplicaSet controller creates it from
/// the template (labels with the hash, the containers), Ready or not (its
/// containers never pass their readiness probe).
fn new_pod(shared: &Shared, st: &mut State, ns: &str, rs: &Value, ready: bool) {
    st.rv += 1;
    let rs_name = rs["metadata"]["name"].as_str().unwrap_or("");
    let name = format!("{rs_name}-{:05x}", st.rv & 0xf_ffff);
    let template = &rs["spec"]["template"];
    let containers = template["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({ "name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                    "started": true, "restartCount": 0,
                    "state": { "running": { "startedAt": now_rfc3339() } } })
        })
        .collect();
    let flag = if ready { "True" } else { "False" };
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!("kubefake-node");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns,
            "uid": format!("00000000-0000-4000-a000-{:012}", st.rv),
            "creationTimestamp": now_rfc3339(),
            "labels": template["metadata"]["labels"].clone(),
            "annotations": template["metadata"]["annotations"].clone(),
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                "uid": rs["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true }]
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                { "type": "PodScheduled", "status": "True" },
                { "type": "Initialized", "status": "True" },
                { "type": "ContainersReady", "status": flag },
                { "type": "Ready", "status": flag }
            ],
            "podIP": format!("10.244.0.{}", st.rv % 250 + 2),
            "containerStatuses": statuses
        }
    });
    shared.commit(st, Kind::Pod, ns, &name, pod, "ADDED");
}

fn delete_pod(shared: &Shared, st: &mut State, ns: &str, pod: Value) {
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
    shared.commit(st, Kind::Pod, ns, &name, pod, "DELETED");
}

/// Makes ReplicaSet `rs` have exactly `n` pods: the oldest are kept, new
/// ones are created (Ready as `ready` says).
fn fit_pods(shared: &Shared, st: &mut State, ns: &str, rs: &Value, n: usize, ready: bool) {
    let pods = pods_of(st, ns, rs);
    for _ in pods.len()..n {
        new_pod(shared, st, ns, rs, ready);
    }
    for extra in pods.into_iter().skip(n) {
        delete_pod(shared, st, ns, extra);
    }
}

/// The pods of Deployment `d` follow its status, as the ReplicaSet
/// controller makes them: `updated` pods of its new ReplicaSet `new_rs`
/// (created Ready when `ready`), and `others` more kept of the pods that
/// exist — the new ReplicaSet's beyond `updated` first (a template that came
/// back, a scale), then the old ReplicaSets', Ready ones and newer revisions
/// first. Old pods are never created; every other pod is deleted.
#[allow(clippy::too_many_arguments)]
fn deployment_pods(
    shared: &Shared,
    st: &mut State,
    ns: &str,
    d: &Value,
    new_rs: &str,
    updated: usize,
    ready: bool,
    others: usize,
) {
    let sets = owned_sets(st, ns, d);
    let Some(new) = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == new_rs)
        .cloned()
    else {
        return;
    };
    let have = pods_of(st, ns, &new).len();
    let surplus = have.saturating_sub(updated).min(others);
    let mut budget = others - surplus;
    fit_pods(shared, st, ns, &new, updated + surplus, ready);
    let mut old: Vec<(bool, i64, Value)> = sets
        .iter()
        .filter(|rs| rs["metadata"]["name"] != new_rs)
        .flat_map(|rs| {
            let rev = revision_of(rs);
            pods_of(st, ns, rs)
                .into_iter()
                .map(move |p| (pod_ready(&p), rev, p))
        })
        .collect();
    old.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    for (_, _, pod) in old {
        if budget > 0 {
            budget -= 1;
        } else {
            delete_pod(shared, st, ns, pod);
        }
    }
}

pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const HASH_LABEL: &str = "pod-template-hash";

/// A pod template without the `pod-template-hash` label (how the
/// controller compares templates: `EqualIgnoreHash`).
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
        labels.remove(rollouts::HASH_LABEL);
    }
    zero_values_dropped(&t)
}

/// What the API server's typed decoding makes of JSON: a `null`, `{}` or
/// `[]` field is the zero value, the same as an absent one (kubectl sends
/// `creationTimestamp: null` and `resources: {}` back in a template).
fn zero_values_dropped(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), zero_values_dropped(v)))
                .filter(|(_, v)| {
                    !(v.is_null()
                        || v.as_object().is_some_and(|o| o.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty()))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(zero_values_dropped).collect()),
        other => other.clone(),
    }
}

/// The revision annotation of an owner kind's ReplicaSets.
fn revision_key(owner: Kind) -> &'static str {
    match owner {
        Kind::Rollout => rollouts::REVISION,
        _ => REVISION,
    }
}

/// The label that tells an owner kind's ReplicaSets apart.
fn hash_label(owner: Kind) -> &'static str {
    match owner {
        Kind::Rollout => rollouts::HASH_LABEL,
        _ => HASH_LABEL,
    }
}

fn revision_of(rs: &Value) -> i64 {
    [REVISION, rollouts::REVISION]
        .iter()
        .find_map(|k| rs["metadata"]["annotations"][*k].as_str())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The deployment controller's ReplicaSet bookkeeping, as `kubectl rollout
/// history` / `rollout undo` read it: one ReplicaSet per distinct pod
/// template, owned by the Deployment (controller ownerReference), named
/// `<deployment>-<hash>` and labelled `pod-template-hash`, with the revision
/// annotation; a template seen before (an undo) gets its old ReplicaSet back
/// under the next revision, the old number kept in `revision-history`. The
/// Deployment carries its new ReplicaSet's revision. Old ReplicaSets are
/// scaled to 0. Returns the Deployment as stored and its new ReplicaSet's name.
fn sync_replica_sets(
    shared: &Shared,
    st: &mut State,
    ns: &str,
    mut d: Value,
    owner: Kind,
) -> (Value, String) {
    let name = d["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let uid = d["metadata"]["uid"].clone();
    let (rev_key, hash_key) = (revision_key(owner), hash_label(owner));
    let template = without_hash(&d["spec"]["template"]);
    let owned: Vec<Value> = st
        .objects
        .iter()
        .filter(|((k, n, _), o)| {
            *k == Kind::ReplicaSet && n == ns && o["metadata"]["ownerReferences"][0]["uid"] == uid
        })
        .map(|(_, o)| o.clone())
        .collect();
    let max = owned.iter().map(revision_of).max().unwrap_or(0);
    let desired = d["spec"]["replicas"].clone();
    let current = owned
        .iter()
        .find(|rs| without_hash(&rs["spec"]["template"]) == template)
        .cloned();
    let new_rs = match current {
        Some(mut rs) => {
            let rev = revision_of(&rs);
            if rev < max || rs["spec"]["replicas"] != desired {
                if rev < max {
                    let mut history: Vec<String> = rs["metadata"]["annotations"][REVISION_HISTORY]
                        .as_str()
                        .filter(|h| !h.is_empty())
                        .map(|h| h.split(',').map(str::to_owned).collect())
                        .unwrap_or_default();
                    history.push(rev.to_string());
                    rs["metadata"]["annotations"][rev_key] = json!((max + 1).to_string());
                    rs["metadata"]["annotations"][REVISION_HISTORY] = json!(history.join(","));
                }
                rs["spec"]["replicas"] = desired.clone();
                let rs_name = rs["metadata"]["name"].as_str().unwrap_or("").to_owned();
                shared.commit(st, Kind::ReplicaSet, ns, &rs_name, rs.clone(), "MODIFIED")
            } else {
                rs
            }
        }
        None => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            template.to_string().hash(&mut h);
            let hash = format!("{:010x}", h.finish() & 0xff_ffff_ffff);
            let rs_name = format!("{name}-{hash}");
            let mut t = template.clone();
            t["metadata"]["labels"][hash_key] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"][hash_key] = json!(hash);
            let mut annotations = json!({ rev_key: (max + 1).to_string() });
            if let Some(cause) = d["metadata"]["annotations"]["kubernetes.io/change-cause"].as_str()
            {
                annotations["kubernetes.io/change-cause"] = json!(cause);
            }
            st.rv += 1;
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name, "namespace": ns,
                    "uid": format!("00000000-0000-4000-9000-{:012}", st.rv),
                    "creationTimestamp": now_rfc3339(), "generation": 1,
                    "labels": t["metadata"]["labels"].clone(),
                    "annotations": annotations,
                    "ownerReferences": [{ "apiVersion": owner.api_version(), "kind": owner.kind(), "name": name,
                        "uid": uid, "controller": true, "blockOwnerDeletion": true }]
                },
                "spec": { "replicas": desired, "selector": selector, "template": t },
                "status": { "replicas": 0 }
            });
            shared.commit(st, Kind::ReplicaSet, ns, &rs_name, rs, "ADDED")
        }
    };
    let new_name = new_rs["metadata"]["name"].as_str().unwrap_or("").to_owned();
    for mut old in owned {
        if old["metadata"]["name"] != new_rs["metadata"]["name"] && old["spec"]["replicas"] != 0 {
            old["spec"]["replicas"] = json!(0);
            let n = old["metadata"]["name"].as_str().unwrap_or("").to_owned();
            shared.commit(st, Kind::ReplicaSet, ns, &n, old, "MODIFIED");
        }
    }
    let revision = json!(revision_of(&new_rs).to_string());
    if d["metadata"]["annotations"][rev_key] != revision {
        d["metadata"]["annotations"][rev_key] = revision;
        d = shared.commit(st, owner, ns, &name, d, "MODIFIED");
    }
    (d, new_name)
}

/// The deployment controller, simplified: every 50 ms each Deployment moves
/// one step towards its spec, writing its status as the real one does.
async fn controller(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut st = shared.lock();
        let keys: Vec<(String, String)> = st
            .objects
            .keys()
            .filter(|(k, _, _)| *k == Kind::Deployment)
            .map(|(_, ns, name)| (ns.clone(), name.clone()))
            .collect();
        for (ns, name) in keys {
            let Some(obj) = st
                .objects
                .get(&(Kind::Deployment, ns.clone(), name.clone()))
                .cloned()
            else {
                continue;
            };
            let (obj, rs) = sync_replica_sets(&shared, &mut st, &ns, obj, Kind::Deployment);
            let since = st
                .changed_at
                .get(&(ns.clone(), name.clone()))
                .map_or(Duration::ZERO, |t| t.elapsed());
            let template = obj["spec"]["template"].to_string();
            let failing = st
                .fail_markers
                .iter()
                .any(|m| template.contains(m.as_str()));
            let status = next_status(&obj, since, failing, &rs, st.stall_at);
            let updated = status["updatedReplicas"].as_u64().unwrap_or(0) as usize;
            let others =
                (status["replicas"].as_u64().unwrap_or(0) as usize).saturating_sub(updated);
            // A status that has not seen the template yet says nothing about its pods.
            if status["observedGeneration"] == obj["metadata"]["generation"] {
                deployment_pods(&shared, &mut st, &ns, &obj, &rs, updated, !failing, others);
            }
            if status != obj["status"] {
                let mut new = obj.clone();
                new["status"] = status;
                shared.commit(&mut st, Kind::Deployment, &ns, &name, new, "MODIFIED");
            }
        }
        let rollouts: Vec<(String, String)> = st
            .objects
            .keys()
            .filter(|(k, _, _)| *k == Kind::Rollout)
            .map(|(_, ns, name)| (ns.clone(), name.clone()))
            .collect();
        for (ns, name) in rollouts {
            rollouts::reconcile(&shared, &mut st, &ns, &name);
        }
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> Value {
    let now = now_rfc3339();
    json!({ "type": type_, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now })
}

/// The next status of a Deployment whose generation was written `since` ago.
fn next_status(
    obj: &Value,
    since: Duration,
    failing: bool,
    rs: &str,
    stall_at: Option<i64>,
) -> Value {
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let desired = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let deadline = obj["spec"]["progressDeadlineSeconds"]
        .as_u64()
        .unwrap_or(600);
    let old = &obj["status"];
    let observed = old["observedGeneration"].as_i64().unwrap_or(0);
    let keep_time = |mut c: Value| {
        // An unchanged condition keeps its times (so the status settles).
        if let Some(prev) = old["conditions"].as_array().and_then(|cs| {
            cs.iter().find(|p| {
                p["type"] == c["type"] && p["status"] == c["status"] && p["reason"] == c["reason"]
            })
        }) {
            c["lastUpdateTime"] = prev["lastUpdateTime"].clone();
            c["lastTransitionTime"] = prev["lastTransitionTime"].clone();
        }
        c
    };
    let mut s = old.clone();
    if observed < generation {
        // The controller sees the new generation a little later.
        if since < Duration::from_millis(100) {
            return old.clone();
        }
        let available_before = old["availableReplicas"].as_i64().unwrap_or(0);
        s["observedGeneration"] = json!(generation);
        s["updatedReplicas"] = json!(0);
        s["replicas"] = json!(available_before);
        s["conditions"] = json!([
            keep_time(condition(
                "Available",
                if available_before > 0 {
                    "True"
                } else {
                    "False"
                },
                if available_before > 0 {
                    "MinimumReplicasAvailable"
                } else {
                    "MinimumReplicasUnavailable"
                },
                "Deployment has minimum availability.".into()
            )),
            keep_time(condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs}\" is progressing.")
            )),
        ]);
        return s;
    }
    let updated = old["updatedReplicas"].as_i64().unwrap_or(0);
    let available = old["availableReplicas"].as_i64().unwrap_or(0);
    if failing {
        // New pods are created but never become ready; old ones keep serving.
        let old_pods = (old["replicas"].as_i64().unwrap_or(0) - updated).max(0);
        s["updatedReplicas"] = json!(desired);
        s["replicas"] = json!(desired + old_pods);
        s["unavailableReplicas"] = json!(desired);
        if since >= Duration::from_secs(deadline) {
            s["conditions"] = json!([
                keep_time(condition(
                    "Available",
                    if available > 0 { "True" } else { "False" },
                    if available > 0 {
                        "MinimumReplicasAvailable"
                    } else {
                        "MinimumReplicasUnavailable"
                    },
                    "Deployment does not have minimum availability.".into()
                )),
                keep_time(condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet \"{rs}\" has timed out progressing.")
                )),
            ]);
        }
        return s;
    }
    if updated < desired {
        if stall_at.is_some_and(|n| updated >= n) {
            return s;
        }
        let u = updated + 1;
        let old_pods = desired - u;
        s["updatedReplicas"] = json!(u);
        s["readyReplicas"] = json!(u + old_pods.min(available));
        s["availableReplicas"] = json!(u + old_pods.min(available));
        s["replicas"] = json!(u + old_pods.min(available));
        return s;
    }
    s["updatedReplicas"] = json!(desired);
    s["readyReplicas"] = json!(desired);
    s["availableReplicas"] = json!(desired);
    s["replicas"] = json!(desired);
    if let Some(m) = s.as_object_mut() {
        m.remove("unavailableReplicas");
    }
    s["conditions"] = json!([
        keep_time(condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into()
        )),
        keep_time(condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs}\" has successfully progressed.")
        )),
    ]);
    s
}
