//! The login service: password, then the policy, then TOTP, a recovery code or
//! enrollment. Every step is one method returning a [`Step`], which the portal
//! maps to a page or a JSON answer, so pages and API run the same code.
//!
//! A login in progress is challenge state under `attempt:<flow id>`, where the
//! flow id is the browser's signed flow cookie. Failures of any factor count
//! toward the user's lockout and the source address's brake. A store that
//! cannot be reached makes every step answer `Unavailable`: a factor that could
//! not be checked is never accepted.
//!
//! Guessing is bounded: every guess (password, TOTP, recovery or enrollment
//! code) is counted in the store before it is checked
//! ([`Store::reserve_guess`](crate::store::Store::reserve_guess)), so of any
//! number of parallel guesses at most `max_failures` are checked; the rest,
//! and every guess at a locked user, are answered `Locked` unchecked, so no
//! answer then depends on whether the guess was right. An unknown user name
//! gets the answers a real one would: the same (dummy) password hash work,
//! and `Locked` after `max_failures`, counted in challenge state.

use super::cooldown::Cooldown;
use super::hashing::{HashPool, Ticket};
use super::recovery;
use super::totp::{qr_svg, SecretBox, Totp, TotpSecret};
use crate::clock::Clock;
use crate::config::{hosts::AppId, Config, User};
use crate::identity::session::{Carried, Session, SessionLevel};
use crate::policy::expr::Facts;
use crate::store::{Lock, SharedStore, StoreError, TotpRecord, UserRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a login may take between steps.
const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);
/// A pending enrollment younger than this is shown again instead of replaced (page reloads).
const PENDING_REUSE_SECS: u64 = 10 * 60;
/// How long failures at an unknown user name are remembered (at least; a
/// longer timed lockout is used when set): the name answers `Locked` meanwhile.
const UNKNOWN_NAME_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// `Retry-After` (seconds) of a login turned away by a full hashing pool.
pub const BUSY_RETRY_AFTER: &str = "1";

/// What the portal should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Signed in: set this session's cookie and go to `rd`.
    Done {
        session: Box<Session>,
        rd: String,
    },
    NeedTotp,
    NeedEnroll,
    /// `allow` is false here (or the app does not admit the user's group).
    Denied,
    /// No authenticator and self-enrollment is not allowed here.
    AskAdmin,
    Locked,
    /// The authenticator was revoked: wait until this time.
    Cooldown {
        until: u64,
    },
    WrongCredentials,
    WrongCode,
    Replayed,
    /// No login in progress (expired, or never started).
    NoAttempt,
    Unavailable,
    TooMany,
    /// The password hashing pool is full: try again in a moment (503, `Retry-After`).
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Totp,
    Enroll,
}

/// A login in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub user: String,
    pub app: String,
    pub stage: Stage,
    pub rd: String,
    /// The session being stepped up: the new one keeps its start, end and factors.
    #[serde(default)]
    pub stepping_up: Option<Carried>,
}

/// What the enrollment page shows.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub key_string: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
    pub period: u64,
}

pub struct LoginService {
    pub store: SharedStore,
    pub clock: Arc<dyn Clock>,
    secrets: SecretBox,
    pepper: [u8; 32],
    hashing: HashPool,
}

impl From<StoreError> for Step {
    fn from(e: StoreError) -> Step {
        log::warn!("login step refused: {e}");
        Step::Unavailable
    }
}

type StepResult<T> = Result<T, Step>;

fn attempt_key(flow: &str) -> String {
    format!("attempt:{flow}")
}

