//! Header hygiene toward the upstream: which request headers the proxy owns,
//! which are hop-by-hop, and which cookies are the proxy's own.
//!
//! Apps trust the identity and forwarding headers the proxy sets, so a client
//! must never be able to supply them. Clients can try any spelling: header
//! names are case-insensitive, and many app stacks (CGI, WSGI, PHP, Rack) map
//! `_` and `-` to the same variable, so `X_Portcullis_User` is as dangerous as
//! `X-Portcullis-User`. Pingora forwards names as received, so every spelling
//! is matched here. The proxy's cookies carry its sessions and passes; the app
//! has no business seeing them.
//!
//! The functions are pure: the proxy module applies them in
//! `upstream_request_filter`.

/// What the proxy does with a header a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Removed from the client's request, then set by the proxy.
    Set,
    /// Removed from the client's request; never set.
    Removed,
}

/// One row of [`OWNED_HEADERS`]: a name (lowercase, `-`) or, with `prefix`,
/// every name that starts with it.
#[derive(Debug)]
pub struct OwnedHeader {
    pub name: &'static str,
    pub prefix: bool,
    pub treatment: Treatment,
    pub why: &'static str,
}

const fn set(name: &'static str, why: &'static str) -> OwnedHeader {
    OwnedHeader { name, prefix: false, treatment: Treatment::Set, why }
}

const fn removed(name: &'static str, why: &'static str) -> OwnedHeader {
    OwnedHeader { name, prefix: false, treatment: Treatment::Removed, why }
}

const fn removed_prefix(name: &'static str, why: &'static str) -> OwnedHeader {
    OwnedHeader { name, prefix: true, treatment: Treatment::Removed, why }
}

