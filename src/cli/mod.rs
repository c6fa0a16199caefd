//! The command line: parse, describe the job, call the engine, print, map to an exit code.
//! All output to stdout is data (human or `--json`); diagnostics go to stderr.

mod backup;
mod commands;
mod daemon;
mod damage;
mod demo;
mod drill;
mod hints;
mod output;

use output::print_json;
mod passphrase;
mod period;
mod policy;
mod reconcile;
mod retention;
mod run;
mod status;
mod trace;

use backup::{backup_cmd, BackupArgs};
use clap::{Args, Parser, Subcommand};
use demo::{demo_cmd, DemoArgs};
use invoice_vault::engine::Context;
use invoice_vault::error::exit;
use invoice_vault::policy::Policy;
use invoice_vault::target::{LockMode, ObjectLock, TargetOptions, Targets};
use invoice_vault::Result;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ivault",
    version,
    about = "Encrypted, deduplicated, verified backups of SQLite invoice databases"
)]
struct Cli {
    /// Directory of the local state database (job history, caches).
    #[arg(long, global = true, env = invoice_vault::engine::STATE_DIR_ENV, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// S3 endpoint URL for s3:// targets (default: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    #[arg(long, global = true, env = "IVAULT_S3_ENDPOINT", value_name = "URL")]
    endpoint: Option<String>,
    /// S3 region (default: from the AWS configuration, else us-east-1).
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
    /// Profile from the shared AWS configuration for credentials.
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// Write S3 objects with an Object Lock retention of this many days (the bucket must have
    /// Object Lock enabled); local targets are not affected.
    #[arg(long, global = true, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    object_lock_days: Option<u32>,
    /// Object Lock mode: governance (can be lifted by a user with s3:BypassGovernanceRetention)
    /// or compliance (nobody can delete early).
    #[arg(long, global = true, value_name = "MODE", default_value = "governance", value_parser = parse_lock_mode)]
    object_lock_mode: LockMode,
    /// The key this host signs snapshots with [default: the policy's signing_key, else
    /// signing.key in the state directory, made on first use].
    #[arg(long, global = true, env = "IVAULT_SIGNING_KEY", value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Trust snapshots signed by this signer (ivsig1…) in the repositories read; remembered
    /// in the state for those repositories. Repeatable, or comma-separated in the variable.
    #[arg(
        long = "trust-signer",
        global = true,
        env = "IVAULT_TRUST_SIGNERS",
        value_delimiter = ',',
        value_name = "IVSIG1…"
    )]
    trust_signers: Vec<String>,
    /// Policy file whose source and target names commands accept (see docs/OPERATIONS.md).
    #[arg(long, global = true, env = "IVAULT_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole job on a sample database: generate, back up, change, back up, restore, check.
    Demo(DemoArgs),
    /// Manage age keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create a repository in an empty or new directory.
    Init {
        target: String,
        #[command(flatten)]
        recipients: RecipientArgs,
    },
    /// Back up a SQLite database to one or more repositories.
    Backup(BackupArgs),
    /// Restore a source's snapshot from each target into scratch space and check it end to
    /// end: objects, SHA-256, SQLite's checks, row counts, invoices per month.
    Drill(drill::DrillArgs),
    /// List past jobs, or drills (--drills).
    History(drill::HistoryArgs),
    /// Render stored drill reports as Markdown, JSON or HTML, in English or Chinese.
    Report(drill::ReportArgs),
    /// Forget snapshots a retention policy no longer keeps (their data stays until a prune).
    Forget(retention::ForgetArgs),
    /// Place a legal hold on a snapshot: no retention rule forgets it until `unhold`.
    Hold(retention::HoldArgs),
    /// Remove the legal holds on a snapshot.
    Unhold(retention::UnholdArgs),
    /// Delete what no snapshot uses any more: marks it first, deletes it after a grace period.
    Prune(retention::PruneArgs),
    /// Check policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// One pass of everything the --policy has due now: backups, drills, then retention.
    Run(run::RunArgs),
    /// Run every policy's schedules as they come due, until stopped (SIGTERM); SIGHUP reads
    /// the policies again. Exit 13 when another daemon holds the state directory.
    Daemon(daemon::DaemonArgs),
    /// The last backup and drill of every source and target, against the objectives; exit 12
    /// when anything is stale or failing.
    Status(status::StatusArgs),
    /// One invoice through every snapshot of a source: present, changed, missing.
    Trace(trace::TraceArgs),
    /// An external invoice list (CSV or XLSX, e.g. the tax authority's) against the live
    /// database: what only one side has, what differs, and which snapshots still hold the
    /// missing; exit 14 when anything differs.
    Reconcile(reconcile::ReconcileArgs),
    /// List snapshots.
    Snapshots {
        #[command(flatten)]
        repo: RepoArgs,
        /// Only snapshots of this source (name or path).
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Compare a period of the live database with a snapshot by invoice key (missing, changed,
    /// extra); with --apply, back it up and insert the lost rows. Exit 14 when rows differ and
    /// nothing was applied, 15 when refused.
    RestorePeriod(period::PeriodArgs),
    /// Restore a snapshot into a new database file.
    Restore {
        /// Snapshot id, unique id prefix, or `latest`.
        snapshot: String,
        #[command(flatten)]
        repo: RepoArgs,
        /// The database file to write.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
        /// With `latest`: the newest snapshot of this source.
        #[arg(long)]
        source: Option<String>,
        /// Restore a snapshot that no trusted signer signed (unsigned, signed by an untrusted
        /// key, or with a bad signature): anyone with write access to the repository could
        /// have made it.
        #[arg(long)]
        allow_unverified: bool,
        /// SQLite's check of the restored file, after the SHA-256 check that proves every byte
        /// equals the snapshot: quick (quick_check, about 1.7 s per GiB), full (integrity_check
        /// too: indexes against tables, one table per core; every drill runs it) or off.
        /// Without it: quick, unless the backup recorded a passing check of this very image,
        /// which the SHA-256 then carries over to the restored file.
        #[arg(long, value_enum, value_name = "LEVEL")]
        integrity_check: Option<CheckArg>,
        /// The same as --integrity-check off.
        #[arg(long, hide = true, conflicts_with = "integrity_check")]
        skip_integrity_check: bool,
        #[arg(long)]
        json: bool,
    },
    /// Copy snapshots into another repository without reading the source again.
    Copy {
        /// Snapshot ids, unique prefixes or `latest` [default: every snapshot].
        snapshots: Vec<String>,
        /// The repository to copy from (needs --identity).
        #[arg(long, env = "IVAULT_REPO", value_name = "TARGET")]
        from: String,
        /// Identity file (private key) that opens the source repository.
        #[arg(long, env = "IVAULT_IDENTITY", value_name = "FILE")]
        identity: Option<PathBuf>,
        /// The repository to copy into; it needs only its recipients.
        #[arg(long, value_name = "TARGET")]
        to: String,
        /// Only snapshots of this source (name or path).
        #[arg(long)]
        source: Option<String>,
        /// Trust the destination's recipients even though they changed since this host last saw them.
        #[arg(long)]
        accept_recipients: bool,
        /// Also copy snapshots that no trusted signer signed.
        #[arg(long)]
        allow_unverified: bool,
        #[arg(long)]
        json: bool,
    },
    /// Verify a repository: structure, and with --read-data every stored byte.
    Check {
        #[command(flatten)]
        repo: RepoArgs,
        /// Download, decrypt and hash every pack.
        #[arg(long, conflicts_with = "read_data_subset")]
        read_data: bool,
        /// Read a random share of the packs, e.g. 10%.
        #[arg(long, value_name = "N%")]
        read_data_subset: Option<String>,
        /// List every damaged object after the summary (--json always does).
        #[arg(long)]
        details: bool,
        #[arg(long)]
        json: bool,
    },
    /// Mend what damage allows.
    #[command(subcommand)]
    Repair(RepairCommand),
}

/// How much of SQLite's check a restore runs.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CheckArg {
    Off,
    Quick,
    Full,
}

