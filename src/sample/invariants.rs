//! The invariant every transaction of the generator keeps, and its check.

use super::*;

/// Checks the invariant every transaction in this module keeps: each invoice's amount_cents equals the sum of its items' amount_cents, tax_cents likewise, total_cents = amount_cents + tax_cents, and counters('invoices') equals the number of invoices. Returns Ok(None) if it holds, Ok(Some(description of the first violation)) otherwise.
pub fn check_invariants(conn: &rusqlite::Connection) -> rusqlite::Result<Option<String>> {
    // Items side: one ordered pass over the invoice_id index, grouped, joined to
    // invoices by primary key. Also catches items of a missing invoice.
    let from_items: Option<(i64, String)> = conn
        .query_row(
            "SELECT s.invoice_id, i.id, i.amount_cents, i.tax_cents, i.total_cents, s.a, s.t
             FROM (SELECT invoice_id, SUM(amount_cents) AS a, SUM(tax_cents) AS t
                   FROM invoice_items GROUP BY invoice_id) AS s
             LEFT JOIN invoices AS i ON i.id = s.invoice_id
             WHERE i.id IS NULL OR i.amount_cents != s.a OR i.tax_cents != s.t
                OR i.total_cents != i.amount_cents + i.tax_cents
             ORDER BY s.invoice_id LIMIT 1",
            [],
            |r| {
                let inv: i64 = r.get(0)?;
                if r.get::<_, Option<i64>>(1)?.is_none() {
                    return Ok((inv, format!("invoice_items reference missing invoice {inv}")));
                }
                let (amount, tax, total): (i64, i64, i64) = (r.get(2)?, r.get(3)?, r.get(4)?);
                let (sum_amount, sum_tax): (i64, i64) = (r.get(5)?, r.get(6)?);
                let msg = if amount != sum_amount {
                    format!("invoice {inv}: amount_cents {amount} != sum of item amount_cents {sum_amount}")
                } else if tax != sum_tax {
                    format!("invoice {inv}: tax_cents {tax} != sum of item tax_cents {sum_tax}")
                } else {
                    format!("invoice {inv}: total_cents {total} != amount_cents {amount} + tax_cents {tax}")
                };
                Ok((inv, msg))
            },
        )
        .optional()?;
    // Invoice side: totals that do not add up, and invoices without any item
    // whose amounts are not zero (the sum over no items).
    let by_invoices: Option<(i64, i64, i64, i64)> = conn
        .query_row(
            "SELECT id, amount_cents, tax_cents, total_cents FROM invoices AS i
             WHERE total_cents != amount_cents + tax_cents
                OR ((amount_cents != 0 OR tax_cents != 0)
                    AND NOT EXISTS (SELECT 1 FROM invoice_items WHERE invoice_id = i.id))
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;

    let from_invoices = by_invoices.map(|(id, amount, tax, total)| {
        let msg = if total != amount.wrapping_add(tax) {
            format!("invoice {id}: total_cents {total} != amount_cents {amount} + tax_cents {tax}")
        } else {
            format!("invoice {id}: has no items but amount_cents {amount}, tax_cents {tax}")
        };
        (id, msg)
    });
    let first = match (from_items, from_invoices) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    if let Some((_, msg)) = first {
        return Ok(Some(msg));
    }

    let (counter, count): (Option<i64>, i64) = conn.query_row(
        "SELECT (SELECT value FROM counters WHERE name = 'invoices'), (SELECT COUNT(*) FROM invoices)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(match counter {
        None => Some("counters has no 'invoices' row".to_owned()),
        Some(c) if c != count => Some(format!(
            "counters('invoices') = {c} but there are {count} invoices"
        )),
        Some(_) => None,
    })
}
