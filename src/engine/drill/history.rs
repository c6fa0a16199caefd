//! The drill history: each drill stored with its whole report, the chart's points taken from
//! the drills before it, and stored reports read back and written out.

use super::HISTORY_POINTS;
use crate::engine::Context;
use crate::error::{Error, Result};
use crate::report::model::{DrillReport, HistoryPoint, Verdict};
use crate::state::{DrillRow, State};
use std::path::{Path, PathBuf};

/// Stores the drill in the history and fills in its id and the chart's points.
pub(super) fn record(state: &mut State, report: &mut DrillReport) -> Result<()> {
    let row = DrillRow {
        id: 0,
        started: report.started.clone(),
        finished: report.finished.clone(),
        source: report.source.name.clone(),
        target: report.target.clone(),
        snapshot_id: report.snapshot.as_ref().map(|s| s.id.clone()),
        verdict: match report.verdict {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
        }
        .into(),
        rto_ms: report.rto.actual_ms,
        rpo_ms: report.rpo.actual_ms,
        bytes_read: report.bytes_read,
        report: String::new(),
    };
    let past = state.drills(Some((&row.source, &row.target)), HISTORY_POINTS - 1)?;
    let mut history: Vec<HistoryPoint> = past.iter().rev().map(point).collect();
    let id = state.record_drill(&row, |id| {
        report.id = id;
        history.push(point(&DrillRow { id, ..row.clone() }));
        report.history = std::mem::take(&mut history);
        serde_json::to_string(&*report).unwrap_or_default()
    })?;
    report.id = id;
    Ok(())
}

fn point(r: &DrillRow) -> HistoryPoint {
    HistoryPoint {
        drill: r.id,
        started: r.started.clone(),
        verdict: if r.verdict == "passed" {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        rto_ms: r.rto_ms,
        rpo_ms: r.rpo_ms,
    }
}

/// Past drills, newest first: of one source and target when given.
pub fn history(ctx: &Context, limit: usize) -> Result<Vec<DrillRow>> {
    ctx.state()?.drills(None, limit)
}

/// Stored reports: one drill by id, or the last `n`, newest first.
pub fn reports(ctx: &Context, drill: Option<i64>, last: usize) -> Result<Vec<DrillReport>> {
    let state = ctx.state()?;
    let rows = match drill {
        Some(id) => state.drill(id)?.map(|r| vec![r]).ok_or_else(|| {
            Error::Usage(
                format!("no drill {id} in the history; `ivault history --drills` lists them")
                    .into(),
            )
        })?,
        None => state.drills(None, last)?,
    };
    rows.iter()
        .map(|r| {
            serde_json::from_str(&r.report).map_err(|e| {
                Error::Internal(format!("drill {} in the history cannot be read: {e}", r.id).into())
            })
        })
        .collect()
}

/// Writes a drill's report as Markdown, JSON and HTML into `dir` (made if missing), each file
/// atomically; returns the HTML file's path.
pub fn write_reports(
    dir: &Path,
    report: &DrillReport,
    lang: crate::report::Lang,
) -> Result<PathBuf> {
    use crate::report::Format;
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Destination(
            format!("cannot create the report directory {}: {e}", dir.display()).into(),
        )
    })?;
    let one = std::slice::from_ref(report);
    let mut html = PathBuf::new();
    for (format, ext) in [
        (Format::Markdown, "md"),
        (Format::Json, "json"),
        (Format::Html, "html"),
    ] {
        let path = dir.join(format!("drill-{}.{ext}", report.id));
        crate::engine::status::write_atomically(&path, &crate::report::render(one, format, lang))?;
        if ext == "html" {
            html = path;
        }
    }
    Ok(html)
}
