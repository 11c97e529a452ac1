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
use switchyard::drivers::kubernetes::rollout::{ArgoConfig, ArgoRollout};
use switchyard::drivers::kubernetes::{Kubernetes, KubernetesConfig};
use switchyard::drivers::{Driver, Drivers, Running};
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

/// A cluster that serves nothing yet: both Deployments hold a placeholder
/// (chat:v0), the Service selects green.
async fn empty_cluster() -> KubeFake {
    let fake = KubeFake::start().await;
    fake.create(Kind::Deployment, NS, deployment("blue", "v0"));
    fake.create(Kind::Deployment, NS, deployment("green", "v0"));
    fake.create(Kind::Service, NS, service("green"));
    fake
}

/// The fake's kubeconfig, written into `dir`.
fn kubeconfig_of(fake: &KubeFake, dir: &Path) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig(NS)).expect("kubeconfig written");
    kubeconfig
}

fn driver(fake: &KubeFake, dir: &Path) -> Kubernetes {
    let kubeconfig = kubeconfig_of(fake, dir);
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

// ---- what the slots really run (`Driver::running`) ----

/// Asks `running(slot)` until it answers what `wanted` accepts (within 10 s);
/// panics with the last answer.
async fn runs(
    d: &dyn Driver,
    slot: SlotName,
    what: &str,
    wanted: impl Fn(&Running) -> bool,
) -> Running {
    let mut last = None;
    for _ in 0..400 {
        match d.running(slot).await {
            Ok(r) if wanted(&r) => return r,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{slot} should run {what}; the driver last answered {last:?}");
}

fn version(s: &str) -> Running {
    Running::Version { version: id(s) }
}

/// The model container of the Deployment template `deployment(slot, version)` makes.
fn containers(version: &str) -> Value {
    json!([
        { "name": "model", "image": format!("registry.example/chat:{version}"),
          "ports": [{ "containerPort": 8080 }] },
        { "name": "sidecar", "image": "registry.example/proxy:1" }
    ])
}

#[tokio::test]
async fn running_reads_the_ready_pods_of_each_slot_through_a_rollout_by_hand_and_a_scale_to_zero() {
    let fake = fake_with_contract().await;
    let dir = temp_dir("running");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    let blue = runs(&k, SlotName::Blue, "chat:v1", |r| *r == version("chat:v1")).await;
    assert_eq!(blue, version("chat:v1"));
    runs(&k, SlotName::Green, "chat:v0", |r| *r == version("chat:v0")).await;
    // The pods were listed by the slot's Deployment's selector.
    let listed = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path == format!("/api/v1/namespaces/{NS}/pods"))
        .expect("the pods were listed");
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(listed.query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        query.get("labelSelector").map(String::as_str),
        Some("app=chat,switchyard.io/slot=blue"),
        "{query:?}"
    );

    // Someone sets the serving Deployment's image by hand (as `kubectl set
    // image` does), and the cluster has room for one new pod only: half-way,
    // what blue runs is unclear, in words.
    fake.stall_rollouts(Some(1));
    fake.edit(
        Kind::Deployment,
        NS,
        "chat-blue",
        json!({ "spec": { "template": { "spec": { "containers": containers("v7") } } } }),
    );
    let half = runs(&k, SlotName::Blue, "a mix of v1 and v7", |r| {
        matches!(r, Running::Unclear { .. })
    })
    .await;
    assert_eq!(
        half,
        Running::Unclear {
            detail: "1 of 2 ready pods runs registry.example/chat:v1, \
                     1 runs registry.example/chat:v7"
                .into()
        }
    );
    // Room again: once all of the new pods are ready, blue runs v7 — though
    // the version annotation Switchyard wrote still says v1.
    fake.stall_rollouts(None);
    runs(&k, SlotName::Blue, "chat:v7", |r| *r == version("chat:v7")).await;
    let d = fake
        .object(Kind::Deployment, NS, "chat-blue")
        .expect("blue");
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v1"
    );
    // An image that names no version: unclear, and why.
    fake.edit(
        Kind::Deployment,
        NS,
        "chat-blue",
        json!({ "spec": { "template": { "spec": { "containers": containers("latest") } } } }),
    );
    let latest = runs(
        &k,
        SlotName::Blue,
        "latest",
        |r| matches!(r, Running::Unclear { detail } if detail.starts_with("all 2")),
    )
    .await;
    assert_eq!(
        latest,
        Running::Unclear {
            detail: "all 2 ready pods run registry.example/chat:latest (\"latest\" is not a \
                     version of chat)"
                .into()
        }
    );
    // Scaled to 0: nothing runs.
    fake.edit(
        Kind::Deployment,
        NS,
        "chat-blue",
        json!({ "spec": { "replicas": 0 } }),
    );
    runs(&k, SlotName::Blue, "nothing", |r| *r == Running::Nothing).await;
    // Green was left alone all along.
    assert_eq!(
        k.running(SlotName::Green).await.expect("green"),
        version("chat:v0")
    );

    // Without the permission to list pods: said, with the fix; and
    // `cluster test` asks for it.
    fake.deny("list", "pods");
    let e = k
        .running(SlotName::Green)
        .await
        .expect_err("forbidden")
        .to_string();
    assert!(
        e.contains("pods of Deployment chat-green")
            && e.contains("forbidden")
            && e.contains("Role"),
        "{e}"
    );
    let checks = k.test(&ClusterState::default()).await;
    let pods = checks
        .iter()
        .find(|c| c.check == "permission: list pods")
        .expect("the pods permission is checked");
    assert!(!pods.ok, "{pods:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until the fake's Rollout reaches `phase` (within 5 s).
async fn argo_phase(fake: &KubeFake, phase: &str) -> Value {
    for _ in 0..200 {
        let r = the_rollout(fake);
        if r["status"]["phase"] == phase {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the Rollout did not reach {phase}: {}", the_rollout(fake));
}

#[tokio::test]
async fn argo_running_reads_the_pods_behind_the_active_service_or_every_canary_pod() {
    // blueGreen: the preview pods take no traffic, so they do not count
    // until the promotion moves the active Service to them.
    let fake = argo_fake(blue_green_strategy()).await;
    let dir = temp_dir("argo-running");
    let a = argo_driver(&fake, &dir);
    runs(&a, SlotName::Blue, "chat:v0", |r| *r == version("chat:v0")).await;
    assert_eq!(
        a.running(SlotName::Green).await.expect("green"),
        Running::Nothing
    );
    let template = |v: &str| {
        json!({ "spec": { "template": {
            "metadata": { "annotations": { "switchyard.io/version": format!("chat:{v}") } },
            "spec": { "containers": containers(v) } } } })
    };
    fake.edit(Kind::Rollout, NS, "chat", template("v1"));
    let paused = argo_phase(&fake, "Paused").await;
    assert_eq!(
        paused["status"]["pauseConditions"][0]["reason"],
        "BlueGreenPause"
    );
    assert_eq!(
        a.running(SlotName::Blue).await.expect("blue"),
        version("chat:v0"),
        "the preview pods of v1 are up but take no traffic"
    );
    let listed = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "GET" && r.path == format!("/api/v1/namespaces/{NS}/pods"))
        .expect("the pods were listed");
    assert!(
        listed.query.contains("rollouts-pod-template-hash"),
        "the active Service's selector: {}",
        listed.query
    );
    // Promoted (as kubectl argo rollouts promote): the active Service moves.
    fake.edit(
        Kind::Rollout,
        NS,
        "chat",
        json!({ "status": { "pauseConditions": null } }),
    );
    runs(&a, SlotName::Blue, "chat:v1", |r| *r == version("chat:v1")).await;

    // canary: stable and canary pods share the traffic: unclear half-way.
    let fake = argo_fake(canary_strategy()).await;
    let a = argo_driver(&fake, &dir);
    runs(&a, SlotName::Blue, "chat:v0", |r| *r == version("chat:v0")).await;
    fake.edit(Kind::Rollout, NS, "chat", template("v1"));
    let half = runs(
        &a,
        SlotName::Blue,
        "a mix of v0 and v1",
        |r| matches!(r, Running::Unclear { detail } if detail.starts_with("2 of 4")),
    )
    .await;
    assert_eq!(
        half,
        Running::Unclear {
            detail: "2 of 4 ready pods run registry.example/chat:v0, \
                     2 run registry.example/chat:v1"
                .into()
        }
    );
    let paused = argo_phase(&fake, "Paused").await;
    assert_eq!(
        paused["status"]["pauseConditions"][0]["reason"],
        "CanaryPauseStep"
    );
    assert_eq!(
        a.running(SlotName::Blue).await.expect("blue"),
        half,
        "still both at the pause"
    );
    // Promoted to the end (as kubectl argo rollouts promote --full).
    fake.edit(
        Kind::Rollout,
        NS,
        "chat",
        json!({ "status": { "promoteFull": true, "pauseConditions": null } }),
    );
    runs(&a, SlotName::Blue, "chat:v1", |r| *r == version("chat:v1")).await;
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- the rolling update of one Deployment in place (`kubectl set image`) ----

#[tokio::test]
async fn a_rolling_update_sets_the_serving_deployments_image_and_watches_it_to_completion() {
    let fake = fake_with_contract().await;
    let dir = temp_dir("roll");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    fake.clear_requests();
    // Another writer first: the patch meets a newer resourceVersion, is read again.
    fake.interfere(1);
    k.roll(SlotName::Blue, &id("chat:v2"), Duration::from_secs(10))
        .await
        .expect("rolled out");
    let calls = fake.requests();
    let deploy = format!("/apis/apps/v1/namespaces/{NS}/deployments/chat-blue");
    let lines: Vec<String> = calls.iter().map(|c| c.line()).collect();
    // Read (is it set already?), read + patch (409), read + patch, then reads until complete.
    assert_eq!(
        lines[..5],
        [
            format!("GET {deploy}"),
            format!("GET {deploy}"),
            format!("PATCH {deploy}"),
            format!("GET {deploy}"),
            format!("PATCH {deploy}"),
        ],
        "{lines:?}"
    );
    assert!(
        lines[5..].iter().all(|l| *l == format!("GET {deploy}")),
        "{lines:?}"
    );
    assert!(
        lines.len() >= 8,
        "watched the rollout with several reads: {lines:?}"
    );
    assert_eq!(
        calls[4].content_type,
        "application/strategic-merge-patch+json"
    );
    assert_eq!(field_manager(&calls[4]).as_deref(), Some("switchyard"));
    assert_ne!(fake_rv_of(&calls[2]), fake_rv_of(&calls[4]));
    assert_eq!(
        calls[4].body,
        json!({
            "metadata": { "resourceVersion": fake_rv_of(&calls[4]) },
            "spec": { "template": {
                "metadata": { "annotations": { "switchyard.io/version": "chat:v2" } },
                "spec": { "containers": [ { "name": "model", "image": "registry.example/chat:v2" } ] }
            } }
        })
    );
    // The Service never moved: blue kept its traffic while its pods were replaced.
    assert_eq!(selector(&fake)["switchyard.io/slot"], "blue");
    let blue = fake
        .object(Kind::Deployment, NS, "chat-blue")
        .expect("blue");
    assert_eq!(blue["metadata"]["generation"], 2);
    assert_eq!(blue["status"]["updatedReplicas"], 2);
    assert_eq!(blue["status"]["availableReplicas"], 2);
    assert_eq!(
        blue["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v2"
    );
    assert_eq!(blue["metadata"]["annotations"]["other-writer"], "0");
    // The step's record: the patch with its generation, then the progress as it came.
    let writes = k.take_writes();
    assert!(
        writes[0].starts_with("patched Deployment chat-blue (strategic merge) with ")
            && writes[0].contains("generation 2"),
        "{writes:?}"
    );
    assert!(
        writes[1].starts_with("Deployment chat-blue generation 2 (observed 1): "),
        "the controller had not seen the change yet: {writes:?}"
    );
    assert!(writes.len() >= 3, "{writes:?}");
    assert_eq!(
        writes.last().map(String::as_str),
        Some(
            "Deployment chat-blue generation 2 (observed 2): 2 updated, 2 ready, 2 available of 2"
        ),
        "{writes:?}"
    );
    let state = ClusterState::default()
        .with_version(SlotName::Blue, Some(id("chat:v2")))
        .with_weights(Weights::all_on(SlotName::Blue));
    k.gate(&state).await.expect("v2 serves in blue, rolled out");
    assert_eq!(
        k.slot_health(SlotName::Blue, Some(&id("chat:v2")))
            .await
            .expect("health"),
        switchyard::drivers::SlotHealth::Ready
    );

    // Run again (the runner died after the patch): no second patch, only the watch.
    fake.clear_requests();
    k.roll(SlotName::Blue, &id("chat:v2"), Duration::from_secs(10))
        .await
        .expect("still rolled out");
    assert!(fake.requests().iter().all(|c| c.method == "GET"));
    let writes = k.take_writes();
    assert!(
        writes[0].starts_with("Deployment chat-blue already holds chat:v2 (generation 2)"),
        "{writes:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_rolling_update_that_exceeds_its_progress_deadline_is_undone_to_the_previous_revision() {
    let fake = fake_with_contract().await;
    let dir = temp_dir("roll-fail");
    let k = driver(&fake, &dir);
    settled(&fake).await;
    fake.fail_marker("chat:v9");
    fake.clear_requests();
    let e = k
        .roll(SlotName::Blue, &id("chat:v9"), Duration::from_secs(20))
        .await
        .expect_err("never completes")
        .to_string();
    assert!(
        e.starts_with(
            "chat:v9 did not roll out: deployment chat-blue exceeded its progress deadline"
        ),
        "{e}"
    );
    assert!(
        e.ends_with(
            "Deployment chat-blue was rolled back to its previous revision (as kubectl rollout \
             undo does) and that rollout is complete"
        ),
        "{e}"
    );
    // The writes: set image (strategic merge), then undo (merge) of the template.
    let patches: Vec<kubefake::Recorded> = fake
        .requests()
        .into_iter()
        .filter(|c| c.method == "PATCH" || c.path.ends_with("replicasets"))
        .collect();
    let deploy = format!("/apis/apps/v1/namespaces/{NS}/deployments/chat-blue");
    assert_eq!(
        patches.iter().map(|c| c.line()).collect::<Vec<_>>(),
        [
            format!("PATCH {deploy}"),
            format!("GET /apis/apps/v1/namespaces/{NS}/replicasets"),
            format!("PATCH {deploy}"),
        ]
    );
    assert_eq!(
        patches[0].content_type,
        "application/strategic-merge-patch+json"
    );
    assert_eq!(patches[2].content_type, "application/merge-patch+json");
    assert_eq!(
        patches[2].body["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v1"
    );
    let writes = k.take_writes();
    assert!(
        writes.iter().any(|w| w
            .starts_with("rolled back Deployment chat-blue to revision 1 (ReplicaSet chat-blue-")
            && w.contains("chat:v1")
            && w.contains("generation 3")),
        "{writes:?}"
    );
    // Blue runs chat:v1 again, fully available; the Service never moved.
    let blue = scaled(&fake, "chat-blue", 2).await;
    assert_eq!(
        blue["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v1"
    );
    assert_eq!(
        blue["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(selector(&fake)["switchyard.io/slot"], "blue");
    let h = k
        .slot_health(SlotName::Blue, Some(&id("chat:v1")))
        .await
        .expect("health");
    assert_eq!(h, switchyard::drivers::SlotHealth::Ready);

    // The API server away for the whole step: no undo of what cannot be read, words about it.
    fake.stop();
    let e = k
        .roll(SlotName::Blue, &id("chat:v3"), Duration::from_secs(1))
        .await
        .expect_err("unreachable")
        .to_string();
    assert!(e.contains("cannot reach the Kubernetes API server"), "{e}");
    fake.restart().await;
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

    /// Starts a `rolling` operation (no steps: the Deployment's own rolling update).
    async fn roll(&self, full_id: &str, extra: Value) -> i64 {
        let mut body = json!({ "kind": "rolling", "full_id": full_id, "reason": "test" });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, v) = self.post("/api/v1/clusters/k8s/operations", body).await;
        assert_eq!(status, 202, "{v}");
        v["operation_id"].as_i64().expect("operation id")
    }

    /// Registers chat's `versions` and the cluster `k8s` with `config`.
    async fn register(&self, versions: &[&str], config: Value) {
        for v in versions {
            let (status, body) = self
                .post(
                    "/api/v1/models/chat/versions",
                    json!({ "version": v, "config": { "v": v } }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        let (status, body) = self
            .post("/api/v1/clusters", json!({ "name": "k8s", "environment": "development", "driver": "kubernetes", "config": config }))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn finished(&self, id: i64) -> Value {
        for _ in 0..1200 {
            let op = self.get(&format!("/api/v1/operations/{id}")).await;
            if op["state"] != "running" {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let op = self.get(&format!("/api/v1/operations/{id}")).await;
        panic!("operation {id} did not end: {op}");
    }
}

/// The API in this process on a SQLite database in `dir`, without an
/// operation runner; also its database URL and a store on it.
async fn start_api(dir: &Path) -> (Api, String, switchyard::store::DynStore) {
    let database_url = format!("sqlite://{}", dir.join("switchyard.db").display());
    let app = Application::build(Config {
        database_url: database_url.clone(),
        addr: "127.0.0.1:0".parse().expect("address"),
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
        checkpoint_file: None,
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
    (api, database_url, store)
}

async fn start_switchyard(dir: &Path) -> Api {
    let (api, _, store) = start_api(dir).await;
    let settings = RunnerSettings {
        lease: Duration::from_secs(1),
        poll: Duration::from_millis(20),
        ready_timeout: Duration::from_secs(8),
    };
    let _runner = switchyard::operations::spawn(store, Drivers::default(), settings);
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_switch_roll_back_refuse_a_slot_never_ready_and_survive_the_api_server_going_away(
) {
    let fake = empty_cluster().await;
    let dir = temp_dir("ops");
    let kubeconfig = kubeconfig_of(&fake, &dir);
    let api = start_switchyard(&dir).await;
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
    api.register(&["v1", "v2", "v3", "v4", "v5"], driver_config(&kubeconfig))
        .await;
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

/// The image the container `model` of Deployment `name` runs.
fn image_of(fake: &KubeFake, name: &str) -> Value {
    fake.object(Kind::Deployment, NS, name).expect("deployment")["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_operation_updates_the_serving_deployment_in_place_and_undoes_a_failed_rollout() {
    let fake = empty_cluster().await;
    let dir = temp_dir("rolling-op");
    let api = start_switchyard(&dir).await;
    api.register(
        &["v1", "v2", "v3", "v4", "v5"],
        driver_config(&kubeconfig_of(&fake, &dir)),
    )
    .await;
    // Nothing serves yet: nothing to update in place.
    let (status, body) = api
        .post(
            "/api/v1/clusters/k8s/operations",
            json!({ "kind": "rolling", "full_id": "chat:v1", "reason": "t" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains("deploy with blue_green first"),
        "{body}"
    );
    let op = api.operate("chat:v1").await;
    assert_eq!(api.finished(op).await["state"], "succeeded");
    let live = selector(&fake)["switchyard.io/slot"]
        .as_str()
        .expect("slot")
        .to_owned();
    let idle = if live == "blue" { "green" } else { "blue" };
    let live_name = format!("chat-{live}");
    let idle_before = fake.object(Kind::Deployment, NS, &format!("chat-{idle}"));

    // Split weights cannot be set: refused with what to do, nothing started.
    let (status, body) = api
        .post(
            "/api/v1/clusters/k8s/operations",
            json!({ "kind": "rolling", "full_id": "chat:v2", "reason": "t", "steps": [10, 100] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("leave `steps` out"), "{body}");

    // The rolling update: one step on the serving Deployment, the Service untouched.
    let id = api.roll("chat:v2", json!({})).await;
    let done = api.finished(id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let steps = done["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{done}");
    assert_eq!(
        (
            steps[0]["action"].as_str(),
            steps[0]["slot"].as_str(),
            steps[0]["full_id"].as_str()
        ),
        (Some("roll"), Some(live.as_str()), Some("chat:v2")),
        "{done}"
    );
    let note = steps[0]["note"].as_str().unwrap_or("");
    assert!(
        note.starts_with(&format!("chat:v2 rolled out in {live} in ")),
        "{note}"
    );
    assert!(
        note.contains(&format!("patched Deployment {live_name} (strategic merge) with "))
            && note.contains("registry.example/chat:v2")
            && note.contains(&format!(
                "Deployment {live_name} generation 3 (observed 3): 2 updated, 2 ready, 2 available of 2"
            )),
        "{note}"
    );
    assert_eq!(selector(&fake)["switchyard.io/slot"], live.as_str());
    assert_eq!(image_of(&fake, &live_name), "registry.example/chat:v2");
    assert_eq!(
        fake.object(Kind::Deployment, NS, &format!("chat-{idle}"))
            .map(|d| d["spec"].clone()),
        idle_before.map(|d| d["spec"].clone()),
        "the other slot is left alone"
    );
    // Serving now: the live slot holds v2, and the driver sees it rolled out there.
    let cluster = api.get("/api/v1/clusters/k8s").await;
    let slots = cluster["slots"].as_array().cloned().unwrap_or_default();
    let held = slots
        .iter()
        .find(|s| s["slot"] == live.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(held["full_id"], "chat:v2", "{cluster}");
    assert_eq!(held["health"], "ready", "{cluster}");

    // v3 never becomes ready: the step fails after kubectl-rollout-undo; v2 serves on.
    fake.fail_marker("chat:v3");
    let id = api.roll("chat:v3", json!({})).await;
    let done = api.finished(id).await;
    assert_eq!(done["state"], "failed", "{done}");
    let error = done["steps"][0]["note"].as_str().unwrap_or("").to_owned();
    assert!(
        error.contains(&format!(
            "chat:v3 did not roll out: deployment {live_name} exceeded its progress deadline"
        )) && error.contains("was rolled back to its previous revision")
            && error.contains(&format!("rolled back Deployment {live_name} to revision 3")),
        "{error}"
    );
    assert_eq!(image_of(&fake, &live_name), "registry.example/chat:v2");
    let cluster = api.get("/api/v1/clusters/k8s").await;
    assert!(
        cluster.to_string().contains("chat:v2") && !cluster.to_string().contains("chat:v3"),
        "{cluster}"
    );

    // The API server goes away right after the patch and comes back within
    // the readiness timeout: the watch carries on and the update completes.
    let id = api.roll("chat:v5", json!({})).await;
    for _ in 0..200 {
        if fake
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.body.to_string().contains("chat:v5"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fake.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fake.restart().await;
    let done = api.finished(id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(image_of(&fake, &live_name), "registry.example/chat:v5");

    // A baked rolling update paused by a person and rolled back: the restore
    // rolls the same Deployment back to what served (v5).
    let id = api.roll("chat:v4", json!({ "bake_seconds": 2 })).await;
    for _ in 0..400 {
        let op = api.get(&format!("/api/v1/operations/{id}")).await;
        if op["steps"][1]["state"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(image_of(&fake, &live_name), "registry.example/chat:v4");
    let (status, body) = api
        .post(
            &format!("/api/v1/operations/{id}/pause"),
            json!({ "reason": "odd answers" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = api
        .post(
            &format!("/api/v1/operations/{id}/rollback"),
            json!({ "reason": "odd answers" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let done = api.finished(id).await;
    assert_eq!(done["state"], "rolled_back", "{done}");
    let last = done["steps"]
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        (
            last["action"].as_str(),
            last["full_id"].as_str(),
            last["restore"].as_bool(),
            last["state"].as_str()
        ),
        (Some("roll"), Some("chat:v5"), Some(true), Some("done")),
        "{done}"
    );
    assert_eq!(image_of(&fake, &live_name), "registry.example/chat:v5");
    assert_eq!(selector(&fake)["switchyard.io/slot"], live.as_str());
    let verify = api.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baked_switch_releases_the_old_deployment_after_the_bake_and_a_rollback_scales_it_back() {
    let fake = empty_cluster().await;
    let dir = temp_dir("bake");
    let api = start_switchyard(&dir).await;
    api.register(&["v1", "v2"], driver_config(&kubeconfig_of(&fake, &dir)))
        .await;
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
    // Once v7's pods are ready, blue runs v7; kubectl lists the same pods.
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
    runs(&k, SlotName::Blue, "chat:v7", |r| *r == version("chat:v7")).await;
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "get",
            "pods",
            "-l",
            "app=chat,switchyard.io/slot=blue",
            "-o",
            "json",
        ],
        None,
    )
    .await;
    assert!(ok, "kubectl get pods: {err}");
    let pods: Value = serde_json::from_str(&out).expect("kubectl printed JSON");
    let items = pods["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{out}");
    for pod in items {
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            "registry.example/chat:v7"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert!(pod["metadata"]["labels"]["pod-template-hash"].is_string());
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .expect("a Ready condition");
        assert_eq!(ready["status"], "True", "{pod}");
    }
    let (ok, out, err) = run_kubectl(&bin, &dir, &["get", "pods"], None).await;
    assert!(ok, "{err}");
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains("2/2")).count(),
        4,
        "{out}"
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

/// Issue #19 item 4, end to end: a switch makes v1 serve, the real `kubectl
/// set image` changes the serving Deployment to v7 by hand, the fake's
/// controller rolls the pods, and the drift watcher reads the pods (not the
/// version annotation Switchyard wrote) and records the drift once, then its
/// clearing once the image is set back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drift_watcher_records_a_kubectl_set_image_on_the_serving_deployment_once_and_its_undo() {
    use switchyard::store::clusters::ObservationOutcome;

    let Some(bin) = kubectl() else { return };
    let fake = empty_cluster().await;
    let dir = temp_dir("drift");
    let kubeconfig = kubeconfig_of(&fake, &dir);
    let (api, _, store) = start_api(&dir).await;
    api.register(&["v1", "v7"], driver_config(&kubeconfig)).await;
    let runner = switchyard::operations::spawn(
        store.clone(),
        Drivers::default(),
        RunnerSettings {
            lease: Duration::from_secs(1),
            poll: Duration::from_millis(20),
            ready_timeout: Duration::from_secs(8),
        },
    );
    let op = api.operate("chat:v1").await;
    let done = api.finished(op).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    runner.abort();
    let serving = selector(&fake)["switchyard.io/slot"]
        .as_str()
        .expect("the Service selects a slot")
        .to_owned();
    let r = api
        .http
        .put(format!("{}/api/v1/environments/development/pins/chat", api.base))
        .json(&json!({ "version": "v1", "reason": "baseline" }))
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_success(), "pin: {:?}", r.text().await);

    // The watcher's own drivers, as on a server other than the one that deployed.
    let mut watcher =
        switchyard::drift::Watcher::new(store.clone(), Drivers::default(), Duration::from_secs(5));
    async fn one(watcher: &mut switchyard::drift::Watcher) -> ObservationOutcome {
        let mut done = watcher.pass().await;
        assert_eq!(done.len(), 1, "{done:?}");
        done.pop().map(|(_, o)| o).expect("one cluster")
    }
    assert_eq!(one(&mut watcher).await, ObservationOutcome::Unchanged, "serves v1 as recorded and pinned");

    // By hand: kubectl sets the serving Deployment's image to v7 and waits for the rollout.
    let deployment = format!("deployment/chat-{serving}");
    let set = |v: &'static str| {
        let (bin, dir, deployment) = (bin.clone(), dir.clone(), deployment.clone());
        async move {
            let image = format!("model=registry.example/chat:{v}");
            let (ok, out, err) =
                run_kubectl(&bin, &dir, &["set", "image", &deployment, &image], None).await;
            assert!(ok, "kubectl set image: {out}\n{err}");
            let (ok, out, err) = run_kubectl(
                &bin,
                &dir,
                &["rollout", "status", &deployment, "--timeout=30s"],
                None,
            )
            .await;
            assert!(ok && out.contains("successfully rolled out"), "{out}\n{err}");
        }
    };
    set("v7").await;
    // Switchyard's version annotation still says v1: only the pods tell.
    let d = fake
        .object(Kind::Deployment, NS, &format!("chat-{serving}"))
        .expect("the serving Deployment");
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v1"
    );
    let detected = one(&mut watcher).await;
    assert!(
        matches!(&detected, ObservationOutcome::Recorded { action, .. } if *action == "cluster.drift_detected"),
        "{detected:?}"
    );
    assert_eq!(one(&mut watcher).await, ObservationOutcome::Unchanged, "a second pass records nothing new");
    let audit = api.get("/api/v1/audit?action=cluster.drift_detected").await;
    let events = audit["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{audit}");
    let ev = &events[0];
    assert_eq!((&ev["actor"], &ev["cluster"]), (&json!("system"), &json!("k8s")));
    let summary = ev["details"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!(
            "{serving} (100%) runs chat:v7 but Switchyard recorded chat:v1 there"
        )) && summary.contains(&format!("{serving} (100%) runs chat:v7; development pins chat:v1")),
        "{ev}"
    );

    // Set back by hand: the drift is cleared, once.
    set("v1").await;
    let cleared = one(&mut watcher).await;
    assert!(
        matches!(&cleared, ObservationOutcome::Recorded { action, .. } if *action == "cluster.drift_cleared"),
        "{cleared:?}"
    );
    assert_eq!(one(&mut watcher).await, ObservationOutcome::Unchanged);
    let audit = api.get("/api/v1/audit?action=cluster.drift_cleared").await;
    assert_eq!(audit["events"].as_array().map(Vec::len), Some(1), "{audit}");
    let audit = api.get("/api/v1/audit?action=cluster.drift_detected").await;
    assert_eq!(audit["events"].as_array().map(Vec::len), Some(1), "{audit}");
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
    let fake = empty_cluster().await;
    let dir = temp_dir("kill9");
    let kubeconfig = kubeconfig_of(&fake, &dir);
    // The API in this process (no runner); operations run in the real binary.
    let (api, database_url, _) = start_api(&dir).await;
    api.register(&["v1", "v2", "v3"], driver_config(&kubeconfig))
        .await;
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

    // A rolling update in place: the Deployment's patch is applied, its
    // answer withheld, the runner killed there. The next runner finds the
    // template set, does not patch it again, and watches the rollout.
    let deploy = format!("chat-{after}");
    fake.clear_requests();
    fake.hold_next_patch(Kind::Deployment);
    let id = api.roll("chat:v3", json!({})).await;
    let served = Served::start(&database_url, &log);
    tokio::time::timeout(Duration::from_secs(60), fake.held())
        .await
        .expect("the runner reached the Deployment patch");
    served.kill9();
    let at_kill = fake.requests().len();
    let op = api.get(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(op["steps"][0]["state"], "running", "{op}");
    let served = Served::start(&database_url, &log);
    let op = api.finished(id).await;
    served.kill9();
    assert_eq!(op["state"], "succeeded", "{op}");
    // The killed runner's patch was its last write (after a 409 retry,
    // maybe); the next runner only watches: no second patch.
    let calls = fake.requests();
    let patch = format!("PATCH /apis/apps/v1/namespaces/{NS}/deployments/{deploy}");
    assert_eq!(
        calls[..at_kill]
            .iter()
            .rev()
            .find(|r| r.method == "PATCH")
            .map(|r| r.line()),
        Some(patch)
    );
    assert!(
        calls[at_kill..].iter().all(|r| r.method == "GET"),
        "no second patch"
    );
    let note = op["steps"][0]["note"].as_str().unwrap_or("");
    assert!(
        note.contains(&format!("Deployment {deploy} already holds chat:v3")),
        "{note}"
    );
    assert_eq!(image_of(&fake, &deploy), "registry.example/chat:v3");
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

// ---- Argo Rollouts mode: one Rollout (argoproj.io/v1alpha1) ----

const ROLLOUT: &str = "/apis/argoproj.io/v1alpha1/namespaces/serving/rollouts/chat";

/// The Rollout `chat` holding chat:v0 with `strategy`.
fn rollout_object(strategy: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": { "name": "chat" },
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 2,
            "selector": { "matchLabels": { "app": "chat" } },
            "template": {
                "metadata": { "labels": { "app": "chat" },
                    "annotations": { "switchyard.io/version": "chat:v0" } },
                "spec": { "containers": [
                    { "name": "model", "image": "registry.example/chat:v0",
                      "ports": [{ "containerPort": 8080 }] },
                    { "name": "sidecar", "image": "registry.example/proxy:1" }
                ] }
            },
            "strategy": strategy
        }
    })
}

fn blue_green_strategy() -> Value {
    json!({ "blueGreen": { "activeService": "chat-active", "previewService": "chat-preview",
        "autoPromotionEnabled": false } })
}

fn canary_strategy() -> Value {
    json!({ "canary": { "steps": [
        { "setWeight": 20 }, { "pause": {} }, { "setWeight": 60 }, { "pause": {} }
    ] } })
}

/// The fake with a Rollout of `strategy` (and the blue-green Services), settled.
async fn argo_fake(strategy: Value) -> KubeFake {
    let fake = KubeFake::start().await;
    for name in ["chat-active", "chat-preview"] {
        fake.create(
            Kind::Service,
            NS,
            json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
                "spec": { "selector": { "app": "chat" }, "ports": [{ "port": 80, "targetPort": 8080 }] } }),
        );
    }
    fake.create(Kind::Rollout, NS, rollout_object(strategy));
    argo_healthy(&fake).await;
    fake
}

fn argo_config(kubeconfig: &Path) -> Value {
    json!({
        "kubeconfig": kubeconfig, "namespace": NS, "model": "chat", "rollout": "chat",
        "container": "model", "image": "registry.example/chat"
    })
}

fn argo_driver(fake: &KubeFake, dir: &Path) -> ArgoRollout {
    let kubeconfig = kubeconfig_of(fake, dir);
    ArgoRollout::new(ArgoConfig::parse(&argo_config(&kubeconfig)).expect("config"))
}

fn the_rollout(fake: &KubeFake) -> Value {
    fake.object(Kind::Rollout, NS, "chat").expect("rollout")
}

/// Waits until the fake's Rollout is healthy for its generation.
async fn argo_healthy(fake: &KubeFake) -> Value {
    for _ in 0..200 {
        let r = the_rollout(fake);
        let s = &r["status"];
        if s["phase"] == "Healthy"
            && s["observedGeneration"].as_str()
                == Some(r["metadata"]["generation"].to_string().as_str())
            && s["currentPodHash"] == s["stableRS"]
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the Rollout did not become healthy: {}", the_rollout(fake));
}

fn lines_of(calls: &[kubefake::Recorded]) -> Vec<String> {
    calls.iter().map(|c| c.line()).collect()
}

#[tokio::test]
async fn argo_blue_green_sets_the_template_promotes_the_preview_and_undoes_to_an_earlier_revision()
{
    let fake = argo_fake(blue_green_strategy()).await;
    let dir = temp_dir("argo-bg");
    let a = argo_driver(&fake, &dir);
    let first = the_rollout(&fake);
    fake.clear_requests();
    // Another writer first: the template patch meets a newer resourceVersion.
    fake.interfere(1);
    a.roll(SlotName::Blue, &id("chat:v1"), Duration::from_secs(10))
        .await
        .expect("rolled out");
    let calls = fake.requests();
    let lines = lines_of(&calls);
    let rs = format!("GET /apis/apps/v1/namespaces/{NS}/replicasets");
    // Read, the ReplicaSets (is chat:v1 an earlier revision?), patch (409), again.
    assert_eq!(
        lines[..6],
        [
            format!("GET {ROLLOUT}"),
            rs.clone(),
            format!("PATCH {ROLLOUT}"),
            format!("GET {ROLLOUT}"),
            rs.clone(),
            format!("PATCH {ROLLOUT}"),
        ],
        "{lines:?}"
    );
    // A custom resource takes a merge patch: the whole containers list, one image changed.
    assert_eq!(calls[5].content_type, "application/merge-patch+json");
    assert_eq!(field_manager(&calls[5]).as_deref(), Some("switchyard"));
    assert_ne!(fake_rv_of(&calls[2]), fake_rv_of(&calls[5]));
    assert_eq!(
        calls[5].body,
        json!({
            "metadata": { "resourceVersion": fake_rv_of(&calls[5]) },
            "spec": { "template": {
                "metadata": { "annotations": { "switchyard.io/version": "chat:v1" } },
                "spec": { "containers": [
                    { "name": "model", "image": "registry.example/chat:v1", "ports": [{ "containerPort": 8080 }] },
                    { "name": "sidecar", "image": "registry.example/proxy:1" }
                ] }
            } }
        })
    );
    // Then reads until paused at BlueGreenPause, one promote on the status subresource, reads until healthy.
    let promotes: Vec<&kubefake::Recorded> =
        calls[6..].iter().filter(|c| c.method != "GET").collect();
    assert_eq!(promotes.len(), 1, "{lines:?}");
    assert_eq!(promotes[0].line(), format!("PATCH {ROLLOUT}/status"));
    assert_eq!(promotes[0].content_type, "application/merge-patch+json");
    assert_eq!(
        promotes[0].body["status"],
        json!({ "pauseConditions": null })
    );
    assert!(promotes[0].body["metadata"]["resourceVersion"].is_string());
    assert!(calls[6..]
        .iter()
        .all(|c| c.line() == format!("GET {ROLLOUT}")
            || c.line() == format!("PATCH {ROLLOUT}/status")));
    let r = argo_healthy(&fake).await;
    let stable = r["status"]["stableRS"].as_str().expect("stable").to_owned();
    assert_ne!(Some(stable.as_str()), first["status"]["stableRS"].as_str());
    assert_eq!(r["status"]["blueGreen"]["activeSelector"], stable.as_str());
    let active = fake
        .object(Kind::Service, NS, "chat-active")
        .expect("active");
    assert_eq!(
        active["spec"]["selector"]["rollouts-pod-template-hash"],
        stable.as_str()
    );
    assert_eq!(
        r["metadata"]["annotations"]["other-writer"], "0",
        "the other writer's change kept"
    );
    let writes = a.take_writes();
    assert!(
        writes[0].starts_with("set chat:v1: patched Rollout chat (merge) with "),
        "{writes:?}"
    );
    assert!(
        writes.iter().any(|w| w.starts_with("promote past BlueGreenPause (as kubectl argo rollouts promote): patched Rollout chat/status (merge)")),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|w| w.contains("Paused(\"BlueGreenPause\")")),
        "{writes:?}"
    );
    assert_eq!(
        a.slot_health(SlotName::Blue, Some(&id("chat:v1")))
            .await
            .expect("health"),
        switchyard::drivers::SlotHealth::Ready
    );

    // Back to chat:v0, which an earlier ReplicaSet ran: undo to its revision
    // (its template, without the hash label), promoted again.
    fake.clear_requests();
    a.roll(SlotName::Blue, &id("chat:v0"), Duration::from_secs(10))
        .await
        .expect("undone");
    let writes = a.take_writes();
    assert!(
        writes[0].starts_with("undo to revision 1 (chat:v0, as kubectl argo rollouts undo): patched Rollout chat (merge) with "),
        "{writes:?}"
    );
    let undo = fake
        .requests()
        .into_iter()
        .find(|c| c.line() == format!("PATCH {ROLLOUT}"))
        .expect("undo patch");
    assert_eq!(
        undo.body["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v0"
    );
    assert!(
        !undo
            .body
            .to_string()
            .contains("rollouts-pod-template-hash\":\""),
        "{}",
        undo.body
    );
    let r = argo_healthy(&fake).await;
    assert_eq!(
        r["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v0"
    );
    assert_eq!(
        r["metadata"]["annotations"]["rollout.argoproj.io/revision"],
        "3"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn argo_canary_is_promoted_through_each_pause_and_a_failed_update_is_aborted_and_undone() {
    let fake = argo_fake(canary_strategy()).await;
    let dir = temp_dir("argo-canary");
    let a = argo_driver(&fake, &dir);
    fake.clear_requests();
    a.roll(SlotName::Blue, &id("chat:v1"), Duration::from_secs(10))
        .await
        .expect("rolled out");
    let writes: Vec<kubefake::Recorded> = fake
        .requests()
        .into_iter()
        .filter(|c| c.method == "PATCH")
        .collect();
    // The template, then one promote per pause step, each on the status subresource.
    assert_eq!(
        lines_of(&writes),
        [
            format!("PATCH {ROLLOUT}"),
            format!("PATCH {ROLLOUT}/status"),
            format!("PATCH {ROLLOUT}/status"),
        ]
    );
    assert!(writes[1..]
        .iter()
        .all(|w| w.body["status"] == json!({ "pauseConditions": null })));
    let notes = a.take_writes();
    assert!(
        notes
            .iter()
            .any(|w| w.contains("Paused(\"CanaryPauseStep\"), step 1")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|w| w.contains("Paused(\"CanaryPauseStep\"), step 3")),
        "{notes:?}"
    );
    let r = argo_healthy(&fake).await;
    assert_eq!(r["status"]["currentStepIndex"], 4);
    let stable_v1 = r["status"]["stableRS"].clone();

    // chat:v9 never gets ready pods: Degraded (progress deadline), then
    // abort and undo to the stable revision; chat:v1 kept serving.
    fake.fail_marker("chat:v9");
    fake.clear_requests();
    let e = a
        .roll(SlotName::Blue, &id("chat:v9"), Duration::from_secs(20))
        .await
        .expect_err("never healthy")
        .to_string();
    assert!(
        e.starts_with("chat:v9 did not roll out: ProgressDeadlineExceeded: ReplicaSet"),
        "{e}"
    );
    assert!(
        e.contains("Rollout chat was aborted and undone to its stable revision 2 (as kubectl argo rollouts abort and undo do), which is healthy"),
        "{e}"
    );
    let writes: Vec<kubefake::Recorded> = fake
        .requests()
        .into_iter()
        .filter(|c| c.method == "PATCH")
        .collect();
    assert_eq!(
        lines_of(&writes),
        [
            format!("PATCH {ROLLOUT}"),
            format!("PATCH {ROLLOUT}/status"),
            format!("PATCH {ROLLOUT}"),
        ]
    );
    assert_eq!(writes[1].body["status"], json!({ "abort": true }));
    assert_eq!(
        writes[2].body["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"],
        "chat:v1"
    );
    let r = argo_healthy(&fake).await;
    assert_eq!(
        r["status"]["stableRS"], stable_v1,
        "the stable pods never changed"
    );
    assert!(
        r["status"]["abort"].is_null(),
        "the abort is cleared once stable: {r}"
    );

    // Retry: an update someone aborted is retried by clearing the abort.
    fake.edit(
        Kind::Rollout,
        NS,
        "chat",
        json!({ "spec": { "template": {
            "metadata": { "annotations": { "switchyard.io/version": "chat:v2" } },
            "spec": { "containers": [
                { "name": "model", "image": "registry.example/chat:v2", "ports": [{ "containerPort": 8080 }] },
                { "name": "sidecar", "image": "registry.example/proxy:1" } ] } } } }),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.edit(
        Kind::Rollout,
        NS,
        "chat",
        json!({ "status": { "abort": true } }),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(the_rollout(&fake)["status"]["phase"], "Degraded");
    fake.clear_requests();
    a.roll(SlotName::Blue, &id("chat:v2"), Duration::from_secs(10))
        .await
        .expect("retried and promoted");
    let writes: Vec<kubefake::Recorded> = fake
        .requests()
        .into_iter()
        .filter(|c| c.method == "PATCH")
        .collect();
    assert_eq!(writes[0].line(), format!("PATCH {ROLLOUT}/status"));
    assert_eq!(writes[0].body["status"], json!({ "abort": false }));
    assert!(writes[1..]
        .iter()
        .all(|w| w.line() == format!("PATCH {ROLLOUT}/status")
            && w.body["status"] == json!({ "pauseConditions": null })));
    argo_healthy(&fake).await;

    // A rollback while an update is under way: abort it first, then undo.
    fake.edit(
        Kind::Rollout,
        NS,
        "chat",
        json!({ "spec": { "template": {
            "metadata": { "annotations": { "switchyard.io/version": "chat:v3" } },
            "spec": { "containers": [
                { "name": "model", "image": "registry.example/chat:v3", "ports": [{ "containerPort": 8080 }] },
                { "name": "sidecar", "image": "registry.example/proxy:1" } ] } } } }),
    );
    for _ in 0..100 {
        if the_rollout(&fake)["status"]["phase"] == "Paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    fake.clear_requests();
    a.roll(SlotName::Blue, &id("chat:v2"), Duration::from_secs(10))
        .await
        .expect("back on chat:v2");
    let writes: Vec<kubefake::Recorded> = fake
        .requests()
        .into_iter()
        .filter(|c| c.method == "PATCH")
        .collect();
    // The abort first, the undo after it (each again after a 409, when the
    // controller wrote the status in between: never without the read).
    let lines = lines_of(&writes);
    let undo_at = lines
        .iter()
        .position(|l| *l == format!("PATCH {ROLLOUT}"))
        .expect("an undo");
    assert!(undo_at >= 1 && lines.len() <= 6, "{lines:?}");
    assert!(
        writes[..undo_at]
            .iter()
            .all(|w| w.line() == format!("PATCH {ROLLOUT}/status")
                && w.body["status"] == json!({ "abort": true })),
        "{lines:?}"
    );
    assert!(
        writes[undo_at..]
            .iter()
            .all(|w| w.line() == format!("PATCH {ROLLOUT}")
                && w.body["spec"]["template"]["metadata"]["annotations"]["switchyard.io/version"]
                    == "chat:v2"),
        "{lines:?}"
    );
    let rvs: Vec<&Value> = writes
        .iter()
        .map(|w| &w.body["metadata"]["resourceVersion"])
        .collect();
    assert!(
        rvs.iter().all(|rv| rv.is_string()),
        "every write guarded: {rvs:?}"
    );
    let r = argo_healthy(&fake).await;
    assert_eq!(
        r["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v2"
    );

    // The API server away: words about it, nothing undone blindly.
    fake.stop();
    let e = a
        .roll(SlotName::Blue, &id("chat:v4"), Duration::from_secs(1))
        .await
        .expect_err("unreachable")
        .to_string();
    assert!(e.contains("cannot reach the Kubernetes API server"), "{e}");
    fake.restart().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn argo_cluster_test_checks_the_crd_the_strategy_its_services_and_rbac_on_rollouts() {
    let fake = argo_fake(blue_green_strategy()).await;
    let dir = temp_dir("argo-test");
    let a = argo_driver(&fake, &dir);
    let state = ClusterState::default();
    let checks = a.test(&state).await;
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{checks:?}");
    let names: Vec<&str> = checks.iter().map(|c| c.check.as_str()).collect();
    assert_eq!(
        names,
        [
            "Kubernetes API server",
            "Argo Rollouts",
            "permission: get rollouts.argoproj.io",
            "permission: patch rollouts.argoproj.io",
            "permission: patch rollouts/status.argoproj.io",
            "permission: list replicasets.apps",
            "permission: get services",
            "permission: list pods",
            "Rollout chat",
            "slot blue",
            "slot green",
        ]
    );
    assert_eq!(
        checks[8].detail,
        "blueGreen strategy: activeService chat-active, previewService chat-preview, promoted by Switchyard"
    );
    // Denied status patches, a missing preview Service: each named with its fix.
    fake.deny("patch", "rollouts");
    fake.edit(
        Kind::Rollout,
        NS,
        "chat",
        json!({ "spec": { "strategy": { "blueGreen": { "previewService": "chat-nowhere" } } } }),
    );
    let checks = a.test(&state).await;
    let failed: Vec<(&str, &str)> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| (c.check.as_str(), c.advice.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(failed.len(), 3, "{checks:?}");
    assert_eq!(failed[0].0, "permission: patch rollouts.argoproj.io");
    assert_eq!(failed[1].0, "permission: patch rollouts/status.argoproj.io");
    assert!(failed[1].1.contains("Argo Rollouts mode"), "{failed:?}");
    assert_eq!(failed[2].0, "Rollout chat");
    let preview = checks
        .iter()
        .find(|c| c.check == "Rollout chat")
        .expect("rollout check");
    assert!(
        preview
            .detail
            .contains("previewService chat-nowhere: not found"),
        "{preview:?}"
    );
    // A canary Rollout reports its steps.
    let fake2 = argo_fake(canary_strategy()).await;
    let dir2 = temp_dir("argo-test2");
    let a2 = argo_driver(&fake2, &dir2);
    let checks = a2.test(&state).await;
    let rollout = checks
        .iter()
        .find(|c| c.check == "Rollout chat")
        .expect("rollout check");
    assert_eq!(
        rollout.detail,
        "canary strategy: 4 steps, 2 pauses (promoted by Switchyard)"
    );
    // No Rollout by that name.
    let mut other = argo_config(&dir2.join("kubeconfig"));
    other["rollout"] = json!("chat-missing");
    let a3 = ArgoRollout::new(ArgoConfig::parse(&other).expect("config"));
    let checks = a3.test(&state).await;
    let last = checks.last().expect("checks");
    assert_eq!(last.check, "Rollout chat-missing");
    assert!(
        !last.ok && last.detail.contains("not found in namespace serving"),
        "{last:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_kubectl_reads_and_patches_the_fakes_rollouts() {
    let Some(bin) = kubectl() else {
        return;
    };
    let fake = argo_fake(canary_strategy()).await;
    let dir = temp_dir("argo-kubectl");
    kubeconfig_of(&fake, &dir);
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &["get", "rollouts.argoproj.io", "-o", "json"],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(list["items"][0]["kind"], "Rollout");
    assert_eq!(list["items"][0]["status"]["phase"], "Healthy");
    // The short name and the printer columns, through discovery of the CRD's group.
    let (ok, out, err) = run_kubectl(&bin, &dir, &["get", "ro"], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("DESIRED") && out.contains("chat"), "{out}");
    // kubectl sets the image with a merge patch (a custom resource takes no strategic one) …
    let (ok, _, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "patch", "rollout", "chat", "--type=merge", "-p",
            r#"{"spec":{"template":{"metadata":{"annotations":{"switchyard.io/version":"chat:v1"}},"spec":{"containers":[{"name":"model","image":"registry.example/chat:v1"},{"name":"sidecar","image":"registry.example/proxy:1"}]}}}}"#,
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "set",
            "image",
            "rollout/chat",
            "model=registry.example/chat:v7",
        ],
        None,
    )
    .await;
    assert!(!ok, "set image is refused for a custom resource");
    // kubectl's own `set image` knows no Rollout (the argo plugin has its own).
    assert!(
        err.contains("no kind \"Rollout\" is registered for version \"argoproj.io/v1alpha1\""),
        "{err}"
    );
    // … and promotes through a pause as the argo plugin does: a status subresource patch.
    for _ in 0..100 {
        if the_rollout(&fake)["status"]["phase"] == "Paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        the_rollout(&fake)["status"]["pauseConditions"][0]["reason"],
        "CanaryPauseStep"
    );
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "patch",
            "rollout",
            "chat",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"pauseConditions":null}}"#,
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("rollout.argoproj.io/chat patched"), "{out}");
    let status = fake
        .requests()
        .into_iter()
        .rev()
        .find(|c| c.method == "PATCH")
        .expect("the patch");
    assert_eq!(status.line(), format!("PATCH {ROLLOUT}/status"));
    for _ in 0..100 {
        if the_rollout(&fake)["status"]["currentStepIndex"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        the_rollout(&fake)["status"]["currentStepIndex"],
        3,
        "{}",
        the_rollout(&fake)
    );
    let (ok, out, err) = run_kubectl(
        &bin,
        &dir,
        &[
            "get",
            "rollout",
            "chat",
            "-o",
            "jsonpath={.status.phase} {.status.observedGeneration}",
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "Paused 2");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_operations_switch_roll_roll_back_fail_and_survive_the_api_server_going_away() {
    let fake = argo_fake(canary_strategy()).await;
    let dir = temp_dir("argo-ops");
    let api = start_switchyard(&dir).await;
    api.register(
        &["v1", "v2", "v3", "v4"],
        argo_config(&kubeconfig_of(&fake, &dir)),
    )
    .await;
    let (status, test) = api.post("/api/v1/clusters/k8s/test", json!({})).await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["ok"], true, "{test}");

    // A blue-green switch is the first deploy: one roll of the Rollout (slot blue).
    let op = api.operate("chat:v1").await;
    let done = api.finished(op).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let steps = done["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{done}");
    assert_eq!(
        (steps[0]["action"].as_str(), steps[0]["slot"].as_str()),
        (Some("roll"), Some("blue"))
    );
    let note = steps[0]["note"].as_str().unwrap_or("");
    assert!(
        note.contains("set chat:v1: patched Rollout chat (merge) with ")
            && note.matches("promote past CanaryPauseStep (as kubectl argo rollouts promote): patched Rollout chat/status (merge)").count() == 2,
        "{note}"
    );
    // Split weights are the Rollout's steps: refused; a hot reload needs two slots: refused.
    let (status, body) = api
        .post(
            "/api/v1/clusters/k8s/operations",
            json!({ "kind": "rolling", "full_id": "chat:v2", "reason": "t", "steps": [50, 100] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api
        .post(
            "/api/v1/clusters/k8s/operations",
            json!({ "kind": "hot_reload", "full_id": "chat:v2", "reason": "t" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("use blue_green"), "{body}");

    // A rolling update: the same Rollout, promoted through its canary steps.
    let done = api.finished(api.roll("chat:v2", json!({})).await).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let cluster = api.get("/api/v1/clusters/k8s").await;
    let blue = cluster["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["slot"] == "blue"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        (blue["full_id"].as_str(), blue["health"].as_str()),
        (Some("chat:v2"), Some("ready")),
        "{cluster}"
    );

    // Rollback: undo to the revision that ran chat:v1.
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
    assert!(
        done["steps"][0]["note"]
            .as_str()
            .unwrap_or("")
            .contains("undo to revision 2 (chat:v1, as kubectl argo rollouts undo)"),
        "{done}"
    );
    assert_eq!(
        argo_healthy(&fake).await["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v1"
    );

    // chat:v3 never gets ready pods: aborted, undone, the operation fails; chat:v1 serves.
    fake.fail_marker("chat:v3");
    let done = api.finished(api.roll("chat:v3", json!({})).await).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done.to_string()
            .contains("was aborted and undone to its stable revision"),
        "{done}"
    );
    let cluster = api.get("/api/v1/clusters/k8s").await;
    assert!(
        cluster.to_string().contains("chat:v1") && !cluster.to_string().contains("chat:v3"),
        "{cluster}"
    );

    // The API server goes away right after the template patch and comes back: carried on.
    let id = api.operate("chat:v4").await;
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
    let done = api.finished(id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        argo_healthy(&fake).await["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v4"
    );
    let verify = api.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_a_kill_9_between_the_template_patch_and_the_promotes_resumes_without_a_second_patch()
{
    let fake = argo_fake(blue_green_strategy()).await;
    let dir = temp_dir("argo-kill9");
    let kubeconfig = kubeconfig_of(&fake, &dir);
    // The API in this process (no runner); operations run in the real binary.
    let (api, database_url, _) = start_api(&dir).await;
    api.register(&["v1"], argo_config(&kubeconfig)).await;
    let log = dir.join("serve.log");
    fake.clear_requests();
    fake.hold_next_patch(Kind::Rollout);
    let id = api.operate("chat:v1").await;
    let served = Served::start(&database_url, &log);
    tokio::time::timeout(Duration::from_secs(60), fake.held())
        .await
        .expect("the runner reached the Rollout patch");
    served.kill9();
    let at_kill = fake.requests().len();
    let op = api.get(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(op["steps"][0]["state"], "running", "{op}");
    let served = Served::start(&database_url, &log);
    let op = api.finished(id).await;
    served.kill9();
    assert_eq!(op["state"], "succeeded", "{op}");
    // The killed runner's template patch was applied (after a 409 retry,
    // maybe); the next runner sends no template patch, only the promote.
    let calls = fake.requests();
    let patches = |calls: &[kubefake::Recorded]| -> Vec<String> {
        calls
            .iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| r.line())
            .collect()
    };
    assert_eq!(
        patches(&calls[..at_kill]).last(),
        Some(&format!("PATCH {ROLLOUT}")),
        "the template patch was the last write of the killed runner"
    );
    assert_eq!(
        patches(&calls[at_kill..]),
        [format!("PATCH {ROLLOUT}/status")],
        "no second template patch, then the promote"
    );
    let note = op["steps"][0]["note"].as_str().unwrap_or("");
    assert!(
        note.contains("Rollout chat already holds chat:v1"),
        "{note}"
    );
    let r = argo_healthy(&fake).await;
    assert_eq!(
        r["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/chat:v1"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
