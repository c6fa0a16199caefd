//! The period a restore covers: two calendar days, inclusive, compared with each invoice's
//! day as the business facts read dates (see `source::facts::day_expr`).

use crate::error::{Error, Result};
use chrono::{Datelike, NaiveDate};

/// `from ..= to`, as `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// `--from` and `--to` as `YYYY-MM-DD`, or `YYYY-MM` for a whole month (the first day as
    /// `--from`, the last as `--to`).
    pub fn parse(from: &str, to: &str) -> Result<Period> {
        let from_day = day(from, false)?;
        let to_day = day(to, true)?;
        if from_day > to_day {
            return Err(Error::Usage(
                format!("--from {from} is after --to {to}; give the earlier date first").into(),
            ));
        }
        Ok(Period {
            from: from_day,
            to: to_day,
        })
    }

    pub fn from_text(&self) -> String {
        self.from.format("%Y-%m-%d").to_string()
    }

    pub fn to_text(&self) -> String {
        self.to.format("%Y-%m-%d").to_string()
    }

    /// The SQL condition that the day expression `day` falls in the period.
    pub fn sql(&self, day: &str) -> String {
        // Both dates are formatted by chrono: digits and dashes only.
        format!(
            "(({day}) BETWEEN '{}' AND '{}')",
            self.from_text(),
            self.to_text()
        )
    }

    /// The months (`YYYY-MM`) of a period made of whole months, else `None`.
    pub fn whole_months(&self) -> Option<Vec<String>> {
        let last_of_month = self
            .to
            .succ_opt()
            .is_none_or(|next| next.month() != self.to.month());
        if self.from.day() != 1 || !last_of_month {
            return None;
        }
        let mut months = Vec::new();
        let mut m = self.from;
        while m <= self.to {
            months.push(m.format("%Y-%m").to_string());
            let (y, mo) = if m.month() == 12 {
                (m.year() + 1, 1)
            } else {
                (m.year(), m.month() + 1)
            };
            m = NaiveDate::from_ymd_opt(y, mo, 1)?;
        }
        Some(months)
    }
}

fn day(text: &str, end: bool) -> Result<NaiveDate> {
    let bad = || {
        Error::Usage(
            format!("{text:?} is not a date; give YYYY-MM-DD, or YYYY-MM for a whole month").into(),
        )
    };
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d);
    }
    let first = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    if !end {
        return Ok(first);
    }
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days() {
        let p = Period::parse("2024-02", "2024-02").unwrap();
        assert_eq!(
            (p.from_text(), p.to_text()),
            ("2024-02-01".into(), "2024-02-29".into())
        );
        assert_eq!(p.whole_months(), Some(vec!["2024-02".to_string()]));
        let p = Period::parse("2023-12-01", "2024-01-31").unwrap();
        assert_eq!(
            p.whole_months(),
            Some(vec!["2023-12".to_string(), "2024-01".to_string()])
        );
        assert_eq!(
            Period::parse("2024-03-02", "2024-03-31")
                .unwrap()
                .whole_months(),
            None
        );
        assert_eq!(
            Period::parse("2024-03-01", "2024-03-30")
                .unwrap()
                .whole_months(),
            None
        );
        assert!(Period::parse("2024-03-02", "2024-03-01").is_err());
        assert!(Period::parse("March", "2024-03-01").is_err());
        assert!(Period::parse("2024-02-30", "2024-03-01").is_err());
    }
}
