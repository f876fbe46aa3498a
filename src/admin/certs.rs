//! Device-certificate administration through the admin API (issue 17):
//! list, set-expiring, expire, revoke and the license usage. Issuance is in
//! `cert_issue`. Every change goes through the store's atomic
//! `update_device_cert` (the rules are `devices::quota`'s), then into this
//! instance's registry snapshot at once; other instances learn it from the
//! change feed. A refused change (unknown serial, quota) writes nothing.
//!
//! Routes: `POST /cert/list` `{"user"?, "expiring_within"?: "14d"}`,
//! `POST /cert/set-expiring|expire|revoke` `{"serial"}`, `GET /cert/usage`.
//! Every time is given as Unix seconds and as UTC ISO 8601 (`…_utc`, with `Z`).

use super::actor::{self, Act, Caller};
use super::reply::{reply, unavailable, AdminReply};
use crate::auth::Auth;
use crate::clock::iso8601;
use crate::config::Config;
use crate::devices::quota::{self, QuotaError};
use crate::devices::registry::{CertUpdate, DeviceCert};
use crate::notices::Notice;
use crate::store::Change;
use serde_json::{json, Value};

pub async fn handle(cfg: &Config, auth: &Auth, caller: &Caller, method: &str, path: &str, body: &[u8]) -> AdminReply {
    let Some(dc) = cfg.device_certificates.as_ref() else {
        return reply(
            409,
            json!({"error": "not_configured", "message": "device certificates are not configured: add `[device_certificates]` with `contracted = N` (your license) to the config"}),
        );
    };
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let update = match path {
        "/cert/set-expiring" => CertUpdate::SetExpiring,
        "/cert/expire" => CertUpdate::Expire,
        "/cert/revoke" => CertUpdate::Revoke,
        "/cert/list" if method == "POST" || method == "GET" => return list(auth, &body).await,
        "/cert/usage" if method == "GET" => return usage(auth, dc.contracted).await,
        "/cert/list" | "/cert/usage" => return reply(405, json!({"error": "method_not_allowed"})),
        _ => return reply(404, json!({"error": "not_found"})),
    };
    if method != "POST" {
        return reply(405, json!({"error": "method_not_allowed"}));
    }
    let serial = match body.get("serial").and_then(Value::as_str).map(normalize_serial) {
        Some(Ok(s)) => s,
        Some(Err(m)) => return reply(400, json!({"error": "bad_serial", "message": m})),
        None => {
            return reply(
                400,
                json!({"error": "bad_request", "message": "name the certificate: {\"serial\": \"<32 hex digits>\"}"}),
            )
        }
    };
    // The rules of who may act on whom (see `actor`), on the certificate's user.
    let owner = auth.devices.load().entries().find(|e| e.serial == serial).map(|e| e.user.clone());
    let act = match update {
        CertUpdate::SetExpiring => Act::CertSetExpiring,
        CertUpdate::Expire => Act::CertExpire,
        CertUpdate::Revoke => Act::CertRevoke,
    };
    if let Some(owner) = &owner {
        if let Err(r) = actor::may(cfg, &caller.actor, act, owner) {
            actor::record(caller, act.name(), owner, Some(&serial), r.code());
            return reply(403, json!({"error": "refused", "reason": r.code(), "message": r.message(), "user": owner}));
        }
    }
    let r = change(cfg, auth, &serial, update, dc.contracted).await;
    let result = if r.status == 200 { "done" } else { "refused" };
    actor::record(caller, act.name(), owner.as_deref().unwrap_or(""), Some(&serial), result);
    r
}

fn parse_body(body: &[u8]) -> Result<Value, AdminReply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| reply(400, json!({"error": "bad_request", "message": format!("the body is not JSON: {e}")})))
}

/// A serial as administrators paste it (any case, `:`-separated as openssl
/// prints it) → the registry's form, 32 lowercase hex digits.
pub fn normalize_serial(text: &str) -> Result<String, String> {
    let s: String = text.trim().chars().filter(|&c| c != ':').collect::<String>().to_ascii_lowercase();
    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(format!("`{text}` is not a certificate serial: expected 32 hex digits (see `portcullis admin cert list`)"))
    }
}

