//! `backup FILE` and `restore FILE` (issue 17). SQLite: an online copy with
//! `VACUUM INTO` (the database as of one instant, while servers keep
//! working), whose ledger is verified; a restore checks the backup before it
//! replaces anything, keeps the database it replaces beside it, then verifies
//! the restored ledger and, given a checkpoint file, says whether the backup
//! is older than the newest checkpoint. PostgreSQL: `pg_dump`, and a
//! documented `pg_restore` procedure (README, "Backup and restore").

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use sqlx::sqlite::SqliteConnectOptions;
use switchyard_domain::checkpoint;
use switchyard_domain::types::VerifyReport;
use switchyard_domain::Timestamp;

use super::{checkpoint as checkpoints, redacted, Failure, Outcome};
use crate::config::Config;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// How to restore a PostgreSQL backup; printed where `restore` cannot do it.
const PG_RESTORE: &str = "restore a PostgreSQL backup with pg_restore into a new, empty database: \
     `createdb switchyard_restored && pg_restore --no-owner --single-transaction \
     --dbname postgres://…/switchyard_restored FILE`, then point DATABASE_URL at it and run \
     `switchyard audit verify --checkpoints CHECKPOINTS --public-key KEY` (see README, Backup and restore)";

/// The SQLite file of `url`, or `None` for PostgreSQL.
fn sqlite_file(url: &str) -> Result<Option<PathBuf>, Failure> {
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| Failure::usage(format!("DATABASE_URL is not a SQLite URL: {e}")))?;
    Ok(Some(options.get_filename().to_path_buf()))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// `path` with `suffix` appended to its name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a scratch SQLite file and its `-wal` and `-shm` files, if any.
fn remove_with_wal(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(beside(path, suffix));
    }
}

/// Opens a SQLite file that must exist (connecting would create it).
async fn open_existing(path: &Path, config: &Config) -> Result<SqliteStore, Failure> {
    if !path.is_file() {
        return Err(Failure::usage(format!(
            "{} does not exist (or is not a file)",
            path.display()
        )));
    }
    SqliteStore::connect(&sqlite_url(path), config.store_settings())
        .await
        .with_context(|| format!("cannot open {}", path.display()))
        .map_err(Failure::from)
}

/// The ledger of a Switchyard database file: its verification and head.
async fn ledger_of(store: &SqliteStore, path: &Path) -> Result<(VerifyReport, i64), Failure> {
    let head = store.ledger_head().await.map_err(|e| {
        Failure::refused(format!(
            "{} is not a Switchyard database (its ledger cannot be read: {e})",
            path.display()
        ))
    })?;
    let report = store
        .audit_verify()
        .await
        .with_context(|| format!("cannot read the ledger of {}", path.display()))?;
    Ok((report, head.map_or(0, |(id, _)| id)))
}

fn broken(report: &VerifyReport) -> String {
    format!(
        "BROKEN at event {}: {}",
        report
            .first_broken_id
            .map_or_else(|| "?".to_owned(), |id| id.to_string()),
        report
            .problem
            .as_deref()
            .unwrap_or("the chain does not verify")
    )
}

/// `backup FILE`.
pub(super) async fn backup(config: &Config, out: &Path) -> Outcome {
    if out.exists() {
        return Err(Failure::usage(format!(
            "{} exists: backup never overwrites a file; choose a new name",
            out.display()
        )));
    }
    let Some(db) = sqlite_file(&config.database_url)? else {
        return pg_dump(&config.database_url, out);
    };
    let store = open_existing(&db, config).await?;
    let partial = beside(out, ".partial");
    remove_with_wal(&partial);
    let copied = store.vacuum_into(&partial).await;
    store.close().await;
    if let Err(e) = copied {
        remove_with_wal(&partial);
        return Err(Failure::refused(format!(
            "cannot copy {} to {}: {e}",
            db.display(),
            partial.display()
        )));
    }
    // The copy's own ledger is checked, so a backup is known good when it is made.
    let copy = open_existing(&partial, config).await?;
    let ledger = ledger_of(&copy, &partial).await;
    copy.close().await;
    let (report, head) = ledger?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    if !report.ok {
        return Err(Failure::refused(format!(
            "backup written to {}, but its ledger is {} — so is the database's: run `switchyard audit verify`",
            out.display(),
            broken(&report)
        )));
    }
    println!(
        "backup of {} written to {}: ledger OK, {} events, head event {head}",
        db.display(),
        out.display(),
        report.checked
    );
    Ok(())
}

