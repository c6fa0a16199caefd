//! The daemon's core against a simulated clock (tokio's paused time, which jumps to the next
//! timer whenever nothing else can run) and fake jobs that take simulated time: weeks run in
//! milliseconds, and every start is checked against a list computed independently.

use super::*;
use crate::scheduler::plan::parse_cron;
use std::collections::BTreeSet;
use std::sync::Mutex;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Simulated time: `start` plus the time tokio's paused clock has advanced.
struct SimClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.origin.elapsed()).unwrap()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()> + Send {
        tokio::time::sleep((t - self.now()).to_std().unwrap_or(Duration::ZERO))
    }
}

/// (source, kind, started) of jobs, shared with the fakes.
type Started = Arc<Mutex<Vec<(String, JobKind, DateTime<Utc>)>>>;

#[derive(Clone, Default)]
struct Log {
    /// (source, kind, started) of every job the runner was given.
    jobs: Started,
    /// Jobs given to the runner while another job of their source ran.
    overlaps: Arc<Mutex<usize>>,
    running: Arc<Mutex<BTreeSet<String>>>,
    starts: Started,
    skips: Arc<Mutex<Vec<Skip>>>,
    initial: Arc<BTreeMap<String, LastRuns>>,
}

struct FakeRunner {
    clock: Arc<SimClock>,
    takes: fn(JobKind) -> Duration,
    log: Log,
}

impl Runner<()> for FakeRunner {
    fn run(&self, job: Job<()>) -> impl Future<Output = JobEnd> + Send {
        let (log, takes) = (self.log.clone(), (self.takes)(job.kind));
        let now = self.clock.now();
        async move {
            assert_eq!(job.started, now);
            if !log.running.lock().unwrap().insert(job.source.clone()) {
                *log.overlaps.lock().unwrap() += 1;
            }
            log.jobs
                .lock()
                .unwrap()
                .push((job.source.clone(), job.kind, job.started));
            tokio::time::sleep(takes).await;
            log.running.lock().unwrap().remove(&job.source);
            JobEnd {
                ok: true,
                summary: "done".into(),
            }
        }
    }
}

struct FakeLedger(Log);

impl Ledger for FakeLedger {
    fn last_runs(&self, source: &str) -> LastRuns {
        self.0.initial.get(source).cloned().unwrap_or_default()
    }
    fn record_start(&self, source: &str, kind: JobKind, at: DateTime<Utc>) {
        self.0
            .starts
            .lock()
            .unwrap()
            .push((source.to_string(), kind, at));
    }
    fn record_skip(&self, skip: &Skip) {
        self.0.skips.lock().unwrap().push(skip.clone());
    }
}

fn plan(source: &str, zone: Zone, pairs: &[(JobKind, &str)]) -> SourcePlan<()> {
    SourcePlan {
        source: source.into(),
        schedules: Schedules {
            by_kind: pairs
                .iter()
                .map(|(k, e)| (*k, parse_cron(e).unwrap()))
                .collect(),
        },
        zone,
        jitter: None,
        payload: (),
    }
}

fn utc() -> Zone {
    Zone::Named(chrono_tz::UTC)
}

struct Sim {
    start: &'static str,
    length: Duration,
    plans: Vec<SourcePlan<()>>,
    initial: BTreeMap<String, LastRuns>,
    takes: fn(JobKind) -> Duration,
    max_parallel: usize,
}

impl Sim {
    fn new(start: &'static str, length: Duration, plans: Vec<SourcePlan<()>>) -> Sim {
        Sim {
            start,
            length,
            plans,
            initial: BTreeMap::new(),
            takes: |_| MIN,
            max_parallel: 1,
        }
    }

