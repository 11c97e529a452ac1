//! API fuzzing with schemathesis (issue 17 item 5): requests generated from
//! `/api/v1/openapi.json` against a real server filled with the demo history,
//! once per token role, with a fixed seed and a bounded number of examples.
//! Every response must be no 5xx, of a documented status, and match its
//! documented schema; no refusal (4xx) may move the ledger (`fuzz_hooks.py`), and a
//! run made only of refused requests must leave every list as it was.
//!
//! Needs schemathesis (`scripts/peers.sh` installs it and sets
//! `SWITCHYARD_SCHEMATHESIS`). Without it the test says so and passes,
//! unless `SWITCHYARD_PEERS_REQUIRED=1` (the test command sets it).

use serde_json::Value;
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

use crate::helpers::{spawn_app, TestApp};

/// Examples per operation and phase; with the seed this makes each run the
/// same requests (the README states how many).
const MAX_EXAMPLES: &str = "10";
const SEED: &str = "20261207";
/// schemathesis' own checks, and `refusal_changes_nothing` from `fuzz_hooks.py`:
/// after every 4xx the ledger's head is what it was before the request.
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance,refusal_changes_nothing";

struct Run {
    passed: bool,
    /// How many requests schemathesis generated ("N generated" in its summary).
    generated: u64,
    output: String,
}

/// Runs schemathesis against `app` with `token`; `extra` narrows the run.
async fn schemathesis(bin: &str, app: &TestApp, token: &str, extra: &[&str]) -> Run {
    let schema = format!("{}/api/v1/openapi.json", app.address);
    let auth = format!("Authorization: Bearer {token}");
    let hooks_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api");
    let out = tokio::process::Command::new(bin)
        .env("SCHEMATHESIS_HOOKS", "fuzz_hooks")
        .env("PYTHONPATH", hooks_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SWITCHYARD_FUZZ_URL", &app.address)
        // The hooks read the ledger's head with the admin's token.
        .env("SWITCHYARD_FUZZ_TOKEN", &app.token)
        .args(["run", &schema, "-H", &auth, "--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--no-shrink", "--no-color"])
        .args(["--generation-database", "none", "--request-timeout", "30"])
        .args(extra)
        .kill_on_drop(true)
        .output()
        .await
        .expect("schemathesis runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = output
        .lines()
        .find_map(|l| {
            let (n, _) = l.trim().split_once(" generated")?;
            n.parse().ok()
        })
        .unwrap_or(0);
    Run {
        passed: out.status.success(),
        generated,
        output,
    }
}

/// What a refused request must leave as it was: the ledger's head and the
/// state every list shows (read with the admin token).
async fn state(app: &TestApp) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/api/v1/audit?limit=1",
        "/api/v1/models",
        "/api/v1/environments",
        "/api/v1/clusters",
        "/api/v1/promotions",
        "/api/v1/subscriptions",
    ] {
        state.push(app.get_json(path).await);
    }
    state
}

#[tokio::test]
async fn schemathesis_finds_no_5xx_no_undocumented_status_and_no_schema_mismatch_for_any_role() {
    let Ok(bin) = std::env::var("SWITCHYARD_SCHEMATHESIS") else {
        assert!(
            std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
            "schemathesis missing: run scripts/peers.sh (it sets SWITCHYARD_SCHEMATHESIS)"
        );
        eprintln!("SKIPPED: schemathesis missing (scripts/peers.sh installs it)");
        return;
    };
    let app = spawn_app().await;
    switchyard::demo::fill(app.store().await.as_ref(), Timestamp::now())
        .await
        .expect("demo history");
    let mut tokens = Vec::new();
    for (name, role) in [
        ("fuzz-viewer", Role::Viewer),
        ("fuzz-deployer", Role::Deployer),
        ("fuzz-approver", Role::Approver),
    ] {
        tokens.push((name, app.user_with_token(name, role, None).await));
    }
    tokens.push(("test-admin", app.token.clone()));

    // Every change a viewer asks for is refused, however it is formed: the
    // ledger and what the lists show stay exactly as they were.
    let before = state(&app).await;
    let refused = schemathesis(&bin, &app, &tokens[0].1, &["--exclude-method", "GET"]).await;
    assert!(refused.passed, "viewer's changes:\n{}", refused.output);
    assert!(
        refused.generated > 100,
        "too few cases:\n{}",
        refused.output
    );
    assert_eq!(
        state(&app).await,
        before,
        "a run made only of refused requests changed the state"
    );
    eprintln!("viewer's refused changes: {} cases", refused.generated);

    let mut total = refused.generated;
    for (name, token) in &tokens {
        let run = schemathesis(&bin, &app, token, &[]).await;
        assert!(run.passed, "schemathesis as {name}:\n{}", run.output);
        assert!(
            run.generated > 500,
            "too few cases as {name}:\n{}",
            run.output
        );
        eprintln!("{name}: {} cases", run.generated);
        total += run.generated;
    }
    eprintln!(
        "schemathesis: {total} cases in all, seed {SEED}, {MAX_EXAMPLES} examples per operation"
    );
}
