//! The measurements: the real server started in-process on port 0 (twice,
//! for pin visibility across servers), a bare axum handler in the same
//! binary, and the raw engine through the benchmark's own connection.
//! Every load generator is bounded in requests or in time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use switchyard::auth::{password, secret};
use switchyard::config::Config;
use switchyard::startup::Application;
use switchyard::store::identity::NewSession;
use switchyard::store::{DynStore, StoreSettings};
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;
use tokio::task::JoinHandle;

use crate::db::{bind_all, copy_rows, Db, Mode, Val};
use crate::generate::{Catalog, ModelPlan, Record, RECORD_COLUMNS};
use crate::report::{percentile_ms, Figure};
use crate::size::Size;

const RECORDS_PER_BATCH: usize = 1_000;
/// A pin change must reach every server within this.
const VISIBILITY_TARGET_MS: f64 = 1_000.0;

const STATE_AT: &str = "SELECT h.valid_from, h.event_id, h.value, l.actor, l.reason \
     FROM state_history h JOIN ledger l ON l.id = h.event_id \
     WHERE h.subject = $1 AND h.valid_from <= $2 \
     ORDER BY h.valid_from DESC, h.event_id DESC LIMIT 1";
const RECORD_BY_ID: &str =
    "SELECT request_id, at, cluster, slot, model_id, version, latency_ms, outcome \
     FROM request_records WHERE request_id = $1";

/// A server started in-process; aborted when dropped.
struct Server {
    address: String,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_server(database_url: &str) -> anyhow::Result<Server> {
    let config = Config {
        database_url: database_url.to_owned(),
        addr: "127.0.0.1:0".parse()?,
        log_json: false,
        deprecation_days: 30,
        metrics_token: None,
        webhook_allow_private: true,
        secrets_key: None,
        checkpoint_file: None,
    };
    let app = Application::build(config)
        .await
        .context("the server starts")?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            eprintln!("the server stopped: {e:#}");
        }
    });
    Ok(Server { address, task })
}

/// The bare handler: the same resolve JSON with no auth, no database and no middleware.
async fn start_bare(body: String) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let body: Arc<str> = body.into();
    let router = Router::new().route(
        "/api/v1/resolve/{reference}",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("the bare server stopped: {e}");
        }
    });
    Ok(Server { address, task })
}

/// Credentials of the benchmark's user: an API token and a console session cookie.
struct Credentials {
    token: String,
    cookie: String,
}

async fn credentials(store: &DynStore) -> anyhow::Result<Credentials> {
    let now = Timestamp::now();
    let hash = password::hash("bench-password").map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .create_user("bench-admin", Role::Admin, &hash, "bench", now)
        .await?;
    let token = secret::generate(secret::TOKEN_PREFIX);
    store
        .create_token(
            "bench",
            "bench-admin",
            &secret::hash(&token),
            None,
            "bench",
            now,
        )
        .await?;
    let cookie = secret::generate("");
    let csrf = secret::generate("");
    let session = NewSession {
        id_hash: &secret::hash(&cookie),
        csrf_token: &csrf,
        username: "bench-admin",
        address: "127.0.0.1",
        expires_at: now.plus_hours(12),
    };
    store.create_session(session, now).await?;
    Ok(Credentials { token, cookie })
}

/// Only the notification figures, on the (freshly migrated) database at
/// `database_url`: no generated history.
pub async fn notifications_only(
    backend: &'static str,
    database_url: &str,
    size: &Size,
) -> anyhow::Result<Vec<Figure>> {
    let store = switchyard::store::connect(database_url, StoreSettings::default()).await?;
    let credentials = credentials(&store).await?;
    let server = start_server(database_url).await?;
    eprintln!(
        "measuring notifications on {backend} (server at {})",
        server.address
    );
    crate::notify::measure(backend, &server.address, &store, &credentials.token, size).await
}

pub struct Bench<'a> {
    backend: &'static str,
    size: &'a Size,
    catalog: &'a Catalog,
    raw: Db,
    store: DynStore,
    client: reqwest::Client,
    credentials: Credentials,
    pub figures: Vec<Figure>,
}

