//! The append-only, hash-chained audit ledger.
//!
//! `hash = sha256(prev_hash + "\n" + canonical_json(content))`, where content
//! holds every field of the event but the hashes. Editing any field of any
//! row, deleting a row or reordering rows breaks the chain at that row.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config_hash::{canonical_json, sha256_prefixed};
use crate::types::VerifyReport;
use crate::Timestamp;

/// The `prev_hash` of the first event, and the head hash of an empty ledger.
pub const GENESIS_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The id of the first event. Ids are contiguous: each event's id is the
/// ledger head's id + 1 (the head of an empty ledger is id 0), assigned by
/// the writer that holds the head lock — not taken from a database sequence,
/// which can skip numbers and would look like a deleted row to `verify`.
pub const FIRST_EVENT_ID: i64 = 1;

/// The key of `details` naming the API token an event's actor used.
pub const VIA_TOKEN: &str = "via_token";

/// Action names, the same in the API, the database and the console.
pub mod action {
    pub const VERSION_REGISTERED: &str = "version.registered";
    pub const STAGE_CHANGED: &str = "stage.changed";
    pub const PIN_CHANGED: &str = "pin.changed";
    pub const DEPRECATION: &str = "version.deprecated";
    pub const RETIREMENT: &str = "version.retired";
    pub const RETIREMENT_HELD: &str = "version.retirement_held";
    pub const ENVIRONMENT_CHANGED: &str = "environment.changed";
    pub const PROMOTION_REQUESTED: &str = "promotion.requested";
    pub const PROMOTION_APPROVED: &str = "promotion.approved";
    pub const PROMOTION_REJECTED: &str = "promotion.rejected";
    pub const PROMOTION_EXPIRED: &str = "promotion.expired";
    pub const PROMOTION_APPLIED: &str = "promotion.applied";
    /// The requester took a pending promotion back.
    pub const PROMOTION_WITHDRAWN: &str = "promotion.withdrawn";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_GROUPS_CHANGED: &str = "user.groups_changed";
    pub const BINDING_CREATED: &str = "binding.created";
    pub const BINDING_REMOVED: &str = "binding.removed";
    /// A single sign-on user's role changed at sign-in (their groups map to another role).
    pub const USER_ROLE_CHANGED: &str = "user.role_changed";
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const SIGNED_IN: &str = "user.signed_in";
    pub const SIGN_IN_FAILED: &str = "user.sign_in_failed";
    pub const SIGNED_OUT: &str = "user.signed_out";
    pub const CLUSTER_CREATED: &str = "cluster.created";
    /// A cluster that never ran an operation was removed (a mistaken registration).
    pub const CLUSTER_REMOVED: &str = "cluster.removed";
    /// The drift watcher saw a cluster serve something its environment does
    /// not pin, or something other than Switchyard recorded (actor `system`;
    /// details: the findings, what was observed, what was recorded).
    pub const CLUSTER_DRIFT_DETECTED: &str = "cluster.drift_detected";
    /// The drift recorded for a cluster is gone (actor `system`).
    pub const CLUSTER_DRIFT_CLEARED: &str = "cluster.drift_cleared";
    pub const OPERATION_STARTED: &str = "operation.started";
    pub const OPERATION_STEP: &str = "operation.step";
    /// A runner found an operation whose previous runner stopped (its lease
    /// expired) before finishing; written just before `operation.resumed`.
    pub const OPERATION_INTERRUPTED: &str = "operation.interrupted";
    pub const OPERATION_RESUMED: &str = "operation.resumed";
    /// A resumed operation's interrupted router command was compared with the
    /// router's real state (`reconcile`); details say what was found.
    pub const OPERATION_RECONCILED: &str = "operation.reconciled";
    pub const OPERATION_COMPLETED: &str = "operation.completed";
    pub const OPERATION_FAILED: &str = "operation.failed";
    pub const ROLLBACK: &str = "rollback";
    /// One analysis measurement of a gate: query as sent, value, verdict.
    pub const OPERATION_MEASURED: &str = "operation.measured";
    /// A gate's analysis was inconclusive: the operation waits for a person.
    pub const OPERATION_PAUSED: &str = "operation.paused";
    /// A person continued a paused operation past its gate.
    pub const OPERATION_CONTINUED: &str = "operation.continued";
    /// A person chose to roll back a paused operation.
    pub const OPERATION_ROLLBACK_CHOSEN: &str = "operation.rollback_chosen";
    /// Analysis templates saved or removed by an admin.
    pub const ANALYSIS_TEMPLATE_SAVED: &str = "analysis_template.saved";
    pub const ANALYSIS_TEMPLATE_REMOVED: &str = "analysis_template.removed";
    /// The analysis templates attached to a cluster changed.
    pub const CLUSTER_ANALYSIS_SET: &str = "cluster.analysis_set";
    /// Notification subscriptions changed by an admin (never the secret).
    pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
    pub const SUBSCRIPTION_DELETED: &str = "subscription.deleted";
    pub const SUBSCRIPTION_SECRET_ROTATED: &str = "subscription.secret_rotated";
    /// A notification delivery failed for its whole retry period and was given up.
    pub const DELIVERY_DEAD: &str = "delivery.dead";
    /// A subscription's deliveries have failed for longer than the configured
    /// time (raised once per failing streak, actor `system`).
    pub const SUBSCRIPTION_FAILING: &str = "subscription.failing";
    /// A subscription reported failing delivered again.
    pub const SUBSCRIPTION_RECOVERED: &str = "subscription.recovered";
    /// The periodic verification in `serve` found the hash chain broken, or
    /// the ledger contradicting a signed checkpoint (raised once per problem).
    pub const LEDGER_VERIFICATION_FAILED: &str = "ledger.verification_failed";
    /// A promotion written back to MLflow as aliases (`details.answer`: MLflow's get-by-alias).
    pub const MLFLOW_ALIAS_SET: &str = "mlflow.alias_set";
    /// A promotion not written back to MLflow, and why (`reason`).
    pub const MLFLOW_ALIAS_SKIPPED: &str = "mlflow.alias_skipped";
    /// A subscription's destination or filter changed (the MLflow write-back's, from the server's settings).
    pub const SUBSCRIPTION_UPDATED: &str = "subscription.updated";
    /// An environment's approval policy changed (details: before, after).
    pub const POLICY_CHANGED: &str = "policy.changed";
    /// A change-freeze window was created or removed.
    pub const FREEZE_CREATED: &str = "freeze.created";
    pub const FREEZE_REMOVED: &str = "freeze.removed";
    /// An admin asked for an emergency override of an environment's freezes.
    pub const FREEZE_OVERRIDE_REQUESTED: &str = "freeze.override_requested";
    /// A second person approved it: changes pass until `valid_until`.
    pub const FREEZE_OVERRIDE_APPROVED: &str = "freeze.override_approved";

