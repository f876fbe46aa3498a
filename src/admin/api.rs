//! The admin API, as a pure function from (method, path, Authorization) to a
//! response; `proxy::server` puts it on its own listener (loopback by default).
//! Every route but `/healthz` needs the bearer token from the token file.

use crate::live::Live;
use std::path::Path;
use subtle::ConstantTimeEq;

pub struct AdminReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn json(status: u16, v: serde_json::Value) -> AdminReply {
    AdminReply {
        status,
        content_type: "application/json",
        body: format!("{v}\n"),
    }
}

#[derive(Clone)]
pub struct AdminApi {
    token: String,
}

impl AdminApi {
    pub fn new(token: String) -> Self {
        AdminApi { token }
    }

    fn authorized(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|a| a.strip_prefix(b"Bearer ")) else {
            return false;
        };
        given.ct_eq(self.token.as_bytes()).into()
    }

    pub fn handle(
        &self,
        live: &Live,
        method: &str,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> AdminReply {
        let authorized = self.authorized(authorization);
        match (method, path) {
            ("GET", "/healthz") => {
                let mut v =
                    serde_json::json!({"status": "ok", "config_generation": live.generation()});
                if authorized {
                    v["last_reload"] = serde_json::to_value(live.last_reload()).unwrap_or_default();
                }
                json(200, v)
            }
            _ if !authorized => json(
                401,
                serde_json::json!({"error": "unauthorized", "message": "send `Authorization: Bearer <token>` with the token from admin.token_file"}),
            ),
            ("GET", "/metrics") => AdminReply {
                status: 200,
                content_type: "text/plain; version=0.0.4",
                body: crate::metrics::render(),
            },
            ("POST", "/reload") => match live.reload() {
                Ok(r) => json(200, serde_json::to_value(r).unwrap_or_default()),
                Err(r) => json(422, serde_json::to_value(r).unwrap_or_default()),
            },
            (_, "/healthz" | "/metrics" | "/reload") => {
                json(405, serde_json::json!({"error": "method_not_allowed"}))
            }
            _ => json(404, serde_json::json!({"error": "not_found"})),
        }
    }
}

/// Reads the admin token, creating it (32 random bytes, hex, mode 0600) on first start.
pub fn ensure_token(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => return Err(format!("admin token file `{}` is empty", path.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!(
                "cannot read admin token file `{}`: {e}",
                path.display()
            ))
        }
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    crate::tls::write(path, &format!("{token}\n"), 0o600)?;
    log::info!("created admin token file {}", path.display());
    Ok(token)
}

/// Reads an existing token (for the CLI client).
pub fn read_token(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("cannot read admin token file `{}`: {e} (it is created when portcullis first starts)", path.display()))
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
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
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
}
