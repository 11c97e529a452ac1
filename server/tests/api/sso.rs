//! Single sign-on and workload identity against a real OpenID provider:
//! panva's `oidc-provider` (server/tests/oidc/provider.mjs, installed by
//! scripts/peers.sh) on loopback. The browser is played by an HTTP client
//! with a cookie jar that follows the provider's real login form.
//!
//! Without node or the provider's node_modules the tests say so and pass,
//! unless `SWITCHYARD_PEERS_REQUIRED=1` (the test command sets it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::sso::{JwtSettings, OidcSettings, SsoSettings};
use switchyard_domain::ledger::action;
use switchyard_domain::sso::RoleMap;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{spawn_app_with_sso, TestApp, TEST_PASSWORD};

const ROLE_MAP: &str = "ml-admins=admin,ml-risk=approver,platform=approver,data-science=deployer,repository:acme/models=deployer";

fn provider_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs")
}

/// Whether the provider can run here; otherwise the test is skipped (or fails
/// when the peers are required).
fn provider_available() -> bool {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oidc/node_modules/oidc-provider")
        .is_dir();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if installed && node {
        return true;
    }
    assert!(
        std::env::var("SWITCHYARD_PEERS_REQUIRED").is_err(),
        "node or oidc-provider missing: run scripts/peers.sh"
    );
    eprintln!("SKIPPED: node or oidc-provider missing (scripts/peers.sh installs them)");
    false
}

/// The users file the provider re-reads at each sign-in.
fn write_users(path: &Path, alice_groups: &[&str]) {
    let users = json!({
        "alice": {"password": "alice-pw", "name": "Alice Admin", "email": "alice@example.test", "groups": alice_groups},
        "bob": {"password": "bob-pw", "name": "Bob Risk", "email": "bob@example.test", "groups": ["ml-risk"]},
        "erin": {"password": "erin-pw", "name": "Erin Nogroup", "email": "erin@example.test", "groups": ["marketing"]},
        "test-admin": {"password": "x-pw", "name": "Impostor", "email": "impostor@example.test", "groups": ["ml-admins"]},
    });
    std::fs::write(path, users.to_string()).expect("users file written");
}

/// A running provider; killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
    port: u16,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

struct ProviderSetup<'a> {
    dir: &'a Path,
    redirect: String,
    port: u16,
    kids: &'a str,
    issuer: Option<String>,
}

async fn start_provider(setup: ProviderSetup<'_>) -> Provider {
    let mut cmd = Command::new("node");
    cmd.arg(provider_script())
        .env("OIDC_PORT", setup.port.to_string())
        .env("RP_REDIRECT", &setup.redirect)
        .env("OIDC_USERS_FILE", setup.dir.join("users.json"))
        .env("OIDC_KEY_DIR", setup.dir.join("keys"))
        .env("OIDC_KIDS", setup.kids)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(issuer) = &setup.issuer {
        cmd.env("OIDC_ISSUER", issuer);
    }
    let mut child = cmd.spawn().expect("node starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("provider output") {
            if let Some(rest) = line.strip_prefix("oidc-provider ") {
                let (issuer, port) = rest.split_once(" ready on ").expect("ready line");
                return (issuer.to_owned(), port.trim().parse::<u16>().expect("port"));
            }
        }
        panic!("the provider exited before it was ready");
    })
    .await
    .expect("the provider is ready within 20 s");
    // Keep reading its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Provider {
        child,
        issuer: ready.0,
        port: ready.1,
    }
}

/// A free loopback port (the server's, which the provider must know first).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn oidc_settings(issuer: &str, server_port: u16) -> OidcSettings {
    OidcSettings {
        issuer: issuer.to_owned(),
        client_id: "switchyard".into(),
        client_secret: "switchyard-secret".into(),
        scopes: ["openid", "profile", "email", "groups"]
            .map(String::from)
            .to_vec(),
        groups_claim: "groups".into(),
        redirect_url: format!("http://127.0.0.1:{server_port}/auth/oidc/callback"),
        name: "Example IdP".into(),
    }
}

