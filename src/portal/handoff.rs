//! Carrying a login to another app's host ("handoff") without sharing a
//! cookie between hosts, and without letting anyone else use it.
//!
//! A single-use code in a URL is a bearer token: whoever opens the URL is
//! signed in. Left alone, an attacker could sign in as themselves, take the
//! code and send it to a victim, whose browser would then use the app as the
//! attacker (login CSRF). So a code is bound to the browser it is for, as
//! OAuth clients bind an authorization code with their `state` cookie:
//!
//! 1. The login finishes on the portal host P with a return target on the app
//!    host A (same scheme and port). P answers with a *ticket*, signed, naming
//!    P's flow cookie, P, A and the path, valid ten minutes:
//!    `https://A/.portcullis/session?ticket=…`.
//! 2. A sets a random nonce in its own short-lived `__Host-portcullis-handoff`
//!    cookie and sends the browser back to `https://P/.portcullis/handoff`
//!    with the ticket and the nonce's SHA-256 (`state`).
//! 3. P mints the code only for the browser whose flow cookie the ticket
//!    names and which holds a session on P; the code is bound to `state`:
//!    `https://A/.portcullis/session?code=…`.
//! 4. A redeems the code only if the browser's state cookie hashes to that
//!    `state`, the user's sessions were not ended (sign out everywhere, token
//!    revocation) since the portal session began, the user is not locked, and
//!    the user's group may use A from where the browser is now.
//!
//! A code taken from browser X and opened in browser Y fails at step 4 (Y has
//! no nonce, or another); a ticket opened in Y fails at step 3 (Y's flow is
//! not X's). A cross-site page can start neither: tickets are only handed out
//! to the login's own same-origin POST, and a ticket is itself the proof a
//! CSRF token would give. The session made on A keeps the portal session's
//! first-factor time, end and factors.

use super::{redirect, Portal, Request};
use crate::identity::cookie::{clear_cookie, set_cookie};
use crate::identity::session::{Carried, Session as UserSession, SessionLevel};
use crate::proxy::respond::Reply;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The browser's nonce on the app host, for the length of one handoff.
pub const STATE_COOKIE: &str = "__Host-portcullis-handoff";
/// How long a ticket is good for: it may wait on the recovery-codes page
/// while they are written down, and only its own browser can use it.
const TICKET_SECS: u64 = 10 * 60;
/// The state cookie lives for one bounce to the portal and back.
const STATE_COOKIE_SECS: u64 = 2 * 60;
/// How long a minted code is valid (it is used within the same redirect chain).
const CODE_TTL: std::time::Duration = std::time::Duration::from_secs(60);
const TICKET_PURPOSE: &str = "handoff-ticket";

/// Step 1's signed permission to ask the portal for a code.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Ticket {
    /// The flow cookie of the browser that signed in.
    flow: String,
    /// `host:port` of the portal host, where step 3 runs.
    portal: String,
    /// `host:port` of the app host the login is carried to.
    target: String,
    /// Where on the app host the browser ends up (a validated path).
    path: String,
    expires_at: u64,
}

/// What a code carries to the app host (in the store, single use).
#[derive(serde::Serialize, serde::Deserialize)]
struct Grant {
    user: String,
    app: String,
    /// The portal session's id, so its logout voids the code.
    session_id: String,
    carried: Carried,
    /// Hex SHA-256 of the nonce in the redeeming browser's state cookie.
    state: String,
    path: String,
    /// The browser's entrance pass of this user on the portal host, signed
    /// again: the app host sets it too (passes are host-only cookies).
    #[serde(default)]
    pass: Option<String>,
}

/// Why a handoff step was refused (for the log; the browser sees one page).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    BadTicket,
    OtherBrowser,
    NoSession,
    BadState,
    NoCode,
    OtherApp,
    SignedOut,
    Locked,
    NotAllowed,
    Unavailable,
}

