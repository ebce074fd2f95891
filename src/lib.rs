//! healthcard: the unified electronic health card service.
//!
//! - [`crypto`]: master key, sealing, blind indexes, secrets, passwords.
//! - [`token`]: EHC1 tokens (COSE_Sign1 + CWT + base45), signing keys, JWKS, QR.
//! - [`domain`]: national ID numbers, names, card lifecycle — parsed types.
//! - [`store`]: diesel on SQLite or PostgreSQL, one module per table.
//! - [`service`]: use cases shared by the API, the pages and the CLI.
//! - [`http`], [`web`], [`fhir`], [`startup`]: the HTTP API, the pages, the FHIR
//!   facade and their wiring.
//! - [`proxy`]: the client's address, scheme and host, believed only from trusted proxies.
//! - [`cli`]: the `healthcard` command line.

#![forbid(unsafe_code)]
// Items the crate does not export say so (`pub(crate)`): what is `pub` is the
// surface tests and other crates may use.
#![warn(unreachable_pub)]

pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod fhir;
pub mod http;
pub mod proxy;
pub mod request;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod web;
