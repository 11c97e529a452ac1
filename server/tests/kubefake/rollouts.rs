//! Argo Rollouts' controller, simplified, for the fake API server: a
//! `Rollout` (argoproj.io/v1alpha1) moves towards its pod template as the
//! real controller reports it in `status`, for the two strategies:
//!
//! - `blueGreen`: the new ReplicaSet comes up as the preview
//!   (`status.blueGreen.previewSelector`, the `previewService`'s selector);
//!   with `autoPromotionEnabled: false` the Rollout then pauses
//!   (`pauseConditions: [{reason: BlueGreenPause}]`, `controllerPause`,
//!   phase `Paused`) until promoted (`pauseConditions` cleared, as
//!   `kubectl argo rollouts promote` does); then the `activeService`'s
//!   selector moves to the new pods and the new ReplicaSet is stable;
//! - `canary`: the `steps` are walked one per tick; a `pause: {}` step
//!   pauses (`CanaryPauseStep`) until promoted; `promoteFull` skips the rest;
//!   after the last step the new ReplicaSet is stable.
//!
//! `status.observedGeneration` (a string, as Argo writes it) lags a spec
//! change by about 100 ms; `status.abort: true` aborts the update (phase
//! `Degraded`, `RolloutAborted`, the stable pods serve); a template equal to
//! the stable ReplicaSet's (an undo) goes back to stable at once and clears
//! the abort; a template containing a fail marker never gets ready pods and
//! is `Degraded` with `ProgressDeadlineExceeded` after
//! `spec.progressDeadlineSeconds`. ReplicaSets are kept as for Deployments,
//! labelled `rollouts-pod-template-hash` with `rollout.argoproj.io/revision`.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    delete_pod, fit_pods, now_rfc3339, owned_sets, pods_of, sync_replica_sets, Kind, Shared, State,
};

pub const REVISION: &str = "rollout.argoproj.io/revision";
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";

