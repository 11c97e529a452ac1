//! The shapes Switchyard shows: the REST API's bodies and the console's data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ledger::LedgerEvent;
use crate::policy::EnvPolicy;
use crate::{FullId, ModelId, Stage, Timestamp, VersionName};

pub type Labels = BTreeMap<String, String>;

/// A registered model version. Immutable but for its stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub full_id: FullId,
    pub model_id: ModelId,
    pub version: VersionName,
    pub stage: Stage,
    pub config_hash: String,
    pub config: Value,
    pub artifact_uri: Option<String>,
    pub labels: Option<Labels>,
    pub created_at: Timestamp,
    pub created_by: String,
    /// When the version entered its current stage.
    pub stage_since: Timestamp,
}

/// A registration request, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub full_id: FullId,
    pub config: Value,
    pub config_hash: String,
    pub artifact_uri: Option<String>,
    pub labels: Option<Labels>,
}

/// One entry of a version's stage history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageChange {
    pub at: Timestamp,
    pub from: Option<Stage>,
    pub to: Stage,
    pub actor: String,
    pub reason: Option<String>,
    pub event_id: i64,
}

/// A version with its stage history, as `GET /api/v1/versions/{full_id}`
/// returns it: the version's fields and the rest side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: Version,
    pub stage_history: Vec<StageChange>,
    /// When a deprecated version will be (or became eligible to be) retired.
    pub retires_at: Option<Timestamp>,
    /// Where the version is pinned now.
    pub pinned_in: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub model_id: ModelId,
    pub version_count: u64,
    pub latest_version: Option<VersionName>,
    pub production_version: Option<VersionName>,
    pub updated_at: Timestamp,
}

/// The exact version an environment must use for a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    pub environment: String,
    pub model_id: ModelId,
    pub version: VersionName,
    pub full_id: FullId,
    pub stage: Stage,
    pub since: Timestamp,
    pub set_by: String,
    pub reason: Option<String>,
    pub event_id: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    pub policy: EnvPolicy,
    pub pins: Vec<Pin>,
}

/// The answer of `resolve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub full_id: FullId,
    pub config_hash: String,
    pub stage: Stage,
    /// Whether the answer came through the environment's pin.
    pub pinned: bool,
    pub deprecated: bool,
    /// For deprecated versions: a sentence for logs and a `Warning` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// One served request, as reported by a model server or router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub at: Timestamp,
    pub cluster: String,
    pub slot: String,
    pub full_id: FullId,
    pub latency_ms: f64,
    pub outcome: Option<String>,
}

/// `GET /api/v1/request-records/{id}`: the record, its version and the
/// ledger events that put that version into service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLookup {
    pub record: RequestRecord,
    pub version: Option<Version>,
    /// The events that concern the record's version and its cluster (never
    /// another cluster's), up to the record's instant.
    pub provenance: Vec<LedgerEvent>,
    /// Whether the record's cluster is one Switchyard manages.
    #[serde(default)]
    pub cluster_known: bool,
    /// Said plainly when the cluster is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The environment of the record's cluster (when Switchyard manages it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The promotion that put the record's version into that environment:
    /// the last applied at or before the record, with its approvers (and
    /// their identity at the provider), the policy in force and its
    /// requirements as met. Absent when no promotion did (e.g. development).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PinPromotion>,
    /// The analysis that let the record's version take its cluster's
    /// traffic: the gate results of the operation that set the cluster's
    /// state at the record's instant. Absent when no analysed operation did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateResults>,
}

/// The analysis that let a version take a cluster's traffic: the operation
/// whose step set the cluster's state, and its gates' measurements taken up
/// to the instant asked about (the evidence the switch was made on), with
/// the templates (as the operation copied them) they were judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResults {
    pub cluster: String,
    pub operation_id: i64,
    pub kind: crate::operations::OperationKind,
    pub full_id: FullId,
    /// The operation's state now.
    pub state: crate::operations::OperationState,
    pub measurements: Vec<crate::analysis::Measurement>,
    /// The templates its gates ran: the conditions each value was judged by.
    pub analysis: Vec<crate::analysis::AnalysisTemplate>,
}

/// What one environment pinned for one model at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinAt {
    pub environment: String,
    pub model_id: ModelId,
    pub full_id: FullId,
    pub since: Timestamp,
    pub event_id: i64,
    pub actor: String,
    pub reason: Option<String>,
    /// When this pin next changed after the instant asked about (None: it still holds).
    pub next_change: Option<Timestamp>,
    /// The promotion that set this pin, if one did: who asked and who approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PinPromotion>,
}

/// The promotion behind a pin: the answer to "who approved it?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinPromotion {
    pub id: i64,
    pub requested_by: String,
    /// The approvers, in the order they approved.
    pub approved_by: Vec<String>,
    /// Each approver with their groups when they approved, in that order.
    #[serde(default)]
    pub approvers: Vec<PinApprover>,
    /// The approval policy in force when it was requested (absent for
    /// promotions from before approval policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::ApprovalPolicy>,
    /// Each requirement of that policy as it was met when applied.
    #[serde(default)]
    pub requirements: Vec<crate::policy::Requirement>,
}

/// One approver of an applied promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinApprover {
    /// The Switchyard user (for people who sign in through the identity
    /// provider, the user made from its subject).
    pub username: String,
    /// Their groups when they approved.
    #[serde(default)]
    pub groups: Vec<String>,
    pub at: Timestamp,
    /// For people who sign in through the identity provider: who they are
    /// there (issuer and subject), with the name and e-mail it last gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso: Option<SsoIdentity>,
}

