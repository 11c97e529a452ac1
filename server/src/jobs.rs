//! Background work every server runs. Running it in several servers at once
//! is safe: the store re-checks each item in a transaction, so a version is
//! retired, and a promotion expired, exactly once.

use std::collections::HashSet;
use std::time::Duration;

use switchyard_domain::{FullId, Timestamp};
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use crate::state::AppState;
use crate::store::Store;

/// How often deprecated versions are checked for retirement.
pub const RETIRE_EVERY: Duration = Duration::from_secs(60);
/// The first check, soon after start so a restarted server catches up.
const FIRST_RETIRE_AFTER: Duration = Duration::from_secs(5);

/// Starts the background job: every `RETIRE_EVERY`, retire the deprecated
/// versions whose period has passed and expire overdue promotions (actor
/// `system`). Errors are logged and the job carries on.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = interval_at(Instant::now() + FIRST_RETIRE_AFTER, RETIRE_EVERY);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut held = HashSet::new();
        loop {
            ticks.tick().await;
            let now = Timestamp::now();
            retire_due(state.store.as_ref(), now, &mut held).await;
            expire_promotions(state.store.as_ref(), now).await;
        }
    })
}

/// One pass of the retirement job. `held` remembers the versions already
/// reported as held, so a version that stays pinned is logged once, not
/// every minute.
pub async fn retire_due(store: &dyn Store, now: Timestamp, held: &mut HashSet<FullId>) {
    match store.retire_due(now).await {
        Ok(report) => {
            for id in &report.retired {
                tracing::info!(full_id = %id, "retired: its deprecation period has passed");
            }
            for id in &report.held {
                if !held.contains(id) {
                    tracing::warn!(full_id = %id, "retirement held: the deprecation period has passed but the version is still pinned");
                }
            }
            *held = report.held.into_iter().collect();
        }
        Err(e) => tracing::error!(error = %e, "the retirement job failed; it will try again"),
    }
}

/// One pass of the expiry job: pending promotions past their expiry become
/// `expired`, each with a ledger event (actor `system`).
pub async fn expire_promotions(store: &dyn Store, now: Timestamp) {
    match store.expire_promotions(now).await {
        Ok(ids) => {
            for id in ids {
                tracing::info!(promotion = id, "promotion expired without enough approvals");
            }
        }
        Err(e) => tracing::error!(error = %e, "the promotion expiry job failed; it will try again"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_domain::config_hash::config_hash;
    use switchyard_domain::lifecycle::MoveVia;
    use switchyard_domain::types::NewVersion;
    use switchyard_domain::Stage;

    use super::*;
    use crate::store::{connect, DynStore, StoreSettings};

    async fn released(store: &DynStore, version: &str, promoted_at: Timestamp) -> FullId {
        let id = FullId::parse(&format!("chat:{version}")).expect("a full id");
        let config = json!({"version": version});
        let new = NewVersion {
            full_id: id.clone(),
            config_hash: config_hash(&config).expect("a hash"),
            config,
            artifact_uri: None,
            labels: None,
        };
        let at = promoted_at.plus_hours(-2);
        store
            .register_version(new, "ci", at)
            .await
            .expect("registered");
        let manual = MoveVia::Manual { is_admin: false };
        store
            .change_stage(&id, Stage::Staging, manual, None, "alice", at.plus_hours(1))
            .await
            .expect("staged");
        store
            .change_stage(
                &id,
                Stage::Production,
                MoveVia::Promotion,
                None,
                "bob",
                promoted_at,
            )
            .await
            .expect("promoted");
        id
    }

    #[tokio::test]
    async fn a_pass_retires_what_is_due_and_remembers_what_is_held_because_pinned() {
        let path = std::env::temp_dir().join(format!("switchyard-jobs-{}.db", std::process::id()));
        let store = connect(
            &format!("sqlite://{}", path.display()),
            StoreSettings::default(),
        )
        .await
        .expect("a store");
        store.migrate().await.expect("migrated");
        let now = Timestamp::now();
        let v1 = released(&store, "v1", now.plus_days(-60)).await;
        let v2 = released(&store, "v2", now.plus_days(-50)).await;
        released(&store, "v3", now.plus_days(-40)).await;
        store
            .set_pin(
                "development",
                &v1,
                Some("baseline"),
                "alice",
                now.plus_days(-45),
            )
            .await
            .expect("pinned");

        let mut held = HashSet::new();
        retire_due(store.as_ref(), now, &mut held).await;
        retire_due(store.as_ref(), now, &mut held).await;

        let stage = |id: FullId| {
            let store = store.clone();
            async move {
                store
                    .get_version(&id)
                    .await
                    .expect("a lookup")
                    .expect("a version")
                    .stage
            }
        };
        assert_eq!(stage(v2).await, Stage::Retired);
        assert_eq!(stage(v1.clone()).await, Stage::Deprecated);
        assert_eq!(held, HashSet::from([v1]));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