/// One controller tick for Rollout `ns/name`.
pub(super) fn reconcile(shared: &Shared, st: &mut State, ns: &str, name: &str) {
    let Some(obj) = st
        .objects
        .get(&(Kind::Rollout, ns.to_owned(), name.to_owned()))
        .cloned()
    else {
        return;
    };
    let (obj, rs) = sync_replica_sets(shared, st, ns, obj, Kind::Rollout);
    let hash = st
        .objects
        .get(&(Kind::ReplicaSet, ns.to_owned(), rs.clone()))
        .and_then(|r| {
            r["metadata"]["labels"][HASH_LABEL]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let since = st
        .changed_at
        .get(&(ns.to_owned(), name.to_owned()))
        .map_or(Duration::ZERO, |t| t.elapsed());
    let template = obj["spec"]["template"].to_string();
    let failing = st
        .fail_markers
        .iter()
        .any(|m| template.contains(m.as_str()));
    let mut status = next_status(&obj, &hash, &rs, since, failing);
    keep_condition_times(&obj["status"], &mut status);
    // A status that has not seen the template yet says nothing about its pods.
    if status["observedGeneration"].as_str()
        == Some(obj["metadata"]["generation"].to_string().as_str())
    {
        rollout_pods(shared, st, ns, &obj, &status, &rs, !failing);
    }
    if status == obj["status"] {
        return;
    }
    // The Services follow the selectors in the status.
    let bg = &obj["spec"]["strategy"]["blueGreen"];
    for (service, selector) in [
        (&bg["activeService"], &status["blueGreen"]["activeSelector"]),
        (
            &bg["previewService"],
            &status["blueGreen"]["previewSelector"],
        ),
    ] {
        let (Some(service), Some(selector)) = (service.as_str(), selector.as_str()) else {
            continue;
        };
        let key = (Kind::Service, ns.to_owned(), service.to_owned());
        if let Some(mut svc) = st.objects.get(&key).cloned() {
            if svc["spec"]["selector"][HASH_LABEL] != selector {
                svc["spec"]["selector"][HASH_LABEL] = json!(selector);
                shared.commit(st, Kind::Service, ns, service, svc, "MODIFIED");
            }
        }
    }
    let mut new = obj.clone();
    new["status"] = status;
    shared.commit(st, Kind::Rollout, ns, name, new, "MODIFIED");
}

/// The Rollout's pods follow `status`: the stable ReplicaSet keeps
/// `spec.replicas` Ready pods, the current one (`rs`, when it is not the
/// stable one) has `updatedReplicas` pods (Ready when `ready`), every other
/// ReplicaSet's pods are deleted (Argo's scale-down delay is not simulated).
fn rollout_pods(
    shared: &Shared,
    st: &mut State,
    ns: &str,
    obj: &Value,
    status: &Value,
    rs: &str,
    ready: bool,
) {
    let desired = obj["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let stable = status["stableRS"].as_str().unwrap_or("");
    let updated = status["updatedReplicas"].as_u64().unwrap_or(0) as usize;
    for set in owned_sets(st, ns, obj) {
        let hash = set["metadata"]["labels"][HASH_LABEL].as_str().unwrap_or("");
        if !stable.is_empty() && hash == stable {
            fit_pods(shared, st, ns, &set, desired, true);
        } else if set["metadata"]["name"] == rs {
            fit_pods(shared, st, ns, &set, updated, ready);
        } else {
            for pod in pods_of(st, ns, &set) {
                delete_pod(shared, st, ns, pod);
            }
        }
    }
}

fn remove(s: &mut Value, fields: &[&str]) {
    if let Some(m) = s.as_object_mut() {
        for f in fields {
            m.remove(*f);
        }
    }
}

/// An unchanged condition keeps its times, so a settled Rollout's status
/// (and its resourceVersion) stays as it is, as with the real controller.
fn keep_condition_times(old: &Value, new: &mut Value) {
    let Some(conditions) = new["conditions"].as_array_mut() else {
        return;
    };
    for c in conditions {
        let prev = old["conditions"].as_array().and_then(|cs| {
            cs.iter().find(|p| {
                p["type"] == c["type"] && p["status"] == c["status"] && p["reason"] == c["reason"]
            })
        });
        if let Some(p) = prev {
            c["lastUpdateTime"] = p["lastUpdateTime"].clone();
            c["lastTransitionTime"] = p["lastTransitionTime"].clone();
        }
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> Value {
    let now = now_rfc3339();
    json!({ "type": type_, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now })
}

/// The next status of a Rollout whose spec was written `since` ago, whose
/// current template's ReplicaSet is `rs` (hash `hash`).
fn next_status(obj: &Value, hash: &str, rs: &str, since: Duration, failing: bool) -> Value {
    let generation = obj["metadata"]["generation"]
        .as_i64()
        .unwrap_or(1)
        .to_string();
    let old = &obj["status"];
    if old["observedGeneration"].as_str() != Some(generation.as_str())
        && since < Duration::from_millis(100)
    {
        // The controller sees the new generation a little later.
        return old.clone();
    }
    let mut s = old.clone();
    s["observedGeneration"] = json!(generation);
    let desired = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let strategy = &obj["spec"]["strategy"];
    let blue_green = strategy["blueGreen"].is_object();
    let steps = strategy["canary"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let healthy = |mut s: Value| {
        s["stableRS"] = json!(hash);
        s["currentPodHash"] = json!(hash);
        s["phase"] = json!("Healthy");
        s["replicas"] = json!(desired);
        s["updatedReplicas"] = json!(desired);
        s["readyReplicas"] = json!(desired);
        s["availableReplicas"] = json!(desired);
        remove(
            &mut s,
            &[
                "message",
                "pauseConditions",
                "controllerPause",
                "abort",
                "abortedAt",
                "promoteFull",
            ],
        );
        if blue_green {
            s["blueGreen"] = json!({ "activeSelector": hash, "previewSelector": hash });
        } else {
            s["currentStepIndex"] = json!(steps.len());
        }
        s["conditions"] = json!([
            condition(
                "Available",
                "True",
                "AvailableReason",
                "Rollout has minimum availability".into()
            ),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs}\" has successfully progressed.")
            ),
        ]);
        s
    };
    let stable = old["stableRS"].as_str().unwrap_or("");
    // The first template, or back to the stable one (an undo): stable at once.
    if stable.is_empty() || stable == hash {
        return healthy(s);
    }
    if old["abort"] == true {
        s["phase"] = json!("Degraded");
        s["message"] = json!(format!(
            "RolloutAborted: Rollout aborted update to revision of ReplicaSet \"{rs}\""
        ));
        s["updatedReplicas"] = json!(0);
        s["abortedAt"] = old["abortedAt"]
            .as_str()
            .map_or_else(|| json!(now_rfc3339()), |a| json!(a));
        remove(&mut s, &["pauseConditions", "controllerPause"]);
        if blue_green {
            s["blueGreen"]["previewSelector"] = json!(stable);
        } else {
            s["currentStepIndex"] = json!(0);
        }
        return s;
    }
    if old["currentPodHash"].as_str() != Some(hash) {
        // A new update starts.
        s["currentPodHash"] = json!(hash);
        s["phase"] = json!("Progressing");
        s["message"] = json!("more replicas need to be updated");
        s["updatedReplicas"] = json!(0);
        remove(
            &mut s,
            &["pauseConditions", "controllerPause", "promoteFull"],
        );
        if !blue_green {
            s["currentStepIndex"] = json!(0);
        }
        s["conditions"] = json!([condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("Rollout is progressing: ReplicaSet \"{rs}\" is progressing.")
        ),]);
        return s;
    }
    if failing {
        let deadline = obj["spec"]["progressDeadlineSeconds"]
            .as_u64()
            .unwrap_or(600);
        if since >= Duration::from_secs(deadline) {
            let message = format!("ReplicaSet \"{rs}\" has timed out progressing.");
            s["phase"] = json!("Degraded");
            s["message"] = json!(format!("ProgressDeadlineExceeded: {message}"));
            s["conditions"] = json!([condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                message
            )]);
        } else {
            s["message"] = json!("updated replicas are still becoming available");
        }
        return s;
    }
    let updated = old["updatedReplicas"].as_i64().unwrap_or(0);
    if updated < desired {
        s["updatedReplicas"] = json!(updated + 1);
        s["phase"] = json!("Progressing");
        return s;
    }
    let promoted_full = old["promoteFull"] == true;
    if blue_green {
        s["blueGreen"]["previewSelector"] = json!(hash);
        let manual = strategy["blueGreen"]["autoPromotionEnabled"] == false;
        if manual && !promoted_full {
            if old["controllerPause"] != true {
                s["pauseConditions"] =
                    json!([{ "reason": "BlueGreenPause", "startTime": now_rfc3339() }]);
                s["controllerPause"] = json!(true);
                s["phase"] = json!("Paused");
                s["message"] = json!("BlueGreenPause");
                return s;
            }
            if old["pauseConditions"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
            {
                return old.clone();
            }
        }
        // Promoted: the active Service moves to the new pods.
        return healthy(s);
    }
    let mut index = old["currentStepIndex"].as_u64().unwrap_or(0) as usize;
    if promoted_full {
        index = steps.len();
    }
    if index >= steps.len() {
        return healthy(s);
    }
    let step = &steps[index];
    if step["pause"].is_object() && step["pause"]["duration"].is_null() {
        if old["controllerPause"] != true {
            s["pauseConditions"] =
                json!([{ "reason": "CanaryPauseStep", "startTime": now_rfc3339() }]);
            s["controllerPause"] = json!(true);
            s["phase"] = json!("Paused");
            s["message"] = json!("CanaryPauseStep");
            return s;
        }
        if old["pauseConditions"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
        {
            return old.clone();
        }
    }
    // A setWeight step (or a promoted pause): on to the next step.
    remove(&mut s, &["controllerPause", "message"]);
    s["phase"] = json!("Progressing");
    s["currentStepIndex"] = json!(index + 1);
    s
}
