//! The jobs ivault runs against repositories.

pub mod backup;
pub mod check;
pub mod copy;
pub mod restore;
pub mod snapshots;
