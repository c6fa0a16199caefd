//! The demo's lost month: a month of invoices disappears from the live database after the
//! backups, and `restore-period` finds it in a snapshot and brings it back.

use super::short;
use crate::engine::backup::BackupReport;
use crate::engine::period;
use crate::engine::Context;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The month the demo loses from its live database and brings back.
const LOST_MONTH: &str = "2024-03";

/// Steps 9 and 10: a month of invoices (with their lines and uploads) disappears from the live
/// database; `restore-period` shows what the snapshot has that the live database lacks, then
/// brings it back and checks the month's count and total against the snapshot.
pub(super) fn lose_and_restore_a_month(
    ctx: &Context,
    db: &Path,
    repo_dir: &Path,
    key: &Path,
    snapshot: &BackupReport,
    out: &mut dyn Write,
) -> Result<()> {
    let lost = lose_month(db, LOST_MONTH)
        .map_err(|e| Error::Internal(format!("deleting a month failed: {e}").into()))?;
    let mut job = period::PeriodJob {
        source: db.display().to_string(),
        from: LOST_MONTH.into(),
        to: LOST_MONTH.into(),
        snapshot: snapshot.snapshot_id.to_string(),
        target: Some(repo_dir.display().to_string()),
        identity: Some(key.to_path_buf()),
        apply: false,
        overwrite_changed: false,
        allow_triggers: false,
        allow_unverified: false,
    };
    let shown = period::run(ctx, &job)?;
    let missing: Vec<String> = shown
        .tables
        .iter()
        .map(|t| format!("{} {}", t.missing.len(), t.table))
        .collect();
    let _ = writeln!(
        out,
        "9. lost {LOST_MONTH} from the live database ({lost} invoices with their lines and uploads); restore-period finds {} missing (snapshot: {} invoices, total {}; live: {}, total {})",
        missing.join(", "),
        shown.snapshot.invoices,
        shown.snapshot.total,
        shown.live.invoices,
        shown.live.total
    );
    job.apply = true;
    let applied = period::run(ctx, &job)?;
    let Some(a) = applied.applied else {
        return Err(Error::Internal("the period restore applied nothing".into()));
    };
    if !a.matches {
        return Err(Error::Integrity(
            format!(
                "after the period restore {LOST_MONTH} holds {} invoices (total {}), not the snapshot's {} (total {})",
                a.after.invoices, a.after.total, applied.snapshot.invoices, applied.snapshot.total
            )
            .into(),
        ));
    }
    let inserted: u64 = a.inserted.values().sum();
    let _ = writeln!(
        out,
        "10. restore-period --apply: backed up the live database first ({}), inserted {inserted} rows in one transaction; {LOST_MONTH} holds {} invoices, total {}, as the snapshot does",
        a.backup_snapshot_id.as_deref().map(short).unwrap_or_default(),
        a.after.invoices,
        a.after.total
    );
    Ok(())
}

/// Deletes the invoices of `month` and their child rows; returns how many invoices.
fn lose_month(db: &Path, month: &str) -> rusqlite::Result<usize> {
    let mut conn = rusqlite::Connection::open(db)?;
    let tx = conn.transaction()?;
    let of_month = "SELECT id FROM invoices WHERE substr(issue_date, 1, 7) = ?1";
    for child in ["invoice_items", "tax_uploads"] {
        tx.execute(
            &format!("DELETE FROM {child} WHERE invoice_id IN ({of_month})"),
            [month],
        )?;
    }
    let n = tx.execute(
        "DELETE FROM invoices WHERE substr(issue_date, 1, 7) = ?1",
        [month],
    )?;
    tx.commit()?;
    Ok(n)
}
