//! Generates a realistic two-year history straight into a freshly migrated
//! database, with bulk statements instead of one transaction per event.
//!
//! The history is simulated in time order: versions are registered, staged,
//! promoted with two approvals (the previous production version deprecated,
//! retired 31 days later), pinned, and rolled out to clusters by blue-green
//! switches; sign-ins fill the ledger up to its size. Every event is sealed
//! with the domain's hash chain in id order and the head row is written
//! last, so `audit verify` accepts the result. Request records reference the
//! version each cluster served at their instant.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use switchyard_domain::clusters::{ClusterState, SlotName, Weights};
use switchyard_domain::history::Subject;
use switchyard_domain::ledger::{action, NewEvent, GENESIS_HASH};
use switchyard_domain::operations::OperationKind;
use switchyard_domain::{FullId, Stage, Timestamp};

use crate::db::{Db, Val};
use crate::rng;
use crate::size::Size;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const MINUTE: i64 = 60_000_000;
/// Rows buffered before a bulk statement.
const FLUSH_ROWS: usize = 20_000;
/// Request records per transaction (SQLite) or COPY (PostgreSQL).
const RECORDS_PER_BATCH: u64 = 100_000;
/// When a cluster's operation starts after the promotion (or staging) it follows.
const OP_DELAY: i64 = 10 * MINUTE;
/// A blue-green switch's steps are this far apart.
const STEP: i64 = 5_000_000;
const DEPRECATION_DAYS: i64 = 31;

const FAMILIES: [&str; 8] = [
    "chat", "fraud", "rank", "vision", "speech", "embed", "churn", "price",
];
const PEOPLE: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

pub const LEDGER_COLUMNS: [&str; 12] = [
    "id",
    "at",
    "actor",
    "action",
    "model_id",
    "version",
    "environment",
    "cluster",
    "reason",
    "details",
    "prev_hash",
    "hash",
];
pub const RECORD_COLUMNS: [&str; 8] = [
    "request_id",
    "at",
    "cluster",
    "slot",
    "model_id",
    "version",
    "latency_ms",
    "outcome",
];

/// The release history's shape: when each version of each model moved.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub start: i64,
    pub end: i64,
    pub models: Vec<ModelPlan>,
    pub clusters: Vec<ClusterPlan>,
    pub request_records: u64,
}

#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub id: String,
    pub versions: u32,
    base: i64,
    spacing: i64,
}

#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub name: String,
    pub environment: &'static str,
    pub model: usize,
}

impl ModelPlan {
    pub fn version_name(i: u32) -> String {
        format!("v{}.{}.{}", 1 + i / 100, (i / 10) % 10, i % 10)
    }

    pub fn full_id(&self, i: u32) -> String {
        format!("{}:{}", self.id, ModelPlan::version_name(i))
    }

    fn registered(&self, i: u32) -> i64 {
        self.base + i64::from(i) * self.spacing
    }

    fn staged(&self, i: u32) -> i64 {
        self.registered(i) + self.spacing / 10
    }

    fn requested(&self, i: u32) -> i64 {
        self.registered(i) + self.spacing * 2 / 10
    }

    fn approved(&self, i: u32) -> i64 {
        self.registered(i) + self.spacing * 3 / 10
    }

    fn promoted(&self, i: u32) -> i64 {
        self.registered(i) + self.spacing * 4 / 10
    }

    /// The last version stays in staging; all others reach production.
    fn is_promoted(&self, i: u32) -> bool {
        i + 1 < self.versions
    }

    /// The version a cluster of `environment` served at `at` (the first
    /// one before its first rollout), and its slot: switches alternate
    /// green, blue, green, … starting from an empty cluster routed to blue.
    fn served_at(&self, environment: &str, at: i64) -> (u32, SlotName) {
        let (offset, last) = if environment == "production" {
            (self.spacing * 4 / 10, self.versions.saturating_sub(2))
        } else {
            (self.spacing / 10, self.versions.saturating_sub(1))
        };
        let k = (at - self.base - offset - OP_DELAY)
            .div_euclid(self.spacing)
            .clamp(0, i64::from(last));
        let k = u32::try_from(k).unwrap_or(0);
        (
            k,
            if k % 2 == 0 {
                SlotName::Green
            } else {
                SlotName::Blue
            },
        )
    }

