//! Which snapshots a retention policy keeps, and why. The rules and their meaning follow
//! restic's `forget` (docs/OPERATIONS.md lists the differences), plus what finance needs: the
//! last snapshot of each closed month and of each closed fiscal year, and legal holds that no
//! rule removes. A pure function of the snapshots' times and tags: nothing here reads or
//! deletes anything.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// A count of periods to keep: `Some(n)`, or every period (`All`, restic's `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Last(u32),
    All,
}

impl Count {
    fn allows(self, taken: u32) -> bool {
        match self {
            Count::All => true,
            Count::Last(n) => taken < n,
        }
    }
}

/// A retention policy. Every rule is optional; one that keeps nothing at all is refused by
/// [`Rules::keeps_something`] so that a typo cannot forget every snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub last: Option<Count>,
    pub hourly: Option<Count>,
    pub daily: Option<Count>,
    pub weekly: Option<Count>,
    pub monthly: Option<Count>,
    pub yearly: Option<Count>,
    /// Every snapshot younger than this, measured from the newest snapshot (as restic does).
    pub within: Option<Duration>,
    /// Every snapshot with any of these tags.
    pub tags: Vec<String>,
    /// The last snapshot of each closed calendar month.
    pub month_end: Option<Count>,
    /// The last snapshot of each closed fiscal year.
    pub year_end: Option<Count>,
    /// First day of the fiscal year, (month, day); default January 1st.
    pub fiscal_year_start: (u32, u32),
}

impl Rules {
    pub fn keeps_something(&self) -> bool {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
            self.month_end,
            self.year_end,
        ];
        counts
            .iter()
            .any(|c| matches!(c, Some(Count::All) | Some(Count::Last(1..))))
            || self.within.is_some_and(|d| !d.is_zero())
            || !self.tags.is_empty()
    }
}

/// One snapshot as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub time: DateTime<Utc>,
    pub tags: Vec<String>,
    /// A legal hold's reason: kept whatever the rules say.
    pub hold: Option<String>,
}

/// What happens to one snapshot, and the rules that keep it (empty: it is forgotten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub reasons: Vec<String>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Decides for every snapshot of one source. Periods are counted in `zone` (the host's local
/// time, as restic does); "closed" months and years are those before `now`'s.
pub fn decide(
    snapshots: &[Snapshot],
    rules: &Rules,
    zone: FixedOffset,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut order: Vec<&Snapshot> = snapshots.iter().collect();
    // Newest first; ties broken by id so the outcome never depends on listing order.
    order.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let newest = order.first().map(|s| s.time);
    let today = now.with_timezone(&zone).date_naive();
    let (fy_month, fy_day) = rules.fiscal_year_start;
    let current_fiscal = fiscal_year(today, fy_month, fy_day);

    type Bucket = fn(&DateTime<FixedOffset>) -> String;
    let periodic: [(&str, Option<Count>, Bucket); 5] = [
        ("hourly", rules.hourly, |t| {
            t.format("%Y-%m-%d %H:00").to_string()
        }),
        ("daily", rules.daily, |t| t.format("%Y-%m-%d").to_string()),
        ("weekly", rules.weekly, |t| {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("monthly", rules.monthly, |t| t.format("%Y-%m").to_string()),
        ("yearly", rules.yearly, |t| t.format("%Y").to_string()),
    ];
    // Per rule: the last bucket kept and how many buckets were taken.
    let mut seen: BTreeMap<&str, (String, u32)> = BTreeMap::new();
    let mut taken_last = 0u32;
    let mut decisions = Vec::new();
    for s in order {
        let local = s.time.with_timezone(&zone);
        let mut reasons = Vec::new();
        if let Some(h) = &s.hold {
            reasons.push(format!("hold: {h}"));
        }
        if let Some(c) = rules.last {
            if c.allows(taken_last) {
                taken_last += 1;
                reasons.push("last".to_string());
            }
        }
        for (name, count, bucket) in periodic.iter() {
            let Some(count) = count else { continue };
            let b = bucket(&local);
            let entry = seen.entry(name).or_insert((String::new(), 0));
            if entry.0 != b && count.allows(entry.1) {
                entry.0 = b.clone();
                entry.1 += 1;
                reasons.push(format!("{name} {b}"));
            }
        }
        let month = (local.year(), local.month());
        if let Some(count) = rules.month_end {
            let closed = month < (today.year(), today.month());
            let b = format!("{:04}-{:02}", month.0, month.1);
            let entry = seen.entry("month-end").or_insert((String::new(), 0));
            if closed && entry.0 != b && count.allows(entry.1) {
                entry.0 = b.clone();
                entry.1 += 1;
                reasons.push(format!("month-end {b}"));
            }
        }
        if let Some(count) = rules.year_end {
            let fy = fiscal_year(local.date_naive(), fy_month, fy_day);
            let b = format!("FY{fy}");
            let entry = seen.entry("year-end").or_insert((String::new(), 0));
            if fy < current_fiscal && entry.0 != b && count.allows(entry.1) {
                entry.0 = b.clone();
                entry.1 += 1;
                reasons.push(format!("year-end {b}"));
            }
        }
        if let (Some(within), Some(newest)) = (rules.within, newest) {
            let age = (newest - s.time).to_std().unwrap_or_default();
            if age < within {
                reasons.push(format!("within {}", humane(within)));
            }
        }
        if let Some(tag) = rules.tags.iter().find(|t| s.tags.contains(t)) {
            reasons.push(format!("tag {tag}"));
        }
        decisions.push(Decision {
            id: s.id.clone(),
            reasons,
        });
    }
    decisions
}

/// The fiscal year a day belongs to, named by the calendar year it starts in.
fn fiscal_year(day: NaiveDate, start_month: u32, start_day: u32) -> i32 {
    if (day.month(), day.day()) >= (start_month, start_day) {
        day.year()
    } else {
        day.year() - 1
    }
}

fn humane(d: Duration) -> String {
    let s = d.as_secs();
    match (s % 86_400, s % 3600) {
        (0, _) => format!("{}d", s / 86_400),
        (_, 0) => format!("{}h", s / 3600),
        _ => format!("{}s", s),
    }
}

#[cfg(test)]
mod tests;
