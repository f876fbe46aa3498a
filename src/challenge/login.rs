//! The login service: password, then the policy, then TOTP, a recovery code or
//! enrollment. Every step is one method returning a [`Step`], which the portal
//! maps to a page or a JSON answer, so pages and API run the same code.
//!
//! A login in progress is challenge state under `attempt:<flow id>`, where the
//! flow id is the browser's signed flow cookie. Failures of any factor count
//! toward the user's lockout and the source address's brake. A store that
//! cannot be reached makes every step answer `Unavailable`: a factor that could
//! not be checked is never accepted.

use super::cooldown::Cooldown;
use super::recovery;
use super::totp::{qr_svg, SecretBox, Totp, TotpSecret};
use crate::clock::Clock;
use crate::config::{hosts::AppId, Config, User};
use crate::identity::session::{Session, SessionLevel};
use crate::policy::expr::Facts;
use crate::store::{Lock, SharedStore, StoreError, TotpRecord, UserRecord};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a login may take between steps.
const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);
/// A pending enrollment younger than this is shown again instead of replaced (page reloads).
const PENDING_REUSE_SECS: u64 = 10 * 60;

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
        LoginService { store, clock, secrets, pepper }
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
            self.check_address(ip).await?;
            let user = cfg.users.get(username.trim());
            let right = verify_password(user.map(|u| u.password_hash.clone()), password.to_string()).await;
            let Some(user) = user else {
                self.address_failure(cfg, ip).await?;
                return Ok(Step::WrongCredentials);
            };
            let rec = self.store.user(&user.username).await?;
            let now = self.now();
            if rec.is_locked(now) {
                return Ok(Step::Locked);
            }
            if !right {
                return self.failure(cfg, &user.username, ip, "password", Step::WrongCredentials).await;
            }
            self.after_first_factor(cfg, app, facts, flow, user, &rec, enroll_code, rd).await
        }
        .await;
        result.unwrap_or_else(|s| s)
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
    ) -> StepResult<Step> {
        let app = cfg.app(app_id);
        let group = &cfg.groups[user.policy_group];
        if !app.admits(user.policy_group) || !group.allow.eval(facts) {
            return Ok(Step::Denied);
        }
        let now = self.now();
        if group.otp_skip.eval(facts) {
            self.store.reset_failures(&user.username).await?;
            return Ok(self.done(cfg, user, &app.name, SessionLevel::FirstFactor, rec, rd));
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
        let attempt = Attempt { user: user.username.clone(), app: app.name.clone(), stage, rd: rd.to_string() };
        let bytes = serde_json::to_vec(&attempt).unwrap_or_default();
        self.store.put_challenge(&attempt_key(flow), &bytes, ATTEMPT_TTL).await?;
        Ok(if stage == Stage::Totp { Step::NeedTotp } else { Step::NeedEnroll })
    }

    /// A signed-in user whose second factor was skipped here, now somewhere it is
    /// not (the same browser came back from outside): on to TOTP or enrollment.
    pub async fn step_up(&self, cfg: &Config, app: AppId, facts: &Facts, flow: &str, username: &str, rd: &str) -> Step {
        let Some(user) = cfg.users.get(username) else { return Step::NoAttempt };
        let rec = match self.store.user(username).await {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        if rec.is_locked(self.now()) {
            return Step::Locked;
        }
        self.after_first_factor(cfg, app, facts, flow, user, &rec, None, rd).await.unwrap_or_else(|s| s)
    }

    fn done(&self, cfg: &Config, user: &User, app: &str, level: SessionLevel, rec: &UserRecord, rd: &str) -> Step {
        let group = &cfg.groups[user.policy_group];
        // Never before a "sign out everywhere" of the same second.
        let issued = self.now().max(rec.sessions_not_before);
        let session = Session::new(&user.username, app, level, issued, group.session_lifetime.as_secs());
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
        self.check_address(ip).await?;
        let attempt = self.attempt(flow, Stage::Totp).await?;
        let (user, rec) = self.checked_user(cfg, &attempt).await?;
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
        Ok(self.done(cfg, user, &attempt.app, SessionLevel::BothFactors, rec, &attempt.rd))
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
        self.check_address(ip).await?;
        let attempt = self.attempt(flow, Stage::Enroll).await?;
        let (user, rec) = self.checked_user(cfg, &attempt).await?;
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

    async fn check_address(&self, ip: IpAddr) -> StepResult<()> {
        match self.store.get_challenge(&format!("blocked-ip:{ip}")).await? {
            Some(_) => Err(Step::TooMany),
            None => Ok(()),
        }
    }

    /// Counts a failure from `ip`; past the limit the address is refused for a window.
    async fn address_failure(&self, cfg: &Config, ip: IpAddr) -> StepResult<()> {
        let l = &cfg.lockout;
        let n = self.store.count(&format!("fail-ip:{ip}"), l.per_address_window).await?;
        if n >= l.per_address_max {
            self.store.put_challenge(&format!("blocked-ip:{ip}"), b"1", l.per_address_window).await?;
        }
        Ok(())
    }

    /// Counts a failed factor for the user and the address; returns `outcome`, or `Locked` when this failure locked the user.
    async fn failure(&self, cfg: &Config, user: &str, ip: IpAddr, what: &str, outcome: Step) -> StepResult<Step> {
        let l = &cfg.lockout;
        let now = self.now();
        let lock = Lock {
            at: now,
            until: l.duration.map(|d| now + d.as_secs()),
            reason: format!("{} failed {what} attempts", l.max_failures),
        };
        let r = self.store.record_failure(user, l.max_failures, lock).await?;
        self.address_failure(cfg, ip).await?;
        log::info!(target: "audit", "{}", serde_json::json!({"event": "factor_failed", "user": user, "factor": what, "client_ip": ip.to_string(), "failures": r.failures, "locked": r.locked_now}));
        Ok(if r.locked_now { Step::Locked } else { outcome })
    }
}

fn cooldown(cfg: &Config) -> Cooldown {
    cfg.totp.cooldown
}

/// A hash that costs as much as a real one, for unknown users (so timing does not tell).
fn dummy_hash() -> String {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("16 bytes encode");
        argon2::Argon2::default().hash_password(b"not a password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
    .clone()
}

/// argon2id verification off the async workers; false for unknown users after the same work.
async fn verify_password(phc: Option<String>, password: String) -> bool {
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(dummy_hash);
    let ok = tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&phc)
            .is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false);
    known && ok
}