/// A person as the identity provider names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsoIdentity {
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// What one cluster served at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterAt {
    pub cluster: String,
    pub environment: String,
    pub driver: crate::clusters::DriverKind,
    pub slots: Vec<crate::clusters::SlotView>,
    pub since: Timestamp,
    /// The ledger event that set these slots and weights.
    pub event_id: i64,
    pub actor: String,
    pub reason: Option<String>,
    /// The operation whose step set these slots and weights (its ledger
    /// event's `operation_id`); `None` for a hand switch or a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<i64>,
    pub next_change: Option<Timestamp>,
    /// Versions served with traffic that the environment did not pin at that instant.
    pub drift: Vec<crate::clusters::Drift>,
    /// Set when the instant falls in an interval where the router was between
    /// two states (a server crashed between the router command and its
    /// record; see `reconcile`): `slots` then show the state being entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<TransitionAt>,
    /// The drift the watcher had recorded for the cluster (from what its
    /// driver reported really ran) and not yet cleared at that instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_drift: Option<DriftAt>,
}

/// Drift observed before an instant and still standing then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftAt {
    pub findings: Vec<crate::drift::Finding>,
    /// When the watcher recorded it, and the ledger event that did.
    pub since: Timestamp,
    pub event_id: i64,
}

/// The router was moving from `from` to the cluster's `slots` somewhere in
/// [`since`, `until`): either side may have served a request then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionAt {
    /// The slots and weights before the router command.
    pub from: Vec<crate::clusters::SlotView>,
    /// Every version with traffic on either side, old side first.
    pub versions: Vec<FullId>,
    pub since: Timestamp,
    /// `None`: the router's state is not known yet.
    pub until: Option<Timestamp>,
}

/// `GET /api/v1/serving?at=`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingAt {
    pub at: Timestamp,
    pub pins: Vec<PinAt>,
    #[serde(default)]
    pub clusters: Vec<ClusterAt>,
    /// For each cluster whose state at the instant an analysed operation
    /// set: that operation's gate results up to the instant.
    #[serde(default)]
    pub gates: Vec<GateResults>,
    /// Said when `at` is in the future or before the ledger's first event
    /// (`history::outside_the_ledger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<LedgerEvent>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub checked: u64,
    pub first_broken_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The overview page: environments × models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub environments: Vec<Environment>,
    pub models: Vec<ModelSummary>,
}

/// One change of a model's pin in an environment, for the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinChange {
    pub environment: String,
    pub version: VersionName,
    pub at: Timestamp,
    pub actor: String,
    pub reason: Option<String>,
    pub event_id: i64,
}

/// One step of one version's stage history, for the timeline: the version
/// and the change's fields side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionStageChange {
    pub version: VersionName,
    #[serde(flatten)]
    pub change: StageChange,
}

/// One page of a model's versions, newest first, and when its first
/// version was registered (nothing of the model is older).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionsPage {
    pub versions: Vec<Version>,
    pub page: crate::paging::PageInfo,
    pub first_registered: Timestamp,
}

/// A cluster that served a model (some slot with traffic held one of its
/// versions at some time), with its state changes inside a window and the
/// one in force at the window's start: a cluster lane of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterServing {
    pub cluster: String,
    pub environment: String,
    /// Oldest first.
    pub history: Vec<crate::clusters::ClusterChange>,
}

/// Everything that happened to a model's pins and stages, oldest first:
/// what the version timeline draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHistory {
    pub model_id: ModelId,
    pub pin_changes: Vec<PinChange>,
    pub stage_changes: Vec<VersionStageChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(event_id: i64) -> StageChange {
        StageChange {
            at: Timestamp::from_micros(1_700_000_000_000_000 + event_id),
            from: Some(Stage::Staging),
            to: Stage::Production,
            actor: "carol".into(),
            reason: Some("approved".into()),
            event_id,
        }
    }

    #[test]
    fn flattened_shapes_read_back_what_they_write() {
        let full_id = FullId::parse("chat:v2").expect("full id");
        let version = Version {
            model_id: full_id.model_id.clone(),
            version: full_id.version.clone(),
            full_id,
            stage: Stage::Production,
            config_hash: "sha256:ab".into(),
            config: serde_json::json!({"batch": 8, "tags": ["a"]}),
            artifact_uri: Some("s3://m/chat/v2".into()),
            labels: Some(Labels::from([("team".to_owned(), "nlp".to_owned())])),
            created_at: Timestamp::from_micros(1_600_000_000_000_000),
            created_by: "token:ci".into(),
            stage_since: Timestamp::from_micros(1_700_000_000_000_000),
        };
        let detail = VersionDetail {
            version,
            stage_history: vec![change(7)],
            retires_at: None,
            pinned_in: vec!["production".into()],
        };
        let json = serde_json::to_value(&detail).expect("serializes");
        assert_eq!(
            json["full_id"], "chat:v2",
            "the version's fields sit at the top level"
        );
        assert_eq!(json["pinned_in"][0], "production");
        let back: VersionDetail = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, detail);

        let step = VersionStageChange {
            version: VersionName::parse("v2").expect("name"),
            change: change(9),
        };
        let json = serde_json::to_value(&step).expect("serializes");
        assert_eq!(json["event_id"], 9);
        assert_eq!(
            serde_json::from_value::<VersionStageChange>(json).expect("reads back"),
            step
        );
        assert!(
            serde_json::from_value::<VersionStageChange>(serde_json::json!({"version": "v2"}))
                .is_err()
        );
    }
}
