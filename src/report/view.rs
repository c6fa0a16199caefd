//! What every format shows alike: which figures differ, how checks add up, how an objective
//! reads. Kept here so Markdown and HTML can never disagree about a difference.

use super::labels::{label, status, Key, Lang};
use super::model::{Check, MonthRow, Objective, Status};
use super::units::duration;
use crate::facts::Amount;

/// Which cells of a month row differ from the expected (manifest) figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MonthDiff {
    pub actual_invoices: bool,
    pub actual_total: bool,
    pub live_invoices: bool,
    pub live_total: bool,
    pub missing: bool,
    pub extra: bool,
    pub amount_difference: bool,
}

impl MonthDiff {
    pub fn of(row: &MonthRow) -> MonthDiff {
        let mut diff = MonthDiff {
            // An unreadable restored copy differs from any expectation.
            actual_invoices: row.actual_invoices != Some(row.expected_invoices),
            actual_total: !row
                .actual_total
                .is_some_and(|t| t.same_as(row.expected_total)),
            ..MonthDiff::default()
        };
        if let Some(live) = &row.live {
            diff.live_invoices = live.invoices != row.expected_invoices;
            diff.live_total = !live.total.same_as(row.expected_total);
            diff.missing = live.missing > 0;
            diff.extra = live.extra > 0;
            diff.amount_difference = !live.amount_difference.same_as(Amount::Integer(0));
        }
        diff
    }

    pub fn any(self) -> bool {
        self.actual_invoices
            || self.actual_total
            || self.live_invoices
            || self.live_total
            || self.missing
            || self.extra
            || self.amount_difference
    }
}

/// A month row differs when any figure does, or when the engine says so.
pub fn month_ok(row: &MonthRow) -> bool {
    row.ok && !MonthDiff::of(row).any()
}

/// "12 passed, 1 warning, 1 failed": the non-zero counts, in status order.
pub fn check_summary(checks: &[Check], lang: Lang) -> String {
    let statuses = [
        Status::Failed,
        Status::Warning,
        Status::Passed,
        Status::Skipped,
    ];
    let sep = match lang {
        Lang::En => ", ",
        Lang::ZhCn => "，",
    };
    statuses
        .iter()
        .filter_map(|&s| {
            let n = checks.iter().filter(|c| c.status == s).count();
            (n > 0).then(|| format!("{n} {}", label(status(s), lang)))
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// "4.2 s (objective 5 min 00 s, met)", or "(no objective)".
pub fn objective(o: &Objective, lang: Lang) -> String {
    let (open, sep, close) = match lang {
        Lang::En => (" (", ", ", ")"),
        Lang::ZhCn => ("（", "，", "）"),
    };
    let actual = duration(o.actual_ms);
    match o.objective_ms {
        None => format!("{actual}{open}{}{close}", label(Key::NoObjective, lang)),
        Some(goal) => {
            // `met` is what the engine decided; recompute only if it left it out.
            let met = o.met.unwrap_or(o.actual_ms <= goal);
            let word = if met { Key::Met } else { Key::NotMet };
            format!(
                "{actual}{open}{} {}{sep}{}{close}",
                label(Key::Objective, lang),
                duration(goal),
                label(word, lang)
            )
        }
    }
}

/// Whether an objective was missed: only a known objective can be.
pub fn objective_missed(o: &Objective) -> bool {
    o.met == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{CheckKind, LiveMonth};

    fn row() -> MonthRow {
        MonthRow {
            month: "2026-01".into(),
            expected_invoices: 10,
            expected_total: Amount::Integer(1000),
            actual_invoices: Some(10),
            actual_total: Some(Amount::Real(1000.0)),
            live: None,
            ok: true,
        }
    }

    #[test]
    fn equal_months_do_not_differ() {
        assert!(!MonthDiff::of(&row()).any());
        assert!(month_ok(&row()));
    }

    #[test]
    fn unreadable_and_drifting_months_differ() {
        let mut r = row();
        r.actual_invoices = None;
        r.actual_total = None;
        let d = MonthDiff::of(&r);
        assert!(d.actual_invoices && d.actual_total && !d.live_invoices);
        let mut r = row();
        r.live = Some(LiveMonth {
            invoices: 9,
            total: Amount::Integer(900),
            missing: 1,
            extra: 0,
            amount_difference: Amount::Integer(-100),
        });
        let d = MonthDiff::of(&r);
        assert!(d.live_invoices && d.live_total && d.missing && d.amount_difference);
        assert!(!d.extra && !d.actual_invoices);
        assert!(!month_ok(&r));
    }

    #[test]
    fn objectives_and_summaries() {
        let o = Objective::new(4_200, Some(300_000));
        assert_eq!(objective(&o, Lang::En), "4.2 s (objective 5 min 00 s, met)");
        assert_eq!(objective(&o, Lang::ZhCn), "4.2 s（目标 5 min 00 s，达标）");
        let late = Objective::new(400_000, Some(300_000));
        assert!(objective(&late, Lang::En).ends_with("not met)"));
        assert!(objective_missed(&late));
        let none = Objective::new(10, None);
        assert_eq!(objective(&none, Lang::En), "10 ms (no objective)");
        assert!(!objective_missed(&none));

        let check = |status| Check {
            kind: CheckKind::RowCount,
            subject: None,
            status,
            expected: None,
            actual: None,
            detail: None,
        };
        let checks = [
            check(Status::Passed),
            check(Status::Passed),
            check(Status::Failed),
            check(Status::Warning),
        ];
        assert_eq!(
            check_summary(&checks, Lang::En),
            "1 failed, 1 warning, 2 passed"
        );
        assert_eq!(check_summary(&checks, Lang::ZhCn), "1 失败，1 警告，2 通过");
    }
}
