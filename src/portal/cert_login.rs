//! Certificate login: the device certificate instead of a password.
//!
//! The login page's "Log in with device certificate" button leads to
//! `/.portcullis/login/cert` on the app's host. When the connection already
//! presented a counting certificate (an app with `device_cert = "request"` or
//! `"require"`) the login happens there; otherwise the browser is sent to the
//! certificate-login listener (`[device_certificates] login_listen`, reached
//! as `login_host`), whose handshake asks for a certificate — the moment the
//! browser shows its certificate picker. There the certificate names the user,
//! the user's policy group decides what follows (`allow`, `otp_skip`, the
//! second factor, asked there), and the login is handed back to the app host
//! with the single-use handoff code of `handoff`: bound to the browser, only
//! to the apps' own port (`app_port`), minted only on a same-site request.

use super::{redirect, Portal, Request};
use crate::challenge::pages::{Page, Text};
use crate::config::Config;
use crate::devices::registry::{CertStatus, Registry};
use crate::proxy::respond::Reply;
use crate::tls::PeerDeviceCert;
use serde_json::json;

pub const PATH: &str = "/.portcullis/login/cert";
/// The listener's session cookie (see [`Portal::session_cookie`]).
pub const LISTENER_SESSION_COOKIE: &str = "__Host-portcullis-certlogin";
pub const API_PATH: &str = "/.portcullis/api/login/cert";

/// What the certificate-login listener serves: the login itself, the second
/// factor that may follow, and the handoff's step 3.
pub fn served_on_listener(path: &str) -> bool {
    matches!(
        path,
        PATH | API_PATH
            | "/.portcullis/otp"
            | "/.portcullis/recovery"
            | "/.portcullis/enroll"
            | "/.portcullis/enroll/confirm"
            | "/.portcullis/handoff"
            | "/.portcullis/push"
            | "/.portcullis/push/again"
            | "/.portcullis/static/push-wait.js"
            | super::prg::NOTICE
            | super::shown_codes::PAGE
            | super::shown_codes::FILE
            | super::shown_codes::SCRIPT
            | "/.portcullis/api/push"
            | "/.portcullis/api/push/wait"
            | "/.portcullis/api/totp"
            | "/.portcullis/api/recovery"
            | "/.portcullis/api/totp/enroll"
            | "/.portcullis/api/totp/enroll/confirm"
    )
}

/// What the connection's device certificate says, for a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCert {
    /// No certificate was presented on this connection.
    Absent,
    /// Verified against the device CA, but not in the registry.
    Unregistered,
    /// Registered, but revoked or expired.
    Ended(CertStatus),
    /// Names no user of the config (or not the user the registry has).
    UnknownUser,
    /// Counts: the user it names.
    User(String),
}

/// Judges the certificate a connection presented (its chain was verified in
/// the handshake) against the registry snapshot and the users.
pub fn judge(peer: Option<&PeerDeviceCert>, registry: &Registry, config: &Config, now: u64) -> PeerCert {
    let Some(peer) = peer else { return PeerCert::Absent };
    let Some((user, status)) = registry.lookup(&peer.fingerprint, now) else { return PeerCert::Unregistered };
    if !status.works() {
        return PeerCert::Ended(status);
    }
    if peer.user.as_deref() != Some(user) || config.users.get(user).is_none() {
        return PeerCert::UnknownUser;
    }
    PeerCert::User(user.to_string())
}

impl PeerCert {
    pub fn counts(&self) -> bool {
        matches!(self, PeerCert::User(_))
    }

    pub fn is_user(&self, user: &str) -> bool {
        matches!(self, PeerCert::User(u) if u == user)
    }

    /// Why this certificate logs nobody in, for the page and the API.
    pub(super) fn refusal(&self) -> (Text, &'static str) {
        match self {
            PeerCert::Absent => (Text::ErrCertAbsent, "device_certificate_required"),
            PeerCert::Unregistered => (Text::ErrCertUnregistered, "device_certificate_unregistered"),
            PeerCert::Ended(CertStatus::Revoked) => (Text::ErrCertRevoked, "device_certificate_revoked"),
            PeerCert::Ended(_) => (Text::ErrCertExpired, "device_certificate_expired"),
            PeerCert::UnknownUser | PeerCert::User(_) => (Text::ErrCertUnknownUser, "device_certificate_unknown_user"),
        }
    }
}

