//! Who may do what: one table of every REST route and every console server
//! function with the least role it needs, walked as anonymous, each role, a
//! revoked token and an expired token. A route in the OpenAPI document or a
//! server function registered with the server that has no row fails the test.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

use crate::helpers::{spawn_app, TestApp};

/// (method, documented path, request path, body, least role; None = anyone).
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<fn() -> Value>,
    Option<Role>,
);

/// Every REST route. Where a route's role depends on what is asked, each case has a row.
const REST: &[Row] = &[
    (
        "GET",
        "/api/v1/models",
        "/api/v1/models",
        None,
        Some(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/models/{model_id}/versions",
        "/api/v1/models/chat/versions",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/models/{model_id}/versions",
        "/api/v1/models/chat/versions",
        Some(|| json!({"version": "v9", "config": {}})),
        Some(Role::Deployer),
    ),
    (
        "GET",
        "/api/v1/versions/{full_id}",
        "/api/v1/versions/chat:v1",
        None,
        Some(Role::Viewer),
    ),
    // dev ↔ staging by deployers; out of production by approvers; early retirement by admins.
    (
        "POST",
        "/api/v1/versions/{full_id}/stage",
        "/api/v1/versions/chat:v0/stage",
        Some(|| json!({"to": "staging"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/api/v1/versions/{full_id}/stage",
        "/api/v1/versions/chat:v0/stage",
        Some(|| json!({"to": "deprecated"})),
        Some(Role::Approver),
    ),
    (
        "POST",
        "/api/v1/versions/{full_id}/stage",
        "/api/v1/versions/chat:v0/stage",
        Some(|| json!({"to": "retired", "early": true, "reason": "r"})),
        Some(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/environments",
        "/api/v1/environments",
        None,
        Some(Role::Viewer),
    ),
    // Pins by hand: deployers outside production, admins in production.
    (
        "PUT",
        "/api/v1/environments/{env}/pins/{model_id}",
        "/api/v1/environments/staging/pins/chat",
        Some(|| json!({"version": "v0", "reason": "test"})),
        Some(Role::Deployer),
    ),
    (
        "PUT",
        "/api/v1/environments/{env}/pins/{model_id}",
        "/api/v1/environments/production/pins/chat",
        Some(|| json!({"version": "v0", "reason": "test"})),
        Some(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/resolve/{reference}",
        "/api/v1/resolve/chat:v1?env=staging",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/request-records",
        "/api/v1/request-records",
        Some(|| json!([])),
        Some(Role::Deployer),
    ),
    (
        "GET",
        "/api/v1/request-records/{request_id}",
        "/api/v1/request-records/r-1",
        None,
        Some(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/serving",
        "/api/v1/serving?at=2026-01-01T00:00:00Z",
        None,
        Some(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/audit",
        "/api/v1/audit",
        None,
        Some(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/audit/verify",
        "/api/v1/audit/verify",
        None,
        Some(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/promotions",
        "/api/v1/promotions",
        None,
        Some(Role::Viewer),
    ),
    // Release policy: admins change policies and freezes and ask for overrides;
    // a second person (approver or admin) approves an override.
    (
        "PUT",
        "/api/v1/environments/{env}/policy",
        "/api/v1/environments/staging/policy",
        Some(|| json!({"expiry_hours": 72})),
        Some(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/freezes",
        "/api/v1/freezes",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/freezes",
        "/api/v1/freezes",
        Some(|| json!({"name": "far away", "environment": "staging", "kind": "one_off",
            "from": "2099-01-01T00:00:00Z", "to": "2099-01-02T00:00:00Z"})),
        Some(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/freezes/{id}",
        "/api/v1/freezes/999",
        None,
        Some(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/environments/{env}/overrides",
        "/api/v1/environments/staging/overrides",
        Some(|| json!({"reason": "access test", "hours": 1})),
        Some(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/overrides",
        "/api/v1/overrides",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/overrides/{id}/approve",
        "/api/v1/overrides/999/approve",
        None,
        Some(Role::Approver),
    ),
    (
        "POST",
        "/api/v1/promotions",
        "/api/v1/promotions",
        Some(|| json!({"full_id": "chat:v0", "environment": "production", "reason": "r"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/api/v1/promotions/{id}/approve",
        "/api/v1/promotions/999/approve",
        Some(|| json!({})),
        Some(Role::Approver),
    ),
    (
        "POST",
        "/api/v1/promotions/{id}/reject",
        "/api/v1/promotions/999/reject",
        Some(|| json!({"reason": "r"})),
        Some(Role::Approver),
    ),
    (
        "GET",
        "/api/v1/clusters",
        "/api/v1/clusters",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/clusters",
        "/api/v1/clusters",
        Some(|| json!({"name": "c1", "environment": "staging", "driver": "simulated"})),
        Some(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/clusters/{name}",
        "/api/v1/clusters/nowhere",
        None,
        Some(Role::Viewer),
    ),
    (
        "DELETE",
        "/api/v1/clusters/{name}",
        "/api/v1/clusters/nowhere",
        None,
        Some(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/clusters/{name}/test",
        "/api/v1/clusters/nowhere/test",
        Some(|| json!({})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/api/v1/clusters/{name}/operations",
        "/api/v1/clusters/nowhere/operations",
        Some(|| json!({"kind": "blue_green", "full_id": "chat:v1", "reason": "test"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/api/v1/clusters/{name}/rollback",
        "/api/v1/clusters/nowhere/rollback",
        Some(|| json!({"reason": "test"})),
        Some(Role::Deployer),
    ),
    (
        "GET",
        "/api/v1/operations/{id}",
        "/api/v1/operations/999",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/operations/{id}/pause",
        "/api/v1/operations/999/pause",
        Some(|| json!({"reason": "test"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/api/v1/operations/{id}/continue",
        "/api/v1/operations/999/continue",
        Some(|| json!({"reason": "test"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/api/v1/operations/{id}/rollback",
        "/api/v1/operations/999/rollback",
        Some(|| json!({"reason": "test"})),
        Some(Role::Deployer),
    ),
    (
        "GET",
        "/api/v1/analysis-templates",
        "/api/v1/analysis-templates",
        None,
        Some(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/analysis-templates/{name}",
        "/api/v1/analysis-templates/nowhere",
        None,
        Some(Role::Viewer),
    ),
    (
        "PUT",
        "/api/v1/analysis-templates/{name}",
        "/api/v1/analysis-templates/nowhere",
        Some(
            || json!({"prometheus_url": "http://127.0.0.1:9", "query": "up", "success": "result < 1", "failure": "result > 2", "interval_ms": 1000, "count": 1, "failure_limit": 1, "inconclusive_limit": 1}),
        ),
        Some(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/analysis-templates/{name}",
        "/api/v1/analysis-templates/nowhere",
        None,
        Some(Role::Admin),
    ),
    (
        "PUT",
        "/api/v1/clusters/{name}/analysis",
        "/api/v1/clusters/nowhere/analysis",
        Some(|| json!({"templates": []})),
        Some(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions",
        None,
        Some(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions",
        Some(|| json!({"name": "s1", "url": "http://example.com/hook"})),
        Some(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/subscriptions/{name}",
        "/api/v1/subscriptions/nowhere",
        None,
        Some(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/subscriptions/{name}",
        "/api/v1/subscriptions/nowhere",
        None,
        Some(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/subscriptions/{name}/rotate-secret",
        "/api/v1/subscriptions/nowhere/rotate-secret",
        Some(|| json!({})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/subscriptions/{name}/test",
        "/api/v1/subscriptions/nowhere/test",
        None,
        Some(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/deliveries/{id}/redeliver",
        "/api/v1/deliveries/999/redeliver",
        None,
        Some(Role::Admin),
    ),
    // The overview's warning: every reader; the last error only for admins.
    (
        "GET",
        "/api/v1/notifications/status",
        "/api/v1/notifications/status",
        None,
        Some(Role::Viewer),
    ),
    // Public, so a client can be generated before a token exists.
    (
        "GET",
        "/api/v1/openapi.json",
        "/api/v1/openapi.json",
        None,
        None,
    ),
    ("GET", "/healthz", "/healthz", None, None),
    ("GET", "/readyz", "/readyz", None, None),
    // Never anonymous: any valid API token (or the scraper's own secret).
    ("GET", "/metrics", "/metrics", None, Some(Role::Viewer)),
];

/// Every console server function (by its path) and the console's form posts.
const CONSOLE: &[Row] = &[
    (
        "POST",
        "/console/fn/get_overview",
        "/console/fn/get_overview",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_audit_page",
        "/console/fn/get_audit_page",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_board",
        "/console/fn/get_board",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_clusters",
        "/console/fn/get_clusters",
        Some(|| json!({"summary": false})),
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_cluster",
        "/console/fn/get_cluster",
        Some(|| json!({"name": "eu-1"})),
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_operation",
        "/console/fn/get_operation",
        Some(|| json!({"id": 1})),
        Some(Role::Viewer),
    ),
    // No such cluster: a deployer passes the role check and is told so.
    (
        "POST",
        "/console/fn/start_operation",
        "/console/fn/start_operation",
        Some(|| json!({"cluster": "eu-1", "kind": "blue_green", "full_id": "chat:v1"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/console/fn/roll_back_cluster",
        "/console/fn/roll_back_cluster",
        Some(|| json!({"cluster": "eu-1"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/console/fn/get_model_page",
        "/console/fn/get_model_page",
        Some(|| json!({"model_id": "chat"})),
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_serving_at",
        "/console/fn/get_serving_at",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_version_detail",
        "/console/fn/get_version_detail",
        Some(|| json!({"full_id": "chat:v1"})),
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/lookup_request",
        "/console/fn/lookup_request",
        Some(|| json!({"request_id": "r-1"})),
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/move_stage",
        "/console/fn/move_stage",
        Some(|| json!({"full_id": "chat:v0", "to": "development"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/console/fn/verify_audit_chain",
        "/console/fn/verify_audit_chain",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_approvals",
        "/console/fn/get_approvals",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_freezes",
        "/console/fn/get_freezes",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/request_promotion",
        "/console/fn/request_promotion",
        Some(|| json!({"full_id": "chat:v0", "environment": "production", "reason": "r"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/console/fn/approve_promotion",
        "/console/fn/approve_promotion",
        Some(|| json!({"id": 999})),
        Some(Role::Approver),
    ),
    (
        "POST",
        "/console/fn/reject_promotion",
        "/console/fn/reject_promotion",
        Some(|| json!({"id": 999, "reason": "r"})),
        Some(Role::Approver),
    ),
    // Answers "nobody" to anonymous callers rather than refusing.
    (
        "GET",
        "/console/fn/get_signed_in_user",
        "/console/fn/get_signed_in_user",
        None,
        None,
    ),
];

/// The credentials each column of the table is tried with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Anonymous,
    Revoked,
    Expired,
    Role(Role),
}

fn allowed(caller: Caller, least: Option<Role>) -> bool {
    match (caller, least) {
        (_, None) => true,
        (Caller::Role(r), Some(least)) => r.allows(least),
        _ => false,
    }
}

/// The tokens for each caller: one user per role, plus a revoked and an expired token of an admin.
async fn tokens(app: &TestApp) -> Vec<(Caller, Option<String>)> {
    let mut out = vec![(Caller::Anonymous, None)];
    let revoked = app
        .user_with_token("revoked-admin", Role::Admin, None)
        .await;
    app.store()
        .await
        .revoke_token("revoked-admin", "test", Timestamp::now())
        .await
        .expect("revoked");
    out.push((Caller::Revoked, Some(revoked)));
    let expired = app
        .user_with_token(
            "expired-admin",
            Role::Admin,
            Some(Timestamp::now().plus_hours(-1)),
        )
        .await;
    out.push((Caller::Expired, Some(expired)));
    for role in Role::ALL {
        out.push((
            Caller::Role(role),
            Some(app.user_with_token(role.as_str(), role, None).await),
        ));
    }
    out
}

#[tokio::test]
async fn every_rest_route_allows_exactly_the_roles_in_the_table_and_nobody_else() {
    let app = spawn_app().await;
    // Something to act on: chat:v0 in staging, chat:v1 in production.
    app.register("chat", "v0", json!({"v": 0})).await;
    app.move_stage("chat:v0", "staging").await;
    app.production_version("chat", "v1").await;

    let doc = app.get_json("/api/v1/openapi.json").await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let tabled: BTreeSet<(String, String)> = REST
        .iter()
        .map(|(m, p, ..)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented, tabled,
        "every documented route needs a row in the access table, and every row a route"
    );

    let mut failures = Vec::new();
    for (caller, token) in tokens(&app).await {
        for &(method, documented, path, body, least) in REST {
            let mut req = app.client.request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", app.address),
            );
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            if let Some(body) = body {
                req = req.json(&body());
            }
            let status = req.send().await.expect("request sent").status();
            let expected = allowed(caller, least);
            let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            let right_refusal = match caller {
                Caller::Role(_) => status == StatusCode::FORBIDDEN,
                _ => status == StatusCode::UNAUTHORIZED,
            };
            if expected == refused || (!expected && !right_refusal) {
                failures.push(format!(
                    "{caller:?} {method} {documented} ({path}): {status}, expected {}",
                    if expected { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_refusal_for_a_low_role_names_the_role_needed() {
    let app = spawn_app().await;
    let viewer = app.user_with_token("erin", Role::Viewer, None).await;
    let res = app
        .post_json_as(
            &viewer,
            "/api/v1/models/chat/versions",
            &json!({"version": "v1", "config": {}}),
        )
        .await;
    let error = crate::helpers::assert_error(res, StatusCode::FORBIDDEN).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deployer"),
        "{error}"
    );
}

#[tokio::test]
async fn every_console_server_function_refuses_the_signed_out_and_roles_below_its_row() {
    let app = spawn_app().await;
    let registered: BTreeSet<String> = server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_owned())
        .collect();
    let tabled: BTreeSet<String> = CONSOLE.iter().map(|(_, p, ..)| (*p).to_owned()).collect();
    assert_eq!(
        registered, tabled,
        "every server function needs a row in the access table"
    );

    let mut failures = Vec::new();
    let mut sessions = vec![(Caller::Anonymous, None)];
    for role in Role::ALL {
        app.user_with_token(role.as_str(), role, None).await;
        sessions.push((
            Caller::Role(role),
            Some(crate::console::sign_in(&app, role.as_str()).await),
        ));
    }
    for (caller, session) in sessions {
        for &(method, _, path, body, least) in CONSOLE {
            let form = body
                .map(|b| serde_urlencoded::to_string(b()).expect("form body"))
                .unwrap_or_default();
            let answer =
                crate::console::call_server_fn(&app, method, path, &form, session.as_ref()).await;
            let refused =
                answer.contains("\"unauthenticated\"") || answer.contains("\"forbidden\"");
            if allowed(caller, least) == refused {
                failures.push(format!("{caller:?} {path}: {answer}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
