//! The page every console action ends on: the outcome per user (or per
//! certificate), or why nothing was done (a wrong confirmation password, a
//! refusal, nothing selected).

use super::text::T;
use super::view::{escape, table, Section};
use super::Ctx;
use crate::proxy::respond::Reply;
use serde_json::Value;

/// Nothing was done, for `why`; a link back to the section.
pub fn refused(ctx: &Ctx<'_>, section: Section, why: T) -> Reply {
    let body = format!("<p class=\"error\" role=\"alert\">{}</p>\n{}", escape(ctx.view.t(why)), back(ctx, section));
    ctx.page(if why == T::NothingSelected { 400 } else { 403 }, Some(section), ctx.view.t(T::ResultTitle), &body)
}

fn back(ctx: &Ctx<'_>, section: Section) -> String {
    format!(
        "<p><a href=\"{}?lang={}\">{}</a></p>\n",
        section.path(),
        ctx.view.lang.code(),
        escape(ctx.view.t(T::BackLink))
    )
}

/// The answer of an admin API call that acted on users (`results`), or its error.
pub fn show(ctx: &Ctx<'_>, section: Section, status: u16, v: &Value) -> Reply {
    let view = &ctx.view;
    let why = match v["error"].as_str() {
        None => None,
        Some("wrong_confirmation") => Some(T::WrongConfirmation),
        Some("confirmation_required") => Some(T::ConfirmMissing),
        Some("locked") => Some(T::ConfirmLocked),
        Some("store_unavailable" | "busy") => Some(T::StoreDown),
        Some(_) if v["results"].is_array() => None,
        Some(_) => {
            // A refusal the rules gave (one certificate, say): its message as sent.
            let msg = v["message"].as_str().unwrap_or("");
            let body = format!(
                "<p class=\"error\" role=\"alert\">{}</p>\n{}",
                view.tf(T::Refused, &[("message", msg)]),
                back(ctx, section)
            );
            return ctx.page(status, Some(section), view.t(T::ResultTitle), &body);
        }
    };
    if let Some(why) = why {
        return refused(ctx, section, why);
    }
    let rows: Vec<Vec<String>> = v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let (text, ok) = outcome(ctx, r);
            let class = if ok { "ok" } else { "error" };
            vec![
                format!("<span class=\"mono\">{}</span>", escape(r["user"].as_str().unwrap_or(""))),
                format!("<span class=\"{class}\">{text}</span>"),
            ]
        })
        .collect();
    let body = format!(
        "<p>{}</p>\n{}{}",
        escape(view.t(T::ResultIntro)),
        table(&[view.t(T::ColUser), view.t(T::ColResult)], &rows),
        back(ctx, section)
    );
    ctx.page(status, Some(section), view.t(T::ResultTitle), &body)
}

/// One user's outcome in words (HTML), and whether it went through.
fn outcome(ctx: &Ctx<'_>, r: &Value) -> (String, bool) {
    let v = &ctx.view;
    let plain = |t: T| escape(v.t(t));
    match (r["result"].as_str().unwrap_or(""), r["reason"].as_str()) {
        ("unlocked", _) => (plain(T::ResUnlocked), true),
        ("not_locked", _) => (plain(T::ResNotLocked), true),
        ("revoked", _) => {
            let time = r["ready_at"].as_u64().map(|t| ctx.local(t)).unwrap_or_default();
            (v.tf(T::ResRevoked, &[("time", &time)]), true)
        }
        ("signed_out", _) => (plain(T::ResSignedOut), true),
        ("refused", Some("yourself")) => (plain(T::ResYourself), false),
        ("refused", Some("master_only")) => (plain(T::ResMasterOnly), false),
        ("store_unavailable", _) => (plain(T::ResUnavailable), false),
        (_, _) if r["ok"] == true => (plain(T::ResDone), true),
        (_, _) => (v.tf(T::Refused, &[("message", r["message"].as_str().unwrap_or(""))]), false),
    }
}
