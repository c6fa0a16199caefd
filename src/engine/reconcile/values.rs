//! Dates and amounts as invoice lists write them: `2024-03-05`, `2024/3/5`, `2024年3月5日`,
//! `20240305` (a time may follow), Excel date serials; `1,234.50`, `¥1234.5`, `(12.00)`.

use super::read::Cell;
use crate::facts::Amount;
use chrono::NaiveDate;

/// The day a cell names, or `None` when it is not a date.
pub fn date(cell: &Cell) -> Option<NaiveDate> {
    match cell {
        Cell::Empty => None,
        Cell::Date(y, m, d) => NaiveDate::from_ymd_opt(*y, *m, *d),
        Cell::Int(i) => excel_serial(*i as f64),
        Cell::Number(x) => excel_serial(*x),
        Cell::Text(t) => date_text(t.trim()),
    }
}

/// Days since 1899-12-30, as Excel (1900 date system) counts them, a fraction being the time.
fn excel_serial(x: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&x) {
        return None;
    }
    let days = x.floor() as i64;
    // Excel counts a 29 February 1900 that never was: serials before it are one day later.
    let base = if days < 60 {
        (1899, 12, 31)
    } else {
        (1899, 12, 30)
    };
    NaiveDate::from_ymd_opt(base.0, base.1, base.2)?
        .checked_add_days(chrono::Days::new(days as u64))
}

fn date_text(t: &str) -> Option<NaiveDate> {
    if !t.is_empty() && t.len() <= 5 && t.bytes().all(|b| b.is_ascii_digit()) {
        return excel_serial(t.parse().ok()?);
    }
    if t.len() >= 8 && t.as_bytes()[..8].iter().all(u8::is_ascii_digit) {
        let rest = &t[8..];
        if rest.is_empty() || rest.starts_with([' ', 'T']) {
            let n = |r: std::ops::Range<usize>| t[r].parse::<u32>().ok();
            return NaiveDate::from_ymd_opt(n(0..4)? as i32, n(4..6)?, n(6..8)?);
        }
    }
    // Year, month and day: digit runs separated by one of - / . 年 月, an optional 日.
    let mut parts = Vec::with_capacity(3);
    let mut rest = t;
    for _ in 0..3 {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        parts.push(rest[..end].parse::<u32>().ok()?);
        rest = &rest[end..];
        if parts.len() < 3 {
            let sep = rest.chars().next()?;
            if !matches!(sep, '-' | '/' | '.' | '年' | '月') {
                return None;
            }
            rest = &rest[sep.len_utf8()..];
        }
    }
    let rest = rest.strip_prefix('日').unwrap_or(rest);
    if !(rest.is_empty() || rest.starts_with([' ', 'T'])) {
        return None;
    }
    if !(1000..=9999).contains(&parts[0]) {
        return None;
    }
    NaiveDate::from_ymd_opt(parts[0] as i32, parts[1], parts[2])
}

/// The amount a cell holds, times `scale`: an integer when the product is whole.
pub fn amount(cell: &Cell, scale: u32) -> Option<Amount> {
    let x = match cell {
        Cell::Empty | Cell::Date(..) => return None,
        Cell::Int(i) => return i.checked_mul(i64::from(scale)).map(Amount::Integer),
        Cell::Number(x) => *x,
        Cell::Text(t) => number_text(t)?,
    };
    Some(scaled(x, scale))
}

/// `x * scale`, an integer when it is one to within rounding.
pub fn scaled(x: f64, scale: u32) -> Amount {
    let y = x * f64::from(scale);
    let r = y.round();
    if (y - r).abs() < 1e-6 && r.abs() < 9e15 {
        Amount::Integer(r as i64)
    } else {
        Amount::Real(y)
    }
}

fn number_text(t: &str) -> Option<f64> {
    let t = t.trim();
    let (negative, t) = match t.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) => (true, inner),
        None => (false, t),
    };
    let cleaned: String = t
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' ' | '¥' | '￥' | '元' | '\u{a0}'))
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    let x: f64 = cleaned.parse().ok()?;
    x.is_finite().then_some(if negative { -x } else { x })
}

/// Whether two amounts are the same to the hundredth of their unit (a cent of yuan amounts,
/// exactly for integer cents).
pub fn same_amount(a: Amount, b: Amount) -> bool {
    match (a, b) {
        (Amount::Integer(a), Amount::Integer(b)) => a == b,
        (a, b) => ((a.as_f64() * 100.0).round() - (b.as_f64() * 100.0).round()).abs() < 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn dates_as_lists_write_them() {
        let t = |s: &str| date(&Cell::Text(s.into()));
        assert_eq!(t("2024-03-05"), day(2024, 3, 5));
        assert_eq!(t("2024/3/5"), day(2024, 3, 5));
        assert_eq!(t("2024.03.05"), day(2024, 3, 5));
        assert_eq!(t("2024年03月05日"), day(2024, 3, 5));
        assert_eq!(t("2024年3月5日 10:22"), day(2024, 3, 5));
        assert_eq!(t("2024-03-05 10:22:11"), day(2024, 3, 5));
        assert_eq!(t("2024-03-05T10:22:11+08:00"), day(2024, 3, 5));
        assert_eq!(t("20240305"), day(2024, 3, 5));
        assert_eq!(t("45356"), day(2024, 3, 5));
        assert_eq!(date(&Cell::Number(45356.75)), day(2024, 3, 5));
        assert_eq!(date(&Cell::Int(1)), day(1900, 1, 1));
        assert_eq!(date(&Cell::Date(2024, 2, 29)), day(2024, 2, 29));
        for bad in [
            "",
            "2024-13-01",
            "2024-02-30",
            "03/05/2024",
            "abc",
            "2024-03",
            "2024-03-05x",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_with_separators_and_scale() {
        let t = |s: &str, k| amount(&Cell::Text(s.into()), k);
        assert_eq!(t("1,234.56", 100), Some(Amount::Integer(123_456)));
        assert_eq!(t("¥1234.5", 100), Some(Amount::Integer(123_450)));
        assert_eq!(t("(12.00)", 1), Some(Amount::Integer(-12)));
        assert_eq!(t("-0.01", 100), Some(Amount::Integer(-1)));
        assert_eq!(t("12.345", 1), Some(Amount::Real(12.345)));
        assert_eq!(t("", 1), None);
        assert_eq!(t("abc", 1), None);
        assert_eq!(
            amount(&Cell::Number(1234.56), 100),
            Some(Amount::Integer(123_456))
        );
        assert_eq!(amount(&Cell::Int(7), 100), Some(Amount::Integer(700)));
        assert!(!same_amount(Amount::Real(1234.5), Amount::Integer(1234)));
        assert!(same_amount(
            Amount::Real(1234.5),
            Amount::Real(1_234.500_000_1)
        ));
    }
}
