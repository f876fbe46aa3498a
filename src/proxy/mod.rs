//! The Pingora side: the only module that knows Pingora. Access control happens
//! in `request_filter`, header hygiene in `upstream_request_filter`, counting in
//! `logging`. Everything they call is pure and lives elsewhere.

mod cert_listener;
pub mod forward_auth;
pub mod framing;
pub mod headers;
pub mod path;
pub mod respond;
pub mod server;

use crate::auth::{Auth, ValidSession};
use crate::config::hosts::{strip_port, AppId};
use crate::config::{Config, DeviceCertMode};
use crate::identity::client_ip::client_ip;
use crate::live::Live;
use crate::metrics::{self, Outcome};
use crate::policy::decide::{decide, Action, Challenge, Decision, Rule};
use crate::policy::expr::{Facts, GroupMask};
use crate::portal;
use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use respond::Reply;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The proxy's own cookie names start with these; they never reach the app.
pub const OWN_COOKIE_PREFIXES: &[&str] = &["__Host-portcullis", "portcullis"];

pub struct Portcullis {
    pub live: Arc<Live>,
    pub auth: Arc<Auth>,
    /// Which listener this service answers.
    pub listener: Listener,
}

/// The main HTTPS listener, or the certificate-login listener, which only
/// serves certificate logins (`[device_certificates] login_listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Main,
    CertLogin,
}

/// Per-request state shared across the phases.
pub struct Ctx {
    live: Arc<Live>,
    config: Arc<Config>,
    app: Option<AppId>,
    client_ip: IpAddr,
    outcome: Outcome,
    auth: &'static str,
    session: Option<ValidSession>,
    /// The entrance pass the request carries, whoever's it is.
    pass: Option<crate::entrance::ValidPass>,
    /// The policy's decision, when the request got that far.
    decision: Option<Decision>,
    /// The facts the decision saw (logged with it, for `decide --replay`).
    facts: Facts,
    /// `x-forwarded-host`, read with the host that chose the app.
    forwarded_host: Option<http::HeaderValue>,
    started: Instant,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.live.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The request's host, from the HTTP/2 authority or the Host header, port removed.
fn request_host(req: &RequestHeader) -> Option<&str> {
    let authority = match req.uri.authority() {
        Some(a) => a.as_str(),
        None => req.headers.get(http::header::HOST)?.to_str().ok()?,
    };
    strip_port(authority.trim())
}

/// Reads the request once: sizes and framing are checked (see [`framing`]),
/// and the path is replaced by its canonical form (see [`path`]), so the
/// policy, the portal and the app all see the same target. An absolute-form
/// or otherwise verbatim target is replaced too: the upstream always receives
/// the origin-form path the policy saw. `Err` carries the status and message.
fn one_reading(session: &mut Session, limits: &crate::config::Limits) -> std::result::Result<(), (u16, &'static str)> {
    let is_h2 = session.is_http2();
    let req = session.req_header();
    framing::check(req, || (!is_h2).then(|| session.to_h1_raw()), limits).map_err(|r| (r.status(), r.message()))?;
    if req.headers.get_all(http::header::HOST).iter().count() > 1 {
        return Err((400, "More than one Host header."));
    }
    if !req.raw_path_is_utf8() {
        return Err((400, "The request target is not valid UTF-8."));
    }
    // A fragment is never part of a request target (RFC 9112 §3.2): the URI
    // parser drops it and whatever follows it, so the client's target and
    // the parsed one would differ. Only the raw request line still shows it.
    if !is_h2 && session.to_h1_raw().split(|&b| b == b'\n').next().is_some_and(|line| line.contains(&b'#')) {
        return Err((400, "The request target may not contain #."));
    }
    if req.method == http::Method::OPTIONS && req.uri.path() == "*" {
        return Ok(());
    }
    let canonical = path::canonicalize(req.uri.path().as_bytes()).map_err(|e| (400, e.message()))?;
    let as_parsed = req.uri.path_and_query().map_or("/", |p| p.as_str());
    if matches!(canonical, std::borrow::Cow::Borrowed(_)) && req.raw_path() == as_parsed.as_bytes() {
        return Ok(());
    }
    let target = match req.uri.query() {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical.into_owned(),
    };
    let mut parts = req.uri.clone().into_parts();
    parts.path_and_query = Some(target.parse().map_err(|_| (400, "The request target is malformed."))?);
    let uri = http::Uri::from_parts(parts).map_err(|_| (400, "The request target is malformed."))?;
    session.req_header_mut().set_uri(uri);
    Ok(())
}

fn peer_ip(session: &Session) -> IpAddr {
    session.client_addr().and_then(|a| a.as_inet()).map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
}

/// The 403 page of a `device_cert = "require"` app reached without a valid certificate.
const DEVICE_CERT_NEEDED: &str = "This application needs a device certificate: open it from a device \
    that has one installed (and choose that certificate if the browser asks), or ask your administrator \
    for a certificate for this device. A revoked or expired certificate no longer counts.";

/// The device certificate the connection presented in its handshake (verified
/// against the device CA by then), as the listener's callback recorded it.
fn peer_device_cert(session: &Session) -> Option<&crate::tls::PeerDeviceCert> {
    session.digest()?.ssl_digest.as_ref()?.extension.get::<crate::tls::PeerDeviceCert>()
}

impl Portcullis {
    /// `device_cert` for this request: the connection presented a certificate
    /// the registry snapshot knows, active or expiring now, naming the same
    /// user as the registry, and (with a session) the session's user. One map
    /// lookup in the snapshot per request, so a revocation applied from the
    /// change feed counts on the next request of an open connection.
    fn device_cert_counts(&self, session: &Session, session_user: Option<&str>) -> bool {
        let Some(peer) = peer_device_cert(session) else { return false };
        let devices = self.auth.devices.load();
        let Some((user, status)) = devices.lookup(&peer.fingerprint, self.auth.clock.now()) else { return false };
        status.works() && peer.user.as_deref() == Some(user) && session_user.is_none_or(|u| u == user)
    }