async fn change(cfg: &Config, auth: &Auth, serial: &str, update: CertUpdate, contracted: u32) -> AdminReply {
    let now = auth.clock.now();
    match auth.store().update_device_cert(serial, update, contracted, now).await {
        Err(e) => unavailable(e),
        Ok(Err(e)) => refused(&e),
        Ok(Ok(cert)) => {
            auth.apply_now(&Change::DeviceCert(cert.clone()));
            if let (CertUpdate::SetExpiring, Some(until)) = (update, cert.expires_at) {
                let notice = Notice::CertExpiring { device: cert.device.clone(), serial: cert.serial.clone(), until };
                crate::notices::notify(cfg, &cert.user, notice);
            }
            let event = match update {
                CertUpdate::SetExpiring => "cert_set_expiring",
                CertUpdate::Expire => "cert_expire",
                CertUpdate::Revoke => "cert_revoke",
            };
            crate::audit!(event, serial = %cert.serial, user = %cert.user);
            reply(200, json!({"certificate": shown(&cert, now)}))
        }
    }
}

/// A refusal: 404 for an unknown serial, 409 for a rule of the license.
pub fn refused(e: &QuotaError) -> AdminReply {
    let (status, kind) = match e {
        QuotaError::UnknownSerial { .. } => (404, "unknown_serial"),
        QuotaError::Duplicate { .. } => (409, "duplicate"),
        QuotaError::LicenseFull { .. } => (409, "license_full"),
        QuotaError::AlreadyExpiring { .. } => (409, "already_expiring"),
        QuotaError::Ended { .. } => (409, "ended"),
        QuotaError::AllowanceUsed { .. } => (409, "allowance_used"),
    };
    reply(status, json!({"error": kind, "message": e.to_string(), "detail": e}))
}

async fn list(auth: &Auth, body: &Value) -> AdminReply {
    let user = body.get("user").and_then(Value::as_str);
    let within = match body.get("expiring_within").and_then(Value::as_str).map(crate::config::duration::parse) {
        Some(Ok(d)) => Some(d.as_secs()),
        Some(Err(m)) => return reply(400, json!({"error": "bad_request", "message": format!("expiring_within: {m}")})),
        None => None,
    };
    let now = auth.clock.now();
    let mut certs = match auth.store().device_certs().await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    certs.retain(|c| user.is_none_or(|u| c.user == u));
    if let Some(within) = within {
        certs.retain(|c| c.stops_within(now, within));
    }
    certs.sort_by(|a, b| (&a.user, a.issued_at, &a.serial).cmp(&(&b.user, b.issued_at, &b.serial)));
    let rows: Vec<Value> = certs.iter().map(|c| shown(c, now)).collect();
    reply(200, json!({"now_utc": iso8601(now), "certificates": rows}))
}

/// A record as administrators see it: the status at `now`, every time also in UTC.
fn shown(c: &DeviceCert, now: u64) -> Value {
    let utc = |t: Option<u64>| t.map(iso8601);
    let works = c.status_at(now).works();
    json!({
        "serial": c.serial,
        "fingerprint": c.fingerprint,
        "user": c.user,
        "device": c.device,
        "status": c.status_at(now),
        "issued_at": c.issued_at,
        "issued_at_utc": iso8601(c.issued_at),
        "not_after": c.not_after,
        "not_after_utc": iso8601(c.not_after),
        "expires_at": c.expires_at,
        "expires_at_utc": utc(c.expires_at),
        "set_expiring_at": c.set_expiring_at,
        "set_expiring_at_utc": utc(c.set_expiring_at),
        "stops_working_at_utc": works.then(|| iso8601(c.works_until())),
    })
}

async fn usage(auth: &Auth, contracted: u32) -> AdminReply {
    let now = auth.clock.now();
    match auth.store().device_certs().await {
        Err(e) => unavailable(e),
        Ok(certs) => {
            let u = quota::usage(&certs, contracted, now);
            let mut v = serde_json::to_value(&u).unwrap_or_default();
            v["next_use_frees_at_utc"] = json!(u.next_use_frees_at.map(iso8601));
            v["now_utc"] = json!(iso8601(now));
            v["window_days"] = json!(quota::WINDOW / quota::DAY);
            v["rounding"] = json!("uses allowed = floor(contracted / 2): 50 % of contracted, and contracted + uses within 150 % of contracted, both rounded down");
            reply(200, v)
        }
    }
}

/// `portcullis admin cert …` but `issue` (see `cert_issue`).
pub enum CertCommand {
    List { user: Option<String>, expiring_within: Option<String> },
    SetExpiring { serial: String },
    Expire { serial: String },
    Revoke { serial: String },
    Usage,
}

