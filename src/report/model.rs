//! A drill's report as data: what the engine records, the state stores, and every format
//! (Markdown, JSON, HTML) renders. The JSON form is this structure as serde writes it; its
//! schema is `docs/drill-report.schema.json` (docs/REPORTS.md), version [`REPORT_SCHEMA`].

use crate::facts::Amount;
use serde::{Deserialize, Serialize};

/// The `schema` value of reports in this layout.
pub const REPORT_SCHEMA: &str = "ivault-drill-report/1";

/// One drill: one snapshot of one source, restored from one target and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub schema: String,
    /// The drill's id in the state database's history.
    pub id: i64,
    /// RFC 3339 UTC.
    pub started: String,
    pub finished: String,
    pub verdict: Verdict,
    pub source: SourceRef,
    /// The target's name in the policy, or its URL.
    pub target: String,
    /// `None` when no snapshot could be chosen (the checks say why).
    pub snapshot: Option<SnapshotRef>,
    pub host: String,
    /// Restore wall time against the policy's `rto`.
    pub rto: Objective,
    /// Age of the drilled snapshot at drill time against the policy's `rpo`.
    pub rpo: Objective,
    /// Bytes read from the target.
    pub bytes_read: u64,
    /// Every check, in the order run; a drill never stops at the first failure.
    pub checks: Vec<Check>,
    /// Invoices per month, expected (manifest) against actual (restored), and the live
    /// database's where it was compared. Empty without a business description.
    pub months: Vec<MonthRow>,
    /// The last drills of this source and target, oldest first, this one included: the
    /// data of the RTO/RPO chart.
    pub history: Vec<HistoryPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub id: String,
    /// When the snapshot's read began, RFC 3339 UTC.
    pub time: String,
    /// `full` or `incremental`.
    pub kind: String,
    /// The signer (`ivsig1…`) that vouched for it, when it was signed.
    pub signer: Option<String>,
}

/// A measured duration against an objective, both in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    pub actual_ms: u64,
    pub objective_ms: Option<u64>,
    /// `None` without an objective.
    pub met: Option<bool>,
}

impl Objective {
    pub fn new(actual_ms: u64, objective_ms: Option<u64>) -> Self {
        Objective {
            actual_ms,
            objective_ms,
            met: objective_ms.map(|o| actual_ms <= o),
        }
    }
}

/// One check's outcome, with what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub kind: CheckKind,
    /// What was checked within the kind: a table, a month, a series, an object id.
    pub subject: Option<String>,
    pub status: Status,
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// One sentence for a failure or warning (English; data, not a label).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A snapshot to drill could be chosen, readable and authenticated.
    Snapshot,
    /// Every object read decrypted and matched its hash.
    Objects,
    /// The restored file's SHA-256 against the manifest.
    Sha256,
    /// SQLite's check of the source at backup time, as the manifest recorded it.
    SourceCheck,
    IntegrityCheck,
    ForeignKeyCheck,
    /// Rows of one table against the manifest.
    RowCount,
    /// Invoice count and total of one month (per status where recorded) against the manifest.
    InvoicesPerMonth,
    /// Rows of the children of one month's invoices against the manifest.
    ChildRows,
    /// Missing numbers in one series (a warning).
    NumberingGaps,
    /// A closed month of the live database against the snapshot.
    LiveDrift,
    Rto,
    Rpo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Warning,
    Failed,
    Skipped,
}

/// One month of invoices in the drilled snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthRow {
    pub month: String,
    pub expected_invoices: u64,
    pub expected_total: Amount,
    /// `None` when the restored copy could not be read.
    pub actual_invoices: Option<u64>,
    pub actual_total: Option<Amount>,
    /// The live database's figures, with `--compare-live` and for closed months only.
    pub live: Option<LiveMonth>,
    /// Expected equals actual (and live, where compared).
    pub ok: bool,
}

/// A closed month of the live database compared invoice by invoice with the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveMonth {
    pub invoices: u64,
    pub total: Amount,
    /// Invoices in the snapshot the live database no longer has.
    pub missing: u64,
    /// Invoices in the live database the snapshot does not have.
    pub extra: u64,
    /// Live total minus snapshot total.
    pub amount_difference: Amount,
}

/// One earlier drill, for the chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub drill: i64,
    pub started: String,
    pub verdict: Verdict,
    pub rto_ms: u64,
    pub rpo_ms: u64,
}
