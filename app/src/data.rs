//! What the console's pages receive from their server functions, besides
//! the domain's own shapes.

use serde::{Deserialize, Serialize};
use switchyard_domain::access::Role;
use switchyard_domain::clusters::{Cluster, ClusterChange, Drift};
use switchyard_domain::diff::DiffLine;
use switchyard_domain::operations::Operation;
use switchyard_domain::paging::PageInfo;
use switchyard_domain::policy::EnvPolicy;
use switchyard_domain::promotion::Promotion;
use switchyard_domain::types::{AuditPage, ModelHistory, ServingAt, Version};
use switchyard_domain::{FullId, ModelId, Timestamp};

/// The model page: its versions (newest first) and its pin and stage history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPage {
    pub model_id: ModelId,
    /// One page of the versions, newest first.
    pub versions: Vec<Version>,
    pub versions_page: PageInfo,
    /// What the timeline's window shows, not the whole history: the stage
    /// changes inside it, and the pin changes inside it with each
    /// environment's last one before it (the bar the window starts in).
    pub history: ModelHistory,
    /// Environments in their standard order: the timeline's lanes.
    pub environments: Vec<String>,
    /// The server's clock when the page was made, so the browser draws the same chart.
    pub now: Timestamp,
    /// Clusters that served this model: the timeline's cluster lanes, each
    /// with its changes inside the window and the one in force at its start.
    pub clusters: Vec<ClusterLane>,
    /// The timeline's window, as the address asked (`range`, `from`, `to`).
    pub window: crate::components::timeline::Window,
    /// Why the window is not the one the address asked for (a date that is
    /// not one, a range ending before it starts).
    pub window_note: Option<String>,
}

/// A cluster's serving history for the timeline: each state it held, and its rollbacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterLane {
    pub cluster: String,
    pub environment: String,
    pub history: Vec<ClusterChange>,
    pub rollbacks: Vec<RollbackMark>,
}

/// A rollback on a cluster: asked for by a person, or by a failed health gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackMark {
    pub at: Timestamp,
    /// The version traffic went back to.
    pub to: FullId,
    pub actor: String,
    pub trigger: String,
    pub reason: Option<String>,
}

/// The lifecycle board of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Board {
    pub model_id: ModelId,
    /// Every model, for the model selector.
    pub models: Vec<ModelId>,
    pub versions: Vec<Version>,
    pub now: Timestamp,
    pub deprecation_days: u32,
    /// Every environment and its policy: where a card may request a promotion to.
    pub environments: Vec<(String, EnvPolicy)>,
    /// The signed-in user's bindings, which decide the buttons they may press.
    pub grants: switchyard_domain::access::Grants,
}

/// The approvals inbox, as the signed-in user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approvals {
    /// Oldest first: the longest waiting at the top.
    pub pending: Vec<PendingPromotion>,
    /// The most recently decided (applied, rejected, expired), newest first.
    pub decided: Vec<Promotion>,
    pub username: String,
    /// The signed-in user's bindings: approving needs approver in the promotion's environment.
    pub grants: switchyard_domain::access::Grants,
    pub now: Timestamp,
}

/// A pending promotion and how its config differs from production's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingPromotion {
    pub promotion: Promotion,
    /// The model's version in the production stage now, if it has one (the
    /// version an applied promotion to production deprecates).
    pub production: Option<FullId>,
    /// What the requested version is compared with: the model's pin in the
    /// promotion's environment, or for production without a pin the version
    /// in the production stage; none when the environment has neither.
    pub compared_with: Option<FullId>,
    /// The requested version's config against `compared_with`'s (against
    /// nothing when there is none), pretty-printed and compared by line.
    pub diff: Vec<DiffLine>,
}

/// The audit log's filters as the page's query string carries them. Times
/// are RFC 3339, or `datetime-local` values read as UTC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub model: Option<String>,
    pub env: Option<String>,
    pub cluster: Option<String>,
}

impl AuditFilter {
    /// The filters as `key=value&…` (empty ones left out), for links.
    pub fn query_string(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("action", &self.action),
            ("actor", &self.actor),
            ("model", &self.model),
            ("env", &self.env),
            ("cluster", &self.cluster),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// A page of the audit log and what its filter menus offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub page: AuditPage,
    pub environments: Vec<String>,
}

/// The answer of "serving at T": the instant asked about, as given and in
/// UTC, and what each environment pinned then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingAnswer {
    pub serving: ServingAt,
    /// The instant as a `datetime-local` value in `tz`.
    pub local: String,
    pub tz: String,
    pub environments: Vec<String>,
    pub models: Vec<ModelId>,
}

