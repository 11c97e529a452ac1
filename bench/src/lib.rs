//! Switchyard's benchmark at scale (issue 6): generates a realistic data set
//! into a fresh database, then measures ingest, serving-at-T, request
//! lookup, resolve, pin visibility and page rendering over HTTP, side by
//! side with the raw engine or a bare axum handler on the same machine.

pub mod db;
pub mod generate;
pub mod measure;
pub mod notify;
pub mod report;
pub mod rng;
pub mod size;

use switchyard::store::StoreSettings;
use switchyard_domain::Timestamp;

use crate::db::{Db, FreshDatabase, Mode};
use crate::generate::Catalog;
use crate::report::{BackendReport, Machine, Report};
use crate::size::Size;

/// The measurement phases, in the order they run.
pub const PHASES: [&str; 8] = [
    "verify",
    "ingest",
    "serving",
    "lookup",
    "resolve",
    "visibility",
    "pages",
    "notifications",
];

/// Which phases a run measures (`--only`): all by default, or a few, to
/// look into one figure at full size without waiting for the others.
#[derive(Debug, Clone, Default)]
pub struct Phases(Option<Vec<&'static str>>);

impl Phases {
    /// Every phase.
    pub fn all() -> Phases {
        Phases(None)
    }

    /// A comma-separated list of phase names; an unknown name is refused with the known ones.
    pub fn parse(list: &str) -> anyhow::Result<Phases> {
        let mut chosen = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some(known) = PHASES.iter().find(|p| **p == name) else {
                anyhow::bail!(
                    "unknown phase {name:?} in --only: expected some of {}",
                    PHASES.join(", ")
                );
            };
            chosen.push(*known);
        }
        anyhow::ensure!(
            !chosen.is_empty(),
            "--only names no phase: expected some of {}",
            PHASES.join(", ")
        );
        Ok(Phases(Some(chosen)))
    }

    /// Whether `phase` is measured.
    pub fn wants(&self, phase: &str) -> bool {
        self.0.as_ref().is_none_or(|c| c.contains(&phase))
    }
}

/// Which database a run uses.
#[derive(Debug, Clone)]
pub enum Engine {
    Sqlite,
    /// A server, named by a URL whose database is used only to create a fresh one.
    Postgres {
        admin_url: String,
    },
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres { .. } => "postgres",
        }
    }
}

/// Generates and measures on one engine, in a fresh database removed afterwards.
pub async fn run_engine(
    size: &Size,
    engine: &Engine,
    phases: &Phases,
) -> anyhow::Result<BackendReport> {
    let fresh = match engine {
        Engine::Sqlite => FreshDatabase::sqlite()?,
        Engine::Postgres { admin_url } => FreshDatabase::postgres(admin_url).await?,
    };
    let result = generate_and_measure(size, engine, &fresh.url, phases).await;
    if std::env::var_os("SWITCHYARD_BENCH_KEEP").is_some() {
        // For looking into a figure afterwards (query plans, profiles).
        eprintln!("kept the database: {}", fresh.url);
    } else {
        fresh.remove().await?;
    }
    result
}

async fn generate_and_measure(
    size: &Size,
    engine: &Engine,
    url: &str,
    phases: &Phases,
) -> anyhow::Result<BackendReport> {
    eprintln!("{}: {}", engine.name(), url);
    switchyard::store::connect(url, StoreSettings::default())
        .await?
        .migrate()
        .await?;
    let catalog = Catalog::new(size, Timestamp::now().micros());
    let loader = Db::open(url, Mode::Loading).await?;
    let generated = generate::generate(&loader, &catalog, size).await?;
    loader.close().await;
    let mut bench = measure::Bench::new(engine.name(), url, size, &catalog).await?;
    let ledger_verified = if phases.wants("verify") {
        bench.verify().await?
    } else {
        true
    };
    bench.run(url, phases).await?;
    let mut figures = bench.figures;
    figures.push(
        report::Figure::new(engine.name(), "peak RSS (VmHWM)", "MiB", report::peak_rss_mib())
            .note("the whole benchmark process so far: servers, load generators and the streaming generator"),
    );
    figures.insert(
        0,
        report::Figure::new(
            engine.name(),
            "generation: ledger events",
            "ev/s",
            generated.ledger_events as f64 / generated.ledger_seconds,
        )
        .note(&format!(
            "{} events with state history, hash-chained",
            generated.ledger_events
        )),
    );
    figures.insert(
        1,
        report::Figure::new(
            engine.name(),
            "generation: request records",
            "rec/s",
            generated.request_records as f64 / generated.records_seconds,
        )
        .note(&format!("{} records", generated.request_records)),
    );
    Ok(BackendReport {
        backend: engine.name().to_owned(),
        generated,
        ledger_verified,
        figures,
    })
}

/// Only the notification figures, on a fresh empty database per engine.
pub async fn run_notifications(size: Size, engines: &[Engine]) -> anyhow::Result<Report> {
    let mut backends = Vec::new();
    for engine in engines {
        let fresh = match engine {
            Engine::Sqlite => FreshDatabase::sqlite()?,
            Engine::Postgres { admin_url } => FreshDatabase::postgres(admin_url).await?,
        };
        switchyard::store::connect(&fresh.url, StoreSettings::default())
            .await?
            .migrate()
            .await?;
        let figures = measure::notifications_only(engine.name(), &fresh.url, &size).await;
        fresh.remove().await?;
        backends.push(BackendReport {
            backend: engine.name().to_owned(),
            generated: Default::default(),
            ledger_verified: true,
            figures: figures?,
        });
    }
    Ok(Report {
        size,
        machine: Machine::this(),
        release_build: !cfg!(debug_assertions),
        backends,
        peak_rss_mib: report::peak_rss_mib(),
    })
}

/// Runs every engine in turn and reports them together.
pub async fn run(size: Size, engines: &[Engine], phases: &Phases) -> anyhow::Result<Report> {
    let mut backends = Vec::new();
    for engine in engines {
        backends.push(run_engine(&size, engine, phases).await?);
    }
    Ok(Report {
        size,
        machine: Machine::this(),
        release_build: !cfg!(debug_assertions),
        backends,
        peak_rss_mib: report::peak_rss_mib(),
    })
}