fn settings(oidc: Option<OidcSettings>, jwt: Option<JwtSettings>, local: bool) -> SsoSettings {
    SsoSettings {
        oidc,
        jwt,
        role_map: RoleMap::parse(ROLE_MAP).expect("role map"),
        local_sign_in: local,
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sy-sso-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A browser: no redirects followed, one cookie jar for 127.0.0.1 (cookies
/// are not kept apart by port, as in a real browser).
struct Browser {
    client: reqwest::Client,
    jar: HashMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &reqwest::Response) {
        for value in res.headers().get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let first = value.split(';').next().unwrap_or_default();
            let Some((name, v)) = first.split_once('=') else {
                continue;
            };
            let gone = v.is_empty()
                || value.to_ascii_lowercase().contains("max-age=0")
                || value
                    .to_ascii_lowercase()
                    .contains("expires=thu, 01 jan 1970");
            if gone {
                self.jar.remove(name.trim());
            } else {
                self.jar.insert(name.trim().to_owned(), v.to_owned());
            }
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let res = self
            .client
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET sent");
        self.keep(&res);
        res
    }

    async fn post_form(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(url)
            .header(COOKIE, self.cookie_header())
            .form(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.expect("POST sent");
        self.keep(&res);
        res
    }
}

fn location(res: &reqwest::Response, base: &str) -> String {
    let loc = res
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("a redirect, got {}", res.status()))
        .to_str()
        .expect("ascii location");
    url::Url::parse(base)
        .expect("base")
        .join(loc)
        .expect("location resolves")
        .to_string()
}

/// Starts a sign-in at `app` and follows it through the provider's login
/// form as `login`; answers the callback URL the provider sent back.
async fn through_provider(b: &mut Browser, app: &TestApp, login: &str, password: &str) -> String {
    let res = b.get(&format!("{}/auth/oidc/start", app.address)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let authorize = location(&res, &app.address);
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(
        authorize.contains("nonce=") && authorize.contains("state="),
        "{authorize}"
    );
    let res = b.get(&authorize).await;
    let interaction = location(&res, &authorize);
    // Signed in at the provider already (its session cookie): straight back.
    if interaction.starts_with(&format!("{}/auth/oidc/callback?", app.address)) {
        return interaction;
    }
    let page = b.get(&interaction).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("login page");
    assert!(html.contains("<form"), "the provider's login form: {html}");
    let res = b
        .post_form(
            &interaction,
            &[("login", login), ("password", password)],
            None,
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the provider accepted {login}"
    );
    let resume = location(&res, &interaction);
    let res = b.get(&resume).await;
    let callback = location(&res, &resume);
    assert!(
        callback.starts_with(&format!("{}/auth/oidc/callback?", app.address)),
        "{callback}"
    );
    callback
}

/// The signed-in user as the console sees them (`null` when signed out).
async fn signed_in_user(b: &mut Browser, app: &TestApp) -> Value {
    let res = b
        .get(&format!("{}/console/fn/get_signed_in_user", app.address))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("JSON")
}

async fn full_sign_in(
    b: &mut Browser,
    app: &TestApp,
    login: &str,
    password: &str,
) -> reqwest::Response {
    let callback = through_provider(b, app, login, password).await;
    b.get(&callback).await
}

fn error_code(url: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn users(app: &TestApp) -> Vec<String> {
    app.store()
        .await
        .list_users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.username)
        .collect()
}

async fn events(app: &TestApp, action: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!("/api/v1/audit?action={action}&limit=100"))
        .await;
    page["events"].as_array().cloned().unwrap_or_default()
}

async fn sso_sign_in_flow(database_url: Option<String>) {
    let dir = temp_dir();
    write_users(&dir.join("users.json"), &["ml-admins", "platform"]);
    let server_port = free_port();
    let redirect = format!("http://127.0.0.1:{server_port}/auth/oidc/callback");
    let provider = start_provider(ProviderSetup {
        dir: &dir,
        redirect,
        port: 0,
        kids: "k1",
        issuer: None,
    })
    .await;
    let app = spawn_app_with_sso(
        database_url,
        format!("127.0.0.1:{server_port}").parse().expect("addr"),
        settings(
            Some(oidc_settings(&provider.issuer, server_port)),
            None,
            true,
        ),
    )
    .await;

    // The sign-in page offers the provider, and the local form.
    let page = reqwest::get(format!("{}/signin", app.address))
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("Sign in with Example IdP") && page.contains("/auth/oidc/start"),
        "{page}"
    );
    assert!(page.contains("name=\"password\""));

    // First sign-in: alice is created with her groups and the highest role they give.
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &app, "alice", "alice-pw").await;
    assert!(
        callback.contains("iss="),
        "RFC 9207 iss parameter: {callback}"
    );
    let res = b.get(&callback).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(b.jar.contains_key("sy_session"));
    assert!(
        !b.jar.contains_key("sy_sso_state"),
        "the state cookie is cleared"
    );
    let me = signed_in_user(&mut b, &app).await;
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("alice"), Some("admin"))
    );
    let store = app.store().await;
    assert_eq!(
        store.user_groups("alice").await.expect("groups"),
        ["ml-admins", "platform"]
    );
    let account = store
        .sso_account("alice")
        .await
        .expect("read")
        .expect("an SSO account");
    assert_eq!(
        (account.issuer.as_str(), account.subject.as_str()),
        (provider.issuer.as_str(), "alice")
    );
    assert_eq!(account.display_name.as_deref(), Some("Alice Admin"));
    assert_eq!(account.email.as_deref(), Some("alice@example.test"));
    let created = events(&app, action::USER_CREATED).await;
    let alice_created: Vec<&Value> = created
        .iter()
        .filter(|e| e["details"]["username"] == "alice")
        .collect();
    assert_eq!(alice_created.len(), 1);
    assert_eq!(alice_created[0]["details"]["source"], "sso");
    // The console works with that session: a page renders for her.
    let overview = b.get(&format!("{}/", app.address)).await;
    assert_eq!(overview.status(), StatusCode::OK);

    // Replaying the callback (same state and code) is refused; nothing changes.
    let users_before = users(&app).await;
    let replay = b.get(&callback).await;
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        error_code(&location(&replay, &app.address)),
        "sso_unknown_state"
    );
    let failed = events(&app, action::SIGN_IN_FAILED).await;
    assert_eq!(
        failed.len(),
        1,
        "the refused callback is in the ledger: {failed:?}"
    );
    assert_eq!(failed[0]["details"]["username"], "sso");

    // A callback without a started sign-in (state cookie and query agree).
    let mut stranger = Browser::new();
    stranger.jar.insert("sy_sso_state".into(), "made-up".into());
    let res = stranger
        .get(&format!(
            "{}/auth/oidc/callback?code=abc&state=made-up",
            app.address
        ))
        .await;
    assert_eq!(
        error_code(&location(&res, &app.address)),
        "sso_unknown_state"
    );
    // A callback whose state another browser started (no cookie): refused, and
    // the started sign-in stays usable by its own browser.
    let mut other = Browser::new();
    let cb = through_provider(&mut other, &app, "bob", "bob-pw").await;
    let res = Browser::new().get(&cb).await;
    assert_eq!(
        error_code(&location(&res, &app.address)),
        "sso_unknown_state"
    );
    assert_eq!(other.get(&cb).await.status(), StatusCode::OK);
    assert_eq!(signed_in_user(&mut other, &app).await["role"], "approver");

    // A code paired with another sign-in's state: PKCE (before the nonce) refuses it.
    let mut mixer = Browser::new();
    let cb_a = through_provider(&mut mixer, &app, "alice", "alice-pw").await;
    let state_cookie_a = mixer.jar.get("sy_sso_state").cloned().expect("state a");
    let cb_b = through_provider(&mut mixer, &app, "alice", "alice-pw").await;
    let code_a = url::Url::parse(&cb_a)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code a");
    let mut swapped = url::Url::parse(&cb_b).expect("url");
    let pairs: Vec<(String, String)> = swapped
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                code_a.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    swapped.query_pairs_mut().clear().extend_pairs(pairs);
    assert_ne!(state_cookie_a, mixer.jar["sy_sso_state"]);
    let res = mixer.get(swapped.as_str()).await;
    assert_eq!(
        error_code(&location(&res, &app.address)),
        "sso_exchange_failed"
    );
    assert_eq!(
        users(&app).await.len(),
        users_before.len() + 1,
        "only bob was added"
    );

    // Started at one server, finished at another behind the same address (a
    // load balancer): the started sign-in is in the shared database.
    let second = app
        .another_server_with_sso(settings(
            Some(oidc_settings(&provider.issuer, server_port)),
            None,
            true,
        ))
        .await;
    let mut roaming = Browser::new();
    let cb = through_provider(&mut roaming, &app, "bob", "bob-pw").await;
    let res = roaming
        .get(&cb.replacen(&app.address, &second.address, 1))
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the second server finished the sign-in"
    );
    let me = roaming
        .get(&format!("{}/console/fn/get_signed_in_user", second.address))
        .await;
    assert_eq!(me.json::<Value>().await.expect("JSON")["username"], "bob");
    // …and the first cannot finish it again.
    let res = roaming.get(&cb).await;
    assert_eq!(
        error_code(&location(&res, &app.address)),
        "sso_unknown_state"
    );

    // A person whose groups map to no role is refused with the groups named; no user.
    let mut erin = Browser::new();
    let res = full_sign_in(&mut erin, &app, "erin", "erin-pw").await;
    let to = location(&res, &app.address);
    assert_eq!(error_code(&to), "sso_no_role");
    assert!(to.contains("groups=marketing"), "{to}");
    assert!(!users(&app).await.iter().any(|u| u.contains("erin")));
    let page = reqwest::get(&to)
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("none of your groups gives a role") && page.contains("marketing"),
        "{page}"
    );

    // Once an admin binds her group in Switchyard (here: deployer in staging
    // only), she signs in without any role map entry, and holds just that.
    let bound = app
        .post_json(
            "/api/v1/role-bindings",
            &json!({"group": "marketing", "role": "deployer", "environment": "staging"}),
        )
        .await;
    assert_eq!(bound.status(), StatusCode::CREATED);
    let mut erin = Browser::new();
    full_sign_in(&mut erin, &app, "erin", "erin-pw").await;
    let me = signed_in_user(&mut erin, &app).await;
    assert!(me["username"].as_str().is_some_and(|u| u.starts_with("erin")), "{me}");
    let bindings: Value = app
        .get("/api/v1/role-bindings")
        .await
        .json()
        .await
        .expect("JSON");
    let erins: Vec<&Value> = bindings["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .filter(|b| b["user"] == me["username"])
        .collect();
    assert!(erins.is_empty(), "no role-map binding without a mapped role: {erins:?}");
    // People whose groups the role map names hold its role as a binding on all.
    assert!(
        bindings["bindings"]
            .as_array()
            .expect("bindings")
            .iter()
            .any(|b| b["created_by"] == "sso:role-map" && b["user"].is_string()),
        "{bindings}"
    );

    // The provider's "test-admin" never takes over the local test-admin.
    let mut impostor = Browser::new();
    full_sign_in(&mut impostor, &app, "test-admin", "x-pw").await;
    let me = signed_in_user(&mut impostor, &app).await;
    assert_ne!(me["username"], "test-admin");
    assert!(me["username"]
        .as_str()
        .expect("name")
        .starts_with("test-admin-"));

    // The provider moves alice to data-science: her next sign-in makes her a deployer.
    write_users(&dir.join("users.json"), &["data-science"]);
    let mut b2 = Browser::new();
    full_sign_in(&mut b2, &app, "alice", "alice-pw").await;
    let me = signed_in_user(&mut b2, &app).await;
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("alice"), Some("deployer"))
    );
    assert_eq!(
        app.store()
            .await
            .user_groups("alice")
            .await
            .expect("groups"),
        ["data-science"]
    );
    let changed = events(&app, action::USER_ROLE_CHANGED).await;
    assert!(changed
        .iter()
        .any(|e| e["details"]["username"] == "alice" && e["details"]["before"] == "admin"));
    let groups_changed = events(&app, action::USER_GROUPS_CHANGED).await;
    assert!(groups_changed
        .iter()
        .any(|e| e["details"]["groups"] == json!(["data-science"])));

    // Sign-out ends the session and continues to the provider's end-session endpoint.
    let csrf = me["csrf_token"].as_str().expect("csrf").to_owned();
    let res = b2
        .post_form(
            &format!("{}/signout", app.address),
            &[("csrf_token", &csrf)],
            Some(&app.address),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.expect("page");
    assert!(
        page.contains(&format!("{}/session/end?", provider.issuer)),
        "{page}"
    );
    assert!(page.contains("id_token_hint="), "{page}");
    assert!(page.contains("post_logout_redirect_uri="), "{page}");
    assert!(signed_in_user(&mut b2, &app).await.is_null());
    // The other session of alice is still there (signing out ends only this one).
    assert_eq!(signed_in_user(&mut b, &app).await["username"], "alice");

    // The provider rotates its keys (new k2 signs, k1 still published): the
    // next sign-in's ID token names k2, which the server fetches.
    let port = provider.port;
    drop(provider);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let redirect = format!("http://127.0.0.1:{server_port}/auth/oidc/callback");
    let _rotated = start_provider(ProviderSetup {
        dir: &dir,
        redirect,
        port,
        kids: "k2,k1",
        issuer: None,
    })
    .await;
    tokio::time::sleep(switchyard::sso::KEY_REFETCH_INTERVAL).await;
    let mut b3 = Browser::new();
    let res = full_sign_in(&mut b3, &app, "bob", "bob-pw").await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "signed in with the rotated key"
    );
    assert_eq!(signed_in_user(&mut b3, &app).await["username"], "bob");

    // A disabled user is refused at the next sign-in, and nothing about them changes.
    app.store()
        .await
        .disable_user("bob", "test-admin", switchyard_domain::Timestamp::now())
        .await
        .expect("bob disabled");
    let res = full_sign_in(&mut b3, &app, "bob", "bob-pw").await;
    assert_eq!(error_code(&location(&res, &app.address)), "sso_disabled");
    assert!(signed_in_user(&mut b3, &app).await.is_null());

    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh database `sy_api_<random>` on `SWITCHYARD_TEST_PG`: its URL, an
