//! `[log]`: the log's format and level, and whether each request is logged.
//!
//! Checked here like every other section; `crate::logging` applies it.

use super::file::{LogFile, Text};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Text when standard error is a terminal, JSON lines otherwise.
    #[default]
    Auto,
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// `[log]` as the running process reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A filter such as `info` or `warn,portcullis=debug` (`RUST_LOG` syntax).
    /// The audit trail is written whatever it says.
    pub level: String,
    /// One `access` event per request (off by default).
    pub access: bool,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings { format: LogFormat::Auto, level: DEFAULT_LEVEL.to_string(), access: false }
    }
}

pub const DEFAULT_LEVEL: &str = "info";

/// Checks `[log]`; on error, the value at fault and what to write instead.
pub fn compile(file: &LogFile) -> Result<LogSettings, (&Text, String)> {
    let format = match &file.format {
        None => LogFormat::Auto,
        Some(t) => match t.get_ref().as_str() {
            "auto" => LogFormat::Auto,
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err((t, format!("log.format: `{other}` is not one of \"text\", \"json\" or \"auto\"")));
            }
        },
    };
    let level = match &file.level {
        None => DEFAULT_LEVEL.to_string(),
        Some(t) => {
            let level = t.get_ref().trim();
            if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
                return Err((
                    t,
                    format!(
                        "log.level: `{level}` is not a level filter ({e}); write a level such as \"info\" or \
                         \"warn\", optionally with per-module levels: \"info,pingora=warn\""
                    ),
                ));
            }
            level.to_string()
        }
    };
    Ok(LogSettings { format, level, access: file.access.unwrap_or(false) })
}
