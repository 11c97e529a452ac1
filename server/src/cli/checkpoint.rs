//! Signed ledger checkpoints on the command line (issue 17): `audit keygen`,
//! `audit public-key`, `audit checkpoint`, the checkpoint part of
//! `audit verify`, and `serve`'s periodic checkpoints. The message format and
//! the chain rules are in `switchyard_domain::checkpoint`; reading, signing,
//! appending and verifying the file in `crate::checkpoints`, which the
//! console's "Verify chain" shares.
//!
//! Files: the signing key is 64 hex digits (the 32-byte Ed25519 seed) and a
//! newline, mode 0600; the public key is printed as 64 hex digits; the
//! checkpoint file holds one JSON object per line.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use ed25519_dalek::{SigningKey, VerifyingKey};
use switchyard_domain::checkpoint::{self, Checkpoint, CheckpointReport};
use switchyard_domain::Timestamp;

use super::{Failure, Outcome};
use crate::checkpoints::{self, CheckpointError};
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

/// A checkpoint error as the command line reports it: an unreadable file is
/// bad input (exit 2), the rest exit 1.
fn failure(e: CheckpointError) -> Failure {
    match e {
        CheckpointError::Unreadable(message) => Failure::usage(message),
        CheckpointError::Refused(message) => Failure::refused(message),
        store @ CheckpointError::Store { .. } => Failure::refused(store.to_string()),
    }
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
    checkpoints::public_key(&text).map_err(|e| Failure::usage(format!("--public-key {arg}: {e}")))
}

/// Reads a checkpoint file; a missing file is an empty one when `missing_ok`.
pub(super) fn read_checkpoints(path: &Path, missing_ok: bool) -> Result<Vec<Checkpoint>, Failure> {
    checkpoints::read_file(path, missing_ok).map_err(failure)
}

/// `audit checkpoint --key --out`.
pub(super) async fn run(store: &dyn Store, key: &Path, out: &Path) -> Outcome {
    let key = read_signing_key(key)?;
    let cp = checkpoints::append(store, &key, out)
        .await
        .map_err(failure)?;
    println!(
        "{} signed: {} events, hash {}, appended to {}",
        cp.label(),
        cp.count,
        cp.event_hash,
        out.display()
    );
    Ok(())
}

/// The checkpoint part of `audit verify` and `restore`
/// (`checkpoints::verify`): the report when every checkpoint holds, else
/// every problem found, one per line.
pub(super) async fn verify(
    store: &dyn Store,
    file: &Path,
    public_key: &str,
    restored: bool,
) -> Result<CheckpointReport, Failure> {
    let key = read_public_key(public_key)?;
    let report = checkpoints::verify(store, file, &key, restored)
        .await
        .map_err(failure)?;
    if report.holds() {
        Ok(report)
    } else {
        Err(Failure::refused(format!(
            "checkpoints CONTRADICTED ({} of {} checkpoints in {}):\n{}",
            report.problems.len(),
            report.checked,
            file.display(),
            report.problems.join("\n")
        )))
    }
}

/// What the periodic verification found wrong, if anything: the hash chain
/// (`Store::audit_verify`), then the newest signed checkpoint against the
/// ledger now (a truncation or a rewrite with recomputed hashes reaches it).
/// The problem in words, and details for the ledger event.
async fn ledger_problem(
    store: &dyn Store,
    last: Option<&Checkpoint>,
) -> Result<Option<(String, serde_json::Value)>, Failure> {
    let report = store
        .audit_verify()
        .await
        .context("cannot read the ledger")?;
    if !report.ok {
        let problem = format!(
            "the hash chain is broken at event {}: {}",
            report
                .first_broken_id
                .map_or_else(|| "?".to_owned(), |id| id.to_string()),
            report
                .problem
                .as_deref()
                .unwrap_or("the chain does not verify")
        );
        let details = serde_json::json!({
            "finding": format!("chain broken at event {}", report.first_broken_id.unwrap_or(0)),
            "first_broken_id": report.first_broken_id,
            "checked": report.checked,
        });
        return Ok(Some((problem, details)));
    }
    let Some(cp) = last else {
        return Ok(None);
    };
    let head_id = store
        .ledger_head()
        .await
        .context("cannot read the ledger head")?
        .map_or(0, |(id, _)| id);
    let now = checkpoints::ledger_at(store, cp, head_id)
        .await
        .map_err(failure)?;
    Ok(checkpoint::check_against_ledger(cp, &now)
        .err()
        .map(|problem| {
            let details = serde_json::json!({
                "finding": format!("checkpoint {} contradicted", cp.seq),
                "checkpoint": cp.seq,
                "checkpoint_event_id": cp.event_id,
            });
            (problem, details)
        }))
}