/// Every request header the proxy owns: the one table of what a client can
/// never send to an app (the README shows it). Apps and frameworks decide the
/// host, path, client address and user from these, and an app set up for
/// another auth proxy believes that proxy's identity headers.
pub const OWNED_HEADERS: &[OwnedHeader] = &[
    set("x-forwarded-for", "the client address (trusted-proxy aware)"),
    set("x-forwarded-proto", "always `https`"),
    set("x-forwarded-host", "the host the app was chosen by"),
    set("x-portcullis-auth", "how the request was admitted: `bypass`, `first_factor`, `both_factors`"),
    set("x-portcullis-user", "the signed-in user"),
    set("x-portcullis-groups", "the user's groups, comma-separated"),
    set("x-portcullis-email", "the user's email address, when known"),
    set("x-portcullis-jwt", "the signed identity (ES256 JWT), unless `[identity] jwt_header` names another header"),
    removed_prefix("x-portcullis-", "the proxy's own namespace"),
    removed_prefix(
        "x-forwarded-",
        "every other forwarding header: `-server`, `-port`, `-uri`, `-prefix`, `-path`, `-user`, `-email`, …",
    ),
    removed("forwarded", "RFC 7239, including `host=` and `for=`"),
    removed("x-host", "host override"),
    removed("x-original-host", "host override"),
    removed("x-http-host-override", "host override"),
    removed("x-original-url", "path override (IIS, Symfony, Laravel)"),
    removed("x-rewrite-url", "path override (IIS, Symfony)"),
    removed("x-original-uri", "path override (nginx `auth_request` convention)"),
    removed("x-envoy-original-path", "path override (Envoy)"),
    removed("x-original-method", "method override (nginx `auth_request` convention)"),
    removed("x-real-ip", "client address"),
    removed("x-client-ip", "client address"),
    removed("client-ip", "client address"),
    removed("true-client-ip", "client address (Akamai, Cloudflare)"),
    removed("cf-connecting-ip", "client address (Cloudflare)"),
    removed("fastly-client-ip", "client address (Fastly)"),
    removed("x-cluster-client-ip", "client address"),
    removed("x-originating-ip", "client address"),
    removed("x-remote-ip", "client address"),
    removed("x-remote-addr", "client address"),
    removed("remote-user", "identity (Authelia)"),
    removed("remote-email", "identity (Authelia)"),
    removed("remote-groups", "identity (Authelia)"),
    removed("remote-name", "identity (Authelia)"),
    removed("x-remote-user", "identity (Apache, Gitea, Jenkins)"),
    removed("x-remote-email", "identity"),
    removed("x-remote-group", "identity"),
    removed("x-remote-groups", "identity"),
    removed("x-userinfo", "identity (Kong OIDC)"),
    removed_prefix("x-auth-request-", "identity (oauth2-proxy)"),
    removed_prefix("x-webauth-", "identity (Grafana `auth.proxy`)"),
    removed_prefix("x-authentik-", "identity (authentik)"),
    removed_prefix("x-pomerium-", "identity (Pomerium)"),
    removed_prefix("x-authenticated-", "identity (Kong, Istio)"),
    removed_prefix("x-consumer-", "identity (Kong)"),
    removed_prefix("cf-access-", "identity (Cloudflare Access)"),
    removed_prefix("x-goog-authenticated-user-", "identity (Google IAP)"),
    removed("x-goog-iap-jwt-assertion", "identity (Google IAP)"),
    removed_prefix("x-ms-client-principal", "identity (Azure App Service)"),
    removed_prefix("x-amzn-oidc-", "identity (AWS ALB)"),
    removed("x-auth-user", "identity (Keycloak Gatekeeper, Louketo)"),
    removed("x-auth-userid", "identity (Keycloak Gatekeeper, Louketo)"),
    removed("x-auth-username", "identity (Keycloak Gatekeeper, Louketo)"),
    removed("x-auth-email", "identity (Keycloak Gatekeeper, Louketo)"),
    removed("x-auth-groups", "identity (Keycloak Gatekeeper, Louketo)"),
    removed("x-auth-roles", "identity (Keycloak Gatekeeper, Louketo)"),
    removed("x-auth-subject", "identity (Keycloak Gatekeeper, Louketo)"),
    removed_prefix("x-vouch-", "identity (Vouch Proxy)"),
    removed("x-original-forwarded-for", "client address (nginx-ingress)"),
    removed_prefix("x-ssl-client-", "client certificate (nginx, HAProxy mTLS termination)"),
    removed_prefix("ssl-client-", "client certificate (Apache `mod_ssl` variables as headers)"),
    removed("x-client-cert", "client certificate"),
    removed("x-client-verify", "client certificate verification result"),
    removed("x-arr-clientcert", "client certificate (Azure App Service)"),
    removed_prefix("x-amzn-mtls-clientcert", "client certificate (AWS ALB)"),
];

/// Bit `b` is set when some row of [`OWNED_HEADERS`] starts with byte `b`:
/// most header names are rejected by their first byte alone.
const FIRST_BYTES: u128 = {
    let mut bits = 0u128;
    let mut i = 0;
    while i < OWNED_HEADERS.len() {
        bits |= 1 << OWNED_HEADERS[i].name.as_bytes()[0];
        i += 1;
    }
    bits
};

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the usual legacy ones), except
/// `transfer-encoding`: Pingora frames the upstream body from it, and a
/// request with it removed is sent with an empty body.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Names a client may not have removed by listing them in `Connection`:
/// message framing and routing, which Pingora relies on.
const NOT_REMOVABLE: [&str; 3] = ["host", "content-length", "transfer-encoding"];

/// True when `name` (as received, any case, `_` or `-`) is a header the proxy
/// owns: a row of [`OWNED_HEADERS`]. Does not allocate.
pub fn is_owned(name: &[u8]) -> bool {
    let Some(&first) = name.first() else {
        return false;
    };
    let first = first.to_ascii_lowercase();
    if first >= 128 || FIRST_BYTES & (1 << first) == 0 {
        return false;
    }
    OWNED_HEADERS.iter().any(|row| {
        if row.prefix {
            name.len() >= row.name.len() && eq_normalised(&name[..row.name.len()], row.name)
        } else {
            eq_normalised(name, row.name)
        }
    })
}

