//! The session cookie: who signed in, on which app, with which factors, and
//! when.
//!
//! The payload is decoded on every request, so it is a compact binary record
//! rather than JSON: a version byte, the level, the factors (version 2; a
//! version-1 cookie from before the upgrade reads as factors unknown), three
//! big-endian `u64` times, then three length-prefixed strings (id, user, app). Every length is bounded
//! and checked, trailing bytes are refused, and nothing here panics on a
//! damaged payload (though only a correctly signed one ever reaches it).
//!
//! A session is tied to the app whose host issued it, so a cookie copied to
//! another app's host is refused; it ends at `expires_at` whatever happens,
//! and earlier when unused for the idle timeout. Active browsers get the
//! cookie re-issued with a fresh `seen_at` (see [`Session::needs_refresh`]).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

use super::cookie::{CookieError, KeyRing};

/// Name of the session cookie on every protected host.
pub const SESSION_COOKIE: &str = "__Host-portcullis-session";

/// The signing purpose of session cookies.
const PURPOSE: &str = "session";
const FORMAT_VERSION: u8 = 2;
/// Cookies written before the factors were recorded; still read.
const FORMAT_VERSION_1: u8 = 1;
/// Longest id, user or app name a payload may carry.
pub const MAX_FIELD_LEN: usize = 1024;
/// Tolerated clock difference between instances, in seconds.
const CLOCK_SKEW_SECS: u64 = 60;

/// Which factors the session has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionLevel {
    FirstFactor,
    BothFactors,
}

impl SessionLevel {
    fn to_byte(self) -> u8 {
        match self {
            SessionLevel::FirstFactor => 1,
            SessionLevel::BothFactors => 2,
        }
    }

    fn from_byte(b: u8) -> Option<SessionLevel> {
        match b {
            1 => Some(SessionLevel::FirstFactor),
            2 => Some(SessionLevel::BothFactors),
            _ => None,
        }
    }
}

/// Which factors the user proved to get the session, as bits: what the
/// signed identity for apps names in `amr` (RFC 8176). Empty when unknown (a
/// cookie from before they were recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Factors(u8);

impl Factors {
    pub const PASSWORD: Factors = Factors(1);
    pub const DEVICE_CERT: Factors = Factors(1 << 1);
    pub const TOTP: Factors = Factors(1 << 2);
    pub const RECOVERY_CODE: Factors = Factors(1 << 3);
    pub const PUSH: Factors = Factors(1 << 4);

    /// Both sets: a factor once proved is kept.
    pub fn with(self, other: Factors) -> Factors {
        Factors(self.0 | other.0)
    }

    pub fn contains(self, other: Factors) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The RFC 8176 `amr` values, in a fixed order: `pwd` (password), `swk`
    /// (a device certificate: a key held by the device, proved in TLS),
    /// `otp` (TOTP or a one-time recovery code), `mca` (a push approval on
    /// another device: a second channel), then `mfa` when two were proved.
    pub fn amr(self) -> Vec<&'static str> {
        let mut amr = Vec::with_capacity(4);
        for (bit, name) in [
            (Factors::PASSWORD, "pwd"),
            (Factors::DEVICE_CERT, "swk"),
            (Factors(Factors::TOTP.0 | Factors::RECOVERY_CODE.0), "otp"),
            (Factors::PUSH, "mca"),
        ] {
            if self.0 & bit.0 != 0 {
                amr.push(name);
            }
        }
        if amr.len() > 1 {
            amr.push("mfa");
        }
        amr
    }
}

/// A signed-in browser on one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// 22-char base64url of 16 random bytes (for revocation and audit).
    pub id: String,
    pub user: String,
    /// The app (name) whose host issued it.
    pub app: String,
    pub level: SessionLevel,
    /// How the user proved who they are (empty: not known).
    pub factors: Factors,
    /// Unix seconds.
    pub issued_at: u64,
    /// Last refresh, for the idle timeout.
    pub seen_at: u64,
    /// issued_at + session lifetime.
    pub expires_at: u64,
}

/// What a session hands on to the one that replaces it (a step-up) or to
/// another host's session (a handoff): when its first factor was proved, when
/// it ends, and whether it has both factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Carried {
    pub issued_at: u64,
    pub expires_at: u64,
    pub both_factors: bool,
    #[serde(default)]
    pub factors: Factors,
}

