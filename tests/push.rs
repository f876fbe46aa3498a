//! Push approval through a real portcullis: approver devices enrolled with
//! the single-use link (the command-line approver, a test device signing
//! with its own P-256 key, and headless Chromium running the approver web
//! app), logins waiting on the push page, and the abuse limits. One proxy
//! serves the binary; each test uses users of its own.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{Env, HASH, PASSWORD};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[push]
ttl = "15s"
max_outstanding = 3
window = "5m"
block_after_deny = "10m"
webhook = "http://{hook}/hook"

[policy_group.staff]
allow = "always"
otp_skip = "never"
enroll_when = "always"
second_factors = ["totp", "push"]

[policy_group.plain]
allow = "always"
otp_skip = "never"
enroll_when = "always"
second_factors = ["totp", "push"]
push_number_matching = false

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff", "plain"]
"#;

const WIKI: &str = "wiki.localhost";
const USERS: &[(&str, &str)] = &[
    ("alice", "staff"),
    ("bob", "staff"),
    ("carol", "plain"),
    ("dave", "staff"),
    ("erin", "staff"),
    ("frank", "staff"),
    ("gina", "staff"),
    ("hank", "staff"),
    ("ivy", "staff"),
];

struct Proxy {
    env: Env,
    /// Bodies the webhook received.
    hooks: Arc<Mutex<Vec<String>>>,
}

/// A plain-HTTP receiver for the webhook: keeps each request's body.
fn hook_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            keep.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            let _ = reader.get_mut().write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (addr, seen)
}

fn proxy() -> &'static Proxy {
    static PROXY: OnceLock<Proxy> = OnceLock::new();
    PROXY.get_or_init(|| {
        let (hook, hooks) = hook_receiver();
        let env = common::on_binary_thread(move || {
            let env = Env::new("", &APPS.replace("{hook}", &hook));
            let users = env.dir.path().join("users.toml");
            let mut text = String::new();
            for (name, group) in USERS {
                text.push_str(&format!(
                    "[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"{group}\"\n\n"
                ));
            }
            std::fs::write(&users, text).unwrap();
            env
        });
        env.start_for_binary();
        Proxy { env, hooks }
    })
}

fn admin(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["admin", "--config", common::path_str(&env.config), "approver"];
    all.extend_from_slice(args);
    common::portcullis(&all)
}

/// A single-use enrollment link for `user`, as `admin approver link` prints it.
fn link(env: &Env, user: &str) -> String {
    let (code, out, err) = admin(env, &["link", user]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["url"].as_str().unwrap().to_string()
}

/// A browser-like client (its own cookie jar) from outside.
fn browser(env: &Env) -> Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca).unwrap()).unwrap();
    Client::builder()
        .add_root_certificate(ca)
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(WIKI, env.https)
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

