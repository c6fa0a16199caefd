//! The daemon's scheduling core (`ivault daemon`): which job of which source starts when. It
//! does no I/O of its own: the time comes from a [`Clock`], jobs run through a [`Runner`], and
//! starts and skips are written to a [`Ledger`]. The command line plugs in the system clock,
//! jobs on tokio's blocking pool and the state database; the tests plug in a simulated clock
//! and fake jobs, and run a week in milliseconds.
//!
//! The rules, on top of [`plan::due`](super::plan::due) (a missed run is done once; a full
//! takes the place of an incremental due at the same time):
//!
//! - One job per source at a time. A scheduled run that the running job stands for (one of the
//!   same kind, or an incremental while a full runs) is skipped: recorded and logged, never
//!   queued. A run of another kind (a drill due while a backup runs) waits for the source to
//!   be free, then starts.
//! - At most `max_parallel` jobs run at once; a due source waits for a free place, the one
//!   that has waited longest first.
//! - A due job starts after a random delay below its policy's `jitter`.
//! - [`Control::Stop`]: no job starts any more, the running ones finish, then `serve` returns.
//!   [`Control::Abandon`]: `serve` returns at once, leaving running jobs to the caller.

use super::plan::{JobKind, LastRuns, Schedules, Zone};
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where the daemon gets the time, and how it waits.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Waits until `t`, or less: the caller reads the time again when it returns.
    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// The wall clock.
pub struct SystemClock;

/// The longest the system clock sleeps at a time: the wall clock can jump (a suspended
/// machine, a time correction) while tokio's timers count elapsed time.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()> + Send {
        let wait = (t - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(LONGEST_SLEEP);
        tokio::time::sleep(wait)
    }
}

/// One source as the daemon schedules it. `payload` is what the runner needs to run its jobs
/// (the policy, for the real runner).
#[derive(Debug, Clone)]
pub struct SourcePlan<P> {
    pub source: String,
    pub schedules: Schedules,
    pub zone: Zone,
    pub jitter: Option<Duration>,
    pub payload: P,
}

/// A job handed to the runner.
#[derive(Debug, Clone)]
pub struct Job<P> {
    pub source: String,
    pub kind: JobKind,
    pub started: DateTime<Utc>,
    pub payload: P,
}

/// How a job ended, for the log.
#[derive(Debug, Clone)]
pub struct JobEnd {
    pub ok: bool,
    /// One sentence: what was done, or what failed.
    pub summary: String,
}

/// Runs jobs: a backup (with retention after it) or a drill of one source.
pub trait Runner<P>: Send + Sync + 'static {
    /// Runs `job` to its end.
    fn run(&self, job: Job<P>) -> impl Future<Output = JobEnd> + Send;
}

/// A scheduled run skipped because the source was busy with a job that stands for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub source: String,
    pub kind: JobKind,
    /// The scheduled time of the run skipped.
    pub scheduled: DateTime<Utc>,
    /// The job that was running, and since when.
    pub running: JobKind,
    pub since: DateTime<Utc>,
}

impl Skip {
    /// Why the run was skipped, in one sentence's words.
    pub fn reason(&self) -> String {
        format!(
            "the {} started at {} was still running",
            self.running.name(),
            super::pass::stamp(self.since)
        )
    }
}

/// Where the daemon reads when jobs last ran and records what it starts and skips. Failures
/// are the ledger's to log: scheduling goes on from what the daemon remembers.
pub trait Ledger: Send + 'static {
    /// When each kind of job last ran (or was skipped) for `source`.
    fn last_runs(&self, source: &str) -> LastRuns;
    fn record_start(&self, source: &str, kind: JobKind, at: DateTime<Utc>);
    fn record_skip(&self, skip: &Skip);
}

/// What the face tells a running daemon.
#[derive(Debug)]
pub enum Control<P> {
    /// The policies were read again: these are now the sources.
    Reload(Vec<SourcePlan<P>>),
    /// Start nothing more; return once the running jobs have finished.
    Stop,
    /// Return at once.
    Abandon,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How many jobs (of different sources) may run at once; at least 1.
    pub max_parallel: usize,
    /// Seed of the jitter's random delays (tests); `None` draws one.
    pub seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_parallel: 1,
            seed: None,
        }
    }
}