impl LoginService {
    pub fn new(store: SharedStore, clock: Arc<dyn Clock>, secrets: SecretBox, pepper: [u8; 32]) -> Self {
        LoginService { store, clock, secrets, pepper, hashing: HashPool::for_this_machine() }
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Step 1: username and password, then the policy decides what comes next.
    #[allow(clippy::too_many_arguments)]
    pub async fn password(
        &self,
        cfg: &Config,
        app: AppId,
        facts: &Facts,
        ip: IpAddr,
        flow: &str,
        username: &str,
        password: &str,
        enroll_code: Option<&str>,
        rd: &str,
    ) -> Step {
        let result: StepResult<Step> = async {
            self.check_address(cfg, ip).await?;
            // A place for the hash first: a full pool turns the login away before any work.
            let ticket = self.hashing.admit().ok_or(Step::Busy)?;
            let Some(user) = cfg.users.get(username.trim()) else {
                return self.unknown_user(cfg, ip, username.trim(), ticket, password).await;
            };
            self.reserve(cfg, &user.username).await?;
            if !ticket.verify(user.password_hash.clone(), password.to_string()).await {
                return self.failure(cfg, &user.username, ip, "password", Step::WrongCredentials).await;
            }
            // A right password is not a finished login: the guess no longer counts.
            self.store.release_guess(&user.username).await?;
            let rec = self.store.user(&user.username).await?;
            self.after_first_factor(cfg, app, facts, flow, user, &rec, enroll_code, rd, None).await
        }
        .await;
        result.unwrap_or_else(|s| s)
    }

    /// A name that is no user: the same work and answers as a wrong password,
    /// including `Locked` from the `max_failures`-th failure on (counted per
    /// name in challenge state, so unknown names write nothing durable).
    async fn unknown_user(
        &self,
        cfg: &Config,
        ip: IpAddr,
        name: &str,
        ticket: Ticket,
        password: &str,
    ) -> StepResult<Step> {
        let l = &cfg.lockout;
        let memory = l.duration.map_or(UNKNOWN_NAME_MEMORY, |d| d.max(UNKNOWN_NAME_MEMORY));
        let n = self.store.count(&unknown_name_key(name), memory).await?;
        if n > u64::from(l.max_failures) {
            crate::metrics::count_guess(false);
            return Ok(Step::Locked);
        }
        crate::metrics::count_guess(true);
        let like = cfg.users.iter().next().map(|u| u.password_hash.clone());
        ticket.verify_nobody(like, password.to_string()).await;
        self.address_failure(cfg, ip).await?;
        let locked_now = n == u64::from(l.max_failures);
        log::info!(target: "audit", "{}", serde_json::json!({"event": "factor_failed", "user": null, "unknown_user": true, "factor": "password", "client_ip": ip.to_string(), "failures": n, "locked": locked_now}));
        Ok(if locked_now { Step::Locked } else { Step::WrongCredentials })
    }

    /// Counts a guess before it is checked; refused unchecked (`Locked`) when
    /// the user is locked or `max_failures` guesses are counted or in flight.
    async fn reserve(&self, cfg: &Config, user: &str) -> StepResult<()> {
        let granted = self.store.reserve_guess(user, cfg.lockout.max_failures, self.now()).await?;
        crate::metrics::count_guess(granted);
        if granted {
            Ok(())
        } else {
            Err(Step::Locked)
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn after_first_factor(
        &self,
        cfg: &Config,
        app_id: AppId,
        facts: &Facts,
        flow: &str,
        user: &User,
        rec: &UserRecord,
        enroll_code: Option<&str>,
        rd: &str,
        earlier: Option<Carried>,
    ) -> StepResult<Step> {
        let app = cfg.app(app_id);
        let group = &cfg.groups[user.policy_group];
        if !app.admits(user.policy_group) || !group.allow.eval(facts) {
            return Ok(Step::Denied);
        }
        let now = self.now();
        if group.otp_skip.eval(facts) {
            self.store.reset_failures(&user.username).await?;
            return Ok(self.done(cfg, user, &app.name, SessionLevel::FirstFactor, rec, rd, earlier));
        }
        if let Some(until) = cooldown(cfg).waiting(rec.totp_revoked_at, now) {
            return Ok(Step::Cooldown { until });
        }
        let stage = match &rec.totp {
            Some(t) if t.confirmed => Stage::Totp,
            _ if group.enroll_when.eval(facts) => Stage::Enroll,
            _ if self.take_enroll_link(enroll_code, &user.username).await? => Stage::Enroll,
            _ => return Ok(Step::AskAdmin),
        };
        let (username, app_name, rd) = (user.username.clone(), app.name.clone(), rd.to_string());
        let attempt = Attempt { user: username, app: app_name, stage, rd, stepping_up: earlier };
        let bytes = serde_json::to_vec(&attempt).unwrap_or_default();
        self.store.put_challenge(&attempt_key(flow), &bytes, ATTEMPT_TTL).await?;
        Ok(if stage == Stage::Totp { Step::NeedTotp } else { Step::NeedEnroll })
    }

    /// A signed-in user whose second factor was skipped here, now somewhere it is
    /// not (the same browser came back from outside): on to TOTP or enrollment.
    /// The session that results keeps the earlier one's start, end and factors.
    pub async fn step_up(
        &self,
        cfg: &Config,
        app: AppId,
        facts: &Facts,
        flow: &str,
        earlier: &Session,
        rd: &str,
    ) -> Step {
        let Some(user) = cfg.users.get(&earlier.user) else { return Step::NoAttempt };
        let rec = match self.store.user(&user.username).await {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        if rec.is_locked(self.now()) {
            return Step::Locked;
        }
        let carried = Some(earlier.carried());
        self.after_first_factor(cfg, app, facts, flow, user, &rec, None, rd, carried).await.unwrap_or_else(|s| s)
    }

    #[allow(clippy::too_many_arguments)]
    fn done(
        &self,
        cfg: &Config,
        user: &User,
        app: &str,
        level: SessionLevel,
        rec: &UserRecord,
        rd: &str,
        earlier: Option<Carried>,
    ) -> Step {
        let group = &cfg.groups[user.policy_group];
        // Never before a "sign out everywhere" of the same second.
        let issued = self.now().max(rec.sessions_not_before);
        let mut session = Session::new(&user.username, app, level, issued, group.session_lifetime.as_secs());
        if let Some(earlier) = earlier {
            // A sign-out everywhere during the step-up ended the session being stepped up.
            if earlier.issued_at < rec.sessions_not_before {
                return Step::NoAttempt;
            }
            session = session.continuing(&earlier);
        }
        Step::Done { session: Box::new(session), rd: rd.to_string() }
    }

    /// The login in progress for this browser, at `stage`.
    pub async fn attempt(&self, flow: &str, stage: Stage) -> StepResult<Attempt> {
        let bytes = self.store.get_challenge(&attempt_key(flow)).await?.ok_or(Step::NoAttempt)?;
        let a: Attempt = serde_json::from_slice(&bytes).map_err(|_| Step::NoAttempt)?;
        if a.stage == stage {
            Ok(a)
        } else {
            Err(Step::NoAttempt)
        }
    }

    /// Step 2: a TOTP code.
    pub async fn totp(&self, cfg: &Config, ip: IpAddr, flow: &str, code: &str) -> Step {
        self.second_factor(cfg, ip, flow, code, false).await.unwrap_or_else(|s| s)
    }

    /// Step 2, instead: a one-time recovery code.
    pub async fn recovery(&self, cfg: &Config, ip: IpAddr, flow: &str, code: &str) -> Step {
        self.second_factor(cfg, ip, flow, code, true).await.unwrap_or_else(|s| s)
    }

    async fn second_factor(
        &self,
        cfg: &Config,
        ip: IpAddr,
        flow: &str,
        code: &str,
        recovery: bool,
    ) -> StepResult<Step> {
        self.check_address(cfg, ip).await?;
        let attempt = self.attempt(flow, Stage::Totp).await?;
        let (user, rec) = self.guessed_user(cfg, &attempt).await?;
        let accepted = if recovery {
            let hash = recovery::hash(&self.pepper, code);
            self.store.use_recovery_code(&user.username, &hash).await?
        } else {
            match self.verify_totp(&user.username, &rec, code)? {
                Some(step) if self.store.use_totp_step(&user.username, step).await? => true,
                Some(_) => return self.failure(cfg, &user.username, ip, "totp replay", Step::Replayed).await,
                None => false,
            }
        };
        if !accepted {
            let what = if recovery { "recovery code" } else { "totp" };
            return self.failure(cfg, &user.username, ip, what, Step::WrongCode).await;
        }
        self.finish(cfg, user, &attempt, flow, &rec).await
    }

    async fn finish(
        &self,
        cfg: &Config,
        user: &User,
        attempt: &Attempt,
        flow: &str,
        rec: &UserRecord,
    ) -> StepResult<Step> {
        self.store.reset_failures(&user.username).await?;
        self.store.delete_challenge(&attempt_key(flow)).await?;
        Ok(self.done(cfg, user, &attempt.app, SessionLevel::BothFactors, rec, &attempt.rd, attempt.stepping_up))
    }

    /// The user of an attempt about to be guessed at, with the guess
    /// reserved; a locked user's guess is refused unchecked.
    async fn guessed_user<'c>(&self, cfg: &'c Config, attempt: &Attempt) -> StepResult<(&'c User, UserRecord)> {
        let checked = self.checked_user(cfg, attempt).await;
        if matches!(checked, Err(Step::Locked)) {
            crate::metrics::count_guess(false);
        }
        let (user, rec) = checked?;
        self.reserve(cfg, &user.username).await?;
        Ok((user, rec))
    }

    /// The user of an attempt, not locked and not cooling down.
    async fn checked_user<'c>(&self, cfg: &'c Config, attempt: &Attempt) -> StepResult<(&'c User, UserRecord)> {
        let user = cfg.users.get(&attempt.user).ok_or(Step::NoAttempt)?;
        let rec = self.store.user(&user.username).await?;
        let now = self.now();
        if rec.is_locked(now) {
            return Err(Step::Locked);
        }
        if let Some(until) = cooldown(cfg).waiting(rec.totp_revoked_at, now) {
            return Err(Step::Cooldown { until });
        }
        Ok((user, rec))
    }

    fn open_secret(&self, user: &str, t: &TotpRecord) -> StepResult<TotpSecret> {
        let plain = self.secrets.open(&t.secret_sealed, user.as_bytes()).map_err(|e| {
            log::error!("the TOTP secret of `{user}` cannot be decrypted ({e:?}): was the secrets key replaced?");
            Step::Unavailable
        })?;
        Ok(TotpSecret::from_bytes(plain))
    }

    fn verify_totp(&self, user: &str, rec: &UserRecord, code: &str) -> StepResult<Option<u64>> {
        let t = rec.totp.as_ref().filter(|t| t.confirmed).ok_or(Step::NoAttempt)?;
        let secret = self.open_secret(user, t)?;
        Ok(Totp::new(t.period).verify(&secret, code, self.now()))
    }

    /// Enrollment, step 1: a new secret (or the pending one, on a reload).
    pub async fn enroll_start(&self, cfg: &Config, flow: &str) -> StepResult<Enrollment> {
        let attempt = self.attempt(flow, Stage::Enroll).await?;
        let (user, rec) = self.checked_user(cfg, &attempt).await?;
        let now = self.now();
        let (secret, period) = match &rec.totp {
            Some(t) if t.confirmed => return Err(Step::NoAttempt),
            Some(t) if now.saturating_sub(t.created_at) < PENDING_REUSE_SECS => {
                (self.open_secret(&user.username, t)?, t.period)
            }
            _ => {
                let secret = TotpSecret::generate();
                let record = TotpRecord {
                    secret_sealed: self.secrets.seal(secret.as_bytes(), user.username.as_bytes()),
                    confirmed: false,
                    last_step: 0,
                    created_at: now,
                    period: cfg.totp.period,
                };
                if !self.store.set_pending_totp(&user.username, record).await? {
                    return Err(Step::NoAttempt);
                }
                (secret, cfg.totp.period)
            }
        };
        let totp = Totp::new(period);
        let uri = totp.otpauth_uri(&secret, &cfg.totp.issuer, &user.username);
        Ok(Enrollment { key_string: secret.to_base32(), qr_svg: qr_svg(&uri), otpauth_uri: uri, period })
    }

    /// Enrollment, step 2: the first code confirms it; returns the session and the recovery codes (shown once).
    pub async fn enroll_confirm(
        &self,
        cfg: &Config,
        ip: IpAddr,
        flow: &str,
        code: &str,
    ) -> StepResult<(Step, Vec<String>)> {
        self.check_address(cfg, ip).await?;
        let attempt = self.attempt(flow, Stage::Enroll).await?;
        let (user, rec) = self.guessed_user(cfg, &attempt).await?;
        let pending = rec.totp.as_ref().filter(|t| !t.confirmed).ok_or(Step::NoAttempt)?;
        let secret = self.open_secret(&user.username, pending)?;
        let Some(step) = Totp::new(pending.period).verify(&secret, code, self.now()) else {
            return Err(self
                .failure(cfg, &user.username, ip, "enrollment code", Step::WrongCode)
                .await
                .unwrap_or_else(|s| s));
        };
        let codes = recovery::generate();
        let hashes = codes.iter().map(|c| recovery::hash(&self.pepper, c)).collect();
        if !self.store.confirm_totp(&user.username, step, hashes).await? {
            return Err(Step::NoAttempt);
        }
        log::info!(target: "audit", "{}", serde_json::json!({"event": "totp_enrolled", "user": user.username}));
        Ok((self.finish(cfg, user, &attempt, flow, &rec).await?, codes))
    }

    /// New recovery codes for a signed-in user (the old ones stop working).
    pub async fn regenerate_recovery(&self, user: &str) -> StepResult<Vec<String>> {
        let codes = recovery::generate();
        let hashes = codes.iter().map(|c| recovery::hash(&self.pepper, c)).collect();
        self.store.set_recovery_codes(user, hashes).await?;
        Ok(codes)
    }

    /// An administrator's single-use enrollment link code for `user`.
    pub async fn make_enroll_link(&self, user: &str, ttl: Duration) -> Result<String, StoreError> {
        let code = hex::encode(rand::random::<[u8; 16]>());
        self.store.put_challenge(&format!("enroll-link:{code}"), user.as_bytes(), ttl).await?;
        Ok(code)
    }

    async fn take_enroll_link(&self, code: Option<&str>, user: &str) -> StepResult<bool> {
        let Some(code) = code.filter(|c| !c.is_empty() && c.len() <= 64) else { return Ok(false) };
        let key = format!("enroll-link:{code}");
        match self.store.get_challenge(&key).await? {
            Some(owner) if owner == user.as_bytes() => Ok(self.store.take_challenge(&key).await?.is_some()),
            _ => Ok(false),
        }
    }

    async fn check_address(&self, cfg: &Config, ip: IpAddr) -> StepResult<()> {
        let client = brake_key(&cfg.lockout, ip);
        match self.store.get_challenge(&format!("blocked-ip:{client}")).await? {
            Some(_) => Err(Step::TooMany),
            None => Ok(()),
        }
    }

    /// Counts a failure from `ip`'s network (see [`brake_key`]); past the
    /// limit the network is refused for a window.
    async fn address_failure(&self, cfg: &Config, ip: IpAddr) -> StepResult<()> {
        let l = &cfg.lockout;
        let client = brake_key(l, ip);
        let n = self.store.count(&format!("fail-ip:{client}"), l.per_address_window).await?;
        if n >= l.per_address_max {
            self.store.put_challenge(&format!("blocked-ip:{client}"), b"1", l.per_address_window).await?;
        }
        Ok(())
    }

    /// Settles a reserved guess that was wrong, for the user and the address;
    /// returns `outcome`, or `Locked` when this failure locked the user.
    async fn failure(&self, cfg: &Config, user: &str, ip: IpAddr, what: &str, outcome: Step) -> StepResult<Step> {
        let l = &cfg.lockout;
        let now = self.now();
        let lock = Lock {
            at: now,
            until: l.duration.map(|d| now + d.as_secs()),
            reason: format!("{} failed {what} attempts", l.max_failures),
        };
        let r = self.store.settle_failure(user, l.max_failures, lock).await?;
        self.address_failure(cfg, ip).await?;
        log::info!(target: "audit", "{}", serde_json::json!({"event": "factor_failed", "user": user, "factor": what, "client_ip": ip.to_string(), "failures": r.failures, "locked": r.locked_now}));
        Ok(if r.locked_now { Step::Locked } else { outcome })
    }
}

fn cooldown(cfg: &Config) -> Cooldown {
    cfg.totp.cooldown
}

/// The challenge-state counter of failures at an unknown name; hashed, so a
/// password typed into the name field is not kept, and keys stay short.
fn unknown_name_key(name: &str) -> String {
    format!("unknown-user:{}", hex::encode(Sha256::digest(name.as_bytes())))
}

/// Who the per-address brake counts: an IPv4 client by its address (or
/// `per_address_prefix_v4`), an IPv6 client by its /64 (or
/// `per_address_prefix_v6`), since one host or site usually holds a whole
/// /64 and could otherwise step around the brake. IPv4-mapped IPv6 counts as IPv4.
pub fn brake_key(l: &crate::config::LockoutSettings, ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let prefix = l.per_address_prefix_v4.min(32);
            let bits = u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            format!("{}/{prefix}", std::net::Ipv4Addr::from(bits))
        }
        IpAddr::V6(v6) => {
            let prefix = l.per_address_prefix_v6.min(128);
            let bits = u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            format!("{}/{prefix}", std::net::Ipv6Addr::from(bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LockoutSettings;

    fn lockout(v4: u8, v6: u8) -> LockoutSettings {
        LockoutSettings {
            max_failures: 5,
            duration: None,
            per_address_max: 30,
            per_address_window: Duration::from_secs(600),
            per_address_prefix_v4: v4,
            per_address_prefix_v6: v6,
        }
    }

    #[test]
    fn the_brake_counts_ipv6_per_64_and_ipv4_per_address() {
        let l = lockout(32, 64);
        let key = |ip: &str| brake_key(&l, ip.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::1"), "one /64, one count");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"), "the next /64 is another client");
        assert_eq!(key("192.0.2.7"), "192.0.2.7/32");
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"), "IPv4-mapped counts as IPv4");
    }

    #[test]
    fn brake_prefixes_are_configurable() {
        let l = lockout(24, 48);
        let key = |ip: &str| brake_key(&l, ip.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "192.0.2.0/24");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:ffff::1"));
        assert_eq!(brake_key(&lockout(32, 128), "2001:db8::1".parse().unwrap()), "2001:db8::1/128");
    }

    #[test]
    fn unknown_name_keys_do_not_hold_the_name() {
        let k = unknown_name_key("hunter2-typed-as-a-name");
        assert!(!k.contains("hunter2") && k.len() == "unknown-user:".len() + 64, "{k}");
        assert_ne!(unknown_name_key("a"), unknown_name_key("b"));
    }
}
