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

/// Sends `head` (request line and headers, without the blank line) and `body`
/// on a raw connection (the body from a thread of its own, so a listener
/// that answers early is not blocked on it); returns the status and the
/// answer. A listener that waits for the body the client never sends makes
/// the read time out, and the test fail.
fn raw_admin(env: &Env, head: &str, body: Vec<u8>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(env.admin).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(format!("{head}\r\nHost: {}\r\nConnection: close\r\n\r\n", env.admin).as_bytes()).unwrap();
    let mut w = s.try_clone().unwrap();
    // Errors are expected: the listener stops reading and closes.
    let writer = std::thread::spawn(move || {
        let _ = body.chunks(64 * 1024).try_for_each(|c| w.write_all(c));
    });
    let mut answer = Vec::new();
    let read = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(read.is_ok() || !answer.is_empty(), "no answer (the listener waited for the body?): {read:?}");
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    drop(s);
    let _ = writer.join();
    (status, text)
}

fn chunked(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in payload.chunks(16 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn admin_reads_no_body_without_the_token_and_at_most_1_mib_with_it() {
    let env = Env::new("", APPS);
    let _p = env.start();
    let token = format!("Authorization: Bearer {}", env.token());
    let mib2 = 2 * 1024 * 1024;

    // 500 MB declared, a few bytes sent: the answer comes at once, without the body.
    let (status, text) = raw_admin(&env, "POST /unlock HTTP/1.1\r\nContent-Length: 500000000", b"{\"u".to_vec());
    assert_eq!(status, 401, "{text}");
    let (status, text) = raw_admin(
        &env,
        "POST /store/import HTTP/1.1\r\nAuthorization: Bearer wrong\r\nTransfer-Encoding: chunked",
        b"10000\r\nabc".to_vec(),
    );
    assert_eq!(status, 401, "a wrong token reads nothing either: {text}");

    // With the token: a declared 2 MiB is refused before it is read...
    let (status, text) =
        raw_admin(&env, &format!("POST /unlock HTTP/1.1\r\n{token}\r\nContent-Length: {mib2}"), vec![b' '; mib2]);
    assert_eq!(status, 413, "{text}");
    // ...and a chunked one as soon as it passes 1 MiB.
    let (status, text) = raw_admin(
        &env,
        &format!("POST /unlock HTTP/1.1\r\n{token}\r\nTransfer-Encoding: chunked"),
        chunked(&vec![b' '; mib2]),
    );
    assert_eq!(status, 413, "{text}");
    // A small body is read as before (a JSON error about the user, not about its size).
    let (status, text) = raw_admin(
        &env,
        &format!("POST /unlock HTTP/1.1\r\n{token}\r\nContent-Length: 15"),
        b"{\"user\":\"bob\"}\n".to_vec(),
    );
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("unknown_user"), "{text}");

    // Only a store import may be larger: an export of many users is.
    let mut import = vec![b'\n'; mib2];
    import.extend_from_slice(b"{\"kind\":\"revoked_session\",\"id\":\"big-import\",\"until\":4000000000}\n");
    let (status, text) =
        raw_admin(&env, &format!("POST /store/import HTTP/1.1\r\n{token}\r\nContent-Length: {}", import.len()), import);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"imported\":1"), "{text}");
}

#[test]
fn state_dir_and_every_file_in_it_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("", APPS);
    // A state_dir an earlier version (or a hand) left open, with a readable file in it.
    let state = env.dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(state.join("old.backup"), "secret").unwrap();
    std::fs::set_permissions(state.join("old.backup"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _p = env.start();

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&state), 0o700, "state_dir");
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    for expected in ["admin.token", "cookie.keys", "old.backup", "portcullis.redb", "secrets.key"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    assert!(env.log().contains("readable beyond its owner"), "a warning says what was tightened:\n{}", env.log());
}

/// `role = "admin"` (or `"master"`) in the users file: the second factor is
/// asked whatever `otp_skip` says; a user of the same group skips it.
#[tokio::test(flavor = "multi_thread")]
async fn administrators_always_sign_in_with_a_second_factor() {
    let env = Env::new("", &APPS.replace("otp_skip = \"never\"", "otp_skip = \"always\""));
    let users: String = [("alice", "user"), ("ada", "admin"), ("max", "master")]
        .iter()
        .map(|(name, role)| {
            format!(
                "[[user]]\nusername = \"{name}\"\npassword = \"{}\"\npolicy_group = \"staff\"\nrole = \"{role}\"\n",
                common::HASH
            )
        })
        .collect();
    std::fs::write(env.dir.path().join("users.toml"), users).unwrap();
    let _p = env.start();
    for (name, next) in [("alice", "done"), ("ada", "enroll_totp"), ("max", "enroll_totp")] {
        let c = browser(&env, "127.0.0.2");
        let (s, v) = post(&c, &env, "/.portcullis/api/login", json!({"username": name, "password": PASSWORD})).await;
        assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some(next)), "{name}: {v}");
    }
}
