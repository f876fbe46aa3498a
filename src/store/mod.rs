//! State behind one interface with two backends (DESIGN.md, "State"):
//! short-lived challenge state with TTLs (login attempts, single-use codes,
//! rate-limit counters) and durable per-user state (TOTP secret, recovery
//! codes, lockout, revocations). Every operation that a race could abuse is a
//! single atomic call here (`use_totp_step`, `use_recovery_code`,
//! `reserve_guess`, `take_challenge`), so each backend makes it atomic in its
//! own way (a redb write transaction; MULTI/EXEC or Lua in Redis). A guess
//! at a password or code is counted before it is checked (`reserve_guess`),
//! so parallel guesses cannot get past `max_failures`.
//!
//! The request fast path never calls the store: it reads the in-memory
//! [`Revocations`] snapshot, which each backend keeps current and announces
//! through [`Store::subscribe`].

#[doc(hidden)]
pub mod conformance;
pub mod embedded;
pub mod invitation;
pub mod redis;
pub mod secrets;

use crate::devices::quota::{self, QuotaError};
use crate::devices::registry::{CertUpdate, DeviceCert};
use async_trait::async_trait;
pub use invitation::{Invitation, InvitationKind, InvitationTry};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Why a store call failed. `Unavailable` means "could not check": callers
/// must refuse the step, never accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    Unavailable(String),
    Corrupt(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "state store unavailable: {m}"),
            StoreError::Corrupt(m) => write!(f, "state store holds unreadable data: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user's TOTP authenticator. The secret is encrypted at rest by the caller
/// ([`secrets::SecretBox`]); the store only keeps bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpRecord {
    pub secret_sealed: Vec<u8>,
    /// False until the first code is confirmed (enrollment in progress).
    pub confirmed: bool,
    /// The highest time step accepted so far: a code is accepted once.
    pub last_step: u64,
    pub created_at: u64,
    /// Period in seconds (30 or 60) the authenticator was enrolled with.
    pub period: u64,
}

/// Why and since when a user is locked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub at: u64,
    /// `None`: until an administrator unlocks.
    pub until: Option<u64>,
    pub reason: String,
}

/// Everything durable about one user, as one record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub totp: Option<TotpRecord>,
    /// Hashes of unused recovery codes.
    pub recovery: Vec<String>,
    /// Consecutive failures of any factor (checked and wrong).
    pub failures: u32,
    /// Guesses reserved and still being checked, each as the time its
    /// reservation runs out ([`RESERVATION_SECS`]): kept apart from
    /// `failures`, so a success elsewhere (which resets `failures`) cannot
    /// erase another guess's reservation, and a reservation never settled (a
    /// timeout, a dropped request, a crash) stops counting by itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guessing: Vec<u64>,
    pub lock: Option<Lock>,
    /// When the authenticator was last revoked (cooldown starts here).
    pub totp_revoked_at: Option<u64>,
    /// Sessions issued before this time are void ("sign out everywhere").
    pub sessions_not_before: u64,
    /// An enrollment invitation sent by email (see [`invitation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation: Option<Box<Invitation>>,
}

/// The rules of every change to a user's record, in one place: each backend
/// runs one of these inside its own atomic read-modify-write.
impl UserRecord {
    /// Starts enrollment; refused when a confirmed authenticator exists.
    pub fn begin_enrollment(&mut self, record: TotpRecord) -> bool {
        if self.totp.as_ref().is_some_and(|t| t.confirmed) {
            return false;
        }
        self.totp = Some(TotpRecord { confirmed: false, ..record });
        true
    }

    /// Confirms a pending authenticator at `step` with fresh recovery codes.
    pub fn confirm_totp(&mut self, step: u64, recovery_hashes: Vec<String>) -> bool {
        match self.totp.as_mut() {
            Some(totp) if !totp.confirmed => {
                totp.confirmed = true;
                totp.last_step = step;
                self.recovery = recovery_hashes;
                self.failures = 0;
                true
            }
            _ => false,
        }
    }

