//! Certificate login through a real portcullis with a certificate-login
//! listener (`[device_certificates] login_listen`): certificates issued with
//! `portcullis admin cert issue`, presented by reqwest and by a headless
//! Chromium that has the PKCS#12 bundles imported into its NSS database and
//! picks one by policy (`AutoSelectCertificateForUrls`). Every login is
//! followed through the handoff back to the app and checked at the upstream
//! (`x-portcullis-user`). One proxy serves the whole binary; every test
//! issues certificates of its own.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::certs::{cli, issue, Cert};
use common::{portcullis, Env, HASH};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use webdriver::Browser;

/// `plain` ignores certificates (`off`): a certificate login there is a
/// password replacement and the second factor follows outside. `desk` asks
/// for them (`request`), so a login there may skip the second factor.
const APPS: &str = r#"
[networks]
# Chromium connects from 127.0.0.1; reqwest from 127.0.0.2 (inside) or 127.0.0.3.
internal = ["127.0.0.1/32", "127.0.0.2/32"]

[policy_group.staff]
allow = "always"
otp_skip = "internal_ip or device_cert"
enroll_when = "always"

[policy_group.pushers]
allow = "always"
otp_skip = "never"
second_factors = ["totp", "push"]

[[app]]
name = "plain"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff", "pushers"]

[[app]]
name = "desk"
hosts = ["a.open.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
device_cert = "request"
"#;

const PLAIN: &str = "wiki.localhost";
const DESK: &str = "a.open.localhost";

struct Proxy {
    env: Env,
    login: SocketAddr,
}

fn proxy() -> &'static Proxy {
    static PROXY: OnceLock<Proxy> = OnceLock::new();
    PROXY.get_or_init(|| {
        let login: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse().unwrap();
        let section = format!("\n[device_certificates]\ncontracted = 50\nlogin_listen = \"{login}\"\n");
        // The demo upstream dies with the thread that spawned it: spawn it
        // from one that lives as long as the binary.
        let env = common::on_binary_thread(move || {
            let env = Env::new(&section, APPS);
            let users = env.dir.path().join("users.toml");
            let mut text = std::fs::read_to_string(&users).unwrap();
            for (name, group) in [("bob", "staff"), ("carol", "staff"), ("pia", "pushers")] {
                text.push_str(&format!(
                    "\n[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"{group}\"\n"
                ));
            }
            std::fs::write(&users, text).unwrap();
            env
        });
        env.start_for_binary();
        common::wait_for_port(login);
        Proxy { env, login }
    })
}

impl Proxy {
    fn app_url(&self, host: &str, path: &str) -> String {
        self.env.url(host, path)
    }

    fn login_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.login.port())
    }
}