    /// Every action the ledger knows.
    pub const ALL: [&str; 58] = [
        VERSION_REGISTERED,
        STAGE_CHANGED,
        PIN_CHANGED,
        DEPRECATION,
        RETIREMENT,
        RETIREMENT_HELD,
        ENVIRONMENT_CHANGED,
        PROMOTION_REQUESTED,
        PROMOTION_APPROVED,
        PROMOTION_REJECTED,
        PROMOTION_EXPIRED,
        PROMOTION_APPLIED,
        PROMOTION_WITHDRAWN,
        USER_CREATED,
        USER_DISABLED,
        USER_GROUPS_CHANGED,
        BINDING_CREATED,
        BINDING_REMOVED,
        USER_ROLE_CHANGED,
        TOKEN_CREATED,
        TOKEN_REVOKED,
        SIGNED_IN,
        SIGN_IN_FAILED,
        SIGNED_OUT,
        CLUSTER_CREATED,
        CLUSTER_REMOVED,
        CLUSTER_DRIFT_DETECTED,
        CLUSTER_DRIFT_CLEARED,
        OPERATION_STARTED,
        OPERATION_STEP,
        OPERATION_INTERRUPTED,
        OPERATION_RESUMED,
        OPERATION_RECONCILED,
        OPERATION_COMPLETED,
        OPERATION_FAILED,
        ROLLBACK,
        OPERATION_MEASURED,
        OPERATION_PAUSED,
        OPERATION_CONTINUED,
        OPERATION_ROLLBACK_CHOSEN,
        ANALYSIS_TEMPLATE_SAVED,
        ANALYSIS_TEMPLATE_REMOVED,
        CLUSTER_ANALYSIS_SET,
        SUBSCRIPTION_CREATED,
        SUBSCRIPTION_DELETED,
        SUBSCRIPTION_SECRET_ROTATED,
        DELIVERY_DEAD,
        SUBSCRIPTION_FAILING,
        SUBSCRIPTION_RECOVERED,
        LEDGER_VERIFICATION_FAILED,
        MLFLOW_ALIAS_SET,
        MLFLOW_ALIAS_SKIPPED,
        SUBSCRIPTION_UPDATED,
        POLICY_CHANGED,
        FREEZE_CREATED,
        FREEZE_REMOVED,
        FREEZE_OVERRIDE_REQUESTED,
        FREEZE_OVERRIDE_APPROVED,
    ];
}

