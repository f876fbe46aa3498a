//! The device-certificate registry: one record per issued certificate, and
//! the in-memory snapshot the request path reads.
//!
//! A record's stored `status` is what an administrator last did to it. Time
//! moves it on by itself: an `expiring` certificate is `expired` from its
//! `expires_at`, and any certificate is `expired` from its own `not_after`.
//! So the status that counts is always [`DeviceCert::status_at`] with the
//! clock's "now", never the stored field alone.

use crate::store::Change;
use serde::{Deserialize, Serialize};

/// A certificate's place in its life. `Active` counts toward the license;
/// `Expiring` still works but counts 0 and ends by itself; `Expired` and
/// `Revoked` no longer work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    Active,
    Expiring,
    Expired,
    Revoked,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Active => "active",
            CertStatus::Expiring => "expiring",
            CertStatus::Expired => "expired",
            CertStatus::Revoked => "revoked",
        }
    }

    /// Whether a certificate in this status satisfies `device_cert`.
    pub fn works(self) -> bool {
        matches!(self, CertStatus::Active | CertStatus::Expiring)
    }
}

impl std::fmt::Display for CertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One issued device certificate, as every store backend keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCert {
    /// Lowercase hex, 32 characters (a random 128-bit serial).
    pub serial: String,
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub fingerprint: String,
    pub user: String,
    /// The device's name as the administrator gave it.
    pub device: String,
    pub issued_at: u64,
    /// The certificate's own validity end.
    pub not_after: u64,
    /// What an administrator last did; see [`DeviceCert::status_at`] for what counts.
    pub status: CertStatus,
    /// When it stops working: set by set-expiring (then + 90 days) or expire (then).
    pub expires_at: Option<u64>,
    /// When it was set expiring: one use of the replacement allowance.
    pub set_expiring_at: Option<u64>,
}

impl DeviceCert {
    /// The status at `now`, with time applied: expiring turns expired at
    /// `expires_at`, and anything but revoked is expired from `not_after`.
    pub fn status_at(&self, now: u64) -> CertStatus {
        match self.status {
            CertStatus::Revoked => CertStatus::Revoked,
            CertStatus::Expired => CertStatus::Expired,
            _ if now >= self.not_after => CertStatus::Expired,
            CertStatus::Expiring if self.expires_at.is_none_or(|at| now >= at) => CertStatus::Expired,
            s => s,
        }
    }

    /// When it stops working, if it has not yet: the earlier of `expires_at` and `not_after`.
    pub fn works_until(&self) -> u64 {
        self.expires_at.map_or(self.not_after, |at| at.min(self.not_after))
    }

    /// Still works at `now` and stops within `within` seconds: the rule the
    /// dashboard banner, `cert list --expiring-within` and the gauge share.
    pub fn stops_within(&self, now: u64, within: u64) -> bool {
        self.status_at(now).works() && self.works_until() <= now.saturating_add(within)
    }
}

/// What an administrator does to a registered certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertUpdate {
    /// Keeps working, counts 0 toward the license, ends 90 days later by itself.
    SetExpiring,
    /// Ends now.
    Expire,
    /// Ends now, and was never to be trusted again (a lost or compromised device).
    Revoke,
}

/// What the request path needs to know of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub serial: String,
    pub user: String,
    /// The device's name, and when it was issued (the user's dashboard lists them).
    pub device: String,
    pub issued_at: u64,
    pub status: CertStatus,
    pub expires_at: Option<u64>,
    pub not_after: u64,
}

impl RegistryEntry {
    fn of(c: &DeviceCert) -> RegistryEntry {
        RegistryEntry {
            serial: c.serial.clone(),
            user: c.user.clone(),
            device: c.device.clone(),
            issued_at: c.issued_at,
            status: c.status,
            expires_at: c.expires_at,
            not_after: c.not_after,
        }
    }

    /// When it stops working (as [`DeviceCert::works_until`]).
    pub fn works_until(&self) -> u64 {
        self.expires_at.map_or(self.not_after, |at| at.min(self.not_after))
    }

    /// The status at `now`, with time applied (as [`DeviceCert::status_at`]).
    pub fn status_at(&self, now: u64) -> CertStatus {
        match self.status {
            CertStatus::Revoked | CertStatus::Expired => self.status,
            _ if now >= self.not_after => CertStatus::Expired,
            CertStatus::Expiring if self.expires_at.is_none_or(|at| now >= at) => CertStatus::Expired,
            s => s,
        }
    }

    /// Works at `now` and stops working within `within` seconds, by set-expiring's
    /// date or its own validity end, whichever comes first.
    pub fn stops_within(&self, now: u64, within: u64) -> bool {
        self.status_at(now).works() && self.works_until() <= now.saturating_add(within)
    }
}

/// How far ahead the user's dashboard warns of a certificate that stops working.
pub const WARN_WITHIN: u64 = 14 * 86_400;

/// The in-memory registry: fingerprint → entry, replaced whole on every change
/// (readers take no lock; the persistent map makes a copy a pointer).
///
/// `generation` goes up with every change applied (metrics, tests). The
/// request path looks the connection's fingerprint up on every request (one
/// map lookup in the current snapshot), so a revocation reaches open
/// keep-alive connections on their next request.
/// Expiry by time needs no change at all: [`Registry::lookup`] applies the clock.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_fingerprint: imbl::HashMap<String, RegistryEntry>,
    generation: u64,
}

