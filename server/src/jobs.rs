//! Background work every server runs. Running it in several servers at once
//! is safe: the store re-checks each item in a transaction, so a version is
//! retired exactly once.

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

/// Starts the retirement job: every `RETIRE_EVERY`, retire the deprecated
/// versions whose period has passed (actor `system`). Errors are logged and
/// the job carries on.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = interval_at(Instant::now() + FIRST_RETIRE_AFTER, RETIRE_EVERY);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut held = HashSet::new();
        loop {
            ticks.tick().await;
            retire_due(state.store.as_ref(), Timestamp::now(), &mut held).await;
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
