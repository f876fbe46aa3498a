//! Forward-auth: portcullis answers another proxy's auth subrequest instead
//! of proxying (nginx `auth_request`, HAProxy, Caddy `forward_auth`,
//! Traefik `forwardAuth`). The other proxy keeps serving the app; for each
//! request it asks portcullis, with the client's own headers (cookies) and
//! what it knows of the request in `X-Forwarded-Method`, `-Proto`, `-Host`,
//! `-Uri` and `-For`.
//!
//! - `/.portcullis/auth/request` (nginx, HAProxy): `200` with the identity
//!   headers, `401` when a login or second factor is needed (the proxy sends
//!   the browser to the portal, see the README), `403` when denied.
//! - `/.portcullis/auth/forward` (Caddy, Traefik, which pass a non-2xx answer
//!   on to the client): the same, but a browser is redirected (`302`) to the
//!   portal on the request's own host.
//!
//! The `X-Forwarded-*` headers are believed only from `server.trusted_proxies`:
//! anyone else is refused (`403`), so a client cannot describe a request of
//! its own invention. The URI is canonicalised as the proxy canonicalises its
//! own requests, and nothing is public: a path under `/.portcullis/` is
//! decided like any other (the portal is served by portcullis itself, not
//! through the other proxy's auth).

use super::{path, respond, Portcullis};
use crate::config::{Config, DeviceCertMode};
use crate::identity::client_ip::{client_ip, TrustedProxies};
use crate::policy::decide::{decide, Action, Challenge};
use crate::policy::expr::{Facts, GroupMask};
use pingora::prelude::*;
use pingora::proxy::Session;
use respond::Reply;
use std::sync::Arc;

pub const REQUEST_PATH: &str = "/.portcullis/auth/request";
pub const FORWARD_PATH: &str = "/.portcullis/auth/forward";

/// How a challenge is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `401` (nginx `auth_request`, HAProxy).
    Status,
    /// A redirect to the portal for a browser (Caddy, Traefik).
    Redirect,
}

/// The forward-auth endpoint a canonical path names, if any.
pub fn mode(canonical_path: &str) -> Option<Mode> {
    match canonical_path {
        REQUEST_PATH => Some(Mode::Status),
        FORWARD_PATH => Some(Mode::Redirect),
        _ => None,
    }
}

/// The request the other proxy describes.
struct Described {
    method: String,
    proto: &'static str,
    /// The host without its port: the app is looked up by it.
    host: String,
    /// The host as the client named it (with a port): the portal is there.
    authority: String,
    /// Canonical path and the query as sent.
    target: String,
}

/// One header value, once: a repeated or non-ASCII one is refused.
fn single<'a>(req: &'a pingora::http::RequestHeader, name: &str) -> Result<Option<&'a str>, &'static str> {
    let mut values = req.headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err("an X-Forwarded header is repeated");
    }
    first.map(|v| v.to_str().map_err(|_| "an X-Forwarded header is not ASCII")).transpose()
}

fn described(req: &pingora::http::RequestHeader) -> Result<Described, &'static str> {
    let authority = single(req, "x-forwarded-host")?.ok_or("X-Forwarded-Host is missing")?.trim();
    let host = crate::config::hosts::strip_port(authority).ok_or("X-Forwarded-Host is not a host")?;
    if authority.parse::<http::uri::Authority>().is_err() || authority.contains('@') {
        return Err("X-Forwarded-Host is not a host");
    }
    let uri = single(req, "x-forwarded-uri")?.ok_or("X-Forwarded-Uri is missing")?;
    let (raw_path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    if uri.contains('#') {
        return Err("X-Forwarded-Uri may not contain #");
    }
    let canonical = path::canonicalize(raw_path.as_bytes()).map_err(|e| e.message())?;
    let target = match query {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical.into_owned(),
    };
    let method = single(req, "x-forwarded-method")?.unwrap_or("GET");
    if method.is_empty() || method.len() > 32 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("X-Forwarded-Method is not a method");
    }
    let proto = match single(req, "x-forwarded-proto")?.map(str::trim) {
        None | Some("https") => "https",
        Some("http") => "http",
        Some(_) => return Err("X-Forwarded-Proto is neither http nor https"),
    };
    Ok(Described {
        method: method.to_owned(),
        proto,
        host: host.to_ascii_lowercase(),
        authority: authority.to_ascii_lowercase(),
        target,
    })
}