/// Where a certificate login on the certificate-login listener returns to:
/// an app URL on `app_port` (`https://host:port/path`), as `(host:port, path)`.
pub fn return_target(config: &Config, rd: &str, app_port: u16) -> Option<(String, String)> {
    let is_app_host = |h: &str| config.hosts.matches(h);
    match redirect::validate_return_here(rd, "", app_port, &is_app_host)? {
        redirect::ReturnTo::Url { host, path } => Some((host, path)),
        redirect::ReturnTo::Path(_) => None,
    }
}

impl Portal<'_> {
    /// `GET /.portcullis/login/cert`, on either listener.
    pub(super) async fn cert_login_page(&self, req: &Request) -> Reply {
        if !self.returns_somewhere(req) {
            return self.page(req, Page::Error { message: Text::ErrCertListenerOnly });
        }
        if let PeerCert::User(user) = &self.peer_cert {
            let step = self.certificate_step(req, user).await;
            return self.login_step(req, step).await;
        }
        match (self.cert_listener.is_some(), self.cert_login_url(req)) {
            // Not here: to the listener that asks for the certificate.
            (false, Some(url)) => Reply::redirect(303, url),
            (false, None) => self.page(req, Page::Error { message: Text::ErrCertLoginOff }),
            (true, _) => self.page(req, Page::Error { message: self.peer_cert.refusal().0 }),
        }
    }

    /// `POST /.portcullis/api/login/cert`: the JSON twin.
    pub(super) async fn cert_login_api(&self, req: &Request) -> Reply {
        if !self.returns_somewhere(req) {
            let message = "send the app URL to return to as `rd` (https://app-host:port/path)";
            return Reply::json(400, &json!({"error": "bad_request", "message": message}));
        }
        if let PeerCert::User(user) = &self.peer_cert {
            let step = self.certificate_step(req, user).await;
            return self.api_step(req, step).await;
        }
        let (text, code) = self.peer_cert.refusal();
        let message = crate::challenge::pages::text(crate::challenge::pages::Lang::En, text);
        let mut body = json!({"error": code, "message": message});
        if let Some(url) = self.cert_listener.is_none().then(|| self.cert_login_url(req)).flatten() {
            body["login_url"] = json!(url);
        }
        let status = if self.peer_cert == PeerCert::Absent { 401 } else { 403 };
        Reply::json(status, &body)
    }

    /// The login step for the certificate's `user`, with the policy of the
    /// app the login is for: on the listener the return target's (the same
    /// `rd` the login carries), whose `device_cert` mode decides whether the
    /// certificate is also a condition there.
    async fn certificate_step(&self, req: &Request, user: &str) -> crate::challenge::login::Step {
        let rd = req.rd();
        let (app, mut facts) = (self.app, self.facts_for(user));
        let app = match (self.cert_listener, self.valid_return(req, &rd)) {
            (Some(_), Some(redirect::ReturnTo::Url { host, .. })) => {
                let bare = crate::config::hosts::strip_port(&host).unwrap_or(&host);
                let target = self.config.hosts.lookup(bare).unwrap_or(app);
                facts.device_cert = self.config.app(target).device_cert != crate::config::DeviceCertMode::Off;
                target
            }
            _ => app,
        };
        let step = self.auth.login.certificate(self.config, app, &facts, &req.flow, user, &rd).await;
        let signed_in = matches!(step, crate::challenge::login::Step::Done { .. });
        crate::audit!(
            "certificate_login",
            user = %user,
            host = %req.host,
            app = %self.config.app(app).name,
            signed_in
        );
        step
    }

    /// The certificate-login listener's URL for this request's login, with
    /// the return target made absolute (this host, on the apps' port); `None`
    /// without `login_listen`.
    pub fn cert_login_url(&self, req: &Request) -> Option<String> {
        let login = self.config.device_certificates.as_ref()?.login.as_ref()?;
        let path = match self.valid_return(req, &req.rd()) {
            Some(redirect::ReturnTo::Path(p)) => p,
            _ => "/".to_string(),
        };
        let rd = format!("https://{}:{}{path}", req.host, login.app_port);
        Some(format!("https://{}{PATH}?rd={}", login.authority_for(&req.host), redirect::encode_raw(&rd)))
    }

    /// On the certificate-login listener a login must name the app it is
    /// for: there is nowhere else to go once signed in.
    fn returns_somewhere(&self, req: &Request) -> bool {
        self.cert_listener.is_none() || self.valid_return(req, &req.rd()).is_some()
    }

    /// Whether the login page offers the certificate button here.
    pub fn offers_cert_login(&self) -> bool {
        let login_listener = self.config.device_certificates.as_ref().is_some_and(|d| d.login.is_some());
        login_listener || self.config.app(self.app).device_cert != crate::config::DeviceCertMode::Off
    }
}
