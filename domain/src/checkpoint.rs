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
}
