//! The auditor's export (issue 17): the ledger events of a period, with the
//! signed checkpoints that vouch for them, in a file an auditor checks with
//! `scripts/verify_audit_export.py` and no Switchyard. The format is
//! described in docs/audit-export.md; this module decides what goes in.
//!
//! What goes in, for a period `[from, to)`:
//! - the period's events: the contiguous ids from the first event at or after
//!   `from` to the last event before `to`;
//! - the event just before them (its time is before `from`), so the auditor
//!   sees that the export does not start late;
//! - the events after them up to the head signed by the first checkpoint
//!   signed at or after `to` (the *covering* checkpoint): its signature seals
//!   every exported event through the hash chain, and since it was signed
//!   after the period ended, no event of the period can be missing at the end;
//! - the checkpoint file's lines up to the covering one, so the auditor can
//!   check the checkpoint chain from its start.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checkpoint::{self, Checkpoint};
use crate::ledger::{LedgerEvent, Verifier, FIRST_EVENT_ID, GENESIS_HASH};
use crate::Timestamp;

/// The `format` field of every export of this shape.
pub const FORMAT: &str = "switchyard-audit-export-v1";

/// The file `audit export` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditExport {
    pub format: String,
    pub exported_at: Timestamp,
    pub period: Period,
    /// Contiguous ids, oldest first: the event before the period (if any),
    /// the period's events, then those up to the covering checkpoint's head.
    pub events: Vec<ExportedEvent>,
    /// The checkpoint file's lines 1 to the covering checkpoint; empty for
    /// an export made without a checkpoint file (which proves nothing).
    pub checkpoints: Vec<Checkpoint>,
}

/// The period asked for and the ids of its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// Inclusive.
    pub from: Timestamp,
    /// Exclusive.
    pub to: Timestamp,
    pub first_event_id: i64,
    pub last_event_id: i64,
}

/// A ledger event as exported: exactly the fields the hash covers (with `at`
/// as the integer microseconds that are hashed), then `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub model_id: Option<String>,
    pub version: Option<String>,
    pub environment: Option<String>,
    pub cluster: Option<String>,
    pub reason: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<LedgerEvent> for ExportedEvent {
    fn from(e: LedgerEvent) -> Self {
        ExportedEvent {
            id: e.id,
            at: e.at.micros(),
            actor: e.actor,
            action: e.action,
            model_id: e.model_id,
            version: e.version,
            environment: e.environment,
            cluster: e.cluster,
            reason: e.reason,
            details: e.details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// Which events and checkpoints an export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub first_event_id: i64,
    pub last_event_id: i64,
    /// The first exported id: the event before the period, or the first event of the ledger.
    pub export_from_id: i64,
    /// The last exported id: the covering checkpoint's head (the period's
    /// last event when exported without checkpoints).
    pub export_to_id: i64,
    /// How many lines of the checkpoint file are exported (the covering one is the last).
    pub checkpoints: usize,
}

/// Decides what an export of `[from, to)` holds. `period_ids` is the first
/// and last event id of the period as the ledger has them (`None`: no event
/// in it); `checkpoints` the checkpoint file's lines, if one was given.
/// The error says what to change.
pub fn plan(
    from: Timestamp,
    to: Timestamp,
    period_ids: Option<(i64, i64)>,
    checkpoints: Option<&[Checkpoint]>,
) -> Result<Plan, String> {
    if from >= to {
        return Err(format!(
            "--from ({from}) must be before --to ({to}): the period is [from, to)"
        ));
    }
    let Some((first, last)) = period_ids.filter(|(first, last)| first <= last) else {
        return Err(format!(
            "the ledger holds no event at or after {from} and before {to}: nothing to export \
             (widen the period)"
        ));
    };
    let export_from_id = (first - 1).max(FIRST_EVENT_ID);
    let Some(checkpoints) = checkpoints else {
        return Ok(Plan {
            first_event_id: first,
            last_event_id: last,
            export_from_id,
            export_to_id: last,
            checkpoints: 0,
        });
    };
    checkpoint::check_chain(checkpoints).map_err(|e| {
        format!("the checkpoint file is broken, so it cannot vouch for an export: {e}")
    })?;
    let covering = checkpoints
        .iter()
        .position(|cp| cp.signed_at >= to.micros() && cp.event_id >= last);
    let Some(index) = covering else {
        let newest = checkpoints.last().map_or_else(
            || "it holds no checkpoint".to_owned(),
            |cp| {
                format!(
                    "its newest, {}, was signed at {}",
                    cp.label(),
                    Timestamp::from_micros(cp.signed_at)
                )
            },
        );
        return Err(format!(
            "no checkpoint in the file was signed after the period ended ({to}), so none can \
             vouch that the period's events are complete; {newest}. Sign one now \
             (`switchyard audit checkpoint --key KEY --out FILE`) or end the period earlier"
        ));
    };
    Ok(Plan {
        first_event_id: first,
        last_event_id: last,
        export_from_id,
        export_to_id: checkpoints[index].event_id,
        checkpoints: index + 1,
    })
}

/// Checks the events read for `plan` before they are written out: exactly
/// the planned ids, chained, each hash matching its content, and every
/// exported checkpoint whose head lies among them signing that event's hash.
/// The error names the event or checkpoint and says to run `audit verify`.
pub fn check(
    plan: &Plan,
    events: &[LedgerEvent],
    checkpoints: &[Checkpoint],
) -> Result<(), String> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(format!(
            "events {} to {} could not be read",
            plan.export_from_id, plan.export_to_id
        ));
    };
    if first.id != plan.export_from_id {
        return Err(format!(
            "event {} is missing (the first event read is {}): run `switchyard audit verify`",
            plan.export_from_id, first.id
        ));
    }
    // Event 1 must start from the genesis hash; a later first event's
    // prev_hash is vouched for by the checkpoint further on.
    let start = if first.id == FIRST_EVENT_ID {
        GENESIS_HASH
    } else {
        &first.prev_hash
    };
    let mut verifier = Verifier::after(first.id - 1, start);
    for ev in events {
        verifier.check(ev);
    }
    let report = verifier.finish(Some((plan.export_to_id, &last.hash)), Some(last.id));
    if let Some(problem) = report.problem {
        return Err(format!(
            "{problem}: run `switchyard audit verify --checkpoints`"
        ));
    }
    for cp in &checkpoints[..plan.checkpoints.min(checkpoints.len())] {
        let Some(ev) = events.iter().find(|e| e.id == cp.event_id) else {
            continue;
        };
        if ev.hash != cp.event_hash {
            return Err(format!(
                "{}: event {} has hash {}, the checkpoint signed {} — the ledger was rewritten; \
                 run `switchyard audit verify --checkpoints`",
                cp.label(),
                ev.id,
                ev.hash,
                cp.event_hash
            ));
        }
    }
    Ok(())
}

