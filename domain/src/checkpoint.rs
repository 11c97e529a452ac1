//! Signed ledger checkpoints (issue 17): the canonical message a checkpoint
//! key signs, the chain checkpoints form, and what a checkpoint says about the
//! ledger as it is now. No I/O and no cryptography here: the server signs and
//! verifies the bytes of [`Checkpoint::message`] with Ed25519.
//!
//! A checkpoint file holds one JSON line per checkpoint. Each names the hash
//! of the previous line's checkpoint (`prev`), so a deleted or reordered
//! line breaks the chain, and each signs the ledger head as it was: a later
//! truncation or rewrite of those events contradicts it.

use serde::{Deserialize, Serialize};

use crate::config_hash::sha256_prefixed;

/// What the first checkpoint of a file names as its predecessor.
pub const GENESIS: &str = "genesis";

/// The first line of every signed message: the format's name and version.
pub const MESSAGE_HEADER: &str = "switchyard-checkpoint-v1";

/// One signed statement about the ledger head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1 for the first checkpoint of a file, then +1 per line.
    pub seq: u64,
    /// The ledger head's event id.
    pub event_id: i64,
    /// That event's hash.
    pub event_hash: String,
    /// That event's time, microseconds since the Unix epoch.
    pub event_at: i64,
    /// Number of events in the ledger up to and including `event_id`.
    pub count: i64,
    /// When the checkpoint was signed, microseconds since the Unix epoch.
    pub signed_at: i64,
    /// [`Checkpoint::hash`] of the previous checkpoint, or [`GENESIS`].
    pub prev: String,
    /// Hex Ed25519 signature of [`Checkpoint::message`].
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes that are signed: one field per line, in this order,
    /// each line ending with `\n`.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{MESSAGE_HEADER}\nseq {}\nevent_id {}\nevent_hash {}\nevent_at {}\ncount {}\nsigned_at {}\nprev {}\n",
            self.seq,
            self.event_id,
            self.event_hash,
            self.event_at,
            self.count,
            self.signed_at,
            self.prev
        )
        .into_bytes()
    }

    /// What the next checkpoint names as `prev`: sha256 over the message and
    /// the signature (`message + "signature " + hex + "\n"`).
    pub fn hash(&self) -> String {
        let mut bytes = self.message();
        bytes.extend_from_slice(format!("signature {}\n", self.signature).as_bytes());
        sha256_prefixed(&bytes)
    }

    /// How a checkpoint is named in reports.
    pub fn label(&self) -> String {
        format!(
            "checkpoint {} (event {}, {})",
            self.seq,
            self.event_id,
            crate::Timestamp::from_micros(self.event_at)
        )
    }
}

/// Checks that `checkpoints` (in file order) form a chain from [`GENESIS`]:
/// `seq` counts up from 1 and each `prev` is the previous checkpoint's hash.
/// Returns one line naming the first checkpoint that breaks it.
pub fn check_chain(checkpoints: &[Checkpoint]) -> Result<(), String> {
    let mut expected_prev = GENESIS.to_owned();
    for (i, cp) in checkpoints.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if cp.seq != expected_seq {
            return Err(format!(
                "{} is line {expected_seq} of the checkpoint file: checkpoint {expected_seq} is missing \
                 (deleted or reordered lines)",
                cp.label()
            ));
        }
        if cp.prev != expected_prev {
            return Err(format!(
                "{} does not follow the checkpoint before it: it names {} as previous, \
                 the file holds {} (a checkpoint was removed, replaced or reordered)",
                cp.label(),
                cp.prev,
                expected_prev
            ));
        }
        expected_prev = cp.hash();
    }
    Ok(())
}

/// What the ledger holds now where a checkpoint signed its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerNow {
    /// The hash of the event with the checkpoint's id, if that event exists.
    pub event_hash: Option<String>,
    /// The number of events up to and including that id.
    pub count: i64,
    /// The ledger's head id now (0 when empty).
    pub head_id: i64,
}

/// Whether the ledger as it is now still contains the checkpointed head
/// unchanged; the error names the checkpoint and what contradicts it.
pub fn check_against_ledger(cp: &Checkpoint, now: &LedgerNow) -> Result<(), String> {
    match now.event_hash.as_deref() {
        None => Err(format!(
            "{} : event {} is missing — the ledger was truncated after event {}",
            cp.label(),
            cp.event_id,
            now.head_id
        )),
        Some(hash) if hash != cp.event_hash => Err(format!(
            "{} : event {} has hash {hash}, the checkpoint signed {} — the ledger was rewritten \
             up to event {}",
            cp.label(),
            cp.event_id,
            cp.event_hash,
            cp.event_id
        )),
        Some(_) if now.count < cp.count => Err(format!(
            "{} : the ledger holds {} events up to event {}, the checkpoint signed {} — events were deleted",
            cp.label(),
            now.count,
            cp.event_id,
            cp.count
        )),
        Some(_) => Ok(()),
    }
}

