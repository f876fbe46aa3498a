//! Post/redirect/get: every form's POST is answered with a 303 to a GET page,
//! so a refresh or the back button never sends a form again (a password, a
//! one-time code, a sign-out). What the POST has to say on that page travels
//! in its URL as one fixed word (`error=wrong-code`, `notice?is=locked`),
//! never as text or as anything the user typed (a password typed into the
//! name field must not land in the browser's history): anyone can craft such
//! a URL, and all it can do is show one of the catalog's messages.
//! Every URL keeps the page's language and the return target.

use super::redirect::encode_raw;
use super::Request;
use crate::challenge::pages::{Page, Text};

/// The stop pages' GET: `/.portcullis/notice?is=locked`.
pub const NOTICE: &str = "/.portcullis/notice";

/// An error a form's page shows again after its POST, as its URL word.
pub fn error_word(t: Text) -> &'static str {
    match t {
        Text::ErrBadCredentials => "credentials",
        Text::ErrMissingCredentials => "missing",
        Text::ErrWrongCode => "wrong-code",
        Text::ErrWrongRecoveryCode => "wrong-recovery-code",
        Text::ErrCodeUsed => "used",
        _ => "form",
    }
}

/// The error a form page was sent back with (`error=`), if any.
pub fn error_flag(req: &Request) -> Option<Text> {
    Some(match req.field("error")? {
        "credentials" => Text::ErrBadCredentials,
        "missing" => Text::ErrMissingCredentials,
        "wrong-code" => Text::ErrWrongCode,
        "wrong-recovery-code" => Text::ErrWrongRecoveryCode,
        "used" => Text::ErrCodeUsed,
        "form" => Text::ErrBadForm,
        _ => return None,
    })
}

/// A page that stands alone after a POST: the flow stops there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Locked,
    Denied,
    AskAdmin,
    /// Until this time (Unix seconds).
    Cooldown(u64),
    Unavailable,
    TooMany,
    /// The login (or session) this form belonged to is gone.
    Expired,
    SignedOut,
}

impl Notice {
    fn word(self) -> &'static str {
        match self {
            Notice::Locked => "locked",
            Notice::Denied => "denied",
            Notice::AskAdmin => "ask-admin",
            Notice::Cooldown(_) => "cooldown",
            Notice::Unavailable => "unavailable",
            Notice::TooMany => "too-many",
            Notice::Expired => "expired",
            Notice::SignedOut => "signed-out",
        }
    }

    /// The notice a `GET /.portcullis/notice` names; `None` for anything else.
    pub fn of(req: &Request) -> Option<Notice> {
        Some(match req.field("is")? {
            "locked" => Notice::Locked,
            "denied" => Notice::Denied,
            "ask-admin" => Notice::AskAdmin,
            "cooldown" => Notice::Cooldown(req.field("until")?.parse().ok()?),
            "unavailable" => Notice::Unavailable,
            "too-many" => Notice::TooMany,
            "expired" => Notice::Expired,
            "signed-out" => Notice::SignedOut,
            _ => return None,
        })
    }

    /// The page; `until` is the cooldown's end, formatted by the caller.
    pub fn page(self, until: &str) -> Page<'_> {
        match self {
            Notice::Locked => Page::Locked,
            Notice::Denied => Page::Denied,
            Notice::AskAdmin => Page::AskAdmin,
            Notice::Cooldown(_) => Page::Cooldown { until_text: until },
            Notice::Unavailable => Page::Unavailable,
            Notice::TooMany => Page::TooMany,
            Notice::Expired => Page::Error { message: Text::ErrSessionExpired },
            Notice::SignedOut => Page::SignedOut,
        }
    }
}

/// `path` with the page's language, the return target and `extra` (words
/// and numbers only) in its query; on the sign-in page an enrollment link's
/// `enroll=` too.
pub fn here(req: &Request, path: &str, extra: &[(&str, &str)]) -> String {
    let mut url = format!("{path}?lang={}", req.lang.code());
    let rd = req.rd();
    if !rd.is_empty() {
        url.push_str("&rd=");
        url.push_str(&encode_raw(&rd));
    }
    if let Some(code) = req.field("enroll").filter(|_| path == "/.portcullis/login") {
        url.push_str("&enroll=");
        url.push_str(&encode_raw(code));
    }
    for (name, value) in extra {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&encode_raw(value));
    }
    url
}

/// Where a stop page is shown after a POST.
pub fn notice_url(req: &Request, notice: Notice) -> String {
    match notice {
        Notice::Cooldown(until) => here(req, NOTICE, &[("is", notice.word()), ("until", &until.to_string())]),
        _ => here(req, NOTICE, &[("is", notice.word())]),
    }
}

/// The GET page holding the form a POST to `path` came from: where an
/// expired form sends the browser, with `error=form`.
pub fn form_page(path: &str) -> &'static str {
    match path {
        "/.portcullis/login" => "/.portcullis/login",
        "/.portcullis/otp" => "/.portcullis/otp",
        "/.portcullis/recovery" => "/.portcullis/recovery",
        "/.portcullis/enroll/confirm" => "/.portcullis/enroll/confirm",
        "/.portcullis/push" | "/.portcullis/push/again" => "/.portcullis/push",
        "/.portcullis/approvers/link" | "/.portcullis/approvers/remove" => "/.portcullis/approvers",
        _ => "/.portcullis/",
    }
}

/// A portal path the browser lands on, with the page's language unless it
/// has one: the dashboard after a login without a return target.
pub fn with_lang(location: String, req: &Request) -> String {
    if !location.starts_with("/.portcullis/") || location.contains("lang=") {
        return location;
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}lang={}", req.lang.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_error_has_a_word_that_reads_back() {
        for t in [
            Text::ErrBadCredentials,
            Text::ErrMissingCredentials,
            Text::ErrWrongCode,
            Text::ErrWrongRecoveryCode,
            Text::ErrCodeUsed,
            Text::ErrBadForm,
        ] {
            let w = error_word(t);
            assert!(w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{w}");
        }
    }

    #[test]
    fn forms_go_back_to_their_own_page() {
        assert_eq!(form_page("/.portcullis/push/again"), "/.portcullis/push");
        assert_eq!(form_page("/.portcullis/logout"), "/.portcullis/");
        assert_eq!(form_page("/.portcullis/enroll/confirm"), "/.portcullis/enroll/confirm");
    }
}
