//! Release policy over the REST API: an environment's approval policy with
//! a required group, freeze windows answering 423, and the emergency
//! override (an admin asks, a second person approves).

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

use crate::helpers::{assert_error, settle, spawn_app, TestApp};

/// chat:v1 pinned in production, chat:v2 in staging; returns the tokens of
/// dave (deployer) and bob, carol (approvers in platform) and rita (approver,
/// not yet in any group).
async fn ready(app: &TestApp) -> [String; 4] {
    let v1 = app.production_version("chat", "v1").await;
    let res = app
        .put_json(
            "/api/v1/environments/production/pins/chat",
            &json!({"version": v1.version.to_string(), "reason": "test"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.register("chat", "v2", json!({"v": 2})).await;
    assert_eq!(
        app.move_stage("chat:v2", "staging").await.status(),
        StatusCode::OK
    );
    let tokens = [
        app.user_with_token("dave", Role::Deployer, None).await,
        app.user_with_token("bob", Role::Approver, None).await,
        app.user_with_token("carol", Role::Approver, None).await,
        app.user_with_token("rita", Role::Approver, None).await,
    ];
    let store = app.store().await;
    for who in ["bob", "carol"] {
        store
            .set_user_groups(who, &["platform".into()], "test", Timestamp::now())
            .await
            .expect("groups");
    }
    settle().await;
    tokens
}

async fn request_promotion(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json_as(
        token,
        "/api/v1/promotions",
        &json!({"full_id": "chat:v2", "environment": "production", "reason": "better answers"}),
    )
    .await
}

async fn approve(app: &TestApp, token: &str, id: i64) -> reqwest::Response {
    app.post_json_as(
        token,
        &format!("/api/v1/promotions/{id}/approve"),
        &json!({"reason": "reviewed"}),
    )
    .await
}

#[tokio::test]
async fn a_policy_with_a_required_group_is_refused_until_someone_can_satisfy_it_and_the_promotion_shows_its_requirements(
) {
    let app = spawn_app().await;
    let [dave, bob, carol, rita] = ready(&app).await;
    let body = json!({"required_groups": ["ml-risk"], "expiry_hours": 48});
    let refused = assert_error(
        app.put_json("/api/v1/environments/production/policy", &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["code"], "policy_violation");
    assert!(
        refused["message"].as_str().unwrap().contains("ml-risk"),
        "{refused}"
    );
    // A deployer may not change policies.
    assert_error(
        app.client
            .put(format!(
                "{}/api/v1/environments/production/policy",
                app.address
            ))
            .bearer_auth(&dave)
            .json(&body)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    app.store()
        .await
        .set_user_groups("rita", &["ml-risk".into()], "test", Timestamp::now())
        .await
        .expect("groups");
    settle().await;
    let res = app
        .put_json("/api/v1/environments/production/policy", &body)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let policy: Value = res.json().await.unwrap();
    assert_eq!(
        (
            policy["required_approvals"].as_i64(),
            &policy["required_groups"],
            policy["expiry_hours"].as_i64()
        ),
        (Some(2), &json!(["ml-risk"]), Some(48))
    );
    let envs = app.get_json("/api/v1/environments").await;
    let prod = envs["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "production")
        .unwrap();
    assert_eq!(prod["policy"]["required_groups"], json!(["ml-risk"]));

    let res = request_promotion(&app, &dave).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let p: Value = res.json().await.unwrap();
    let id = p["id"].as_i64().unwrap();
    assert_eq!(
        p["requirements"][1],
        json!({"requirement": "one approval from ml-risk", "met": false, "status": "open", "group": "ml-risk"})
    );
    assert_eq!(approve(&app, &bob, id).await.status(), StatusCode::OK);
    let res = approve(&app, &carol, id).await;
    let p: Value = res.json().await.unwrap();
    assert_eq!(
        p["status"], "pending",
        "two approvers but no one from ml-risk"
    );
    assert_eq!(p["requirements"][0]["met"], true);
    assert_eq!(p["requirements"][1]["met"], false);
    // The approvals page shows what is met and what is open, without JavaScript too.
    let browser = crate::console::sign_in(&app, "rita").await;
    let html = app
        .client
        .get(format!("{}/approvals", app.address))
        .header(reqwest::header::COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("✓ 2 distinct approvers — 2 of 2: bob, carol"),
        "approvals page: met"
    );
    assert!(
        html.contains("○ one approval from ml-risk — open"),
        "approvals page: open"
    );
    assert!(
        html.contains("The next approval from ml-risk meets the policy"),
        "approvals page: effect"
    );
    let p: Value = approve(&app, &rita, id).await.json().await.unwrap();
    assert_eq!(p["status"], "applied");
    assert_eq!(p["requirements"][1]["status"], "met by rita");
    assert_eq!(p["approvals"][2]["groups"], json!(["ml-risk"]));
    // Serving at now names the promotion's approvers and the policy in force.
    let now = Timestamp::now().to_rfc3339().replace('+', "%2B");
    let serving = app.get_json(&format!("/api/v1/serving?at={now}")).await;
    let pin = serving["pins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["environment"] == "production")
        .unwrap();
    assert_eq!(
        pin["promotion"]["approved_by"],
        json!(["bob", "carol", "rita"])
    );
    assert_eq!(
        pin["promotion"]["policy"]["required_groups"],
        json!(["ml-risk"])
    );
    assert_eq!(pin["promotion"]["requirements"][1]["status"], "met by rita");
}

#[tokio::test]
async fn inside_a_freeze_promotions_answer_423_naming_the_window_until_an_override_is_approved_by_a_second_person(
) {
    let app = spawn_app().await;
    let [dave, bob, _carol, _rita] = ready(&app).await;
    let from = Timestamp::now().plus_hours(-1).to_rfc3339();
    let to = Timestamp::now().plus_hours(2);
    // Bad windows are refused with what is wrong.
    for (bad, why) in [
        (
            json!({"name": "x", "environment": "production", "kind": "weekly", "days": ["fri"], "start": "18:00", "duration_minutes": 60, "time_zone": "Mars/Base"}),
            "IANA",
        ),
        (
            json!({"name": "x", "environment": "production", "kind": "weekly", "days": ["friday"], "start": "18:00", "duration_minutes": 60, "time_zone": "UTC"}),
            "days",
        ),
        (
            json!({"name": "x", "environment": "production", "kind": "one_off", "from": from}),
            "\"to\"",
        ),
        (
            json!({"name": "x", "environment": "production", "kind": "monthly"}),
            "one_off or weekly",
        ),
    ] {
        let e = assert_error(
            app.post_json("/api/v1/freezes", &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(e["message"].as_str().unwrap().contains(why), "{e} / {why}");
    }
    let window = json!({"name": "year-end freeze", "environment": "production", "kind": "one_off", "from": from, "to": to.to_rfc3339()});
    assert_error(
        app.post_json_as(&dave, "/api/v1/freezes", &window).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let res = app.post_json("/api/v1/freezes", &window).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let w: Value = res.json().await.unwrap();
    let listed = app.get_json("/api/v1/freezes?environment=production").await;
    assert_eq!(listed["freezes"][0]["name"], "year-end freeze");
    assert_eq!(listed["in_force"][0]["window"]["id"], w["id"]);

    // The console's overview and clusters pages show the freeze, without JavaScript too.
    let browser = crate::console::sign_in(&app, "dave").await;
    for page in ["/", "/clusters"] {
        let html = app
            .client
            .get(format!("{}{page}", app.address))
            .header(reqwest::header::COOKIE, &browser.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("Change freeze in production: \u{201c}year-end freeze\u{201d} until")
                && html.contains("rollbacks still work"),
            "{page} shows the freeze banner"
        );
    }

    let e = assert_error(request_promotion(&app, &dave).await, StatusCode::LOCKED).await;
    assert_eq!(e["code"], "change_freeze");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("frozen by \"year-end freeze\"") && m.contains(&to.to_rfc3339()),
        "{m}"
    );

    // The override: admin only, with a reason; the requester cannot approve it.
    assert_error(
        app.post_json_as(
            &dave,
            "/api/v1/environments/production/overrides",
            &json!({"reason": "hotfix"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(
        app.post_json(
            "/api/v1/environments/production/overrides",
            &json!({"reason": "hotfix", "hours": 48}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let res = app
        .post_json(
            "/api/v1/environments/production/overrides",
            &json!({"reason": "hotfix for an outage", "hours": 1}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let o: Value = res.json().await.unwrap();
    let oid = o["id"].as_i64().unwrap();
    assert_error(
        app.post_json(&format!("/api/v1/overrides/{oid}/approve"), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(request_promotion(&app, &dave).await, StatusCode::LOCKED).await;
    let res = app
        .post_json_as(
            &bob,
            &format!("/api/v1/overrides/{oid}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let o: Value = res.json().await.unwrap();
    assert_eq!(o["approved_by"], "bob");
    assert_eq!(
        request_promotion(&app, &dave).await.status(),
        StatusCode::CREATED
    );
    let overrides = app
        .get_json("/api/v1/overrides?environment=production")
        .await;
    assert_eq!(overrides["overrides"][0]["id"], oid);

    let res = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/freezes/{}", w["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get_json("/api/v1/freezes").await["freezes"], json!([]));
    let audit = app.get_json("/api/v1/audit?limit=50").await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "freeze.created",
        "freeze.override_requested",
        "freeze.override_approved",
        "freeze.removed",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}
