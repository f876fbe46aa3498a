//! The log as a collector reads it: with `[log] format = "json"` every line
//! is one JSON object with `timestamp`, `level` and `target`; audit events
//! carry `event` and their fields; the access log (`[log] access = true`)
//! has one event per request with app, decision, rule, status and duration.
//! With `format = "text"` the lines are for people, and the access log is
//! off unless asked for; a reload changes both.

mod common;

use common::api::{browser, post};
use common::{Env, LOGIN_APPS, PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

/// The log's lines, parsed; fails naming any line that is not a JSON object.
fn json_lines(env: &Env) -> Vec<Value> {
    env.log()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() => v,
            _ => panic!("a log line is not a JSON object: {l:?}"),
        })
        .collect()
}

fn events<'a>(lines: &'a [Value], target: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["target"] == target).collect()
}

fn audit<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    events(lines, "audit").into_iter().filter(|l| l["event"] == event).collect()
}

/// Waits until the log has a line for which `found` holds (writes are not
/// flushed in step with the responses).
async fn wait_for(env: &Env, what: &str, found: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..50 {
        let lines = json_lines(env);
        if found(&lines) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {what} in the log:\n{}", env.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_carry_the_documented_fields() {
    let env = Env::new("", &format!("{LOGIN_APPS}\n[log]\nformat = \"json\"\naccess = true\n"));
    let _p = env.start();
    // The internal address, where alice may enroll.
    let c = browser(&env, "127.0.0.2");

    // A request without a session: challenged (audit `request_refused`, access event).
    let r = c.get(env.url("wiki.localhost", "/page?x=1")).send().await.unwrap();
    let challenged = r.status().as_u16();
    assert!(challenged == 302 || challenged == 401, "{challenged}");
    // A wrong password, then the right one.
    let (s, _) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": "wrong"})).await;
    assert_eq!(s, 401);
    let (s, v) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(s, 200, "{v}");
    // An administrator's call, and a reload.
    let (s, _) = env.admin(reqwest::Method::POST, "/unlock", Some(&env.token())).await;
    assert!(s == 200 || s == 400, "{s}");
    let (s, body) = env.admin(reqwest::Method::POST, "/reload", Some(&env.token())).await;
    assert_eq!(s, 200, "{body}");

    let lines = wait_for(&env, "config_reloaded event", |l| !audit(l, "config_reloaded").is_empty()).await;
    for l in &lines {
        let ts = l["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp: {l}"));
        assert!(ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.contains('T') && ts.ends_with('Z'), "RFC 3339: {l}");
        assert!(["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&l["level"].as_str().unwrap_or("")), "{l}");
        assert!(l["target"].is_string(), "{l}");
        if l["target"] == "audit" {
            assert!(l["event"].is_string(), "every audit line names its event: {l}");
        }
    }
    // Start-up and operational messages are JSON too.
    assert!(lines.iter().any(|l| l["target"] != "audit" && l["target"] != "access" && l["message"].is_string()));

    let refused = audit(&lines, "request_refused");
    let r = refused.iter().find(|l| l["path"] == "/page").unwrap_or_else(|| panic!("{refused:?}"));
    assert_eq!(r["app"], "wiki");
    assert_eq!(r["client_ip"], "127.0.0.2");
    assert_eq!(r["decision"], "Challenge(Login)");
    assert_eq!(r["rule"], "app.wiki.bypass (false, no session)");

    let failed = audit(&lines, "factor_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["user"], "alice");
    assert_eq!(failed[0]["factor"], "password");
    assert_eq!(failed[0]["failures"], 1, "numbers stay numbers");
    assert_eq!(failed[0]["locked"], false);

    let steps = audit(&lines, "login_step");
    let outcomes: Vec<&str> = steps.iter().map(|l| l["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["wrong_credentials", "need_enroll"], "{steps:?}");
    assert!(steps.iter().all(|l| l["factor"] == "password"));
    assert_eq!(steps[1]["user"], "alice");

    let calls = audit(&lines, "admin_call");
    assert!(
        calls.iter().any(|l| l["path"] == "/unlock" && l["method"] == "POST" && l["from"].is_string()),
        "{calls:?}"
    );
    assert!(calls.iter().any(|l| l["path"] == "/reload" && l["status"] == 200), "{calls:?}");
    let reloaded = audit(&lines, "config_reloaded");
    assert!(reloaded[0]["summary"].as_str().unwrap().contains("1 apps"), "{reloaded:?}");

    let access = events(&lines, "access");
    let a = access.iter().find(|l| l["path"] == "/page").unwrap_or_else(|| panic!("no access event: {access:?}"));
    assert_eq!(a["app"], "wiki");
    assert_eq!(a["host"], "wiki.localhost");
    assert_eq!(a["method"], "GET");
    assert_eq!(a["decision"], "challenge");
    assert_eq!(a["rule"], "app.wiki.bypass (false, no session)");
    assert_eq!(a["status"], challenged);
    assert!(a["duration_us"].is_u64(), "{a}");
    let login = access.iter().find(|l| l["path"] == "/.portcullis/api/login").expect("portal requests are logged");
    assert_eq!(login["decision"], "portal");
    let text = env.log();
    assert!(!text.contains(PASSWORD) && !text.contains("\"wrong\""), "no password is logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_lines_are_for_people_and_the_access_log_is_off_by_default() {
    let env = Env::new("", &format!("{LOGIN_APPS}\n[log]\nformat = \"text\"\n"));
    let _p = env.start();
    let c = browser(&env, "127.0.0.3");
    let r = c.get(env.url("wiki.localhost", "/page")).send().await.unwrap();
    assert!(r.status() == 302 || r.status() == 401, "{}", r.status());
    let (s, _) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": "wrong"})).await;
    assert_eq!(s, 401);
    let mut log = String::new();
    for _ in 0..50 {
        log = env.log();
        if log.contains("factor_failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = log.lines().find(|l| l.contains("factor_failed")).unwrap_or_else(|| panic!("{log}"));
    assert!(serde_json::from_str::<Value>(line).is_err(), "text, not JSON: {line}");
    assert!(line.contains("INFO") && line.contains("audit") && line.contains("user=\"alice\""), "{line}");
    assert!(!line.contains('\u{1b}'), "no colour codes when the log is not a terminal: {line:?}");
    assert!(!log.lines().any(|l| l.contains(" access:")), "no access log unless `[log] access = true`:\n{log}");

    // A reload switches the format and turns the access log on.
    env.rewrite("", &format!("{LOGIN_APPS}\n[log]\nformat = \"json\"\naccess = true\n"));
    let (s, body) = env.admin(reqwest::Method::POST, "/reload", Some(&env.token())).await;
    assert_eq!(s, 200, "{body}");
    let r = c.get(env.url("wiki.localhost", "/after-reload")).send().await.unwrap();
    assert!(r.status() == 302 || r.status() == 401, "{}", r.status());
    for _ in 0..50 {
        let log = env.log();
        let json_access = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["target"] == "access" && l["path"] == "/after-reload");
        if json_access.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no JSON access line after the reload:\n{}", env.log());
}
