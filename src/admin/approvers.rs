//! `portcullis admin approver list|link|remove`: a user's approver devices
//! (push approval), and a single-use enrollment link made for the user.

use super::reply::{reply, unavailable, AdminReply};
use crate::auth::Auth;
use crate::config::Config;
use crate::push::approver;
use serde_json::{json, Value};

pub async fn handle(cfg: &Config, auth: &Auth, path: &str, body: &[u8]) -> AdminReply {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    let Some(user) = v["user"].as_str() else {
        return reply(400, json!({"error": "bad_request", "message": "name the user: {\"user\": \"alice\"}"}));
    };
    if cfg.users.get(user).is_none() {
        return reply(
            404,
            json!({"error": "unknown_user", "message": format!("no user named `{user}` in the users file")}),
        );
    }
    let store = auth.store();
    match path {
        "/approver/list" => match approver::list(store.as_ref(), user).await {
            Ok(devices) => {
                let rows: Vec<Value> = devices
                    .iter()
                    .map(|d| {
                        json!({"device": d.id, "name": d.name, "added_at_utc": crate::clock::iso8601(d.added_at),
                               "last_used_utc": d.last_used.map(crate::clock::iso8601),
                               "web_push": d.subscription.is_some()})
                    })
                    .collect();
                reply(200, json!({"user": user, "devices": rows}))
            }
            Err(e) => unavailable(e),
        },
        "/approver/link" => match approver::make_enroll_code(store.as_ref(), user).await {
            Ok(code) => {
                let url = super::users::app_url(cfg, user, &format!("/.portcullis/approver/#enroll={code}"));
                crate::audit!("approver_link", user = %user);
                reply(200, json!({"user": user, "url": url, "expires_in_secs": approver::ENROLL_TTL.as_secs()}))
            }
            Err(e) => unavailable(e),
        },
        "/approver/remove" => {
            let device = v["device"].as_str().unwrap_or_default();
            match approver::remove(store.as_ref(), user, device).await {
                Ok(true) => reply(200, json!({"user": user, "removed": device})),
                Ok(false) => reply(
                    404,
                    json!({"error": "unknown_device", "message": format!("`{user}` has no approver device `{device}` (see `portcullis admin approver list {user}`)")}),
                ),
                Err(e) => unavailable(e),
            }
        }
        _ => reply(404, json!({"error": "not_found"})),
    }
}
