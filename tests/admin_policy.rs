//! The administrator's read-only views, against one running portcullis shared
//! by every test here: `POST /decide` (what the policy would do — the same
//! answer as `portcullis decide`), `POST /audit` (the audit file, filtered,
//! newest first) and their CLI (`admin audit`, `admin users`), and the
//! console's policy and audit pages that read through them.

mod common;

use common::api::{browser, code, post};
use common::{portcullis, Env, HASH, PASSWORD};
use serde_json::{json, Value};
use std::sync::OnceLock;

const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32", "10.0.0.0/8"]

[policy_group.staff]
allow = "always"
otp_skip = "internal_ip"
enroll_when = "internal_ip"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]

[entrance_pass]
issue_when = "internal_ip and not device_cert"
lifetime = "30d"
"#;

fn apps_with_audit(env: &Env) -> String {
    format!("{APPS}\n[log]\naudit_file = \"{}/audit/audit.jsonl\"\n", env.dir.path().display())
}

fn proxy() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        // The demo upstream dies with the thread that spawned it: spawn it
        // from one that lives as long as the binary.
        let env = common::on_binary_thread(move || {
        let env = Env::new("", APPS);
        env.rewrite("", &apps_with_audit(&env));
        let users = env.dir.path().join("users.toml");
        let mut text = std::fs::read_to_string(&users).unwrap();
        for (name, role) in [("carol", "user"), ("root", "admin")] {
            text.push_str(&format!(
                "\n[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\nrole = \"{role}\"\n"
            ));
        }
        std::fs::write(&users, text).unwrap();
            env
        });
        env.start_for_binary();
        env
    })
}

/// An admin API call with the token: (status, JSON answer).
async fn call(env: &Env, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("http://{}{path}", env.admin))
        .bearer_auth(env.token())
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post_admin(env: &Env, path: &str, body: Value) -> (u16, Value) {
    call(env, reqwest::Method::POST, path, &body.to_string()).await
}

/// `portcullis admin --config … <args>`: (exit code, stdout, stderr).
fn admin_cli(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["admin", "--config", common::path_str(&env.config)];
    all.extend_from_slice(args);
    portcullis(&all)
}

