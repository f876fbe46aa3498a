//! The body of each page: the markup between `<h1>` and `</main>`.

use super::html::{escape, fill, query_component, safe_href};
use super::{text, CertRow, CertStatus, Page, PageCtx, PassRow, Text};
use std::fmt::Write as _;

const LOGIN: &str = "/.portcullis/login";
const TOTP: &str = "/.portcullis/otp";
const RECOVERY: &str = "/.portcullis/recovery";
const ENROLL: &str = "/.portcullis/enroll";
const ENROLL_CONFIRM: &str = "/.portcullis/enroll/confirm";
const CODES_FILE: &str = "/.portcullis/recovery-codes.txt";
const REGENERATE: &str = "/.portcullis/recovery/regenerate";
const LOGOUT: &str = "/.portcullis/logout";
const DASHBOARD: &str = "/.portcullis/";
const REVOKE_PASS: &str = "/.portcullis/passes/revoke";
const PUSH: &str = "/.portcullis/push";
const PUSH_AGAIN: &str = "/.portcullis/push/again";
const APPROVERS: &str = "/.portcullis/approvers";
const INVITE: &str = "/.portcullis/invite";
const ADMIN_CONSOLE: &str = "/.portcullis/admin/";
const APPROVER_LINK: &str = "/.portcullis/approvers/link";
const APPROVER_REMOVE: &str = "/.portcullis/approvers/remove";
const CERT_LOGIN: &str = crate::portal::cert_login::PATH;

/// Attributes of a one-time-code input, for phones to offer the numeric keypad and
/// codes arriving by notification.
const CODE_INPUT: &str = "type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
                          pattern=\"[0-9]*\" required autofocus";

pub(super) fn render(page: &Page<'_>, ctx: &PageCtx<'_>) -> String {
    let mut b = Body { ctx, out: String::with_capacity(2048) };
    match *page {
        Page::Login { username, error } => b.login(username, error),
        Page::Invitation { username, code, error, tries_left } => b.invitation(username, code, error, tries_left),
        Page::Totp { error, clock_hint } => b.totp(error, clock_hint),
        Page::Recovery { error } => b.recovery(error),
        Page::EnrollStart { qr_svg, otpauth_uri, key_string, period } => {
            b.enroll_start(qr_svg, otpauth_uri, key_string, period)
        }
        Page::EnrollConfirm { error, clock_hint } => b.enroll_confirm(error, clock_hint),
        Page::RecoveryCodes { codes, continue_href } => b.recovery_codes(codes, continue_href),
        Page::Dashboard {
            display_name,
            username,
            has_totp,
            recovery_left,
            session_level,
            certs,
            passes,
            administers,
        } => {
            certs.iter().flat_map(|c| c.iter()).filter(|c| c.stops_soon).for_each(|c| b.cert_banner(c));
            b.dashboard(display_name, username, has_totp, recovery_left, session_level);
            if administers {
                b.link(ADMIN_CONSOLE, false, Text::AdminConsoleLink);
            }
            if let Some(certs) = certs {
                b.certs(certs);
            }
            if let Some(passes) = passes {
                b.passes(passes);
            }
            b.sign_out();
        }
        Page::PushWait { number, notice, retry_at, has_totp } => b.push_wait(number, notice, retry_at, has_totp),
        Page::Approvers { devices, qr_svg, link } => b.approvers(devices, qr_svg, link),
        Page::Locked => {
            b.notice(Text::LockedBody, true);
            // A way back: another user may sign in on this browser.
            b.link(LOGIN, true, Text::SignInAgainLink);
        }
        Page::Denied => b.notice(Text::DeniedBody, true),
        Page::AskAdmin => b.notice(Text::AskAdminBody, true),
        Page::Cooldown { until_text } => {
            let line = fill(text(ctx.lang, Text::CooldownBody), &[("until", until_text)]);
            b.raw_paragraph(&line);
            b.contact();
        }
        Page::Unavailable => {
            b.notice(Text::UnavailableBody, false);
            b.link(LOGIN, true, Text::TryAgainLink);
        }
        Page::TooMany => {
            b.notice(Text::TooManyBody, false);
            b.link(LOGIN, true, Text::TryAgainLink);
        }
        Page::SignedOut => {
            b.notice(Text::SignedOutBody, false);
            b.link(LOGIN, true, Text::SignInAgainLink);
        }
        Page::Error { message } => {
            b.error(Some(message));
            b.link(LOGIN, true, Text::StartOverLink);
        }
    }
    b.out
}