    fn config(&self, i: u32) -> Value {
        json!({
            "temperature": f64::from(i % 10) / 10.0,
            "max_tokens": 256 + 16 * i,
            "batch_size": 8 << (i % 4),
            "runtime": if i % 3 == 0 { "onnx" } else { "torch" },
        })
    }

    fn artifact_uri(&self, i: u32) -> String {
        format!(
            "s3://models/{}/{}/model.onnx",
            self.id,
            ModelPlan::version_name(i)
        )
    }
}

/// One generated request record.
pub struct Record {
    pub request_id: String,
    pub at: i64,
    pub cluster: String,
    pub slot: &'static str,
    pub model_id: String,
    pub version: String,
    pub latency_ms: f64,
    pub outcome: Option<&'static str>,
}

impl Record {
    pub fn row(self) -> Vec<Val> {
        vec![
            Val::Text(self.request_id),
            Val::Int(self.at),
            Val::Text(self.cluster),
            Val::from(self.slot),
            Val::Text(self.model_id),
            Val::Text(self.version),
            Val::Float(self.latency_ms),
            self.outcome.map_or(Val::Null, Val::from),
        ]
    }

    /// As a model server reports it (one NDJSON line).
    pub fn json_line(&self) -> String {
        let mut v = json!({
            "request_id": self.request_id,
            "at": Timestamp::from_micros(self.at).to_rfc3339(),
            "cluster": self.cluster,
            "slot": self.slot,
            "full_id": format!("{}:{}", self.model_id, self.version),
            "latency_ms": self.latency_ms,
        });
        if let Some(o) = self.outcome {
            v["outcome"] = json!(o);
        }
        v.to_string()
    }
}

impl Catalog {
    pub fn new(size: &Size, now: i64) -> Catalog {
        let end = now - DAY;
        let start = end - 730 * DAY;
        let span = end - start - 3 * DAY;
        let models = (0..size.models)
            .map(|m| {
                let versions = if m == 0 {
                    size.big_model_versions
                } else {
                    size.versions_per_model
                }
                .max(2);
                let spacing = span / (i64::from(versions) + 2);
                ModelPlan {
                    id: format!("{}-{m:03}", FAMILIES[m as usize % FAMILIES.len()]),
                    versions,
                    base: start + DAY + (i64::from(m) * 7_919 * MINUTE).rem_euclid(spacing / 2),
                    spacing,
                }
            })
            .collect::<Vec<_>>();
        let production_clusters = size.clusters * 7 / 10;
        let clusters = (0..size.clusters)
            .map(|c| {
                let environment = if c < production_clusters {
                    "production"
                } else {
                    "staging"
                };
                let region = ["eu", "us", "ap"][c as usize % 3];
                ClusterPlan {
                    name: format!("{}-{region}-{c:03}", &environment[..4]),
                    environment,
                    model: c as usize % models.len().max(1),
                }
            })
            .collect();
        Catalog {
            start,
            end,
            models,
            clusters,
            request_records: size.request_records,
        }
    }

    /// Request record number `j` of the history (deterministic).
    pub fn record(&self, j: u64) -> Record {
        let first = self.start + 3 * DAY;
        let span = (self.end - first) as f64;
        let at = first
            + (span * (j as f64 + rng::unit(1, j)) / self.request_records.max(1) as f64) as i64;
        self.record_at(j, at, &format!("{at:013x}-{:08x}", rng::at(2, j) as u32))
    }

    /// A record at `at` with the given id, on a random cluster.
    pub fn record_at(&self, j: u64, at: i64, request_id: &str) -> Record {
        let c = &self.clusters[rng::below(3, j, self.clusters.len() as u64) as usize];
        let model = &self.models[c.model];
        let (k, slot) = model.served_at(c.environment, at);
        Record {
            request_id: request_id.to_owned(),
            at,
            cluster: c.name.clone(),
            slot: slot.as_str(),
            model_id: model.id.clone(),
            version: ModelPlan::version_name(k),
            latency_ms: (5.0 + 200.0 * rng::unit(4, j).powi(3) * 100.0).round() / 100.0,
            outcome: (rng::below(5, j, 50) != 0)
                .then_some("ok")
                .or(Some("error")),
        }
    }

