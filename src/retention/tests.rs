//! Table-driven cases: restic's documented `forget` semantics, month and year ends, holds.

use super::*;
use chrono::TimeZone;

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Snapshots named by their time (`2026-01-31T23:00`), in the order given.
fn snaps(times: &[&str]) -> Vec<Snapshot> {
    times
        .iter()
        .map(|t| Snapshot {
            id: t.to_string(),
            time: at(&format!("{t}:00Z")),
            tags: Vec::new(),
            hold: None,
        })
        .collect()
}

/// The ids kept, oldest first.
fn kept(snapshots: &[Snapshot], rules: &Rules, now: &str) -> Vec<String> {
    kept_in(snapshots, rules, now, utc())
}

fn kept_in(snapshots: &[Snapshot], rules: &Rules, now: &str, zone: FixedOffset) -> Vec<String> {
    let mut ids: Vec<String> = decide(snapshots, rules, zone, at(now))
        .into_iter()
        .filter(Decision::keep)
        .map(|d| d.id)
        .collect();
    ids.sort();
    ids
}

/// Every day at 10:00 and 22:00 from `from` for `days` days.
fn twice_daily(from: NaiveDate, days: i64) -> Vec<String> {
    (0..days)
        .flat_map(|d| {
            let day = from + chrono::Days::new(d as u64);
            [format!("{day}T10:00"), format!("{day}T22:00")]
        })
        .collect()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn keep_last_keeps_the_newest_whatever_the_input_order() {
    let mut s = snaps(&[
        "2026-01-01T01:00",
        "2026-01-03T01:00",
        "2026-01-02T01:00",
        "2026-01-05T01:00",
    ]);
    let rules = Rules {
        last: Some(Count::Last(2)),
        ..Rules::default()
    };
    assert_eq!(
        kept(&s, &rules, "2026-02-01T00:00:00Z"),
        ["2026-01-03T01:00", "2026-01-05T01:00"]
    );
    s.reverse();
    assert_eq!(
        kept(&s, &rules, "2026-02-01T00:00:00Z"),
        ["2026-01-03T01:00", "2026-01-05T01:00"]
    );
}

#[test]
fn daily_keeps_the_newest_of_each_day_that_has_snapshots() {
    // Days 1, 2 and 4 have snapshots (3 does not): keep-daily 3 reaches back to day 1.
    let s = snaps(&[
        "2026-01-01T09:00",
        "2026-01-01T18:00",
        "2026-01-02T09:00",
        "2026-01-02T18:00",
        "2026-01-04T09:00",
        "2026-01-04T18:00",
    ]);
    let rules = Rules {
        daily: Some(Count::Last(3)),
        ..Rules::default()
    };
    assert_eq!(
        kept(&s, &rules, "2026-01-05T00:00:00Z"),
        ["2026-01-01T18:00", "2026-01-02T18:00", "2026-01-04T18:00"]
    );
    let rules = Rules {
        daily: Some(Count::Last(2)),
        ..Rules::default()
    };
    assert_eq!(
        kept(&s, &rules, "2026-01-05T00:00:00Z"),
        ["2026-01-02T18:00", "2026-01-04T18:00"]
    );
}

#[test]
fn hourly_weekly_monthly_and_yearly_buckets() {
    let s = snaps(&[
        "2025-12-28T10:10",
        "2025-12-28T10:50", // Sunday: ISO week 2025-W52
        "2025-12-29T08:00", // Monday: ISO week 2026-W01
        "2026-01-04T23:00", // Sunday, still 2026-W01
        "2026-01-05T07:00", // 2026-W02
    ]);
    let r = |f: fn(&mut Rules)| {
        let mut rules = Rules::default();
        f(&mut rules);
        kept(&s, &rules, "2026-01-06T00:00:00Z")
    };
    assert_eq!(r(|r| r.hourly = Some(Count::All)).len(), 4); // 10:10 and 10:50 share an hour
    assert_eq!(
        r(|r| r.weekly = Some(Count::All)),
        ["2025-12-28T10:50", "2026-01-04T23:00", "2026-01-05T07:00"]
    );
    assert_eq!(
        r(|r| r.monthly = Some(Count::Last(1))),
        ["2026-01-05T07:00"]
    );
    assert_eq!(
        r(|r| r.monthly = Some(Count::All)),
        ["2025-12-29T08:00", "2026-01-05T07:00"]
    );
    assert_eq!(
        r(|r| r.yearly = Some(Count::All)),
        ["2025-12-29T08:00", "2026-01-05T07:00"]
    );
}

#[test]
fn within_counts_back_from_the_newest_snapshot_not_from_now() {
    let s = snaps(&["2026-01-01T00:00", "2026-01-02T12:00", "2026-01-03T00:00"]);
    let rules = Rules {
        within: Some(Duration::from_secs(36 * 3600)),
        ..Rules::default()
    };
    // A year later the newest snapshots are still "within" of each other.
    assert_eq!(
        kept(&s, &rules, "2027-01-01T00:00:00Z"),
        ["2026-01-02T12:00", "2026-01-03T00:00"]
    );
}

#[test]
fn tags_and_holds_keep_whatever_else_the_rules_say() {
    let mut s = snaps(&["2026-01-01T00:00", "2026-01-02T00:00", "2026-01-03T00:00"]);
    s[0].tags = vec!["audit".into()];
    s[1].hold = Some("tax inspection 2025".into());
    let rules = Rules {
        last: Some(Count::Last(1)),
        tags: vec!["audit".into()],
        ..Rules::default()
    };
    let d = decide(&s, &rules, utc(), at("2026-02-01T00:00:00Z"));
    let reasons: BTreeMap<String, Vec<String>> = d.into_iter().map(|d| (d.id, d.reasons)).collect();
    assert_eq!(reasons["2026-01-01T00:00"], ["tag audit"]);
    assert_eq!(reasons["2026-01-02T00:00"], ["hold: tax inspection 2025"]);
    assert_eq!(reasons["2026-01-03T00:00"], ["last"]);
}

#[test]
fn month_end_keeps_the_last_snapshot_of_each_closed_month_only() {
    let times = twice_daily(day(2026, 1, 1), 74); // Jan 1 .. Mar 15
    let s = snaps(&times.iter().map(String::as_str).collect::<Vec<_>>());
    let rules = Rules {
        month_end: Some(Count::All),
        ..Rules::default()
    };
    // March is not over on March 15th: its newest snapshot is no month end.
    assert_eq!(
        kept(&s, &rules, "2026-03-15T23:00:00Z"),
        ["2026-01-31T22:00", "2026-02-28T22:00"]
    );
    let rules = Rules {
        month_end: Some(Count::Last(1)),
        ..Rules::default()
    };
    assert_eq!(
        kept(&s, &rules, "2026-03-15T23:00:00Z"),
        ["2026-02-28T22:00"]
    );
    // Once April begins, March's last snapshot is its month end.
    let rules = Rules {
        month_end: Some(Count::All),
        ..Rules::default()
    };
    assert_eq!(kept(&s, &rules, "2026-04-01T00:00:00Z").len(), 3);
}

#[test]
fn month_ends_follow_the_zone() {
    // 2026-01-31T20:00Z is February 1st, 04:00 in +08:00.
    let s = snaps(&["2026-01-31T10:00", "2026-01-31T20:00", "2026-02-10T00:00"]);
    let rules = Rules {
        month_end: Some(Count::All),
        ..Rules::default()
    };
    let beijing = FixedOffset::east_opt(8 * 3600).unwrap();
    assert_eq!(
        kept_in(&s, &rules, "2026-03-02T00:00:00Z", beijing),
        ["2026-01-31T10:00", "2026-02-10T00:00"]
    );
    assert_eq!(
        kept_in(&s, &rules, "2026-03-02T00:00:00Z", utc()),
        ["2026-01-31T20:00", "2026-02-10T00:00"]
    );
}

#[test]
fn year_end_follows_the_fiscal_year() {
    let s = snaps(&[
        "2024-03-30T12:00",
        "2024-03-31T12:00", // fiscal 2023 (April to March)
        "2024-04-01T12:00",
        "2025-03-31T12:00", // fiscal 2024
        "2025-04-02T12:00",
        "2025-12-31T12:00", // fiscal 2025, still open in January 2026
    ]);
    let rules = Rules {
        year_end: Some(Count::All),
        fiscal_year_start: (4, 1),
        ..Rules::default()
    };
    assert_eq!(
        kept(&s, &rules, "2026-01-15T00:00:00Z"),
        ["2024-03-31T12:00", "2025-03-31T12:00"]
    );
    // Calendar years: 2024 and 2025 are closed in 2026.
    let rules = Rules {
        year_end: Some(Count::All),
        fiscal_year_start: (1, 1),
        ..Rules::default()
    };
    assert_eq!(
        kept(&s, &rules, "2026-01-15T00:00:00Z"),
        ["2024-04-01T12:00", "2025-12-31T12:00"]
    );
}

#[test]
fn rules_that_keep_nothing_are_recognised() {
    assert!(!Rules::default().keeps_something());
    assert!(!Rules {
        last: Some(Count::Last(0)),
        daily: Some(Count::Last(0)),
        ..Rules::default()
    }
    .keeps_something());
    assert!(!Rules {
        within: Some(Duration::ZERO),
        ..Rules::default()
    }
    .keeps_something());
    assert!(Rules {
        yearly: Some(Count::All),
        ..Rules::default()
    }
    .keeps_something());
    assert!(Rules {
        tags: vec!["x".into()],
        ..Rules::default()
    }
    .keeps_something());
}

#[test]
fn every_rule_that_keeps_a_snapshot_is_named() {
    let s = snaps(&["2026-01-31T22:00"]);
    let rules = Rules {
        last: Some(Count::Last(5)),
        daily: Some(Count::Last(5)),
        monthly: Some(Count::Last(5)),
        month_end: Some(Count::All),
        ..Rules::default()
    };
    let d = decide(
        &s,
        &rules,
        utc(),
        Utc.with_ymd_and_hms(2026, 2, 2, 0, 0, 0).unwrap(),
    );
    assert_eq!(
        d[0].reasons,
        [
            "last",
            "daily 2026-01-31",
            "monthly 2026-01",
            "month-end 2026-01"
        ]
    );
}
