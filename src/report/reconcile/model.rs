//! A reconciliation report as data: the list and the live database side by side for the period
//! the list covers, each difference with what both sides hold, and for invoices the database
//! lacks the snapshots that still have them. Serialised as is for `--json`.

use crate::facts::Amount;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub source: SourceRef,
    pub list: ListRef,
    /// The first and last day of the list's invoices; `None` for a list without invoices.
    pub period: Option<Period>,
    pub verdict: Verdict,
    pub totals: Totals,
    /// In the list, not in the live database.
    pub missing_in_database: Vec<MissingInDatabase>,
    /// In the live database within the period, not in the list.
    pub missing_in_list: Vec<MissingInList>,
    /// In both, with a different amount or date.
    pub differing: Vec<Differing>,
    /// Keys the list holds more than once (the first row is compared).
    pub duplicates: Vec<Duplicate>,
    /// The targets whose snapshots were searched for the invoices the database lacks.
    pub searched: Vec<Searched>,
    /// What could not be done without failing the comparison (a target that could not be read).
    pub warnings: Vec<String>,
    /// RFC 3339 UTC.
    pub started: String,
    pub host: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Matches,
    Differences,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRef {
    pub file: String,
    /// `csv` or `spreadsheet`.
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    pub header_row: usize,
    /// Rows passed over because a key part is empty (such as a total line).
    pub skipped_rows: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub list: Side,
    pub database: Side,
}

/// How many invoices and their amount, in the database's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub invoices: u64,
    pub amount: Amount,
}

/// An invoice's date and amount as one side holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// `YYYY-MM-DD`, or `None` when the database's date column holds no date.
    pub date: Option<String>,
    pub amount: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingInDatabase {
    pub key: Vec<String>,
    /// The list's row.
    pub row: usize,
    pub list: Held,
    /// The targets whose snapshots have it.
    pub snapshots: Vec<Holding>,
}

/// Where a target's snapshots hold an invoice the live database lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holding {
    pub target: String,
    /// The oldest snapshot that has it.
    pub first: SnapshotRef,
    /// The newest snapshot that has it: the one `restore-period` brings it back from.
    pub last: SnapshotRef,
    /// Whether the target's newest snapshot has it.
    pub in_latest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub id: String,
    pub time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingInList {
    pub key: Vec<String>,
    pub database: Held,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Differing {
    pub key: Vec<String>,
    pub row: usize,
    /// `amount` and/or `date`.
    pub fields: Vec<String>,
    pub list: Held,
    pub database: Held,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplicate {
    pub key: Vec<String>,
    pub rows: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Searched {
    pub target: String,
    pub snapshots: usize,
    /// The target's newest snapshot of the source.
    pub latest: Option<SnapshotRef>,
}

impl ReconcileReport {
    /// How many differences: missing on either side, differing, duplicated.
    pub fn differences(&self) -> usize {
        self.missing_in_database.len()
            + self.missing_in_list.len()
            + self.differing.len()
            + self.duplicates.len()
    }
}
