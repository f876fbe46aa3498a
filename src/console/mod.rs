//! The admin console under `/.portcullis/admin/` on every protected host:
//! server-rendered pages in English and Japanese, no scripts, for masters and
//! admins signed in through the portal (password and second factor).
//!
//! Every action the console takes is an admin API call (`admin::api::route`)
//! with the administrator as the caller: the same routes, rules, confirmation
//! password and audit lines as the CLI's calls with the token. The same calls
//! are open as JSON under `/.portcullis/api/admin/` (for scripts run by a
//! person, with their session). A general user is answered 403 on every page
//! and every call; every form carries the CSRF token (the portal checks it
//! before any console handler runs).

mod audit;
mod certs;
mod invitations;
mod policy;
mod results;
pub mod text;
mod users;
pub mod view;

use crate::admin::actor::{Actor, Caller};
use crate::admin::reply::AdminReply;
use crate::config::users::Role;
use crate::identity::session::SessionLevel;
use crate::portal::prg;
use crate::portal::{form, Portal, Request};
use crate::proxy::respond::Reply;
use text::T;
use view::{Section, View};

/// The console's pages start here (in the proxy's canonical spelling).
pub const PREFIX: &str = "/.portcullis/admin/";
/// Its JSON twin: `/.portcullis/api/admin/unlock` is the admin API's `/unlock`.
pub const API_PREFIX: &str = "/.portcullis/api/admin/";

/// True for a console page path, canonical (as `redirect` checks a return target).
pub fn is_console_path(canonical: &str) -> bool {
    canonical.starts_with(PREFIX) || canonical == "/.portcullis/admin"
}

/// The administrator a request comes from, or why there is none.
enum Access<'a> {
    Admin {
        user: &'a str,
        role: Role,
    },
    /// No session: sign in first.
    SignIn,
    /// A session, but not an administrator's (or not with both factors).
    Forbidden(T),
}

fn access<'a>(p: &'a Portal<'_>) -> Access<'a> {
    let Some(s) = p.session else { return Access::SignIn };
    let Some(user) = p.config.users.get(&s.session.user) else { return Access::SignIn };
    // The role is read from the users file now, not from the session: a
    // demotion counts from the next reload on.
    if !user.role.administers() {
        return Access::Forbidden(T::ForbiddenText);
    }
    if s.session.level != SessionLevel::BothFactors {
        return Access::Forbidden(T::NeedSecondFactor);
    }
    Access::Admin { user: &user.username, role: user.role }
}

/// What a console page handler gets.
pub struct Ctx<'a> {
    pub portal: &'a Portal<'a>,
    pub req: &'a Request,
    pub caller: Caller,
    pub view: View<'a>,
}

impl Ctx<'_> {
    /// An admin API call as this administrator.
    pub async fn call(&self, method: &str, path: &str, body: &serde_json::Value) -> AdminReply {
        let body = if method == "GET" { Vec::new() } else { body.to_string().into_bytes() };
        let p = self.portal;
        crate::admin::api::route(p.config, None, p.auth, &self.caller, method, path, &body).await
    }

    /// [`Ctx::call`], its body read as JSON (an unreadable one as `null`).
    pub async fn call_json(&self, method: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = self.call(method, path, body).await;
        (r.status, serde_json::from_str(&r.body).unwrap_or_default())
    }

    pub fn page(&self, status: u16, section: Option<Section>, title: &str, body: &str) -> Reply {
        Reply::page(status, self.view.document(section, title, body))
    }

    /// A message in place of a page's content.
    pub fn message(&self, status: u16, section: Option<Section>, key: T) -> Reply {
        let body = format!("<p class=\"error\">{}</p>\n", view::escape(self.view.t(key)));
        self.page(status, section, self.view.t(T::Console), &body)
    }
}

