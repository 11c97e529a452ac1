//! Who may do what: one table of every REST route and every console server
//! function with the least role it needs, walked as anonymous, each role, a
//! revoked token and an expired token. A route in the OpenAPI document or a
//! server function registered with the server that has no row fails the test.
//!
//! The allow/deny matrix per environment (`allow_deny_matrix`) walks the same
//! rows, plus rows on real targets in staging and production, as users bound
//! with each role in staging only, production only and all, on SQLite and on
//! PostgreSQL; the expected answer is written here from the product's rules
//! (`Bound::may`), apart from the server's code.

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
    // Only the requester may withdraw; no binding is needed (unknown id: 404 to anyone signed in).
    (
        "POST",
        "/api/v1/promotions/{id}/withdraw",
        "/api/v1/promotions/999/withdraw",
        Some(|| json!({"reason": "r"})),
        Some(Role::Viewer),
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
    // Role bindings: anyone may read who may do what where; admins on all change them.
    (
        "GET",
        "/api/v1/role-bindings",
        "/api/v1/role-bindings",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/role-bindings",
        "/api/v1/role-bindings",
        Some(|| json!({"group": "nobody-is-in-this", "role": "viewer"})),
        Some(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/role-bindings/{id}",
        "/api/v1/role-bindings/999",
        None,
        Some(Role::Admin),
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
    // Authenticated by MLflow's signature; without a follow and secret configured, 404.
    (
        "POST",
        "/api/v1/mlflow/webhook",
        "/api/v1/mlflow/webhook",
        None,
        None,
    ),
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
        "/console/fn/get_cluster_form",
        "/console/fn/get_cluster_form",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/add_cluster",
        "/console/fn/add_cluster",
        Some(|| json!({"name": "table-new", "environment": "development", "driver": "simulated", "config": "{}"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/test_cluster",
        "/console/fn/test_cluster",
        Some(|| json!({"name": "nowhere"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/console/fn/remove_cluster",
        "/console/fn/remove_cluster",
        Some(|| json!({"name": "nowhere", "confirm": "nowhere"})),
        Some(Role::Admin),
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
    // The overview's notification warning: every reader.
    (
        "POST",
        "/console/fn/get_notification_status",
        "/console/fn/get_notification_status",
        None,
        Some(Role::Viewer),
    ),
    // Subscriptions are configuration: admins only (unknown names: the admin is told so).
    (
        "POST",
        "/console/fn/get_subscriptions",
        "/console/fn/get_subscriptions",
        None,
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/get_subscription",
        "/console/fn/get_subscription",
        Some(|| json!({"name": "nope"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/create_subscription",
        "/console/fn/create_subscription",
        Some(|| json!({"name": "BAD NAME", "url": "http://127.0.0.1:1/x"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/delete_subscription",
        "/console/fn/delete_subscription",
        Some(|| json!({"name": "nope", "confirm": "nope"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/send_test_message",
        "/console/fn/send_test_message",
        Some(|| json!({"name": "nope"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/redeliver",
        "/console/fn/redeliver",
        Some(|| json!({"id": 999999})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/rotate_subscription_secret",
        "/console/fn/rotate_subscription_secret",
        Some(|| json!({"name": "nope"})),
        Some(Role::Admin),
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
    (
        "POST",
        "/console/fn/withdraw_promotion",
        "/console/fn/withdraw_promotion",
        Some(|| json!({"id": 999, "reason": "r"})),
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/get_access",
        "/console/fn/get_access",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/add_binding",
        "/console/fn/add_binding",
        Some(|| json!({"subject_kind": "group", "subject": "nobody-is-in-this", "role": "viewer"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/remove_binding",
        "/console/fn/remove_binding",
        Some(|| json!({"id": 999})),
        Some(Role::Admin),
    ),
    // Analysis templates: anyone reads them; admins on all save, remove and
    // attach them (a bad name or an unknown target: the admin is told so).
    (
        "POST",
        "/console/fn/get_analysis",
        "/console/fn/get_analysis",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/save_analysis_template",
        "/console/fn/save_analysis_template",
        Some(|| json!({"name": "BAD NAME", "prometheus_url": "http://127.0.0.1:1", "query": "up", "success": "result < 1", "failure": "result > 2", "interval_ms": 1000, "count": 1, "failure_limit": 1, "inconclusive_limit": 1})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/remove_analysis_template",
        "/console/fn/remove_analysis_template",
        Some(|| json!({"name": "nowhere"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/set_cluster_analysis",
        "/console/fn/set_cluster_analysis",
        Some(|| json!({"cluster": "nowhere", "templates": ""})),
        Some(Role::Admin),
    ),
    // No such operation: a deployer passes the role check and is told so.
    (
        "POST",
        "/console/fn/continue_operation",
        "/console/fn/continue_operation",
        Some(|| json!({"id": 999999, "reason": "matrix"})),
        Some(Role::Deployer),
    ),
    (
        "POST",
        "/console/fn/roll_back_operation",
        "/console/fn/roll_back_operation",
        Some(|| json!({"id": 999999, "reason": "matrix"})),
        Some(Role::Deployer),
    ),
    // Importing from MLflow: admins only. The start's body is refused after the
    // access check (not an http URL), and no import of that id exists.
    (
        "POST",
        "/console/fn/get_mlflow_imports",
        "/console/fn/get_mlflow_imports",
        None,
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/get_mlflow_import",
        "/console/fn/get_mlflow_import",
        Some(|| json!({"id": "nope"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/start_mlflow_import",
        "/console/fn/start_mlflow_import",
        Some(|| json!({"tracking_uri": "ftp://nowhere"})),
        Some(Role::Admin),
    ),
    // Release policy: everyone reads it; admins change policies and freezes and
    // request overrides; a second person (approver or admin) approves one. Each
    // body is refused after the access check, so the matrix changes nothing.
    (
        "POST",
        "/console/fn/get_release_policy",
        "/console/fn/get_release_policy",
        None,
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/console/fn/set_approval_policy",
        "/console/fn/set_approval_policy",
        Some(|| json!({"environment": "staging", "required_approvals": "x", "requester_group_may_approve": "yes", "expiry_hours": "72"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/add_freeze",
        "/console/fn/add_freeze",
        Some(|| json!({"name": "far away", "environment": "staging", "kind": "monthly"})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/remove_freeze",
        "/console/fn/remove_freeze",
        Some(|| json!({"id": 999})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/request_override",
        "/console/fn/request_override",
        Some(|| json!({"environment": "staging", "reason": " "})),
        Some(Role::Admin),
    ),
    (
        "POST",
        "/console/fn/approve_override",
        "/console/fn/approve_override",
        Some(|| json!({"id": 999})),
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
    // The sign-in page's options (single sign-on button, local form): for everyone.
    (
        "GET",
        "/console/fn/get_sign_in_options",
        "/console/fn/get_sign_in_options",
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

// ---- the allow/deny matrix per environment ----

/// Where a row's action happens, which decides which bindings count.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    /// Tied to no environment: the role on all (reading: any binding).
    All,
    /// In one environment: the role there or on all.
    Env(&'static str),
    /// The target does not exist (404 after the check): only the lower bar,
    /// the role in some environment or on all.
    Somewhere,
}

/// Where each row of `REST` and `CONSOLE` happens (by path and body).
fn place_of(method: &str, path: &str, body: Option<fn() -> Value>) -> At {
    let body = body.map(|b| b()).unwrap_or(Value::Null);
    let to = body["to"].as_str().unwrap_or_default();
    match (method, path) {
        ("POST", "/api/v1/models/chat/versions") => At::Env("development"),
        (_, p) if p.ends_with("/stage") || p == "/console/fn/move_stage" => match to {
            "development" => At::Env("development"),
            "staging" => At::Env("staging"),
            _ => At::Env("production"),
        },
        (_, p) if p.starts_with("/api/v1/environments/staging/pins") => At::Env("staging"),
        (_, p) if p.starts_with("/api/v1/environments/production/pins") => At::Env("production"),
        ("POST", "/api/v1/promotions") | (_, "/console/fn/request_promotion") => {
            At::Env("production")
        }
        ("POST", "/api/v1/request-records") => At::Somewhere,
        (_, p) if p.contains("/promotions/999/") => At::Somewhere,
        (_, "/console/fn/approve_promotion" | "/console/fn/reject_promotion") => At::Somewhere,
        (_, p) if p.contains("/clusters/nowhere/test")
            || p.contains("/clusters/nowhere/operations")
            || p.contains("/clusters/nowhere/rollback")
            || p.starts_with("/api/v1/operations/999/") =>
        {
            At::Somewhere
        }
        (
            _,
            "/console/fn/start_operation"
            | "/console/fn/roll_back_cluster"
            | "/console/fn/continue_operation"
            | "/console/fn/roll_back_operation"
            | "/console/fn/test_cluster",
        ) => At::Somewhere,
        _ => At::All,
    }
}

/// A caller bound with `role` in `scope` (`None`: all) only.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    role: Role,
    scope: Option<&'static str>,
}

impl Bound {
    fn name(self) -> String {
        format!("{}-{}", self.role, self.scope.unwrap_or("all"))
    }

    /// Whether the table says this caller may do a row needing `least` at `at`;
    /// written apart from the server's rules, from the product's words.
    fn may(self, least: Option<Role>, at: At) -> bool {
        let Some(least) = least else { return true };
        if !self.role.allows(least) {
            return false;
        }
        match at {
            At::All => least == Role::Viewer || self.scope.is_none(),
            At::Env(e) => self.scope.is_none_or(|s| s == e),
            At::Somewhere => true,
        }
    }
}

/// Env-specific rows on real targets: clusters stg-1 (staging) and prd-1
/// (production), promotions pending in staging and production. Each is
/// refused after the access check (no reason, unknown version) so the
/// matrix changes nothing: allowed = anything but 401/403.
fn env_rows(staging_promotion: i64, production_promotion: i64) -> Vec<(String, String, Value, Role, At)> {
    let mut rows = Vec::new();
    for (cluster, env) in [("stg-1", "staging"), ("prd-1", "production")] {
        let operator = if env == "production" { Role::Approver } else { Role::Deployer };
        rows.push(("POST".into(), format!("/api/v1/clusters/{cluster}/operations"), json!({"kind": "blue_green", "full_id": "chat:v404"}), operator, At::Env(env)));
        rows.push(("POST".into(), format!("/api/v1/clusters/{cluster}/rollback"), json!({}), operator, At::Env(env)));
        rows.push(("POST".into(), format!("/api/v1/clusters/{cluster}/test"), json!({}), Role::Deployer, At::Env(env)));
        rows.push(("POST".into(), "/console/fn/test_cluster".into(), json!({"name": cluster}), Role::Deployer, At::Env(env)));
        rows.push(("POST".into(), "/api/v1/request-records".into(), json!([{"request_id": "r-x", "at": "2999-01-01T00:00:00Z", "cluster": cluster, "slot": "blue", "full_id": "chat:v1", "latency_ms": 1}]), Role::Deployer, At::Env(env)));
        rows.push(("POST".into(), "/console/fn/start_operation".into(), json!({"cluster": cluster, "kind": "blue_green", "full_id": "chat:v404"}), operator, At::Env(env)));
        rows.push(("POST".into(), "/console/fn/roll_back_cluster".into(), json!({"cluster": cluster}), operator, At::Env(env)));
    }
    for env in ["staging", "production"] {
        let pin = if env == "production" { Role::Admin } else { Role::Deployer };
        rows.push(("PUT".into(), format!("/api/v1/environments/{env}/pins/chat"), json!({"version": "v404", "reason": "r"}), pin, At::Env(env)));
        rows.push(("POST".into(), "/api/v1/promotions".into(), json!({"full_id": "chat:v404", "environment": env, "reason": "r"}), Role::Deployer, At::Env(env)));
        rows.push(("POST".into(), "/console/fn/request_promotion".into(), json!({"full_id": "chat:v404", "environment": env, "reason": "r"}), Role::Deployer, At::Env(env)));
    }
    for (id, env) in [(staging_promotion, "staging"), (production_promotion, "production")] {
        rows.push(("POST".into(), format!("/api/v1/promotions/{id}/approve"), json!({"reason": "matrix"}), Role::Approver, At::Env(env)));
        rows.push(("POST".into(), format!("/api/v1/promotions/{id}/reject"), json!({"reason": " "}), Role::Approver, At::Env(env)));
        rows.push(("POST".into(), "/console/fn/approve_promotion".into(), json!({"id": id, "reason": "matrix"}), Role::Approver, At::Env(env)));
        rows.push(("POST".into(), "/console/fn/reject_promotion".into(), json!({"id": id, "reason": " "}), Role::Approver, At::Env(env)));
    }
    for (to, least, env) in [("staging", Role::Deployer, "staging"), ("development", Role::Deployer, "development"), ("deprecated", Role::Approver, "production")] {
        rows.push(("POST".into(), "/api/v1/versions/chat:v404/stage".into(), json!({"to": to, "reason": "r"}), least, At::Env(env)));
        rows.push(("POST".into(), "/console/fn/move_stage".into(), json!({"full_id": "chat:v404", "to": to, "reason": "r"}), least, At::Env(env)));
    }
    rows.push(("POST".into(), "/api/v1/models/chat/versions".into(), json!({"version": "NOT VALID", "config": {}}), Role::Deployer, At::Env("development")));
    rows
}

/// Users bound with each role in staging only, production only, and all.
async fn bound_callers(app: &TestApp) -> Vec<Bound> {
    use switchyard_domain::access::{Binding, Scope, Subject};
    let store = app.store().await;
    let mut out = Vec::new();
    for role in Role::ALL {
        for scope in [Some("staging"), Some("production"), None] {
            let b = Bound { role, scope };
            let name = b.name();
            app.user_with_token(&name, role, None).await;
            if let Some(env) = scope {
                // Replace the binding on all that creating the user gave.
                let on_all = store
                    .list_bindings()
                    .await
                    .expect("bindings")
                    .into_iter()
                    .find(|s| s.binding.subject == Subject::User(name.clone()))
                    .expect("the user's binding");
                store
                    .create_binding(&Binding::new(Subject::User(name.clone()), role, Scope::Environment(env.into())), "test", Timestamp::now())
                    .await
                    .expect("scoped binding");
                store.remove_binding(on_all.id, "test", Timestamp::now()).await.expect("removed");
            }
            out.push(b);
        }
    }
    out
}

/// A pending promotion of a fresh staging version into `env`; its id.
async fn pending_in(app: &TestApp, version: &str, env: &str) -> i64 {
    app.register("chat", version, json!({"v": version})).await;
    if env == "production" {
        app.move_stage(&format!("chat:{version}"), "staging").await;
    }
    let res = app
        .post_json(
            "/api/v1/promotions",
            &json!({"full_id": format!("chat:{version}"), "environment": env, "reason": "matrix"}),
        )
        .await;
    let body: Value = res.json().await.expect("promotion");
    body["id"].as_i64().unwrap_or_else(|| panic!("a promotion: {body}"))
}

async fn allow_deny_matrix(app: TestApp) {
    app.register("chat", "v0", json!({"v": 0})).await;
    app.move_stage("chat:v0", "staging").await;
    app.production_version("chat", "v1").await;
    for (name, env) in [("stg-1", "staging"), ("prd-1", "production")] {
        let res = app
            .post_json("/api/v1/clusters", &json!({"name": name, "environment": env, "driver": "simulated"}))
            .await;
        assert!(res.status().is_success(), "cluster {name}: {}", res.status());
    }
    let staging_promotion = pending_in(&app, "v2", "staging").await;
    let production_promotion = pending_in(&app, "v3", "production").await;

    let callers = bound_callers(&app).await;
    let store = app.store().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut rows: Vec<(String, String, Value, Option<Role>, At)> = REST
        .iter()
        .chain(CONSOLE.iter())
        .map(|&(m, _, p, body, least)| {
            (m.to_owned(), p.to_owned(), body.map(|b| b()).unwrap_or(Value::Null), least, place_of(m, p, body))
        })
        .collect();
    rows.extend(
        env_rows(staging_promotion, production_promotion)
            .into_iter()
            .map(|(m, p, b, least, at)| (m, p, b, Some(least), at)),
    );
    for caller in &callers {
        let token = {
            // A fresh token for this caller (user_with_token made one named like the user).
            let t = switchyard::auth::secret::generate(switchyard::auth::secret::TOKEN_PREFIX);
            store
                .create_token(&format!("{}-m", caller.name()), &caller.name(), &switchyard::auth::secret::hash(&t), None, "test", Timestamp::now())
                .await
                .expect("token");
            t
        };
        let session = crate::console::sign_in(&app, &caller.name()).await;
        for (method, path, body, least, at) in &rows {
            if path == "/api/v1/openapi.json" || path == "/console/fn/get_signed_in_user" {
                continue;
            }
            let expected = caller.may(*least, *at);
            let (refused, answer) = if path.starts_with("/console/") {
                let form = if body.is_null() { String::new() } else { serde_urlencoded::to_string(body).expect("form") };
                let answer = crate::console::call_server_fn(&app, method, path, &form, Some(&session)).await;
                (answer.contains("\"forbidden\"") || answer.contains("\"unauthenticated\""), answer)
            } else {
                let mut req = app
                    .client
                    .request(Method::from_bytes(method.as_bytes()).expect("method"), format!("{}{path}", app.address))
                    .bearer_auth(&token);
                if !body.is_null() {
                    req = req.json(body);
                }
                let res = req.send().await.expect("sent");
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                (status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED, format!("{status} {text}"))
            };
            checked += 1;
            if expected == refused {
                failures.push(format!(
                    "{} {method} {path} ({at:?}, least {least:?}): expected {}, got {answer}",
                    caller.name(),
                    if expected { "allowed" } else { "refused" }
                ));
            } else if refused && path.starts_with("/api/") && !answer.contains("binding") {
                failures.push(format!("{} {method} {path}: the refusal names no binding: {answer}", caller.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} cells wrong:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 1000, "{checked}");
}

#[tokio::test]
async fn every_route_and_server_function_allows_exactly_the_bindings_of_its_environment_on_sqlite() {
    allow_deny_matrix(spawn_app().await).await;
}

#[tokio::test]
async fn every_route_and_server_function_allows_exactly_the_bindings_of_its_environment_on_postgresql() {
    let (app, mut admin, name) = crate::postgres::spawn_app_on_fresh_postgres().await;
    allow_deny_matrix(app).await;
    use sqlx::Executor;
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}

#[tokio::test]
async fn a_refusal_names_the_missing_binding_and_what_the_caller_has() {
    let app = spawn_app().await;
    app.register("chat", "v0", json!({"v": 0})).await;
    app.move_stage("chat:v0", "staging").await;
    app.post_json("/api/v1/clusters", &json!({"name": "prd-1", "environment": "production", "driver": "simulated"}))
        .await;
    let token = app.user_with_token("alice", Role::Viewer, None).await;
    let res = app
        .post_json("/api/v1/role-bindings", &json!({"user": "alice", "role": "approver", "environment": "staging"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post_json_as(&token, "/api/v1/clusters/prd-1/rollback", &json!({"reason": "r"}))
        .await;
    let error = crate::helpers::assert_error(res, StatusCode::FORBIDDEN).await;
    assert_eq!(
        error["message"],
        "rolling back prd-1 (environment production) needs an approver binding for production or all; \
         alice has: viewer on all, approver on staging"
    );
}

#[tokio::test]
async fn bindings_are_listed_added_and_removed_through_the_api_with_ledger_events_and_bad_input_refused() {
    let app = spawn_app().await;
    let token = app.user_with_token("dora", Role::Viewer, None).await;
    // Not yet a deployer in staging.
    let pin = json!({"version": "v404", "reason": "r"});
    let res = app.client.put(format!("{}/api/v1/environments/staging/pins/chat", app.address)).bearer_auth(&token).json(&pin).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .post_json("/api/v1/role-bindings", &json!({"user": "dora", "role": "deployer", "environment": "staging"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.expect("json");
    assert_eq!((created["user"].clone(), created["group"].clone(), created["role"].clone(), created["environment"].clone()), (json!("dora"), Value::Null, json!("deployer"), json!("staging")));
    // At once: now refused only for the missing version.
    let res = app.client.put(format!("{}/api/v1/environments/staging/pins/chat", app.address)).bearer_auth(&token).json(&pin).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let listed = app.get_json("/api/v1/role-bindings").await;
    assert!(listed["bindings"].as_array().expect("list").iter().any(|b| b == &created), "{listed}");
    for (body, status) in [
        (json!({"role": "viewer"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"user": "dora", "group": "g", "role": "viewer"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"user": "dora", "role": "root"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"user": "dora", "role": "viewer", "environment": "Not An Env"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"user": "nobody", "role": "viewer"}), StatusCode::NOT_FOUND),
        (json!({"user": "dora", "role": "viewer", "environment": "moon"}), StatusCode::NOT_FOUND),
        (json!({"user": "dora", "role": "deployer", "environment": "staging"}), StatusCode::CONFLICT),
    ] {
        let before = app.get_json("/api/v1/audit?limit=1").await["events"][0]["id"].clone();
        let res = app.post_json("/api/v1/role-bindings", &body).await;
        assert_eq!(res.status(), status, "{body}");
        assert_eq!(app.get_json("/api/v1/audit?limit=1").await["events"][0]["id"], before, "{body} changed nothing");
    }
    let id = created["id"].as_i64().expect("id");
    let res = app.request(Method::DELETE, &format!("/api/v1/role-bindings/{id}")).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.request(Method::DELETE, &format!("/api/v1/role-bindings/{id}")).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let events = app.get_json("/api/v1/audit?limit=20").await;
    let actions: Vec<&str> = events["events"].as_array().expect("events").iter().filter_map(|e| e["action"].as_str()).filter(|a| a.starts_with("binding.")).collect();
    assert_eq!(&actions[..2], ["binding.removed", "binding.created"]);
}
