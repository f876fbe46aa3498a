//! The console's device certificates: the license usage with the replacement
//! allowance, every certificate with its status, set-expiring / expire /
//! revoke on the checked ones (confirmed with the password), and issuing one
//! with a single-use download link. Through `/cert/usage`, `/cert/list`,
//! `/cert/<act>` and `/cert/issue`.

use super::results;
use super::text::T;
use super::view::{escape, table, Section, View};
use super::Ctx;
use crate::proxy::respond::Reply;
use serde_json::{json, Value};

/// At most this many certificates are changed by one form.
const MAX_SERIALS: usize = 50;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn status_text(status: &str) -> T {
    match status {
        "active" => T::StatusActive,
        "expiring" => T::StatusExpiring,
        "expired" => T::StatusExpired,
        _ => T::StatusRevoked,
    }
}

pub async fn page(ctx: &Ctx<'_>) -> Reply {
    let v = &ctx.view;
    if ctx.portal.config.device_certificates.is_none() {
        return ctx.message(200, Some(Section::Certs), T::CertsNotConfigured);
    }
    let (s1, usage) = ctx.call_json("GET", "/cert/usage", &Value::Null).await;
    let (s2, list) = ctx.call_json("POST", "/cert/list", &json!({})).await;
    if s1 != 200 || s2 != 200 {
        return ctx.message(503, Some(Section::Certs), T::StoreDown);
    }
    let n = |k: &str| usage[k].as_u64().unwrap_or(0).to_string();
    let usage_rows = vec![
        vec![escape(v.t(T::UsageContracted)), n("contracted")],
        vec![escape(v.t(T::UsageActive)), n("active")],
        vec![escape(v.t(T::UsageExpiring)), n("expiring")],
        vec![escape(v.t(T::UsageExpired)), n("expired")],
        vec![escape(v.t(T::UsageRevoked)), n("revoked")],
        vec![
            escape(v.t(T::UsageAllowance)),
            v.tf(
                T::UsageAllowanceValue,
                &[("used", &n("uses_in_window")), ("allowed", &n("uses_allowed")), ("left", &n("uses_left"))],
            ),
        ],
        vec![escape(v.t(T::UsageCanIssue)), n("can_issue_now")],
    ];
    let mut body = format!("<h2>{}</h2>\n", escape(v.t(T::UsageTitle)));
    body.push_str(&table(&["", ""], &usage_rows));

    body.push_str(&format!("<h2>{}</h2>\n", escape(v.t(T::NavCerts))));
    let certs = list["certificates"].as_array().cloned().unwrap_or_default();
    if certs.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(v.t(T::NoCerts))));
    } else {
        body.push_str(&v.form("/.portcullis/admin/cert/change"));
        let head = [
            v.t(T::ColSelect),
            v.t(T::ColUser),
            v.t(T::ColDevice),
            v.t(T::ColSerial),
            v.t(T::ColStatus),
            v.t(T::ColIssued),
            v.t(T::ColStops),
        ];
        let rows: Vec<Vec<String>> = certs
            .iter()
            .map(|c| {
                let (serial, status) = (s(&c["serial"]), s(&c["status"]));
                let select = if status == "revoked" || status == "expired" {
                    String::new()
                } else {
                    View::checkbox("serial", serial, serial)
                };
                let stops = match (status, c["expires_at"].as_u64().or(c["not_after"].as_u64())) {
                    ("active" | "expiring", Some(t)) => ctx.local(t),
                    _ => String::new(),
                };
                vec![
                    select,
                    format!("<span class=\"mono\">{}</span>", escape(s(&c["user"]))),
                    escape(s(&c["device"])),
                    format!("<code>{}</code>", escape(serial)),
                    escape(v.t(status_text(status))),
                    escape(&c["issued_at"].as_u64().map(|t| ctx.local(t)).unwrap_or_default()),
                    escape(&stops),
                ]
            })
            .collect();
        body.push_str(&table(&head, &rows));
        body.push_str(&format!(
            "<p class=\"hint\">{}</p>\n<label for=\"act\">{}</label>\n<select id=\"act\" name=\"act\">\
             <option value=\"set-expiring\">{}</option><option value=\"expire\">{}</option><option value=\"revoke\">{}</option></select>\n",
            escape(v.t(T::CertActionsHint)),
            escape(v.t(T::CertAction)),
            escape(v.t(T::CertSetExpiring)),
            escape(v.t(T::CertExpire)),
            escape(v.t(T::CertRevoke)),
        ));
        body.push_str(&v.confirm_and_submit(T::CertApply, true));
    }

    body.push_str(&format!("<h2>{}</h2>\n", escape(v.t(T::IssueTitle))));
    body.push_str(&v.form("/.portcullis/admin/cert/issue"));
    let mut users: Vec<&str> = ctx.portal.config.users.iter().map(|u| u.username.as_str()).collect();
    users.sort_unstable();
    body.push_str(&format!(
        "<label for=\"issue-user\">{}</label>\n<select id=\"issue-user\" name=\"user\">",
        escape(v.t(T::IssueUser))
    ));
    for u in users {
        body.push_str(&format!("<option>{}</option>", escape(u)));
    }
    body.push_str(&format!(
        "</select>\n<label for=\"device\">{}</label>\n<input type=\"text\" id=\"device\" name=\"device\" required maxlength=\"64\">\n\
         <button type=\"submit\">{}</button>\n</form>\n",
        escape(v.t(T::IssueDevice)),
        escape(v.t(T::IssueButton)),
    ));
    ctx.page(200, Some(Section::Certs), v.t(T::CertsTitle), &body)
}

