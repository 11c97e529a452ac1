//! The driver config examples the "Add a cluster" form shows beside its
//! text box: the same examples docs/clusters.md walks through (a test holds
//! the two to each other, and registers each one).

use leptos::prelude::*;
use switchyard_domain::clusters::DriverKind;

/// A ready config for `kind`, as docs/clusters.md gives it.
pub fn example_config(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Simulated => "{}",
        DriverKind::OipHaproxy => {
            r#"{
  "model": "echo",
  "blue":  { "url": "http://127.0.0.1:8081", "repository": "/srv/sy/blue" },
  "green": { "url": "http://127.0.0.1:8082", "repository": "/srv/sy/green" },
  "artifacts": "/srv/sy/artifacts",
  "haproxy": {
    "socket": "tcp://127.0.0.1:9999",
    "route_map": "/srv/sy/route.map",
    "weights_file": "/srv/sy/weights"
  }
}"#
        }
        DriverKind::Kubernetes => {
            r#"{
  "kubeconfig": "/etc/switchyard/kubeconfig",
  "context": "prod-eu",
  "namespace": "serving",
  "model": "chat",
  "service": "chat",
  "deployments": { "blue": "chat-blue", "green": "chat-green" },
  "container": "model",
  "image": "registry.example/chat"
}"#
        }
    }
}

/// The `kubernetes` driver's Argo Rollouts mode (one Rollout instead of
/// Deployments + Service), as docs/clusters.md gives it.
pub const ARGO_EXAMPLE: &str = r#"{
  "kubeconfig": "/etc/switchyard/kubeconfig",
  "namespace": "serving",
  "model": "chat",
  "rollout": "chat",
  "container": "model",
  "image": "registry.example/chat"
}"#;

/// What each driver drives, in a line.
pub fn driver_words(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Simulated => {
            "in-process router and slots, for trying operations (labelled simulated)"
        }
        DriverKind::OipHaproxy => {
            "model servers speaking the Open Inference Protocol behind HAProxy"
        }
        DriverKind::Kubernetes => "a Deployment per slot and a Service in one Kubernetes namespace",
    }
}

/// The section of docs/clusters.md that explains `kind`'s fields.
fn docs_section(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Simulated => "docs/clusters.md, “Simulated”",
        DriverKind::OipHaproxy => "docs/clusters.md, “oip+haproxy: a complete worked example”",
        DriverKind::Kubernetes => "docs/clusters.md, “kubernetes: a complete worked example”",
    }
}

/// One example per driver, each folded; the chosen driver's is open (in
/// the browser it follows the driver select; without JavaScript the
/// first driver's is open and each opens by hand).
#[component]
pub fn DriverExamples(chosen: RwSignal<DriverKind>) -> impl IntoView {
    view! {
        <div class="driver-examples" aria-label="Example configs">
            {DriverKind::ALL.into_iter().map(|kind| view! {
                <details class="example" data-driver=kind.as_str() open=move || chosen.get() == kind>
                    <summary>{format!("Example: {}", kind.as_str())}</summary>
                    <p class="hint">{driver_words(kind)}{". Every field is explained in "}{docs_section(kind)}{"."}</p>
                    <pre><code>{example_config(kind)}</code></pre>
                </details>
            }).collect_view()}
            <details class="example" data-driver="kubernetes-argo">
                <summary>"Example: kubernetes with an Argo Rollout"</summary>
                <p class="hint">"One Argo Rollout (argoproj.io/v1alpha1) instead of Deployments and a Service: its blueGreen or canary strategy moves the traffic. Every field is explained in docs/clusters.md, “kubernetes with Argo Rollouts”."</p>
                <pre><code>{ARGO_EXAMPLE}</code></pre>
            </details>
        </div>
    }
}
