//! Connecting a cluster from the console: the "Add a cluster" form, the
//! "Test connection" button and removing a cluster, through the server
//! functions the pages call and as plain form posts (no JavaScript).

use app::components::driver_config::{example_config, ARGO_EXAMPLE};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, ORIGIN, REFERER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use switchyard_domain::clusters::DriverKind;

use crate::console::{no_redirects, server_fn_json, sign_in, Browser};
use crate::helpers::{spawn_app, TestApp};

/// Posts a server function's form as a browser without JavaScript does
/// (the CSRF token as a field, HTML accepted) from the page `from`;
/// answers the status and where the browser is sent.
async fn post_form(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    browser: &Browser,
    from: &str,
) -> (StatusCode, String) {
    let mut fields = fields.to_vec();
    fields.push(("csrf_token", &browser.csrf));
    let res = no_redirects()
        .post(format!("{}{path}", app.address))
        .header(ORIGIN, &app.address)
        .header(COOKIE, &browser.cookie)
        .header(ACCEPT, "text/html,application/xhtml+xml")
        .header(REFERER, format!("{}{from}", app.address))
        .form(&fields)
        .send()
        .await
        .expect("sent");
    let location = res
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (res.status(), location)
}

/// A console page as the signed-in browser gets it.
async fn page(app: &TestApp, path: &str, browser: &Browser) -> String {
    let res = no_redirects()
        .get(format!("{}{path}", app.address))
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.text().await.unwrap_or_default()
}

