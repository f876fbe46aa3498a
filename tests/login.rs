//! Login end to end through the real proxy: password → enrollment (key string
//! from the API, codes from `oathtool`) → recovery codes → the app receives the
//! user; internal skip and external step-up; logout and sign-out everywhere;
//! hostile input of every kind; a restart keeps what was enrolled.

mod common;

use common::api::{client_with_jar, code, post};
use common::{Env, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// The shared login apps, with the second factor skipped inside (`otp_skip`
/// `never` → `internal_ip`) and a second app to hand over to.
fn apps() -> String {
    common::LOGIN_APPS.replace("otp_skip = \"never\"", "otp_skip = \"internal_ip\"")
        + "\n[[app]]\nname = \"open\"\nhosts = [\"a.open.localhost\"]\nupstream = \"{upstream}\"\npolicy_groups = [\"staff\"]\n"
}

const INTERNAL: &str = "127.0.0.2";
const EXTERNAL: &str = "127.0.0.3";

/// Clients from inside and outside sharing one cookie jar: the same browser moving.
fn browser(env: &Env) -> (Client, Client) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    (client_with_jar(env, INTERNAL, jar.clone()), client_with_jar(env, EXTERNAL, jar))
}

async fn echo_user(c: &Client, env: &Env) -> (StatusCode, Option<String>) {
    let r = c.get(env.url("wiki.localhost", "/app")).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    let user = v["headers"].as_array().and_then(|hs| {
        hs.iter()
            .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case("x-portcullis-user"))
            .map(|h| h[1].as_str().unwrap().to_string())
    });
    (status, user)
}