    /// A code's step is accepted once, and never one at or before the last accepted.
    pub fn use_totp_step(&mut self, step: u64) -> bool {
        match self.totp.as_mut() {
            Some(totp) if totp.confirmed && step > totp.last_step => {
                totp.last_step = step;
                true
            }
            _ => false,
        }
    }

    pub fn use_recovery_code(&mut self, hash: &str) -> bool {
        let before = self.recovery.len();
        self.recovery.retain(|h| h != hash);
        self.recovery.len() < before
    }

    /// Counts a failure; `lock.at` is the caller's "now": a timed lock that has
    /// run out does not count as locked, so the next failure locks again.
    pub fn fail(&mut self, max_failures: u32, lock: Lock) -> FailureOutcome {
        self.failures = self.failures.saturating_add(1);
        let locked_now = self.failures >= max_failures && !self.is_locked(lock.at);
        if locked_now {
            self.lock = Some(lock);
        }
        FailureOutcome { failures: self.failures, locked_now }
    }

    /// Reserves one guess before it is checked, so that parallel guesses
    /// cannot exceed the limit: refused while the user is locked, or when
    /// failures plus guesses still being checked reach `max_failures`. A
    /// timed lock that has run out is cleared and leaves one guess (the next
    /// failure locks again), as [`UserRecord::fail`] does. `lock.at` is the
    /// caller's "now"; reservations older than [`RESERVATION_SECS`] are
    /// dropped. Failures at `max_failures` without a lock (`max_failures`
    /// lowered, or a record from before reservations were kept apart) lock
    /// here with `lock`, so every refusal is a lock administrators can see
    /// and lift.
    pub fn reserve_guess(&mut self, max_failures: u32, lock: Lock) -> Reservation {
        let now = lock.at;
        self.guessing.retain(|&until| until > now);
        if self.is_locked(now) {
            return Reservation::Refused;
        }
        if self.lock.take().is_some() {
            self.failures = self.failures.min(max_failures.saturating_sub(1));
        }
        if self.failures >= max_failures {
            self.lock = Some(lock);
            return Reservation::LockedNow;
        }
        if self.failures as usize + self.guessing.len() >= max_failures as usize {
            return Reservation::Refused;
        }
        self.guessing.push(now.saturating_add(RESERVATION_SECS));
        Reservation::Granted
    }

    /// A reserved guess was wrong: its reservation becomes a failure, and at
    /// `max_failures` the user is locked (`lock.at` is the caller's "now").
    pub fn settle_failure(&mut self, max_failures: u32, lock: Lock) -> FailureOutcome {
        self.end_reservation();
        self.fail(max_failures, lock)
    }

    /// A reserved guess was right but did not finish a login (a password
    /// before the second factor): its reservation ends, and nothing else
    /// changes (not another guess's reservation, not the failures).
    pub fn release_guess(&mut self) {
        self.end_reservation();
    }

    /// Ends the reservation that runs out first (reservations carry no
    /// identity: one that outlived [`RESERVATION_SECS`] may end a later one).
    fn end_reservation(&mut self) {
        if let Some(first) = self.guessing.iter().enumerate().min_by_key(|(_, &u)| u).map(|(i, _)| i) {
            self.guessing.remove(first);
        }
    }

    /// Clears the lock and the failure count; true when there was a lock.
    pub fn unlock(&mut self) -> bool {
        self.failures = 0;
        self.lock.take().is_some()
    }

    /// Removes the authenticator and recovery codes, starts the cooldown, and
    /// voids earlier sessions; returns the resulting "not before" time.
    pub fn revoke_totp(&mut self, at: u64) -> u64 {
        self.totp = None;
        self.recovery.clear();
        self.totp_revoked_at = Some(at);
        self.sign_out_everywhere(at)
    }

