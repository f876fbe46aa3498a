//! `POST /audit`: the audit file's lines (`[log] audit_file`), newest first,
//! filtered — for the console's audit page and `portcullis admin audit`.
//!
//! The work is bounded whatever the file's size: only the last
//! [`MAX_SCAN`] bytes are read, across the current file and, when it is
//! short (just rotated), the rotated ones (`<file>.1`, `<file>.2`, …),
//! on a blocking thread. Lines that are not JSON objects (a line being
//! written, a hand edit) are skipped.
//!
//! Body (all optional): `{"event", "actor", "action", "target", "result",
//! "since": unix secs, "limit": 1..=1000 (200)}`. Each text filter matches a
//! field exactly (any ASCII case):
//! - `actor`: who acted — the line's `actor` (`token:admin`, an
//!   administrator); a line without one (a login step, a failed factor) is
//!   the user's own doing, so its `user`;
//! - `target`: whom it was about — the line's `user` (the user an admin act
//!   was on, or whose login step it is), or a certificate's `serial`;
//! - `action`: an admin act's `action` (`unlock`, `revoke_totp`, …), or the
//!   route an `admin_call` line names (`unlock` matches `path` `/unlock`);
//! - `result`: `result`, a login step's `outcome`, or an `admin_call`'s `status`.
//!
//! Each entry is the line as written, plus `at` (its time in Unix seconds),
//! without the file's constant `target: "audit"`. The file holds no secret
//! (the audit events carry none), so nothing needs removing.

use super::reply::{reply, AdminReply};
use crate::config::logs::AuditFileSettings;
use crate::config::Config;
use serde_json::{json, Map, Value};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this many bytes are read per call, over all files.
pub const MAX_SCAN: u64 = 4 << 20;
pub const DEFAULT_LIMIT: usize = 200;
pub const MAX_LIMIT: usize = 1000;
/// Longer lines are skipped unread (no audit event is near this size).
const MAX_LINE: usize = 64 << 10;

/// What a caller asked for.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub event: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub result: Option<String>,
    pub since: Option<u64>,
    pub limit: usize,
}

/// The matching entries, newest first.
#[derive(Debug, Default)]
pub struct Found {
    pub entries: Vec<Value>,
    /// `limit` entries were found: older ones may match too.
    pub truncated: bool,
    /// The bounded read stopped before the oldest line: older lines were not looked at.
    pub older_unread: bool,
}

pub async fn handle(cfg: &Config, body: &[u8]) -> AdminReply {
    let Some(settings) = cfg.log.audit_file.clone() else {
        return reply(
            409,
            json!({"error": "not_configured", "message": "there is no audit file to read: set [log] audit_file in the config (e.g. \"/var/log/portcullis/audit.jsonl\") and reload"}),
        );
    };
    let filter = match Filter::parse(body) {
        Ok(f) => f,
        Err(message) => return reply(400, json!({"error": "bad_request", "message": message})),
    };
    let path = settings.path.clone();
    match tokio::task::spawn_blocking(move || read(&settings, &filter, MAX_SCAN)).await {
        Ok(Ok(found)) => reply(
            200,
            json!({"entries": found.entries, "truncated": found.truncated, "older_unread": found.older_unread}),
        ),
        Ok(Err(e)) => reply(
            503,
            json!({"error": "unreadable", "message": format!("cannot read the audit file `{}`: {e}", path.display())}),
        ),
        Err(_) => reply(500, json!({"error": "internal"})),
    }
}

