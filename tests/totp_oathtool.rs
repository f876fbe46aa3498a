//! TOTP against `oathtool`, an independent implementation, through the real
//! proxy: enroll with the key string the API hands out, then sign in with
//! the codes oathtool computes, for the 30 s and the 60 s period. A wrong
//! code is refused, a code is accepted once, and the next step's code works.

mod common;

use common::api::{browser, now, post};
use common::{Env, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const INSIDE: &str = "127.0.0.2";

/// oathtool's code for `key` (base32) at Unix time `at` with `period`
/// seconds, by its long options; a missing oathtool fails with what to install.
fn oathtool(key: &str, period: u64, at: u64) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", &format!("--time-step-size={period}s"), "-b", key, &format!("--now=@{at}")])
        .output()
        .unwrap_or_else(|e| {
            panic!("`oathtool` could not run ({e}): run `scripts/deps.sh test` (or `apt-get install oathtool`)")
        });
    assert!(out.status.success(), "oathtool failed: {}", String::from_utf8_lossy(&out.stderr));
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "oathtool printed {code:?}");
    code
}

/// A code that is not `code` (its last digit changed): wrong for this step.
fn wrong(code: &str) -> String {
    let (head, last) = code.split_at(5);
    let digit = (last.as_bytes()[0] - b'0' + 1) % 10;
    format!("{head}{digit}")
}

async fn login(c: &Client, env: &Env) -> Value {
    let (s, v) = post(c, env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Enrollment and two sign-ins for `[totp] period = period`, every code from oathtool.
async fn enroll_and_sign_in(period: u64) {
    let env = Env::new("", &format!("{}\n[totp]\nperiod = {period}\n", common::LOGIN_APPS));
    let _p = env.start();
    let c = browser(&env, INSIDE);

    assert_eq!(login(&c, &env).await["next"], "enroll_totp");
    let (s, e) = post(&c, &env, "/.portcullis/api/totp/enroll", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["period"], period);
    let key = e["secret"].as_str().unwrap().to_string();
    let uri = e["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/portcullis:alice?secret="), "{uri}");
    assert!(uri.contains(&format!("secret={key}")), "{uri}");
    assert_eq!(uri.contains("period=60"), period == 60, "{uri}");

    // Enrollment: a wrong code is refused, oathtool's is accepted.
    let at = now();
    let code = oathtool(&key, period, at);
    let (s, v) = post(&c, &env, "/.portcullis/api/totp/enroll/confirm", json!({"code": wrong(&code)})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong_code")), "{v}");
    let (s, v) = post(&c, &env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = post(&c, &env, "/.portcullis/api/logout", json!({})).await;
    assert_eq!(s, StatusCode::OK);

    // Signing in again: the enrollment code was used; the next step's code
    // (one step ahead, inside the ±1 window) works, and only once.
    assert_eq!(login(&c, &env).await["next"], "totp");
    let (s, v) = post(&c, &env, "/.portcullis/api/totp", json!({"code": code})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("code_already_used")), "{v}");
    let next = oathtool(&key, period, at + period);
    let (s, v) = post(&c, &env, "/.portcullis/api/totp", json!({"code": next})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    let (s, _) = post(&c, &env, "/.portcullis/api/logout", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(login(&c, &env).await["next"], "totp");
    let (s, v) = post(&c, &env, "/.portcullis/api/totp", json!({"code": next})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("code_already_used")), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oathtool_codes_with_a_30_second_period() {
    enroll_and_sign_in(30).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oathtool_codes_with_a_60_second_period() {
    enroll_and_sign_in(60).await;
}

/// The Key URI format cannot carry a ':' in the issuer (apps split the
/// label there), so the config refuses one instead of showing a misread name.
#[test]
fn an_issuer_with_a_colon_is_refused_at_load() {
    let env = Env::new("", &format!("{}\n[totp]\nissuer = \"Example: Co\"\n", common::LOGIN_APPS));
    let (code, _, err) = common::portcullis(&["check", "--config", common::path_str(&env.config)]);
    assert_ne!(code, 0);
    assert!(err.contains("totp.issuer must not contain ':'") && err.contains("portcullis.toml:"), "{err}");
    env.rewrite("", &format!("{}\n[totp]\nissuer = \"Example & Co / ä\"\n", common::LOGIN_APPS));
    let (code, _, err) = common::portcullis(&["check", "--config", common::path_str(&env.config)]);
    assert_eq!(code, 0, "{err}");
}