#[tokio::test(flavor = "multi_thread")]
async fn decide_answers_as_the_cli_does() {
    let env = proxy();
    for (address, user) in [("127.0.0.2", Some("alice")), ("127.0.0.3", Some("alice")), ("10.9.8.7", None)] {
        let mut body = json!({"host": "wiki.localhost", "address": address});
        let mut args =
            vec!["decide", "--config", common::path_str(&env.config), "--host", "wiki.localhost", "--ip", address];
        if let Some(u) = user {
            body["user"] = u.into();
            args.extend(["--user", u]);
        }
        let (status, api) = post_admin(env, "/decide", body).await;
        assert_eq!(status, 200, "{api}");
        let (code, out, err) = portcullis(&args);
        assert_eq!(code, 0, "{err}");
        let cli: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(api, cli, "{address} {user:?}");
    }
    let ask = |address: &str| json!({"host": "wiki.localhost", "address": address, "user": "alice"});
    let (_, inside) = post_admin(env, "/decide", ask("127.0.0.2")).await;
    assert_eq!(inside["action"], "forward", "{inside}");
    assert_eq!(inside["rule"], "policy_group.staff.otp_skip");
    assert_eq!(inside["networks"], json!(["internal"]));
    assert_eq!(inside["otp_required"], false);
    let (_, outside) = post_admin(env, "/decide", ask("127.0.0.3")).await;
    assert_eq!(outside["action"], "challenge_second_factor", "{outside}");
    assert_eq!(outside["rule"], "policy_group.staff.otp_skip (false)");
    assert_eq!(outside["networks"], json!([]));
    assert_eq!(outside["otp_required"], true);
    // A completed second factor, an IPv4-mapped address (counts as IPv4), a Host with a port.
    let both =
        json!({"host": "wiki.localhost:8443", "address": "::ffff:10.1.2.3", "user": "alice", "second_factor": true});
    let (s, v) = post_admin(env, "/decide", both).await;
    assert_eq!((s, v["action"].as_str(), v["client_ip"].as_str()), (200, Some("forward"), Some("10.1.2.3")), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn decide_refuses_bad_questions_clearly() {
    let env = proxy();
    let cases = [
        (json!({"host": "wiki.localhost", "address": "10.0.0.300"}), "bad_address"),
        (json!({"host": "wiki.localhost", "address": ""}), "bad_address"),
        (json!({"host": "nowhere.localhost", "address": "10.0.0.1"}), "unknown_host"),
        (json!({"host": "x".repeat(5000), "address": "10.0.0.1"}), "unknown_host"),
        (json!({"host": "wiki.localhost", "address": "10.0.0.1", "user": "mallory"}), "unknown_user"),
        (json!({"host": "wiki.localhost", "address": "10.0.0.1", "second_factor": true}), "bad_request"),
        (json!({"host": "wiki.localhost", "address": "10.0.0.1", "cookie": "x"}), "bad_request"),
        (json!({"address": "10.0.0.1"}), "bad_request"),
        (json!(["wiki.localhost"]), "bad_request"),
    ];
    for (body, error) in cases {
        let (s, v) = post_admin(env, "/decide", body.clone()).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(error)), "{body}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty() && m.len() < 400), "{v}");
    }
    let (s, v) = call(env, reqwest::Method::POST, "/decide", "{not json").await;
    assert_eq!((s, v["error"].as_str()), (400, Some("bad_request")));
    let (s, _) = call(env, reqwest::Method::GET, "/decide", "").await;
    assert_eq!(s, 405);
    let r = reqwest::Client::new().post(format!("http://{}/decide", env.admin)).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 401, "the token is needed");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_filters_newest_first_and_the_cli_prints_it() {
    let env = proxy();
    // Acts on carol alone (no other test here names her): three lines to find.
    for route in ["/unlock", "/sign-out", "/unlock"] {
        let (s, v) = post_admin(env, route, json!({"user": "carol"})).await;
        assert_eq!(s, 200, "{route}: {v}");
    }
    let (s, v) = post_admin(env, "/audit", json!({"target": "carol", "event": "admin_action"})).await;
    assert_eq!(s, 200, "{v}");
    let actions: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["unlock", "sign_out_everywhere", "unlock"], "newest first: {v}");
    let newest = &v["entries"][0];
    assert_eq!(newest["actor"], "token:admin");
    assert_eq!(newest["role"], "token");
    assert_eq!(newest["user"], "carol", "the user acted on");
    assert!(newest.get("target").is_none(), "not the file's constant `target: audit`");
    assert_eq!(newest["result"], "not_locked");
    assert!(newest["at"].as_u64().unwrap() > 1_700_000_000 && newest["from"].is_string(), "{newest}");
    assert_eq!(v["truncated"], false);

    // Filters by actor and action; `limit` holds.
    let (_, v) =
        post_admin(env, "/audit", json!({"actor": "TOKEN:admin", "action": "sign_out_everywhere", "target": "carol"}))
            .await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = post_admin(env, "/audit", json!({"action": "unlock", "target": "carol", "limit": 1})).await;
    assert_eq!((v["entries"].as_array().unwrap().len(), v["truncated"].as_bool()), (1, Some(true)), "{v}");
    // The admin calls themselves, by route and status.
    let (_, v) = post_admin(env, "/audit", json!({"event": "admin_call", "action": "sign-out", "result": "200"})).await;
    assert!(!v["entries"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(post_admin(env, "/audit", json!({"actor": "nobody-at-all"})).await.1["entries"], json!([]));
    for bad in [json!({"limit": 0}), json!({"limit": 1001}), json!({"since": "yesterday"}), json!({"who": "x"})] {
        let (s, v) = post_admin(env, "/audit", bad.clone()).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("bad_request")), "{bad}: {v}");
    }

    let (code, out, err) =
        admin_cli(env, &["audit", "--actor", "token:admin", "--target", "carol", "--event", "admin_action"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0]
            .contains(" admin_action actor=token:admin role=token action=unlock user=carol result=not_locked from="),
        "{out}"
    );
    assert!(lines[1].contains("action=sign_out_everywhere"), "{out}");
    let (code, out, _) = admin_cli(env, &["audit", "--target", "carol", "--limit", "1"]);
    assert_eq!((code, out.lines().count()), (0, 1), "{out}");
    let (code, _, err) = admin_cli(env, &["audit", "--limit", "5000"]);
    assert_eq!(code, 1);
    assert!(err.contains("limit"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_audit_file_the_answer_is_409() {
    let env = proxy();
    // The same config without `[log]`, loaded here: the route answers from it alone.
    let text = std::fs::read_to_string(&env.config).unwrap();
    let without = env.dir.path().join("no-audit.toml");
    std::fs::write(&without, &text[..text.find("\n[log]").unwrap()]).unwrap();
    let cfg = portcullis::config::load(&without).unwrap();
    assert!(cfg.log.audit_file.is_none());
    let r = portcullis::admin::audit_read::handle(&cfg, b"{}").await;
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!((r.status, v["error"].as_str()), (409, Some("not_configured")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("[log] audit_file"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_users_prints_a_table() {
    let env = proxy();
    let (code, out, err) = admin_cli(env, &["users", "--search", "CAR"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and carol: {out}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(head, ["USER", "ROLE", "GROUP", "FACTORS", "LOCKED"]);
    let carol: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(carol, ["carol", "user", "staff", "-", "no"], "{out}");
    let (code, out, _) = admin_cli(env, &["users"]);
    assert_eq!(code, 0);
    for name in ["alice", "carol", "root"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("{name} "))), "{out}");
    }
    assert!(out.lines().any(|l| l.starts_with("root ") && l.contains(" admin ")), "{out}");
}

/// An administrator's session with both factors (enrolled from the internal address).
async fn admin_session(env: &Env) -> reqwest::Client {
    let c = browser(env, "127.0.0.2");
    let (_, v) = post(&c, env, "/.portcullis/api/login", json!({"username": "root", "password": PASSWORD})).await;
    assert_eq!(v["next"], "enroll_totp", "{v}");
    let (_, e) = post(&c, env, "/.portcullis/api/totp/enroll", json!({})).await;
    let secret = e["secret"].as_str().unwrap();
    let (_, v) = post(&c, env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code(secret, 0)})).await;
    assert!(v["recovery_codes"].is_array(), "{v}");
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_the_policy_the_answer_and_the_audit_lines() {
    let env = proxy();
    let c = admin_session(env).await;
    let page = |path: &str| {
        let c = c.clone();
        let url = env.url("wiki.localhost", path);
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) = page("/.portcullis/admin/policy").await;
    assert_eq!(s, 200, "{html}");
    for shown in [
        "127.0.0.2/32, 10.0.0.0/8",
        "<code>internal_ip</code>",
        "internal_ip and not device_cert",
        "30d",
        "wiki.localhost",
    ] {
        assert!(html.contains(shown), "{shown} on the policy page:\n{html}");
    }
    assert!(!html.contains("decide-answer"), "no answer before a question");

    let (s, html) = page("/.portcullis/admin/policy?host=wiki.localhost&address=127.0.0.3&user=alice&lang=en").await;
    assert_eq!(s, 200);
    assert!(html.contains("id=\"decide-answer\""), "{html}");
    assert!(
        html.contains("ask for the second factor") && html.contains("policy_group.staff.otp_skip (false)"),
        "{html}"
    );
    let (_, html) = page("/.portcullis/admin/policy?host=wiki.localhost&address=not-an-ip&lang=ja").await;
    assert!(html.contains("判定できません") && html.contains("not-an-ip"), "{html}");
    let (_, html) = page("/.portcullis/admin/policy?host=%3Cscript%3E&address=10.0.0.1").await;
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "escaped: {html}");

    let (s, html) = page("/.portcullis/admin/audit?actor=root&event=login_step").await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("<table>") && html.contains("login_step"), "root's own sign-in is there: {html}");
    assert!(!html.contains("admin_action"), "filtered: {html}");
    let (_, html) = page("/.portcullis/admin/audit?actor=nobody-at-all").await;
    assert!(html.contains("No lines match."), "{html}");

    // A general user is refused both pages.
    let alice = browser(env, "127.0.0.2");
    post(&alice, env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    for path in ["/.portcullis/admin/policy", "/.portcullis/admin/audit"] {
        let r = alice.get(env.url("wiki.localhost", path)).send().await.unwrap();
        assert_ne!(r.status(), 200, "{path}");
    }
}
