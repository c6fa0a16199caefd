//! Scheduling backups, drills and retention from policies: [`plan`] decides what is due.

pub mod plan;
