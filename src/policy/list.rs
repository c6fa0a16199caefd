//! Checks of `[source.business.list]` that its types alone do not make: one header per key
//! column, a scale and a header row above zero.

use super::Policy;
use crate::error::Result;

const SECTION: &str = "source.business.list";

impl Policy {
    pub(super) fn validate_lists(&self, text: &str) -> Result<()> {
        for source in &self.source {
            let Some(business) = &source.business else {
                continue;
            };
            let Some(list) = &business.list else {
                continue;
            };
            let at = |key: &str, what: String| self.error_at(text, SECTION, Some(key), what);
            let (given, wanted) = (list.key.names().len(), business.key_columns.len());
            if given != wanted {
                return Err(at(
                    "key",
                    format!(
                        "source {}: [{SECTION}] key names {given} header(s) but key_columns has {wanted} column(s); give one header per key column, in the same order",
                        source.name
                    ),
                ));
            }
            if let Some((setting, _)) = list
                .headers()
                .into_iter()
                .find(|(_, h)| h.trim().is_empty())
            {
                return Err(at(
                    setting,
                    format!("source {}: [{SECTION}] {setting} names an empty header; give the column's header as the list writes it", source.name),
                ));
            }
            if list.amount_scale == Some(0) {
                return Err(at(
                    "amount_scale",
                    format!("source {}: [{SECTION}] amount_scale is 0; give the factor from the list's amounts to the database's (100 for yuan against cents, else 1)", source.name),
                ));
            }
            if list.header_row == Some(0) {
                return Err(at(
                    "header_row",
                    format!(
                        "source {}: [{SECTION}] header_row is 0; rows count from 1",
                        source.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Columns, ListEncoding};
    use std::path::Path;

    const HEAD: &str = r#"[[source]]
name = "books"
path = "/srv/books.sqlite"
[source.business]
invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
[source.business.list]
"#;

    fn parse(list: &str) -> Result<Policy> {
        Policy::parse(&format!("{HEAD}{list}"), Path::new("p.toml"))
    }

    #[test]
    fn a_list_mapping_is_read() {
        let p = parse(
            "key = [\"发票代码\", \"发票号码\"]\ndate = \"开票日期\"\namount = \"价税合计\"\namount_scale = 100\nencoding = \"gb18030\"\nheader_row = 3\n",
        )
        .unwrap();
        let list = p.source[0].business.as_ref().unwrap().list.clone().unwrap();
        assert_eq!(
            list.key,
            Columns::Many(vec!["发票代码".into(), "发票号码".into()])
        );
        assert_eq!(list.amount_scale, Some(100));
        assert_eq!(list.encoding, Some(ListEncoding::Gb18030));
        assert_eq!(list.header_row, Some(3));
    }

    #[test]
    fn wrong_settings_name_their_line() {
        let e = parse("key = \"发票号码\"\ndate = \"d\"\namount = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.toml, line 10:")
                && e.contains("key names 1 header(s) but key_columns has 2"),
            "{e}"
        );
        let e = parse("key = [\"a\", \"b\"]\ndate = \"d\"\namount = \"a\"\namount_scale = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 13:") && e.contains("amount_scale is 0"),
            "{e}"
        );
        let e = parse("key = [\"a\", \"b\"]\ndate = \"d\"\namont = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 12: unknown key amont; did you mean amount?"),
            "{e}"
        );
        let e =
            parse("key = [\"a\", \"b\"]\ndate = \"d\"\namount = \"a\"\nencoding = \"latin1\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("line 13:") && e.contains("latin1"), "{e}");
    }
}
