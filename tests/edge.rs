//! What reaches the app is exactly what was checked: headers, the path, the
//! framing and the sizes of a request, sent as raw bytes over real TLS to a
//! real portcullis in front of an upstream that logs every byte it received.
//! The assertions read that log, not only the client's answer. One proxy
//! serves every test of this binary.
//!
//! The tests named after an advisory reproduce the class of hole a peer
//! shipped and fixed.

mod common;

use common::raw::{exchange, status, RawUpstream};
use common::Env;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

struct Edge {
    env: Env,
    upstream: RawUpstream,
}

/// `*.open.localhost` is forwarded without a login; `wiki.localhost` needs one.
fn edge() -> &'static Edge {
    static EDGE: OnceLock<Edge> = OnceLock::new();
    EDGE.get_or_init(|| {
        let upstream = RawUpstream::start();
        let apps = format!(
            r#"
[networks]
internal = ["127.0.0.2/32"]

[policy_group.staff]
allow = "always"
otp_skip = "always"

[[app]]
name = "open"
hosts = ["*.open.localhost"]
upstream = "{up}"
policy_groups = ["staff"]
bypass = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{up}"
policy_groups = ["staff"]
"#,
            up = upstream.addr
        );
        let env = Env::new("", &apps);
        env.start_for_binary();
        Edge { env, upstream }
    })
}

