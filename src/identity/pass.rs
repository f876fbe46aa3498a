//! The entrance pass: a long-lived signed cookie a browser earns when a login
//! meets `[entrance_pass] issue_when` (say, "logged in from the internal
//! network"), and that makes the `entrance_pass` condition true later, for
//! that user only, from anywhere.
//!
//! The cookie carries the pass id, its user and its times, in the same
//! compact signed form as the session (a version byte, three big-endian
//! `u64` times, two length-prefixed strings), under its own signing purpose.
//! Checking it costs one HMAC and one lookup in the in-memory revocations
//! (a revoked pass id sits in the same set as revoked session ids, until the
//! pass would have ended anyway): no store read per request.
//!
//! Passes are for browsers: a request counts as a browser's when it carries
//! the Fetch Metadata headers every current browser sends on every request
//! ([`is_browser`]). That is about scope (apps and scripts never hold a pass),
//! not security: the signed, unrevoked pass is what counts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

use super::cookie::{CookieError, KeyRing};
use super::session::{put_str, Reader};

/// The pass cookie on every app host.
pub const PASS_COOKIE: &str = "__Host-portcullis-pass";
const PURPOSE: &str = "entrance-pass";
const FORMAT_VERSION: u8 = 1;
/// A pass id: this prefix and 22 base64url characters, never the 22
/// characters of a session id, so both share the revocation set.
const ID_PREFIX: &str = "pass";
/// Uses are recorded (and a renewing pass renewed) at most this often per
/// pass and app host.
pub const SEEN_EVERY_SECS: u64 = 3600;
/// Tolerated clock difference between instances, in seconds.
const CLOCK_SKEW_SECS: u64 = 60;

/// What the cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub id: String,
    pub user: String,
    pub issued_at: u64,
    /// The last time this host re-issued the cookie (see [`SEEN_EVERY_SECS`]).
    pub seen_at: u64,
    pub expires_at: u64,
    /// The lifetime it was issued with: a renewal ends one lifetime after
    /// the use, never more (a revocation is kept that long).
    pub lifetime: u64,
}

/// Why a pass counts as no pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassError {
    Cookie(CookieError),
    Expired,
    FromTheFuture,
    Revoked,
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassError::Cookie(e) => write!(f, "not a pass signed by this service ({e})"),
            PassError::Expired => f.write_str("the pass has expired"),
            PassError::FromTheFuture => f.write_str("the pass was issued in the future"),
            PassError::Revoked => f.write_str("the pass was revoked"),
        }
    }
}

impl From<CookieError> for PassError {
    fn from(e: CookieError) -> PassError {
        PassError::Cookie(e)
    }
}

