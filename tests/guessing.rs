//! Guessing is bounded, and the bound cannot be used against users (issue 16,
//! section 3), through the real proxy: parallel guesses are checked at most
//! `max_failures` times, a lockout cannot be configured away, unknown user
//! names answer like real ones, the per-address brake counts an IPv6 /64 as
//! one client, and password hashing is bounded in work and memory.
//!
//! "Checked" is observed from outside: each checked wrong guess writes one
//! `factor_failed` audit line, and each argon2 run counts in
//! `portcullis_password_hashes_total`.

mod common;

use common::api::{browser, code, post};
use common::{Env, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

const INTERNAL: &str = "127.0.0.2";
const EXTERNAL: &str = "127.0.0.3";
const PARALLEL_GUESSES: usize = 60;
const MAX_FAILURES: usize = 5;

/// The shared login apps with a brake far above what the tests send, so only the user lockout acts.
fn apps(lockout: &str) -> String {
    format!("{}\n[lockout]\nmax_failures = {MAX_FAILURES}\nper_address_max = 100000\n{lockout}\n", common::LOGIN_APPS)
}

/// The audit lines of checked wrong guesses at `factor`.
fn checked_failures(env: &Env, factor: &str) -> usize {
    let factor = format!("\"factor\":\"{factor}\"");
    env.log().lines().filter(|l| l.contains("\"event\":\"factor_failed\"") && l.contains(&factor)).count()
}

async fn metric(env: &Env, name: &str) -> u64 {
    let (status, text) = env.admin(reqwest::Method::GET, "/metrics", Some(&env.token())).await;
    assert_eq!(status, 200, "{text}");
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no metric {name} in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn unlock(env: &Env, user: &str) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/unlock", env.admin))
        .bearer_auth(env.token())
        .json(&json!({"user": user}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

/// Sends `body` to `path` `PARALLEL_GUESSES` times at once from `client`; returns the statuses.
async fn in_parallel(client: &Client, env: &Env, path: &str, body: Value) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..PARALLEL_GUESSES)
        .map(|_| {
            let (c, url, body) = (client.clone(), env.url("wiki.localhost", path), body.clone());
            tokio::spawn(async move { c.post(url).json(&body).send().await.unwrap().status() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Enrolls alice from inside; returns her key string and recovery codes.
async fn enroll(env: &Env) -> (String, Vec<String>) {
    let inside = browser(env, INTERNAL);
    let (_, v) = post(&inside, env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "enroll_totp", "{v}");
    let (_, e) = post(&inside, env, "/.portcullis/api/totp/enroll", json!({})).await;
    let key = e["secret"].as_str().unwrap().to_string();
    let (s, v) = post(&inside, env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code(&key, 0)})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let codes = v["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (key, codes)
}

/// A browser from outside that has given alice's password and stands at the second factor.
async fn at_second_factor(env: &Env) -> Client {
    let outside = browser(env, EXTERNAL);
    let (_, v) =
        post(&outside, env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(v["next"], "totp", "{v}");
    outside
}

/// Of 60 parallel wrong guesses, `max_failures` are checked and the rest are
/// refused unchecked: as locked, or (passwords only) as busy when the hashing
/// pool's queue was full.
fn assert_bounded(statuses: &[StatusCode], checked: usize, what: &str) {
    assert_eq!(checked, MAX_FAILURES, "{what}: exactly max_failures guesses were checked");
    let count = |status| statuses.iter().filter(|&&s| s == status).count();
    let (locked, wrong, busy) =
        (count(StatusCode::LOCKED), count(StatusCode::UNAUTHORIZED), count(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(locked + wrong + busy, PARALLEL_GUESSES, "{what}: only wrong, locked or busy: {statuses:?}");
    assert!(busy == 0 || what == "passwords", "{what}: no hashing, never busy: {statuses:?}");
    assert!(wrong < MAX_FAILURES && locked > 0, "{what}: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_wrong_guesses_are_checked_at_most_max_failures_times() {
    let env = Env::new("", &apps(""));
    let _p = env.start();
    let (key, recovery_codes) = enroll(&env).await;

    // Passwords.
    let attacker = browser(&env, EXTERNAL);
    let wrong_password = json!({"username": "alice", "password": "guess"});
    let statuses = in_parallel(&attacker, &env, "/.portcullis/api/login", wrong_password).await;
    assert_bounded(&statuses, checked_failures(&env, "password"), "passwords");
    let (s, v) =
        post(&attacker, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::LOCKED, Some("locked")), "the right password does not tell: {v}");
    unlock(&env, "alice").await;

    // TOTP codes.
    let outside = at_second_factor(&env).await;
    let statuses = in_parallel(&outside, &env, "/.portcullis/api/totp", json!({"code": "000000"})).await;
    assert_bounded(&statuses, checked_failures(&env, "totp"), "totp codes");
    let (s, _) = post(&outside, &env, "/.portcullis/api/totp", json!({"code": code(&key, 30)})).await;
    assert_eq!(s, StatusCode::LOCKED, "the right code does not tell");
    unlock(&env, "alice").await;

    // Recovery codes.
    let outside = at_second_factor(&env).await;
    let statuses = in_parallel(&outside, &env, "/.portcullis/api/recovery", json!({"code": "aaaa-bbbb"})).await;
    assert_bounded(&statuses, checked_failures(&env, "recovery code"), "recovery codes");
    let (s, _) = post(&outside, &env, "/.portcullis/api/recovery", json!({"code": recovery_codes[0]})).await;
    assert_eq!(s, StatusCode::LOCKED, "the right recovery code does not tell");
    unlock(&env, "alice").await;
    let outside = at_second_factor(&env).await;
    let (s, v) = post(&outside, &env, "/.portcullis/api/recovery", json!({"code": recovery_codes[0]})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "unused while locked: {v}");
    let refused = metric(&env, "portcullis_guesses_total{result=\"refused\"}").await;
    assert!(refused >= (2 * (PARALLEL_GUESSES - MAX_FAILURES)) as u64, "refused unchecked: {refused}");
}

/// What a client sees of one login answer: status, body, and the cookies' names and attributes.
async fn answer(c: &Client, env: &Env, user: &str, password: &str) -> (StatusCode, Value, Vec<String>) {
    let r = c
        .post(env.url("wiki.localhost", "/.portcullis/api/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap();
            let (name, rest) = v.split_once('=').unwrap();
            format!("{name}; {}", rest.split_once(';').map_or("", |(_, attrs)| attrs))
        })
        .collect();
    (r.status(), r.json().await.unwrap_or(Value::Null), cookies)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_answers_like_a_real_one_up_to_the_lock() {
    let env = Env::new("", &apps(""));
    let _p = env.start();
    let (real, ghost) = (browser(&env, EXTERNAL), browser(&env, EXTERNAL));
    for attempt in 1..=MAX_FAILURES + 2 {
        let hashes = metric(&env, "portcullis_password_hashes_total").await;
        let a = answer(&real, &env, "alice", "guess").await;
        let after_real = metric(&env, "portcullis_password_hashes_total").await;
        let b = answer(&ghost, &env, "mallory", "guess").await;
        let after_ghost = metric(&env, "portcullis_password_hashes_total").await;
        assert_eq!(a, b, "attempt {attempt}: a real and an unknown user look the same");
        let expected = if attempt < MAX_FAILURES { StatusCode::UNAUTHORIZED } else { StatusCode::LOCKED };
        assert_eq!(a.0, expected, "attempt {attempt}: {:?}", a.1);
        assert_eq!(after_real - hashes, after_ghost - after_real, "attempt {attempt}: the same hashing work");
        let work = u64::from(attempt <= MAX_FAILURES);
        assert_eq!(after_ghost - after_real, work, "attempt {attempt}: hashed until locked, then refused unchecked");
    }
    assert_eq!(answer(&real, &env, "alice", PASSWORD).await.0, StatusCode::LOCKED);
    assert_eq!(answer(&ghost, &env, " mallory ", PASSWORD).await.0, StatusCode::LOCKED, "names are trimmed alike");
    assert_eq!(answer(&ghost, &env, "mallory2", "guess").await.0, StatusCode::UNAUTHORIZED, "per name");
}

/// The login service in this process, on an embedded store in `state`,
/// with a clock the test moves (the real proxy cannot be given one).
struct InProcess {
    cfg: portcullis::config::Config,
    auth: portcullis::auth::Auth,
}

const T0: u64 = 1_800_000_000;
const MINUTE: u64 = 60;
const DAY: u64 = 24 * 3600;

impl InProcess {
    fn open(env: &Env, state: &std::path::Path, clock: &Arc<portcullis::clock::ManualClock>) -> InProcess {
        let store = Arc::new(portcullis::store::embedded::EmbeddedStore::open(state).unwrap());
        InProcess::on(env, state, store, clock)
    }

    fn on(
        env: &Env,
        state: &std::path::Path,
        store: portcullis::store::SharedStore,
        clock: &Arc<portcullis::clock::ManualClock>,
    ) -> InProcess {
        let cfg = portcullis::config::load(&env.config).unwrap();
        InProcess { cfg, auth: portcullis::auth::Auth::open(state, store, clock.clone()).unwrap() }
    }

    /// An instance on a shared Redis; instances with the same `state` share their secrets.
    async fn on_redis(
        env: &Env,
        state: &std::path::Path,
        url: &str,
        clock: &Arc<portcullis::clock::ManualClock>,
    ) -> InProcess {
        use portcullis::store::redis::{RedisOptions, RedisStore};
        let opts = RedisOptions::new(url, [9; 32]);
        // `connect` waits (briefly, bounded) for the change feed: not on a worker thread.
        let store = tokio::task::spawn_blocking(move || RedisStore::connect(opts)).await.unwrap().unwrap();
        InProcess::on(env, state, Arc::new(store), clock)
    }

    async fn login(&self, ip: &str, user: &str, password: &str) -> portcullis::challenge::login::Step {
        let facts = portcullis::policy::expr::Facts::default();
        let ip: IpAddr = ip.parse().unwrap();
        self.auth.login.password(&self.cfg, 0, &facts, ip, "flow", user, password, None, "/").await
    }

    /// What a store holds about the failures of a name: count, guesses in flight, lock.
    async fn state_of(&self, record: &str) -> (u32, usize, Option<portcullis::store::Lock>) {
        let r = self.auth.store().user(record).await.unwrap();
        (r.failures, r.guessing.len(), r.lock)
    }

    /// A wrong password at alice and at the unknown `mallory`: the answers,
    /// and the state behind them, must be the same.
    async fn both_wrong(&self, when: &str) -> portcullis::challenge::login::Step {
        let real = self.login("192.0.2.1", "alice", "guess").await;
        let unknown = self.login("192.0.2.1", "mallory", "guess").await;
        assert_eq!(real, unknown, "{when}: a real and an unknown user answer alike");
        let slot = self.auth.login.unknown_name_slot("mallory");
        assert_eq!(self.state_of("alice").await, self.state_of(&slot).await, "{when}: counted alike");
        real
    }
}

/// An unknown name is counted by the same rules as a real user, in durable
/// state: the lock outlasts any window, a timed lock runs out alike, spread
///-out failures add up alike, a restart forgets neither; and the store
/// holds a slot, never the name.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_answers_like_a_real_one_as_time_passes_and_across_a_restart() {
    use portcullis::challenge::login::Step::{Locked, WrongCredentials};
    let clock = portcullis::clock::ManualClock::new(T0);

    // Locked until an administrator unlocks: a day later, and after a restart.
    let env = Env::new("", &apps(""));
    let state = tempfile::tempdir().unwrap();
    let s = InProcess::open(&env, state.path(), &clock);
    for attempt in 1..=MAX_FAILURES {
        let expected = if attempt < MAX_FAILURES { WrongCredentials } else { Locked };
        assert_eq!(s.both_wrong(&format!("attempt {attempt}")).await, expected);
    }
    clock.advance(16 * MINUTE);
    assert_eq!(s.both_wrong("past a would-be lockout time").await, Locked);
    clock.advance(DAY + MINUTE);
    assert_eq!(s.both_wrong("a day later").await, Locked);
    let export = serde_json::to_string(&s.auth.store().export().await.unwrap()).unwrap();
    assert!(!export.contains("mallory"), "the name is not stored: {export}");
    let listed: Value = serde_json::from_str(&portcullis::admin::users::locked(&s.auth).await.body).unwrap();
    assert_eq!(listed["locked"].as_array().map(|l| l.len()), Some(1), "alice, not the slot: {listed}");
    assert_eq!(listed["unknown_name_slots_locked"], 1, "{listed}");
    drop(s);
    let s = InProcess::open(&env, state.path(), &clock);
    assert_eq!(s.both_wrong("after a restart").await, Locked);

    // A timed lockout runs out alike (one more guess, whose failure locks again).
    let env = Env::new("", &apps("lockout = \"15m\""));
    let state = tempfile::tempdir().unwrap();
    let s = InProcess::open(&env, state.path(), &clock);
    for attempt in 1..=MAX_FAILURES {
        s.both_wrong(&format!("timed, attempt {attempt}")).await;
    }
    clock.advance(14 * MINUTE);
    assert_eq!(s.both_wrong("during the timed lock").await, Locked);
    clock.advance(2 * MINUTE);
    assert_eq!(s.both_wrong("the timed lock ran out").await, Locked, "its one more guess failed: locked again");
    clock.advance(16 * MINUTE);
    assert!(!s.auth.store().user("alice").await.unwrap().is_locked(portcullis::clock::Clock::now(&*clock)));

    // Failures spread over two days add up alike.
    let env = Env::new("", &apps(""));
    let state = tempfile::tempdir().unwrap();
    let s = InProcess::open(&env, state.path(), &clock);
    assert_eq!(s.both_wrong("today").await, WrongCredentials);
    clock.advance(DAY + 3600);
    for attempt in 2..=MAX_FAILURES {
        let expected = if attempt < MAX_FAILURES { WrongCredentials } else { Locked };
        assert_eq!(s.both_wrong(&format!("tomorrow, attempt {attempt}")).await, expected);
    }
}

/// On Redis too, and across instances: failures at an unknown name made on
/// two instances add up like a real user's, and stay after a day.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_answers_like_a_real_one_across_instances_on_redis() {
    use portcullis::challenge::login::Step::{Locked, WrongCredentials};
    let server = common::redis_server::RedisServer::start();
    let clock = portcullis::clock::ManualClock::new(T0);
    let env = Env::new("", &apps(""));
    let state = tempfile::tempdir().unwrap();
    let a = InProcess::on_redis(&env, state.path(), &server.url(), &clock).await;
    let b = InProcess::on_redis(&env, state.path(), &server.url(), &clock).await;
    for attempt in 1..=MAX_FAILURES {
        let expected = if attempt < MAX_FAILURES { WrongCredentials } else { Locked };
        let instance = if attempt % 2 == 0 { &a } else { &b };
        assert_eq!(instance.both_wrong(&format!("attempt {attempt}")).await, expected);
        clock.advance(DAY / 2);
    }
    assert_eq!(a.both_wrong("days later, on A").await, Locked);
    assert_eq!(b.both_wrong("days later, on B").await, Locked);
}

/// Parallel logins from one network are counted at the brake before they
/// are checked: of many at once, `per_address_max` are checked (hashed).
#[tokio::test(flavor = "multi_thread")]
async fn parallel_guesses_from_one_network_are_checked_at_most_per_address_max_times() {
    let env = Env::new("", &common::LOGIN_APPS.replace("[networks]", "[lockout]\nper_address_max = 3\n\n[networks]"));
    let _p = env.start();
    let hashes = metric(&env, "portcullis_password_hashes_total").await;
    let attacker = browser(&env, EXTERNAL);
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (c, env_url) = (attacker.clone(), env.url("wiki.localhost", "/.portcullis/api/login"));
            let body = json!({"username": format!("nobody{i}"), "password": "guess"});
            tokio::spawn(async move { c.post(env_url).json(&body).send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let count = |status| statuses.iter().filter(|&&s| s == status).count();
    let hashed = metric(&env, "portcullis_password_hashes_total").await - hashes;
    assert_eq!(hashed, 3, "only per_address_max guesses were checked: {statuses:?}");
    assert_eq!(count(StatusCode::UNAUTHORIZED), 3, "{statuses:?}");
    let refused = count(StatusCode::TOO_MANY_REQUESTS) + count(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused, 9, "the rest braked (or busy) unchecked: {statuses:?}");
    let (s, _, _) = answer(&attacker, &env, "nobody", "guess").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "the address is braked");
}

#[test]
fn a_lockout_that_would_switch_itself_off_is_a_config_error() {
    let env = Env::new("", &apps(""));
    let cases = [
        ("lockout = \"0s\"", "lockout.lockout"),
        ("lockout = \"0m0s\"", "lockout.lockout"),
        ("lockout = \"-5m\"", "lockout.lockout"),
        ("max_failures = 0", "lockout.max_failures"),
        ("max_failures = -1", "lockout.max_failures"),
        ("per_address_window = \"0s\"", "lockout.per_address_window"),
        ("per_address_max = 0", "lockout.per_address_max"),
        ("per_address_prefix_v6 = 0", "lockout.per_address_prefix_v6"),
        ("per_address_prefix_v4 = 33", "lockout.per_address_prefix_v4"),
    ];
    for (setting, what) in cases {
        let key = setting.split(' ').next().unwrap();
        let text = apps("").lines().filter(|l| !l.starts_with(&format!("{key} ="))).collect::<Vec<_>>().join("\n");
        env.rewrite("", &text.replace("[lockout]", &format!("[lockout]\n{setting}")));
        let config = std::fs::read_to_string(&env.config).unwrap();
        let line = config.lines().position(|l| l == setting).unwrap() + 1;
        let (status, _, err) = common::portcullis(&["check", "--config", common::path_str(&env.config)]);
        assert_eq!(status, 1, "`{setting}` must be refused: {err}");
        assert!(err.contains(&format!("portcullis.toml:{line}:")), "`{setting}`: the error names line {line}: {err}");
        assert!(err.contains(what), "`{setting}`: the error names `{what}`: {err}");
    }
    env.rewrite("", &apps("lockout = \"30m\"\nper_address_prefix_v6 = 56"));
    let (status, _, err) = common::portcullis(&["check", "--config", common::path_str(&env.config)]);
    assert_eq!(status, 0, "{err}");
}

/// The brake, through the login service with addresses a loopback test cannot bind.
#[tokio::test]
async fn the_brake_counts_an_ipv6_64_as_one_client() {
    use portcullis::auth::Auth;
    use portcullis::challenge::login::Step;
    use portcullis::policy::expr::Facts;
    for (prefix, blocked) in [("", true), ("per_address_prefix_v6 = 128", false)] {
        let env = Env::new(
            "",
            &common::LOGIN_APPS
                .replace("[networks]", &format!("[lockout]\nper_address_max = 3\n{prefix}\n\n[networks]")),
        );
        let cfg = portcullis::config::load(&env.config).unwrap();
        let state = tempfile::tempdir().unwrap();
        let store = Arc::new(portcullis::store::embedded::EmbeddedStore::open(state.path()).unwrap());
        let auth = Auth::open(state.path(), store, portcullis::clock::ManualClock::new(1_800_000_000)).unwrap();
        let login = |ip: &str, user: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            let (cfg, auth, user) = (&cfg, &auth, user.to_string());
            async move { auth.login.password(cfg, 0, &Facts::default(), ip, "flow", &user, "guess", None, "/").await }
        };
        for (i, host) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"].iter().enumerate() {
            assert_eq!(login(host, &format!("nobody{i}")).await, Step::WrongCredentials, "{host}");
        }
        let fourth = login("2001:db8:1:2:abcd::4", "nobody9").await;
        assert_eq!(fourth == Step::TooMany, blocked, "`{prefix}`: another address of the same /64: {fourth:?}");
        assert_eq!(login("2001:db8:1:3::1", "nobody9").await, Step::WrongCredentials, "the next /64 is another client");
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn password_hashing_is_bounded_in_work_and_memory() {
    const LOGINS: usize = 400;
    let env = Env::new("", &apps(""));
    let p = env.start();
    let pid = p.0.id();
    // One login first: the dummy hash and one argon2 run are part of the baseline.
    let c = browser(&env, EXTERNAL);
    assert_eq!(answer(&c, &env, "warm-up", "guess").await.0, StatusCode::UNAUTHORIZED);
    let baseline = vm_hwm_kib(pid);
    let tasks: Vec<_> = (0..LOGINS)
        .map(|i| {
            let (c, url) = (c.clone(), env.url("wiki.localhost", "/.portcullis/api/login"));
            tokio::spawn(async move {
                let r = c.post(url).json(&json!({"username": format!("user{i}"), "password": "guess"})).send().await;
                let r = r.unwrap();
                (r.status(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let busy: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE).collect();
    let checked = answers.iter().filter(|(s, _)| *s == StatusCode::UNAUTHORIZED).count();
    assert!(!busy.is_empty(), "a full hashing pool turns logins away");
    assert!(busy.iter().all(|(_, retry)| retry.as_deref() == Some("1")), "with Retry-After: {busy:?}");
    assert!(checked > 0, "logins within the bound are checked");
    assert_eq!(busy.len() + checked, LOGINS, "only checked or busy: {answers:?}");
    let grown_mib = vm_hwm_kib(pid).saturating_sub(baseline) / 1024;
    assert!(grown_mib < 100, "400 parallel logins grew the peak memory by {grown_mib} MiB");
    assert_eq!(metric(&env, "portcullis_password_hashing_busy_total").await, busy.len() as u64);
}