impl Registry {
    /// A snapshot of every record (at start, and after the feed may have missed changes).
    pub fn from_certs<'a>(certs: impl IntoIterator<Item = &'a DeviceCert>, generation: u64) -> Registry {
        let by_fingerprint = certs.into_iter().map(|c| (c.fingerprint.clone(), RegistryEntry::of(c))).collect();
        Registry { by_fingerprint, generation }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// The user a certificate with this fingerprint names, and its status at
    /// `now`; `None` for a certificate the registry does not know.
    pub fn lookup(&self, fingerprint: &str, now: u64) -> Option<(&str, CertStatus)> {
        self.by_fingerprint.get(fingerprint).map(|e| (e.user.as_str(), e.status_at(now)))
    }

    /// Every entry, in no particular order (metrics).
    pub fn entries(&self) -> impl Iterator<Item = &RegistryEntry> {
        self.by_fingerprint.values()
    }

    /// `user`'s certificates, oldest first, then by device name (the user's own dashboard).
    pub fn of_user(&self, user: &str) -> Vec<&RegistryEntry> {
        let mut mine: Vec<&RegistryEntry> = self.by_fingerprint.values().filter(|e| e.user == user).collect();
        mine.sort_by(|a, b| (a.issued_at, &a.device, &a.serial).cmp(&(b.issued_at, &b.device, &b.serial)));
        mine
    }

    /// The entry itself (serial, expiry), for pages that show it.
    pub fn entry(&self, fingerprint: &str) -> Option<&RegistryEntry> {
        self.by_fingerprint.get(fingerprint)
    }

    /// Applies a change from the feed; device-certificate changes move the generation.
    pub fn apply(&mut self, change: &Change) {
        if let Change::DeviceCert(cert) = change {
            self.upsert(cert);
        }
    }

    /// Records one certificate (new or changed) and moves the generation.
    pub fn upsert(&mut self, cert: &DeviceCert) {
        self.by_fingerprint.insert(cert.fingerprint.clone(), RegistryEntry::of(cert));
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(serial: &str, status: CertStatus, expires_at: Option<u64>) -> DeviceCert {
        DeviceCert {
            serial: serial.into(),
            fingerprint: format!("fp-{serial}"),
            user: "ann".into(),
            device: "laptop".into(),
            issued_at: 0,
            not_after: 1_000,
            status,
            expires_at,
            set_expiring_at: None,
        }
    }

    #[test]
    fn status_follows_the_clock_not_only_the_stored_field() {
        let expiring = cert("a", CertStatus::Expiring, Some(500));
        assert_eq!((expiring.status_at(499), expiring.status_at(500)), (CertStatus::Expiring, CertStatus::Expired));
        let active = cert("b", CertStatus::Active, None);
        assert_eq!((active.status_at(999), active.status_at(1_000)), (CertStatus::Active, CertStatus::Expired));
        assert_eq!(cert("c", CertStatus::Revoked, Some(9)).status_at(2_000), CertStatus::Revoked);
        assert_eq!(cert("d", CertStatus::Expiring, Some(5_000)).works_until(), 1_000, "not_after comes first");
    }

    #[test]
    fn snapshot_follows_the_feed_and_counts_generations() {
        let mut r = Registry::from_certs(&[cert("a", CertStatus::Active, None)], 7);
        let held = r.clone();
        assert_eq!(r.lookup("fp-a", 10), Some(("ann", CertStatus::Active)));
        assert_eq!(r.lookup("fp-z", 10), None);
        r.apply(&Change::DeviceCert(cert("a", CertStatus::Revoked, Some(10))));
        r.apply(&Change::Resync);
        assert_eq!(r.generation(), 8, "only device-certificate changes move it");
        assert_eq!(r.lookup("fp-a", 10), Some(("ann", CertStatus::Revoked)));
        assert_eq!(held.lookup("fp-a", 10), Some(("ann", CertStatus::Active)), "readers keep what they hold");
        r.apply(&Change::DeviceCert(cert("b", CertStatus::Expiring, Some(20))));
        assert_eq!((r.len(), r.generation()), (2, 9));
        assert_eq!(r.lookup("fp-b", 20), Some(("ann", CertStatus::Expired)), "expiry by time needs no change");
    }

    #[test]
    fn a_users_own_certificates_and_which_stop_working_soon() {
        let mut bob = cert("b", CertStatus::Active, None);
        bob.user = "bob".into();
        let mut newer = cert("n", CertStatus::Active, None);
        newer.issued_at = 5;
        let certs = [newer, bob, cert("e", CertStatus::Expiring, Some(600)), cert("r", CertStatus::Revoked, None)];
        let r = Registry::from_certs(&certs, 1);
        let mine: Vec<&str> = r.of_user("ann").iter().map(|e| e.serial.as_str()).collect();
        assert_eq!(mine, ["e", "r", "n"], "ann's only, oldest first");
        let entry = |s: &str| r.of_user("ann").into_iter().find(|e| e.serial == s).unwrap().clone();
        let (expiring, active, revoked) = (entry("e"), entry("n"), entry("r"));
        // The expiring one stops at 600 (its set-expiring date), the active one at 1 000 (its own end).
        assert!(!expiring.stops_within(499, 100) && expiring.stops_within(500, 100) && expiring.stops_within(599, 100));
        assert!(!expiring.stops_within(600, 100), "already stopped: nothing to warn of");
        assert!(!active.stops_within(899, 100) && active.stops_within(900, 100));
        assert!(!revoked.stops_within(900, 100));
        assert_eq!(WARN_WITHIN, 14 * 86_400);
    }
}
