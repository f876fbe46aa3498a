//! The login service with an injected clock (no sleeping): TOTP windows and
//! replay, period 60, lockout and unlock, recovery codes, token revocation
//! with cooldown and quiet window. Codes come from `oathtool`, an independent
//! TOTP implementation.

mod common;

use common::Env;
use portcullis::auth::Auth;
use portcullis::challenge::login::Step;
use portcullis::clock::ManualClock;
use portcullis::config::Config;
use portcullis::policy::expr::Facts;
use portcullis::store::embedded::EmbeddedStore;
use std::net::IpAddr;
use std::sync::Arc;

/// 2026-12-01 12:00:00 UTC, a multiple of 60.
const NOON: u64 = 1_796_126_400;

const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[totp]
period = {period}
cooldown = "20m"
quiet_window = "20:50-08:10"
timezone = "UTC"

[lockout]
max_failures = 5

[policy_group.staff]
allow = "always"
otp_skip = "never"
enroll_when = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
"#;

struct Fixture {
    _env: Env,
    cfg: Config,
    auth: Auth,
    clock: Arc<ManualClock>,
    _state: tempfile::TempDir,
}

fn fixture(period: u64) -> Fixture {
    let env = Env::new("", &APPS.replace("{period}", &period.to_string()));
    let cfg = portcullis::config::load(&env.config).unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(state.path()).unwrap());
    let clock = ManualClock::new(NOON);
    let auth = Auth::open(state.path(), store, clock.clone()).unwrap();
    Fixture { _env: env, cfg, auth, clock, _state: state }
}

fn oathtool(key: &str, period: u64, at: u64) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-s", &format!("{period}s"), "-b", key, "--now", &format!("@{at}")])
        .output()
        .expect("oathtool is installed (scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const IP: &str = "127.0.0.3";

impl Fixture {
    fn ip(&self) -> IpAddr {
        IP.parse().unwrap()
    }

    async fn password(&self, flow: &str, password: &str) -> Step {
        let facts = Facts::default();
        self.auth.login.password(&self.cfg, 0, &facts, self.ip(), flow, "alice", password, None, "/").await
    }

    /// Enrolls alice; returns the key string and the recovery codes.
    async fn enroll(&self, flow: &str) -> (String, Vec<String>) {
        assert_eq!(self.password(flow, "portcullis-demo").await, Step::NeedEnroll);
        let e = self.auth.login.enroll_start(&self.cfg, flow).await.unwrap();
        let code = oathtool(&e.key_string, self.cfg.totp.period, self.clock.now_secs());
        let (step, codes) = self.auth.login.enroll_confirm(&self.cfg, self.ip(), flow, &code).await.unwrap();
        assert!(matches!(step, Step::Done { .. }), "{step:?}");
        assert_eq!(codes.len(), 10);
        (e.key_string, codes)
    }

    async fn totp(&self, flow: &str, code: &str) -> Step {
        self.auth.login.totp(&self.cfg, self.ip(), flow, code).await
    }
}

trait Now {
    fn now_secs(&self) -> u64;
}
impl Now for ManualClock {
    fn now_secs(&self) -> u64 {
        portcullis::clock::Clock::now(self)
    }
}

fn done(s: &Step) -> bool {
    matches!(s, Step::Done { .. })
}

#[tokio::test]
async fn totp_window_and_replay() {
    let f = fixture(30);
    let (key, _) = f.enroll("flow1").await;
    // The enrollment code's step is used: the same code again is refused.
    f.clock.advance(120);
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::NeedTotp);
    let now = f.clock.now_secs();
    assert_eq!(f.totp("flow2", &oathtool(&key, 30, now - 60)).await, Step::WrongCode, "two steps old");
    assert!(done(&f.totp("flow2", &oathtool(&key, 30, now - 30)).await), "one step old is accepted");
    assert_eq!(f.password("flow3", "portcullis-demo").await, Step::NeedTotp);
    assert_eq!(f.totp("flow3", &oathtool(&key, 30, now - 30)).await, Step::Replayed, "the same code twice");
    assert!(done(&f.totp("flow3", &oathtool(&key, 30, now)).await), "the next code works");
    assert_eq!(f.password("flow4", "portcullis-demo").await, Step::NeedTotp);
    assert!(done(&f.totp("flow4", &oathtool(&key, 30, now + 30)).await), "one step ahead is accepted");
}