impl<'a> Bench<'a> {
    pub async fn new(
        backend: &'static str,
        database_url: &str,
        size: &'a Size,
        catalog: &'a Catalog,
    ) -> anyhow::Result<Bench<'a>> {
        let store = switchyard::store::connect(database_url, StoreSettings::default()).await?;
        let credentials = credentials(&store).await?;
        Ok(Bench {
            backend,
            size,
            catalog,
            raw: Db::open(database_url, Mode::Baseline).await?,
            store,
            client: reqwest::Client::new(),
            credentials,
            figures: Vec::new(),
        })
    }

    fn figure(&self, name: &str, unit: &'static str, value: f64) -> Figure {
        Figure::new(self.backend, name, unit, value)
    }

    /// Runs every measurement (of `phases`) against a server on `database_url`.
    pub async fn run(&mut self, database_url: &str, phases: &crate::Phases) -> anyhow::Result<()> {
        let server = start_server(database_url).await?;
        let second = start_server(database_url).await?;
        eprintln!(
            "measuring on {} (servers at {} and {})",
            self.backend, server.address, second.address
        );
        let (a, b) = (server.address.as_str(), second.address.as_str());
        // Each phase is announced, so a profiler can be attached to one of them.
        for phase in crate::PHASES.into_iter().filter(|p| phases.wants(p)) {
            eprintln!("  {phase}");
            match phase {
                "ingest" => self.ingest(a).await,
                "serving" => self.serving_at(a).await,
                "lookup" => self.request_lookup(a).await,
                "resolve" => self.resolve(a).await,
                "visibility" => self.pin_visibility(a, b).await,
                "pages" => self.pages(a, phases.wants("visibility")).await,
                "notifications" => {
                    let figures = crate::notify::measure(
                        self.backend,
                        a,
                        &self.store,
                        &self.credentials.token,
                        self.size,
                    )
                    .await;
                    figures.map(|f| self.figures.extend(f))
                }
                _ => Ok(()), // verify: before the servers start
            }
            .with_context(|| format!("measuring {phase}"))?;
        }
        Ok(())
    }

    /// Walks the whole ledger with the store's verifier; answers whether it holds.
    pub async fn verify(&mut self) -> anyhow::Result<bool> {
        let started = Instant::now();
        let report = self.store.audit_verify().await?;
        let secs = started.elapsed().as_secs_f64();
        let f = self
            .figure(
                &format!("audit verify ({} events)", report.checked),
                "s",
                secs,
            )
            .target("chain verifies", report.ok);
        self.figures.push(f);
        if !report.ok {
            eprintln!("the generated ledger does not verify: {:?}", report.problem);
        }
        Ok(report.ok)
    }

    fn get(&self, url: String) -> reqwest::RequestBuilder {
        self.client.get(url).bearer_auth(&self.credentials.token)
    }

    /// Times `n` sequential GETs of `path(i)`; each must answer 200.
    async fn latencies(
        &self,
        base: &str,
        n: usize,
        path: impl Fn(usize) -> String,
    ) -> anyhow::Result<Vec<Duration>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let url = format!("{base}{}", path(i));
            let started = Instant::now();
            let res = self.get(url.clone()).send().await?;
            let status = res.status();
            res.bytes().await?;
            out.push(started.elapsed());
            if !status.is_success() {
                bail!("GET {url} answered {status}");
            }
        }
        Ok(out)
    }

    /// Times `n` GETs of `path(i)` and `n` raw lookups of `sql` with `args(i)`,
    /// alternating, so that both see the same moments of a noisy machine;
    /// a few pairs first warm both up (connections, prepared statements) and
    /// are not counted.
    async fn side_by_side(
        &self,
        base: &str,
        n: usize,
        path: impl Fn(usize) -> String,
        sql: &str,
        args: impl Fn(usize) -> Vec<Val>,
    ) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
        let warm_up = (n / 10).min(20);
        let (mut http, mut raw) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n + warm_up {
            let h = self.latencies(base, 1, |_| path(i)).await?;
            let r = self.raw_latencies(1, sql, |_| args(i)).await?;
            if i >= warm_up {
                http.extend(h);
                raw.extend(r);
            }
        }
        Ok((http, raw))
    }

    async fn raw_latencies(
        &self,
        n: usize,
        sql: &str,
        args: impl Fn(usize) -> Vec<Val>,
    ) -> anyhow::Result<Vec<Duration>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let a = args(i);
            let started = Instant::now();
            self.raw.lookup(sql, &a).await?;
            out.push(started.elapsed());
        }
        Ok(out)
    }

    /// Records for ingest, dated now, with ids unique to `tag`.
    fn fresh_records(&self, tag: &str) -> Vec<Record> {
        let now = Timestamp::now().micros();
        (0..self.size.ingest_records)
            .map(|j| {
                self.catalog
                    .record_at(j, now + j as i64, &format!("{tag}-{now:013x}-{j:09}"))
            })
            .collect()
    }

    async fn ingest(&mut self, base: &str) -> anyhow::Result<()> {
        let bodies: Vec<String> = self
            .fresh_records("http")
            .chunks(RECORDS_PER_BATCH)
            .map(|batch| {
                batch
                    .iter()
                    .map(Record::json_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        let bodies = Arc::new(bodies);
        let next = Arc::new(AtomicUsize::new(0));
        let url = format!("{base}/api/v1/request-records");
        let started = Instant::now();
        let mut clients = Vec::new();
        for _ in 0..self.size.ingest_clients {
            let (bodies, next, url, token) = (
                bodies.clone(),
                next.clone(),
                url.clone(),
                self.credentials.token.clone(),
            );
            let client = reqwest::Client::new();
            clients.push(tokio::spawn(async move {
                let mut accepted = 0_u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<u64, anyhow::Error>(accepted);
                    };
                    let res = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = res.status();
                    let answer: Value = res.json().await?;
                    if status != reqwest::StatusCode::ACCEPTED {
                        bail!("ingest answered {status}: {answer}");
                    }
                    accepted += answer["accepted"].as_u64().unwrap_or(0);
                }
            }));
        }
        let mut accepted = 0;
        for c in clients {
            accepted += c.await??;
        }
        let http_rate = accepted as f64 / started.elapsed().as_secs_f64();
        if accepted != self.size.ingest_records {
            bail!(
                "the server accepted {accepted} of {} records",
                self.size.ingest_records
            );
        }

        let rows: Vec<Vec<Val>> = self
            .fresh_records("raw")
            .into_iter()
            .map(Record::row)
            .collect();
        let started = Instant::now();
        match &self.raw {
            // One transaction of prepared single-row inserts.
            Db::Sqlite(pool) => {
                let sql = format!(
                    "INSERT INTO request_records ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    RECORD_COLUMNS.join(", ")
                );
                let mut tx = pool.begin().await?;
                for row in &rows {
                    bind_all!(sqlx::query(&sql), row).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                copy_rows(&mut conn, "request_records", &RECORD_COLUMNS, &rows).await?;
            }
        }
        let raw_rate = rows.len() as f64 / started.elapsed().as_secs_f64();
        // SQLite's prepared inserts pay sqlx's per-statement round trip to
        // its worker thread; multi-row INSERTs (what the store does) do not,
        // so they are shown too as the stronger raw figure.
        let multi_row_rate = if let Db::Sqlite(_) = &self.raw {
            let rows: Vec<Vec<Val>> = self
                .fresh_records("raw-multi")
                .into_iter()
                .map(Record::row)
                .collect();
            let started = Instant::now();
            self.raw
                .bulk_insert("request_records", &RECORD_COLUMNS, &rows)
                .await?;
            Some(rows.len() as f64 / started.elapsed().as_secs_f64())
        } else {
            None
        };
        let ratio = http_rate / raw_rate;
        let (target, pass) = if self.backend == "sqlite" {
            (
                "≥ 100 000/s and ≥ 50% of raw",
                http_rate >= 100_000.0 && ratio >= 0.5,
            )
        } else {
            ("≥ 50% of raw", ratio >= 0.5)
        };
        let raw_kind = if self.backend == "sqlite" {
            "prepared INSERTs in one transaction"
        } else {
            "COPY"
        };
        let f = self
            .figure(
                &format!(
                    "ingest, {} clients × NDJSON batches of 1 000",
                    self.size.ingest_clients
                ),
                "rec/s",
                http_rate,
            )
            .baseline(raw_rate)
            .target(target, pass)
            .note(&format!(
                "{} records each way; baseline: {raw_kind}",
                self.size.ingest_records
            ));
        self.figures.push(f);
        if let Some(multi) = multi_row_rate {
            let f = self
                .figure("ingest vs raw multi-row INSERTs", "rec/s", http_rate)
                .baseline(multi)
                .target("≥ 50% of raw", http_rate / multi >= 0.5)
                .note("baseline: INSERTs of 4 000 rows each, one transaction, as the server's store does");
            self.figures.push(f);
        }
        Ok(())
    }

    async fn serving_at(&mut self, base: &str) -> anyhow::Result<()> {
        let n = self.size.latency_samples;
        let catalog = self.catalog;
        let at = |i: usize| Timestamp::from_micros(catalog.instant(i as u64)).to_rfc3339();
        let model = |i: usize| &catalog.models[i % catalog.models.len()].id;
        let (filtered, raw) = self
            .side_by_side(
                base,
                n,
                |i| format!("/api/v1/serving?at={}&model={}", at(i), model(i)),
                STATE_AT,
                |i| {
                    vec![
                        Val::Text(format!("pin/production/{}", model(i))),
                        Val::Int(catalog.instant(i as u64)),
                    ]
                },
            )
            .await?;
        let everything = self
            .latencies(base, (n / 5).max(5), |i| {
                format!("/api/v1/serving?at={}", at(i))
            })
            .await?;
        let (p50, p99) = (
            percentile_ms(&filtered, 50.0),
            percentile_ms(&filtered, 99.0),
        );
        let figures = [
            self.figure("serving at T, one model: p50", "ms", p50).baseline(percentile_ms(&raw, 50.0)),
            self.figure("serving at T, one model: p99", "ms", p99)
                .baseline(percentile_ms(&raw, 99.0))
                .target("< 5 ms", p99 < 5.0),
            self.figure("serving at T, everything: p50", "ms", percentile_ms(&everything, 50.0))
                .baseline(percentile_ms(&raw, 50.0))
                .note("all pins and clusters at T, from the server's in-memory temporal index, caught up to the ledger head first"),
            self.figure("serving at T, everything: p99", "ms", percentile_ms(&everything, 99.0))
                .baseline(percentile_ms(&raw, 99.0))
                .target("< 5 ms", percentile_ms(&everything, 99.0) < 5.0),
        ];
        self.figures.extend(figures);
        Ok(())
    }

    async fn request_lookup(&mut self, base: &str) -> anyhow::Result<()> {
        let n = self.size.latency_samples;
        let catalog = self.catalog;
        let id = |i: usize| {
            catalog
                .record(crate::rng::below(8, i as u64, catalog.request_records))
                .request_id
        };
        let (http, raw) = self
            .side_by_side(
                base,
                n,
                |i| format!("/api/v1/request-records/{}", id(i)),
                RECORD_BY_ID,
                |i| vec![Val::Text(id(i))],
            )
            .await?;
        let p99 = percentile_ms(&http, 99.0);
        let figures = [
            self.figure(
                "request lookup by id: p50",
                "ms",
                percentile_ms(&http, 50.0),
            )
            .baseline(percentile_ms(&raw, 50.0)),
            self.figure("request lookup by id: p99", "ms", p99)
                .baseline(percentile_ms(&raw, 99.0))
                .target("< 2 ms", p99 < 2.0)
                .note("with the version and its provenance events; baseline: the record row alone"),
        ];
        self.figures.extend(figures);
        Ok(())
    }

    async fn resolve(&mut self, base: &str) -> anyhow::Result<()> {
        let paths: Vec<String> = self
            .catalog
            .models
            .iter()
            .map(|m| format!("/api/v1/resolve/{}?env=production", m.id))
            .collect();
        let sample = self
            .get(format!("{base}{}", paths[0]))
            .send()
            .await?
            .text()
            .await?;
        let bare = start_bare(sample).await?;
        let duration = Duration::from_millis(self.size.load_millis);
        let conns = self.size.load_connections;
        let token = self.credentials.token.clone();
        let ((rps, p99), (bare_rps, bare_p99), generator) = match wrk() {
            Some(wrk) => (
                wrk_load(&wrk, base, &paths, Some(&token), conns, duration).await?,
                wrk_load(&wrk, &bare.address, &paths, None, conns, duration).await?,
                "wrk (1 thread) on loopback",
            ),
            None => {
                let urls = |b: &str| paths.iter().map(|p| format!("{b}{p}")).collect::<Vec<_>>();
                let (rps, lat) = load(urls(base), Some(token), conns, duration).await?;
                let (bare_rps, bare_lat) = load(urls(&bare.address), None, conns, duration).await?;
                (
                    (rps, percentile_ms(&lat, 99.0)),
                    (bare_rps, percentile_ms(&bare_lat, 99.0)),
                    "reqwest in the same process (no wrk on PATH)",
                )
            }
        };
        let ratio = rps / bare_rps;
        let figures = [
            self.figure(
                &format!("resolve, {conns} keep-alive connections"),
                "req/s",
                rps,
            )
            .baseline(bare_rps)
            .target("≥ 50% of bare axum", ratio >= 0.5)
            .note(&format!(
                "load generator: {generator}, {} ms per side",
                self.size.load_millis
            )),
            self.figure("resolve: p99", "ms", p99).baseline(bare_p99),
        ];
        self.figures.extend(figures);
        Ok(())
    }

    /// Changes staging pins through one server and polls resolve on the
    /// other until it answers with the new version.
    async fn pin_visibility(&mut self, a: &str, b: &str) -> anyhow::Result<()> {
        let mut staging: HashMap<usize, u32> = HashMap::new();
        let mut delays = Vec::new();
        let models = self.catalog.models.len();
        for k in 0..self.size.pin_changes {
            let m = 1 + k % (models - 1).max(1);
            let model = &self.catalog.models[m];
            let (staged, production) = (model.versions - 1, model.versions - 2);
            let current = staging.get(&m).copied().unwrap_or(staged);
            let target = if current == staged {
                production
            } else {
                staged
            };
            let version = ModelPlan::version_name(target);
            let res = self
                .client
                .put(format!("{a}/api/v1/environments/staging/pins/{}", model.id))
                .bearer_auth(&self.credentials.token)
                .json(&json!({ "version": version, "reason": "benchmark: pin visibility" }))
                .send()
                .await?;
            if !res.status().is_success() {
                bail!(
                    "pinning {}:{version} answered {}: {}",
                    model.id,
                    res.status(),
                    res.text().await?
                );
            }
            staging.insert(m, target);
            let changed = Instant::now();
            let expected = model.full_id(target);
            loop {
                let answer: Value = self
                    .get(format!("{b}/api/v1/resolve/{}?env=staging", model.id))
                    .send()
                    .await?
                    .json()
                    .await?;
                if answer["full_id"] == expected.as_str() {
                    break;
                }
                if changed.elapsed() > Duration::from_secs(10) {
                    bail!(
                        "the second server still resolves {} after 10 s",
                        answer["full_id"]
                    );
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            delays.push(changed.elapsed());
        }
        let worst = percentile_ms(&delays, 100.0);
        let f = self
            .figure("pin change visible on a 2nd server (worst)", "ms", worst)
            .target("≤ 1 000 ms", worst <= VISIBILITY_TARGET_MS)
            .note("resolve and token cache per server, emptied on every change: NOTIFY on PostgreSQL, the ledger head polled every 100 ms on SQLite");
        self.figures.push(f);
        Ok(())
    }

    /// Times `n` sequential GETs of the console page `path` with the session
    /// cookie; each must answer 200 with `expect` somewhere in its HTML.
    async fn page_latencies(
        &self,
        base: &str,
        n: usize,
        path: &str,
        expect: &str,
    ) -> anyhow::Result<Vec<Duration>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            let res = self
                .client
                .get(format!("{base}{path}"))
                .header(
                    "cookie",
                    format!(
                        "{}={}",
                        switchyard::auth::session::COOKIE,
                        self.credentials.cookie
                    ),
                )
                .send()
                .await?;
            let status = res.status();
            let html = res.text().await?;
            out.push(started.elapsed());
            if !status.is_success() || !html.contains(expect) {
                bail!("the page {path} answered {status} without {expect:?}");
            }
        }
        Ok(out)
    }

    /// The pages; the audit page must show the pin visibility phase's
    /// events when that phase ran (else only its heading).
    async fn pages(&mut self, base: &str, after_visibility: bool) -> anyhow::Result<()> {
        let n = self.size.page_samples;
        let big = &self.catalog.models[0];
        let overview = self
            .page_latencies(base, n, "/", self.catalog.models[0].id.as_str())
            .await?;
        let model_page = self
            .page_latencies(
                base,
                n,
                &format!("/models/{}", big.id),
                &big.full_id(big.versions - 1),
            )
            .await?;
        let audit_page = self
            .page_latencies(
                base,
                n,
                "/audit",
                if after_visibility {
                    "benchmark: pin visibility"
                } else {
                    "Audit log"
                },
            )
            .await?;
        let versions = self
            .latencies(base, n, |_| format!("/api/v1/models/{}/versions", big.id))
            .await?;
        let audit = self
            .latencies(base, n, |_| "/api/v1/audit?limit=100".to_owned())
            .await?;
        let pages = [
            ("overview page (HTML, signed in)", overview, None),
            (
                "model page (HTML, signed in)",
                model_page,
                Some(format!(
                    "/models/{}: {} versions, its timeline and pins",
                    big.id, big.versions
                )),
            ),
            (
                "audit page (HTML, signed in)",
                audit_page,
                Some("/audit: the newest events, unfiltered".to_owned()),
            ),
            (
                "model page data (versions of a model)",
                versions,
                Some(format!(
                    "{} versions; GET /api/v1/models/…/versions, the REST API's list",
                    big.versions
                )),
            ),
            (
                "audit log page data (100 newest events)",
                audit,
                Some("GET /api/v1/audit?limit=100, the REST API's page".to_owned()),
            ),
        ];
        for (name, samples, note) in pages {
            for p in [50.0, 99.0] {
                let mut f = self.figure(&format!("{name}: p{p}"), "ms", percentile_ms(&samples, p));
                if let Some(note) = &note {
                    f = f.note(note);
                }
                self.figures.push(f);
            }
        }
        Ok(())
    }
}

/// `wrk` on the PATH, if installed.
fn wrk() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("wrk"))
        .find(|p| p.is_file())
}

