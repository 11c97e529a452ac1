//! Connecting a cluster: removing a mistaken registration (never one with
//! history) and `POST /api/v1/clusters/{name}/test`, whose checks name what
//! is wrong and how to fix it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::drivers::Drivers;
use switchyard::operations::RunnerSettings;
use switchyard_domain::access::Role;

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn delete(app: &TestApp, path: &str) -> reqwest::Response {
    app.request(reqwest::Method::DELETE, path)
        .send()
        .await
        .expect("request sent")
}

async fn clusters_serving_now(server: &TestApp) -> Vec<String> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let serving = server.get_json(&format!("/api/v1/serving?at={now}")).await;
    serving["clusters"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["cluster"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn message(error: &Value) -> String {
    error["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_cluster_that_never_ran_an_operation_is_removed_everywhere_and_one_with_history_is_kept()
{
    let app = spawn_app().await;
    let other = app.another_server().await;
    let simulated = |name: &str, config: Value| json!({ "name": name, "environment": "development", "driver": "simulated", "config": config });
    let res = app
        .post_json("/api/v1/clusters", &simulated("typo-1", json!({})))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // Both servers have loaded their serving-at-T index with the cluster in it.
    for server in [&app, &other] {
        let now = clusters_serving_now(server).await;
        assert!(now.contains(&"typo-1".to_owned()), "{now:?}");
    }

    let viewer = app.user_with_token("vera", Role::Viewer, None).await;
    let refused = app
        .client
        .delete(format!("{}/api/v1/clusters/typo-1", app.address))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("sent");
    assert_error(refused, StatusCode::FORBIDDEN).await;

    assert_eq!(
        delete(&app, "/api/v1/clusters/typo-1").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get("/api/v1/clusters/typo-1").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        delete(&app, "/api/v1/clusters/typo-1").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    for server in [&app, &other] {
        let now = clusters_serving_now(server).await;
        assert!(!now.contains(&"typo-1".to_owned()), "{now:?}");
    }
    let audit = app.get_json("/api/v1/audit?action=cluster.removed").await;
    assert!(audit.to_string().contains("typo-1"), "{audit}");

    // The name can be registered again, with another config.
    let again = app
        .post_json(
            "/api/v1/clusters",
            &simulated("typo-1", json!({ "action_ms": 1 })),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    for server in [&app, &other] {
        let now = clusters_serving_now(server).await;
        assert!(now.contains(&"typo-1".to_owned()), "{now:?}");
    }

    // A cluster that ran an operation is kept: refused while it runs, and after.
    app.register("chat", "1", json!({ "t": 1 })).await;
    let res = app
        .post_json(
            "/api/v1/clusters",
            &simulated("dev-1", json!({ "action_ms": 400 })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post_json(
            "/api/v1/clusters/dev-1/operations",
            &json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "first" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("JSON")["operation_id"]
        .as_i64()
        .expect("an id");
    let running = assert_error(
        delete(&app, "/api/v1/clusters/dev-1").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        message(&running).contains(&format!("operation {id} is running")),
        "{running}"
    );

    let store = app.store().await;
    let settings = RunnerSettings {
        poll: Duration::from_millis(20),
        ..RunnerSettings::default()
    };
    let runner = switchyard::operations::spawn(store, Drivers::default(), settings);
    for _ in 0..500 {
        if app.get_json(&format!("/api/v1/operations/{id}")).await["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let kept = assert_error(
        delete(&app, "/api/v1/clusters/dev-1").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(message(&kept).contains("has run 1 operation"), "{kept}");
    assert_eq!(
        app.get_json("/api/v1/clusters/dev-1").await["name"],
        "dev-1"
    );
}

async fn test_cluster(app: &TestApp, name: &str) -> Value {
    let res = app
        .post_json(&format!("/api/v1/clusters/{name}/test"), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("JSON")
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}

#[tokio::test]
async fn cluster_test_lists_every_check_and_names_what_is_wrong_and_how_to_fix_it() {
    let app = spawn_app().await;
    let missing_folder = std::env::temp_dir()
        .join(format!("sy-nowhere-{:016x}", rand::random::<u64>()))
        .join("router.json");
    for (name, config) in [
        ("sim-ok", json!({})),
        ("sim-bad", json!({ "state_file": missing_folder })),
    ] {
        let body = json!({ "name": name, "environment": "development", "driver": "simulated", "config": config });
        assert_eq!(
            app.post_json("/api/v1/clusters", &body).await.status(),
            StatusCode::CREATED
        );
    }
    let ok = test_cluster(&app, "sim-ok").await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(
        ok["checks"].as_array().is_some_and(|c| c.len() >= 3),
        "{ok}"
    );
    let bad = test_cluster(&app, "sim-bad").await;
    assert_eq!(bad["ok"], false, "{bad}");
    let state = check(&bad, "state file");
    assert_eq!(state["ok"], false);
    assert!(
        state["advice"]
            .as_str()
            .is_some_and(|a| a.contains("create the folder")),
        "{state}"
    );

    // An oip+haproxy cluster whose parts are not there: each part says so, with the fix.
    let dir = std::env::temp_dir().join(format!("sy-onboard-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(dir.join("blue")).expect("dir");
    let port = |l: std::net::TcpListener| l.local_addr().expect("addr").port();
    let free = || port(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (admin_port, blue_port, green_port) = (free(), free(), free());
    let config = json!({
        "model": "echo",
        "blue": { "url": format!("http://127.0.0.1:{blue_port}"), "repository": dir.join("blue") },
        "green": { "url": format!("http://127.0.0.1:{green_port}"), "repository": dir.join("no-such-folder") },
        "artifacts": dir.join("artifacts"),
        "haproxy": { "socket": format!("tcp://127.0.0.1:{admin_port}"), "route_map": dir.join("route.map"), "weights_file": dir.join("weights") },
    });
    let body = json!({ "name": "remote", "environment": "development", "driver": "oip+haproxy", "config": config });
    assert_eq!(
        app.post_json("/api/v1/clusters", &body).await.status(),
        StatusCode::CREATED
    );
    let report = test_cluster(&app, "remote").await;
    assert_eq!(report["ok"], false, "{report}");
    let runtime = check(&report, "HAProxy Runtime API");
    assert_eq!(runtime["ok"], false);
    assert!(
        runtime["advice"]
            .as_str()
            .is_some_and(|a| a.contains(&format!(
                "stats socket ipv4@127.0.0.1:{admin_port} level admin"
            ))),
        "{runtime}"
    );
    assert_eq!(check(&report, "blue model server")["ok"], false);
    assert_eq!(check(&report, "blue repository")["ok"], true, "{report}");
    let green_repo = check(&report, "green repository");
    assert_eq!(green_repo["ok"], false);
    assert!(
        green_repo["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no-such-folder")),
        "{green_repo}"
    );
    assert_eq!(check(&report, "artifacts")["ok"], false);
    assert_eq!(check(&report, "route map file")["ok"], true);
    assert!(
        report["checks"]
            .as_array()
            .is_some_and(|a| a.iter().all(|c| c["ok"] == true || c["advice"].is_string())),
        "every failed check carries advice: {report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_admin_address_that_is_neither_a_socket_path_nor_tcp_host_port_is_refused_saying_which_forms_work(
) {
    let app = spawn_app().await;
    for (socket, says) in [
        ("http://127.0.0.1:9999", "tcp://HOST:PORT"),
        ("tcp://127.0.0.1", "has no port"),
        ("tcp://127.0.0.1:99999", "is not a port"),
        ("tcp://:9999", "has no host"),
        ("ipv4@127.0.0.1:9999", "tcp://HOST:PORT"),
        ("", "is empty"),
    ] {
        let config = json!({
            "model": "echo",
            "blue": { "url": "http://127.0.0.1:1", "repository": "/tmp/b" },
            "green": { "url": "http://127.0.0.1:2", "repository": "/tmp/g" },
            "artifacts": "/tmp/a",
            "haproxy": { "socket": socket, "route_map": "/tmp/m", "weights_file": "/tmp/w" },
        });
        let body = json!({ "name": "bad-admin", "environment": "development", "driver": "oip+haproxy", "config": config });
        let error = assert_error(
            app.post_json("/api/v1/clusters", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(message(&error).contains(says), "{socket:?}: {error}");
    }
    assert_error(
        app.get("/api/v1/clusters/bad-admin").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_remote_haproxy_whose_files_switchyard_cannot_write_is_driven_in_memory_only_and_cluster_test_says_so(
) {
    let app = spawn_app().await;
    let config = |haproxy: Value| {
        json!({
            "model": "echo",
            "blue": { "url": "http://127.0.0.1:1", "repository": "/tmp" },
            "green": { "url": "http://127.0.0.1:2", "repository": "/tmp" },
            "artifacts": "/tmp",
            "haproxy": haproxy,
        })
    };
    let body = |name: &str, haproxy: Value| json!({ "name": name, "environment": "development", "driver": "oip+haproxy", "config": config(haproxy) });
    let without_weights = body(
        "remote-1",
        json!({ "socket": "tcp://10.0.0.9:9999", "route_map": "/etc/haproxy/route.map" }),
    );
    let error = assert_error(
        app.post_json("/api/v1/clusters", &without_weights).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        message(&error).contains("weights_file") && message(&error).contains("write_files"),
        "{error}"
    );
    let in_memory = body(
        "remote-1",
        json!({ "socket": "tcp://127.0.0.1:1", "route_map": "/nonexistent/haproxy/route.map", "write_files": false }),
    );
    assert_eq!(
        app.post_json("/api/v1/clusters", &in_memory).await.status(),
        StatusCode::CREATED
    );
    let report = test_cluster(&app, "remote-1").await;
    let files = check(&report, "route map file");
    assert_eq!(files["ok"], true, "{report}");
    assert!(
        files["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not written by Switchyard")),
        "{files}"
    );
    assert!(
        report["checks"]
            .as_array()
            .is_some_and(|a| !a.iter().any(|c| c["check"] == "weights file")),
        "{report}"
    );
}

#[tokio::test]
async fn a_slot_deploying_from_artifact_uri_needs_a_loader_and_no_repository_and_cluster_test_names_a_missing_loader(
) {
    let app = spawn_app().await;
    let haproxy = json!({ "socket": "tcp://127.0.0.1:1", "route_map": "/tmp/m", "write_files": false });
    let remote = json!({ "url": "http://127.0.0.1:1", "deploy": "artifact_uri", "loader": "http://127.0.0.1:2" });
    let copy = json!({ "url": "http://127.0.0.1:3", "repository": "/tmp" });
    let body = |name: &str, blue: Value, green: Value, artifacts: Option<&str>| {
        let mut config = json!({ "model": "echo", "blue": blue, "green": green, "haproxy": haproxy });
        if let Some(a) = artifacts {
            config["artifacts"] = json!(a);
        }
        json!({ "name": name, "environment": "development", "driver": "oip+haproxy", "config": config })
    };
    let without = |field: &str| {
        let mut slot = remote.clone();
        slot.as_object_mut().map(|o| o.remove(field));
        slot
    };
    let with = |slot: &Value, field: &str, value: Value| {
        let mut slot = slot.clone();
        slot[field] = value;
        slot
    };
    for (blue, green, artifacts, says) in [
        (
            without("loader"),
            remote.clone(),
            None,
            "blue.loader is missing",
        ),
        (
            with(&remote, "loader", json!("127.0.0.1:2")),
            remote.clone(),
            None,
            "must start with http://",
        ),
        (
            with(&remote, "repository", json!("/tmp")),
            remote.clone(),
            None,
            "blue.repository is not used",
        ),
        (
            remote.clone(),
            with(&remote, "deploy", json!("download")),
            None,
            "unknown variant `download`",
        ),
        (
            remote.clone(),
            copy.clone(),
            None,
            "artifacts is missing: slot green deploys by copy",
        ),
        (
            remote.clone(),
            with(&copy, "loader", json!("http://127.0.0.1:2")),
            Some("/tmp"),
            "green.loader is only used",
        ),
        (
            without("deploy"),
            remote.clone(),
            Some("/tmp"),
            "blue.repository is missing",
        ),
    ] {
        let error = assert_error(
            app.post_json("/api/v1/clusters", &body("mixed", blue, green, artifacts))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(message(&error).contains(says), "{says:?}: {error}");
    }
    assert_error(
        app.get("/api/v1/clusters/mixed").await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // One slot per mode is fine; the loader that does not answer is named, with how to run it.
    assert_eq!(
        app.post_json(
            "/api/v1/clusters",
            &body("mixed", remote.clone(), copy, Some("/tmp"))
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let report = test_cluster(&app, "mixed").await;
    let loader = check(&report, "blue loader");
    assert_eq!(loader["ok"], false, "{report}");
    assert!(
        loader["advice"].as_str().is_some_and(|a| a
            .contains("switchyard_loader.ArtifactRepository")
            && a.contains("blue.loader")),
        "{loader}"
    );
    assert_eq!(check(&report, "green repository")["ok"], true, "{report}");
    assert_eq!(check(&report, "artifacts")["ok"], true, "{report}");
    assert!(
        report["checks"].as_array().is_some_and(|a| !a
            .iter()
            .any(|c| c["check"] == "blue repository" || c["check"] == "green loader")),
        "{report}"
    );

    // Both slots reading from artifact_uri: no artifacts folder needed or checked.
    assert_eq!(
        app.post_json(
            "/api/v1/clusters",
            &body("remote-2", remote.clone(), remote.clone(), None)
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let report = test_cluster(&app, "remote-2").await;
    assert!(
        report["checks"]
            .as_array()
            .is_some_and(|a| !a.iter().any(|c| c["check"] == "artifacts")),
        "{report}"
    );
    assert_eq!(check(&report, "green loader")["ok"], false, "{report}");
}