/// An event about to be appended: everything but id and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub model_id: Option<String>,
    pub version: Option<String>,
    pub environment: Option<String>,
    pub cluster: Option<String>,
    pub reason: Option<String>,
    pub details: Value,
}

impl NewEvent {
    pub fn new(at: Timestamp, actor: &str, action: &str) -> Self {
        NewEvent {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            model_id: None,
            version: None,
            environment: None,
            cluster: None,
            reason: None,
            details: json!({}),
        }
    }

    pub fn full_id(mut self, full_id: &crate::FullId) -> Self {
        self.model_id = Some(full_id.model_id.to_string());
        self.version = Some(full_id.version.to_string());
        self
    }

    pub fn model(mut self, model_id: &crate::ModelId) -> Self {
        self.model_id = Some(model_id.to_string());
        self
    }

    pub fn environment(mut self, env: &str) -> Self {
        self.environment = Some(env.to_owned());
        self
    }

    pub fn cluster(mut self, cluster: &str) -> Self {
        self.cluster = Some(cluster.to_owned());
        self
    }

    pub fn reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.map(str::to_owned);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Records the API token a person acted with as `details.via_token`:
    /// the actor stays the person, so filtering the audit by a person finds
    /// what they did at the console and with their tokens alike.
    pub fn via_token(mut self, token: Option<&str>) -> Self {
        let Some(token) = token else { return self };
        match &mut self.details {
            Value::Object(o) => {
                o.insert(VIA_TOKEN.to_owned(), Value::String(token.to_owned()));
            }
            Value::Null => self.details = json!({ VIA_TOKEN: token }),
            // Details that are not an object keep their shape; the token
            // still shows, beside them.
            other => {
                let kept = other.take();
                self.details = json!({ "value": kept, VIA_TOKEN: token });
            }
        }
        self
    }

