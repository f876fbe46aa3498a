//! The audit file (`[log] audit_file`): the `audit` events alone, one JSON
//! object per line, in a file of their own that rotates by size
//! (`audit.jsonl` → `audit.jsonl.1` → … → `audit.jsonl.<keep>`, the oldest
//! dropped). Written whatever the log's level and format; mode 0600, as the
//! lines name users and addresses (never a secret).
//!
//! Installed as a `tracing` layer once; the file it writes to follows the
//! config ([`set`], at start and at each reload).

pub use crate::config::logs::AuditFileSettings;
use arc_swap::ArcSwapOption;
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

struct Open {
    settings: AuditFileSettings,
    file: Mutex<Option<(File, u64)>>,
}

static CURRENT: ArcSwapOption<Open> = ArcSwapOption::const_empty();

/// Writes audit events to `settings`' file from now on (`None`: to no file).
/// Checks that the file can be opened, so a bad path is said at start or reload.
pub fn set(settings: Option<&AuditFileSettings>) -> Result<(), String> {
    if CURRENT.load().as_ref().map(|o| &o.settings) == settings {
        return Ok(());
    }
    let next = match settings {
        None => None,
        Some(s) => {
            let file = open(s).map_err(|e| format!("log.audit_file: cannot open `{}`: {e}", s.path.display()))?;
            Some(Arc::new(Open { settings: s.clone(), file: Mutex::new(Some(file)) }))
        }
    };
    CURRENT.store(next);
    Ok(())
}

fn open(s: &AuditFileSettings) -> std::io::Result<(File, u64)> {
    if let Some(dir) = s.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let file = o.open(&s.path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// `audit.jsonl` → `.1`, `.1` → `.2`, …; the one past `keep` is dropped.
fn rotate(s: &AuditFileSettings) -> std::io::Result<()> {
    let numbered = |n: u32| {
        let mut p = s.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    let _ = std::fs::remove_file(numbered(s.keep));
    for n in (1..s.keep).rev() {
        let _ = std::fs::rename(numbered(n), numbered(n + 1));
    }
    if s.keep == 0 {
        std::fs::remove_file(&s.path)
    } else {
        std::fs::rename(&s.path, numbered(1))
    }
}

impl Open {
    fn write(&self, line: &[u8]) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_some_and(|(_, len)| *len > 0 && len + line.len() as u64 > self.settings.max_bytes) {
            *guard = None;
            if let Err(e) = rotate(&self.settings) {
                eprintln!("audit file `{}`: cannot rotate: {e}", self.settings.path.display());
            }
        }
        if guard.is_none() {
            match open(&self.settings) {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    eprintln!("audit file `{}`: cannot open: {e}", self.settings.path.display());
                    return;
                }
            }
        }
        if let Some((file, len)) = guard.as_mut() {
            match file.write_all(line) {
                Ok(()) => *len += line.len() as u64,
                Err(e) => {
                    eprintln!("audit file `{}`: cannot write: {e}", self.settings.path.display());
                    *guard = None;
                }
            }
        }
    }
}

/// The layer: every `audit` event, as a JSON line, to the current file.
pub struct AuditFileLayer;

impl<S: Subscriber> Layer<S> for AuditFileLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "audit" {
            return;
        }
        let Some(open) = CURRENT.load_full() else { return };
        let mut fields = Fields(Map::new());
        let now = time::OffsetDateTime::now_utc();
        let ts = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        fields.0.insert("timestamp".into(), Value::String(ts));
        fields.0.insert("level".into(), Value::String(event.metadata().level().to_string()));
        event.record(&mut fields);
        fields.0.insert("target".into(), Value::String("audit".into()));
        let mut line = serde_json::to_vec(&fields.0).unwrap_or_default();
        line.push(b'\n');
        open.write(&line);
    }
}

struct Fields(Map<String, Value>);

/// The key a field is written under: its name.
fn key(field: &Field) -> String {
    field.name().into()
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(key(field), Value::String(value.into()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(key(field), Value::Bool(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(key(field), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(key(field), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(key(field), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_as_many_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let s = AuditFileSettings { path: dir.path().join("audit.jsonl"), max_bytes: 100, keep: 2 };
        let open = Open { settings: s.clone(), file: Mutex::new(None) };
        let line = |n: usize| format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(30)).into_bytes();
        for n in 0..10 {
            open.write(&line(n));
        }
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap_or_default();
        // 40-byte lines, 100 bytes a file: two lines each; the newest file has the last lines.
        assert_eq!(read("audit.jsonl").lines().count(), 2);
        assert!(read("audit.jsonl").contains("\"n\":9"));
        assert!(read("audit.jsonl.1").contains("\"n\":7"));
        assert!(read("audit.jsonl.2").contains("\"n\":5"));
        assert!(!dir.path().join("audit.jsonl.3").exists(), "only `keep` old files");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("audit.jsonl")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