    /// Runs the daemon for `length` of simulated time, then stops it; every job must have
    /// finished by then, none overlapping another of its source.
    async fn run(self) -> Log {
        let clock = Arc::new(SimClock {
            start: at(self.start),
            origin: tokio::time::Instant::now(),
        });
        let log = Log {
            initial: Arc::new(self.initial),
            ..Log::default()
        };
        let runner = Arc::new(FakeRunner {
            clock: clock.clone(),
            takes: self.takes,
            log: log.clone(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let options = Options {
            max_parallel: self.max_parallel,
            seed: Some(7),
        };
        let daemon = tokio::spawn(serve(
            clock,
            runner,
            FakeLedger(log.clone()),
            self.plans,
            options,
            rx,
        ));
        tokio::time::sleep(self.length).await;
        tx.send(Control::Stop).unwrap();
        assert_eq!(daemon.await.unwrap(), Ended::Clean);
        assert_eq!(
            *log.overlaps.lock().unwrap(),
            0,
            "a source ran two jobs at once"
        );
        // Every job started was recorded as started, at the time it started.
        assert_eq!(*log.starts.lock().unwrap(), *log.jobs.lock().unwrap());
        log
    }
}

fn jobs(log: &Log) -> Vec<(JobKind, DateTime<Utc>)> {
    log.jobs
        .lock()
        .unwrap()
        .iter()
        .map(|(_, k, t)| (*k, *t))
        .collect()
}

fn everything_ran_at(t: &str) -> LastRuns {
    [JobKind::Incremental, JobKind::Full, JobKind::Drill]
        .into_iter()
        .map(|k| (k, at(t)))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_simulated_week_starts_exactly_the_scheduled_jobs_in_order() {
    let mut sim = Sim::new(
        "2026-11-23T00:00:00Z", // a Monday
        7 * 24 * HOUR - MIN,
        vec![plan(
            "books",
            utc(),
            &[
                (JobKind::Incremental, "0 * * * *"),
                (JobKind::Full, "0 2 * * 0"),
                (JobKind::Drill, "30 3 * * *"),
            ],
        )],
    );
    sim.initial = [("books".into(), everything_ran_at("2026-11-22T23:59:00Z"))].into();
    let log = sim.run().await;

    // Expected, hour by hour: the full on Sunday at 02:00 in place of that hour's incremental,
    // an incremental every other hour, and a drill at 03:30 every day.
    let mut expected = Vec::new();
    let start = at("2026-11-23T00:00:00Z");
    for h in 0..7 * 24 {
        let t = start + chrono::Duration::hours(h);
        let (day, hour) = (h / 24, h % 24);
        let sunday = day == 6;
        if sunday && hour == 2 {
            expected.push((JobKind::Full, t));
        } else {
            expected.push((JobKind::Incremental, t));
        }
        if hour == 3 {
            expected.push((JobKind::Drill, t + chrono::Duration::minutes(30)));
        }
    }
    let ran = jobs(&log);
    assert_eq!(ran.len(), 168 + 7);
    assert_eq!(ran, expected);
    assert_eq!(
        ran.iter().filter(|(k, _)| *k == JobKind::Full).count(),
        1,
        "one full a week"
    );
    assert!(log.skips.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_overrunning_job_is_not_overlapped_and_the_runs_it_covers_are_skipped() {
    let mut sim = Sim::new(
        "2026-11-23T00:00:00Z",
        24 * HOUR - MIN,
        vec![plan(
            "books",
            utc(),
            &[
                (JobKind::Incremental, "0 * * * *"),
                (JobKind::Drill, "30 0 * * *"),
            ],
        )],
    );
    sim.initial = [("books".into(), everything_ran_at("2026-11-22T23:59:00Z"))].into();
    // Incrementals take 90 minutes on an hourly schedule; drills a minute.
    sim.takes = |k| {
        if k == JobKind::Incremental {
            90 * MIN
        } else {
            MIN
        }
    };
    let log = sim.run().await;

    let start = at("2026-11-23T00:00:00Z");
    let hour = |h: i64| start + chrono::Duration::hours(h);
    // 00:00 incremental (until 01:30); the 00:30 drill waits for it and starts at 01:30; the
    // 01:00 incremental is skipped; then an incremental every two hours, each skipping the next.
    let mut expected = vec![
        (JobKind::Incremental, hour(0)),
        (JobKind::Drill, hour(1) + chrono::Duration::minutes(30)),
    ];
    expected.extend((1..12).map(|i| (JobKind::Incremental, hour(2 * i))));
    assert_eq!(jobs(&log), expected);

    let skips = log.skips.lock().unwrap().clone();
    let expected_skips: Vec<Skip> = (0..12)
        .map(|i| Skip {
            source: "books".into(),
            kind: JobKind::Incremental,
            scheduled: hour(2 * i + 1),
            running: JobKind::Incremental,
            since: hour(2 * i),
        })
        .collect();
    assert_eq!(skips, expected_skips);
    assert_eq!(
        skips[0].reason(),
        "the incremental started at 2026-11-23T00:00:00Z was still running"
    );
}

#[tokio::test(start_paused = true)]
async fn after_three_days_down_each_missed_kind_runs_once_at_start() {
    let schedules = [
        (JobKind::Incremental, "0 * * * *"),
        (JobKind::Full, "0 2 * * 0"),
        (JobKind::Drill, "30 3 * * *"),
    ];
    let last = |inc: &str, full: &str, drill: &str| -> LastRuns {
        [
            (JobKind::Incremental, at(inc)),
            (JobKind::Full, at(full)),
            (JobKind::Drill, at(drill)),
        ]
        .into()
    };
    // Down from Wednesday to Saturday: the incremental and the drill catch up once each.
    let mut sim = Sim::new(
        "2026-11-21T10:20:00Z",
        2 * HOUR + 30 * MIN,
        vec![plan("books", utc(), &schedules)],
    );
    sim.initial = [(
        "books".into(),
        last(
            "2026-11-18T10:00:00Z",
            "2026-11-15T02:00:00Z",
            "2026-11-18T03:30:00Z",
        ),
    )]
    .into();
    let log = sim.run().await;
    assert_eq!(
        jobs(&log),
        [
            (JobKind::Incremental, at("2026-11-21T10:20:00Z")),
            (JobKind::Drill, at("2026-11-21T10:21:00Z")),
            (JobKind::Incremental, at("2026-11-21T11:00:00Z")),
            (JobKind::Incremental, at("2026-11-21T12:00:00Z")),
        ]
    );

    // Down over Sunday's full: one full (in place of the incremental) and one drill.
    let mut sim = Sim::new(
        "2026-11-22T10:20:00Z",
        HOUR,
        vec![plan("books", utc(), &schedules)],
    );
    sim.initial = [(
        "books".into(),
        last(
            "2026-11-19T10:00:00Z",
            "2026-11-15T02:00:00Z",
            "2026-11-19T03:30:00Z",
        ),
    )]
    .into();
    let log = sim.run().await;
    assert_eq!(
        jobs(&log),
        [
            (JobKind::Full, at("2026-11-22T10:20:00Z")),
            (JobKind::Drill, at("2026-11-22T10:21:00Z")),
            (JobKind::Incremental, at("2026-11-22T11:00:00Z")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_each_start_by_less_than_the_jitter() {
    let mut p = plan("books", utc(), &[(JobKind::Incremental, "0 * * * *")]);
    p.jitter = Some(5 * MIN);
    let mut sim = Sim::new("2026-11-23T00:00:00Z", 24 * HOUR - MIN, vec![p]);
    sim.initial = [("books".into(), everything_ran_at("2026-11-22T23:59:00Z"))].into();
    let log = sim.run().await;
    let ran = jobs(&log);
    assert_eq!(ran.len(), 24);
    let start = at("2026-11-23T00:00:00Z");
    let mut delays = BTreeSet::new();
    for (h, (kind, t)) in ran.iter().enumerate() {
        assert_eq!(*kind, JobKind::Incremental);
        let slot = start + chrono::Duration::hours(h as i64);
        let delay = (*t - slot).to_std().unwrap();
        assert!(delay < 5 * MIN, "started {delay:?} after {slot}");
        delays.insert(delay);
    }
    // Random, not a fixed offset.
    assert!(delays.len() > 10, "{delays:?}");
}

#[tokio::test(start_paused = true)]
async fn schedules_follow_the_policy_time_zone_across_daylight_saving_changes() {
    let berlin = Zone::Named(chrono_tz::Europe::Berlin);
    let mut sim = Sim::new(
        "2026-03-27T00:00:00Z",
        // Up to a minute before the fifth day's run: an end exactly on a slot is a race.
        4 * 24 * HOUR - MIN,
        vec![plan("books", berlin, &[(JobKind::Drill, "0 2 * * *")])],
    );
    sim.initial = [("books".into(), everything_ran_at("2026-03-26T23:00:00Z"))].into();
    let log = sim.run().await;
    // 02:00 in Berlin is 01:00 UTC in winter (CET) and 00:00 UTC in summer (CEST). Clocks go
    // from 02:00 to 03:00 on Sunday 29 March: that day's run starts at the first minute after
    // the gap, once.
    assert_eq!(
        jobs(&log),
        [
            (JobKind::Drill, at("2026-03-27T01:00:00Z")),
            (JobKind::Drill, at("2026-03-28T01:00:00Z")),
            (JobKind::Drill, at("2026-03-29T01:00:00Z")),
            (JobKind::Drill, at("2026-03-30T00:00:00Z")),
        ]
    );

    // Back from 03:00 to 02:00 on Sunday 25 October: 02:30 happens twice, the run once.
    let mut sim = Sim::new(
        "2026-10-24T00:00:00Z",
        3 * 24 * HOUR,
        vec![plan("books", berlin, &[(JobKind::Drill, "30 2 * * *")])],
    );
    sim.initial = [("books".into(), everything_ran_at("2026-10-23T23:00:00Z"))].into();
    let log = sim.run().await;
    assert_eq!(
        jobs(&log),
        [
            (JobKind::Drill, at("2026-10-24T00:30:00Z")),
            (JobKind::Drill, at("2026-10-25T00:30:00Z")),
            (JobKind::Drill, at("2026-10-26T01:30:00Z")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn sources_share_the_parallel_places_and_the_longest_waiting_goes_first() {
    let names = ["a", "b", "c"];
    let plans = || {
        names
            .map(|s| plan(s, utc(), &[(JobKind::Incremental, "0 * * * *")]))
            .to_vec()
    };
    let initial: BTreeMap<String, LastRuns> = names
        .map(|s| (s.to_string(), everything_ran_at("2026-11-22T23:59:00Z")))
        .into();
    // One place, jobs of 50 minutes: a, then b, then c (due since 00:00) before a (due again
    // since 01:00); b's and c's 01:00 and 02:00 runs come while they run and are skipped.
    let mut sim = Sim::new("2026-11-23T00:00:00Z", 2 * HOUR + 31 * MIN, plans());
    sim.initial = initial.clone();
    sim.takes = |_| 50 * MIN;
    let log = sim.run().await;
    let ran: Vec<(String, DateTime<Utc>)> = log
        .jobs
        .lock()
        .unwrap()
        .iter()
        .map(|(s, _, t)| (s.clone(), *t))
        .collect();
    let expected = [
        ("a", "2026-11-23T00:00:00Z"),
        ("b", "2026-11-23T00:50:00Z"),
        ("c", "2026-11-23T01:40:00Z"),
        ("a", "2026-11-23T02:30:00Z"),
    ]
    .map(|(s, t)| (s.to_string(), at(t)));
    assert_eq!(ran, expected);
    let skipped: Vec<(String, DateTime<Utc>)> = log
        .skips
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.source.clone(), s.scheduled))
        .collect();
    let expected = [("b", "2026-11-23T01:00:00Z"), ("c", "2026-11-23T02:00:00Z")]
        .map(|(s, t)| (s.to_string(), at(t)));
    assert_eq!(skipped, expected);

    // Three places: all at once.
    let mut sim = Sim::new("2026-11-23T00:00:00Z", HOUR - MIN, plans());
    sim.initial = initial;
    sim.takes = |_| 40 * MIN;
    sim.max_parallel = 3;
    let log = sim.run().await;
    let starts: Vec<DateTime<Utc>> = log.jobs.lock().unwrap().iter().map(|j| j.2).collect();
    assert_eq!(starts, [at("2026-11-23T00:00:00Z"); 3]);
}

#[tokio::test(start_paused = true)]
async fn stop_waits_for_the_running_job_and_abandon_does_not() {
    for abandon in [false, true] {
        let clock = Arc::new(SimClock {
            start: at("2026-11-23T00:00:00Z"),
            origin: tokio::time::Instant::now(),
        });
        let log = Log::default();
        let runner = Arc::new(FakeRunner {
            clock: clock.clone(),
            takes: |_| HOUR,
            log: log.clone(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let plans = vec![plan("books", utc(), &[(JobKind::Incremental, "0 * * * *")])];
        let daemon = tokio::spawn(serve(
            clock.clone(),
            runner,
            FakeLedger(log.clone()),
            plans,
            Options::default(),
            rx,
        ));
        tokio::time::sleep(10 * MIN).await;
        tx.send(Control::Stop).unwrap();
        if abandon {
            tokio::time::sleep(MIN).await;
            tx.send(Control::Abandon).unwrap();
            let ended = daemon.await.unwrap();
            assert_eq!(
                ended,
                Ended::Abandoned {
                    running: vec!["books".into()]
                }
            );
            assert_eq!(clock.now(), at("2026-11-23T00:11:00Z"));
        } else {
            assert_eq!(daemon.await.unwrap(), Ended::Clean);
            // It returned when the job ended, an hour after it started.
            assert_eq!(clock.now(), at("2026-11-23T01:00:00Z"));
            // Stopping started nothing more, although the 01:00 run was due.
            assert_eq!(log.jobs.lock().unwrap().len(), 1);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_reload_takes_new_schedules_and_keeps_what_ran() {
    let clock = Arc::new(SimClock {
        start: at("2026-11-23T00:00:00Z"),
        origin: tokio::time::Instant::now(),
    });
    let log = Log::default();
    let runner = Arc::new(FakeRunner {
        clock: clock.clone(),
        takes: |_| MIN,
        log: log.clone(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let daily = vec![plan("books", utc(), &[(JobKind::Incremental, "0 0 * * *")])];
    let daemon = tokio::spawn(serve(
        clock,
        runner,
        FakeLedger(log.clone()),
        daily,
        Options::default(),
        rx,
    ));
    tokio::time::sleep(10 * MIN).await;
    // Hourly from now on; the run at 00:00 still counts, so the next is at 01:00.
    let hourly = vec![plan("books", utc(), &[(JobKind::Incremental, "0 * * * *")])];
    tx.send(Control::Reload(hourly)).unwrap();
    tokio::time::sleep(2 * HOUR).await;
    tx.send(Control::Stop).unwrap();
    assert_eq!(daemon.await.unwrap(), Ended::Clean);
    assert_eq!(
        jobs(&log),
        [
            (JobKind::Incremental, at("2026-11-23T00:00:00Z")),
            (JobKind::Incremental, at("2026-11-23T01:00:00Z")),
            (JobKind::Incremental, at("2026-11-23T02:00:00Z")),
        ]
    );
}
