//! An invoice list file as a grid of cells: a spreadsheet (XLSX, XLS, XLSB or ODS, told by its
//! first bytes) through calamine, or CSV in UTF-8 (with or without a byte order mark), UTF-16
//! with a byte order mark, or GB18030, the encoding of Chinese tax-system exports.

use crate::error::{Error, Result};
use crate::facts::ListEncoding;
use calamine::{Data, Reader};
use std::path::Path;

/// One cell as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Number(f64),
    /// A spreadsheet date: year, month, day.
    Date(i32, u32, u32),
}

impl Cell {
    /// The cell as text: numbers without a fraction are written as integers.
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.trim().to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
            Cell::Number(x) => x.to_string(),
            Cell::Date(y, m, d) => format!("{y:04}-{m:02}-{d:02}"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text().is_empty()
    }
}

/// The rows of a list, and how it was read.
#[derive(Debug)]
pub struct Grid {
    pub rows: Vec<Vec<Cell>>,
    /// The file's row number of `rows[0]` (1-based).
    pub first_row: usize,
    /// `csv` or `spreadsheet`.
    pub format: &'static str,
    /// The text encoding of a CSV file.
    pub encoding: Option<&'static str>,
    /// The worksheet read.
    pub sheet: Option<String>,
}

pub fn read(path: &Path, encoding: Option<ListEncoding>, sheet: Option<&str>) -> Result<Grid> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!("cannot read the invoice list {}: {e}", path.display()).into())
    })?;
    let zip = bytes.starts_with(b"PK\x03\x04");
    let ole = bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
    if zip || ole {
        spreadsheet(path, bytes, sheet)
    } else {
        csv_grid(path, &bytes, encoding)
    }
}

fn spreadsheet(path: &Path, bytes: Vec<u8>, sheet: Option<&str>) -> Result<Grid> {
    let bad = |why: String| {
        Error::Usage(
            format!(
                "the invoice list {} is not a spreadsheet calamine can read ({why}); export it as XLSX or CSV",
                path.display()
            )
            .into(),
        )
    };
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .cloned()
            .ok_or_else(|| {
                Error::Policy(
                    format!(
                        "the invoice list {} has no sheet {s:?}; its sheets are: {}",
                        path.display(),
                        names.join(", ")
                    )
                    .into(),
                )
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| bad("it has no sheet".into()))?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| bad(e.to_string()))?;
    let first_row = range.start().map_or(1, |(r, _)| r as usize + 1);
    let first_col = range.start().map_or(0, |(_, c)| c as usize);
    let rows = range
        .rows()
        .map(|r| {
            // Leading empty columns the range left out, so column positions stay the file's.
            let mut row = vec![Cell::Empty; first_col];
            row.extend(r.iter().map(cell));
            row
        })
        .collect();
    Ok(Grid {
        rows,
        first_row,
        format: "spreadsheet",
        encoding: None,
        sheet: Some(name),
    })
}

fn cell(d: &Data) -> Cell {
    match d {
        Data::Empty | Data::Error(_) => Cell::Empty,
        Data::Int(i) => Cell::Int(*i),
        Data::Float(x) => Cell::Number(*x),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Bool(b) => Cell::Text(b.to_string()),
        Data::DateTime(t) if t.is_datetime() => {
            let (y, m, d, ..) = t.to_ymd_hms_milli();
            Cell::Date(i32::from(y), u32::from(m), u32::from(d))
        }
        Data::DateTime(t) => Cell::Number(t.as_f64()),
    }
}

/// The text of a CSV file: the encoding given, else a byte order mark's, else UTF-8 when the
/// bytes are valid UTF-8, else GB18030.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    given: Option<ListEncoding>,
) -> Result<(String, &'static str)> {
    let invalid = |name: &str| {
        Error::Usage(
            format!(
                "the invoice list {} is not valid {name}; give the encoding it was written in with --encoding utf-8|gb18030",
                path.display()
            )
            .into(),
        )
    };
    let bom = encoding_rs::Encoding::for_bom(bytes);
    match (given, bom) {
        (Some(ListEncoding::Gb18030), _) => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|t| (t.into_owned(), "gb18030"))
            .ok_or_else(|| invalid("GB18030")),
        (Some(ListEncoding::Utf8), _) | (None, None) => {
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(body) {
                Ok(t) => Ok((t.to_string(), "utf-8")),
                Err(_) if given.is_some() => Err(invalid("UTF-8")),
                Err(_) => decode(path, bytes, Some(ListEncoding::Gb18030)),
            }
        }
        (None, Some((enc, len))) => enc
            .decode_without_bom_handling_and_without_replacement(&bytes[len..])
            .map(|t| {
                (
                    t.into_owned(),
                    if enc == encoding_rs::UTF_8 {
                        "utf-8"
                    } else {
                        enc.name()
                    },
                )
            })
            .ok_or_else(|| invalid(enc.name())),
    }
}

fn csv_grid(path: &Path, bytes: &[u8], encoding: Option<ListEncoding>) -> Result<Grid> {
    let (text, encoding) = decode(path, bytes, encoding)?;
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|&d| first_line.matches(char::from(d)).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            Error::Usage(
                format!(
                    "the invoice list {} is not readable CSV: {e}",
                    path.display()
                )
                .into(),
            )
        })?;
        rows.push(
            record
                .iter()
                .map(|f| match f.trim() {
                    "" => Cell::Empty,
                    t => Cell::Text(t.to_string()),
                })
                .collect(),
        );
    }
    Ok(Grid {
        rows,
        first_row: 1,
        format: "csv",
        encoding: Some(encoding),
        sheet: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_told_apart() {
        let p = Path::new("list.csv");
        let (gb, _, _) = encoding_rs::GB18030.encode("发票代码,金额\n");
        assert_eq!(
            decode(p, &gb, None).unwrap(),
            ("发票代码,金额\n".into(), "gb18030")
        );
        let bom = [b"\xEF\xBB\xBF".as_slice(), "发票".as_bytes()].concat();
        assert_eq!(decode(p, &bom, None).unwrap(), ("发票".into(), "utf-8"));
        assert_eq!(
            decode(p, "发票".as_bytes(), None).unwrap(),
            ("发票".into(), "utf-8")
        );
        let err = decode(p, &gb, Some(ListEncoding::Utf8))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid UTF-8"), "{err}");
    }
}