/// The header names (lowercased) to remove before forwarding, given the values
/// of the request's `Connection` headers: the fixed hop-by-hop set plus every
/// token listed in `Connection`.
///
/// With `keep_upgrade` (a WebSocket or other upgrade request) `connection` and
/// `upgrade` are kept, since Pingora needs them to pass the upgrade. Tokens
/// naming an owned header are left out (owned headers are stripped and set by
/// the proxy anyway, so listing them must not remove the proxy's own values),
/// and so are `host`, `content-length` and `transfer-encoding`.
pub fn hop_by_hop_names<'a>(connection_values: impl Iterator<Item = &'a [u8]>, keep_upgrade: bool) -> Vec<String> {
    let kept = |name: &str| keep_upgrade && (name == "connection" || name == "upgrade");
    let mut names: Vec<String> = HOP_BY_HOP.iter().filter(|name| !kept(name)).map(|name| name.to_string()).collect();
    let tokens = connection_values.flat_map(|value| value.split(|&b| b == b','));
    for token in tokens {
        let token = token.trim_ascii();
        if token.is_empty() || !token.iter().all(|&b| is_tchar(b)) || is_owned(token) {
            continue;
        }
        let name = String::from_utf8_lossy(token).to_ascii_lowercase();
        if !kept(&name) && !NOT_REMOVABLE.contains(&name.as_str()) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Given one Cookie header value, return it without the cookies whose name
/// starts with any of `prefixes` (e.g. `"__Host-portcullis"`), keeping the
/// others byte-for-byte and in order, joined by `"; "`. `None` when nothing
/// remains. Pieces without `=` are kept as they are.
///
/// The prefix match ignores ASCII case: browsers match the `__Host-` prefix
/// without regard to case, and stripping a lookalike costs the app nothing.
pub fn strip_cookies(value: &[u8], prefixes: &[&str]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    for piece in cookie_pieces(value) {
        let piece = piece.trim_ascii();
        if piece.is_empty() || is_own_cookie(piece, prefixes) {
            continue;
        }
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(piece);
    }
    (!out.is_empty()).then_some(out)
}

/// The `;`-separated pieces of a Cookie header value, found with `memchr`
/// (a session cookie is some 250 bytes, and this runs on every request).
fn cookie_pieces(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let now = rest?;
        match memchr::memchr(b';', now) {
            Some(at) => {
                rest = Some(&now[at + 1..]);
                Some(&now[..at])
            }
            None => {
                rest = None;
                Some(now)
            }
        }
    })
}

