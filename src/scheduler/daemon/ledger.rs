//! The daemon's ledger on the state database: last runs read as `ivault run` reads them,
//! starts in `schedule_runs`, skipped runs in `schedule_skips`.

use super::{Ledger, Skip};
use crate::error::Result;
use crate::scheduler::plan::{JobKind, LastRuns};
use crate::state::State;
use std::path::PathBuf;

/// Starts and skips recorded in the state database (opened for each record: they are rare,
/// and a job's own connections come and go the same way).
pub struct StateLedger {
    pub state_dir: PathBuf,
}

impl StateLedger {
    fn with<T>(&self, what: &str, f: impl FnOnce(&State) -> Result<T>) -> Option<T> {
        match State::open(&self.state_dir).and_then(|s| f(&s)) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("cannot {what} in the state database: {e}");
                None
            }
        }
    }
}

impl Ledger for StateLedger {
    fn last_runs(&self, source: &str) -> LastRuns {
        self.with("read the last runs", |s| {
            crate::scheduler::pass::last_runs(s, source)
        })
        .unwrap_or_default()
    }

    fn record_start(&self, source: &str, kind: JobKind, at: chrono::DateTime<chrono::Utc>) {
        self.with("record a start", |s| {
            s.record_schedule_run(source, kind.name(), &crate::scheduler::pass::stamp(at))
        });
    }

    fn record_skip(&self, skip: &Skip) {
        self.with("record a skipped run", |s| {
            s.record_schedule_skip(
                &skip.source,
                skip.kind.name(),
                &crate::scheduler::pass::stamp(skip.scheduled),
                &skip.reason(),
            )
        });
    }
}
