//! Alerts on a failed backup or drill, as the policy's `[notify]` asks: the `on_failure`
//! command is run with the JSON summary on its stdin, and the same JSON is POSTed to the
//! `webhook`. Each notifier is bounded by a timeout; a failing notifier is logged and returned
//! as an outcome, never raised, so it cannot change the result of the job it reports on.
//!
//! HTTP: hyper-util's client with hyper-rustls (rustls on aws-lc-rs, the system's roots), the
//! stack aws-sdk-s3 already builds, so no second HTTP client or TLS stack is compiled.

use crate::policy::Notify;
use crate::secret::redact;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long each notifier may take when the policy sets no `[notify] timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a command's stderr or a webhook's answer an outcome keeps (the end of it).
const OUTPUT_LIMIT: usize = 4096;

/// How long output is still read after a command was killed or after the deadline.
const GRACE: Duration = Duration::from_millis(500);

/// The timeout `[notify]` sets, or [`DEFAULT_TIMEOUT`].
pub fn timeout(notify: &Notify) -> Duration {
    notify.timeout.unwrap_or(DEFAULT_TIMEOUT)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifier {
    /// `[notify] on_failure = { command = "…" }`
    Command,
    /// `[notify] webhook = "…"`
    Webhook,
}

/// What became of one notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOutcome {
    pub notifier: Notifier,
    /// `None` when it succeeded; otherwise one sentence saying what went wrong.
    pub failure: Option<String>,
    /// The end of what the command wrote to stderr (its stdout is read and dropped), or of the
    /// webhook's answer: at most 4 KiB, lossily decoded, age secret keys redacted. Never
    /// printed by this module.
    pub output: String,
}

impl NotifyOutcome {
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs every notifier `notify` defines, concurrently, each bounded by `timeout`, and returns
/// their outcomes (the command's first). Failures are also logged as warnings; this never
/// panics and never fails.
pub fn send(notify: &Notify, summary: &serde_json::Value, timeout: Duration) -> Vec<NotifyOutcome> {
    let body = summary.to_string().into_bytes();
    let body = body.as_slice();
    let command = notify.on_failure.as_ref().map(|c| c.command.as_str());
    let webhook = notify.webhook.as_deref();
    let stopped = |notifier| NotifyOutcome {
        notifier,
        failure: Some(format!("{} stopped unexpectedly", name(notifier))),
        output: String::new(),
    };
    let guarded = |notifier, job: &dyn Fn() -> NotifyOutcome| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
            .unwrap_or_else(|_| stopped(notifier))
    };
    let (command, webhook) = std::thread::scope(|s| {
        // The webhook on a thread of its own, the command on this one; should no thread be
        // available, one after the other.
        let pending = webhook.and_then(|url| {
            std::thread::Builder::new()
                .name("ivault-notify".into())
                .spawn_scoped(s, move || {
                    guarded(Notifier::Webhook, &|| post(url, body, timeout))
                })
                .ok()
        });
        let command =
            command.map(|c| guarded(Notifier::Command, &|| run_command(c, body, timeout)));
        let webhook = match pending {
            Some(handle) => Some(handle.join().unwrap_or_else(|_| stopped(Notifier::Webhook))),
            None => webhook.map(|url| guarded(Notifier::Webhook, &|| post(url, body, timeout))),
        };
        (command, webhook)
    });
    let outcomes: Vec<NotifyOutcome> = command.into_iter().chain(webhook).collect();
    for o in &outcomes {
        if let Some(failure) = &o.failure {
            tracing::warn!("{failure}");
        }
    }
    outcomes
}

fn name(notifier: Notifier) -> &'static str {
    match notifier {
        Notifier::Command => "the on_failure command",
        Notifier::Webhook => "the webhook",
    }
}

/// `1s`, `1m30s`, `250ms`: how a timeout reads in a sentence.
fn show(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 || d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

/// The last [`OUTPUT_LIMIT`] bytes of `bytes`, as text fit for a log.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(OUTPUT_LIMIT);
    redact(&String::from_utf8_lossy(&bytes[start..])).into_owned()
}

/// Reads `pipe` to its end on a thread of its own, keeping the last [`OUTPUT_LIMIT`] bytes;
/// the receiver gets them then. The thread is not joined: a process that escaped the kill
/// may hold the pipe open, and the caller only waits for it until its deadline.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("ivault-notify-pipe".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > 2 * OUTPUT_LIMIT {
                            kept.drain(..kept.len() - OUTPUT_LIMIT);
                        }
                    }
                }
            }
            let _ = tx.send(kept);
        });
    rx
}

/// Runs `command` with `/bin/sh -c` in a process group of its own, `body` on its stdin, and
/// kills the whole group if it is still running at the timeout.
fn run_command(command: &str, body: &[u8], timeout: Duration) -> NotifyOutcome {
    use std::os::unix::process::CommandExt;
    let shown = redact(command);
    let deadline = Instant::now() + timeout;
    let outcome = |failure: Option<String>, output: String| NotifyOutcome {
        notifier: Notifier::Command,
        failure,
        output,
    };
    let mut child = match Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return outcome(
                Some(format!(
                    "the on_failure command `{shown}` could not be started: {e}"
                )),
                String::new(),
            )
        }
    };
    // Written from a thread: a command that does not read its stdin must not block us. The
    // pipe is closed when the thread ends, so the command sees the end of the JSON.
    if let Some(mut stdin) = child.stdin.take() {
        let body = body.to_vec();
        let _ = std::thread::Builder::new()
            .name("ivault-notify-stdin".into())
            .spawn(move || {
                let _ = stdin.write_all(&body);
            });
    }
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);

    let mut pause = Duration::from_millis(1);
    let status: Result<Option<ExitStatus>, std::io::Error> = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(Some(status)),
            Ok(None) => {
                let now = Instant::now();
                if now >= deadline {
                    break Ok(None);
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => break Err(e),
        }
    };
    let failure = match status {
        Ok(Some(status)) => describe_exit(&shown, status),
        Ok(None) | Err(_) => {
            // Until it is reaped the shell's pid, and so its group id, cannot be reused.
            if let Some(pid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            Some(match status {
                Err(e) => format!(
                    "the on_failure command `{shown}` could not be waited for ({e}) and was killed"
                ),
                _ => format!(
                    "the on_failure command `{shown}` did not finish within {} and was killed",
                    show(timeout)
                ),
            })
        }
    };
    let until = deadline.max(Instant::now() + GRACE);
    let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
        rx.and_then(|rx| {
            rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                .ok()
        })
        .unwrap_or_default()
    };
    let _ = collect(stdout);
    let output = tail(&collect(stderr));
    outcome(failure, output)
}

fn describe_exit(shown: &str, status: ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return None;
    }
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => format!("the on_failure command `{shown}` exited with status {code}"),
        (None, Some(signal)) => {
            format!("the on_failure command `{shown}` was killed by signal {signal}")
        }
        (None, None) => format!("the on_failure command `{shown}` failed ({status})"),
    })
}

/// POSTs `body` as JSON to `url`, everything (connecting, TLS, sending, the answer's status)
/// within `timeout`; the answer's body is read for the outcome only while time remains.
fn post(url: &str, body: &[u8], timeout: Duration) -> NotifyOutcome {
    let outcome = |failure: Option<String>, output: String| NotifyOutcome {
        notifier: Notifier::Webhook,
        failure,
        output,
    };
    // Sentences name only the scheme, host and port: a webhook's path often holds its token.
    let uri: hyper::Uri = match url.parse() {
        Ok(uri) => uri,
        Err(_) => {
            return outcome(
                Some("the webhook URL is not a valid http:// or https:// URL".into()),
                String::new(),
            )
        }
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return outcome(
            Some("the webhook URL is not a valid http:// or https:// URL".into()),
            String::new(),
        );
    };
    let https = match scheme {
        "https" => true,
        "http" => false,
        _ => {
            return outcome(
                Some("the webhook URL is not a valid http:// or https:// URL".into()),
                String::new(),
            )
        }
    };
    let at = match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return outcome(
                Some(format!("the webhook at {at} was not called: {e}")),
                String::new(),
            )
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let request = Request {
        uri,
        body: Bytes::copy_from_slice(body),
        deadline,
    };
    let result = if https {
        match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        {
            Ok(builder) => {
                let connector = builder.https_only().enable_http1().build();
                runtime.block_on(request.send(connector))
            }
            Err(e) => Err(Failure::Unreachable(format!(
                "the system's TLS roots cannot be read ({e})"
            ))),
        }
    } else {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        runtime.block_on(request.send(connector))
    };
    // Resolving a name runs on a blocking thread that cannot be interrupted: leave it behind.
    runtime.shutdown_background();
    match result {
        Ok((status, answer)) if status.is_success() => outcome(None, tail(&answer)),
        Ok((status, answer)) => outcome(
            Some(format!("the webhook at {at} answered {status}")),
            tail(&answer),
        ),
        Err(Failure::TimedOut) => outcome(
            Some(format!(
                "the webhook at {at} did not answer within {}",
                show(timeout)
            )),
            String::new(),
        ),
        Err(Failure::Unreachable(why)) => outcome(
            Some(format!("the webhook at {at} could not be reached: {why}")),
            String::new(),
        ),
        Err(Failure::Failed(why)) => outcome(
            Some(format!("the webhook at {at} failed: {why}")),
            String::new(),
        ),
    }
}

enum Failure {
    TimedOut,
    Unreachable(String),
    Failed(String),
}

struct Request {
    uri: hyper::Uri,
    body: Bytes,
    deadline: tokio::time::Instant,
}

impl Request {
    async fn send<C>(self, connector: C) -> Result<(hyper::StatusCode, Vec<u8>), Failure>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build::<C, Full<Bytes>>(connector);
        let request = hyper::Request::post(self.uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("ivault/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(self.body))
            .map_err(|e| Failure::Failed(e.to_string()))?;
        let response = match tokio::time::timeout_at(self.deadline, client.request(request)).await {
            Err(_) => return Err(Failure::TimedOut),
            Ok(Err(e)) if e.is_connect() => return Err(Failure::Unreachable(reason(&e))),
            Ok(Err(e)) => return Err(Failure::Failed(reason(&e))),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let mut body = response.into_body();
        let mut answer = Vec::new();
        // The answer only explains the status: read what arrives in time, up to the limit.
        while answer.len() < OUTPUT_LIMIT {
            match tokio::time::timeout_at(self.deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        answer.extend_from_slice(data);
                    }
                }
                _ => break,
            }
        }
        answer.truncate(OUTPUT_LIMIT);
        Ok((status, answer))
    }
}

/// The innermost cause of an HTTP error, in a few words.
fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    if let Some(io) = inner.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
            _ => {}
        }
    }
    inner.to_string()
}
