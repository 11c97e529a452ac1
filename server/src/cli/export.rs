//! `audit export --from --to [--checkpoints] --out` (issue 17): the events of
//! a period with the checkpoints that vouch for them, for an auditor who
//! checks the file with `scripts/verify_audit_export.py`. What goes in is
//! decided by `switchyard_domain::audit_export`; docs/audit-export.md
//! describes the file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use switchyard_domain::audit_export;
use switchyard_domain::Timestamp;

use super::{checkpoint, Failure, Outcome};
use crate::store::Store;

/// Events read per query.
const PAGE: i64 = 1000;

pub(super) async fn run(
    store: &dyn Store,
    from: &str,
    to: &str,
    checkpoints: Option<&Path>,
    out: &Path,
) -> Outcome {
    let time = |flag: &str, text: &str| {
        Timestamp::parse(text).map_err(|e| Failure::usage(format!("{flag}: {e}")))
    };
    let (from, to) = (time("--from", from)?, time("--to", to)?);
    let signed = checkpoints
        .map(|file| checkpoint::read_checkpoints(file, false))
        .transpose()?;
    let period = store
        .ledger_period(from, to)
        .await
        .context("cannot read the ledger")?;
    let plan = audit_export::plan(from, to, period, signed.as_deref()).map_err(Failure::refused)?;
    let mut events = Vec::new();
    let mut after = plan.export_from_id - 1;
    while after < plan.export_to_id {
        let page = store
            .ledger_events(after, plan.export_to_id, PAGE)
            .await
            .context("cannot read the ledger")?;
        let Some(last) = page.last() else { break };
        after = last.id;
        events.extend(page);
    }
    let signed = signed.unwrap_or_default();
    audit_export::check(&plan, &events, &signed)
        .map_err(|e| Failure::refused(format!("not exported: {e}")))?;
    let export = audit_export::assemble(&plan, from, to, events, &signed, Timestamp::now());
    write_whole(out, &export)?;
    println!(
        "exported events {} to {} ({from} to {to}) to {}",
        plan.first_event_id,
        plan.last_event_id,
        out.display()
    );
    match export.checkpoints.last() {
        Some(cp) => println!(
            "{}events up to {} signed by {}, and {} checkpoints; \
             check it with: python3 scripts/verify_audit_export.py --public-key KEY {}",
            if plan.export_from_id < plan.first_event_id {
                format!("with event {} before the period, ", plan.export_from_id)
            } else {
                "with ".to_owned()
            },
            plan.export_to_id,
            cp.label(),
            plan.checkpoints,
            out.display()
        ),
        None => eprintln!(
            "warning: exported without --checkpoints: nothing vouches that these events were not \
             rewritten, and the auditor's script will say UNSIGNED"
        ),
    }
    Ok(())
}

/// Writes `export` to `<out>.partial`, then renames it: a reader never sees half a file.
fn write_whole(out: &Path, export: &audit_export::AuditExport) -> Outcome {
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        serde_json::to_writer_pretty(&mut file, export)?;
        file.write_all(b"\n")?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, out)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        Failure::refused(format!("cannot write the export {}: {e}", out.display()))
    })
}
