//! The conditions the seeds name, end to end: time windows, weekdays and
//! dates in `[policy] time_zone`, the age of an entrance pass, and groups
//! from the users file — through `portcullis check`, `portcullis decide --at`
//! and a running proxy. Internal is 127.0.0.2, outside 127.0.0.3.

mod common;

use common::{portcullis, Env, HASH, PASSWORD};
use reqwest::cookie::CookieStore;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const WIKI: &str = "wiki.localhost";
const PASS: &str = "__Host-portcullis-pass";

/// Tokyo office hours on weekdays for `staff`; `finance` (a group of the
/// users file) may come in whenever; the OTP is skipped inside or with a
/// pass younger than 30 days.
const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[policy]
time_zone = "Asia/Tokyo"

[entrance_pass]
issue_when = "internal_ip"

[policy_group.staff]
allow = "weekday('mon-fri') and time('08:00-20:00') or group('finance')"
otp_skip = "internal_ip or entrance_pass_age < 30d"
enroll_when = "always"

[policy_group.shift]
allow = "always"
otp_skip = "time('08:00-20:00')"

[policy_group.timed]
allow = "time('{open}')"
otp_skip = "always"

[policy_group.closed]
allow = "time('{closed}')"
otp_skip = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff", "shift", "timed", "closed"]
"#;

/// alice is `staff`; fay is `staff` in the users file's group `finance`;
/// sam is `shift` (no OTP in the daytime); tim is `timed`, tom `closed`. `open`/`closed` are windows of the config.
fn env(open: &str, closed: &str) -> Env {
    let env = Env::new("", &APPS.replace("{open}", open).replace("{closed}", closed));
    let users = env.dir.path().join("users.toml");
    let mut text = std::fs::read_to_string(&users).unwrap();
    for (name, group, groups) in
        [("fay", "staff", "[\"finance\"]"), ("sam", "shift", "[]"), ("tim", "timed", "[]"), ("tom", "closed", "[]")]
    {
        text.push_str(&format!(
            "\n[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"{group}\"\ngroups = {groups}\n"
        ));
    }
    std::fs::write(&users, text).unwrap();
    env
}

