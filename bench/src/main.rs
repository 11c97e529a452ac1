//! `cargo run --release -p bench -- [--size smoke|medium|full] [--postgres URL] [--out FILE] [--notifications-only] [--only PHASES]`

use std::path::PathBuf;

use anyhow::Context;
use bench::size::Size;
use bench::Engine;
use clap::Parser;

// The servers run in this process: the same allocator as `switchyard serve`.
#[global_allocator]
static GLOBAL: switchyard::Allocator = switchyard::Allocator;

/// Generates a data set into a fresh database and measures Switchyard side
/// by side with the raw engine; prints one table and writes it as JSON.
#[derive(Parser)]
struct Args {
    /// smoke (seconds), medium (the full catalogue, a tenth of the history) or full.
    #[arg(long, default_value = "smoke")]
    size: String,
    /// Also run on PostgreSQL: a server URL (a fresh database is created there and dropped after).
    #[arg(long)]
    postgres: Option<String>,
    /// Skip SQLite (only with --postgres).
    #[arg(long)]
    no_sqlite: bool,
    /// Only the notification figures (write path with 0 and 5 subscriptions,
    /// delivery throughput and latency), on an empty database: no generated history.
    #[arg(long)]
    notifications_only: bool,
    /// Only these phases, comma-separated, after generating the data set:
    /// verify, ingest, serving, lookup, resolve, visibility, pages, notifications.
    #[arg(long)]
    only: Option<String>,
    /// Where the JSON goes (default bench/results/<size>.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only the notification receiver (started by the benchmark itself in another process).
    #[arg(long, hide = true)]
    receiver: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.receiver {
        return bench::notify::serve_receiver().await;
    }
    let size = Size::parse(&args.size)?;
    let phases = match &args.only {
        Some(list) => bench::Phases::parse(list)?,
        None => bench::Phases::all(),
    };
    let mut engines = Vec::new();
    if !args.no_sqlite {
        engines.push(Engine::Sqlite);
    }
    if let Some(url) = args.postgres {
        engines.push(Engine::Postgres { admin_url: url });
    }
    anyhow::ensure!(
        !engines.is_empty(),
        "nothing to run: --no-sqlite needs --postgres"
    );
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(if args.notifications_only {
                format!("notifications-{}.json", size.name)
            } else {
                format!("{}.json", size.name)
            })
    });
    let report = if args.notifications_only {
        bench::run_notifications(size, &engines).await?
    } else {
        bench::run(size, &engines, &phases).await?
    };
    println!(
        "\n{} size, {} build, {} × {} ({}), peak RSS {:.0} MiB\n",
        report.size.name,
        if report.release_build {
            "release"
        } else {
            "debug"
        },
        report.machine.cpus,
        report.machine.cpu_model,
        report.machine.os,
        report.peak_rss_mib
    );
    print!("{}", report.table());
    let mut noted = std::collections::HashSet::new();
    for f in report.figures() {
        if let Some(note) = f
            .note
            .as_deref()
            .filter(|n| noted.insert((f.backend.as_str(), *n)))
        {
            println!("  {} / {}: {note}", f.backend, f.figure);
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}
