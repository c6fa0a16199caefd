//! The list against the database: by key, what only one side has and what the two hold
//! differently, and the totals of each side. Pure: the database is given as its invoices in
//! the period and a way to look up any other key.

use super::db::DbInvoice;
use super::list::ListInvoice;
use super::values::same_amount;
use crate::facts::Amount;
use crate::report::reconcile::model::{
    Differing, Duplicate, Held, MissingInDatabase, MissingInList, Side, Totals,
};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Comparison {
    pub missing_in_database: Vec<MissingInDatabase>,
    pub missing_in_list: Vec<MissingInList>,
    pub differing: Vec<Differing>,
    pub duplicates: Vec<Duplicate>,
}

pub fn compare<E>(
    list: &[ListInvoice],
    period: &[DbInvoice],
    mut lookup: impl FnMut(&[String]) -> Result<Option<DbInvoice>, E>,
) -> Result<Comparison, E> {
    let by_key: BTreeMap<&[String], &DbInvoice> =
        period.iter().map(|i| (i.key.as_slice(), i)).collect();
    let mut out = Comparison::default();
    let mut rows: BTreeMap<&[String], Vec<usize>> = BTreeMap::new();
    // Database keys matched by the list, as the database writes them.
    let mut matched: BTreeSet<Vec<String>> = BTreeSet::new();
    for inv in list {
        let seen = rows.entry(inv.key.as_slice()).or_default();
        seen.push(inv.row);
        if seen.len() > 1 {
            continue;
        }
        let found = match by_key.get(inv.key.as_slice()) {
            Some(db) => Some((*db).clone()),
            // Outside the period, or written differently (`00000001` against the integer 1).
            None => lookup(&inv.key)?,
        };
        let Some(db) = found else {
            out.missing_in_database.push(MissingInDatabase {
                key: inv.key.clone(),
                row: inv.row,
                list: list_held(inv),
                snapshots: Vec::new(),
            });
            continue;
        };
        let mut fields = Vec::new();
        if !db.amount.is_some_and(|a| same_amount(a, inv.amount)) {
            fields.push("amount".to_string());
        }
        if db.date != Some(inv.date) {
            fields.push("date".to_string());
        }
        if !fields.is_empty() {
            out.differing.push(Differing {
                key: inv.key.clone(),
                row: inv.row,
                fields,
                list: list_held(inv),
                database: db_held(&db),
            });
        }
        matched.insert(db.key);
    }
    for db in period {
        if !matched.contains(&db.key) {
            out.missing_in_list.push(MissingInList {
                key: db.key.clone(),
                database: db_held(db),
            });
        }
    }
    out.duplicates = rows
        .into_iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(k, r)| Duplicate {
            key: k.to_vec(),
            rows: r,
        })
        .collect();
    Ok(out)
}

pub fn totals(list: &[ListInvoice], period: &[DbInvoice]) -> Totals {
    Totals {
        list: side(list.iter().map(|i| Some(i.amount))),
        database: side(period.iter().map(|i| i.amount)),
    }
}

/// The count and the sum, exact while every amount is an integer.
fn side(amounts: impl Iterator<Item = Option<Amount>>) -> Side {
    let (mut invoices, mut exact, mut real) = (0u64, Some(0i64), 0f64);
    for a in amounts {
        invoices += 1;
        match a {
            Some(Amount::Integer(i)) => {
                exact = exact.and_then(|e| e.checked_add(i));
                real += i as f64;
            }
            Some(Amount::Real(x)) => {
                exact = None;
                real += x;
            }
            None => {}
        }
    }
    Side {
        invoices,
        amount: exact.map_or(Amount::Real(real), Amount::Integer),
    }
}

fn list_held(i: &ListInvoice) -> Held {
    Held {
        date: Some(i.date.to_string()),
        amount: Some(i.amount),
    }
}

fn db_held(i: &DbInvoice) -> Held {
    Held {
        date: i.date.map(|d| d.to_string()),
        amount: i.amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::convert::Infallible;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn l(row: usize, no: &str, d: u32, cents: i64) -> ListInvoice {
        ListInvoice {
            row,
            key: vec!["A".into(), no.into()],
            date: day(d),
            amount: Amount::Integer(cents),
        }
    }

    fn db(no: &str, d: u32, cents: i64) -> DbInvoice {
        DbInvoice {
            key: vec!["A".into(), no.into()],
            date: Some(day(d)),
            amount: Some(Amount::Integer(cents)),
        }
    }

    #[test]
    fn each_kind_of_difference_is_found_once() {
        let list = [
            l(2, "1", 1, 100),
            l(3, "2", 2, 200),
            l(4, "3", 3, 999),
            l(5, "4", 9, 400),
            l(6, "1", 1, 100),
            l(7, "6", 6, 600),
        ];
        let period = [
            db("1", 1, 100),
            db("3", 3, 300),
            db("4", 4, 400),
            db("5", 5, 500),
        ];
        // Invoice 6 is in the database, dated outside the period.
        let c = compare(&list, &period, |k: &[String]| {
            Ok::<_, Infallible>((k[1] == "6").then(|| DbInvoice {
                date: Some(NaiveDate::from_ymd_opt(2024, 4, 6).unwrap()),
                ..db("6", 1, 600)
            }))
        })
        .unwrap();
        let keys = |v: Vec<Vec<String>>| v.into_iter().map(|k| k[1].clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(
                c.missing_in_database
                    .iter()
                    .map(|m| m.key.clone())
                    .collect()
            ),
            ["2"]
        );
        assert_eq!(
            keys(c.missing_in_list.iter().map(|m| m.key.clone()).collect()),
            ["5"]
        );
        let diffs: Vec<(String, Vec<String>)> = c
            .differing
            .iter()
            .map(|d| (d.key[1].clone(), d.fields.clone()))
            .collect();
        assert_eq!(
            diffs,
            [
                ("3".to_string(), vec!["amount".to_string()]),
                ("4".to_string(), vec!["date".to_string()]),
                ("6".to_string(), vec!["date".to_string()]),
            ]
        );
        assert_eq!(c.duplicates.len(), 1);
        assert_eq!(c.duplicates[0].rows, [2, 6]);
        let t = totals(&list, &period);
        assert_eq!((t.list.invoices, t.list.amount), (6, Amount::Integer(2399)));
        assert_eq!(
            (t.database.invoices, t.database.amount),
            (4, Amount::Integer(1300))
        );
    }
}
