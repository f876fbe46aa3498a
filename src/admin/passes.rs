//! `portcullis admin pass …`: list entrance passes, revoke one or all of a
//! user's, and check a pass cookie (for `portcullis decide --pass`). The
//! revocation reaches every instance through the store's change feed.

use super::reply::{reply, unavailable, AdminReply};
use crate::auth::Auth;
use crate::config::Config;
use crate::store::PassRecord;
use serde_json::{json, Value};

fn row(p: &PassRecord, now: u64, renew: bool) -> Value {
    let status = if p.revoked {
        "revoked"
    } else if now >= p.works_until(renew) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": p.id, "user": p.user, "status": status, "browser": p.browser, "issued_from": p.issued_from,
        "issued_at": p.issued_at, "issued_at_utc": crate::clock::iso8601(p.issued_at),
        "last_seen": p.last_seen, "last_seen_utc": crate::clock::iso8601(p.last_seen),
        "expires_at": p.works_until(renew), "expires_at_utc": crate::clock::iso8601(p.works_until(renew)),
    })
}

fn bad(message: &str) -> AdminReply {
    reply(400, json!({"error": "bad_request", "message": message}))
}

pub async fn handle(cfg: &Config, auth: &Auth, method: &str, path: &str, body: &[u8]) -> AdminReply {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return bad("send a JSON object"),
        }
    };
    let user = v["user"].as_str();
    if let Some(u) = user.filter(|u| cfg.users.get(u).is_none()) {
        return reply(
            404,
            json!({"error": "unknown_user", "message": format!("no user named `{u}` in the users file")}),
        );
    }
    let now = auth.clock.now();
    match (method, path) {
        ("POST", "/pass/list") => match auth.store().passes(user).await {
            Ok(passes) => {
                let renew = cfg.entrance_pass.as_ref().is_some_and(|e| e.renew_on_use);
                reply(200, json!({"passes": passes.iter().map(|p| row(p, now, renew)).collect::<Vec<_>>()}))
            }
            Err(e) => unavailable(e),
        },
        ("POST", "/pass/revoke") => match (v["id"].as_str(), user) {
            (Some(id), None) => match auth.revoke_pass(id).await {
                Ok(Some(p)) => reply(200, json!({"revoked": [id], "user": p.user})),
                Ok(None) => reply(
                    404,
                    json!({"error": "unknown_pass", "message": format!("no entrance pass `{id}` (see `portcullis admin pass list`)")}),
                ),
                Err(e) => unavailable(e),
            },
            (None, Some(u)) => match auth.revoke_passes_of(u).await {
                Ok(n) => reply(200, json!({"user": u, "revoked_count": n})),
                Err(e) => unavailable(e),
            },
            _ => bad("name one pass ({\"id\": …}) or a user ({\"user\": …}), not both"),
        },
        ("POST", "/pass/check") => {
            let Some(cookie) = v["cookie"].as_str() else {
                return bad("send {\"cookie\": \"<the pass cookie's value>\"}");
            };
            match auth.check_pass(cookie.trim(), now) {
                Ok(p) => reply(
                    200,
                    json!({"valid": true, "id": p.id, "user": p.user, "issued_at_utc": crate::clock::iso8601(p.issued_at),
                           "expires_at_utc": crate::clock::iso8601(p.expires_at)}),
                ),
                Err(e) => reply(200, json!({"valid": false, "why": e.to_string()})),
            }
        }
        _ => reply(404, json!({"error": "not_found"})),
    }
}

/// `portcullis admin pass list|revoke`: prints the answer for people.
pub fn run_cli(addr: std::net::SocketAddr, token: &str, path: &str, body: Value) -> Result<i32, String> {
    let (status, text) = super::client::request(addr, "POST", path, token, &body.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|_| format!("the admin API answered {status}: {text}"))?;
    if !(200..300).contains(&status) {
        eprintln!("{}", v["message"].as_str().unwrap_or(&text));
        return Ok(1);
    }
    match path {
        "/pass/list" => {
            let passes = v["passes"].as_array().cloned().unwrap_or_default();
            if passes.is_empty() {
                println!("no entrance passes");
            }
            for p in passes {
                let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
                println!(
                    "{}  {:<8} user {:<12} {}  issued {} from {}  last seen {}  until {}",
                    s("id"),
                    s("status"),
                    s("user"),
                    s("browser"),
                    s("issued_at_utc"),
                    s("issued_from"),
                    s("last_seen_utc"),
                    s("expires_at_utc")
                );
            }
        }
        _ => match (v["revoked"].as_array(), v["revoked_count"].as_u64()) {
            (Some(ids), _) => println!("revoked {} (user `{}`)", ids.len(), v["user"].as_str().unwrap_or("-")),
            (_, Some(n)) => println!("revoked {n} entrance pass(es) of `{}`", v["user"].as_str().unwrap_or("-")),
            _ => println!("{v}"),
        },
    }
    Ok(0)
}