/// admin connection and its name (to drop it).
async fn fresh_postgres_database() -> (String, sqlx::PgConnection, String) {
    use sqlx::{Connection, Executor};
    let admin_url = std::env::var("SWITCHYARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("sy_api_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect(
        "PostgreSQL is reachable at SWITCHYARD_TEST_PG (start it, or point the variable at one)",
    );
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database name");
    (format!("{base}/{name}"), admin, name)
}

#[tokio::test]
async fn people_sign_in_through_the_provider_and_follow_its_groups_on_sqlite() {
    if provider_available() {
        sso_sign_in_flow(None).await;
    }
}

#[tokio::test]
async fn people_sign_in_through_the_provider_and_follow_its_groups_on_postgresql() {
    if !provider_available() {
        return;
    }
    let (url, mut admin, name) = fresh_postgres_database().await;
    sso_sign_in_flow(Some(url)).await;
    use sqlx::Executor;
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}

#[tokio::test]
async fn a_provider_that_is_down_or_answers_garbage_is_named_and_local_sign_in_still_works() {
    // Down: nothing listens on the issuer's port.
    let server_port = free_port();
    let down = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_app_with_sso(
        None,
        format!("127.0.0.1:{server_port}").parse().expect("addr"),
        settings(Some(oidc_settings(&down, server_port)), None, true),
    )
    .await;
    let mut b = Browser::new();
    let res = b.get(&format!("{}/auth/oidc/start", app.address)).await;
    assert_eq!(
        error_code(&location(&res, &app.address)),
        "sso_provider_unavailable"
    );
    let page = reqwest::get(format!(
        "{}/signin?error=sso_provider_unavailable",
        app.address
    ))
    .await
    .expect("page")
    .text()
    .await
    .expect("html");
    assert!(page.contains("cannot be reached"), "{page}");
    let users_before = users(&app).await;
    // Local sign-in still works.
    let res = b
        .post_form(
            &format!("{}/signin", app.address),
            &[("username", "test-admin"), ("password", TEST_PASSWORD)],
            Some(&app.address),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res, &app.address), format!("{}/", app.address));
    assert_eq!(signed_in_user(&mut b, &app).await["username"], "test-admin");
    assert_eq!(users(&app).await, users_before);

    // Garbage: the "provider" answers HTML where discovery wants JSON.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let garbage_url = format!("http://{}", garbage.local_addr().expect("addr"));
    let router = axum::Router::new().fallback(|| async { "<html>not a provider</html>" });
    tokio::spawn(async move { axum::serve(garbage, router).await });
    let server_port = free_port();
    let app = spawn_app_with_sso(
        None,
        format!("127.0.0.1:{server_port}").parse().expect("addr"),
        settings(Some(oidc_settings(&garbage_url, server_port)), None, true),
    )
    .await;
    let res = Browser::new()
        .get(&format!("{}/auth/oidc/start", app.address))
        .await;
    assert_eq!(
        error_code(&location(&res, &app.address)),
        "sso_provider_unavailable"
    );
    assert_eq!(users(&app).await, ["test-admin"]);
}

