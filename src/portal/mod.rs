//! The portal: pages and JSON API under the reserved prefix `/.portcullis/` on
//! every protected host. Requests under it are answered here and never reach
//! the upstream, in whatever spelling a client or an app's path normaliser
//! might read as the prefix (`/.Portcullis/`, `/%2eportcullis/`, `//.portcullis/`):
//! `proxy::path` reads the path once and decides what is under the prefix.

pub mod api;
pub mod browser;
pub mod cert_download;
pub mod cert_login;
pub mod form;
pub mod handoff;
mod invite;
mod my_certs;
mod my_passes;
pub mod prg;
pub mod push;
pub mod redirect;
mod shown_codes;

use crate::auth::{Auth, ValidSession};
use crate::challenge::pages::Lang;
use crate::config::hosts::AppId;
use crate::config::Config;
use crate::identity::cookie::set_cookie;
use crate::identity::session::SESSION_COOKIE;
use crate::policy::expr::Facts;
use crate::proxy::respond::Reply;
use pingora::proxy::Session;
use std::collections::HashMap;
use std::net::IpAddr;

/// The JWK set of the signed identity for apps (see `identity::jwt`).
pub const JWKS_PATH: &str = "/.portcullis/jwks.json";

/// The current and previous public keys apps verify the identity JWT with.
fn jwks(auth: &Auth, method: &http::Method) -> Reply {
    if method != http::Method::GET && method != http::Method::HEAD {
        let body = serde_json::json!({"error": "method_not_allowed", "message": "use GET"});
        return Reply::json(405, &body).with_header("allow", "GET, HEAD".to_string());
    }
    let mut body = auth.identity_keys.load().jwks().to_string();
    body.push('\n');
    Reply {
        status: 200,
        content_type: "application/jwk-set+json",
        body: body.into(),
        location: None,
        named: vec![],
        extra: Vec::new(),
    }
}

/// One portal request: what the proxy already knows about it.
pub struct Portal<'a> {
    pub config: &'a Config,
    pub auth: &'a Auth,
    pub app: AppId,
    pub facts: Facts,
    pub client_ip: IpAddr,
    pub session: Option<&'a ValidSession>,
    /// The device certificate this connection presented, judged for a login.
    pub peer_cert: cert_login::PeerCert,
    /// On the certificate-login listener: the apps' port, the only one its
    /// logins are handed back to. `None` on the main listener.
    pub cert_listener: Option<u16>,
    /// The entrance pass the browser holds here (valid, whoever's it is).
    pub pass: Option<&'a crate::identity::pass::Pass>,
}

/// What every handler needs, read once from the request.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub host: String,
    /// The port the browser used: the Host (or authority) port, 443 when none.
    pub port: u16,
    /// `Sec-Fetch-Site: cross-site`: another site made the browser send this.
    pub cross_site: bool,
    /// The `__Host-portcullis-handoff` state cookie, if the browser has one.
    pub handoff_state: Option<String>,
    pub lang: Lang,
    /// The browser's flow id; `new_flow` when it was made for this response.
    pub flow: String,
    pub new_flow: bool,
    pub fields: HashMap<String, String>,
    /// Every field of a POSTed form in order, repeated names included (the
    /// console's checkboxes); [`Request::fields`] keeps only the first of each.
    pub pairs: Vec<(String, String)>,
    /// The request carries Fetch Metadata (see `identity::pass::is_browser`).
    pub browser: bool,
    /// A JSON body as parsed (for endpoints taking nested values).
    pub json: Option<serde_json::Value>,
    pub user_agent: String,
}

impl Request {
    /// A field of the form or JSON body, or else of the query string.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// Every value of a repeated form field (checked boxes), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// This listener's origin as the browser named it: `host:port`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `rd` as sent (still percent-encoded), for [`redirect::validate_return`].
    pub fn rd(&self) -> String {
        self.fields
            .get("rd")
            .cloned()
            .or_else(|| raw_query_param(&self.query, "rd").map(str::to_string))
            .unwrap_or_default()
    }
}

/// A query parameter's raw (undecoded) value.
fn raw_query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
}