/// Signs alice in with her password (enough where `otp_skip` holds).
async fn password_login(c: &Client, env: &Env) {
    let (s, v) = post(c, env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn enroll_and_sign_in_with_oathtool_codes() {
    let env = Env::new("", common::LOGIN_APPS);
    let _p = env.start();
    let (inside, outside) = browser(&env);

    // From outside, without an authenticator: ask an administrator.
    let (s, v) =
        post(&outside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::FORBIDDEN, Some("ask_admin")), "{v}");

    // From inside: enroll.
    let (s, v) =
        post(&inside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD, "rd": "/app"}))
            .await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("enroll_totp")), "{v}");
    let (s, e) = post(&inside, &env, "/.portcullis/api/totp/enroll", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let key = e["secret"].as_str().unwrap().to_string();
    assert!(e["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
    let (s, v) = post(&inside, &env, "/.portcullis/api/totp/enroll/confirm", json!({"code": "000000"})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong_code")), "{v}");
    let (s, v) = post(&inside, &env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code(&key, 0)})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["location"], "/app");
    let codes: Vec<String> =
        v["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10);

    // The app receives the user, from inside and (same browser) from outside.
    assert_eq!(echo_user(&inside, &env).await, (StatusCode::OK, Some("alice".into())));
    assert_eq!(echo_user(&outside, &env).await, (StatusCode::OK, Some("alice".into())));
    let (s, who) = {
        let r = outside.get(env.url("wiki.localhost", "/.portcullis/api/whoami")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!((s, who["level"].as_str()), (StatusCode::OK, Some("both_factors")));

    // Logout ends the session on the next request.
    let (s, _) = post(&outside, &env, "/.portcullis/api/logout", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo_user(&outside, &env).await.0, StatusCode::UNAUTHORIZED);

    // Sign in again from outside: TOTP now; the enrollment code is not accepted twice.
    let (_, v) =
        post(&outside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "totp", "{v}");
    let (s, v) = post(&outside, &env, "/.portcullis/api/recovery", json!({"code": codes[0]})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    assert_eq!(echo_user(&outside, &env).await.1.as_deref(), Some("alice"));
}

#[tokio::test(flavor = "multi_thread")]
async fn otp_skipped_inside_is_asked_outside() {
    let env = Env::new("", &apps());
    let _p = env.start();
    let (inside, outside) = browser(&env);
    password_login(&inside, &env).await;
    assert_eq!(echo_user(&inside, &env).await, (StatusCode::OK, Some("alice".into())));
    // The same browser from outside: the skip does not travel.
    let r = outside
        .get(env.url("wiki.localhost", "/app"))
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/.portcullis/otp?rd="), "{:?}", r.headers());
    assert_eq!(echo_user(&outside, &env).await.0, StatusCode::UNAUTHORIZED);
    // Back inside it works again.
    assert_eq!(echo_user(&inside, &env).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_everywhere_ends_other_sessions() {
    let env = Env::new("", &apps());
    let _p = env.start();
    let (phone, _) = browser(&env);
    let (laptop, _) = browser(&env);
    for c in [&phone, &laptop] {
        let (_, v) = post(c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
        assert_eq!(v["next"], "done");
        assert_eq!(echo_user(c, &env).await.0, StatusCode::OK);
    }
    let (s, _) = post(&phone, &env, "/.portcullis/api/logout", json!({"everywhere": true})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo_user(&laptop, &env).await.0, StatusCode::UNAUTHORIZED, "the other session ended");
    assert_eq!(echo_user(&phone, &env).await.0, StatusCode::UNAUTHORIZED);
    // A new login works right after.
    let (_, v) =
        post(&laptop, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "done");
    assert_eq!(echo_user(&laptop, &env).await.0, StatusCode::OK);
    // ...and a second sign-out everywhere ends it, even within the same second
    // (that login was stamped with the first sign-out's bar).
    let (s, _) = post(&phone, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(&phone, &env, "/.portcullis/api/logout", json!({"everywhere": true})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo_user(&laptop, &env).await.0, StatusCode::UNAUTHORIZED, "the newer session ended too");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_changes_nothing() {
    let env = Env::new("", &apps());
    let _p = env.start();
    let (inside, _) = browser(&env);
    let url = env.url("wiki.localhost", "/.portcullis/api/login");

    // Wrong password and unknown user: the same answer.
    let (s1, v1) =
        post(&inside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": "nope"})).await;
    let (s2, v2) =
        post(&inside, &env, "/.portcullis/api/login", json!({"username": "mallory", "password": "nope"})).await;
    assert_eq!((s1, &v1), (s2, &v2));
    assert_eq!(s1, StatusCode::UNAUTHORIZED);

    // Malformed, wrongly typed, oversized bodies; not JSON; a form post to the API.
    for (body, ct) in [
        ("{", "application/json"),
        ("[1]", "application/json"),
        ("{\"username\": 1}", "application/json"),
        ("username=alice", "application/x-www-form-urlencoded"),
    ] {
        let r = inside.post(&url).header("content-type", ct).body(body).send().await.unwrap();
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
    }
    let big = format!("{{\"username\": \"{}\"}}", "a".repeat(40_000));
    let r = inside.post(&url).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = inside
        .post(&url)
        .header("content-type", "application/json")
        .header("sec-fetch-site", "cross-site")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());

    // A form post without or with a wrong CSRF token.
    let form = env.url("wiki.localhost", "/.portcullis/login");
    // Either goes back to a fresh form, which says it had expired (and signs nobody in).
    let back_to_form = |r: &reqwest::Response| {
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/.portcullis/login?") && location.ends_with("&error=form"), "{location}");
        assert!(r.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("portcullis-session")));
    };
    let r = inside.post(&form).form(&[("username", "alice"), ("password", PASSWORD)]).send().await.unwrap();
    back_to_form(&r);
    let r = inside
        .post(&form)
        .form(&[("username", "alice"), ("password", PASSWORD), ("csrf", "v1.1.AAAA.BBBB")])
        .send()
        .await
        .unwrap();
    back_to_form(&r);

    // Tampered, foreign and garbage session cookies are no session.
    let plain = env.client(INTERNAL);
    for cookie in
        ["__Host-portcullis-session=v1.1.AAAA.BBBB", "__Host-portcullis-session=garbage", "__Host-portcullis-session="]
    {
        let r = plain
            .get(env.url("wiki.localhost", "/.portcullis/api/whoami"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{cookie}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn return_targets_are_validated() {
    let env = Env::new("", &apps());
    let _p = env.start();
    let cases = [
        ("/page?x=1", "/page?x=1"),
        ("//evil.example", "/.portcullis/"),
        ("https://evil.example", "/.portcullis/"),
        ("/\\evil.example", "/.portcullis/"),
        ("%2F%2Fevil.example", "/.portcullis/"),
        ("javascript:alert(1)", "/.portcullis/"),
        ("https://wiki.localhost.evil.example/", "/.portcullis/"),
    ];
    for (rd, expected) in cases {
        let (inside, _) = browser(&env);
        let (_, v) =
            post(&inside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD, "rd": rd}))
                .await;
        assert_eq!(v["location"], expected, "rd = {rd}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_enrollment_recovery_codes_and_locks() {
    let env = Env::new("", common::LOGIN_APPS);
    let p = env.start();
    let (inside, _) = browser(&env);
    post(&inside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    let (_, e) = post(&inside, &env, "/.portcullis/api/totp/enroll", json!({})).await;
    let (_, v) = post(
        &inside,
        &env,
        "/.portcullis/api/totp/enroll/confirm",
        json!({"code": code(e["secret"].as_str().unwrap(), 0)}),
    )
    .await;
    let codes = v["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(echo_user(&inside, &env).await.0, StatusCode::OK);
    drop(p);
    let _p = env.start();
    assert_eq!(echo_user(&inside, &env).await.0, StatusCode::OK, "the session survives (keys kept)");
    let (fresh, _) = browser(&env);
    let (_, v) = post(&fresh, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "totp", "the enrollment was kept: {v}");
    let (_, v) = post(&fresh, &env, "/.portcullis/api/recovery", json!({"code": codes[1]})).await;
    assert_eq!(v["next"], "done", "recovery codes were kept: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_expired_and_foreign_cookies_are_refused() {
    use portcullis::identity::cookie::KeyRing;
    use portcullis::identity::session::{Session, SessionLevel, SESSION_COOKIE};
    let env = Env::new("", &apps());
    let _p = env.start();
    let keys = KeyRing::load_or_create(&env.dir.path().join("state/cookie.keys")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let plain = env.client(EXTERNAL);
    let whoami = |cookie: String| {
        let req = plain
            .get(env.url("wiki.localhost", "/.portcullis/api/whoami"))
            .header("cookie", format!("{SESSION_COOKIE}={cookie}"));
        async move { req.send().await.unwrap().status() }
    };
    // A session minted with the server's own key works: the test can tell.
    let good = Session::new("alice", "wiki", SessionLevel::BothFactors, now, 3600);
    assert_eq!(whoami(good.to_cookie(&keys)).await, StatusCode::OK);
    // Expired, idle, for another app, from a foreign key, for an unknown user.
    let expired = Session::new("alice", "wiki", SessionLevel::BothFactors, now - 7200, 3600);
    assert_eq!(whoami(expired.to_cookie(&keys)).await, StatusCode::UNAUTHORIZED, "expired");
    let mut idle = Session::new("alice", "wiki", SessionLevel::BothFactors, now - 4 * 3600, 12 * 3600);
    idle.seen_at = now - 3 * 3600;
    assert_eq!(whoami(idle.to_cookie(&keys)).await, StatusCode::UNAUTHORIZED, "idle past the 2h timeout");
    let other_app = Session::new("alice", "open", SessionLevel::BothFactors, now, 3600);
    assert_eq!(whoami(other_app.to_cookie(&keys)).await, StatusCode::UNAUTHORIZED, "issued for another app");
    assert_eq!(whoami(good.to_cookie(&KeyRing::generate())).await, StatusCode::UNAUTHORIZED, "foreign key");
    let ghost = Session::new("mallory", "wiki", SessionLevel::BothFactors, now, 3600);
    assert_eq!(whoami(ghost.to_cookie(&keys)).await, StatusCode::UNAUTHORIZED, "unknown user");
}

/// The proxy verifies a session cookie's signature once per value and worker
/// thread (`identity::memo`); everything else is judged on every request. On
/// one keep-alive connection: a remembered cookie stops working the moment it
/// expires, is revoked, or its key is retired, and a tampered copy of it is
/// refused while the original keeps working.
#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_session_is_judged_again_on_every_request() {
    use portcullis::identity::cookie::KeyRing;
    use portcullis::identity::session::{Session, SessionLevel, SESSION_COOKIE};
    let env = Env::new("", &apps());
    let _p = env.start();
    let keys = KeyRing::load_or_create(&env.dir.path().join("state/cookie.keys")).unwrap();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // One client, one connection (a pool of one, kept alive).
    let c = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(EXTERNAL.parse::<std::net::IpAddr>().unwrap())
        .pool_max_idle_per_host(1)
        .resolve("wiki.localhost", ([127, 0, 0, 1], env.https.port()).into())
        .build()
        .unwrap();
    let app = |cookie: &str| {
        let req = c.get(env.url("wiki.localhost", "/app")).header("cookie", format!("{SESSION_COOKIE}={cookie}"));
        async move { req.send().await.unwrap().status() }
    };

    // Expiry: a session of 2 s works until it ends, then not, from the memo or not.
    let short = Session::new("alice", "wiki", SessionLevel::BothFactors, now(), 2).to_cookie(&keys);
    for _ in 0..3 {
        assert_eq!(app(&short).await, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(app(&short).await, StatusCode::UNAUTHORIZED, "expired on the next request");

    // Tampering: one byte of the payload changed (same MAC, same memo slot).
    let good = Session::new("alice", "wiki", SessionLevel::BothFactors, now(), 3600).to_cookie(&keys);
    assert_eq!(app(&good).await, StatusCode::OK);
    let mut bytes = good.clone().into_bytes();
    let i = good.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    for _ in 0..2 {
        assert_eq!(app(&tampered).await, StatusCode::UNAUTHORIZED, "tampered");
    }
    assert_eq!(app(&good).await, StatusCode::OK, "the original still works");

    // Revocation: signed out everywhere through the admin CLI, refused on the next request.
    let (code_, _, err) =
        common::portcullis(&["admin", "--config", common::path_str(&env.config), "sign-out", "alice"]);
    assert_eq!(code_, 0, "{err}");
    assert_eq!(app(&good).await, StatusCode::UNAUTHORIZED, "revoked on the next request");

    // Key retirement: a cookie signed by a key rotated out twice is refused.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let fresh = Session::new("alice", "wiki", SessionLevel::BothFactors, now(), 3600).to_cookie(&keys);
    assert_eq!(app(&fresh).await, StatusCode::OK, "a session after the sign-out works");
    for _ in 0..2 {
        let (code_, _, err) = common::portcullis(&["admin", "--config", common::path_str(&env.config), "rotate-keys"]);
        assert_eq!(code_, 0, "{err}");
    }
    assert_eq!(app(&fresh).await, StatusCode::UNAUTHORIZED, "its key retired");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_returns_to_another_app_through_a_single_use_code() {
    let env = Env::new("", &apps());
    let _p = env.start();
    let (inside, _) = browser(&env);
    let port = env.https.port();
    let rd = format!("https://a.open.localhost:{port}/x?y=1");
    let (_, v) =
        post(&inside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD, "rd": rd}))
            .await;
    let mut location = v["location"].as_str().unwrap().to_string();
    let prefix = format!("https://a.open.localhost:{port}/.portcullis/session?ticket=");
    assert!(location.starts_with(&prefix), "{location}");
    // The other host sets its state cookie and asks the portal for a code bound to it.
    for next in ["https://wiki.localhost", "https://a.open.localhost"] {
        let r = inside.get(&location).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(next), "{location}");
    }
    assert!(location.contains("/.portcullis/session?code="), "{location}");
    assert!(location.ends_with("&lang=en"), "the language goes along: {location}");
    // No session on the other host yet: cookies are per host.
    let whoami_open = |c: &Client| {
        let req = c.get(format!("https://a.open.localhost:{port}/.portcullis/api/whoami"));
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(whoami_open(&inside).await, StatusCode::UNAUTHORIZED);
    // The code is traded for that host's own cookie, and the browser lands on the page it wanted.
    let r = inside.get(&location).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/x?y=1");
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("__Host-portcullis-session=v")), "{cookies:?}");
    assert_eq!(whoami_open(&inside).await, StatusCode::OK);
    // The code works once.
    let (other, _) = browser(&env);
    let r = other.get(&location).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("portcullis-session=v1")));
    assert_eq!(whoami_open(&other).await, StatusCode::UNAUTHORIZED);
}

/// The language picked with the switch survives the redirects of the flow:
/// the password step sends a Japanese page on to the Japanese second step.
#[tokio::test(flavor = "multi_thread")]
async fn the_chosen_language_survives_the_redirect_to_the_second_step() {
    let env = Env::new("", common::LOGIN_APPS);
    let _p = env.start();
    // Inside, where alice may enroll: the second step is the enrollment page.
    let c = common::api::browser(&env, "127.0.0.2");
    let page =
        c.get(env.url("wiki.localhost", "/.portcullis/login?lang=ja")).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    let r = c
        .post(env.url("wiki.localhost", "/.portcullis/login?lang=ja"))
        .form(&[("username", "alice"), ("password", common::PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    let body = r.text().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{body}");
    let next = location.unwrap();
    assert!(next.ends_with("?lang=ja"), "{next}");
    let page = c.get(env.url("wiki.localhost", &next)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<html lang=\"ja\""), "{page}");
}
