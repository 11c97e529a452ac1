use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with_metrics_token};

#[tokio::test]
async fn healthz_and_readyz_answer_200_when_the_database_is_reachable() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
}

#[tokio::test]
async fn the_openapi_document_is_json_listing_every_path() {
    let app = spawn_app().await;
    let doc = app.get_json("/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/models",
        "/api/v1/models/{model_id}/versions",
        "/api/v1/versions/{full_id}",
        "/api/v1/versions/{full_id}/stage",
        "/api/v1/environments",
        "/api/v1/environments/{env}/pins/{model_id}",
        "/api/v1/resolve/{reference}",
        "/api/v1/request-records",
        "/api/v1/request-records/{request_id}",
        "/api/v1/serving",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/clusters",
        "/api/v1/clusters/{name}",
        "/api/v1/clusters/{name}/operations",
        "/api/v1/clusters/{name}/rollback",
        "/api/v1/operations/{id}",
        "/api/v1/operations/{id}/pause",
        "/api/v1/operations/{id}/continue",
        "/api/v1/operations/{id}/rollback",
        "/api/v1/analysis-templates",
        "/api/v1/analysis-templates/{name}",
        "/api/v1/clusters/{name}/analysis",
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    // Every schema a path refers to is defined.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "schema {name} is referred to but not defined"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_is_public_declares_query_parameters_in_the_query_and_documents_401() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/api/v1/openapi.json", app.address))
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK, "no token needed");
    let doc: Value = res.json().await.expect("JSON");
    let params = |path: &str, method: &str| -> Vec<(String, String)> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("").to_owned(),
                    p["in"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let query = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), "query".to_owned()))
            .collect()
    };
    assert_eq!(
        params("/api/v1/serving", "get"),
        query(&["at", "environment", "model"])
    );
    assert_eq!(
        params("/api/v1/audit", "get"),
        query(&[
            "after",
            "before",
            "action",
            "actor",
            "model",
            "environment",
            "cluster",
            "limit",
            "cursor"
        ])
    );
    assert_eq!(params("/api/v1/promotions", "get"), query(&["status"]));
    assert_eq!(
        params("/api/v1/resolve/{reference}", "get"),
        [
            ("reference".to_owned(), "path".to_owned()),
            ("env".to_owned(), "query".to_owned())
        ]
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            if path == "/metrics" {
                continue; // its own token: see the metrics tests
            }
            let public = ["/api/v1/openapi.json", "/healthz", "/readyz"].contains(&path.as_str());
            assert_eq!(
                op["responses"].get("401").is_some(),
                !public,
                "{method} {path}: 401 documented exactly when a token is needed"
            );
        }
    }
}

#[tokio::test]
async fn metrics_count_requests_resolves_and_ingested_records() {
    let app = spawn_app().await;
    crate::request_records::cluster_with_chat_v1(&app).await;
    app.get("/api/v1/resolve/chat:v1?env=development").await;
    app.get("/api/v1/resolve/chat:v9?env=development").await;
    let record = crate::request_records::record("r1");
    let res = app
        .post_json("/api/v1/request-records", &json!([record]))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    for line in [
        r#"http_requests_total{method="POST",path="/api/v1/models/{model_id}/versions",status="201"} 1"#,
        r#"http_requests_total{method="GET",path="/api/v1/resolve/{reference}",status="404"} 1"#,
        r#"http_request_duration_seconds_count{method="GET",path="/api/v1/resolve/{reference}"} 2"#,
        r#"switchyard_resolve_total{outcome="ok"} 1"#,
        r#"switchyard_resolve_total{outcome="not_found"} 1"#,
        "switchyard_request_records_ingested_total 1",
    ] {
        assert!(text.contains(line), "{line} is missing from\n{text}");
    }
}

#[tokio::test]
async fn an_unknown_api_path_and_a_wrong_method_answer_in_the_error_format() {
    let app = spawn_app().await;
    assert_error(app.get("/api/v1/nothing-here").await, StatusCode::NOT_FOUND).await;
    let res = app
        .request(reqwest::Method::DELETE, "/api/v1/models")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET,HEAD");
    let error = assert_error(res, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(error["code"], "method_not_allowed");
    // The refusal says where to find the methods the path takes.
    assert_eq!(
        error["message"],
        "/api/v1/models does not take DELETE: the Allow header lists the methods it takes; \
         see /api/v1/openapi.json"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert!(!res.headers()["x-request-id"].is_empty());
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let _: Value = res.json().await.unwrap();
}

#[tokio::test]
async fn metrics_are_not_open_to_anyone_by_default_but_answer_an_api_token() {
    let app = spawn_app().await;
    let url = format!("{}/metrics", app.address);
    let anonymous = app.client.get(&url).send().await.expect("sent");
    assert_error(anonymous, StatusCode::UNAUTHORIZED).await;
    let forged = app
        .client
        .get(&url)
        .bearer_auth("sy_not-a-token")
        .send()
        .await
        .expect("sent");
    assert_error(forged, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_behind_their_own_token_refuse_scrapers_without_it() {
    let app = spawn_app_with_metrics_token("scrape-secret").await;
    let url = format!("{}/metrics", app.address);
    let anonymous = app.client.get(&url).send().await.expect("sent");
    assert_error(anonymous, StatusCode::UNAUTHORIZED).await;
    let scraper = app
        .client
        .get(&url)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .expect("sent");
    assert_eq!(scraper.status(), StatusCode::OK);
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .expect("sent");
    assert_error(wrong, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );
}
