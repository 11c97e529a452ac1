//! The kubernetes driver against the fake API server of tests/kubefake
//! (no Kubernetes API server can be installed on these machines), and the
//! fake held to the real wire format by the real `kubectl`.

mod kubefake;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubefake::{Kind, KubeFake};
use serde_json::{json, Value};
use switchyard::auth::{password, secret};
use switchyard::config::Config;
use switchyard::drivers::kubernetes::{Kubernetes, KubernetesConfig};
use switchyard::drivers::{Driver, Drivers};
use switchyard::operations::RunnerSettings;
use switchyard::startup::Application;
use switchyard_domain::access::Role;
use switchyard_domain::clusters::{ClusterState, SlotName, Weights};
use switchyard_domain::{FullId, Timestamp};

const NS: &str = "serving";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-k8s-{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn deployment(slot: &str, version: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": format!("chat-{slot}"), "labels": { "app": "chat" } },
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 2,
            "selector": { "matchLabels": { "app": "chat", "switchyard.io/slot": slot } },
            "template": {
                "metadata": {
                    "labels": { "app": "chat", "switchyard.io/slot": slot },
                    "annotations": { "switchyard.io/version": format!("chat:{version}") }
                },
                "spec": { "containers": [
                    { "name": "model", "image": format!("registry.example/chat:{version}"),
                      "ports": [{ "containerPort": 8080 }] },
                    { "name": "sidecar", "image": "registry.example/proxy:1" }
                ] }
            }
        }
    })
}

fn service(slot: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "chat" },
        "spec": {
            "selector": { "app": "chat", "switchyard.io/slot": slot },
            "ports": [{ "port": 80, "targetPort": 8080 }]
        }
    })
}

/// The fake with the routing contract in place: blue holds chat:v1 and has traffic.
async fn fake_with_contract() -> KubeFake {
    let fake = KubeFake::start().await;
    fake.create(Kind::Deployment, NS, deployment("blue", "v1"));
    fake.create(Kind::Deployment, NS, deployment("green", "v0"));
    fake.create(Kind::Service, NS, service("blue"));
    fake
}

fn driver_config(kubeconfig: &Path) -> Value {
    json!({
        "kubeconfig": kubeconfig, "namespace": NS, "model": "chat", "service": "chat",
        "deployments": { "blue": "chat-blue", "green": "chat-green" },
        "container": "model", "image": "registry.example/chat"
    })
}

fn driver(fake: &KubeFake, dir: &Path) -> Kubernetes {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig(NS)).expect("kubeconfig written");
    Kubernetes::new(KubernetesConfig::parse(&driver_config(&kubeconfig)).expect("config"))
}

fn id(s: &str) -> FullId {
    FullId::parse(s).expect("full id")
}

fn selector(fake: &KubeFake) -> Value {
    fake.object(Kind::Service, NS, "chat").expect("service")["spec"]["selector"].clone()
}