    /// Seals the event as number `id` after the event whose hash is `prev_hash`.
    pub fn seal(self, id: i64, prev_hash: &str) -> LedgerEvent {
        let mut ev = LedgerEvent {
            id,
            at: self.at,
            actor: self.actor,
            action: self.action,
            model_id: self.model_id,
            version: self.version,
            environment: self.environment,
            cluster: self.cluster,
            reason: self.reason,
            details: self.details,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        ev.hash = ev.compute_hash();
        ev
    }
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub id: i64,
    pub at: Timestamp,
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

impl LedgerEvent {
    /// The canonical content the hash covers.
    pub fn content(&self) -> Value {
        json!({
            "id": self.id,
            "at": self.at.micros(),
            "actor": self.actor,
            "action": self.action,
            "model_id": self.model_id,
            "version": self.version,
            "environment": self.environment,
            "cluster": self.cluster,
            "reason": self.reason,
            "details": self.details,
        })
    }

    pub fn compute_hash(&self) -> String {
        let mut bytes = self.prev_hash.clone().into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(canonical_json(&self.content()).as_bytes());
        sha256_prefixed(&bytes)
    }

    pub fn full_id(&self) -> Option<String> {
        match (&self.model_id, &self.version) {
            (Some(m), Some(v)) => Some(format!("{m}:{v}")),
            _ => None,
        }
    }
}

/// Walks the ledger in id order, checking each link. Feed it events in
/// ascending id order (in pages, for a large ledger), then call `finish`
/// with the chain head the database recorded. Read the head and the events
/// in one snapshot (one read transaction), or an event appended meanwhile
/// would look like a forgery.
///
/// Each event must have the next id, a hash that matches its content, and
/// the previous event's hash as its `prev_hash`; the last event must be the
/// one the head records. So an edited row, a deleted row (anywhere, also the
/// newest ones) and a forged row are all found, and `first_broken_id` names
/// the first event from which the chain can no longer be trusted.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The id and hash of the last event that checked out (0 and the
    /// genesis hash before any).
    last_id: i64,
    last_hash: String,
    checked: u64,
    broken: Option<(i64, String)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            last_id: FIRST_EVENT_ID - 1,
            last_hash: GENESIS_HASH.to_owned(),
            checked: 0,
            broken: None,
        }
    }
}

impl Verifier {
    /// A verifier for a stretch of the ledger that starts after event
    /// `last_id`, whose hash is taken as `last_hash` (an export's first
    /// event's `prev_hash`: what vouches for it is a checkpoint further on).
    pub fn after(last_id: i64, last_hash: &str) -> Verifier {
        Verifier {
            last_id,
            last_hash: last_hash.to_owned(),
            ..Verifier::default()
        }
    }

