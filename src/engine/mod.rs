//! The jobs ivault runs. Each takes a description of what to do and a [`Context`] (where the
//! state lives, how targets and keys are found) and returns a report; faces (the command
//! line, a scheduler) only describe, call and present.

pub mod alert;
pub mod backup;
pub mod check;
mod context;
pub mod copy;
pub mod demo;
pub mod drill;
pub mod forget;
pub mod init;
pub mod keys;
pub(crate) mod parallel;
pub mod period;
pub mod prune;
pub mod reconcile;
pub mod repair;
pub mod restore;
pub mod snapshots;
pub mod status;
pub mod trace;

pub use crate::state::{default_dir as default_state_dir, STATE_DIR_ENV};
pub use context::Context;

/// The last `limit` jobs of the history, newest first.
pub fn jobs(ctx: &Context, limit: usize) -> crate::error::Result<Vec<crate::state::JobRow>> {
    ctx.state()?.jobs(limit)
}