#[derive(Subcommand)]
enum RepairCommand {
    /// Rebuild indexes from the packs: index again every pack no readable index lists, in one
    /// new index (nothing is overwritten; damaged indexes are left in place).
    Index {
        #[command(flatten)]
        repo: RepoArgs,
        /// Index every pack again, not only those no readable index lists.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an age identity (mode 0600) and print its public recipient.
    Generate {
        /// Where to write the identity [default: $XDG_CONFIG_HOME/ivault/identity.txt].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Protect the identity with a passphrase (asked on the terminal or from IVAULT_PASSPHRASE).
        #[arg(long, conflicts_with = "signing")]
        passphrase: bool,
        /// Make a snapshot signing key instead (for backup hosts; prints its public signer).
        #[arg(long)]
        signing: bool,
    },
}

#[derive(Args)]
pub(super) struct RecipientArgs {
    /// age recipient (age1…) to encrypt to; repeatable.
    #[arg(long = "recipient", value_name = "AGE1…")]
    recipients: Vec<String>,
    /// File of recipients, one per line.
    #[arg(long, value_name = "FILE")]
    recipients_file: Option<PathBuf>,
}

impl RecipientArgs {
    pub(super) fn collect(&self) -> Result<Vec<String>> {
        invoice_vault::engine::keys::collect_recipients(
            &self.recipients,
            self.recipients_file.as_deref(),
        )
    }
}

#[derive(Args)]
struct RepoArgs {
    /// The repository: a directory, s3://bucket/prefix, or a target name from the --policy.
    #[arg(long, env = "IVAULT_REPO", value_name = "TARGET")]
    repo: String,
    /// Identity file (private key) that opens the repository.
    #[arg(long, env = "IVAULT_IDENTITY", value_name = "FILE")]
    identity: Option<PathBuf>,
}

pub fn run() -> i32 {
    invoice_vault::host::return_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            output::print_parse_error(&e);
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    // The daemon's log is its output: what it starts, skips and finishes is logged at info.
    let verbose = match cli.command {
        Command::Daemon(_) => cli.verbose.saturating_add(1),
        _ => cli.verbose,
    };
    output::init_logging(verbose);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ivault: {}", hints::describe(&e));
            e.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let defaults = TargetOptions {
        endpoint: cli.endpoint.clone(),
        region: cli.region.clone(),
        profile: cli.profile.clone(),
        object_lock: cli.object_lock_days.map(|days| ObjectLock {
            mode: cli.object_lock_mode,
            days,
        }),
    };
    let policy = cli.policy.as_deref().map(Policy::load).transpose()?;
    let ctx = Context {
        state_dir: cli
            .state_dir
            .clone()
            .unwrap_or_else(invoice_vault::engine::default_state_dir),
        targets: Targets::new(defaults.clone(), policy),
        passphrase: Box::new(passphrase::EnvOrTerminal),
        signing_key: cli.signing_key.clone(),
        trust_signers: cli.trust_signers.clone(),
    };
    match cli.command {
        Command::Demo(args) => demo_cmd(args),
        Command::Key(KeyCommand::Generate {
            out,
            passphrase,
            signing,
        }) => commands::key_generate(out, passphrase, signing),
        Command::Init { target, recipients } => commands::init(&ctx, target, &recipients),
        Command::Backup(args) => backup_cmd(&ctx, args),
        Command::Drill(args) => drill::drill_cmd(&ctx, args),
        Command::History(args) => drill::history_cmd(&ctx, args),
        Command::Report(args) => drill::report_cmd(&ctx, args),
        Command::Forget(args) => retention::forget_cmd(&ctx, args),
        Command::Hold(args) => retention::hold_cmd(&ctx, args),
        Command::Prune(args) => retention::prune_cmd(&ctx, args),
        Command::Unhold(args) => retention::unhold_cmd(&ctx, args),
        Command::Policy(cmd) => policy::policy_cmd(cmd),
        Command::Run(args) => run::run_cmd(&ctx, args),
        Command::Daemon(args) => {
            let around = daemon::Surroundings {
                state_dir: ctx.state_dir,
                defaults,
                signing_key: ctx.signing_key,
                trust_signers: ctx.trust_signers,
            };
            daemon::daemon_cmd(around, args)
        }
        Command::Status(args) => status::status_cmd(&ctx, args),
        Command::Trace(args) => trace::trace_cmd(&ctx, args),
        Command::RestorePeriod(args) => period::period_cmd(&ctx, args),
        Command::Reconcile(args) => reconcile::reconcile_cmd(&ctx, args),
        Command::Snapshots { repo, source, json } => {
            commands::snapshots(&ctx, &repo, source.as_deref(), json)
        }
        Command::Restore {
            snapshot,
            repo,
            to,
            force,
            source,
            allow_unverified,
            integrity_check,
            skip_integrity_check,
            json,
        } => {
            use invoice_vault::engine::restore::RestoreCheck;
            let check = match (skip_integrity_check, integrity_check) {
                (true, _) | (_, Some(CheckArg::Off)) => RestoreCheck::Off,
                (_, Some(CheckArg::Quick) | None) => RestoreCheck::Quick,
                (_, Some(CheckArg::Full)) => RestoreCheck::Full,
            };
            let options = invoice_vault::engine::restore::RestoreOptions {
                force,
                source,
                check,
                reuse_backup_check: integrity_check.is_none() && !skip_integrity_check,
                ..Default::default()
            };
            let job = invoice_vault::engine::restore::RestoreJob {
                repo: repo.repo,
                identity: repo.identity,
                snapshot,
                dest: to,
                options,
                allow_unverified,
            };
            commands::restore(&ctx, &job, json)
        }
        Command::Copy {
            snapshots,
            from,
            identity,
            to,
            source,
            accept_recipients,
            allow_unverified,
            json,
        } => {
            let options = invoice_vault::engine::copy::CopyOptions {
                snapshots,
                source,
                accept_recipients,
                ..Default::default()
            };
            let job = invoice_vault::engine::copy::CopyJob {
                from,
                identity,
                to,
                options,
                allow_unverified,
            };
            commands::copy(&ctx, &job, json)
        }
        Command::Check {
            repo,
            read_data,
            read_data_subset,
            details,
            json,
        } => {
            let args = damage::CheckArgs {
                read_data,
                subset: read_data_subset.as_deref(),
                details,
                json,
            };
            damage::check(&ctx, &repo, args)
        }
        Command::Repair(RepairCommand::Index { repo, all, json }) => {
            damage::repair_index(&ctx, repo, all, json)
        }
    }
}

fn parse_lock_mode(s: &str) -> std::result::Result<LockMode, String> {
    s.parse()
}