impl Filter {
    /// Reads a body; an empty one asks for the newest [`DEFAULT_LIMIT`] lines.
    pub fn parse(body: &[u8]) -> Result<Filter, String> {
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?
        };
        let Some(o) = v.as_object() else { return Err("send a JSON object of filters".into()) };
        const KNOWN: [&str; 7] = ["event", "actor", "action", "target", "result", "since", "limit"];
        if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            let k: String = k.chars().take(40).collect();
            return Err(format!("unknown filter `{k}`; the filters are {}", KNOWN.join(", ")));
        }
        let text = |k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.len() <= 256 => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
                Some(_) => Err(format!("`{k}` must be a string of at most 256 bytes")),
            }
        };
        let number = |k: &str| -> Result<Option<u64>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("`{k}` must be a whole number")),
            }
        };
        let limit = match number("limit")? {
            None => DEFAULT_LIMIT,
            Some(n @ 1..) if n <= MAX_LIMIT as u64 => n as usize,
            Some(_) => return Err(format!("`limit` must be between 1 and {MAX_LIMIT}")),
        };
        Ok(Filter {
            event: text("event")?,
            actor: text("actor")?,
            action: text("action")?,
            target: text("target")?,
            result: text("result")?,
            since: number("since")?,
            limit,
        })
    }

    fn matches(&self, line: &Map<String, Value>) -> bool {
        let field = |k: &str| line.get(k).and_then(Value::as_str);
        let is = |want: &Option<String>, have: &[Option<&str>]| {
            want.as_deref().is_none_or(|w| have.iter().flatten().any(|h| h.eq_ignore_ascii_case(w)))
        };
        let route = field("path").filter(|_| field("event") == Some("admin_call")).map(|p| p.trim_start_matches('/'));
        let status = line.get("status").and_then(Value::as_u64).map(|s| s.to_string());
        let actor = field("actor").or(field("user"));
        is(&self.event, &[field("event")])
            && is(&self.actor, &[actor])
            && is(&self.target, &[field("user"), field("serial")])
            && is(&self.action, &[field("action"), route])
            && is(&self.result, &[field("result"), field("outcome"), status.as_deref()])
    }
}

/// The audit file `s` and its rotated copies, newest first.
fn files(s: &AuditFileSettings) -> impl Iterator<Item = PathBuf> + '_ {
    let numbered = |n: u32| {
        let mut p = s.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    std::iter::once(s.path.clone()).chain((1..=s.keep).map(numbered))
}

/// The entries of `s`'s files that `f` keeps, newest first, reading at most
/// `budget` bytes.
pub fn read(s: &AuditFileSettings, f: &Filter, budget: u64) -> std::io::Result<Found> {
    let mut found = Found::default();
    let mut left = budget;
    for (n, path) in files(s).enumerate() {
        let Some((chunk, whole)) = tail(&path, left)? else {
            // The current file is missing for a moment after a rotation; a
            // missing rotated one means there are no older ones.
            if n == 0 {
                continue;
            }
            break;
        };
        left -= chunk.len() as u64;
        for line in chunk.split(|&b| b == b'\n').rev() {
            let Some(mut line) = parse(line) else { continue };
            let at = line.get("timestamp").and_then(Value::as_str).and_then(unix_secs);
            if let (Some(since), Some(at)) = (f.since, at) {
                if at < since {
                    // Lines are in time order: every older one is older still.
                    return Ok(found);
                }
            }
            if !f.matches(&line) {
                continue;
            }
            if found.entries.len() == f.limit {
                found.truncated = true;
                return Ok(found);
            }
            shape(&mut line, at);
            found.entries.push(Value::Object(line));
        }
        if !whole || left == 0 {
            found.older_unread = true;
            break;
        }
    }
    Ok(found)
}

/// The last `budget` bytes of `path` from a line's start, and whether that
/// is the whole file; `None` when there is no such file.
fn tail(path: &Path, budget: u64) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(budget);
    file.seek(SeekFrom::Start(start))?;
    let mut chunk = Vec::with_capacity((len - start) as usize);
    // Lines appended meanwhile are for the next read.
    file.take(len - start).read_to_end(&mut chunk)?;
    if start > 0 {
        // Begun mid-line: that line is not whole.
        let first = chunk.iter().position(|&b| b == b'\n').map_or(chunk.len(), |i| i + 1);
        chunk.drain(..first);
    }
    Ok(Some((chunk, start == 0)))
}

