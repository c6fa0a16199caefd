//! A progress bar on stderr for the long commands (backup, restore, `check --read-data`,
//! copy): bytes done, rate and time left. A command shows one with [`show`] (only when stderr
//! is a terminal, and never for `--json`); the engine reports work with [`add_total`] and
//! [`add`] where it happens, which costs one uncontended lock when no bar is shown.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The bar of a command: drawn until dropped, then left at its last state above the
/// command's own summary (or cleared, when the command failed before any work).
pub struct Shown(Option<ProgressBar>);

impl Drop for Shown {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
            if bar.position() == 0 {
                bar.finish_and_clear();
            } else {
                bar.abandon();
                // The command's summary starts on a line of its own.
                eprintln!();
            }
        }
    }
}

/// Shows a bar labelled `what` while the returned value lives, if stderr is a terminal and
/// the output is not `json`.
pub fn show(what: &str, json: bool) -> Shown {
    if json || !std::io::stderr().is_terminal() {
        return Shown(None);
    }
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, {eta} left",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_prefix(what.to_string());
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    Shown(Some(bar))
}

fn with_bar(f: impl FnOnce(&ProgressBar)) {
    if let Some(bar) = BAR.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        f(bar);
    }
}

/// More work to do, in bytes. The bar is drawn from the first work on, so a command that
/// fails before any shows none.
pub fn add_total(bytes: u64) {
    with_bar(|b| {
        if b.length() == Some(0) && bytes > 0 {
            b.enable_steady_tick(Duration::from_millis(200));
        }
        b.inc_length(bytes)
    });
}

/// Work done, in bytes.
pub fn add(bytes: u64) {
    with_bar(|b| b.inc(bytes));
}
