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

    // Access events are written after their response is sent: wait for them too.
    let lines = wait_for(&env, "config_reloaded event and three access events", |l| {
        !audit(l, "config_reloaded").is_empty() && events(l, "access").len() >= 3
    })
    .await;
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
    assert!(calls.iter().all(|l| l["actor"] == "token:admin"), "the token is the actor: {calls:?}");
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

/// `decide --replay` on `log` under the config now at `env.config`: the
/// changed requests (path, old, new) and the summary line.
fn replay(env: &Env, log: &std::path::Path) -> (Vec<(String, String, String)>, String) {
    let (code, out, err) =
        common::portcullis(&["decide", "--replay", common::path_str(log), "--config", common::path_str(&env.config)]);
    assert_eq!(code, 0, "{out}{err}");
    let changed = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
            let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")).to_string();
            assert!(v["rule"].is_string() && v["user"].is_string() == (s("path") != "/anon"), "{v}");
            (s("path"), s("old"), s("new"))
        })
        .collect();
    (changed, err)
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_lists_exactly_the_requests_a_new_otp_skip_changes() {
    let apps = LOGIN_APPS.replace("otp_skip = \"never\"", "otp_skip = \"internal_ip\"");
    let env = Env::new("", &format!("{apps}\n[log]\nformat = \"json\"\naccess = true\n"));
    let _p = env.start();
    // One browser, at an internal and an external address.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let inside = common::api::client_with_jar(&env, "127.0.0.2", jar.clone());
    let outside = common::api::client_with_jar(&env, "127.0.0.3", jar);
    let get = |c: &reqwest::Client, path: &str| c.get(env.url("wiki.localhost", path)).send();

    assert_eq!(get(&outside, "/anon").await.unwrap().status(), 401, "no session: log in");
    let (s, v) =
        post(&inside, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s.as_u16(), v["next"].as_str()), (200, Some("done")), "{v}");
    for path in ["/in-1", "/in-2"] {
        assert_eq!(get(&inside, path).await.unwrap().status(), 200, "inside: the second factor is skipped");
    }
    assert_eq!(get(&outside, "/out-1").await.unwrap().status(), 401, "outside: the second factor is needed");
    // Each event is written after its response is sent: wait for all of them.
    let lines = wait_for(&env, "the access events of all four requests and the audit events of two", |l| {
        let access = events(l, "access");
        let refused = audit(l, "request_refused");
        ["/anon", "/in-1", "/in-2", "/out-1"].iter().all(|p| access.iter().any(|a| a["path"] == *p))
            && ["/anon", "/out-1"].iter().all(|p| refused.iter().any(|a| a["path"] == *p))
    })
    .await;
    let forwarded = events(&lines, "access").into_iter().find(|a| a["path"] == "/in-1").unwrap().clone();
    assert_eq!((forwarded["action"].as_str(), forwarded["level"].as_str()), (Some("forward"), Some("first_factor")));
    let log = env.dir.path().join("recorded.jsonl");
    std::fs::write(&log, env.log()).unwrap();

    // The same config: nothing changes.
    let (changed, summary) = replay(&env, &log);
    assert!(changed.is_empty(), "{changed:?}");
    assert!(summary.starts_with("0 of 4 recorded requests would change"), "{summary}");

    // `otp_skip = "never"`: the two requests from inside now need the second factor.
    let never = LOGIN_APPS.to_string();
    env.rewrite("", &never);
    let (changed, summary) = replay(&env, &log);
    let f = |p: &str, o: &str, n: &str| (p.to_string(), o.to_string(), n.to_string());
    assert_eq!(
        changed,
        [f("/in-1", "forward", "challenge_second_factor"), f("/in-2", "forward", "challenge_second_factor")],
        "{summary}"
    );
    assert!(summary.starts_with("2 of 4 recorded requests would change"), "{summary}");

    // `otp_skip = "always"`: the request from outside no longer needs it.
    env.rewrite("", &LOGIN_APPS.replace("otp_skip = \"never\"", "otp_skip = \"always\""));
    let (changed, _) = replay(&env, &log);
    assert_eq!(changed, [f("/out-1", "challenge_second_factor", "forward")]);

    // The audit events alone (no access log) carry the refused requests.
    let audit_only: String =
        env.log().lines().filter(|l| !l.contains("\"target\":\"access\"")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, audit_only).unwrap();
    let (changed, summary) = replay(&env, &log);
    assert_eq!(changed, [f("/out-1", "challenge_second_factor", "forward")]);
    assert!(summary.starts_with("1 of 2 recorded requests would change"), "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_file_holds_audit_events_alone_and_rotates_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit/audit.jsonl");
    let section = format!(
        "\n[log]\nformat = \"text\"\naudit_file = \"{}\"\naudit_max_size = \"2KiB\"\naudit_keep = 2\n",
        file.display()
    );
    let env = Env::new("", &format!("{LOGIN_APPS}{section}"));
    let _p = env.start();
    let c = browser(&env, "127.0.0.3");
    for n in 0..30 {
        let r = c.get(env.url("wiki.localhost", &format!("/audit-{n}"))).send().await.unwrap();
        assert!(r.status() == 302 || r.status() == 401);
    }
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let rotated = |n: u32| std::path::PathBuf::from(format!("{}.{n}", file.display()));
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        lines = [rotated(2), rotated(1), file.clone()]
            .iter()
            .flat_map(|p| read(p).lines().map(|l| serde_json::from_str::<Value>(l).expect(l)).collect::<Vec<_>>())
            .collect();
        if lines.iter().any(|l| l["path"] == "/audit-29") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lines.iter().all(|l| l["target"] == "audit" && l["event"].is_string() && l["timestamp"].is_string()));
    assert!(lines.iter().any(|l| l["path"] == "/audit-29"), "the newest event is in the files");
    assert!(!lines.iter().any(|l| l["path"] == "/audit-0"), "the oldest fell off after two rotations");
    assert!(read(&file).len() <= 2048 && read(&rotated(1)).len() <= 2048, "each file stays under audit_max_size");
    assert!(!rotated(3).exists(), "audit_keep = 2");
}
