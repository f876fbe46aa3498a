//! The console's audit page: a filter form (GET) and the audit file's
//! matching lines, newest first, through `POST /audit` (see
//! `admin::audit_read` for what each filter matches).

use super::text::T;
use super::view::{escape, table, Section};
use super::Ctx;
use crate::proxy::respond::Reply;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The filters the form offers, with their labels.
const FILTERS: [(&str, T); 5] = [
    ("actor", T::FilterActor),
    ("action", T::FilterAction),
    ("target", T::FilterTarget),
    ("result", T::FilterResult),
    ("event", T::ColEvent),
];

pub async fn page(ctx: &Ctx<'_>) -> Reply {
    let v = &ctx.view;
    let values: Vec<(&str, T, String)> =
        FILTERS.iter().map(|&(k, label)| (k, label, ctx.req.field(k).unwrap_or("").trim().to_string())).collect();
    let mut query = json!({});
    for (k, _, value) in values.iter().filter(|(_, _, value)| !value.is_empty()) {
        query[*k] = value.as_str().into();
    }
    let (status, answer) = ctx.call_json("POST", "/audit", &query).await;
    if answer["error"] == "not_configured" {
        return ctx.message(200, Some(Section::Audit), T::AuditNotConfigured);
    }
    let mut body = format!("<p>{}</p>\n", escape(v.t(T::AuditIntro)));
    let _ = writeln!(body, "<form method=\"get\" action=\"{}\" role=\"search\">", Section::Audit.path());
    for (k, label, value) in &values {
        let _ = write!(
            body,
            "<label for=\"{k}\">{}</label>\n<input type=\"text\" id=\"{k}\" name=\"{k}\" value=\"{}\">\n",
            escape(v.t(*label)),
            escape(value),
        );
    }
    let _ = write!(
        body,
        "<input type=\"hidden\" name=\"lang\" value=\"{}\">\n<button type=\"submit\">{}</button>\n</form>\n",
        v.lang.code(),
        escape(v.t(T::FilterButton)),
    );
    if status != 200 {
        let msg = answer["message"].as_str().unwrap_or("");
        let _ =
            writeln!(body, "<p class=\"error\" role=\"alert\">{}</p>", v.tf(T::AuditUnreadable, &[("message", msg)]));
        return ctx.page(status, Some(Section::Audit), v.t(T::AuditTitle), &body);
    }
    let entries = answer["entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        let _ = writeln!(body, "<p>{}</p>", escape(v.t(T::NoAuditLines)));
    } else {
        let head = [
            v.t(T::ColTime),
            v.t(T::ColEvent),
            v.t(T::ColActor),
            v.t(T::ColRole),
            v.t(T::ColAction),
            v.t(T::ColTarget),
            v.t(T::ColResult),
            v.t(T::ColFrom),
        ];
        let rows: Vec<Vec<String>> = entries.iter().map(|e| row(ctx, e)).collect();
        body.push_str(&table(&head, &rows));
    }
    if answer["truncated"] == true {
        let n = entries.len().to_string();
        let _ = writeln!(body, "<p class=\"hint\">{}</p>", v.tf(T::AuditTruncated, &[("n", &n)]));
    }
    if answer["older_unread"] == true {
        let _ = writeln!(body, "<p class=\"hint\">{}</p>", escape(v.t(T::AuditOlderUnread)));
    }
    ctx.page(200, Some(Section::Audit), v.t(T::AuditTitle), &body)
}

/// One line's cells (HTML). Lines name things their own way: a login step
/// has a `user` and an `outcome`, an admin call a `path` and a `status`.
fn row(ctx: &Ctx<'_>, e: &Value) -> Vec<String> {
    let text = |k: &str| match &e[k] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    let first = |keys: &[&str]| keys.iter().map(|k| text(k)).find(|s| !s.is_empty()).unwrap_or_default();
    let time = e["at"].as_u64().map(|t| ctx.local(t)).unwrap_or_else(|| text("timestamp"));
    let mono = |s: String| if s.is_empty() { s } else { format!("<span class=\"mono\">{}</span>", escape(&s)) };
    let role = text("role");
    let role = match role.as_str() {
        "user" | "admin" | "master" => ctx.view.role_name(&role).to_string(),
        _ => role,
    };
    vec![
        escape(&time),
        mono(text("event")),
        mono(if e["actor"].is_string() { text("actor") } else { text("user") }),
        escape(&role),
        mono(first(&["action", "path"])),
        mono(first(&["target", "user"])),
        escape(&first(&["result", "outcome", "status"])),
        mono(first(&["from", "client_ip"])),
    ]
}
