//! The proxy end to end: real portcullis, real upstream, real TLS on loopback.
//! Internal vs external clients are told apart by binding the client to
//! 127.0.0.2 (in `internal`) or 127.0.0.3 (not).

mod common;

use common::{Env, APPS};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const INTERNAL: &str = "127.0.0.2";
const EXTERNAL: &str = "127.0.0.3";

/// The headers the demo upstream received, lowercased names.
fn upstream_headers(echo: &Value) -> Vec<(String, String)> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().to_ascii_lowercase(), h[1].as_str().unwrap().to_string()))
        .collect()
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    hs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_is_forwarded_external_is_sent_to_login() {
    let env = Env::new("", APPS);
    let _p = env.start();

    let r = env.client(INTERNAL).get(env.url("wiki.localhost", "/page?x=1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let echo: Value = r.json().await.unwrap();
    let hs = upstream_headers(&echo);
    assert_eq!(echo["path"], "/page?x=1");
    assert_eq!(header(&hs, "x-forwarded-for"), vec![INTERNAL]);
    assert_eq!(header(&hs, "x-forwarded-proto"), vec!["https"]);
    assert_eq!(header(&hs, "x-forwarded-host"), vec!["wiki.localhost"]);
    assert_eq!(header(&hs, "x-portcullis-auth"), vec!["bypass"]);

    // A browser from outside is redirected to the login page with a safe return path.
    let r = env
        .client(EXTERNAL)
        .get(env.url("wiki.localhost", "/page?x=1"))
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], "/.portcullis/login?rd=/page%3Fx%3D1");

    // An API client gets 401 JSON instead.
    let r = env.client(EXTERNAL).get(env.url("wiki.localhost", "/api")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "login_required");

    // Wildcard hosts match; unknown hosts get a plain 404.
    let r = env.client(EXTERNAL).get(env.url("a.open.localhost", "/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = env.client(EXTERNAL).get(env.url("unknown.localhost", "/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().contains("\"peer\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let env = Env::new("trusted_proxies = [\"127.0.0.4/32\"]", APPS);
    let _p = env.start();

    // From an untrusted peer, a spoofed X-Forwarded-For changes nothing.
    let r = env
        .client(EXTERNAL)
        .get(env.url("wiki.localhost", "/"))
        .header("x-forwarded-for", INTERNAL)
        .header("x_forwarded_for", INTERNAL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // From the trusted proxy, the rightmost untrusted hop is the client.
    let r = env
        .client("127.0.0.4")
        .get(env.url("wiki.localhost", "/"))
        .header("x-forwarded-for", format!("203.0.113.9, {INTERNAL}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let hs = upstream_headers(&r.json().await.unwrap());
    assert_eq!(header(&hs, "x-forwarded-for"), vec![INTERNAL], "the proxy sets X-Forwarded-For itself");

    // A trusted proxy relaying an external client: challenged.
    let r = env
        .client("127.0.0.4")
        .get(env.url("wiki.localhost", "/"))
        .header("x-forwarded-for", format!("{INTERNAL}, {EXTERNAL}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let spoofed = [
        "X-Portcullis-User",
        "x-portcullis-user",
        "X_Portcullis_User",
        "x_portcullis-user",
        "X-PORTCULLIS-GROUPS",
        "x-portcullis-auth",
        "X-Portcullis-Anything",
        "X-Forwarded-Host",
        "x_forwarded_host",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "Forwarded",
        "X-Real-IP",
        "x_real_ip",
    ];
    let mut req = env.client(INTERNAL).get(env.url("wiki.localhost", "/"));
    for name in spoofed {
        req = req.header(name, "evil");
    }
    req = req.header("cookie", "__Host-portcullis-session=stolen; app=kept; portcullis_pass=x");
    req = req.header("connection", "x-drop-me").header("x-drop-me", "1").header("x-keep", "1");
    req = req.header("proxy-authorization", "Basic evil").header("keep-alive", "timeout=5");
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let hs = upstream_headers(&r.json().await.unwrap());
    for (name, value) in &hs {
        assert_ne!(value, "evil", "spoofed header {name} reached the upstream");
    }
    assert_eq!(header(&hs, "cookie"), vec!["app=kept"]);
    assert!(header(&hs, "x-drop-me").is_empty(), "a header named in Connection is hop-by-hop");
    for hop in ["proxy-authorization", "keep-alive"] {
        assert!(header(&hs, hop).is_empty(), "the hop-by-hop {hop} reached the upstream");
    }
    assert_eq!(header(&hs, "x-keep"), vec!["1"]);
    assert_eq!(header(&hs, "x-forwarded-host"), vec!["wiki.localhost"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_portal_prefix_never_reaches_the_upstream() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let c = env.client(INTERNAL);
    for path in [
        "/.portcullis/login",
        "/.portcullis/api/whoami",
        "/.portcullis/x",
        "/%2eportcullis/x",
        "//.portcullis/x",
        "/.PORTCULLIS/x",
    ] {
        let r = c.get(env.url("wiki.localhost", path)).send().await.unwrap();
        let answered_by_portal = r.headers().get("cache-control").is_some_and(|v| v == "no-store");
        let body = r.text().await.unwrap();
        assert!(!body.contains("\"peer\""), "{path} reached the upstream: {body}");
        assert!(answered_by_portal, "{path} was not answered by the portal");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_and_http_redirect() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let r = env.client(INTERNAL).get(env.url("wiki.localhost", "/h2")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::OK);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["path"], "/h2");

    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = plain.get(format!("http://{}/x?y=1", env.http)).header("host", "wiki.localhost").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()["location"], format!("https://wiki.localhost:{}/x?y=1", env.https.port()));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_config_on_reload_keeps_the_old_one() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let token = env.token();
    let ok = |s: StatusCode| assert_eq!(s, StatusCode::OK);

    // No token, no reload.
    let (status, _) = env.admin(Method::POST, "/reload", None).await;
    assert_eq!(status, 401);

    // A bad config: the reload fails, says where, and the old config keeps serving.
    env.rewrite("", &APPS.replace("127.0.0.2/32", "127.0.0.300/32"));
    let (status, body) = env.admin(Method::POST, "/reload", Some(&token)).await;
    assert_eq!(status, 422, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let errors = report["errors"].to_string();
    assert!(errors.contains("portcullis.toml:") && errors.contains("127.0.0.300"), "{errors}");
    ok(env.client(INTERNAL).get(env.url("wiki.localhost", "/")).send().await.unwrap().status());
    let (_, health) = env.admin(Method::GET, "/healthz", Some(&token)).await;
    assert!(health.contains("\"ok\":false"), "{health}");
    assert!(env.log().contains("previous config keeps serving"));

    // A good config through SIGHUP: the internal address now needs a login.
    env.rewrite("", &APPS.replace("bypass = \"internal_ip\"", "bypass = \"never\""));
    unsafe_free_kill(_p.0.id(), "HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = env.client(INTERNAL).get(env.url("wiki.localhost", "/")).send().await.unwrap().status();
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "SIGHUP reload did not take effect");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, metrics) = env.admin(Method::GET, "/metrics", Some(&token)).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("portcullis_config_reloads_total{result=\"failed\"} 1"), "{metrics}");
    assert!(metrics.contains("portcullis_config_reloads_total{result=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("portcullis_requests_total{app=\"wiki\",decision=\"forward\"}"));
}

/// Sends a signal with the `kill` command (no unsafe code in the tests).
pub fn unsafe_free_kill(pid: u32, signal: &str) {
    let s = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(s.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_completes_requests_in_flight() {
    let env = Env::new("", APPS);
    let mut p = env.start();
    let c = env.client(INTERNAL);
    let url = env.url("wiki.localhost", "/slow?ms=1500");
    let slow = tokio::spawn(async move { c.get(url).send().await });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let t0 = std::time::Instant::now();
    unsafe_free_kill(p.0.id(), "TERM");
    let r = slow.await.unwrap().expect("the in-flight request completed");
    assert_eq!(r.status(), StatusCode::OK);
    let status = tokio::task::spawn_blocking(move || p.0.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5), "drained exit took {:?}", t0.elapsed());
    assert!(std::net::TcpStream::connect(env.https).is_err(), "still accepting after shutdown");
}

/// `Strict-Transport-Security` on portcullis's own answers always, and on an
/// app's answers when the app asks for it.
#[tokio::test(flavor = "multi_thread")]
async fn hsts_on_portal_answers_and_on_apps_that_ask() {
    let apps = APPS.replace("bypass = \"always\"", "bypass = \"always\"\nhsts = true");
    let env = Env::new("", &apps);
    let _p = env.start();
    let c = env.client(EXTERNAL);
    let hsts =
        |r: &reqwest::Response| r.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string());
    let r = c.get(env.url("wiki.localhost", "/.portcullis/login")).send().await.unwrap();
    assert_eq!(hsts(&r).as_deref(), Some("max-age=31536000"), "the portal");
    let r = c.get(env.url("wiki.localhost", "/api")).send().await.unwrap();
    assert_eq!(hsts(&r).as_deref(), Some("max-age=31536000"), "a challenge is portcullis's own answer");
    let r = c.get(env.url("a.open.localhost", "/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hsts(&r).as_deref(), Some("max-age=31536000"), "an app with hsts = true");
    let r = env.client(INTERNAL).get(env.url("wiki.localhost", "/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hsts(&r), None, "an app without it keeps its own headers");
}

/// A plain HTTP/1.1 upstream on loopback answering `ok` to each request.
/// With `close_after_one` it closes every connection right after its first
/// response, as an upstream's idle timeout does, without `Connection: close`.
/// Returns its address and the number of connections it accepted.
fn counting_upstream(close_after_one: bool) -> (String, Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                loop {
                    let end = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    buf.drain(..end);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";
                    if conn.write_all(answer).is_err() || close_after_one {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_reused_and_a_closed_one_is_never_sent_a_request() {
    let (keeps, kept) = counting_upstream(false);
    let (closes, closed) = counting_upstream(true);
    // APPS: `wiki` first, then `open`.
    let apps = APPS.replacen("{upstream}", &keeps, 1).replacen("{upstream}", &closes, 1);
    let env = Env::new("", &apps);
    let _p = env.start();
    let c = env.client(INTERNAL);

    for _ in 0..6 {
        let r = c.get(env.url("wiki.localhost", "/")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), "ok");
    }
    let n = kept.load(Ordering::SeqCst);
    assert!(n <= 2, "{n} upstream connections for 6 requests in a row (2 worker threads)");

    // Each connection is closed by the upstream after one answer; the next
    // request must find that out before it is sent, not by failing on it.
    for _ in 0..4 {
        let r = c.get(env.url("a.open.localhost", "/")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), "ok");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 4);
    let log = env.log();
    assert!(!log.contains("Fail to proxy"), "a request met a closed upstream connection:\n{log}");
}
