//! Where logs go and how they look: stderr, as JSON (one object per line) or as text, chosen
//! by `CROUPIER_LOG_FORMAT` (`json`, `text`; unset: text on a terminal, JSON otherwise), the
//! levels by `RUST_LOG`.
//!
//! Lines are written by a thread of their own: a slow reader of stderr (a pipe, journald)
//! never holds up a request. If it falls more than 128 Ki lines behind, lines are dropped
//! rather than the server slowed.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// The log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

impl Format {
    /// From `CROUPIER_LOG_FORMAT`; unset or empty: text on a terminal, JSON otherwise.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("CROUPIER_LOG_FORMAT").as_deref() {
            Ok("json") => Ok(Self::Json),
            Ok("text") => Ok(Self::Text),
            Ok("") | Err(_) if std::io::stderr().is_terminal() => Ok(Self::Text),
            Ok("") | Err(_) => Ok(Self::Json),
            Ok(other) => Err(format!(
                "CROUPIER_LOG_FORMAT must be json or text, not {other:?}"
            )),
        }
    }
}

/// Installs the process's log subscriber. Keep the guard until exit: dropping it writes out
/// what is still queued.
pub fn init(format: Format, default_level: &str) -> WorkerGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        // Colour only when a person reads stderr: a log file or a pipe gets plain text.
        Format::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    guard
}