async fn cluster_names(app: &TestApp) -> Vec<String> {
    app.get_json("/api/v1/clusters").await["clusters"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn message(error: &Value) -> String {
    error["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn the_console_s_example_configs_are_the_ones_docs_clusters_md_walks_through() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/clusters.md"))
        .expect("docs/clusters.md");
    for kind in DriverKind::ALL {
        let example = example_config(kind);
        assert!(
            docs.contains(example),
            "docs/clusters.md does not show the console's {} example:\n{example}",
            kind.as_str()
        );
    }
    assert!(
        docs.contains(ARGO_EXAMPLE),
        "docs/clusters.md does not show the console's Argo Rollouts example:\n{ARGO_EXAMPLE}"
    );
}

#[tokio::test]
async fn an_admin_adds_a_cluster_from_the_console_with_each_driver_s_example_and_a_bad_config_registers_nothing(
) {
    let app = spawn_app().await;
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("dave", Role::Deployer, None).await;
    let (ada, dave) = (sign_in(&app, "ada").await, sign_in(&app, "dave").await);

    // Only admins are offered the form, and only admins may use it.
    let form = server_fn_json(&app, "/console/fn/get_cluster_form", &[], &ada, true).await;
    assert_eq!(form["refused"], Value::Null, "{form}");
    assert!(
        form["environments"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("production"))),
        "{form}"
    );
    let form = server_fn_json(&app, "/console/fn/get_cluster_form", &[], &dave, true).await;
    assert!(
        form["refused"]
            .as_str()
            .is_some_and(|m| m.contains("admin")),
        "{form}"
    );
    let refused = server_fn_json(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "sneaky"),
            ("environment", "development"),
            ("driver", "simulated"),
            ("config", "{}"),
        ],
        &dave,
        false,
    )
    .await;
    assert!(message(&refused).contains("admin"), "{refused}");

    // Each refusal says what to change, in words, and registers nothing.
    let k8s_without_namespace = r#"{ "model": "chat", "service": "chat",
        "deployments": { "blue": "chat-blue", "green": "chat-green" }, "container": "model", "image": "registry.example/chat" }"#;
    let oip_with_unknown_field = example_config(DriverKind::OipHaproxy).replacen(
        "\"model\": \"echo\",",
        "\"model\": \"echo\", \"colour\": \"blue\",",
        1,
    );
    for (name, environment, driver, config, words) in [
        (
            "k8s",
            "production",
            "kubernetes",
            k8s_without_namespace,
            "namespace",
        ),
        (
            "oip",
            "development",
            "oip+haproxy",
            oip_with_unknown_field.as_str(),
            "unknown field `colour`",
        ),
        (
            "oip",
            "development",
            "oip+haproxy",
            "{ \"model\": \"echo\", ",
            "not valid JSON",
        ),
        ("oip", "development", "oip+haproxy", "[1, 2]", "JSON object"),
        (
            "nomad-1",
            "development",
            "nomad",
            "{}",
            "unknown driver \"nomad\"",
        ),
        ("Bad Name", "development", "simulated", "{}", "Bad Name"),
        ("sim", "moon", "simulated", "{}", "moon"),
    ] {
        let answer = server_fn_json(
            &app,
            "/console/fn/add_cluster",
            &[
                ("name", name),
                ("environment", environment),
                ("driver", driver),
                ("config", config),
            ],
            &ada,
            false,
        )
        .await;
        assert!(
            message(&answer).contains(words),
            "{driver} {config}: {answer}"
        );
    }
    assert_eq!(
        cluster_names(&app).await,
        Vec::<String>::new(),
        "nothing registered"
    );
    let audit = app.get_json("/api/v1/audit?action=cluster.created").await;
    assert!(
        !audit.to_string().contains("\"cluster\":\"oip\""),
        "{audit}"
    );

    // Each driver's example, as the form shows it beside the text box, is accepted.
    for (name, kind, environment) in [
        ("ex-sim", DriverKind::Simulated, "development"),
        ("ex-oip", DriverKind::OipHaproxy, "staging"),
        ("ex-k8s", DriverKind::Kubernetes, "production"),
    ] {
        let added = server_fn_json(
            &app,
            "/console/fn/add_cluster",
            &[
                ("name", name),
                ("environment", environment),
                ("driver", kind.as_str()),
                ("config", example_config(kind)),
            ],
            &ada,
            true,
        )
        .await;
        assert_eq!(added["name"], name, "{added}");
        let rest = app.get_json(&format!("/api/v1/clusters/{name}")).await;
        assert_eq!(rest["driver"], kind.as_str(), "{rest}");
        assert_eq!(rest["environment"], environment, "{rest}");
        let typed: Value = serde_json::from_str(example_config(kind)).expect("JSON");
        assert_eq!(rest["config"], typed, "stored as typed: {rest}");
    }
    // YAML is read too, as `cluster add --config FILE` reads it.
    server_fn_json(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "yaml-1"),
            ("environment", "development"),
            ("driver", "simulated"),
            ("config", "action_ms: 5\nrequests_per_second: 40\n"),
        ],
        &ada,
        true,
    )
    .await;
    let rest = app.get_json("/api/v1/clusters/yaml-1").await;
    assert_eq!(
        rest["config"],
        json!({ "action_ms": 5, "requests_per_second": 40 }),
        "{rest}"
    );
    // A name taken is refused, and the first registration is unchanged.
    let taken = server_fn_json(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "yaml-1"),
            ("environment", "production"),
            ("driver", "simulated"),
            ("config", ""),
        ],
        &ada,
        false,
    )
    .await;
    assert!(message(&taken).contains("yaml-1"), "{taken}");
    assert_eq!(
        app.get_json("/api/v1/clusters/yaml-1").await["environment"],
        "development"
    );

    // Without JavaScript: the form posts, and the browser is sent to the new
    // cluster's connection test, which says it was added; a refusal comes
    // back to the clusters page in the address.
    let (status, location) = post_form(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "plain-1"),
            ("environment", "development"),
            ("driver", "simulated"),
            ("config", "{}"),
        ],
        &ada,
        "/clusters",
    )
    .await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(location, "/clusters/plain-1/test?added=1");
    let shown = page(&app, &location, &ada).await;
    assert!(shown.contains("Cluster plain-1 added."), "{shown}");
    assert!(shown.contains("checks passed"), "{shown}");
    let (status, location) = post_form(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "plain-2"),
            ("environment", "development"),
            ("driver", "kubernetes"),
            ("config", "{}"),
        ],
        &ada,
        "/clusters",
    )
    .await;
    assert!(status.is_redirection(), "{status}");
    assert!(
        location.contains("/clusters?") && location.contains("__err="),
        "{location}"
    );
    assert!(!cluster_names(&app).await.contains(&"plain-2".to_owned()));
}

