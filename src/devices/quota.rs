//! License arithmetic (pure, no I/O): which certificates may be issued, set
//! expiring, expired or revoked under `[device_certificates] contracted = N`,
//! and the "certificate replacement function details" view ([`Usage`]).
//!
//! The rules:
//! - at most `N` certificates are **active** at once; issuing one more is refused;
//! - **set-expiring** replaces a device: the old certificate keeps working,
//!   counts 0 toward the license at once (so the new device's certificate can
//!   be issued), and expires by itself exactly [`EXPIRING_FOR`] (90 days, to
//!   the second) later. That date is fixed: set-expiring again is refused, and
//!   only **expire** (which ends a certificate at once) cuts it short;
//! - set-expiring uses in any rolling window of [`WINDOW`] (350 days) are
//!   limited to 50 % of `N`, and `N` plus the uses in the window may not
//!   exceed 150 % of `N`.
//!
//! Rounding: both percentages are rounded **down** (`floor`), since a license
//! never grants a fraction of a device. With `floor`, the two limits are the
//! same number, `floor(N / 2)` uses in the window (`floor(3N/2) - N =
//! floor(N/2)`), so one number, [`allowed_uses`], enforces both. N = 10 → 5;
//! N = 7 → 3; N = 1 → 0: a single-device license has no overlap allowance (one
//! more working certificate would be 200 % of N); its device is replaced by
//! expiring or revoking the old certificate, which frees the slot at once.
//!
//! A use is counted at the moment of set-expiring (`set_expiring_at`), and
//! it stays counted for the whole window even if that certificate is later
//! expired or revoked; it falls out of the window exactly 350 days later.
//! Expire and revoke never use the allowance.

use super::registry::{CertStatus, CertUpdate, DeviceCert};
use crate::clock::iso8601;
use serde::{Deserialize, Serialize};

pub const DAY: u64 = 86_400;
/// How long a certificate set expiring keeps working: exactly 90 days.
pub const EXPIRING_FOR: u64 = 90 * DAY;
/// The rolling window set-expiring uses are counted in: 350 days.
pub const WINDOW: u64 = 350 * DAY;

/// Set-expiring uses allowed in any rolling window: `floor(N / 2)` (see the module doc).
pub fn allowed_uses(contracted: u32) -> u32 {
    contracted / 2
}

/// Why a registry change was refused; the message says why and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuotaError {
    /// No certificate with this serial is registered.
    UnknownSerial { serial: String },
    /// A certificate with this serial or fingerprint is already registered.
    Duplicate { serial: String },
    /// Issuing would make more than `contracted` certificates active.
    LicenseFull { active: u32, contracted: u32 },
    /// Set-expiring again: the date can be neither extended nor shortened.
    AlreadyExpiring { serial: String, expires_at: u64 },
    /// The certificate has already ended (expired or revoked).
    Ended { serial: String, status: CertStatus },
    /// The replacement allowance of the rolling window is used up.
    AllowanceUsed { used: u32, allowed: u32, contracted: u32, next_free_at: Option<u64> },
}

impl std::fmt::Display for QuotaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuotaError::UnknownSerial { serial } => {
                write!(
                    f,
                    "no device certificate with serial `{serial}` is registered (see `portcullis admin cert list`)"
                )
            }
            QuotaError::Duplicate { serial } => {
                write!(f, "a device certificate with serial or fingerprint of `{serial}` is already registered")
            }
            QuotaError::LicenseFull { active, contracted } => write!(
                f,
                "license full: {active} of {contracted} contracted device certificates are active. \
                 To replace a device, set its old certificate as expiring \
                 (`portcullis admin cert set-expiring SERIAL`) or expire/revoke it; \
                 to add devices, raise `[device_certificates] contracted`"
            ),
            QuotaError::AlreadyExpiring { serial, expires_at } => write!(
                f,
                "certificate `{serial}` is already expiring: it stops working at {}; \
                 that date can be neither extended nor shortened (`portcullis admin cert expire {serial}` ends it now)",
                iso8601(*expires_at)
            ),
            QuotaError::Ended { serial, status } => {
                write!(f, "certificate `{serial}` is {status}: it no longer works and cannot be changed")
            }
            QuotaError::AllowanceUsed { used, allowed, contracted, next_free_at } => {
                write!(
                    f,
                    "replacement allowance used up: {used} of {allowed} set-expiring uses in the last 350 days \
                     (50 % of contracted = {contracted}, rounded down)"
                )?;
                match next_free_at {
                    Some(at) => write!(f, "; the next use frees up at {}", iso8601(*at))?,
                    None => write!(f, "; this license has no replacement allowance")?,
                }
                write!(f, ". Expire or revoke the old certificate instead, or raise `[device_certificates] contracted`")
            }
        }
    }
}

