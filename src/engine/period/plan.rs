//! Which rows of each involved table a period restore looks at, as SQL over the live database
//! (`main`) and the snapshot attached beside it (`snap`): the invoices whose day falls in the
//! period, and the child rows that belong to them through the child's link.

use super::dates::Period;
use super::tables::Shape;
use crate::facts::Description;
use crate::source::facts::quote;

/// One table's rows in the period, and how a row of it is told apart from another.
#[derive(Debug, Clone)]
pub(super) struct TablePlan {
    pub table: String,
    /// `invoices` or `child`.
    pub role: &'static str,
    pub shape: Shape,
    /// The identifying columns: names as shown, and as SQL (`rowid` for a hidden rowid). For a
    /// child, its primary key (or rowid) and the columns that link it to its invoice.
    pub identity: Vec<(String, String)>,
    /// The condition that the snapshot row aliased `s` is in the period (reads
    /// `temp.period_snap`, filled when the plans are made).
    pub snap_scope: String,
    /// The condition that the live row aliased `l` is in the period (reads
    /// `temp.period_live`, which only the comparison fills, inside its read transaction).
    pub live_scope: String,
}

impl TablePlan {
    pub fn invoices(d: &Description, shape: Shape, sets: &PeriodSets) -> TablePlan {
        TablePlan {
            table: d.invoice_table.clone(),
            role: "invoices",
            identity: d
                .key_columns
                .iter()
                .map(|k| (k.clone(), quote(k)))
                .collect(),
            snap_scope: sets.contains("snap", "s", &sets.row, &sets.row),
            live_scope: sets.contains("live", "l", &sets.row, &sets.row),
            shape,
        }
    }

    /// A child table linked by `link` (child column, invoice column) pairs.
    pub fn child(shape: Shape, link: &[(String, String)], sets: &PeriodSets) -> TablePlan {
        // The period's invoices' keys as an IN list, not a correlated EXISTS: SQLite then
        // walks the child's index on the link for each invoice of the period instead of
        // looking up the invoice of every child row in the table.
        let children: Vec<String> = link.iter().map(|(c, _)| column(c)).collect();
        let parents: Vec<String> = link.iter().map(|(_, p)| column(p)).collect();
        let snap_scope = sets.contains("snap", "s", &children, &parents);
        let live_scope = sets.contains("live", "l", &children, &parents);
        // A row is the same row only under the same invoice too: a key a new row reused for
        // another invoice is a collision, never a change to overwrite.
        let mut identity = shape.identity();
        for (c, _) in link {
            if !identity.iter().any(|(n, _)| n == c) {
                identity.push((c.clone(), column(c)));
            }
        }
        TablePlan {
            table: shape.name.clone(),
            role: "child",
            identity,
            snap_scope,
            live_scope,
            shape,
        }
    }

    pub fn quoted(&self) -> String {
        quote(&self.table)
    }

    /// `a` and `b` are the same row (by identity).
    pub fn same(&self, a: &str, b: &str) -> String {
        self.identity
            .iter()
            .map(|(_, c)| format!("{a}.{c} IS {b}.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Every column of `a` equals `b`'s.
    pub fn equal(&self, a: &str, b: &str) -> String {
        self.shape
            .columns
            .iter()
            .map(|c| format!("{a}.{q} IS {b}.{q}", q = quote(&c.name)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Snapshot rows (`s`) of the period that the live database lacks.
    pub fn missing(&self) -> String {
        format!(
            "{} AND NOT EXISTS (SELECT 1 FROM main.{t} AS l WHERE {})",
            self.snap_scope,
            self.same("l", "s"),
            t = self.quoted()
        )
    }

    /// Snapshot rows (`s`) of the period the live database holds otherwise, joined to it (`l`).
    pub fn changed_join(&self) -> String {
        format!(
            "FROM snap.{t} AS s JOIN main.{t} AS l ON {} WHERE {} AND NOT ({})",
            self.same("l", "s"),
            self.snap_scope,
            self.equal("l", "s"),
            t = self.quoted()
        )
    }

    /// Live rows (`l`) of the period that the snapshot does not hold.
    pub fn extra(&self) -> String {
        format!(
            "{} AND NOT EXISTS (SELECT 1 FROM snap.{t} AS s WHERE {})",
            self.live_scope,
            self.same("s", "l"),
            t = self.quoted()
        )
    }

    /// The identity of the row aliased `a`, as a select list.
    pub fn identity_of(&self, a: &str) -> String {
        self.identity
            .iter()
            .map(|(_, c)| format!("{a}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The period's invoices, computed once into the temporary tables `period_snap` (from the
/// attached snapshot) and `period_live` (from the live database, inside the comparison's read
/// transaction): the date expression, which reads every date format, is the costly part of
/// each query over millions of invoices. Each table holds an invoice's row identity (its rowid,
/// or the primary key of a WITHOUT ROWID table, never NULL) and every column a child links to,
/// as `c0`, `c1`, ….
pub(super) struct PeriodSets {
    /// Columns of the invoice table as SQL, in the temporary tables' order.
    columns: Vec<String>,
    /// The invoice row's identity among `columns`.
    row: Vec<String>,
}

impl PeriodSets {
    /// `shape` is the invoice table's; `links` the (child, invoice) column pairs of every child.
    pub fn new(shape: &Shape, links: &[Vec<(String, String)>]) -> Self {
        let row: Vec<String> = if shape.without_rowid {
            shape.identity().into_iter().map(|(_, c)| c).collect()
        } else {
            vec!["rowid".to_string()]
        };
        let mut columns = row.clone();
        for (_, p) in links.iter().flatten() {
            let c = column(p);
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        PeriodSets { columns, row }
    }

    /// Fills `temp.period_<side>` (`snap` or `live`) with the period's invoices.
    pub fn fill(
        &self,
        conn: &rusqlite::Connection,
        side: &str,
        d: &Description,
        period: &Period,
    ) -> rusqlite::Result<()> {
        let schema = if side == "snap" { "snap" } else { "main" };
        let select: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("p.{c} AS c{i}"))
            .collect();
        let in_period = super::range::in_period(conn, schema, d, period, "p")?;
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS temp.period_{side};
             CREATE TEMP TABLE period_{side} AS SELECT {} FROM {schema}.{} AS p WHERE {in_period};",
            select.join(", "),
            quote(&d.invoice_table),
        ))
    }

    /// The row `alias`, by its columns `own`, is (or links to) one of the period's invoices of
    /// `side`, by the invoice columns `parents`.
    fn contains(&self, side: &str, alias: &str, own: &[String], parents: &[String]) -> String {
        let of_set: Vec<String> = parents
            .iter()
            .map(|p| {
                let i = self.columns.iter().position(|x| x == p).unwrap_or(0);
                format!("c{i}")
            })
            .collect();
        format!(
            "{} IN (SELECT {} FROM temp.period_{side})",
            row(alias, own),
            of_set.join(", ")
        )
    }
}

/// Columns of the row aliased `alias` as one SQL value: the column, or a row value.
fn row(alias: &str, cols: &[String]) -> String {
    let cols: Vec<String> = cols.iter().map(|c| format!("{alias}.{c}")).collect();
    match &cols[..] {
        [one] => one.clone(),
        _ => format!("({})", cols.join(", ")),
    }
}

/// A column as SQL: `rowid` as itself, anything else quoted.
fn column(name: &str) -> String {
    if name.eq_ignore_ascii_case("rowid") {
        "rowid".into()
    } else {
        quote(name)
    }
}
