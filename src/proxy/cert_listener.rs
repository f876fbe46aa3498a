//! The certificate-login listener (`[device_certificates] login_listen`): its
//! handshake asks every browser for a device certificate, and it serves only
//! the certificate login, the second factor that may follow it and the
//! handoff back to the app (see `portal::cert_login`). Nothing reaches an
//! upstream from here.

use super::{client_ip, metrics, path, peer_ip, portal, request_host, Ctx, Outcome, Portcullis, Reply};
use crate::config::hosts::AppId;
use crate::config::{CertLogin, Config, DeviceCertMode};
use crate::policy::expr::Facts;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::sync::Arc;

const ONLY_CERT_LOGIN: &str = "This address only serves certificate login. Open the application and choose \
    \u{201c}Log in with device certificate\u{201d} on its sign-in page.";

/// Whether the request names this listener as browsers are sent to it: the
/// Host (or HTTP/2 authority) is `login_host` (with its port), or, without
/// one, an app host with the listener's port.
fn listener_authority(config: &Config, login: &CertLogin, req: &pingora::http::RequestHeader) -> bool {
    let authority = match req.uri.authority() {
        Some(a) => a.as_str(),
        None => match req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()) {
            Some(h) => h,
            None => return false,
        },
    };
    // `host:port`, the port 443 when the browser left it out.
    let with_port = |a: &str| {
        let a = a.trim().to_ascii_lowercase();
        match portal::redirect::authority_port(&a) {
            Some(_) => a,
            None => format!("{a}:443"),
        }
    };
    let Some(host) = request_host(req) else { return false };
    let host = host.to_ascii_lowercase();
    let is_app = login.host.is_some() || config.hosts.matches(&host);
    is_app && with_port(authority) == with_port(&login.authority_for(&host))
}

impl Portcullis {
    pub(super) async fn cert_listener_request(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        config: Arc<Config>,
    ) -> Result<bool> {
        ctx.outcome = Outcome::Portal;
        let Some(login) = config.device_certificates.as_ref().and_then(|d| d.login.as_ref()) else {
            // The listener outlived a reload that removed `login_listen`.
            Reply::html(404, "Not found", "Certificate login is not set up here.", None).send(session).await?;
            return Ok(true);
        };
        let req = session.req_header();
        // Only the authority the login page sends browsers to: tickets name
        // it as the place of the handoff's step 3.
        if !listener_authority(&config, login, req) {
            metrics::count_unknown_host();
            Reply::html(404, "Not found", ONLY_CERT_LOGIN, None).send(session).await?;
            return Ok(true);
        }
        if !path::is_portal_path(req.uri.path()) {
            metrics::count_unknown_host();
            Reply::html(404, "Not found", ONLY_CERT_LOGIN, None).send(session).await?;
            return Ok(true);
        }
        let xff = req.headers.get_all("x-forwarded-for").into_iter().map(|v| v.as_bytes());
        ctx.client_ip = client_ip(peer_ip(session), xff, &config.server.trusted_proxies);
        let app_id = self.target_app(&config, session, login.app_port);
        ctx.app = Some(app_id);
        let cookies = req.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        ctx.session = self.auth.session_in(&config, app_id, portal::cert_login::LISTENER_SESSION_COOKIE, cookies);
        let cookies = req.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        ctx.pass = self.auth.pass(&config, &req.headers, cookies);
        let peer_cert = self.judge_peer_cert(session, &config);
        let counts = matches!(peer_cert, portal::cert_login::PeerCert::User(_));
        let device_cert = config.app(app_id).device_cert != DeviceCertMode::Off && counts;
        let facts = Facts { networks: config.networks.lookup(ctx.client_ip), device_cert, ..Facts::default() };
        let facts = config.facts_at(facts, self.auth.clock.now());
        let portal = portal::Portal {
            config: &config,
            auth: &self.auth,
            app: app_id,
            facts,
            client_ip: ctx.client_ip,
            session: ctx.session.as_ref(),
            peer_cert,
            cert_listener: Some(login.app_port),
            pass: ctx.pass.as_ref().map(|p| &*p.pass),
        };
        portal.handle(session).await?;
        Ok(true)
    }

    /// The app a request here is for: the return target's (`rd`), the
    /// handoff ticket's, or the Host's when it is an app host. Pages that
    /// name none (the second factor) act on the login in progress, which
    /// knows its app, so any app does for them.
    fn target_app(&self, config: &Config, session: &Session, app_port: u16) -> AppId {
        let req = session.req_header();
        let query = req.uri.query().unwrap_or("");
        let param =
            |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')));
        let lookup = |authority: &str| {
            let bare = crate::config::hosts::strip_port(authority).unwrap_or(authority);
            config.hosts.lookup(bare)
        };
        param("rd")
            .and_then(|rd| portal::cert_login::return_target(config, rd, app_port))
            .and_then(|(authority, _)| lookup(&authority))
            .or_else(|| {
                let ticket = param("ticket")?;
                lookup(&portal::handoff::ticket_target(&self.auth.keys.load(), ticket)?)
            })
            .or_else(|| request_host(req).and_then(|h| config.hosts.lookup(h)))
            .unwrap_or(0)
    }
}
