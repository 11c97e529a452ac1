//! The contract of the read cache (`store/cache.rs`) while `watch_changes`
//! runs: a change made through one server reaches the cached answers of
//! another within a second (SQLite: polled head; PostgreSQL: NOTIFY), and
//! at once on the server that made it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_domain::access::Role;
use switchyard_domain::{DomainError, FullId, Stage, VersionRef};
use tokio::task::JoinHandle;

use super::{at, domain, id, move_to, register, run, DynStore, TestDb, MANUAL};

contract_tests!(
    a_pin_change_reaches_the_cached_resolve_of_another_server_within_a_second,
    a_revoked_or_expired_token_stops_working_on_every_server,
);

/// Runs `store`'s change watcher until the handle is aborted, and waits
/// until it has read the head once.
async fn watching(store: &DynStore) -> JoinHandle<()> {
    let s = store.clone();
    let handle = tokio::spawn(async move {
        let _ = s.watch_changes().await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle
}

async fn resolved(store: &DynStore, env: &str) -> FullId {
    let pinned = VersionRef::parse("chat").expect("reference");
    store.resolve(&pinned, env).await.expect("resolves").full_id
}

/// Resolves on `store` until it answers `want`; the time it took.
async fn until_resolved(store: &DynStore, want: &FullId) -> Duration {
    let started = Instant::now();
    while resolved(store, "staging").await != *want {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{want} never became visible"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

async fn a_pin_change_reaches_the_cached_resolve_of_another_server_within_a_second(
    db: Arc<TestDb>,
) {
    let a = db.store.clone();
    let b = db.another_server().await;
    let (watch_a, watch_b) = (watching(&a).await, watching(&b).await);
    for (minute, v) in [(0, "chat:v1"), (1, "chat:v2")] {
        register(&db, v, at(minute)).await;
        move_to(&db, v, Stage::Staging, MANUAL, at(minute)).await;
    }
    a.set_pin("staging", &id("chat:v1"), None, "bob", at(2))
        .await
        .expect("pinned");
    until_resolved(&b, &id("chat:v1")).await;

    for (round, (writer, reader, version)) in [
        (&a, &b, "chat:v2"),
        (&b, &a, "chat:v1"),
        (&a, &b, "chat:v2"),
    ]
    .into_iter()
    .enumerate()
    {
        // Both servers have the current answer cached…
        let before = resolved(reader, "staging").await;
        assert_eq!(resolved(writer, "staging").await, before);
        let minute = 3 + i64::try_from(round).expect("small");
        writer
            .set_pin("staging", &id(version), None, "bob", at(minute))
            .await
            .expect("pinned");
        // …the writer sees its own change at once, the other within a second.
        assert_eq!(
            resolved(writer, "staging").await,
            id(version),
            "round {round}"
        );
        let took = until_resolved(reader, &id(version)).await;
        assert!(
            took < Duration::from_secs(1),
            "round {round}: visible after {took:?}"
        );
    }

    // Answers that are errors are cached and invalidated the same way.
    let e = domain(
        b.resolve(
            &VersionRef::parse("chat").expect("reference"),
            "development",
        )
        .await,
    );
    assert!(matches!(e, DomainError::NotFound(_)), "{e}");
    a.set_pin("development", &id("chat:v1"), None, "bob", at(10))
        .await
        .expect("pinned");
    let started = Instant::now();
    while b
        .resolve(
            &VersionRef::parse("chat").expect("reference"),
            "development",
        )
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the development pin is not visible after a second"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    watch_a.abort();
    watch_b.abort();
}

async fn a_revoked_or_expired_token_stops_working_on_every_server(db: Arc<TestDb>) {
    let a = db.store.clone();
    let b = db.another_server().await;
    let (watch_a, watch_b) = (watching(&a).await, watching(&b).await);
    a.create_user(
        "ci",
        Role::Deployer,
        "$argon2id$not-checked-here",
        "test",
        at(0),
    )
    .await
    .expect("user");
    a.create_token("ci-main", "ci", "hash-a", None, "test", at(1))
        .await
        .expect("token");
    a.create_token("ci-short", "ci", "hash-b", Some(at(10)), "test", at(1))
        .await
        .expect("token");
    for s in [&a, &b] {
        assert!(s
            .token_identity("hash-a", at(2))
            .await
            .expect("lookup")
            .is_some());
        assert!(
            s.token_identity("hash-a", at(2))
                .await
                .expect("lookup")
                .is_some(),
            "cached"
        );
        assert!(s
            .token_identity("hash-b", at(9))
            .await
            .expect("lookup")
            .is_some());
        // Expiry is checked on every use, cached or not.
        assert!(
            s.token_identity("hash-b", at(10))
                .await
                .expect("lookup")
                .is_none(),
            "expired"
        );
    }

    a.revoke_token("ci-main", "admin", at(3))
        .await
        .expect("revoked");
    assert!(
        a.token_identity("hash-a", at(4))
            .await
            .expect("lookup")
            .is_none(),
        "revoked, on the revoking server"
    );
    let started = Instant::now();
    while b
        .token_identity("hash-a", at(4))
        .await
        .expect("lookup")
        .is_some()
    {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the revoked token still works after a second"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    watch_a.abort();
    watch_b.abort();
}
