//! User administration through the admin API: locked users and unlock, token
//! revocation (a lost phone), sign-out everywhere, enrollment links, and
//! cookie key rotation. Each operation changes the store, then this
//! instance's snapshot at once; other instances learn it from the change feed.

use super::actor::{self, Act, Caller};
use super::reply::{reply, unavailable, AdminReply};
use crate::auth::Auth;
use crate::config::Config;
use crate::notices::Notice;
use crate::store::StoreError;
use serde_json::{json, Value};
use std::time::Duration;

/// How long an enrollment link stays valid.
const ENROLL_LINK_TTL: Duration = Duration::from_secs(72 * 3600);

/// The user names of a body: `{"user": "a"}` or `{"users": ["a", "b"]}`.
fn users_of(body: &Value) -> Vec<String> {
    let one = body.get("user").and_then(Value::as_str).map(str::to_string);
    let many = body
        .get("users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string));
    one.into_iter().chain(many).collect()
}

pub async fn locked(auth: &Auth) -> AdminReply {
    match auth.store().locked(auth.clock.now()).await {
        Ok(list) => {
            // Records counting unknown user names are no users to unlock: only counted.
            let prefix = crate::challenge::login::UNKNOWN_NAME_PREFIX;
            let (unknown, users): (Vec<_>, Vec<_>) = list.into_iter().partition(|(user, _)| user.starts_with(prefix));
            let rows: Vec<Value> = users
                .into_iter()
                .map(|(user, l)| json!({"user": user, "at": l.at, "until": l.until, "reason": l.reason}))
                .collect();
            reply(200, json!({"locked": rows, "unknown_name_slots_locked": unknown.len()}))
        }
        Err(e) => unavailable(e),
    }
}

/// All durable state as JSON lines (`portcullis admin store export`).
pub async fn export(auth: &Auth) -> AdminReply {
    match auth.store().export().await {
        Ok(items) => {
            let mut body = String::new();
            for item in &items {
                body.push_str(&serde_json::to_string(item).unwrap_or_default());
                body.push('\n');
            }
            AdminReply { status: 200, content_type: "application/x-ndjson", body }
        }
        Err(e) => unavailable(e),
    }
}

/// Reads JSON lines as exported; a bad line refuses the whole import (nothing is written).
pub async fn import(auth: &Auth, body: &[u8]) -> AdminReply {
    let text = String::from_utf8_lossy(body);
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<crate::store::Exported>(line) {
            Ok(item) => items.push(item),
            Err(e) => return reply(400, json!({"error": "bad_line", "line": n + 1, "message": e.to_string()})),
        }
    }
    let count = items.len();
    match auth.store().import(items).await {
        Ok(()) => {
            crate::audit!("store_import", records = count);
            reply(200, json!({"imported": count}))
        }
        Err(e) => unavailable(e),
    }
}

pub async fn handle(cfg: &Config, auth: &Auth, caller: &Caller, path: &str, body: &Value) -> AdminReply {
    if path == "/keys/rotate" {
        return rotate_keys(auth).await;
    }
    let users = users_of(body);
    if users.is_empty() {
        return reply(
            400,
            json!({"error": "bad_request", "message": "name the user: {\"user\": \"alice\"} or {\"users\": [...]}"}),
        );
    }
    if let Some(unknown) = users.iter().find(|u| cfg.users.get(u).is_none()) {
        return reply(
            404,
            json!({"error": "unknown_user", "message": format!("no user named `{unknown}` in the users file")}),
        );
    }
    let act = match path {
        "/unlock" => Act::Unlock,
        "/revoke-totp" => Act::RevokeTotp,
        "/sign-out" => Act::SignOut,
        "/enroll-link" => return enroll_link(cfg, auth, &users[0]).await,
        _ => return reply(404, json!({"error": "not_found"})),
    };
    let mut results = Vec::new();
    for user in &users {
        let result = match actor::may(cfg, &caller.actor, act, user) {
            Err(refusal) => Ok(Err(refusal)),
            Ok(()) => apply(cfg, auth, act, user).await.map(Ok),
        };
        let row = match result {
            Ok(Ok(done)) => json!({"user": user, "result": done.0, "ok": true, "ready_at": done.1}),
            Ok(Err(r)) => {
                json!({"user": user, "result": "refused", "ok": false, "reason": r.code(), "message": r.message()})
            }
            Err(e) => json!({"user": user, "result": "store_unavailable", "ok": false, "message": e.to_string()}),
        };
        actor::record(
            caller,
            act.name(),
            user,
            None,
            row["reason"].as_str().unwrap_or(row["result"].as_str().unwrap_or("")),
        );
        results.push(row);
    }
    let status = per_user_status(&results);
    let done =
        |r: &str| -> Vec<Value> { results.iter().filter(|v| v["result"] == r).map(|v| v["user"].clone()).collect() };
    let mut v = json!({"action": act.name(), "results": results});
    // The shapes scripts already read.
    match act {
        Act::Unlock => {
            v["unlocked"] = done("unlocked").into();
            v["not_locked"] = done("not_locked").into();
        }
        Act::RevokeTotp => {
            v["revoked"] = done("revoked").into();
            v["signed_out"] = json!(true);
        }
        _ => v["signed_out"] = done("signed_out").into(),
    }
    reply(status, v)
}