/// The text of an HTML page's element content or attribute, as a browser reads it.
fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn a_refused_add_cluster_form_posted_without_javascript_comes_back_with_what_was_typed_and_why(
) {
    let app = spawn_app().await;
    app.user_with_token("ada", Role::Admin, None).await;
    let ada = sign_in(&app, "ada").await;
    let config = "{ \"model\": \"echo\",\n  \"colour\": \"blue & <green>\" }";
    let (status, location) = post_form(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "typed-1"),
            ("environment", "staging"),
            ("driver", "oip+haproxy"),
            ("config", config),
        ],
        &ada,
        "/clusters",
    )
    .await;
    assert!(status.is_redirection(), "{status}");
    assert!(
        location.starts_with("/clusters?name=typed-1&"),
        "{location}"
    );
    let shown = unescape(&page(&app, &location, &ada).await);
    assert!(
        shown.contains(
            "Not added, nothing was registered: oip+haproxy driver config: unknown field `colour`"
        ),
        "the refusal is shown: {shown}"
    );
    assert!(
        shown.contains("value=\"typed-1\""),
        "the name typed: {shown}"
    );
    assert!(
        shown.contains(&format!(">{config}</textarea>")),
        "the config typed, as typed: {shown}"
    );
    assert!(
        shown.contains("<option value=\"staging\" selected>"),
        "the environment chosen: {shown}"
    );
    assert!(
        shown.contains("<option value=\"oip+haproxy\" selected>"),
        "the driver chosen: {shown}"
    );
    assert!(
        !shown.contains("<option value=\"simulated\" selected>"),
        "{shown}"
    );
    assert!(cluster_names(&app).await.is_empty(), "nothing registered");

    // A config too long for an address comes back without it, saying so.
    let long = format!(
        "{{ \"model\": \"echo\", \"notes\": \"{}\" }}",
        "x".repeat(app::api::KEPT_FIELD_MAX)
    );
    let (status, location) = post_form(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "typed-2"),
            ("environment", "development"),
            ("driver", "oip+haproxy"),
            ("config", long.as_str()),
        ],
        &ada,
        "/clusters",
    )
    .await;
    assert!(status.is_redirection(), "{status}");
    assert!(location.len() < 4096, "{}", location.len());
    let shown = unescape(&page(&app, &location, &ada).await);
    assert!(shown.contains("value=\"typed-2\""), "{shown}");
    assert!(shown.contains("too long to bring back"), "{shown}");
    assert!(
        shown.contains("Not added, nothing was registered"),
        "{shown}"
    );
}

