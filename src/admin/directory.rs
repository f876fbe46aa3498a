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
