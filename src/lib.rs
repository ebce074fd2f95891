//! healthcard: the unified electronic health card service.
//!
//! - [`crypto`]: master key, sealing, blind indexes, secrets, passwords.
//! - [`token`]: EHC1 tokens (COSE_Sign1 + CWT + base45), signing keys, JWKS, QR.
//! - [`domain`]: national ID numbers, names, card lifecycle — parsed types.
//! - [`store`]: diesel on SQLite or PostgreSQL, one module per table.

pub mod crypto;
pub mod domain;
pub mod store;
