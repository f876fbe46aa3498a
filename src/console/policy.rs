//! The console's policy page: the loaded config, read-only — networks,
//! policy groups with their conditions as the config wrote them, apps,
//! `[entrance_pass]` — and a "what would happen" form (GET) answered on the
//! same page through `POST /decide`, the admin API twin of `portcullis decide`.

use super::text::T;
use super::view::{escape, table, Section};
use super::Ctx;
use crate::config::{Config, DeviceCertMode, SecondFactor};
use crate::policy::expr::Condition;
use crate::policy::ip::NetworkId;
use crate::proxy::respond::Reply;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::Duration;

pub async fn page(ctx: &Ctx<'_>) -> Reply {
    let v = &ctx.view;
    let cfg = ctx.portal.config;
    let mut body = format!("<p>{}</p>\n", escape(v.t(T::PolicyIntro)));
    body.push_str(&what_if(ctx).await);
    body.push_str(&networks(ctx, cfg));
    body.push_str(&groups(ctx, cfg));
    body.push_str(&apps(ctx, cfg));
    body.push_str(&entrance_pass(ctx, cfg));
    ctx.page(200, Some(Section::Policy), v.t(T::PolicyTitle), &body)
}

/// A condition as the config wrote it.
fn cond(c: &Condition) -> String {
    format!("<code>{}</code>", escape(c.source()))
}

fn heading(ctx: &Ctx<'_>, key: T) -> String {
    format!("<h2>{}</h2>\n", escape(ctx.view.t(key)))
}

fn networks(ctx: &Ctx<'_>, cfg: &Config) -> String {
    let v = &ctx.view;
    let mut out = heading(ctx, T::NetworksTitle);
    if cfg.networks.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(v.t(T::NoNetworks)));
        return out;
    }
    let rows: Vec<Vec<String>> = (0..cfg.networks.len() as u8)
        .map(NetworkId)
        .map(|id| {
            let prefixes: Vec<String> = cfg.networks.prefixes(id).map(|p| escape(&p.to_string())).collect();
            vec![
                format!("<code>{}</code>", escape(cfg.networks.name(id))),
                format!("<code>{}</code>", prefixes.join(", ")),
            ]
        })
        .collect();
    out.push_str(&table(&[v.t(T::ColNetwork), v.t(T::ColPrefixes)], &rows));
    out
}

fn groups(ctx: &Ctx<'_>, cfg: &Config) -> String {
    let v = &ctx.view;
    let rows: Vec<Vec<String>> = cfg
        .groups
        .iter()
        .map(|g| {
            let factors: Vec<&str> = g
                .second_factors
                .iter()
                .map(|f| match f {
                    SecondFactor::Totp => v.t(T::TotpEnrolled),
                    SecondFactor::Push => v.t(T::FactorPush),
                })
                .collect();
            vec![
                format!("<code>{}</code>", escape(&g.name)),
                cond(&g.allow),
                cond(&g.otp_skip),
                cond(&g.enroll_when),
                escape(&factors.join(", ")),
                escape(&format!("{} / {}", duration(g.session_lifetime), duration(g.idle_timeout))),
            ]
        })
        .collect();
    let head = [
        v.t(T::ColGroup),
        v.t(T::ColAllow),
        v.t(T::ColOtpSkip),
        v.t(T::ColEnrollWhen),
        v.t(T::ColFactors),
        v.t(T::ColSession),
    ];
    heading(ctx, T::GroupsTitle) + &table(&head, &rows)
}

fn apps(ctx: &Ctx<'_>, cfg: &Config) -> String {
    let v = &ctx.view;
    let rows: Vec<Vec<String>> = cfg
        .apps
        .iter()
        .map(|a| {
            let hosts: Vec<String> = a.hosts.iter().map(|h| escape(h)).collect();
            let groups: Vec<String> = a.policy_groups.iter().map(|&g| escape(&cfg.groups[g].name)).collect();
            let mode = match a.device_cert {
                DeviceCertMode::Off => T::DeviceCertOff,
                DeviceCertMode::Request => T::DeviceCertRequest,
                DeviceCertMode::Require => T::DeviceCertRequire,
            };
            vec![
                format!("<code>{}</code>", escape(&a.name)),
                format!("<code>{}</code>", hosts.join("<br>")),
                groups.join(", "),
                cond(&a.bypass),
                escape(v.t(mode)),
            ]
        })
        .collect();
    let head = [v.t(T::ColApp), v.t(T::ColHosts), v.t(T::ColGroups), v.t(T::ColBypass), v.t(T::ColDeviceCert)];
    heading(ctx, T::AppsTitle) + &table(&head, &rows)
}

fn entrance_pass(ctx: &Ctx<'_>, cfg: &Config) -> String {
    let v = &ctx.view;
    let mut out = heading(ctx, T::PassTitle);
    let Some(p) = &cfg.entrance_pass else {
        let _ = writeln!(out, "<p>{}</p>", escape(v.t(T::PassOff)));
        return out;
    };
    let yes_no = |b: bool| escape(v.t(if b { T::Yes } else { T::No }));
    let rows = vec![
        vec![escape(v.t(T::PassIssueWhen)), cond(&p.issue_when)],
        vec![escape(v.t(T::PassLifetime)), escape(&duration(p.lifetime))],
        vec![escape(v.t(T::PassRenew)), yes_no(p.renew_on_use)],
    ];
    out.push_str(&table(&["", ""], &rows));
    out
}

