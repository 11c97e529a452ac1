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

/// A version with its stage history, as `GET /api/v1/versions/{full_id}` returns it.
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
    pub provenance: Vec<LedgerEvent>,
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
    pub next_change: Option<Timestamp>,
    /// Versions served with traffic that the environment did not pin at that instant.
    pub drift: Vec<crate::clusters::Drift>,
}

/// `GET /api/v1/serving?at=`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingAt {
    pub at: Timestamp,
    pub pins: Vec<PinAt>,
    #[serde(default)]
    pub clusters: Vec<ClusterAt>,
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

/// One step of one version's stage history, for the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionStageChange {
    pub version: VersionName,
    #[serde(flatten)]
    pub change: StageChange,
}

/// Everything that happened to a model's pins and stages, oldest first:
/// what the version timeline draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHistory {
    pub model_id: ModelId,
    pub pin_changes: Vec<PinChange>,
    pub stage_changes: Vec<VersionStageChange>,
}
