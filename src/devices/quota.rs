//! License arithmetic (pure, no I/O). Filled in below the shared types.

use super::registry::CertStatus;

/// Why a registry change was refused; the message says why and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    AllowanceUsed { used: u32, allowed: u32, next_free_at: Option<u64> },
}