/// One line as a JSON object, or `None` (empty, too long, not an object).
fn parse(line: &[u8]) -> Option<Map<String, Value>> {
    if line.is_empty() || line.len() > MAX_LINE {
        return None;
    }
    match serde_json::from_slice(line) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// An entry as the API gives it: `at`, without the file's constant `target: "audit"`.
fn shape(line: &mut Map<String, Value>, at: Option<u64>) {
    line.remove("target");
    line.insert("at".into(), at.map_or(Value::Null, Value::from));
}

fn unix_secs(rfc3339: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// `portcullis admin audit`: one line per entry, newest first:
/// `<time> <event> key=value …` with the fields people read first, then the rest.
pub fn run_cli(addr: std::net::SocketAddr, token: &str, filter: Value) -> Result<i32, String> {
    let (status, text) = super::client::request(addr, "POST", "/audit", token, &filter.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|_| format!("the admin API answered {status}: {text}"))?;
    if !(200..300).contains(&status) {
        eprintln!("{}", v["message"].as_str().unwrap_or(&text));
        return Ok(1);
    }
    let entries = v["entries"].as_array().cloned().unwrap_or_default();
    for e in &entries {
        println!("{}", cli_line(e));
    }
    if entries.is_empty() {
        eprintln!("no audit lines match");
    }
    if v["truncated"] == true {
        eprintln!("(the newest {} matching lines; narrow the filters or raise --limit for older ones)", entries.len());
    }
    if v["older_unread"] == true {
        eprintln!("(only the newest {} MiB of the audit file were searched)", MAX_SCAN >> 20);
    }
    Ok(0)
}

/// One entry for a terminal: time and event, the fields people read first, then the rest.
fn cli_line(e: &Value) -> String {
    const FIRST: [&str; 7] = ["actor", "role", "action", "user", "serial", "result", "from"];
    const LEFT_OUT: [&str; 4] = ["timestamp", "event", "level", "at"];
    let Some(o) = e.as_object() else { return String::new() };
    let mut line = format!("{} {}", e["timestamp"].as_str().unwrap_or("-"), e["event"].as_str().unwrap_or("-"));
    let rest = o.keys().filter(|k| !FIRST.contains(&k.as_str()) && !LEFT_OUT.contains(&k.as_str()));
    for k in FIRST.iter().copied().chain(rest.map(String::as_str)) {
        match o.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => line.push_str(&format!(" {k}={s}")),
            Some(other) => line.push_str(&format!(" {k}={other}")),
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(n: u64, actor: &str, action: &str, on: &str) -> String {
        let ts = time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + n as i64)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        json!({"timestamp": ts, "level": "INFO", "event": "admin_action", "actor": actor, "role": "token",
               "action": action, "user": on, "result": "unlocked", "n": n, "target": "audit"})
        .to_string()
            + "\n"
    }

    fn settings(dir: &Path) -> AuditFileSettings {
        AuditFileSettings { path: dir.join("audit.jsonl"), max_bytes: 1 << 20, keep: 3 }
    }

    fn ns(found: &Found) -> Vec<u64> {
        found.entries.iter().map(|e| e["n"].as_u64().unwrap()).collect()
    }

    fn all() -> Filter {
        Filter { limit: DEFAULT_LIMIT, ..Filter::default() }
    }

    #[test]
    fn reads_newest_first_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        std::fs::write(dir.path().join("audit.jsonl.2"), line(1, "a", "unlock", "x") + &line(2, "a", "unlock", "x"))
            .unwrap();
        std::fs::write(dir.path().join("audit.jsonl.1"), line(3, "a", "unlock", "x")).unwrap();
        std::fs::write(&s.path, line(4, "a", "unlock", "x") + &line(5, "b", "sign_out_everywhere", "y")).unwrap();
        let found = read(&s, &all(), MAX_SCAN).unwrap();
        assert_eq!(ns(&found), [5, 4, 3, 2, 1]);
        assert!(!found.truncated && !found.older_unread);
        let e = &found.entries[0];
        assert_eq!((e["user"].as_str(), e["at"].as_u64()), (Some("y"), Some(1_700_000_005)), "{e}");
        assert!(e.get("target").is_none());

        // The current file gone for a moment after a rotation: the older ones still count.
        std::fs::remove_file(&s.path).unwrap();
        assert_eq!(ns(&read(&s, &all(), MAX_SCAN).unwrap()), [3, 2, 1]);
    }

    #[test]
    fn a_partial_last_line_and_lines_not_json_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let mut f = std::fs::File::create(&s.path).unwrap();
        write!(f, "{}not json\n[1,2]\n\n{}", line(1, "a", "unlock", "x"), line(2, "a", "unlock", "x")).unwrap();
        // A line being written: no newline yet, cut mid-object.
        let partial = line(3, "a", "unlock", "x");
        f.write_all(&partial.as_bytes()[..partial.len() / 2]).unwrap();
        assert_eq!(ns(&read(&s, &all(), MAX_SCAN).unwrap()), [2, 1]);
    }

    #[test]
    fn the_read_is_bounded_and_starts_at_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let text: String = (1..=10).map(|n| line(n, "a", "unlock", "x")).collect();
        let one = line(10, "a", "unlock", "x").len() as u64;
        std::fs::write(&s.path, &text).unwrap();
        std::fs::write(dir.path().join("audit.jsonl.1"), line(0, "a", "unlock", "x")).unwrap();
        // Two and a half lines' worth: the half line is dropped, and `.1` is not read.
        let found = read(&s, &all(), one * 5 / 2).unwrap();
        assert_eq!(ns(&found), [10, 9]);
        assert!(found.older_unread);
    }

    #[test]
    fn filters_limit_and_since() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let mut text: String =
            (1..=6).map(|n| line(n, if n % 2 == 0 { "Alice" } else { "bob" }, "unlock", "carol")).collect();
        text += &(json!({"timestamp": "2023-11-14T22:13:27Z", "event": "login_step", "user": "carol", "outcome": "wrong_credentials", "n": 7}).to_string() + "\n");
        text += &(json!({"timestamp": "2023-11-14T22:13:28Z", "event": "admin_call", "actor": "token:admin", "path": "/unlock", "status": 200, "n": 8}).to_string() + "\n");
        std::fs::write(&s.path, text).unwrap();
        let with = |f: Filter| ns(&read(&s, &f, MAX_SCAN).unwrap());
        assert_eq!(with(Filter { actor: Some("alice".into()), ..all() }), [6, 4, 2], "any ASCII case");
        assert_eq!(with(Filter { actor: Some("carol".into()), ..all() }), [7], "a login step is the user's own act");
        assert_eq!(with(Filter { target: Some("carol".into()), limit: 3, ..all() }), [7, 6, 5]);
        assert_eq!(with(Filter { action: Some("unlock".into()), event: Some("admin_call".into()), ..all() }), [8]);
        assert_eq!(with(Filter { result: Some("200".into()), ..all() }), [8]);
        assert_eq!(with(Filter { result: Some("wrong_credentials".into()), ..all() }), [7]);
        assert_eq!(with(Filter { since: Some(1_700_000_005), ..all() }), [8, 7, 6, 5]);
        let found = read(&s, &Filter { limit: 2, ..all() }, MAX_SCAN).unwrap();
        assert_eq!((ns(&found), found.truncated), (vec![8, 7], true));
    }

    #[test]
    fn a_cli_line_puts_who_did_what_first() {
        let e = json!({"timestamp": "2026-01-01T00:00:00Z", "event": "admin_action", "level": "INFO", "at": 1,
                       "result": "unlocked", "user": "alice", "actor": "token:admin", "action": "unlock", "extra": 5});
        assert_eq!(
            cli_line(&e),
            "2026-01-01T00:00:00Z admin_action actor=token:admin action=unlock user=alice result=unlocked extra=5"
        );
    }

    #[test]
    fn bodies_are_checked() {
        assert_eq!(Filter::parse(b"").unwrap().limit, DEFAULT_LIMIT);
        let f = Filter::parse(br#"{"actor": " alice ", "limit": 5, "since": 10, "target": ""}"#).unwrap();
        assert_eq!((f.actor.as_deref(), f.limit, f.since, f.target), (Some("alice"), 5, Some(10), None));
        for bad in [
            &br#"{"limit": 0}"#[..],
            br#"{"limit": 1001}"#,
            br#"{"limit": "5"}"#,
            br#"{"since": -1}"#,
            br#"{"actor": 5}"#,
            br#"{"who": "x"}"#,
            b"[]",
            b"{",
        ] {
            assert!(Filter::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
