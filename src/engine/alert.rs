//! Alerts on failure: a failed drill or backup runs the policy's `[notify]` command and/or
//! posts to its webhook with a JSON summary. A notifier that fails or hangs is logged and
//! returned as a warning; it never changes or hides the job's own result.

use crate::engine::context::Context;
use crate::report::model::{DrillReport, Status};
use serde_json::{json, Value};

/// Sends `summary` to the policy's notifiers, if it has any; returns one sentence per notifier
/// that failed.
pub fn on_failure(ctx: &Context, summary: &Value) -> Vec<String> {
    let Some(notify) = ctx.targets.policy().and_then(|p| p.notify.as_ref()) else {
        return Vec::new();
    };
    crate::notify::send(notify, summary, crate::notify::timeout(notify))
        .into_iter()
        .filter_map(|o| o.failure)
        .collect()
}

/// The summary of a failed drill: what failed, where, and how to see the whole report.
pub fn drill_summary(r: &DrillReport) -> Value {
    let failed: Vec<Value> = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| {
            json!({
                "kind": c.kind, "subject": c.subject, "expected": c.expected,
                "actual": c.actual, "detail": c.detail,
            })
        })
        .collect();
    json!({
        "event": "drill_failed",
        "drill": r.id,
        "host": r.host,
        "source": r.source.name,
        "target": r.target,
        "snapshot": r.snapshot.as_ref().map(|s| s.id.clone()),
        "finished": r.finished,
        "failed_checks": failed,
        "report": format!("ivault report --drill {}", r.id),
    })
}

/// The summary of a backup that failed on one target.
pub fn backup_summary(source: &str, target: &str, error: &crate::error::Error) -> Value {
    json!({
        "event": "backup_failed",
        "host": crate::host::name(),
        "source": source,
        "target": crate::secret::redact(target),
        "error": crate::secret::redact(error.message()),
        "exit_code": error.exit_code(),
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}
