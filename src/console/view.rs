//! The console's page frame and the pieces its pages share: the navigation,
//! forms that carry the CSRF token, the confirmation password field, tables.
//! Everything interpolated is escaped (`escape`, `fill`); no scripts.

use super::text::T;
pub use crate::challenge::pages::html::escape;
use crate::challenge::pages::html::fill;
use crate::challenge::pages::Lang;
use std::fmt::Write as _;

/// The console's own stylesheet: wider than the sign-in pages, for tables.
const STYLE: &str = "\
body{margin:0;padding:1rem;font-family:system-ui,sans-serif;line-height:1.5;background:#f4f5f7;color:#1c1e21}
header,main{max-width:72rem;margin:0 auto}
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:.5rem;margin-bottom:.5rem}
header p{margin:0;color:#4a5058}
nav.sections ul,nav.lang ul{list-style:none;margin:0;padding:0}nav.sections li,nav.lang li{display:inline;margin-right:1rem}
nav a[aria-current]{color:inherit;font-weight:700;text-decoration:none}
main{background:#fff;border:1px solid #d5d9de;border-radius:8px;padding:1.25rem 1.5rem;overflow-x:auto}
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{font-size:.9rem;color:#4a5058;white-space:nowrap}
label{display:block;font-weight:600;margin-top:1rem}
input[type=text],input[type=password],input[type=search],select{box-sizing:border-box;width:100%;max-width:24rem;font-family:inherit;font-size:1rem;padding:.45rem;border:1px solid #767d86;border-radius:4px}
input[type=checkbox]{width:1.2rem;height:1.2rem}
button,.button{display:inline-block;font-family:inherit;margin-top:1rem;padding:.55rem 1.1rem;font-size:1rem;border:0;border-radius:4px;background:#1d5fbf;color:#fff;text-decoration:none;cursor:pointer}
button.danger{background:#b3261e}
:focus-visible{outline:3px solid #e8a400;outline-offset:2px}
.error{background:#fdecec;border-left:4px solid #b3261e;color:#8c1d18;padding:.5rem .75rem}
.ok{background:#e7f4ea;border-left:4px solid #1e7b34;padding:.5rem .75rem}
.hint{color:#4a5058;font-size:.9rem}
code,.mono{font-family:ui-monospace,monospace;font-size:.9rem;overflow-wrap:anywhere}
.mono{white-space:nowrap}
td.ok,td.error{padding:.35rem .6rem}
:lang(ja){line-break:strict}
";

/// The console's sections, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Users,
    Locked,
    Revoke,
    Invitations,
    Certs,
    Policy,
    Audit,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Users,
        Section::Locked,
        Section::Revoke,
        Section::Invitations,
        Section::Certs,
        Section::Policy,
        Section::Audit,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Section::Users => "/.portcullis/admin/",
            Section::Locked => "/.portcullis/admin/locked",
            Section::Revoke => "/.portcullis/admin/revoke",
            Section::Invitations => "/.portcullis/admin/invitations",
            Section::Certs => "/.portcullis/admin/certs",
            Section::Policy => "/.portcullis/admin/policy",
            Section::Audit => "/.portcullis/admin/audit",
        }
    }

    fn label(self) -> T {
        match self {
            Section::Users => T::NavUsers,
            Section::Locked => T::NavLocked,
            Section::Revoke => T::NavRevoke,
            Section::Invitations => T::NavInvitations,
            Section::Certs => T::NavCerts,
            Section::Policy => T::NavPolicy,
            Section::Audit => T::NavAudit,
        }
    }
}

/// What every console page knows: the language, the administrator, the form token.
pub struct View<'a> {
    pub lang: Lang,
    pub admin: &'a str,
    pub role: &'a str,
    pub csrf: &'a str,
    /// The page's own path and query (without `lang`), for the language switch.
    pub here: &'a str,
}

impl View<'_> {
    pub fn t(&self, key: T) -> &'static str {
        key.get(self.lang)
    }

    /// `key` with its placeholders filled; everything escaped.
    pub fn tf(&self, key: T, values: &[(&str, &str)]) -> String {
        fill(self.t(key), values)
    }

    pub fn role_name(&self, role: &str) -> &'static str {
        self.t(match role {
            "master" => T::RoleMaster,
            "admin" => T::RoleAdmin,
            _ => T::RoleUser,
        })
    }

    /// A complete page: header (who, language), section navigation, `body` (HTML).
    pub fn document(&self, section: Option<Section>, title: &str, body: &str) -> String {
        let title = escape(title);
        let console = escape(self.t(T::Console));
        let mut out = String::with_capacity(STYLE.len() + body.len() + 2048);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"robots\" content=\"noindex\">\n\
             <title>{title} · {console}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<header>\n<p>{who} · <a href=\"/.portcullis/\">{back}</a></p>\n",
            lang = self.lang.code(),
            who = self.tf(T::SignedInAs, &[("user", self.admin), ("role", self.role_name(self.role))]),
            back = escape(self.t(T::BackToPortal)),
        );
        self.language_switch(&mut out);
        let _ = write!(out, "</header>\n<header><nav class=\"sections\" aria-label=\"{console}\"><ul>");
        for s in Section::ALL {
            let current = if Some(s) == section { " aria-current=\"page\"" } else { "" };
            let (path, lang) = (s.path(), self.lang.code());
            let _ = write!(out, "<li><a href=\"{path}?lang={lang}\"{current}>{}</a></li>", escape(self.t(s.label())));
        }
        let _ = write!(out, "</ul></nav></header>\n<main>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n");
        out
    }

    fn language_switch(&self, out: &mut String) {
        let sep = if self.here.contains('?') { '&' } else { '?' };
        let _ = write!(out, "<nav class=\"lang\" aria-label=\"Language / 言語\"><ul>");
        for (lang, name) in [(Lang::En, "English"), (Lang::Ja, "日本語")] {
            let current = if lang == self.lang { " aria-current=\"true\"" } else { "" };
            let code = lang.code();
            let href = escape(&format!("{}{sep}lang={code}", self.here));
            let _ = write!(out, "<li><a href=\"{href}\" lang=\"{code}\" hreflang=\"{code}\"{current}>{name}</a></li>");
        }
        out.push_str("</ul></nav>\n");
    }

    /// Opens a POST form to `action` with the CSRF token first (so it is
    /// among the fields read however many boxes are checked).
    pub fn form(&self, action: &str) -> String {
        format!(
            "<form method=\"post\" action=\"{}?lang={}\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
            escape(action),
            self.lang.code(),
            escape(self.csrf)
        )
    }

    /// The confirmation password field and the submit button.
    pub fn confirm_and_submit(&self, button: T, danger: bool) -> String {
        format!(
            "<label for=\"confirm_password\">{label}</label>\n\
             <input type=\"password\" id=\"confirm_password\" name=\"confirm_password\" autocomplete=\"current-password\" required>\n\
             <p class=\"hint\">{hint}</p>\n<button type=\"submit\"{class}>{button}</button>\n</form>\n",
            label = escape(self.t(T::ConfirmLabel)),
            hint = escape(self.t(T::ConfirmHint)),
            class = if danger { " class=\"danger\"" } else { "" },
            button = escape(self.t(button)),
        )
    }

    /// A checkbox named `name` with `value`, labelled for screen readers by `label`.
    pub fn checkbox(name: &str, value: &str, label: &str) -> String {
        format!(
            "<input type=\"checkbox\" name=\"{}\" value=\"{}\" aria-label=\"{}\">",
            escape(name),
            escape(value),
            escape(label)
        )
    }
}

/// A table: header cells (text) and rows of cells (already HTML).
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}
