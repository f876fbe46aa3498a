//! Driving the portal's JSON API as a browser would: a client with a cookie
//! jar bound to a source address, and codes from `oathtool`, the independent
//! TOTP implementation the tests trust.

use super::Env;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A client from `from` (e.g. 127.0.0.2) trusting the test CA, keeping cookies
/// in `jar` (share one jar between clients to move one browser between addresses).
pub fn client_with_jar(env: &Env, from: &str, jar: Arc<reqwest::cookie::Jar>) -> Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca).unwrap()).unwrap();
    let mut b = Client::builder()
        .add_root_certificate(ca)
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    for host in ["wiki.localhost", "a.open.localhost"] {
        b = b.resolve(host, env.https);
    }
    b.build().unwrap()
}

/// A browser of its own (its own cookie jar) at `from`.
pub fn browser(env: &Env, from: &str) -> Client {
    client_with_jar(env, from, Arc::default())
}

/// POSTs JSON to `path` on wiki.localhost of `env`; returns the status and JSON answer.
pub async fn post(c: &Client, env: &Env, path: &str, body: Value) -> (StatusCode, Value) {
    let r = c.post(env.url("wiki.localhost", path)).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn whoami(c: &Client, env: &Env) -> StatusCode {
    c.get(env.url("wiki.localhost", "/.portcullis/api/whoami")).send().await.unwrap().status()
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The code `oathtool` computes for `key` (base32) at Unix time `at`, with `period` seconds.
pub fn oathtool_at(key: &str, period: u64, at: u64) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-s", &format!("{period}s"), "-b", key, "--now", &format!("@{at}")])
        .output()
        .expect("oathtool is installed (scripts/deps.sh test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The 30-second code for now + `offset` seconds.
pub fn code(key: &str, offset: i64) -> String {
    oathtool_at(key, 30, (now() as i64 + offset) as u64)
}
