//! The return target after login (`rd`): where the browser is sent once the
//! portal is done with it, and nowhere else.
//!
//! `rd` comes from a URL anyone can craft, so an unchecked value would make the
//! login page an open redirect: a trusted host that forwards to a phishing
//! site. Browsers are lenient in ways attackers use: `//host` and `/\host` are
//! other origins, tabs and newlines inside a URL are dropped, `user@` in an
//! authority hides the real host, and full-width or other look-alike characters
//! are folded into ASCII ones. So the rules are narrow: a same-origin path, or an
//! `https` URL on a configured app host; printable ASCII only; everything else
//! is refused and the caller sends the browser to the dashboard.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};

/// The validated place to send the browser back to.
///
/// `Path` is a path-and-query on the host that received the request. In `Url`,
/// `host` is the lowercased authority as given, port included
/// (`app.example:8443`), and `path` starts with `/`: the target is
/// `https://{host}{path}`. Both are safe to put in a `Location` header as they
/// are; in HTML they still need escaping like any other text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnTo {
    Path(String),
    Url { host: String, path: String },
}

/// Longest accepted target, after decoding.
pub const MAX_RETURN_LEN: usize = 2048;

/// Characters re-encoded in a returned path: space (decoded from `%20`) and
/// the ones that would let a value break out of an HTML attribute.
const PATH_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'\'').add(b'<').add(b'>').add(b'`');

/// Characters encoded in an `rd` query value: all but unreserved and `/`.
const PARAM_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

/// Validate `rd`, the raw (still percent-encoded) query value.
///
/// `current_host` is the lowercased, port-stripped host that received the
/// request; `is_app_host(h)` says whether `h` is a configured app host. An
/// `https` URL on `current_host` without a port comes back as a `Path`.
/// Returns `None` for anything unsafe.
pub fn validate_return(rd: &str, current_host: &str, is_app_host: &dyn Fn(&str) -> bool) -> Option<ReturnTo> {
    if rd.len() > 3 * MAX_RETURN_LEN {
        return None;
    }
    let decoded = percent_decode_str(rd).decode_utf8().ok()?;
    if decoded.len() > MAX_RETURN_LEN || !decoded.bytes().all(is_allowed_byte) {
        return None;
    }
    if decoded.starts_with('/') {
        return safe_path(&decoded).map(ReturnTo::Path);
    }
    let (authority, rest) = split_https(&decoded)?;
    let host = app_host(authority, is_app_host)?;
    let path = match rest.chars().next() {
        None => "/".to_string(),
        Some('/') => rest.to_string(),
        Some(_) => format!("/{rest}"),
    };
    let path = safe_path(&path)?;
    if host == current_host && host.len() == authority.len() {
        return Some(ReturnTo::Path(path));
    }
    Some(ReturnTo::Url { host: authority.to_ascii_lowercase(), path })
}

/// [`validate_return`] for the listener that received the request: an app URL
/// must name the port the browser used (`port`: the Host port, 443 when none),
/// since a login handed to another port or scheme (`https` is the only one
/// accepted at all) is handed to another server. An URL of `current_host` on
/// that port comes back as a `Path`.
pub fn validate_return_here(
    rd: &str,
    current_host: &str,
    port: u16,
    is_app_host: &dyn Fn(&str) -> bool,
) -> Option<ReturnTo> {
    match validate_return(rd, current_host, is_app_host)? {
        ReturnTo::Url { host, path } => {
            let (bare, target_port) = match host.split_once(':') {
                Some((bare, p)) => (bare, p.parse::<u16>().ok()?),
                None => (host.as_str(), 443),
            };
            if target_port != port {
                return None;
            }
            if bare == current_host {
                return Some(ReturnTo::Path(path));
            }
            Some(ReturnTo::Url { host: format!("{bare}:{port}"), path })
        }
        path => Some(path),
    }
}

/// The port of an authority (`host:port`, `[v6]:port`); `None` when it names
/// none (or a malformed one).
pub fn authority_port(authority: &str) -> Option<u16> {
    let after_host = match authority.rfind(']') {
        Some(end) => &authority[end + 1..],
        None => authority,
    };
    after_host.rsplit_once(':').and_then(|(_, p)| p.trim().parse().ok())
}

/// Build a safe `rd` value for a redirect to the login page from the
/// request's path-and-query, percent-encoded for use as a query value.
/// Targets that would not validate (portal pages, `//host`, overlong) give `/`.
pub fn encode_return_param(path_and_query: &str) -> String {
    let acceptable = path_and_query.len() <= MAX_RETURN_LEN
        && path_and_query.bytes().all(is_allowed_byte)
        && safe_path(path_and_query).is_some();
    if !acceptable {
        return "/".to_string();
    }
    utf8_percent_encode(path_and_query, PARAM_ESCAPES).to_string()
}

