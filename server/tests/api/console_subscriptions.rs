//! The console's subscriptions page and the overview's notification
//! warning, through the server functions the pages call.

use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard::notify::NotifySettings;
use switchyard_domain::access::Role;

use crate::console::{server_fn_json, sign_in};
use crate::helpers::spawn_app;

/// A loopback port nothing listens on: every delivery attempt fails.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}

#[tokio::test]
async fn an_admin_manages_subscriptions_in_the_console_and_everyone_sees_when_one_is_not_delivering(
) {
    let app = spawn_app().await;
    app.user_with_token("ada", Role::Admin, None).await;
    app.user_with_token("dave", Role::Deployer, None).await;
    let (ada, dave) = (sign_in(&app, "ada").await, sign_in(&app, "dave").await);

    // Subscriptions are configuration: a deployer is refused, with the role named.
    let refused = server_fn_json(&app, "/console/fn/get_subscriptions", &[], &dave, false).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("admin"),
        "{refused}"
    );
    let refused = server_fn_json(
        &app,
        "/console/fn/create_subscription",
        &[("name", "sneaky"), ("url", "http://127.0.0.1:1/x")],
        &dave,
        false,
    )
    .await;
    assert!(refused["message"]
        .as_str()
        .unwrap_or_default()
        .contains("admin"));

    // Bad input says what to change, and stores nothing.
    let url = format!("http://127.0.0.1:{}/hook", closed_port());
    for (form, words) in [
        (
            vec![("name", "Bad Name"), ("url", url.as_str())],
            "is not valid",
        ),
        (
            vec![("name", "hooks"), ("url", "ftp://example.com/x")],
            "http",
        ),
        (
            vec![
                ("name", "hooks"),
                ("url", url.as_str()),
                ("events", "promotion.requested, nope"),
            ],
            "unknown event kind \"nope\"",
        ),
        (
            vec![("name", "hooks"), ("url", url.as_str()), ("kind", "pager")],
            "kind must be webhook or chat",
        ),
        (
            vec![
                ("name", "hooks"),
                ("url", url.as_str()),
                ("environments", "moon"),
            ],
            "unknown environment \"moon\"",
        ),
        (
            vec![("name", "hooks"), ("url", url.as_str()), ("parallel", "maybe")],
            "parallel must be true or false",
        ),
    ] {
        let answer =
            server_fn_json(&app, "/console/fn/create_subscription", &form, &ada, false).await;
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{form:?}: {message}");
    }
    let listed = server_fn_json(&app, "/console/fn/get_subscriptions", &[], &ada, true).await;
    assert_eq!(listed["rows"], serde_json::json!([]), "nothing was stored");

    // A webhook: its secret is shown once.
    let created = server_fn_json(
        &app,
        "/console/fn/create_subscription",
        &[
            ("name", "hooks"),
            ("kind", "webhook"),
            ("url", url.as_str()),
            ("events", " promotion.requested ,, rollback "),
            ("environments", "production"),
        ],
        &ada,
        true,
    )
    .await;
    assert_eq!(created["name"], "hooks");
    assert!(
        created["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{created}"
    );
    let listed = server_fn_json(&app, "/console/fn/get_subscriptions", &[], &ada, true).await;
    let row = &listed["rows"][0];
    assert_eq!(row["name"], "hooks");
    assert_eq!(
        row["events"],
        serde_json::json!(["promotion.requested", "rollback"])
    );
    assert_eq!(row["environments"], serde_json::json!(["production"]));
    assert_eq!(row["parallel"], false, "in event order unless ticked: {row}");
    assert!(row.get("secret").is_none(), "never shown again: {row}");

    // The parallel box: stored, shown on its page, seen by the REST API; then deleted again.
    server_fn_json(
        &app,
        "/console/fn/create_subscription",
        &[("name", "fast"), ("url", url.as_str()), ("parallel", "true")],
        &ada,
        true,
    )
    .await;
    let detail =
        server_fn_json(&app, "/console/fn/get_subscription", &[("name", "fast")], &ada, true).await;
    assert_eq!(detail["row"]["parallel"], true, "{detail}");
    let rest: Value = app
        .get("/api/v1/subscriptions/fast")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(rest["parallel"], true, "{rest}");
    server_fn_json(
        &app,
        "/console/fn/delete_subscription",
        &[("name", "fast"), ("confirm", "fast")],
        &ada,
        true,
    )
    .await;
    // The REST API sees the same subscription.
    let rest: Value = app
        .get("/api/v1/subscriptions/hooks")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(rest["url"], url);

    // A test message to a closed port fails until it is given up (a retry
    // period of a second here): everyone sees the warning on the overview,
    // only admins get the link to the page that explains it.
    let worker = switchyard::notify::spawn(
        app.store().await,
        NotifySettings {
            retry_period: Duration::from_secs(1),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(200),
            poll: Duration::from_millis(20),
            // No circuit breaker pause: the delivery is retried until it is given up.
            breaker_threshold: 1_000,
            allow_private: true,
            ..NotifySettings::default()
        },
    );
    server_fn_json(
        &app,
        "/console/fn/send_test_message",
        &[("name", "hooks")],
        &ada,
        true,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = server_fn_json(
            &app,
            "/console/fn/get_notification_status",
            &[],
            &dave,
            true,
        )
        .await;
        if s["warnings"][0]["warning"] == "dead" {
            break s;
        }
        assert!(Instant::now() < deadline, "not given up after 30 s: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    worker.abort();
    assert_eq!(status["warnings"][0]["subscription"], "hooks");
    assert_eq!(status["warnings"][0]["dead"], 1);
    assert_eq!(status["can_manage"], false);
    let status = server_fn_json(&app, "/console/fn/get_notification_status", &[], &ada, true).await;
    assert_eq!(status["can_manage"], true);

    let detail = server_fn_json(
        &app,
        "/console/fn/get_subscription",
        &[("name", "hooks")],
        &ada,
        true,
    )
    .await;
    assert_eq!(detail["row"]["warning"], "dead");
    let test_message = &detail["deliveries"][0];
    assert_eq!(test_message["event_id"], Value::Null, "{detail}");
    assert_eq!(test_message["status"], "dead", "{detail}");
    assert!(
        test_message["attempts"].as_i64().unwrap_or(0) >= 1,
        "{detail}"
    );
    assert!(detail["row"]["last_error"].is_string(), "{detail}");
    // Redeliver: queued again once; a pending delivery cannot be queued twice.
    let id = test_message["id"]
        .as_i64()
        .expect("delivery id")
        .to_string();
    server_fn_json(
        &app,
        "/console/fn/redeliver",
        &[("id", id.as_str())],
        &ada,
        true,
    )
    .await;
    let again = server_fn_json(
        &app,
        "/console/fn/redeliver",
        &[("id", id.as_str())],
        &ada,
        false,
    )
    .await;
    assert!(
        again["message"]
            .as_str()
            .unwrap_or_default()
            .contains("pending"),
        "{again}"
    );
    let refused = server_fn_json(
        &app,
        "/console/fn/redeliver",
        &[("id", id.as_str())],
        &dave,
        false,
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("admin"),
        "{refused}"
    );
    let missing = server_fn_json(
        &app,
        "/console/fn/get_subscription",
        &[("name", "nope")],
        &ada,
        false,
    )
    .await;
    assert_eq!(missing["code"], "not_found");

    // Rotation: a new secret, the overlap bounded.
    let rotated = server_fn_json(
        &app,
        "/console/fn/rotate_subscription_secret",
        &[("name", "hooks"), ("overlap_hours", "2")],
        &ada,
        true,
    )
    .await;
    assert!(rotated["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("whsec_")));
    assert_ne!(rotated["secret"], created["secret"]);
    for hours in ["721", "soon"] {
        let refused = server_fn_json(
            &app,
            "/console/fn/rotate_subscription_secret",
            &[("name", "hooks"), ("overlap_hours", hours)],
            &ada,
            false,
        )
        .await;
        assert!(
            refused["message"]
                .as_str()
                .unwrap_or_default()
                .contains("720"),
            "{refused}"
        );
    }

    // Deleting needs the name typed again.
    let refused = server_fn_json(
        &app,
        "/console/fn/delete_subscription",
        &[("name", "hooks"), ("confirm", "hook")],
        &ada,
        false,
    )
    .await;
    assert!(refused["message"]
        .as_str()
        .unwrap_or_default()
        .contains("to confirm"));
    server_fn_json(
        &app,
        "/console/fn/delete_subscription",
        &[("name", "hooks"), ("confirm", "hooks")],
        &ada,
        true,
    )
    .await;
    let listed = server_fn_json(&app, "/console/fn/get_subscriptions", &[], &ada, true).await;
    assert_eq!(listed["rows"], serde_json::json!([]));
    let status = server_fn_json(
        &app,
        "/console/fn/get_notification_status",
        &[],
        &dave,
        true,
    )
    .await;
    assert_eq!(status["warnings"], serde_json::json!([]), "{status}");
}