/// A client at `from` presenting `cert` (if any), resolving both app hosts to
/// the proxy (the URL's port picks the listener), following no redirects.
fn client(p: &Proxy, from: &str, cert: Option<&Cert>, jar: Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&p.env.ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some(c) = cert {
        let mut pem = std::fs::read(&c.crt).unwrap();
        pem.extend(std::fs::read(&c.key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    for host in [PLAIN, DESK] {
        b = b.resolve(host, p.env.https);
    }
    b.build().unwrap()
}

/// Follows redirects from `url` (at most 10) and returns the last answer's
/// URL, status and body.
async fn follow(c: &reqwest::Client, url: &str) -> (String, StatusCode, String) {
    let mut url = reqwest::Url::parse(url).unwrap();
    for _ in 0..10 {
        let r = c.get(url.clone()).send().await.unwrap();
        let status = r.status();
        match r.headers().get("location").and_then(|l| l.to_str().ok()) {
            Some(location) if status.is_redirection() => url = url.join(location).unwrap(),
            _ => return (url.to_string(), status, r.text().await.unwrap()),
        }
    }
    panic!("more than 10 redirects, last {url}");
}

/// The header `name` as the upstream saw it.
fn upstream_header(body: &str, name: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_page_button_leads_to_the_listener_that_asks_for_the_certificate() {
    let p = proxy();
    let c = client(p, "127.0.0.3", None, Arc::default());
    let r = c.get(p.app_url(PLAIN, "/.portcullis/login?rd=%2Fdocs%3Fa%3D1")).send().await.unwrap();
    let page = r.text().await.unwrap();
    let href = "/.portcullis/login/cert?lang=en&amp;rd=%2Fdocs%3Fa%3D1";
    assert!(page.contains(&format!("id=\"cert-login\" class=\"button secondary\" href=\"{href}\"")), "{page}");
    assert!(page.contains("Log in with device certificate"), "{page}");

    let r = c.get(p.app_url(PLAIN, "/.portcullis/login/cert?lang=en&rd=%2Fdocs%3Fa%3D1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let rd = format!("https%3A//wiki.localhost%3A{}/docs%3Fa%3D1", p.env.https.port());
    let expected = p.login_url(PLAIN, &format!("/.portcullis/login/cert?rd={rd}"));
    assert_eq!(r.headers()["location"].to_str().unwrap(), expected);

    // The JSON API names the same place when the connection has no certificate.
    let r =
        c.post(p.app_url(PLAIN, "/.portcullis/api/login/cert")).json(&json!({"rd": "/docs?a=1"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "device_certificate_required", "{v}");
    assert_eq!(v["login_url"], expected, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_certificate_logs_its_user_in_without_a_password_and_the_login_lands_on_the_app() {
    let p = proxy();
    for (user, device) in [("alice", "alice-pc"), ("bob", "bob-pc")] {
        let cert = issue(&p.env, user, device);
        let c = client(p, "127.0.0.2", Some(&cert), Arc::default());
        let (url, status, body) = follow(&c, &p.app_url(PLAIN, "/.portcullis/login/cert?rd=%2Fdocs")).await;
        assert_eq!((url.as_str(), status), (p.app_url(PLAIN, "/docs").as_str(), StatusCode::OK), "{body}");
        assert_eq!(upstream_header(&body, "x-portcullis-user").as_deref(), Some(user), "{body}");
        // The session is the app's own now: the next request goes straight through.
        let r = c.get(p.app_url(PLAIN, "/again")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(p.env.log().contains(&format!("\"user\":\"{user}\"")), "the login is in the audit log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_an_app_that_asks_for_certificates_the_login_happens_on_the_spot() {
    let p = proxy();
    let cert = issue(&p.env, "alice", "desk-pc");
    let c = client(p, "127.0.0.3", Some(&cert), Arc::default());
    let r = c.get(p.app_url(DESK, "/.portcullis/login/cert?rd=%2Fdesk")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/desk", "no detour through the listener");
    // From outside, `device_cert` (true on every request with the certificate) skips the second factor.
    let (_, status, body) = follow(&c, &p.app_url(DESK, "/desk")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(upstream_header(&body, "x-portcullis-user").as_deref(), Some("alice"));
    assert_eq!(upstream_header(&body, "x-portcullis-auth").as_deref(), Some("first_factor"));
}

#[tokio::test(flavor = "multi_thread")]
async fn from_outside_the_second_factor_follows_on_the_listener_then_the_login_is_handed_back() {
    let p = proxy();
    let cert = issue(&p.env, "carol", "carol-pc");
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let c = client(p, "127.0.0.3", Some(&cert), jar);
    let rd = format!("https://wiki.localhost:{}/report", p.env.https.port());
    let api = |path: &str| p.login_url(PLAIN, path);
    let post = |path: String, body: Value| {
        let c = c.clone();
        async move {
            let r = c.post(path).json(&body).send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = post(api("/.portcullis/api/login/cert"), json!({"rd": rd})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("enroll_totp")), "{v}");
    let (s, v) = post(api("/.portcullis/api/totp/enroll"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    let code = common::api::code(&secret, 0);
    let (s, v) = post(api("/.portcullis/api/totp/enroll/confirm"), json!({"code": code})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    let location = v["location"].as_str().unwrap();
    assert!(location.starts_with(&p.app_url(PLAIN, "/.portcullis/session?ticket=")), "{location}");
    let (url, status, body) = follow(&c, location).await;
    assert_eq!((url, status), (p.app_url(PLAIN, "/report"), StatusCode::OK), "{body}");
    assert_eq!(upstream_header(&body, "x-portcullis-user").as_deref(), Some("carol"));
    assert_eq!(upstream_header(&body, "x-portcullis-auth").as_deref(), Some("both_factors"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_certificate_an_unusable_one_or_another_site_gets_no_login() {
    let p = proxy();
    let rd = format!("https%3A%2F%2Fwiki.localhost%3A{}%2Fx", p.env.https.port());
    let start = p.login_url(PLAIN, &format!("/.portcullis/login/cert?rd={rd}"));

    // No certificate: the handshake succeeds and the page says what is missing.
    let c = client(p, "127.0.0.2", None, Arc::default());
    let r = c.get(&start).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("sent no device certificate"));

    // Revoked: refused on the very next request of the same connection.
    let cert = issue(&p.env, "alice", "revoked-pc");
    let c = client(p, "127.0.0.2", Some(&cert), Arc::default());
    let r = c.get(&start).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "works before the revocation");
    let (code, out, err) = cli(&p.env, &["revoke", &cert.serial]);
    assert_eq!(code, 0, "{out}{err}");
    let r = c.get(&start).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("was revoked"));

    // Another site made the browser come here: no code leaves, and the app
    // host has no session (the listener's cookie is its own, though cookies
    // ignore ports).
    let cert = issue(&p.env, "alice", "cross-site-pc");
    let c = client(p, "127.0.0.2", Some(&cert), Arc::default());
    let r = c.get(&start).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"].to_str().unwrap(), p.app_url(PLAIN, "/x"));
    let set: Vec<_> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(set.iter().all(|c| !c.starts_with("__Host-portcullis-session=")), "{set:?}");
    let r = c.get(p.app_url(PLAIN, "/x")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "the app asks for a login");

    // The listener answers only under the authority the login page sends
    // browsers to: a ticket never names another place for the handoff.
    let mut pem = std::fs::read(&cert.crt).unwrap();
    pem.extend(std::fs::read(&cert.key).unwrap());
    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&p.env.ca).unwrap()).unwrap())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .resolve(PLAIN, p.env.https)
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = h1.get(&start).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the right Host, over HTTP/1.1");
    for host in [format!("evil.localhost:{}", p.login.port()), format!("{PLAIN}:9999"), PLAIN.to_string()] {
        let r = h1.get(&start).header("host", host.as_str()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "Host: {host}");
    }

    // A return target on another port or host is none.
    for bad in ["https%3A%2F%2Fwiki.localhost%3A1%2Fx", "https%3A%2F%2Fevil.example%2Fx", "%2F%2Fevil.example", ""] {
        let r = c.get(p.login_url(PLAIN, &format!("/.portcullis/login/cert?rd={bad}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "rd={bad}");
        assert!(r.headers().get("location").is_none(), "rd={bad}");
    }

    // The listener serves the certificate login and nothing else.
    for path in ["/", "/docs", "/.portcullis/login", "/.portcullis/", "/.portcullis/api/whoami"] {
        let r = c.get(p.login_url(PLAIN, path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// A Chromium managed policy file, removed again on drop (policies are
/// machine-wide: the file is named after this binary's listener port).
struct Policy(PathBuf);

impl Policy {
    fn write(p: &Proxy, value: &Value) -> Policy {
        let dir = PathBuf::from("/etc/chromium/policies/managed");
        std::fs::create_dir_all(&dir).expect("root may write Chromium's managed policies");
        let path = dir.join(format!("portcullis-test-cert-login-{}.json", p.login.port()));
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        Policy(path)
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An NSS database in `home/.pki/nssdb` (where Chromium looks) with `certs`
/// imported from their PKCS#12 bundles by `pk12util`, as a user would.
fn nss_home(certs: &[(&Cert, &str)]) -> tempfile::TempDir {
    let certutil = webdriver::require_tool("certutil", "libnss3-tools");
    let pk12util = webdriver::require_tool("pk12util", "libnss3-tools");
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db_arg = format!("sql:{}", db.display());
    let out = std::process::Command::new(certutil).args(["-N", "-d", &db_arg, "--empty-password"]).output().unwrap();
    assert!(out.status.success(), "certutil -N: {}", String::from_utf8_lossy(&out.stderr));
    for (cert, password) in certs {
        let out = std::process::Command::new(&pk12util)
            .args(["-i", common::path_str(&cert.p12), "-d", &db_arg, "-W", password])
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "pk12util -i {}: {said}", cert.p12.display());
    }
    home
}

/// Headless Chromium with both users' bundles imported: the policy picks one
/// certificate for the app and login hosts, the button is clicked, and the
/// app's upstream sees the user whose certificate was picked.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_logs_in_with_the_certificate_its_policy_picks() {
    let p = proxy();
    let alice = issue(&p.env, "alice", "alice-chromium");
    let bob = issue(&p.env, "bob", "bob-chromium");
    let home = nss_home(&[(&alice, &alice.password), (&bob, &bob.password)]);
    for (user, device) in [("alice", "alice-chromium"), ("bob", "bob-chromium")] {
        // Both listeners ask for a certificate: without a rule for each, the
        // page would wait on a picker nobody sees.
        let rule = |port: u16| {
            json!({"pattern": format!("https://{PLAIN}:{port}"), "filter": {"SUBJECT": {"CN": device}}}).to_string()
        };
        let _policy = Policy::write(
            p,
            &json!({"AutoSelectCertificateForUrls": [rule(p.env.https.port()), rule(p.login.port())]}),
        );
        let b = Browser::start_with_home("en", &format!("MAP {PLAIN} 127.0.0.1"), Some(home.path())).await;
        b.goto(&p.app_url(PLAIN, "/chromium")).await;
        b.find("#cert-login").await.click().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while b.current_url().await != p.app_url(PLAIN, "/chromium") && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let source = b.page_source().await;
        assert_eq!(b.current_url().await, p.app_url(PLAIN, "/chromium"), "{source}");
        let seen = format!("[\"x-portcullis-user\",\"{user}\"]");
        let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(compact.contains(&seen), "{user}: {source}");
    }
}

/// Device certificate + push: no password at all. pia's group asks for a
/// second factor everywhere and allows push; her approver is the
/// command-line one.
#[tokio::test(flavor = "multi_thread")]
async fn a_device_certificate_and_a_push_sign_in_without_a_password() {
    let p = proxy();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("approver.json");
    let approver = |args: &[&str]| {
        let mut all = vec!["approver", "--key", common::path_str(&key), "--ca", common::path_str(&p.env.ca)];
        all.extend_from_slice(&["--resolve", "wiki.localhost=127.0.0.1"]);
        all.extend_from_slice(args);
        portcullis(&all)
    };
    let (code, out, err) =
        portcullis(&["admin", "--config", common::path_str(&p.env.config), "approver", "link", "pia"]);
    assert_eq!(code, 0, "{out}{err}");
    let link = serde_json::from_str::<Value>(&out).unwrap()["url"].as_str().unwrap().to_string();
    let (code, out, err) = approver(&["enroll", &link, "--name", "pia's desktop"]);
    assert_eq!(code, 0, "{out}{err}");

    let cert = issue(&p.env, "pia", "pia-pc");
    let c = client(p, "127.0.0.3", Some(&cert), Arc::default());
    let post = |path: String, body: Value| {
        let c = c.clone();
        async move {
            let r = c.post(path).json(&body).send().await.unwrap();
            r.json::<Value>().await.unwrap_or(Value::Null)
        }
    };
    let rd = format!("https://wiki.localhost:{}/cp", p.env.https.port());
    let v = post(p.login_url(PLAIN, "/.portcullis/api/login/cert"), json!({"rd": rd})).await;
    assert_eq!(v["next"], "push", "{v}");
    let v = post(p.login_url(PLAIN, "/.portcullis/api/push"), json!({})).await;
    let number = v["number"].as_u64().unwrap_or_else(|| panic!("{v}")).to_string();
    let (code, out, err) = approver(&["pending"]);
    assert_eq!(code, 0, "{out}{err}");
    let id = out.split("request ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_string();
    let (code, out, err) = approver(&["decide", &id, "--number", &number]);
    assert_eq!(code, 0, "{out}{err}");
    let v = post(p.login_url(PLAIN, "/.portcullis/api/push/wait"), json!({})).await;
    assert_eq!(v["next"], "done", "{v}");
    let (url, status, body) = follow(&c, v["location"].as_str().unwrap()).await;
    assert_eq!((url, status), (p.app_url(PLAIN, "/cp"), StatusCode::OK), "{body}");
    assert_eq!(upstream_header(&body, "x-portcullis-user").as_deref(), Some("pia"));
    assert_eq!(upstream_header(&body, "x-portcullis-auth").as_deref(), Some("both_factors"));
}
