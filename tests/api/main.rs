//! Black-box API tests: the real app on a random port, on SQLite and on
//! PostgreSQL, driven over HTTP as a clinic, an administrator or a holder would.

#[path = "../common/mod.rs"]
mod common;

mod helpers;

mod admins;
mod audit_cli;
mod bad_input;
mod cards;
mod cli;
mod documents;
mod families;
mod federation;
mod fhir;
mod identify;
mod keys;
mod links;
mod merges;
mod multinode;
mod ops;
mod portal_import;
mod privacy;
mod stats;
mod temporary;
mod verify;