/// Runs one command against the admin API and prints the answer for a
/// person (`--json` callers can use the API itself); refusals go to stderr.
pub fn run_cli(addr: std::net::SocketAddr, token: &str, cmd: CertCommand) -> Result<i32, String> {
    let one = |path: &'static str, serial: &str| -> Result<_, String> {
        // Checked here too, so a typo is named before anything is sent.
        Ok(("POST", path, json!({"serial": normalize_serial(serial)?}).to_string()))
    };
    let (method, path, body) = match &cmd {
        CertCommand::List { user, expiring_within } => {
            ("POST", "/cert/list", json!({"user": user, "expiring_within": expiring_within}).to_string())
        }
        CertCommand::SetExpiring { serial } => one("/cert/set-expiring", serial)?,
        CertCommand::Expire { serial } => one("/cert/expire", serial)?,
        CertCommand::Revoke { serial } => one("/cert/revoke", serial)?,
        CertCommand::Usage => ("GET", "/cert/usage", String::new()),
    };
    let (status, text) = super::client::request(addr, method, path, token, &body)?;
    let v: Value = serde_json::from_str(&text).map_err(|_| format!("the admin API answered {status}: {text}"))?;
    if !(200..300).contains(&status) {
        eprintln!("{}", v["message"].as_str().unwrap_or(&text));
        return Ok(1);
    }
    match cmd {
        CertCommand::List { .. } => print_list(&v),
        CertCommand::Usage => print_usage(&v),
        CertCommand::SetExpiring { .. } | CertCommand::Expire { .. } | CertCommand::Revoke { .. } => {
            let c = &v["certificate"];
            let s = |k: &str| c[k].as_str().unwrap_or("-").to_string();
            println!(
                "certificate {} (device `{}` of user `{}`) is now {}",
                s("serial"),
                s("device"),
                s("user"),
                s("status")
            );
            match c["stops_working_at_utc"].as_str() {
                Some(at) => println!("it keeps working until {at} and counts 0 toward the license from now"),
                None => println!("it no longer works"),
            }
        }
    }
    Ok(0)
}

fn print_list(v: &Value) {
    let rows = v["certificates"].as_array().cloned().unwrap_or_default();
    println!("as of {}: {} certificate(s)", v["now_utc"].as_str().unwrap_or("-"), rows.len());
    println!(
        "{:<32}  {:<9}  {:<16}  {:<20}  {:<20}  {:<20}",
        "SERIAL", "STATUS", "USER", "DEVICE", "ISSUED", "STOPS WORKING"
    );
    for c in rows {
        let s = |k: &str| c[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<32}  {:<9}  {:<16}  {:<20}  {:<20}  {:<20}",
            s("serial"),
            s("status"),
            s("user"),
            s("device"),
            s("issued_at_utc"),
            s("stops_working_at_utc")
        );
    }
}

fn print_usage(v: &Value) {
    let n = |k: &str| v[k].as_u64().map_or("-".to_string(), |n| n.to_string());
    println!("certificate replacement function details (as of {})", v["now_utc"].as_str().unwrap_or("-"));
    println!("  contracted:                {}", n("contracted"));
    println!("  active:                    {}", n("active"));
    println!("  expiring:                  {}", n("expiring"));
    println!("  expired:                   {}", n("expired"));
    println!("  revoked:                   {}", n("revoked"));
    println!("  can be issued now:         {}", n("can_issue_now"));
    println!(
        "  set-expiring uses in the last {} days: {} of {}",
        n("window_days"),
        n("uses_in_window"),
        n("uses_allowed")
    );
    println!("  uses left:                 {}", n("uses_left"));
    println!(
        "  next use frees up at:      {}",
        v["next_use_frees_at_utc"].as_str().unwrap_or("- (no use in the window)")
    );
    println!("  rounding: {}", v["rounding"].as_str().unwrap_or("-"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalized_or_refused() {
        let s = "5A:3B:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD";
        assert_eq!(normalize_serial(s).unwrap(), "5a3b00112233445566778899aabbccdd");
        assert!(normalize_serial("5a3b").unwrap_err().contains("32 hex digits"));
        assert!(normalize_serial("zz3b00112233445566778899aabbccdd").is_err());
        assert!(normalize_serial("").is_err());
    }
}
