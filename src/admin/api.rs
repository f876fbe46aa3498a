//! The admin API: (method, path, Authorization, body) → response, on its own
//! listener (loopback by default; `proxy::server` wires it). Every route but
//! `/healthz` needs the bearer token from the token file.

use crate::auth::Auth;
use crate::live::Live;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::actor::{Act, Actor, Caller};
use super::reply::{reply, AdminReply};
use std::net::IpAddr;

/// One admin request as the listener read it.
pub struct AdminRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authorization: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// The most body an admin request may carry: the API takes small JSON objects.
pub const MAX_BODY: usize = 1024 * 1024;
/// `POST /store/import` carries a whole export (about 1 KiB per user with an
/// authenticator), so it alone may send more, and only with the token.
pub const MAX_IMPORT_BODY: usize = 256 * 1024 * 1024;

/// How much of a request's body the listener may read, decided from its head
/// alone so that nobody without the token makes the listener read (or buffer)
/// anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyAllowance {
    /// No token: answer without reading the body.
    Unread,
    /// Read at most this many bytes; past it the answer is 413.
    UpTo(usize),
}

#[derive(Clone)]
pub struct AdminApi {
    token: String,
}

impl AdminApi {
    pub fn new(token: String) -> Self {
        AdminApi { token }
    }

    /// The body a request may send, from its method, path and Authorization header.
    pub fn body_allowance(&self, method: &str, path: &str, authorization: Option<&[u8]>) -> BodyAllowance {
        match (self.authorized(authorization), method, path) {
            (false, _, _) => BodyAllowance::Unread,
            (true, "POST", "/store/import") => BodyAllowance::UpTo(MAX_IMPORT_BODY),
            (true, _, _) => BodyAllowance::UpTo(MAX_BODY),
        }
    }

    /// Constant-time comparison with the token.
    pub fn authorized(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|a| a.strip_prefix(b"Bearer ")) else {
            return false;
        };
        given.ct_eq(self.token.as_bytes()).into()
    }

    pub async fn handle(
        &self,
        live: &Arc<Live>,
        auth: &Auth,
        req: AdminRequest<'_>,
        from: Option<IpAddr>,
    ) -> AdminReply {
        let authorized = self.authorized(req.authorization);
        match (req.method, req.path) {
            ("GET", "/healthz") => {
                let mut v = json!({"status": "ok", "config_generation": live.generation()});
                if authorized {
                    v["last_reload"] = serde_json::to_value(live.last_reload()).unwrap_or_default();
                }
                reply(200, v)
            }
            _ if !authorized => reply(
                401,
                json!({"error": "unauthorized", "message": "send `Authorization: Bearer <token>` with the token from admin.token_file"}),
            ),
            _ => {
                let caller = Caller::token(&token_name(&live.current()), from);
                route(&live.current(), Some(live), auth, &caller, req.method, req.path, req.body).await
            }
        }
    }
}

/// The bearer token's name in the audit log: its file's name (`admin` by default).
pub fn token_name(cfg: &crate::config::Config) -> String {
    cfg.admin.token_file.file_stem().map_or("admin".into(), |s| s.to_string_lossy().into_owned())
}

/// Routes only the bearer token may call: they act on the whole instance,
/// not on users, and carry secrets (an export holds every sealed secret).
fn token_only(path: &str) -> bool {
    matches!(path, "/metrics" | "/reload" | "/keys/rotate") || path.starts_with("/store/")
}

/// One admin API call by an authenticated caller: the token (the admin
/// listener, the CLI) or an administrator signed in through the portal (the
/// console). The same routes, rules and audit lines for both; a person also
/// confirms the acts that ask for it with `confirm_password`.
/// `live` is the listener's (for `/reload`); the portal passes `None`, as only
/// the token may reload.
pub async fn route(
    cfg: &crate::config::Config,
    live: Option<&Arc<Live>>,
    auth: &Auth,
    caller: &Caller,
    method: &str,
    path: &str,
    body: &[u8],
) -> AdminReply {
    if let Actor::Person { user, .. } = &caller.actor {
        if token_only(path) {
            return reply(
                403,
                json!({"error": "token_only", "message": "this call is for automation: use the admin listener with the bearer token"}),
            );
        }
        if method == "POST" && Act::of_route(path).is_some() {
            if let Err(r) = confirm(cfg, auth, caller, user, body).await {
                return r;
            }
        }
    }
    match (method, path) {
        ("GET", "/metrics") => {
            let mut body = crate::metrics::render();
            crate::metrics::render_device_certs(&mut body, &auth.devices.load(), auth.clock.now());
            AdminReply { status: 200, content_type: "text/plain; version=0.0.4", body }
        }
        ("GET", "/locked") => super::users::locked(auth).await,
        ("GET" | "POST", "/users") => super::directory::list(cfg, auth, &parse_or_empty(body)).await,
        ("POST", "/decide") => super::simulate::handle(cfg, body),
        ("GET" | "POST", "/audit") => super::audit_read::handle(cfg, body).await,
        ("GET", "/store/export") => super::users::export(auth).await,
        ("POST", "/store/import") => super::users::import(auth, body).await,
        (method, "/invitations" | "/invite" | "/invite/resend" | "/invite/cancel") => {
            crate::invitations::handle(cfg, auth, caller, method, path, body).await
        }
        ("POST", "/cert/issue") => super::cert_issue::handle(cfg, auth, body).await,
        ("POST", path) if path.starts_with("/approver/") => super::approvers::handle(cfg, auth, path, body).await,
        (method, path) if path.starts_with("/pass/") => super::passes::handle(cfg, auth, method, path, body).await,
        (method, path) if path.starts_with("/cert/") => {
            super::certs::handle(cfg, auth, caller, method, path, body).await
        }
        ("POST", "/reload") => {
            let Some(live) = live.cloned() else { return reply(403, json!({"error": "token_only"})) };
            match tokio::task::spawn_blocking(move || live.reload()).await {
                Ok(Ok(r)) => reply(200, serde_json::to_value(r).unwrap_or_default()),
                Ok(Err(r)) => reply(422, serde_json::to_value(r).unwrap_or_default()),
                Err(_) => reply(500, json!({"error": "internal"})),
            }
        }
        ("POST", path) => {
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                match serde_json::from_slice::<serde_json::Value>(body) {
                    Ok(v) => v,
                    Err(e) => {
                        return reply(
                            400,
                            json!({"error": "bad_request", "message": format!("the body is not JSON: {e}")}),
                        )
                    }
                }
            };
            super::users::handle(cfg, auth, caller, path, &body).await
        }
        (_, "/healthz" | "/metrics" | "/locked" | "/decide" | "/audit") => {
            reply(405, json!({"error": "method_not_allowed"}))
        }
        _ => reply(404, json!({"error": "not_found"})),
    }
}

