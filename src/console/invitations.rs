//! The console's invitations: the list (pending, used, expired, voided, and a
//! mail that was not sent with its reason and a Resend button), and the form
//! that invites a user (the PIN typed twice). Through `GET /invitations`,
//! `POST /invite`, `/invite/resend` and `/invite/cancel`.

use super::text::T;
use super::view::{escape, table, Section};
use super::Ctx;
use crate::proxy::respond::Reply;
use serde_json::{json, Value};

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn state_text(state: &str) -> T {
    match state {
        "used" => T::InvStateUsed,
        "expired" => T::InvStateExpired,
        "voided" => T::InvStateVoided,
        _ => T::InvStatePending,
    }
}

pub async fn page(ctx: &Ctx<'_>) -> Reply {
    page_with(ctx, None).await
}

/// The page, with `notice` (HTML, from an action) above the list.
async fn page_with(ctx: &Ctx<'_>, notice: Option<(bool, String)>) -> Reply {
    let v = &ctx.view;
    let (status, list) = ctx.call_json("GET", "/invitations", &Value::Null).await;
    if status != 200 {
        return ctx.message(503, Some(Section::Invitations), T::StoreDown);
    }
    let mut body = String::new();
    if let Some((ok, html)) = &notice {
        let class = if *ok { "ok" } else { "error" };
        body.push_str(&format!("<p class=\"{class}\" role=\"status\">{html}</p>\n"));
    }
    body.push_str(&format!("<p>{}</p>\n", escape(v.t(T::InvIntro))));
    let mail_on = list["mail_configured"] == true;
    if !mail_on {
        body.push_str(&format!("<p class=\"error\">{}</p>\n", escape(v.t(T::InvMailOff))));
    }
    let rows = list["invitations"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(v.t(T::InvNone))));
    } else {
        let head = [
            v.t(T::ColUser),
            v.t(T::ColEmail),
            v.t(T::ColState),
            v.t(T::ColExpires),
            v.t(T::ColMail),
            v.t(T::ColBy),
            "",
        ];
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let (user, state) = (s(&r["user"]), s(&r["state"]));
                let mail = match r["mail_error"].as_str() {
                    None => escape(v.t(T::InvMailSent)),
                    Some(reason) => {
                        format!("<span class=\"error\">{}</span>", v.tf(T::InvMailNotSent, &[("reason", reason)]))
                    }
                };
                let actions = if state == "pending" {
                    let form = |action: &str, label: T| {
                        format!(
                            "{}<input type=\"hidden\" name=\"user\" value=\"{}\"><button type=\"submit\">{}</button></form>",
                            v.form(action),
                            escape(user),
                            escape(v.t(label))
                        )
                    };
                    let mut a = String::new();
                    if mail_on {
                        a.push_str(&form("/.portcullis/admin/invite/resend", T::InvResend));
                    }
                    a.push_str(&form("/.portcullis/admin/invite/cancel", T::InvCancel));
                    a
                } else {
                    String::new()
                };
                vec![
                    format!("<span class=\"mono\">{}</span>", escape(user)),
                    escape(s(&r["email"])),
                    escape(v.t(state_text(state))),
                    escape(&r["expires_at"].as_u64().map(|t| ctx.local(t)).unwrap_or_default()),
                    mail,
                    escape(s(&r["invited_by"])),
                    actions,
                ]
            })
            .collect();
        body.push_str(&table(&head, &cells));
    }
    if mail_on {
        body.push_str(&invite_form(ctx));
    }
    ctx.page(200, Some(Section::Invitations), v.t(T::InvTitle), &body)
}

fn invite_form(ctx: &Ctx<'_>) -> String {
    let v = &ctx.view;
    let mut users: Vec<&str> = ctx.portal.config.users.iter().map(|u| u.username.as_str()).collect();
    users.sort_unstable();
    let options: String = users.iter().map(|u| format!("<option>{}</option>", escape(u))).collect();
    let label = |id: &str, t: T| format!("<label for=\"{id}\">{}</label>\n", escape(v.t(t)));
    format!(
        "<h2>{title}</h2>\n{form}{l_user}<select id=\"inv-user\" name=\"user\">{options}</select>\n\
         {l_email}<input type=\"text\" id=\"inv-email\" name=\"email\" inputmode=\"email\" autocomplete=\"off\">\n\
         {l_pin}<input type=\"password\" id=\"inv-pin\" name=\"pin\" inputmode=\"numeric\" pattern=\"[0-9]{{4,8}}\" minlength=\"4\" maxlength=\"8\" autocomplete=\"off\" required>\n\
         {l_pin2}<input type=\"password\" id=\"inv-pin2\" name=\"pin_again\" inputmode=\"numeric\" pattern=\"[0-9]{{4,8}}\" minlength=\"4\" maxlength=\"8\" autocomplete=\"off\" required>\n\
         {l_kind}<select id=\"inv-kind\" name=\"kind\"><option value=\"totp\">{totp}</option><option value=\"approver\">{approver}</option></select>\n\
         {l_lang}<select id=\"inv-lang\" name=\"lang\"><option value=\"\">-</option><option value=\"en\">English</option><option value=\"ja\">日本語</option></select>\n\
         <button type=\"submit\">{send}</button>\n</form>\n",
        title = escape(v.t(T::InvSend)),
        form = v.form("/.portcullis/admin/invite"),
        l_user = label("inv-user", T::InvUser),
        l_email = label("inv-email", T::InvEmail),
        l_pin = label("inv-pin", T::InvPin),
        l_pin2 = label("inv-pin2", T::InvPinAgain),
        l_kind = label("inv-kind", T::InvKind),
        totp = escape(v.t(T::InvKindTotp)),
        approver = escape(v.t(T::InvKindApprover)),
        l_lang = label("inv-lang", T::InvLang),
        send = escape(v.t(T::InvSend)),
    )
}

/// `POST /.portcullis/admin/invite[/resend|/cancel]`: the call, then the list
/// with what happened above it.
pub async fn act(ctx: &Ctx<'_>, sub: &str) -> Reply {
    let v = &ctx.view;
    let field = |name: &str| ctx.req.field(name).unwrap_or("").trim().to_string();
    let user = field("user");
    let (path, body) = match sub {
        "invite" => {
            let (pin, again) = (field("pin"), field("pin_again"));
            if pin != again {
                return page_with(ctx, Some((false, escape(v.t(T::InvPinsDiffer))))).await;
            }
            let opt = |name: &str| Some(field(name)).filter(|s| !s.is_empty());
            (
                "/invite",
                json!({"user": user, "pin": pin, "email": opt("email"), "kind": opt("kind"), "lang": opt("lang")}),
            )
        }
        "invite/resend" => ("/invite/resend", json!({"user": user})),
        _ => ("/invite/cancel", json!({"user": user})),
    };
    let (status, r) = ctx.call_json("POST", path, &body).await;
    let time = r["expires_at"].as_u64().map(|t| ctx.local(t)).unwrap_or_default();
    let (email, reason) = (s(&r["email"]), s(&r["mail_error"]));
    let notice = match (status, sub) {
        (200, "invite") => (true, v.tf(T::InvSent, &[("user", &user), ("email", email), ("time", &time)])),
        (200, "invite/resend") => (true, v.tf(T::InvResent, &[("user", &user), ("email", email)])),
        (200, _) => (true, v.tf(T::InvCancelled, &[("user", &user)])),
        (202, _) => (false, v.tf(T::InvNotSent, &[("user", &user), ("reason", reason)])),
        _ => (false, v.tf(T::Refused, &[("message", s(&r["message"]))])),
    };
    page_with(ctx, Some(notice)).await
}
