//! How an external invoice list (a tax-system export) maps onto the invoices of a source: the
//! policy's `[source.business.list]`. Plain data, read by `reconcile`.

use super::Columns;
use serde::{Deserialize, Serialize};

/// `[source.business.list]`: which of a list's columns hold the key, the date and the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMapping {
    /// The headers of the columns that hold the invoice key, one per `key_columns`, in the
    /// same order (e.g. `["发票代码", "发票号码"]`).
    pub key: Columns,
    /// The header of the issue date: `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY年MM月DD日` (a time may
    /// follow) or an Excel date.
    pub date: String,
    /// The header of the amount, thousands separators allowed (`1,234.50`).
    pub amount: String,
    /// The database's amount is the list's times this (default 1): 100 when the list is in
    /// yuan and the database holds integer cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_scale: Option<u32>,
    /// The text encoding of a CSV list (default: UTF-8 when the file is valid UTF-8, else
    /// GB18030).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<ListEncoding>,
    /// The worksheet of a spreadsheet list (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The row (1-based) that holds the headers (default: the first of the first rows that
    /// has every header named here, so title lines above it are skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_row: Option<u32>,
}

impl ListMapping {
    /// The headers the mapping names, as `(setting, header)`.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut out: Vec<(&'static str, &str)> =
            self.key.names().into_iter().map(|h| ("key", h)).collect();
        out.push(("date", self.date.as_str()));
        out.push(("amount", self.amount.as_str()));
        out
    }
}

/// The text encoding of a CSV list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListEncoding {
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// The encoding Chinese tax-system exports use (a superset of GBK and GB2312).
    #[serde(rename = "gb18030", alias = "GB18030", alias = "gbk", alias = "GBK")]
    Gb18030,
}

impl ListEncoding {
    pub fn name(self) -> &'static str {
        match self {
            ListEncoding::Utf8 => "utf-8",
            ListEncoding::Gb18030 => "gb18030",
        }
    }
}

impl std::str::FromStr for ListEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(ListEncoding::Utf8),
            "gb18030" | "gbk" | "gb2312" => Ok(ListEncoding::Gb18030),
            _ => Err(format!("unknown encoding {s:?}: expected utf-8 or gb18030")),
        }
    }
}
