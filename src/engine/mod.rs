//! The jobs ivault runs against repositories.

pub mod backup;
pub mod check;
pub mod restore;
pub mod snapshots;
