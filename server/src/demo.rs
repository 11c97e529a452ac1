//! `switchyard demo`: a realistic history so the console is worth opening.
//!
//! Six models, each with a scripted series of releases over about six months:
//! registration by CI, development → staging, promotion to production (which
//! deprecates the previous production version), pins moving in the three
//! environments, versions sent back from staging, a rollback, and the daily
//! retirement job retiring what has been deprecated for long enough. The plan
//! is computed first as a pure function of `now` (so it is deterministic and
//! testable without a database), then written only through the `Store`, in
//! time order, so the ledger reads like a real one.

use std::collections::HashSet;
use std::fmt;

use serde_json::{json, Map, Value};
use switchyard_domain::access::Role;
use switchyard_domain::config_hash::config_hash;
use switchyard_domain::lifecycle::MoveVia;
use switchyard_domain::types::{Labels, NewVersion, RequestRecord};
use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp, VersionName};

use crate::store::Store;

/// The people of the demo, with their roles and passwords, so the console
/// can be signed into at once (printed by `demo` and `serve --demo-if-empty`,
/// and listed in the README). Demo data only: never in a real database.
pub const DEMO_USERS: [(&str, Role, &str); 5] = [
    ("alice", Role::Admin, "alice-switchyard"),
    ("bob", Role::Approver, "bob-switchyard"),
    ("carol", Role::Approver, "carol-switchyard"),
    ("dave", Role::Deployer, "dave-switchyard"),
    ("erin", Role::Viewer, "erin-switchyard"),
];

/// The demo users as lines to print.
pub fn demo_users_text() -> String {
    DEMO_USERS
        .iter()
        .map(|(name, role, password)| {
            format!("  {name:<6} {:<9} password: {password}", role.as_str())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

mod clusters;

/// What `fill` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub models: usize,
    pub versions: usize,
    pub stage_changes: usize,
    pub pin_changes: usize,
    pub retired: usize,
    /// Versions the retirement job flagged instead of retiring (still pinned).
    pub held: usize,
    pub request_records: u64,
    /// Simulated serving clusters with an operation history.
    pub clusters: usize,
    pub first_at: Option<Timestamp>,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} models, {} versions, {} stage changes, {} pin changes, {} retired, {} held, {} request records, {} simulated clusters",
            self.models,
            self.versions,
            self.stage_changes,
            self.pin_changes,
            self.retired,
            self.held,
            self.request_records,
            self.clusters
        )?;
        if let Some(first) = self.first_at {
            write!(f, "; history since {first}")?;
        }
        Ok(())
    }
}

/// Writes the demo history into `store`, which should hold no versions yet.
/// Every event is dated before `now`.
pub async fn fill(store: &dyn Store, now: Timestamp) -> anyhow::Result<DemoSummary> {
    let plan = plan(now)?;
    let mut summary = DemoSummary {
        models: plan.models,
        first_at: plan.steps.first().map(|s| s.at),
        ..DemoSummary::default()
    };
    let mut held = HashSet::new();
    let last = plan.steps.last().map_or(now, |s| s.at);
    for step in plan.steps {
        let at = step.at;
        match step.action {
            Action::Register { new, actor } => {
                store.register_version(new, actor, at).await?;
                summary.versions += 1;
            }
            Action::Stage {
                id,
                to,
                via,
                reason,
                actor,
            } => {
                store
                    .change_stage(&id, to, via, Some(&reason), actor, at)
                    .await?;
                summary.stage_changes += 1;
            }
            Action::Pin {
                env,
                id,
                reason,
                actor,
            } => {
                store.set_pin(env, &id, Some(&reason), actor, at).await?;
                summary.pin_changes += 1;
            }
            Action::RetireDue => {
                let report = store.retire_due(at).await?;
                summary.retired += report.retired.len();
                held.extend(report.held);
            }
        }
    }
    summary.held = held.len();
    summary.request_records = store.insert_request_records(&plan.records).await?;
    for (name, role, password) in DEMO_USERS {
        let hash = crate::auth::password::hash(password)?;
        store.create_user(name, role, &hash, "demo", now).await?;
    }
    summary.clusters = clusters::fill(store, last, now).await?;
    Ok(summary)
}