/// Printable ASCII except `\`: no controls (browsers drop tabs and newlines
/// inside URLs), no backslash (browsers read it as `/`), no non-ASCII
/// (look-alikes such as `／` or `。` that URL parsers fold into ASCII).
fn is_allowed_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'\\'
}

/// A same-origin path, re-encoded for a `Location` header; `None` when it is
/// not one: it must start with exactly one `/`, and a leading `%2f` or `%5c`
/// (a second, encoded, slash for whoever decodes again) is refused too.
fn safe_path(path: &str) -> Option<String> {
    let after_slash = path.strip_prefix('/')?;
    if after_slash.starts_with('/') || after_slash.starts_with('\\') {
        return None;
    }
    let head = after_slash.as_bytes().get(..3).unwrap_or_default();
    if head.eq_ignore_ascii_case(b"%2f") || head.eq_ignore_ascii_case(b"%5c") {
        return None;
    }
    // Only a path already in the proxy's canonical form: a browser resolves
    // dot segments itself, and differently (it keeps empty segments, so
    // `/.portcullis//./..` is `/.portcullis/` to it and `/` to nginx), so a
    // target with any is no place to return to; nor is one the proxy would
    // refuse (`%2`, `..;/`), nor the reserved prefix in any spelling (but
    // the admin console's pages, in the canonical spelling).
    let encoded = utf8_percent_encode(path, PATH_ESCAPES).to_string();
    let path_part = encoded.split(['?', '#']).next().unwrap_or_default();
    match crate::proxy::path::canonicalize(path_part.as_bytes()) {
        // The console is the one portal place to come back to: its pages change nothing on GET.
        Ok(canonical)
            if canonical == path_part
                && (!crate::proxy::path::is_portal_path(&canonical) || crate::console::is_console_path(&canonical)) =>
        {
            Some(encoded)
        }
        _ => None,
    }
}

/// Split `https://AUTHORITY REST` (scheme in any case) into the authority and
/// the rest, which starts with `/`, `?`, `#` or is empty.
fn split_https(url: &str) -> Option<(&str, &str)> {
    let scheme = url.get(..8)?;
    if !scheme.eq_ignore_ascii_case("https://") {
        return None;
    }
    let after = &url[8..];
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some(after.split_at(end))
}

/// The lowercased host of `authority` (`host` or `host:port`) when it is a
/// configured app host. Userinfo, IP literals and any character outside
/// letters, digits, `-` and `.` are refused, so the host checked is the host
/// the browser will go to.
fn app_host(authority: &str, is_app_host: &dyn Fn(&str) -> bool) -> Option<String> {
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !port_ok || !host_ok {
        return None;
    }
    let host = host.to_ascii_lowercase();
    is_app_host(&host).then_some(host)
}

