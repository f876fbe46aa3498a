//! The JSON twin of the portal pages, under `/.portcullis/api/`: the same
//! login service, answers as JSON, so scripts and single-page apps drive the
//! same flow as browsers.

use super::{Portal, Request};
use crate::challenge::cooldown::LocalTime;
use crate::challenge::login::Step;
use crate::identity::cookie::clear_cookie;
use crate::identity::session::{SessionLevel, SESSION_COOKIE};
use crate::proxy::respond::Reply;
use serde_json::json;

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"error": code, "message": message}))
}

impl Portal<'_> {
    pub(super) async fn api(&self, req: &Request) -> Reply {
        match (req.method.as_str(), req.path.as_str()) {
            (_, p) if self.cert_listener.is_some() && !super::cert_login::served_on_listener(p) => {
                error(404, "not_found", "this address only serves certificate login")
            }
            (_, p) if self.cert_listener.is_some() && p != super::cert_login::API_PATH && !self.peer_cert.counts() => {
                self.cert_login_api(req).await
            }
            ("POST", super::cert_login::API_PATH) => self.cert_login_api(req).await,
            (_, p) if p.starts_with(crate::console::API_PREFIX) => crate::console::api(self, req).await,
            ("POST", "/.portcullis/api/login") => self.api_login(req).await,
            ("POST", "/.portcullis/api/push") => self.api_push_start(req).await,
            ("POST", "/.portcullis/api/push/wait") => self.api_push_wait(req).await,
            (_, p) if p.starts_with("/.portcullis/api/approver/") => self.approver_api(req).await,
            ("POST", "/.portcullis/api/totp") => {
                let step =
                    self.auth.login.totp(self.config, self.client_ip, &req.flow, req.field("code").unwrap_or("")).await;
                self.api_step(req, step).await
            }
            ("POST", "/.portcullis/api/recovery") => {
                let step = self
                    .auth
                    .login
                    .recovery(self.config, self.client_ip, &req.flow, req.field("code").unwrap_or(""))
                    .await;
                self.api_step(req, step).await
            }
            ("POST", "/.portcullis/api/totp/enroll") => {
                match self.auth.login.enroll_start(self.config, &req.flow).await {
                    Ok(e) => Reply::json(
                        200,
                        &json!({"secret": e.key_string, "otpauth_uri": e.otpauth_uri, "qr_svg": e.qr_svg, "period": e.period}),
                    ),
                    Err(step) => self.api_step(req, step).await,
                }
            }
            ("POST", "/.portcullis/api/totp/enroll/confirm") => self.api_enroll_confirm(req).await,
            ("POST", "/.portcullis/api/recovery/regenerate") => self.api_regenerate().await,
            ("POST", "/.portcullis/api/logout") => self.api_logout(req).await,
            ("GET", "/.portcullis/api/whoami") => self.whoami(),
            (_, p) if p.starts_with("/.portcullis/api/") => error(404, "not_found", "no such API endpoint"),
            _ => error(404, "not_found", "no such API endpoint"),
        }
    }

    async fn api_login(&self, req: &Request) -> Reply {
        let (Some(user), Some(password)) = (req.field("username"), req.field("password")) else {
            return error(400, "bad_request", "send {\"username\": …, \"password\": …}");
        };
        let step = self.password_step(req, user, password).await;
        self.api_step(req, step).await
    }

    async fn api_enroll_confirm(&self, req: &Request) -> Reply {
        let code = req.field("code").unwrap_or("");
        match self.auth.login.enroll_confirm(self.config, self.client_ip, &req.flow, code).await {
            Ok((Step::Done { session, rd }, codes)) => {
                let location = self.after_login(req, &session, &rd).await;
                Reply::json(200, &json!({"next": "done", "location": location, "recovery_codes": codes}))
                    .with_cookies(self.signed_in(req, &session).await)
            }
            Ok((other, _)) | Err(other) => self.api_step(req, other).await,
        }
    }

    async fn api_regenerate(&self) -> Reply {
        let Some(s) = self.session.filter(|s| s.session.level == SessionLevel::BothFactors) else {
            return error(401, "second_factor_required", "sign in with a second factor first");
        };
        match self.auth.login.regenerate_recovery(&s.session.user).await {
            Ok(codes) => Reply::json(200, &json!({"recovery_codes": codes})),
            Err(_) => error(503, "temporarily_unavailable", "try again in a minute"),
        }
    }

    async fn api_logout(&self, req: &Request) -> Reply {
        let everywhere = matches!(req.field("everywhere"), Some("true" | "1"));
        if let Some(s) = self.session {
            if self.auth.sign_out(&s.session, everywhere).await.is_err() {
                return error(503, "temporarily_unavailable", "the sign-out could not be recorded; try again");
            }
        }
        Reply::json(200, &json!({"signed_out": true, "everywhere": everywhere}))
            .with_header("set-cookie", clear_cookie(SESSION_COOKIE))
    }

    fn whoami(&self) -> Reply {
        let Some((s, user)) = self.session.and_then(|s| Some((s, self.config.users.get(&s.session.user)?))) else {
            return error(401, "login_required", "no valid session");
        };
        let level = match s.session.level {
            SessionLevel::FirstFactor => "first_factor",
            SessionLevel::BothFactors => "both_factors",
        };
        Reply::json(
            200,
            &json!({
                "user": user.username, "display_name": user.display_name, "email": user.email,
                "groups": user.groups, "policy_group": self.config.groups[user.policy_group].name,
                "level": level, "expires_at": s.session.expires_at,
                "device_certificates": self.cert_json(&user.username),
                "entrance_pass": self.facts.entrance_pass,
            }),
        )
    }

    /// Maps a login step to JSON: `next` says what to do, `error` what went wrong.
    pub(super) async fn api_step(&self, req: &Request, step: Step) -> Reply {
        let contact = self.contact();
        match step {
            Step::Done { session, rd } => {
                let location = self.after_login(req, &session, &rd).await;
                Reply::json(200, &json!({"next": "done", "location": location}))
                    .with_cookies(self.signed_in(req, &session).await)
            }
            Step::NeedTotp => Reply::json(200, &json!({"next": "totp"})),
            Step::NeedPush => Reply::json(200, &json!({"next": "push"})),
            Step::NeedEnroll => Reply::json(200, &json!({"next": "enroll_totp"})),
            Step::Denied => Reply::json(403, &json!({"next": "denied", "contact": contact})),
            Step::AskAdmin => Reply::json(
                403,
                &json!({"next": "ask_admin", "message": "ask an administrator for an enrollment link", "contact": contact}),
            ),
            Step::Locked => Reply::json(
                423,
                &json!({"next": "locked", "error": "locked", "message": "the account is locked; contact an administrator", "contact": contact}),
            ),
            Step::Cooldown { until } => Reply::json(
                403,
                &json!({"next": "cooldown", "until": until, "until_text": LocalTime(until, self.config.totp.utc_offset).to_string()}),
            ),
            Step::WrongCredentials => error(401, "wrong_credentials", "wrong username or password"),
            Step::WrongCode => Reply::json(
                401,
                &json!({"error": "wrong_code", "message": "wrong code", "hint": "check that the device's clock is set automatically"}),
            ),
            Step::Replayed => error(401, "code_already_used", "this code was already used; wait for the next one"),
            Step::NoAttempt => error(409, "no_login_in_progress", "no login in progress or it expired: start again"),
            Step::Unavailable => {
                error(503, "temporarily_unavailable", "sign-in is temporarily unavailable; try again in a minute")
            }
            Step::TooMany => {
                error(429, "too_many_attempts", "too many failed attempts from this address; wait and try again")
            }
            Step::Busy => error(503, "busy", "too many sign-ins at once; try again in a moment")
                .with_header("retry-after", crate::challenge::login::BUSY_RETRY_AFTER.to_string()),
        }
    }
}