/// The export of `plan`'s events and checkpoints (checked by [`check`]).
pub fn assemble(
    plan: &Plan,
    from: Timestamp,
    to: Timestamp,
    events: Vec<LedgerEvent>,
    checkpoints: &[Checkpoint],
    now: Timestamp,
) -> AuditExport {
    AuditExport {
        format: FORMAT.to_owned(),
        exported_at: now,
        period: Period {
            from,
            to,
            first_event_id: plan.first_event_id,
            last_event_id: plan.last_event_id,
        },
        events: events.into_iter().map(ExportedEvent::from).collect(),
        checkpoints: checkpoints[..plan.checkpoints.min(checkpoints.len())].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{action, NewEvent};
    use serde_json::json;

    /// Events 1..=n, event i at i seconds.
    fn chain(n: i64) -> Vec<LedgerEvent> {
        let mut out: Vec<LedgerEvent> = Vec::new();
        for id in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
            out.push(
                NewEvent::new(secs(id), "alice", action::PIN_CHANGED)
                    .reason(Some("release"))
                    .details(json!({ "n": id }))
                    .seal(id, &prev),
            );
        }
        out
    }

    fn secs(s: i64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    /// Checkpoints of `events`' heads `heads`, signed at the given seconds.
    fn checkpoints(events: &[LedgerEvent], heads: &[(i64, i64)]) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for (i, (head, signed)) in heads.iter().enumerate() {
            let ev = &events[*head as usize - 1];
            out.push(Checkpoint {
                seq: i as u64 + 1,
                event_id: ev.id,
                event_hash: ev.hash.clone(),
                event_at: ev.at.micros(),
                count: ev.id,
                signed_at: secs(*signed).micros(),
                prev: out
                    .last()
                    .map_or_else(|| checkpoint::GENESIS.to_owned(), Checkpoint::hash),
                signature: "00".repeat(64),
            });
        }
        out
    }

    #[test]
    fn a_period_is_exported_with_the_event_before_it_and_up_to_the_first_checkpoint_signed_after_it(
    ) {
        let events = chain(20);
        let cps = checkpoints(&events, &[(4, 5), (9, 10), (15, 16), (20, 21)]);
        let plan = plan(secs(5), secs(11), Some((5, 10)), Some(&cps)).expect("a plan");
        assert_eq!(
            plan,
            Plan {
                first_event_id: 5,
                last_event_id: 10,
                export_from_id: 4,
                export_to_id: 15,
                checkpoints: 3,
            }
        );
        check(&plan, &events[3..15], &cps).expect("an intact ledger checks");
        let export = assemble(
            &plan,
            secs(5),
            secs(11),
            events[3..15].to_vec(),
            &cps,
            secs(30),
        );
        assert_eq!(export.events.first().map(|e| e.id), Some(4));
        assert_eq!(export.events.last().map(|e| e.id), Some(15));
        assert_eq!(export.checkpoints.len(), 3);
        assert_eq!(
            export.events[0].at, 4_000_000,
            "times as the hashed microseconds"
        );
    }

    #[test]
    fn a_period_from_the_ledgers_start_begins_at_event_1() {
        let events = chain(3);
        let cps = checkpoints(&events, &[(3, 4)]);
        let plan = plan(secs(0), secs(2), Some((1, 1)), Some(&cps)).expect("a plan");
        assert_eq!((plan.export_from_id, plan.export_to_id), (1, 3));
    }

    #[test]
    fn without_a_checkpoint_signed_after_the_period_the_export_is_refused_naming_the_fix() {
        let events = chain(10);
        let cps = checkpoints(&events, &[(4, 5), (9, 9)]);
        let err = plan(secs(5), secs(10), Some((5, 9)), Some(&cps)).expect_err("not covered");
        assert!(err.contains("signed after the period ended"), "{err}");
        assert!(err.contains("checkpoint 2 (event 9"), "{err}");
        assert!(err.contains("switchyard audit checkpoint"), "{err}");
    }

    #[test]
    fn without_a_checkpoint_file_the_period_alone_is_exported() {
        let plan = plan(secs(5), secs(10), Some((5, 9)), None).expect("a plan");
        assert_eq!(
            (plan.export_from_id, plan.export_to_id, plan.checkpoints),
            (4, 9, 0)
        );
    }

    #[test]
    fn an_empty_or_backwards_period_is_refused() {
        assert!(plan(secs(5), secs(10), None, None)
            .expect_err("empty")
            .contains("nothing to export"));
        assert!(plan(secs(5), secs(10), Some((7, 6)), None)
            .expect_err("empty")
            .contains("nothing to export"));
        assert!(plan(secs(10), secs(10), Some((1, 2)), None)
            .expect_err("backwards")
            .contains("must be before"));
    }

    #[test]
    fn a_broken_checkpoint_file_is_refused() {
        let events = chain(10);
        let mut cps = checkpoints(&events, &[(4, 5), (9, 11)]);
        cps.remove(0);
        let err = plan(secs(5), secs(10), Some((5, 9)), Some(&cps)).expect_err("broken");
        assert!(err.contains("checkpoint file is broken"), "{err}");
    }

    #[test]
    fn a_rewritten_event_or_a_checkpoint_the_ledger_contradicts_is_not_exported() {
        let events = chain(10);
        let cps = checkpoints(&events, &[(10, 11)]);
        let plan = plan(secs(3), secs(6), Some((3, 5)), Some(&cps)).expect("a plan");
        let mut edited = events[1..].to_vec();
        edited[2].reason = Some("nothing happened".into());
        let err = check(&plan, &edited, &cps).expect_err("edited");
        assert!(err.contains("event 4 was edited"), "{err}");

        // Rewritten from event 4 on with recomputed hashes: the chain holds, the checkpoint does not.
        let mut rewritten = events[1..].to_vec();
        rewritten[2].reason = Some("nothing happened".into());
        for i in 2..rewritten.len() {
            if i > 2 {
                rewritten[i].prev_hash = rewritten[i - 1].hash.clone();
            }
            rewritten[i].hash = rewritten[i].compute_hash();
        }
        let err = check(&plan, &rewritten, &cps).expect_err("rewritten");
        assert!(
            err.contains("checkpoint 1 (event 10") && err.contains("rewritten"),
            "{err}"
        );

        let mut gap = events[1..].to_vec();
        gap.remove(3);
        assert!(check(&plan, &gap, &cps)
            .expect_err("gap")
            .contains("event 5 is missing"));
        assert!(check(&plan, &events[2..], &cps)
            .expect_err("late")
            .contains("event 2 is missing"));

        // A first event not chained to the genesis hash.
        let plan = super::plan(secs(0), secs(3), Some((1, 2)), Some(&cps)).expect("a plan");
        let mut rows = events.clone();
        rows[0] = NewEvent::new(secs(1), "mallory", action::PIN_CHANGED).seal(
            1,
            "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        );
        assert!(check(&plan, &rows, &cps)
            .expect_err("forged")
            .contains("genesis"));
    }
}