/// Puts an `rd` value that is already percent-encoded into another URL's
/// query: `%` is kept (no double encoding), anything that could end or change
/// the query is encoded.
pub fn encode_raw(rd: &str) -> String {
    let mut out = String::with_capacity(rd.len());
    for b in rd.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps(host: &str) -> bool {
        matches!(host, "wiki.localhost" | "other-app.localhost")
            || host.strip_suffix(".apps.localhost").is_some_and(|label| !label.is_empty() && !label.contains('.'))
    }

    fn check(rd: &str) -> Option<ReturnTo> {
        validate_return(rd, "wiki.localhost", &apps)
    }

    fn path(p: &str) -> Option<ReturnTo> {
        Some(ReturnTo::Path(p.to_string()))
    }

    fn url(host: &str, path: &str) -> Option<ReturnTo> {
        Some(ReturnTo::Url { host: host.to_string(), path: path.to_string() })
    }

    #[test]
    fn good_relative_paths() {
        assert_eq!(check("/"), path("/"));
        assert_eq!(check("/page?x=1#frag"), path("/page?x=1#frag"));
        assert_eq!(check("%2Fpage%3Fx%3D1%23frag"), path("/page?x=1#frag"));
        assert_eq!(check("/a/b%20c"), path("/a/b%20c"));
        assert_eq!(check("/a/b%2520c"), path("/a/b%20c"));
        assert_eq!(check("/a%2Fb"), path("/a/b"));
        assert_eq!(check("/search?q=a+b&x=%3Cy%3E"), path("/search?q=a+b&x=%3Cy%3E"));
    }

    #[test]
    fn good_app_urls() {
        assert_eq!(check("https://other-app.localhost/x"), url("other-app.localhost", "/x"));
        assert_eq!(check("https%3A%2F%2Fother-app.localhost%2Fx"), url("other-app.localhost", "/x"));
        assert_eq!(check("HTTPS://Other-App.LOCALHOST"), url("other-app.localhost", "/"));
        assert_eq!(check("https://other-app.localhost?a=1"), url("other-app.localhost", "/?a=1"));
        assert_eq!(check("https://other-app.localhost:8443/x"), url("other-app.localhost:8443", "/x"));
        assert_eq!(check("https://a1.apps.localhost/x"), url("a1.apps.localhost", "/x"));
    }

    #[test]
    fn url_on_the_current_host_becomes_a_path() {
        assert_eq!(check("https://wiki.localhost/page?x=1"), path("/page?x=1"));
        assert_eq!(check("https://wiki.localhost:8443/page"), url("wiki.localhost:8443", "/page"));
    }

    #[test]
    fn other_origins_are_refused() {
        for rd in [
            "//evil.example",
            "/\\evil.example",
            "%2F%2Fevil.example",
            "%2f%5cevil.example",
            "/%2Fevil.example",
            "/%252Fevil.example",
            "/%255Cevil.example",
            "%252F%252Fevil.example",
            "https://evil.example",
            "https://evil.example/wiki.localhost",
            "https://wiki.localhost.evil.example",
            "https://wiki.localhost.evil.example/x",
            "https://user@wiki.localhost",
            "https://wiki.localhost@evil.example",
            "https://user:pw@wiki.localhost/",
            "https://a.b.apps.localhost/",
            "https:/\\evil.example",
            "https:evil.example",
            "https:///evil.example",
            "https://",
            "https://:443/",
            "evil.example",
            "page",
            "",
        ] {
            assert_eq!(check(rd), None, "{rd}");
        }
    }

    #[test]
    fn app_urls_must_use_the_listeners_port() {
        let here = |rd: &str, port: u16| validate_return_here(rd, "wiki.localhost", port, &apps);
        assert_eq!(here("https://other-app.localhost:8443/x", 8443), url("other-app.localhost:8443", "/x"));
        assert_eq!(here("https://other-app.localhost/x", 443), url("other-app.localhost:443", "/x"));
        assert_eq!(here("https://other-app.localhost:443/x", 443), url("other-app.localhost:443", "/x"));
        for (rd, port) in [
            ("https://other-app.localhost:8444/x", 8443),
            ("https://other-app.localhost/x", 8443),
            ("https://other-app.localhost:8443/x", 443),
            ("https://other-app.localhost:80/x", 443),
            ("http://other-app.localhost:8443/x", 8443),
            ("http://other-app.localhost/x", 443),
            ("wss://other-app.localhost:8443/x", 8443),
            ("https://evil.example:8443/x", 8443),
        ] {
            assert_eq!(here(rd, port), None, "{rd} on {port}");
        }
        assert_eq!(here("https://wiki.localhost:8443/page", 8443), path("/page"), "same origin");
        assert_eq!(here("https://wiki.localhost:8444/page", 8443), None, "same host, other port");
        assert_eq!(here("/page", 8443), path("/page"));
    }

    #[test]
    fn the_port_of_an_authority() {
        assert_eq!(authority_port("wiki.localhost:8443"), Some(8443));
        assert_eq!(authority_port("wiki.localhost"), None);
        assert_eq!(authority_port("[::1]:8443"), Some(8443));
        assert_eq!(authority_port("[::1]"), None);
        assert_eq!(authority_port("wiki.localhost:99999"), None);
        assert_eq!(authority_port("wiki.localhost:x"), None);
    }

    #[test]
    fn schemes_other_than_https_are_refused() {
        for rd in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "javascript%3Aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://wiki.localhost/",
            "http://other-app.localhost/",
            "ftp://other-app.localhost/",
            "httpss://other-app.localhost/",
            " https://other-app.localhost/",
        ] {
            assert_eq!(check(rd), None, "{rd}");
        }
    }

    #[test]
    fn controls_and_backslashes_are_refused() {
        for rd in [
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0A/evil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/a%00b",
            "/a%7Fb",
            "/a\\b",
            "/a%5Cb",
            "https://other-app.localhost/a\\b",
            "https://other-app.localhost\t/x",
            "https://other%09-app.localhost/x",
        ] {
            assert_eq!(check(rd), None, "{rd:?}");
        }
    }

    #[test]
    fn unicode_lookalikes_are_refused() {
        for rd in [
            "/\u{ff0f}evil.example",
            "/%EF%BC%8Fevil.example",
            "/\u{2215}evil.example",
            "https://wiki.localhost\u{3002}evil.example",
            "https://wiki.localhost%E3%80%82evil.example/",
            "https://wiki.localhost%25E3%2580%2582evil.example/",
            "https://wiki%2elocalhost%2eevil.example/",
            "https://other-\u{0430}pp.localhost/",
            "/caf\u{e9}",
            "/%C3%A9",
            "/%FF",
        ] {
            assert_eq!(check(rd), None, "{rd}");
        }
    }

    #[test]
    fn bad_ports_and_hosts_are_refused() {
        for rd in [
            "https://other-app.localhost:/x",
            "https://other-app.localhost:99999/x",
            "https://other-app.localhost:123456/x",
            "https://other-app.localhost:80:80/x",
            "https://other-app.localhost:8a/x",
            "https://[::1]/x",
            "https://127.0.0.1/x",
        ] {
            assert_eq!(check(rd), None, "{rd}");
        }
    }

    #[test]
    fn portal_paths_and_overlong_targets_are_refused() {
        assert_eq!(check("/.portcullis/logout"), None);
        assert_eq!(check("/.portcullis"), None);
        assert_eq!(check("%2F.portcullis%2Flogin"), None);
        assert_eq!(check("https://other-app.localhost/.portcullis/logout"), None);
        assert_eq!(check("/.portcullisx"), path("/.portcullisx"));
        // The admin console is the exception, in its canonical spelling only.
        assert_eq!(check("/.portcullis/admin/locked"), path("/.portcullis/admin/locked"));
        // Its root without the slash too, with any query (found by the
        // `return_to` fuzz target, whose invariant had missed the root).
        assert_eq!(
            check("/.portcullis/admin?z/zzzzz{z,,,,,zz/.portc"),
            path("/.portcullis/admin?z/zzzzz{z,,,,,zz/.portc")
        );
        for rd in [
            "/.Portcullis/admin/",
            "/.portcullis/admin/../logout",
            "/.portcullis/admin/%2e%2e/logout",
            "/.portcullis/administrator",
        ] {
            assert_eq!(check(rd), None, "{rd}");
        }
        // However the proxy would read the prefix: any case, dot segments, `;`.
        for rd in
            ["/.PORTCULLIS/logout", "/a/../.portcullis/x", "/.portcullis;x/", "/%2Eportcullis/login", "/./.Portcullis"]
        {
            assert_eq!(check(rd), None, "{rd}");
        }
        let long = format!("/{}", "a".repeat(MAX_RETURN_LEN));
        assert_eq!(check(&long), None);
        let just = format!("/{}", "a".repeat(MAX_RETURN_LEN - 1));
        assert_eq!(check(&just), path(&just));
        assert_eq!(check(&"%41".repeat(3 * MAX_RETURN_LEN)), None);
    }

    #[test]
    fn returned_paths_escape_html_breakers() {
        assert_eq!(check("/a%22b%27c%3Cd%3E%60"), path("/a%22b%27c%3Cd%3E%60"));
        assert_eq!(check("/a\"b"), path("/a%22b"));
    }

    #[test]
    fn encode_round_trips_through_validate() {
        for target in ["/", "/page?x=1#frag", "/a/b%20c", "/q?a=1&b=2+3", "/~u/x.y_z-w"] {
            let rd = encode_return_param(target);
            assert!(!rd.contains(['&', '?', '#', '=', '+', ' ']), "{rd}");
            assert_eq!(check(&rd), path(target), "{target} -> {rd}");
        }
        assert_eq!(encode_return_param("/page?x=1&y=2"), "/page%3Fx%3D1%26y%3D2");
        assert_eq!(encode_return_param("/a/b%20c"), "/a/b%2520c");
    }

    #[test]
    fn encode_refuses_unsafe_targets() {
        for target in [
            "/.portcullis/login?rd=/x",
            "/.portcullis",
            "//evil.example",
            "/%2fevil.example",
            "https://evil.example/",
            "*",
            "",
            "/a\\b",
            "/a\tb",
            "/caf\u{e9}",
        ] {
            assert_eq!(encode_return_param(target), "/", "{target:?}");
        }
        assert_eq!(encode_return_param(&format!("/{}", "a".repeat(MAX_RETURN_LEN))), "/");
    }
}