/// `portcullis decide` with `args` after the config; it must print JSON.
fn decide(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["decide", "--config", common::path_str(&env.config), "--host", WIKI];
    all.extend_from_slice(args);
    let (code, out, err) = portcullis(&all);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn the_same_request_is_let_in_at_10_and_challenged_at_21() {
    let env = env("08:00-09:00", "09:00-10:00");
    // sam's session (password only) from outside: no OTP in the daytime.
    let sam = ["--ip", "127.0.0.3", "--user", "sam", "--at"];
    let v = decide(&env, &[&sam[..], &["2026-12-07T10:00:00+09:00"]].concat());
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("forward"), Some("policy_group.shift.otp_skip")),
        "{v}"
    );
    let v = decide(&env, &[&sam[..], &["2026-12-07T21:00:00+09:00"]].concat());
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("challenge_second_factor"), Some("policy_group.shift.otp_skip (false)")),
        "{v}"
    );
    // alice (staff: office hours on weekdays), with both factors.
    let outside = ["--ip", "127.0.0.3", "--user", "alice", "--second-factor"];
    // Monday 2026-12-07 in Tokyo.
    let v = decide(&env, &[&outside[..], &["--at", "2026-12-07T10:00:00+09:00"]].concat());
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("forward"), Some("policy_group.staff.allow (second factor done)")),
        "{v}"
    );
    assert_eq!(v["at"], "2026-12-07T10:00:00+09:00[Asia/Tokyo]", "{v}");
    let v = decide(&env, &[&outside[..], &["--at", "2026-12-07T21:00:00+09:00"]].concat());
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("deny"), Some("policy_group.staff.allow (false)")),
        "{v}"
    );
    // The same moments written in UTC; Monday 10:00 in Tokyo is Monday 01:00 UTC,
    // and Saturday 01:00 UTC is Saturday 10:00 in Tokyo: no office hours.
    assert_eq!(decide(&env, &[&outside[..], &["--at", "2026-12-07T01:00:00Z"]].concat())["action"], "forward");
    assert_eq!(decide(&env, &[&outside[..], &["--at", "2026-12-12T01:00:00Z"]].concat())["action"], "deny");
    // Sunday 23:30 UTC is already Monday 08:30 in Tokyo.
    assert_eq!(decide(&env, &[&outside[..], &["--at", "2026-12-06T23:30:00Z"]].concat())["action"], "forward");
    // fay is in the group `finance`: let in at 21:00 too.
    let fay = ["--ip", "127.0.0.3", "--user", "fay", "--second-factor", "--at", "2026-12-07T21:00:00+09:00"];
    assert_eq!(decide(&env, &fay)["action"], "forward");
    // A session without a second factor at 10:00 outside: challenged for it.
    let v = decide(&env, &["--ip", "127.0.0.3", "--user", "alice", "--at", "2026-12-07T10:00:00+09:00"]);
    assert_eq!(v["action"], "challenge_second_factor", "{v}");
    let (code, _, err) = portcullis(&[
        "decide",
        "--config",
        common::path_str(&env.config),
        "--host",
        WIKI,
        "--ip",
        "127.0.0.3",
        "--at",
        "tomorrow",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--at: `tomorrow` is not a time such as 2026-12-07T21:00:00+09:00"), "{err}");
}

#[test]
fn a_pass_older_than_the_limit_no_longer_skips_the_otp_in_decide() {
    let env = env("08:00-09:00", "09:00-10:00");
    let at = ["--ip", "127.0.0.3", "--user", "alice", "--at", "2026-12-07T10:00:00+09:00"];
    let with_age = |age: &str| decide(&env, &[&at[..], &["--entrance-pass", "--pass-age", age]].concat());
    let v = with_age("29d");
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("forward"), Some("policy_group.staff.otp_skip")),
        "{v}"
    );
    assert_eq!(v["entrance_pass_issued_at"], "2026-11-08T01:00:00Z", "{v}");
    assert_eq!(with_age("29d23h59m59s")["action"], "forward");
    let v = with_age("30d");
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("challenge_second_factor"), Some("policy_group.staff.otp_skip (false)")),
        "{v}"
    );
    assert_eq!(decide(&env, &at)["action"], "challenge_second_factor", "no pass, no age");
}

/// `check` refuses a bad zone, window, day or date with the line it is on.
#[test]
fn bad_zones_windows_days_and_dates_are_config_errors_naming_the_line() {
    let env = env("08:00-09:00", "09:00-10:00");
    let base = APPS.replace("{open}", "08:00-09:00").replace("{closed}", "09:00-10:00");
    let cases = [
        (
            "time_zone = \"Asia/Tokyo\"",
            "time_zone = \"Asia/Tokio\"",
            "policy.time_zone: `Asia/Tokio` is not a time zone name",
        ),
        ("time_zone = \"Asia/Tokyo\"", "time_zone = \"+09:00\"", "policy.time_zone: `+09:00` is not a time zone name"),
        ("time('08:00-09:00')", "time('8:00-09:00')", "policy_group.timed.allow: time(…): `8:00` is not a time of day"),
        (
            "time('09:00-10:00')",
            "time('09:00-09:00')",
            "policy_group.closed.allow: time(…): `09:00-09:00` covers the whole day or none of it",
        ),
        ("weekday('mon-fri')", "weekday('mon-fir')", "policy_group.staff.allow: weekday(…): `fir` is not a day"),
        (
            "time('09:00-10:00')",
            "date('2026-12-24..2026-12-23')",
            "date(…): `2026-12-24..2026-12-23` ends before it starts",
        ),
        (
            "time('09:00-10:00')",
            "date('2027-02-29')",
            "`2027-02-29` is not a date such as \"2026-12-24\" (YYYY-MM-DD) (there is no such day)",
        ),
        ("entrance_pass_age < 30d", "entrance_pass_age < 30", "expected a duration such as 30d"),
        ("group('finance')", "group('fin ance')", "`fin ance` is not a group name"),
    ];
    for (from, to, expected) in cases {
        let apps = base.replace(from, to);
        assert_ne!(apps, base, "{from}");
        env.rewrite("", &apps);
        let text = std::fs::read_to_string(&env.config).unwrap();
        let line = 1 + text.lines().position(|l| l.contains(to)).unwrap();
        let (code, _, err) = portcullis(&["check", "--config", common::path_str(&env.config)]);
        assert_eq!(code, 1, "{to}: {err}");
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
        assert!(err.contains(&format!("portcullis.toml:{line}:")), "line {line} for `{to}`:\n{err}");
    }
    // A group no user has is a warning, not an error.
    env.rewrite("", &base.replace("group('finance')", "group('finanse')"));
    let (code, _, err) = portcullis(&["check", "--config", common::path_str(&env.config)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("group(\"finanse\") is in a condition, but no user in the users file has that group"),
        "{err}"
    );
}

/// The Tokyo hour now, and windows around it: one that holds for the next
/// hour at least, one that does not hold for two hours.
fn windows_around_now() -> (String, String) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let hour = (now + 9 * 3600) % 86_400 / 3600;
    let h = |d: u64| (hour + d) % 24;
    (format!("{:02}:00-{:02}:00", h(23), h(2)), format!("{:02}:00-{:02}:00", h(3), h(5)))
}