impl std::error::Error for QuotaError {}

/// May `new` be registered next to `certs` at `now`?
pub fn check_issue(certs: &[DeviceCert], new: &DeviceCert, contracted: u32, now: u64) -> Result<(), QuotaError> {
    if certs.iter().any(|c| c.serial == new.serial || c.fingerprint == new.fingerprint) {
        return Err(QuotaError::Duplicate { serial: new.serial.clone() });
    }
    let active = count(certs, CertStatus::Active, now);
    if new.status_at(now) == CertStatus::Active && active >= contracted {
        return Err(QuotaError::LicenseFull { active, contracted });
    }
    Ok(())
}

/// Applies an administrator's `update` to the certificate `serial` among
/// `certs` at `now`; returns the changed record, or why it is refused.
pub fn apply_update(
    certs: &[DeviceCert],
    serial: &str,
    update: CertUpdate,
    contracted: u32,
    now: u64,
) -> Result<DeviceCert, QuotaError> {
    let cert = certs
        .iter()
        .find(|c| c.serial == serial)
        .ok_or_else(|| QuotaError::UnknownSerial { serial: serial.to_string() })?;
    let status = cert.status_at(now);
    let ended = || QuotaError::Ended { serial: cert.serial.clone(), status };
    let mut next = cert.clone();
    match (update, status) {
        (_, CertStatus::Revoked) => return Err(ended()),
        (CertUpdate::SetExpiring, CertStatus::Expiring) => {
            return Err(QuotaError::AlreadyExpiring { serial: cert.serial.clone(), expires_at: cert.works_until() })
        }
        (CertUpdate::SetExpiring | CertUpdate::Expire, CertStatus::Expired) => return Err(ended()),
        (CertUpdate::SetExpiring, _) => {
            let u = uses(certs, contracted, now);
            if u.used >= u.allowed {
                return Err(QuotaError::AllowanceUsed {
                    used: u.used,
                    allowed: u.allowed,
                    contracted,
                    next_free_at: u.next_free_at,
                });
            }
            next.status = CertStatus::Expiring;
            next.expires_at = Some(now + EXPIRING_FOR);
            next.set_expiring_at = Some(now);
        }
        (CertUpdate::Expire, _) => {
            next.status = CertStatus::Expired;
            next.expires_at = Some(now);
        }
        (CertUpdate::Revoke, _) => {
            next.status = CertStatus::Revoked;
            next.expires_at = Some(next.expires_at.map_or(now, |at| at.min(now)));
        }
    }
    Ok(next)
}

/// Set-expiring uses in the window ending at `now`.
struct Uses {
    used: u32,
    allowed: u32,
    /// When the oldest use in the window falls out of it (`None`: no use in the window).
    oldest_leaves_at: Option<u64>,
    /// When a use is next available, if none is now (`None` if one is, or never).
    next_free_at: Option<u64>,
}

fn uses(certs: &[DeviceCert], contracted: u32, now: u64) -> Uses {
    let mut in_window: Vec<u64> =
        certs.iter().filter_map(|c| c.set_expiring_at).filter(|&at| at <= now && now < at + WINDOW).collect();
    in_window.sort_unstable();
    let used = in_window.len() as u32;
    let allowed = allowed_uses(contracted);
    // The (used - allowed + 1)-th oldest use must leave before one is free again.
    let next_free_at = if allowed == 0 || used < allowed {
        None
    } else {
        in_window.get((used - allowed) as usize).map(|at| at + WINDOW)
    };
    Uses { used, allowed, oldest_leaves_at: in_window.first().map(|at| at + WINDOW), next_free_at }
}

fn count(certs: &[DeviceCert], status: CertStatus, now: u64) -> u32 {
    certs.iter().filter(|c| c.status_at(now) == status).count() as u32
}

/// The "certificate replacement function details" view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub contracted: u32,
    pub active: u32,
    pub expiring: u32,
    pub expired: u32,
    pub revoked: u32,
    /// Set-expiring uses in the rolling window of the past 350 days.
    pub uses_in_window: u32,
    /// `floor(contracted / 2)`.
    pub uses_allowed: u32,
    pub uses_left: u32,
    /// When the oldest use in the window falls out of it, freeing one use.
    pub next_use_frees_at: Option<u64>,
    /// How many certificates can be issued now: contracted minus active.
    pub can_issue_now: u32,
}

