//! `ivault reconcile`: an external invoice list (a tax-system export, CSV or XLSX) held
//! against the live database for the period the list covers, by the policy's
//! `[source.business]` key: invoices only the list has (and which snapshots still hold them,
//! for `restore-period`), invoices only the database has, and those whose amount or date
//! differ, with the totals of both sides.
//!
//! [`read`] turns the file into cells, [`list`] finds the mapped columns and reads the
//! invoices, [`db`] reads the database, [`compare`] holds one against the other and
//! [`history`] searches the snapshots.

mod compare;
mod db;
mod history;
mod list;
mod read;
mod values;

use crate::engine::context::Context;
use crate::error::{Error, Result};
use crate::facts::ListEncoding;
use crate::report::reconcile::model::{ListRef, Period, ReconcileReport, SourceRef, Verdict};
use std::path::PathBuf;
use std::time::Duration;

pub struct ReconcileJob {
    /// A source of the policy.
    pub source: String,
    /// The invoice list file.
    pub list: PathBuf,
    /// Overrides the policy's encoding and the detection.
    pub encoding: Option<ListEncoding>,
    /// Targets whose snapshots are searched [default: the source's targets in the policy].
    pub targets: Vec<String>,
    pub identity: Option<PathBuf>,
    /// Where the scratch copy lives [default: the state directory].
    pub scratch_dir: Option<PathBuf>,
}

pub fn run(ctx: &Context, job: &ReconcileJob) -> Result<ReconcileReport> {
    let started = chrono::Utc::now();
    let policy = ctx.targets.policy().ok_or_else(|| {
        Error::Usage(
            "reconcile needs the --policy that describes the source and its [source.business.list]"
                .into(),
        )
    })?;
    let source = policy
        .source(&job.source)
        .ok_or_else(|| policy.unknown("source", &job.source))?;
    let d = source.business.as_ref().ok_or_else(|| {
        Error::Policy(
            format!(
                "policy {}: source {} has no [source.business]; describe its invoice table first",
                policy.file.display(),
                source.name
            )
            .into(),
        )
    })?;
    let mapping = d.list.as_ref().ok_or_else(|| {
        Error::Policy(
            format!(
                "policy {}: source {} has no [source.business.list]; name the list's key, date and amount columns (see policies/example.toml)",
                policy.file.display(),
                source.name
            )
            .into(),
        )
    })?;
    let grid = read::read(
        &job.list,
        job.encoding.or(mapping.encoding),
        mapping.sheet.as_deref(),
    )?;
    let listed = list::invoices(&job.list, &grid, mapping)?;
    let period = listed
        .invoices
        .iter()
        .map(|i| i.date)
        .min()
        .zip(listed.invoices.iter().map(|i| i.date).max());

    let conn = crate::source::open(&source.path, Duration::from_secs(10))?;
    let db_error = |e: rusqlite::Error| {
        Error::Source(
            format!(
                "the live database {} could not be read for the comparison: {e}",
                source.path.display()
            )
            .into(),
        )
    };
    if let Some(why) = crate::source::facts::describe_problem(&conn, d).map_err(db_error)? {
        return Err(Error::Policy(
            format!(
                "policy {}: [source.business] of {} does not fit the live database: {why}",
                policy.file.display(),
                source.name
            )
            .into(),
        ));
    }
    // One read transaction: the period and the look-ups see the same state.
    conn.execute_batch("BEGIN").map_err(db_error)?;
    let (in_period, mut found) = match period {
        Some((from, to)) => {
            let rows = db::in_period(&conn, d, from, to).map_err(db_error)?;
            let mut lookup = db::Lookup::new(&conn, d).map_err(db_error)?;
            let found =
                compare::compare(&listed.invoices, &rows, |k| lookup.find(k)).map_err(db_error)?;
            (rows, found)
        }
        None => (Vec::new(), compare::Comparison::default()),
    };
    let _ = conn.execute_batch("COMMIT");
    drop(conn);
    let totals = compare::totals(&listed.invoices, &in_period);

    let mut warnings = Vec::new();
    let mut searched = Vec::new();
    let keys: Vec<Vec<String>> = found
        .missing_in_database
        .iter()
        .map(|m| m.key.clone())
        .collect();
    if !keys.is_empty() {
        let targets = if job.targets.is_empty() {
            policy.targets_of(Some(&source.name))
        } else {
            job.targets.clone()
        };
        let scratch = job
            .scratch_dir
            .clone()
            .unwrap_or_else(|| ctx.state_dir.clone());
        let search = history::Search {
            ctx,
            identity: job.identity.as_deref(),
            source: &source.name,
            description: d,
            keys: &keys,
            scratch_dir: &scratch,
        };
        let mut holdings = vec![Vec::new(); keys.len()];
        for t in &targets {
            match history::search(&search, t, &mut holdings) {
                Ok(s) => searched.push(s),
                Err(e) => warnings.push(format!("the snapshots in {t} were not searched: {e}")),
            }
        }
        for (m, h) in found.missing_in_database.iter_mut().zip(holdings) {
            m.snapshots = h;
        }
    }
    let mut report = ReconcileReport {
        source: SourceRef {
            name: source.name.clone(),
            path: source.path.display().to_string(),
        },
        list: ListRef {
            file: job.list.display().to_string(),
            format: grid.format.to_string(),
            encoding: grid.encoding.map(str::to_string),
            sheet: grid.sheet.clone(),
            header_row: listed.header_row,
            skipped_rows: listed.skipped,
        },
        period: period.map(|(from, to)| Period {
            from: from.to_string(),
            to: to.to_string(),
        }),
        verdict: Verdict::Matches,
        totals,
        missing_in_database: found.missing_in_database,
        missing_in_list: found.missing_in_list,
        differing: found.differing,
        duplicates: found.duplicates,
        searched,
        warnings,
        started: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        host: crate::host::name(),
    };
    if report.differences() > 0 {
        report.verdict = Verdict::Differences;
    }
    Ok(report)
}

/// Writes the report as Markdown, JSON and HTML (labels in `lang`) into `dir` (created if need be); returns the
/// files written.
pub fn write_reports(
    dir: &std::path::Path,
    report: &ReconcileReport,
    lang: crate::report::Lang,
) -> Result<Vec<PathBuf>> {
    use crate::report::reconcile::{file_stem, render};
    use crate::report::Format;
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Destination(
            format!("cannot create the report directory {}: {e}", dir.display()).into(),
        )
    })?;
    let stem = file_stem(report);
    let mut written = Vec::new();
    for (format, ext) in [
        (Format::Markdown, "md"),
        (Format::Json, "json"),
        (Format::Html, "html"),
    ] {
        let path = dir.join(format!("{stem}.{ext}"));
        crate::engine::status::write_atomically(&path, &render(report, format, lang))?;
        written.push(path);
    }
    Ok(written)
}
