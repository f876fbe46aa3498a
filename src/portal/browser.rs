//! The portal's pages: each handler reads like the exchange it implements,
//! calls the login service, and maps the [`Step`] to a page or a redirect.

use super::{form, Portal, Request};
use crate::challenge::cooldown::LocalTime;
use crate::challenge::login::{Stage, Step};
use crate::challenge::pages::{self, Lang, Page, PageCtx, Text};
use crate::identity::cookie::clear_cookie;
use crate::identity::session::{SessionLevel, SESSION_COOKIE};
use crate::proxy::respond::Reply;

/// Which form to show again when a step fails.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Login,
    Totp,
    Recovery,
    EnrollConfirm,
}

fn see_other(location: String) -> Reply {
    Reply::redirect(303, location)
}

fn with_rd(path: &str, rd: &str) -> String {
    if rd.is_empty() {
        path.to_string()
    } else {
        format!("{path}?rd={}", super::redirect::encode_raw(rd))
    }
}

/// `with_rd` keeping the page's language too.
fn with_rd_lang(path: &str, rd: &str, lang: crate::challenge::pages::Lang) -> String {
    let base = with_rd(path, rd);
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}lang={}", lang.code())
}

impl Portal<'_> {
    pub(super) async fn browser(&self, req: &Request) -> Reply {
        // Static files first: they need neither a form token nor a session.
        if req.method == "GET" {
            if let Some(file) = super::push::app_file(&req.path).filter(|_| self.cert_listener.is_none()) {
                return file;
            }
            if req.path == "/.portcullis/static/push-wait.js" {
                return super::push::wait_script();
            }
        }
        let post = req.method == "POST";
        if post && !form::csrf_ok(&self.auth.keys.load(), &req.flow, req.fields.get("csrf")) {
            return self.page(req, Page::Error { message: Text::ErrBadForm });
        }
        match (req.method.as_str(), req.path.as_str()) {
            (_, p) if self.cert_listener.is_some() && !super::cert_login::served_on_listener(p) => {
                self.page(req, Page::Error { message: Text::ErrCertListenerOnly })
            }
            // Every step there needs the certificate, still counting: one
            // revoked during the second factor ends the login.
            (_, p) if self.cert_listener.is_some() && p != super::cert_login::PATH && !self.peer_cert.counts() => {
                self.page(req, Page::Error { message: self.peer_cert.refusal().0 })
            }
            ("GET", "/.portcullis/" | "/.portcullis") => self.dashboard(req).await,
            ("GET", super::cert_login::PATH) => self.cert_login_page(req).await,
            ("GET", "/.portcullis/login") => self.login_page(req),
            ("POST", "/.portcullis/login") => self.login_post(req).await,
            ("GET", "/.portcullis/otp") => self.otp_page(req).await,
            ("POST", "/.portcullis/otp") => self.code_post(req, Form::Totp).await,
            ("GET", "/.portcullis/recovery") => self.page(req, Page::Recovery { error: None }),
            ("POST", "/.portcullis/recovery") => self.code_post(req, Form::Recovery).await,
            ("GET", "/.portcullis/enroll") => self.enroll_page(req).await,
            ("GET", "/.portcullis/enroll/confirm") => {
                self.page(req, Page::EnrollConfirm { error: None, clock_hint: false })
            }
            ("POST", "/.portcullis/enroll/confirm") => self.enroll_confirm(req).await,
            ("POST", "/.portcullis/recovery/regenerate") => self.regenerate(req).await,
            ("POST", "/.portcullis/logout") => self.logout(req).await,
            ("POST", "/.portcullis/passes/revoke") => self.revoke_own_pass(req).await,
            ("GET", "/.portcullis/push") => self.push_wait_page(req).await,
            ("POST", "/.portcullis/push") => self.push_continue(req).await,
            ("POST", "/.portcullis/push/again") => self.push_again(req).await,
            ("GET", "/.portcullis/approvers") => self.approvers_page(req, false).await,
            ("POST", "/.portcullis/approvers/link") => self.approvers_page(req, true).await,
            ("POST", "/.portcullis/approvers/remove") => self.approver_remove(req).await,
            ("GET", "/.portcullis/approver") => see_other("/.portcullis/approver/".into()),
            ("GET", "/.portcullis/session") => self.handoff_page(req).await,
            ("GET", "/.portcullis/handoff") => self.refused_handoff(req, self.handoff_mint(req).await),
            ("GET" | "POST", crate::devices::link::DOWNLOAD_PATH) => self.cert_download(req).await,
            _ => self.page(req, Page::Error { message: Text::ErrNotFound }),
        }
    }

    /// Renders a page with the common context (CSRF token, language switch, contact, rd).
    pub(super) fn page(&self, req: &Request, page: Page<'_>) -> Reply {
        let csrf = form::csrf_token(&self.auth.keys.load(), &req.flow);
        let rd = req.rd();
        let switch = |lang: &str| {
            let mut href = format!("{}?lang={lang}", req.path);
            if !rd.is_empty() {
                href.push_str("&rd=");
                href.push_str(&super::redirect::encode_raw(&rd));
            }
            if let Some(code) = req.field("enroll") {
                href.push_str("&enroll=");
                href.push_str(&super::redirect::encode_raw(code));
            }
            href
        };
        let (en, ja) = (switch("en"), switch("ja"));
        let ctx = PageCtx {
            lang: req.lang,
            csrf: &csrf,
            contact: self.contact(),
            switch_en_href: &en,
            switch_ja_href: &ja,
            rd: &rd,
            cert_login: self.offers_cert_login(),
        };
        Reply::page(pages::status(&page), pages::render(&page, &ctx))
    }

    fn login_page(&self, req: &Request) -> Reply {
        if self.session.is_some() {
            return see_other(self.return_location(req, &req.rd()));
        }
        self.page(req, Page::Login { username: "", error: None })
    }

    async fn login_post(&self, req: &Request) -> Reply {
        let (Some(user), Some(password)) = (req.field("username"), req.field("password")) else {
            return self.page(req, Page::Login { username: "", error: Some(Text::ErrMissingCredentials) });
        };
        if user.trim().is_empty() || password.is_empty() {
            return self.page(req, Page::Login { username: user, error: Some(Text::ErrMissingCredentials) });
        }
        let step = self.password_step(req, user, password).await;
        self.step(req, step, Form::Login, user).await
    }

    async fn otp_page(&self, req: &Request) -> Reply {
        if self.auth.login.attempt(&req.flow, Stage::Totp).await.is_ok() {
            return self.page(req, Page::Totp { error: None, clock_hint: false });
        }
        // A signed-in browser asked for a second factor it skipped elsewhere: step up.
        let Some(s) = self.session.filter(|_| self.cert_listener.is_none()) else {
            return see_other(with_rd_lang("/.portcullis/login", &req.rd(), req.lang));
        };
        // Nothing to step up: no new session (its lifetime would start again,
        // or it would drop the second factor) and no handoff code (a GET).
        let skip = self.config.groups[s.facts.group].otp_skip.eval(&self.facts);
        if s.session.level == SessionLevel::BothFactors || skip {
            return see_other(self.return_location(req, &req.rd()));
        }
        let step = self.auth.login.step_up(self.config, self.app, &self.facts, &req.flow, &s.session, &req.rd()).await;
        match step {
            Step::NeedTotp => self.page(req, Page::Totp { error: None, clock_hint: false }),
            other => self.step(req, other, Form::Totp, "").await,
        }
    }

    async fn code_post(&self, req: &Request, form: Form) -> Reply {
        let code = req.field("code").unwrap_or("");
        let login = &self.auth.login;
        let step = if form == Form::Recovery {
            login.recovery(self.config, self.client_ip, &req.flow, code).await
        } else {
            login.totp(self.config, self.client_ip, &req.flow, code).await
        };
        self.step(req, step, form, "").await
    }

    async fn enroll_page(&self, req: &Request) -> Reply {
        match self.auth.login.enroll_start(self.config, &req.flow).await {
            Ok(e) => {
                let page = Page::EnrollStart {
                    qr_svg: &e.qr_svg,
                    otpauth_uri: &e.otpauth_uri,
                    key_string: &e.key_string,
                    period: e.period,
                };
                self.page(req, page)
            }
            Err(step) => self.step(req, step, Form::EnrollConfirm, "").await,
        }
    }

    async fn enroll_confirm(&self, req: &Request) -> Reply {
        let code = req.field("code").unwrap_or("");
        match self.auth.login.enroll_confirm(self.config, self.client_ip, &req.flow, code).await {
            Ok((Step::Done { session, rd }, codes)) => {
                let next = self.after_login(req, &session, &rd).await;
                self.page(req, Page::RecoveryCodes { codes: &codes, continue_href: &next })
                    .with_cookies(self.signed_in(req, &session).await)
            }
            Ok((other, _)) | Err(other) => self.step(req, other, Form::EnrollConfirm, "").await,
        }
    }

    /// The app host's side of a handoff: a ticket starts it, a code ends it.
    async fn handoff_page(&self, req: &Request) -> Reply {
        let result = match req.field("code") {
            Some(_) => self.handoff_redeem(req).await,
            None => self.handoff_start(req),
        };
        self.refused_handoff(req, result)
    }

    fn refused_handoff(&self, req: &Request, result: Result<Reply, super::handoff::Refused>) -> Reply {
        result.unwrap_or_else(|why| {
            crate::audit!("handoff_refused", host = %req.host, why = ?why);
            self.page(req, Page::Error { message: Text::ErrSessionExpired })
        })
    }

    async fn dashboard(&self, req: &Request) -> Reply {
        let Some(s) = self.session else {
            return see_other("/.portcullis/login".into());
        };
        let Some(user) = self.config.users.get(&s.session.user) else {
            return see_other("/.portcullis/login".into());
        };
        let rec = match self.auth.store().user(&user.username).await {
            Ok(r) => r,
            Err(_) => return self.page(req, Page::Unavailable),
        };
        let level = level_text(req.lang, s.session.level);
        let certs = self.cert_rows(&user.username);
        let Ok(passes) = self.pass_rows(&user.username).await else {
            return self.page(req, Page::Unavailable);
        };
        self.page(
            req,
            Page::Dashboard {
                display_name: &user.display_name,
                username: &user.username,
                has_totp: rec.totp.as_ref().is_some_and(|t| t.confirmed),
                recovery_left: rec.recovery.len(),
                session_level: level,
                certs: certs.as_deref(),
                passes: passes.as_deref(),
            },
        )
    }

    async fn regenerate(&self, req: &Request) -> Reply {
        let Some(s) = self.session.filter(|s| s.session.level == SessionLevel::BothFactors) else {
            return self.page(req, Page::Error { message: Text::ErrSessionExpired });
        };
        match self.auth.login.regenerate_recovery(&s.session.user).await {
            Ok(codes) => self.page(req, Page::RecoveryCodes { codes: &codes, continue_href: "/.portcullis/" }),
            Err(step) => self.step(req, step, Form::Login, "").await,
        }
    }

    async fn logout(&self, req: &Request) -> Reply {
        let everywhere = req.field("everywhere") == Some("1");
        if let Some(s) = self.session {
            if let Err(e) = self.auth.sign_out(&s.session, everywhere).await {
                tracing::warn!("sign-out could not be recorded: {e}");
                return self.page(req, Page::Unavailable);
            }
        }
        self.page(req, Page::SignedOut).with_header("set-cookie", clear_cookie(SESSION_COOKIE))
    }

    /// A first-factor step as the sign-in form would show it.
    pub(super) async fn login_step(&self, req: &Request, step: Step) -> Reply {
        self.step(req, step, Form::Login, "").await
    }

    /// Maps a login step to what the browser sees.
    async fn step(&self, req: &Request, step: Step, form: Form, username: &str) -> Reply {
        let error = |t: Text, hint: bool| match form {
            Form::Login => Page::Login { username, error: Some(t) },
            Form::Totp => Page::Totp { error: Some(t), clock_hint: hint },
            Form::Recovery => Page::Recovery { error: Some(t) },
            Form::EnrollConfirm => Page::EnrollConfirm { error: Some(t), clock_hint: hint },
        };
        let wrong = if form == Form::Recovery { Text::ErrWrongRecoveryCode } else { Text::ErrWrongCode };
        match step {
            Step::Done { session, rd } => {
                see_other(self.after_login(req, &session, &rd).await).with_cookies(self.signed_in(req, &session).await)
            }
            // The chosen language goes along on every redirect of the flow.
            Step::NeedTotp => see_other(format!("/.portcullis/otp?lang={}", req.lang.code())),
            Step::NeedPush => see_other(format!("/.portcullis/push?lang={}", req.lang.code())),
            Step::NeedEnroll => see_other(format!("/.portcullis/enroll?lang={}", req.lang.code())),
            Step::Denied => self.page(req, Page::Denied),
            Step::AskAdmin => self.page(req, Page::AskAdmin),
            Step::Locked => self.page(req, Page::Locked),
            Step::Cooldown { until } => {
                let t = LocalTime(until, self.config.totp.utc_offset).to_string();
                self.page(req, Page::Cooldown { until_text: &t })
            }
            Step::WrongCredentials => self.page(req, error(Text::ErrBadCredentials, false)),
            Step::WrongCode => self.page(req, error(wrong, true)),
            Step::Replayed => self.page(req, error(Text::ErrCodeUsed, false)),
            Step::NoAttempt => self.page(req, Page::Error { message: Text::ErrSessionExpired }),
            Step::Unavailable => self.page(req, Page::Unavailable),
            Step::TooMany => self.page(req, Page::TooMany),
            Step::Busy => self
                .page(req, Page::Unavailable)
                .with_header("retry-after", crate::challenge::login::BUSY_RETRY_AFTER.to_string()),
        }
    }
}

fn level_text(lang: Lang, level: SessionLevel) -> &'static str {
    match level {
        SessionLevel::BothFactors => pages::text(lang, Text::LevelBothFactors),
        SessionLevel::FirstFactor => pages::text(lang, Text::LevelFirstFactor),
    }
}
