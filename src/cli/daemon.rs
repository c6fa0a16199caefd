//! `ivault daemon --policy-dir DIR`: every policy's schedules, run as they come due, for as
//! long as the service runs. The scheduling is `scheduler::daemon`'s; this module plugs in
//! what it needs from the world: the system clock, policies read (and read again on SIGHUP)
//! from a directory, jobs run with the code `ivault run` uses on tokio's blocking pool, the
//! state database, signals, and a lock on the state directory.

use super::passphrase::EnvOrTerminal;
use super::policy::{check_one, policy_files};
use clap::Args;
use invoice_vault::engine::Context;
use invoice_vault::error::exit;
use invoice_vault::policy::Policy;
use invoice_vault::scheduler::daemon::{
    self, Control, Ended, Job, JobEnd, Options, Runner, SourcePlan, StateLedger, SystemClock,
};
use invoice_vault::scheduler::pass::{self, JobOutcome};
use invoice_vault::scheduler::plan::JobKind;
use invoice_vault::target::{TargetOptions, Targets};
use invoice_vault::{Error, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// The lock file in the state directory; it holds the pid of the daemon holding the lock.
const LOCK_FILE: &str = "daemon.lock";

#[derive(Args)]
pub(super) struct DaemonArgs {
    /// Directory of policies: every *.toml in it, checked as `policy check` does.
    #[arg(long, value_name = "DIR")]
    policy_dir: PathBuf,
    /// How many jobs (of different sources) may run at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    max_parallel: u16,
}

/// What every job's context is made of, beside its policy.
#[derive(Clone)]
pub(super) struct Surroundings {
    pub(super) state_dir: PathBuf,
    pub(super) defaults: TargetOptions,
    pub(super) signing_key: Option<PathBuf>,
    pub(super) trust_signers: Vec<String>,
}

impl Surroundings {
    fn context(&self, policy: &Policy) -> Context {
        Context {
            state_dir: self.state_dir.clone(),
            targets: Targets::new(self.defaults.clone(), Some(policy.clone())),
            passphrase: Box::new(EnvOrTerminal),
            signing_key: self.signing_key.clone(),
            trust_signers: self.trust_signers.clone(),
        }
    }
}

pub(super) fn daemon_cmd(around: Surroundings, args: DaemonArgs) -> Result<i32> {
    let _lock = match lock(&around.state_dir)? {
        Ok(file) => file,
        Err(sentence) => {
            eprintln!("ivault: {sentence}");
            return Ok(exit::ALREADY_RUNNING);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the daemon's runtime: {e}").into()))?;
    let code = runtime.block_on(serve(around, args));
    // A job abandoned by a second signal may still run on the blocking pool: do not wait.
    runtime.shutdown_background();
    code
}

/// Takes the daemon lock of the state directory, held until the file is closed (the process
/// ends); the sentence for a lock another daemon holds.
fn lock(state_dir: &Path) -> Result<std::result::Result<std::fs::File, String>> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let cannot = |e: &dyn std::fmt::Display| {
        Error::Internal(format!("cannot lock state directory {}: {e}", state_dir.display()).into())
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|e| cannot(&e))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(state_dir.join(LOCK_FILE))
        .map_err(|e| cannot(&e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            file.set_len(0).map_err(|e| cannot(&e))?;
            file.rewind().map_err(|e| cannot(&e))?;
            writeln!(file, "{}", std::process::id()).map_err(|e| cannot(&e))?;
            Ok(Ok(file))
        }
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut text = String::new();
            // The holder writes its pid right after locking; an empty file is one caught between.
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "its pid not yet written".to_string(),
            };
            Ok(Err(format!(
                "another ivault daemon ({holder}) already runs the jobs of state directory {}; stop it first, or give this one a --state-dir of its own",
                state_dir.display()
            )))
        }
        Err(e) => Err(cannot(&e)),
    }
}

async fn serve(around: Surroundings, args: DaemonArgs) -> Result<i32> {
    let (mut term, mut int, mut hup) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    );
    let (Ok(term), Ok(int), Ok(hup)) = (&mut term, &mut int, &mut hup) else {
        return Err(Error::Internal(
            "cannot listen for signals (SIGTERM, SIGINT, SIGHUP)".into(),
        ));
    };
    let mut policies = Policies::default();
    let files = policy_files(&args.policy_dir)?;
    let plans = policies.load(&files);
    if policies.loaded.is_empty() {
        return Err(Error::Policy(
            format!(
                "no policy in {} could be loaded (see above); fix them and start again",
                args.policy_dir.display()
            )
            .into(),
        ));
    }
    tracing::info!(
        "daemon started (pid {}): {} policies, {} sources, state directory {}, at most {} jobs at once",
        std::process::id(),
        policies.loaded.len(),
        plans.len(),
        around.state_dir.display(),
        args.max_parallel
    );
    let (control, commands) = mpsc::unbounded_channel();
    let ledger = StateLedger {
        state_dir: around.state_dir.clone(),
    };
    let options = Options {
        max_parallel: usize::from(args.max_parallel),
        seed: None,
    };
    let mut core = tokio::spawn(daemon::serve(
        Arc::new(SystemClock),
        Arc::new(PolicyRunner { around }),
        ledger,
        plans,
        options,
        commands,
    ));
    let mut stop_signals = 0;
    loop {
        let signal_name = tokio::select! {
            ended = &mut core => {
                return Ok(match ended {
                    Ok(Ended::Clean) => {
                        tracing::info!("daemon stopped");
                        exit::OK
                    }
                    Ok(Ended::Abandoned { running }) => {
                        tracing::warn!(
                            "daemon stopped, abandoning the running jobs of {}",
                            running.join(", ")
                        );
                        exit::CANCELLED
                    }
                    Err(e) => {
                        tracing::error!("the scheduler stopped unexpectedly: {e}");
                        exit::INTERNAL
                    }
                });
            }
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reading the policies in {} again", args.policy_dir.display());
                match policy_files(&args.policy_dir) {
                    Ok(files) => {
                        let plans = policies.load(&files);
                        let _ = control.send(Control::Reload(plans));
                    }
                    Err(e) => tracing::error!("{e}; keeping the policies loaded before"),
                }
                continue;
            }
        };
        stop_signals += 1;
        if stop_signals == 1 {
            tracing::info!("{signal_name}: stopping once the running jobs finish; a second signal abandons them");
            let _ = control.send(Control::Stop);
        } else {
            tracing::warn!("{signal_name} again: abandoning the running jobs");
            let _ = control.send(Control::Abandon);
        }
    }
}

