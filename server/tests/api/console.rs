//! The console's sign-in, sessions and CSRF protection, over HTTP.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use switchyard::store::AuditQuery;
use switchyard_domain::access::Role;

use crate::helpers::{spawn_app, TestApp, TEST_PASSWORD};

/// A signed-in browser: its session cookie and CSRF token.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
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
    let set_cookie = res.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("a session cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
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
    let csrf = user["csrf_token"].as_str().expect("a CSRF token").to_owned();
    Browser { cookie, csrf }
}

/// Calls a server function as the console's client does (same origin, CSRF
/// header); answers "<status> <body>".
pub async fn call_server_fn(app: &TestApp, method: &str, path: &str, form: &str, browser: Option<&Browser>) -> String {
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
        req = req.header(COOKIE, &b.cookie).header("x-csrf-token", &b.csrf);
    }
    let res = req.send().await.expect("request sent");
    format!("{} {}", res.status(), res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn pages_send_signed_out_visitors_to_the_sign_in_page() {
    let app = spawn_app().await;
    let res = no_redirects().get(format!("{}/", app.address)).send().await.expect("request sent");
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/signin"));
    let signin = no_redirects().get(format!("{}/signin", app.address)).send().await.expect("request sent");
    assert_eq!(signin.status(), StatusCode::OK);
    assert!(signin.text().await.unwrap_or_default().contains("name=\"password\""));
}

#[tokio::test]
async fn a_signed_in_user_sees_the_console_with_their_name_and_role_and_can_sign_out() {
    let app = spawn_app().await;
    app.user_with_token("bob", Role::Approver, None).await;
    let browser = sign_in(&app, "bob").await;
    let page = no_redirects().get(format!("{}/", app.address)).header(COOKIE, &browser.cookie).send().await.expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap_or_default();
    assert!(html.contains("bob") && html.contains("approver"), "the header names the user and role");

    let out = no_redirects()
        .post(format!("{}/signout", app.address))
        .header(ORIGIN, &app.address)
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf_token", browser.csrf.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(out.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/signin"));
    let after = call_server_fn(&app, "POST", "/console/fn/get_overview", "", Some(&browser)).await;
    assert!(after.contains("unauthenticated"), "{after}");
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
        assert_eq!(res.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/signin?error=invalid"));
    }
    // The right password no longer helps until the window passes.
    let res = post_sign_in(&app, "carol", TEST_PASSWORD).await;
    assert_eq!(res.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/signin?error=rate_limited"));
    assert!(res.headers().get(SET_COOKIE).is_none());

    let q = AuditQuery { action: Some("user.sign_in_failed".into()), limit: 100, ..Default::default() };
    let events = app.store().await.audit_page(&q).await.expect("audit").events;
    assert_eq!(events.len(), 6);
    for e in &events {
        assert_eq!(e.details["username"], "carol");
        let text = serde_json::to_string(e).expect("JSON");
        assert!(!text.contains("wrong-password-123") && !text.contains(TEST_PASSWORD), "{text}");
    }
}
