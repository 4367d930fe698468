//! Where logs go and how they look: stderr, as JSON (one object per line) or as text, chosen
//! by `CROUPIER_LOG_FORMAT` (`json`, `text`; unset: text on a terminal, JSON otherwise), the
//! levels by `RUST_LOG`.
//!
//! Each line is written to stderr by the thread that logs it, in one write: measured against
//! a writer thread of its own (`tracing-appender`), that costs the bet path less on a small
//! machine (no wake-up per line), and loses no line. Give stderr a reader that keeps up (a
//! file, journald).

use std::io::IsTerminal;

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

/// Installs the process's log subscriber.
pub fn init(format: Format, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
}