/// After a restore, the newest checkpoint that signed a head the restored
/// ledger does not reach (`head_id`: its head now): the backup is older than
/// that checkpoint. `None` when the restored ledger reaches every checkpoint.
pub fn newest_beyond(checkpoints: &[Checkpoint], head_id: i64) -> Option<&Checkpoint> {
    checkpoints
        .iter()
        .filter(|cp| cp.event_id > head_id)
        .max_by_key(|cp| cp.seq)
}

/// What a restore reports when the backup is older than checkpoint `cp`.
pub fn older_than(cp: &Checkpoint, head_id: i64) -> String {
    format!(
        "the restored database is older than the newest checkpoint: {} signed {} events, the \
         restored ledger ends at event {head_id}, so {} (up to {}) written after the backup was \
         taken {} not in it. Keep this checkpoint file as the record of them; checkpoints of the \
         restored database belong in a new file",
        cp.label(),
        cp.count,
        if head_id + 1 == cp.event_id {
            format!("event {}", cp.event_id)
        } else {
            format!("events {} to {}", head_id + 1, cp.event_id)
        },
        crate::Timestamp::from_micros(cp.event_at),
        if head_id + 1 == cp.event_id {
            "is"
        } else {
            "are"
        }
    )
}

/// Reads an Ed25519 public key as `switchyard audit public-key` prints it:
/// 64 hex digits, surrounding whitespace ignored. The error says what is
/// wrong with `text` and what to give instead.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    const HOW: &str = "an Ed25519 public key is 64 hex digits, as `switchyard audit public-key --key FILE` prints it";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("no public key was given: {HOW}"));
    }
    if let Some((at, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        return Err(format!(
            "the public key holds {c:?} (character {}), which is not a hex digit: {HOW}",
            at + 1
        ));
    }
    if text.len() != 64 {
        return Err(format!(
            "the public key has {} hex digits, not 64: {HOW}",
            text.len()
        ));
    }
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key)
        .map_err(|e| format!("the public key is not hex ({e}): {HOW}"))?;
    Ok(key)
}

/// Whether verification looks up the ledger at `cp`'s head: always, except
/// after a restore, where heads beyond the restored head (`head_id`) are not
/// expected (see [`newest_beyond`]).
pub fn looked_up(cp: &Checkpoint, head_id: i64, restored: bool) -> bool {
    !restored || cp.event_id <= head_id
}

/// What the server established about a checkpoint file, for [`assess`]: the
/// cryptography and the ledger lookups are the server's, the judgement here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The public key the signatures were checked with, as hex (for messages).
    pub public_key: String,
    /// Whether each checkpoint's signature verifies with it, in file order.
    pub signatures: Vec<bool>,
    /// The ledger where each checkpoint signed its head, in file order;
    /// `None` where it was not looked up ([`looked_up`] is false).
    pub ledger: Vec<Option<LedgerNow>>,
    /// The ledger's head id now (0 when empty).
    pub head_id: i64,
    /// The number of events in the ledger now.
    pub head_count: i64,
    /// The ledger was just restored from a backup (`restore`).
    pub restored: bool,
}

/// What verifying a checkpoint file against the ledger found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// How many checkpoints the file holds (each one was checked).
    pub checked: usize,
    /// The file's last checkpoint, if any.
    pub newest: Option<Checkpoint>,
    /// Events the ledger holds after the newest checkpoint's head: not yet
    /// vouched for by any signature.
    pub events_after_newest: i64,
    /// Every contradiction found, one line each, naming its checkpoint:
    /// a bad signature (with the key), a broken chain of checkpoints, a
    /// truncated or rewritten ledger. Empty when every checkpoint holds.
    pub problems: Vec<String>,
    /// After a restore: the newest checkpoint whose head the restored ledger
    /// does not reach (see [`newest_beyond`]).
    pub beyond: Option<Checkpoint>,
}