    /// Voids sessions issued before `at`, and always every session issued
    /// so far: the bar moves at least one second past where it was, because a
    /// login right after an earlier sign-out is stamped with that bar (see
    /// `challenge::login`), and a second sign-out within the same second must
    /// void it too. Returns the new "not before" time.
    pub fn sign_out_everywhere(&mut self, at: u64) -> u64 {
        self.sessions_not_before = at.max(self.sessions_not_before.saturating_add(1));
        self.sessions_not_before
    }

    pub fn is_locked(&self, now: u64) -> bool {
        self.lock.as_ref().is_some_and(|l| l.until.is_none_or(|u| now < u))
    }
}

/// How long a reserved guess may take to be checked and settled (hashing
/// queue, argon2, store calls: seconds at most) before its reservation stops
/// counting by itself.
pub const RESERVATION_SECS: u64 = 60;

/// What [`UserRecord::reserve_guess`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The guess may be checked; it is counted as in flight.
    Granted,
    /// Locked, or `max_failures` guesses counted or in flight: refuse unchecked.
    Refused,
    /// Refused, and this call recorded the lock (failures had reached the limit unlocked).
    LockedNow,
}

impl Reservation {
    pub fn granted(self) -> bool {
        self == Reservation::Granted
    }
}

/// What a failed attempt did to the user's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    pub failures: u32,
    /// True when this failure locked the user.
    pub locked_now: bool,
}

/// A change other instances (and this one's snapshot) must learn of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    SessionsNotBefore {
        user: String,
        at: u64,
    },
    SessionRevoked {
        id: String,
        until: u64,
    },
    Locked {
        user: String,
    },
    Unlocked {
        user: String,
    },
    /// A shared setting was written (e.g. the cookie keys were rotated): read it again.
    SettingChanged {
        name: String,
    },
    /// A device certificate was registered or changed (set-expiring, expire,
    /// revoke): the whole new record, so snapshots apply it without a read.
    DeviceCert(DeviceCert),
    /// The feed may have missed changes (a reconnect): read [`Store::revocations`] in full.
    Resync,
    /// The feed's connection was lost: changes may be missed until the next
    /// `Resync` (local to this instance, never published).
    FeedLost,
    /// A push request was made for `user`: open approver apps show it.
    PushRequested {
        user: String,
        id: String,
    },
    /// A push request was answered (or voided): the waiting browser goes on.
    PushSettled {
        id: String,
    },
}

/// One line of an export: JSON lines, so a large state streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exported {
    User { user: String, record: UserRecord },
    RevokedSession { id: String, until: u64 },
    DeviceCert { cert: DeviceCert },
    EntrancePass { pass: PassRecord },
}

/// An entrance pass as the store keeps it (see `identity::pass`). The
/// browser holds the signed cookie; this record is what the user's dashboard
/// and `portcullis admin pass list` show, and what a revocation marks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassRecord {
    /// `pass` + 22 base64url characters (never a session id's length).
    pub id: String,
    pub user: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// The client address the login that earned the pass came from.
    pub issued_from: String,
    /// A short description of the browser ("Chrome 131 on Windows").
    pub browser: String,
    /// The latest use recorded (written at most once an hour per pass and host, batched).
    pub last_seen: u64,
    /// When the pass stops working unless renewed on use.
    pub expires_at: u64,
    pub revoked: bool,
}

impl PassRecord {
    /// When it stops working: its end as issued, or, renewed on use, one
    /// lifetime after its last recorded use.
    pub fn works_until(&self, renew_on_use: bool) -> u64 {
        let renewed = self.last_seen.saturating_add(self.expires_at.saturating_sub(self.issued_at));
        if renew_on_use {
            self.expires_at.max(renewed)
        } else {
            self.expires_at
        }
    }
}

/// The order [`Store::passes`] lists passes in: newest first (`issued_at`
/// descending), then by id.
fn sort_passes(passes: &mut [PassRecord]) {
    passes.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then_with(|| a.id.cmp(&b.id)));
}

