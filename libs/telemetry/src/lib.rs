//! Structured logging for every binary: `RUST_LOG` filters, `FRAMEOS_LOG_FORMAT=json` for
//! machine-readable lines in production.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FRAMEOS_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Logs go to stderr so that stdout stays for what a command prints for its user.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
