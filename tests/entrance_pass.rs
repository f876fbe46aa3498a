//! Entrance passes through a real portcullis: "a work PC is a PC that has
//! logged in from the internal network; don't ask it for a one-time password,
//! even from outside". Browsers are reqwest clients sending the Fetch
//! Metadata headers every browser sends (and, once, headless Chromium, in
//! `chromium_work_pc_scenario`); internal is 127.0.0.2, outside 127.0.0.3.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{Env, HASH, PASSWORD};
use reqwest::cookie::CookieStore;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[entrance_pass]
issue_when = "{issue_when}"

[policy_group.staff]
allow = "always"
otp_skip = "internal_ip or entrance_pass"
enroll_when = "always"

[policy_group.ops]
allow = "always"
otp_skip = "entrance_pass"
enroll_when = "always"

[policy_group.strict]
allow = "internal_ip or entrance_pass"
otp_skip = "internal_ip or entrance_pass"
enroll_when = "always"

[policy_group.open]
allow = "always"
otp_skip = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff", "ops", "strict", "open"]
"#;

const WIKI: &str = "wiki.localhost";
const PASS: &str = "__Host-portcullis-pass";

/// alice, bob and pia are `staff`, olga `ops`, sam `strict`, dan `open`.
fn env(issue_when: &str) -> Env {
    let env = Env::new("", &APPS.replace("{issue_when}", issue_when));
    let users = env.dir.path().join("users.toml");
    let mut text = std::fs::read_to_string(&users).unwrap();
    for (name, group) in [("bob", "staff"), ("olga", "ops"), ("sam", "strict"), ("dan", "open"), ("pia", "staff")] {
        text.push_str(&format!(
            "\n[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"{group}\"\n"
        ));
    }
    std::fs::write(&users, text).unwrap();
    env
}