/// A marker no other request of this binary carries.
fn marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("mk{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Sends `request` (with `{m}` replaced by a fresh marker) to `host`;
/// returns the answer and the marker.
fn send(host: &str, request: &str) -> (String, String) {
    let e = edge();
    let m = marker();
    let bytes = request.replace("{m}", &m).replace("{host}", host);
    (exchange(e.env.https, &e.env.ca, host, bytes.as_bytes(), Duration::from_secs(3)), m)
}

const OPEN: &str = "a.open.localhost";

/// The request the upstream received that carries `marker`, as text.
fn upstream_request(marker: &str) -> String {
    let e = edge();
    assert!(e.upstream.saw(marker), "the upstream never saw {marker}: {}", e.upstream.received());
    let log = e.upstream.received();
    let at = log.find(marker).unwrap();
    // The request line carries the marker: the request starts with that line.
    let start = log[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = log[at..].find("\r\n\r\n").map_or(log.len(), |i| at + i);
    log[start..end].to_string()
}

fn assert_refused(answer: &str, want: u16, m: &str) {
    assert_eq!(status(answer), want, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "not closed: {answer}");
    assert!(!edge().upstream.saw(m), "forwarded: {}", edge().upstream.received());
}

// ----- 1. Headers -----

#[test]
fn host_path_and_identity_overrides_never_reach_the_app() {
    let names = [
        "X-Host",
        "x_host",
        "X-ORIGINAL-HOST",
        "X-HTTP-Host-Override",
        "X-Forwarded-Server",
        "x_forwarded_server",
        "X-Original-URL",
        "X-Rewrite-URL",
        "x_original_uri",
        "X-Forwarded-Uri",
        "X-Forwarded-Prefix",
        "X_Forwarded_Path",
        "Remote-User",
        "remote_user",
        "X-Remote-User",
        "X-Forwarded-User",
        "X-Forwarded-Email",
        "X-Forwarded-Preferred-Username",
        "X-Auth-Request-User",
        "x_auth_request_email",
        "X-WEBAUTH-USER",
        "X-Real-IP",
        "True-Client-IP",
        "X-Portcullis-User",
        "x_portcullis_user",
    ];
    let headers: String = names.iter().enumerate().map(|(i, n)| format!("{n}: evil{i}\r\n")).collect();
    let request = format!(
        "GET /h?{{m}} HTTP/1.1\r\nHost: {{host}}\r\n{headers}Forwarded: host=evilfwd;for=6.6.6.6\r\nConnection: close\r\n\r\n"
    );
    let (answer, m) = send(OPEN, &request);
    assert_eq!(status(&answer), 200, "{answer}");
    let seen = upstream_request(&m);
    for (i, name) in names.iter().enumerate() {
        assert!(!seen.contains(&format!("evil{i}\r")), "{name} reached the app:\n{seen}");
    }
    assert!(!seen.contains("evilfwd"), "Forwarded reached the app:\n{seen}");
    let lower = seen.to_ascii_lowercase();
    assert!(lower.contains("x-forwarded-host: a.open.localhost"), "{seen}");
    assert!(lower.contains("x-portcullis-auth: bypass"), "{seen}");
}

/// Node.js llhttp CVE-2021-22959 and the request-smuggling class it belongs
/// to: whitespace between a header name and the colon, or a line starting
/// with whitespace (obsolete folding), is not HTTP; it is refused, never
/// passed on under a name the app might read differently.
#[test]
fn whitespace_around_a_header_name_is_refused() {
    for spelling in ["X-Host : evil", "X-Host\t: evil", " X-Host: evil", "X-Host evil: x"] {
        let request = format!("GET /ws?{{m}} HTTP/1.1\r\nHost: {{host}}\r\nAccept: */*\r\n{spelling}\r\n\r\n");
        let (answer, m) = send(OPEN, &request);
        assert_eq!(status(&answer), 400, "{spelling:?}: {answer}");
        assert!(!edge().upstream.saw(&m), "{spelling:?} forwarded");
    }
}

/// Apache httpd CVE-2022-31813: a client listed `X-Forwarded-For` in
/// `Connection` and the proxy removed the header it had set itself. Naming
/// `Host` or an `X-Forwarded-*` header Pingora relies on is refused outright;
/// naming another header portcullis sets removes only the client's copy.
#[test]
fn cve_2022_31813_connection_cannot_remove_the_proxys_headers() {
    for nominated in ["X-Forwarded-For", "x-forwarded-host", "Host", "X-Forwarded-Proto"] {
        let (answer, m) =
            send(OPEN, &format!("GET /c?{{m}} HTTP/1.1\r\nHost: {{host}}\r\nConnection: close, {nominated}\r\n\r\n"));
        assert_refused(&answer, 400, &m);
    }
    let (answer, m) = send(
        OPEN,
        "GET /c?{m} HTTP/1.1\r\nHost: {host}\r\nConnection: close, x_portcullis_auth, X-Portcullis-User, X-Drop-Me\r\nX-Drop-Me: 1\r\n\r\n",
    );
    assert_eq!(status(&answer), 200, "{answer}");
    let seen = upstream_request(&m).to_ascii_lowercase();
    assert!(seen.contains("x-forwarded-for: 127.0.0.1"), "{seen}");
    assert!(seen.contains("x-portcullis-auth: bypass"), "{seen}");
    assert!(seen.contains("x-forwarded-host: a.open.localhost"), "{seen}");
    assert!(!seen.contains("x-drop-me"), "{seen}");
}

/// oauth2-proxy CVE-2025-64484: identity headers smuggled with `_` instead
/// of `-`, which WSGI, CGI, PHP and Rack read as the same variable.
#[test]
fn cve_2025_64484_underscore_aliases_of_identity_headers_are_stripped() {
    let (answer, m) = send(
        OPEN,
        "GET /u?{m} HTTP/1.1\r\nHost: {host}\r\nX_Forwarded_User: evil-u\r\nX_Forwarded_Email: evil-e\r\nX_Auth_Request_User: evil-a\r\nX_Portcullis_User: evil-p\r\nX_Portcullis_Groups: evil-g\r\nRemote_User: evil-r\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&answer), 200, "{answer}");
    let seen = upstream_request(&m);
    assert!(!seen.contains("evil-"), "{seen}");
}

/// Symfony CVE-2018-14773 (`X-Original-URL`, `X-Rewrite-URL`) and Authelia's
/// advisory on trusted `X-Forwarded-Uri`/`X-Original-URL` (CVE-2021-32637):
/// frameworks routed by a path header the client sent, so an allowed path
/// was checked and a protected one served. None of them reaches the app.
#[test]
fn cve_2018_14773_path_override_headers_are_dropped() {
    let (answer, m) = send(
        OPEN,
        "GET /allowed?{m} HTTP/1.1\r\nHost: {host}\r\nX-Original-URL: /admin-a\r\nX-Rewrite-URL: /admin-b\r\nX-Original-URI: /admin-c\r\nX-Forwarded-Uri: /admin-d\r\nX-Forwarded-Prefix: /admin-e\r\nX-Forwarded-Path: /admin-f\r\nX-Envoy-Original-Path: /admin-g\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&answer), 200, "{answer}");
    let seen = upstream_request(&m);
    assert!(!seen.contains("/admin-"), "{seen}");
}

// ----- 1. One reading of the path -----

/// Envoy CVE-2019-9901: without normalisation the proxy's view of the path
/// and the backend's diverge. The app receives the path the policy saw.
#[test]
fn cve_2019_9901_the_app_receives_the_canonical_path() {
    let cases = [
        ("/a/./b/../c/%7euser//x", "/a/c/~user/x"),
        ("/%61%62%63/d%20e", "/abc/d%20e"),
        ("/x/%2e%2e/y/", "/y/"),
        ("/../../z", "/z"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/keep;jsessionid=1/p", "/keep;jsessionid=1/p"),
        ("/a%23/x", "/a%23/x"),
    ];
    for (sent, want) in cases {
        let (answer, m) =
            send(OPEN, &format!("GET {sent}?{{m}} HTTP/1.1\r\nHost: {{host}}\r\nConnection: close\r\n\r\n"));
        assert_eq!(status(&answer), 200, "{sent}: {answer}");
        let seen = upstream_request(&m);
        assert!(seen.starts_with(&format!("GET {want}?{m} HTTP/1.1\r\n")), "{sent} -> {seen}");
    }
    // An absolute-form target reaches the app as the origin-form path checked.
    let (answer, m) = send(
        OPEN,
        "GET https://a.open.localhost/p/../q?{m} HTTP/1.1\r\nHost: a.open.localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(upstream_request(&m).starts_with(&format!("GET /q?{m} HTTP/1.1\r\n")));
}

/// Envoy CVE-2021-29492 (escaped slashes), CVE-2021-32779 (a `#` in the
/// target, which one parser drops with what follows and another keeps) and
/// Tomcat's `..;/`: forms that backends read differently are
/// refused, never guessed at.
#[test]
fn cve_2021_29492_ambiguous_paths_are_refused() {
    for path in [
        "/..;/admin",
        "/a/.;/admin",
        "/a%2fb",
        "/a%2Fb",
        "/a%5cb",
        "/a\\b",
        "/a%00b",
        "/a%0d%0ab",
        "/%C0%AE%C0%AE/x",
        "/%ff",
        "/%zz",
        "/%252e%252e/x",
        "/%252fx",
        "/a#/../admin",
    ] {
        let (answer, m) = send(OPEN, &format!("GET {path}?{{m}} HTTP/1.1\r\nHost: {{host}}\r\n\r\n"));
        assert_refused(&answer, 400, &m);
    }
}

/// Every spelling a common backend resolves under `/.portcullis/` is
/// answered by portcullis (its login page, or its 404), never forwarded,
/// however long the path.
#[test]
fn the_reserved_prefix_is_never_forwarded_in_any_spelling() {
    let deep = format!("/{}{}", "d/".repeat(1000), "../".repeat(1000));
    let spellings = [
        "/.portcullis/login".to_string(),
        "/x/../.portcullis/login".to_string(),
        "/x/%2e%2e/.portcullis/login".to_string(),
        "/%2Eportcullis/login".to_string(),
        "/%2eportcullis/login".to_string(),
        "/.PORTCULLIS/login".to_string(),
        "/.Portcullis/x".to_string(),
        "//.portcullis/login".to_string(),
        "/./.portcullis/login".to_string(),
        "/.portcullis;a=b/login".to_string(),
        "/.portcullis".to_string(),
        format!("{deep}.portcullis/login"),
    ];
    for path in spellings {
        let (answer, m) =
            send(OPEN, &format!("GET {path}?{{m}} HTTP/1.1\r\nHost: {{host}}\r\nConnection: close\r\n\r\n"));
        assert!(matches!(status(&answer), 200 | 302 | 303 | 404), "{path}: {answer}");
        assert!(!answer.contains("seen\n"), "{path} reached the app");
        assert!(!edge().upstream.saw(&m), "{path} forwarded");
    }
}

// ----- 1. Message framing -----

/// Pingora CVE-2025-4366 and the request-smuggling class: a request whose
/// length two parsers could read differently is refused with 400 and the
/// connection closed; the request hidden in its body never reaches the
/// upstream, whose connections are shared between clients.
#[test]
fn cve_2025_4366_ambiguous_framing_is_refused_and_nothing_is_smuggled() {
    let smuggled = "GET /smuggled-{m} HTTP/1.1\r\nHost: {host}\r\n\r\n";
    let framings = [
        "Content-Length: 05\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 5\r\n",
    ];
    for framing in framings {
        let request = format!("POST /f?{{m}} HTTP/1.1\r\nHost: {{host}}\r\n{framing}\r\n0\r\n\r\n{smuggled}");
        let (answer, m) = send(OPEN, &request);
        assert_refused(&answer, 400, &m);
        assert!(!edge().upstream.saw(&format!("smuggled-{m}")), "{framing:?} smuggled a request");
    }
    // HTTP/1.0 with Transfer-Encoding (RFC 9112 §6.1).
    let (answer, m) = send(OPEN, "POST /f?{m} HTTP/1.0\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(status(&answer), 400, "{answer}");
    assert!(!edge().upstream.saw(&m));
}

/// A malformed chunk size ends the request: the client gets an error and a
/// closed connection, and what follows the bad chunk (here a whole second
/// request) never reaches the upstream.
#[test]
fn malformed_chunk_sizes_end_the_request() {
    for bad in [
        "zz\r\nhello\r\n",
        "5 5\r\nhello\r\n",
        "-5\r\nhello\r\n",
        "0x5\r\nhello\r\n",
        "ffffffffffffffffff\r\nhello\r\n",
    ] {
        let request = format!(
            "POST /chunk?{{m}} HTTP/1.1\r\nHost: {{host}}\r\nTransfer-Encoding: chunked\r\n\r\n{bad}0\r\n\r\nGET /after-{{m}} HTTP/1.1\r\nHost: {{host}}\r\n\r\n"
        );
        let (answer, m) = send(OPEN, &request);
        assert_eq!(status(&answer), 400, "{bad:?}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{bad:?}: {answer}");
        assert!(!edge().upstream.saw(&format!("after-{m}")), "{bad:?}: a request after a bad chunk was forwarded");
        assert!(!edge().upstream.saw(&format!("hello\r\n0\r\n\r\nGET /after-{m}")), "{bad:?}: raw body forwarded");
    }
}

/// The upstream receives canonical framing: chunk extensions and odd size
/// spellings are re-framed by the proxy.
#[test]
fn the_upstream_receives_canonical_chunks() {
    let (answer, m) = send(
        OPEN,
        "POST /c?{m} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0005;ext=\"x\"\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(status(&answer), 200, "{answer}");
    let log = edge().upstream.received();
    let at = log.find(&m).unwrap();
    let body = &log[at..];
    assert!(body.contains("hello"), "{body}");
    assert!(!body.contains("ext="), "chunk extension forwarded: {body}");
    assert!(!body.contains("0005"), "size not canonical: {body}");
}

// ----- 1. Size limits -----

#[test]
fn size_limits_are_enforced_before_forwarding() {
    let long_target = format!("/{}", "t".repeat(8200));
    let (answer, m) = send(OPEN, &format!("GET {long_target}?{{m}} HTTP/1.1\r\nHost: {{host}}\r\n\r\n"));
    assert_refused(&answer, 414, &m);

    let big = "v".repeat(8 * 1024);
    let (answer, m) = send(OPEN, &format!("GET /big?{{m}} HTTP/1.1\r\nHost: {{host}}\r\nX-Big: {big}\r\n\r\n"));
    assert_refused(&answer, 431, &m);

    let many: String = (0..101).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let (answer, m) = send(OPEN, &format!("GET /many?{{m}} HTTP/1.1\r\nHost: {{host}}\r\n{many}\r\n"));
    assert_refused(&answer, 431, &m);

    let seven_k = "v".repeat(7 * 1024);
    let five: String = (0..5).map(|i| format!("X-S{i}: {seven_k}\r\n")).collect();
    let (answer, m) = send(OPEN, &format!("GET /total?{{m}} HTTP/1.1\r\nHost: {{host}}\r\n{five}\r\n"));
    assert_refused(&answer, 431, &m);

    // Just under every limit: forwarded.
    let four: String = (0..4).map(|i| format!("X-S{i}: {seven_k}\r\n")).collect();
    let ninety: String = (0..90).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let (answer, m) = send(
        OPEN,
        &format!(
            "GET /{}?{{m}} HTTP/1.1\r\nHost: {{host}}\r\n{four}{ninety}Connection: close\r\n\r\n",
            "t".repeat(8000)
        ),
    );
    assert_eq!(status(&answer), 200, "{}", &answer[..answer.len().min(300)]);
    assert!(edge().upstream.saw(&m));
}

/// HTTP/2 requests get the same reading: the `:path` is canonicalised and
/// checked like an HTTP/1 target.
#[tokio::test]
async fn http2_paths_get_the_same_reading() {
    let e = edge();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&e.env.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .http2_prior_knowledge()
        .resolve(OPEN, e.env.https)
        .build()
        .unwrap();
    let m = marker();
    let r = client.get(format!("https://{OPEN}:{}/h2/%7Euser/%61?{m}", e.env.https.port())).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert!(upstream_request(&m).starts_with(&format!("GET /h2/~user/a?{m} HTTP/1.1\r\n")));
    for path in ["/h2/a%2fb", "/h2/..;/x", "/h2/%00", "/%2eportcullis%2flogin"] {
        let m = marker();
        let r = client.get(format!("https://{OPEN}:{}{path}?{m}", e.env.https.port())).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert!(!e.upstream.saw(&m), "{path} forwarded");
    }
}

/// oauth2-proxy CVE-2020-5233 (`/\evil`), CVE-2020-4037 (lenient redirect
/// patterns) and GHSA-j7px-6hwj-hpjg (whitespace between the slashes): the
/// return target after login was an open redirect. Every such `rd` falls
/// back to a same-origin path.
#[tokio::test]
async fn cve_2020_5233_the_return_target_is_never_an_open_redirect() {
    let e = edge();
    let client = e.env.client("127.0.0.1");
    let login = |rd: &str| {
        let body = serde_json::json!({"username": "alice", "password": common::PASSWORD, "rd": rd});
        client.post(e.env.url("wiki.localhost", "/.portcullis/api/login")).json(&body).send()
    };
    let r: serde_json::Value = login("/page?x=1").await.unwrap().json().await.unwrap();
    assert_eq!(r["location"], "/page?x=1", "{r}");
    for rd in [
        "//evil.example/",
        "/\\evil.example/",
        "/%5Cevil.example/",
        "%2F%2Fevil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/ /evil.example",
        "https://evil.example/",
        "https://wiki.localhost.evil.example/",
        "https://evil.example\\@wiki.localhost/",
        "https://wiki.localhost@evil.example/",
        "http://wiki.localhost/",
        "https:evil.example",
        "javascript:alert(1)",
        "\\\\evil.example",
        "/.portcullis/logout",
        "https://wiki.localhost:1/",
    ] {
        let r: serde_json::Value = login(rd).await.unwrap().json().await.unwrap();
        let location = r["location"].as_str().unwrap_or_default();
        // A same-origin path: one slash, then nothing a browser reads as another origin.
        assert!(location.starts_with('/') && !location.starts_with("//"), "{rd:?} -> {location:?}");
        assert!(!location.contains(['\\', '\t', '\n', ' ']) && !location.contains("://"), "{rd:?} -> {location:?}");
    }
}

/// Caddy CVE-2026-27588 (host matching that a spelling of the host escaped)
/// and the RFC 9112 §3.2.2 absolute-form confusion: the app is chosen by the
/// host in any case, and a target whose authority names another app than
/// `Host` is refused, so no request is decided for one app and served by
/// another.
#[test]
fn cve_2026_27588_host_confusion_never_picks_the_wrong_decision() {
    for host in ["WIKI.LOCALHOST", "Wiki.Localhost", "wiki.localhost.", "wiki.localhost:443"] {
        let (answer, m) =
            send("wiki.localhost", &format!("GET /h?{{m}} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        assert!(matches!(status(&answer), 302 | 400 | 401 | 404), "{host}: {answer}");
        assert!(!edge().upstream.saw(&m), "{host} reached the app without a login");
    }
    for (target, host) in [
        ("https://a.open.localhost/x", "wiki.localhost"),
        ("https://wiki.localhost/x", "a.open.localhost"),
        ("https://A.OPEN.LOCALHOST@wiki.localhost/x", "a.open.localhost"),
    ] {
        let (answer, m) = send(OPEN, &format!("GET {target}?{{m}} HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_refused(&answer, 400, &m);
    }
}
