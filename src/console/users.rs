//! The console's user pages: the user list (search), locked users (check
//! several, unlock), token revocation and sign-out everywhere (a user picker
//! with the cooldown each user will wait). Each reads `GET|POST /users` or
//! `/locked` and acts through `/unlock`, `/revoke-totp`, `/sign-out`.

use super::results;
use super::text::T;
use super::view::{escape, table, Section, View};
use super::Ctx;
use crate::challenge::cooldown::LocalTime;
use crate::proxy::respond::Reply;
use serde_json::{json, Value};

impl Ctx<'_> {
    /// A Unix time in the organisation's local time (`[totp] timezone`).
    pub fn local(&self, at: u64) -> String {
        LocalTime(at, self.portal.config.totp.utc_offset).to_string()
    }

    /// The users as `/users` lists them for `body`, or the page to show instead.
    async fn users(&self, body: Value) -> Result<(Vec<Value>, bool), Reply> {
        let (status, v) = self.call_json("POST", "/users", &body).await;
        if status != 200 {
            return Err(self.message(503, None, T::StoreDown));
        }
        let rows = v["users"].as_array().cloned().unwrap_or_default();
        Ok((rows, v["truncated"] == true))
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The second factors of a `/users` row, in words (HTML).
fn factors(view: &View<'_>, u: &Value) -> String {
    let n = |k: &str| u[k].as_u64().unwrap_or(0).to_string();
    let mut parts = Vec::new();
    match s(&u["totp"]) {
        "enrolled" => parts.push(escape(view.t(T::TotpEnrolled))),
        "pending" => parts.push(escape(view.t(T::TotpPending))),
        _ => {}
    }
    if u["recovery_codes_left"].as_u64().unwrap_or(0) > 0 {
        parts.push(view.tf(T::RecoveryLeft, &[("n", &n("recovery_codes_left"))]));
    }
    if u["approvers"].as_u64().unwrap_or(0) > 0 {
        parts.push(view.tf(T::Approvers, &[("n", &n("approvers"))]));
    }
    if u["device_certs"].as_u64().unwrap_or(0) > 0 {
        parts.push(view.tf(T::Certs, &[("n", &n("device_certs"))]));
    }
    // Each part is HTML already (`tf` escapes its values).
    if parts.is_empty() {
        escape(view.t(T::NoFactor))
    } else {
        parts.join(", ")
    }
}

fn user_cell(u: &Value) -> String {
    format!("<span class=\"mono\">{}</span>", escape(s(&u["user"])))
}

pub async fn users_page(ctx: &Ctx<'_>) -> Reply {
    let q = ctx.req.field("q").unwrap_or("").trim().to_string();
    let (rows, truncated) = match ctx.users(json!({"q": q})).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    let v = &ctx.view;
    let mut body = format!(
        "<form method=\"get\" action=\"{}\" role=\"search\">\n<label for=\"q\">{}</label>\n\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\">\n<input type=\"hidden\" name=\"lang\" value=\"{}\">\n\
         <button type=\"submit\">{}</button>\n</form>\n",
        Section::Users.path(),
        escape(v.t(T::SearchLabel)),
        escape(&q),
        v.lang.code(),
        escape(v.t(T::SearchButton)),
    );
    if rows.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(v.t(T::NoUsers))));
    } else {
        let head = [
            v.t(T::ColUser),
            v.t(T::ColName),
            v.t(T::ColRole),
            v.t(T::ColGroup),
            v.t(T::ColFactors),
            v.t(T::ColLocked),
        ];
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|u| {
                let locked = match &u["locked"] {
                    Value::Null => escape(v.t(T::No)),
                    l => format!("{} — {}", escape(v.t(T::Yes)), escape(s(&l["reason"]))),
                };
                let mut f = factors(v, u);
                if let Some(until) = u["cooldown_until"].as_u64() {
                    f.push_str(&format!(
                        "<br><span class=\"hint\">{}</span>",
                        v.tf(T::CoolingDown, &[("time", &ctx.local(until))])
                    ));
                }
                vec![
                    user_cell(u),
                    escape(s(&u["display_name"])),
                    escape(v.role_name(s(&u["role"]))),
                    escape(s(&u["policy_group"])),
                    f,
                    locked,
                ]
            })
            .collect();
        body.push_str(&table(&head, &cells));
    }
    if truncated {
        body.push_str(&format!("<p class=\"hint\">{}</p>\n", escape(v.t(T::Truncated))));
    }
    ctx.page(200, Some(Section::Users), v.t(T::UsersTitle), &body)
}