/// PostgreSQL: `pg_dump --format=custom`, checked by `pg_restore --list`.
fn pg_dump(url: &str, out: &Path) -> Outcome {
    let run = |program: &str, args: &[&std::ffi::OsStr]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map_err(|e| {
                Failure::usage(format!(
                    "cannot run {program} ({e}): install PostgreSQL's client tools (Debian: \
                     postgresql-client, the server's major version or newer), or run \
                     `pg_dump --format=custom --file FILE DATABASE_URL` where they are"
                ))
            })
    };
    let dumped = run(
        "pg_dump",
        &[
            "--format=custom".as_ref(),
            "--file".as_ref(),
            out.as_os_str(),
            "--dbname".as_ref(),
            url.as_ref(),
        ],
    )?;
    if !dumped.status.success() {
        let _ = std::fs::remove_file(out);
        return Err(Failure::refused(format!(
            "pg_dump of {} failed: {}",
            redacted(url),
            String::from_utf8_lossy(&dumped.stderr).trim()
        )));
    }
    let listed = run("pg_restore", &["--list".as_ref(), out.as_os_str()])?;
    if !listed.status.success() {
        return Err(Failure::refused(format!(
            "pg_dump wrote {}, but pg_restore cannot read it: {}",
            out.display(),
            String::from_utf8_lossy(&listed.stderr).trim()
        )));
    }
    println!(
        "backup of {} written to {} by pg_dump (custom format); {PG_RESTORE}",
        redacted(url),
        out.display()
    );
    Ok(())
}

/// Checks the copy of a backup at `copy`: a Switchyard database whose ledger
/// verifies; then migrates it (a backup from an older release gets today's
/// schema) and closes it.
async fn check_backup(config: &Config, copy: &Path, backup: &Path, db: &Path) -> Outcome {
    let store = SqliteStore::connect(&sqlite_url(copy), config.store_settings())
        .await
        .map_err(|e| {
            Failure::refused(format!(
                "{} is not a SQLite database ({e})",
                backup.display()
            ))
        })?;
    let checked = match ledger_of(&store, backup).await {
        Ok((report, _)) if !report.ok => Err(Failure::refused(format!(
            "the backup's ledger is {}: not restored, {} is unchanged",
            broken(&report),
            db.display()
        ))),
        Ok(_) => store
            .migrate()
            .await
            .map_err(|e| Failure::refused(format!("cannot migrate the backup's copy: {e}"))),
        Err(e) => Err(e),
    };
    store.close().await;
    checked
}

/// `restore FILE [--replace] [--checkpoints FILE --public-key KEY]`.
pub(super) async fn restore(
    config: &Config,
    from: &Path,
    replace: bool,
    checkpoint_file: Option<(&Path, &str)>,
) -> Outcome {
    let Some(db) = sqlite_file(&config.database_url)? else {
        return Err(Failure::usage(format!(
            "restore replaces a SQLite database; DATABASE_URL names PostgreSQL: {PG_RESTORE}"
        )));
    };
    if db.exists() && !replace {
        return Err(Failure::usage(format!(
            "{} holds a database: stop every server using it, then pass --replace to restore \
             over it (it is kept as {}.before-restore-…)",
            db.display(),
            db.display()
        )));
    }
    if let Some((file, public_key)) = checkpoint_file {
        // Found unreadable before anything is replaced.
        checkpoints::read_public_key(public_key)?;
        checkpoints::read_checkpoints(file, false)?;
    }
    // The backup is copied and checked first: a bad one changes nothing.
    let restoring = beside(&db, ".restoring");
    remove_with_wal(&restoring);
    if !from.is_file() {
        return Err(Failure::usage(format!(
            "the backup {} does not exist",
            from.display()
        )));
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    std::fs::copy(from, &restoring)
        .with_context(|| format!("cannot copy {} to {}", from.display(), restoring.display()))?;
    if let Err(e) = check_backup(config, &restoring, from, &db).await {
        remove_with_wal(&restoring);
        return Err(e);
    }
    let kept = if db.exists() {
        let aside = beside(
            &db,
            &format!(".before-restore-{}", Timestamp::now().micros()),
        );
        for suffix in ["", "-wal", "-shm"] {
            let file = beside(&db, suffix);
            if file.exists() {
                std::fs::rename(&file, beside(&aside, suffix))
                    .with_context(|| format!("cannot move {} aside", file.display()))?;
            }
        }
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&restoring, &db)
        .with_context(|| format!("cannot rename {} to {}", restoring.display(), db.display()))?;
    if let Some(aside) = &kept {
        println!("the database it replaced is kept as {}", aside.display());
    }
    let store = open_existing(&db, config).await?;
    let (report, head) = ledger_of(&store, &db).await?;
    if !report.ok {
        return Err(Failure::refused(format!(
            "restored {} to {}, but its ledger is {}",
            from.display(),
            db.display(),
            broken(&report)
        )));
    }
    println!(
        "restored {} to {}: ledger OK, {} events, head event {head}",
        from.display(),
        db.display(),
        report.checked
    );
    if let Some((file, public_key)) = checkpoint_file {
        let verified = checkpoints::verify(&store, file, public_key, true).await?;
        match verified.beyond {
            None => println!(
                "checkpoints OK: {} signed checkpoints in {} hold, the restored ledger contains each checkpointed head",
                verified.checked,
                file.display()
            ),
            Some(cp) => println!(
                "checkpoints OK up to the restored head; {}",
                checkpoint::older_than(&cp, head)
            ),
        }
    }
    store.close().await;
    Ok(())
}