    /// Whether a broken link was found; later events need not be fed.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    pub fn check(&mut self, ev: &LedgerEvent) {
        if self.broken.is_some() {
            return;
        }
        self.checked += 1;
        match self.problem_with(ev) {
            Some(broken) => self.broken = Some(broken),
            None => {
                self.last_id = ev.id;
                self.last_hash.clone_from(&ev.hash);
            }
        }
    }

    /// What is wrong with `ev` as the next event: the id of the first event
    /// that can no longer be trusted, and why.
    fn problem_with(&self, ev: &LedgerEvent) -> Option<(i64, String)> {
        let expected_id = self.last_id + 1;
        if ev.id > expected_id {
            // Rows are gone; the row after the gap is the first that no longer fits.
            Some((
                ev.id,
                format!(
                    "{}: event {} follows {}",
                    missing(expected_id, ev.id - 1),
                    ev.id,
                    self.describe_last()
                ),
            ))
        } else if ev.id < expected_id {
            Some((
                ev.id,
                format!(
                    "event {} comes after event {}: events are out of order or repeated",
                    ev.id, self.last_id
                ),
            ))
        } else if ev.compute_hash() != ev.hash {
            Some((
                ev.id,
                format!("event {} was edited after it was written: its content no longer matches its hash", ev.id),
            ))
        } else if ev.prev_hash != self.last_hash {
            // Both events are self-consistent, so one of them was rewritten
            // with a recomputed hash; from the earlier one on, nothing holds.
            if self.last_id < FIRST_EVENT_ID {
                Some((
                    ev.id,
                    format!("event {} was rewritten: as the first event its prev_hash must be the genesis hash", ev.id),
                ))
            } else {
                Some((
                    self.last_id,
                    format!(
                        "event {} was rewritten: its hash is not the prev_hash that event {} recorded",
                        self.last_id, ev.id
                    ),
                ))
            }
        } else {
            None
        }
    }

    fn describe_last(&self) -> String {
        if self.last_id < FIRST_EVENT_ID {
            "the start of the ledger".to_owned()
        } else {
            format!("event {}", self.last_id)
        }
    }

    /// `head`: the (id, hash) of the newest event as the database's ledger
    /// head records it — (0, genesis hash) for an empty ledger, `None` where
    /// no head row exists yet — so that deleting the newest rows is found too.
    /// `last_id`: the highest event id in the ledger table (`None` if it is
    /// empty), so that a caller that stopped feeding events early cannot
    /// report a good chain.
    pub fn finish(self, head: Option<(i64, &str)>, last_id: Option<i64>) -> VerifyReport {
        let checked = self.checked;
        let broken = |id: Option<i64>, problem: String| VerifyReport {
            ok: false,
            checked,
            first_broken_id: id,
            problem: Some(problem),
        };
        if let Some((id, problem)) = self.broken {
            return broken(Some(id), problem);
        }
        let last = self.last_id;
        let table_last = last_id.unwrap_or(FIRST_EVENT_ID - 1);
        if table_last != last {
            return broken(
                Some(table_last.min(last) + 1),
                format!(
                    "not every event was checked: the ledger's last event is {table_last}, \
                     but the events checked end at {last}"
                ),
            );
        }
        match head {
            None if last < FIRST_EVENT_ID => VerifyReport {
                ok: true,
                checked,
                first_broken_id: None,
                problem: None,
            },
            None => broken(
                None,
                format!("the ledger head is missing, so deletion of the newest events cannot be ruled out (the chain ends at event {last})"),
            ),
            Some((head_id, head_hash)) if head_id == last && head_hash == self.last_hash => VerifyReport {
                ok: true,
                checked,
                first_broken_id: None,
                problem: None,
            },
            Some((head_id, _)) if head_id > last => broken(
                Some(last + 1),
                format!(
                    "{}: the ledger head records event {head_id} but the chain ends at {}",
                    missing(last + 1, head_id),
                    self.describe_last()
                ),
            ),
            Some((head_id, _)) if head_id < last => broken(
                Some(head_id + 1),
                format!(
                    "{} not recorded in the ledger head, which ends at event {head_id}: \
                     written outside Switchyard",
                    events_are(head_id + 1, last)
                ),
            ),
            Some((head_id, _)) if head_id < FIRST_EVENT_ID => broken(
                None,
                "the ledger head of an empty ledger must hold the genesis hash; it was edited".to_owned(),
            ),
            Some((head_id, _)) => broken(
                Some(head_id),
                format!(
                    "event {head_id} does not have the hash the ledger head recorded for it: \
                     it was rewritten (or the head was edited)"
                ),
            ),
        }
    }
}

/// "event 4 is" / "events 4 to 6 are".
fn events_are(from: i64, to: i64) -> String {
    if from == to {
        format!("event {from} is")
    } else {
        format!("events {from} to {to} are")
    }
}

