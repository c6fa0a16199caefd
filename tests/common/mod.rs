//! Helpers shared by the integration tests: run the real `ivault` binary against real
//! SQLite files, keys and repositories in a temporary directory.
#![allow(dead_code)]

pub mod browser;
pub mod crashed_writer;
pub mod damaged;
pub mod fault_proxy;
pub mod ledger;
pub mod lists;
pub mod moto;
pub mod period;
pub mod period_schemas;
pub mod s3;
pub mod webhook;

use invoice_vault::sample::{self, GenerateOptions, JournalMode};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The demo schema's business description (quoted into a policy).
pub const DEMO_BUSINESS: &str = r#"
[source.business]
invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
children = [{ table = "invoice_items", fk = "invoice_id" }, { table = "tax_uploads", fk = "invoice_id" }]
status_column = "status"
series_column = "invoice_code"
number_column = "invoice_no"
"#;

const SIGABRT: i32 = 6;

pub struct Env {
    pub dir: tempfile::TempDir,
    /// Extra environment for every `ivault` run (e.g. S3 credentials).
    pub vars: Vec<(&'static str, String)>,
}

pub struct Run {
    /// The exit code, or -1 when a signal ended the process.
    pub code: i32,
    /// The signal that ended the process, if one did (a failpoint aborts: SIGABRT).
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: o.status.code().unwrap_or(-1),
            signal: o.status.signal(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "ivault failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    /// The process was killed at failpoint `point` (`name` or `name:n`), as `kill -9` would
    /// kill it: aborted there, not failed on its own or finished.
    #[track_caller]
    pub fn killed_at(self, point: &str) -> Run {
        let name = point.split(':').next().unwrap_or(point);
        assert_eq!(
            self.signal,
            Some(SIGABRT),
            "{point}: the process was not aborted (exit code {}):\n{}",
            self.code,
            self.stderr
        );
        assert!(
            self.stderr
                .contains(&format!("ivault: failpoint {name} reached, aborting")),
            "{point}: {}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            vars: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ivault"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("IVAULT_STATE_DIR", self.path("state"))
            .env_remove("IVAULT_REPO")
            .env_remove("IVAULT_IDENTITY")
            .env_remove("IVAULT_PASSPHRASE")
            .env_remove("IVAULT_SIGNING_KEY")
            .env_remove("IVAULT_TRUST_SIGNERS")
            .env_remove("IVAULT_FAILPOINT")
            .env_remove(invoice_vault::storage::PART_BYTES_ENV)
            .env_remove("RUST_LOG")
            .env_remove("IVAULT_S3_ENDPOINT")
            .env_remove("AWS_PROFILE");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run ivault"))
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(c.output().expect("run ivault"))
    }

    /// An environment whose `ivault` runs also get `vars` (S3 credentials and endpoint).
    pub fn with_vars(vars: Vec<(&'static str, String)>) -> Env {
        let mut env = Env::new();
        env.vars = vars;
        env
    }

    /// Generates an identity file `name`; returns (its path, its recipient).
    pub fn new_key(&self, name: &str) -> (String, String) {
        let key = self.path(name).to_str().unwrap().to_string();
        let recipient = self
            .run(&["key", "generate", "--out", &key])
            .ok()
            .stdout
            .trim()
            .to_string();
        (key, recipient)
    }

    /// Generates a key and a repository encrypted to it; returns (identity path, repo path).
    pub fn key_and_repo(&self) -> (String, String) {
        let (key, recipient) = self.new_key("identity.txt");
        let repo = self.path("repo");
        self.run(&["init", repo.to_str().unwrap(), "--recipient", &recipient])
            .ok();
        (key, repo.to_str().unwrap().to_string())
    }

    /// Backs `db` up to `repo` and returns the backup's JSON report.
    pub fn backup_report(&self, db: &str, repo: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["backup", db, "--to", repo, "--json"];
        args.extend_from_slice(extra);
        self.run(&args).ok().json()[0].clone()
    }

    /// Restores `snapshot` from `repo` into `out`; the run must succeed.
    pub fn restore(&self, snapshot: &str, repo: &str, key: &str, out: &Path) -> Run {
        self.restore_with(snapshot, repo, key, out, &[]).ok()
    }

    /// `restore` with further arguments, however it ends.
    pub fn restore_with(
        &self,
        snapshot: &str,
        repo: &str,
        key: &str,
        out: &Path,
        extra: &[&str],
    ) -> Run {
        let out = out.to_str().expect("utf-8 path");
        let mut args = vec![
            "restore",
            snapshot,
            "--repo",
            repo,
            "--identity",
            key,
            "--to",
            out,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `snapshots --json` of `repo`: every snapshot the key opens.
    pub fn snapshot_list(&self, repo: &str, key: &str) -> Vec<serde_json::Value> {
        let args = ["snapshots", "--repo", repo, "--identity", key, "--json"];
        let v = self.run(&args).ok().json();
        v.as_array().expect("a list of snapshots").clone()
    }

    /// Runs `check --json` (with `--read-data` if asked).
    pub fn check(&self, repo: &str, key: &str, read_data: bool) -> Run {
        let mut args = vec!["check", "--repo", repo, "--identity", key, "--json"];
        if read_data {
            args.push("--read-data");
        }
        self.run(&args)
    }

    pub fn database(&self, name: &str, size_mb: u64, mode: JournalMode) -> PathBuf {
        let p = self.path(name);
        sample::generate(
            &p,
            &GenerateOptions {
                size_mb,
                seed: 7,
                journal_mode: mode,
            },
        )
        .expect("generate");
        p
    }

    /// Every file under the temporary directory whose name contains `needle`.
    pub fn files_named(&self, needle: &str) -> Vec<PathBuf> {
        walk(self.dir.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(needle))
            .collect()
    }
}

/// A storage fault: the `nth` put fails as a dropped connection would.
pub fn connection_reset_on_put(nth: usize) -> invoice_vault::storage::Fault {
    use invoice_vault::storage::{Fault, FaultKind, Op, StorageError};
    Fault {
        op: Op::Put,
        nth,
        kind: FaultKind::Fail(StorageError::Other {
            key: "x".into(),
            message: "connection reset".into(),
            transient: true,
        }),
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).expect("read")))
}

/// Runs integrity_check and foreign_key_check on a database; returns the first problem.
pub fn sqlite_checks(p: &Path) -> Option<String> {
    let c = rusqlite::Connection::open(p).expect("open");
    let ic: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    if ic != "ok" {
        return Some(format!("integrity_check: {ic}"));
    }
    let fk: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("foreign_key_check");
    (fk != 0).then(|| format!("{fk} foreign key violations"))
}