/// The in-memory view the request path reads: which sessions are void.
///
/// Both maps are persistent (structurally shared): the snapshot is replaced
/// whole on every change so that readers take no lock, and with these maps a
/// copy is a pointer and a change to it costs O(log n), however many
/// sessions are revoked.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    /// User → sessions issued before this time are void (sign out everywhere).
    pub not_before: imbl::HashMap<String, u64>,
    /// Revoked sessions (logout), kept until they would have expired anyway.
    pub revoked_sessions: RevokedSessions,
}

impl Revocations {
    /// Whether a session of `user` issued at `issued_at` with id `sid` is still valid.
    pub fn allows(&self, user: &str, sid: &str, issued_at: u64) -> bool {
        self.not_before.get(user).is_none_or(|&nb| issued_at >= nb) && !self.revoked_sessions.contains(sid)
    }

    pub fn apply(&mut self, c: &Change) {
        match c {
            Change::SessionsNotBefore { user, at } => {
                let e = self.not_before.entry(user.clone()).or_insert(0);
                *e = (*e).max(*at);
            }
            Change::SessionRevoked { id, until } => self.revoked_sessions.insert(id.clone(), *until),
            Change::Locked { .. }
            | Change::Unlocked { .. }
            | Change::Resync
            | Change::FeedLost
            | Change::SettingChanged { .. }
            | Change::DeviceCert(_)
            | Change::PushRequested { .. }
            | Change::PushSettled { .. } => {}
        }
    }
}

/// Revoked session id → the Unix time after which that session would have
/// expired anyway, so its revocation can be forgotten ([`RevokedSessions::prune`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokedSessions(imbl::HashMap<String, u64>);

impl RevokedSessions {
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// Records a revocation; of two for one session the later `until` is kept.
    pub fn insert(&mut self, id: String, until: u64) {
        let e = self.0.entry(id).or_insert(until);
        *e = (*e).max(until);
    }

