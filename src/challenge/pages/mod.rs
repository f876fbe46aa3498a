//! The portal pages under `/.portcullis/`: sign-in, second factor, enrollment, the
//! account dashboard and the stop pages (locked, denied, unavailable, ...).
//!
//! Pages are plain server-rendered HTML that work without JavaScript and load nothing
//! from elsewhere, so they fit the portal's CSP (`default-src 'none'; style-src
//! 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'`).
//! Two pages add a script of the portal's own (`script-src 'self'`): the push wait
//! (it waits for the answer) and the recovery codes (their Copy button).
//! Above every title a line names the app being signed in to and, once the
//! password is through, the user.
//! Every text comes from the catalog of the page's language; everything interpolated
//! is escaped. Forms post to these paths, with these field names (besides `csrf`, and
//! `rd` when a return target is given):
//!
//! | form                  | action                            | fields                |
//! |-----------------------|-----------------------------------|-----------------------|
//! | sign in               | (the URL it was served from)      | `username`, `password`|
//! | authenticator code    | `/.portcullis/otp`                | `code`                |
//! | recovery code         | `/.portcullis/recovery`           | `code`                |
//! | confirm enrollment    | `/.portcullis/enroll/confirm`     | `code`                |
//! | new recovery codes    | `/.portcullis/recovery/regenerate`| —                     |
//! | sign out (everywhere) | `/.portcullis/logout`             | (`everywhere=1`)      |
//!
//! Every POST is answered with a redirect to a GET page (post/redirect/get), so
//! a refresh never sends a form again; see `crate::portal::prg`.
//!
//! The sign-in form has no `action`, so it posts back to `/.portcullis/login` with the
//! query it was served with (an enrollment link's `enroll=` survives). Other
//! actions and portal links carry `?lang=` so a language picked with the switch
//! stays picked through the flow without a cookie.

mod body;
mod catalog;
mod en;
pub mod html;
mod ja;
mod lang;

pub use crate::devices::registry::CertStatus;
pub use catalog::{text, Text};
pub use html::escape;
pub use lang::Lang;

/// Whom a page is for, as the line above its title says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    /// Before the password: the app only.
    Nobody,
    /// Between the password and the second factor.
    SigningIn(&'a str),
    SignedIn(&'a str),
}

/// Data every page needs.
pub struct PageCtx<'a> {
    pub lang: Lang,
    /// What the user is signing in to: the app's display name.
    pub app: &'a str,
    /// Where the dashboard's "Back to {app}" goes (a path here or an app's `https:` URL).
    pub app_href: &'a str,
    pub who: Who<'a>,
    /// A message for a page whose form lives elsewhere (an expired form on the
    /// dashboard, say), shown above everything else.
    pub notice: Option<Text>,
    /// The CSRF token every form carries in a hidden `csrf` input.
    pub csrf: &'a str,
    /// The organization's contact line, shown on the locked, denied and similar pages.
    pub contact: Option<&'a str>,
    /// The current URL with `lang=en` / `lang=ja`, other query parameters preserved.
    pub switch_en_href: &'a str,
    pub switch_ja_href: &'a str,
    /// Validated return target carried in a hidden `rd` input; may be empty.
    pub rd: &'a str,
    /// The sign-in page offers "Log in with device certificate".
    pub cert_login: bool,
}

/// One of the user's device certificates as the dashboard lists it. Times
/// come formatted by the caller, in local time with their offset.
pub struct CertRow {
    pub device: String,
    pub serial: String,
    /// The status now, with time applied.
    pub status: CertStatus,
    pub issued: String,
    /// When it stops working (or stopped); shown for all but revoked.
    pub until: String,
    /// Works now and stops working within 14 days: the dashboard warns.
    pub stops_soon: bool,
}

/// One of the user's entrance passes as the dashboard lists it (times
/// formatted by the caller, in local time with their offset).
pub struct PassRow {
    pub id: String,
    pub browser: String,
    pub issued: String,
    pub issued_from: String,
    pub last_seen: String,
    /// The pass of the browser showing the page.
    pub this_browser: bool,
}

