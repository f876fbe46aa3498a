//! `[log]`: the log's format and level, and whether each request is logged.
//!
//! Checked here like every other section; `crate::logging` applies it.

use super::file::LogFile;
use std::path::PathBuf;

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
    /// The audit events alone, in a file that rotates by size (off by default).
    pub audit_file: Option<AuditFileSettings>,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings { format: LogFormat::Auto, level: DEFAULT_LEVEL.to_string(), access: false, audit_file: None }
    }
}

pub const DEFAULT_LEVEL: &str = "info";

/// Where and how big: `[log] audit_file`, `audit_max_size` (bytes), `audit_keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFileSettings {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub keep: u32,
}

/// The audit file's size before it rotates, and how many rotated files stay.
pub const DEFAULT_AUDIT_MAX_SIZE: u64 = 64 << 20;
pub const DEFAULT_AUDIT_KEEP: u32 = 10;

/// Checks `[log]`; on error, the offset of the value at fault and what to write instead.
pub fn compile(file: &LogFile) -> Result<LogSettings, (usize, String)> {
    let format = match &file.format {
        None => LogFormat::Auto,
        Some(t) => match t.get_ref().as_str() {
            "auto" => LogFormat::Auto,
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                let message = format!("log.format: `{other}` is not one of \"text\", \"json\" or \"auto\"");
                return Err((t.span().start, message));
            }
        },
    };
    let level = match &file.level {
        None => DEFAULT_LEVEL.to_string(),
        Some(t) => {
            let level = t.get_ref().trim();
            if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
                return Err((
                    t.span().start,
                    format!(
                        "log.level: `{level}` is not a level filter ({e}); write a level such as \"info\" or \
                         \"warn\", optionally with per-module levels: \"info,pingora=warn\""
                    ),
                ));
            }
            level.to_string()
        }
    };
    let audit_file = match &file.audit_file {
        None => None,
        Some(t) if t.get_ref().trim().is_empty() => {
            return Err((t.span().start, "log.audit_file: give a file path, or leave the key out".into()));
        }
        Some(t) => {
            let max_bytes = match &file.audit_max_size {
                None => DEFAULT_AUDIT_MAX_SIZE,
                Some(m) => size(m.get_ref()).ok_or_else(|| {
                    let message = format!(
                        "log.audit_max_size: `{}` is not a size such as \"64MiB\", \"500MB\" or \"1GiB\" (at least 1KiB)",
                        m.get_ref()
                    );
                    (m.span().start, message)
                })?,
            };
            let keep = match &file.audit_keep {
                None => DEFAULT_AUDIT_KEEP,
                Some(k) => u32::try_from(*k.get_ref()).ok().filter(|k| *k <= 1000).ok_or_else(|| {
                    (k.span().start, format!("log.audit_keep: {} is not a count of files from 0 to 1000", k.get_ref()))
                })?,
            };
            Some(AuditFileSettings { path: t.get_ref().trim().into(), max_bytes, keep })
        }
    };
    Ok(LogSettings { format, level, access: file.access.unwrap_or(false), audit_file })
}

/// `64MiB`, `500MB`, `1GiB`, `1048576`: a byte count of at least 1 KiB.
fn size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().ok()?;
    let unit: u64 = match t[digits..].trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit).filter(|b| *b >= 1024)
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size("64MiB"), Some(64 << 20));
        assert_eq!(size("500 MB"), Some(500_000_000));
        assert_eq!(size("1GiB"), Some(1 << 30));
        assert_eq!(size("4096"), Some(4096));
        for bad in ["", "MiB", "10", "1.5GiB", "-1MiB", "64 mebibytes", "99999999999999999999GiB"] {
            assert_eq!(size(bad), None, "{bad}");
        }
    }
}
