//! Invoice lists as tax systems write them, for the `reconcile` tests: GB18030 text, amounts
//! with thousands separators, XLSX files (written with openpyxl), and the keys a report names.

use serde_json::Value;
use std::path::Path;

/// `text` encoded as GB18030, as Chinese tax systems export it.
pub fn gb18030(text: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(text).0.into_owned()
}

/// `1234.5` as `1,234.50`.
pub fn thousands(yuan: f64) -> String {
    let s = format!("{yuan:.2}");
    let (int, frac) = s.split_once('.').unwrap();
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{out}.{frac}")
}

/// Writes an XLSX file with openpyxl: real dates (Excel serials) and numbers, keys as text.
pub fn write_xlsx(path: &Path, header: &[&str], rows: &[Value]) {
    let script = r#"
import json, sys, datetime, openpyxl
path, header, rows = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "发票"
ws.append(header)
for r in rows:
    ws.append([datetime.date(*c["date"]) if isinstance(c, dict) else c for c in r])
wb.save(path)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .arg(serde_json::to_string(header).unwrap())
        .arg(Value::Array(rows.to_vec()).to_string())
        .output()
        .expect("python3 (scripts/test installs it with openpyxl)");
    assert!(
        out.status.success(),
        "writing the XLSX fixture needs python3 with openpyxl (scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The keys of one section of a reconcile report, `/`-joined and sorted.
pub fn keys(v: &Value, section: &str) -> Vec<String> {
    let mut k: Vec<String> = v[section]
        .as_array()
        .unwrap_or_else(|| panic!("no {section}: {v}"))
        .iter()
        .map(|m| {
            let parts: Vec<&str> = m["key"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            parts.join("/")
        })
        .collect();
    k.sort();
    k
}