#[tokio::test]
async fn local_sign_in_can_be_switched_off() {
    if !provider_available() {
        return;
    }
    let dir = temp_dir();
    write_users(&dir.join("users.json"), &["ml-admins"]);
    let server_port = free_port();
    let redirect = format!("http://127.0.0.1:{server_port}/auth/oidc/callback");
    let provider = start_provider(ProviderSetup {
        dir: &dir,
        redirect,
        port: 0,
        kids: "k1",
        issuer: None,
    })
    .await;
    let app = spawn_app_with_sso(
        None,
        format!("127.0.0.1:{server_port}").parse().expect("addr"),
        settings(
            Some(oidc_settings(&provider.issuer, server_port)),
            None,
            false,
        ),
    )
    .await;
    let page = reqwest::get(format!("{}/signin", app.address))
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Sign in with Example IdP"));
    assert!(!page.contains("name=\"password\""), "no local form: {page}");
    let mut b = Browser::new();
    let res = b
        .post_form(
            &format!("{}/signin", app.address),
            &[("username", "test-admin"), ("password", TEST_PASSWORD)],
            Some(&app.address),
        )
        .await;
    assert_eq!(error_code(&location(&res, &app.address)), "local_off");
    assert!(signed_in_user(&mut b, &app).await.is_null());
    // Through the provider it works.
    assert_eq!(
        full_sign_in(&mut b, &app, "alice", "alice-pw")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(signed_in_user(&mut b, &app).await["role"], "admin");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- workload identity ----

async fn client_credentials(issuer: &str, client: &str, resource: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let res = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(client, Some(format!("{client}-secret")))
        .form(&form)
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), StatusCode::OK, "a token for {client}");
    let body: Value = res.json().await.expect("JSON");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json")
}

