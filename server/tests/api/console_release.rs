//! The console's Release policy page, through the server functions it
//! calls: approval policies, freeze windows and emergency overrides, changed
//! by admins with the same rules as the REST API, refused for everyone else
//! with the binding that is missing; on SQLite and PostgreSQL.

use serde_json::Value;
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

use crate::console::{no_redirects, server_fn_json, sign_in, Browser};
use crate::helpers::{spawn_app, TestApp};
use crate::postgres::spawn_app_on_fresh_postgres;

/// Calls `path` as `who`, expects a refusal whose message contains `words`,
/// and that nothing was written to the ledger.
async fn refused(app: &TestApp, path: &str, form: &[(&str, &str)], who: &Browser, words: &str) {
    let before = ledger_length(app).await;
    let answer = server_fn_json(app, path, form, who, false).await;
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(words),
        "{path} {form:?}: {message:?} should say {words:?}"
    );
    assert_eq!(
        ledger_length(app).await,
        before,
        "{path} {form:?} changed nothing"
    );
}

async fn ledger_length(app: &TestApp) -> u64 {
    app.get_json("/api/v1/audit?limit=1").await["events"][0]["id"]
        .as_u64()
        .unwrap_or(0)
}

async fn page(app: &TestApp, who: &Browser) -> Value {
    server_fn_json(app, "/console/fn/get_release_policy", &[], who, true).await
}

async fn last_event(app: &TestApp, action: &str) -> Value {
    app.get_json(&format!("/api/v1/audit?action={action}&limit=1"))
        .await["events"][0]
        .clone()
}

fn utc(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M").to_string()
}

/// The page as the server renders it for `who` (what a browser without JavaScript gets).
async fn html(app: &TestApp, path: &str, who: &Browser) -> String {
    no_redirects()
        .get(format!("{}{path}", app.address))
        .header(reqwest::header::COOKIE, &who.cookie)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .unwrap_or_default()
}

