//! Enrollment invitations by email (the bank's out-of-band token issue): an
//! administrator gives the user's email address and an activation PIN of 4–8
//! digits; the user receives a single-use link (valid 72 hours) and their user
//! ID, opens it from anywhere, and proves both channels: the password, and the
//! PIN they were told in person or by phone. Then the normal enrollment of an
//! authenticator (or an approver device) follows.
//!
//! The link's code and the PIN are stored only as hashes, in the user's record
//! (`store::invitation`); three wrong PINs void the invitation. A mail that
//! cannot be sent never loses the invitation: it stays pending with the
//! reason, and `resend` makes a new link (same PIN) and tries again.
//!
//! Admin API: `POST /invite` `{"user", "pin", "email"?, "kind"?: "totp"|"approver",
//! "lang"?}`, `POST /invite/resend` `{"user"}`, `POST /invite/cancel`
//! `{"user"}`, `GET /invitations`.

use crate::admin::actor::Caller;
use crate::admin::reply::{reply, unavailable, AdminReply};
use crate::auth::Auth;
use crate::clock::iso8601;
use crate::config::Config;
use crate::store::{Invitation, InvitationKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Where the link leads (the user name and code follow in the query).
pub const PATH: &str = "/.portcullis/invite";

/// The stored form of a link's code.
pub fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// A PIN as the rules want it: 4 to 8 ASCII digits.
pub fn check_pin(pin: &str) -> Result<(), &'static str> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("the activation PIN must be 4 to 8 digits")
    }
}