/// One proxy per `issue_when` for the whole binary.
fn proxy(issue_when: &'static str) -> &'static Env {
    static INTERNAL: OnceLock<Env> = OnceLock::new();
    static ALWAYS: OnceLock<Env> = OnceLock::new();
    let cell = if issue_when == "always" { &ALWAYS } else { &INTERNAL };
    cell.get_or_init(|| {
        let env = common::on_binary_thread(move || env(issue_when));
        env.start_for_binary();
        env
    })
}

/// A client at `from` with the cookie jar `jar`; `browser` adds the Fetch
/// Metadata headers a browser's `fetch` sends.
fn client(env: &Env, from: &str, jar: &Arc<reqwest::cookie::Jar>, browser: bool) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if browser {
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        headers.insert("sec-fetch-mode", "cors".parse().unwrap());
        headers.insert("sec-fetch-dest", "empty".parse().unwrap());
        headers.insert(
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36".parse().unwrap(),
        );
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca).unwrap()).unwrap();
    Client::builder()
        .add_root_certificate(ca)
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .cookie_provider(jar.clone())
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(WIKI, env.https)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(c: &Client, env: &Env, path: &str, body: Value) -> (StatusCode, Value) {
    let r = c.post(env.url(WIKI, path)).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A password login's `next`: `done`, `totp`, `enroll_totp`, `denied`…
async fn login(c: &Client, env: &Env, user: &str) -> String {
    let (_, v) = post(c, env, "/.portcullis/api/login", json!({"username": user, "password": PASSWORD})).await;
    v["next"].as_str().unwrap_or_else(|| panic!("login answered {v}")).to_string()
}

/// Signs out here (the pass stays), so the next login starts afresh.
async fn logout(c: &Client, env: &Env) {
    let (s, v) = post(c, env, "/.portcullis/api/logout", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// The pass cookie in `jar`, if any.
fn pass_in(jar: &reqwest::cookie::Jar, env: &Env) -> Option<String> {
    let url = reqwest::Url::parse(&env.url(WIKI, "/")).unwrap();
    let header = jar.cookies(&url)?;
    header.to_str().ok()?.split("; ").find_map(|kv| kv.strip_prefix(&format!("{PASS}="))).map(str::to_string)
}

fn jar_with_pass(env: &Env, pass: &str) -> Arc<reqwest::cookie::Jar> {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let url = reqwest::Url::parse(&env.url(WIKI, "/")).unwrap();
    jar.add_cookie_str(&format!("{PASS}={pass}; Secure; Path=/"), &url);
    jar
}

/// Enrolls `user`'s authenticator through the API from outside and
/// finishes the login (codes from `oathtool`).
async fn enroll_and_finish(c: &Client, env: &Env, user: &str) {
    assert_eq!(login(c, env, user).await, "enroll_totp");
    let (_, v) = post(c, env, "/.portcullis/api/totp/enroll", json!({})).await;
    let secret = v["secret"].as_str().unwrap().to_string();
    let code = common::api::code(&secret, 0);
    let (s, v) = post(c, env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_that_logged_in_inside_skips_the_otp_outside_and_others_do_not() {
    let env = proxy("internal_ip");
    let x = Arc::new(reqwest::cookie::Jar::default());
    // Inside: the login skips the OTP (internal_ip) and earns browser X a pass.
    assert_eq!(login(&client(env, "127.0.0.2", &x, true), env, "alice").await, "done");
    let pass = pass_in(&x, env).expect("a pass was issued on the internal login");
    logout(&client(env, "127.0.0.2", &x, true), env).await;

    // Outside, the same browser: no OTP.
    let outside = client(env, "127.0.0.3", &x, true);
    assert_eq!(login(&outside, env, "alice").await, "done");
    let r = outside.get(env.url(WIKI, "/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the session's requests count the pass too");

    // Browser Y, no pass, outside: asked for a second factor.
    let y = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(env, "127.0.0.3", &y, true), env, "alice").await, "enroll_totp");

    // The same cookie from an app or a script (no Fetch Metadata) is no pass.
    let script = client(env, "127.0.0.3", &jar_with_pass(env, &pass), false);
    assert_eq!(login(&script, env, "alice").await, "enroll_totp");
    // ...and bob on browser X: alice's pass does nothing for him.
    let bob_on_x = client(env, "127.0.0.3", &jar_with_pass(env, &pass), true);
    assert_eq!(login(&bob_on_x, env, "bob").await, "enroll_totp");
    // A tampered pass counts as none.
    let mut tampered = pass.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let forged = client(env, "127.0.0.3", &jar_with_pass(env, &tampered), true);
    assert_eq!(login(&forged, env, "alice").await, "enroll_totp");

    // `decide --pass` says the same.
    let decide = |user: &str| {
        let (code, out, err) = common::portcullis(&[
            "decide",
            "--config",
            common::path_str(&env.config),
            "--host",
            WIKI,
            "--ip",
            "127.0.0.3",
            "--user",
            user,
            "--pass",
            &pass,
        ]);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let v = decide("alice");
    assert_eq!(v["entrance_pass"]["counts"], true, "{v}");
    assert_eq!(v["action"], "forward", "{v}");
    let v = decide("bob");
    assert_eq!(v["entrance_pass"]["counts"], false, "{v}");
    assert!(v["entrance_pass"]["why"].as_str().unwrap().contains("`alice`'s pass"), "{v}");

    // Revoked (by an administrator): the open session is asked for the
    // second factor on its next request, and a new login too.
    let (code, out, err) =
        common::portcullis(&["admin", "--config", common::path_str(&env.config), "pass", "revoke", "--user", "alice"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("revoked 1"), "{out}");
    let r = outside.get(env.url(WIKI, "/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "step-up needed after the revocation");
    logout(&outside, env).await;
    assert_eq!(login(&outside, env, "alice").await, "enroll_totp");
    let v = decide("alice");
    assert_eq!(v["entrance_pass"]["counts"], false, "{v}");
    assert!(v["entrance_pass"]["why"].as_str().unwrap().contains("revoked"), "{v}");
}

/// A later internal login renews the browser's pass: a fresh one (its age
/// counts from this login) in place of the held one, which stops working.
#[tokio::test(flavor = "multi_thread")]
async fn a_later_internal_login_renews_the_pass_and_voids_the_old_one() {
    let env = proxy("internal_ip");
    let x = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(env, "127.0.0.2", &x, true), env, "pia").await, "done");
    let first = pass_in(&x, env).expect("a pass on the internal login");
    logout(&client(env, "127.0.0.2", &x, true), env).await;
    // Outside: the pass is used, not renewed.
    assert_eq!(login(&client(env, "127.0.0.3", &x, true), env, "pia").await, "done");
    assert_eq!(pass_in(&x, env).as_deref(), Some(first.as_str()), "an outside login keeps the pass");
    logout(&client(env, "127.0.0.3", &x, true), env).await;
    // Inside again: a new pass replaces it.
    assert_eq!(login(&client(env, "127.0.0.2", &x, true), env, "pia").await, "done");
    let second = pass_in(&x, env).expect("the renewed pass");
    assert_ne!(second, first, "a fresh pass");
    let old = client(env, "127.0.0.3", &jar_with_pass(env, &first), true);
    assert_eq!(login(&old, env, "pia").await, "enroll_totp", "the replaced pass no longer counts");
    let new = client(env, "127.0.0.3", &jar_with_pass(env, &second), true);
    assert_eq!(login(&new, env, "pia").await, "done");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_issue_when_serves_every_group_and_allow_can_require_a_pass() {
    let env = proxy("internal_ip");
    // olga (`ops`: otp_skip = "entrance_pass" only) enrolls inside; the login earns the pass.
    let x = Arc::new(reqwest::cookie::Jar::default());
    let inside = client(env, "127.0.0.2", &x, true);
    enroll_and_finish(&inside, env, "olga").await;
    assert!(pass_in(&x, env).is_some(), "issued under the one issue_when");
    logout(&inside, env).await;
    assert_eq!(login(&client(env, "127.0.0.3", &x, true), env, "olga").await, "done");

    // sam (`strict`: allow = "internal_ip or entrance_pass"): outside without a pass, denied.
    let y = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(env, "127.0.0.3", &y, true), env, "sam").await, "denied");
    // Inside he is let in and earns a pass; then outside he is let in too.
    let z = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(env, "127.0.0.2", &z, true), env, "sam").await, "done");
    logout(&client(env, "127.0.0.2", &z, true), env).await;
    assert_eq!(login(&client(env, "127.0.0.3", &z, true), env, "sam").await, "done");

    // An external login issues no pass under issue_when = "internal_ip".
    let w = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(env, "127.0.0.3", &w, true), env, "dan").await, "done");
    assert_eq!(pass_in(&w, env), None);

    // Signing a user out everywhere revokes their passes too.
    let (code, out, err) = common::portcullis(&["admin", "--config", common::path_str(&env.config), "sign-out", "sam"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(login(&client(env, "127.0.0.3", &z, true), env, "sam").await, "denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_when_always_issues_on_every_browser_login_and_never_to_api_clients() {
    let env = proxy("always");
    let outside = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(env, "127.0.0.3", &outside, true), env, "dan").await, "done");
    assert!(pass_in(&outside, env).is_some(), "always: issued outside too");
    let api = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(env, "127.0.0.3", &api, false), env, "dan").await, "done");
    assert_eq!(pass_in(&api, env), None, "no Fetch Metadata: an API client gets no pass");

    let (code, out, err) =
        common::portcullis(&["admin", "--config", common::path_str(&env.config), "pass", "list", "--user", "dan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "one pass:\n{out}");
    assert!(out.contains("Chrome on Windows") && out.contains("127.0.0.3") && out.contains("active"), "{out}");
    let (code, _, err) = common::portcullis(&[
        "admin",
        "--config",
        common::path_str(&env.config),
        "pass",
        "revoke",
        "passNOSUCHPASS0000000000000",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no entrance pass"), "{err}");
}

/// The scenario with headless Chromium. Chromium connects from 127.0.0.1,
/// so "inside" and "outside" are the config's `internal` network before and
/// after a reload; this test has a proxy of its own for that.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_work_pc_scenario() {
    let inside = APPS.replace("{issue_when}", "internal_ip").replace("127.0.0.2/32", "127.0.0.1/32");
    let env = Env::new("", &inside);
    let _proxy = env.start();
    let token = env.token();
    let reload = |apps: String| {
        let env = &env;
        let token = token.clone();
        async move {
            env.rewrite("", &apps);
            let (status, body) = env.admin(reqwest::Method::POST, "/reload", Some(&token)).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let rules = format!("MAP {WIKI} 127.0.0.1");
    // Inside: browser X signs in, skips the OTP, and holds a pass.
    let x = webdriver::Browser::start("en", &rules).await;
    sign_in(&env, &x).await;
    wait_for(&x, "/work").await;
    x.goto(&env.url(WIKI, "/.portcullis/")).await;
    let item = x.find("ul.passes li").await.text().await;
    assert!(item.contains("(this browser)") && item.contains("on Linux"), "{item}");

    // Outside now: X signs out and in again, and is not asked for the OTP.
    reload(APPS.replace("{issue_when}", "internal_ip")).await;
    x.mark_page().await;
    x.find("form[action^='/.portcullis/logout'] button").await.click().await;
    x.wait_for_new_page().await;
    sign_in(&env, &x).await;
    wait_for(&x, "/work").await;

    // Browser Y, no pass, outside: a second factor (enrollment here) is asked.
    let y = webdriver::Browser::start("en", &rules).await;
    sign_in(&env, &y).await;
    wait_for(&y, "/.portcullis/enroll").await;

    // X revokes its own pass on the dashboard: its next page load asks for the second factor.
    x.goto(&env.url(WIKI, "/.portcullis/")).await;
    x.find("ul.passes li form button").await.click().await;
    // The page after the form's redirect (an element of the old one goes stale).
    wait_for_text(&x, "No browser holds an entrance pass of yours").await;
    x.goto(&env.url(WIKI, "/work")).await;
    let url = wait_for(&x, "/.portcullis/").await;
    let path = url.split('?').next().unwrap_or_default();
    assert!(path.contains("/.portcullis/") && !path.ends_with("/work"), "{url}");

    // allow = "internal_ip or entrance_pass": Y, outside without a pass, is denied.
    reload(APPS.replace("{issue_when}", "internal_ip").replace(
        "[policy_group.staff]\nallow = \"always\"",
        "[policy_group.staff]\nallow = \"internal_ip or entrance_pass\"",
    ))
    .await;
    let y2 = webdriver::Browser::start("en", &rules).await;
    sign_in(&env, &y2).await;
    wait_for_text(&y2, "Access denied").await;
}

async fn sign_in(env: &Env, b: &webdriver::Browser) {
    b.goto(&env.url(WIKI, "/work")).await;
    b.find("input#username").await.send_keys("alice").await;
    b.find("input#password").await.send_keys(PASSWORD).await;
    // The page after the form's redirects, not the form's own URL (whose `rd` names the target).
    b.mark_page().await;
    b.find("button[type=submit]").await.click().await;
    b.wait_for_new_page().await;
}

/// Waits until the page's source contains `text`.
async fn wait_for_text(b: &webdriver::Browser, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let source = b.page_source().await;
        if source.contains(text) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never showed {text:?}: {source}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the browser's URL contains `part`; returns the URL.
async fn wait_for(b: &webdriver::Browser, part: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = b.current_url().await;
        if url.contains(part) {
            return url;
        }
        assert!(std::time::Instant::now() < deadline, "never reached {part}: {url}\n{}", b.page_source().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
