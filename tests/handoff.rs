//! The login cannot be turned against the user (issue 16, section 2), through
//! the real proxy: a handoff code goes only to this listener's scheme and
//! port, is bound to the browser that signed in (login CSRF), is never minted
//! for a cross-site request, is worthless after a sign-out, a token
//! revocation or a lock, and re-checks the target app's policy; stepping up
//! or revisiting the OTP page neither extends a session nor drops a factor.

mod common;

use common::api::{client_with_jar, code, now, post};
use common::{Env, HASH, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const INTERNAL: &str = "127.0.0.2";
const EXTERNAL: &str = "127.0.0.3";

/// Staff may use wiki and open from inside only, without a second factor
/// there; `closed` admits another group.
const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[policy_group.staff]
allow = "internal_ip"
otp_skip = "internal_ip"

[policy_group.others]
allow = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]

[[app]]
name = "open"
hosts = ["a.open.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]

[[app]]
name = "closed"
hosts = ["unknown.localhost"]
upstream = "{upstream}"
policy_groups = ["others"]
"#;

/// One user per test, so a sign-out or lock in one test leaves the others alone.
const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];

fn start(apps: &str) -> (Env, common::Proc) {
    let env = Env::new("", apps);
    let users: String = USERS
        .iter()
        .map(|u| format!("[[user]]\nusername = \"{u}\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n\n"))
        .collect();
    std::fs::write(env.dir.path().join("users.toml"), users).unwrap();
    let p = env.start();
    (env, p)
}

/// A browser (one cookie jar) at `from`, resolving every test host to the proxy.
fn browser_with(env: &Env, from: &str, jar: Arc<reqwest::cookie::Jar>) -> Client {
    let _ = client_with_jar; // the shared helper resolves only two hosts
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca).unwrap()).unwrap();
    let mut b = Client::builder()
        .add_root_certificate(ca)
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10));
    for host in ["wiki.localhost", "a.open.localhost", "unknown.localhost"] {
        b = b.resolve(host, env.https);
    }
    b.build().unwrap()
}

fn browser(env: &Env) -> Client {
    browser_with(env, INTERNAL, Arc::default())
}

/// Signs `user` in on wiki with a return target; returns the `location` answered.
async fn login(c: &Client, env: &Env, user: &str, rd: &str) -> String {
    let body = json!({"username": user, "password": PASSWORD, "rd": rd});
    let (s, v) = post(c, env, "/.portcullis/api/login", body).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    v["location"].as_str().unwrap().to_string()
}

/// Follows the handoff redirects in `c` up to (not including) redeeming the code.
async fn follow_to_code(c: &Client, mut location: String) -> String {
    for _ in 0..4 {
        if location.contains("/.portcullis/session?code=") {
            return location;
        }
        let r = c.get(&location).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{location}");
        location = r.headers()["location"].to_str().unwrap().to_string();
    }
    panic!("no code URL reached: {location}")
}

/// Opens a code URL: the status, the location and whether a session cookie was set.
async fn redeem(c: &Client, url: &str) -> (StatusCode, Option<String>, bool) {
    let r = c.get(url).send().await.unwrap();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    let session =
        r.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().contains("portcullis-session=v"));
    (r.status(), location, session)
}

