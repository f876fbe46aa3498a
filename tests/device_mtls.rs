//! Device certificates in the TLS handshake (mTLS) through a real portcullis:
//! certificates issued with `portcullis admin cert issue`, presented by real
//! TLS clients (reqwest, curl, a plain rustls connection kept alive), and the
//! `device_cert` condition observed from outside (`bypass = "device_cert"`
//! forwards with `x-portcullis-auth: bypass`; `require` answers 403). One
//! proxy serves every test of this binary but the two-instance one; every
//! test issues certificates of its own.

mod common;

use common::certs::{cli, issue, Cert};
use common::{portcullis, Env, HASH, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// `open` lets a device certificate in without a login (`request`), `wiki`
/// requires one, `plain` ignores certificates (`off`) though its bypass names one.
const APPS: &str = r#"
[policy_group.staff]
allow = "device_cert"
otp_skip = "always"

[[app]]
name = "open"
hosts = ["*.open.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
bypass = "device_cert"
device_cert = "request"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
device_cert = "require"

[[app]]
name = "plain"
hosts = ["localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
bypass = "device_cert"
"#;

const OPEN: &str = "a.open.localhost";
const SECTION: &str = "\n[device_certificates]\ncontracted = 50\nvalidity = \"30d\"\n";

/// An Env with users alice and bob (both `staff`).
fn env_with_bob(server_extra: &str) -> Env {
    let env = Env::new(server_extra, APPS);
    let users = env.dir.path().join("users.toml");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(&format!("\n[[user]]\nusername = \"bob\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n"));
    std::fs::write(&users, text).unwrap();
    env
}

fn proxy() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        // The demo upstream dies with the thread that spawned it: spawn it
        // from one that lives as long as the binary.
        let env = common::on_binary_thread(|| env_with_bob(SECTION));
        env.start_for_binary();
        env
    })
}

fn admin_ok(env: &Env, args: &[&str]) {
    let (code, out, err) = cli(env, args);
    assert_eq!(code, 0, "cert {args:?}: {out}{err}");
}