/// Runs wrk (one thread, `connections` keep-alive connections) over `paths`
/// in turn; answers requests/s and the p99 latency in ms. Any answer but
/// 2xx is an error.
async fn wrk_load(
    wrk: &std::path::Path,
    base: &str,
    paths: &[String],
    token: Option<&str>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(f64, f64)> {
    let script = std::env::temp_dir().join(format!(
        "sy-bench-{:016x}.lua",
        crate::rng::seed_from_time()
    ));
    let list: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    std::fs::write(
        &script,
        format!(
            "local paths = {{{}}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n",
            list.join(", ")
        ),
    )?;
    let mut cmd = tokio::process::Command::new(wrk);
    cmd.arg("-t1")
        .arg(format!("-c{connections}"))
        // wrk takes whole seconds.
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(&script);
    if let Some(t) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    let out = cmd.arg(base).output().await;
    let _ = std::fs::remove_file(&script);
    let out = out.context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!(
            "wrk failed on {base}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| wrk_millis(v.trim()))
        .with_context(|| format!("no 99% latency in wrk's output: {text}"))?;
    Ok((rps, p99))
}

/// A wrk duration such as `812.00us`, `1.25ms` or `2.01s`, in ms.
fn wrk_millis(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    match unit {
        "us" => Some(n / 1000.0),
        "ms" => Some(n),
        "s" => Some(n * 1000.0),
        "m" => Some(n * 60_000.0),
        _ => None,
    }
}

/// `connections` clients, each on its own keep-alive connection, GET the
/// `urls` in turn until `duration` is up. Answers requests/s and latencies;
/// any answer but 200 is an error.
async fn load(
    urls: Vec<String>,
    token: Option<String>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let urls = Arc::new(urls);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (urls, token) = (urls.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut latencies = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let url = &urls[i % urls.len()];
                i += 1;
                let mut req = client.get(url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let sent = Instant::now();
                let res = req.send().await?;
                let status = res.status();
                res.bytes().await?;
                latencies.push(sent.elapsed());
                if status != reqwest::StatusCode::OK {
                    bail!("GET {url} answered {status}");
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rps, all))
}

#[cfg(test)]
mod tests {
    use super::wrk_millis;

    #[test]
    fn wrk_latencies_in_any_unit_are_read_as_milliseconds() {
        let close = |v: &str, ms: f64| wrk_millis(v).is_some_and(|x| (x - ms).abs() < 1e-9);
        assert!(close("812.00us", 0.812));
        assert!(close("1.25ms", 1.25));
        assert!(close("2.01s", 2010.0));
        assert_eq!(wrk_millis("fast"), None);
    }
}