/// Records `ledger.verification_failed` unless the newest such event already
/// names the same finding (raised once, not at every interval: the problem's
/// words may change as the head moves, its `finding` does not).
async fn report_verification_failure(
    store: &dyn Store,
    problem: &str,
    details: serde_json::Value,
) -> Result<(), Failure> {
    let last = store
        .audit_page(&crate::store::AuditQuery {
            action: Some(switchyard_domain::ledger::action::LEDGER_VERIFICATION_FAILED.to_owned()),
            limit: 1,
            ..Default::default()
        })
        .await
        .context("cannot read the ledger")?;
    let reported = last
        .events
        .first()
        .is_some_and(|ev| ev.details.get("finding") == details.get("finding"));
    if !reported {
        let ev = store
            .record_verification_failure(problem, details, Timestamp::now())
            .await
            .context("cannot record the failed verification in the ledger")?;
        tracing::error!(
            event_id = ev.id,
            problem,
            "ledger verification failed: recorded and notified"
        );
    }
    Ok(())
}

/// `serve`'s periodic checkpoints: SWITCHYARD_CHECKPOINT_KEY with
/// SWITCHYARD_CHECKPOINT_FILE (`Config::checkpoint_file`; the file alone is
/// only read, by the console's "Verify chain"), SWITCHYARD_CHECKPOINT_INTERVAL_SECS
/// (default 3600, at least 1).
pub(super) struct Periodic {
    key: SigningKey,
    file: std::path::PathBuf,
    interval: std::time::Duration,
}

impl Periodic {
    /// The settings from the environment and `file` (the configured
    /// checkpoint file); `None` when this server signs no checkpoints.
    pub(super) fn from_env(file: Option<&Path>) -> Result<Option<Periodic>, Failure> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (key, file) = match (var("SWITCHYARD_CHECKPOINT_KEY"), file) {
            (None, None) => return Ok(None),
            (None, Some(file)) => {
                tracing::info!(
                    file = %file.display(),
                    "no SWITCHYARD_CHECKPOINT_KEY: this server signs no checkpoints; \
                     the console's \"Verify chain\" checks the ledger against the checkpoint file"
                );
                return Ok(None);
            }
            (Some(key), Some(file)) => (key, file),
            (Some(_), None) => {
                return Err(Failure::usage(
                    "SWITCHYARD_CHECKPOINT_KEY and SWITCHYARD_CHECKPOINT_FILE go together: \
                     the key signs checkpoints into that file; set SWITCHYARD_CHECKPOINT_FILE too",
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
            file: file.to_owned(),
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

    async fn verify(
        &self,
        store: &dyn Store,
        last: Option<&Checkpoint>,
    ) -> Result<Option<(String, serde_json::Value)>, Failure> {
        let found = ledger_problem(store, last).await?;
        Ok(found.map(|(problem, mut details)| {
            details["checkpoint_file"] = serde_json::json!(self.file.display().to_string());
            (problem, details)
        }))
    }

    async fn once(&self, store: &dyn Store) -> Result<Option<Checkpoint>, Failure> {
        let last = read_checkpoints(&self.file, true)?.pop();
        // A broken ledger is reported (once per problem), never signed.
        if let Some((problem, details)) = self.verify(store, last.as_ref()).await? {
            report_verification_failure(store, &problem, details).await?;
            return Err(Failure::refused(format!(
                "not signing a checkpoint: the ledger does not verify: {problem}"
            )));
        }
        let head = store
            .ledger_head()
            .await
            .context("cannot read the ledger head")?;
        match (last, head) {
            (_, None) => Ok(None),
            (Some(last), Some((id, _))) if last.event_id == id => Ok(None),
            _ => checkpoints::append(store, &self.key, &self.file)
                .await
                .map(Some)
                .map_err(failure),
        }
    }
}