struct Body<'a> {
    ctx: &'a PageCtx<'a>,
    out: String,
}

impl Body<'_> {
    fn invitation(&mut self, username: &str, code: &str, error: Option<Text>, tries_left: Option<u32>) {
        self.paragraph(Text::InviteIntro);
        match (error, tries_left) {
            (Some(Text::ErrWrongPin), Some(left)) => {
                let line = fill(self.text(Text::ErrWrongPin), &[("left", &left.to_string())]);
                let _ = writeln!(self.out, "<p id=\"form-error\" class=\"error\" role=\"alert\">{line}</p>");
            }
            (error, _) => self.error(error),
        }
        self.form_open(Some(INVITE), false);
        let _ = writeln!(
            self.out,
            "<input type=\"hidden\" name=\"u\" value=\"{}\">\n<input type=\"hidden\" name=\"code\" value=\"{}\">",
            escape(username),
            escape(code)
        );
        self.label("username", Text::UsernameLabel);
        let _ = writeln!(
            self.out,
            "<input id=\"username\" type=\"text\" autocomplete=\"username\" readonly value=\"{}\">",
            escape(username)
        );
        self.label("password", Text::PasswordLabel);
        let _ = writeln!(
            self.out,
            "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus>"
        );
        self.label("pin", Text::PinLabel);
        let _ = writeln!(
            self.out,
            "<input id=\"pin\" name=\"pin\" type=\"password\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
             pattern=\"[0-9]{{4,8}}\" minlength=\"4\" maxlength=\"8\" required{}>",
            described_by(error)
        );
        self.hint(Text::PinHint);
        self.form_close(Text::InviteButton);
    }

    fn login(&mut self, username: &str, error: Option<Text>) {
        self.paragraph(Text::LoginIntro);
        self.error(error);
        // No action: the form posts back to the URL it came from, keeping the query
        // (an enrollment link's `enroll=` code, `rd=`, `lang=`).
        self.form_open(None, true);
        let (focus_user, focus_password) = if username.is_empty() { (" autofocus", "") } else { ("", " autofocus") };
        self.label("username", Text::UsernameLabel);
        let _ = writeln!(
            self.out,
            "<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" \
             autocapitalize=\"none\" spellcheck=\"false\" required{focus_user} value=\"{}\">",
            escape(username)
        );
        self.label("password", Text::PasswordLabel);
        let _ = writeln!(
            self.out,
            "<input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required{focus_password}>"
        );
        self.form_close(Text::SignInButton);
        if self.ctx.cert_login {
            // A link, not a form: the browser asks for the certificate on the
            // page it leads to, and it keeps the language and return target.
            self.hint(Text::CertLoginIntro);
            let href = escape(&self.href(CERT_LOGIN, true));
            let _ = writeln!(
                self.out,
                "<p><a id=\"cert-login\" class=\"button secondary\" href=\"{href}\">{}</a></p>",
                self.t(Text::CertLoginButton)
            );
        }
    }

    fn totp(&mut self, error: Option<Text>, clock_hint: bool) {
        self.paragraph(Text::TotpIntro);
        self.code_form(TOTP, error, clock_hint);
        self.link(RECOVERY, true, Text::UseRecoveryCodeLink);
    }

    fn recovery(&mut self, error: Option<Text>) {
        self.paragraph(Text::RecoveryIntro);
        self.error(error);
        self.form_open(Some(RECOVERY), true);
        self.label("code", Text::RecoveryCodeLabel);
        let _ = writeln!(
            self.out,
            "<input id=\"code\" name=\"code\" type=\"text\" autocomplete=\"off\" \
             autocapitalize=\"none\" spellcheck=\"false\" required autofocus{}>",
            described_by(error)
        );
        self.form_close(Text::VerifyButton);
        self.link(TOTP, true, Text::UseAuthenticatorLink);
    }

    fn enroll_start(&mut self, qr_svg: &str, otpauth_uri: &str, key_string: &str, period: u64) {
        self.step(Text::EnrollStep1);
        self.paragraph(Text::EnrollScanQr);
        // The SVG is the server's own output (the QR encoder), not user data.
        let _ = writeln!(
            self.out,
            "<figure class=\"qr\"><div role=\"img\" aria-labelledby=\"qr-caption\">{qr_svg}</div>\
             <figcaption id=\"qr-caption\" class=\"hint\">{}</figcaption></figure>",
            self.t(Text::QrCaption)
        );
        // On the phone itself: the authenticator app opens the otpauth:// link.
        let _ = writeln!(
            self.out,
            "<p><a id=\"otpauth-link\" href=\"{}\">{}</a></p>",
            escape(otpauth_uri),
            self.t(Text::OtpauthLink)
        );
        self.paragraph(Text::EnrollKeyIntro);
        let _ = writeln!(
            self.out,
            "<p>{}: <code class=\"key\">{}</code></p>",
            self.t(Text::EnrollKeyLabel),
            escape(&group_in_fours(key_string))
        );
        let period = period.to_string();
        let details = fill(self.text(Text::EnrollKeyDetails), &[("period", &period)]);
        let _ = writeln!(self.out, "<p class=\"hint\">{details}</p>");
        // A link, not a GET form: a form would put the CSRF token into the URL.
        self.link_as_button(&self.href(ENROLL_CONFIRM, true), Text::NextButton);
    }

    fn enroll_confirm(&mut self, error: Option<Text>, clock_hint: bool) {
        self.step(Text::EnrollStep2);
        self.paragraph(Text::EnrollConfirmIntro);
        self.code_form(ENROLL_CONFIRM, error, clock_hint);
        // The same key again (a pending one is kept for ten minutes).
        let href = escape(&self.href(ENROLL, true));
        let _ = writeln!(self.out, "<p><a id=\"back-to-qr\" href=\"{href}\">{}</a></p>", self.t(Text::EnrollBackLink));
    }

    fn recovery_codes(&mut self, codes: &[String], continue_href: &str) {
        self.paragraph(Text::RecoveryCodesIntro);
        let _ = writeln!(self.out, "<p><strong>{}</strong></p>", self.t(Text::RecoveryCodesOnce));
        self.out.push_str("<ol class=\"codes\" id=\"recovery-codes\">\n");
        for code in codes {
            let _ = writeln!(self.out, "<li><code>{}</code></li>", escape(code));
        }
        self.out.push_str("</ol>\n");
        // Copy needs the script (it unhides the button); the download works without.
        let _ = writeln!(
            self.out,
            "<p class=\"code-actions\"><button type=\"button\" id=\"copy-codes\" class=\"secondary\" hidden \
             data-copied=\"{}\" data-selected=\"{}\">{}</button>\
             <a id=\"download-codes\" class=\"button secondary\" href=\"{}\" download>{}</a></p>\n\
             <p id=\"copy-status\" class=\"hint\" role=\"status\"></p>",
            self.t(Text::CodesCopied),
            self.t(Text::CodesSelected),
            self.t(Text::CopyCodesButton),
            escape(&self.href(CODES_FILE, false)),
            self.t(Text::DownloadCodesLink),
        );
        self.link_as_button(safe_href(continue_href, DASHBOARD), Text::ContinueLink);
        let _ = writeln!(self.out, "<script src=\"/.portcullis/static/recovery-codes.js\" defer></script>");
    }

    fn dashboard(
        &mut self,
        display_name: &str,
        username: &str,
        has_totp: bool,
        recovery_left: usize,
        session_level: &str,
    ) {
        let who = [("name", display_name), ("username", username)];
        let level = [("level", session_level)];
        let lines = [fill(self.text(Text::SignedInAs), &who), fill(self.text(Text::SessionLevel), &level)];
        lines.iter().for_each(|line| self.raw_paragraph(line));
        let back = fill(self.text(Text::BackToApp), &[("app", self.ctx.app)]);
        let href = escape(safe_href(self.ctx.app_href, "/"));
        let _ = writeln!(self.out, "<p><a id=\"back-to-app\" class=\"button\" href=\"{href}\">{back}</a></p>");

        self.heading(Text::SecondFactorsHeading);
        if has_totp {
            let left = recovery_left.to_string();
            let left = fill(self.text(Text::RecoveryCodesLeft), &[("count", &left)]);
            let _ = writeln!(self.out, "<ul><li>{}</li><li>{left}</li></ul>", self.t(Text::TotpEnrolled));
            self.action(REGENERATE, "", Text::RegenerateButton, Some(("regenerate-note", Text::RegenerateNote)));
        } else {
            self.paragraph(Text::TotpNotEnrolled);
        }
        self.link(APPROVERS, false, Text::ApproversLink);
    }

    /// A certificate that stops working within 14 days, above everything else.
    fn cert_banner(&mut self, c: &CertRow) {
        let line = fill(self.text(Text::CertStopsSoon), &[("device", &c.device), ("date", &c.until)]);
        let _ = writeln!(self.out, "<p class=\"warning\" role=\"status\">{line}</p>");
    }

    fn push_wait(&mut self, number: Option<u8>, notice: Option<Text>, retry_at: &str, has_totp: bool) {
        if let Some(n) = number {
            self.paragraph(Text::PushIntro);
            let _ = writeln!(
                self.out,
                "<p class=\"push-number\" aria-label=\"{}\"><strong id=\"push-number\">{n}</strong></p>",
                self.t(Text::PushNumberLabel)
            );
            let _ = writeln!(
                self.out,
                "<p id=\"push-status\" class=\"hint\" role=\"status\">{}</p>",
                self.t(Text::PushWaiting)
            );
            // Without JavaScript this button waits on the server for the answer.
            self.form_open(Some(PUSH), true);
            self.form_close(Text::PushContinueButton);
        }
        if let Some(t) = notice {
            let line = fill(self.text(t), &[("time", retry_at)]);
            let _ = writeln!(self.out, "<p id=\"push-notice\" class=\"error\" role=\"alert\">{line}</p>");
        }
        self.form_open(Some(PUSH_AGAIN), true);
        self.form_close_secondary(Text::PushSendAgainButton);
        if has_totp {
            self.link(TOTP, true, Text::PushUseTotpLink);
            self.link(RECOVERY, true, Text::PushUseRecoveryLink);
        }
        let _ = writeln!(self.out, "<script src=\"/.portcullis/static/push-wait.js\" defer></script>");
    }

    fn approvers(&mut self, devices: &[(String, String, String)], qr_svg: Option<&str>, link: Option<&str>) {
        self.paragraph(Text::ApproversIntro);
        if let (Some(svg), Some(link)) = (qr_svg, link) {
            self.paragraph(Text::ApproverLinkIntro);
            // The SVG is the server's own QR output, not user data.
            let _ = writeln!(self.out, "<figure class=\"qr\">{svg}</figure>");
            let _ = writeln!(self.out, "<p><a id=\"approver-link\" href=\"{0}\">{0}</a></p>", escape(link));
        }
        if devices.is_empty() {
            self.paragraph(Text::ApproversNone);
        } else {
            self.out.push_str("<ul class=\"approvers\">\n");
            for (id, name, added) in devices {
                let _ = writeln!(
                    self.out,
                    "<li data-device=\"{}\"><strong>{}</strong> <span class=\"hint\">{}</span>",
                    escape(id),
                    escape(name),
                    escape(added)
                );
                self.form_open(Some(APPROVER_REMOVE), false);
                let _ = writeln!(self.out, "<input type=\"hidden\" name=\"device\" value=\"{}\">", escape(id));
                self.form_close_secondary(Text::ApproverRemoveButton);
                self.out.push_str("</li>\n");
            }
            self.out.push_str("</ul>\n");
        }
        self.form_open(Some(APPROVER_LINK), false);
        let _ = writeln!(
            self.out,
            "<button type=\"submit\" id=\"add-approver\">{}</button>\n</form>",
            self.t(Text::ApproverAddButton)
        );
        self.link(DASHBOARD, false, Text::DashboardTitle);
    }

    fn passes(&mut self, passes: &[PassRow]) {
        self.heading(Text::PassesHeading);
        self.hint(Text::PassesIntro);
        if passes.is_empty() {
            return self.paragraph(Text::PassesNone);
        }
        self.out.push_str("<ul class=\"passes\">\n");
        for p in passes {
            let details = fill(
                self.text(Text::PassDetails),
                &[("date", &p.issued), ("address", &p.issued_from), ("seen", &p.last_seen)],
            );
            let this = if p.this_browser { format!(" ({})", self.t(Text::PassThisBrowser)) } else { String::new() };
            let _ = writeln!(
                self.out,
                "<li data-pass=\"{}\"><strong>{}</strong>{this}<br><span class=\"hint\">{details}</span>",
                escape(&p.id),
                escape(&p.browser)
            );
            self.form_open(Some(REVOKE_PASS), false);
            let _ = writeln!(self.out, "<input type=\"hidden\" name=\"id\" value=\"{}\">", escape(&p.id));
            self.form_close_secondary(Text::PassRevokeButton);
            self.out.push_str("</li>\n");
        }
        self.out.push_str("</ul>\n");
    }

    fn certs(&mut self, certs: &[CertRow]) {
        self.heading(Text::CertsHeading);
        if certs.is_empty() {
            return self.paragraph(Text::CertsNone);
        }
        self.out.push_str("<ul class=\"certs\">\n");
        for c in certs {
            let status = match c.status {
                CertStatus::Active => Text::CertActive,
                CertStatus::Expiring => Text::CertExpiring,
                CertStatus::Expired => Text::CertExpired,
                CertStatus::Revoked => Text::CertRevoked,
            };
            let status = fill(self.text(status), &[("date", &c.until)]);
            let details = fill(self.text(Text::CertDetails), &[("serial", &c.serial), ("date", &c.issued)]);
            let _ = writeln!(
                self.out,
                "<li data-serial=\"{}\" data-status=\"{}\"><strong>{}</strong>: {status}<br>\
                 <span class=\"hint\">{details}</span></li>",
                escape(&c.serial),
                c.status,
                escape(&c.device)
            );
        }
        self.out.push_str("</ul>\n");
    }

    fn sign_out(&mut self) {
        self.heading(Text::SignOutHeading);
        self.form_open(Some(LOGOUT), false);
        self.form_close(Text::SignOutButton);
        let everywhere = "<input type=\"hidden\" name=\"everywhere\" value=\"1\">\n";
        let note = Some(("everywhere-note", Text::SignOutEverywhereNote));
        self.action(LOGOUT, everywhere, Text::SignOutEverywhereButton, note);
    }

    /// A form of one secondary button with its hint right under it, tied to it
    /// with `aria-describedby`; `hidden` is markup of hidden inputs.
    fn action(&mut self, path: &str, hidden: &str, button: Text, hint: Option<(&str, Text)>) {
        let _ = write!(
            self.out,
            "<form method=\"post\" action=\"{}\" class=\"action\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n{hidden}",
            escape(&self.href(path, false)),
            escape(self.ctx.csrf)
        );
        let described = hint.map(|(id, _)| format!(" aria-describedby=\"{id}\"")).unwrap_or_default();
        let _ =
            writeln!(self.out, "<button type=\"submit\" class=\"secondary\"{described}>{}</button>", self.t(button));
        if let Some((id, t)) = hint {
            let _ = writeln!(self.out, "<p class=\"hint\" id=\"{id}\">{}</p>", self.t(t));
        }
        self.out.push_str("</form>\n");
    }

    /// A stop page: one paragraph, and the contact line where asked.
    fn notice(&mut self, body: Text, with_contact: bool) {
        self.paragraph(body);
        if with_contact {
            self.contact();
        }
    }

    fn code_form(&mut self, action: &str, error: Option<Text>, clock_hint: bool) {
        self.error(error);
        if clock_hint {
            self.hint(Text::ClockHint);
        }
        self.form_open(Some(action), true);
        self.label("code", Text::CodeLabel);
        let _ = writeln!(self.out, "<input id=\"code\" name=\"code\" {CODE_INPUT}{}>", described_by(error));
        self.form_close(Text::VerifyButton);
    }
}