/// A console page (`GET`) or form (`POST`, CSRF already checked).
pub async fn browser(p: &Portal<'_>, req: &Request) -> Reply {
    let (user, role) = match access(p) {
        Access::Admin { user, role } => (user, role),
        Access::SignIn => {
            let rd = crate::portal::redirect::encode_return_param(&req.path);
            return Reply::redirect(303, prg::here(req, "/.portcullis/login", &[("rd", &rd)]));
        }
        Access::Forbidden(why) => return forbidden_page(p, req, why),
    };
    let csrf = form::csrf_token(&p.auth.keys.load(), &req.flow);
    let here = here_without_lang(req);
    let view = View { lang: req.lang, admin: user, role: role.name(), csrf: &csrf, here: &here };
    let caller = Caller { actor: Actor::Person { user: user.to_string(), role }, from: Some(p.client_ip) };
    let ctx = Ctx { portal: p, req, caller, view };
    let sub = req.path.strip_prefix(PREFIX).unwrap_or("");
    match (req.method.as_str(), sub) {
        ("GET", "") => users::users_page(&ctx).await,
        ("GET", "locked") => users::locked_page(&ctx).await,
        ("GET", "revoke") => users::revoke_page(&ctx).await,
        ("POST", "unlock" | "revoke-totp" | "sign-out") => users::act(&ctx, sub).await,
        ("GET", "certs") => certs::page(&ctx).await,
        ("POST", "cert/issue") => certs::issue(&ctx).await,
        ("POST", "cert/change") => certs::act(&ctx).await,
        ("GET", "policy") => policy::page(&ctx).await,
        ("GET", "audit") => audit::page(&ctx).await,
        ("GET", "invitations") => invitations::page(&ctx).await,
        ("POST", "invite" | "invite/resend" | "invite/cancel") => invitations::act(&ctx, sub).await,
        _ => ctx.message(404, None, T::NotFound),
    }
}

/// `/.portcullis/api/admin/<route>`: the admin API's `<route>` as this
/// administrator (JSON in and out; the portal checked that a POST says
/// `application/json` and comes from this origin).
pub async fn api(p: &Portal<'_>, req: &Request) -> Reply {
    let (user, role) = match access(p) {
        Access::Admin { user, role } => (user, role),
        Access::SignIn => {
            return Reply::json(401, &serde_json::json!({"error": "unauthorized", "message": "sign in first"}))
        }
        Access::Forbidden(why) => {
            return Reply::json(403, &serde_json::json!({"error": "forbidden", "message": why.get(req.lang)}))
        }
    };
    let route = format!("/{}", req.path.strip_prefix(API_PREFIX).unwrap_or(""));
    let caller = Caller { actor: Actor::Person { user: user.to_string(), role }, from: Some(p.client_ip) };
    let body = match (&req.method[..], &req.json) {
        ("GET", _) => Vec::new(),
        (_, Some(v)) => v.to_string().into_bytes(),
        (_, None) => b"{}".to_vec(),
    };
    let r = crate::admin::api::route(p.config, None, p.auth, &caller, &req.method, &route, &body).await;
    crate::audit!(
        "admin_call",
        method = %req.method,
        path = %route,
        status = r.status,
        from = %p.client_ip,
        actor = %user,
        role = role.name(),
    );
    Reply {
        status: r.status,
        content_type: r.content_type,
        body: r.body.into(),
        location: None,
        named: vec![],
        extra: vec![("cache-control", "no-store".to_string())],
    }
}

/// A console form without a valid CSRF token (expired, or sent from elsewhere): nothing is done.
pub fn form_refused(p: &Portal<'_>, req: &Request) -> Reply {
    let mut r = forbidden_page(p, req, T::FormExpired);
    r.status = 403;
    r
}

fn forbidden_page(p: &Portal<'_>, req: &Request, why: T) -> Reply {
    let user = p.session.map(|s| s.session.user.as_str()).unwrap_or("");
    crate::audit!("admin_forbidden", user = %user, path = %req.path, from = %p.client_ip);
    let title = view::escape(T::ForbiddenTitle.get(req.lang));
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title></head>\n\
         <body><main><h1>{title}</h1><p>{why}</p><p><a href=\"/.portcullis/\">{back}</a></p></main></body></html>\n",
        lang = req.lang.code(),
        why = view::escape(why.get(req.lang)),
        back = view::escape(T::BackToPortal.get(req.lang)),
    );
    Reply::page(403, body)
}

/// The request's path and query without `lang=…` (the switch adds its own).
fn here_without_lang(req: &Request) -> String {
    let kept: Vec<&str> = req.query.split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("lang=")).collect();
    if kept.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, kept.join("&"))
    }
}
