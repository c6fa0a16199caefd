//! What is due: a pure function of the schedules, what last ran and the time, so the daemon
//! and `ivault run` decide alike and tests can run a simulated week in milliseconds.
//!
//! - A missed run (downtime, a long job) is done once, not once per missed time.
//! - A full backup takes the place of an incremental one due at the same time.
//! - A source that never ran a job is due for it at once.
//!
//! Schedules are read in a time zone: the host's local time, or a policy's `time_zone`
//! ([`Zone`]); every function is generic over chrono's `TimeZone`, and `Zone` picks one.

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use std::collections::BTreeMap;

/// The kinds of scheduled job, in the order a pass runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobKind {
    Full,
    Incremental,
    Drill,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Full => "full",
            JobKind::Incremental => "incremental",
            JobKind::Drill => "drill",
        }
    }
}

/// Parses a standard 5-field cron expression (minute hour day-of-month month day-of-week;
/// day of month and day of week match either, as Vixie cron does). The error is one sentence.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("{expr:?} is not a 5-field cron expression ({e})"))
}

/// One source's schedules.
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    pub by_kind: BTreeMap<JobKind, Cron>,
}

/// When each kind of job last started, for one source.
pub type LastRuns = BTreeMap<JobKind, DateTime<Utc>>;

/// The zone a policy's schedules are read in: the host's local time, or a named IANA zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    #[default]
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// [`due`] in this zone.
    pub fn due(&self, schedules: &Schedules, last: &LastRuns, now: DateTime<Utc>) -> Vec<JobKind> {
        match self {
            Zone::Local => due(schedules, &chrono::Local, last, now),
            Zone::Named(tz) => due(schedules, tz, last, now),
        }
    }

    /// [`next_wake`] in this zone.
    pub fn next_wake(&self, schedules: &Schedules, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Zone::Local => next_wake(schedules, &chrono::Local, now),
            Zone::Named(tz) => next_wake(schedules, tz, now),
        }
    }

    /// [`latest_slot`] in this zone.
    pub fn latest_slot(&self, cron: &Cron, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Zone::Local => latest_slot(cron, &chrono::Local, now),
            Zone::Named(tz) => latest_slot(cron, tz, now),
        }
    }

    /// The next `n` times `cron` fires after `now`, written with this zone's offset
    /// (`2026-11-24 03:00 +01:00`), for `policy check`.
    pub fn next_times_shown(&self, cron: &Cron, now: DateTime<Utc>, n: usize) -> Vec<String> {
        const SHOWN: &str = "%Y-%m-%d %H:%M %:z";
        match self {
            Zone::Local => next_times(cron, &chrono::Local, now, n)
                .iter()
                .map(|t| t.format(SHOWN).to_string())
                .collect(),
            Zone::Named(tz) => next_times(cron, tz, now, n)
                .iter()
                .map(|t| t.format(SHOWN).to_string())
                .collect(),
        }
    }
}