pub async fn locked_page(ctx: &Ctx<'_>) -> Reply {
    let (status, locked) = ctx.call_json("GET", "/locked", &Value::Null).await;
    if status != 200 {
        return ctx.message(503, Some(Section::Locked), T::StoreDown);
    }
    let v = &ctx.view;
    let cfg = ctx.portal.config;
    let rows = locked["locked"].as_array().cloned().unwrap_or_default();
    let mut body = format!("<p>{}</p>\n", escape(v.t(T::LockedIntro)));
    // Only the administrator themselves locked: nothing they may unlock, so no form.
    let selectable = rows.iter().any(|l| s(&l["user"]) != v.admin);
    if rows.is_empty() {
        body.push_str(&format!("<p class=\"ok\">{}</p>\n", escape(v.t(T::NobodyLocked))));
    } else {
        if selectable {
            body.push_str(&v.form("/.portcullis/admin/unlock"));
        }
        let head = [
            v.t(T::ColSelect),
            v.t(T::ColUser),
            v.t(T::ColRole),
            v.t(T::ColSince),
            v.t(T::ColUntil),
            v.t(T::ColReason),
        ];
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|l| {
                let user = s(&l["user"]);
                let role = cfg.users.get(user).map_or("user", |u| u.role.name());
                let select = if user == v.admin {
                    // Nobody unlocks themselves: say who can.
                    format!("<span class=\"hint\">{}</span>", self_locked_hint(ctx, user))
                } else {
                    View::checkbox("user", user, user)
                };
                let until = l["until"].as_u64().map_or_else(|| v.t(T::UntilUnlocked).to_string(), |t| ctx.local(t));
                vec![
                    select,
                    format!("<span class=\"mono\">{}</span>", escape(user)),
                    escape(v.role_name(role)),
                    escape(&l["at"].as_u64().map(|t| ctx.local(t)).unwrap_or_default()),
                    escape(&until),
                    escape(s(&l["reason"])),
                ]
            })
            .collect();
        body.push_str(&table(&head, &cells));
        if selectable {
            body.push_str(&v.confirm_and_submit(T::UnlockButton, false));
        }
    }
    let unknown = locked["unknown_name_slots_locked"].as_u64().unwrap_or(0);
    if unknown > 0 {
        body.push_str(&format!("<p class=\"hint\">{}</p>\n", v.tf(T::UnknownSlots, &[("n", &unknown.to_string())])));
    }
    ctx.page(200, Some(Section::Locked), v.t(T::LockedTitle), &body)
}

/// For an administrator who sees themselves locked: who can unlock them, or
/// (no other administrator) the organisation's contact line and the CLI.
pub fn self_locked_hint(ctx: &Ctx<'_>, user: &str) -> String {
    let others = crate::admin::actor::other_administrators(ctx.portal.config, user);
    who_can_unlock(&ctx.view, &others, ctx.portal.contact(), user)
}

fn who_can_unlock(v: &View<'_>, others: &[&str], contact: Option<&str>, user: &str) -> String {
    let mut out = escape(v.t(T::YouAreLocked));
    out.push(' ');
    if others.is_empty() {
        out.push_str(&v.tf(T::NoOtherAdmin, &[("contact", contact.unwrap_or("-")), ("user", user)]));
    } else {
        out.push_str(&v.tf(T::OtherAdmins, &[("names", &others.join(", "))]));
    }
    out
}

