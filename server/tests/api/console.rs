//! The console's sign-in, sessions and CSRF protection, over HTTP.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use switchyard::store::AuditQuery;
use switchyard_domain::access::Role;

use crate::helpers::{spawn_app, TestApp, TEST_PASSWORD};

/// A signed-in browser: its session cookie and CSRF token.
#[derive(Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// A client that shows redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Posts the sign-in form as a browser on the console's own page would.
pub async fn post_sign_in(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    no_redirects()
        .post(format!("{}/signin", app.address))
        .header(ORIGIN, &app.address)
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .expect("request sent")
}

/// Signs `username` in with `TEST_PASSWORD`.
pub async fn sign_in(app: &TestApp, username: &str) -> Browser {
    let res = post_sign_in(app, username, TEST_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set_cookie = res
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let user: Value = no_redirects()
        .get(format!("{}/console/fn/get_signed_in_user", app.address))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON");
    let csrf = user["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    Browser { cookie, csrf }
}

/// Calls a server function as the console's client does (same origin, CSRF
/// header); answers "<status> <body>".
pub async fn call_server_fn(
    app: &TestApp,
    method: &str,
    path: &str,
    form: &str,
    browser: Option<&Browser>,
) -> String {
    let client = no_redirects();
    let mut req = match method {
        "GET" => client.get(format!("{}{path}", app.address)),
        _ => client
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned()),
    }
    .header(ORIGIN, &app.address);
    if let Some(b) = browser {
        req = req
            .header(COOKIE, &b.cookie)
            .header("x-csrf-token", &b.csrf);
    }
    let res = req.send().await.expect("request sent");
    format!("{} {}", res.status(), res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn pages_send_signed_out_visitors_to_the_sign_in_page() {
    let app = spawn_app().await;
    let res = no_redirects()
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("request sent");
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(
        res.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
        Some("/signin")
    );
    let signin = no_redirects()
        .get(format!("{}/signin", app.address))
        .send()
        .await
        .expect("request sent");
    assert_eq!(signin.status(), StatusCode::OK);
    assert!(signin
        .text()
        .await
        .unwrap_or_default()
        .contains("name=\"password\""));
}

#[tokio::test]
async fn a_signed_in_user_sees_the_console_with_their_name_and_role_and_can_sign_out() {
    let app = spawn_app().await;
    app.user_with_token("bob", Role::Approver, None).await;
    let browser = sign_in(&app, "bob").await;
    let page = no_redirects()
        .get(format!("{}/", app.address))
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap_or_default();
    assert!(
        html.contains("bob") && html.contains("approver"),
        "the header names the user and role"
    );

    let out = no_redirects()
        .post(format!("{}/signout", app.address))
        .header(ORIGIN, &app.address)
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf_token", browser.csrf.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(
        out.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
        Some("/signin")
    );
    let after = call_server_fn(&app, "POST", "/console/fn/get_overview", "", Some(&browser)).await;
    assert!(after.contains("unauthenticated"), "{after}");
}

#[tokio::test]
async fn unknown_pages_answer_404_in_the_normal_layout_with_the_signed_in_user_and_a_way_home() {
    let app = spawn_app().await;
    app.user_with_token("bob", Role::Approver, None).await;
    let browser = sign_in(&app, "bob").await;
    for (path, fix) in [
        ("/no/such/page", ""),
        ("/models/no-such-model", ""),
        (
            "/clusters/no-such-cluster",
            "There is no cluster named no-such-cluster: the Clusters page lists every cluster.",
        ),
        (
            "/versions/chat:v9",
            "Version chat:v9 is not registered: check the id against the model",
        ),
    ] {
        let page = no_redirects()
            .get(format!("{}{path}", app.address))
            .header(COOKIE, &browser.cookie)
            .send()
            .await
            .expect("sent");
        assert_eq!(page.status(), StatusCode::NOT_FOUND, "{path}");
        let html = page.text().await.unwrap_or_default();
        assert!(
            html.contains("user-name\">bob"),
            "{path}: the header names the user: {html}"
        );
        assert!(
            !html.contains(">Sign in<"),
            "{path}: no sign-in link for a signed-in user"
        );
        assert!(html.contains("href=\"/\""), "{path}: a way home");
        // The refusal says what to do instead.
        assert!(html.contains(fix), "{path}: {fix}: {html}");
    }
}

#[tokio::test]
async fn a_cross_origin_form_post_to_a_server_function_with_a_valid_session_is_refused() {
    let app = spawn_app().await;
    app.user_with_token("alice", Role::Admin, None).await;
    let browser = sign_in(&app, "alice").await;
    // What a page on another site can make a browser send: a form post
    // with the cookie, but neither this origin nor the CSRF token.
    let forged = no_redirects()
        .post(format!("{}/console/fn/get_overview", app.address))
        .header(ORIGIN, "https://evil.example")
        .header(COOKIE, &browser.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.text().await.unwrap_or_default().contains("csrf"));

    // Same origin but without the token: refused too (SameSite alone is not enough).
    let tokenless = no_redirects()
        .post(format!("{}/console/fn/get_overview", app.address))
        .header(ORIGIN, &app.address)
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf_token", "guess")])
        .send()
        .await
        .expect("sent");
    assert_eq!(tokenless.status(), StatusCode::FORBIDDEN);

    // A forged sign-out is refused as well, and the session still works.
    let signout = no_redirects()
        .post(format!("{}/signout", app.address))
        .header(ORIGIN, "https://evil.example")
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf_token", browser.csrf.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(signout.status(), StatusCode::FORBIDDEN);
    let still = call_server_fn(&app, "POST", "/console/fn/get_overview", "", Some(&browser)).await;
    assert!(still.starts_with("200"), "{still}");
}

#[tokio::test]
async fn failed_sign_ins_are_ledger_events_without_the_password_and_are_rate_limited() {
    let app = spawn_app().await;
    app.user_with_token("carol", Role::Approver, None).await;
    for _ in 0..5 {
        let res = post_sign_in(&app, "carol", "wrong-password-123").await;
        assert_eq!(
            res.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
            Some("/signin?error=invalid&username=carol")
        );
    }
    // The right password no longer helps until the window passes: 429 with
    // Retry-After, and the sign-in page saying so with the username kept.
    let res = post_sign_in(&app, "carol", TEST_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "900");
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert!(header(&res, "content-type").starts_with("text/html"));
    assert!(res.headers().get(SET_COOKIE).is_none());
    let page = res.text().await.unwrap_or_default();
    assert!(
        page.contains("Signing in is paused") && page.contains("Try again in 15 minutes"),
        "{page}"
    );
    assert!(page.contains("value=\"carol\""), "{page}");
    // The form comes back with the username filled in.
    let form = no_redirects()
        .get(format!(
            "{}/signin?error=invalid&username=carol",
            app.address
        ))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .unwrap_or_default();
    assert!(form.contains("value=\"carol\""), "{form}");

    let q = AuditQuery {
        action: Some("user.sign_in_failed".into()),
        limit: 100,
        ..Default::default()
    };
    let events = app
        .store()
        .await
        .audit_page(&q)
        .await
        .expect("audit")
        .events;
    assert_eq!(events.len(), 6);
    for e in &events {
        assert_eq!(e.details["username"], "carol");
        let text = serde_json::to_string(e).expect("JSON");
        assert!(
            !text.contains("wrong-password-123") && !text.contains(TEST_PASSWORD),
            "{text}"
        );
    }
}

/// The server function's JSON answer, asserting that it succeeded (`ok`) or
/// was refused.
pub async fn server_fn_json(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    browser: &Browser,
    ok: bool,
) -> Value {
    let form = serde_urlencoded::to_string(form).expect("form body");
    let answer = call_server_fn(app, "POST", path, &form, Some(browser)).await;
    // "<code> <reason phrase> <body>"
    assert_eq!(answer.starts_with("200 "), ok, "{path}: {answer}");
    let status = answer
        .get(..3)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .map(|status| format!("{status} "))
        .unwrap_or_default();
    let body = answer.strip_prefix(status.as_str()).unwrap_or_default();
    let value: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {answer}"));
    if ok {
        return value;
    }
    // A refusal comes in the REST API's shape: `{"error": {"code", "message"}}`.
    value
        .get("error")
        .cloned()
        .unwrap_or_else(|| panic!("{path}: a refusal not in the API's error shape: {answer}"))
}

#[tokio::test]
async fn a_pending_promotion_is_compared_with_what_its_own_environment_runs_not_with_production() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    let res = app
        .put_json(
            "/api/v1/environments/production/pins/chat",
            &serde_json::json!({"version": "v1", "reason": "test"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.register("chat", "v2", serde_json::json!({"v": "v2"}))
        .await;
    assert_eq!(
        app.move_stage("chat:v2", "staging").await.status(),
        StatusCode::OK
    );
    let res = app
        .put_json(
            "/api/v1/environments/staging/pins/chat",
            &serde_json::json!({"version": "v2", "reason": "test"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.register("chat", "v3", serde_json::json!({"v": "v3"}))
        .await;
    app.user_with_token("dave", Role::Deployer, None).await;
    app.user_with_token("bob", Role::Approver, None).await;
    let (dave, bob) = (sign_in(&app, "dave").await, sign_in(&app, "bob").await);
    let p = server_fn_json(
        &app,
        "/console/fn/request_promotion",
        &[
            ("full_id", "chat:v3"),
            ("environment", "staging"),
            ("reason", "try it in staging"),
        ],
        &dave,
        true,
    )
    .await;
    assert_eq!(p["status"], "pending", "{p}");
    let inbox = server_fn_json(&app, "/console/fn/get_approvals", &[], &bob, true).await;
    let pending = &inbox["pending"][0];
    // Against staging's pin (v2), not production's version (v1).
    assert_eq!(pending["compared_with"], "chat:v2", "{pending}");
    assert_eq!(pending["production"], "chat:v1", "{pending}");
    let changed: Vec<&str> = pending["diff"]
        .as_array()
        .expect("diff")
        .iter()
        .filter(|l| l["kind"] != "same")
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(
        changed,
        vec!["  \"v\": \"v2\"", "  \"v\": \"v3\""],
        "{pending}"
    );
}

#[tokio::test]
async fn a_promotion_requested_and_approved_in_the_console_is_applied_by_the_second_approver() {
    let app = spawn_app().await;
    app.production_version("chat", "v1").await;
    let res = app
        .put_json(
            "/api/v1/environments/production/pins/chat",
            &serde_json::json!({"version": "v1", "reason": "test"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.register(
        "chat",
        "v2",
        serde_json::json!({"v": "v2", "temperature": 0.3}),
    )
    .await;
    assert_eq!(
        app.move_stage("chat:v2", "staging").await.status(),
        StatusCode::OK
    );
    for (name, role) in [
        ("dave", Role::Deployer),
        ("bob", Role::Approver),
        ("carol", Role::Approver),
    ] {
        app.user_with_token(name, role, None).await;
    }
    let (dave, bob, carol) = (
        sign_in(&app, "dave").await,
        sign_in(&app, "bob").await,
        sign_in(&app, "carol").await,
    );

    // A request without a reason is refused in the promotion rules' words, and nothing is made.
    let refused = server_fn_json(
        &app,
        "/console/fn/request_promotion",
        &[
            ("full_id", "chat:v2"),
            ("environment", "production"),
            ("reason", " "),
        ],
        &dave,
        false,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("a promotion needs a reason: say in `reason` why")),
        "{refused}"
    );
    let p = server_fn_json(
        &app,
        "/console/fn/request_promotion",
        &[
            ("full_id", "chat:v2"),
            ("environment", "production"),
            ("reason", "better answers"),
        ],
        &dave,
        true,
    )
    .await;
    assert_eq!(
        (
            p["status"].as_str(),
            p["required_approvals"].as_i64(),
            p["requested_by"].as_str()
        ),
        (Some("pending"), Some(2), Some("dave"))
    );
    let id = p["id"].as_i64().expect("id").to_string();

    // The inbox shows it with its config against production's.
    let inbox = server_fn_json(&app, "/console/fn/get_approvals", &[], &bob, true).await;
    let pending = &inbox["pending"][0];
    assert_eq!(
        pending["promotion"]["id"].as_i64().map(|i| i.to_string()),
        Some(id.clone())
    );
    assert_eq!(pending["production"], "chat:v1");
    assert_eq!(pending["compared_with"], "chat:v1");
    let changed: Vec<(String, String)> = pending["diff"]
        .as_array()
        .expect("diff")
        .iter()
        .filter(|l| l["kind"] != "same")
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or_default().to_owned(),
                l["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        vec![
            ("removed".to_owned(), "  \"v\": \"v1\"".to_owned()),
            ("added".to_owned(), "  \"temperature\": 0.3,".to_owned()),
            ("added".to_owned(), "  \"v\": \"v2\"".to_owned()),
        ]
    );

    let own = server_fn_json(
        &app,
        "/console/fn/approve_promotion",
        &[("id", &id)],
        &dave,
        false,
    )
    .await;
    assert_eq!(own["code"], "forbidden");
    let no_reason = server_fn_json(
        &app,
        "/console/fn/reject_promotion",
        &[("id", &id), ("reason", "")],
        &bob,
        false,
    )
    .await;
    assert!(
        no_reason["message"].as_str().is_some_and(
            |m| m.starts_with("a rejection needs a reason: say in `reason` what must change")
        ),
        "{no_reason}"
    );
    let without_reason = server_fn_json(
        &app,
        "/console/fn/approve_promotion",
        &[("id", &id), ("reason", "")],
        &bob,
        false,
    )
    .await;
    assert_eq!(without_reason["message"], "field \"reason\" is required");
    let first = server_fn_json(
        &app,
        "/console/fn/approve_promotion",
        &[("id", &id), ("reason", "diff reviewed")],
        &bob,
        true,
    )
    .await;
    assert_eq!(
        (
            first["status"].as_str(),
            first["approvals"][0]["reason"].as_str()
        ),
        (Some("pending"), Some("diff reviewed"))
    );
    let twice = server_fn_json(
        &app,
        "/console/fn/approve_promotion",
        &[("id", &id), ("reason", "again")],
        &bob,
        false,
    )
    .await;
    assert!(
        twice["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already approved"),
        "{twice}"
    );
    let done = server_fn_json(
        &app,
        "/console/fn/approve_promotion",
        &[("id", &id), ("reason", "reviewed")],
        &carol,
        true,
    )
    .await;
    assert_eq!(done["status"], "applied");

    assert_eq!(
        app.get_json("/api/v1/resolve/chat?env=production").await["full_id"],
        "chat:v2"
    );
    let inbox = server_fn_json(&app, "/console/fn/get_approvals", &[], &dave, true).await;
    assert_eq!(inbox["pending"], serde_json::json!([]));
    assert_eq!(inbox["decided"][0]["status"], "applied");
    let approved = app
        .get_json("/api/v1/audit?action=promotion.approved")
        .await;
    assert_eq!(approved["events"][0]["actor"], "carol");
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn session_responses_are_never_cached_and_pages_forbid_framing_with_a_content_policy() {
    let app = spawn_app().await;
    app.user_with_token("bob", Role::Approver, None).await;
    let signed_in = post_sign_in(&app, "bob", TEST_PASSWORD).await;
    assert_eq!(header(&signed_in, "cache-control"), "no-store");
    let refused = post_sign_in(&app, "bob", "wrong").await;
    assert_eq!(header(&refused, "cache-control"), "no-store");
    let sign_in_page = no_redirects()
        .get(format!("{}/signin", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&sign_in_page, "cache-control"), "no-store");

    let browser = sign_in(&app, "bob").await;
    let forged = no_redirects()
        .post(format!("{}/console/fn/get_overview", app.address))
        .header(ORIGIN, "https://evil.example")
        .header(COOKIE, &browser.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&forged, "cache-control"), "no-store");

    let page = no_redirects()
        .get(format!("{}/", app.address))
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    let csp = header(&page, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "'wasm-unsafe-eval'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }

    let out = no_redirects()
        .post(format!("{}/signout", app.address))
        .header(ORIGIN, &app.address)
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf_token", browser.csrf.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&out, "cache-control"), "no-store");
    let signed_out = no_redirects()
        .get(format!("{}/", app.address))
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&signed_out, "cache-control"), "no-store");
}

#[tokio::test]
async fn console_refusals_answer_with_their_4xx_status_not_500() {
    let app = spawn_app().await;
    app.register("chat", "v1", serde_json::json!({})).await;
    let browser = sign_in(&app, "test-admin").await;
    let no_reason = call_server_fn(
        &app,
        "POST",
        "/console/fn/request_promotion",
        "full_id=chat%3Av1&environment=production&reason=",
        Some(&browser),
    )
    .await;
    assert!(no_reason.starts_with("422 "), "{no_reason}");
    // The REST API's error shape, so one client reads both.
    let refusal: Value =
        serde_json::from_str(no_reason.trim_start_matches("422 Unprocessable Entity "))
            .expect("JSON");
    assert_eq!(refusal["error"]["code"], "invalid_input", "{no_reason}");
    assert!(refusal["error"]["message"].is_string(), "{no_reason}");
    let illegal = call_server_fn(
        &app,
        "POST",
        "/console/fn/move_stage",
        "full_id=chat%3Av1&to=retired&reason=why",
        Some(&browser),
    )
    .await;
    assert!(illegal.starts_with("409 "), "{illegal}");
    let unknown = call_server_fn(
        &app,
        "POST",
        "/console/fn/move_stage",
        "full_id=chat%3Av9&to=staging&reason=why",
        Some(&browser),
    )
    .await;
    assert!(unknown.starts_with("404 "), "{unknown}");
    let signed_out = call_server_fn(&app, "POST", "/console/fn/get_overview", "", None).await;
    assert!(signed_out.starts_with("401 "), "{signed_out}");
}

#[tokio::test]
async fn the_access_page_lists_bindings_and_greys_out_changes_for_non_admins_and_adds_without_javascript(
) {
    let app = spawn_app().await;
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("vic", Role::Viewer, None).await;
    let page = |browser: Browser| {
        let app = &app;
        async move {
            no_redirects()
                .get(format!("{}/access", app.address))
                .header(COOKIE, &browser.cookie)
                .send()
                .await
                .expect("sent")
                .text()
                .await
                .unwrap_or_default()
        }
    };
    let vic = sign_in(&app, "vic").await;
    let html = page(vic.clone()).await;
    assert!(html.contains("user vic"), "{html}");
    assert!(
        html.contains(
            "Changing role bindings needs an admin binding for all; vic has: viewer on all"
        ),
        "the viewer is told why the buttons are grey: {html}"
    );
    assert!(html.contains("Your bindings: viewer on all."), "{html}");
    let ada = sign_in(&app, "ada").await;
    let html = page(ada.clone()).await;
    assert!(!html.contains("needs an admin binding"), "{html}");
    // A form post without JavaScript: the CSRF token as a field, then a redirect back.
    let res = no_redirects()
        .post(format!("{}/console/fn/add_binding", app.address))
        .header(ORIGIN, &app.address)
        .header(COOKIE, &ada.cookie)
        .header("referer", format!("{}/access", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf_token={}&subject_kind=group&subject=platform&role=deployer&environment=staging",
            ada.csrf
        ))
        .send()
        .await
        .expect("sent");
    assert!(
        res.status().is_redirection() || res.status().is_success(),
        "{}",
        res.status()
    );
    let html = page(ada).await;
    assert!(html.contains("group platform"), "{html}");
    let listed = app.get_json("/api/v1/role-bindings").await;
    assert!(
        listed["bindings"]
            .as_array()
            .expect("list")
            .iter()
            .any(|b| b["group"] == "platform"
                && b["environment"] == "staging"
                && b["created_by"] == "ada"),
        "{listed}"
    );
}
