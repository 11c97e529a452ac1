//! Clusters and operations through the API, with the simulated driver and
//! the operation runner started beside the server, as `serve` does.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::drivers::Drivers;
use switchyard::operations::RunnerSettings;

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn with_runner(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let store = app.store().await;
    let settings = RunnerSettings { poll: Duration::from_millis(20), ..RunnerSettings::default() };
    switchyard::operations::spawn(store, Drivers::default(), settings)
}

async fn finished(app: &TestApp, id: i64) -> Value {
    for _ in 0..500 {
        let op = app.get_json(&format!("/api/v1/operations/{id}")).await;
        if op["state"] != "running" {
            return op;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("operation {id} did not end");
}

async fn create(app: &TestApp, name: &str, env: &str) -> reqwest::Response {
    app.post_json("/api/v1/clusters", &json!({ "name": name, "environment": env, "driver": "simulated", "config": {} })).await
}

#[tokio::test]
async fn a_simulated_cluster_is_created_listed_and_labelled_simulated() {
    let app = spawn_app().await;
    let res = create(&app, "dev-1", "development").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let c: Value = res.json().await.expect("JSON");
    assert_eq!((c["simulated"].as_bool(), c["driver"].as_str()), (Some(true), Some("simulated")));
    assert_eq!(c["slots"].as_array().map(Vec::len), Some(2));
    let list = app.get_json("/api/v1/clusters").await;
    assert_eq!(list["clusters"][0]["name"], "dev-1");
    assert_eq!(app.get_json("/api/v1/clusters/dev-1").await["environment"], "development");
    assert_error(app.get("/api/v1/clusters/nope").await, StatusCode::NOT_FOUND).await;
    assert_error(create(&app, "dev-1", "development").await, StatusCode::CONFLICT).await;
    let bad_driver = json!({ "name": "k", "environment": "development", "driver": "kubernetes" });
    assert_error(app.post_json("/api/v1/clusters", &bad_driver).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let bad_config = json!({ "name": "o", "environment": "development", "driver": "oip+haproxy", "config": { "model": "x" } });
    assert_error(app.post_json("/api/v1/clusters", &bad_config).await, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn an_operation_is_accepted_run_in_the_background_and_a_second_one_meanwhile_is_refused_naming_it() {
    let app = spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    app.register("chat", "2", json!({ "t": 2 })).await;
    create(&app, "dev-1", "development").await;
    let path = "/api/v1/clusters/dev-1/operations";
    let res = app.post_json(path, &json!({ "kind": "blue_green", "full_id": "chat:1", "reason": "first" })).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("JSON")["operation_id"].as_i64().expect("an id");
    let second = app.post_json(path, &json!({ "kind": "rolling", "full_id": "chat:2" })).await;
    let error = assert_error(second, StatusCode::CONFLICT).await;
    assert!(error["message"].as_str().unwrap_or("").contains(&format!("operation {id}")), "{error}");

    let runner = with_runner(&app).await;
    let op = finished(&app, id).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(op["steps"].as_array().is_some_and(|s| s.iter().all(|s| s["state"] == "done")));
    let res = app.post_json(path, &json!({ "kind": "rolling", "full_id": "chat:2", "steps": [10, 50, 100] })).await;
    let id = res.json::<Value>().await.expect("JSON")["operation_id"].as_i64().expect("an id");
    assert_eq!(finished(&app, id).await["state"], "succeeded");
    let res = app.post_json("/api/v1/clusters/dev-1/rollback", &json!({ "reason": "bad answers" })).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("JSON")["operation_id"].as_i64().expect("an id");
    let op = finished(&app, id).await;
    runner.abort();
    assert_eq!((op["kind"].as_str(), op["full_id"].as_str(), op["state"].as_str()), (Some("rollback"), Some("chat:1"), Some("succeeded")));
    let now = switchyard_domain::Timestamp::now().to_rfc3339();
    let serving = app.get_json(&format!("/api/v1/serving?at={}", now.replace('+', "%2B"))).await;
    let slots = &serving["clusters"][0]["slots"];
    let live: Vec<_> = slots.as_array().expect("slots").iter().filter(|s| s["weight"] == 100).collect();
    assert_eq!(live[0]["full_id"], "chat:1");
    assert_eq!(serving["clusters"][0]["drift"][0]["serving"], "chat:1", "nothing is pinned in development");
}

#[tokio::test]
async fn operations_are_refused_before_anything_moves_for_versions_the_environment_does_not_allow() {
    let app = spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    create(&app, "prod-1", "production").await;
    let path = "/api/v1/clusters/prod-1/operations";
    let e = assert_error(app.post_json(path, &json!({ "kind": "blue_green", "full_id": "chat:1" })).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(e["code"], "policy_violation");
    assert_error(app.post_json(path, &json!({ "kind": "blue_green", "full_id": "chat:9" })).await, StatusCode::NOT_FOUND).await;
    assert_error(app.post_json(path, &json!({ "kind": "teleport", "full_id": "chat:1" })).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_error(app.post_json("/api/v1/clusters/prod-1/rollback", &json!({})).await, StatusCode::CONFLICT).await;
    assert_error(app.get("/api/v1/operations/99").await, StatusCode::NOT_FOUND).await;
    assert_eq!(app.get_json("/api/v1/clusters/prod-1").await["running_operation"], Value::Null);
}

/// The JSON body of a `call_server_fn` answer ("200 OK {…}").
fn body(answer: &str) -> &str {
    answer.find('{').map_or(answer, |i| &answer[i..])
}

#[tokio::test]
async fn the_consoles_operation_buttons_obey_the_same_rules_as_the_api() {
    use crate::console::{call_server_fn, sign_in};
    use switchyard_domain::access::Role;
    let app = spawn_app().await;
    app.register("chat", "1", json!({ "t": 1 })).await;
    app.register("chat", "2", json!({ "t": 2 })).await;
    create(&app, "dev-1", "development").await;
    create(&app, "prod-1", "production").await;
    app.user_with_token("dave", Role::Deployer, None).await;
    let dave = sign_in(&app, "dave").await;
    let start = |cluster: &str, full_id: &str| {
        serde_urlencoded::to_string(json!({ "cluster": cluster, "kind": "blue_green", "full_id": full_id, "reason": "console" }))
            .expect("form")
    };

    let answer = call_server_fn(&app, "POST", "/console/fn/start_operation", &start("dev-1", "chat:1"), Some(&dave)).await;
    assert!(answer.starts_with("200 "), "{answer}");
    let op: Value = serde_json::from_str(body(&answer)).expect("an operation");
    assert_eq!((op["actor"].as_str(), op["reason"].as_str()), (Some("dave"), Some("console")));
    let second = call_server_fn(&app, "POST", "/console/fn/roll_back_cluster", "cluster=dev-1", Some(&dave)).await;
    assert!(second.contains(&format!("operation {} (blue_green) is running on cluster dev-1", op["id"])), "{second}");

    let production = call_server_fn(&app, "POST", "/console/fn/start_operation", &start("prod-1", "chat:1"), Some(&dave)).await;
    assert!(production.contains("needs the approver role; dave has the deployer role"), "{production}");

    let runner = with_runner(&app).await;
    let done = finished(&app, op["id"].as_i64().expect("an id")).await;
    runner.abort();
    assert_eq!(done["state"], "succeeded");
    let page = call_server_fn(&app, "POST", "/console/fn/get_cluster", "name=dev-1", Some(&dave)).await;
    let view: Value = serde_json::from_str(body(&page)).expect("a cluster view");
    assert_eq!(view["operations"][0]["state"], "succeeded");
    assert_eq!(view["refused"], Value::Null, "a deployer may operate a development cluster");
    let allowed: Vec<&str> = view["allowed"].as_array().expect("a list").iter().filter_map(Value::as_str).collect();
    assert_eq!(allowed, ["chat:2", "chat:1"], "development admits both versions, newest first");
}