/// The small pieces pages are built from; each appends escaped markup.
impl Body<'_> {
    fn text(&self, t: Text) -> &'static str {
        text(self.ctx.lang, t)
    }

    fn t(&self, t: Text) -> String {
        escape(self.text(t))
    }

    fn paragraph(&mut self, t: Text) {
        let line = self.t(t);
        self.raw_paragraph(&line);
    }

    /// `html` is already escaped.
    fn raw_paragraph(&mut self, html: &str) {
        let _ = writeln!(self.out, "<p>{html}</p>");
    }

    fn hint(&mut self, t: Text) {
        let _ = writeln!(self.out, "<p class=\"hint\">{}</p>", self.t(t));
    }

    fn heading(&mut self, t: Text) {
        let _ = writeln!(self.out, "<h2>{}</h2>", self.t(t));
    }

    fn step(&mut self, t: Text) {
        let _ = writeln!(self.out, "<p><strong>{}</strong></p>", self.t(t));
    }

    fn label(&mut self, input_id: &str, t: Text) {
        let _ = writeln!(self.out, "<label for=\"{input_id}\">{}</label>", self.t(t));
    }

    fn error(&mut self, error: Option<Text>) {
        if let Some(error) = error {
            let _ = writeln!(self.out, "<p id=\"form-error\" class=\"error\" role=\"alert\">{}</p>", self.t(error));
        }
    }

    fn contact(&mut self) {
        if let Some(contact) = self.ctx.contact.filter(|c| !c.trim().is_empty()) {
            let _ = writeln!(self.out, "<p class=\"contact\">{} {}</p>", self.t(Text::ContactPrefix), escape(contact));
        }
    }

    /// A portal path with the page's language and, when asked, the return target.
    fn href(&self, path: &str, with_rd: bool) -> String {
        let mut href = format!("{path}?lang={}", self.ctx.lang.code());
        if with_rd && !self.ctx.rd.is_empty() {
            let _ = write!(href, "&rd={}", query_component(self.ctx.rd));
        }
        href
    }

    fn link(&mut self, path: &str, with_rd: bool, t: Text) {
        let href = escape(&self.href(path, with_rd));
        let _ = writeln!(self.out, "<p><a href=\"{href}\">{}</a></p>", self.t(t));
    }

    fn link_as_button(&mut self, href: &str, t: Text) {
        let _ = writeln!(self.out, "<p><a class=\"button\" href=\"{}\">{}</a></p>", escape(href), self.t(t));
    }

    /// Opens a POST form with the CSRF token and, for the sign-in flow, the return target.
    fn form_open(&mut self, path: Option<&str>, with_rd: bool) {
        let action = match path {
            Some(path) => format!(" action=\"{}\"", escape(&self.href(path, false))),
            None => String::new(),
        };
        let csrf = escape(self.ctx.csrf);
        let _ = writeln!(
            self.out,
            "<form method=\"post\"{action}>\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
        );
        if with_rd && !self.ctx.rd.is_empty() {
            let _ = writeln!(self.out, "<input type=\"hidden\" name=\"rd\" value=\"{}\">", escape(self.ctx.rd));
        }
    }

    fn form_close(&mut self, button: Text) {
        let _ = writeln!(self.out, "<button type=\"submit\">{}</button>\n</form>", self.t(button));
    }

    fn form_close_secondary(&mut self, button: Text) {
        let _ = writeln!(self.out, "<button type=\"submit\" class=\"secondary\">{}</button>\n</form>", self.t(button));
    }
}

/// Points a code input at the error above it, so screen readers read both.
fn described_by(error: Option<Text>) -> &'static str {
    match error {
        Some(_) => " aria-describedby=\"form-error\" aria-invalid=\"true\"",
        None => "",
    }
}

/// `JBSWY3DPEHPK3PXP` → `JBSW Y3DP EHPK 3PXP`, easier to type into desktop apps.
fn group_in_fours(key: &str) -> String {
    let chars: Vec<char> = key.chars().filter(|c| !c.is_whitespace()).collect();
    chars.chunks(4).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_grouped_in_fours_whatever_its_spacing() {
        assert_eq!(group_in_fours("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(group_in_fours("JBS WY3 DPE HPK3PXPAB"), "JBSW Y3DP EHPK 3PXP AB");
        assert_eq!(group_in_fours(""), "");
    }
}