/// Waits until the fake's controller has rolled the initial Deployments out.
async fn settled(fake: &KubeFake) {
    for _ in 0..100 {
        let done = ["chat-blue", "chat-green"].iter().all(|d| {
            fake.object(Kind::Deployment, NS, d).is_some_and(|o| {
                o["status"]["availableReplicas"] == 2
                    && o["status"]["observedGeneration"] == o["metadata"]["generation"]
            })
        });
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the fake's deployments did not roll out");
}

#[tokio::test]
async fn a_switch_patches_the_idle_deployment_waits_for_its_rollout_then_moves_the_service_selector(
) {
    let fake = fake_with_contract().await;
    let dir = temp_dir("switch");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    fake.clear_requests();

    k.load(SlotName::Green, &id("chat:v2"))
        .await
        .expect("loaded");
    k.wait_ready(SlotName::Green, &id("chat:v2"), Duration::from_secs(10))
        .await
        .expect("rolled out");
    k.smoke(SlotName::Green, &id("chat:v2"))
        .await
        .expect("smoke");
    assert_eq!(
        selector(&fake)["switchyard.io/slot"],
        "blue",
        "nothing moved before the switch"
    );
    k.shift(Weights::all_on(SlotName::Green))
        .await
        .expect("switched");

    let calls = fake.requests();
    let deploy = format!("/apis/apps/v1/namespaces/{NS}/deployments/chat-green");
    let svc = format!("/api/v1/namespaces/{NS}/services/chat");
    // The exact order: read, patch guarded by what was read, poll until
    // rolled out, read again for the smoke check, read and patch the Service.
    assert_eq!(calls[0].line(), format!("GET {deploy}"));
    assert_eq!(calls[1].line(), format!("PATCH {deploy}"));
    assert_eq!(
        calls[1].content_type,
        "application/strategic-merge-patch+json"
    );
    assert_eq!(field_manager(&calls[1]).as_deref(), Some("switchyard"));
    let rv_read = fake_rv_of(&calls[1]);
    assert_eq!(
        calls[1].body,
        json!({
            "metadata": { "resourceVersion": rv_read },
            "spec": { "template": {
                "metadata": { "annotations": { "switchyard.io/version": "chat:v2" } },
                "spec": { "containers": [ { "name": "model", "image": "registry.example/chat:v2" } ] }
            } }
        })
    );
    let n = calls.len();
    assert!(
        calls[2..n - 2]
            .iter()
            .all(|c| c.line() == format!("GET {deploy}")),
        "{:?}",
        calls.iter().map(|c| c.line()).collect::<Vec<_>>()
    );
    assert!(n >= 6, "waited for the rollout with more than one read");
    assert_eq!(calls[n - 2].line(), format!("GET {svc}"));
    assert_eq!(calls[n - 1].line(), format!("PATCH {svc}"));
    assert_eq!(calls[n - 1].content_type, "application/merge-patch+json");
    assert_eq!(field_manager(&calls[n - 1]).as_deref(), Some("switchyard"));
    assert_eq!(
        calls[n - 1].body["spec"],
        json!({ "selector": { "switchyard.io/slot": "green" } })
    );
    assert!(calls[n - 1].body["metadata"]["resourceVersion"].is_string());

    // The strategic merge kept the other container and the port: only the image changed.
    let green = fake
        .object(Kind::Deployment, NS, "chat-green")
        .expect("green");
    let containers = green["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .clone();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "registry.example/chat:v2");
    assert_eq!(containers[0]["ports"][0]["containerPort"], 8080);
    assert_eq!(containers[1]["image"], "registry.example/proxy:1");
    assert_eq!(green["metadata"]["generation"], 2);
    assert_eq!(
        selector(&fake),
        json!({ "app": "chat", "switchyard.io/slot": "green" })
    );
    assert_eq!(
        k.observe().await.expect("observed").weights,
        Weights::all_on(SlotName::Green)
    );

    // Rollback: the selector back, one patch, the green Deployment untouched.
    fake.clear_requests();
    k.shift(Weights::all_on(SlotName::Blue))
        .await
        .expect("rolled back");
    let lines: Vec<String> = fake.requests().iter().map(|c| c.line()).collect();
    assert_eq!(lines, vec![format!("GET {svc}"), format!("PATCH {svc}")]);
    assert_eq!(
        k.observe().await.expect("observed").weights,
        Weights::all_on(SlotName::Blue)
    );
    let state = ClusterState::default()
        .with_version(SlotName::Blue, Some(id("chat:v1")))
        .with_version(SlotName::Green, Some(id("chat:v2")))
        .with_weights(Weights::all_on(SlotName::Blue));
    k.gate(&state).await.expect("blue serves, rolled out");
    let _ = std::fs::remove_dir_all(&dir);
}

fn field_manager(call: &kubefake::Recorded) -> Option<String> {
    url::form_urlencoded::parse(call.query.as_bytes())
        .find(|(k, _)| k == "fieldManager")
        .map(|(_, v)| v.into_owned())
}

fn fake_rv_of(call: &kubefake::Recorded) -> Value {
    call.body["metadata"]["resourceVersion"].clone()
}

#[tokio::test]
async fn a_stale_resource_version_is_read_again_and_never_overwrites_another_writer() {
    let fake = fake_with_contract().await;
    let dir = temp_dir("conflict");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    fake.clear_requests();
    fake.interfere(2);
    k.load(SlotName::Green, &id("chat:v2"))
        .await
        .expect("loaded on the third try");
    let calls = fake.requests();
    let deploy = format!("/apis/apps/v1/namespaces/{NS}/deployments/chat-green");
    let lines: Vec<String> = calls.iter().map(|c| c.line()).collect();
    assert_eq!(
        lines,
        vec![
            format!("GET {deploy}"),
            format!("PATCH {deploy}"),
            format!("GET {deploy}"),
            format!("PATCH {deploy}"),
            format!("GET {deploy}"),
            format!("PATCH {deploy}"),
        ]
    );
    // Each retry carried the resourceVersion it had just read: a newer one each time.
    let rvs: Vec<u64> = [1, 3, 5]
        .iter()
        .map(|i| {
            calls[*i].body["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("rv")
        })
        .collect();
    assert!(rvs[0] < rvs[1] && rvs[1] < rvs[2], "{rvs:?}");
    let green = fake
        .object(Kind::Deployment, NS, "chat-green")
        .expect("green");
    assert_eq!(
        green["metadata"]["annotations"]["other-writer"], "0",
        "the other writer's change survives"
    );
    assert_eq!(
        green["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v2"
    );

    // An undo meets another writer too: read again (Deployment and its
    // ReplicaSets), patched on the second try, the other writer's change kept.
    k.wait_ready(SlotName::Green, &id("chat:v2"), Duration::from_secs(20))
        .await
        .expect("v2 ready");
    settled(&fake).await;
    fake.clear_requests();
    fake.interfere(1);
    let what = k
        .undo(SlotName::Green)
        .await
        .expect("rolled back on the second try");
    assert!(
        what.starts_with("rolled back Deployment chat-green to revision 1"),
        "{what}"
    );
    let calls = fake.requests();
    let rs = format!("/apis/apps/v1/namespaces/{NS}/replicasets");
    let lines: Vec<String> = calls.iter().map(|c| c.line()).collect();
    assert_eq!(
        lines,
        vec![
            format!("GET {deploy}"),
            format!("GET {rs}"),
            format!("PATCH {deploy}"),
            format!("GET {deploy}"),
            format!("GET {rs}"),
            format!("PATCH {deploy}"),
        ]
    );
    let rv = |c: &kubefake::Recorded| -> u64 {
        c.body["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("rv")
    };
    assert!(rv(&calls[2]) < rv(&calls[5]));
    // The same patch both times: the template difference, nothing else.
    let mut first = calls[2].body.clone();
    first["metadata"]["resourceVersion"] = calls[5].body["metadata"]["resourceVersion"].clone();
    assert_eq!(first, calls[5].body);
    assert_eq!(
        calls[5].body["spec"]["template"],
        json!({
            "metadata": { "annotations": { "switchyard.io/version": "chat:v0" } },
            "spec": { "containers": [
                { "name": "model", "image": "registry.example/chat:v0", "ports": [{ "containerPort": 8080 }] },
                { "name": "sidecar", "image": "registry.example/proxy:1" }
            ] }
        })
    );
    let green = fake
        .object(Kind::Deployment, NS, "chat-green")
        .expect("green");
    assert_eq!(green["metadata"]["annotations"]["other-writer"], "0");
    assert_eq!(
        green["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v0"
    );

    // Someone who never stops writing: the driver gives up and says why.
    fake.interfere(100);
    let e = k
        .load(SlotName::Green, &id("chat:v3"))
        .await
        .expect_err("gave up");
    assert!(e.to_string().contains("409 Conflict"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until the fake's controller reports `replicas` pods for the
/// Deployment's current generation.
async fn scaled(fake: &KubeFake, name: &str, replicas: i64) -> Value {
    for _ in 0..200 {
        if let Some(o) = fake.object(Kind::Deployment, NS, name) {
            if o["status"]["observedGeneration"] == o["metadata"]["generation"]
                && o["status"]["replicas"] == replicas
                && o["status"]["availableReplicas"] == replicas
            {
                return o;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Deployment {name} did not reach {replicas} replicas");
}

#[tokio::test]
async fn unload_scales_the_idle_deployment_to_zero_and_the_next_load_scales_it_back() {
    let fake = fake_with_contract().await;
    let dir = temp_dir("release");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    let deploy = format!("/apis/apps/v1/namespaces/{NS}/deployments/chat-green");

    // Another writer first: read again, the merge patch on the second try.
    fake.clear_requests();
    fake.interfere(1);
    k.unload(SlotName::Green).await.expect("released");
    let calls = fake.requests();
    let lines: Vec<String> = calls.iter().map(|c| c.line()).collect();
    assert_eq!(
        lines,
        vec![
            format!("GET {deploy}"),
            format!("PATCH {deploy}"),
            format!("GET {deploy}"),
            format!("PATCH {deploy}"),
        ]
    );
    assert_eq!(calls[3].content_type, "application/merge-patch+json");
    assert_eq!(field_manager(&calls[3]).as_deref(), Some("switchyard"));
    let rv = fake_rv_of(&calls[3]);
    assert_ne!(
        rv,
        fake_rv_of(&calls[1]),
        "the retry carried what it read again"
    );
    assert_eq!(
        calls[3].body,
        json!({
            "metadata": { "resourceVersion": rv,
                "annotations": { "switchyard.io/released-replicas": "2" } },
            "spec": { "replicas": 0 }
        })
    );
    let writes = k.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0].starts_with("scaled Deployment chat-green from 2 to 0 replicas (merge) with "),
        "{writes:?}"
    );
    // The pods go away; the template (the version) and the other writer's change stay.
    let green = scaled(&fake, "chat-green", 0).await;
    assert_eq!(green["spec"]["replicas"], 0);
    assert_eq!(green["metadata"]["annotations"]["other-writer"], "0");
    assert_eq!(
        green["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v0"
    );
    // Blue, with the traffic, is untouched.
    assert_eq!(
        fake.object(Kind::Deployment, NS, "chat-blue")
            .expect("blue")["spec"]["replicas"],
        2
    );

    // Released again (after a crash): one read, no write, success.
    fake.clear_requests();
    k.unload(SlotName::Green).await.expect("already released");
    let lines: Vec<String> = fake.requests().iter().map(|c| c.line()).collect();
    assert_eq!(lines, vec![format!("GET {deploy}")]);
    assert!(k.take_writes().is_empty());

    // A load into the released slot puts the replicas back with the version,
    // drops the annotation and waits for the rollout as any load does.
    fake.clear_requests();
    k.load(SlotName::Green, &id("chat:v2"))
        .await
        .expect("loaded");
    let calls = fake.requests();
    assert_eq!(calls[0].line(), format!("GET {deploy}"));
    assert_eq!(calls[1].line(), format!("PATCH {deploy}"));
    assert_eq!(
        calls[1].content_type,
        "application/strategic-merge-patch+json"
    );
    assert_eq!(
        calls[1].body,
        json!({
            "metadata": { "resourceVersion": fake_rv_of(&calls[1]),
                "annotations": { "switchyard.io/released-replicas": null } },
            "spec": {
                "replicas": 2,
                "template": {
                    "metadata": { "annotations": { "switchyard.io/version": "chat:v2" } },
                    "spec": { "containers": [ { "name": "model", "image": "registry.example/chat:v2" } ] }
                }
            }
        })
    );
    k.wait_ready(SlotName::Green, &id("chat:v2"), Duration::from_secs(10))
        .await
        .expect("rolled out with its pods back");
    let green = scaled(&fake, "chat-green", 2).await;
    assert_eq!(green["spec"]["replicas"], 2);
    assert!(
        green["metadata"]["annotations"]["switchyard.io/released-replicas"].is_null(),
        "{green}"
    );
    assert_eq!(green["metadata"]["annotations"]["other-writer"], "0");
    k.smoke(SlotName::Green, &id("chat:v2"))
        .await
        .expect("smoke");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_slot_that_never_becomes_ready_fails_with_the_progress_deadline_and_moves_no_traffic() {
    let fake = fake_with_contract().await;
    let dir = temp_dir("deadline");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    fake.fail_marker("chat:v9");
    fake.clear_requests();
    k.load(SlotName::Green, &id("chat:v9"))
        .await
        .expect("patched");
    let e = k
        .wait_ready(SlotName::Green, &id("chat:v9"), Duration::from_secs(20))
        .await
        .expect_err("never ready");
    let e = e.to_string();
    assert!(e.contains("exceeded its progress deadline"), "{e}");
    assert!(e.contains("timed out progressing"), "{e}");
    assert_eq!(selector(&fake)["switchyard.io/slot"], "blue");
    // The idle Deployment is not left on the template that cannot run: it
    // is rolled back as kubectl rollout undo does, and the write recorded.
    assert!(
        e.contains("Deployment chat-green was rolled back to its previous revision"),
        "{e}"
    );
    let writes = k.take_writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(
        writes[0].starts_with("patched Deployment chat-green"),
        "{writes:?}"
    );
    assert!(
        writes[1]
            .starts_with("rolled back Deployment chat-green to revision 1 (ReplicaSet chat-green-"),
        "{writes:?}"
    );
    assert!(writes[1].contains("chat:v0"), "{writes:?}");
    let calls: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" || r.path.ends_with("replicasets"))
        .map(|r| (r.line(), r.query))
        .collect();
    let deployment = format!("/apis/apps/v1/namespaces/{NS}/deployments/chat-green");
    assert_eq!(
        calls,
        [
            (
                format!("PATCH {deployment}"),
                "&fieldManager=switchyard".to_owned()
            ),
            (
                format!("GET /apis/apps/v1/namespaces/{NS}/replicasets"),
                "&labelSelector=app%3Dchat%2Cswitchyard.io%2Fslot%3Dgreen".to_owned()
            ),
            (
                format!("PATCH {deployment}"),
                "&fieldManager=switchyard".to_owned()
            ),
        ]
    );
    let undo = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .expect("undo");
    assert_eq!(undo.content_type, "application/merge-patch+json");
    let green = fake
        .object(Kind::Deployment, NS, "chat-green")
        .expect("green");
    assert_eq!(
        undo.body["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v0"
    );
    assert!(undo.body["metadata"]["resourceVersion"].is_string());
    assert_eq!(
        green["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v0"
    );
    assert_eq!(
        green["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v0"
    );
    assert_eq!(
        green["spec"]["template"]["spec"]["containers"][1]["image"],
        "registry.example/proxy:1"
    );
    assert!(green["spec"]["template"]["metadata"]["labels"]["pod-template-hash"].is_null());
    // The restored revision rolls out again; the failed version is no longer there.
    k.wait_ready(SlotName::Green, &id("chat:v0"), Duration::from_secs(20))
        .await
        .expect("the previous revision runs again");
    assert_eq!(
        fake.object(Kind::Deployment, NS, "chat-green")
            .expect("green")["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let h = k
        .slot_health(SlotName::Green, Some(&id("chat:v9")))
        .await
        .expect("health");
    assert!(
        h.text().contains("holds chat:v0, not chat:v9"),
        "{}",
        h.text()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cluster_test_names_each_broken_part_of_the_contract_with_its_fix() {
    let fake = fake_with_contract().await;
    let dir = temp_dir("test");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    let state = ClusterState::default()
        .with_version(SlotName::Blue, Some(id("chat:v1")))
        .with_weights(Weights::all_on(SlotName::Blue));
    let checks = k.test(&state).await;
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    assert!(checks
        .iter()
        .any(|c| c.check == "permission: patch deployments.apps"));
    assert!(checks
        .iter()
        .any(|c| c.check == "slot blue" && c.detail.contains("rolled out")));

    fake.deny("patch", "services");
    // The green pods lack the Service's `app` label: the Service would select none of them.
    fake.edit(
        Kind::Deployment,
        NS,
        "chat-green",
        json!({ "spec": { "template": { "metadata": { "labels": { "app": "chat-old" } } } } }),
    );
    let checks = k.test(&state).await;
    let failed = |name: &str| {
        checks
            .iter()
            .find(|c| c.check == name && !c.ok)
            .unwrap_or_else(|| panic!("{name} should fail: {checks:#?}"))
            .clone()
    };
    let perm = failed("permission: patch services");
    assert!(
        perm.advice.as_deref().is_some_and(|a| a.contains("Role")),
        "{perm:?}"
    );
    let green = failed("Deployment chat-green (green)");
    assert!(
        green.detail.contains("would select none of its pods") && green.detail.contains("app=chat"),
        "{green:?}"
    );
    assert_eq!(checks.iter().filter(|c| !c.ok).count(), 2, "{checks:#?}");

    // No Service: named, with where to find how to make one.
    let mut bad = driver_config(&dir.join("kubeconfig"));
    bad["service"] = json!("missing");
    let k2 = Kubernetes::new(KubernetesConfig::parse(&bad).expect("config"));
    let checks = k2.test(&state).await;
    let svc = checks
        .iter()
        .find(|c| c.check == "Service missing")
        .expect("service check");
    assert!(
        !svc.ok && svc.detail.contains("not found in namespace serving"),
        "{svc:?}"
    );

    // The API server down: said first, nothing else claimed.
    fake.stop();
    let checks = k.test(&state).await;
    assert_eq!(checks.len(), 1, "{checks:#?}");
    assert_eq!(checks[0].check, "Kubernetes API server");
    assert!(
        !checks[0].ok && checks[0].detail.contains("cannot reach"),
        "{:?}",
        checks[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- through the REST API and the operation runner ----

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("sent");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("JSON")
    }

    async fn operate(&self, full_id: &str) -> i64 {
        let (status, v) = self
            .post(
                "/api/v1/clusters/k8s/operations",
                json!({ "kind": "blue_green", "full_id": full_id, "reason": "test" }),
            )
            .await;
        assert_eq!(status, 202, "{v}");
        v["operation_id"].as_i64().expect("operation id")
    }

    async fn finished(&self, id: i64) -> Value {
        for _ in 0..1200 {
            let op = self.get(&format!("/api/v1/operations/{id}")).await;
            if op["state"] != "running" {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("operation {id} did not end");
    }
}

async fn start_switchyard(dir: &Path) -> Api {
    let database_url = format!("sqlite://{}", dir.join("switchyard.db").display());
    let app = Application::build(Config {
        database_url: database_url.clone(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
    })
    .await
    .expect("the server starts");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let store = switchyard::store::connect(&database_url, Default::default())
        .await
        .expect("store");
    let settings = RunnerSettings {
        lease: Duration::from_secs(1),
        poll: Duration::from_millis(20),
        ready_timeout: Duration::from_secs(8),
    };
    let _runner = switchyard::operations::spawn(store.clone(), Drivers::default(), settings);
    Api {
        base: format!("http://127.0.0.1:{port}"),
        http: admin_client(&store).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_switch_roll_back_refuse_a_slot_never_ready_and_survive_the_api_server_going_away(
) {
    let fake = KubeFake::start().await;
    // A cluster that starts empty: both Deployments hold a placeholder.
    fake.create(Kind::Deployment, NS, deployment("blue", "v0"));
    fake.create(Kind::Deployment, NS, deployment("green", "v0"));
    fake.create(Kind::Service, NS, service("green"));
    let dir = temp_dir("ops");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig(NS)).expect("kubeconfig");
    let api = start_switchyard(&dir).await;
    for v in ["v1", "v2", "v3", "v4", "v5"] {
        let (status, body) = api
            .post(
                "/api/v1/models/chat/versions",
                json!({ "version": v, "config": { "v": v } }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // A config the driver cannot use is refused whole at `cluster add`.
    let mut bad = driver_config(&kubeconfig);
    bad.as_object_mut().map(|o| o.remove("namespace"));
    let (status, body) = api
        .post("/api/v1/clusters", json!({ "name": "k8s", "environment": "development", "driver": "kubernetes", "config": bad }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("namespace"),
        "{body}"
    );
    let (status, body) = api
        .post("/api/v1/clusters", json!({ "name": "k8s", "environment": "development", "driver": "kubernetes", "config": driver_config(&kubeconfig) }))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, test) = api.post("/api/v1/clusters/k8s/test", json!({})).await;
    assert_eq!(status, 200, "{test}");

    // First deploy goes to blue (the idle slot of an empty cluster), then v2 to green.
    let op = api.operate("chat:v1").await;
    let done = api.finished(op).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let slot = selector(&fake)["switchyard.io/slot"]
        .as_str()
        .expect("slot")
        .to_owned();
    let first = fake
        .object(Kind::Deployment, NS, &format!("chat-{slot}"))
        .expect("deployment");
    assert_eq!(
        first["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v1"
    );
    let op = api.operate("chat:v2").await;
    assert_eq!(api.finished(op).await["state"], "succeeded");
    let other = if slot == "blue" { "green" } else { "blue" };
    assert_eq!(selector(&fake)["switchyard.io/slot"], other);
    // Each write is in the ledger's step events: object, patch, resulting generation.
    let steps = api
        .get("/api/v1/audit?action=operation.step&limit=100")
        .await;
    let notes: Vec<String> = steps["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["details"]["note"].as_str().map(str::to_owned))
        .collect();
    let load = format!("patched Deployment chat-{other} (strategic merge) with ");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(&load) && n.contains("chat:v2") && n.contains("generation 2")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n
            .contains("patched Service chat (merge) with {\"metadata\":{\"resourceVersion\":")
            && n.contains(&format!("\"switchyard.io/slot\":\"{other}\""))),
        "{notes:?}"
    );

    // Rollback: one step, the selector back to v1's slot.
    let (status, body) = api
        .post(
            "/api/v1/clusters/k8s/rollback",
            json!({ "reason": "bad answers" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let done = api
        .finished(body["operation_id"].as_i64().expect("id"))
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(selector(&fake)["switchyard.io/slot"], slot.as_str());
    let cluster = api.get("/api/v1/clusters/k8s").await;
    assert!(cluster.to_string().contains("chat:v1"), "{cluster}");

    // v3 never becomes ready: the operation fails, naming the deadline; traffic stays.
    fake.fail_marker("chat:v3");
    let op = api.operate("chat:v3").await;
    let done = api.finished(op).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done.to_string().contains("exceeded its progress deadline"),
        "{done}"
    );
    assert_eq!(
        selector(&fake)["switchyard.io/slot"],
        slot.as_str(),
        "no routing changed"
    );
    // The idle Deployment was undone to its previous revision (chat:v2), and the step says so.
    assert!(
        done.to_string()
            .contains(&format!("rolled back Deployment chat-{other} to revision")),
        "{done}"
    );
    let idle = fake
        .object(Kind::Deployment, NS, &format!("chat-{other}"))
        .expect("idle deployment");
    assert_eq!(
        idle["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"], "chat:v2",
        "{idle}"
    );

    // The API server goes away right after the patch and comes back within
    // the ready timeout: the operation carries on and succeeds.
    let op = api.operate("chat:v4").await;
    for _ in 0..200 {
        if fake
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.body.to_string().contains("chat:v4"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fake.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fake.restart().await;
    let done = api.finished(op).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(selector(&fake)["switchyard.io/slot"], other);

    // Gone for good: the operation fails with words about the API server, traffic stays.
    let op = api.operate("chat:v5").await;
    fake.stop();
    let done = api.finished(op).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done.to_string()
            .contains("cannot reach the Kubernetes API server"),
        "{done}"
    );
    fake.restart().await;
    assert_eq!(selector(&fake)["switchyard.io/slot"], other);
    let verify = api.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baked_switch_releases_the_old_deployment_after_the_bake_and_a_rollback_scales_it_back() {
    let fake = KubeFake::start().await;
    fake.create(Kind::Deployment, NS, deployment("blue", "v0"));
    fake.create(Kind::Deployment, NS, deployment("green", "v0"));
    fake.create(Kind::Service, NS, service("green"));
    let dir = temp_dir("bake");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig(NS)).expect("kubeconfig");
    let api = start_switchyard(&dir).await;
    for v in ["v1", "v2"] {
        let (status, body) = api
            .post(
                "/api/v1/models/chat/versions",
                json!({ "version": v, "config": { "v": v } }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = api
        .post("/api/v1/clusters", json!({ "name": "k8s", "environment": "development", "driver": "kubernetes", "config": driver_config(&kubeconfig) }))
        .await;
    assert_eq!(status, 201, "{body}");
    let op = api.operate("chat:v1").await;
    assert_eq!(api.finished(op).await["state"], "succeeded");
    let old = selector(&fake)["switchyard.io/slot"]
        .as_str()
        .expect("slot")
        .to_owned();
    let new = if old == "blue" { "green" } else { "blue" };
    let old_name = format!("chat-{old}");

    let bake_ms: i64 = 1000;
    let (status, body) = api
        .post(
            "/api/v1/clusters/k8s/operations",
            json!({ "kind": "blue_green", "full_id": "chat:v2", "reason": "baked",
                    "bake_seconds": bake_ms / 1000 }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["operation_id"].as_i64().expect("operation id");
    // While it bakes, the old Deployment keeps all its pods (the instant rollback).
    let mut full_while_baking = 0;
    for _ in 0..400 {
        let op = api.get(&format!("/api/v1/operations/{id}")).await;
        if op["state"] != "running" {
            break;
        }
        let steps = op["steps"].as_array().cloned().unwrap_or_default();
        let switched = steps
            .iter()
            .any(|s| s["action"] == "shift" && s["state"] == "done");
        let releasing = steps
            .iter()
            .any(|s| s["action"] == "release" && s["state"] != "pending");
        if switched && !releasing {
            let d = fake.object(Kind::Deployment, NS, &old_name).expect("old");
            assert_eq!(d["spec"]["replicas"], 2, "released during the bake: {d}");
            if d["status"]["availableReplicas"] == 2 {
                full_while_baking += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let op = api.finished(id).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(
        full_while_baking >= 5,
        "watched the bake {full_while_baking} times: {op}"
    );
    let steps = op["steps"].as_array().expect("steps");
    let shift = steps
        .iter()
        .position(|s| s["action"] == "shift")
        .expect("a switch");
    let release = steps.last().expect("steps");
    assert_eq!(
        (
            release["action"].as_str(),
            release["state"].as_str(),
            release["slot"].as_str()
        ),
        (Some("release"), Some("done"), Some(old.as_str())),
        "{op}"
    );
    assert!(
        micros(&release["started_at"]) >= micros(&steps[shift]["finished_at"]) + bake_ms * 1000,
        "released only after the bake: {op}"
    );
    let note = release["note"].as_str().unwrap_or("");
    assert!(
        note.contains(&format!(
            "scaled Deployment {old_name} from 2 to 0 replicas (merge) with "
        )) && note.contains("{\"switchyard.io/released-replicas\":\"2\"}")
            && note.contains("\"spec\":{\"replicas\":0}"),
        "{note}"
    );
    assert_eq!(selector(&fake)["switchyard.io/slot"], new);
    let d = scaled(&fake, &old_name, 0).await;
    assert_eq!(
        d["metadata"]["annotations"]["switchyard.io/released-replicas"],
        "2"
    );

    // Rollback: v1 loaded into its slot again with its 2 replicas, then the switch.
    fake.clear_requests();
    let (status, body) = api
        .post(
            "/api/v1/clusters/k8s/rollback",
            json!({ "reason": "bad answers" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let done = api
        .finished(body["operation_id"].as_i64().expect("id"))
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let actions: Vec<&str> = done["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["action"].as_str())
        .collect();
    assert_eq!(actions.first(), Some(&"load"), "{done}");
    assert!(actions.contains(&"shift"), "{done}");
    let deploy = format!("/apis/apps/v1/namespaces/{NS}/deployments/{old_name}");
    let patches: Vec<kubefake::Recorded> = fake
        .requests()
        .into_iter()
        .filter(|c| c.method == "PATCH")
        .collect();
    assert_eq!(patches[0].line(), format!("PATCH {deploy}"));
    assert_eq!(
        patches[0].body["spec"]["replicas"], 2,
        "{}",
        patches[0].body
    );
    assert!(
        patches[0].body["metadata"]["annotations"]["switchyard.io/released-replicas"].is_null()
    );
    assert_eq!(
        patches[0].body["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v1"
    );
    assert_eq!(
        patches[1].line(),
        format!("PATCH /api/v1/namespaces/{NS}/services/chat")
    );
    assert_eq!(patches.len(), 2, "one load, one switch");
    assert_eq!(selector(&fake)["switchyard.io/slot"], old.as_str());
    let d = scaled(&fake, &old_name, 2).await;
    assert!(
        d["metadata"]["annotations"]["switchyard.io/released-replicas"].is_null(),
        "{d}"
    );
    let verify = api.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn micros(v: &Value) -> i64 {
    Timestamp::parse(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .micros()
}

// ---- the real kubectl against the fake ----

fn kubectl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "kubectl is required (scripts/peers.sh installs Debian's kubernetes-client)"
        );
        eprintln!("kubectl not found: skipping (scripts/peers.sh installs it)");
    }
    found
}

async fn run_kubectl(
    bin: &Path,
    dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(args)
        .env("HOME", dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("kubectl starts");
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.expect("stdin");
        }
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl ends")
        .expect("kubectl output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_kubectl_applies_reads_watches_and_patches_the_fake() {
    let Some(bin) = kubectl() else { return };
    let fake = KubeFake::start().await;
    let dir = temp_dir("kubectl");
    std::fs::write(dir.join("kubeconfig"), fake.kubeconfig(NS)).expect("kubeconfig");

    // kubectl apply creates (GET → 404 Status → POST), without the OpenAPI schema the fake does not serve.
    let manifest = [
        deployment("blue", "v1"),
        deployment("green", "v0"),
        service("blue"),
    ]
    .iter()
    .map(|o| serde_yaml::to_string(o).expect("YAML"))
    .collect::<Vec<_>>()
    .join("---\n");
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["apply", "--validate=false", "-f", "-"],
        Some(&manifest),
    )
    .await;
    assert!(ok, "kubectl apply: {out}\n{err}");
    assert!(out.contains("deployment.apps/chat-blue created"), "{out}");
    assert!(out.contains("service/chat created"), "{out}");
    let applied = fake
        .object(Kind::Deployment, NS, "chat-blue")
        .expect("created");
    assert!(
        applied["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // kubectl rollout status watches the fake's controller to completion.
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "status", "deployment/chat-blue", "--timeout=30s"],
        None,
    )
    .await;
    assert!(ok, "kubectl rollout status: {out}\n{err}");
    assert!(out.contains("successfully rolled out"), "{out}");

    // What the driver writes, kubectl reads back.
    let k = Kubernetes::new(
        KubernetesConfig::parse(&driver_config(&dir.join("kubeconfig"))).expect("config"),
    );
    k.load(SlotName::Green, &id("chat:v2"))
        .await
        .expect("loaded");
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "rollout",
            "status",
            "deployment/chat-green",
            "--timeout=30s",
        ],
        None,
    )
    .await;
    assert!(
        ok && out.contains("successfully rolled out"),
        "{out}\n{err}"
    );
    k.shift(Weights::all_on(SlotName::Green))
        .await
        .expect("switched");
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["get", "deployments,services", "-o", "json"],
        None,
    )
    .await;
    assert!(ok, "kubectl get: {err}");
    let list: Value = serde_json::from_str(&out).expect("kubectl printed JSON");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{out}");
    let green = items
        .iter()
        .find(|i| i["metadata"]["name"] == "chat-green")
        .expect("green");
    assert_eq!(green["kind"], "Deployment");
    assert_eq!(
        green["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v2"
    );
    assert_eq!(green["metadata"]["generation"], 2);
    assert_eq!(green["status"]["observedGeneration"], 2);
    let svc = items
        .iter()
        .find(|i| i["kind"] == "Service")
        .expect("service");
    assert_eq!(svc["spec"]["selector"]["switchyard.io/slot"], "green");

    // kubectl set image sends its own strategic merge patch; the driver reads the result.
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "set",
            "image",
            "deployment/chat-blue",
            "model=registry.example/chat:v7",
        ],
        None,
    )
    .await;
    assert!(ok, "kubectl set image: {out}\n{err}");
    let set = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .expect("kubectl patched");
    assert_eq!(set.content_type, "application/strategic-merge-patch+json");
    let blue = fake
        .object(Kind::Deployment, NS, "chat-blue")
        .expect("blue");
    assert_eq!(
        blue["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v7"
    );
    assert_eq!(
        blue["spec"]["template"]["spec"]["containers"][1]["image"],
        "registry.example/proxy:1"
    );
    // The driver sees that blue no longer runs what the annotation says (drift).
    let h = k
        .slot_health(SlotName::Blue, Some(&id("chat:v1")))
        .await
        .expect("health");
    assert!(
        h.text().contains(
            "runs registry.example/chat:v7 in container model, not registry.example/chat:v1"
        ),
        "{}",
        h.text()
    );

    // kubectl's JSON patch: a stale `test` is refused whole, a good one applied.
    let (ok, _, err) = run_kubectl(
        &bin,
        &dir,
        &["patch", "service", "chat", "--type=json", "-p",
          r#"[{"op":"test","path":"/spec/selector/switchyard.io~1slot","value":"blue"},{"op":"replace","path":"/spec/selector/switchyard.io~1slot","value":"blue"}]"#],
        None,
    )
    .await;
    assert!(
        !ok && err.contains("test /spec/selector/switchyard.io~1slot"),
        "{err}"
    );
    assert_eq!(selector(&fake)["switchyard.io/slot"], "green");
    let (ok, _, err) = run_kubectl(
        &bin,
        &dir,
        &["patch", "service", "chat", "--type=json", "-p",
          r#"[{"op":"test","path":"/spec/selector/switchyard.io~1slot","value":"green"},{"op":"replace","path":"/spec/selector/switchyard.io~1slot","value":"blue"}]"#],
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        k.observe().await.expect("observed").weights,
        Weights::all_on(SlotName::Blue)
    );

    // A rollout that cannot finish: kubectl and the driver read the same failure.
    fake.fail_marker("chat:v8");
    let (ok, _, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "set",
            "image",
            "deployment/chat-blue",
            "model=registry.example/chat:v8",
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "status", "deployment/chat-blue", "--timeout=30s"],
        None,
    )
    .await;
    assert!(!ok, "rollout status must fail: {out}");
    assert!(err.contains("exceeded its progress deadline"), "{err}");

    // The controller keeps a ReplicaSet per template with its revision:
    // kubectl rollout history lists them, rollout undo restores the previous one.
    let history = |out: &str| -> Vec<String> {
        out.lines()
            .skip_while(|l| !l.starts_with("REVISION"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "history", "deployment/chat-blue"],
        None,
    )
    .await;
    assert!(ok, "rollout history: {err}");
    assert_eq!(history(&out), ["1", "2", "3"], "{out}");
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "history", "deployment/chat-blue", "--revision=2"],
        None,
    )
    .await;
    assert!(
        ok && out.contains("registry.example/chat:v7"),
        "{out}\n{err}"
    );
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "undo", "deployment/chat-blue"],
        None,
    )
    .await;
    assert!(
        ok && out.contains("rolled back"),
        "rollout undo: {out}\n{err}"
    );
    let undo = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .expect("kubectl patched");
    assert_eq!(undo.content_type, "application/json-patch+json");
    assert_eq!(undo.body[0]["path"], "/spec/template");
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "status", "deployment/chat-blue", "--timeout=30s"],
        None,
    )
    .await;
    assert!(
        ok && out.contains("successfully rolled out"),
        "{out}\n{err}"
    );
    let blue = fake
        .object(Kind::Deployment, NS, "chat-blue")
        .expect("blue");
    assert_eq!(
        blue["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v7"
    );
    assert!(blue["spec"]["template"]["metadata"]["labels"]["pod-template-hash"].is_null());
    assert_eq!(
        blue["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "undo", "deployment/chat-blue", "--to-revision=1"],
        None,
    )
    .await;
    assert!(ok, "rollout undo --to-revision=1: {out}\n{err}");
    // The fake's controller makes the new ReplicaSet after the patch is
    // answered, as the real one does: history shows it once it has.
    let mut out = String::new();
    for _ in 0..50 {
        let (ok, listed, err) = run_kubectl(
            &bin,
            &dir,
            &["rollout", "history", "deployment/chat-blue"],
            None,
        )
        .await;
        assert!(ok, "{err}");
        out = listed;
        if history(&out) == ["3", "4", "5"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(history(&out), ["3", "4", "5"], "{out}");
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["rollout", "undo", "deployment/chat-blue", "--to-revision=9"],
        None,
    )
    .await;
    assert!(
        !ok && err.contains("unable to find specified revision 9"),
        "{out}\n{err}"
    );
    assert_eq!(
        fake.object(Kind::Deployment, NS, "chat-blue")
            .expect("blue")["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v1"
    );

    // kubectl's own table, as a person types it.
    let (ok, out, err) = run_kubectl(&bin, &dir, &["get", "deployments"], None).await;
    assert!(ok, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l[..4] == ["chat-green", "2/2", "2", "2"]),
        "{out}"
    );

    // A missing object: kubectl prints the fake's Status message as it would a real one.
    let (ok, _, err) = run_kubectl(&bin, &dir, &["get", "deployment", "nope"], None).await;
    assert!(!ok);
    assert!(err.contains("deployments.apps \"nope\" not found"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real `switchyard serve` binary as the operation runner (SIGKILLed when dropped).
struct Served(std::process::Child);

impl Served {
    fn start(database_url: &str, log: &Path) -> Served {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("SWITCHYARD_ADDR", "127.0.0.1:0")
            .env("SWITCHYARD_OPERATION_LEASE_MS", "1000")
            .env("SWITCHYARD_OPERATION_POLL_MS", "20")
            .env_remove("LOG_FORMAT")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("switchyard serve starts");
        Served(child)
    }

    fn kill9(mut self) {
        self.0.kill().expect("SIGKILL sent");
        self.0.wait().expect("reaped");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_after_the_service_switched_but_before_the_record_is_reconciled_from_the_selector()
{
    let fake = KubeFake::start().await;
    fake.create(Kind::Deployment, NS, deployment("blue", "v0"));
    fake.create(Kind::Deployment, NS, deployment("green", "v0"));
    fake.create(Kind::Service, NS, service("green"));
    let dir = temp_dir("kill9");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig(NS)).expect("kubeconfig");
    let database_url = format!("sqlite://{}", dir.join("switchyard.db").display());
    // The API in this process (no runner); operations run in the real binary.
    let app = Application::build(Config {
        database_url: database_url.clone(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
    })
    .await
    .expect("the server starts");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let store = switchyard::store::connect(&database_url, Default::default())
        .await
        .expect("store");
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: admin_client(&store).await,
    };
    for v in ["v1", "v2"] {
        let (status, body) = api
            .post(
                "/api/v1/models/chat/versions",
                json!({ "version": v, "config": { "v": v } }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = api
        .post("/api/v1/clusters", json!({ "name": "k8s", "environment": "development", "driver": "kubernetes", "config": driver_config(&kubeconfig) }))
        .await;
    assert_eq!(status, 201, "{body}");
    let log = dir.join("serve.log");
    let served = Served::start(&database_url, &log);
    let first = api.operate("chat:v1").await;
    assert_eq!(api.finished(first).await["state"], "succeeded");
    served.kill9();
    let before = selector(&fake)["switchyard.io/slot"]
        .as_str()
        .expect("slot")
        .to_owned();

    // chat:v2 into the other slot; the Service PATCH is applied by the API
    // server, its answer withheld, and the runner killed right there.
    fake.hold_next_patch(Kind::Service);
    let id = api.operate("chat:v2").await;
    let served = Served::start(&database_url, &log);
    tokio::time::timeout(Duration::from_secs(60), fake.held())
        .await
        .expect("the runner reached the Service patch");
    served.kill9();
    let after = selector(&fake)["switchyard.io/slot"]
        .as_str()
        .expect("slot")
        .to_owned();
    assert_ne!(after, before, "the Service switched");
    let op = api.get(&format!("/api/v1/operations/{id}")).await;
    let shift = op["steps"]
        .as_array()
        .and_then(|s| s.iter().position(|s| s["action"] == "shift"))
        .expect("a switch step");
    assert_eq!(op["steps"][shift]["state"], "running", "{op}");
    assert!(
        !op["intent"].is_null(),
        "the intent was written before the patch: {op}"
    );

    // Another runner takes over, asks the Service, and records what it found.
    let served = Served::start(&database_url, &log);
    let op = api.finished(id).await;
    served.kill9();
    assert_eq!(op["state"], "succeeded", "{op}");
    let events = api
        .get("/api/v1/audit?action=operation.reconciled&limit=10")
        .await;
    let events = events["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "one reconciliation: {events:?}");
    assert_eq!(events[0]["details"]["finding"], "switched", "{}", events[0]);
    let cluster = api.get("/api/v1/clusters/k8s").await;
    assert!(cluster.to_string().contains("chat:v2"), "{cluster}");
    assert_eq!(selector(&fake)["switchyard.io/slot"], after.as_str());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP client that sends an admin's API token on every request.
async fn admin_client(store: &switchyard::store::DynStore) -> reqwest::Client {
    let hash = password::hash("k8s-test-password").expect("hashed");
    store
        .create_user("k8s-admin", Role::Admin, &hash, "test", Timestamp::now())
        .await
        .expect("user");
    let token = secret::generate(secret::TOKEN_PREFIX);
    store
        .create_token(
            "k8s-admin",
            "k8s-admin",
            &secret::hash(&token),
            None,
            "test",
            Timestamp::now(),
        )
        .await
        .expect("token");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}