/// One serving cluster as the clusters page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub cluster: Cluster,
    /// Whether the environment has a production policy (approvers operate there).
    pub production: bool,
    /// The role an operation or a rollback on this cluster needs.
    pub operator_role: Role,
    /// Why the signed-in user may not operate this cluster, if they may not.
    pub refused: Option<String>,
    /// What the environment pins now, for the models the cluster serves.
    pub pins: Vec<FullId>,
    /// Versions serving here that the environment does not pin.
    pub drift: Vec<Drift>,
    /// Versions an operation may bring in: not retired and admitted by the
    /// environment's policy, newest first (the server checks again).
    pub allowed: Vec<FullId>,
    /// Recent operations, newest first; the running one, if any, is the first.
    pub operations: Vec<Operation>,
    /// Each slot's health as its driver answered while the page was made
    /// (`ready`, `empty`, `not ready: …`, `unknown: …`).
    pub health_now: Vec<SlotHealthNow>,
    /// Why the signed-in user may not test this cluster's connection, if
    /// they may not (deployers and up in its environment may).
    pub test_refused: Option<String>,
    /// Why the signed-in user may not remove this cluster, if they may not
    /// (admins on all may; the server also refuses one that ran operations).
    pub remove_refused: Option<String>,
}

/// What the clusters page's "Add a cluster" form offers the signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterForm {
    /// The environments a cluster may belong to, in their standard order.
    pub environments: Vec<String>,
    /// Why the user may not add a cluster (only admins on all may), if so.
    pub refused: Option<String>,
}

/// A cluster's connection test: every part its driver needs, as
/// `switchyard cluster test` lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub cluster: String,
    pub driver: switchyard_domain::clusters::DriverKind,
    pub environment: String,
    /// Every check passed.
    pub ok: bool,
    pub checks: Vec<ConnectionCheck>,
}

/// One check of a connection test: what was checked, what was found and,
/// when it failed, how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    pub check: String,
    pub ok: bool,
    pub detail: String,
    pub advice: Option<String>,
}

/// One slot's health as the driver reports it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotHealthNow {
    pub slot: switchyard_domain::clusters::SlotName,
    pub health: String,
}

impl ClusterView {
    pub fn running(&self) -> Option<&Operation> {
        self.operations.iter().find(|o| !o.state.is_final())
    }
}

/// Percent-encodes a query string value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_filters_become_a_query_string_without_the_empty_ones() {
        let f = AuditFilter {
            action: Some("stage.changed".into()),
            actor: Some("".into()),
            from: Some("2026-03-03T14:00:00+01:00".into()),
            ..Default::default()
        };
        assert_eq!(
            f.query_string(),
            "from=2026-03-03T14:00:00%2B01:00&action=stage.changed"
        );
    }
}

/// A notification subscription as the subscriptions page shows it: the
/// destination without credentials or tokens, its filter, and its health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    pub name: String,
    /// `webhook` or `chat`.
    pub kind: String,
    pub url: String,
    pub events: Vec<String>,
    pub models: Vec<String>,
    pub environments: Vec<String>,
    pub clusters: Vec<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    /// `dead`, `paused` or `failing` when it is not delivering.
    pub warning: Option<String>,
    pub pending: i64,
    pub dead: i64,
    pub consecutive_failures: i64,
    pub failing_since: Option<Timestamp>,
    pub paused_until: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Deliveries are sent concurrently, out of event order (else one after the other, in order).
    #[serde(default)]
    pub parallel: bool,
}

/// The subscriptions page: every subscription, and the event kinds a filter may name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscriptions {
    pub rows: Vec<SubscriptionRow>,
    pub event_kinds: Vec<String>,
    /// What an empty event filter receives.
    pub default_kinds: Vec<String>,
}

/// One delivery of a subscription (an event, or a test message without one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: Option<i64>,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub response_code: Option<i64>,
    pub latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// A subscription with its recent deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionDetail {
    pub row: SubscriptionRow,
    pub deliveries: Vec<DeliveryRow>,
}

/// A created subscription; its signing secret (webhooks) is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedSubscription {
    pub name: String,
    pub secret: Option<String>,
}

/// A rotated secret, shown this once, and until when the previous ones sign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotatedSecret {
    pub name: String,
    pub secret: String,
    pub previous_valid_until: Timestamp,
}

/// A subscription that is not delivering, for the overview's warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationWarning {
    pub subscription: String,
    /// `dead`, `paused` or `failing`.
    pub warning: String,
    pub failing_since: Option<Timestamp>,
    pub pending: i64,
    pub dead: i64,
}

/// Whether notifications are being delivered: warnings worst first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationStatus {
    pub subscriptions: usize,
    pub warnings: Vec<NotificationWarning>,
    /// Whether the reader may open the subscriptions page (admins).
    pub can_manage: bool,
}

/// The new-subscription form as posted: lists comma-separated, empty for any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionForm {
    pub name: String,
    /// `webhook` or `chat`.
    pub kind: String,
    pub url: String,
    pub events: String,
    pub models: String,
    pub environments: String,
    pub clusters: String,
    /// Deliveries may be sent concurrently, out of event order.
    pub parallel: bool,
}

/// One role binding as the Access page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingRow {
    pub id: i64,
    pub binding: switchyard_domain::access::Binding,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// The Access page: every binding, the environments one may bind to, and
