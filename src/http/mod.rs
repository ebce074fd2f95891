//! The HTTP API of API.md: handlers by area and their JSON views. Routes are
//! wired in `crate::startup`; authentication, limits and metrics are in
//! `crate::request`, shared with the pages and FHIR.

pub mod handlers;
pub mod views;