impl Pass {
    /// A new pass for `user`, ending after `lifetime_secs`.
    pub fn new(user: &str, now: u64, lifetime_secs: u64) -> Pass {
        let mut raw = [0u8; 16];
        OsRng.fill_bytes(&mut raw);
        Pass {
            id: format!("{ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)),
            user: user.to_string(),
            issued_at: now,
            seen_at: now,
            expires_at: now.saturating_add(lifetime_secs),
            lifetime: lifetime_secs,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 3 * 8 + 4 + self.id.len() + self.user.len());
        out.push(FORMAT_VERSION);
        for t in [self.issued_at, self.seen_at, self.expires_at, self.lifetime] {
            out.extend_from_slice(&t.to_be_bytes());
        }
        put_str(&mut out, &self.id);
        put_str(&mut out, &self.user);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Pass, CookieError> {
        let mut r = Reader(b);
        if r.byte()? != FORMAT_VERSION {
            return Err(CookieError::Malformed);
        }
        let (issued_at, seen_at, expires_at, lifetime) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let (id, user) = (r.string()?, r.string()?);
        if !r.0.is_empty() || !id.starts_with(ID_PREFIX) {
            return Err(CookieError::Malformed);
        }
        Ok(Pass { id, user, issued_at, seen_at, expires_at, lifetime })
    }

    pub fn to_cookie(&self, keys: &KeyRing) -> String {
        keys.sign(PURPOSE, &self.encode())
    }

    /// Verifies and decodes a cookie value and checks its times at `now`;
    /// `revoked` says whether an id was revoked (the in-memory set).
    pub fn from_cookie(
        value: &str,
        keys: &KeyRing,
        now: u64,
        revoked: impl Fn(&str) -> bool,
    ) -> Result<Pass, PassError> {
        let pass = Pass::verified(value, keys)?;
        pass.check(now, revoked)?;
        Ok(pass)
    }

    /// Verifies and decodes a cookie value, and nothing more: what the value
    /// says, for [`Pass::check`] to judge at a given time.
    pub fn verified(value: &str, keys: &KeyRing) -> Result<Pass, PassError> {
        Ok(Pass::decode(&keys.verify(PURPOSE, value)?)?)
    }

    /// Not from the future (beyond the clock skew), unexpired at `now`, not revoked.
    pub fn check(&self, now: u64, revoked: impl Fn(&str) -> bool) -> Result<(), PassError> {
        let pass = self;
        let latest = now.saturating_add(CLOCK_SKEW_SECS);
        if pass.issued_at > latest || pass.seen_at > latest {
            return Err(PassError::FromTheFuture);
        }
        if now >= pass.expires_at {
            return Err(PassError::Expired);
        }
        if revoked(&pass.id) {
            return Err(PassError::Revoked);
        }
        Ok(())
    }

    /// Whether this host should re-issue the cookie now (and record a use).
    pub fn needs_refresh(&self, now: u64) -> bool {
        now.saturating_sub(self.seen_at) >= SEEN_EVERY_SECS
    }

    /// The cookie re-issued at `now`; with `renew`, ending its lifetime from now.
    pub fn refreshed(&self, now: u64, renew: bool) -> Pass {
        let mut next = self.clone();
        next.seen_at = now;
        if renew {
            next.expires_at = now.saturating_add(self.lifetime);
        }
        next
    }
}

/// Whether a request comes from a browser: it carries `Sec-Fetch-Site`,
/// `Sec-Fetch-Mode` and `Sec-Fetch-Dest`, which every current browser sends
/// on page loads, form posts and scripts' `fetch` alike, and apps and HTTP
/// libraries do not.
pub fn is_browser(headers: &http::HeaderMap) -> bool {
    ["sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"].iter().all(|n| headers.contains_key(*n))
}

/// A short description of the browser for the user's list of passes, from
/// the User-Agent ("Chrome on Windows"); never used for a decision.
pub fn describe_browser(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chromium/") {
        "Chromium"
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "A browser"
    };
    let os = if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Mac OS X") {
        "macOS"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        return browser.to_string();
    };
    let headless = if ua.contains("Headless") { " (headless)" } else { "" };
    format!("{browser}{headless} on {os}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const DAY: u64 = 86_400;

    #[test]
    fn a_pass_round_trips_and_is_refused_when_tampered_expired_revoked_or_of_another_purpose() {
        let keys = KeyRing::generate();
        let p = Pass::new("alice", NOW, 180 * DAY);
        assert_eq!(p.id.len(), 26);
        assert!(p.id.starts_with("pass"));
        let cookie = p.to_cookie(&keys);
        assert_eq!(Pass::from_cookie(&cookie, &keys, NOW + DAY, |_| false), Ok(p.clone()));
        assert_eq!(Pass::from_cookie(&cookie, &keys, NOW + 180 * DAY, |_| false), Err(PassError::Expired));
        assert_eq!(Pass::from_cookie(&cookie, &keys, NOW, |id| id == p.id), Err(PassError::Revoked));
        assert!(matches!(Pass::from_cookie(&cookie, &KeyRing::generate(), NOW, |_| false), Err(PassError::Cookie(_))));
        let mut tampered = cookie.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(Pass::from_cookie(&tampered, &keys, NOW, |_| false).is_err());
        // A session cookie is no pass, though both are signed by the same keys.
        let session = crate::identity::session::Session::new(
            "alice",
            "wiki",
            crate::identity::session::SessionLevel::BothFactors,
            NOW,
            DAY,
        );
        assert!(Pass::from_cookie(&session.to_cookie(&keys), &keys, NOW, |_| false).is_err());
        // Issued in the future (a forged clock on another instance).
        let future = Pass::new("alice", NOW + 3600, DAY).to_cookie(&keys);
        assert_eq!(Pass::from_cookie(&future, &keys, NOW, |_| false), Err(PassError::FromTheFuture));
    }

    #[test]
    fn refreshing_moves_seen_and_renews_only_when_asked() {
        let p = Pass::new("alice", NOW, 10 * DAY);
        assert!(!p.needs_refresh(NOW + SEEN_EVERY_SECS - 1));
        assert!(p.needs_refresh(NOW + SEEN_EVERY_SECS));
        let kept = p.refreshed(NOW + DAY, false);
        assert_eq!((kept.seen_at, kept.expires_at), (NOW + DAY, NOW + 10 * DAY));
        let renewed = p.refreshed(NOW + DAY, true);
        assert_eq!(renewed.expires_at, NOW + 11 * DAY);
        assert_eq!((renewed.id, renewed.issued_at), (p.id, p.issued_at));
    }

    #[test]
    fn only_requests_with_all_three_fetch_metadata_headers_are_a_browsers() {
        let mut h = http::HeaderMap::new();
        assert!(!is_browser(&h));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        h.insert("sec-fetch-mode", "navigate".parse().unwrap());
        assert!(!is_browser(&h));
        h.insert("sec-fetch-dest", "document".parse().unwrap());
        assert!(is_browser(&h));
    }

    #[test]
    fn browsers_are_described_briefly() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(describe_browser(chrome), "Chrome on Windows");
        let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
        assert_eq!(describe_browser(headless), "Chrome (headless) on Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_browser(safari), "Safari on iOS");
        assert_eq!(describe_browser("curl/8.0"), "A browser");
    }
}
