//! Signed ledger checkpoints on the command line (issue 17): `audit keygen`,
//! `audit public-key`, `audit checkpoint` and the checkpoint part of
//! `audit verify`. The message format and the chain rules are in
//! `switchyard_domain::checkpoint`; this module reads and writes the files and
//! signs with Ed25519 (`ed25519-dalek`).
//!
//! Files: the signing key is 64 hex digits (the 32-byte Ed25519 seed) and a
//! newline, mode 0600; the public key is printed as 64 hex digits; the
//! checkpoint file holds one JSON object per line.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use switchyard_domain::checkpoint::{self, Checkpoint, LedgerNow, GENESIS};
use switchyard_domain::Timestamp;

use super::{Failure, Outcome};
use crate::store::Store;

/// Writes a new signing key to `out` (refused if the file exists) and prints
/// its public key.
pub(super) fn keygen(out: &Path) -> Outcome {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(out).map_err(|e| {
        Failure::usage(format!(
            "cannot create the key file {}: {e} (keygen never overwrites a key)",
            out.display()
        ))
    })?;
    writeln!(file, "{}", hex::encode(key.to_bytes()))
        .with_context(|| format!("cannot write the key file {}", out.display()))?;
    println!("{}", hex::encode(key.verifying_key().to_bytes()));
    eprintln!(
        "signing key written to {} (mode 0600); the line above is its public key: \
         give it to whoever verifies checkpoints",
        out.display()
    );
    Ok(())
}

/// Prints the public key of the signing key in `key`.
pub(super) fn public_key(key: &Path) -> Outcome {
    let key = read_signing_key(key)?;
    println!("{}", hex::encode(key.verifying_key().to_bytes()));
    Ok(())
}

fn read_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read the key file {}: {e}", path.display())))?;
    let bytes: [u8; 32] = decode_32(text.trim()).ok_or_else(|| {
        Failure::usage(format!(
            "the key file {} does not hold a signing key (64 hex digits, as `audit keygen` writes)",
            path.display()
        ))
    })?;
    Ok(SigningKey::from_bytes(&bytes))
}

fn decode_32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// The public key given on the command line: 64 hex digits, or a file holding them.
pub(super) fn read_public_key(arg: &str) -> Result<VerifyingKey, Failure> {
    let text = match decode_32(arg.trim()) {
        Some(_) => arg.to_owned(),
        None => std::fs::read_to_string(arg).map_err(|e| {
            Failure::usage(format!(
                "--public-key is neither 64 hex digits nor a readable file ({arg}: {e})"
            ))
        })?,
    };
    let bytes = decode_32(text.trim()).ok_or_else(|| {
        Failure::usage(format!(
            "the public key {arg} is not 64 hex digits (as `audit public-key` prints)"
        ))
    })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| Failure::usage(format!("the public key {arg} is not an Ed25519 key: {e}")))
}

/// Reads a checkpoint file; a missing file is an empty one when `missing_ok`.
pub(super) fn read_checkpoints(path: &Path, missing_ok: bool) -> Result<Vec<Checkpoint>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Failure::usage(format!(
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
                Failure::refused(format!(
                    "line {} of the checkpoint file {} is not a checkpoint: {e}",
                    i + 1,
                    path.display()
                ))
            })
        })
        .collect()
}