    /// A random instant of the history.
    pub fn instant(&self, n: u64) -> i64 {
        self.start + (rng::unit(6, n) * (self.end - self.start) as f64) as i64
    }
}

/// What the generator wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Generated {
    pub ledger_events: i64,
    pub state_history_rows: u64,
    pub versions: u64,
    pub request_records: u64,
    pub ledger_seconds: f64,
    pub records_seconds: f64,
}

/// Prints a line every few seconds with the rate so far.
pub struct Progress {
    label: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(label: &'static str, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            label,
            total,
            done: 0,
            started: now,
            last: now,
        }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.last.elapsed().as_secs() >= 3 {
            self.last = Instant::now();
            eprintln!(
                "  {}: {} / {} ({:.0} rows/s)",
                self.label,
                self.done,
                self.total,
                self.rate()
            );
        }
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// Seconds taken.
    pub fn finish(&self) -> f64 {
        eprintln!(
            "  {}: {} rows in {:.1} s ({:.0} rows/s)",
            self.label,
            self.done,
            self.started.elapsed().as_secs_f64(),
            self.rate()
        );
        self.started.elapsed().as_secs_f64()
    }
}

/// The ledger being written: seals events in id order and buffers rows.
struct Chain<'a> {
    db: &'a Db,
    last_id: i64,
    last_hash: String,
    ledger: Vec<Vec<Val>>,
    states: Vec<Vec<Val>>,
    state_rows: u64,
    progress: Progress,
}