/// The `host:port` a signed ticket hands its login to (signature checked,
/// expiry not): which app's session the certificate-login listener reads.
pub fn ticket_target(keys: &crate::identity::cookie::KeyRing, value: &str) -> Option<String> {
    let bytes = keys.verify(TICKET_PURPOSE, value).ok()?;
    serde_json::from_slice::<Ticket>(&bytes).ok().map(|t| t.target)
}

/// The hex SHA-256 of a state nonce.
fn state_of(nonce: &str) -> String {
    hex::encode(Sha256::digest(nonce.as_bytes()))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Portal<'_> {
    /// `rd` checked for this listener (see [`redirect::validate_return_here`]).
    /// On the certificate-login listener every app URL is on another origin
    /// (the apps' port), so it comes back as an URL, even for this host name.
    pub(super) fn valid_return(&self, req: &Request, rd: &str) -> Option<redirect::ReturnTo> {
        let is_app_host = |h: &str| self.config.hosts.matches(h);
        match self.cert_listener {
            None => redirect::validate_return_here(rd, &req.host, req.port, &is_app_host),
            Some(app_port) => match redirect::validate_return_here(rd, "", app_port, &is_app_host)? {
                // A login begun on this host name's app port continues here (the
                // attempt's `rd` is a path): back to that app.
                redirect::ReturnTo::Path(path) if self.config.hosts.matches(&req.host) => {
                    Some(redirect::ReturnTo::Url { host: format!("{}:{app_port}", req.host), path })
                }
                redirect::ReturnTo::Path(_) => None,
                url => Some(url),
            },
        }
    }

    /// Where to send an already signed-in browser: the validated `rd`, plain
    /// (no code: the other host asks for its own login), or the dashboard.
    pub fn return_location(&self, req: &Request, rd: &str) -> String {
        match self.valid_return(req, rd) {
            Some(redirect::ReturnTo::Path(p)) => p,
            Some(redirect::ReturnTo::Url { host, path }) => format!("https://{host}{path}"),
            None => "/.portcullis/".to_string(),
        }
    }

    /// Where to send the browser once signed in. A return target on another
    /// app's host starts a handoff (step 1), unless another site sent this
    /// request without the portal's CSRF token.
    pub async fn after_login(&self, req: &Request, session: &UserSession, rd: &str) -> String {
        let dashboard = || "/.portcullis/".to_string();
        let (target, path) = match self.valid_return(req, rd) {
            Some(redirect::ReturnTo::Path(p)) => return p,
            Some(redirect::ReturnTo::Url { host, path }) => (host, path),
            None => return dashboard(),
        };
        let bare = crate::config::hosts::strip_port(&target).unwrap_or(&target);
        match self.config.hosts.lookup(bare) {
            Some(app) if app == self.app && self.cert_listener.is_none() => path,
            // On the listener a login is handed back only to the user whose
            // certificate this connection still presents.
            Some(_) if self.cert_listener.is_some() && !self.peer_cert.is_user(&session.user) => {
                format!("https://{target}{path}")
            }
            // Another site sent this: the browser goes back without a code (and
            // the app asks for a login again).
            Some(_) if !self.may_mint(req) && self.cert_listener.is_some() => format!("https://{target}{path}"),
            Some(_) if !self.may_mint(req) => dashboard(),
            Some(_) => {
                let expires_at = self.auth.clock.now() + TICKET_SECS;
                let ticket = Ticket { flow: req.flow.clone(), portal: req.authority(), target, path, expires_at };
                let signed =
                    self.auth.keys.load().sign(TICKET_PURPOSE, &serde_json::to_vec(&ticket).unwrap_or_default());
                // The page's language goes along the whole chain.
                format!("https://{}/.portcullis/session?ticket={signed}&lang={}", ticket.target, req.lang.code())
            }
            None => dashboard(),
        }
    }

    /// A request another site made the browser send may lead to a code only
    /// with the portal's CSRF token (the JSON API refuses cross-site already).
    fn may_mint(&self, req: &Request) -> bool {
        !req.cross_site || super::form::csrf_ok(&self.auth.keys.load(), &req.flow, req.fields.get("csrf"))
    }

    fn ticket(&self, req: &Request) -> Result<Ticket, Refused> {
        let value = req.field("ticket").ok_or(Refused::BadTicket)?;
        let bytes = self.auth.keys.load().verify(TICKET_PURPOSE, value).map_err(|_| Refused::BadTicket)?;
        let t: Ticket = serde_json::from_slice(&bytes).map_err(|_| Refused::BadTicket)?;
        if self.auth.clock.now() >= t.expires_at {
            return Err(Refused::BadTicket);
        }
        Ok(t)
    }

    /// Step 2, on the app host: `GET /.portcullis/session?ticket=…`.
    pub(super) fn handoff_start(&self, req: &Request) -> Result<Reply, Refused> {
        let t = self.ticket(req)?;
        if t.target != req.authority() || !self.known_portal(&t.portal, req.port) {
            return Err(Refused::BadTicket);
        }
        let nonce = hex::encode(rand::random::<[u8; 32]>());
        let ticket = super::redirect::encode_raw(req.field("ticket").unwrap_or_default());
        let location = format!(
            "https://{}/.portcullis/handoff?ticket={ticket}&state={}&lang={}",
            t.portal,
            state_of(&nonce),
            req.lang.code()
        );
        let cookie = set_cookie(STATE_COOKIE, &nonce, Some(STATE_COOKIE_SECS));
        Ok(Reply::redirect(303, location).with_header("set-cookie", cookie))
    }

    /// Whether a ticket's portal is one this app host sends browsers to: an
    /// app host on this same port, or the certificate-login listener's
    /// authority. A ticket is signed, but its portal came from a Host header.
    fn known_portal(&self, portal: &str, port: u16) -> bool {
        let Some((host, portal_port)) = portal.rsplit_once(':') else { return false };
        let Ok(portal_port) = portal_port.parse::<u16>() else { return false };
        if portal_port == port && self.config.hosts.matches(host) {
            return true;
        }
        let login = self.config.device_certificates.as_ref().and_then(|d| d.login.as_ref());
        login.is_some_and(|l| {
            (l.host.is_some() || self.config.hosts.matches(host)) && {
                let expected = l.authority_for(host);
                let expected = if expected.contains(':') { expected } else { format!("{expected}:443") };
                expected == portal
            }
        })
    }

    /// Step 3, on the portal host: `GET /.portcullis/handoff?ticket=…&state=…`.
    pub(super) async fn handoff_mint(&self, req: &Request) -> Result<Reply, Refused> {
        let t = self.ticket(req)?;
        if t.portal != req.authority() {
            return Err(Refused::BadTicket);
        }
        if req.new_flow || !same(&t.flow, &req.flow) {
            return Err(Refused::OtherBrowser);
        }
        let s = &self.session.ok_or(Refused::NoSession)?.session;
        let state = req.field("state").filter(|s| is_hex(s, 64)).ok_or(Refused::BadState)?;
        let bare = crate::config::hosts::strip_port(&t.target).unwrap_or(&t.target);
        let app = self.config.hosts.lookup(bare).ok_or(Refused::OtherApp)?;
        let grant = Grant {
            user: s.user.clone(),
            app: self.config.app(app).name.clone(),
            session_id: s.id.clone(),
            carried: s.carried(),
            state: state.to_ascii_lowercase(),
            path: t.path,
            pass: self.pass.filter(|p| p.user == s.user).map(|p| p.to_cookie(&self.auth.keys.load())),
        };
        let code = hex::encode(rand::random::<[u8; 16]>());
        let bytes = serde_json::to_vec(&grant).map_err(|_| Refused::Unavailable)?;
        let key = format!("handoff:{code}");
        self.auth.store().put_challenge(&key, &bytes, CODE_TTL).await.map_err(|_| Refused::Unavailable)?;
        Ok(Reply::redirect(
            303,
            format!("https://{}/.portcullis/session?code={code}&lang={}", t.target, req.lang.code()),
        ))
    }

    /// Step 4, on the app host: `GET /.portcullis/session?code=…` trades the
    /// code for this host's own session cookie.
    pub(super) async fn handoff_redeem(&self, req: &Request) -> Result<Reply, Refused> {
        let code = req.field("code").filter(|c| is_hex(c, 32)).ok_or(Refused::NoCode)?;
        // Taken before anything is checked: a code is tried once, whoever tries it.
        let taken = self.auth.store().take_challenge(&format!("handoff:{code}")).await;
        let bytes = taken.map_err(|_| Refused::Unavailable)?.ok_or(Refused::NoCode)?;
        let grant: Grant = serde_json::from_slice(&bytes).map_err(|_| Refused::NoCode)?;
        let nonce = req.handoff_state.as_deref().ok_or(Refused::OtherBrowser)?;
        if !same(&state_of(nonce), &grant.state) {
            return Err(Refused::OtherBrowser);
        }
        // Checked again: revoked since, or not this user's, it stays behind.
        let now = self.auth.clock.now();
        let pass =
            grant.pass.as_deref().and_then(|v| self.auth.check_pass(v, now).ok()).filter(|p| p.user == grant.user);
        let pass = pass.filter(|_| self.config.entrance_pass.is_some());
        let session = self.session_for(&grant, pass.as_ref().map(|p| p.issued_at)).await?;
        // The path came from `rd` through `validate_return` into a ticket we signed.
        let reply = Reply::redirect(303, grant.path)
            .with_header("set-cookie", self.session_cookie(&session))
            .with_header("set-cookie", clear_cookie(STATE_COOKIE));
        Ok(match pass {
            Some(p) => reply.with_header("set-cookie", self.auth.pass_cookie(&p)),
            None => reply,
        })
    }

    /// The session a grant gives here, if the user may still have it.
    /// `pass`: the grant carries the user's valid entrance pass (issued
    /// then), which counts here as it will on the next request.
    async fn session_for(&self, g: &Grant, pass: Option<u64>) -> Result<UserSession, Refused> {
        let app = self.config.app(self.app);
        if g.app != app.name {
            return Err(Refused::OtherApp);
        }
        let user = self.config.users.get(&g.user).ok_or(Refused::NotAllowed)?;
        let now = self.auth.clock.now();
        let rec = self.auth.store().user(&user.username).await.map_err(|_| Refused::Unavailable)?;
        let revoked = !self.auth.revocations.load().allows(&g.user, &g.session_id, g.carried.issued_at);
        if revoked || g.carried.issued_at < rec.sessions_not_before || now >= g.carried.expires_at {
            return Err(Refused::SignedOut);
        }
        if rec.is_locked(now) {
            return Err(Refused::Locked);
        }
        let group = &self.config.groups[user.policy_group];
        let facts = crate::policy::expr::Facts { groups: user.group_mask, ..self.facts }.with_pass(pass);
        if !app.admits(user.policy_group) || !group.allow.eval(&facts) {
            return Err(Refused::NotAllowed);
        }
        let lifetime = group.session_lifetime.as_secs();
        let fresh = UserSession::new(&user.username, &app.name, SessionLevel::FirstFactor, now, lifetime);
        Ok(fresh.continuing(&g.carried))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_the_hex_sha256_of_the_nonce() {
        let s = state_of("abc");
        assert_eq!(s, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_hex(&s, 64));
        assert_ne!(state_of("abd"), s);
    }

    #[test]
    fn tickets_round_trip_only_under_their_purpose() {
        let keys = crate::identity::cookie::KeyRing::generate();
        let t = Ticket {
            flow: "f".repeat(32),
            portal: "wiki.localhost:8443".into(),
            target: "a.open.localhost:8443".into(),
            path: "/x?y=1".into(),
            expires_at: 9,
        };
        let signed = keys.sign(TICKET_PURPOSE, &serde_json::to_vec(&t).unwrap());
        let back: Ticket = serde_json::from_slice(&keys.verify(TICKET_PURPOSE, &signed).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(keys.verify("flow", &signed).is_err(), "a ticket is no flow cookie");
        assert!(keys.verify("csrf", &signed).is_err(), "nor a CSRF token");
    }
}