/// One write of the demo history.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    at: Timestamp,
    action: Action,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Register {
        new: NewVersion,
        actor: &'static str,
    },
    Stage {
        id: FullId,
        to: Stage,
        via: MoveVia,
        reason: String,
        actor: &'static str,
    },
    Pin {
        env: &'static str,
        id: FullId,
        reason: String,
        actor: &'static str,
    },
    /// A run of the background retirement job.
    RetireDue,
}

#[derive(Debug, Clone, PartialEq)]
struct Plan {
    models: usize,
    /// In strictly increasing time order.
    steps: Vec<Step>,
    records: Vec<RequestRecord>,
}

/// How far a release gets.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Registered, still being worked on.
    Development,
    /// Feature complete, under evaluation in staging.
    Staging,
    /// Failed its evaluation in staging and went back to development.
    SentBack(&'static str),
    /// Promoted to production (and superseded by later releases).
    Production,
    /// Promoted, then rolled back to the previous production version.
    RolledBack(&'static str),
}

enum Name {
    Semver(&'static str),
    /// `<yyyymmdd of registration>-<suffix>`, as scheduled retrains are named.
    Dated(&'static str),
}

struct Release {
    name: Name,
    /// Days before `now` the release is registered (later if the previous
    /// release of the model is still under way).
    day: i64,
    fate: Fate,
    /// What changed, in the words of the team.
    change: &'static str,
    /// Config keys that change from the previous release.
    patch: Value,
}

struct ModelScript {
    model_id: &'static str,
    owner: &'static str,
    /// The two approvers of this model's promotions; the second one's
    /// approval applies them.
    approvers: [&'static str; 2],
    artifact_file: &'static str,
    labels: &'static [(&'static str, &'static str)],
    base_config: Value,
    /// False: the development pin stays on the first build, as a baseline.
    dev_pin_follows: bool,
    latency_ms: (u64, u64),
    outcomes: &'static [&'static str],
    releases: Vec<Release>,
}

fn release(name: Name, day: i64, fate: Fate, change: &'static str, patch: Value) -> Release {
    Release {
        name,
        day,
        fate,
        change,
        patch,
    }
}

// One release per line reads as a release history; rustfmt would split them.
#[rustfmt::skip]
fn scripts() -> Vec<ModelScript> {
    use Fate::*;
    use Name::*;
    vec![
        ModelScript {
            model_id: "chat-llama-70b",
            owner: "alice",
            approvers: ["bob", "carol"],
            artifact_file: "model.safetensors",
            labels: &[("team", "assistant"), ("task", "chat"), ("runtime", "vllm")],
            base_config: json!({
                "base_model": "meta-llama/Llama-3.1-70B-Instruct",
                "dtype": "bfloat16",
                "quantization": "none",
                "max_tokens": 2048,
                "context_window": 8192,
                "temperature": 0.7,
                "top_p": 0.9,
                "tokenizer": "llama-3.1",
                "tensor_parallel_size": 4,
                "batch_size": 16,
                "system_prompt": "support-assistant-v3"
            }),
            dev_pin_follows: true,
            latency_ms: (700, 2400),
            outcomes: &["answered", "answered", "answered", "escalated"],
            releases: vec![
                release(Semver("v1.0.0"), 176, Production, "first release of the support assistant", json!({})),
                release(Semver("v1.1.0"), 150, Production, "longer answers for multi-step troubleshooting", json!({"max_tokens": 4096})),
                release(
                    Semver("v1.2.0"),
                    128,
                    SentBack("invented refund policies in 4% of the red-team set"),
                    "system prompt v4",
                    json!({"system_prompt": "support-assistant-v4", "temperature": 0.8}),
                ),
                release(Semver("v1.2.1"), 121, Production, "system prompt v4 at a lower temperature", json!({"system_prompt": "support-assistant-v4", "temperature": 0.6})),
                release(Semver("v2.0.0"), 92, Production, "16k context for long tickets", json!({"context_window": 16384, "system_prompt": "support-assistant-v5"})),
                release(
                    Semver("v2.1.0"),
                    44,
                    RolledBack("p99 latency rose from 1.8 s to 4.2 s after the switch"),
                    "larger batches for throughput",
                    json!({"batch_size": 32}),
                ),
                release(Semver("v2.1.1"), 36, Production, "batching tuned after the v2.1.0 rollback", json!({"batch_size": 24, "max_num_seqs": 128})),
                release(Dated("awq-int4"), 15, Staging, "AWQ int4 build on half the GPUs", json!({"quantization": "awq-int4", "dtype": "float16", "tensor_parallel_size": 2})),
                release(Semver("v2.2.0-rc1"), 3, Development, "system prompt v6 draft", json!({"system_prompt": "support-assistant-v6"})),
            ],
        },
        ModelScript {
            model_id: "embed-bge-large",
            owner: "bob",
            approvers: ["alice", "dave"],
            artifact_file: "model.onnx",
            labels: &[("team", "search"), ("task", "embedding"), ("runtime", "triton")],
            base_config: json!({
                "base_model": "BAAI/bge-large-en-v1.5",
                "dtype": "float16",
                "embedding_dim": 1024,
                "max_seq_len": 512,
                "pooling": "cls",
                "normalize": true,
                "batch_size": 64,
                "tokenizer": "bert-base-uncased"
            }),
            dev_pin_follows: true,
            latency_ms: (8, 45),
            outcomes: &["ok"],
            releases: vec![
                release(Semver("v1.0.0"), 170, Production, "first embedding model for semantic search", json!({})),
                release(Semver("v1.0.1"), 149, Production, "batch size 128 after the load test", json!({"batch_size": 128})),
                release(Semver("v1.1.0"), 117, Production, "ONNX opset 17 export, 18% faster", json!({"onnx_opset": 17})),
                release(
                    Semver("v1.2.0"),
                    84,
                    SentBack("recall@10 on the product catalogue fell from 0.912 to 0.874"),
                    "mean pooling",
                    json!({"pooling": "mean"}),
                ),
                release(
                    Semver("v1.2.1"),
                    71,
                    Production,
                    "query instruction prefix, recall@10 0.921",
                    json!({"instruction_prefix": "Represent this sentence for searching relevant passages: "}),
                ),
                release(Semver("v1.3.0"), 19, Production, "Matryoshka dimensions for cheaper indexes", json!({"matryoshka_dims": [256, 512, 1024]})),
                release(Semver("v1.4.0-dev"), 2, Development, "distilled 768-dimension student", json!({"embedding_dim": 768, "base_model": "switchyard/bge-large-distilled"})),
            ],
        },
        ModelScript {
            model_id: "rerank-minilm",
            owner: "carol",
            approvers: ["alice", "bob"],
            artifact_file: "model.onnx",
            labels: &[("team", "search"), ("task", "reranking"), ("runtime", "onnxruntime")],
            base_config: json!({
                "base_model": "cross-encoder/ms-marco-MiniLM-L-6-v2",
                "dtype": "float32",
                "quantization": "none",
                "max_seq_len": 512,
                "batch_size": 32,
                "top_k": 50,
                "score_threshold": 0.1
            }),
            dev_pin_follows: true,
            latency_ms: (12, 60),
            outcomes: &["ok"],
            releases: vec![
                release(Semver("v0.9.0"), 160, Production, "baseline cross-encoder", json!({})),
                release(Semver("v1.0.0"), 131, Production, "dynamic int8 quantization, 2.3x faster on CPU", json!({"dtype": "int8", "quantization": "dynamic-int8"})),
                release(Semver("v1.1.0"), 88, Production, "rerank the top 100", json!({"top_k": 100})),
                release(Semver("v1.2.0"), 41, Production, "shorter sequences, p95 down 30%", json!({"max_seq_len": 384})),
                release(Semver("v1.3.0"), 9, Staging, "12-layer model", json!({"base_model": "cross-encoder/ms-marco-MiniLM-L-12-v2"})),
            ],
        },
        ModelScript {
            model_id: "fraud-xgb",
            owner: "dave",
            approvers: ["alice", "carol"],
            artifact_file: "model.json",
            labels: &[("team", "risk"), ("task", "fraud-detection"), ("runtime", "mlserver")],
            base_config: json!({
                "algorithm": "xgboost",
                "n_estimators": 400,
                "max_depth": 6,
                "learning_rate": 0.05,
                "subsample": 0.8,
                "decision_threshold": 0.82,
                "feature_set": "fs-v11",
                "training_window_days": 90
            }),
            dev_pin_follows: false,
            latency_ms: (2, 9),
            outcomes: &["approved", "approved", "approved", "approved", "review", "declined"],
            releases: vec![
                release(Dated("retrain"), 172, Production, "monthly retrain on 90 days of transactions", json!({})),
                release(Dated("retrain"), 142, Production, "merchant velocity features", json!({"feature_set": "fs-v12"})),
                release(Dated("retrain"), 112, Production, "monthly retrain", json!({})),
                release(
                    Dated("threshold-0.78"),
                    96,
                    SentBack("false positives up 31% in the shadow run"),
                    "lower threshold to catch card testing",
                    json!({"decision_threshold": 0.78}),
                ),
                release(Dated("retrain"), 82, Production, "monthly retrain", json!({})),
                release(Dated("retrain"), 52, Production, "deeper trees, AUC 0.962 → 0.968", json!({"n_estimators": 600, "max_depth": 7})),
                release(Dated("retrain"), 22, Production, "monthly retrain", json!({})),
                release(Dated("shap"), 5, Staging, "SHAP explanations in responses", json!({"explanations": "shap"})),
            ],
        },
        ModelScript {
            model_id: "vision-clip",
            owner: "carol",
            approvers: ["bob", "dave"],
            artifact_file: "model.plan",
            labels: &[("team", "catalogue"), ("task", "image-embedding"), ("runtime", "triton")],
            base_config: json!({
                "base_model": "openai/clip-vit-large-patch14",
                "dtype": "float16",
                "quantization": "none",
                "image_size": 224,
                "embedding_dim": 768,
                "batch_size": 32,
                "preprocess": "center-crop"
            }),
            dev_pin_follows: true,
            latency_ms: (18, 90),
            outcomes: &["ok"],
            releases: vec![
                release(Semver("v1.0"), 165, Production, "image search for the catalogue", json!({})),
                release(Semver("v1.1"), 120, Production, "resize and pad, keep whole products in frame", json!({"preprocess": "resize-pad"})),
                release(Dated("quantized"), 75, Production, "TensorRT int8, 3x throughput", json!({"dtype": "int8", "quantization": "tensorrt-int8"})),
                release(Semver("v1.2"), 30, Staging, "336 px input", json!({"image_size": 336, "base_model": "openai/clip-vit-large-patch14-336"})),
                release(Semver("v1.3-dev"), 2, Development, "fine-tuned on the 2026 Q1 catalogue", json!({"fine_tuned_on": "catalogue-2026q1"})),
            ],
        },
        ModelScript {
            model_id: "asr-whisper",
            owner: "bob",
            approvers: ["carol", "dave"],
            artifact_file: "model.bin",
            labels: &[("team", "voice"), ("task", "speech-recognition"), ("runtime", "mlserver")],
            base_config: json!({
                "base_model": "openai/whisper-large-v3",
                "dtype": "float16",
                "language": "auto",
                "beam_size": 5,
                "chunk_length_s": 30,
                "vad_filter": true,
                "batch_size": 8
            }),
            dev_pin_follows: true,
            latency_ms: (300, 1900),
            outcomes: &["transcribed", "transcribed", "transcribed", "no_speech"],
            releases: vec![
                release(Semver("v3.0.0"), 158, Production, "call-centre transcription", json!({})),
                release(Semver("v3.0.1"), 139, Production, "beam size 4: same WER, 20% faster", json!({"beam_size": 4})),
                release(
                    Semver("v3.1.0"),
                    97,
                    RolledBack("WER on accented speech rose from 8.9% to 12.4%"),
                    "turbo decoder",
                    json!({"base_model": "openai/whisper-large-v3-turbo"}),
                ),
                release(Semver("v3.1.1"), 66, Production, "turbo decoder with an English language hint", json!({"language": "en"})),
                release(Semver("v3.2.0+int8"), 14, Production, "int8 via CTranslate2", json!({"compute_type": "int8_float16"})),
                release(Semver("v3.3.0-rc1"), 1, Development, "diarization", json!({"diarization": true})),
            ],
        },
    ]
}

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A small deterministic generator (SplitMix64), so the demo is the same on
/// every run for the same `now`.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.next() % items.len() as u64).unwrap_or(0);
        &items[i]
    }

    /// `t` plus a delay between `lo` and `hi` micro-units of `unit`.
    fn after(&mut self, t: Timestamp, lo: i64, hi: i64, unit: i64) -> Timestamp {
        Timestamp::from_micros(t.micros() + self.between(lo * unit, hi * unit))
    }
}

/// One model's state while its script is played.
struct Playhead<'a> {
    script: &'a ModelScript,
    model: ModelId,
    dice: Dice,
    steps: Vec<Step>,
    config: Map<String, Value>,
    production: Option<FullId>,
    /// The production version before the current one: the rollback target.
    superseded: Option<FullId>,
    dev_pinned: bool,
    cursor: Timestamp,
}