async fn api_get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn refused_with(app: &TestApp, token: &str, fragment: &str) {
    let (status, body) = api_get(app, token, "/api/v1/models").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(fragment),
        "{message:?} should say {fragment:?}"
    );
    assert_eq!(body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn pipelines_call_the_api_with_the_providers_jwts_and_bad_tokens_are_refused_with_the_reason()
{
    if !provider_available() {
        return;
    }
    let dir = temp_dir();
    write_users(&dir.join("users.json"), &["ml-admins"]);
    let provider = start_provider(ProviderSetup {
        dir: &dir,
        redirect: "http://127.0.0.1:1/auth/oidc/callback".into(),
        port: 0,
        kids: "k1",
        issuer: None,
    })
    .await;
    let jwt = JwtSettings {
        issuer: provider.issuer.clone(),
        audience: "switchyard".into(),
        jwks_url: None,
        subject_claim: "sub".into(),
        group_claims: vec!["repository".into()],
        leeway_seconds: 0,
    };
    let app = spawn_app_with_sso(
        None,
        "127.0.0.1:0".parse().expect("addr"),
        settings(None, Some(jwt), true),
    )
    .await;

    // A valid token: the pipeline reads and registers, and the ledger names it.
    let token = client_credentials(&provider.issuer, "ci-deploy", None).await;
    assert_eq!(claims_of(&token)["repository"], "acme/models");
    let (status, _) = api_get(&app, &token, "/api/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let res = app
        .post_json_as(
            &token,
            "/api/v1/models/chat/versions",
            &json!({"version": "v1", "config": {"t": 1}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let registered = events(&app, action::VERSION_REGISTERED).await;
    assert_eq!(registered[0]["actor"], "jwt:ci-deploy");
    // Deployer, not admin: refused with 403 naming the role.
    let res = app
        .post_json_as(
            &token,
            "/api/v1/versions/chat:v1/stage",
            &json!({"to": "retired", "early": true, "reason": "r"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Valid, but its repository maps to no role.
    let other = client_credentials(&provider.issuer, "ci-other", None).await;
    let (status, body) = api_get(&app, &other, "/api/v1/models").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("repository:acme/website"));

    // Wrong audience.
    let elsewhere = client_credentials(&provider.issuer, "ci-deploy", Some("urn:elsewhere")).await;
    assert_eq!(claims_of(&elsewhere)["aud"], "elsewhere");
    refused_with(&app, &elsewhere, "another audience").await;

    // Forged: the claims changed under the provider's signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = claims_of(&token);
    claims["repository"] = json!("acme/everything");
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    refused_with(&app, &forged, "signature does not verify").await;

    // Unsigned (alg none), and an HMAC "signed" one.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    refused_with(&app, &none, "alg none").await;
    let hs = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS256", "kid": "k1"})),
        parts[1],
        parts[2]
    );
    refused_with(&app, &hs, "HS256").await;
    refused_with(&app, "not.a.jwt", "malformed").await;

    // Expired: ci-short's tokens live one second (the test allows no leeway).
    let short = client_credentials(&provider.issuer, "ci-short", None).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    refused_with(&app, &short, "expired").await;

    // Wrong issuer: another provider with the same key.
    let impostor = start_provider(ProviderSetup {
        dir: &dir,
        redirect: "http://127.0.0.1:1/auth/oidc/callback".into(),
        port: 0,
        kids: "k1",
        issuer: None,
    })
    .await;
    let foreign = client_credentials(&impostor.issuer, "ci-deploy", None).await;
    refused_with(&app, &foreign, "another issuer").await;

    // Rotation: the provider restarts signing with k2 (k1 still published);
    // the server fetches the keys again on the unknown kid.
    let port = provider.port;
    let issuer = provider.issuer.clone();
    drop(provider);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rotated = start_provider(ProviderSetup {
        dir: &dir,
        redirect: "http://127.0.0.1:1/auth/oidc/callback".into(),
        port,
        kids: "k2,k1",
        issuer: None,
    })
    .await;
    assert_eq!(rotated.issuer, issuer);
    tokio::time::sleep(switchyard::sso::KEY_REFETCH_INTERVAL).await;
    let new_token = client_credentials(&issuer, "ci-deploy", None).await;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(new_token.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], "k2");
    assert_eq!(
        api_get(&app, &new_token, "/api/v1/models").await.0,
        StatusCode::OK
    );
    // The old key still verifies the old token.
    assert_eq!(
        api_get(&app, &token, "/api/v1/models").await.0,
        StatusCode::OK
    );

    // Unknown key: a provider claiming the same issuer with a key nobody published.
    let rogue = start_provider(ProviderSetup {
        dir: &dir,
        redirect: "http://127.0.0.1:1/auth/oidc/callback".into(),
        port: 0,
        kids: "k9",
        issuer: Some(issuer.clone()),
    })
    .await;
    let rogue_url = format!("http://127.0.0.1:{}", rogue.port);
    let unknown = client_credentials(&rogue_url, "ci-deploy", None).await;
    assert_eq!(claims_of(&unknown)["iss"], issuer.as_str());
    refused_with(&app, &unknown, "unknown key").await;

    // Switchyard's own tokens still work beside JWTs.
    assert_eq!(
        api_get(&app, &app.token, "/api/v1/models").await.0,
        StatusCode::OK
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_pipelines_jwt_gets_the_role_bindings_stored_for_its_groups_per_environment() {
    if !provider_available() {
        return;
    }
    let dir = temp_dir();
    write_users(&dir.join("users.json"), &["ml-admins"]);
    let provider = start_provider(ProviderSetup {
        dir: &dir,
        redirect: "http://127.0.0.1:1/auth/oidc/callback".into(),
        port: 0,
        kids: "k1",
        issuer: None,
    })
    .await;
    let jwt = JwtSettings {
        issuer: provider.issuer.clone(),
        audience: "switchyard".into(),
        jwks_url: None,
        subject_claim: "sub".into(),
        group_claims: vec!["repository".into()],
        leeway_seconds: 0,
    };
    let app = spawn_app_with_sso(
        None,
        "127.0.0.1:0".parse().expect("addr"),
        settings(None, Some(jwt), true),
    )
    .await;
    app.register("chat", "v1", json!({"t": 1})).await;

    // ci-other's repository maps to no role and nothing is bound to it yet.
    let token = client_credentials(&provider.issuer, "ci-other", None).await;
    let (status, body) = api_get(&app, &token, "/api/v1/models").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("no role binding names them"));

    // An admin binds the repository's group as deployer in staging.
    let res = app
        .post_json(
            "/api/v1/role-bindings",
            &json!({"group": "repository:acme/website", "role": "deployer", "environment": "staging"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        api_get(&app, &token, "/api/v1/models").await.0,
        StatusCode::OK
    );
    // Deploying into staging is allowed, and the ledger names the workload.
    let res = app
        .post_json_as(
            &token,
            "/api/v1/versions/chat:v1/stage",
            &json!({"to": "staging", "reason": "feature complete"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let moved = events(&app, action::STAGE_CHANGED).await;
    assert_eq!(moved[0]["actor"], "jwt:ci-other");
    // Production is not the binding's: 403 naming the binding missing.
    let res = app
        .post_json_as(
            &token,
            "/api/v1/promotions",
            &json!({"full_id": "chat:v1", "environment": "production", "reason": "ship"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.expect("JSON");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("production") && message.contains("deployer on staging"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- ID tokens tampered with between the provider and Switchyard ----

/// What the tampering proxy does to the ID token in the token endpoint's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tamper {
    /// Re-signed with the provider's own key, claims unchanged.
    Resigned,
    /// The claims changed (more groups) under the provider's signature.
    Forged,
    /// Re-sent unsigned, `alg: none`.
    Unsigned,
    /// Re-signed with the provider's own key, so only the one claim is wrong:
    /// the audience is another client's,
    WrongAudience,
    /// `exp` ten minutes ago,
    Expired,
    /// `iss` another provider's.
    WrongIssuer,
    /// The provider's own, untouched ID token of the sign-in before: its
    /// nonce is another sign-in's.
    Replayed,
    /// The token endpoint answers an HTML page instead of JSON.
    Garbage,
    /// The redirect back to Switchyard names another issuer in its RFC 9207
    /// `iss` parameter (the ID token is never asked for).
    CallbackFromAnotherIssuer,
}

impl Tamper {
    /// The sign-in page's `?error=` code and the words it must show.
    fn refusal(self) -> (&'static str, &'static str) {
        match self {
            Tamper::Resigned => ("", ""),
            Tamper::Forged | Tamper::Unsigned | Tamper::Replayed => {
                ("sso_bad_id_token", "failed verification")
            }
            Tamper::WrongAudience => ("sso_id_token_wrong_audience", "issued for another application"),
            Tamper::Expired => ("sso_id_token_expired", "had expired when it arrived"),
            Tamper::WrongIssuer | Tamper::CallbackFromAnotherIssuer => {
                ("sso_id_token_wrong_issuer", "came from another identity provider")
            }
            Tamper::Garbage => ("sso_provider_unavailable", "gave an unusable answer"),
        }
    }
}

struct TamperState {
    upstream: u16,
    mode: std::sync::Mutex<Tamper>,
    client: reqwest::Client,
    /// The provider's signing key (`k1`), read from its key directory.
    key: jsonwebtoken::EncodingKey,
    /// The last ID token the provider sent, untouched.
    last: std::sync::Mutex<Option<String>>,
}

/// The provider's private JWK `<dir>/keys/<kid>.json` as a signing key
/// (node turns the JWK into PKCS#1 DER, which `jsonwebtoken` reads).
fn provider_key(dir: &Path, kid: &str) -> jsonwebtoken::EncodingKey {
    let out = std::process::Command::new("node")
        .arg("-e")
        .arg(
            "const c=require('node:crypto');const jwk=JSON.parse(require('node:fs').readFileSync(process.argv[1],'utf8'));\
             process.stdout.write(c.createPrivateKey({key:jwk,format:'jwk'}).export({type:'pkcs1',format:'der'}).toString('base64'))",
        )
        .arg(dir.join("keys").join(format!("{kid}.json")))
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let der = base64::engine::general_purpose::STANDARD
        .decode(&out.stdout)
        .expect("base64 DER");
    jsonwebtoken::EncodingKey::from_rsa_der(&der)
}

fn tampered(id_token: &str, mode: Tamper, key: &jsonwebtoken::EncodingKey) -> String {
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims = claims_of(id_token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // The provider's own header (RS256, kid k1) over the changed claims.
    let resigned = |claims: &Value| {
        let input = format!("{}.{}", parts[0], b64(claims));
        let signature = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            key,
            jsonwebtoken::Algorithm::RS256,
        )
        .expect("signed");
        format!("{input}.{signature}")
    };
    match mode {
        Tamper::Resigned | Tamper::Replayed | Tamper::Garbage | Tamper::CallbackFromAnotherIssuer => {
            resigned(&claims)
        }
        Tamper::Forged => {
            claims["groups"] = json!(["ml-admins"]);
            format!("{}.{}.{}", parts[0], b64(&claims), parts[2])
        }
        Tamper::Unsigned => format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), parts[1]),
        Tamper::WrongAudience => {
            claims["aud"] = json!("another-client");
            resigned(&claims)
        }
        Tamper::Expired => {
            claims["iat"] = json!(now - 4200);
            claims["exp"] = json!(now - 600);
            resigned(&claims)
        }
        Tamper::WrongIssuer => {
            claims["iss"] = json!("http://127.0.0.1:1/another-provider");
            resigned(&claims)
        }
    }
}

/// Forwards everything to the provider; rewrites the ID token of the token
/// endpoint's answers as the mode says.
async fn tamper_proxy(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<TamperState>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forward = s
        .client
        .request(parts.method.clone(), format!("http://127.0.0.1:{}{path}", s.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != reqwest::header::CONTENT_LENGTH && name != reqwest::header::CONNECTION {
            forward = forward.header(name, value);
        }
    }
    let Ok(res) = forward.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap_or_default();
    let mode = *s.mode.lock().expect("mode");
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) if path.starts_with("/token") && v["id_token"].is_string() => {
            let raw = v["id_token"].as_str().unwrap_or_default().to_owned();
            let before = s.last.lock().expect("last").replace(raw.clone());
            match (mode, before) {
                (Tamper::Garbage, _) => b"<html>Service Unavailable</html>".to_vec(),
                (Tamper::Replayed, Some(before)) => {
                    v["id_token"] = json!(before);
                    v.to_string().into_bytes()
                }
                _ => {
                    v["id_token"] = json!(tampered(&raw, mode, &s.key));
                    v.to_string().into_bytes()
                }
            }
        }
        _ => bytes.to_vec(),
    };
    let mut out = axum::response::Response::new(axum::body::Body::from(body));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if name != reqwest::header::CONTENT_LENGTH && name != reqwest::header::TRANSFER_ENCODING {
            out.headers_mut().append(name, value.clone());
        }
    }
    let back = headers
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .filter(|l| l.contains("/auth/oidc/callback?"))
        .and_then(|l| url::Url::parse(l).ok());
    if let (Tamper::CallbackFromAnotherIssuer, Some(mut back)) = (mode, back) {
        let pairs: Vec<(String, String)> = back
            .query_pairs()
            .map(|(k, v)| match k.as_ref() {
                "iss" => (k.into_owned(), "http://127.0.0.1:1/another-provider".to_owned()),
                _ => (k.into_owned(), v.into_owned()),
            })
            .collect();
        assert!(pairs.iter().any(|(k, _)| k == "iss"), "the provider sends iss: {back}");
        back.query_pairs_mut().clear().extend_pairs(pairs);
        let value = reqwest::header::HeaderValue::from_str(back.as_str()).expect("location");
        out.headers_mut().insert(LOCATION, value);
    }
    out
}

#[tokio::test]
async fn forged_unsigned_expired_and_other_issuers_or_audiences_id_tokens_are_refused_by_name_on_the_sign_in_page_and_create_nobody(
) {
    if !provider_available() {
        return;
    }
    let dir = temp_dir();
    write_users(&dir.join("users.json"), &["platform"]);
    let server_port = free_port();
    // The proxy's address is the issuer: every request goes through it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let provider = start_provider(ProviderSetup {
        dir: &dir,
        redirect: format!("http://127.0.0.1:{server_port}/auth/oidc/callback"),
        port: 0,
        kids: "k1",
        issuer: Some(proxy_url.clone()),
    })
    .await;
    let state = std::sync::Arc::new(TamperState {
        upstream: provider.port,
        mode: std::sync::Mutex::new(Tamper::Forged),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        key: provider_key(&dir, "k1"),
        last: std::sync::Mutex::new(None),
    });
    let router = axum::Router::new()
        .fallback(tamper_proxy)
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = spawn_app_with_sso(
        None,
        format!("127.0.0.1:{server_port}").parse().expect("addr"),
        settings(Some(oidc_settings(&proxy_url, server_port)), None, true),
    )
    .await;

    // Replayed follows Forged, whose untouched token it sends again.
    for mode in [
        Tamper::Forged,
        Tamper::Replayed,
        Tamper::Unsigned,
        Tamper::WrongAudience,
        Tamper::Expired,
        Tamper::WrongIssuer,
        Tamper::CallbackFromAnotherIssuer,
        Tamper::Garbage,
    ] {
        let (code, words) = mode.refusal();
        *state.mode.lock().expect("mode") = mode;
        let failures = events(&app, action::SIGN_IN_FAILED).await.len();
        let mut b = Browser::new();
        let res = full_sign_in(&mut b, &app, "alice", "alice-pw").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{mode:?}");
        let to = location(&res, &app.address);
        assert_eq!(error_code(&to), code, "{mode:?}: {to}");
        assert!(!b.jar.contains_key("sy_session"), "{mode:?}: nobody signed in");
        assert!(!users(&app).await.contains(&"alice".to_owned()), "{mode:?}: nobody created");
        // A refused token is a failed sign-in in the ledger; a provider
        // answering garbage is no one's failed attempt.
        assert_eq!(
            events(&app, action::SIGN_IN_FAILED).await.len(),
            failures + usize::from(mode != Tamper::Garbage),
            "{mode:?}: the ledger"
        );
        // The sign-in page says what happened in words.
        let page = b.get(&to).await.text().await.expect("sign-in page");
        assert!(page.contains(words), "{mode:?}: {page}");
        // Local sign-in still works beside the refused single sign-on.
        let res = b
            .post_form(
                &format!("{}/signin", app.address),
                &[("username", "test-admin"), ("password", TEST_PASSWORD)],
                Some(&app.address),
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{mode:?}");
        assert_eq!(signed_in_user(&mut b, &app).await["username"], "test-admin", "{mode:?}");
    }
    assert_eq!(users(&app).await, ["test-admin"], "nobody was created");

    // Re-signed with the provider's key and unchanged, the same flow signs
    // alice in: neither the proxy nor the re-signing is what was refused.
    *state.mode.lock().expect("mode") = Tamper::Resigned;
    let mut b = Browser::new();
    let res = full_sign_in(&mut b, &app, "alice", "alice-pw").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(users(&app).await.contains(&"alice".to_owned()));
    let _ = std::fs::remove_dir_all(&dir);
}
