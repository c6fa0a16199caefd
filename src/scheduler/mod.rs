//! Scheduling backups, drills and retention from policies: [`plan`] decides what is due (a
//! pure function of schedules, last runs and the time), [`pass`] runs it (`ivault run`, and
//! one job at a time for the daemon), [`daemon`] decides when each job starts in `ivault
//! daemon` (with an injected clock, so tests run a simulated week in milliseconds).

pub mod daemon;
pub mod pass;
pub mod plan;
