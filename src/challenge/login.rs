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
//! gets the answers a real one would because it runs the same code: the same
//! (dummy) password hash work, and the same store calls on a durable record
//! with the same lock rules. That record is one of [`UNKNOWN_NAME_SLOTS`],
//! chosen by an HMAC of the name ([`LoginService::unknown_name_slot`]), so
//! the name itself is never stored and unknown names cannot grow the store.
//! The per-address brake is counted before the check too
//! ([`LoginService::reserve_address`]), and given back when the guess was right.

#[path = "login_push.rs"]
mod push;

use super::cooldown::Cooldown;
use super::hashing::HashPool;
use super::recovery;
use super::totp::{qr_svg, Totp, TotpSecret};
use crate::clock::Clock;
use crate::config::{hosts::AppId, Config, User};
use crate::identity::session::{Carried, Factors, Session, SessionLevel};
use crate::policy::expr::Facts;
use crate::store::secrets::SecretBox;
use crate::store::{Lock, Revocations, SharedStore, StoreError, TotpRecord, UserRecord};
use arc_swap::ArcSwap;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a login may take between steps.
const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);
/// A pending enrollment younger than this is shown again instead of replaced (page reloads).
const PENDING_REUSE_SECS: u64 = 10 * 60;
/// How many records count failures at unknown user names. Every unknown name
/// maps to one of them by an HMAC of the name, so however many names a client
/// makes up, the store holds at most this many (each a user record under a
/// name no user can have, see [`UNKNOWN_NAME_PREFIX`]). Two unknown names that
/// share a record share its count: a made-up name may lock a little earlier,
/// never a real user.
pub const UNKNOWN_NAME_SLOTS: u64 = 16_384;
/// The record names of unknown-name slots: `?` is not allowed in user names.
pub const UNKNOWN_NAME_PREFIX: &str = "?unknown-name/";
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
    /// Approve the login on a device (the TOTP form stays available when enrolled).
    NeedPush,
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
    /// Waiting on a push approval, with no authenticator to fall back on.
    Push,
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
    /// Its id: a sign-out of that session during the step-up voids the step-up.
    #[serde(default)]
    pub stepping_up_id: Option<String>,
    /// How the first factor was proved (password or device certificate).
    #[serde(default)]
    pub first: Factors,
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
    /// The revocation snapshot the request path reads (see [`crate::auth::Auth`]).
    revocations: Arc<ArcSwap<Revocations>>,
}

/// A session being stepped up: what the new one keeps, and its id.
type Earlier = (Carried, String);

impl From<StoreError> for Step {
    fn from(e: StoreError) -> Step {
        tracing::warn!("login step refused: {e}");
        Step::Unavailable
    }
}

type StepResult<T> = Result<T, Step>;

fn attempt_key(flow: &str) -> String {
    format!("attempt:{flow}")
}

impl LoginService {
    pub fn new(store: SharedStore, clock: Arc<dyn Clock>, secrets: SecretBox, pepper: [u8; 32]) -> Self {
        let revocations = Arc::default();
        LoginService { store, clock, secrets, pepper, hashing: HashPool::for_this_machine(), revocations }
    }