impl Chain<'_> {
    async fn append(&mut self, event: NewEvent) -> anyhow::Result<i64> {
        let ev = event.seal(self.last_id + 1, &self.last_hash);
        self.last_id = ev.id;
        self.last_hash.clone_from(&ev.hash);
        self.ledger.push(vec![
            Val::Int(ev.id),
            Val::Int(ev.at.micros()),
            Val::Text(ev.actor),
            Val::Text(ev.action),
            Val::from(ev.model_id),
            Val::from(ev.version),
            Val::from(ev.environment),
            Val::from(ev.cluster),
            Val::from(ev.reason),
            Val::Text(ev.details.to_string()),
            Val::Text(ev.prev_hash),
            Val::Text(ev.hash),
        ]);
        if self.ledger.len() >= FLUSH_ROWS {
            self.flush().await?;
        }
        Ok(self.last_id)
    }

    fn state(&mut self, subject: Subject, at: i64, event_id: i64, value: String) {
        self.state_rows += 1;
        self.states.push(vec![
            Val::Text(subject.key()),
            Val::Int(at),
            Val::Int(event_id),
            Val::Text(value),
        ]);
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        self.db
            .bulk_insert("ledger", &LEDGER_COLUMNS, &self.ledger)
            .await?;
        self.progress.add(self.ledger.len() as u64);
        self.ledger.clear();
        self.db
            .bulk_insert(
                "state_history",
                &["subject", "valid_from", "event_id", "value"],
                &self.states,
            )
            .await?;
        self.states.clear();
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Act {
    ClusterCreated { cluster: usize },
    Register,
    Stage,
    Request,
    Approve,
    Promote,
    Operation { cluster: usize },
    Retire,
}

#[derive(Debug, Clone, Copy)]
struct Planned {
    at: i64,
    seq: u32,
    act: Act,
    model: usize,
    version: u32,
}

impl Act {
    /// How many ledger events the act appends (`supersedes`: a production version is replaced).
    fn events(self, supersedes: bool) -> u64 {
        match self {
            Act::ClusterCreated { .. } | Act::Register | Act::Request | Act::Approve => 1,
            Act::Stage | Act::Retire => 2,
            Act::Promote => 4 + if supersedes { 2 } else { 0 },
            Act::Operation { .. } => 10,
        }
    }
}

fn plan(catalog: &Catalog) -> Vec<Planned> {
    let mut acts = Vec::new();
    let mut push = |at: i64, act: Act, model: usize, version: u32| {
        let seq = acts.len() as u32;
        acts.push(Planned {
            at,
            seq,
            act,
            model,
            version,
        });
    };
    for (c, cluster) in catalog.clusters.iter().enumerate() {
        push(
            catalog.start + i64::try_from(c).unwrap_or(0) * MINUTE,
            Act::ClusterCreated { cluster: c },
            cluster.model,
            0,
        );
    }
    for (m, model) in catalog.models.iter().enumerate() {
        for i in 0..model.versions {
            push(model.registered(i), Act::Register, m, i);
            push(model.staged(i), Act::Stage, m, i);
            for (c, cluster) in catalog.clusters.iter().enumerate() {
                if cluster.model == m && cluster.environment == "staging" {
                    push(
                        model.staged(i) + OP_DELAY,
                        Act::Operation { cluster: c },
                        m,
                        i,
                    );
                }
            }
            if !model.is_promoted(i) {
                continue;
            }
            push(model.requested(i), Act::Request, m, i);
            push(model.approved(i), Act::Approve, m, i);
            push(model.promoted(i), Act::Promote, m, i);
            for (c, cluster) in catalog.clusters.iter().enumerate() {
                if cluster.model == m && cluster.environment == "production" {
                    push(
                        model.promoted(i) + OP_DELAY,
                        Act::Operation { cluster: c },
                        m,
                        i,
                    );
                }
            }
            // Deprecated when the next version is promoted; retired after the period.
            if model.is_promoted(i + 1) {
                let retire_at = model.promoted(i + 1) + DEPRECATION_DAYS * DAY;
                if retire_at < catalog.end {
                    push(retire_at, Act::Retire, m, i);
                }
            }
        }
    }
    acts.sort_by_key(|p| (p.at, p.seq));
    acts
}

struct PinState {
    version: u32,
    since: i64,
    set_by: &'static str,
    reason: Option<String>,
    event_id: i64,
}

struct ClusterSim {
    state: ClusterState,
    event_id: i64,
    since: i64,
    rollback_to: Option<String>,
    created_at: i64,
    operations: i64,
}

fn full_id(s: &str) -> anyhow::Result<FullId> {
    FullId::parse(s).map_err(|e| anyhow::anyhow!("generated full id {s}: {e}"))
}

/// Writes the release history and the request records; returns the counts.
pub async fn generate(db: &Db, catalog: &Catalog, size: &Size) -> anyhow::Result<Generated> {
    let acts = plan(catalog);
    let mut structural = 0;
    {
        let mut production = vec![false; catalog.models.len()];
        for p in &acts {
            structural += p
                .act
                .events(matches!(p.act, Act::Promote) && production[p.model]);
            if matches!(p.act, Act::Promote) {
                production[p.model] = true;
            }
        }
    }
    let fillers = size.ledger_events.saturating_sub(structural);
    let total = structural + fillers;
    eprintln!(
        "generating {} models, {} versions, {} clusters, {total} ledger events ({structural} release history, {fillers} sign-ins)",
        catalog.models.len(),
        catalog.models.iter().map(|m| u64::from(m.versions)).sum::<u64>(),
        catalog.clusters.len(),
    );
    let mut chain = Chain {
        db,
        last_id: 0,
        last_hash: GENESIS_HASH.to_owned(),
        ledger: Vec::with_capacity(FLUSH_ROWS),
        states: Vec::with_capacity(FLUSH_ROWS),
        state_rows: 0,
        progress: Progress::new("ledger", total),
    };
    let mut stages: Vec<Vec<(Stage, i64)>> = catalog
        .models
        .iter()
        .map(|m| vec![(Stage::Development, 0); m.versions as usize])
        .collect();
    let mut production: Vec<Option<u32>> = vec![None; catalog.models.len()];
    let mut pins: HashMap<(&'static str, usize), PinState> = HashMap::new();
    let mut promotions: HashMap<(usize, u32), i64> = HashMap::new();
    let mut clusters: Vec<Option<ClusterSim>> = catalog.clusters.iter().map(|_| None).collect();
    let filler_step = (catalog.end - catalog.start) / i64::try_from(fillers.max(1)).unwrap_or(1);
    let mut next_filler = 0_u64;

    for p in &acts {
        while next_filler < fillers
            && catalog.start
                + i64::try_from(next_filler).unwrap_or(0) * filler_step
                + filler_step / 2
                <= p.at
        {
            let at = catalog.start
                + i64::try_from(next_filler).unwrap_or(0) * filler_step
                + filler_step / 2;
            let who = PEOPLE[rng::below(7, next_filler, PEOPLE.len() as u64) as usize];
            let what = if next_filler % 2 == 0 {
                action::SIGNED_IN
            } else {
                action::SIGNED_OUT
            };
            chain
                .append(NewEvent::new(Timestamp::from_micros(at), who, what).details(json!({ "address": format!("10.0.{}.{}", next_filler % 7, next_filler % 250) })))
                .await?;
            next_filler += 1;
        }
        let model = &catalog.models[p.model];
        let id_text = model.full_id(p.version);
        let id = full_id(&id_text)?;
        let at = Timestamp::from_micros(p.at);
        match p.act {
            Act::ClusterCreated { cluster } => {
                let plan = &catalog.clusters[cluster];
                let state = ClusterState::default();
                let ev = chain
                    .append(
                        NewEvent::new(at, "alice", action::CLUSTER_CREATED)
                            .environment(plan.environment)
                            .cluster(&plan.name)
                            .details(
                                json!({ "driver": "simulated", "config": {}, "state": state }),
                            ),
                    )
                    .await?;
                chain.state(
                    Subject::Cluster {
                        name: plan.name.clone(),
                    },
                    p.at,
                    ev,
                    serde_json::to_string(&state)?,
                );
                clusters[cluster] = Some(ClusterSim {
                    state,
                    event_id: ev,
                    since: p.at,
                    rollback_to: None,
                    created_at: p.at,
                    operations: 0,
                });
            }
            Act::Register => {
                let config_hash =
                    switchyard_domain::config_hash::config_hash(&model.config(p.version))?;
                let ev = chain
                    .append(
                        NewEvent::new(at, "token:ci", action::VERSION_REGISTERED)
                            .full_id(&id)
                            .details(json!({
                                "config_hash": config_hash,
                                "artifact_uri": model.artifact_uri(p.version),
                                "stage": "development",
                            })),
                    )
                    .await?;
                chain.state(
                    Subject::Stage {
                        full_id: id_text.clone(),
                    },
                    p.at,
                    ev,
                    "development".to_owned(),
                );
                stages[p.model][p.version as usize] = (Stage::Development, p.at);
            }
            Act::Stage => {
                let reason = "feature complete";
                let ev = chain
                    .append(
                        NewEvent::new(at, "dave", action::STAGE_CHANGED)
                            .full_id(&id)
                            .reason(Some(reason))
                            .details(json!({ "from": "development", "to": "staging" })),
                    )
                    .await?;
                chain.state(
                    Subject::Stage {
                        full_id: id_text.clone(),
                    },
                    p.at,
                    ev,
                    "staging".to_owned(),
                );
                stages[p.model][p.version as usize] = (Stage::Staging, p.at);
                pin(
                    &mut chain,
                    &mut pins,
                    "staging",
                    p,
                    &id,
                    "dave",
                    "candidate for staging tests",
                )
                .await?;
            }
            Act::Request => {
                let promotion_id = promotions.len() as i64 + 1;
                promotions.insert((p.model, p.version), promotion_id);
                chain
                    .append(
                        NewEvent::new(at, "dave", action::PROMOTION_REQUESTED)
                            .full_id(&id)
                            .environment("production")
                            .reason(Some("passed staging"))
                            .details(json!({ "promotion_id": promotion_id, "to_stage": "production", "required_approvals": 2 })),
                    )
                    .await?;
            }
            Act::Approve | Act::Promote => {
                let promotion_id = promotions.get(&(p.model, p.version)).copied().unwrap_or(0);
                let approver = if matches!(p.act, Act::Approve) {
                    "bob"
                } else {
                    "carol"
                };
                chain
                    .append(
                        NewEvent::new(at, approver, action::PROMOTION_APPROVED)
                            .full_id(&id)
                            .environment("production")
                            .details(json!({ "promotion_id": promotion_id, "approvals": if approver == "bob" { 1 } else { 2 } })),
                    )
                    .await?;
                if matches!(p.act, Act::Promote) {
                    promote(
                        &mut chain,
                        &mut stages,
                        &mut production,
                        &mut pins,
                        catalog,
                        p,
                        &id,
                        promotion_id,
                    )
                    .await?;
                }
            }
            Act::Operation { cluster } => {
                let plan = &catalog.clusters[cluster];
                let Some(sim) = clusters[cluster].as_mut() else {
                    continue;
                };
                switch(&mut chain, sim, plan, p.at, &id).await?;
            }
            Act::Retire => {
                if stages[p.model][p.version as usize].0 != Stage::Deprecated {
                    continue;
                }
                let ev = chain
                    .append(
                        NewEvent::new(at, "system", action::STAGE_CHANGED)
                            .full_id(&id)
                            .details(json!({ "from": "deprecated", "to": "retired" })),
                    )
                    .await?;
                chain
                    .append(
                        NewEvent::new(at, "system", action::RETIREMENT)
                            .full_id(&id)
                            .details(json!({ "early": false })),
                    )
                    .await?;
                chain.state(
                    Subject::Stage {
                        full_id: id_text.clone(),
                    },
                    p.at,
                    ev,
                    "retired".to_owned(),
                );
                stages[p.model][p.version as usize] = (Stage::Retired, p.at);
            }
        }
    }
    while next_filler < fillers {
        let at =
            catalog.start + i64::try_from(next_filler).unwrap_or(0) * filler_step + filler_step / 2;
        chain
            .append(
                NewEvent::new(Timestamp::from_micros(at), "erin", action::SIGNED_IN)
                    .details(json!({ "address": "10.0.0.1" })),
            )
            .await?;
        next_filler += 1;
    }
    chain.flush().await?;
    let ledger_seconds = chain.progress.finish();

    let versions = write_versions(db, catalog, &stages).await?;
    write_pins(db, catalog, &pins).await?;
    write_clusters(db, catalog, &clusters).await?;
    // The head last: it names the newest event, as the store's writers leave it.
    match db {
        Db::Sqlite(pool) => {
            sqlx::query("UPDATE ledger_head SET last_id = $1, last_hash = $2 WHERE singleton = 1")
                .bind(chain.last_id)
                .bind(&chain.last_hash)
                .execute(pool)
                .await?;
        }
        Db::Postgres(pool) => {
            sqlx::query("UPDATE ledger_head SET last_id = $1, last_hash = $2 WHERE singleton = 1")
                .bind(chain.last_id)
                .bind(&chain.last_hash)
                .execute(pool)
                .await?;
        }
    }

    let records_seconds = write_records(db, catalog).await?;
    db.finish_loading().await.context("analyse after loading")?;
    Ok(Generated {
        ledger_events: chain.last_id,
        state_history_rows: chain.state_rows,
        versions,
        request_records: catalog.request_records,
        ledger_seconds,
        records_seconds,
    })
}

async fn pin(
    chain: &mut Chain<'_>,
    pins: &mut HashMap<(&'static str, usize), PinState>,
    environment: &'static str,
    p: &Planned,
    id: &FullId,
    actor: &'static str,
    reason: &str,
) -> anyhow::Result<()> {
    let from = pins
        .get(&(environment, p.model))
        .map(|s| ModelPlan::version_name(s.version));
    let ev = chain
        .append(
            NewEvent::new(Timestamp::from_micros(p.at), actor, action::PIN_CHANGED)
                .full_id(id)
                .environment(environment)
                .reason(Some(reason))
                .details(json!({ "from": from, "to": id.version.as_str() })),
        )
        .await?;
    chain.state(
        Subject::Pin {
            environment: environment.to_owned(),
            model_id: id.model_id.to_string(),
        },
        p.at,
        ev,
        id.version.to_string(),
    );
    pins.insert(
        (environment, p.model),
        PinState {
            version: p.version,
            since: p.at,
            set_by: actor,
            reason: Some(reason.to_owned()),
            event_id: ev,
        },
    );
    Ok(())
}

/// The approval that completes a promotion applies it: stage, the previous
/// production version deprecated, the production pin.
#[allow(clippy::too_many_arguments)]
async fn promote(
    chain: &mut Chain<'_>,
    stages: &mut [Vec<(Stage, i64)>],
    production: &mut [Option<u32>],
    pins: &mut HashMap<(&'static str, usize), PinState>,
    catalog: &Catalog,
    p: &Planned,
    id: &FullId,
    promotion_id: i64,
) -> anyhow::Result<()> {
    let at = Timestamp::from_micros(p.at);
    let model = &catalog.models[p.model];
    chain
        .append(
            NewEvent::new(at, "carol", action::PROMOTION_APPLIED)
                .full_id(id)
                .environment("production")
                .details(json!({ "promotion_id": promotion_id })),
        )
        .await?;
    let ev = chain
        .append(
            NewEvent::new(at, "carol", action::STAGE_CHANGED)
                .full_id(id)
                .reason(Some("passed staging"))
                .details(json!({ "from": "staging", "to": "production" })),
        )
        .await?;
    chain.state(
        Subject::Stage {
            full_id: id.to_string(),
        },
        p.at,
        ev,
        "production".to_owned(),
    );
    stages[p.model][p.version as usize] = (Stage::Production, p.at);
    if let Some(prev) = production[p.model] {
        let prev_id = full_id(&model.full_id(prev))?;
        let why = format!("superseded by {id}");
        let ev = chain
            .append(
                NewEvent::new(at, "carol", action::STAGE_CHANGED)
                    .full_id(&prev_id)
                    .reason(Some(&why))
                    .details(json!({ "from": "production", "to": "deprecated" })),
            )
            .await?;
        chain
            .append(
                NewEvent::new(at, "carol", action::DEPRECATION)
                    .full_id(&prev_id)
                    .reason(Some(&why))
                    .details(json!({ "superseded_by": id.to_string() })),
            )
            .await?;
        chain.state(
            Subject::Stage {
                full_id: prev_id.to_string(),
            },
            p.at,
            ev,
            "deprecated".to_owned(),
        );
        stages[p.model][prev as usize] = (Stage::Deprecated, p.at);
    }
    production[p.model] = Some(p.version);
    pin(
        chain,
        pins,
        "production",
        p,
        id,
        "carol",
        "promotion applied",
    )
    .await
}

/// A blue-green switch of `sim` to `id`: load the idle slot, wait, smoke,
/// switch all traffic; the old slot stays as the rollback target.
async fn switch(
    chain: &mut Chain<'_>,
    sim: &mut ClusterSim,
    plan: &ClusterPlan,
    start: i64,
    id: &FullId,
) -> anyhow::Result<()> {
    sim.operations += 1;
    let operation_id = sim.operations;
    let idle = sim.state.idle_slot().unwrap_or(SlotName::Green);
    let before = sim.state.clone();
    let steps = [
        format!("load {id} into {idle}"),
        format!("wait until {id} in {idle} is ready"),
        format!("smoke request to {id} in {idle}"),
        format!("switch all traffic to {idle}"),
    ];
    let event = |at: i64, action: &str| {
        NewEvent::new(Timestamp::from_micros(at), "system", action)
            .full_id(id)
            .environment(plan.environment)
            .cluster(&plan.name)
    };
    chain
        .append(
            NewEvent { actor: "dave".to_owned(), ..event(start, action::OPERATION_STARTED) }
                .reason(Some("roll out"))
                .details(json!({ "operation_id": operation_id, "kind": OperationKind::BlueGreen.as_str(), "plan": steps, "before": before })),
        )
        .await?;
    let mut at = start;
    for (index, step) in steps.iter().enumerate() {
        at += STEP;
        chain
            .append(event(at, action::OPERATION_STEP).details(json!({ "operation_id": operation_id, "index": index, "step": step, "phase": "started" })))
            .await?;
        at += STEP;
        let new_state = match index {
            0 => Some(sim.state.with_version(idle, Some(id.clone()))),
            3 => Some(sim.state.with_weights(Weights::all_on(idle))),
            _ => None,
        };
        let ev = chain
            .append(event(at, action::OPERATION_STEP).details(json!({
                "operation_id": operation_id, "index": index, "step": step, "phase": "done", "state": new_state,
            })))
            .await?;
        if let Some(state) = new_state {
            chain.state(
                Subject::Cluster {
                    name: plan.name.clone(),
                },
                at,
                ev,
                serde_json::to_string(&state)?,
            );
            sim.state = state;
            sim.event_id = ev;
            sim.since = at;
        }
    }
    at += STEP;
    chain
        .append(event(at, action::OPERATION_COMPLETED).details(json!({
            "operation_id": operation_id, "kind": OperationKind::BlueGreen.as_str(), "state": "succeeded", "duration_ms": (at - start) / 1000,
        })))
        .await?;
    sim.rollback_to = before.sole_version().map(ToString::to_string);
    Ok(())
}

async fn write_versions(
    db: &Db,
    catalog: &Catalog,
    stages: &[Vec<(Stage, i64)>],
) -> anyhow::Result<u64> {
    let mut rows = Vec::new();
    let mut n = 0;
    for (m, model) in catalog.models.iter().enumerate() {
        for i in 0..model.versions {
            let config = model.config(i);
            let (stage, since) = stages[m][i as usize];
            rows.push(vec![
                Val::from(model.id.as_str()),
                Val::Text(ModelPlan::version_name(i)),
                Val::from(stage.as_str()),
                Val::Text(switchyard_domain::config_hash::config_hash(&config)?),
                Val::Text(config.to_string()),
                Val::Text(model.artifact_uri(i)),
                Val::Null,
                Val::Int(model.registered(i)),
                Val::from("token:ci"),
                Val::Int(since),
            ]);
            n += 1;
        }
    }
    let columns = [
        "model_id",
        "version",
        "stage",
        "config_hash",
        "config",
        "artifact_uri",
        "labels",
        "created_at",
        "created_by",
        "stage_since",
    ];
    for chunk in rows.chunks(FLUSH_ROWS) {
        db.bulk_insert("versions", &columns, chunk).await?;
    }
    Ok(n)
}

async fn write_pins(
    db: &Db,
    catalog: &Catalog,
    pins: &HashMap<(&'static str, usize), PinState>,
) -> anyhow::Result<()> {
    let rows: Vec<Vec<Val>> = pins
        .iter()
        .map(|((env, m), pin)| {
            vec![
                Val::from(*env),
                Val::from(catalog.models[*m].id.as_str()),
                Val::Text(ModelPlan::version_name(pin.version)),
                Val::Int(pin.since),
                Val::from(pin.set_by),
                Val::from(pin.reason.clone()),
                Val::Int(pin.event_id),
            ]
        })
        .collect();
    db.bulk_insert(
        "pins",
        &[
            "environment",
            "model_id",
            "version",
            "since",
            "set_by",
            "reason",
            "event_id",
        ],
        &rows,
    )
    .await
}

async fn write_clusters(
    db: &Db,
    catalog: &Catalog,
    clusters: &[Option<ClusterSim>],
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (plan, sim) in catalog.clusters.iter().zip(clusters) {
        let Some(sim) = sim else { continue };
        rows.push(vec![
            Val::from(plan.name.as_str()),
            Val::from(plan.environment),
            Val::from("simulated"),
            Val::from("{}"),
            Val::Text(serde_json::to_string(&sim.state)?),
            Val::Int(sim.event_id),
            Val::Int(sim.since),
            Val::from(sim.rollback_to.clone()),
            Val::Int(sim.created_at),
            Val::from("alice"),
        ]);
    }
    let columns = [
        "name",
        "environment",
        "driver",
        "config",
        "state",
        "state_event",
        "state_since",
        "rollback_to",
        "created_at",
        "created_by",
    ];
    db.bulk_insert("clusters", &columns, &rows).await
}

/// The request records, in time order, in big batches.
async fn write_records(db: &Db, catalog: &Catalog) -> anyhow::Result<f64> {
    let mut progress = Progress::new("request records", catalog.request_records);
    let mut j = 0;
    while j < catalog.request_records {
        let n = RECORDS_PER_BATCH.min(catalog.request_records - j);
        let rows: Vec<Vec<Val>> = (j..j + n).map(|k| catalog.record(k).row()).collect();
        db.bulk_insert("request_records", &RECORD_COLUMNS, &rows)
            .await?;
        progress.add(n);
        j += n;
    }
    Ok(progress.finish())
}
