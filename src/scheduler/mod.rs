//! Scheduling backups, drills and retention from policies: [`plan`] decides what is due (a
//! pure function of schedules, last runs and the time), [`pass`] runs it (`ivault run`).

pub mod pass;
pub mod plan;
