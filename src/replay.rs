//! Policy-change replay: `portcullis decide --replay LOG.jsonl --config NEW.toml`
//! re-decides the requests a log recorded under another config and lists those
//! whose outcome would change.
//!
//! A recorded request is an audit `request_refused` event (every challenge and
//! deny) or an `access` event (every request, with `[log] access = true`). Each
//! carries what the decision saw: host, client address, user, the session's
//! level, and whether an entrance pass and a device certificate counted. The
//! new config decides from those, with its own networks, groups and apps (the
//! user's policy group is the new users file's), at the moment the line was
//! written (for `time(…)`, `weekday(…)` and `date(…)`). The log does not say
//! when a pass was issued: `entrance_pass_age` reads a counted pass as new.
//! Portal requests and lines of any other kind are skipped; a line that is
//! not JSON is counted as unreadable.

use crate::config::Config;
use crate::policy::expr::Facts;
use serde_json::{json, Value};
use std::io::BufRead;
use std::net::IpAddr;

/// What a replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Requests re-decided.
    pub decided: usize,
    /// One entry per request whose outcome changes.
    pub changed: Vec<Value>,
    /// Recorded requests the new config cannot decide (no app for the host, unknown user).
    pub undecidable: Vec<Value>,
    /// Lines that are not JSON objects.
    pub unreadable: usize,
}

/// Re-decides every recorded request in `log` under `config`. A log with
/// access events holds every request there, refused ones too: then only those
/// count, so that no request is decided twice.
pub fn replay(config: &Config, log: impl BufRead) -> std::io::Result<Replay> {
    let mut r = Replay::default();
    let (mut access, mut refused) = (Vec::new(), Vec::new());
    for line in log.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) if v.is_object() => match Recorded::from_event(&v) {
                Some(rec) if v["target"] == "access" => access.push((v, rec)),
                Some(rec) => refused.push((v, rec)),
                None => {}
            },
            _ => r.unreadable += 1,
        }
    }
    for (v, rec) in if access.is_empty() { refused } else { access } {
        match rec.decide(config) {
            Ok((action, rule)) => {
                r.decided += 1;
                if action != rec.action {
                    r.changed.push(json!({
                        "timestamp": v["timestamp"], "user": rec.user, "app": v["app"], "host": rec.host,
                        "path": v["path"], "client_ip": rec.client_ip.to_string(),
                        "old": rec.action, "new": action, "rule": rule,
                    }));
                }
            }
            Err(why) => r.undecidable.push(json!({"timestamp": v["timestamp"], "host": rec.host, "why": why})),
        }
    }
    Ok(r)
}

/// A request as a log line recorded it.
struct Recorded {
    host: String,
    client_ip: IpAddr,
    user: Option<String>,
    second_factor: bool,
    entrance_pass: bool,
    device_cert: bool,
    /// When the line was written (Unix seconds), if it says.
    at: Option<u64>,
    /// `forward`, `deny`, `challenge_login` or `challenge_second_factor`.
    action: String,
}

impl Recorded {
    fn from_event(v: &Value) -> Option<Recorded> {
        let recorded = match v["target"].as_str()? {
            "audit" => v["event"] == "request_refused",
            "access" => v["decision"] != "portal",
            _ => false,
        };
        if !recorded {
            return None;
        }
        let str_of = |k: &str| v[k].as_str().map(str::to_string);
        Some(Recorded {
            host: str_of("host")?,
            client_ip: v["client_ip"].as_str()?.parse().ok()?,
            user: str_of("user"),
            second_factor: v["level"] == "both_factors",
            entrance_pass: v["entrance_pass"].as_bool().unwrap_or(false),
            device_cert: v["device_cert"].as_bool().unwrap_or(false),
            at: v["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .and_then(|t| u64::try_from(t.as_second()).ok()),
            action: str_of("action")?,
        })
    }

    /// The new config's action and rule for this request.
    fn decide(&self, c: &Config) -> Result<(String, String), String> {
        let now = self.at.unwrap_or_else(|| crate::clock::Clock::now(&crate::clock::SystemClock));
        let facts = Facts {
            networks: c.networks.lookup(self.client_ip),
            device_cert: self.device_cert,
            now,
            ..Facts::default()
        };
        let facts = facts.with_pass(self.entrance_pass.then_some(now));
        let v = crate::cli::simulate(c, &self.host, facts, self.user.as_deref(), self.second_factor)?;
        let action = v["action"].as_str().unwrap_or_default().to_string();
        Ok((action, v["rule"].as_str().unwrap_or_default().to_string()))
    }
}