/// A reqwest client from 127.0.0.1 presenting `cert` (if any), with its own cookie jar unless given one.
fn client(env: &Env, cert: Option<&Cert>, jar: Option<Arc<reqwest::cookie::Jar>>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .cookie_provider(jar.unwrap_or_default())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some(c) = cert {
        let mut pem = std::fs::read(&c.crt).unwrap();
        pem.extend(std::fs::read(&c.key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    for host in ["wiki.localhost", OPEN, "localhost"] {
        b = b.resolve(host, env.https);
    }
    b.build().unwrap()
}

/// Status and the `x-portcullis-auth` the upstream saw (None when not forwarded), plus the body.
async fn get(c: &reqwest::Client, env: &Env, host: &str) -> (StatusCode, Option<String>, String) {
    let r = c.get(env.url(host, "/")).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    (status, auth_header(&body), body)
}

fn auth_header(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case("x-portcullis-auth")))
        .and_then(|h| h[1].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_certificate_counts_with_reqwest_and_curl_and_none_is_challenged() {
    let env = proxy();
    let cert = issue(env, "alice", "laptop");

    let (s, auth, body) = get(&client(env, Some(&cert), None), env, OPEN).await;
    assert_eq!((s, auth.as_deref()), (StatusCode::OK, Some("bypass")), "{body}");

    let url = env.url(OPEN, "/");
    let resolve = format!("{OPEN}:{}:127.0.0.1", env.https.port());
    let out = std::process::Command::new("curl")
        .args(["-sS", "--resolve", &resolve, "--cacert", common::path_str(&env.ca)])
        .args(["--cert", common::path_str(&cert.crt), "--key", common::path_str(&cert.key), &url])
        .output()
        .expect("curl is needed for this test");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{body}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(auth_header(&body).as_deref(), Some("bypass"), "{body}");

    // No certificate: the handshake succeeds (certificates are requested, not
    // required, by TLS) and the app challenges as without device certificates.
    let (s, auth, body) = get(&client(env, None, None), env, OPEN).await;
    assert_eq!((s, auth), (StatusCode::UNAUTHORIZED, None), "{body}");
    assert!(body.contains("login_required"), "{body}");

    // An app with device_cert = "off" does not look at the certificate.
    let (s, auth, body) = get(&client(env, Some(&cert), None), env, "localhost").await;
    assert_eq!((s, auth), (StatusCode::UNAUTHORIZED, None), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_of_the_device_ca_that_is_not_registered_does_not_count() {
    let env = proxy();
    // Signed by the very device CA, naming alice, but never registered.
    let state = env.dir.path().join("state");
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(state.join("device-ca.key")).unwrap()).unwrap();
    let ca_params =
        rcgen::CertificateParams::from_ca_cert_pem(&std::fs::read_to_string(state.join("device-ca.crt")).unwrap())
            .unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let forged = leaf(&dir, "forged", &ca, &ca_key);
    let (s, auth, body) = get(&client(env, Some(&forged), None), env, OPEN).await;
    assert_eq!((s, auth), (StatusCode::UNAUTHORIZED, None), "{body}");
}

/// A client certificate naming alice, signed by `ca`, written to `dir`.
fn leaf(dir: &tempfile::TempDir, name: &str, ca: &rcgen::Certificate, ca_key: &rcgen::KeyPair) -> Cert {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, "alice laptop");
    p.subject_alt_names = vec![rcgen::SanType::URI("portcullis:user:alice".try_into().unwrap())];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, ca, ca_key).unwrap();
    let (crt, k) = (dir.path().join(format!("{name}.crt")), dir.path().join(format!("{name}.key")));
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    Cert::pem_only(crt, k)
}

/// A CA of its own (not the device CA) and a certificate it signs.
fn foreign_cert(dir: &tempfile::TempDir) -> Cert {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, "portcullis device CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca = p.self_signed(&ca_key).unwrap();
    leaf(dir, "foreign", &ca, &ca_key)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_of_another_ca_is_refused_in_the_handshake_with_unknown_ca() {
    let env = proxy();
    let dir = tempfile::tempdir().unwrap();
    let foreign = foreign_cert(&dir);

    // rustls as the client: the server's alert is `unknown_ca`.
    let mut conn = KeepAlive::open(env, Some(&foreign));
    let err = conn.try_request(OPEN, "/").expect_err("a foreign certificate was accepted");
    assert!(err.contains("UnknownCA"), "{err}");

    // reqwest: no answer at all.
    let r = client(env, Some(&foreign), None).get(env.url(OPEN, "/")).send().await;
    assert!(r.is_err(), "{r:?}");

    // curl (OpenSSL). TLS 1.2: the alert ends the handshake itself, curl
    // exits 35 with "tlsv1 alert unknown ca". TLS 1.3: the client sends its
    // certificate after the server's Finished, so the alert arrives as the
    // answer to the request: curl 7.88 reports only a broken connection.
    let resolve = format!("{OPEN}:{}:127.0.0.1", env.https.port());
    let curl = |version: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--resolve", &resolve, "--cacert", common::path_str(&env.ca)])
            .args(["--cert", common::path_str(&foreign.crt), "--key", common::path_str(&foreign.key)])
            .args(version)
            .arg(env.url(OPEN, "/"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, body, err) = curl(&["--tls-max", "1.2"]);
    assert_eq!(code, Some(35), "{body}{err}");
    assert!(err.contains("tlsv1 alert unknown ca"), "{err}");
    let (code, body, err) = curl(&["--tlsv1.3"]);
    assert!(code != Some(0) && body.is_empty(), "{code:?} {body}{err}");
}

/// One TLS connection (std rustls), requests sent on it one after another:
/// every answer provably comes over the same connection.
struct KeepAlive {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl KeepAlive {
    fn open(env: &Env, cert: Option<&Cert>) -> KeepAlive {
        KeepAlive::connect(env, Self::config(env, cert))
    }

    fn config(env: &Env, cert: Option<&Cert>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in portcullis::tls::read_cert_chain(&env.ca).unwrap() {
            roots.add(c).unwrap();
        }
        let b = rustls::ClientConfig::builder().with_root_certificates(roots);
        let mut config = match cert {
            None => b.with_no_client_auth(),
            Some(c) => {
                let chain = portcullis::tls::read_cert_chain(&c.crt).unwrap();
                let pem = std::fs::read(&c.key).unwrap();
                let key = rustls_pemfile::private_key(&mut pem.as_slice()).unwrap().unwrap();
                b.with_client_auth_cert(chain, key).unwrap()
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A connection with `config` (which keeps session tickets: a second one resumes).
    fn connect(env: &Env, config: Arc<rustls::ClientConfig>) -> KeepAlive {
        let name = rustls::pki_types::ServerName::try_from(OPEN).unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(env.https).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeepAlive { tls: rustls::StreamOwned::new(conn, tcp) }
    }

    /// Sends one request and reads its answer (Content-Length framed): (status, auth header).
    fn try_request(&mut self, host: &str, path: &str) -> Result<(u16, Option<String>), String> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        self.tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match self.tls.read(&mut byte) {
                Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&head))),
                Ok(_) => head.push(byte[0]),
                Err(e) => return Err(e.to_string()),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or(head.clone())?;
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .ok_or_else(|| format!("no content-length: {head}"))?;
        let mut body = vec![0u8; length];
        self.tls.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok((status, auth_header(&String::from_utf8_lossy(&body))))
    }

    fn request(&mut self) -> (u16, Option<String>) {
        self.try_request(OPEN, "/").unwrap()
    }
}

#[test]
fn revoke_and_expire_reach_an_open_keep_alive_connection_and_set_expiring_keeps_it_working() {
    let env = proxy();
    let bypass = (200, Some("bypass".to_string()));
    let challenged = (401, None);

    let phone = issue(env, "alice", "phone");
    let mut conn = KeepAlive::open(env, Some(&phone));
    assert_eq!(conn.request(), bypass);
    admin_ok(env, &["revoke", &phone.serial]);
    assert_eq!(conn.request(), challenged, "the very next request on the same connection");

    let tablet = issue(env, "alice", "tablet");
    let mut conn = KeepAlive::open(env, Some(&tablet));
    assert_eq!(conn.request(), bypass);
    admin_ok(env, &["set-expiring", &tablet.serial]);
    assert_eq!(conn.request(), bypass, "an expiring certificate still works");
    admin_ok(env, &["expire", &tablet.serial]);
    assert_eq!(conn.request(), challenged, "expired: the next request on the same connection");
    // And a new connection with it is no better.
    assert_eq!(KeepAlive::open(env, Some(&tablet)).request(), challenged);
}

#[tokio::test(flavor = "multi_thread")]
async fn require_answers_403_without_a_certificate_and_another_users_certificate_does_not_count() {
    let env = proxy();
    let (s, _, body) = get(&client(env, None, None), env, "wiki.localhost").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("Device certificate needed") && body.contains("needs a device certificate"), "{body}");
    assert!(env.log().contains("\"rule\":\"app.wiki.device_cert (require)\""), "the audit log names the rule");

    let alice = issue(env, "alice", "desktop");
    let bob = issue(env, "bob", "desktop");
    // Without a session, alice's certificate lets the login page through; alice signs in with it.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let as_alice = client(env, Some(&alice), Some(jar.clone()));
    let (s, auth, body) = get(&as_alice, env, "wiki.localhost").await;
    assert_eq!((s, auth), (StatusCode::UNAUTHORIZED, None), "{body}");
    let r = as_alice
        .post(env.url("wiki.localhost", "/.portcullis/api/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (s, v): (_, Value) = (r.status(), r.json().await.unwrap());
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    let (s, auth, body) = get(&as_alice, env, "wiki.localhost").await;
    assert_eq!((s, auth.as_deref()), (StatusCode::OK, Some("first_factor")), "{body}");

    // The same browser (alice's session cookie) presenting bob's certificate.
    let (s, auth, body) = get(&client(env, Some(&bob), Some(jar.clone())), env, "wiki.localhost").await;
    assert_eq!((s, auth), (StatusCode::FORBIDDEN, None), "{body}");
    assert!(body.contains("Device certificate needed"), "{body}");
    // Without the session, bob's own certificate counts for bob.
    let (s, auth, body) = get(&client(env, Some(&bob), None), env, OPEN).await;
    assert_eq!((s, auth.as_deref()), (StatusCode::OK, Some("bypass")), "{body}");
}

#[test]
fn a_certificate_revoked_through_one_instance_is_refused_by_the_other_on_its_next_request() {
    let redis = common::redis_server::RedisServer::start();
    let extra = format!("store = \"{}\"\n{SECTION}", redis.url());
    let (a, b) = (env_with_bob(&extra), env_with_bob(&extra));
    let _pa = a.start();
    copy_shared_state(&a, &b);
    let _pb = b.start();

    let cert = issue(&a, "alice", "laptop");
    let mut on_b = KeepAlive::open(&b, Some(&cert));
    // B learned of the new certificate from the change feed (an instant after A wrote it).
    wait_until(|| on_b.request() == (200, Some("bypass".into())));
    admin_ok(&a, &["revoke", &cert.serial]);
    // Redis pub/sub takes a moment longer than the CLI's exit; no poll: one request.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(on_b.request(), (401, None), "B's next request on the same connection");
}

/// The cluster's shared files: the cookie secrets and the device CA.
fn copy_shared_state(from: &Env, to: &Env) {
    let state = to.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    for f in ["secrets.key", "device-ca.crt", "device-ca.key"] {
        std::fs::copy(from.dir.path().join("state").join(f), state.join(f)).unwrap();
    }
}

fn wait_until(mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn request_or_require_without_a_device_ca_is_a_config_error() {
    let env = Env::new("", &APPS.replace("bypass = \"device_cert\"\n", ""));
    let (code, _, err) = portcullis(&["check", "--config", common::path_str(&env.config)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("app `open`: device_cert `request` needs a [device_certificates] section"), "{err}");
    assert!(err.contains("app `wiki`: device_cert `require` needs a [device_certificates] section"), "{err}");
}

#[test]
fn a_reload_that_drops_the_device_ca_says_it_takes_a_restart() {
    let env = Env::new(SECTION, common::LOGIN_APPS);
    let _p = env.start();
    env.rewrite("", common::LOGIN_APPS);
    let (code, out, err) = portcullis(&["admin", "--config", common::path_str(&env.config), "reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let said = "[device_certificates] and its CA take effect in the TLS handshake at the next restart";
    assert!(out.contains(said) || env.log().contains(said), "{out}{err}\n{}", env.log());
}

/// What `openssl s_client` reports of the server's CertificateRequest.
fn s_client(env: &Env) -> String {
    let mut child = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &env.https.to_string(), "-servername", OPEN, "-tls1_2"])
        .args(["-CAfile", common::path_str(&env.ca)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is needed for this test");
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_certificate_request_names_the_device_ca_and_is_absent_without_one() {
    let out = s_client(proxy());
    let names = out.split("Acceptable client certificate CA names").nth(1).unwrap_or_else(|| panic!("{out}"));
    assert!(names.lines().nth(1).is_some_and(|l| l.contains("CN = portcullis device CA")), "{out}");

    let without = Env::new("", common::LOGIN_APPS);
    let _p = without.start();
    let out = s_client(&without);
    assert!(out.contains("No client certificate CA names sent"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_certificate_past_its_own_end_fails_the_handshake_with_certificate_expired() {
    let env = proxy();
    let dir = tempfile::tempdir().unwrap();
    let old = outdated_cert(env, &dir);
    let err =
        KeepAlive::open(env, Some(&old)).try_request(OPEN, "/").expect_err("an outdated certificate was accepted");
    assert!(err.contains("CertificateExpired"), "{err}");
}

/// `portcullis decide --cert` on this binary's proxy: (exit code, JSON or stderr).
fn decide_cert(env: &Env, host: &str, cert: &std::path::Path, user: Option<&str>) -> (i32, Value, String) {
    let mut args = vec!["decide", "--config", common::path_str(&env.config), "--host", host, "--ip", "198.51.100.7"];
    args.extend(["--cert", common::path_str(cert)]);
    if let Some(u) = user {
        args.extend(["--user", u]);
    }
    let (code, out, err) = portcullis(&args);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

#[test]
fn decide_with_a_certificate_says_whether_it_counts_and_why() {
    let env = proxy();
    let alice = issue(env, "alice", "workstation");
    let (code, v, err) = decide_cert(env, OPEN, &alice.crt, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!((v["action"].as_str(), v["bypass"].as_bool()), (Some("forward"), Some(true)), "{v}");
    assert_eq!(v["device_cert"]["counts"], true, "{v}");
    assert_eq!(v["device_cert"]["serial"].as_str(), Some(alice.serial.as_str()), "{v}");
    assert_eq!(v["device_cert"]["why"], "registered, active, user `alice`", "{v}");

    let (_, v, _) = decide_cert(env, OPEN, &alice.crt, Some("bob"));
    assert_eq!(v["device_cert"]["why"], "it is `alice`'s certificate, the session is `bob`'s", "{v}");
    let (_, v, _) = decide_cert(env, "localhost", &alice.crt, None);
    assert_eq!(v["device_cert"]["why"], "app `plain` has device_cert = \"off\": certificates are not looked at");

    admin_ok(env, &["revoke", &alice.serial]);
    let (_, v, _) = decide_cert(env, "wiki.localhost", &alice.crt, None);
    assert_eq!((v["device_cert"]["counts"].as_bool(), v["action"].as_str()), (Some(false), Some("deny")), "{v}");
    assert_eq!(v["device_cert"]["why"], "its registry status is revoked", "{v}");

    let dir = tempfile::tempdir().unwrap();
    let foreign = foreign_cert(&dir);
    let (_, v, _) = decide_cert(env, OPEN, &foreign.crt, None);
    let why = v["device_cert"]["why"].as_str().unwrap_or_default();
    assert!(why.starts_with("the TLS handshake refuses it") && why.contains("UnknownIssuer"), "{v}");

    let (_, v, _) = decide_cert(env, OPEN, &outdated_cert(env, &dir).crt, None);
    let why = v["device_cert"]["why"].as_str().unwrap_or_default();
    assert!(why.starts_with("the TLS handshake refuses it") && why.contains("xpired"), "{v}");

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (code, _, err) = decide_cert(env, OPEN, &junk, None);
    assert_eq!(code, 2);
    assert!(err.contains("holds no PEM certificate"), "{err}");
}

/// A certificate of the device CA naming alice, valid only in 2020.
fn outdated_cert(env: &Env, dir: &tempfile::TempDir) -> Cert {
    let state = env.dir.path().join("state");
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(state.join("device-ca.key")).unwrap()).unwrap();
    let ca_params =
        rcgen::CertificateParams::from_ca_cert_pem(&std::fs::read_to_string(state.join("device-ca.crt")).unwrap())
            .unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.subject_alt_names = vec![rcgen::SanType::URI("portcullis:user:alice".try_into().unwrap())];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    let (crt, k) = (dir.path().join("old.crt"), dir.path().join("old.key"));
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    Cert::pem_only(crt, k)
}

#[test]
fn a_resumed_tls_session_still_carries_the_certificate_and_its_revocation() {
    let env = proxy();
    let cert = issue(env, "alice", "resumer");
    let config = KeepAlive::config(env, Some(&cert));
    let mut first = KeepAlive::connect(env, config.clone());
    assert_eq!(first.request(), (200, Some("bypass".into())));
    assert_eq!(first.tls.conn.handshake_kind(), Some(rustls::HandshakeKind::Full));
    let mut resumed = KeepAlive::connect(env, config.clone());
    assert_eq!(resumed.request(), (200, Some("bypass".into())), "the resumed session keeps the certificate");
    assert_eq!(resumed.tls.conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
    admin_ok(env, &["revoke", &cert.serial]);
    let mut again = KeepAlive::connect(env, config);
    assert_eq!(again.request(), (401, None), "a resumption does not skip the registry");
    assert_eq!(again.tls.conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
}

#[test]
fn an_off_app_whose_conditions_name_device_cert_gets_a_warning() {
    let (code, out, err) = portcullis(&["check", "--config", common::path_str(&proxy().config)]);
    assert_eq!(code, 0, "{out}{err}");
    let warning = "warning: app `plain` has device_cert = \"off\": device_cert is always false there, in bypass, \
                   policy_group.staff.allow (set device_cert = \"request\" to use it)";
    assert!(err.contains(warning), "{err}");
    assert!(!err.contains("app `open` has") && !err.contains("app `wiki` has"), "{err}");
}
