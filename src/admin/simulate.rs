//! `POST /decide`: what the policy would do for a request, asked of the
//! running instance's loaded config — the answer of `portcullis decide`
//! (`cli::simulate`), for the console's policy page and for scripts.
//! It reads the config alone and changes nothing, so no confirmation.
//!
//! Body: `{"host": "wiki.example", "address": "10.1.2.3", "user"?: "alice",
//! "second_factor"?: bool, "entrance_pass"?: bool, "device_cert"?: bool,
//! "at"?: "2026-12-07T21:00:00+09:00", "entrance_pass_age"?: "40d"}`.
//! The two facts a cookie or a certificate would give are stated, as with
//! `decide --entrance-pass` / `--device-cert`; `at` and `entrance_pass_age`
//! are `decide --at` / `--pass-age` (default: now, a pass just issued).

use super::reply::{reply, AdminReply};
use crate::config::Config;
use crate::policy::expr::Facts;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::IpAddr;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Question {
    host: String,
    address: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    second_factor: bool,
    #[serde(default)]
    entrance_pass: bool,
    #[serde(default)]
    device_cert: bool,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    entrance_pass_age: Option<String>,
}

fn bad(error: &str, message: String) -> AdminReply {
    reply(400, json!({"error": error, "message": message}))
}

pub fn handle(cfg: &Config, body: &[u8]) -> AdminReply {
    let q: Question = match serde_json::from_slice(body) {
        Ok(q) => q,
        Err(e) => {
            let message = format!(
                "{e}; send {{\"host\": \"wiki.example\", \"address\": \"10.1.2.3\"}} and optionally \"user\", \
                 \"second_factor\", \"entrance_pass\", \"device_cert\", \"at\", \"entrance_pass_age\""
            );
            return bad("bad_request", message);
        }
    };
    match answer(cfg, &q) {
        Ok(v) => reply(200, v),
        Err((error, message)) => bad(error, message),
    }
}

/// The decision for `q`, or (error code, message) for a question that names
/// no address, no app or no user.
fn answer(cfg: &Config, q: &Question) -> Result<Value, (&'static str, String)> {
    let address = q.address.trim();
    let ip: IpAddr = address.parse().map_err(|_| {
        ("bad_address", format!("`{}` is not an IP address (e.g. 10.1.2.3 or 2001:db8::1)", shown(address)))
    })?;
    // `host:port` as a Host header has it; the proxy looks up the name alone.
    let host = q.host.trim();
    let host = crate::config::hosts::strip_port(host).unwrap_or(host);
    if cfg.hosts.lookup(host).is_none() {
        return Err(("unknown_host", format!("no app serves host `{}`", shown(host))));
    }
    let user = q.user.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if let Some(u) = user.filter(|u| cfg.users.get(u).is_none()) {
        return Err(("unknown_user", format!("no user named `{}` in the users file", shown(u))));
    }
    if q.second_factor && user.is_none() {
        return Err(("bad_request", "second_factor needs a user (a session has one)".into()));
    }
    let now = match q.at.as_deref() {
        Some(t) => {
            t.trim().parse::<jiff::Timestamp>().ok().and_then(|t| u64::try_from(t.as_second()).ok()).ok_or_else(
                || ("bad_time", format!("`{}` is not a time such as 2026-12-07T21:00:00+09:00 (RFC 3339)", shown(t))),
            )?
        }
        None => crate::clock::Clock::now(&crate::clock::SystemClock),
    };
    let age = match q.entrance_pass_age.as_deref() {
        Some(a) if q.entrance_pass => crate::config::duration::parse(a).map_err(|e| ("bad_age", e))?.as_secs(),
        Some(_) => return Err(("bad_request", "entrance_pass_age needs entrance_pass".into())),
        None => 0,
    };
    let facts = Facts { networks: cfg.networks.lookup(ip), device_cert: q.device_cert, now, ..Facts::default() };
    let facts = facts.with_pass(q.entrance_pass.then(|| now.saturating_sub(age)));
    let mut v = crate::cli::simulate(cfg, host, facts, user, q.second_factor).map_err(|e| ("bad_request", e))?;
    v["client_ip"] = ip.to_canonical().to_string().into();
    Ok(v)
}

/// At most 100 characters of what the caller sent, for an error message.
fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}