/// The latest scheduled time at or before `now`, in `zone`.
pub fn latest_slot<Z: TimeZone>(
    cron: &Cron,
    zone: &Z,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    cron.find_previous_occurrence(&now.with_timezone(zone), true)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The jobs due at `now`, in the order to run them.
pub fn due<Z: TimeZone>(
    schedules: &Schedules,
    zone: &Z,
    last: &LastRuns,
    now: DateTime<Utc>,
) -> Vec<JobKind> {
    let mut out = Vec::new();
    for (&kind, cron) in &schedules.by_kind {
        // A full backup also satisfies the incremental schedule.
        let ran = match kind {
            JobKind::Incremental => last
                .get(&JobKind::Incremental)
                .max(last.get(&JobKind::Full))
                .copied(),
            k => last.get(&k).copied(),
        };
        let is_due = match (ran, latest_slot(cron, zone, now)) {
            (None, _) => true,
            (Some(ran), Some(slot)) => ran < slot,
            (Some(_), None) => false,
        };
        if is_due {
            out.push(kind);
        }
    }
    if out.contains(&JobKind::Full) {
        out.retain(|k| *k != JobKind::Incremental);
    }
    out
}

/// The next time after `now` any schedule fires.
pub fn next_wake<Z: TimeZone>(
    schedules: &Schedules,
    zone: &Z,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedules
        .by_kind
        .values()
        .filter_map(|c| c.find_next_occurrence(&now.with_timezone(zone), false).ok())
        .map(|t| t.with_timezone(&Utc))
        .min()
}

/// The next `n` times a cron expression fires after `now`, for `policy check`.
pub fn next_times<Z: TimeZone>(
    cron: &Cron,
    zone: &Z,
    now: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Z>> {
    let mut out = Vec::new();
    let mut t = now.with_timezone(zone);
    while out.len() < n {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) => {
                t = next.clone();
                out.push(next);
            }
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn schedules(pairs: &[(JobKind, &str)]) -> Schedules {
        Schedules {
            by_kind: pairs
                .iter()
                .map(|(k, e)| (*k, parse_cron(e).unwrap()))
                .collect(),
        }
    }

    /// Runs the plan from `start` to `end` as the daemon would: wake, run what is due (each
    /// job taking no time), record it.
    fn simulate(
        s: &Schedules,
        zone: &FixedOffset,
        start: &str,
        end: &str,
        mut last: LastRuns,
    ) -> Vec<(JobKind, DateTime<Utc>)> {
        let (mut now, end) = (at(start), at(end));
        let mut ran = Vec::new();
        loop {
            for kind in due(s, zone, &last, now) {
                ran.push((kind, now));
                last.insert(kind, now);
            }
            match next_wake(s, zone, now) {
                Some(t) if t <= end => now = t,
                _ => break,
            }
        }
        ran
    }

    #[test]
    fn a_simulated_week_runs_exactly_the_scheduled_jobs() {
        let s = schedules(&[
            (JobKind::Incremental, "0 * * * *"),
            (JobKind::Full, "0 1 * * Sun"),
            (JobKind::Drill, "30 3 * * *"),
        ]);
        let zone = FixedOffset::east_opt(8 * 3600).unwrap();
        // Everything ran just before the week starts (Monday 2026-11-23 00:00 in +08:00).
        let before = at("2026-11-22T15:59:00Z");
        let last: LastRuns = [
            (JobKind::Incremental, before),
            (JobKind::Full, before),
            (JobKind::Drill, before),
        ]
        .into();
        let ran = simulate(
            &s,
            &zone,
            "2026-11-22T16:00:00Z",
            "2026-11-29T15:59:00Z",
            last,
        );
        let count = |k| ran.iter().filter(|(x, _)| *x == k).count();
        // 168 hourly slots, of which Sunday 01:00 is the full backup's.
        assert_eq!(count(JobKind::Incremental), 167);
        assert_eq!(count(JobKind::Full), 1);
        assert_eq!(count(JobKind::Drill), 7);
        let full = ran.iter().find(|(k, _)| *k == JobKind::Full).unwrap().1;
        assert_eq!(
            full.with_timezone(&zone).to_rfc3339(),
            "2026-11-29T01:00:00+08:00"
        );
        // In time order, and never two jobs of one kind at once.
        assert!(ran.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn after_three_days_down_each_missed_job_runs_once() {
        let s = schedules(&[
            (JobKind::Incremental, "0 * * * *"),
            (JobKind::Drill, "0 3 * * *"),
        ]);
        let zone = FixedOffset::east_opt(0).unwrap();
        let last: LastRuns = [
            (JobKind::Incremental, at("2026-11-20T10:00:00Z")),
            (JobKind::Drill, at("2026-11-20T03:00:00Z")),
        ]
        .into();
        let now = at("2026-11-23T10:30:00Z");
        assert_eq!(
            due(&s, &zone, &last, now),
            [JobKind::Incremental, JobKind::Drill]
        );
        let mut after = last.clone();
        after.insert(JobKind::Incremental, now);
        after.insert(JobKind::Drill, now);
        assert!(due(&s, &zone, &after, now).is_empty());
        assert_eq!(next_wake(&s, &zone, now), Some(at("2026-11-23T11:00:00Z")));
    }

    #[test]
    fn never_run_is_due_and_a_recent_full_covers_the_incremental() {
        let s = schedules(&[
            (JobKind::Incremental, "0 * * * *"),
            (JobKind::Full, "0 1 * * 0"),
        ]);
        let zone = FixedOffset::east_opt(0).unwrap();
        let now = at("2026-11-23T10:30:00Z");
        assert_eq!(due(&s, &zone, &LastRuns::new(), now), [JobKind::Full]);
        let last: LastRuns = [(JobKind::Full, at("2026-11-23T10:05:00Z"))].into();
        assert!(due(&s, &zone, &last, now).is_empty());
    }

    #[test]
    fn cron_expressions_are_standard_five_fields() {
        assert!(parse_cron("0 * * * *").is_ok());
        assert!(parse_cron("30 1 * * Sun").is_ok());
        let e = parse_cron("0 0 * * * *").unwrap_err();
        assert!(
            e.starts_with("\"0 0 * * * *\" is not a 5-field cron expression"),
            "{e}"
        );
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("every hour").is_err());
        let zone = FixedOffset::east_opt(0).unwrap();
        let times = next_times(
            &parse_cron("0 3 * * *").unwrap(),
            &zone,
            at("2026-11-23T10:00:00Z"),
            2,
        );
        assert_eq!(
            times.iter().map(|t| t.to_rfc3339()).collect::<Vec<_>>(),
            ["2026-11-24T03:00:00+00:00", "2026-11-25T03:00:00+00:00"]
        );
    }
}
