//! The users as administrators see them (`GET|POST /users`, `portcullis admin
//! users`, the console's user list): each user of the users file with their
//! role, policy group, second factors and lock, read from the store.
//!
//! Body (all optional): `{"q": "ali"}` keeps users whose name, display name or
//! email contains the text (any case); `{"locked": true}` keeps locked users.

use super::reply::{reply, unavailable, AdminReply};
use crate::auth::Auth;
use crate::clock::iso8601;
use crate::config::Config;
use serde_json::{json, Value};

/// At most this many users are read and returned per call; `truncated` says
/// when there were more (narrow with `q`).
pub const MAX_ROWS: usize = 500;

pub async fn list(cfg: &Config, auth: &Auth, body: &Value) -> AdminReply {
    let q = body.get("q").and_then(Value::as_str).unwrap_or("").trim().to_lowercase();
    let only_locked = body.get("locked").and_then(Value::as_bool).unwrap_or(false);
    let mut users: Vec<_> = cfg.users.iter().filter(|u| q.is_empty() || matches(u, &q)).collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let truncated = users.len() > MAX_ROWS;
    let now = auth.clock.now();
    let cooldown = cfg.totp.cooldown;
    let registry = auth.devices.load();
    let mut rows = Vec::new();
    for u in users.into_iter().take(MAX_ROWS) {
        let rec = match auth.store().user(&u.username).await {
            Ok(r) => r,
            Err(e) => return unavailable(e),
        };
        let locked = rec.lock.as_ref().filter(|_| rec.is_locked(now));
        if only_locked && locked.is_none() {
            continue;
        }
        let approvers = match crate::push::approver::list(auth.store().as_ref(), &u.username).await {
            Ok(list) => list.len(),
            Err(e) => return unavailable(e),
        };
        let certs = registry.of_user(&u.username).into_iter().filter(|e| e.status_at(now).works()).count();
        let totp = match &rec.totp {
            Some(t) if t.confirmed => "enrolled",
            Some(_) => "pending",
            None => "none",
        };
        let waiting = cooldown.waiting(rec.totp_revoked_at, now);
        rows.push(json!({
            "user": u.username,
            "display_name": u.display_name,
            "email": u.email,
            "role": u.role.name(),
            "policy_group": cfg.groups[u.policy_group].name,
            "totp": totp,
            "recovery_codes_left": rec.recovery.len(),
            "approvers": approvers,
            "device_certs": certs,
            "failures": rec.failures,
            "locked": locked.map(|l| json!({
                "at": l.at, "at_utc": iso8601(l.at),
                "until": l.until, "until_utc": l.until.map(iso8601),
                "reason": l.reason,
            })),
            "cooldown_until": waiting,
            "cooldown_until_utc": waiting.map(iso8601),
            // What a revocation now would mean: when the user could enroll again.
            "revoke_now_ready_at": cooldown.ready_at(now),
            "revoke_now_ready_at_utc": iso8601(cooldown.ready_at(now)),
        }));
    }
    reply(200, json!({"now": now, "users": rows, "truncated": truncated}))
}

fn matches(u: &crate::config::User, q: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(q);
    has(&u.username) || has(&u.display_name) || u.email.as_deref().is_some_and(has)
}

/// `portcullis admin users [--search Q]`: one row per user — name, role,
/// policy group, second factors, lock.
pub fn run_cli(addr: std::net::SocketAddr, token: &str, q: Option<&str>) -> Result<i32, String> {
    let body = json!({ "q": q.unwrap_or("") }).to_string();
    let (status, text) = super::client::request(addr, "POST", "/users", token, &body)?;
    let v: Value = serde_json::from_str(&text).map_err(|_| format!("the admin API answered {status}: {text}"))?;
    if !(200..300).contains(&status) {
        eprintln!("{}", v["message"].as_str().unwrap_or(&text));
        return Ok(1);
    }
    let users = v["users"].as_array().cloned().unwrap_or_default();
    print!("{}", cli_table(&users));
    if users.is_empty() {
        eprintln!("no users match");
    }
    if v["truncated"] == true {
        eprintln!("(the first {MAX_ROWS} users; narrow with --search)");
    }
    Ok(0)
}

/// The rows of `/users` as an aligned text table.
fn cli_table(users: &[Value]) -> String {
    let mut rows = vec![["USER", "ROLE", "GROUP", "FACTORS", "LOCKED"].map(String::from)];
    for u in users {
        let s = |k: &str| u[k].as_str().unwrap_or("").to_string();
        let n = |k: &str| u[k].as_u64().unwrap_or(0);
        let mut factors = Vec::new();
        match s("totp").as_str() {
            "enrolled" => factors.push("totp".to_string()),
            "pending" => factors.push("totp (unconfirmed)".to_string()),
            _ => {}
        }
        for (k, what) in
            [("recovery_codes_left", "recovery codes"), ("approvers", "approvers"), ("device_certs", "certificates")]
        {
            if n(k) > 0 {
                factors.push(format!("{} {what}", n(k)));
            }
        }
        let factors = if factors.is_empty() { "-".to_string() } else { factors.join(", ") };
        let locked = match &u["locked"] {
            Value::Null => "no".to_string(),
            l => format!("since {} ({})", l["at_utc"].as_str().unwrap_or("?"), l["reason"].as_str().unwrap_or("")),
        };
        rows.push([s("user"), s("role"), s("policy_group"), factors, locked]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_table_lines_up_and_says_the_factors_in_words() {
        let users = [
            json!({"user": "alice", "role": "user", "policy_group": "staff", "totp": "enrolled",
                   "recovery_codes_left": 10, "approvers": 0, "device_certs": 1, "locked": null}),
            json!({"user": "bo", "role": "master", "policy_group": "admins", "totp": "none",
                   "locked": {"at_utc": "2026-01-01T00:00:00Z", "reason": "5 failed codes"}}),
        ];
        let t = cli_table(&users);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "USER   ROLE    GROUP   FACTORS                                  LOCKED");
        assert_eq!(lines[1], "alice  user    staff   totp, 10 recovery codes, 1 certificates  no");
        assert_eq!(lines[2], "bo     master  admins  -                                        since 2026-01-01T00:00:00Z (5 failed codes)");
    }
}