/// Signs the ledger head and appends the checkpoint to `out`; returns it.
pub(crate) async fn append(
    store: &dyn Store,
    key: &SigningKey,
    out: &Path,
) -> Result<Checkpoint, Failure> {
    let previous = read_checkpoints(out, true)?;
    checkpoint::check_chain(&previous).map_err(|e| {
        Failure::refused(format!(
            "the checkpoint file {} is broken, not appending to it: {e}",
            out.display()
        ))
    })?;
    let (head_id, head_hash) = store
        .ledger_head()
        .await
        .context("cannot read the ledger head")?
        .ok_or_else(|| Failure::refused("the ledger is empty: nothing to checkpoint"))?;
    let (event, count) = store
        .ledger_event(head_id)
        .await
        .context("cannot read the ledger head event")?;
    let event = event.ok_or_else(|| {
        Failure::refused(format!(
            "the ledger head names event {head_id}, which is missing: run `audit verify`"
        ))
    })?;
    if event.hash != head_hash {
        return Err(Failure::refused(format!(
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
    let line = serde_json::to_string(&cp).context("cannot encode the checkpoint")?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("cannot open the checkpoint file {}", out.display()))?;
    writeln!(file, "{line}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot append to the checkpoint file {}", out.display()))?;
    Ok(cp)
}

/// `audit checkpoint --key --out`.
pub(super) async fn run(store: &dyn Store, key: &Path, out: &Path) -> Outcome {
    let key = read_signing_key(key)?;
    let cp = append(store, &key, out).await?;
    println!(
        "{} signed: {} events, hash {}, appended to {}",
        cp.label(),
        cp.count,
        cp.event_hash,
        out.display()
    );
    Ok(())
}

/// What the checkpoints said of a ledger that they do not contradict.
pub(super) struct Verified {
    /// How many checkpoints were checked.
    pub(super) checked: usize,
    /// After a restore: the newest checkpoint whose head the restored ledger
    /// does not reach (see `checkpoint::newest_beyond`).
    pub(super) beyond: Option<Checkpoint>,
}

/// The checkpoint part of `audit verify` and `restore`: every signature, the
/// chain of checkpoints, and that the ledger still holds every checkpointed
/// head — after a restore (`restored`), only the heads it reaches, the
/// newest of the others being returned. Returns every problem found, one per line.
pub(super) async fn verify(
    store: &dyn Store,
    file: &Path,
    public_key: &str,
    restored: bool,
) -> Result<Verified, Failure> {
    let key = read_public_key(public_key)?;
    let checkpoints = read_checkpoints(file, false)?;
    let mut problems = Vec::new();
    for cp in &checkpoints {
        let signature = hex::decode(&cp.signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok());
        let valid = signature.is_some_and(|s| key.verify_strict(&cp.message(), &s).is_ok());
        if !valid {
            problems.push(format!(
                "{} : the signature does not verify with public key {} \
                 (the checkpoint was forged or altered, or signed with another key)",
                cp.label(),
                hex::encode(key.to_bytes())
            ));
        }
    }
    if let Err(e) = checkpoint::check_chain(&checkpoints) {
        problems.push(e);
    }
    let head_id = store
        .ledger_head()
        .await
        .context("cannot read the ledger head")?
        .map_or(0, |(id, _)| id);
    let beyond = if restored {
        checkpoint::newest_beyond(&checkpoints, head_id).cloned()
    } else {
        None
    };
    for cp in checkpoints
        .iter()
        .filter(|cp| !restored || cp.event_id <= head_id)
    {
        let (event, count) = store
            .ledger_event(cp.event_id)
            .await
            .context("cannot read the ledger")?;
        let now = LedgerNow {
            event_hash: event.map(|e| e.hash),
            count,
            head_id,
        };
        if let Err(e) = checkpoint::check_against_ledger(cp, &now) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(Verified {
            checked: checkpoints.len(),
            beyond,
        })
    } else {
        Err(Failure::refused(format!(
            "checkpoints CONTRADICTED ({} of {} checkpoints in {}):\n{}",
            problems.len(),
            checkpoints.len(),
            file.display(),
            problems.join("\n")
        )))
    }
}

/// `serve`'s periodic checkpoints: SWITCHYARD_CHECKPOINT_KEY and
/// SWITCHYARD_CHECKPOINT_FILE (both or neither), SWITCHYARD_CHECKPOINT_INTERVAL_SECS
/// (default 3600, at least 1).
pub(super) struct Periodic {
    key: SigningKey,
    file: std::path::PathBuf,
    interval: std::time::Duration,
}

impl Periodic {
    /// The settings from the environment; `None` when checkpoints are off.
    pub(super) fn from_env() -> Result<Option<Periodic>, Failure> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (key, file) = match (
            var("SWITCHYARD_CHECKPOINT_KEY"),
            var("SWITCHYARD_CHECKPOINT_FILE"),
        ) {
            (None, None) => return Ok(None),
            (Some(key), Some(file)) => (key, file),
            _ => {
                return Err(Failure::usage(
                    "SWITCHYARD_CHECKPOINT_KEY and SWITCHYARD_CHECKPOINT_FILE go together: \
                     set both (the signing key file and the checkpoint file) or neither",
                ))
            }
        };
        let secs = match var("SWITCHYARD_CHECKPOINT_INTERVAL_SECS") {
            None => 3600,
            Some(v) => v.trim().parse::<u64>().ok().filter(|s| *s >= 1).ok_or_else(|| {
                Failure::usage(format!(
                    "SWITCHYARD_CHECKPOINT_INTERVAL_SECS must be a whole number of seconds, at least 1 (got {v:?})"
                ))
            })?,
        };
        Ok(Some(Periodic {
            key: read_signing_key(Path::new(&key))?,
            file: file.into(),
            interval: std::time::Duration::from_secs(secs),
        }))
    }

    /// Signs the ledger head every interval (the first at once), skipping
    /// when the head has not moved since the file's last checkpoint.
    pub(super) fn spawn(self, store: crate::store::DynStore) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match self.once(store.as_ref()).await {
                    Ok(Some(cp)) => tracing::info!(
                        checkpoint = cp.seq,
                        event_id = cp.event_id,
                        file = %self.file.display(),
                        "ledger checkpoint signed"
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::error!(
                        file = %self.file.display(),
                        error = %e.message,
                        "cannot write a ledger checkpoint"
                    ),
                }
            }
        })
    }

    async fn once(&self, store: &dyn Store) -> Result<Option<Checkpoint>, Failure> {
        let last = read_checkpoints(&self.file, true)?.pop();
        let head = store
            .ledger_head()
            .await
            .context("cannot read the ledger head")?;
        match (last, head) {
            (_, None) => Ok(None),
            (Some(last), Some((id, _))) if last.event_id == id => Ok(None),
            _ => append(store, &self.key, &self.file).await.map(Some),
        }
    }
}
