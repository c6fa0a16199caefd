//! Command-line parsing and dispatch. Each command is a thin wrapper around the engine; all
//! output to stdout is data (human or `--json`), diagnostics go to stderr.

mod backup;
mod demo;
mod targets;

use backup::{backup_cmd, BackupArgs};
use clap::{Args, Parser, Subcommand};
use demo::{demo_cmd, DemoArgs};
use invoice_vault::demo::{mib, short};
use invoice_vault::engine::check::{self, ReadData};
use invoice_vault::engine::copy;
use invoice_vault::engine::restore::{self, RestoreOptions};
use invoice_vault::engine::snapshots;
use invoice_vault::error::exit;
use invoice_vault::policy::Policy;
use invoice_vault::repo::keys::{self, Keyring};
use invoice_vault::repo::Repository;
use invoice_vault::state::{self, JobRecord, State};
use invoice_vault::storage::{LockMode, ObjectLock, TargetOptions};
use invoice_vault::{Error, Result};
use std::path::{Path, PathBuf};
use targets::Targets;

#[derive(Parser)]
#[command(
    name = "ivault",
    version,
    about = "Encrypted, deduplicated, verified backups of SQLite invoice databases"
)]
struct Cli {
    /// Directory of the local state database (job history, caches).
    #[arg(long, global = true, env = state::STATE_DIR_ENV, value_name = "DIR")]
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
        /// Skip PRAGMA integrity_check (the SHA-256 check, which proves every byte equals the
        /// snapshot, still runs): for a fast restore of a large database in an emergency.
        #[arg(long)]
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
        #[arg(long)]
        passphrase: bool,
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
        let mut out = Vec::new();
        for r in &self.recipients {
            out.push(keys::parse_recipient(r)?.to_string());
        }
        if let Some(f) = &self.recipients_file {
            out.extend(keys::read_recipients_file(f)?);
        }
        out.dedup();
        Ok(out)
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

impl RepoArgs {
    fn open(&self, targets: &Targets) -> Result<(Repository, Keyring)> {
        let repo = Repository::open(targets.open_for_reading(&self.repo)?)?;
        let from_policy = targets
            .policy
            .as_ref()
            .and_then(|p| p.encryption.as_ref())
            .and_then(|e| e.identity_file.as_ref());
        let path = self.identity.as_ref().or(from_policy).ok_or_else(|| {
            Error::Key(format!(
                "reading repository {} needs its private key; pass --identity FILE or set IVAULT_IDENTITY",
                self.repo
            ))
        })?;
        Ok((repo, keys::load_identity(path)?))
    }
}

pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    init_logging(cli.verbose);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ivault: {e}");
            e.exit_code()
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

fn dispatch(cli: Cli) -> Result<i32> {
    let state_dir = cli.state_dir.clone().unwrap_or_else(state::default_dir);
    let targets = Targets {
        defaults: TargetOptions {
            endpoint: cli.endpoint.clone(),
            region: cli.region.clone(),
            profile: cli.profile.clone(),
            object_lock: cli.object_lock_days.map(|days| ObjectLock {
                mode: cli.object_lock_mode,
                days,
            }),
        },
        policy: cli.policy.as_deref().map(Policy::load).transpose()?,
    };
    match cli.command {
        Command::Demo(args) => demo_cmd(args),
        Command::Key(KeyCommand::Generate { out, passphrase }) => {
            let out = match out {
                Some(o) => o,
                None => default_identity_path()?,
            };
            let pass = if passphrase {
                Some(keys::new_passphrase()?)
            } else {
                None
            };
            let recipient = keys::generate(&out, pass)?;
            eprintln!(
                "wrote identity {} (keep it secret; restores need it)",
                out.display()
            );
            println!("{recipient}");
            Ok(exit::OK)
        }
        Command::Init { target, recipients } => {
            targets.require_s3_for_lock(&[&target])?;
            let mut recipients = recipients.collect()?;
            if let (true, Some(enc)) = (
                recipients.is_empty(),
                targets.policy.as_ref().and_then(|p| p.encryption.as_ref()),
            ) {
                for r in &enc.recipients {
                    recipients.push(keys::parse_recipient(r)?.to_string());
                }
            }
            let (url, _) = targets.resolve(&target)?;
            if !url.contains("://") {
                let p = Path::new(&url);
                if !p.exists() {
                    std::fs::create_dir_all(p).map_err(|e| {
                        Error::Repository(format!("cannot create repository directory {url}: {e}"))
                    })?;
                }
            }
            let repo = Repository::init(targets.open(&target)?, recipients)?;
            let state = State::open(&state_dir)?;
            state.pin_recipients(
                &repo.config().id,
                &repo.location(),
                &repo.config().recipients,
                false,
            )?;
            println!(
                "created repository {} (id {})",
                repo.location(),
                short(&repo.config().id)
            );
            if repo.config().recipients.is_empty() {
                eprintln!("no recipient recorded: every backup must pass --recipient");
            }
            Ok(exit::OK)
        }
        Command::Backup(args) => backup_cmd(args, &state_dir, &targets),
        Command::Snapshots { repo, source, json } => {
            let (r, keys) = repo.open(&targets)?;
            let list = snapshots::list(&r, &keys, source.as_deref())?;
            if json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no snapshots in {}", r.location());
            } else {
                println!(
                    "{:<12}  {:<24}  {:<16}  {:<11}  {:>10}  tags",
                    "id", "time", "source", "kind", "size"
                );
                for s in &list {
                    println!(
                        "{:<12}  {:<24}  {:<16}  {:<11}  {:>10}  {}",
                        short(&s.id),
                        s.time,
                        s.source,
                        s.kind.to_string(),
                        mib(s.database_bytes),
                        s.tags.join(",")
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Restore {
            snapshot,
            repo,
            to,
            force,
            source,
            skip_integrity_check,
            json,
        } => {
            let (r, keys) = repo.open(&targets)?;
            let state = State::open(&state_dir)?;
            let job = state.job_start("restore", None, Some(&r.location()))?;
            let opts = RestoreOptions {
                force,
                source,
                integrity_check: !skip_integrity_check,
            };
            let res = restore::restore(&r, &keys, &snapshot, &to, &opts);
            state.job_finish(
                job,
                &job_record(&res, |r| (r.bytes_read, 0, Some(r.snapshot_id.clone()))),
            )?;
            let rep = res?;
            if json {
                print_json(&rep);
            } else {
                let checks = if rep.integrity_checked {
                    "SHA-256 and integrity_check passed"
                } else {
                    "SHA-256 passed, integrity_check skipped"
                };
                println!(
                    "restored snapshot {} to {} ({}) in {:.2} s; {checks}",
                    short(&rep.snapshot_id),
                    rep.path,
                    mib(rep.bytes_written),
                    rep.duration_ms as f64 / 1000.0
                );
            }
            Ok(exit::OK)
        }
        Command::Copy {
            snapshots,
            from,
            identity,
            to,
            source,
            accept_recipients,
            json,
        } => {
            let from_args = RepoArgs {
                repo: from,
                identity,
            };
            targets.require_s3_for_lock(&[&to])?;
            let (src, keys) = from_args.open(&targets)?;
            let dst = Repository::open(targets.open(&to)?)?;
            let mut state = State::open(&state_dir)?;
            let job = state.job_start("copy", Some(&src.location()), Some(&dst.location()))?;
            let opts = copy::CopyOptions {
                snapshots,
                source,
                scratch_dir: state_dir.clone(),
                accept_recipients,
            };
            let res = copy::copy(&src, &keys, &dst, &mut state, &opts);
            state.job_finish(
                job,
                &job_record(&res, |r| {
                    let sum = |f: fn(&copy::CopiedSnapshot) -> u64| -> u64 {
                        r.snapshots.iter().map(f).sum()
                    };
                    (sum(|c| c.bytes_read), sum(|c| c.bytes_stored), None)
                }),
            )?;
            let rep = res?;
            if json {
                print_json(&rep);
            } else {
                for c in &rep.snapshots {
                    if c.already_present {
                        println!(
                            "snapshot {} ({} {}) is already in {} as {}",
                            short(&c.from_snapshot),
                            c.source,
                            c.time,
                            rep.to,
                            short(&c.to_snapshot)
                        );
                    } else {
                        println!(
                            "copied snapshot {} ({} {}) to {} as {}: read {}, stored {}",
                            short(&c.from_snapshot),
                            c.source,
                            c.time,
                            rep.to,
                            short(&c.to_snapshot),
                            mib(c.bytes_read),
                            mib(c.bytes_stored)
                        );
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Check {
            repo,
            read_data,
            read_data_subset,
            json,
        } => {
            let mode = match (read_data, read_data_subset) {
                (true, _) => ReadData::All,
                (false, Some(s)) => ReadData::Subset(parse_percent(&s)?),
                _ => ReadData::None,
            };
            let (r, keys) = repo.open(&targets)?;
            let report = check::check(&r, &keys, mode)?;
            if json {
                print_json(&report);
            } else {
                println!(
                    "{} snapshots, {} indexes, {} packs ({} read)",
                    report.snapshots, report.indexes, report.packs, report.packs_read
                );
                for w in &report.warnings {
                    println!("warning: {w}");
                }
                for p in &report.problems {
                    let affected: Vec<&str> =
                        p.affected_snapshots.iter().map(|s| short(s)).collect();
                    println!(
                        "damaged: {}: {}; affects snapshots: {}",
                        p.object,
                        p.what,
                        if affected.is_empty() {
                            "none".to_string()
                        } else {
                            affected.join(", ")
                        }
                    );
                }
                println!(
                    "{}",
                    if report.ok {
                        "no problems found"
                    } else {
                        "the repository is damaged"
                    }
                );
            }
            Ok(if report.ok { exit::OK } else { exit::INTEGRITY })
        }
    }
}

fn default_identity_path() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| Error::Usage("no HOME to put the identity in; pass --out FILE".into()))?;
    let dir = base.join("ivault");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Destination(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir.join("identity.txt"))
}

fn parse_lock_mode(s: &str) -> std::result::Result<LockMode, String> {
    s.parse()
}

fn parse_percent(s: &str) -> Result<f64> {
    let n: f64 = s.trim_end_matches('%').parse().map_err(|_| {
        Error::Usage(format!(
            "--read-data-subset {s}: give a percentage such as 10%"
        ))
    })?;
    if !(n > 0.0 && n <= 100.0) {
        return Err(Error::Usage(format!(
            "--read-data-subset {s}: the percentage must be above 0 and at most 100"
        )));
    }
    Ok(n)
}

pub(super) fn job_record<T>(
    res: &Result<T>,
    f: impl Fn(&T) -> (u64, u64, Option<String>),
) -> JobRecord {
    match res {
        Ok(v) => {
            let (bytes_read, bytes_stored, snapshot_id) = f(v);
            JobRecord {
                outcome: "ok".into(),
                bytes_read,
                bytes_stored,
                snapshot_id,
                error: None,
            }
        }
        Err(e) => JobRecord {
            outcome: "failed".into(),
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}

pub(super) fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("ivault: cannot encode JSON: {e}"),
    }
}
