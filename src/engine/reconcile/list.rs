//! The invoices of a list: its header row found, the mapped columns located, and every data
//! row read into a key, a day and an amount in the database's unit.

use super::read::{Cell, Grid};
use super::values;
use crate::error::{Error, Result};
use crate::facts::{Amount, ListMapping};
use chrono::NaiveDate;
use std::path::Path;

/// How many rows from the top are searched for the header row when the policy names none.
const HEADER_SEARCH_ROWS: usize = 20;

/// One invoice of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListInvoice {
    /// The file's row number (1-based).
    pub row: usize,
    /// One value per key column.
    pub key: Vec<String>,
    pub date: NaiveDate,
    /// In the database's unit (the list's amount times `amount_scale`).
    pub amount: Amount,
}

/// The list's invoices and the rows that hold none.
#[derive(Debug)]
pub struct Invoices {
    pub header_row: usize,
    pub invoices: Vec<ListInvoice>,
    /// Rows with some key part empty, such as a closing 合计 (total) line.
    pub skipped: Vec<usize>,
}

pub fn invoices(path: &Path, grid: &Grid, m: &ListMapping) -> Result<Invoices> {
    let (at, columns) = locate(path, grid, m)?;
    let header_row = grid.first_row + at;
    let keys = &columns[..columns.len() - 2];
    let (date_col, amount_col) = (columns[columns.len() - 2], columns[columns.len() - 1]);
    let scale = m.amount_scale.unwrap_or(1);
    let empty = Cell::Empty;
    let mut out = Invoices {
        header_row,
        invoices: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, row) in grid.rows.iter().enumerate().skip(at + 1) {
        let number = grid.first_row + i;
        let get = |c: usize| row.get(c).unwrap_or(&empty);
        if row.iter().all(Cell::is_empty) {
            continue;
        }
        let key: Vec<String> = keys.iter().map(|&c| get(c).text()).collect();
        if key.iter().any(String::is_empty) {
            out.skipped.push(number);
            continue;
        }
        let bad = |header: &str, cell: &Cell, want: &str| {
            Error::Usage(
                format!(
                    "row {number} of the invoice list {}: {header} {:?} is not {want}; correct the row or remove it",
                    path.display(),
                    cell.text()
                )
                .into(),
            )
        };
        let date = values::date(get(date_col)).ok_or_else(|| {
            bad(
                &m.date,
                get(date_col),
                "a date (YYYY-MM-DD, YYYY/MM/DD or YYYY年MM月DD日)",
            )
        })?;
        let amount = values::amount(get(amount_col), scale)
            .ok_or_else(|| bad(&m.amount, get(amount_col), "an amount"))?;
        out.invoices.push(ListInvoice {
            row: number,
            key,
            date,
            amount,
        });
    }
    Ok(out)
}

/// The index of the header row in the grid and the columns of the mapped headers (key parts,
/// then date, then amount).
fn locate(path: &Path, grid: &Grid, m: &ListMapping) -> Result<(usize, Vec<usize>)> {
    let wanted = m.headers();
    let find = |row: &[Cell]| -> Vec<Option<usize>> {
        wanted
            .iter()
            .map(|(_, h)| row.iter().position(|c| c.text() == h.trim()))
            .collect()
    };
    let candidates: Vec<usize> = match m.header_row {
        Some(n) => {
            let at = (n as usize).checked_sub(grid.first_row);
            match at.filter(|&a| a < grid.rows.len()) {
                Some(a) => vec![a],
                None => {
                    return Err(Error::Policy(
                        format!(
                            "the invoice list {} has no row {n}, which [source.business.list] header_row names",
                            path.display()
                        )
                        .into(),
                    ))
                }
            }
        }
        None => (0..grid.rows.len().min(HEADER_SEARCH_ROWS)).collect(),
    };
    let mut best: Option<(usize, usize)> = None;
    for &at in &candidates {
        let found = find(&grid.rows[at]);
        if let Some(columns) = found.iter().copied().collect::<Option<Vec<usize>>>() {
            return Ok((at, columns));
        }
        let hits = found.iter().flatten().count();
        let non_empty = grid.rows[at].iter().any(|c| !c.is_empty());
        if non_empty && best.is_none_or(|(_, b)| hits > b) {
            best = Some((at, hits));
        }
    }
    let Some((at, _)) = best else {
        return Err(Error::Usage(
            format!("the invoice list {} has no rows", path.display()).into(),
        ));
    };
    let found = find(&grid.rows[at]);
    let (setting, header) = wanted
        .iter()
        .zip(&found)
        .find(|(_, f)| f.is_none())
        .map(|(w, _)| *w)
        .unwrap_or(("key", ""));
    let present: Vec<String> = grid.rows[at]
        .iter()
        .map(Cell::text)
        .filter(|t| !t.is_empty())
        .map(|t| format!("{t:?}"))
        .collect();
    Err(Error::Policy(
        format!(
            "the invoice list {} has no column {header:?} (the {setting} of [source.business.list]); the headers in its row {} are {}",
            path.display(),
            grid.first_row + at,
            present.join(", ")
        )
        .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Columns;

    fn text(rows: &[&[&str]]) -> Grid {
        Grid {
            rows: rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|c| {
                            if c.is_empty() {
                                Cell::Empty
                            } else {
                                Cell::Text(c.to_string())
                            }
                        })
                        .collect()
                })
                .collect(),
            first_row: 1,
            format: "csv",
            encoding: Some("utf-8"),
            sheet: None,
        }
    }

    fn mapping() -> ListMapping {
        ListMapping {
            key: Columns::Many(vec!["发票代码".into(), "发票号码".into()]),
            date: "开票日期".into(),
            amount: "价税合计".into(),
            amount_scale: Some(100),
            encoding: None,
            sheet: None,
            header_row: None,
        }
    }

    #[test]
    fn title_lines_and_total_rows_are_passed_over() {
        let g = text(&[
            &["增值税发票清单"],
            &[],
            &["序号", "发票号码", "发票代码", "开票日期", "价税合计"],
            &["1", "00000001", "A-1", "2024年03月05日", "1,234.50"],
            &["合计", "", "", "", "1,234.50"],
        ]);
        let r = invoices(Path::new("l.csv"), &g, &mapping()).unwrap();
        assert_eq!(r.header_row, 3);
        assert_eq!(r.skipped, vec![5]);
        assert_eq!(r.invoices.len(), 1);
        let i = &r.invoices[0];
        assert_eq!(
            (i.row, i.key.clone()),
            (4, vec!["A-1".to_string(), "00000001".to_string()])
        );
        assert_eq!(i.amount, Amount::Integer(123_450));
        assert_eq!(i.date, NaiveDate::from_ymd_opt(2024, 3, 5).unwrap());
    }

    #[test]
    fn a_missing_header_is_named_with_those_present() {
        let g = text(&[&["发票代码", "号码", "开票日期", "价税合计"]]);
        let e = invoices(Path::new("l.csv"), &g, &mapping()).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::POLICY);
        let m = e.to_string();
        assert!(m.contains("no column \"发票号码\" (the key of"), "{m}");
        assert!(
            m.contains("\"发票代码\", \"号码\", \"开票日期\", \"价税合计\""),
            "{m}"
        );
    }

    #[test]
    fn a_bad_date_names_its_row() {
        let g = text(&[
            &["发票代码", "发票号码", "开票日期", "价税合计"],
            &["A", "1", "soon", "1"],
        ]);
        let e = invoices(Path::new("l.csv"), &g, &mapping())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 2 of the invoice list l.csv: 开票日期 \"soon\" is not a date"),
            "{e}"
        );
    }
}
