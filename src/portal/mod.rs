//! The portal: pages and JSON API under the reserved prefix `/.portcullis/` on
//! every protected host. Requests under it are answered here and never reach
//! the upstream, in whatever spelling a client or an app's path normaliser
//! might read as the prefix (`/.Portcullis/`, `/%2eportcullis/`, `//.portcullis/`).

pub mod api;
pub mod browser;
pub mod form;
pub mod redirect;

use crate::auth::{Auth, ValidSession};
use crate::challenge::pages::Lang;
use crate::config::hosts::AppId;
use crate::config::Config;
use crate::identity::cookie::set_cookie;
use crate::identity::session::{Session as UserSession, SessionLevel, SESSION_COOKIE};
use crate::policy::expr::Facts;
use crate::proxy::respond::Reply;
use pingora::proxy::Session;
use std::collections::HashMap;
use std::net::IpAddr;

const PREFIX: &[u8] = b"/.portcullis";

/// How long a cross-host handoff code is valid.
const HANDOFF_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// What a handoff code carries to the other app's host.
#[derive(serde::Serialize, serde::Deserialize)]
struct Handoff {
    user: String,
    app: String,
    both_factors: bool,
    expires_at: u64,
}

/// Whether a request path is under the reserved prefix.
pub fn is_portal_path(path: &str) -> bool {
    let b = path.as_bytes();
    // Fast path: most requests do not start with "/." or "//" or "/%".
    if b.len() < 2 || !matches!(b[1], b'.' | b'/' | b'%' | b'\\') {
        return false;
    }
    let mut decoded = [0u8; 64];
    let n = decode_prefix(b, &mut decoded);
    // Some app stacks read `\` as `/` and collapse repeated slashes.
    for c in decoded[..n].iter_mut().filter(|c| **c == b'\\') {
        *c = b'/';
    }
    let mut s = &decoded[..n];
    while s.len() > 1 && s[1] == b'/' {
        s = &s[1..];
    }
    s.len() >= PREFIX.len()
        && s[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        && matches!(s.get(PREFIX.len()), None | Some(b'/') | Some(b'?') | Some(b';'))
}

/// Percent-decodes (three rounds, to defeat double encoding) up to 64 bytes.
fn decode_prefix(b: &[u8], out: &mut [u8; 64]) -> usize {
    let mut n = b.len().min(out.len());
    out[..n].copy_from_slice(&b[..n]);
    for _ in 0..3 {
        let (mut r, mut w) = (0, 0);
        while r < n {
            let byte = match (out[r], out.get(r + 1).and_then(|&h| hex(h)), out.get(r + 2).and_then(|&l| hex(l))) {
                (b'%', Some(h), Some(l)) if r + 2 < n => {
                    r += 3;
                    h * 16 + l
                }
                (c, _, _) => {
                    r += 1;
                    c
                }
            };
            out[w] = byte;
            w += 1;
        }
        n = w;
    }
    n
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// One portal request: what the proxy already knows about it.
pub struct Portal<'a> {
    pub config: &'a Config,
    pub auth: &'a Auth,
    pub app: AppId,
    pub facts: Facts,
    pub client_ip: IpAddr,
    pub session: Option<&'a ValidSession>,
}

/// What every handler needs, read once from the request.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub host: String,
    pub lang: Lang,
    /// The browser's flow id; `new_flow` when it was made for this response.
    pub flow: String,
    pub new_flow: bool,
    pub fields: HashMap<String, String>,
}

impl Request {
    /// A field of the form or JSON body, or else of the query string.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
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
        let reply = match self.read(session).await {
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
        let (accept_language, content_type) = (header("accept-language"), header("content-type").unwrap_or_default());
        let mut fields = form::parse_form(query.as_bytes());
        let lang = Lang::negotiate(fields.get("lang").map(String::as_str), accept_language.as_deref());
        let cookies = h.headers.get_all(http::header::COOKIE).into_iter().map(|v| v.as_bytes());
        let existing = form::flow_id(cookies, &self.auth.keys.load());
        let is_api = path.starts_with("/.portcullis/api/");
        if method == "POST" {
            if is_api && !self.api_request_allowed(session, &content_type) {
                return Err(Reply::json(
                    415,
                    &serde_json::json!({"error": "bad_request", "message": "send Content-Type: application/json from the same origin"}),
                ));
            }
            let body = form::read_body(session).await.map_err(|e| body_error(e, is_api))?;
            let parsed = if is_api {
                form::parse_json(&body).map_err(|e| body_error(e, true))?
            } else {
                form::parse_form(&body)
            };
            fields.retain(|k, _| k == "rd" || k == "lang" || k == "enroll");
            fields.extend(parsed);
        }
        let (flow, new_flow) = match existing {
            Some(f) => (f, false),
            None => (form::new_flow_id(), true),
        };
        Ok(Request { method, path, query, host, lang, flow, new_flow, fields })
    }

    /// JSON posts must say so (a cross-site form cannot) and not come from another site.
    fn api_request_allowed(&self, session: &Session, content_type: &str) -> bool {
        let h = &session.req_header().headers;
        let json = content_type.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        json && site.is_none_or(|s| s == "same-origin" || s == "none")
    }

