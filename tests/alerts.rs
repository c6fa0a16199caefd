//! Alerts end to end: a failed drill or backup runs the policy's command with a JSON summary
//! on stdin and posts it to the webhook; a passing drill alerts nobody; a notifier that hangs
//! or fails never changes the job's exit code.

mod common;
use common::webhook::{server, OK};
use common::Env;
use invoice_vault::sample::JournalMode;
use serde_json::Value;
use std::time::{Duration, Instant};

struct Setup {
    env: Env,
    policy: String,
    db: std::path::PathBuf,
    inbox: std::path::PathBuf,
}

/// A source with an orphan child row (so its drills fail), a local target, and `notify`.
fn setup(notify: &str, broken: bool) -> Setup {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("a.sqlite", 1, JournalMode::Wal);
    if broken {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(
                "PRAGMA foreign_keys = OFF; INSERT INTO tax_uploads (invoice_id, uploaded_at, status, response_code, payload_sha256) VALUES (424242424, 'x', 'x', 'x', 'x');",
            )
            .unwrap();
    }
    let inbox = env.path("inbox.json");
    let policy = env.path("p.toml");
    std::fs::write(
        &policy,
        format!(
            "[[source]]\nname = \"a\"\npath = {db:?}\n[[target]]\nname = \"local\"\nurl = {repo:?}\n[encryption]\nidentity_file = {key:?}\n[notify]\n{}\n",
            notify.replace("INBOX", inbox.to_str().unwrap())
        ),
    )
    .unwrap();
    Setup {
        env,
        policy: policy.to_str().unwrap().to_string(),
        db,
        inbox,
    }
}

impl Setup {
    fn run(&self, args: &[&str]) -> common::Run {
        let mut all = args.to_vec();
        all.extend(["--policy", &self.policy]);
        self.env.run(&all)
    }
}

#[test]
fn a_failed_drill_reaches_the_command_and_the_webhook() {
    let (port, received) = server(Some(OK));
    let s = setup(
        &format!("on_failure = {{ command = \"cat > INBOX\" }}\nwebhook = \"http://127.0.0.1:{port}/hook\""),
        true,
    );
    s.run(&["backup", "a"]).ok();
    let r = s.run(&["drill", "a", "--json"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    let report = r.json();
    let sent: Value = serde_json::from_str(&std::fs::read_to_string(&s.inbox).unwrap()).unwrap();
    assert_eq!(sent["event"], "drill_failed");
    assert_eq!(sent["drill"], report["id"]);
    assert_eq!(sent["source"], "a");
    assert_eq!(sent["target"], "local");
    assert_eq!(sent["snapshot"], report["snapshot"]["id"]);
    assert_eq!(sent["failed_checks"].as_array().unwrap().len(), 1);
    assert_eq!(sent["failed_checks"][0]["kind"], "foreign_key_check");
    let posted = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(posted.request_line, "POST /hook HTTP/1.1");
    assert_eq!(posted.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&posted.body).unwrap();
    assert_eq!(body, sent);
}

#[test]
fn a_passing_drill_alerts_nobody() {
    let s = setup("on_failure = { command = \"cat > INBOX\" }", false);
    s.run(&["backup", "a"]).ok();
    s.run(&["drill", "a"]).ok();
    assert!(!s.inbox.exists());
}

#[test]
fn a_hanging_or_failing_notifier_does_not_change_the_outcome() {
    let s = setup(
        "on_failure = { command = \"sleep 30\" }\ntimeout = \"1s\"",
        true,
    );
    s.run(&["backup", "a"]).ok();
    let started = Instant::now();
    let r = s.run(&["drill", "a"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        r.stderr.contains("ivault: warning: the failure alert was not delivered: the on_failure command `sleep 30` did not finish within 1s and was killed"),
        "{}",
        r.stderr
    );
    let s = setup("on_failure = { command = \"exit 3\" }", true);
    s.run(&["backup", "a"]).ok();
    let r = s.run(&["drill", "a"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert!(r.stderr.contains("exited with status 3"), "{}", r.stderr);
}

#[test]
fn a_failed_backup_reaches_the_command() {
    let s = setup("on_failure = { command = \"cat > INBOX\" }", false);
    std::fs::remove_file(&s.db).unwrap();
    let r = s.run(&["backup", "a"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let sent: Value = serde_json::from_str(&std::fs::read_to_string(&s.inbox).unwrap()).unwrap();
    assert_eq!(sent["event"], "backup_failed");
    assert_eq!(sent["target"], "local");
    assert_eq!(sent["exit_code"], 3);
    assert!(
        sent["error"].as_str().unwrap().contains("does not exist"),
        "{sent}"
    );
}
