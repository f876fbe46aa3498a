//! The portal's pages: each handler reads like the exchange it implements,
//! calls the login service, and maps the [`Step`] to a page or a redirect.

use super::prg::{self, Notice};
use super::{form, shown_codes, Portal, Request};
use crate::challenge::cooldown::LocalTime;
use crate::challenge::login::{Stage, Step};
use crate::challenge::pages::{self, Lang, Page, PageCtx, Text, Who};
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
            if req.path == shown_codes::SCRIPT {
                return shown_codes::script();
            }
        }
        let post = req.method == "POST";
        if post && !form::csrf_ok(&self.auth.keys.load(), &req.flow, req.fields.get("csrf")) {
            if crate::console::is_console_path(&req.path) {
                return crate::console::form_refused(self, req);
            }
            // Back to a fresh copy of the form, which says why.
            if req.path == crate::invitations::PATH {
                let (u, code) = (req.field("u").unwrap_or_default(), req.field("code").unwrap_or_default());
                return see_other(prg::here(req, &req.path, &[("u", u), ("code", code), ("error", "form")]));
            }
            if req.path == crate::devices::link::DOWNLOAD_PATH {
                let token = req.field("token").unwrap_or_default();
                return see_other(prg::here(req, &req.path, &[("token", token)]));
            }
            return see_other(prg::here(req, prg::form_page(&req.path), &[("error", "form")]));
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
            (_, p) if crate::console::is_console_path(p) => crate::console::browser(self, req).await,
            ("GET", super::cert_login::PATH) => self.cert_login_page(req).await,
            ("GET", "/.portcullis/login") => self.login_page(req),
            ("GET", crate::invitations::PATH) => self.invite_page(req).await,
            ("POST", crate::invitations::PATH) => self.invite_post(req).await,
            ("POST", "/.portcullis/login") => self.login_post(req).await,
            ("GET", "/.portcullis/otp") => self.otp_page(req).await,
            ("POST", "/.portcullis/otp") => self.code_post(req, Form::Totp).await,
            ("GET", "/.portcullis/recovery") => {
                let who = self.flow_user(req, Stage::Totp).await;
                self.page_for(req, Page::Recovery { error: prg::error_flag(req) }, signing_in(&who))
            }
            ("POST", "/.portcullis/recovery") => self.code_post(req, Form::Recovery).await,
            ("GET", "/.portcullis/enroll") => self.enroll_page(req).await,
            ("GET", "/.portcullis/enroll/confirm") => {
                let who = self.flow_user(req, Stage::Enroll).await;
                let (error, clock_hint) = code_error(req);
                self.page_for(req, Page::EnrollConfirm { error, clock_hint }, signing_in(&who))
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
            ("GET", prg::NOTICE) => self.notice_page(req),
            ("GET", shown_codes::PAGE) => self.codes_page(req).await,
            ("GET", shown_codes::FILE) => self.codes_file(req).await,
            ("GET", "/.portcullis/session") => self.handoff_page(req).await,
            ("GET", "/.portcullis/handoff") => self.refused_handoff(req, self.handoff_mint(req).await),
            ("GET" | "POST", crate::devices::link::DOWNLOAD_PATH) => self.cert_download(req).await,
            _ => self.page(req, Page::Error { message: Text::ErrNotFound }),
        }
    }

    /// Renders a page with the common context (CSRF token, language switch,
    /// contact, rd, the app's name), for the signed-in user if there is one.
    pub(super) fn page(&self, req: &Request, page: Page<'_>) -> Reply {
        let user = self.session.map(|s| s.session.user.as_str());
        self.page_for(req, page, user.map_or(Who::Nobody, Who::SignedIn))
    }

    /// [`Portal::page`] naming `who` above the title.
    pub(super) fn page_for(&self, req: &Request, page: Page<'_>, who: Who<'_>) -> Reply {
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
        let app_href = self.return_location(req, &rd);
        let app_href = if app_href.starts_with("/.portcullis/") { "/".to_string() } else { app_href };
        let notice = match page {
            Page::Dashboard { .. } | Page::Approvers { .. } | Page::PushWait { .. } => prg::error_flag(req),
            _ => None,
        };
        let ctx = PageCtx {
            lang: req.lang,
            app: self.app_title(req),
            app_href: &app_href,
            who,
            notice,
            csrf: &csrf,
            contact: self.contact(),
            switch_en_href: &en,
            switch_ja_href: &ja,
            rd: &rd,
            cert_login: self.offers_cert_login(),
        };
        Reply::page(pages::status(&page), pages::render(&page, &ctx))
    }

    /// What the user is signing in to: the app a return target on another
    /// app's host names (a login on a portal host for that app), else this one.
    fn app_title(&self, req: &Request) -> &str {
        let target = match self.valid_return(req, &req.rd()) {
            Some(super::redirect::ReturnTo::Url { host, .. }) => {
                let bare = crate::config::hosts::strip_port(&host).unwrap_or(&host).to_string();
                self.config.hosts.lookup(&bare)
            }
            _ => None,
        };
        &self.config.app(target.unwrap_or(self.app)).display_name
    }

    /// The user whose login this browser has at `stage`.
    pub(super) async fn flow_user(&self, req: &Request, stage: Stage) -> Option<String> {
        self.auth.login.attempt(&req.flow, stage).await.ok().map(|a| a.user)
    }

    /// `GET /.portcullis/notice?is=…`: a stop page a POST redirected to.
    fn notice_page(&self, req: &Request) -> Reply {
        let Some(notice) = Notice::of(req) else {
            return self.page(req, Page::Error { message: Text::ErrNotFound });
        };
        let until = match notice {
            Notice::Cooldown(t) => LocalTime(t, self.config.totp.utc_offset).to_string(),
            _ => String::new(),
        };
        self.page(req, notice.page(&until))
    }

    fn login_page(&self, req: &Request) -> Reply {
        if self.session.is_some() {
            return see_other(prg::with_lang(self.return_location(req, &req.rd()), req));
        }
        self.page(req, Page::Login { username: "", error: prg::error_flag(req) })
    }

    async fn login_post(&self, req: &Request) -> Reply {
        let (user, password) = (req.field("username").unwrap_or(""), req.field("password").unwrap_or(""));
        if user.trim().is_empty() || password.is_empty() {
            return see_other(prg::here(req, "/.portcullis/login", &[("error", "missing")]));
        }
        let step = self.password_step(req, user, password).await;
        self.step(req, step, Form::Login, user).await
    }

    async fn otp_page(&self, req: &Request) -> Reply {
        if let Some(user) = self.flow_user(req, Stage::Totp).await {
            let (error, clock_hint) = code_error(req);
            return self.page_for(req, Page::Totp { error, clock_hint }, Who::SigningIn(&user));
        }
        // A signed-in browser asked for a second factor it skipped elsewhere: step up.
        let Some(s) = self.session.filter(|_| self.cert_listener.is_none()) else {
            return see_other(prg::here(req, "/.portcullis/login", &[]));
        };
        // Nothing to step up: no new session (its lifetime would start again,
        // or it would drop the second factor) and no handoff code (a GET).
        let skip = self.config.groups[s.facts.group].otp_skip.eval(&self.facts);
        if s.session.level == SessionLevel::BothFactors || skip {
            return see_other(prg::with_lang(self.return_location(req, &req.rd()), req));
        }
        let step = self.auth.login.step_up(self.config, self.app, &self.facts, &req.flow, &s.session, &req.rd()).await;
        match step {
            Step::NeedTotp => {
                self.page_for(req, Page::Totp { error: None, clock_hint: false }, Who::SigningIn(&s.session.user))
            }
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
                let who = self.flow_user(req, Stage::Enroll).await;
                self.page_for(req, page, signing_in(&who))
            }
            Err(step) => self.step(req, step, Form::EnrollConfirm, "").await,
        }
    }

    async fn enroll_confirm(&self, req: &Request) -> Reply {
        let code = req.field("code").unwrap_or("");
        match self.auth.login.enroll_confirm(self.config, self.client_ip, &req.flow, code).await {
            Ok((Step::Done { session, rd }, codes)) => {
                let next = prg::with_lang(self.after_login(req, &session, &rd).await, req);
                let cookies = self.signed_in(req, &session).await;
                self.show_codes(req, &session.user, codes, next).await.with_cookies(cookies)
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
            return see_other(prg::here(req, "/.portcullis/login", &[]));
        };
        let Some(user) = self.config.users.get(&s.session.user) else {
            return see_other(prg::here(req, "/.portcullis/login", &[]));
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
                administers: user.role.administers(),
            },
        )
    }

    async fn regenerate(&self, req: &Request) -> Reply {
        let Some(s) = self.session.filter(|s| s.session.level == SessionLevel::BothFactors) else {
            return see_other(prg::notice_url(req, Notice::Expired));
        };
        match self.auth.login.regenerate_recovery(&s.session.user).await {
            Ok(codes) => {
                let next = prg::here(req, "/.portcullis/", &[]);
                self.show_codes(req, &s.session.user, codes, next).await
            }
            Err(step) => self.step(req, step, Form::Login, "").await,
        }
    }

    async fn logout(&self, req: &Request) -> Reply {
        let everywhere = req.field("everywhere") == Some("1");
        if let Some(s) = self.session {
            if let Err(e) = self.auth.sign_out(&s.session, everywhere).await {
                tracing::warn!("sign-out could not be recorded: {e}");
                return see_other(prg::notice_url(req, Notice::Unavailable));
            }
        }
        see_other(prg::notice_url(req, Notice::SignedOut)).with_header("set-cookie", clear_cookie(SESSION_COOKIE))
    }

    /// A first-factor step as the sign-in form would show it.
    pub(super) async fn login_step(&self, req: &Request, step: Step) -> Reply {
        self.step(req, step, Form::Login, "").await
    }

    /// Maps a login step to what the browser sees: after a POST always a
    /// redirect (errors to the form's own page, stops to a notice page), after
    /// a GET the page itself.
    async fn step(&self, req: &Request, step: Step, form: Form, username: &str) -> Reply {
        let (path, wrong) = match form {
            Form::Login => ("/.portcullis/login", Text::ErrBadCredentials),
            Form::Totp => ("/.portcullis/otp", Text::ErrWrongCode),
            Form::Recovery => ("/.portcullis/recovery", Text::ErrWrongRecoveryCode),
            Form::EnrollConfirm => ("/.portcullis/enroll/confirm", Text::ErrWrongCode),
        };
        let stop = match step {
            Step::Done { session, rd } => {
                let location = prg::with_lang(self.after_login(req, &session, &rd).await, req);
                return see_other(location).with_cookies(self.signed_in(req, &session).await);
            }
            // The chosen language goes along on every redirect of the flow.
            Step::NeedTotp => return see_other(prg::here(req, "/.portcullis/otp", &[])),
            Step::NeedPush => return see_other(prg::here(req, "/.portcullis/push", &[])),
            Step::NeedEnroll => return see_other(prg::here(req, "/.portcullis/enroll", &[])),
            Step::WrongCredentials | Step::WrongCode | Step::Replayed if req.method == "POST" => {
                let error = if step == Step::Replayed { Text::ErrCodeUsed } else { wrong };
                return see_other(prg::here(req, path, &[("error", prg::error_word(error))]));
            }
            Step::WrongCredentials => return self.page(req, Page::Login { username, error: Some(wrong) }),
            Step::WrongCode | Step::Replayed => {
                let error = if step == Step::Replayed { Text::ErrCodeUsed } else { wrong };
                let page = match form {
                    Form::Recovery => Page::Recovery { error: Some(error) },
                    Form::EnrollConfirm => Page::EnrollConfirm { error: Some(error), clock_hint: error == wrong },
                    _ => Page::Totp { error: Some(error), clock_hint: error == wrong },
                };
                return self.page(req, page);
            }
            Step::Denied => Notice::Denied,
            Step::AskAdmin => Notice::AskAdmin,
            Step::Locked => Notice::Locked,
            Step::Cooldown { until } => Notice::Cooldown(until),
            Step::NoAttempt => Notice::Expired,
            Step::Unavailable | Step::Busy => Notice::Unavailable,
            Step::TooMany => Notice::TooMany,
        };
        let reply = if req.method == "POST" {
            see_other(prg::notice_url(req, stop))
        } else {
            let until = match stop {
                Notice::Cooldown(t) => LocalTime(t, self.config.totp.utc_offset).to_string(),
                _ => String::new(),
            };
            self.page(req, stop.page(&until))
        };
        if step == Step::Busy {
            return reply.with_header("retry-after", crate::challenge::login::BUSY_RETRY_AFTER.to_string());
        }
        reply
    }
}

/// The error a code form was sent back with, and whether to suggest checking the clock.
fn code_error(req: &Request) -> (Option<Text>, bool) {
    let error = prg::error_flag(req);
    (error, error == Some(Text::ErrWrongCode))
}

fn signing_in(user: &Option<String>) -> Who<'_> {
    user.as_deref().map_or(Who::Nobody, Who::SigningIn)
}

fn level_text(lang: Lang, level: SessionLevel) -> &'static str {
    match level {
        SessionLevel::BothFactors => pages::text(lang, Text::LevelBothFactors),
        SessionLevel::FirstFactor => pages::text(lang, Text::LevelFirstFactor),
    }
}
