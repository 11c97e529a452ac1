use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;
use switchyard_domain::access::Role;

use crate::helpers::{assert_error, spawn_app, ADMIN_ACTOR};

#[tokio::test]
async fn the_audit_log_pages_through_every_event_newest_first() {
    let app = spawn_app().await;
    for v in ["v1", "v2", "v3", "v4", "v5"] {
        app.register("chat", v, json!({ "v": v })).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/audit?action=version.registered&limit=2".to_owned();
    loop {
        let page = app.get_json(&path).await;
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["version"].as_str().unwrap().to_owned(),
            )
        }));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/audit?action=version.registered&limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    let versions: Vec<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(versions, ["v5", "v4", "v3", "v2", "v1"]);
    assert_eq!(
        seen.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(),
        5
    );
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_and_model() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    app.register("embed", "e1", json!({})).await;
    let page = app
        .get_json(&format!("/api/v1/audit?model=embed&actor={ADMIN_ACTOR}"))
        .await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["model_id"].as_str(), events[0]["action"].as_str()),
        (Some("embed"), Some("version.registered"))
    );
}

#[tokio::test]
async fn a_persons_token_actions_and_console_sign_in_are_all_found_under_their_name() {
    let app = spawn_app().await;
    let dave = app.user_with_token("dave", Role::Deployer, None).await;
    let res = app
        .post_json_as(
            &dave,
            "/api/v1/models/chat/versions",
            &json!({ "version": "v1", "config": {} }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post_json_as(
            &dave,
            "/api/v1/versions/chat:v1/stage",
            &json!({ "to": "staging", "reason": "feature complete" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    crate::console::sign_in(&app, "dave").await;

    let page = app.get_json("/api/v1/audit?actor=dave").await;
    let events = page["events"].as_array().unwrap();
    let seen: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["details"]["via_token"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("user.signed_in", None),
            ("stage.changed", Some("dave")),
            ("version.registered", Some("dave")),
        ]
    );
    assert!(events.iter().all(|e| e["actor"] == "dave"));
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
}

#[tokio::test]
async fn a_bad_audit_filter_is_refused_with_422() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/v1/audit?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_error(
        app.get("/api/v1/audit?limit=many").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_error(
        app.get("/api/v1/audit?after=yesterday").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn an_untouched_ledger_verifies() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    app.move_stage("chat:v1", "staging").await;
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true);
    assert!(report["checked"].as_u64().unwrap() >= 2);
    assert!(report["first_broken_id"].is_null());
}

#[tokio::test]
async fn free_text_with_control_or_bidi_characters_is_refused_and_csv_cells_cannot_be_formulas() {
    let app = spawn_app().await;
    app.register("chat", "v1", json!({})).await;
    for (reason, code) in [("evil\u{0}nul", "U+0000"), ("\u{202E}lun live", "U+202E")] {
        let e = assert_error(
            app.post_json(
                "/api/v1/versions/chat:v1/stage",
                &json!({ "to": "staging", "reason": reason }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(e["message"].as_str().unwrap_or("").contains(code), "{e}");
    }
    let e = assert_error(
        app.post_json(
            "/api/v1/models/chat/versions",
            &json!({ "version": "v2", "config": {}, "labels": { "team": "a\u{2067}b" } }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"].as_str().unwrap_or("").contains("labels"),
        "{e}"
    );
    let formula = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let res = app
        .post_json(
            "/api/v1/versions/chat:v1/stage",
            &json!({ "to": "staging", "reason": formula }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let e = assert_error(
        app.post_json(
            "/api/v1/promotions",
            &json!({ "full_id": "chat:v1", "environment": "production", "reason": "ok\u{202D}" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        e["message"].as_str().unwrap_or("").contains("U+202D"),
        "{e}"
    );

    let browser = crate::console::sign_in(&app, "test-admin").await;
    let csv = reqwest::Client::new()
        .get(format!("{}/console/export/audit.csv", app.address))
        .header(reqwest::header::COOKIE, &browser.cookie)
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("text");
    let row = csv
        .lines()
        .find(|l| l.contains("HYPERLINK"))
        .expect("the stage change is exported");
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\","),
        "{row}"
    );
}

// The console's "Verify chain" with signed checkpoints (issue 17): the page
// `/audit?verify=1&public_key=HEX`, as a browser without JavaScript gets it.

mod checkpoints {
    use std::path::{Path, PathBuf};

    use ed25519_dalek::SigningKey;
    use reqwest::header::COOKIE;
    use reqwest::StatusCode;
    use serde_json::json;
    use sqlx::{Connection, Executor, SqliteConnection};
    use switchyard_domain::access::Role;

    use crate::console::{no_redirects, sign_in, Browser};
    use crate::helpers::{spawn_app, spawn_app_with_checkpoint_file, TestApp};

    /// A server with a checkpoint file and two checkpoints in it, signed
    /// with a fresh key, some events apart; a viewer signed in.
    struct Checkpointed {
        app: TestApp,
        file: PathBuf,
        key: SigningKey,
        viewer: Browser,
        /// The heads checkpoints 1 and 2 signed.
        heads: [i64; 2],
    }

    fn new_key() -> SigningKey {
        SigningKey::from_bytes(&rand::random::<[u8; 32]>())
    }

    fn public_hex(key: &SigningKey) -> String {
        hex::encode(key.verifying_key().to_bytes())
    }

    async fn head(app: &TestApp) -> i64 {
        app.store()
            .await
            .ledger_head()
            .await
            .expect("the head reads")
            .expect("the ledger has events")
            .0
    }

    async fn sign(app: &TestApp, key: &SigningKey, file: &Path) -> i64 {
        let store = app.store().await;
        switchyard::checkpoints::append(store.as_ref(), key, file)
            .await
            .expect("checkpoint signed")
            .event_id
    }

    async fn checkpointed() -> Checkpointed {
        let (app, file) = spawn_app_with_checkpoint_file().await;
        let key = new_key();
        app.register("chat", "v1", json!({ "t": 1 })).await;
        app.move_stage("chat:v1", "staging").await;
        let first = sign(&app, &key, &file).await;
        app.register("chat", "v2", json!({ "t": 2 })).await;
        app.move_stage("chat:v2", "staging").await;
        let second = sign(&app, &key, &file).await;
        assert!(second > first);
        app.user_with_token("vera", Role::Viewer, None).await;
        let viewer = sign_in(&app, "vera").await;
        Checkpointed {
            app,
            file,
            key,
            viewer,
            heads: [first, second],
        }
    }

    /// The audit page verifying with `public_key`: its status and HTML.
    async fn verify_page(
        app: &TestApp,
        browser: &Browser,
        public_key: &str,
    ) -> (StatusCode, String) {
        let res = no_redirects()
            .get(format!("{}/audit", app.address))
            .query(&[("verify", "1"), ("public_key", public_key)])
            .header(COOKIE, &browser.cookie)
            .send()
            .await
            .expect("request sent");
        let status = res.status();
        (status, res.text().await.expect("the page"))
    }

    /// Runs `statements` on the SQLite database by hand, past the ledger's
    /// append-only triggers, as someone with access to the file could.
    async fn tamper(app: &TestApp, statements: &[String]) {
        let mut db = SqliteConnection::connect(&app.database_url)
            .await
            .expect("the database opens");
        for s in [
            "DROP TRIGGER IF EXISTS ledger_no_update",
            "DROP TRIGGER IF EXISTS ledger_no_delete",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain(statements.iter().cloned())
        {
            db.execute(s.as_str()).await.expect("the statement runs");
        }
    }

    #[tokio::test]
    async fn verify_with_the_public_key_says_the_chain_and_every_checkpoint_hold_and_counts_the_events_after_the_newest(
    ) {
        let c = checkpointed().await;
        c.app.register("chat", "v3", json!({ "t": 3 })).await;
        let after = head(&c.app).await - c.heads[1];
        assert!(after >= 1);
        let (status, html) = verify_page(&c.app, &c.viewer, &public_hex(&c.key)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Chain OK."), "{html}");
        assert!(html.contains("Checkpoints OK."), "{html}");
        assert!(
            html.contains(&format!(
                "2 signed checkpoints checked in {}",
                c.file.display()
            )),
            "{html}"
        );
        assert!(html.contains(&public_hex(&c.key)), "names the key: {html}");
        assert!(
            html.contains(&format!(
                "Newest: checkpoint #2 — event #{} at ",
                c.heads[1]
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!("Events after the newest checkpoint: {after}.")),
            "{html}"
        );
        assert!(!html.contains("CONTRADICTED"), "{html}");
    }

    #[tokio::test]
    async fn deleting_the_newest_events_and_rechaining_the_head_is_named_by_the_checkpoint_it_contradicts(
    ) {
        let c = checkpointed().await;
        let [first, second] = c.heads;
        tamper(
            &c.app,
            &[
                format!("DELETE FROM ledger WHERE id > {first}"),
                format!(
                    "UPDATE ledger_head SET last_id = {first}, \
                     last_hash = (SELECT hash FROM ledger WHERE id = {first}) WHERE singleton = 1"
                ),
            ],
        )
        .await;
        let (status, html) = verify_page(&c.app, &c.viewer, &public_hex(&c.key)).await;
        assert_eq!(status, StatusCode::OK);
        // The hash chain alone is fooled; the signed checkpoint is not.
        assert!(html.contains("Chain OK."), "{html}");
        assert!(
            html.contains("Checkpoints CONTRADICTED: 1 finding in"),
            "{html}"
        );
        assert!(
            html.contains(&format!("checkpoint 2 (event {second}, "))
                && html.contains(&format!(
                    ": event {second} is missing — the ledger was truncated after event {first}"
                )),
            "{html}"
        );
        assert!(
            !html.contains("checkpoint 1 ("),
            "checkpoint 1 still holds: {html}"
        );
    }

    #[tokio::test]
    async fn rewriting_an_old_reason_and_recomputing_every_hash_after_it_is_named_by_each_checkpoint(
    ) {
        let c = checkpointed().await;
        let store = c.app.store().await;
        let now = head(&c.app).await;
        let mut events = store
            .ledger_events(0, now, 10_000)
            .await
            .expect("the ledger reads");
        // An old event, before checkpoint 1, gets a new reason; every hash
        // from there on is recomputed, as a careful forger would.
        let victim = events
            .iter()
            .position(|e| e.action == "version.registered")
            .expect("a registration");
        assert!(events[victim].id < c.heads[0]);
        events[victim].reason = Some("nothing to see here".into());
        let mut statements = Vec::new();
        for i in victim..events.len() {
            if i > victim {
                events[i].prev_hash = events[i - 1].hash.clone();
            }
            events[i].hash = events[i].compute_hash();
            let e = &events[i];
            statements.push(format!(
                "UPDATE ledger SET reason = {}, prev_hash = '{}', hash = '{}' WHERE id = {}",
                e.reason.as_deref().map_or("NULL".to_owned(), |r| format!(
                    "'{}'",
                    r.replace('\'', "''")
                )),
                e.prev_hash,
                e.hash,
                e.id
            ));
        }
        let last = events.last().expect("events");
        statements.push(format!(
            "UPDATE ledger_head SET last_hash = '{}' WHERE singleton = 1",
            last.hash
        ));
        tamper(&c.app, &statements).await;
        let (status, html) = verify_page(&c.app, &c.viewer, &public_hex(&c.key)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Chain OK."),
            "the chain was recomputed: {html}"
        );
        assert!(
            html.contains("Checkpoints CONTRADICTED: 2 findings in"),
            "{html}"
        );
        for id in c.heads {
            assert!(
                html.contains(&format!("— the ledger was rewritten up to event {id}")),
                "{html}"
            );
        }
    }

    #[tokio::test]
    async fn a_checkpoint_deleted_from_the_file_breaks_the_chain_of_checkpoints() {
        let c = checkpointed().await;
        c.app.register("chat", "v3", json!({ "t": 3 })).await;
        sign(&c.app, &c.key, &c.file).await;
        let text = std::fs::read_to_string(&c.file).expect("the checkpoint file");
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, l)| l)
            .collect();
        std::fs::write(&c.file, kept.join("\n") + "\n").expect("rewritten");
        let (status, html) = verify_page(&c.app, &c.viewer, &public_hex(&c.key)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Checkpoints CONTRADICTED: 1 finding in"),
            "{html}"
        );
        assert!(
            html.contains("is line 2 of the checkpoint file: checkpoint 2 is missing"),
            "{html}"
        );
    }

    #[tokio::test]
    async fn checkpoints_verified_with_another_key_name_that_key_for_each_signature() {
        let c = checkpointed().await;
        let other = public_hex(&new_key());
        let (status, html) = verify_page(&c.app, &c.viewer, &other).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Checkpoints CONTRADICTED: 2 findings in"),
            "{html}"
        );
        let findings = html
            .split_once("<ul class=\"findings\">")
            .and_then(|(_, rest)| rest.split_once("</ul>"))
            .map(|(list, _)| list)
            .expect("the list of findings");
        for (seq, id) in [(1, c.heads[0]), (2, c.heads[1])] {
            assert!(
                findings.contains(&format!("<li>checkpoint {seq} (event {id}, ")),
                "{findings}"
            );
        }
        assert_eq!(
            findings
                .matches(&format!(
                    " : the signature does not verify with public key {other} "
                ))
                .count(),
            2,
            "{findings}"
        );
    }

    #[tokio::test]
    async fn a_malformed_public_key_is_refused_with_422_and_nothing_is_checked() {
        let c = checkpointed().await;
        for (key, says) in [
            ("abc123", "has 6 hex digits, not 64"),
            (&*format!("{}xy", "0".repeat(62)), "not a hex digit"),
        ] {
            let (status, html) = verify_page(&c.app, &c.viewer, key).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{key}");
            assert!(html.contains("Could not verify the chain."), "{html}");
            assert!(html.contains(says), "{html}");
            assert!(
                html.contains("switchyard audit public-key"),
                "names the fix: {html}"
            );
            assert!(!html.contains("Chain OK"), "nothing else happens: {html}");
        }
        // Without a key the chain is checked and the page says how to check the checkpoints.
        let (status, html) = verify_page(&c.app, &c.viewer, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Chain OK."), "{html}");
        assert!(html.contains("no public key was given"), "{html}");
    }

    #[tokio::test]
    async fn without_a_checkpoint_file_the_page_says_how_to_configure_one_and_still_checks_the_chain(
    ) {
        let app = spawn_app().await;
        app.register("chat", "v1", json!({})).await;
        app.user_with_token("vera", Role::Viewer, None).await;
        let viewer = sign_in(&app, "vera").await;
        let (status, html) = verify_page(&app, &viewer, &public_hex(&new_key())).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Chain OK."), "{html}");
        assert!(
            html.contains("Signed checkpoints not checked: this server has no checkpoint file."),
            "{html}"
        );
        assert!(
            html.contains("SWITCHYARD_CHECKPOINT_FILE")
                && html.contains("SWITCHYARD_CHECKPOINT_KEY"),
            "{html}"
        );
    }
}