/// A `name=value` piece whose name starts with one of `prefixes`.
fn is_own_cookie(piece: &[u8], prefixes: &[&str]) -> bool {
    let Some(eq) = memchr::memchr(b'=', piece) else {
        return false;
    };
    let name = piece[..eq].trim_ascii();
    prefixes
        .iter()
        .any(|prefix| name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `name` equals `normalised` after lowercasing and mapping `_` to `-`.
fn eq_normalised(name: &[u8], normalised: &str) -> bool {
    name.len() == normalised.len()
        && name.iter().zip(normalised.bytes()).all(
            |(&b, n)| {
                if b == b'_' {
                    n == b'-'
                } else {
                    b.to_ascii_lowercase() == n
                }
            },
        )
}

/// A token character (RFC 9110 §5.6.2): what a header name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// True when `name` (as received) is a spelling of `header` (lowercase, `-`):
/// any case, `_` for `-`. For a header the proxy sets under a configured name.
pub fn is_spelling_of(name: &[u8], header: &http::HeaderName) -> bool {
    eq_normalised(name, header.as_str())
}

/// Applies all of the above to the request going upstream: owned headers in any
/// spelling, hop-by-hop headers, and the proxy's cookies are removed, and so is
/// every spelling of `also` (the configured JWT header). Allocates only when
/// there is something to remove.
pub fn clean_request(
    req: &mut pingora::http::RequestHeader,
    is_upgrade: bool,
    also: Option<&http::HeaderName>,
) -> pingora::Result<()> {
    let doomed_name = |n: &[u8]| is_owned(n) || also.is_some_and(|h| is_spelling_of(n, h));
    // One pass over the names the request has (a handful), rather than a
    // hashed lookup for every hop-by-hop name.
    let mut doomed: Vec<String> = Vec::new();
    let mut has_hop = false;
    for name in req.headers.keys() {
        let name = name.as_str();
        has_hop |= HOP_BY_HOP.contains(&name);
        if doomed_name(name.as_bytes()) {
            doomed.push(name.to_string());
        }
    }
    if has_hop {
        let connection = req.headers.get_all(http::header::CONNECTION).into_iter().map(|v| v.as_bytes());
        doomed.extend(hop_by_hop_names(connection, is_upgrade));
    }
    for name in &doomed {
        req.remove_header(name.as_str());
    }
    let own = |v: &http::HeaderValue| has_own_cookie(v.as_bytes());
    if !req.headers.get_all(http::header::COOKIE).iter().any(own) {
        return Ok(());
    }
    let stripped: Vec<Vec<u8>> = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|c| strip_cookies(c.as_bytes(), super::OWN_COOKIE_PREFIXES))
        .collect();
    req.remove_header(&http::header::COOKIE);
    for value in stripped {
        req.append_header(http::header::COOKIE, value)?;
    }
    Ok(())
}

/// A Cookie header value holding a cookie [`strip_cookies`] would remove.
fn has_own_cookie(value: &[u8]) -> bool {
    cookie_pieces(value).any(|piece| is_own_cookie(piece.trim_ascii(), super::OWN_COOKIE_PREFIXES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(connection: &[&str], keep_upgrade: bool) -> Vec<String> {
        hop_by_hop_names(connection.iter().map(|v| v.as_bytes()), keep_upgrade)
    }

    fn strip(value: &str) -> Option<String> {
        let prefixes = ["__Host-portcullis", "__Host-pc-pass"];
        strip_cookies(value.as_bytes(), &prefixes).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn owned_headers_in_every_spelling() {
        for name in [
            "x-portcullis-user",
            "X-Portcullis-User",
            "X-PORTCULLIS-AUTH",
            "X_Portcullis_User",
            "x_portcullis-groups",
            "x-portcullis_",
            "x-forwarded-for",
            "X-Forwarded-For",
            "x-forwarded_for",
            "X_FORWARDED_FOR",
            "x_forwarded_host",
            "X-Forwarded-Proto",
            "x-forwarded-port",
            "X-Forwarded-Prefix",
            "x-forwarded-ssl",
            "X-Real-IP",
            "x_real_ip",
            "Forwarded",
            "FORWARDED",
        ] {
            assert!(is_owned(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn overrides_and_other_proxies_identity_headers_in_every_spelling() {
        for name in [
            "X-Host",
            "x_host",
            "X-Original-Host",
            "X-HTTP-Host-Override",
            "X-Forwarded-Server",
            "x_forwarded_server",
            "X-Original-URL",
            "X-REWRITE-URL",
            "x_original_uri",
            "X-Forwarded-Uri",
            "X-Forwarded-Prefix",
            "X-Forwarded-Path",
            "Remote-User",
            "remote_user",
            "X-Remote-User",
            "X-Forwarded-User",
            "X-Forwarded-Email",
            "X-Forwarded-Preferred-Username",
            "X-Auth-Request-User",
            "x_auth_request_email",
            "X-Auth-Request-Access-Token",
            "X-WEBAUTH-USER",
            "X-authentik-username",
            "Cf-Access-Authenticated-User-Email",
            "X-Goog-Authenticated-User-Email",
            "X-MS-CLIENT-PRINCIPAL-NAME",
            "x-amzn-oidc-identity",
            "True-Client-IP",
            "CF-Connecting-IP",
            "X-SSL-Client-S-DN",
            "x_ssl_client_verify",
            "SSL-Client-Cert",
            "X-Client-Verify",
            "X-ARR-ClientCert",
            "X-Amzn-Mtls-Clientcert-Subject",
            "X-Forwarded-Client-Cert",
            "X-Auth-Userid",
            "X-Vouch-User",
            "X-Original-Forwarded-For",
        ] {
            assert!(is_owned(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn the_jwt_header_in_every_spelling() {
        for name in ["X-Portcullis-Jwt", "x_portcullis_jwt", "X-PORTCULLIS-JWT", "x-Portcullis_jwt"] {
            assert!(is_owned(name.as_bytes()), "{name}");
        }
        let custom = http::HeaderName::from_static("x-identity-assertion");
        for name in ["X-Identity-Assertion", "x_identity_assertion", "X_IDENTITY-ASSERTION"] {
            assert!(is_spelling_of(name.as_bytes(), &custom), "{name}");
        }
        for name in ["x-identity-assertions", "x-identity", "xidentity-assertion", ""] {
            assert!(!is_spelling_of(name.as_bytes(), &custom), "{name}");
        }
    }

    #[test]
    fn no_header_the_proxy_sets_can_carry_the_jwt_but_its_own() {
        for row in OWNED_HEADERS.iter().filter(|r| r.treatment == Treatment::Set && r.name != "x-portcullis-jwt") {
            assert!(crate::config::identity::is_refused(row.name), "{}", row.name);
        }
        assert!(!crate::config::identity::is_refused(crate::config::identity::DEFAULT_JWT_HEADER));
    }

    #[test]
    fn clean_request_strips_a_configured_header_in_every_spelling() {
        let mut req = pingora::http::RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("X-Identity-Assertion", "forged").unwrap();
        req.append_header("x_identity_assertion", "forged").unwrap();
        req.append_header("X-Portcullis-Jwt", "forged").unwrap();
        req.append_header("accept", "*/*").unwrap();
        let custom = http::HeaderName::from_static("x-identity-assertion");
        clean_request(&mut req, false, Some(&custom)).unwrap();
        let left: Vec<&str> = req.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn the_readme_lists_every_owned_header() {
        let readme = include_str!("../../README.md");
        for row in OWNED_HEADERS {
            let shown = if row.prefix { format!("`{}*`", row.name) } else { format!("`{}`", row.name) };
            assert!(readme.contains(&shown), "README's header table lacks {shown}");
        }
    }

    #[test]
    fn other_headers_are_not_owned() {
        for name in [
            "",
            "x-portcullis",
            "portcullis-user",
            "x-forwarded",
            "x-forwardedfor",
            "x-real-ip-address",
            "forwarded-for",
            "xforwarded",
            "host",
            "cookie",
            "x-request-id",
            "x\u{0130}-forwarded-for",
            "x-hostname",
            "remote-username",
            "accept",
            "user-agent",
            "authorization",
            "x-requested-with",
            "x-csrf-token",
            "x-auth-token",
            "\u{ff58}-host",
        ] {
            assert!(!is_owned(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_fixed_set() {
        let got = names(&[], false);
        for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer"] {
            assert!(got.contains(&name.to_string()), "{name}");
        }
        for name in ["upgrade", "proxy-authorization", "proxy-authenticate"] {
            assert!(got.contains(&name.to_string()), "{name}");
        }
        assert!(!got.contains(&"transfer-encoding".to_string()));
    }

    #[test]
    fn connection_tokens_are_added_lowercased_once() {
        let got = names(&["x-foo, Keep-Alive", "X-Bar,x-FOO"], false);
        assert!(got.contains(&"x-foo".to_string()));
        assert!(got.contains(&"x-bar".to_string()));
        assert_eq!(got.iter().filter(|n| *n == "keep-alive").count(), 1);
        assert_eq!(got.iter().filter(|n| *n == "x-foo").count(), 1);
    }

    #[test]
    fn connection_tokens_skip_empty_and_invalid() {
        let got = names(&[" , ,x-ok , bad token, a:b, \u{e9}t\u{e9}"], false);
        assert_eq!(got.len(), HOP_BY_HOP.len() + 1);
        assert!(got.contains(&"x-ok".to_string()));
    }

    #[test]
    fn connection_cannot_remove_owned_or_framing_headers() {
        let got = names(&["X-Forwarded-For, x_portcullis_user, Host, Content-Length"], false);
        assert_eq!(got.len(), HOP_BY_HOP.len());
        let got = names(&["transfer-encoding"], false);
        assert!(!got.contains(&"transfer-encoding".to_string()));
    }

    #[test]
    fn upgrade_requests_keep_connection_and_upgrade() {
        let got = names(&["Upgrade, keep-alive, X-Foo"], true);
        assert!(!got.contains(&"connection".to_string()));
        assert!(!got.contains(&"upgrade".to_string()));
        assert!(got.contains(&"keep-alive".to_string()));
        assert!(got.contains(&"x-foo".to_string()));
        let got = names(&["Upgrade"], false);
        assert!(got.contains(&"connection".to_string()));
        assert!(got.contains(&"upgrade".to_string()));
    }

    #[test]
    fn strip_cookies_removes_only_own_cookies() {
        let got = strip("a=1; __Host-portcullis_session=xyz; b=2; __Host-pc-pass=p");
        assert_eq!(got.as_deref(), Some("a=1; b=2"));
    }

    #[test]
    fn strip_cookies_keeps_others_byte_for_byte_in_order() {
        let got = strip("z=\"q u\";  a==b=c ;__Host-portcullis=1;m=%20");
        assert_eq!(got.as_deref(), Some("z=\"q u\"; a==b=c; m=%20"));
    }

    #[test]
    fn strip_cookies_none_when_nothing_remains() {
        assert_eq!(strip("__Host-portcullis_s=1"), None);
        assert_eq!(strip("__Host-portcullis_s=1; __Host-pc-pass=2;"), None);
        assert_eq!(strip(""), None);
        assert_eq!(strip(" ; ;; "), None);
    }

    #[test]
    fn strip_cookies_edge_cases() {
        // Pieces without '=' are kept, even when they look like ours.
        assert_eq!(strip("__Host-portcullis_s").as_deref(), Some("__Host-portcullis_s"));
        assert_eq!(strip("flag; a=1").as_deref(), Some("flag; a=1"));
        // Whitespace around the name, other case, empty value: still ours.
        assert_eq!(strip(" __Host-portcullis_s =1;a=1").as_deref(), Some("a=1"));
        assert_eq!(strip("__HOST-PORTCULLIS_s=1; a=1").as_deref(), Some("a=1"));
        assert_eq!(strip("__Host-portcullis_s=; a=1").as_deref(), Some("a=1"));
        // Our name appearing in a value or later in a name is not ours.
        let got = strip("a=__Host-portcullis_s=1; x__Host-portcullis=2");
        assert_eq!(got.as_deref(), Some("a=__Host-portcullis_s=1; x__Host-portcullis=2"));
        // Non-UTF-8 bytes pass through untouched.
        let got = strip_cookies(b"a=\xff\xfe;__Host-pc-pass=1", &["__Host-pc-pass"]);
        assert_eq!(got.as_deref(), Some(&b"a=\xff\xfe"[..]));
    }

    #[test]
    fn strip_cookies_without_prefixes_only_normalises_separators() {
        let got = strip_cookies(b"a=1;b=2", &[]);
        assert_eq!(got.as_deref(), Some(&b"a=1; b=2"[..]));
    }
}