fn client(env: &Env, from: &str, jar: &Arc<reqwest::cookie::Jar>) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in [("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")] {
        headers.insert(k, v.parse().unwrap());
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

async fn login(c: &Client, env: &Env, user: &str) -> String {
    let body = json!({"username": user, "password": PASSWORD});
    let r = c.post(env.url(WIKI, "/.portcullis/api/login")).json(&body).send().await.unwrap();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    v["next"].as_str().unwrap_or_else(|| panic!("login answered {v}")).to_string()
}

/// The running proxy reads the clock and the pass's issue time: a time
/// window around now lets in, one later does not; a pass issued on an
/// internal login skips the OTP outside while it is young, and `decide
/// --pass` at a later `--at` shows the same pass no longer does.
#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_reads_the_time_and_the_age_of_the_pass() {
    let (open, closed) = windows_around_now();
    let env = env(&open, &closed);
    let _proxy = env.start();
    let tim = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(&env, "127.0.0.3", &tim), &env, "tim").await, "done", "inside {open}");
    let r = client(&env, "127.0.0.3", &tim).get(env.url(WIKI, "/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tom = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(&env, "127.0.0.3", &tom), &env, "tom").await, "denied", "outside {closed}");

    // fay (finance: let in at any hour) logs in inside: a pass; then outside, no OTP.
    let x = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(login(&client(&env, "127.0.0.2", &x), &env, "fay").await, "done");
    let url = reqwest::Url::parse(&env.url(WIKI, "/")).unwrap();
    let cookies = x.cookies(&url).expect("cookies").to_str().unwrap().to_string();
    let pass = cookies.split("; ").find_map(|kv| kv.strip_prefix(&format!("{PASS}="))).expect("a pass").to_string();
    let outside = client(&env, "127.0.0.3", &x);
    let r = outside.post(env.url(WIKI, "/.portcullis/api/logout")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(login(&outside, &env, "fay").await, "done", "a young pass skips the OTP outside");
    assert_eq!(outside.get(env.url(WIKI, "/page")).send().await.unwrap().status(), StatusCode::OK);

    // The same pass, asked of the running instance, at later moments.
    let at = |days: u64| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let t = jiff::Timestamp::from_second((now + days * 86_400) as i64).unwrap();
        t.to_string()
    };
    let with_pass = |days: u64| {
        let when = at(days);
        decide(&env, &["--ip", "127.0.0.3", "--user", "fay", "--pass", &pass, "--at", &when])
    };
    let v = with_pass(29);
    assert_eq!(v["entrance_pass"]["counts"], true, "{v}");
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("forward"), Some("policy_group.staff.otp_skip")),
        "{v}"
    );
    let v = with_pass(31);
    assert_eq!(v["entrance_pass"]["counts"], true, "{v}");
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("challenge_second_factor"), Some("policy_group.staff.otp_skip (false)")),
        "{v}"
    );
}