    /// Reads session revocations from `snapshot` (the one the request path keeps current).
    pub fn with_revocations(mut self, snapshot: &Arc<ArcSwap<Revocations>>) -> Self {
        self.revocations = snapshot.clone();
        self
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
            // A place for the hash first: a full pool turns the login away before any work.
            let ticket = self.hashing.admit().ok_or(Step::Busy)?;
            let brake = self.reserve_address(cfg, ip).await?;
            let name = username.trim();
            let user = cfg.users.get(name);
            // An unknown name runs the same store calls on its slot's record.
            let counted = user.map_or_else(|| self.unknown_name_slot(name), |u| u.username.clone());
            self.reserve(cfg, &counted).await?;
            let right = match user {
                Some(user) => ticket.verify(user.password_hash.clone(), password.to_string()).await,
                None => {
                    let like = cfg.users.iter().next().map(|u| u.password_hash.clone());
                    ticket.verify_nobody(like, password.to_string()).await;
                    false
                }
            };
            let Some(user) = user.filter(|_| right) else {
                return self.failure(cfg, &counted, ip, "password", Step::WrongCredentials).await;
            };
            // A right password is not a finished login: the guess no longer counts.
            self.store.uncount(&brake).await?;
            self.store.release_guess(&user.username).await?;
            let rec = self.store.user(&user.username).await?;
            let first = (Factors::PASSWORD, None);
            self.after_first_factor(cfg, app, facts, flow, user, &rec, enroll_code, rd, first).await
        }
        .await;
        let step = result.unwrap_or_else(|s| s);
        step_event("password", cfg.users.get(username.trim()).map(|u| u.username.as_str()), ip, &step);
        step
    }

    /// An administrator's password asked again before an act (unlock,
    /// revocation, certificate changes). Counted like a password guess, and a
    /// wrong one like a failed login, so a stolen session cannot try passwords
    /// without locking its user. `Ok(true)` when right, `Ok(false)` when wrong;
    /// `Err` with `Locked`, `Busy` or `Unavailable` when it was not checked.
    pub async fn confirm_password(&self, cfg: &Config, username: &str, password: &str, ip: IpAddr) -> StepResult<bool> {
        let user = cfg.users.get(username).ok_or(Step::WrongCredentials)?;
        let ticket = self.hashing.admit().ok_or(Step::Busy)?;
        self.reserve(cfg, &user.username).await?;
        if ticket.verify(user.password_hash.clone(), password.to_string()).await {
            self.store.release_guess(&user.username).await?;
            return Ok(true);
        }
        match self.failure(cfg, &user.username, ip, "confirmation password", Step::WrongCredentials).await? {
            Step::Locked => Err(Step::Locked),
            _ => Ok(false),
        }
    }

    /// Step 1 with a device certificate instead of a password: the caller has
    /// checked the certificate (verified chain, registered, active or
    /// expiring, naming `username`); the policy decides what comes next, as
    /// after a right password. No guess is counted: nothing was guessed.
    #[allow(clippy::too_many_arguments)]
    pub async fn certificate(
        &self,
        cfg: &Config,
        app: AppId,
        facts: &Facts,
        flow: &str,
        username: &str,
        rd: &str,
    ) -> Step {
        let Some(user) = cfg.users.get(username) else { return Step::WrongCredentials };
        let result: StepResult<Step> = async {
            let rec = self.store.user(&user.username).await?;
            if rec.is_locked(self.now()) {
                return Err(Step::Locked);
            }
            let first = (Factors::DEVICE_CERT, None);
            self.after_first_factor(cfg, app, facts, flow, user, &rec, None, rd, first).await
        }
        .await;
        result.unwrap_or_else(|s| s)
    }

    /// The record that counts failures at the unknown name `name` (see [`unknown_name_slot`]).
    pub fn unknown_name_slot(&self, name: &str) -> String {
        unknown_name_slot(&self.pepper, name)
    }

    /// Counts a guess before it is checked; refused unchecked (`Locked`) when
    /// the user is locked or `max_failures` guesses are counted or in flight.
    async fn reserve(&self, cfg: &Config, user: &str) -> StepResult<()> {
        let lock = self.lock(cfg, "guesses");
        let granted = self.store.reserve_guess(user, cfg.lockout.max_failures, lock).await?;
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
        (first, earlier): (Factors, Option<Earlier>),
    ) -> StepResult<Step> {
        let app = cfg.app(app_id);
        let group = &cfg.groups[user.policy_group];
        if !app.admits(user.policy_group) || !group.allow.eval(facts) {
            return Ok(Step::Denied);
        }
        let now = self.now();
        // Administrators always sign in with a second factor, whatever `otp_skip` says.
        if group.otp_skip.eval(facts) && !user.role.administers() {
            self.store.reset_failures(&user.username).await?;
            return Ok(self.done(cfg, user, &app.name, (SessionLevel::FirstFactor, first), rec, rd, earlier));
        }
        if let Some(until) = cooldown(cfg).waiting(rec.totp_revoked_at, now) {
            return Ok(Step::Cooldown { until });
        }
        let push = self.push_offered(cfg, user).await?;
        let stage = match &rec.totp {
            _ if push => Self::push_stage(rec),
            Some(t) if t.confirmed => Stage::Totp,
            _ if group.enroll_when.eval(facts) => Stage::Enroll,
            _ if self.take_enroll_link(enroll_code, &user.username).await? => Stage::Enroll,
            _ => return Ok(Step::AskAdmin),
        };
        let (username, app_name, rd) = (user.username.clone(), app.name.clone(), rd.to_string());
        let (stepping_up, stepping_up_id) = earlier.map_or((None, None), |(c, id)| (Some(c), Some(id)));
        let attempt = Attempt { user: username, app: app_name, stage, rd, stepping_up, stepping_up_id, first };
        let bytes = serde_json::to_vec(&attempt).unwrap_or_default();
        self.forget_push(flow).await?;
        self.store.put_challenge(&attempt_key(flow), &bytes, ATTEMPT_TTL).await?;
        Ok(match stage {
            _ if push => Step::NeedPush,
            Stage::Totp => Step::NeedTotp,
            Stage::Enroll | Stage::Push => Step::NeedEnroll,
        })
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
        // Nothing is proved anew before the second factor; the earlier factors are carried.
        let carried = (Factors::default(), Some((earlier.carried(), earlier.id.clone())));
        self.after_first_factor(cfg, app, facts, flow, user, &rec, None, rd, carried).await.unwrap_or_else(|s| s)
    }

    #[allow(clippy::too_many_arguments)]
    fn done(
        &self,
        cfg: &Config,
        user: &User,
        app: &str,
        (level, factors): (SessionLevel, Factors),
        rec: &UserRecord,
        rd: &str,
        earlier: Option<Earlier>,
    ) -> Step {
        let group = &cfg.groups[user.policy_group];
        // Never before a "sign out everywhere" of the same second.
        let issued = self.now().max(rec.sessions_not_before);
        let lifetime = group.session_lifetime.as_secs();
        let mut session = Session::new(&user.username, app, level, issued, lifetime).proved(factors);
        if let Some((earlier, id)) = earlier {
            // A sign-out (of that session, or everywhere) during the step-up
            // ended the session being stepped up: nothing is left to continue.
            let signed_out = !self.revocations.load().allows(&user.username, &id, earlier.issued_at);
            if signed_out || earlier.issued_at < rec.sessions_not_before {
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
        let step = self.second_factor(cfg, ip, flow, code, false).await.unwrap_or_else(|s| s);
        step_event("totp", step.user(), ip, &step);
        step
    }

    /// Step 2, instead: a one-time recovery code.
    pub async fn recovery(&self, cfg: &Config, ip: IpAddr, flow: &str, code: &str) -> Step {
        let step = self.second_factor(cfg, ip, flow, code, true).await.unwrap_or_else(|s| s);
        step_event("recovery code", step.user(), ip, &step);
        step
    }

    async fn second_factor(
        &self,
        cfg: &Config,
        ip: IpAddr,
        flow: &str,
        code: &str,
        recovery: bool,
    ) -> StepResult<Step> {
        let attempt = self.attempt(flow, Stage::Totp).await?;
        let brake = self.reserve_address(cfg, ip).await?;
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
        self.store.uncount(&brake).await?;
        let second = if recovery { Factors::RECOVERY_CODE } else { Factors::TOTP };
        self.finish(cfg, user, &attempt, flow, &rec, second).await
    }

    /// The second factor `second` was proved: the login is done.
    async fn finish(
        &self,
        cfg: &Config,
        user: &User,
        attempt: &Attempt,
        flow: &str,
        rec: &UserRecord,
        second: Factors,
    ) -> StepResult<Step> {
        // The right code's own reservation ends; others' in flight stay counted.
        self.store.release_guess(&user.username).await?;
        self.store.reset_failures(&user.username).await?;
        self.store.delete_challenge(&attempt_key(flow)).await?;
        let earlier = attempt.stepping_up.map(|c| (c, attempt.stepping_up_id.clone().unwrap_or_default()));
        let proved = (SessionLevel::BothFactors, attempt.first.with(second));
        Ok(self.done(cfg, user, &attempt.app, proved, rec, &attempt.rd, earlier))
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
            tracing::error!("the TOTP secret of `{user}` cannot be decrypted ({e:?}): was the secrets key replaced?");
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
        let uri = totp.otpauth_uri(&secret, &cfg.totp.issuer, &user.username).map_err(|e| {
            // The config refuses such an issuer and usernames hold no ':', so this is a bug if it shows.
            log::error!("enrollment of `{}`: {e}", user.username);
            Step::Unavailable
        })?;
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
        let attempt = self.attempt(flow, Stage::Enroll).await?;
        let brake = self.reserve_address(cfg, ip).await?;
        let (user, rec) = self.guessed_user(cfg, &attempt).await?;
        let pending = rec.totp.as_ref().filter(|t| !t.confirmed).ok_or(Step::NoAttempt)?;
        let secret = self.open_secret(&user.username, pending)?;
        let Some(step) = Totp::new(pending.period).verify(&secret, code, self.now()) else {
            return Err(self
                .failure(cfg, &user.username, ip, "enrollment code", Step::WrongCode)
                .await
                .unwrap_or_else(|s| s));
        };
        self.store.uncount(&brake).await?;
        let codes = recovery::generate();
        let hashes = codes.iter().map(|c| recovery::hash(&self.pepper, c)).collect();
        if !self.store.confirm_totp(&user.username, step, hashes).await? {
            return Err(Step::NoAttempt);
        }
        crate::audit!("totp_enrolled", user = %user.username);
        Ok((self.finish(cfg, user, &attempt, flow, &rec, Factors::TOTP).await?, codes))
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

    /// Counts a guess from `ip`'s network (see [`brake_key`]) before it is
    /// checked, atomically in the store, so parallel guesses from one network
    /// cannot get past `per_address_max` either; past it the network's
    /// guesses are refused (`TooMany`) unchecked until the window ends.
    /// Returns the counter's key: a right guess gives its count back
    /// ([`Store::uncount`](crate::store::Store::uncount)), so the brake
    /// counts wrong guesses and guesses refused as locked.
    async fn reserve_address(&self, cfg: &Config, ip: IpAddr) -> StepResult<String> {
        let l = &cfg.lockout;
        let key = format!("guess-ip:{}", brake_key(l, ip));
        let n = self.store.count(&key, l.per_address_window).await?;
        if n > l.per_address_max {
            return Err(Step::TooMany);
        }
        Ok(key)
    }

    /// The lock a failure (or a reservation that finds the limit reached) records now.
    fn lock(&self, cfg: &Config, what: &str) -> Lock {
        let (l, now) = (&cfg.lockout, self.now());
        let reason = format!("{} failed {what} attempts", l.max_failures);
        Lock { at: now, until: l.duration.map(|d| now + d.as_secs()), reason }
    }

    /// Settles a reserved guess that was wrong (its address was counted when
    /// it was reserved); returns `outcome`, or `Locked` when this failure
    /// locked the user (or the unknown name's slot).
    async fn failure(&self, cfg: &Config, user: &str, ip: IpAddr, what: &str, outcome: Step) -> StepResult<Step> {
        let r = self.store.settle_failure(user, cfg.lockout.max_failures, self.lock(cfg, what)).await?;
        let unknown = user.starts_with(UNKNOWN_NAME_PREFIX);
        let shown = (!unknown).then_some(user);
        crate::audit!(
            "factor_failed",
            user = shown,
            unknown_user = unknown,
            factor = %what,
            client_ip = %ip,
            failures = r.failures,
            locked = r.locked_now
        );
        if r.locked_now {
            crate::audit!("locked_out", user = shown, unknown_user = unknown, factor = %what, client_ip = %ip);
        }
        Ok(if r.locked_now { Step::Locked } else { outcome })
    }
}

/// The audit event of a finished login step: which factor, whose (when known), what came of it.
fn step_event(factor: &str, user: Option<&str>, ip: IpAddr, step: &Step) {
    crate::audit!("login_step", factor, user, client_ip = %ip, outcome = step.name());
}

impl Step {
    /// The step's name in the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Done { .. } => "signed_in",
            Step::NeedTotp => "need_totp",
            Step::NeedEnroll => "need_enroll",
            Step::NeedPush => "need_push",
            Step::Denied => "denied",
            Step::AskAdmin => "ask_admin",
            Step::Locked => "locked",
            Step::Cooldown { .. } => "cooldown",
            Step::WrongCredentials => "wrong_credentials",
            Step::WrongCode => "wrong_code",
            Step::Replayed => "replayed",
            Step::NoAttempt => "no_attempt",
            Step::Unavailable => "unavailable",
            Step::TooMany => "too_many",
            Step::Busy => "busy",
        }
    }

    /// The user a finished login signed in.
    fn user(&self) -> Option<&str> {
        match self {
            Step::Done { session, .. } => Some(session.user.as_str()),
            _ => None,
        }
    }
}

