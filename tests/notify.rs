//! `[notify]` against real processes and a real loopback HTTP server.

mod common;
use common::webhook::{server, OK};
use invoice_vault::notify::{self, Notifier, NotifyOutcome};
use invoice_vault::policy::{Notify, NotifyCommand, Policy};
use serde_json::json;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

fn summary() -> serde_json::Value {
    json!({
        "job": "drill",
        "source": "invoices-beijing",
        "ok": false,
        "error": "restored file fails integrity_check: \"row 7 missing\"",
        "warnings": ["pack 3f… was damaged; another copy was used"],
        "duration_ms": 1234,
    })
}

fn command(command: &str) -> Notify {
    Notify {
        on_failure: Some(NotifyCommand {
            command: command.to_string(),
        }),
        webhook: None,
        timeout: None,
    }
}

fn webhook(url: &str) -> Notify {
    Notify {
        on_failure: None,
        webhook: Some(url.to_string()),
        timeout: None,
    }
}

fn ok(notifier: Notifier) -> NotifyOutcome {
    NotifyOutcome {
        notifier,
        failure: None,
        output: String::new(),
    }
}

fn failed(notifier: Notifier, failure: String) -> NotifyOutcome {
    NotifyOutcome {
        notifier,
        failure: Some(failure),
        output: String::new(),
    }
}

#[test]
fn the_command_gets_the_summary_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.json");
    let notify = command(&format!("cat > '{}'", file.display()));
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(10));
    assert_eq!(outcomes, vec![ok(Notifier::Command)]);
    let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(got, summary());
}

#[test]
fn the_webhook_gets_the_summary_as_a_json_post() {
    let (port, received) = server(Some(OK));
    let notify = webhook(&format!("http://127.0.0.1:{port}/hooks/ivault?token=abc"));
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(10));
    assert_eq!(outcomes, vec![ok(Notifier::Webhook)]);
    let request = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        request.request_line,
        "POST /hooks/ivault?token=abc HTTP/1.1"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    let got: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(got, summary());
}

#[test]
fn a_command_that_fails_names_its_exit_status() {
    let notify = command("cat > /dev/null; echo 'pager unreachable' >&2; exit 3");
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(10));
    assert_eq!(
        outcomes,
        vec![NotifyOutcome {
            notifier: Notifier::Command,
            failure: Some(
                "the on_failure command `cat > /dev/null; echo 'pager unreachable' >&2; exit 3` exited with status 3"
                    .into()
            ),
            output: "pager unreachable\n".into(),
        }]
    );
}

#[test]
fn a_command_killed_by_a_signal_says_so() {
    let notify = command("kill -TERM $$");
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(10));
    assert_eq!(
        outcomes,
        vec![failed(
            Notifier::Command,
            "the on_failure command `kill -TERM $$` was killed by signal 15".into()
        )]
    );
}

fn gone(pid: u32) -> bool {
    // Gone, or a zombie its new parent has yet to reap.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_hanging_command_is_killed_at_the_timeout_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    let line = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
    let start = Instant::now();
    let outcomes = notify::send(&command(&line), &summary(), Duration::from_secs(1));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "send took {took:?}");
    assert!(took >= Duration::from_secs(1), "send took {took:?}");
    assert_eq!(
        outcomes,
        vec![failed(
            Notifier::Command,
            format!("the on_failure command `{line}` did not finish within 1s and was killed")
        )]
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let wait = Instant::now();
    while !gone(pid) && wait.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(pid), "the command's sleep {pid} still runs");
}

#[test]
fn a_plain_sleep_is_killed_at_the_timeout() {
    let start = Instant::now();
    let outcomes = notify::send(&command("sleep 30"), &summary(), Duration::from_secs(1));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "send took {took:?}");
    assert_eq!(
        outcomes,
        vec![failed(
            Notifier::Command,
            "the on_failure command `sleep 30` did not finish within 1s and was killed".into()
        )]
    );
}

#[test]
fn a_webhook_that_never_answers_times_out() {
    let (port, received) = server(None);
    let notify = webhook(&format!("http://127.0.0.1:{port}/hook"));
    let start = Instant::now();
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(1));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "send took {took:?}");
    assert_eq!(
        outcomes,
        vec![failed(
            Notifier::Webhook,
            format!("the webhook at http://127.0.0.1:{port} did not answer within 1s")
        )]
    );
    // It did get the request: the time ran out waiting for the answer.
    let request = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(request.request_line, "POST /hook HTTP/1.1");
}

#[test]
fn a_refused_connection_is_a_failure() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let notify = webhook(&format!("http://127.0.0.1:{port}/hook/s3cret-token"));
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(5));
    assert_eq!(
        outcomes,
        vec![failed(
            Notifier::Webhook,
            format!(
                "the webhook at http://127.0.0.1:{port} could not be reached: connection refused"
            )
        )]
    );
}

#[test]
fn a_webhook_error_status_is_a_failure() {
    let (port, _received) = server(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 13\r\nConnection: close\r\n\r\ninvalid_token",
    ));
    let notify = webhook(&format!("http://127.0.0.1:{port}/hook"));
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(10));
    assert_eq!(
        outcomes,
        vec![NotifyOutcome {
            notifier: Notifier::Webhook,
            failure: Some(format!(
                "the webhook at http://127.0.0.1:{port} answered 500 Internal Server Error"
            )),
            output: "invalid_token".into(),
        }]
    );
}

#[test]
fn both_notifiers_run_when_the_command_fails() {
    let (port, received) = server(Some(OK));
    let notify = Notify {
        on_failure: Some(NotifyCommand {
            command: "exit 1".into(),
        }),
        webhook: Some(format!("http://127.0.0.1:{port}/hook")),
        timeout: None,
    };
    let outcomes = notify::send(&notify, &summary(), Duration::from_secs(10));
    assert_eq!(
        outcomes,
        vec![
            failed(
                Notifier::Command,
                "the on_failure command `exit 1` exited with status 1".into()
            ),
            ok(Notifier::Webhook),
        ]
    );
    let request = received.recv_timeout(Duration::from_secs(5)).unwrap();
    let got: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(got, summary());
}

#[test]
fn the_timeout_comes_from_the_policy_or_defaults_to_10s() {
    let p = Policy::parse(
        "[notify]\nwebhook = \"https://hooks.example.internal/ivault\"\ntimeout = \"1m30s\"\n",
        Path::new("p.toml"),
    )
    .unwrap();
    assert_eq!(
        notify::timeout(p.notify.as_ref().unwrap()),
        Duration::from_secs(90)
    );
    assert_eq!(notify::timeout(&command("true")), Duration::from_secs(10));
    assert_eq!(notify::DEFAULT_TIMEOUT, Duration::from_secs(10));
}

#[test]
fn no_notifiers_no_outcomes() {
    let notify = Notify {
        on_failure: None,
        webhook: None,
        timeout: None,
    };
    assert_eq!(
        notify::send(&notify, &summary(), Duration::from_secs(1)),
        vec![]
    );
}
