//! The audit record of an applied period restore: a row in the state database and a JSON file
//! under `audit/` in the state directory, saying when, who, on which host, from which
//! snapshot, for which period, after which backup, and what was written per table.

use super::diff::Figures;
use crate::error::{Error, Result};
use crate::state::{PeriodRestoreRow, State};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub time: String,
    pub user: String,
    pub host: String,
    pub source: String,
    pub live_path: String,
    pub target: String,
    pub snapshot_id: String,
    pub backup_snapshot_id: String,
    pub from: String,
    pub to: String,
    pub overwrite_changed: bool,
    pub inserted: BTreeMap<String, u64>,
    pub replaced: BTreeMap<String, u64>,
    pub snapshot_figures: Figures,
    pub live_figures_after: Figures,
}

/// The user running ivault: as the environment names them, else the account of the process's
/// user id, else that id.
pub(super) fn user() -> String {
    if let Some(u) = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    {
        return u;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(uid) = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
    else {
        return "unknown".into();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&uid))
        .and_then(|f| f.first().map(|n| n.to_string()))
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Records `r` in the state and as a JSON file; returns the record's id and the file.
pub(super) fn record(state: &State, state_dir: &Path, r: &AuditRecord) -> Result<(i64, PathBuf)> {
    let record = serde_json::to_string_pretty(r)
        .map_err(|e| Error::Internal(format!("cannot encode the audit record: {e}").into()))?;
    let counts = |m: &BTreeMap<String, u64>| serde_json::to_string(m).unwrap_or_default();
    let id = state.record_period_restore(&PeriodRestoreRow {
        time: r.time.clone(),
        user: r.user.clone(),
        host: r.host.clone(),
        source: r.source.clone(),
        target: r.target.clone(),
        snapshot_id: r.snapshot_id.clone(),
        backup_snapshot_id: r.backup_snapshot_id.clone(),
        period_from: r.from.clone(),
        period_to: r.to.clone(),
        inserted: counts(&r.inserted),
        replaced: counts(&r.replaced),
        record: record.clone(),
    })?;
    let dir = state_dir.join("audit");
    let stamp: String = r
        .time
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let name: String = r
        .source
        .rsplit('/')
        .next()
        .unwrap_or("source")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = dir.join(format!("{stamp}-{name}-{id}.json"));
    std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&file, record.as_bytes()))
        .map_err(|e| {
            Error::Destination(
                format!(
                    "the period restore was applied and recorded in the state (entry {id}), but its audit file {} could not be written: {e}",
                    file.display()
                )
                .into(),
            )
        })?;
    Ok((id, file))
}