/// The policies loaded, by file.
#[derive(Default)]
struct Policies {
    loaded: BTreeMap<PathBuf, Arc<Policy>>,
}

impl Policies {
    /// Reads `files`: a policy that fails its check keeps the version loaded before (or is
    /// left out if there is none), with one log line saying why; a file gone is dropped.
    /// Returns every source's plan.
    fn load(&mut self, files: &[PathBuf]) -> Vec<SourcePlan<Arc<Policy>>> {
        let mut loaded = BTreeMap::new();
        for f in files {
            match check_one(f) {
                Ok((policy, _)) => {
                    loaded.insert(f.clone(), Arc::new(policy));
                }
                Err(problems) => {
                    let why = problems.join("; ");
                    match self.loaded.get(f) {
                        Some(old) => {
                            tracing::error!("{why}; keeping the version loaded before");
                            loaded.insert(f.clone(), old.clone());
                        }
                        None => tracing::error!("{why}; not loaded"),
                    }
                }
            }
        }
        for gone in self.loaded.keys().filter(|f| !loaded.contains_key(*f)) {
            tracing::info!(
                "policy {} is gone; its sources are no longer scheduled",
                gone.display()
            );
        }
        self.loaded = loaded;
        let mut plans: Vec<SourcePlan<Arc<Policy>>> = Vec::new();
        for (file, policy) in &self.loaded {
            let schedules = pass::schedules(policy);
            let zone = pass::zone(policy);
            let jitter = policy.schedule.as_ref().and_then(|s| s.jitter);
            for source in &policy.source {
                // The state keys last runs by source name: one name, one schedule.
                if let Some(first) = plans.iter().find(|p| p.source == source.name) {
                    tracing::error!(
                        "policy {}: source {} is also in policy {}; it is scheduled from that one only",
                        file.display(),
                        source.name,
                        first.payload.file.display()
                    );
                    continue;
                }
                plans.push(SourcePlan {
                    source: source.name.clone(),
                    schedules: schedules.clone(),
                    zone,
                    jitter,
                    payload: policy.clone(),
                });
            }
        }
        plans
    }
}

/// Runs each job as `ivault run` does, on the blocking pool: a backup followed by the
/// source's retention (and a prune of targets not pruned tonight), or a drill of every target.
struct PolicyRunner {
    around: Surroundings,
}

impl Runner<Arc<Policy>> for PolicyRunner {
    fn run(&self, job: Job<Arc<Policy>>) -> impl Future<Output = JobEnd> + Send {
        let around = self.around.clone();
        async move {
            let (source, kind) = (job.source.clone(), job.kind);
            let done = tokio::task::spawn_blocking(move || {
                let ctx = around.context(&job.payload);
                let mut outcomes = pass::run_job(&ctx, &job.payload, &job.source, job.kind);
                if matches!(job.kind, JobKind::Full | JobKind::Incremental) {
                    outcomes.extend(pass::retention(&ctx, &job.payload, &job.source));
                    let now = chrono::Utc::now();
                    outcomes.extend(pass::prune(&ctx, &job.payload, false, now));
                }
                outcomes
            })
            .await;
            match done {
                Ok(outcomes) => end_of(&source, kind, &outcomes),
                Err(e) => JobEnd {
                    ok: false,
                    summary: format!("the job stopped unexpectedly: {e}"),
                },
            }
        }
    }
}

/// Logs each outcome of a job, and sums them up.
fn end_of(source: &str, kind: JobKind, outcomes: &[JobOutcome]) -> JobEnd {
    for o in outcomes {
        let on = o
            .target
            .as_deref()
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        if o.ok {
            tracing::info!("{source} {}{on}: {}", o.job, o.summary);
        } else {
            tracing::error!(
                "{source} {}{on} failed (exit code {}): {}",
                o.job,
                o.exit_code,
                o.summary
            );
        }
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    JobEnd {
        ok: failed == 0,
        summary: if failed == 0 {
            format!("{} steps done", outcomes.len())
        } else {
            format!(
                "{failed} of {} steps of the {} failed",
                outcomes.len(),
                kind.name()
            )
        },
    }
}