async fn whoami(c: &Client, env: &Env, host: &str) -> (StatusCode, Value) {
    let r = c.get(env.url(host, "/.portcullis/api/whoami")).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

fn open_rd(env: &Env, path: &str) -> String {
    format!("https://a.open.localhost:{}{path}", env.https.port())
}

fn admin(env: &Env, args: &[&str]) {
    let mut all = vec!["admin", "--config", common::path_str(&env.config)];
    all.extend_from_slice(args);
    let (code, out, err) = common::portcullis(&all);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_goes_only_to_the_listeners_own_scheme_and_port() {
    let (env, _p) = start(APPS);
    let port = env.https.port();
    let other = if port == 65535 { port - 1 } else { port + 1 };
    for rd in [
        format!("https://a.open.localhost:{other}/x"),
        "https://a.open.localhost/x".to_string(),
        "https://a.open.localhost:443/x".to_string(),
        format!("http://a.open.localhost:{port}/x"),
        format!("http://a.open.localhost:{other}/x"),
        format!("wss://a.open.localhost:{port}/x"),
    ] {
        let c = browser(&env);
        assert_eq!(login(&c, &env, "alice", &rd).await, "/.portcullis/", "rd = {rd}");
        // Nor, once signed in, as a plain return target.
        let r = c.get(env.url("wiki.localhost", &format!("/.portcullis/login?rd={rd}"))).send().await.unwrap();
        assert_eq!(r.headers()["location"], "/.portcullis/?lang=en", "rd = {rd}");
    }
    // The listener's own port is the one way there.
    let c = browser(&env);
    let location = login(&c, &env, "alice", &open_rd(&env, "/x")).await;
    assert!(location.starts_with(&format!("https://a.open.localhost:{port}/.portcullis/session?")), "{location}");
    let (s, l, session) = redeem(&c, &follow_to_code(&c, location).await).await;
    assert_eq!((s, l.as_deref(), session), (StatusCode::SEE_OTHER, Some("/x"), true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_minted_in_one_browser_signs_no_other_browser_in() {
    let (env, _p) = start(APPS);
    let (attacker, victim) = (browser(&env), browser(&env));
    let code_url = follow_to_code(&attacker, login(&attacker, &env, "bob", &open_rd(&env, "/x")).await).await;
    assert_eq!(redeem(&victim, &code_url).await, (StatusCode::BAD_REQUEST, None, false));
    assert_eq!(whoami(&victim, &env, "a.open.localhost").await.0, StatusCode::UNAUTHORIZED);
    // The code is spent by that try: the attacker cannot use it either.
    assert_eq!(redeem(&attacker, &code_url).await.0, StatusCode::BAD_REQUEST);

    // A victim in the middle of a handoff of its own holds another nonce: still refused.
    let code_url = follow_to_code(&attacker, login(&attacker, &env, "bob", &open_rd(&env, "/x")).await).await;
    let own = login(&victim, &env, "carol", &open_rd(&env, "/mine")).await;
    let r = victim.get(&own).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the victim got a state cookie on the app host");
    assert_eq!(redeem(&victim, &code_url).await, (StatusCode::BAD_REQUEST, None, false));
    assert_eq!(whoami(&victim, &env, "a.open.localhost").await.0, StatusCode::UNAUTHORIZED);

    // A ticket (step 1) opened in another browser leads to no code there.
    let ticket_url = login(&attacker, &env, "bob", &open_rd(&env, "/x")).await;
    let stranger = browser(&env);
    let r = stranger.get(&ticket_url).send().await.unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_string();
    let r = stranger.get(&back).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the portal mints only for the browser that signed in");
    assert!(r.headers().get("location").is_none());
    // Even a browser signed in on the portal as someone else.
    login(&stranger, &env, "dave", "/").await;
    let r = stranger.get(&back).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_site_request_never_mints_a_code() {
    let (env, _p) = start(APPS);
    let c = browser(&env);
    login(&c, &env, "erin", "/").await;
    let rd = open_rd(&env, "/x");
    let cross = |path: String| {
        c.get(env.url("wiki.localhost", &path))
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
            .send()
    };
    // The OTP page, where the second factor is skipped, and the login page.
    for page in ["otp", "login"] {
        let r = cross(format!("/.portcullis/{page}?rd={rd}")).await.unwrap();
        let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(!location.contains("code=") && !location.contains("ticket="), "{page}: {location}");
        assert!(r.headers().get("set-cookie").is_none_or(|v| !v.to_str().unwrap().contains("portcullis-session")));
    }
    // The mint step itself, without the ticket of this browser's login.
    let r = cross("/.portcullis/handoff?ticket=v1.1.AAAA.BBBB&state=00".to_string()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A cross-site form post carries no CSRF token: no login, no code.
    let r = c
        .post(env.url("wiki.localhost", "/.portcullis/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("username", "erin"), ("password", PASSWORD), ("rd", &rd)])
        .send()
        .await
        .unwrap();
    // Back to a fresh sign-in form (post/redirect/get), with no ticket or code.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/.portcullis/login?") && !location.contains("ticket="), "{location}");
    assert!(r.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("portcullis-session")));
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_obey_sign_out_revocation_and_lock() {
    let (env, _p) = start(APPS);
    async fn minted(env: &Env, user: &str) -> (Client, String) {
        let c = browser(env);
        let url = follow_to_code(&c, login(&c, env, user, &open_rd(env, "/x")).await).await;
        (c, url)
    }
    let refused = |what: &'static str| {
        move |(s, _, session): (StatusCode, Option<String>, bool)| {
            assert_eq!((s, session), (StatusCode::BAD_REQUEST, false), "after {what}");
        }
    };

    // Control: an untouched code works.
    let (c, url) = minted(&env, "frank").await;
    assert_eq!(redeem(&c, &url).await.0, StatusCode::SEE_OTHER);

    // Sign out everywhere (from another browser), after the code was minted.
    let (c, url) = minted(&env, "grace").await;
    let laptop = browser(&env);
    login(&laptop, &env, "grace", "/").await;
    let (s, _) = post(&laptop, &env, "/.portcullis/api/logout", json!({"everywhere": true})).await;
    assert_eq!(s, StatusCode::OK);
    refused("sign-out everywhere")(redeem(&c, &url).await);

    // A plain logout of the portal session the code came from.
    let (c, url) = minted(&env, "bob").await;
    let (s, _) = post(&c, &env, "/.portcullis/api/logout", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    refused("logout")(redeem(&c, &url).await);

    // Token revocation by an administrator.
    let (c, url) = minted(&env, "heidi").await;
    admin(&env, &["revoke-totp", "heidi"]);
    refused("token revocation")(redeem(&c, &url).await);

    // A lock: five wrong passwords from elsewhere.
    let (c, url) = minted(&env, "ivan").await;
    let guesser = browser(&env);
    for _ in 0..5 {
        let body = json!({"username": "ivan", "password": "wrong"});
        post(&guesser, &env, "/.portcullis/api/login", body).await;
    }
    refused("a lock")(redeem(&c, &url).await);
    assert_eq!(whoami(&c, &env, "a.open.localhost").await.0, StatusCode::UNAUTHORIZED);

    // The target app does not admit the user's group.
    let c = browser(&env);
    let rd = format!("https://unknown.localhost:{}/x", env.https.port());
    let url = follow_to_code(&c, login(&c, &env, "judy", &rd).await).await;
    refused("an app that does not admit the group")(redeem(&c, &url).await);

    // `allow` does not hold where the code is redeemed (the same browser, now outside).
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let (inside, outside) = (browser_with(&env, INTERNAL, jar.clone()), browser_with(&env, EXTERNAL, jar));
    let url = follow_to_code(&inside, login(&inside, &env, "judy", &open_rd(&env, "/x")).await).await;
    refused("allow fails here")(redeem(&outside, &url).await);
}

/// Staff need no second factor in the lab, enroll one inside, and step up outside.
const STEP_UP_APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]
lab = ["127.0.0.5/32"]

[policy_group.staff]
allow = "always"
otp_skip = "network(\"lab\")"
enroll_when = "internal_ip"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
"#;

const LAB: &str = "127.0.0.5";

#[tokio::test(flavor = "multi_thread")]
async fn stepping_up_and_the_otp_page_keep_the_sessions_start_end_and_factors() {
    use portcullis::identity::cookie::KeyRing;
    use portcullis::identity::session::{Session, SessionLevel, SESSION_COOKIE};
    let env = Env::new("", STEP_UP_APPS);
    let _p = env.start();
    // Enroll alice inside: an authenticator is needed to step up.
    let enroller = common::api::browser(&env, INTERNAL);
    let (_, v) =
        post(&enroller, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "enroll_totp", "{v}");
    let (_, e) = post(&enroller, &env, "/.portcullis/api/totp/enroll", json!({})).await;
    let key = e["secret"].as_str().unwrap().to_string();
    let (s, _) = post(&enroller, &env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code(&key, 0)})).await;
    assert_eq!(s, StatusCode::OK);

    // A password-only session made in the lab an hour ago, in a browser that moves.
    let keys = KeyRing::load_or_create(&env.dir.path().join("state/cookie.keys")).unwrap();
    let earlier = Session::new("alice", "wiki", SessionLevel::FirstFactor, now() - 3600, 8 * 3600);
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let wiki = reqwest::Url::parse(&env.url("wiki.localhost", "/")).unwrap();
    jar.add_cookie_str(&format!("{SESSION_COOKIE}={}; Secure; Path=/", earlier.to_cookie(&keys)), &wiki);
    let (lab, outside) = (client_with_jar(&env, LAB, jar.clone()), client_with_jar(&env, EXTERNAL, jar));
    let no_new_session = |r: &reqwest::Response| {
        r.headers().get_all("set-cookie").iter().all(|v| !v.to_str().unwrap().contains("portcullis-session"))
    };

    // In the lab the OTP page has nothing to add: no new session, no new lifetime.
    let r = lab.get(env.url("wiki.localhost", "/.portcullis/otp?rd=/app")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/app");
    assert!(no_new_session(&r), "{:?}", r.headers());

    // Outside: step up with a TOTP code; the session still ends when the first one would.
    let r = outside.get(env.url("wiki.localhost", "/.portcullis/otp?rd=/app")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the TOTP form");
    let (s, v) = post(&outside, &env, "/.portcullis/api/totp", json!({"code": code(&key, 30)})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    let (s, who) = whoami(&outside, &env, "wiki.localhost").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(who["level"], "both_factors");
    assert_eq!(who["expires_at"], earlier.expires_at, "stepping up does not extend the session");

    // Back in the lab, the OTP page neither drops the second factor nor extends.
    let r = lab.get(env.url("wiki.localhost", "/.portcullis/otp")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(no_new_session(&r), "{:?}", r.headers());
    let (_, who) = whoami(&lab, &env, "wiki.localhost").await;
    assert_eq!((who["level"].as_str(), who["expires_at"].as_u64()), (Some("both_factors"), Some(earlier.expires_at)));
}

/// A sign-out of the very session being stepped up, while its TOTP step is
/// under way, voids the step: the right code afterwards makes no session
/// (not only a sign-out everywhere does).
#[tokio::test(flavor = "multi_thread")]
async fn signing_out_the_session_being_stepped_up_voids_its_step_up() {
    use portcullis::identity::cookie::KeyRing;
    use portcullis::identity::session::{Session, SessionLevel, SESSION_COOKIE};
    let env = Env::new("", STEP_UP_APPS);
    let _p = env.start();
    let enroller = common::api::browser(&env, INTERNAL);
    let (_, v) =
        post(&enroller, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "enroll_totp", "{v}");
    let (_, e) = post(&enroller, &env, "/.portcullis/api/totp/enroll", json!({})).await;
    let key = e["secret"].as_str().unwrap().to_string();
    let (s, _) = post(&enroller, &env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code(&key, 0)})).await;
    assert_eq!(s, StatusCode::OK);

    let keys = KeyRing::load_or_create(&env.dir.path().join("state/cookie.keys")).unwrap();
    let earlier = Session::new("alice", "wiki", SessionLevel::FirstFactor, now() - 60, 8 * 3600);
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let wiki = reqwest::Url::parse(&env.url("wiki.localhost", "/")).unwrap();
    jar.add_cookie_str(&format!("{SESSION_COOKIE}={}; Secure; Path=/", earlier.to_cookie(&keys)), &wiki);
    let outside = client_with_jar(&env, EXTERNAL, jar);
    let r = outside.get(env.url("wiki.localhost", "/.portcullis/otp?rd=/app")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the step-up's TOTP form");

    let (s, v) = post(&outside, &env, "/.portcullis/api/logout", json!({})).await;
    assert_eq!((s, &v["signed_out"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, v) = post(&outside, &env, "/.portcullis/api/totp", json!({"code": code(&key, 30)})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::CONFLICT, None), "the signed-out session is not continued: {v}");
    assert_eq!(whoami(&outside, &env, "wiki.localhost").await.0, StatusCode::UNAUTHORIZED, "and no session was made");
}