impl Playhead<'_> {
    fn push(&mut self, at: Timestamp, action: Action) {
        self.cursor = at;
        self.steps.push(Step { at, action });
    }

    fn stage(
        &mut self,
        at: Timestamp,
        id: &FullId,
        to: Stage,
        via: MoveVia,
        reason: String,
        actor: &'static str,
    ) {
        self.push(
            at,
            Action::Stage {
                id: id.clone(),
                to,
                via,
                reason,
                actor,
            },
        );
    }

    fn pin(
        &mut self,
        at: Timestamp,
        env: &'static str,
        id: &FullId,
        reason: String,
        actor: &'static str,
    ) {
        self.push(
            at,
            Action::Pin {
                env,
                id: id.clone(),
                reason,
                actor,
            },
        );
    }

    /// Registers the release's version (and moves the development pin to it).
    fn register(
        &mut self,
        index: usize,
        r: &Release,
        now: Timestamp,
    ) -> Result<FullId, DomainError> {
        let s = self.script;
        let planned = day_start(now.plus_days(-r.day)).plus_hours(8);
        let start = if planned > self.cursor {
            planned
        } else {
            self.cursor.plus_hours(2)
        };
        let t = self.dice.after(start, 0, 9 * 60, MINUTE);

        let version = match r.name {
            Name::Semver(v) => v.to_owned(),
            Name::Dated(suffix) => format!("{}-{suffix}", t.to_datetime().format("%Y%m%d")),
        };
        let id = FullId::new(self.model.clone(), VersionName::parse(&version)?);
        let mut config = self.config.clone();
        if let Value::Object(patch) = &r.patch {
            config.extend(patch.clone());
        }
        let config = Value::Object(config);
        let mut labels: Labels = s
            .labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.insert(
            "git_commit".into(),
            format!("{:07x}", self.dice.next() >> 36),
        );
        let registrar = if index % 3 == 2 {
            s.owner
        } else {
            "ci-pipeline"
        };
        let new = NewVersion {
            full_id: id.clone(),
            config_hash: config_hash(&config)?,
            config: config.clone(),
            artifact_uri: Some(format!(
                "s3://models/{}/{version}/{}",
                s.model_id, s.artifact_file
            )),
            labels: Some(labels),
        };
        self.push(
            t,
            Action::Register {
                new,
                actor: registrar,
            },
        );
        if !matches!(r.fate, Fate::SentBack(_)) {
            if let Value::Object(c) = config {
                self.config = c;
            }
        }
        if s.dev_pin_follows || !self.dev_pinned {
            let at = self.dice.after(t, 5, 25, MINUTE);
            let reason = if s.dev_pin_follows {
                "track the newest build".to_owned()
            } else {
                format!("baseline for drift reports: {id}")
            };
            self.pin(at, "development", &id, reason, "ci-pipeline");
            self.dev_pinned = true;
        }
        Ok(id)
    }

    /// Plays one release: registration, then as far through the lifecycle as its fate says.
    fn play(&mut self, index: usize, r: &Release, now: Timestamp) -> Result<(), DomainError> {
        let id = self.register(index, r, now)?;
        if matches!(r.fate, Fate::Development) {
            return Ok(());
        }
        let s = self.script;
        let [first_approver, applier] = s.approvers;

        let manual = MoveVia::Manual { is_admin: false };
        let at = self.dice.after(self.cursor, 20, 70, HOUR);
        self.stage(
            at,
            &id,
            Stage::Staging,
            manual,
            format!("feature complete: {}", r.change),
            s.owner,
        );
        let at = self.dice.after(at, 10, 40, MINUTE);
        self.pin(
            at,
            "staging",
            &id,
            format!("evaluate {} in staging", id.version),
            s.owner,
        );

        match r.fate {
            Fate::Development | Fate::Staging => {}
            Fate::SentBack(why) => {
                let at = self.dice.after(self.cursor, 20, 60, HOUR);
                self.stage(
                    at,
                    &id,
                    Stage::Development,
                    manual,
                    format!("sent back: {why}"),
                    s.owner,
                );
                if let Some(prod) = self.production.clone() {
                    let at = self.dice.after(at, 5, 30, MINUTE);
                    let reason = format!(
                        "back to the production build while {} is reworked",
                        id.version
                    );
                    self.pin(at, "staging", &prod, reason, s.owner);
                }
            }
            Fate::Production | Fate::RolledBack(_) => {
                let at = self.dice.after(self.cursor, 44, 110, HOUR);
                let reason = format!(
                    "promotion approved by {first_approver} and {applier}: {}",
                    r.change
                );
                self.promote(at, &id, reason, applier);
                if let Fate::RolledBack(why) = r.fate {
                    if let Some(previous) = self.superseded.clone() {
                        let at = self.dice.after(self.cursor, 6, 30, HOUR);
                        let reason =
                            format!("rollback: {why}; approved by {first_approver} and {applier}");
                        self.promote(at, &previous, reason, applier);
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies a promotion to production and moves the production pin with it.
    fn promote(&mut self, at: Timestamp, id: &FullId, reason: String, actor: &'static str) {
        self.stage(at, id, Stage::Production, MoveVia::Promotion, reason, actor);
        let pin_at = Timestamp::from_micros(at.micros() + 30_000_000);
        self.pin(
            pin_at,
            "production",
            id,
            format!("promotion of {id} applied"),
            actor,
        );
        self.superseded = self.production.replace(id.clone());
    }
}

fn day_start(t: Timestamp) -> Timestamp {
    Timestamp::from_micros(t.micros().div_euclid(DAY) * DAY)
}

/// The whole demo history for `now`, in time order.
fn plan(now: Timestamp) -> Result<Plan, DomainError> {
    let scripts = scripts();
    let mut steps = Vec::new();
    let mut records = Vec::new();
    for (n, script) in scripts.iter().enumerate() {
        let mut head = Playhead {
            script,
            model: ModelId::parse(script.model_id)?,
            dice: Dice(seed(n)),
            steps: Vec::new(),
            config: script.base_config.as_object().cloned().unwrap_or_default(),
            production: None,
            superseded: None,
            dev_pinned: false,
            cursor: Timestamp::from_micros(0),
        };
        for (i, r) in script.releases.iter().enumerate() {
            head.play(i, r, now)?;
        }
        if let Some(prod) = head.production.clone() {
            records.extend(request_records(script, &prod, now, &mut head.dice));
        }
        steps.append(&mut head.steps);
    }

    // The retirement job, as it runs every day in a real deployment.
    let first = steps.iter().map(|s| s.at).min().unwrap_or(now);
    let mut tick = day_start(first).plus_hours(26);
    while tick < now {
        steps.push(Step {
            at: tick,
            action: Action::RetireDue,
        });
        tick = tick.plus_days(1);
    }

    // Models were scripted one by one; the ledger needs one time order.
    steps.sort_by_key(|s| s.at);
    let mut last = i64::MIN;
    for s in &mut steps {
        if s.at.micros() <= last {
            s.at = Timestamp::from_micros(last + 1);
        }
        last = s.at.micros();
    }
    Ok(Plan {
        models: scripts.len(),
        steps,
        records,
    })
}

/// A seed per model, so changing one model's script does not reshuffle the others.
fn seed(n: usize) -> u64 {
    0x5717_C4A2_D000_0000 ^ (n as u64).wrapping_mul(0xA076_1D64_78BD_642F)
}

/// Requests served by the model's production version over the last two days.
fn request_records(
    script: &ModelScript,
    prod: &FullId,
    now: Timestamp,
    dice: &mut Dice,
) -> Vec<RequestRecord> {
    const CLUSTERS: [&str; 2] = ["prod-eu-west-1", "prod-us-east-1"];
    (0..12)
        .map(|i| {
            let (lo, hi) = script.latency_ms;
            let latency = dice.between(
                i64::try_from(lo * 10).unwrap_or(0),
                i64::try_from(hi * 10).unwrap_or(0),
            );
            RequestRecord {
                request_id: format!("req-{:016x}", dice.next()),
                at: dice.after(now.plus_hours(-48), 0, 47 * 60, MINUTE),
                cluster: CLUSTERS[i % 2].to_owned(),
                slot: "blue".to_owned(),
                full_id: prod.clone(),
                latency_ms: latency as f64 / 10.0,
                outcome: Some((*dice.pick(script.outcomes)).to_owned()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-08-20T10:15:00Z").expect("a valid timestamp")
    }

    #[test]
    fn the_plan_is_the_same_every_time_for_the_same_now() {
        assert_eq!(plan(now()).expect("plan"), plan(now()).expect("plan"));
    }

    #[test]
    fn every_step_is_later_than_the_one_before_and_before_now() {
        let plan = plan(now()).expect("plan");
        for pair in plan.steps.windows(2) {
            assert!(
                pair[0].at < pair[1].at,
                "{:?} is not before {:?}",
                pair[0],
                pair[1]
            );
        }
        let last = plan.steps.last().expect("steps").at;
        assert!(last < now(), "the last step is at {last}");
        let first = plan.steps.first().expect("steps").at;
        assert!(
            first < now().plus_days(-150) && first > now().plus_days(-200),
            "the first step is at {first}"
        );
        assert!(plan.records.iter().all(|r| r.at < now()));
    }

    #[test]
    fn dozens_of_versions_of_six_models_are_registered() {
        let plan = plan(now()).expect("plan");
        let registered = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Register { .. }))
            .count();
        assert_eq!(plan.models, 6);
        assert!(registered >= 36, "{registered} versions");
    }

    #[test]
    fn each_promotion_of_a_model_comes_after_its_staging_move() {
        let plan = plan(now()).expect("plan");
        let mut staged = HashSet::new();
        for s in &plan.steps {
            if let Action::Stage { id, to, via, .. } = &s.action {
                match (to, via) {
                    (Stage::Staging, _) => {
                        staged.insert(id.clone());
                    }
                    (Stage::Production, _) => {
                        assert!(staged.contains(id), "{id} promoted before staging")
                    }
                    _ => {}
                }
            }
        }
    }
}