impl Portcullis {
    /// Answers a forward-auth subrequest (see the module docs).
    pub(super) async fn forward_auth(&self, session: &mut Session, config: Arc<Config>, mode: Mode) -> Result<bool> {
        let peer = super::peer_ip(session);
        if !config.server.trusted_proxies.is_trusted(peer) {
            let message = "forward-auth answers only the proxies in server.trusted_proxies";
            Reply::json(403, &serde_json::json!({"error": "untrusted_proxy", "message": message}))
                .send(session)
                .await?;
            return Ok(true);
        }
        let req = session.req_header();
        let d = match described(req) {
            Ok(d) => d,
            Err(message) => {
                Reply::json(400, &serde_json::json!({"error": "bad_forwarded_request", "message": message}))
                    .send(session)
                    .await?;
                return Ok(true);
            }
        };
        let Some(app_id) = config.hosts.lookup(&d.host) else {
            let message = "no application is served at X-Forwarded-Host";
            Reply::json(403, &serde_json::json!({"error": "unknown_host", "message": message})).send(session).await?;
            return Ok(true);
        };
        let app = config.app(app_id);
        let xff = req.headers.get_all("x-forwarded-for").into_iter().map(|v| v.as_bytes());
        let client = client_ip(peer, xff, &config.server.trusted_proxies);
        if self.auth.catch_up.behind() {
            self.auth.catch_up.wait().await;
        }
        let req = session.req_header();
        let cookies = req.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        let valid = self.auth.session(&config, app_id, cookies);
        let cookies = req.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        let pass = self.auth.pass(&config, &req.headers, cookies);
        let pass = pass.as_ref().filter(|p| valid.as_ref().is_some_and(|s| s.session.user == p.pass.user));
        // The other proxy holds the TLS connection: no device certificate is seen here.
        if app.device_cert == DeviceCertMode::Require {
            Reply::json(403, &serde_json::json!({"error": "device_certificate_required"})).send(session).await?;
            return Ok(true);
        }
        let groups = valid.as_ref().map_or(GroupMask::EMPTY, |s| s.groups);
        let facts = Facts { networks: config.networks.lookup(client), groups, ..Facts::default() }
            .with_pass(pass.map(|p| p.pass.issued_at));
        let facts = config.facts_at(facts, self.auth.clock.now());
        let decision = decide(app, &config.groups, &facts, valid.as_ref().map(|s| &s.facts));
        let reply = match decision.action {
            Action::Forward => {
                let mut r = Reply::empty(200).with_header("x-portcullis-auth", super::auth_name(decision.rule).into());
                if let Some(s) = valid.as_ref() {
                    for (name, _, value) in super::identity_headers(&config, s) {
                        r = r.with_named_header(name.clone(), value.clone());
                    }
                    if let (Some(jwt), Some(token)) =
                        (config.identity.jwt.as_ref(), self.auth.identity_token(&config, app, &s.session))
                    {
                        r = r.with_named_header(jwt.header.clone(), token);
                    }
                    if s.refresh {
                        // The sliding idle timeout: the other proxy passes this on (see the README).
                        r = r.with_cookies(vec![self.auth.refreshed_session_cookie(&s.session)]);
                    }
                }
                r
            }
            Action::Deny => Reply::json(403, &serde_json::json!({"error": "denied"})),
            Action::Challenge(c) => {
                let page = match c {
                    Challenge::Login => "login",
                    Challenge::SecondFactor => "otp",
                };
                let rd = crate::portal::redirect::encode_return_param(&d.target);
                let location = format!("{}://{}/.portcullis/{page}?rd={rd}", d.proto, d.authority);
                let navigation = d.method == "GET" && respond::is_browser_navigation(session);
                match mode {
                    Mode::Redirect if navigation => Reply::redirect(302, location),
                    _ => Reply::json(
                        401,
                        &serde_json::json!({"error": format!("{page}_required"), "location": location}),
                    )
                    .with_header("x-portcullis-location", location.clone()),
                }
            }
        };
        if decision.action != Action::Forward {
            let rule = decision.rule_name(app, valid.as_ref().map(|s| &config.groups[s.facts.group]));
            crate::audit!(
                "forward_auth_refused",
                app = app.name.as_str(),
                host = d.host.as_str(),
                client_ip = %client,
                method = d.method.as_str(),
                path = d.target.as_str(),
                action = decision.action.name(),
                user = valid.as_ref().map(|s| s.session.user.as_str()),
                rule,
            );
        }
        reply.send(session).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&'static str, &str)]) -> pingora::http::RequestHeader {
        let mut r = pingora::http::RequestHeader::build("GET", REQUEST_PATH.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(*k, *v).unwrap();
        }
        r
    }

    #[test]
    fn the_forwarded_request_is_read_and_canonicalised() {
        let d = described(&req(&[
            ("x-forwarded-host", "Wiki.Example.com:8443"),
            ("x-forwarded-uri", "/a/./b/../c%2Dd?x=1"),
            ("x-forwarded-method", "POST"),
            ("x-forwarded-proto", "https"),
        ]))
        .unwrap();
        assert_eq!(
            (d.host.as_str(), d.target.as_str(), d.method.as_str(), d.proto),
            ("wiki.example.com", "/a/c-d?x=1", "POST", "https")
        );
    }

    #[test]
    fn hostile_forwarded_headers_are_refused() {
        let ok = [("x-forwarded-host", "h"), ("x-forwarded-uri", "/")];
        assert!(described(&req(&ok)).is_ok());
        assert!(described(&req(&[("x-forwarded-uri", "/")])).is_err(), "no host");
        assert!(described(&req(&[("x-forwarded-host", "h")])).is_err(), "no uri");
        assert!(described(&req(&[ok[0], ("x-forwarded-uri", "relative")])).is_err());
        assert!(described(&req(&[ok[0], ("x-forwarded-uri", "/%2e%2e/%2e%2e/x")])).is_ok_and(|d| d.target == "/x"));
        assert!(described(&req(&[ok[0], ("x-forwarded-uri", "/a#b")])).is_err());
        assert!(described(&req(&[ok[0], ok[1], ("x-forwarded-uri", "/b")])).is_err(), "repeated");
        assert!(described(&req(&[ok[0], ok[1], ("x-forwarded-method", "get me")])).is_err());
        assert!(described(&req(&[ok[0], ok[1], ("x-forwarded-proto", "gopher")])).is_err());
    }

    #[test]
    fn only_the_two_paths_are_endpoints() {
        assert_eq!(mode("/.portcullis/auth/request"), Some(Mode::Status));
        assert_eq!(mode("/.portcullis/auth/forward"), Some(Mode::Redirect));
        assert_eq!(mode("/.portcullis/auth"), None);
        assert_eq!(mode("/.portcullis/auth/request/x"), None);
    }
}
