//! The administrator's commands against a running portcullis: `admin locked`,
//! `unlock`, `revoke-totp` (sessions end, enrollment waits for the cooldown),
//! `sign-out`, `enroll-link`, `rotate-keys`, `health`, `reload`.

mod common;

use common::api::{browser, code, post, whoami};
use common::{portcullis, Env, LOGIN_APPS as APPS, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

fn admin(env: &Env, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["admin", "--config", common::path_str(&env.config)];
    all.extend_from_slice(args);
    let (code, out, err) = portcullis(&all);
    (code, serde_json::from_str(&out).unwrap_or_else(|_| json!({"raw": out, "stderr": err})))
}

async fn enrolled_session(env: &Env) -> (Client, Vec<String>) {
    let c = browser(env, "127.0.0.2");
    let (_, v) = post(&c, env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "enroll_totp", "{v}");
    let (_, e) = post(&c, env, "/.portcullis/api/totp/enroll", json!({})).await;
    let (_, v) =
        post(&c, env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code(e["secret"].as_str().unwrap(), 0)}))
            .await;
    let codes = v["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (c, codes)
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_users_are_listed_and_unlocked() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let (_, codes) = enrolled_session(&env).await;
    let c = browser(&env, "127.0.0.3");
    post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    for _ in 0..5 {
        post(&c, &env, "/.portcullis/api/totp", json!({"code": "000000"})).await;
    }
    let (s, v) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::LOCKED, Some("locked")), "{v}");
    let (code, v) = admin(&env, &["locked"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["locked"][0]["user"], "alice");
    assert!(v["locked"][0]["reason"].as_str().unwrap().contains("failed"), "{v}");
    let (code, v) = admin(&env, &["unlock", "alice", "bob"]);
    assert_eq!((code, v["error"].as_str()), (1, Some("unknown_user")), "bob is not a user: {v}");
    let (code, v) = admin(&env, &["unlock", "alice"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["unlocked"], json!(["alice"]));
    assert_eq!(admin(&env, &["locked"]).1["locked"], json!([]));
    let (_, v) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "totp");
    let (_, v) = post(&c, &env, "/.portcullis/api/recovery", json!({"code": codes[0]})).await;
    assert_eq!(v["next"], "done", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_totp_ends_sessions_and_waits_for_the_cooldown() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let (c, _) = enrolled_session(&env).await;
    assert_eq!(whoami(&c, &env).await, StatusCode::OK);
    let (code, v) = admin(&env, &["revoke-totp", "alice"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(whoami(&c, &env).await, StatusCode::UNAUTHORIZED, "open sessions end");
    let (s, v) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::FORBIDDEN, Some("cooldown")), "{v}");
    assert!(v["until"].as_u64().unwrap() > 1_000_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn enroll_link_lets_a_user_enroll_from_outside_once() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let outside = browser(&env, "127.0.0.3");
    let (_, v) =
        post(&outside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "ask_admin");
    let (code, link) = admin(&env, &["enroll-link", "alice"]);
    assert_eq!(code, 0, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("https://wiki.localhost:{}/.portcullis/login?enroll=", env.https.port())),
        "{url}"
    );
    let code_param = url.split("enroll=").nth(1).unwrap();
    let body = json!({"username": "alice", "password": PASSWORD, "enroll": code_param});
    let (_, v) = post(&outside, &env, "/.portcullis/api/login", body.clone()).await;
    assert_eq!(v["next"], "enroll_totp", "{v}");
    let other = browser(&env, "127.0.0.3");
    let (_, v) = post(&other, &env, "/.portcullis/api/login", body).await;
    assert_eq!(v["next"], "ask_admin", "the link is single-use: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_rotate_keys_and_health() {
    let env = Env::new("", &APPS.replace("otp_skip = \"never\"", "otp_skip = \"always\""));
    let _p = env.start();
    let c = browser(&env, "127.0.0.3");
    post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(whoami(&c, &env).await, StatusCode::OK);
    // Rotation: the old key still verifies.
    let (code, v) = admin(&env, &["rotate-keys"]);
    assert_eq!((code, v["current_key"].as_u64()), (0, Some(2)), "{v}");
    assert_eq!(whoami(&c, &env).await, StatusCode::OK);
    let (code, _) = admin(&env, &["sign-out", "alice"]);
    assert_eq!(code, 0);
    assert_eq!(whoami(&c, &env).await, StatusCode::UNAUTHORIZED);
    let (code, v) = admin(&env, &["health"]);
    assert_eq!((code, v["status"].as_str()), (0, Some("ok")), "{v}");
    let (code, v) = admin(&env, &["reload"]);
    assert_eq!((code, v["ok"].as_bool()), (0, Some(true)), "{v}");
}