#[tokio::test]
async fn period_60_codes_from_oathtool_work() {
    let f = fixture(60);
    let (key, _) = f.enroll("flow1").await;
    f.clock.advance(120);
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::NeedTotp);
    let now = f.clock.now_secs();
    assert_eq!(f.totp("flow2", &oathtool(&key, 30, now)).await, Step::WrongCode, "a 30 s code is not a 60 s code");
    assert!(done(&f.totp("flow2", &oathtool(&key, 60, now)).await));
}

#[tokio::test]
async fn five_wrong_codes_lock_until_unlocked() {
    let f = fixture(30);
    let (key, codes) = f.enroll("flow1").await;
    f.clock.advance(60);
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::NeedTotp);
    for i in 0..4 {
        assert_eq!(f.totp("flow2", "000000").await, Step::WrongCode, "failure {i}");
    }
    assert_eq!(f.totp("flow2", "000000").await, Step::Locked, "the fifth failure locks");
    let good = oathtool(&key, 30, f.clock.now_secs());
    assert_eq!(f.totp("flow2", &good).await, Step::Locked, "a right code does not help a locked user");
    assert_eq!(f.password("flow3", "portcullis-demo").await, Step::Locked);
    assert_eq!(f.password("flow3", "wrong").await, Step::Locked, "locked either way: the password is not revealed");
    f.clock.advance(3600 * 24 * 30);
    assert_eq!(f.password("flow3", "portcullis-demo").await, Step::Locked, "until an administrator unlocks");
    let locked = f.auth.store().locked(f.clock.now_secs()).await.unwrap();
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0].0, "alice");
    assert!(f.auth.store().unlock("alice").await.unwrap());
    assert_eq!(f.password("flow4", "portcullis-demo").await, Step::NeedTotp);
    assert!(done(&f.auth.login.recovery(&f.cfg, f.ip(), "flow4", &codes[0]).await));
}

#[tokio::test]
async fn wrong_passwords_count_too_and_unknown_users_look_the_same() {
    let f = fixture(30);
    let facts = Facts::default();
    let unknown = f.auth.login.password(&f.cfg, 0, &facts, f.ip(), "x", "mallory", "pw", None, "/").await;
    assert_eq!(unknown, Step::WrongCredentials);
    for _ in 0..4 {
        assert_eq!(f.password("x", "wrong").await, Step::WrongCredentials);
    }
    assert_eq!(f.password("x", "wrong").await, Step::Locked);
}

#[tokio::test]
async fn recovery_code_works_once() {
    let f = fixture(30);
    let (_, codes) = f.enroll("flow1").await;
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::NeedTotp);
    assert!(done(&f.auth.login.recovery(&f.cfg, f.ip(), "flow2", &codes[3].to_uppercase()).await));
    assert_eq!(f.password("flow3", "portcullis-demo").await, Step::NeedTotp);
    assert_eq!(f.auth.login.recovery(&f.cfg, f.ip(), "flow3", &codes[3]).await, Step::WrongCode);
    assert!(done(&f.auth.login.recovery(&f.cfg, f.ip(), "flow3", &codes[4]).await));
}

#[tokio::test]
async fn revocation_cooldown_and_quiet_window() {
    let f = fixture(30);
    f.enroll("flow1").await;
    // Revoked at 20:40 UTC: the cooldown would end at 21:00, inside the quiet window → 08:10.
    f.clock.set(NOON + 8 * 3600 + 40 * 60);
    let revoked_at = f.clock.now_secs();
    f.auth.store().revoke_totp("alice", revoked_at).await.unwrap();
    let next_morning = NOON + 20 * 3600 + 10 * 60;
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::Cooldown { until: next_morning });
    f.clock.set(revoked_at + 21 * 60);
    assert_eq!(
        f.password("flow2", "portcullis-demo").await,
        Step::Cooldown { until: next_morning },
        "cooldown over, still quiet"
    );
    f.clock.set(next_morning - 1);
    assert!(matches!(f.password("flow2", "portcullis-demo").await, Step::Cooldown { .. }));
    f.clock.set(next_morning);
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::NeedEnroll, "re-enrollment after the window");
    let rec = f.auth.store().user("alice").await.unwrap();
    assert!(rec.sessions_not_before >= revoked_at, "revocation signs out everywhere");
}

#[tokio::test]
async fn revocation_in_the_day_waits_only_the_cooldown() {
    let f = fixture(30);
    f.enroll("flow1").await;
    f.auth.store().revoke_totp("alice", NOON).await.unwrap();
    f.clock.set(NOON + 19 * 60);
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::Cooldown { until: NOON + 20 * 60 });
    f.clock.set(NOON + 20 * 60);
    assert_eq!(f.password("flow2", "portcullis-demo").await, Step::NeedEnroll);
}