/// argon2id of the PIN (run off the async threads: it takes tens of milliseconds).
pub async fn hash_pin(pin: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
        argon2::Argon2::default().hash_password(pin.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

pub async fn verify_pin(phc: String, pin: String) -> bool {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&phc).is_ok_and(|h| argon2::Argon2::default().verify_password(pin.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

fn bad(message: impl Into<String>) -> AdminReply {
    reply(400, json!({"error": "bad_request", "message": message.into()}))
}

pub async fn handle(cfg: &Config, auth: &Auth, caller: &Caller, method: &str, path: &str, body: &[u8]) -> AdminReply {
    if (method, path) == ("GET", "/invitations") {
        return list(cfg, auth).await;
    }
    if method != "POST" {
        return reply(405, json!({"error": "method_not_allowed"}));
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad(format!("the body is not JSON: {e}")),
    };
    let Some(user) = v["user"].as_str().and_then(|u| cfg.users.get(u)) else {
        return reply(
            404,
            json!({"error": "unknown_user", "message": format!("no user named `{}` in the users file", v["user"].as_str().unwrap_or(""))}),
        );
    };
    match path {
        "/invite" => invite(cfg, auth, caller, user, &v).await,
        "/invite/resend" => resend(cfg, auth, caller, &user.username).await,
        "/invite/cancel" => match auth.store().set_invitation(&user.username, None).await {
            Ok(()) => {
                crate::admin::actor::record(caller, "invitation_cancel", &user.username, None, "cancelled");
                reply(200, json!({"user": user.username, "cancelled": true}))
            }
            Err(e) => unavailable(e),
        },
        _ => reply(404, json!({"error": "not_found"})),
    }
}

async fn invite(cfg: &Config, auth: &Auth, caller: &Caller, user: &crate::config::User, v: &Value) -> AdminReply {
    let Some(mail) = cfg.mail.as_ref() else {
        return reply(
            409,
            json!({"error": "mail_not_configured", "message": "invitations are sent by email: add [mail] to the config"}),
        );
    };
    let pin = v["pin"].as_str().unwrap_or("");
    if let Err(m) = check_pin(pin) {
        return bad(m);
    }
    let email = v["email"].as_str().map(str::trim).filter(|e| !e.is_empty()).or(user.email.as_deref());
    let Some(email) = email else {
        return bad(format!("`{}` has no email in the users file: give one (\"email\")", user.username));
    };
    if !crate::config::users::valid_email(email) {
        return bad(format!("`{}` is not an address like `name@example.com`", email.escape_default()));
    }
    let kind = match v["kind"].as_str() {
        None | Some("totp") => InvitationKind::Totp,
        Some("approver") => InvitationKind::Approver,
        Some(other) => return bad(format!("kind `{other}`: write \"totp\" or \"approver\"")),
    };
    let lang = match v["lang"].as_str().or(user.lang.as_deref()) {
        None => "en",
        Some(l @ ("en" | "ja")) => l,
        Some(other) => return bad(format!("lang `{other}`: write \"en\" or \"ja\"")),
    };
    let rec = match auth.store().user(&user.username).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    if kind == InvitationKind::Totp && rec.totp.as_ref().is_some_and(|t| t.confirmed) {
        return reply(
            409,
            json!({"error": "already_enrolled", "message": format!("`{}` has an authenticator: revoke it first (`portcullis admin revoke-totp {}`)", user.username, user.username)}),
        );
    }
    let pin_hash = match hash_pin(pin.to_string()).await {
        Ok(h) => h,
        Err(e) => return reply(500, json!({"error": "internal", "message": e})),
    };
    let now = auth.clock.now();
    let inv = Invitation {
        code_hash: String::new(),
        pin_hash,
        kind,
        email: email.to_string(),
        lang: lang.to_string(),
        invited_by: caller.actor.label(),
        created_at: now,
        expires_at: now + mail.invitation_ttl.as_secs(),
        tries: 0,
        used_at: None,
        mail_error: None,
    };
    send(cfg, auth, caller, &user.username, inv, "invitation_sent").await
}

/// A new link for a pending invitation (same PIN, another 72 hours), mailed again.
async fn resend(cfg: &Config, auth: &Auth, caller: &Caller, user: &str) -> AdminReply {
    let Some(mail) = cfg.mail.as_ref() else {
        return reply(409, json!({"error": "mail_not_configured", "message": "add [mail] to the config"}));
    };
    let inv = match auth.store().user(user).await {
        Ok(r) => r.invitation,
        Err(e) => return unavailable(e),
    };
    let now = auth.clock.now();
    match inv {
        Some(inv) if inv.used_at.is_none() && inv.tries < crate::store::invitation::MAX_PIN_TRIES => {
            let inv = Invitation { created_at: now, expires_at: now + mail.invitation_ttl.as_secs(), ..*inv };
            send(cfg, auth, caller, user, inv, "invitation_resent").await
        }
        Some(inv) => reply(
            409,
            json!({"error": "not_pending", "message": format!("the invitation of `{user}` is {}: invite again", inv.state(now))}),
        ),
        None => reply(404, json!({"error": "no_invitation", "message": format!("`{user}` has no invitation")})),
    }
}

/// Stores `inv` with a new code, mails the link, and records how the mail went.
/// The invitation is stored before the mail is tried, so a failure loses nothing.
async fn send(cfg: &Config, auth: &Auth, caller: &Caller, user: &str, mut inv: Invitation, act: &str) -> AdminReply {
    let code = hex::encode(rand::random::<[u8; 16]>());
    inv.code_hash = code_hash(&code);
    inv.mail_error = Some("not sent yet".into());
    if let Err(e) = auth.store().set_invitation(user, Some(inv.clone())).await {
        return unavailable(e);
    }
    let link = link(cfg, user, &code, &inv.lang);
    let (subject, text) = mail_text(cfg, user, &inv, &link);
    let to_name = cfg.users.get(user).map(|u| u.display_name.clone());
    let sent = crate::notices::deliver(cfg, &inv.email, to_name, subject, text).await;
    inv.mail_error = sent.as_ref().err().cloned();
    if let Err(e) = auth.store().set_invitation(user, Some(inv.clone())).await {
        return unavailable(e);
    }
    let result = match &sent {
        Ok(()) => "mail_sent".to_string(),
        Err(reason) => format!("mail_not_sent: {reason}"),
    };
    crate::admin::actor::record(caller, act, user, None, &result);
    let mut v = shown(&inv, user, auth.clock.now());
    v["mail_sent"] = json!(sent.is_ok());
    reply(if sent.is_ok() { 200 } else { 202 }, v)
}

/// The link in the mail: on `[mail] link_base` when set, else on the first app
/// host the user may use.
pub fn link(cfg: &Config, user: &str, code: &str, lang: &str) -> String {
    use crate::challenge::pages::html::query_component as q;
    let path = format!("{PATH}?u={}&code={code}&lang={lang}", q(user));
    match cfg.mail.as_ref().and_then(|m| m.link_base.as_deref()) {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => crate::admin::users::app_url(cfg, user, &path).unwrap_or(path),
    }
}

/// The mail: subject and plain text, in the invitation's language.
pub fn mail_text(cfg: &Config, user: &str, inv: &Invitation, link: &str) -> (String, String) {
    let until = crate::challenge::cooldown::LocalTime(inv.expires_at, cfg.totp.utc_offset).to_string();
    let name = cfg.users.get(user).map_or(user, |u| u.display_name.as_str());
    let what_en = match inv.kind {
        InvitationKind::Totp => "set up two-step verification (an authenticator app on your phone)",
        InvitationKind::Approver => "set up login approval on your phone",
    };
    let what_ja = match inv.kind {
        InvitationKind::Totp => "2 段階認証（スマートフォンの認証アプリ）",
        InvitationKind::Approver => "スマートフォンでのログイン承認",
    };
    let contact = cfg.portal.contact.as_deref();
    if inv.lang == "ja" {
        let mut t = format!(
            "{name} 様\n\n{what_ja}の設定にご招待します。\n\n\
             ユーザー ID: {user}\n設定用リンク（1 回限り、{until} まで有効）:\n{link}\n\n\
             リンクを開き、パスワードと、管理者から別途（対面または電話で）伝えられたアクティベーション PIN を入力してください。\n\
             PIN はこのメールには書かれていません。3 回間違えるとこのリンクは使えなくなります。\n"
        );
        if let Some(c) = contact {
            t.push_str(&format!("\nお問い合わせ: {c}\n"));
        }
        t.push_str("\nこのメールに心当たりがない場合は、リンクを開かずに削除してください。\n");
        (format!("{what_ja}の設定のご案内"), t)
    } else {
        let mut t = format!(
            "Hello {name},\n\nYou are invited to {what_en}.\n\n\
             Your user ID: {user}\nYour set-up link (works once, until {until}):\n{link}\n\n\
             Open the link, then enter your password and the activation PIN your administrator \
             told you in person or by phone. The PIN is not in this email; after three wrong \
             PINs the link stops working.\n"
        );
        if let Some(c) = contact {
            t.push_str(&format!("\nNeed help? Contact: {c}\n"));
        }
        t.push_str("\nIf you did not expect this email, delete it without opening the link.\n");
        ("Set up your sign-in".to_string(), t)
    }
}

/// An invitation as the API and console show it (no hash).
fn shown(inv: &Invitation, user: &str, now: u64) -> Value {
    json!({
        "user": user,
        "email": inv.email,
        "kind": inv.kind,
        "lang": inv.lang,
        "state": inv.state(now),
        "invited_by": inv.invited_by,
        "created_at": inv.created_at,
        "created_at_utc": iso8601(inv.created_at),
        "expires_at": inv.expires_at,
        "expires_at_utc": iso8601(inv.expires_at),
        "pin_tries": inv.tries,
        "used_at": inv.used_at,
        "mail_error": inv.mail_error,
    })
}

/// Every user's invitation, newest first.
async fn list(cfg: &Config, auth: &Auth) -> AdminReply {
    let now = auth.clock.now();
    let mut rows = Vec::new();
    for u in cfg.users.iter() {
        match auth.store().user(&u.username).await {
            Ok(r) => {
                if let Some(inv) = r.invitation {
                    rows.push(shown(&inv, &u.username, now));
                }
            }
            Err(e) => return unavailable(e),
        }
    }
    rows.sort_by(|a, b| b["created_at"].as_u64().cmp(&a["created_at"].as_u64()));
    reply(200, json!({"invitations": rows, "mail_configured": cfg.mail.is_some()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_four_to_eight_digits() {
        for ok in ["1234", "00000000", "482913"] {
            assert!(check_pin(ok).is_ok(), "{ok}");
        }
        for bad in ["123", "123456789", "12a4", "１２３４", "", " 1234"] {
            assert!(check_pin(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_pin_is_stored_as_a_hash_that_verifies() {
        let h = hash_pin("4821".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$") && !h.contains("4821"));
        assert!(verify_pin(h.clone(), "4821".into()).await);
        assert!(!verify_pin(h, "4822".into()).await);
    }
}