/// 200 when any user's act went through (or found nothing to do); else the
/// refusal's status (403) or the store's (503).
fn per_user_status(results: &[Value]) -> u16 {
    if results.iter().any(|r| r["ok"] == true) {
        200
    } else if results.iter().any(|r| r["result"] == "store_unavailable") {
        503
    } else {
        403
    }
}

/// Does `act` to `user`: the result's name, and (for a revocation) when the
/// user may enroll again.
async fn apply(cfg: &Config, auth: &Auth, act: Act, user: &str) -> Result<(&'static str, Option<u64>), StoreError> {
    let store = auth.store();
    match act {
        Act::Unlock => {
            let unlocked = store.unlock(user).await?;
            if unlocked {
                crate::notices::notify(cfg, user, Notice::Unlocked);
            }
            Ok((if unlocked { "unlocked" } else { "not_locked" }, None))
        }
        Act::RevokeTotp => {
            let now = auth.clock.now();
            store.revoke_totp(user, now).await?;
            auth.sign_out_everywhere(user).await?;
            // A lost phone is often the approver too.
            for d in crate::push::approver::list(store.as_ref(), user).await? {
                crate::push::approver::remove(store.as_ref(), user, &d.id).await?;
            }
            let ready_at = cfg.totp.cooldown.ready_at(now);
            crate::notices::notify(cfg, user, Notice::TokenRevoked { ready_at });
            Ok(("revoked", Some(ready_at)))
        }
        _ => {
            auth.sign_out_everywhere(user).await?;
            Ok(("signed_out", None))
        }
    }
}

/// A single-use link on the first app host the user may use.
async fn enroll_link(cfg: &Config, auth: &Auth, user: &str) -> AdminReply {
    let code = match auth.login.make_enroll_link(user, ENROLL_LINK_TTL).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let path = format!("/.portcullis/login?enroll={code}");
    let url = app_url(cfg, user, &path);
    crate::audit!("enroll_link", user = %user);
    reply(200, json!({"user": user, "url": url, "path": path, "expires_in_secs": ENROLL_LINK_TTL.as_secs()}))
}

/// `path` on the first app host (not a wildcard) that `user` may use, with
/// this listener's port; `None` when no app admits the user's policy group.
pub fn app_url(cfg: &Config, user: &str, path: &str) -> Option<String> {
    let group = cfg.users.get(user).map(|u| u.policy_group);
    let host = cfg
        .apps
        .iter()
        .find(|a| group.is_some_and(|g| a.admits(g)))
        .and_then(|a| a.hosts.iter().find(|h| !h.starts_with("*.")))?;
    let port = match cfg.server.https.port() {
        443 => String::new(),
        p => format!(":{p}"),
    };
    Some(format!("https://{host}{port}{path}"))
}

/// New current cookie key; the old one keeps verifying until the next rotation.
async fn rotate_keys(auth: &Auth) -> AdminReply {
    match auth.rotate_keys().await {
        Ok(id) => {
            let identity_key = auth.identity_keys.load().current_kid().to_string();
            crate::audit!("rotate_cookie_keys", current_key = %id, identity_key = %identity_key);
            reply(200, json!({"current_key": id, "identity_key": identity_key}))
        }
        Err(e) => reply(503, json!({"error": "cannot_rotate", "message": e})),
    }
}