/// A duration as the config writes them: `180d`, `12h`, `1h30m`, `90s`.
fn duration(d: Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= secs {
            let _ = write!(out, "{}{unit}", left / secs);
            left %= secs;
        }
    }
    out
}

/// The form, and (when it was sent) the answer above it.
async fn what_if(ctx: &Ctx<'_>) -> String {
    let v = &ctx.view;
    let req = ctx.req;
    let text = |k: &str| req.field(k).unwrap_or("").trim().to_string();
    let checked = |k: &str| req.field(k).is_some_and(|x| !x.is_empty());
    let (user, host, address) = (text("user"), text("host"), text("address"));
    let mut out = heading(ctx, T::WhatIfTitle);
    let _ = writeln!(out, "<p>{}</p>", escape(v.t(T::WhatIfIntro)));
    if !host.is_empty() || !address.is_empty() {
        let mut q = json!({
            "host": host,
            "address": address,
            "second_factor": checked("second_factor") && !user.is_empty(),
            "entrance_pass": checked("entrance_pass"),
            "device_cert": checked("device_cert"),
        });
        if !user.is_empty() {
            q["user"] = user.clone().into();
        }
        let (status, answer) = ctx.call_json("POST", "/decide", &q).await;
        out.push_str(&show_answer(ctx, status, &answer));
    }
    let mut hosts: Vec<&str> = ctx.portal.config.apps.iter().flat_map(|a| a.hosts.iter().map(String::as_str)).collect();
    hosts.sort_unstable();
    let field = |id: &str, label: T, value: &str, list: Option<&str>| {
        format!(
            "<label for=\"{id}\">{}</label>\n<input type=\"text\" id=\"{id}\" name=\"{id}\" value=\"{}\"{}>\n",
            escape(v.t(label)),
            escape(value),
            list.map(|l| format!(" list=\"{l}\"")).unwrap_or_default(),
        )
    };
    let checkbox = |id: &str, label: T| {
        format!(
            "<label><input type=\"checkbox\" name=\"{id}\" value=\"1\"{}> {}</label>\n",
            if checked(id) { " checked" } else { "" },
            escape(v.t(label)),
        )
    };
    let _ = writeln!(out, "<form method=\"get\" action=\"{}\">", Section::Policy.path());
    out.push_str(&field("host", T::WhatIfHost, &host, Some("known-hosts")));
    out.push_str("<datalist id=\"known-hosts\">");
    for h in hosts.iter().filter(|h| !h.starts_with("*.")) {
        let _ = write!(out, "<option value=\"{}\">", escape(h));
    }
    out.push_str("</datalist>\n");
    out.push_str(&field("address", T::WhatIfAddress, &address, None));
    out.push_str(&field("user", T::WhatIfUser, &user, None));
    out.push_str(&checkbox("second_factor", T::WhatIfSecondFactor));
    out.push_str(&checkbox("entrance_pass", T::WhatIfPass));
    out.push_str(&checkbox("device_cert", T::WhatIfCert));
    let _ = write!(
        out,
        "<input type=\"hidden\" name=\"lang\" value=\"{}\">\n<button type=\"submit\">{}</button>\n</form>\n",
        v.lang.code(),
        escape(v.t(T::WhatIfButton)),
    );
    out
}

/// `POST /decide`'s answer as a small table, or why there is none.
fn show_answer(ctx: &Ctx<'_>, status: u16, a: &Value) -> String {
    let v = &ctx.view;
    if status != 200 {
        let msg = a["message"].as_str().unwrap_or("");
        return format!(
            "<p class=\"error\" role=\"alert\" id=\"decide-answer\">{}</p>\n",
            v.tf(T::DecideRefused, &[("message", msg)])
        );
    }
    let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
    let action = match s("action").as_str() {
        "forward" => T::ActForward,
        "challenge_login" => T::ActLogin,
        "challenge_second_factor" => T::ActSecondFactor,
        _ => T::ActDeny,
    };
    let networks: Vec<String> =
        a["networks"].as_array().into_iter().flatten().filter_map(Value::as_str).map(escape).collect();
    let networks =
        if networks.is_empty() { escape(v.t(T::AnsNone)) } else { format!("<code>{}</code>", networks.join(", ")) };
    let otp = match a.get("otp_required") {
        Some(Value::Bool(b)) => escape(v.t(if *b { T::Yes } else { T::No })),
        Some(_) => escape(v.t(T::AnsNoSession)),
        // Refused before the policy is asked (a required device certificate).
        None => "—".to_string(),
    };
    let class = if s("action") == "forward" { "ok" } else { "error" };
    let rows = vec![
        vec![escape(v.t(T::AnsAction)), format!("<span class=\"{class}\">{}</span>", escape(v.t(action)))],
        vec![escape(v.t(T::AnsRule)), format!("<code>{}</code>", escape(&s("rule")))],
        vec![escape(v.t(T::ColApp)), format!("<code>{}</code>", escape(&s("app")))],
        vec![escape(v.t(T::ColGroup)), escape(&s("policy_group"))],
        vec![escape(v.t(T::AnsNetworks)), networks],
        vec![escape(v.t(T::AnsOtp)), otp],
    ];
    format!(
        "<section id=\"decide-answer\" aria-live=\"polite\">\n<h3>{}</h3>\n{}</section>\n",
        escape(v.t(T::AnswerTitle)),
        table(&["", ""], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_config_writes_them() {
        assert_eq!(duration(Duration::from_secs(180 * 86_400)), "180d");
        assert_eq!(duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