#[tokio::test]
async fn test_connection_names_a_missing_haproxy_socket_and_how_to_fix_it() {
    let app = spawn_app().await;
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("dave", Role::Deployer, None).await;
    app.user_with_token("vic", Role::Viewer, None).await;
    let (ada, dave, vic) = (
        sign_in(&app, "ada").await,
        sign_in(&app, "dave").await,
        sign_in(&app, "vic").await,
    );
    let dir = std::env::temp_dir().join(format!("sy-console-test-{:016x}", rand::random::<u64>()));
    for folder in ["blue", "green", "artifacts"] {
        std::fs::create_dir_all(dir.join(folder)).expect("dir");
    }
    let socket = dir.join("haproxy-admin.sock");
    let config = json!({
        "model": "echo",
        "blue": { "url": "http://127.0.0.1:1", "repository": dir.join("blue") },
        "green": { "url": "http://127.0.0.1:1", "repository": dir.join("green") },
        "artifacts": dir.join("artifacts"),
        "haproxy": { "socket": socket, "route_map": dir.join("route.map"), "weights_file": dir.join("weights") },
    });
    server_fn_json(
        &app,
        "/console/fn/add_cluster",
        &[
            ("name", "echo-dev"),
            ("environment", "development"),
            ("driver", "oip+haproxy"),
            ("config", &config.to_string()),
        ],
        &ada,
        true,
    )
    .await;

    // A viewer may not test; a deployer may, and each check says what it found.
    let refused = server_fn_json(
        &app,
        "/console/fn/test_cluster",
        &[("name", "echo-dev")],
        &vic,
        false,
    )
    .await;
    assert!(message(&refused).contains("deployer"), "{refused}");
    let report = server_fn_json(
        &app,
        "/console/fn/test_cluster",
        &[("name", "echo-dev")],
        &dave,
        true,
    )
    .await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["driver"], "oip+haproxy");
    let runtime = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == "HAProxy Runtime API"))
        .unwrap_or_else(|| panic!("no Runtime API check: {report}"))
        .clone();
    assert_eq!(runtime["ok"], false, "{runtime}");
    let socket_path = socket.display().to_string();
    assert!(
        runtime["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&socket_path)),
        "{runtime}"
    );
    assert!(
        runtime["advice"]
            .as_str()
            .is_some_and(|a| a.contains("stats socket")),
        "{runtime}"
    );
    assert!(
        report["checks"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["check"] == "blue repository" && c["ok"] == true)),
        "the parts that are there pass: {report}"
    );
    let unknown = server_fn_json(
        &app,
        "/console/fn/test_cluster",
        &[("name", "nope")],
        &dave,
        false,
    )
    .await;
    assert!(message(&unknown).contains("nope"), "{unknown}");

    // The same as the REST API's `cluster test` answers.
    let rest = app
        .post_json("/api/v1/clusters/echo-dev/test", &json!({}))
        .await
        .json::<Value>()
        .await
        .expect("JSON");
    let names = |r: &Value| -> Vec<Value> {
        r["checks"]
            .as_array()
            .map(|c| c.iter().map(|c| c["check"].clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names(&rest), names(&report));

    // Without JavaScript the button leads to the test's own page.
    let cluster_page = page(&app, "/clusters/echo-dev", &dave).await;
    assert!(
        cluster_page.contains("action=\"/clusters/echo-dev/test\""),
        "{cluster_page}"
    );
    assert!(cluster_page.contains("Test connection"), "{cluster_page}");
    let shown = page(&app, "/clusters/echo-dev/test", &dave).await;
    assert!(shown.contains("FAILED"), "{shown}");
    assert!(shown.contains("HAProxy Runtime API"), "{shown}");
    assert!(shown.contains(&socket_path), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_admin_removes_a_cluster_by_typing_its_name_but_never_one_with_an_operation() {
    let app = spawn_app().await;
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("dave", Role::Deployer, None).await;
    let (ada, dave) = (sign_in(&app, "ada").await, sign_in(&app, "dave").await);
    for name in ["typo-1", "typo-2", "busy-1"] {
        server_fn_json(
            &app,
            "/console/fn/add_cluster",
            &[
                ("name", name),
                ("environment", "development"),
                ("driver", "simulated"),
                ("config", ""),
            ],
            &ada,
            true,
        )
        .await;
    }

    let refused = server_fn_json(
        &app,
        "/console/fn/remove_cluster",
        &[("name", "typo-1"), ("confirm", "typo-1")],
        &dave,
        false,
    )
    .await;
    assert!(message(&refused).contains("admin"), "{refused}");
    let mistyped = server_fn_json(
        &app,
        "/console/fn/remove_cluster",
        &[("name", "typo-1"), ("confirm", "typo-2")],
        &ada,
        false,
    )
    .await;
    assert!(
        message(&mistyped).contains("Type the cluster's name, typo-1"),
        "{mistyped}"
    );
    assert!(cluster_names(&app).await.contains(&"typo-1".to_owned()));

    // The admin's page offers the form; a deployer's does not.
    assert!(page(&app, "/clusters/typo-1", &ada)
        .await
        .contains("Remove cluster"));
    assert!(!page(&app, "/clusters/typo-1", &dave)
        .await
        .contains("Remove cluster"));

    let removed = server_fn_json(
        &app,
        "/console/fn/remove_cluster",
        &[("name", "typo-1"), ("confirm", " typo-1 ")],
        &ada,
        true,
    )
    .await;
    assert_eq!(removed, json!("typo-1"));
    assert_eq!(
        app.get("/api/v1/clusters/typo-1").await.status(),
        StatusCode::NOT_FOUND
    );
    let audit = app.get_json("/api/v1/audit?action=cluster.removed").await;
    assert!(audit.to_string().contains("typo-1"), "{audit}");

    // Without JavaScript: sent to the clusters page, which says so.
    let (status, location) = post_form(
        &app,
        "/console/fn/remove_cluster",
        &[("name", "typo-2"), ("confirm", "typo-2")],
        &ada,
        "/clusters/typo-2",
    )
    .await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(location, "/clusters?removed=typo-2");
    assert!(page(&app, &location, &ada)
        .await
        .contains("Cluster typo-2 removed."));
    assert!(!cluster_names(&app).await.contains(&"typo-2".to_owned()));

    // While an operation runs (none of this test's servers runs it), removing is refused.
    app.register("chat", "1", json!({ "t": 1 })).await;
    let res = app
        .post_json(
            "/api/v1/clusters/busy-1/operations",
            &json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "first" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let busy = server_fn_json(
        &app,
        "/console/fn/remove_cluster",
        &[("name", "busy-1"), ("confirm", "busy-1")],
        &ada,
        false,
    )
    .await;
    assert!(message(&busy).contains("is running"), "{busy}");
    assert!(cluster_names(&app).await.contains(&"busy-1".to_owned()));
    // Its page says why it is kept instead of offering the form.
    let kept = page(&app, "/clusters/busy-1", &ada).await;
    assert!(kept.contains("has run operations, so it is kept"), "{kept}");
    assert!(!kept.contains("Remove cluster"), "{kept}");
}