pub async fn revoke_page(ctx: &Ctx<'_>) -> Reply {
    let (rows, truncated) = match ctx.users(json!({})).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    let v = &ctx.view;
    let picker = |with_totp_only: bool| -> Vec<Vec<String>> {
        rows.iter()
            .filter(|u| !with_totp_only || s(&u["totp"]) != "none" || u["approvers"].as_u64().unwrap_or(0) > 0)
            .map(|u| {
                let user = s(&u["user"]);
                let select = if user == v.admin {
                    format!("<span class=\"hint\">{}</span>", escape(T::ResYourself.get(v.lang)))
                } else {
                    View::checkbox("user", user, user)
                };
                let wait = u["revoke_now_ready_at"].as_u64().map(|t| ctx.local(t)).unwrap_or_default();
                vec![
                    select,
                    user_cell(u),
                    escape(s(&u["display_name"])),
                    escape(v.role_name(s(&u["role"]))),
                    factors(v, u),
                    escape(&wait),
                ]
            })
            .collect()
    };
    let head =
        [v.t(T::ColSelect), v.t(T::ColUser), v.t(T::ColName), v.t(T::ColRole), v.t(T::ColFactors), v.t(T::ColWait)];
    let mut body = format!("<p>{}</p>\n", escape(v.t(T::RevokeIntro)));
    let with_totp = picker(true);
    if with_totp.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(v.t(T::NoTotpUsers))));
    } else {
        body.push_str(&v.form("/.portcullis/admin/revoke-totp"));
        body.push_str(&table(&head, &with_totp));
        body.push_str(&v.confirm_and_submit(T::RevokeButton, true));
    }
    body.push_str(&format!("<h2>{}</h2>\n<p>{}</p>\n", escape(v.t(T::SignOutTitle)), escape(v.t(T::SignOutIntro))));
    body.push_str(&v.form("/.portcullis/admin/sign-out"));
    let head = &head[..5];
    let all: Vec<Vec<String>> = picker(false)
        .into_iter()
        .map(|mut r| {
            r.truncate(5);
            r
        })
        .collect();
    body.push_str(&table(head, &all));
    body.push_str(&v.confirm_and_submit(T::SignOutButton, true));
    if truncated {
        body.push_str(&format!("<p class=\"hint\">{}</p>\n", escape(v.t(T::Truncated))));
    }
    ctx.page(200, Some(Section::Revoke), v.t(T::RevokeTitle), &body)
}

/// `POST /.portcullis/admin/{unlock,revoke-totp,sign-out}`: the checked users,
/// through the admin API route of the same name, then the per-user results.
pub async fn act(ctx: &Ctx<'_>, route: &str) -> Reply {
    let users: Vec<&str> = ctx.req.all("user").collect();
    let section = if route == "unlock" { Section::Locked } else { Section::Revoke };
    if users.is_empty() {
        return results::refused(ctx, section, T::NothingSelected);
    }
    let password = ctx.req.all("confirm_password").next().unwrap_or("");
    let body = json!({"users": users, "confirm_password": password});
    let (status, v) = ctx.call_json("POST", &format!("/{route}"), &body).await;
    results::show(ctx, section, status, &v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::pages::Lang;

    fn view(lang: Lang) -> View<'static> {
        View { lang, admin: "mia", role: "master", csrf: "t", here: "/.portcullis/admin/locked" }
    }

    #[test]
    fn a_locked_administrator_is_told_who_can_unlock_them_or_the_contact_line() {
        let en = who_can_unlock(&view(Lang::En), &["ada", "adam"], Some("IT desk"), "mia");
        assert!(en.contains("another administrator") && en.contains("ada, adam"), "{en}");
        let alone = who_can_unlock(&view(Lang::En), &[], Some("IT desk <ext. 1234>"), "mia");
        assert!(alone.contains("contact IT desk &lt;ext. 1234&gt;"), "{alone}");
        assert!(alone.contains("portcullis admin unlock mia"), "{alone}");
        let ja = who_can_unlock(&view(Lang::Ja), &[], Some("情報システム部"), "mia");
        assert!(ja.contains("情報システム部 に連絡"), "{ja}");
    }
}