async fn post(c: &Client, env: &Env, path: &str, body: Value) -> (StatusCode, Value) {
    let r = c.post(env.url(WIKI, path)).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A password login that ends on the push step; returns the number shown.
async fn login_to_push(c: &Client, env: &Env, user: &str) -> u64 {
    let (_, v) = post(c, env, "/.portcullis/api/login", json!({"username": user, "password": PASSWORD})).await;
    assert_eq!(v["next"], "push", "{v}");
    let (s, v) = post(c, env, "/.portcullis/api/push", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["number"].as_u64().unwrap()
}

/// An approver device in the test: its own key, enrolled with a link.
struct Device {
    id: String,
    key: p256::ecdsa::SigningKey,
    http: Client,
}

impl Device {
    async fn enroll(env: &Env, user: &str) -> Device {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let link = link(env, user);
        let code = link.split("#enroll=").nth(1).unwrap().to_string();
        let http = browser(env);
        let body = json!({"code": code, "name": format!("{user}'s test phone"), "public_key": URL_SAFE_NO_PAD.encode(spki.as_bytes())});
        let (s, v) = post(&http, env, "/.portcullis/api/approver/enroll", body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["user"], user);
        assert_eq!(v["vapid_public_key"].as_str().map(str::len), Some(87), "{v}");
        Device { id: v["device"].as_str().unwrap().to_string(), key, http }
    }

    fn sign(&self, m: &str) -> String {
        let sig: p256::ecdsa::Signature = self.key.sign(m.as_bytes());
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    }

    async fn pending(&self, env: &Env) -> Vec<Value> {
        let ts = common::api::now().to_string();
        let sig = self.sign(&format!("portcullis-approver|pending|{}|{ts}", self.id));
        let url = env.url(WIKI, &format!("/.portcullis/api/approver/pending?device={}&ts={ts}&sig={sig}", self.id));
        let v: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        v["requests"].as_array().cloned().unwrap_or_else(|| panic!("{v}"))
    }

    /// Answers with this device's key (or `signer`'s, to forge).
    async fn decide_as(
        &self,
        signer: &Device,
        env: &Env,
        request: &str,
        number: &str,
        decision: &str,
    ) -> (StatusCode, Value) {
        let sig = signer.sign(&format!("portcullis-approver|decide|{}|{request}|{number}|{decision}", self.id));
        let body = json!({"device": self.id, "request": request, "number": number, "decision": decision, "sig": sig});
        post(&self.http, env, "/.portcullis/api/approver/decide", body).await
    }

    async fn decide(&self, env: &Env, request: &str, number: &str, decision: &str) -> (StatusCode, Value) {
        self.decide_as(self, env, request, number, decision).await
    }
}

/// The one pending request of a device's user.
async fn the_request(d: &Device, env: &Env) -> Value {
    let list = d.pending(env).await;
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_push_signs_the_browser_in_and_everything_else_is_refused() {
    let p = proxy();
    let env = &p.env;
    let phone = Device::enroll(env, "alice").await;
    let c = browser(env);
    let number = login_to_push(&c, env, "alice").await;
    let r = the_request(&phone, env).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["app"], "wiki");
    assert_eq!(r["from"], "127.0.0.3");
    let choices: Vec<u64> = r["choices"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    assert!(choices.contains(&number) && choices.len() == 3, "{choices:?} {number}");
    assert!(p.hooks.lock().unwrap().iter().any(|h| h.contains("\"user\":\"alice\"")), "the webhook was told");

    // A device of another user, or alice's device with another key: refused.
    let bobs = Device::enroll(env, "bob").await;
    let (s, v) = bobs.decide(env, &id, &number.to_string(), "approve").await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("other_user")), "{v}");
    let (s, v) = phone.decide_as(&bobs, env, &id, &number.to_string(), "approve").await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("bad_signature")), "{v}");

    // The browser waits (long poll) and goes on as soon as the phone approves.
    let waiting = {
        let (c, url) = (c.clone(), env.url(WIKI, "/.portcullis/api/push/wait"));
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let v: Value = c.post(url).json(&json!({})).send().await.unwrap().json().await.unwrap();
            (v, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let approved_at = std::time::Instant::now();
    let (s, v) = phone.decide(env, &id, &number.to_string(), "approve").await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("approved")), "{v}");
    let (v, _) = waiting.await.unwrap();
    assert!(approved_at.elapsed() < Duration::from_secs(1), "woken within a second: {:?}", approved_at.elapsed());
    assert_eq!(v["next"], "done", "{v}");
    let r = c.get(env.url(WIKI, "/app")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "signed in with both factors");

    // Replayed: the request was answered.
    let (s, v) = phone.decide(env, &id, &number.to_string(), "approve").await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("gone")), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_blocks_further_pushes_and_a_wrong_number_voids_the_request() {
    let p = proxy();
    let env = &p.env;
    // A wrong number: refused, the request is void, the browser is told.
    let phone = Device::enroll(env, "dave").await;
    let c = browser(env);
    let number = login_to_push(&c, env, "dave").await;
    let id = the_request(&phone, env).await["id"].as_str().unwrap().to_string();
    let wrong = if number == 10 { 11 } else { number - 1 };
    let (s, v) = phone.decide(env, &id, &wrong.to_string(), "approve").await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_number")), "{v}");
    let (_, v) = post(&c, env, "/.portcullis/api/push/wait", json!({})).await;
    assert_eq!(v["next"], "wrong_number", "{v}");
    let (s, _) = phone.decide(env, &id, &number.to_string(), "approve").await;
    assert_eq!(s, StatusCode::CONFLICT, "void means void, even with the right number");

    // Deny: the browser shows a clear refusal, and no push goes out for a while.
    let c = browser(env);
    let phone = Device::enroll(env, "erin").await;
    login_to_push(&c, env, "erin").await;
    let id = the_request(&phone, env).await["id"].as_str().unwrap().to_string();
    let (s, v) = phone.decide(env, &id, "", "deny").await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("denied")), "{v}");
    let (_, v) = post(&c, env, "/.portcullis/api/push/wait", json!({})).await;
    assert_eq!(v["next"], "denied", "{v}");
    assert_eq!(v["message"], "The sign-in was refused on your device.");
    let c = browser(env);
    let (_, v) = post(&c, env, "/.portcullis/api/login", json!({"username": "erin", "password": PASSWORD})).await;
    assert_eq!(v["next"], "push", "{v}");
    let (s, v) = post(&c, env, "/.portcullis/api/push", json!({})).await;
    assert_eq!((s, v["reason"].as_str()), (StatusCode::CONFLICT, Some("blocked")), "{v}");
    assert!(v["retry_at"].as_u64().is_some(), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_are_limited_per_user_and_expire() {
    let p = proxy();
    let env = &p.env;
    let _phone = Device::enroll(env, "frank").await;
    let c = browser(env);
    login_to_push(&c, env, "frank").await;
    // More logins, each with its push: the fourth request of the window is refused.
    let bombing = {
        let mut refused = None;
        for _ in 0..5 {
            let c = browser(env);
            let (_, v) =
                post(&c, env, "/.portcullis/api/login", json!({"username": "frank", "password": PASSWORD})).await;
            if v["next"] != "push" {
                break;
            }
            let (s, v) = post(&c, env, "/.portcullis/api/push", json!({})).await;
            if s == StatusCode::CONFLICT {
                refused = Some(v);
                break;
            }
        }
        refused
    };
    let v = bombing.expect("the push-bombing limit holds");
    assert_eq!(v["reason"], "too_many", "{v}");

    // Expiry: an unanswered request ends; an answer after it is refused; the
    // browser may send a new one or use its authenticator instead.
    let phone = Device::enroll(env, "gina").await;
    let c = browser(env);
    login_to_push(&c, env, "gina").await;
    let id = the_request(&phone, env).await["id"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    for _ in 0..3 {
        let (_, v) = post(&c, env, "/.portcullis/api/push/wait", json!({})).await;
        last = v;
        if last["next"] != "push_wait" {
            break;
        }
    }
    assert_eq!(last["next"], "expired", "{last}");
    let (s, _) = phone.decide(env, &id, "", "approve").await;
    assert_eq!(s, StatusCode::CONFLICT, "too late");
    let (s, v) = post(&c, env, "/.portcullis/api/push", json!({})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("push_wait")), "a new request: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_approver_enrolls_lists_and_approves() {
    let p = proxy();
    let env = &p.env;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("approver.json");
    let cli = |args: &[&str]| {
        let mut all = vec![
            "approver",
            "--key",
            common::path_str(&key),
            "--ca",
            common::path_str(&env.ca),
            "--resolve",
            "wiki.localhost=127.0.0.1",
        ];
        all.extend_from_slice(args);
        common::portcullis(&all)
    };
    let url = link(env, "carol");
    let (code, out, err) = cli(&["enroll", &url, "--name", "carol's desktop"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("for user `carol`"), "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let c = browser(env);
    login_to_push(&c, env, "carol").await;
    let (code, out, err) = cli(&["pending"]);
    assert_eq!(code, 0, "{out}{err}");
    let id = out.split("request ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_string();
    assert!(!out.contains("pick one of"), "carol's group turned number matching off: {out}");
    let (code, out, err) = cli(&["decide", &id, "--approve"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("approved"), "{out}");
    let (_, v) = post(&c, env, "/.portcullis/api/push/wait", json!({})).await;
    assert_eq!(v["next"], "done", "{v}");

    let (code, out, err) = admin(env, &["list", "carol"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let device = v["devices"][0]["device"].as_str().unwrap().to_string();
    assert_eq!(v["devices"][0]["name"], "carol's desktop");
    let (code, out, err) = admin(env, &["remove", "carol", &device]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = cli(&["pending"]);
    assert_ne!(code, 0);
    assert!(err.contains("not (or no longer) enrolled"), "{err}");
}

/// Two headless Chromiums: A signs in with a password and waits on the push
/// page; B, a phone-sized window, opens the enrollment link (the QR code's
/// target), becomes alice's approver, and picks the number A shows; A lands
/// on the app. Screenshots: `target/screenshots/push-*.png`.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_waits_on_the_push_page_and_chromium_approves_it() {
    let p = proxy();
    let env = &p.env;
    let rules = format!("MAP {WIKI} 127.0.0.1");
    let shots = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // B: the approver app, enrolled with the link.
    let b = webdriver::Browser::start_phone("en", &rules).await;
    let link = link(env, "bob");
    b.goto(&link).await;
    b.find("#device-name").await.send_keys(" (test)").await;
    b.find("#enroll-button").await.click().await;
    // The app shows it once the enrollment answered (the element may be there, hidden, before).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let enrolled = b.find("#enrolled").await.text().await;
        if enrolled.contains("bob") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{enrolled}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A: password, then the push page with its number.
    let a = webdriver::Browser::start_phone("en", &rules).await;
    a.goto(&env.url(WIKI, "/chromium-push")).await;
    a.find("input#username").await.send_keys("bob").await;
    a.find("input#password").await.send_keys(PASSWORD).await;
    a.find("button[type=submit]").await.click().await;
    let number = a.find("#push-number").await.text().await;
    assert_eq!(number.len(), 2, "{number}");
    a.screenshot(&shots.join("push-wait.png")).await;

    // B picks A's number.
    let choice = b.find(&format!(".request .choice[data-number='{number}']")).await;
    b.screenshot(&shots.join("push-approver.png")).await;
    choice.click().await;
    let result = b.find(".request .result").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !result.text().await.contains("Approved") {
        assert!(std::time::Instant::now() < deadline, "{}", b.page_source().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A goes on by itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !a.current_url().await.ends_with("/chromium-push") {
        assert!(std::time::Instant::now() < deadline, "A never left the push page: {}", a.page_source().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let source = a.page_source().await;
    assert!(source.contains("x-portcullis-user"), "{source}");
}

/// An approval answers one request of one login: a browser that started a
/// push as hank and then typed ivy's password is not signed in as ivy by
/// hank approving his own request.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_never_finishes_another_users_login() {
    let p = proxy();
    let env = &p.env;
    let hanks = Device::enroll(env, "hank").await;
    let _ivys = Device::enroll(env, "ivy").await;
    let c = browser(env);
    let number = login_to_push(&c, env, "hank").await;
    let id = the_request(&hanks, env).await["id"].as_str().unwrap().to_string();
    let (_, v) = post(&c, env, "/.portcullis/api/login", json!({"username": "ivy", "password": PASSWORD})).await;
    assert_eq!(v["next"], "push", "{v}");
    let (s, v) = hanks.decide(env, &id, &number.to_string(), "approve").await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("approved")), "{v}");
    let (_, v) = post(&c, env, "/.portcullis/api/push/wait", json!({})).await;
    assert_ne!(v["next"], "done", "{v}");
    let r = c.get(env.url(WIKI, "/.portcullis/api/whoami")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "nobody is signed in");
}