    /// Forgets revocations of sessions expired by `now`; returns how many.
    pub fn prune(&mut self, now: u64) -> usize {
        let before = self.0.len();
        self.0.retain(|_, &until| until > now);
        before - self.0.len()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, u64)> for RevokedSessions {
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(items: I) -> Self {
        let mut out = RevokedSessions::default();
        for (id, until) in items {
            out.insert(id, until);
        }
        out
    }
}

/// The storage interface. Keys of challenge state are opaque strings chosen by
/// callers (random ids); user names are plain here and hashed by backends that
/// need to (Redis).
#[async_trait]
pub trait Store: Send + Sync {
    // --- challenge state (short-lived) ---
    /// Stores `value` under `key` for `ttl`, replacing any earlier value.
    async fn put_challenge(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()>;
    async fn get_challenge(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Gets and deletes in one step: of two concurrent callers at most one gets the value.
    async fn take_challenge(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn delete_challenge(&self, key: &str) -> StoreResult<()>;
    /// Adds one to a counter that expires `window` after its first increment; returns the new count.
    async fn count(&self, key: &str, window: Duration) -> StoreResult<u64>;
    /// Takes one back from a live counter (never below zero; an expired or
    /// absent counter stays absent): a guess counted before it was checked
    /// that turned out right.
    async fn uncount(&self, key: &str) -> StoreResult<()>;

    // --- durable per-user state ---
    async fn user(&self, user: &str) -> StoreResult<UserRecord>;
    /// Starts (or restarts) enrollment: an unconfirmed authenticator.
    /// Refused (false) when a confirmed authenticator exists: enrollment never
    /// replaces one (a revocation removes it first), even if a confirmation
    /// lands between the caller's read and this write.
    async fn set_pending_totp(&self, user: &str, record: TotpRecord) -> StoreResult<bool>;
    /// Confirms the pending authenticator at `step` and stores the recovery code hashes;
    /// false when there is no pending authenticator (e.g. it was revoked meanwhile).
    async fn confirm_totp(&self, user: &str, step: u64, recovery_hashes: Vec<String>) -> StoreResult<bool>;
    /// Accepts `step` only if it is later than every step accepted before (atomic).
    async fn use_totp_step(&self, user: &str, step: u64) -> StoreResult<bool>;
    /// Removes one recovery code hash if present (atomic); true when it was there.
    async fn use_recovery_code(&self, user: &str, hash: &str) -> StoreResult<bool>;
    async fn set_recovery_codes(&self, user: &str, hashes: Vec<String>) -> StoreResult<()>;
    /// Counts a failure that was not reserved; at `max_failures` consecutive
    /// failures the user is locked (atomic). Logins use the three below.
    async fn record_failure(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<FailureOutcome>;
    /// Counts a guess before it is checked (atomic): false when the user is
    /// locked or `max_failures` guesses are already counted or in flight;
    /// then the guess must be refused unchecked. `lock` (with `at` = now) is
    /// recorded when the failures already reach the limit without a lock;
    /// that publishes [`Change::Locked`]. See [`UserRecord::reserve_guess`].
    async fn reserve_guess(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<bool>;
    /// A reserved guess was wrong; locks the user at `max_failures` (atomic).
    async fn settle_failure(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<FailureOutcome>;
    /// A reserved guess was right but did not finish a login: it no longer counts.
    async fn release_guess(&self, user: &str) -> StoreResult<()>;
    /// Resets the consecutive-failure counter after a success.
    async fn reset_failures(&self, user: &str) -> StoreResult<()>;
    /// Clears the lock and the failure counter; true when the user was locked.
    async fn unlock(&self, user: &str) -> StoreResult<bool>;
    /// Users locked now, with their locks.
    async fn locked(&self, now: u64) -> StoreResult<Vec<(String, Lock)>>;
    /// Removes the authenticator and recovery codes, starts the cooldown and signs the user out everywhere.
    async fn revoke_totp(&self, user: &str, at: u64) -> StoreResult<()>;
    /// Signs the user out everywhere: sessions issued before `at` are void.
    /// Returns the resulting "not before" time ([`UserRecord::sign_out_everywhere`]).
    async fn sign_out_everywhere(&self, user: &str, at: u64) -> StoreResult<u64>;
    /// Sets or replaces `user`'s invitation (`None` clears it).
    async fn set_invitation(&self, user: &str, invitation: Option<Invitation>) -> StoreResult<()>;
    /// Counts one PIN try at `user`'s invitation with `code_hash`
    /// ([`UserRecord::try_invitation`]).
    async fn try_invitation(&self, user: &str, code_hash: &str, now: u64) -> StoreResult<InvitationTry>;
    /// Settles a try whose PIN was right ([`UserRecord::settle_invitation`]).
    async fn settle_invitation(&self, user: &str, code_hash: &str, used_at: Option<u64>) -> StoreResult<()>;
    /// Voids one session (logout) until `until`.
    async fn revoke_session(&self, id: &str, until: u64) -> StoreResult<()>;

    // --- the fast path's view ---
    /// The current revocations, read in full (at start and after a reconnect).
    async fn revocations(&self) -> StoreResult<Revocations>;
    /// Changes as they happen, from this instance and (Redis) every other.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change>;
    /// Tells every instance (this one included) of a change that has no
    /// record of its own to write (push requests and their answers).
    async fn publish(&self, change: Change) -> StoreResult<()>;

    // --- settings every instance shares ---
    /// A small durable value (e.g. the sealed cookie key ring).
    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Writes a setting, only when absent if `only_if_absent`; true when written.
    /// A write publishes `SettingChanged`.
    async fn put_setting(&self, name: &str, value: &[u8], only_if_absent: bool) -> StoreResult<bool>;

    // --- device certificates (src/devices: the rules live in `devices::quota`) ---
    /// Every registered certificate, in no particular order.
    async fn device_certs(&self) -> StoreResult<Vec<DeviceCert>>;
    /// Registers a newly issued certificate if the license allows it
    /// ([`quota::check_issue`]): the check and the insert are one atomic step,
    /// so two issuances racing for the last slot cannot both succeed.
    /// Publishes [`Change::DeviceCert`] when registered.
    async fn put_device_cert(&self, cert: DeviceCert, contracted: u32, now: u64)
        -> StoreResult<Result<(), QuotaError>>;
    /// Set-expiring, expire or revoke ([`quota::apply_update`]), atomically
    /// against every other registry change; returns the changed record and
    /// publishes [`Change::DeviceCert`], or changes nothing and says why.
    async fn update_device_cert(
        &self,
        serial: &str,
        update: CertUpdate,
        contracted: u32,
        now: u64,
    ) -> StoreResult<Result<DeviceCert, QuotaError>>;

    // --- entrance passes (src/identity/pass.rs) ---
    /// Records a newly issued pass.
    async fn put_pass(&self, pass: &PassRecord) -> StoreResult<()>;
    /// Every pass (of `user`, when given), newest first, with `last_seen`
    /// as recorded by [`Store::touch_passes`]; revoked ones included.
    async fn passes(&self, user: Option<&str>) -> StoreResult<Vec<PassRecord>>;
    /// Records uses: `(id, last_seen)`, a batch at a time; unknown ids are
    /// ignored, and a `last_seen` never moves backwards.
    async fn touch_passes(&self, seen: &[(String, u64)]) -> StoreResult<()>;
    /// Marks a pass revoked and voids it on every instance: the revocation
    /// goes out as [`Change::SessionRevoked`] with the pass id, kept until
    /// `until`. Returns the record as it was before, or `None` for an unknown id
    /// (then nothing is written).
    async fn revoke_pass(&self, id: &str, until: u64) -> StoreResult<Option<PassRecord>>;

    // --- moving state between backends (`portcullis admin store export/import`) ---
    /// Every durable record: users with state, sessions revoked and not yet
    /// expired, and device certificates.
    async fn export(&self) -> StoreResult<Vec<Exported>>;
    /// Writes records as exported (replacing a user's record); publishes `Resync`.
    async fn import(&self, items: Vec<Exported>) -> StoreResult<()>;
}

pub type SharedStore = Arc<dyn Store>;

#[cfg(test)]
mod revocation_tests {
    use super::*;

    fn revoked(id: &str, until: u64) -> Change {
        Change::SessionRevoked { id: id.into(), until }
    }

    #[test]
    fn revocations_are_forgotten_once_the_sessions_would_have_expired() {
        let mut r = Revocations::default();
        r.apply(&revoked("short", 100));
        r.apply(&revoked("long", 500));
        r.apply(&revoked("long", 200));
        assert!(!r.allows("u", "short", 1) && !r.allows("u", "long", 1));
        assert_eq!(r.revoked_sessions.prune(99), 0, "nothing has expired yet");
        assert_eq!(r.revoked_sessions.prune(100), 1, "expired at its `until`");
        assert!(!r.revoked_sessions.contains("short"));
        assert_eq!(r.revoked_sessions.prune(300), 0, "the later `until` of two is kept");
        assert!(r.revoked_sessions.contains("long"));
        assert_eq!(r.revoked_sessions.prune(500), 1);
        assert!(r.revoked_sessions.is_empty());
    }

    #[test]
    fn a_changed_copy_leaves_the_snapshot_readers_hold_as_it_was() {
        let revoked_sessions = (0..10_000).map(|i| (format!("sid-{i}"), 1_000)).collect();
        let held = Revocations { revoked_sessions, ..Default::default() };
        let mut next = held.clone();
        next.apply(&revoked("sid-new", 1_000));
        next.apply(&Change::SessionsNotBefore { user: "ann".into(), at: 50 });
        next.revoked_sessions.prune(1_000);
        assert_eq!((held.revoked_sessions.len(), next.revoked_sessions.len()), (10_000, 0));
        assert!(held.allows("ann", "sid-new", 1) && !next.allows("ann", "x", 49));
    }
}