impl CheckpointReport {
    /// Every checkpoint holds.
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges `checkpoints` (in file order) by what the server `observed`: each
/// signature, the chain of checkpoints ([`check_chain`]), and each
/// checkpointed head against the ledger ([`check_against_ledger`]).
pub fn assess(checkpoints: &[Checkpoint], observed: &Observed) -> CheckpointReport {
    let mut problems = Vec::new();
    for (cp, valid) in checkpoints.iter().zip(&observed.signatures) {
        if !valid {
            problems.push(format!(
                "{} : the signature does not verify with public key {} \
                 (the checkpoint was forged or altered, or signed with another key)",
                cp.label(),
                observed.public_key
            ));
        }
    }
    if observed.signatures.len() != checkpoints.len() {
        problems.push(format!(
            "{} signatures were checked for {} checkpoints",
            observed.signatures.len(),
            checkpoints.len()
        ));
    }
    if let Err(e) = check_chain(checkpoints) {
        problems.push(e);
    }
    for (i, cp) in checkpoints.iter().enumerate() {
        match observed.ledger.get(i) {
            Some(Some(now)) => {
                if let Err(e) = check_against_ledger(cp, now) {
                    problems.push(e);
                }
            }
            _ if looked_up(cp, observed.head_id, observed.restored) => problems.push(format!(
                "{} : the ledger was not looked up at event {}",
                cp.label(),
                cp.event_id
            )),
            _ => {}
        }
    }
    let newest = checkpoints.last().cloned();
    CheckpointReport {
        checked: checkpoints.len(),
        events_after_newest: newest
            .as_ref()
            .map_or(observed.head_count, |cp| observed.head_count - cp.count)
            .max(0),
        newest,
        problems,
        beyond: if observed.restored {
            newest_beyond(checkpoints, observed.head_id).cloned()
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(seq: u64, event_id: i64, prev: &str) -> Checkpoint {
        Checkpoint {
            seq,
            event_id,
            event_hash: format!("sha256:{event_id:064x}"),
            event_at: 1_700_000_000_000_000 + event_id,
            count: event_id,
            signed_at: 1_800_000_000_000_000,
            prev: prev.to_owned(),
            signature: "ab".repeat(64),
        }
    }

    fn chain(n: u64) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map_or_else(|| GENESIS.to_owned(), Checkpoint::hash);
            out.push(cp(seq, seq as i64 * 10, &prev));
        }
        out
    }

    #[test]
    fn the_message_names_every_field_in_a_fixed_order() {
        let text = String::from_utf8(cp(3, 120, GENESIS).message()).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "switchyard-checkpoint-v1\nseq 3\nevent_id 120\nevent_hash sha256:{:064x}\n\
                 event_at 1700000000000120\ncount 120\nsigned_at 1800000000000000\nprev genesis\n",
                120
            )
        );
    }

    #[test]
    fn the_hash_covers_the_signature() {
        let a = cp(1, 10, GENESIS);
        let mut b = a.clone();
        b.signature = "cd".repeat(64);
        assert_ne!(a.hash(), b.hash());
        assert!(a.hash().starts_with("sha256:"));
    }

    #[test]
    fn an_intact_chain_passes() {
        assert_eq!(check_chain(&chain(4)), Ok(()));
        assert_eq!(check_chain(&[]), Ok(()));
    }

    #[test]
    fn a_deleted_middle_checkpoint_is_named() {
        let mut c = chain(4);
        c.remove(1);
        let err = check_chain(&c).expect_err("broken");
        assert!(err.contains("checkpoint 2 is missing"), "{err}");
        assert!(err.contains("checkpoint 3 (event 30"), "{err}");
    }

    #[test]
    fn a_renumbered_chain_after_a_deletion_is_still_caught_by_the_links() {
        let mut c = chain(4);
        c.remove(1);
        for (i, cp) in c.iter_mut().enumerate() {
            cp.seq = i as u64 + 1;
        }
        let err = check_chain(&c).expect_err("broken");
        assert!(err.contains("checkpoint 2 (event 30"), "{err}");
        assert!(err.contains("does not follow"), "{err}");
    }

    #[test]
    fn a_restored_ledger_behind_a_checkpoint_names_the_newest_one_it_does_not_reach() {
        let c = chain(3); // heads 10, 20, 30
        assert_eq!(newest_beyond(&c, 30), None);
        assert_eq!(newest_beyond(&c, 45), None);
        assert_eq!(newest_beyond(&c, 15).map(|cp| cp.seq), Some(3));
        let text = older_than(&c[2], 15);
        assert!(text.starts_with("the restored database is older than the newest checkpoint: checkpoint 3 (event 30, "), "{text}");
        assert!(text.contains("events 16 to 30 (up to "), "{text}");
        assert!(older_than(&c[2], 29).contains("so event 30 (up to "));
    }

    #[test]
    fn a_truncated_ledger_contradicts_the_checkpoint() {
        let now = LedgerNow {
            event_hash: None,
            count: 97,
            head_id: 97,
        };
        let err = check_against_ledger(&cp(3, 120, GENESIS), &now).expect_err("truncated");
        assert!(err.starts_with("checkpoint 3 (event 120, "), "{err}");
        assert!(
            err.ends_with("event 120 is missing — the ledger was truncated after event 97"),
            "{err}"
        );
    }

    #[test]
    fn a_rewritten_head_contradicts_the_checkpoint() {
        let c = cp(1, 10, GENESIS);
        let now = LedgerNow {
            event_hash: Some("sha256:other".into()),
            count: 10,
            head_id: 12,
        };
        let err = check_against_ledger(&c, &now).expect_err("rewritten");
        assert!(err.contains("rewritten"), "{err}");
        let ok = LedgerNow {
            event_hash: Some(c.event_hash.clone()),
            count: 10,
            head_id: 12,
        };
        assert_eq!(check_against_ledger(&c, &ok), Ok(()));
        let fewer = LedgerNow { count: 9, ..ok };
        assert!(check_against_ledger(&c, &fewer).is_err());
    }

    #[test]
    fn a_public_key_is_64_hex_digits_and_anything_else_is_named() {
        let hex = "0a".repeat(32);
        assert_eq!(parse_public_key(&format!("  {hex}\n")), Ok([10u8; 32]));
        assert_eq!(parse_public_key(&hex.to_uppercase()), Ok([10u8; 32]));
        let short = parse_public_key("abcd").expect_err("short");
        assert!(short.contains("4 hex digits, not 64"), "{short}");
        let bad = parse_public_key(&format!("{}zz", "0".repeat(62))).expect_err("not hex");
        assert!(bad.contains("'z' (character 63)"), "{bad}");
        let empty = parse_public_key(" ").expect_err("empty");
        assert!(empty.starts_with("no public key was given"), "{empty}");
        for e in [short, bad, empty] {
            assert!(
                e.contains("switchyard audit public-key"),
                "names the fix: {e}"
            );
        }
    }

    /// The ledger as it is when every checkpoint of `c` holds, `extra` events after the last.
    fn observed(c: &[Checkpoint], extra: i64) -> Observed {
        let head_id = c.last().map_or(0, |cp| cp.event_id) + extra;
        Observed {
            public_key: "ab".repeat(32),
            signatures: vec![true; c.len()],
            ledger: c
                .iter()
                .map(|cp| {
                    Some(LedgerNow {
                        event_hash: Some(cp.event_hash.clone()),
                        count: cp.count,
                        head_id,
                    })
                })
                .collect(),
            head_id,
            head_count: head_id,
            restored: false,
        }
    }

    #[test]
    fn an_intact_file_reports_its_newest_checkpoint_and_the_events_after_it() {
        let c = chain(3);
        let report = assess(&c, &observed(&c, 4));
        assert!(report.holds(), "{report:?}");
        assert_eq!(report.checked, 3);
        assert_eq!(report.newest.as_ref().map(|cp| cp.seq), Some(3));
        assert_eq!(report.events_after_newest, 4);
        assert_eq!(report.beyond, None);
        let empty = assess(&[], &observed(&[], 7));
        assert!(empty.holds() && empty.newest.is_none() && empty.events_after_newest == 7);
    }

    #[test]
    fn each_contradiction_is_one_problem_naming_its_checkpoint() {
        let c = chain(3);
        let mut seen = observed(&c, 0);
        seen.signatures[0] = false;
        seen.ledger[2] = Some(LedgerNow {
            event_hash: None,
            count: 20,
            head_id: 20,
        });
        let report = assess(&c, &seen);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert!(report.problems[0].starts_with("checkpoint 1 (event 10, "));
        assert!(report.problems[0].contains(&format!("public key {}", "ab".repeat(32))));
        assert!(report.problems[1].contains("event 30 is missing"));

        let mut deleted = chain(3);
        deleted.remove(1);
        let report = assess(&deleted, &observed(&deleted, 0));
        assert_eq!(report.problems.len(), 1);
        assert!(report.problems[0].contains("checkpoint 2 is missing"));
    }

    #[test]
    fn a_head_not_looked_up_is_a_problem_except_beyond_a_restored_head() {
        let c = chain(3);
        let mut seen = observed(&c, 0);
        seen.ledger[1] = None;
        let report = assess(&c, &seen);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].contains("not looked up at event 20"));

        let mut restored = observed(&c, 0);
        restored.head_id = 25;
        restored.head_count = 25;
        restored.restored = true;
        restored.ledger[2] = None;
        let report = assess(&c, &restored);
        assert!(report.holds(), "{:?}", report.problems);
        assert_eq!(report.beyond.map(|cp| cp.seq), Some(3));
        assert_eq!(report.events_after_newest, 0);
    }
}