/// Why a session cookie was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// Bad signature, unknown key, malformed value or payload.
    Cookie(CookieError),
    /// Past `expires_at`.
    Expired,
    /// Unused for longer than the idle timeout.
    Idle,
    /// Issued on another app's host.
    OtherApp,
    /// Issued (or refreshed) later than now plus the tolerated clock skew.
    FromTheFuture,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Cookie(e) => write!(f, "session cookie: {e}"),
            SessionError::Expired => f.write_str("session expired"),
            SessionError::Idle => f.write_str("session idle for too long"),
            SessionError::OtherApp => f.write_str("session issued for another app"),
            SessionError::FromTheFuture => f.write_str("session issued in the future"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<CookieError> for SessionError {
    fn from(e: CookieError) -> SessionError {
        SessionError::Cookie(e)
    }
}

impl Session {
    /// A new session with a random id, seen now, ending after `lifetime_secs`.
    pub fn new(user: &str, app: &str, level: SessionLevel, now: u64, lifetime_secs: u64) -> Session {
        let mut raw = [0u8; 16];
        OsRng.fill_bytes(&mut raw);
        Session {
            id: URL_SAFE_NO_PAD.encode(raw),
            user: user.to_string(),
            app: app.to_string(),
            level,
            factors: Factors::default(),
            issued_at: now,
            seen_at: now,
            expires_at: now.saturating_add(lifetime_secs),
        }
    }

    /// The same session, noting `factors` as proved.
    pub fn proved(mut self, factors: Factors) -> Session {
        self.factors = self.factors.with(factors);
        self
    }

    /// Compact binary encoding; see the module docs. A string longer than
    /// [`MAX_FIELD_LEN`] is written as an over-long length with no bytes,
    /// which [`Session::decode`] refuses: such a session never verifies
    /// rather than being silently truncated to another identity.
    pub fn encode(&self) -> Vec<u8> {
        let strings = self.id.len() + self.user.len() + self.app.len();
        let mut out = Vec::with_capacity(3 + 3 * 8 + 3 * 2 + strings);
        out.push(FORMAT_VERSION);
        out.push(self.level.to_byte());
        out.push(self.factors.0);
        for t in [self.issued_at, self.seen_at, self.expires_at] {
            out.extend_from_slice(&t.to_be_bytes());
        }
        for s in [&self.id, &self.user, &self.app] {
            put_str(&mut out, s);
        }
        out
    }

    /// Parses [`Session::encode`] output; anything else is `Malformed`.
    pub fn decode(b: &[u8]) -> Result<Session, CookieError> {
        let mut r = Reader(b);
        let version = r.byte()?;
        if version != FORMAT_VERSION && version != FORMAT_VERSION_1 {
            return Err(CookieError::Malformed);
        }
        let level = SessionLevel::from_byte(r.byte()?).ok_or(CookieError::Malformed)?;
        let factors = if version == FORMAT_VERSION { Factors(r.byte()?) } else { Factors::default() };
        let (issued_at, seen_at, expires_at) = (r.u64()?, r.u64()?, r.u64()?);
        let (id, user, app) = (r.string()?, r.string()?, r.string()?);
        if !r.0.is_empty() {
            return Err(CookieError::Malformed);
        }
        Ok(Session { id, user, app, level, factors, issued_at, seen_at, expires_at })
    }

    /// The signed cookie value.
    pub fn to_cookie(&self, keys: &KeyRing) -> String {
        keys.sign(PURPOSE, &self.encode())
    }

    /// Verifies and decodes a cookie value, then checks it was issued for
    /// `app`, not in the future (beyond the clock skew), and is neither
    /// expired nor idle at `now`.
    pub fn from_cookie(
        value: &str,
        keys: &KeyRing,
        app: &str,
        now: u64,
        idle_timeout_secs: u64,
    ) -> Result<Session, SessionError> {
        let session = Session::verified(value, keys)?;
        session.check(app, now, idle_timeout_secs)?;
        Ok(session)
    }

    /// Verifies and decodes a cookie value, and nothing more: what the value
    /// says, for [`Session::check`] to judge at a given time.
    pub fn verified(value: &str, keys: &KeyRing) -> Result<Session, SessionError> {
        Ok(Session::decode(&keys.verify(PURPOSE, value)?)?)
    }

    /// Issued for `app`, not in the future (beyond the clock skew), neither
    /// expired nor idle at `now`.
    pub fn check(&self, app: &str, now: u64, idle_timeout_secs: u64) -> Result<(), SessionError> {
        if self.app != app {
            return Err(SessionError::OtherApp);
        }
        let latest = now.saturating_add(CLOCK_SKEW_SECS);
        if self.issued_at > latest || self.seen_at > latest {
            return Err(SessionError::FromTheFuture);
        }
        if now >= self.expires_at {
            return Err(SessionError::Expired);
        }
        if now >= self.seen_at.saturating_add(idle_timeout_secs) {
            return Err(SessionError::Idle);
        }
        Ok(())
    }

    /// What a session replacing this one in the same browser must keep.
    pub fn carried(&self) -> Carried {
        Carried {
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            both_factors: self.level == SessionLevel::BothFactors,
            factors: self.factors,
        }
    }

    /// Continues an earlier session: a step-up or a second look at the OTP
    /// page proves a factor again, but the first factor was proved when the
    /// earlier session began, so the absolute lifetime still counts from
    /// then, and a factor once proved is never dropped.
    pub fn continuing(mut self, earlier: &Carried) -> Session {
        self.factors = self.factors.with(earlier.factors);
        self.issued_at = earlier.issued_at;
        self.expires_at = self.expires_at.min(earlier.expires_at);
        if earlier.both_factors {
            self.level = SessionLevel::BothFactors;
        }
        self
    }

    /// True when the cookie should be re-issued with `seen_at = now` (more
    /// than a quarter of the idle timeout passed), so active users are not
    /// logged out while a stolen, unused cookie still times out. Refreshing
    /// only every quarter keeps Set-Cookie off most responses.
    pub fn needs_refresh(&self, now: u64, idle_timeout_secs: u64) -> bool {
        now.saturating_sub(self.seen_at) > idle_timeout_secs / 4
    }
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    match u16::try_from(s.len()) {
        Ok(len) if s.len() <= MAX_FIELD_LEN => {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        _ => out.extend_from_slice(&u16::MAX.to_be_bytes()),
    }
}

/// A cursor over a payload; every read checks the remaining length.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], CookieError> {
        if self.0.len() < n {
            return Err(CookieError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn byte(&mut self) -> Result<u8, CookieError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u64(&mut self) -> Result<u64, CookieError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    pub(super) fn string(&mut self) -> Result<String, CookieError> {
        let len = usize::from(u16::from_be_bytes([self.byte()?, self.byte()?]));
        if len > MAX_FIELD_LEN {
            return Err(CookieError::Malformed);
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CookieError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const NOW: u64 = 1_700_000_000;
    const HOUR: u64 = 3600;

    fn sample() -> Session {
        Session::new("alice", "wiki", SessionLevel::BothFactors, NOW, 8 * HOUR)
    }

    #[test]
    fn new_fills_times_and_random_id() {
        let s = sample();
        assert_eq!(s.id.len(), 22);
        assert!(s.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(s.id, sample().id);
        assert_eq!((s.issued_at, s.seen_at, s.expires_at), (NOW, NOW, NOW + 8 * HOUR));
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut s = sample();
        assert_eq!(Session::decode(&s.encode()).unwrap(), s);
        s.user = "山田 太郎".into();
        s.level = SessionLevel::FirstFactor;
        s.seen_at = u64::MAX;
        assert_eq!(Session::decode(&s.encode()).unwrap(), s);
        s.user = "u".repeat(MAX_FIELD_LEN);
        assert_eq!(Session::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn factors_round_trip_and_a_version_1_cookie_reads_as_unknown_factors() {
        let s = sample().proved(Factors::PASSWORD.with(Factors::PUSH));
        assert_eq!(Session::decode(&s.encode()).unwrap(), s);
        assert_eq!(s.factors.amr(), ["pwd", "mca", "mfa"]);
        // Version 1: no factor byte.
        let mut v1 = s.encode();
        v1[0] = FORMAT_VERSION_1;
        v1.remove(2);
        let old = Session::decode(&v1).unwrap();
        assert_eq!((old.factors, old.id.as_str()), (Factors::default(), s.id.as_str()));
        assert!(old.factors.amr().is_empty());
    }

    #[test]
    fn amr_names_each_factor_once() {
        assert_eq!(Factors::PASSWORD.amr(), ["pwd"]);
        assert_eq!(Factors::DEVICE_CERT.amr(), ["swk"]);
        assert_eq!(Factors::PASSWORD.with(Factors::TOTP).amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(Factors::PASSWORD.with(Factors::TOTP).with(Factors::RECOVERY_CODE).amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(Factors::DEVICE_CERT.with(Factors::PUSH).amr(), ["swk", "mca", "mfa"]);
    }

    #[test]
    fn oversize_field_never_decodes() {
        let mut s = sample();
        s.user = "u".repeat(MAX_FIELD_LEN + 1);
        assert_eq!(Session::decode(&s.encode()), Err(CookieError::Malformed));
        s.user = "u".repeat(70_000);
        assert_eq!(Session::decode(&s.encode()), Err(CookieError::Malformed));
    }

    #[test]
    fn truncated_or_garbage_bytes_error() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert_eq!(Session::decode(&bytes[..n]), Err(CookieError::Malformed), "{n}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Session::decode(&trailing), Err(CookieError::Malformed));
        for (at, b) in [(0, 3u8), (0, 0), (1, 0), (1, 3)] {
            let mut bad = bytes.clone();
            bad[at] = b;
            assert_eq!(Session::decode(&bad), Err(CookieError::Malformed));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..5_000 {
            let len = rng.gen_range(0..80);
            let mut b: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if rng.gen() && b.len() > 2 {
                b[0] = FORMAT_VERSION;
                b[1] = 1;
            }
            let _ = Session::decode(&b);
        }
    }

    #[test]
    fn cookie_round_trip() {
        let keys = KeyRing::generate();
        let s = sample();
        let value = s.to_cookie(&keys);
        assert!(value.len() < 200, "{}", value.len());
        assert_eq!(Session::from_cookie(&value, &keys, "wiki", NOW + 10, HOUR), Ok(s));
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        let keys = KeyRing::generate();
        let value = sample().to_cookie(&keys);
        let check = |app, now| Session::from_cookie(&value, &keys, app, now, HOUR);
        assert_eq!(check("mail", NOW), Err(SessionError::OtherApp));
        assert_eq!(check("wiki", NOW + HOUR), Err(SessionError::Idle));
        assert_eq!(check("wiki", NOW - 61), Err(SessionError::FromTheFuture));
        assert!(check("wiki", NOW - 60).is_ok());
        let mut active = sample();
        active.seen_at = NOW + 8 * HOUR - 10;
        let value = active.to_cookie(&keys);
        let at_end = Session::from_cookie(&value, &keys, "wiki", NOW + 8 * HOUR, HOUR);
        assert_eq!(at_end, Err(SessionError::Expired));
        let other_purpose = keys.sign("flow", &sample().encode());
        assert_eq!(
            Session::from_cookie(&other_purpose, &keys, "wiki", NOW, HOUR),
            Err(SessionError::Cookie(CookieError::BadSignature))
        );
        let garbage = keys.sign(PURPOSE, b"not a session");
        assert_eq!(
            Session::from_cookie(&garbage, &keys, "wiki", NOW, HOUR),
            Err(SessionError::Cookie(CookieError::Malformed))
        );
    }

    #[test]
    fn refresh_after_a_quarter_of_idle_timeout() {
        let s = sample();
        assert!(!s.needs_refresh(NOW, HOUR));
        assert!(!s.needs_refresh(NOW + HOUR / 4, HOUR));
        assert!(s.needs_refresh(NOW + HOUR / 4 + 1, HOUR));
        assert!(!s.needs_refresh(NOW - 30, HOUR), "clock behind seen_at");
    }

    #[test]
    fn continuing_keeps_the_first_factor_time_the_end_and_the_factors() {
        let earlier = Session::new("alice", "wiki", SessionLevel::FirstFactor, NOW, 8 * HOUR);
        let later = Session::new("alice", "wiki", SessionLevel::BothFactors, NOW + 7 * HOUR, 8 * HOUR);
        let s = later.clone().continuing(&earlier.carried());
        assert_eq!((s.issued_at, s.expires_at, s.level), (NOW, NOW + 8 * HOUR, SessionLevel::BothFactors));
        assert_eq!((s.id.as_str(), s.seen_at), (later.id.as_str(), NOW + 7 * HOUR), "a new id, seen now");
        let both = Session::new("alice", "wiki", SessionLevel::BothFactors, NOW, 8 * HOUR);
        let password_only = Session::new("alice", "wiki", SessionLevel::FirstFactor, NOW + HOUR, 8 * HOUR);
        assert_eq!(password_only.continuing(&both.carried()).level, SessionLevel::BothFactors, "no factor dropped");
        let short = Session::new("alice", "wiki", SessionLevel::FirstFactor, NOW + HOUR, HOUR);
        assert_eq!(short.continuing(&both.carried()).expires_at, NOW + 2 * HOUR, "never later than either end");
        let pwd = earlier.proved(Factors::PASSWORD);
        let otp = later.proved(Factors::TOTP).continuing(&pwd.carried());
        assert_eq!(otp.factors, Factors::PASSWORD.with(Factors::TOTP), "the factors of both");
    }

    #[test]
    fn error_display_wraps_cookie_error() {
        let e = SessionError::from(CookieError::BadSignature);
        assert_eq!(e.to_string(), "session cookie: bad signature");
    }
}