/// `POST /.portcullis/admin/cert/change`: `act` on each checked serial, one
/// admin API call each (each confirms the password; a wrong one stops at the first).
pub async fn act(ctx: &Ctx<'_>) -> Reply {
    let serials: Vec<&str> = ctx.req.all("serial").take(MAX_SERIALS).collect();
    let route = match ctx.req.all("act").next() {
        Some(a @ ("set-expiring" | "expire" | "revoke")) => a,
        _ => return results::refused(ctx, Section::Certs, T::NothingSelected),
    };
    if serials.is_empty() {
        return results::refused(ctx, Section::Certs, T::NothingSelected);
    }
    let password = ctx.req.all("confirm_password").next().unwrap_or("");
    let mut rows = Vec::new();
    for serial in serials {
        let (status, v) = ctx
            .call_json("POST", &format!("/cert/{route}"), &json!({"serial": serial, "confirm_password": password}))
            .await;
        if matches!(v["error"].as_str(), Some("wrong_confirmation" | "confirmation_required" | "locked")) {
            // Nothing further is tried: the first answer says why.
            return results::show(ctx, Section::Certs, status, &v);
        }
        let user = v["certificate"]["user"].as_str().or(v["user"].as_str()).unwrap_or("");
        let label = if user.is_empty() { serial.to_string() } else { format!("{user} · {serial}") };
        rows.push(json!({
            "user": label,
            "ok": status == 200,
            "result": if status == 200 { "done" } else { "refused" },
            "reason": v["reason"],
            "message": v["message"],
        }));
    }
    let status = if rows.iter().any(|r| r["ok"] == true) { 200 } else { 409 };
    results::show(ctx, Section::Certs, status, &json!({"results": rows}))
}

/// `POST /.portcullis/admin/cert/issue`: issue with a download link, and show it.
pub async fn issue(ctx: &Ctx<'_>) -> Reply {
    let v = &ctx.view;
    let user = ctx.req.field("user").unwrap_or("").trim();
    let device = ctx.req.field("device").unwrap_or("").trim();
    let (status, r) =
        ctx.call_json("POST", "/cert/issue", &json!({"user": user, "device": device, "link": true})).await;
    let back = format!(
        "<p><a href=\"{}?lang={}\">{}</a></p>\n",
        Section::Certs.path(),
        v.lang.code(),
        escape(v.t(T::BackLink))
    );
    if status != 200 {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n{back}",
            v.tf(T::IssueRefused, &[("message", r["message"].as_str().unwrap_or(""))])
        );
        return ctx.page(status, Some(Section::Certs), v.t(T::IssueTitle), &body);
    }
    // The link on the user's own app host when there is one, else on this host.
    let link = r["url"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://{}{}", ctx.req.authority(), r["path"].as_str().unwrap_or("")));
    let body = format!(
        "<p class=\"ok\">{}</p>\n<h2>{}</h2>\n<p><a href=\"{link}\"><code>{link}</code></a></p>\n<h2>{}</h2>\n<p><code id=\"bundle-password\">{}</code></p>\n{back}",
        v.tf(T::IssuedText, &[("serial", s(&r["serial"])), ("user", s(&r["user"])), ("device", s(&r["device"]))]),
        escape(v.t(T::IssuedLink)),
        escape(v.t(T::IssuedPassword)),
        escape(s(&r["password"])),
        link = escape(&link),
    );
    ctx.page(200, Some(Section::Certs), v.t(T::IssuedTitle), &body)
}
