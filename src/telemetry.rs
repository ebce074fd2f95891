//! Logging with `tracing`: human-readable or JSON lines on standard error.
//! Log lines carry route patterns, ids and outcomes, never ID numbers, names,
//! credentials or keys.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once. `RUST_LOG` overrides `default_filter`.
pub fn init(default_filter: &str, json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colours only for a person at a terminal: a log file or journal gets
    // plain text, without escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}
