//! The HTTP API of API.md: handlers by area and their JSON views. Routes are
//! wired in `crate::startup`; authentication, limits and metrics are in
//! `crate::request`, shared with the pages and FHIR.

pub mod handlers;
pub mod views;

// Kept while branches written before the move are merged; new code names
// `crate::request`.
pub use crate::request::{auth, extract, limits, metrics, State};