async fn an_admin_edits_release_policy_in_the_console_and_others_are_refused(app: TestApp) {
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("bob", Role::Approver, None).await;
    app.user_with_token("dave", Role::Deployer, None).await;
    let (ada, bob, dave) = (
        sign_in(&app, "ada").await,
        sign_in(&app, "bob").await,
        sign_in(&app, "dave").await,
    );

    // Everyone reads it; the page says why a deployer may not change it.
    let seen = page(&app, &dave).await;
    assert!(
        seen["refused"]
            .as_str()
            .unwrap_or_default()
            .contains("admin binding for all"),
        "{seen}"
    );
    assert!(seen["approve_refused"].as_str().is_some());
    assert_eq!(page(&app, &ada).await["refused"], Value::Null);
    assert_eq!(page(&app, &bob).await["approve_refused"], Value::Null);

    // Approval policy.
    let policy =
        |approvals: &'static str, groups: &'static str, may: &'static str, hours: &'static str| {
            vec![
                ("environment", "production"),
                ("required_approvals", approvals),
                ("required_groups", groups),
                ("requester_group_may_approve", may),
                ("expiry_hours", hours),
            ]
        };
    let set = "/console/fn/set_approval_policy";
    refused(
        &app,
        set,
        &policy("1", "", "yes", "72"),
        &dave,
        "needs an admin binding",
    )
    .await;
    refused(
        &app,
        set,
        &policy("two", "", "yes", "72"),
        &ada,
        "not a whole number",
    )
    .await;
    refused(
        &app,
        set,
        &policy("2", "", "maybe", "72"),
        &ada,
        "choose yes or no",
    )
    .await;
    refused(&app, set, &policy("2", "", "yes", "0"), &ada, "expiry").await;
    refused(
        &app,
        set,
        &policy("2", "ml-risk", "yes", "72"),
        &ada,
        "no user who may approve is in ml-risk",
    )
    .await;
    refused(
        &app,
        set,
        &policy("9", "", "yes", "72"),
        &ada,
        "can never be satisfied",
    )
    .await;
    let saved = server_fn_json(&app, set, &policy("2", "", "no", "48"), &ada, true).await;
    assert_eq!(saved["environment"], "production");
    assert_eq!(
        (
            saved["policy"]["requester_group_may_approve"].clone(),
            saved["policy"]["expiry_hours"].clone()
        ),
        (Value::Bool(false), Value::from(48))
    );
    // The REST API reads what the console saved, and the ledger names ada.
    let envs = app.get_json("/api/v1/environments").await;
    let production = envs["environments"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["name"] == "production"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(production["policy"]["expiry_hours"], 48, "{envs}");
    assert_eq!(last_event(&app, "policy.changed").await["actor"], "ada");

    // Freeze windows.
    let add = "/console/fn/add_freeze";
    let now = Timestamp::now();
    let (from, to) = (utc(now.plus_hours(-1)), utc(now.plus_hours(2)));
    let one_off = vec![
        ("name", "hotfix freeze"),
        ("environment", "staging"),
        ("kind", "one_off"),
        ("from", from.as_str()),
        ("to", to.as_str()),
    ];
    refused(&app, add, &one_off, &dave, "needs an admin binding").await;
    let weekly = |days: &'static str, zone: &'static str| {
        vec![
            ("name", "weekend"),
            ("environment", "production"),
            ("kind", "weekly"),
            ("days", days),
            ("start", "18:00"),
            ("duration_minutes", "3600"),
            ("time_zone", zone),
        ]
    };
    refused(
        &app,
        add,
        &weekly("funday", "Europe/Berlin"),
        &ada,
        "\"funday\"",
    )
    .await;
    refused(
        &app,
        add,
        &weekly("fri", "Mars/Olympus"),
        &ada,
        "IANA time zone",
    )
    .await;
    refused(&app, add, &weekly("", "Europe/Berlin"), &ada, "\"days\"").await;
    refused(
        &app,
        add,
        &[
            ("name", "x"),
            ("environment", "staging"),
            ("kind", "one_off"),
            ("from", "tomorrow"),
            ("to", to.as_str()),
        ],
        &ada,
        "is not a time",
    )
    .await;
    refused(
        &app,
        add,
        &[
            ("name", "x"),
            ("environment", "moon"),
            ("kind", "one_off"),
            ("from", from.as_str()),
            ("to", to.as_str()),
        ],
        &ada,
        "moon",
    )
    .await;
    let hotfix = server_fn_json(&app, add, &one_off, &ada, true).await;
    let weekend = server_fn_json(&app, add, &weekly("fri, sat", "Europe/Berlin"), &ada, true).await;
    assert_eq!(
        weekend["schedule"]["days"],
        serde_json::json!(["fri", "sat"])
    );
    assert_eq!(last_event(&app, "freeze.created").await["actor"], "ada");
    let seen = page(&app, &dave).await;
    assert_eq!(seen["freezes"].as_array().map(Vec::len), Some(2), "{seen}");
    let in_force = seen["in_force"].as_array().cloned().unwrap_or_default();
    assert!(
        in_force
            .iter()
            .any(|f| f["environment"] == "staging" && f["window"]["name"] == "hotfix freeze"),
        "{seen}"
    );

    // Emergency overrides: an admin asks with a reason, a second person approves.
    let ask = "/console/fn/request_override";
    let request = [
        ("environment", "staging"),
        ("reason", "security fix"),
        ("hours", "2"),
    ];
    refused(&app, ask, &request, &dave, "needs an admin binding").await;
    refused(
        &app,
        ask,
        &[("environment", "staging"), ("reason", "  ")],
        &ada,
        "needs a reason",
    )
    .await;
    refused(
        &app,
        ask,
        &[("environment", "staging"), ("reason", "r"), ("hours", "48")],
        &ada,
        "1 to 24 hours",
    )
    .await;
    let asked = server_fn_json(&app, ask, &request, &ada, true).await;
    let id = asked["id"].as_i64().expect("override id").to_string();
    let approve = "/console/fn/approve_override";
    refused(
        &app,
        approve,
        &[("id", id.as_str())],
        &dave,
        "needs an approver binding",
    )
    .await;
    refused(
        &app,
        approve,
        &[("id", id.as_str())],
        &ada,
        "a second person must",
    )
    .await;
    let approved = server_fn_json(&app, approve, &[("id", id.as_str())], &bob, true).await;
    assert_eq!(approved["approved_by"], "bob");
    let seen = page(&app, &dave).await;
    let row = seen["overrides"][0].clone();
    assert_eq!(
        (row["over"]["id"].to_string(), row["status"].clone()),
        (id.clone(), Value::from("in_force")),
        "{seen}"
    );
    assert!(seen["in_force"].as_array().is_some_and(|f| f
        .iter()
        .any(|f| f["environment"] == "staging" && f["overridden_by"]["approved_by"] == "bob")));

    // Removing a window.
    let hotfix_id = hotfix["id"].to_string();
    let remove = "/console/fn/remove_freeze";
    refused(
        &app,
        remove,
        &[("id", hotfix_id.as_str())],
        &dave,
        "needs an admin binding",
    )
    .await;
    refused(&app, remove, &[("id", "999999")], &ada, "999999").await;
    server_fn_json(&app, remove, &[("id", hotfix_id.as_str())], &ada, true).await;
    assert_eq!(last_event(&app, "freeze.removed").await["actor"], "ada");
    assert_eq!(
        page(&app, &ada).await["freezes"].as_array().map(Vec::len),
        Some(1)
    );
    // The page as served: greyed out with the reason for a deployer, and a
    // form post without JavaScript (CSRF token as a field) adds a window.
    let served = html(&app, "/release", &dave).await;
    assert!(
        served.contains("Changing release policy needs an admin binding for all"),
        "{served}"
    );
    assert!(
        served.contains("weekly fri, sat 18:00 for 60 h (Europe/Berlin)"),
        "{served}"
    );
    assert!(served.contains("disabled"), "{served}");
    let res = no_redirects()
        .post(format!("{}/console/fn/add_freeze", app.address))
        .header(reqwest::header::ORIGIN, &app.address)
        .header(reqwest::header::COOKIE, &ada.cookie)
        .header("referer", format!("{}/release", app.address))
        .form(&[
            ("csrf_token", ada.csrf.as_str()),
            ("name", "no-js"),
            ("environment", "development"),
            ("kind", "one_off"),
            ("from", "2099-01-01 00:00"),
            ("to", "2099-01-02 00:00"),
        ])
        .send()
        .await
        .expect("sent");
    assert!(
        res.status().is_redirection() || res.status().is_success(),
        "{}",
        res.status()
    );
    let served = html(&app, "/release", &ada).await;
    assert!(
        served.contains("no-js") && served.contains("one-off 2099-01-01 00:00"),
        "{served}"
    );
}

#[tokio::test]
async fn an_admin_edits_release_policy_in_the_console_and_others_are_refused_on_sqlite() {
    an_admin_edits_release_policy_in_the_console_and_others_are_refused(spawn_app().await).await;
}

#[tokio::test]
async fn an_admin_edits_release_policy_in_the_console_and_others_are_refused_on_postgresql() {
    let (app, mut admin, name) = spawn_app_on_fresh_postgres().await;
    an_admin_edits_release_policy_in_the_console_and_others_are_refused(app).await;
    use sqlx::Executor;
    let _ = admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await;
}