fn cooldown(cfg: &Config) -> Cooldown {
    cfg.totp.cooldown
}

/// The record that counts failures at the unknown name `name`: one of
/// [`UNKNOWN_NAME_SLOTS`], by an HMAC of the name under the instance's pepper
/// (the same on every instance sharing a store), so a password typed into the
/// name field is never stored and cannot be recovered from a slot's name.
pub fn unknown_name_slot(pepper: &[u8], name: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC accepts any key length");
    mac.update(b"unknown user name\0");
    mac.update(name.as_bytes());
    let digest = mac.finalize().into_bytes();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 of 32 bytes"));
    format!("{UNKNOWN_NAME_PREFIX}{}", n % UNKNOWN_NAME_SLOTS)
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
    fn unknown_names_share_a_bounded_set_of_records_that_do_not_hold_the_name() {
        let slot = |name: &str| unknown_name_slot(&[7; 32], name);
        let k = slot("hunter2-typed-as-a-name");
        assert!(k.starts_with(UNKNOWN_NAME_PREFIX) && !k.contains("hunter2"), "{k}");
        assert_eq!(slot("x"), slot("x"), "a name always counts in the same record");
        assert_ne!(unknown_name_slot(&[8; 32], "x"), slot("x"), "keyed: another pepper, other slots");
        let slots: std::collections::HashSet<String> = (0..400_000).map(|i| slot(&format!("name{i}"))).collect();
        assert_eq!(slots.len() as u64, UNKNOWN_NAME_SLOTS, "400 000 names fill the table and no more");
        assert!(slots.iter().all(|s| s[UNKNOWN_NAME_PREFIX.len()..].parse::<u64>().unwrap() < UNKNOWN_NAME_SLOTS));
        assert!(k.contains('?'), "user names are letters, digits, `.`, `_`, `-`, `@`: none is a slot's");
    }
}
