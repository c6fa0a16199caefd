//! Which rows of each involved table a period restore looks at, as SQL over the live database
//! (`main`) and the snapshot attached beside it (`snap`): the invoices whose day falls in the
//! period, and the child rows that belong to them through the child's link.

use super::dates::Period;
use super::tables::Shape;
use crate::facts::Description;
use crate::source::facts::{day_expr, quote};

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
    /// The condition that the snapshot row aliased `s` is in the period.
    pub snap_scope: String,
    /// The condition that the live row aliased `l` is in the period.
    pub live_scope: String,
}

impl TablePlan {
    pub fn invoices(d: &Description, shape: Shape, period: &Period) -> TablePlan {
        TablePlan {
            table: d.invoice_table.clone(),
            role: "invoices",
            identity: d
                .key_columns
                .iter()
                .map(|k| (k.clone(), quote(k)))
                .collect(),
            snap_scope: period.sql(&day_expr(d, "s")),
            live_scope: period.sql(&day_expr(d, "l")),
            shape,
        }
    }

    /// A child table linked by `link` (child column, invoice column) pairs.
    pub fn child(
        d: &Description,
        shape: Shape,
        link: &[(String, String)],
        period: &Period,
    ) -> TablePlan {
        let inv = quote(&d.invoice_table);
        // The period's invoices' keys as an IN list, not a correlated EXISTS: SQLite then
        // walks the child's index on the link for each invoice of the period instead of
        // looking up the invoice of every child row in the table (60 times faster for one
        // month of five years).
        let scope = |schema: &str, alias: &str| {
            let row = |cols: Vec<String>| match &cols[..] {
                [one] => one.clone(),
                _ => format!("({})", cols.join(", ")),
            };
            let child = row(link
                .iter()
                .map(|(c, _)| format!("{alias}.{}", column(c)))
                .collect());
            let parent: Vec<String> = link
                .iter()
                .map(|(_, p)| format!("p.{}", column(p)))
                .collect();
            format!(
                "{child} IN (SELECT {} FROM {schema}.{inv} AS p WHERE {})",
                parent.join(", "),
                period.sql(&day_expr(d, "p"))
            )
        };
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
            snap_scope: scope("snap", "s"),
            live_scope: scope("main", "l"),
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

/// A column as SQL: `rowid` as itself, anything else quoted.
fn column(name: &str) -> String {
    if name.eq_ignore_ascii_case("rowid") {
        "rowid".into()
    } else {
        quote(name)
    }
}
