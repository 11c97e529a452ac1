//! Signed ledger checkpoints on the server's side (issue 17): reading and
//! appending the checkpoint file, signing with Ed25519 (`ed25519-dalek`),
//! and verifying a file against the ledger — the one function
//! `audit verify --checkpoints`, `restore --checkpoints` and the console's
//! "Verify chain" share. The rules (message format, chain of checkpoints,
//! what contradicts a checkpoint) are `switchyard_domain::checkpoint`'s; this
//! module does the I/O and the cryptography around them.
//!
//! The checkpoint file holds one JSON object per line.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use switchyard_domain::checkpoint::{
    self, Checkpoint, CheckpointReport, LedgerNow, Observed, GENESIS,
};
use switchyard_domain::Timestamp;

use crate::store::{Store, StoreError};

/// Why checkpoints could not be read, written or verified.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint file cannot be read (missing, no permission).
    #[error("{0}")]
    Unreadable(String),
    /// The file or the ledger is not in a state to go on: a line that is
    /// not a checkpoint, a broken file to append to, an empty ledger.
    #[error("{0}")]
    Refused(String),
    /// The database failed.
    #[error("{what}: {source}")]
    Store {
        what: &'static str,
        #[source]
        source: StoreError,
    },
}

fn store_error(what: &'static str) -> impl FnOnce(StoreError) -> CheckpointError {
    move |source| CheckpointError::Store { what, source }
}

/// A public key as `audit public-key` prints it (64 hex digits); the error
/// says what is wrong and what to give instead.
pub fn public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = checkpoint::parse_public_key(text)?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| {
        format!(
            "the public key {} is not an Ed25519 public key ({e}): copy it again as \
             `switchyard audit public-key --key FILE` prints it",
            text.trim()
        )
    })
}

/// Reads a checkpoint file; a missing file is an empty one when `missing_ok`.
pub fn read_file(path: &Path, missing_ok: bool) -> Result<Vec<Checkpoint>, CheckpointError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CheckpointError::Unreadable(format!(
                "cannot read the checkpoint file {}: {e}",
                path.display()
            )))
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                CheckpointError::Refused(format!(
                    "line {} of the checkpoint file {} is not a checkpoint: {e}",
                    i + 1,
                    path.display()
                ))
            })
        })
        .collect()
}

/// The ledger now where `cp` signed its head; `head_id`: the ledger's head now.
pub async fn ledger_at(
    store: &dyn Store,
    cp: &Checkpoint,
    head_id: i64,
) -> Result<LedgerNow, CheckpointError> {
    let (event, count) = store
        .ledger_event(cp.event_id)
        .await
        .map_err(store_error("cannot read the ledger"))?;
    Ok(LedgerNow {
        event_hash: event.map(|e| e.hash),
        count,
        head_id,
    })
}

/// The ledger's head id and number of events now (0 and 0 when empty).
async fn ledger_now(store: &dyn Store) -> Result<(i64, i64), CheckpointError> {
    let head_id = store
        .ledger_head()
        .await
        .map_err(store_error("cannot read the ledger head"))?
        .map_or(0, |(id, _)| id);
    let count = if head_id == 0 {
        0
    } else {
        store
            .ledger_event(head_id)
            .await
            .map_err(store_error("cannot read the ledger"))?
            .1
    };
    Ok((head_id, count))
}

/// Verifies the checkpoint file `file` against the ledger with `key`: every
/// signature, the chain of checkpoints, and that the ledger still holds every
/// checkpointed head unchanged — after a restore (`restored`), only the heads
/// it reaches, the newest of the others being reported (`beyond`).
/// Contradictions are in the report's `problems`; an error means the check
/// could not be made.
pub async fn verify(
    store: &dyn Store,
    file: &Path,
    key: &VerifyingKey,
    restored: bool,
) -> Result<CheckpointReport, CheckpointError> {
    let checkpoints = read_file(file, false)?;
    let signatures = checkpoints
        .iter()
        .map(|cp| {
            hex::decode(&cp.signature)
                .ok()
                .and_then(|bytes| Signature::from_slice(&bytes).ok())
                .is_some_and(|s| key.verify_strict(&cp.message(), &s).is_ok())
        })
        .collect();
    let (head_id, head_count) = ledger_now(store).await?;
    let mut ledger = Vec::with_capacity(checkpoints.len());
    for cp in &checkpoints {
        ledger.push(if checkpoint::looked_up(cp, head_id, restored) {
            Some(ledger_at(store, cp, head_id).await?)
        } else {
            None
        });
    }
    Ok(checkpoint::assess(
        &checkpoints,
        &Observed {
            public_key: hex::encode(key.to_bytes()),
            signatures,
            ledger,
            head_id,
            head_count,
            restored,
        },
    ))
}

/// Signs the ledger head with `key` and appends the checkpoint to `out`
/// (created if missing; refused if its chain is broken); returns it.
pub async fn append(
    store: &dyn Store,
    key: &SigningKey,
    out: &Path,
) -> Result<Checkpoint, CheckpointError> {
    let previous = read_file(out, true)?;
    checkpoint::check_chain(&previous).map_err(|e| {
        CheckpointError::Refused(format!(
            "the checkpoint file {} is broken, not appending to it: {e}",
            out.display()
        ))
    })?;
    let (head_id, head_hash) = store
        .ledger_head()
        .await
        .map_err(store_error("cannot read the ledger head"))?
        .ok_or_else(|| {
            CheckpointError::Refused("the ledger is empty: nothing to checkpoint".into())
        })?;
    let (event, count) = store
        .ledger_event(head_id)
        .await
        .map_err(store_error("cannot read the ledger head event"))?;
    let event = event.ok_or_else(|| {
        CheckpointError::Refused(format!(
            "the ledger head names event {head_id}, which is missing: run `audit verify`"
        ))
    })?;
    if event.hash != head_hash {
        return Err(CheckpointError::Refused(format!(
            "the ledger head's hash differs from event {head_id}'s: run `audit verify`"
        )));
    }
    let mut cp = Checkpoint {
        seq: previous.len() as u64 + 1,
        event_id: head_id,
        event_hash: event.hash,
        event_at: event.at.micros(),
        count,
        signed_at: Timestamp::now().micros(),
        prev: previous
            .last()
            .map_or_else(|| GENESIS.to_owned(), Checkpoint::hash),
        signature: String::new(),
    };
    cp.signature = hex::encode(key.sign(&cp.message()).to_bytes());
    let line = serde_json::to_string(&cp)
        .map_err(|e| CheckpointError::Refused(format!("cannot encode the checkpoint: {e}")))?;
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .and_then(|mut file| writeln!(file, "{line}").and_then(|()| file.sync_all()));
    written.map_err(|e| {
        CheckpointError::Refused(format!(
            "cannot append to the checkpoint file {}: {e}",
            out.display()
        ))
    })?;
    Ok(cp)
}
