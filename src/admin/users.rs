//! User administration through the admin API: locked users and unlock, token
//! revocation (a lost phone), sign-out everywhere, enrollment links, and
//! cookie key rotation. Each operation changes the store, then this
//! instance's snapshot at once; other instances learn it from the change feed.

use super::reply::{reply, unavailable, AdminReply};
use crate::auth::Auth;
use crate::config::Config;
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

pub async fn handle(cfg: &Config, auth: &Auth, path: &str, body: &Value) -> AdminReply {
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
    let result = match path {
        "/unlock" => unlock(auth, &users).await,
        "/revoke-totp" => revoke_totp(auth, &users).await,
        "/sign-out" => sign_out(auth, &users).await,
        "/enroll-link" => return enroll_link(cfg, auth, &users[0]).await,
        _ => return reply(404, json!({"error": "not_found"})),
    };
    result.unwrap_or_else(unavailable)
}

async fn unlock(auth: &Auth, users: &[String]) -> Result<AdminReply, crate::store::StoreError> {
    let (mut unlocked, mut not_locked) = (Vec::new(), Vec::new());
    for u in users {
        if auth.store().unlock(u).await? {
            unlocked.push(u)
        } else {
            not_locked.push(u)
        }
        crate::audit!("unlock", user = %u);
    }
    Ok(reply(200, json!({"unlocked": unlocked, "not_locked": not_locked})))
}

async fn revoke_totp(auth: &Auth, users: &[String]) -> Result<AdminReply, crate::store::StoreError> {
    let now = auth.clock.now();
    for u in users {
        auth.store().revoke_totp(u, now).await?;
        auth.sign_out_everywhere(u).await?;
        // A lost phone is often the approver too.
        for d in crate::push::approver::list(auth.store().as_ref(), u).await? {
            crate::push::approver::remove(auth.store().as_ref(), u, &d.id).await?;
        }
        crate::audit!("revoke_totp", user = %u);
    }
    Ok(reply(200, json!({"revoked": users, "signed_out": true})))
}

async fn sign_out(auth: &Auth, users: &[String]) -> Result<AdminReply, crate::store::StoreError> {
    for u in users {
        auth.sign_out_everywhere(u).await?;
        crate::audit!("sign_out_everywhere", user = %u);
    }
    Ok(reply(200, json!({"signed_out": users})))
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
            crate::audit!("rotate_cookie_keys", current_key = %id);
            reply(200, json!({"current_key": id}))
        }
        Err(e) => reply(503, json!({"error": "cannot_rotate", "message": e})),
    }
}