pub fn usage(certs: &[DeviceCert], contracted: u32, now: u64) -> Usage {
    let u = uses(certs, contracted, now);
    let active = count(certs, CertStatus::Active, now);
    Usage {
        contracted,
        active,
        expiring: count(certs, CertStatus::Expiring, now),
        expired: count(certs, CertStatus::Expired, now),
        revoked: count(certs, CertStatus::Revoked, now),
        uses_in_window: u.used,
        uses_allowed: u.allowed,
        uses_left: u.allowed.saturating_sub(u.used),
        next_use_frees_at: u.oldest_leaves_at,
        can_issue_now: contracted.saturating_sub(active),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use CertStatus::*;
    use CertUpdate::*;

    /// 2026-12-01T00:00:00Z.
    const T0: u64 = 1_796_083_200;
    /// Every certificate here is valid for 397 days of its own.
    const VALIDITY: u64 = 397 * DAY;

    #[derive(Debug, Clone, Copy)]
    enum Op {
        /// Issues `d0`..`d{n-1}`, each of which must be accepted.
        IssueMany(u32),
        Issue(&'static str),
        Update(&'static str, CertUpdate),
        /// The status, with the clock applied.
        Status(&'static str, CertStatus),
        UsesLeft(u32),
        CanIssue(u32),
        NextUseFreesAt(Option<u64>),
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Ok,
        /// Refused with this kind of error.
        Refused(&'static str),
    }
    use Want::{Ok as Accepted, Refused};

    struct Row {
        name: &'static str,
        contracted: u32,
        /// (seconds after T0, operation, outcome)
        steps: &'static [(u64, Op, Want)],
    }

    fn kind(e: &QuotaError) -> &'static str {
        match e {
            QuotaError::UnknownSerial { .. } => "unknown serial",
            QuotaError::Duplicate { .. } => "duplicate",
            QuotaError::LicenseFull { .. } => "license full",
            QuotaError::AlreadyExpiring { .. } => "already expiring",
            QuotaError::Ended { .. } => "ended",
            QuotaError::AllowanceUsed { .. } => "allowance used",
        }
    }

    fn cert(serial: &str, now: u64) -> DeviceCert {
        DeviceCert {
            serial: serial.into(),
            fingerprint: format!("fp-{serial}"),
            user: "ann".into(),
            device: format!("pc {serial}"),
            issued_at: now,
            not_after: now + VALIDITY,
            status: Active,
            expires_at: None,
            set_expiring_at: None,
        }
    }

    fn issue(certs: &mut Vec<DeviceCert>, serial: &str, n: u32, now: u64) -> Result<(), QuotaError> {
        let new = cert(serial, now);
        check_issue(certs, &new, n, now)?;
        certs.push(new);
        Result::Ok(())
    }

    fn outcome(r: Result<(), QuotaError>) -> Want {
        r.map_or_else(|e| Refused(kind(&e)), |()| Accepted)
    }

    /// Runs one step at the injected clock's "now"; checks return `Ok` or panic.
    fn step(certs: &mut Vec<DeviceCert>, n: u32, op: Op, now: u64) -> Want {
        let status = |certs: &[DeviceCert], s: &str| certs.iter().find(|c| c.serial == s).unwrap().status_at(now);
        let u = usage(certs, n, now);
        match op {
            Op::IssueMany(k) => {
                for i in 0..k {
                    issue(certs, &format!("d{i}"), n, now).unwrap();
                }
                Accepted
            }
            Op::Issue(s) => outcome(issue(certs, s, n, now)),
            Op::Update(s, update) => outcome(apply_update(certs, s, update, n, now).map(|next| {
                let i = certs.iter().position(|c| c.serial == s).unwrap();
                certs[i] = next;
            })),
            Op::Status(s, want) => check(status(certs, s) == want, format!("{s} is {}", status(certs, s))),
            Op::UsesLeft(k) => check(u.uses_left == k, format!("{u:?}")),
            Op::CanIssue(k) => check(u.can_issue_now == k, format!("{u:?}")),
            Op::NextUseFreesAt(at) => check(u.next_use_frees_at == at.map(|a| T0 + a), format!("{u:?}")),
        }
    }

    fn check(ok: bool, got: String) -> Want {
        if ok {
            Accepted
        } else {
            Refused(Box::leak(got.into_boxed_str()))
        }
    }

    const ROWS: &[Row] = &[
        Row {
            name: "N = 10: issuance with 10 active is refused",
            contracted: 10,
            steps: &[
                (0, Op::IssueMany(10), Accepted),
                (0, Op::CanIssue(0), Accepted),
                (5, Op::Issue("eleventh"), Refused("license full")),
                (5, Op::Issue("d3"), Refused("duplicate")),
            ],
        },
        Row {
            name: "an expiring certificate frees its slot at once and stops working on day 90, to the second",
            contracted: 10,
            steps: &[
                (0, Op::IssueMany(10), Accepted),
                (100, Op::Update("d0", SetExpiring), Accepted),
                (100, Op::CanIssue(1), Accepted),
                (100, Op::Issue("replacement"), Accepted),
                (100, Op::Issue("one more"), Refused("license full")),
                (100 + 90 * DAY - 1, Op::Status("d0", Expiring), Accepted),
                (100 + 90 * DAY, Op::Status("d0", Expired), Accepted),
                (100 + 90 * DAY, Op::Update("d0", Expire), Refused("ended")),
                (100 + 90 * DAY, Op::CanIssue(0), Accepted),
            ],
        },
        Row {
            name: "N = 10: five set-expiring uses in 350 days are allowed, the sixth is refused",
            contracted: 10,
            steps: &[
                (0, Op::IssueMany(10), Accepted),
                (0, Op::UsesLeft(5), Accepted),
                (0, Op::Update("d0", SetExpiring), Accepted),
                (10 * DAY, Op::Update("d1", SetExpiring), Accepted),
                (20 * DAY, Op::Update("d2", SetExpiring), Accepted),
                (30 * DAY, Op::Update("d3", SetExpiring), Accepted),
                (40 * DAY, Op::Update("d4", SetExpiring), Accepted),
                (40 * DAY, Op::UsesLeft(0), Accepted),
                (40 * DAY, Op::NextUseFreesAt(Some(350 * DAY)), Accepted),
                (50 * DAY, Op::Update("d5", SetExpiring), Refused("allowance used")),
                (50 * DAY, Op::Status("d5", Active), Accepted),
            ],
        },
        Row {
            name: "the first use falling out of the 350-day window frees one, to the second",
            contracted: 10,
            steps: &[
                (0, Op::IssueMany(10), Accepted),
                (0, Op::Update("d0", SetExpiring), Accepted),
                (10 * DAY, Op::Update("d1", SetExpiring), Accepted),
                (20 * DAY, Op::Update("d2", SetExpiring), Accepted),
                (30 * DAY, Op::Update("d3", SetExpiring), Accepted),
                (40 * DAY, Op::Update("d4", SetExpiring), Accepted),
                (350 * DAY - 1, Op::Update("d5", SetExpiring), Refused("allowance used")),
                (350 * DAY, Op::UsesLeft(1), Accepted),
                (350 * DAY, Op::NextUseFreesAt(Some(360 * DAY)), Accepted),
                (350 * DAY, Op::Update("d5", SetExpiring), Accepted),
                (350 * DAY, Op::Update("d6", SetExpiring), Refused("allowance used")),
                (360 * DAY, Op::Update("d6", SetExpiring), Accepted),
            ],
        },
        Row {
            name: "set-expiring twice is refused (neither extended nor shortened); expire ends it at once",
            contracted: 10,
            steps: &[
                (0, Op::IssueMany(2), Accepted),
                (0, Op::Update("d0", SetExpiring), Accepted),
                (1, Op::Update("d0", SetExpiring), Refused("already expiring")),
                (89 * DAY, Op::Update("d0", SetExpiring), Refused("already expiring")),
                (89 * DAY, Op::UsesLeft(4), Accepted),
                (89 * DAY, Op::Update("d0", Expire), Accepted),
                (89 * DAY, Op::Status("d0", Expired), Accepted),
                (89 * DAY, Op::Update("d0", SetExpiring), Refused("ended")),
                (89 * DAY, Op::Update("d0", Expire), Refused("ended")),
                (89 * DAY, Op::Update("d0", Revoke), Accepted),
                (89 * DAY, Op::Update("d0", Revoke), Refused("ended")),
                (89 * DAY, Op::UsesLeft(4), Accepted),
            ],
        },
        Row {
            name: "revoked: no longer works, cannot be set expiring; a use made before stays counted",
            contracted: 4,
            steps: &[
                (0, Op::IssueMany(4), Accepted),
                (0, Op::Update("d0", SetExpiring), Accepted),
                (1, Op::Update("d0", Revoke), Accepted),
                (1, Op::Status("d0", Revoked), Accepted),
                (1, Op::UsesLeft(1), Accepted),
                (2, Op::Update("d1", Revoke), Accepted),
                (2, Op::Update("d1", SetExpiring), Refused("ended")),
                (2, Op::CanIssue(2), Accepted),
            ],
        },
        Row {
            name: "rounding is down: N = 7 allows 3 uses, N = 1 none (expire or revoke instead)",
            contracted: 7,
            steps: &[
                (0, Op::IssueMany(7), Accepted),
                (0, Op::Update("d0", SetExpiring), Accepted),
                (0, Op::Update("d1", SetExpiring), Accepted),
                (0, Op::Update("d2", SetExpiring), Accepted),
                (0, Op::Update("d3", SetExpiring), Refused("allowance used")),
                (0, Op::Update("d3", Expire), Accepted),
            ],
        },
        Row {
            name: "N = 1: no replacement allowance; expiring the old certificate frees the slot",
            contracted: 1,
            steps: &[
                (0, Op::Issue("old"), Accepted),
                (0, Op::UsesLeft(0), Accepted),
                (0, Op::NextUseFreesAt(None), Accepted),
                (0, Op::Update("old", SetExpiring), Refused("allowance used")),
                (0, Op::Issue("new"), Refused("license full")),
                (0, Op::Update("old", Expire), Accepted),
                (0, Op::Issue("new"), Accepted),
            ],
        },
        Row {
            name: "unknown serial is refused",
            contracted: 10,
            steps: &[(0, Op::Update("nope", Revoke), Refused("unknown serial"))],
        },
        Row {
            name: "a certificate past its own not_after is expired and frees its slot",
            contracted: 1,
            steps: &[
                (0, Op::Issue("a"), Accepted),
                (397 * DAY - 1, Op::Status("a", Active), Accepted),
                (397 * DAY, Op::Status("a", Expired), Accepted),
                (397 * DAY, Op::Issue("b"), Accepted),
            ],
        },
    ];

    #[test]
    fn quota_rules_table() {
        for row in ROWS {
            let clock = ManualClock::new(T0);
            let mut certs = Vec::new();
            for (i, &(at, op, want)) in row.steps.iter().enumerate() {
                clock.set(T0 + at);
                let got = step(&mut certs, row.contracted, op, clock.now());
                assert_eq!(got, want, "{}: step {i} {op:?} at T0+{at}s", row.name);
            }
        }
    }

    #[test]
    fn allowance_rounding_keeps_both_limits() {
        for n in 0..=1000u32 {
            let a = allowed_uses(n);
            assert!(2 * a <= n, "50 % of {n}");
            assert!(2 * (n + a) <= 3 * n, "contracted + used within 150 % of {n}");
            assert!(2 * (a + 1) > n, "floor: one more would exceed 50 % of {n}");
        }
        assert_eq!((allowed_uses(10), allowed_uses(7), allowed_uses(1)), (5, 3, 0));
    }

    #[test]
    fn messages_say_why_and_what_to_do() {
        let full = QuotaError::LicenseFull { active: 10, contracted: 10 }.to_string();
        assert!(full.contains("10 of 10") && full.contains("set-expiring") && full.contains("contracted"), "{full}");
        let again = QuotaError::AlreadyExpiring { serial: "ab".into(), expires_at: T0 }.to_string();
        assert!(again.contains("2026-12-01T00:00:00Z") && again.contains("cert expire ab"), "{again}");
        let used = QuotaError::AllowanceUsed { used: 5, allowed: 5, contracted: 10, next_free_at: Some(T0) };
        assert!(used.to_string().contains("5 of 5") && used.to_string().contains("frees up at 2026-12-01T00:00:00Z"));
    }

    #[test]
    fn set_expiring_ends_exactly_90_days_later() {
        let c = vec![cert("a", T0)];
        let next = apply_update(&c, "a", SetExpiring, 2, T0 + 7).unwrap();
        assert_eq!((next.expires_at, next.set_expiring_at), (Some(T0 + 7 + 7_776_000), Some(T0 + 7)));
    }
}
