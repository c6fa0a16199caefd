//! The shape of a table as a period restore needs it, read from one schema (`main` for the
//! live database, `snap` for the snapshot): columns, the rowid, unique constraints, triggers.

use crate::source::facts::quote;
use rusqlite::Connection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    pub name: String,
    /// The declared type, upper case.
    pub ty: String,
    /// Position in the primary key (0: not part of it).
    pub pk: i64,
}

#[derive(Debug, Clone)]
pub(super) struct Shape {
    pub name: String,
    pub columns: Vec<Column>,
    pub without_rowid: bool,
    /// The rows have a rowid that no column holds (a rowid table without INTEGER PRIMARY KEY):
    /// it is copied too, so restored rows keep it.
    pub hidden_rowid: bool,
    /// The column sets (as SQL, e.g. `"id"` or `rowid`) no two rows may share: the primary
    /// key, the rowid and every UNIQUE index on plain columns.
    pub unique: Vec<Vec<String>>,
}

impl Shape {
    /// Reads `table` in `schema`; `None` when it does not exist there.
    pub fn read(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<Option<Shape>> {
        let columns: Vec<Column> = conn
            .prepare("SELECT name, upper(type), pk FROM pragma_table_info(?1, ?2) ORDER BY cid")?
            .query_map([table, schema], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    ty: r.get(1)?,
                    pk: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        if columns.is_empty() {
            return Ok(None);
        }
        // Only a WITHOUT ROWID table has no rowid to select.
        let without_rowid = conn
            .prepare(&format!(
                "SELECT rowid FROM {schema}.{} LIMIT 0",
                quote(table)
            ))
            .is_err();
        let pk: Vec<&Column> = {
            let mut pk: Vec<&Column> = columns.iter().filter(|c| c.pk > 0).collect();
            pk.sort_by_key(|c| c.pk);
            pk
        };
        let ipk = !without_rowid && pk.len() == 1 && pk[0].ty == "INTEGER";
        let mut unique = Vec::new();
        if without_rowid {
            unique.push(pk.iter().map(|c| quote(&c.name)).collect());
        } else if ipk {
            unique.push(vec![quote(&pk[0].name)]);
        } else {
            unique.push(vec!["rowid".to_string()]);
        }
        let indexes: Vec<(String, bool)> = conn
            .prepare("SELECT name, partial FROM pragma_index_list(?1, ?2) WHERE \"unique\"")?
            .query_map([table, schema], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? != 0))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (index, partial) in indexes {
            let cols: Vec<(i64, Option<String>)> = conn
                .prepare("SELECT cid, name FROM pragma_index_info(?1, ?2) ORDER BY seqno")?
                .query_map([index.as_str(), schema], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            // Expression and partial indexes are left to SQLite to enforce.
            if partial || cols.iter().any(|(cid, name)| *cid < 0 || name.is_none()) {
                continue;
            }
            let set: Vec<String> = cols
                .into_iter()
                .filter_map(|(_, n)| n)
                .map(|n| quote(&n))
                .collect();
            if !unique.contains(&set) {
                unique.push(set);
            }
        }
        Ok(Some(Shape {
            name: table.to_string(),
            columns,
            without_rowid,
            hidden_rowid: !without_rowid && !ipk,
            unique,
        }))
    }

    /// The columns that identify a child row: its primary key, else its rowid.
    pub fn identity(&self) -> Vec<(String, String)> {
        let mut pk: Vec<&Column> = self.columns.iter().filter(|c| c.pk > 0).collect();
        pk.sort_by_key(|c| c.pk);
        if pk.is_empty() {
            return vec![("rowid".into(), "rowid".into())];
        }
        pk.iter()
            .map(|c| (c.name.clone(), quote(&c.name)))
            .collect()
    }

    /// The columns a copied row is written with, as SQL: the hidden rowid first, if any.
    pub fn copied(&self) -> Vec<String> {
        let rowid = self.hidden_rowid.then(|| "rowid".to_string());
        rowid
            .into_iter()
            .chain(self.columns.iter().map(|c| quote(&c.name)))
            .collect()
    }

    /// How this table (live) differs from `snapshot`'s, in words; `None` when alike.
    pub fn differs_from(&self, snapshot: &Shape) -> Option<String> {
        if self.without_rowid != snapshot.without_rowid {
            return Some(format!(
                "is {}a WITHOUT ROWID table live but {}in the snapshot",
                if self.without_rowid { "" } else { "not " },
                if snapshot.without_rowid { "" } else { "not " }
            ));
        }
        for s in &snapshot.columns {
            match self.columns.iter().find(|c| c.name == s.name) {
                None => return Some(format!("has no column {} live", quote(&s.name))),
                Some(c) if c.ty != s.ty => {
                    return Some(format!(
                        "has column {} of type {} live but {} in the snapshot",
                        quote(&s.name),
                        show(&c.ty),
                        show(&s.ty)
                    ))
                }
                Some(c) if c.pk != s.pk => {
                    return Some(format!(
                        "has a different PRIMARY KEY live (column {})",
                        quote(&s.name)
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(c) = self
            .columns
            .iter()
            .find(|c| !snapshot.columns.iter().any(|s| s.name == c.name))
        {
            return Some(format!(
                "has column {} live that the snapshot does not",
                quote(&c.name)
            ));
        }
        if self.columns != snapshot.columns {
            return Some("has its columns in another order live".into());
        }
        None
    }
}

fn show(ty: &str) -> &str {
    if ty.is_empty() {
        "(none)"
    } else {
        ty
    }
}

/// The triggers on `table` in `schema`.
pub(super) fn triggers(
    conn: &Connection,
    schema: &str,
    table: &str,
) -> rusqlite::Result<Vec<String>> {
    conn.prepare(&format!(
        "SELECT name FROM {schema}.sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE ORDER BY name"
    ))?
    .query_map([table], |r| r.get(0))?
    .collect()
}
