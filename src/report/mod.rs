//! Drill reports: the data ([`model`]) and its renderings for people and machines.

pub mod model;
