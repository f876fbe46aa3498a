//! `[identity]`: the signed identity apps receive (see `identity::jwt`).
//!
//! On by default: every forwarded request of a signed-in user carries an
//! ES256 JWT in `X-Portcullis-Jwt`, a header in the proxy's own namespace, so
//! it is stripped from clients like every `X-Portcullis-*` header. Another
//! name may be chosen; it is then stripped in every spelling as well.

use super::duration;
use super::file::{IdentityFile, Text};
use std::time::Duration;

/// The header the JWT travels in unless `jwt_header` says otherwise.
pub const DEFAULT_JWT_HEADER: &str = "x-portcullis-jwt";
/// How long a token is valid unless `jwt_lifetime` says otherwise.
pub const DEFAULT_JWT_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// `iss` unless `jwt_issuer` says otherwise.
pub const DEFAULT_JWT_ISSUER: &str = "portcullis";
const LIFETIMES: std::ops::RangeInclusive<Duration> = Duration::from_secs(30)..=Duration::from_secs(3600);

/// Headers the JWT may not travel in: framing, routing, hop-by-hop, the
/// client's own credentials, and the headers the proxy sets (a test in
/// `proxy::headers` keeps these in step with its table).
const REFUSED_NAMES: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-portcullis-auth",
    "x-portcullis-user",
    "x-portcullis-groups",
    "x-portcullis-email",
    "host",
    "cookie",
    "set-cookie",
    "authorization",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
];

#[derive(Debug, Clone, Default)]
pub struct IdentitySettings {
    /// `None` with `jwt = false`.
    pub jwt: Option<JwtSettings>,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Lowercase, letters, digits and `-` only.
    pub header: http::HeaderName,
    /// `header` as written on the wire, shared (a forwarded request's header
    /// map takes a reference, not a copy).
    pub spelling: bytes::Bytes,
    pub lifetime: Duration,
    pub issuer: String,
}

impl Default for JwtSettings {
    fn default() -> JwtSettings {
        JwtSettings {
            header: http::HeaderName::from_static(DEFAULT_JWT_HEADER),
            spelling: bytes::Bytes::from_static(DEFAULT_JWT_HEADER.as_bytes()),
            lifetime: DEFAULT_JWT_LIFETIME,
            issuer: DEFAULT_JWT_ISSUER.to_string(),
        }
    }
}

/// The runtime form, or the offset and message of the first error.
pub fn compile(file: &IdentityFile) -> Result<IdentitySettings, (usize, String)> {
    let header = file.jwt_header.as_ref().map(header_name).transpose()?;
    let lifetime = match &file.jwt_lifetime {
        None => DEFAULT_JWT_LIFETIME,
        Some(t) => match duration::parse(t.get_ref()) {
            Ok(d) if LIFETIMES.contains(&d) => d,
            Ok(_) => {
                return Err((
                    t.span().start,
                    format!("identity.jwt_lifetime: `{}` must be between 30s and 1h", t.get_ref()),
                ))
            }
            Err(e) => return Err((t.span().start, format!("identity.jwt_lifetime: {e}"))),
        },
    };
    let issuer = match &file.jwt_issuer {
        None => DEFAULT_JWT_ISSUER.to_string(),
        Some(t) => {
            let v = t.get_ref().trim();
            if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
                let message = "identity.jwt_issuer: must be 1 to 256 characters, none of them control characters";
                return Err((t.span().start, message.to_string()));
            }
            v.to_string()
        }
    };
    let header = header.unwrap_or_else(|| http::HeaderName::from_static(DEFAULT_JWT_HEADER));
    let jwt = file.jwt.unwrap_or(true).then(|| JwtSettings {
        spelling: bytes::Bytes::copy_from_slice(header.as_str().as_bytes()),
        header,
        lifetime,
        issuer,
    });
    Ok(IdentitySettings { jwt })
}

/// A header name an app can receive the JWT in: letters, digits and `-`
/// (with `_` a client's spelling and the proxy's would differ), and none the
/// proxy or HTTP itself gives another meaning.
fn header_name(t: &Text) -> Result<http::HeaderName, (usize, String)> {
    let name = t.get_ref().trim().to_ascii_lowercase();
    let fail = |why: &str| Err((t.span().start, format!("identity.jwt_header: `{}` {why}", t.get_ref())));
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return fail("must be 1 to 64 letters, digits and `-`");
    }
    if is_refused(&name) {
        return fail("is a header HTTP or the proxy already uses for something else");
    }
    http::HeaderName::from_bytes(name.as_bytes()).or_else(|_| fail("is not a header name"))
}

/// Whether `name` (lowercase) may not carry the JWT.
pub fn is_refused(name: &str) -> bool {
    REFUSED_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Text {
        toml::Spanned::new(0..s.len(), s.to_string())
    }

    fn with(f: impl FnOnce(&mut IdentityFile)) -> Result<IdentitySettings, (usize, String)> {
        let mut file = IdentityFile::default();
        f(&mut file);
        compile(&file)
    }

    #[test]
    fn on_by_default_in_the_proxys_namespace() {
        let jwt = with(|_| {}).unwrap().jwt.unwrap();
        assert_eq!(jwt.header.as_str(), "x-portcullis-jwt");
        assert_eq!((jwt.lifetime, jwt.issuer.as_str()), (Duration::from_secs(300), "portcullis"));
        assert!(with(|f| f.jwt = Some(false)).unwrap().jwt.is_none());
    }

    #[test]
    fn a_header_of_ones_own_choosing_is_checked() {
        let jwt = with(|f| f.jwt_header = Some(text("X-Identity-Assertion"))).unwrap().jwt.unwrap();
        assert_eq!(jwt.header.as_str(), "x-identity-assertion");
        for bad in
            ["", "X_Identity", "x identity", "Host", "Cookie", "X-Forwarded-For", "x-portcullis-user", "Connection"]
        {
            let err = with(|f| f.jwt_header = Some(text(bad))).unwrap_err();
            assert!(err.1.starts_with("identity.jwt_header:"), "{bad}: {}", err.1);
        }
    }

    #[test]
    fn lifetime_and_issuer_are_bounded() {
        assert!(with(|f| f.jwt_lifetime = Some(text("10s"))).is_err());
        assert!(with(|f| f.jwt_lifetime = Some(text("2h"))).is_err());
        assert!(with(|f| f.jwt_lifetime = Some(text("soon"))).is_err());
        assert_eq!(with(|f| f.jwt_lifetime = Some(text("1h"))).unwrap().jwt.unwrap().lifetime.as_secs(), 3600);
        assert!(with(|f| f.jwt_issuer = Some(text(" "))).is_err());
        assert!(with(|f| f.jwt_issuer = Some(text("a\nb"))).is_err());
        let jwt = with(|f| f.jwt_issuer = Some(text("https://sso.example.com"))).unwrap().jwt.unwrap();
        assert_eq!(jwt.issuer, "https://sso.example.com");
    }
}
