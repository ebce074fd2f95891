//! Use cases shared by the HTTP API, the web pages and the command line:
//! each one combines the domain rules, the token core and the store, and
//! writes the access log. Nothing here knows about HTTP.

pub mod admins;
pub mod anchor;
mod audit;
mod context;
pub mod families;
pub mod federation;
pub mod housekeeping;
pub mod identify;
pub mod import;
pub mod keys;
pub mod kiosk;
pub mod lookup;
pub mod merges;
pub mod monitoring;
pub mod patients;
pub mod registry;
pub mod suite;
pub mod temporary;
pub mod verification;

pub use audit::{AuditWriter, LogEntry};
pub use context::{AppContext, Clock, StartupReport};