fn parse_or_empty(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| json!({}))
}

/// A person's act waits for their password, asked again (`confirm_password`):
/// a wrong one changes nothing and counts toward their lockout.
async fn confirm(
    cfg: &crate::config::Config,
    auth: &Auth,
    caller: &Caller,
    user: &str,
    body: &[u8],
) -> Result<(), AdminReply> {
    let given = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("confirm_password").and_then(|p| p.as_str()).map(str::to_string))
        .filter(|p| !p.is_empty());
    let Some(password) = given else {
        return Err(reply(
            403,
            json!({"error": "confirmation_required", "message": "confirm this with your password: send `confirm_password`"}),
        ));
    };
    let ip = caller.from.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    use crate::challenge::login::Step;
    match auth.login.confirm_password(cfg, user, &password, ip).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            crate::audit!("admin_confirmation_failed", actor = %user, role = caller.actor.role(), from = caller.from.map(|i| i.to_string()));
            Err(reply(
                403,
                json!({"error": "wrong_confirmation", "message": "the confirmation password is wrong; nothing was changed"}),
            ))
        }
        Err(Step::Locked) => Err(reply(
            403,
            json!({"error": "locked", "message": "too many wrong passwords: your account is locked; another administrator can unlock it"}),
        )),
        Err(Step::Busy) => Err(reply(503, json!({"error": "busy", "message": "too many sign-ins at once; try again"}))),
        Err(_) => Err(reply(
            503,
            json!({"error": "store_unavailable", "message": "the store did not answer; nothing was changed"}),
        )),
    }
}

/// Reads the admin token, creating it (32 random bytes, hex, mode 0600) on first start.
pub fn ensure_token(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => return Err(format!("admin token file `{}` is empty", path.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot read admin token file `{}`: {e}", path.display()))
        }
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(crate::state_dir::DIR_MODE)
            .create(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    crate::tls::write(path, &format!("{token}\n"), 0o600)?;
    tracing::info!("created admin token file {}", path.display());
    Ok(token)
}

/// Reads an existing token (for the CLI client).
pub fn read_token(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map(|t| t.trim().to_string()).map_err(|e| {
        format!("cannot read admin token file `{}`: {e} (it is created when portcullis first starts)", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/admin.token");
        let t1 = ensure_token(&p).unwrap();
        assert_eq!(t1.len(), 64);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(ensure_token(&p).unwrap(), t1);
        assert_eq!(read_token(&p).unwrap(), t1);
    }

    #[test]
    fn bearer_must_match_exactly() {
        let api = AdminApi::new("abc".into());
        assert!(api.authorized(Some(b"Bearer abc")));
        assert!(!api.authorized(Some(b"Bearer abcd")));
        assert!(!api.authorized(Some(b"bearer abc")));
        assert!(!api.authorized(Some(b"abc")));
        assert!(!api.authorized(None));
    }

    #[test]
    fn only_the_token_lets_a_body_be_read_and_only_an_import_may_be_large() {
        let api = AdminApi::new("abc".into());
        let (ok, bad) = (Some(&b"Bearer abc"[..]), Some(&b"Bearer abd"[..]));
        assert_eq!(api.body_allowance("POST", "/store/import", bad), BodyAllowance::Unread);
        assert_eq!(api.body_allowance("POST", "/unlock", None), BodyAllowance::Unread);
        assert_eq!(api.body_allowance("GET", "/healthz", None), BodyAllowance::Unread);
        assert_eq!(api.body_allowance("POST", "/unlock", ok), BodyAllowance::UpTo(MAX_BODY));
        assert_eq!(api.body_allowance("POST", "/store/import", ok), BodyAllowance::UpTo(MAX_IMPORT_BODY));
        assert_eq!(api.body_allowance("GET", "/store/import", ok), BodyAllowance::UpTo(MAX_BODY));
    }
}