impl Portal<'_> {
    /// Answers a portal request; nothing under the prefix reaches the upstream.
    pub async fn handle(&self, session: &mut Session) -> pingora::Result<()> {
        // Public keys, for apps checking the signed identity: no flow, no session.
        if session.req_header().uri.path() == JWKS_PATH && self.cert_listener.is_none() {
            return jwks(self.auth, &session.req_header().method).send(session).await;
        }
        let reply = match self.read(session).await {
            Ok(req) if req.method == "GET" && req.path == push::EVENTS_PATH && self.cert_listener.is_none() => {
                return self.approver_events(session, &req).await;
            }
            Ok(req) => {
                let is_api = req.path.starts_with("/.portcullis/api/");
                let mut reply = if is_api { self.api(&req).await } else { self.browser(&req).await };
                if req.new_flow {
                    let value = self.auth.keys.load().sign("flow", req.flow.as_bytes());
                    reply = reply.with_header("set-cookie", set_cookie(form::FLOW_COOKIE, &value, None));
                }
                reply
            }
            Err(reply) => reply,
        };
        reply.send(session).await
    }

    async fn read(&self, session: &mut Session) -> Result<Request, Reply> {
        let h = session.req_header();
        let (method, path) = (h.method.as_str().to_string(), h.uri.path().to_string());
        let query = h.uri.query().unwrap_or("").to_string();
        let host = h
            .uri
            .host()
            .map(str::to_string)
            .or_else(|| {
                let v = h.headers.get(http::header::HOST)?.to_str().ok()?;
                crate::config::hosts::strip_port(v).map(str::to_string)
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        let header = |n: &str| h.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let authority = h.uri.authority().map(|a| a.to_string()).or_else(|| header("host")).unwrap_or_default();
        let port = redirect::authority_port(&authority).unwrap_or(443);
        let cross_site = header("sec-fetch-site").is_some_and(|s| s.trim().eq_ignore_ascii_case("cross-site"));
        let browser = crate::identity::pass::is_browser(&h.headers);
        let user_agent = header("user-agent").unwrap_or_default();
        let cookie_headers = || h.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        let handoff_state = crate::identity::cookie::request_cookie(cookie_headers(), handoff::STATE_COOKIE);
        let (accept_language, content_type) = (header("accept-language"), header("content-type").unwrap_or_default());
        let mut fields = form::parse_form(query.as_bytes());
        let lang = Lang::negotiate(fields.get("lang").map(String::as_str), accept_language.as_deref());
        let existing = form::flow_id(cookie_headers(), &self.auth.keys.load());
        let is_api = path.starts_with("/.portcullis/api/");
        let mut json = None;
        let mut pairs = Vec::new();
        if method == "POST" {
            if is_api && !self.api_request_allowed(session, &content_type) {
                return Err(Reply::json(
                    415,
                    &serde_json::json!({"error": "bad_request", "message": "send Content-Type: application/json from the same origin"}),
                ));
            }
            let body = form::read_body(session).await.map_err(|e| body_error(e, is_api))?;
            let parsed = if is_api {
                json = serde_json::from_slice(&body).ok();
                form::parse_json(&body).map_err(|e| body_error(e, true))?
            } else {
                pairs = form::parse_pairs(&body);
                form::parse_form(&body)
            };
            fields.retain(|k, _| k == "rd" || k == "lang" || k == "enroll");
            fields.extend(parsed);
        }
        let (flow, new_flow) = match existing {
            Some(f) => (f, false),
            None => (form::new_flow_id(), true),
        };
        Ok(Request {
            method,
            path,
            query,
            host,
            port,
            cross_site,
            handoff_state,
            lang,
            flow,
            new_flow,
            fields,
            pairs,
            browser,
            user_agent,
            json,
        })
    }

    /// JSON posts must say so (a cross-site form cannot) and not come from another site.
    fn api_request_allowed(&self, session: &Session, content_type: &str) -> bool {
        let h = &session.req_header().headers;
        let json = content_type.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        json && site.is_none_or(|s| s == "same-origin" || s == "none")
    }

    /// The `Set-Cookie` for a new session.
    /// On the certificate-login listener the session goes into a cookie of
    /// its own, which only the handoff's step 3 there reads, for ten minutes:
    /// cookies ignore ports, so the app's own cookie name would sign the
    /// browser in on the app host without a handoff (and on another site's say).
    pub fn session_cookie(&self, s: &crate::identity::session::Session) -> String {
        let value = s.to_cookie(&self.auth.keys.load());
        let left = s.expires_at.saturating_sub(self.auth.clock.now());
        match self.cert_listener {
            None => set_cookie(SESSION_COOKIE, &value, Some(left)),
            Some(_) => set_cookie(cert_login::LISTENER_SESSION_COOKIE, &value, Some(left.min(10 * 60))),
        }
    }

    /// The `Set-Cookie`s of a finished login: the session, and an entrance
    /// pass when the login earns one (see [`Portal::earned_pass`]).
    pub async fn signed_in(&self, req: &Request, s: &crate::identity::session::Session) -> Vec<String> {
        let mut cookies = vec![self.session_cookie(s)];
        cookies.extend(self.earned_pass(req, &s.user).await);
        cookies
    }

    /// A new entrance pass for this browser, when `[entrance_pass]
    /// issue_when` holds for this login and the request is a browser's. A
    /// browser that holds a valid pass of this user gets a fresh one in its
    /// place (the held one is revoked), so a pass's age counts from the latest
    /// login that met `issue_when` ("skip the OTP for a month after the last
    /// internal login"). `issue_when` is judged without the held pass, so a
    /// pass never renews itself. A store that cannot record it costs the
    /// pass, not the login.
    async fn earned_pass(&self, req: &Request, user: &str) -> Option<String> {
        let cfg = self.config.entrance_pass.as_ref()?;
        if !req.browser || !cfg.issue_when.eval(&self.facts_for(user).with_pass(None)) {
            return None;
        }
        let held = self.pass.filter(|p| p.user == user);
        match self.auth.issue_pass(cfg, user, self.client_ip, &req.user_agent).await {
            Ok(pass) => {
                match held {
                    // One pass per browser: the one it replaces stops working.
                    Some(old) => {
                        if let Err(e) = self.auth.revoke_pass(&old.id).await {
                            tracing::warn!("entrance pass of `{user}` renewed, the old one not revoked: {e}");
                        }
                    }
                    None => {
                        let browser = crate::identity::pass::describe_browser(&req.user_agent);
                        let notice =
                            crate::notices::Notice::PassIssued { browser, address: self.client_ip.to_string() };
                        crate::notices::notify(self.config, user, notice);
                    }
                }
                Some(self.auth.pass_cookie(&pass))
            }
            Err(e) => {
                tracing::warn!("no entrance pass for `{user}`: {e}");
                None
            }
        }
    }

    /// The request's facts for `user`: `entrance_pass` (and its age) counts
    /// only the browser's pass of that user; `group(…)` reads that user's groups.
    pub fn facts_for(&self, user: &str) -> Facts {
        // Both name a user: they count for that user only.
        let device_cert = self.facts.device_cert && self.peer_cert.is_user(user);
        let pass = self.pass.filter(|p| p.user == user).map(|p| p.issued_at);
        Facts { device_cert, groups: self.config.group_mask(user), ..self.facts }.with_pass(pass)
    }

    /// The password step, as both the page and the API run it.
    pub async fn password_step(&self, req: &Request, user: &str, password: &str) -> crate::challenge::login::Step {
        let (enroll, rd) = (req.field("enroll"), req.rd());
        let facts = self.facts_for(user.trim());
        let login = &self.auth.login;
        login.password(self.config, self.app, &facts, self.client_ip, &req.flow, user, password, enroll, &rd).await
    }

    pub fn contact(&self) -> Option<&str> {
        self.config.portal.contact.as_deref()
    }
}

fn body_error(e: form::BodyError, is_api: bool) -> Reply {
    let (status, msg) = match e {
        form::BodyError::TooLarge => (413, "the request body is too large"),
        form::BodyError::Read => (400, "the request body could not be read"),
        form::BodyError::Malformed(m) => (400, m),
    };
    if is_api {
        Reply::json(status, &serde_json::json!({"error": "bad_request", "message": msg}))
    } else {
        Reply::html(status, "Bad request", msg, None)
    }
}
