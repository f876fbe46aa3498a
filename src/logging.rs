//! The log: human-readable text on a terminal, JSON lines otherwise
//! (`[log] format`), filtered by `[log] level` (or `RUST_LOG`, which wins).
//!
//! Three kinds of events, told apart by their target:
//! - `audit`: the audit trail, one event per login step, lockout, unlock,
//!   revocation, reload, admin call and refused request, with an `event` field
//!   naming what happened (see [`audit!`](crate::audit)). Always written.
//! - `access`: one event per request when `[log] access = true`.
//! - everything else (`portcullis::…`, `pingora…`): operational messages.
//!
//! Pingora and rustls log through the `log` crate; those records are bridged in.
//! The filter and the format are swapped on a config reload.

pub mod audit_file;

use crate::config::logs::{LogFormat, LogSettings};
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

/// Writes an audit event: `audit!("unlock", user = %name)`. The first
/// argument becomes the `event` field; the rest are `tracing` fields.
#[macro_export]
macro_rules! audit {
    ($event:expr $(, $($fields:tt)*)?) => {
        ::tracing::info!(target: "audit", event = $event $(, $($fields)*)?)
    };
}

type Filtered = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type Writer = Box<dyn Layer<Filtered> + Send + Sync>;

struct Handles {
    filter: reload::Handle<EnvFilter, Registry>,
    writer: reload::Handle<Writer, Filtered>,
    applied: Mutex<Option<LogSettings>>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Installs the log with `settings` (the defaults before a config is read).
/// Later calls change nothing; use [`apply`].
pub fn init(settings: &LogSettings) {
    let (filter, filter_handle) = reload::Layer::new(filter(settings));
    let (writer, writer_handle) = reload::Layer::new(writer(settings.format));
    // `try_init` also routes `log` records (Pingora's, rustls's) here.
    // The filter always lets audit events through, so the audit file sees them all.
    let installed =
        tracing_subscriber::registry().with(filter).with(writer).with(audit_file::AuditFileLayer).try_init();
    if installed.is_ok() {
        let handles =
            Handles { filter: filter_handle, writer: writer_handle, applied: Mutex::new(Some(settings.clone())) };
        let _ = HANDLES.set(handles);
        log::set_max_level(max_level());
    }
}

/// Switches to `settings` (at start with the config's `[log]`, and at each
/// reload). Does nothing when they are the ones in use.
pub fn apply(settings: &LogSettings) {
    if let Err(e) = audit_file::set(settings.audit_file.as_ref()) {
        tracing::error!("{e}; the audit file stays as it was");
    }
    let Some(h) = HANDLES.get() else { return init(settings) };
    let mut applied = h.applied.lock().unwrap_or_else(|e| e.into_inner());
    if applied.as_ref() == Some(settings) {
        return;
    }
    let format_changed = applied.as_ref().is_none_or(|a| a.format != settings.format);
    if h.filter.reload(filter(settings)).is_err()
        || (format_changed && h.writer.reload(writer(settings.format)).is_err())
    {
        return;
    }
    *applied = Some(settings.clone());
    log::set_max_level(max_level());
}

/// `RUST_LOG` when set, else `[log] level`; audit and access events pass whatever it says.
fn filter(settings: &LogSettings) -> EnvFilter {
    let level = std::env::var("RUST_LOG").ok().filter(|l| !l.trim().is_empty());
    let level = level.as_deref().unwrap_or(&settings.level);
    let directives = format!("{level},audit=info,access=info");
    EnvFilter::builder().parse(&directives).unwrap_or_else(|_| {
        // `RUST_LOG` is not checked like the config: fall back rather than log nothing.
        EnvFilter::new(format!("{},audit=info,access=info", crate::config::logs::DEFAULT_LEVEL))
    })
}

fn writer(format: LogFormat) -> Writer {
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Auto => !terminal,
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let layer = fmt::layer().with_writer(std::io::stderr);
    if json {
        layer.json().flatten_event(true).with_current_span(false).with_span_list(false).boxed()
    } else {
        layer.with_ansi(terminal).boxed()
    }
}

/// The most verbose level any directive lets through, for `log` records'
/// cheap first check (rustls logs at trace level in every handshake).
fn max_level() -> log::LevelFilter {
    match tracing::level_filters::LevelFilter::current() {
        tracing::level_filters::LevelFilter::OFF => log::LevelFilter::Off,
        tracing::level_filters::LevelFilter::ERROR => log::LevelFilter::Error,
        tracing::level_filters::LevelFilter::WARN => log::LevelFilter::Warn,
        tracing::level_filters::LevelFilter::INFO => log::LevelFilter::Info,
        tracing::level_filters::LevelFilter::DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Shows a value by its serde spelling (`not_me`, not `NotMe`), as the JSON
/// API writes it: `audit!("push_answered", outcome = %SerdeName(&outcome))`.
pub struct SerdeName<'a, T>(pub &'a T);

impl<T: serde::Serialize> std::fmt::Display for SerdeName<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self.0) {
            Ok(serde_json::Value::String(s)) => f.write_str(&s),
            Ok(other) => write!(f, "{other}"),
            Err(_) => f.write_str("?"),
        }
    }
}