/// "event 4 is missing" / "events 4 to 6 are missing".
fn missing(from: i64, to: i64) -> String {
    format!("{} missing", events_are(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FullId;

    #[test]
    fn every_action_constant_is_in_action_all_so_the_audit_filter_knows_it() {
        let source = include_str!("ledger.rs");
        let start = source.find("pub mod action {").expect("the action module");
        let end = source[start..].find("pub const ALL").expect("ALL") + start;
        let declared: Vec<&str> = source[start..end]
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("pub const ") && l.contains(": &str = \""))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert!(declared.len() >= 29, "{declared:?}");
        for a in declared {
            assert!(action::ALL.contains(&a), "{a} is missing from action::ALL");
        }
    }

    /// A sealed chain of `n` events with ids 1..=n.
    fn chain(n: i64) -> Vec<LedgerEvent> {
        let mut events: Vec<LedgerEvent> = Vec::new();
        for id in 1..=n {
            let prev = events
                .last()
                .map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
            let ev = NewEvent::new(
                Timestamp::from_micros(1_000_000 * id),
                "alice",
                action::STAGE_CHANGED,
            )
            .full_id(&FullId::parse(&format!("chat:v{id}")).expect("valid"))
            .environment("production")
            .reason(Some("release"))
            .details(json!({"from": "staging", "to": "production"}))
            .seal(id, &prev);
            events.push(ev);
        }
        events
    }

    fn head_of(events: &[LedgerEvent]) -> (i64, String) {
        events
            .last()
            .map_or((0, GENESIS_HASH.to_owned()), |e| (e.id, e.hash.clone()))
    }

    /// Verifies `rows` (as read back from the table) against `head`.
    fn verify(rows: &[LedgerEvent], head: Option<(i64, &str)>) -> VerifyReport {
        let mut v = Verifier::default();
        for ev in rows {
            v.check(ev);
        }
        v.finish(head, rows.last().map(|e| e.id))
    }

    fn verify_against_head(rows: &[LedgerEvent], original: &[LedgerEvent]) -> VerifyReport {
        let (id, hash) = head_of(original);
        verify(rows, Some((id, &hash)))
    }

    #[test]
    fn the_token_used_is_kept_beside_the_details_and_the_actor_stays_the_person() {
        let at = crate::Timestamp::from_micros(1);
        let ev = NewEvent::new(at, "dave", action::ROLLBACK)
            .details(json!({ "slot": "blue" }))
            .via_token(Some("t-dave"));
        assert_eq!(ev.actor, "dave");
        assert_eq!(ev.details, json!({ "slot": "blue", "via_token": "t-dave" }));
        let plain = NewEvent::new(at, "dave", action::ROLLBACK).via_token(None);
        assert_eq!(plain.details, json!({}));
        let odd = NewEvent::new(at, "dave", action::ROLLBACK)
            .details(json!([1]))
            .via_token(Some("t"));
        assert_eq!(odd.details, json!({ "value": [1], "via_token": "t" }));
    }

    #[test]
    fn an_untouched_ledger_verifies_and_counts_every_event() {
        let events = chain(5);
        let report = verify_against_head(&events, &events);
        assert_eq!(
            report,
            VerifyReport {
                ok: true,
                checked: 5,
                first_broken_id: None,
                problem: None
            }
        );
    }

    #[test]
    fn an_empty_ledger_with_its_head_at_id_0_verifies() {
        let report = verify(&[], Some((0, GENESIS_HASH)));
        assert!(report.ok, "{report:?}");
        assert_eq!(report.checked, 0);
    }

    #[test]
    fn a_fresh_ledger_without_a_head_row_verifies() {
        assert!(verify(&[], None).ok);
    }

    #[test]
    fn an_edited_row_is_named_as_the_first_broken_event() {
        let events = chain(5);
        let mut rows = events.clone();
        rows[2].actor = "mallory".into();
        let report = verify_against_head(&rows, &events);
        assert!(!report.ok);
        assert_eq!(report.first_broken_id, Some(3));
        assert_eq!(report.checked, 3);
        assert!(
            report
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("event 3 was edited")),
            "{report:?}"
        );
    }

    #[test]
    fn an_edited_row_whose_hash_was_recomputed_is_still_named() {
        let events = chain(5);
        let mut rows = events.clone();
        rows[2].reason = Some("covering tracks".into());
        rows[2].hash = rows[2].compute_hash();
        let report = verify_against_head(&rows, &events);
        assert_eq!(report.first_broken_id, Some(3), "{report:?}");
        assert!(
            report
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("event 3 was rewritten")),
            "{report:?}"
        );
    }

    #[test]
    fn editing_the_details_json_breaks_the_chain() {
        let events = chain(3);
        let mut rows = events.clone();
        rows[1].details = json!({"from": "staging", "to": "development"});
        assert_eq!(verify_against_head(&rows, &events).first_broken_id, Some(2));
    }

    #[test]
    fn a_deleted_middle_row_is_reported_at_the_row_after_the_gap() {
        let events = chain(5);
        let mut rows = events.clone();
        rows.remove(2); // event 3
        let report = verify_against_head(&rows, &events);
        assert!(!report.ok);
        assert_eq!(report.first_broken_id, Some(4));
        assert_eq!(
            report.problem.as_deref(),
            Some("event 3 is missing: event 4 follows event 2")
        );
    }

    #[test]
    fn several_deleted_middle_rows_are_reported_as_a_range() {
        let events = chain(6);
        let rows: Vec<LedgerEvent> = events
            .iter()
            .filter(|e| !(2..=4).contains(&e.id))
            .cloned()
            .collect();
        let report = verify_against_head(&rows, &events);
        assert_eq!(report.first_broken_id, Some(5));
        assert_eq!(
            report.problem.as_deref(),
            Some("events 2 to 4 are missing: event 5 follows event 1")
        );
    }

    #[test]
    fn a_deleted_first_row_is_reported_at_the_row_after_it() {
        let events = chain(3);
        let report = verify_against_head(&events[1..], &events);
        assert_eq!(report.first_broken_id, Some(2));
        assert!(
            report
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("the start of the ledger")),
            "{report:?}"
        );
    }

    #[test]
    fn a_deleted_newest_row_is_found_through_the_head_and_named() {
        let events = chain(5);
        let report = verify_against_head(&events[..4], &events);
        assert!(!report.ok);
        assert_eq!(report.checked, 4);
        assert_eq!(report.first_broken_id, Some(5));
        assert_eq!(
            report.problem.as_deref(),
            Some(
                "event 5 is missing: the ledger head records event 5 but the chain ends at event 4"
            )
        );
    }

    #[test]
    fn several_deleted_newest_rows_are_named_from_the_first_missing_one() {
        let events = chain(5);
        let report = verify_against_head(&events[..2], &events);
        assert_eq!(report.first_broken_id, Some(3));
        assert!(
            report
                .problem
                .as_deref()
                .is_some_and(|p| p.starts_with("events 3 to 5 are missing")),
            "{report:?}"
        );
    }

    #[test]
    fn a_ledger_emptied_of_all_rows_is_found_through_the_head() {
        let events = chain(3);
        let report = verify_against_head(&[], &events);
        assert!(!report.ok);
        assert_eq!(report.first_broken_id, Some(1));
    }

    #[test]
    fn a_missing_head_row_with_events_is_not_ok() {
        let events = chain(2);
        let report = verify(&events, None);
        assert!(!report.ok);
        assert!(
            report
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("head is missing")),
            "{report:?}"
        );
    }

    #[test]
    fn a_newest_row_rewritten_together_with_its_hash_is_found_through_the_head() {
        let events = chain(4);
        let mut rows = events.clone();
        rows[3].actor = "mallory".into();
        rows[3].hash = rows[3].compute_hash();
        let report = verify_against_head(&rows, &events);
        assert!(!report.ok);
        assert_eq!(report.first_broken_id, Some(4));
    }

    #[test]
    fn rows_appended_behind_the_heads_back_are_reported_from_the_first_one() {
        let events = chain(5);
        let (_, h3) = head_of(&events[..3]);
        let report = verify(&events, Some((3, &h3)));
        assert!(!report.ok);
        assert_eq!(report.first_broken_id, Some(4));
        assert!(
            report
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("events 4 to 5 are not recorded")),
            "{report:?}"
        );
    }

    #[test]
    fn an_edited_head_hash_is_not_ok() {
        let events = chain(2);
        let report = verify(&events, Some((2, GENESIS_HASH)));
        assert!(!report.ok);
        assert_eq!(report.first_broken_id, Some(2));
        assert!(!verify(&[], Some((0, "sha256:bad"))).ok);
    }

    #[test]
    fn a_first_event_not_chained_to_genesis_is_broken() {
        let forged = NewEvent::new(Timestamp::from_micros(1), "mallory", action::PIN_CHANGED).seal(
            1,
            "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        );
        let report = verify(std::slice::from_ref(&forged), Some((1, &forged.hash)));
        assert_eq!(report.first_broken_id, Some(1));
    }

    #[test]
    fn an_event_that_repeats_an_earlier_id_is_refused() {
        let events = chain(3);
        let mut v = Verifier::default();
        v.check(&events[0]);
        v.check(&events[0]);
        assert!(v.is_broken());
        let report = v.finish(Some((3, &events[2].hash)), Some(3));
        assert_eq!(report.first_broken_id, Some(1));
        assert!(
            report
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("out of order")),
            "{report:?}"
        );
    }

    #[test]
    fn a_caller_that_stops_feeding_events_early_does_not_get_an_ok() {
        let events = chain(4);
        let mut v = Verifier::default();
        v.check(&events[0]);
        v.check(&events[1]);
        let (id, hash) = head_of(&events);
        let report = v.finish(Some((id, &hash)), Some(4));
        assert!(!report.ok);
        assert_eq!(report.first_broken_id, Some(3));
    }

    #[test]
    fn the_hash_covers_every_field_of_the_event() {
        let base = NewEvent::new(Timestamp::from_micros(1), "alice", action::PIN_CHANGED)
            .model(&crate::ModelId::parse("chat").expect("valid"))
            .environment("production")
            .cluster("eu-1")
            .reason(Some("r"))
            .details(json!({"k": 1}));
        let h = |ev: NewEvent| ev.seal(1, GENESIS_HASH).hash;
        let original = h(base.clone());
        let mut variants = vec![
            NewEvent {
                at: Timestamp::from_micros(2),
                ..base.clone()
            },
            NewEvent {
                actor: "bob".into(),
                ..base.clone()
            },
            NewEvent {
                action: action::STAGE_CHANGED.into(),
                ..base.clone()
            },
            NewEvent {
                model_id: None,
                ..base.clone()
            },
            NewEvent {
                version: Some("v1".into()),
                ..base.clone()
            },
            NewEvent {
                environment: Some("staging".into()),
                ..base.clone()
            },
            NewEvent {
                cluster: None,
                ..base.clone()
            },
            NewEvent {
                reason: None,
                ..base.clone()
            },
            NewEvent {
                details: json!({"k": 2}),
                ..base.clone()
            },
        ];
        for ev in variants.drain(..) {
            assert_ne!(h(ev.clone()), original, "{ev:?}");
        }
        assert_ne!(
            base.clone().seal(2, GENESIS_HASH).hash,
            original,
            "the id is covered"
        );
        assert_ne!(
            base.seal(1, &original).hash,
            original,
            "the previous hash is covered"
        );
    }

    #[test]
    fn an_events_hash_is_stable_so_ledgers_written_by_older_releases_still_verify() {
        let ev = NewEvent::new(
            Timestamp::from_micros(1_772_546_400_000_000),
            "alice",
            action::VERSION_REGISTERED,
        )
        .full_id(&FullId::parse("chat:v1").expect("valid"))
        .details(json!({"config_hash": "sha256:abc"}))
        .seal(1, GENESIS_HASH);
        // Computed independently: sha256(GENESIS_HASH + "\n" + the sorted, compact JSON content).
        assert_eq!(
            ev.hash,
            "sha256:46b9690c62f01b5d6502ddd36af8f9271d5b70e27e5e923ff86b8f5087cc0dc3"
        );
    }

    #[test]
    fn a_stretch_of_the_ledger_verifies_from_the_hash_before_it() {
        let events = chain(6);
        let mut v = Verifier::after(2, &events[1].hash);
        for ev in &events[2..] {
            v.check(ev);
        }
        assert!(v.finish(Some((6, &events[5].hash)), Some(6)).ok);
        let mut v = Verifier::after(2, &events[0].hash);
        v.check(&events[2]);
        assert_eq!(v.finish(None, Some(3)).first_broken_id, Some(2));
    }

    #[test]
    fn an_event_names_its_full_id_when_it_has_model_and_version() {
        let events = chain(1);
        assert_eq!(events[0].full_id().as_deref(), Some("chat:v1"));
        let ev = NewEvent::new(Timestamp::from_micros(1), "a", action::ENVIRONMENT_CHANGED)
            .seal(1, GENESIS_HASH);
        assert_eq!(ev.full_id(), None);
    }
}