/// why the signed-in user may not change them (none: they may).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessView {
    pub bindings: Vec<BindingRow>,
    pub environments: Vec<String>,
    pub refused: Option<String>,
    /// The signed-in user's own bindings, in words.
    pub mine: String,
}

/// The Release policy page: each environment's policy, the freeze windows
/// (with those in force now), the emergency overrides, and why the
/// signed-in user may not change them or approve an override (none: they may).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasePolicyView {
    pub environments: Vec<switchyard_domain::types::Environment>,
    pub freezes: Vec<switchyard_domain::freeze::FreezeWindow>,
    pub in_force: Vec<switchyard_domain::freeze::FreezeState>,
    /// Newest first, each with its status now.
    pub overrides: Vec<OverrideRow>,
    /// Why the user may not change policies, freezes or request overrides.
    pub refused: Option<String>,
    /// Why the user may not approve an override.
    pub approve_refused: Option<String>,
    pub username: String,
}

/// An emergency override and how it stands now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideRow {
    pub over: switchyard_domain::freeze::FreezeOverride,
    pub status: switchyard_domain::freeze::OverrideStatus,
}

/// The add-freeze form's fields, as text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FreezeForm {
    pub name: String,
    pub environment: String,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub days: String,
    pub start: String,
    pub duration_minutes: String,
    pub time_zone: String,
}

/// An environment's approval policy as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPolicy {
    pub environment: String,
    pub policy: EnvPolicy,
}

/// The Analysis page: every analysis template, the templates each cluster
/// attaches, and why the signed-in user may not change them (none: they may).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisView {
    pub templates: Vec<switchyard_domain::analysis::AnalysisTemplate>,
    pub clusters: Vec<ClusterAnalysis>,
    pub refused: Option<String>,
}

/// The templates every operation on a cluster runs (but a rollback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterAnalysis {
    pub cluster: String,
    pub environment: String,
    pub templates: Vec<String>,
}

/// The MLflow import page (admins): the credentials an import may name and
/// this server's recent imports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlflowImports {
    /// Configured sources whose credential an import may use (never the secret).
    pub credentials: Vec<CredentialChoice>,
    /// Environments an alias or stage may be mapped to.
    pub environments: Vec<String>,
    /// Newest first, without their lines (each run's page has them).
    pub runs: Vec<ImportRunView>,
    /// How many runs a server keeps in memory.
    pub kept: usize,
}

/// A configured MLflow source whose credential an import may use, for its own tracking server only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialChoice {
    pub source: String,
    pub tracking_uri: String,
    /// What the credential is, without the secret ("user switchyard with the source's password").
    pub what: String,
}

/// One import started from the console, and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRunView {
    pub id: String,
    pub started_at: Timestamp,
    pub started_by: String,
    pub tracking_uri: String,
    pub pattern: Option<String>,
    /// `alias=environment` and `Stage=environment` pairs as given.
    pub aliases: Vec<String>,
    pub stages: Vec<String>,
    pub prefix: String,
    pub credential: Option<String>,
    pub dry_run: bool,
    /// `running`, `done` or `stopped`.
    pub state: String,
    pub finished_at: Option<Timestamp>,
    /// Models this pass reads (0 until listed), and how many it reached (read, imported or refused).
    pub models_total: usize,
    pub models_begun: usize,
    pub versions_read: usize,
    pub created: usize,
    pub unchanged: usize,
    pub conflicts: usize,
    pub refused: usize,
    pub gone: usize,
    /// Each item said, in order: `created   ranker:v1 ← …`, `refused   MLflow model "!!!": …`.
    pub lines: Vec<String>,
    /// Why the pass stopped early, naming the item.
    pub stopped: Option<String>,
    /// The summary line `switchyard import mlflow` prints, once finished.
    pub summary: Option<String>,
}

impl ImportRunView {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// The import form as posted: text fields, checked by the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MlflowImportForm {
    pub tracking_uri: String,
    pub models: String,
    pub aliases: String,
    pub stages: String,
    pub prefix: String,
    pub credential: String,
    pub dry_run: bool,
}

/// What the audit page's "Verify chain" found: the hash chain, and the
/// signed checkpoints when the server knows its checkpoint file and the
/// auditor gave a public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditVerification {
    pub chain: switchyard_domain::types::VerifyReport,
    pub checkpoints: CheckpointCheck,
}

/// The checkpoint part of a verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckpointCheck {
    /// The server has no checkpoint file (`SWITCHYARD_CHECKPOINT_FILE`).
    NotConfigured,
    /// The server's checkpoint file `file`, not checked: no public key was given.
    NoKey { file: String },
    /// The checkpoint file could not be read or parsed: why.
    Unreadable { file: String, problem: String },
    /// Checked with `public_key` (hex); contradictions are in the report.
    Checked {
        file: String,
        public_key: String,
        report: switchyard_domain::checkpoint::CheckpointReport,
    },
}