/// How [`serve`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Stopped with no job running.
    Clean,
    /// Abandoned with these sources' jobs still running.
    Abandoned { running: Vec<String> },
}

/// Does a running job of kind `running` stand for a scheduled run of kind `slot`?
fn stands_for(running: JobKind, slot: JobKind) -> bool {
    running == slot || (running == JobKind::Full && slot == JobKind::Incremental)
}

struct Source<P> {
    plan: SourcePlan<P>,
    last: LastRuns,
    /// When the due job is to start (after its jitter), once the source is due.
    pending: Option<DateTime<Utc>>,
    /// The last scheduled run of each kind recorded as skipped.
    skipped: BTreeMap<JobKind, DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    kind: JobKind,
    since: DateTime<Utc>,
}

struct Core<P, L> {
    sources: BTreeMap<String, Source<P>>,
    /// Jobs running, by source (a source dropped by a reload may still have one).
    running: BTreeMap<String, Running>,
    ledger: L,
    options: Options,
    rng: rand_chacha::ChaCha8Rng,
}

impl<P: Clone, L: Ledger> Core<P, L> {
    fn new(ledger: L, plans: Vec<SourcePlan<P>>, options: Options) -> Self {
        let rng = match options.seed {
            Some(seed) => rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            None => rand_chacha::ChaCha8Rng::from_entropy(),
        };
        let mut core = Core {
            sources: BTreeMap::new(),
            running: BTreeMap::new(),
            ledger,
            options,
            rng,
        };
        core.reload(plans);
        core
    }

    /// Takes the new plans; what is known of sources kept (last runs, a pending start, skips)
    /// stays.
    fn reload(&mut self, plans: Vec<SourcePlan<P>>) {
        let mut old = std::mem::take(&mut self.sources);
        for plan in plans {
            let source = match old.remove(&plan.source) {
                Some(mut s) => {
                    s.plan = plan;
                    s
                }
                None => Source {
                    last: self.ledger.last_runs(&plan.source),
                    plan,
                    pending: None,
                    skipped: BTreeMap::new(),
                },
            };
            self.sources.insert(source.plan.source.clone(), source);
        }
    }

    /// Records the scheduled runs that came while their source ran a job standing for them.
    fn note_skips(&mut self, now: DateTime<Utc>) {
        for (name, run) in &self.running {
            let Some(source) = self.sources.get_mut(name) else {
                continue;
            };
            for (&kind, cron) in &source.plan.schedules.by_kind {
                if !stands_for(run.kind, kind) {
                    continue;
                }
                let Some(slot) = source.plan.zone.latest_slot(cron, now) else {
                    continue;
                };
                let noted = source.skipped.get(&kind).is_some_and(|t| *t >= slot);
                if slot <= run.since || noted {
                    continue;
                }
                let skip = Skip {
                    source: name.clone(),
                    kind,
                    scheduled: slot,
                    running: run.kind,
                    since: run.since,
                };
                tracing::warn!(
                    "skipped the {} of {} scheduled at {}: {}",
                    kind.name(),
                    name,
                    super::pass::stamp(slot),
                    skip.reason()
                );
                self.ledger.record_skip(&skip);
                source.skipped.insert(kind, slot);
                let last = source.last.entry(kind).or_insert(slot);
                *last = (*last).max(slot);
            }
        }
    }

