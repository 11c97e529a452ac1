//! The rolling update of one Deployment in place — the seed's
//! `kubectl set image deployment/llm-serving model=model:v2.1.3` — as a
//! `rolling` operation's `Step::Roll` on the slot the Service selects.
//!
//! 1. `kubectl set image`: the same strategic merge patch of the pod
//!    template as a load (image tag and/or version variable, the version
//!    annotation), guarded by the resourceVersion; a 409 is read again.
//!    Run again after a crash, a template already holding the version is
//!    not patched a second time: the rollout is only watched.
//! 2. `kubectl rollout status`: the Deployment is read until the
//!    controller reports the rollout complete (observedGeneration,
//!    updated, available, no old replicas), failed
//!    (`ProgressDeadlineExceeded`, after the Deployment's own
//!    `progressDeadlineSeconds`) or the step's time is up. Every change of
//!    updated / ready / available / desired replicas goes into the step's
//!    record.
//! 3. `kubectl rollout undo` on failure: the pod template of the ReplicaSet
//!    with the previous revision is put back (`Kubernetes::undo`), and its
//!    rollout watched in turn, so the old pods keep serving; the step fails
//!    saying both.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use switchyard_domain::clusters::SlotName;
use switchyard_domain::FullId;

use super::{rollout, Kubernetes, Rollout};
use crate::drivers::{Driver, DriverError, DriverResult};

/// How often the Deployment is read while its rollout runs.
const POLL: Duration = Duration::from_millis(100);

/// What `kubectl rollout status` prints about a Deployment's replicas.
fn progress(d: &Deployment) -> (i64, i64, i32, i32, i32, i32) {
    let status = d.status.clone().unwrap_or_default();
    (
        d.metadata.generation.unwrap_or(0),
        status.observed_generation.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
        d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
    )
}

impl Kubernetes {
    /// `Driver::roll` for the kubernetes driver (see the module's words).
    pub(super) async fn roll_in_place(
        &self,
        slot: SlotName,
        full_id: &FullId,
        timeout: Duration,
    ) -> DriverResult<()> {
        self.check_model(full_id)?;
        let name = self.config.deployment(slot).to_owned();
        let d = self.get_deployment(slot).await?;
        // Already set (a run resumed after a crash): no second patch.
        if self.rolled_out_of(slot, &d, full_id).is_ok() {
            self.conn.wrote(format!(
                "Deployment {name} already holds {full_id} (generation {}): watching its rollout",
                d.metadata.generation.unwrap_or(0)
            ));
        } else {
            self.load(slot, full_id).await?;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = None;
        loop {
            let last = match self.get_deployment(slot).await {
                Ok(d) => {
                    let p = progress(&d);
                    if seen != Some(p) {
                        seen = Some(p);
                        let (generation, observed, updated, ready, available, desired) = p;
                        self.conn.wrote(format!(
                            "Deployment {name} generation {generation} (observed {observed}): \
                             {updated} updated, {ready} ready, {available} available of {desired}"
                        ));
                    }
                    // Another writer's template is never undone: fail at once.
                    match self.rolled_out_of(slot, &d, full_id)? {
                        Rollout::Complete => return Ok(()),
                        Rollout::Failed(why) => {
                            return Err(self
                                .undo_rolled(
                                    slot,
                                    format!("{full_id} did not roll out: {why}"),
                                    timeout,
                                )
                                .await)
                        }
                        Rollout::Waiting(how) => Ok(how),
                    }
                }
                // The API server may be briefly away; keep asking until the deadline.
                Err(e) => Err(e.to_string()),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(match last {
                    Ok(how) => {
                        self.undo_rolled(
                            slot,
                            format!(
                                "{full_id} did not roll out within {} s (Deployment {name}: {how})",
                                timeout.as_secs_f32()
                            ),
                            timeout,
                        )
                        .await
                    }
                    Err(e) => DriverError::new(format!(
                        "{full_id} in {slot}: the rollout of Deployment {name} could not be \
                         watched to its end: {e}"
                    )),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `kubectl rollout undo` after a failed rolling update, then its own
    /// rollout watched (within `timeout`), so the previous version's pods
    /// serve again; the words say all of it.
    async fn undo_rolled(&self, slot: SlotName, failure: String, timeout: Duration) -> DriverError {
        let name = self.config.deployment(slot);
        if let Err(e) = self.undo(slot).await {
            return DriverError::new(format!(
                "{failure}; rolling Deployment {name} back failed too: {e}"
            ));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = match self.get_deployment(slot).await {
                Ok(d) => match rollout(&d) {
                    Rollout::Complete => {
                        return DriverError::new(format!(
                            "{failure}; Deployment {name} was rolled back to its previous revision \
                             (as kubectl rollout undo does) and that rollout is complete"
                        ))
                    }
                    Rollout::Waiting(how) | Rollout::Failed(how) => how,
                },
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return DriverError::new(format!(
                    "{failure}; Deployment {name} was rolled back to its previous revision (as \
                     kubectl rollout undo does) but that rollout is not complete yet ({state}); see \
                     `kubectl -n {} rollout status deployment/{name}`",
                    self.config.namespace
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
