//! `ivault daemon`: the real binary on real SQLite sources and a local repository, driven by
//! signals. A never-run source is backed up at once; SIGTERM lets the running backup finish
//! and exits 0 with a repository that passes `check --read-data`; SIGHUP with a broken policy
//! keeps the old one, a later valid one takes effect; a second daemon on the same state
//! directory stops at once with exit code 13.

mod common;
use common::Env;
use invoice_vault::sample::JournalMode;
use rustix::process::{kill_process, Pid, Signal};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Setup {
    env: Env,
    key: String,
    recipient: String,
    policies: PathBuf,
}

fn setup() -> Setup {
    let env = Env::new();
    let (key, recipient) = env.new_key("k.txt");
    env.run(&[
        "init",
        env.path("near").to_str().unwrap(),
        "--recipient",
        &recipient,
    ])
    .ok();
    let policies = env.path("policies");
    std::fs::create_dir(&policies).unwrap();
    Setup {
        env,
        key,
        recipient,
        policies,
    }
}

impl Setup {
    /// The policy text for `sources` (name, path) with `schedule` lines under `[schedule]`.
    fn policy(&self, sources: &[(&str, &Path)], schedule: &str) -> String {
        let mut text = String::new();
        for (name, path) in sources {
            text += &format!("[[source]]\nname = {name:?}\npath = {path:?}\n");
        }
        text += &format!(
            "[[target]]\nname = \"near\"\nurl = {:?}\n[encryption]\nrecipients = [\"{}\"]\nidentity_file = {:?}\n[retention]\nkeep_last = 5\n[schedule]\n{schedule}\n",
            self.env.path("near"),
            self.recipient,
            self.key
        );
        text
    }

    fn write_policy(&self, text: &str) {
        // Written beside and renamed, as an editor or a deployment would.
        let tmp = self.env.path("p.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.policies.join("p.toml")).unwrap();
    }

    fn start(&self) -> Daemon {
        let mut child = self
            .env
            .cmd(&["daemon", "--policy-dir", self.policies.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ivault daemon");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon { child, log }
    }

    fn snapshots(&self, source: &str) -> usize {
        let v = self
            .env
            .run(&[
                "snapshots",
                "--repo",
                self.env.path("near").to_str().unwrap(),
                "--identity",
                &self.key,
                "--source",
                source,
                "--json",
            ])
            .ok()
            .json();
        v.as_array().unwrap().len()
    }
}

struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log holds `needle` (at most 20 s); returns the log.
    #[track_caller]
    fn wait_for(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the daemon ended ({status}) before logging {needle:?}:\n{log}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {needle:?} in the log within 20 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: Signal) {
        kill_process(Pid::from_child(&self.child), sig).expect("send a signal");
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the daemon to exit (at most 20 s); its exit code.
    #[track_caller]
    fn exit_code(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the daemon did not exit within 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Once a year: due at once for a source that never ran, then not again during a test.
const YEARLY: &str = "full = \"0 0 1 1 *\"\nincremental = \"0 0 1 1 *\"";

#[test]
fn a_never_run_source_is_backed_up_at_once() {
    let s = setup();
    let books = s.env.database("books.sqlite", 1, JournalMode::Wal);
    s.write_policy(&s.policy(&[("books", &books)], YEARLY));
    let mut d = s.start();
    let log = d.wait_for("finished the full of books");
    assert!(log.contains("started the full of books"), "{log}");
    assert!(log.contains("books retention on near: kept 1"), "{log}");
    assert_eq!(s.snapshots("books"), 1);
    d.signal(Signal::TERM);
    assert_eq!(d.exit_code(), 0, "{}", d.log());
    assert!(d.log().contains("daemon stopped"), "{}", d.log());
}

#[test]
fn sigterm_lets_the_running_backup_finish_and_exits_0() {
    let s = setup();
    let books = s.env.database("books.sqlite", 40, JournalMode::Wal);
    s.write_policy(&s.policy(&[("books", &books)], YEARLY));
    let mut d = s.start();
    d.wait_for("started the full of books");
    d.signal(Signal::TERM);
    assert_eq!(d.exit_code(), 0, "{}", d.log());
    let log = d.log();
    // The signal came while the backup ran, which then finished.
    let stopping = log
        .find("SIGTERM: stopping once the running jobs finish")
        .unwrap();
    let finished = log
        .find("finished the full of books")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(stopping < finished, "{log}");
    assert!(log.contains("daemon stopped"), "{log}");
    assert_eq!(s.snapshots("books"), 1);
    let check = s
        .env
        .check(s.env.path("near").to_str().unwrap(), &s.key, true);
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
}

#[test]
fn sighup_with_a_broken_policy_keeps_the_old_one_and_a_valid_one_takes_effect() {
    let s = setup();
    let books = s.env.database("books.sqlite", 1, JournalMode::Wal);
    let shop = s.env.database("shop.sqlite", 1, JournalMode::Rollback);
    s.write_policy(&s.policy(&[("books", &books)], YEARLY));
    let mut d = s.start();
    d.wait_for("finished the full of books");

    // A misspelt time zone on line 14 of the new text.
    let broken = s.policy(
        &[("books", &books), ("shop", &shop)],
        &format!("{YEARLY}\ntime_zone = \"Europe/Berln\""),
    );
    let line = broken
        .lines()
        .position(|l| l.starts_with("time_zone"))
        .unwrap()
        + 1;
    s.write_policy(&broken);
    d.signal(Signal::HUP);
    let expected = format!(
        "policy {}, line {line}: [schedule] time_zone = \"Europe/Berln\" is not a time zone; did you mean \"Europe/Berlin\"?; keeping the version loaded before",
        s.policies.join("p.toml").display()
    );
    d.wait_for(&expected);
    std::thread::sleep(Duration::from_millis(300));
    assert!(d.running(), "{}", d.log());
    assert!(!d.log().contains("started the full of shop"), "{}", d.log());

    // Fixed: the new source is scheduled, and being new, due at once.
    s.write_policy(&broken.replace("Europe/Berln", "Europe/Berlin"));
    d.signal(Signal::HUP);
    d.wait_for("finished the full of shop");
    assert_eq!(s.snapshots("shop"), 1);
    assert_eq!(s.snapshots("books"), 1);
    d.signal(Signal::TERM);
    assert_eq!(d.exit_code(), 0, "{}", d.log());
}

#[test]
fn a_second_daemon_on_the_same_state_directory_exits_13_and_the_first_runs_on() {
    let s = setup();
    let books = s.env.database("books.sqlite", 1, JournalMode::Wal);
    s.write_policy(&s.policy(&[("books", &books)], YEARLY));
    let mut first = s.start();
    first.wait_for("daemon started");
    let second = s
        .env
        .run(&["daemon", "--policy-dir", s.policies.to_str().unwrap()]);
    assert_eq!(second.code, 13, "{}", second.stderr);
    assert_eq!(
        second.stderr.trim(),
        format!(
            "ivault: another ivault daemon (pid {}) already runs the jobs of state directory {}; stop it first, or give this one a --state-dir of its own",
            first.child.id(),
            s.env.path("state").display()
        )
    );
    first.wait_for("finished the full of books");
    assert!(first.running(), "{}", first.log());
    first.signal(Signal::TERM);
    assert_eq!(first.exit_code(), 0, "{}", first.log());
    assert_eq!(s.snapshots("books"), 1);
}