/// Which page, with its data.
pub enum Page<'a> {
    /// Username and password.
    Login {
        username: &'a str,
        error: Option<Text>,
    },
    /// An emailed invitation: the password and the activation PIN, before enrollment.
    Invitation {
        username: &'a str,
        /// The link's code, posted back with the form.
        code: &'a str,
        error: Option<Text>,
        /// PIN tries left before the invitation is void (after a wrong PIN).
        tries_left: Option<u32>,
    },
    /// The 6-digit authenticator code.
    Totp {
        error: Option<Text>,
        clock_hint: bool,
    },
    /// A one-time recovery code instead of the authenticator code.
    Recovery {
        error: Option<Text>,
    },
    /// Enrollment step 1: QR code (trusted, server-generated SVG) and key string.
    EnrollStart {
        qr_svg: &'a str,
        /// The same as a link: a phone cannot scan its own screen.
        otpauth_uri: &'a str,
        key_string: &'a str,
        period: u64,
    },
    /// Enrollment step 2: the first code confirms the authenticator app.
    EnrollConfirm {
        error: Option<Text>,
        clock_hint: bool,
    },
    /// Recovery codes, shown once (enrollment step 3, or after regenerating).
    RecoveryCodes {
        codes: &'a [String],
        continue_href: &'a str,
    },
    /// Who am I, my second factors, sign out.
    Dashboard {
        display_name: &'a str,
        username: &'a str,
        has_totp: bool,
        recovery_left: usize,
        session_level: &'a str,
        /// The user's device certificates; `None` without `[device_certificates]`.
        certs: Option<&'a [CertRow]>,
        /// The user's working entrance passes; `None` without `[entrance_pass]`.
        passes: Option<&'a [PassRow]>,
        /// The user is a master or admin: link the admin console.
        administers: bool,
    },
    /// "Approve login on your device": the number, or why no push was sent.
    PushWait {
        /// The number to pick on the device; `None` when no request is out.
        number: Option<u8>,
        /// Why no push was sent, or how the last one ended.
        notice: Option<Text>,
        /// When to retry (local time), for `notice`s that have one.
        retry_at: &'a str,
        /// The user has an authenticator: offer the TOTP form instead.
        has_totp: bool,
    },
    /// The user's approver devices, with the QR code of a new enrollment link.
    Approvers {
        devices: &'a [(String, String, String)],
        qr_svg: Option<&'a str>,
        link: Option<&'a str>,
    },
    Locked,
    /// Access refused by policy; names no internal detail.
    Denied,
    /// A second factor is required but none is enrolled.
    AskAdmin,
    /// After a token revocation; the caller formats the time.
    Cooldown {
        until_text: &'a str,
    },
    Unavailable,
    TooMany,
    SignedOut,
    /// Generic error: bad or expired form, missing CSRF token, ...
    Error {
        message: Text,
    },
}

/// Renders a complete HTML document.
pub fn render(page: &Page<'_>, ctx: &PageCtx<'_>) -> String {
    let switch = [(Lang::En, ctx.switch_en_href), (Lang::Ja, ctx.switch_ja_href)];
    let mut body = String::new();
    if let Some(t) = ctx.notice {
        body = format!("<p id=\"notice\" class=\"error\" role=\"alert\">{}</p>\n", escape(text(ctx.lang, t)));
    }
    body.push_str(&body::render(page, ctx));
    html::document(ctx.lang, title(page), switch, &context_line(ctx), &body)
}

/// "Signing in to Wiki as alice": the app (`#app-name`) and the user (`#user-name`).
fn context_line(ctx: &PageCtx<'_>) -> String {
    let app = format!("<strong id=\"app-name\">{}</strong>", escape(ctx.app));
    let (template, user) = match ctx.who {
        Who::Nobody => (Text::SigningInTo, String::new()),
        Who::SigningIn(u) => (Text::SigningInAs, format!("<strong id=\"user-name\">{}</strong>", escape(u))),
        Who::SignedIn(u) => (Text::SignedInTo, format!("<strong id=\"user-name\">{}</strong>", escape(u))),
    };
    let line = html::fill_html(text(ctx.lang, template), &[("app", &app), ("user", &user)]);
    format!("<p class=\"context\">{line}</p>\n")
}

/// The HTTP status a page is usually served with.
pub fn status(page: &Page<'_>) -> u16 {
    match page {
        Page::Locked | Page::Denied => 403,
        Page::Unavailable => 503,
        Page::TooMany => 429,
        Page::Error { message: Text::ErrNotFound | Text::ErrCertLoginOff | Text::ErrCertListenerOnly } => 404,
        Page::Error {
            message:
                Text::ErrCertAbsent
                | Text::ErrCertUnregistered
                | Text::ErrCertRevoked
                | Text::ErrCertExpired
                | Text::ErrCertUnknownUser,
        } => 403,
        Page::Error { message: Text::InviteUsed | Text::InviteExpired | Text::InviteVoided | Text::InviteUnknown } => {
            410
        }
        Page::Error { .. } => 400,
        _ => 200,
    }
}

fn title(page: &Page<'_>) -> Text {
    match page {
        Page::Login { .. } => Text::LoginTitle,
        Page::Invitation { .. } => Text::InviteTitle,
        Page::Totp { .. } => Text::TotpTitle,
        Page::Recovery { .. } => Text::RecoveryTitle,
        Page::EnrollStart { .. } | Page::EnrollConfirm { .. } => Text::EnrollTitle,
        Page::RecoveryCodes { .. } => Text::RecoveryCodesTitle,
        Page::Dashboard { .. } => Text::DashboardTitle,
        Page::PushWait { .. } => Text::PushTitle,
        Page::Approvers { .. } => Text::ApproversTitle,
        Page::Locked => Text::LockedTitle,
        Page::Denied => Text::DeniedTitle,
        Page::AskAdmin => Text::AskAdminTitle,
        Page::Cooldown { .. } => Text::CooldownTitle,
        Page::Unavailable => Text::UnavailableTitle,
        Page::TooMany => Text::TooManyTitle,
        Page::SignedOut => Text::SignedOutTitle,
        Page::Error { .. } => Text::ErrorTitle,
    }
}

#[cfg(test)]
mod tests;