    /// Where to send the browser after a login: the validated `rd`, or the dashboard.
    pub fn return_location(&self, host: &str, rd: &str) -> String {
        let is_app_host = |h: &str| self.config.hosts.matches(h);
        match redirect::validate_return(rd, host, &is_app_host) {
            Some(redirect::ReturnTo::Path(p)) => p,
            Some(redirect::ReturnTo::Url { host, path }) => format!("https://{host}{path}"),
            None => "/.portcullis/".to_string(),
        }
    }

    /// Where to send the browser once signed in. A return target on another
    /// app's host gets a single-use code (60 s) that host trades for its own
    /// `__Host-` cookie at `/.portcullis/session`: no cookie crosses hosts.
    pub async fn after_login(&self, req: &Request, session: &UserSession, rd: &str) -> String {
        let is_app_host = |h: &str| self.config.hosts.matches(h);
        let (host, path) = match redirect::validate_return(rd, &req.host, &is_app_host) {
            Some(redirect::ReturnTo::Path(p)) => return p,
            Some(redirect::ReturnTo::Url { host, path }) => (host, path),
            None => return "/.portcullis/".to_string(),
        };
        let bare = crate::config::hosts::strip_port(&host).unwrap_or(&host);
        match self.config.hosts.lookup(bare) {
            Some(app) if app == self.app => path,
            Some(app) => self.handoff(session, app, &host, &path).await.unwrap_or_else(|| "/.portcullis/".to_string()),
            None => "/.portcullis/".to_string(),
        }
    }

    async fn handoff(&self, session: &UserSession, app: AppId, host: &str, path: &str) -> Option<String> {
        let grant = Handoff {
            user: session.user.clone(),
            app: self.config.app(app).name.clone(),
            both_factors: session.level == SessionLevel::BothFactors,
            expires_at: session.expires_at,
        };
        let code = hex::encode(rand::random::<[u8; 16]>());
        let bytes = serde_json::to_vec(&grant).ok()?;
        self.auth.store().put_challenge(&format!("handoff:{code}"), &bytes, HANDOFF_TTL).await.ok()?;
        Some(format!("https://{host}/.portcullis/session?code={code}&rd={}", redirect::encode_return_param(path)))
    }

    /// `GET /.portcullis/session?code=…&rd=…`: trades a single-use handoff code
    /// for this host's own session cookie.
    pub async fn take_handoff(&self, req: &Request) -> Result<(UserSession, String), ()> {
        let code = req.field("code").filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit())).ok_or(())?;
        let bytes = self.auth.store().take_challenge(&format!("handoff:{code}")).await.map_err(|_| ())?.ok_or(())?;
        let grant: Handoff = serde_json::from_slice(&bytes).map_err(|_| ())?;
        let app = self.config.app(self.app);
        if grant.app != app.name {
            return Err(());
        }
        let user = self.config.users.get(&grant.user).ok_or(())?;
        let now = self.auth.clock.now();
        let lifetime = self.config.groups[user.policy_group].session_lifetime.as_secs();
        let lifetime = lifetime.min(grant.expires_at.saturating_sub(now));
        let level = if grant.both_factors { SessionLevel::BothFactors } else { SessionLevel::FirstFactor };
        let session = UserSession::new(&user.username, &app.name, level, now, lifetime);
        let next = match redirect::validate_return(&req.rd(), &req.host, &|_: &str| false) {
            Some(redirect::ReturnTo::Path(p)) => p,
            _ => "/.portcullis/".to_string(),
        };
        Ok((session, next))
    }

    /// The `Set-Cookie` for a new session.
    pub fn session_cookie(&self, s: &crate::identity::session::Session) -> String {
        let value = s.to_cookie(&self.auth.keys.load());
        set_cookie(SESSION_COOKIE, &value, Some(s.expires_at.saturating_sub(self.auth.clock.now())))
    }

    /// The password step, as both the page and the API run it.
    pub async fn password_step(&self, req: &Request, user: &str, password: &str) -> crate::challenge::login::Step {
        let (enroll, rd) = (req.field("enroll"), req.rd());
        let login = &self.auth.login;
        login.password(self.config, self.app, &self.facts, self.client_ip, &req.flow, user, password, enroll, &rd).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefix_in_every_spelling() {
        for p in [
            "/.portcullis",
            "/.portcullis/",
            "/.portcullis/login",
            "/.PORTCULLIS/x",
            "//.portcullis/x",
            "/%2eportcullis/x",
            "/%2Eportcullis/x",
            "/%252eportcullis/x",
            "/.portcullis%2flogin",
            "/\\.portcullis/x",
            "/.portcullis?x",
            "/.portcullis;x",
        ] {
            assert!(is_portal_path(p), "{p}");
        }
        for p in ["/", "/portcullis", "/.portcullisx", "/a/.portcullis/", "/.well-known/x", "", "/%", "/%2"] {
            assert!(!is_portal_path(p), "{p}");
        }
    }
}