    /// Marks newly due sources pending (after a jitter), and starts the pending ones whose
    /// time has come while there is room; returns the jobs started.
    fn start_due(&mut self, now: DateTime<Utc>) -> Vec<Job<P>> {
        for (name, source) in &mut self.sources {
            if self.running.contains_key(name) || source.pending.is_some() {
                continue;
            }
            let plan = &source.plan;
            if plan.zone.due(&plan.schedules, &source.last, now).is_empty() {
                continue;
            }
            let delay = match plan.jitter {
                Some(j) if !j.is_zero() => self.rng.gen_range(Duration::ZERO..j),
                _ => Duration::ZERO,
            };
            let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
            if !delay.is_zero() {
                tracing::info!(
                    "{name} is due; starting at {} (jitter)",
                    super::pass::stamp(at)
                );
            }
            source.pending = Some(at);
        }
        // Those that have waited longest first.
        let mut ready: Vec<(DateTime<Utc>, String)> = self
            .sources
            .iter()
            .filter_map(|(name, s)| Some((s.pending.filter(|t| *t <= now)?, name.clone())))
            .filter(|(_, name)| !self.running.contains_key(name))
            .collect();
        ready.sort();
        let mut jobs = Vec::new();
        for (_, name) in ready {
            if self.running.len() >= self.options.max_parallel.max(1) {
                break;
            }
            let Some(source) = self.sources.get_mut(&name) else {
                continue;
            };
            source.pending = None;
            let plan = &source.plan;
            // Due again now: a reload may have changed the schedule since it became pending.
            let Some(&kind) = plan.zone.due(&plan.schedules, &source.last, now).first() else {
                continue;
            };
            self.ledger.record_start(&name, kind, now);
            source.last.insert(kind, now);
            self.running
                .insert(name.clone(), Running { kind, since: now });
            tracing::info!("started the {} of {name}", kind.name());
            jobs.push(Job {
                source: name,
                kind,
                started: now,
                payload: plan.payload.clone(),
            });
        }
        jobs
    }

    fn finished(&mut self, source: &str, kind: JobKind, end: &JobEnd) {
        self.running.remove(source);
        if end.ok {
            tracing::info!("finished the {} of {source}: {}", kind.name(), end.summary);
        } else {
            tracing::error!("the {} of {source} failed: {}", kind.name(), end.summary);
        }
    }

    /// The next time anything is to happen: a schedule fires, a pending job's delay ends.
    fn next_wake(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.sources
            .values()
            .flat_map(|s| {
                let fires = s.plan.zone.next_wake(&s.plan.schedules, now);
                let pending = s.pending.filter(|t| *t > now);
                fires.into_iter().chain(pending)
            })
            .min()
    }
}

/// Schedules and runs jobs until stopped (see the module's rules).
pub async fn serve<P, C, R, L>(
    clock: Arc<C>,
    runner: Arc<R>,
    ledger: L,
    plans: Vec<SourcePlan<P>>,
    options: Options,
    mut control: mpsc::UnboundedReceiver<Control<P>>,
) -> Ended
where
    P: Clone + Send + Sync + 'static,
    C: Clock,
    R: Runner<P>,
    L: Ledger,
{
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, JobKind, JobEnd)>();
    let mut core = Core::new(ledger, plans, options);
    let mut stopping = false;
    let mut control_open = true;
    loop {
        let now = clock.now();
        core.note_skips(now);
        if !stopping {
            for job in core.start_due(now) {
                let (runner, done) = (runner.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let (source, kind) = (job.source.clone(), job.kind);
                    let end = runner.run(job).await;
                    // The receiver is gone only once serve has returned.
                    let _ = done.send((source, kind, end));
                });
            }
        } else if core.running.is_empty() {
            return Ended::Clean;
        }
        let wake = if stopping { None } else { core.next_wake(now) };
        let sleep = {
            let clock = clock.clone();
            async move {
                match wake {
                    Some(t) => clock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            }
        };
        tokio::select! {
            _ = sleep => {}
            Some((source, kind, end)) = done_rx.recv() => core.finished(&source, kind, &end),
            c = control.recv(), if control_open => match c {
                Some(Control::Reload(plans)) => core.reload(plans),
                Some(Control::Stop) | None => {
                    control_open = c.is_some();
                    if !stopping && !core.running.is_empty() {
                        let running: Vec<String> = core
                            .running
                            .iter()
                            .map(|(s, r)| format!("the {} of {s}", r.kind.name()))
                            .collect();
                        tracing::warn!(
                            "stopping: starting no more jobs, waiting for {} to finish",
                            running.join(", ")
                        );
                    }
                    stopping = true;
                    for s in core.sources.values_mut() {
                        s.pending = None;
                    }
                }
                Some(Control::Abandon) => {
                    return Ended::Abandoned {
                        running: core.running.keys().cloned().collect(),
                    };
                }
            },
        }
    }
}

mod ledger;
#[cfg(test)]
mod tests;

pub use ledger::StateLedger;
