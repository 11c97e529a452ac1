//! The benchmark at smoke size, so it never rots: every figure is produced
//! and finite, and the generated ledger verifies. No timing thresholds —
//! those belong to the full run on a quiet machine.

use bench::size::Size;
use bench::Engine;

/// The notification receiver runs as `bench --receiver`, the binary cargo built for these tests.
fn receiver() {
    bench::notify::set_receiver_program(env!("CARGO_BIN_EXE_bench"));
}

fn assert_complete(report: &bench::report::BackendReport) {
    assert!(report.ledger_verified, "the generated ledger verifies");
    assert!(
        report.figures.len() >= 15,
        "{} figures",
        report.figures.len()
    );
    for f in &report.figures {
        assert!(
            f.is_finite(),
            "{} / {} is not finite: {f:?}",
            f.backend,
            f.figure
        );
    }
    for name in [
        "ingest",
        "serving at T",
        "request lookup",
        "resolve",
        "pin change",
        "overview page",
        "model page",
        "audit log",
        "notifications: version register",
        "notifications: promotion apply",
        "notifications: delivery throughput",
        "notifications: ledger event → received",
        "peak RSS",
    ] {
        assert!(
            report.figures.iter().any(|f| f.figure.contains(name)),
            "no {name} figure"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_benchmark_produces_every_figure_on_sqlite() {
    receiver();
    let report = bench::run_engine(&Size::smoke(), &Engine::Sqlite, &bench::Phases::all())
        .await
        .expect("the benchmark runs");
    assert_complete(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_benchmark_produces_every_figure_on_postgresql() {
    receiver();
    let admin_url = std::env::var("SWITCHYARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let report = bench::run_engine(
        &Size::smoke(),
        &Engine::Postgres { admin_url },
        &bench::Phases::all(),
    )
    .await
    .expect("the benchmark runs on PostgreSQL");
    assert_complete(&report);
}