    /// The connection's certificate, judged for a login (see [`portal::cert_login::judge`]).
    fn judge_peer_cert(&self, session: &Session, config: &Config) -> portal::cert_login::PeerCert {
        let devices = self.auth.devices.load();
        portal::cert_login::judge(peer_device_cert(session), &devices, config, self.auth.clock.now())
    }

    /// Maps the decision to a response, or `None` to forward.
    fn challenge_or_deny(&self, session: &Session, ctx: &mut Ctx, d: Decision) -> Option<Reply> {
        let contact = ctx.config.portal.contact.as_deref();
        match d.action {
            Action::Forward => {
                ctx.outcome = Outcome::Forward;
                ctx.auth = auth_name(d.rule);
                None
            }
            Action::Deny => {
                ctx.outcome = Outcome::Deny;
                Some(Reply::html(403, "Access denied", "You may not use this application from here.", contact))
            }
            Action::Challenge(c) => {
                ctx.outcome = Outcome::Challenge;
                let page = match c {
                    Challenge::Login => "login",
                    Challenge::SecondFactor => "otp",
                };
                let uri = &session.req_header().uri;
                let rd = portal::redirect::encode_return_param(uri.path_and_query().map_or("/", |p| p.as_str()));
                let location = format!("/.portcullis/{page}?rd={rd}");
                Some(if respond::is_browser_navigation(session) {
                    Reply::redirect(302, location)
                } else {
                    Reply::json(401, &serde_json::json!({"error": format!("{page}_required"), "location": location}))
                })
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Portcullis {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        self.live.inflight.fetch_add(1, Ordering::AcqRel);
        Ctx {
            live: self.live.clone(),
            config: self.live.current(),
            app: None,
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            outcome: Outcome::Forward,
            auth: "",
            session: None,
            pass: None,
            decision: None,
            facts: Facts::default(),
            forwarded_host: None,
            started: Instant::now(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let config = ctx.config.clone();
        if let Err((status, message)) = one_reading(session, &config.limits) {
            metrics::count_refused();
            session.set_keepalive(None);
            let title = if status == 400 { "Bad request" } else { "Request too large" };
            Reply::html(status, title, message, None).send(session).await?;
            return Ok(true);
        }
        if self.listener == Listener::CertLogin {
            return self.cert_listener_request(session, ctx, config).await;
        }
        if let Some(mode) = forward_auth::mode(session.req_header().uri.path()) {
            ctx.outcome = Outcome::Portal;
            return self.forward_auth(session, config, mode).await;
        }
        let req = session.req_header();
        let host = request_host(req);
        let Some(app_id) = host.and_then(|h| config.hosts.lookup(h)) else {
            metrics::count_unknown_host();
            Reply::html(404, "Not found", "No application is served at this address.", None).send(session).await?;
            return Ok(true);
        };
        ctx.app = Some(app_id);
        ctx.forwarded_host = host.and_then(|h| forwarded_host(req, h));
        let xff = req.headers.get_all(&names::X_FORWARDED_FOR).into_iter().map(|v| v.as_bytes());
        ctx.client_ip = client_ip(peer_ip(session), xff, &config.server.trusted_proxies);
        // After a gap in the change feed, revocations are re-read before they are relied on.
        if self.auth.catch_up.behind() {
            self.auth.catch_up.wait().await;
        }
        let req = session.req_header();
        let cookies = req.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        ctx.session = self.auth.session(&config, app_id, cookies);
        let cookies = req.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        ctx.pass = self.auth.pass(&config, &req.headers, cookies);
        let app = config.app(app_id);
        let device_cert = app.device_cert != DeviceCertMode::Off
            && self.device_cert_counts(session, ctx.session.as_ref().map(|s| s.session.user.as_str()));
        if app.device_cert == DeviceCertMode::Require && !device_cert {
            ctx.outcome = Outcome::Deny;
            let rule = format!("app.{}.device_cert (require)", app.name);
            refused_event(session, ctx, &app.name, Action::Deny, &rule);
            let contact = config.portal.contact.as_deref();
            Reply::html(403, "Device certificate needed", DEVICE_CERT_NEEDED, contact).send(session).await?;
            return Ok(true);
        }
        let req = session.req_header();
        // A pass counts for the user whose session it is (at a login, for
        // the user logging in: see the portal).
        let pass = ctx.pass.as_ref().filter(|p| ctx.session.as_ref().is_some_and(|s| s.session.user == p.pass.user));
        let groups = ctx.session.as_ref().map_or(GroupMask::EMPTY, |s| s.groups);
        let facts = Facts { networks: config.networks.lookup(ctx.client_ip), device_cert, groups, ..Facts::default() }
            .with_pass(pass.map(|p| p.pass.issued_at));
        let facts = config.facts_at(facts, self.auth.clock.now());
        ctx.facts = facts;
        if path::is_portal_path(req.uri.path()) {
            ctx.outcome = Outcome::Portal;
            // An app with `device_cert = "off"` does not use the certificate, for a login either.
            let peer_cert = match app.device_cert {
                DeviceCertMode::Off => portal::cert_login::PeerCert::Absent,
                _ => self.judge_peer_cert(session, &config),
            };
            let portal = portal::Portal {
                config: &config,
                auth: &self.auth,
                app: app_id,
                facts,
                client_ip: ctx.client_ip,
                session: ctx.session.as_ref(),
                peer_cert,
                cert_listener: None,
                pass: ctx.pass.as_ref().map(|p| &*p.pass),
            };
            portal.handle(session).await?;
            return Ok(true);
        }
        let decision = decide(app, &config.groups, &facts, ctx.session.as_ref().map(|s| &s.facts));
        ctx.decision = Some(decision);
        match self.challenge_or_deny(session, ctx, decision) {
            None => Ok(false),
            Some(reply) => {
                let rule = decision.rule_name(app, ctx.session.as_ref().map(|s| &config.groups[s.facts.group]));
                refused_event(session, ctx, &app.name, decision.action, &rule);
                reply.send(session).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let app = ctx.app.map(|id| ctx.config.app(id)).ok_or_else(|| Error::new(ErrorType::InternalError))?;
        let up = &app.upstream;
        Ok(Box::new(HttpPeer::new(up.addr, up.tls, up.sni.clone())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let jwt = ctx.config.identity.jwt.as_ref();
        headers::clean_request(req, session.is_upgrade_req(), jwt.map(|j| &j.header))?;
        // The app was chosen by the URI's authority when there is one (HTTP/2, or an
        // absolute-form HTTP/1 target, where RFC 9112 says Host is to be ignored):
        // the upstream must see that same host, or a shared upstream could be
        // asked for another app's content under this app's decision.
        if let Some(a) = req.uri.authority().map(|a| a.to_string()) {
            req.insert_header(http::header::HOST, a)?;
        }
        // Up to eight headers follow: each map grows once, and every name is
        // a constant parsed at compile time (see vendor/README.md).
        req.reserve_headers(8)?;
        let host = ctx.forwarded_host.take();
        req.insert_parsed_header(&names::X_FORWARDED_FOR, "x-forwarded-for", ip_header(ctx.client_ip))?;
        let https = http::HeaderValue::from_static("https");
        req.insert_parsed_header(&names::X_FORWARDED_PROTO, "x-forwarded-proto", https)?;
        if let Some(host) = host {
            req.insert_parsed_header(&names::X_FORWARDED_HOST, "x-forwarded-host", host)?;
        }
        let auth = http::HeaderValue::from_static(ctx.auth);
        req.insert_parsed_header(&names::X_PORTCULLIS_AUTH, "x-portcullis-auth", auth)?;
        if let Some(s) = ctx.session.as_ref() {
            for (name, case, value) in identity_headers(&ctx.config, s) {
                req.insert_parsed_header(name, case, value.clone())?;
            }
        }
        // The signed identity: signed once per session, app and key, then reused.
        if let (Some(s), Some(jwt), Some(app)) = (ctx.session.as_ref(), jwt, ctx.app) {
            if let Some(token) = self.auth.identity_token(&ctx.config, ctx.config.app(app), &s.session) {
                req.insert_parsed_header(&jwt.header, jwt.spelling.clone(), token)?;
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut pingora::http::ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // Sliding idle timeout: an active session's cookie is re-issued now and then.
        if let Some(s) = ctx.session.as_ref().filter(|s| s.refresh && ctx.outcome == Outcome::Forward) {
            resp.append_header(http::header::SET_COOKIE, self.auth.refreshed_session_cookie(&s.session))?;
        }
        if ctx.app.is_some_and(|a| ctx.config.app(a).hsts)
            && !resp.headers.contains_key(http::header::STRICT_TRANSPORT_SECURITY)
        {
            let hsts = names::HSTS.clone();
            resp.insert_parsed_header(&http::header::STRICT_TRANSPORT_SECURITY, "strict-transport-security", hsts)?;
        }
        // A pass in use is re-issued on this host at most hourly (renewed
        // when so configured), and the use is recorded in the next batch.
        if let (Some(p), Some(cfg)) = (ctx.pass.as_ref().filter(|p| p.refresh), ctx.config.entrance_pass.as_ref()) {
            // Only a pass that counted here (the session's user's) is in use.
            let counted = ctx.session.as_ref().is_some_and(|s| s.session.user == p.pass.user);
            if ctx.outcome == Outcome::Forward && counted {
                resp.append_header(http::header::SET_COOKIE, self.auth.refreshed_pass_cookie(cfg, &p.pass))?;
            }
        }
        Ok(())
    }

    async fn logging(&self, session: &mut Session, e: Option<&pingora::Error>, ctx: &mut Ctx) {
        if let Some(app) = ctx.app {
            ctx.config.app(app).counters.count(ctx.outcome);
        }
        let took = ctx.started.elapsed();
        metrics::observe_latency(took);
        if ctx.config.log.access {
            access_log(session, e, ctx, took);
        }
    }
}

/// `x-portcullis-auth`: how a forwarded request got through.
fn auth_name(rule: Rule) -> &'static str {
    match rule {
        Rule::Bypass => "bypass",
        Rule::OtpSkip => "first_factor",
        _ => "both_factors",
    }
}

/// The names (and fixed values) of the headers the proxy sets, parsed at compile time.
mod names {
    use http::{HeaderName, HeaderValue};
    pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    pub static X_PORTCULLIS_AUTH: HeaderName = HeaderName::from_static("x-portcullis-auth");
    pub static X_PORTCULLIS_USER: HeaderName = HeaderName::from_static("x-portcullis-user");
    pub static X_PORTCULLIS_GROUPS: HeaderName = HeaderName::from_static("x-portcullis-groups");
    pub static X_PORTCULLIS_EMAIL: HeaderName = HeaderName::from_static("x-portcullis-email");
    /// The `strict-transport-security` value, checked at compile time.
    pub static HSTS: HeaderValue = HeaderValue::from_static(super::respond::HSTS);
}

/// `x-portcullis-user`, `-groups` and `-email` of a session's user (name,
/// its spelling, value), as built at load; none when the user is gone from
/// the users file.
fn identity_headers<'a>(
    config: &'a Config,
    s: &ValidSession,
) -> impl Iterator<Item = (&'static http::HeaderName, &'static str, &'a http::HeaderValue)> {
    let user = config.users.get(&s.session.user).map(|u| &u.headers);
    let fixed = user.into_iter().flat_map(|h| {
        [
            (&names::X_PORTCULLIS_USER, "x-portcullis-user", &h.user),
            (&names::X_PORTCULLIS_GROUPS, "x-portcullis-groups", &h.groups),
        ]
    });
    let email = user.and_then(|h| h.email.as_ref());
    fixed.chain(email.map(|e| (&names::X_PORTCULLIS_EMAIL, "x-portcullis-email", e)))
}

/// `x-forwarded-host`: the request's host without its port (`host`, from
/// [`request_host`]). The Host header's own value is shared when it has no
/// port (no copy).
fn forwarded_host(req: &RequestHeader, host: &str) -> Option<http::HeaderValue> {
    match req.headers.get(http::header::HOST) {
        Some(v) if v.as_bytes() == host.as_bytes() => Some(v.clone()),
        _ => http::HeaderValue::from_str(host).ok(),
    }
}

/// An address as a header value, formatted without a `String` in between
/// (IPv4 digit by digit: `fmt` costs ten times as much).
fn ip_header(ip: IpAddr) -> http::HeaderValue {
    let mut buf = [0u8; 48];
    let len = match ip {
        IpAddr::V4(v4) => {
            let mut at = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[at] = b'.';
                    at += 1;
                }
                if octet >= 100 {
                    buf[at] = b'0' + octet / 100;
                    at += 1;
                }
                if octet >= 10 {
                    buf[at] = b'0' + octet / 10 % 10;
                    at += 1;
                }
                buf[at] = b'0' + octet % 10;
                at += 1;
            }
            at
        }
        IpAddr::V6(_) => {
            use std::io::Write;
            // 48 bytes hold the longest IPv6 text (45 characters).
            let mut w = &mut buf[..];
            let _ = write!(w, "{ip}");
            48 - w.len()
        }
    };
    http::HeaderValue::from_bytes(&buf[..len]).unwrap_or(http::HeaderValue::from_static(""))
}

/// The audit event of a challenged or denied request, with what the decision
/// saw (`ctx.facts`), so that `decide --replay` can decide it again.
fn refused_event(session: &Session, ctx: &Ctx, app: &str, action: Action, rule: &str) {
    crate::audit!(
        "request_refused",
        app,
        host = request_host(session.req_header()).unwrap_or("-"),
        client_ip = %ctx.client_ip,
        path = session.req_header().uri.path(),
        decision = ?action,
        action = action.name(),
        user = ctx.session.as_ref().map(|s| s.session.user.as_str()),
        level = ctx.session.as_ref().map(|s| s.facts.level.name()),
        entrance_pass = ctx.facts.entrance_pass,
        device_cert = ctx.facts.device_cert,
        rule,
    );
}

/// One `access` event (`[log] access = true`): app, decision, deciding rule,
/// status and duration.
fn access_log(session: &Session, e: Option<&pingora::Error>, ctx: &Ctx, took: std::time::Duration) {
    let config = &ctx.config;
    let app = ctx.app.map(|id| config.app(id));
    let rule = match (app, ctx.decision, ctx.outcome) {
        (Some(app), Some(d), _) => {
            let group = ctx.session.as_ref().and_then(|s| config.groups.get(s.facts.group));
            d.rule_name(app, group)
        }
        (Some(app), None, Outcome::Deny) => format!("app.{}.device_cert (require)", app.name),
        (Some(_), None, Outcome::Portal) => "portal".to_string(),
        _ => "-".to_string(),
    };
    let req = session.req_header();
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    tracing::info!(
        target: "access",
        app = app.map_or("-", |a| a.name.as_str()),
        host = request_host(req).unwrap_or("-"),
        method = req.method.as_str(),
        path = req.uri.path(),
        client_ip = %ctx.client_ip,
        user = ctx.session.as_ref().map(|s| s.session.user.as_str()),
        decision = ctx.outcome.name(),
        action = ctx.decision.map(|d| d.action.name()),
        level = ctx.session.as_ref().map(|s| s.facts.level.name()),
        entrance_pass = ctx.facts.entrance_pass,
        device_cert = ctx.facts.device_cert,
        rule = %rule,
        status,
        duration_us = took.as_micros() as u64,
        error = e.map(|e| e.etype().as_str()),
    );
}
