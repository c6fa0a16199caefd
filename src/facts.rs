//! What an invoice is in a source database (its business description) and the facts a backup
//! measured about a snapshot's invoices. Plain data: the policy parses a [`Description`], the
//! source module computes [`BusinessFacts`] and [`SourceCheck`] inside the snapshot's read
//! transaction, manifests store them, and drills compare a restored copy against them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod list;

pub use list::{ListEncoding, ListMapping};

/// The policy's `[source.business]`: which table holds invoices and how to read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    pub invoice_table: String,
    /// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.fff]`, ISO 8601 with a zone (the month as written),
    /// or integer Unix seconds (the month in `utc_offset`).
    pub date_column: String,
    /// Integer (e.g. cents) or real amounts.
    pub amount_column: String,
    /// The columns that identify an invoice across systems (e.g. invoice code and number).
    pub key_columns: Vec<String>,
    #[serde(default)]
    pub children: Vec<ChildTable>,
    /// Totals per status as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_column: Option<String>,
    /// Invoice numbers, counted per series, so that gaps in the numbering can be found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_column: Option<String>,
    /// The zone Unix-second dates fall into months in, as `+08:00` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset: Option<String>,
    /// How an external invoice list maps onto these invoices (`reconcile`). A setting of the
    /// policy, not a fact of a snapshot: never stored in manifests.
    #[serde(default, skip_serializing)]
    pub list: Option<ListMapping>,
}

/// A table whose rows belong to an invoice through the column(s) `fk`; without `fk` (or
/// with an empty list), through the child's one declared FOREIGN KEY to the invoice table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildTable {
    pub table: String,
    #[serde(default)]
    pub fk: Columns,
}

/// One column name or several (a composite key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Default for Columns {
    fn default() -> Self {
        Columns::Many(Vec::new())
    }
}

impl Columns {
    pub fn names(&self) -> Vec<&str> {
        match self {
            Columns::One(c) => vec![c.as_str()],
            Columns::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

/// An amount as SQLite summed it: exact when every value was an integer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    Integer(i64),
    Real(f64),
}

impl Amount {
    pub fn as_f64(self) -> f64 {
        match self {
            Amount::Integer(i) => i as f64,
            Amount::Real(r) => r,
        }
    }

    /// Equal, allowing for the rounding of real sums taken in a different row order.
    pub fn same_as(self, other: Amount) -> bool {
        match (self, other) {
            (Amount::Integer(a), Amount::Integer(b)) => a == b,
            (a, b) => {
                let (a, b) = (a.as_f64(), b.as_f64());
                (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
            }
        }
    }

    pub fn minus(self, other: Amount) -> Amount {
        match (self, other) {
            (Amount::Integer(a), Amount::Integer(b)) => Amount::Integer(a.saturating_sub(b)),
            (a, b) => Amount::Real(a.as_f64() - b.as_f64()),
        }
    }
}

impl Default for Amount {
    fn default() -> Self {
        Amount::Integer(0)
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Integer(i) => write!(f, "{i}"),
            Amount::Real(r) => write!(f, "{r:.2}"),
        }
    }
}

/// Invoice facts of one snapshot, by calendar month of the date column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessFacts {
    /// The description the facts were measured with, so a drill measures the same way.
    pub description: Description,
    /// In month order; invoices whose date cannot be read are under the month `unknown`.
    pub months: Vec<MonthFacts>,
    /// Per series (one unnamed series without a `series_column`); empty without a
    /// `number_column`.
    #[serde(default)]
    pub series: Vec<SeriesFacts>,
}

/// The month key for invoices whose date is NULL or not a date.
pub const UNKNOWN_MONTH: &str = "unknown";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthFacts {
    /// `YYYY-MM`, or [`UNKNOWN_MONTH`].
    pub month: String,
    pub invoices: u64,
    pub total: Amount,
    /// Per status value (when a `status_column` is named); NULL is under `""`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_status: BTreeMap<String, StatusFacts>,
    /// Rows of each child table that belong to this month's invoices.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub children: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusFacts {
    pub invoices: u64,
    pub total: Amount,
}

/// Invoice numbers of one series: how many distinct numbers, the lowest and the highest.
/// `max - min + 1 - count` numbers are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesFacts {
    /// The series value (e.g. the invoice code); `None` when no `series_column` is named.
    pub series: Option<String>,
    pub count: u64,
    pub min: i64,
    pub max: i64,
}

impl SeriesFacts {
    pub fn missing(&self) -> u64 {
        // i128: numbers may span the whole of i64.
        let span = i128::from(self.max) - i128::from(self.min) + 1;
        (span - i128::from(self.count)).clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// SQLite's own check of the source's pages, run on the snapshot's image at backup time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCheck {
    /// `quick_check` or `integrity_check`.
    pub pragma: String,
    pub ok: bool,
    /// The first problems SQLite reported (at most [`SOURCE_CHECK_PROBLEMS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    pub duration_ms: u64,
}

/// How many of SQLite's problem lines a manifest keeps.
pub const SOURCE_CHECK_PROBLEMS: usize = 20;
