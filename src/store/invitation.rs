//! An enrollment invitation, kept in the invited user's record: the hash of
//! the single-use link's code, the hash of the activation PIN (never the PIN),
//! when it runs out, and how many PINs were tried. At most one per user: a new
//! invitation replaces the old. The rules of a PIN try are here, so every
//! backend runs the same ones inside its atomic read-modify-write.

use super::UserRecord;
use serde::{Deserialize, Serialize};

/// Wrong PINs that void an invitation.
pub const MAX_PIN_TRIES: u32 = 3;

/// What the invitation enrolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InvitationKind {
    /// An authenticator app (TOTP).
    #[default]
    Totp,
    /// An approver device (push approval).
    Approver,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// SHA-256 (hex) of the link's code: the code itself is only in the mail.
    pub code_hash: String,
    /// argon2id PHC string of the PIN.
    pub pin_hash: String,
    pub kind: InvitationKind,
    /// Where the mail went, and in which language (`en`, `ja`).
    pub email: String,
    pub lang: String,
    /// Who invited (`token:admin` or an administrator's name).
    pub invited_by: String,
    pub created_at: u64,
    pub expires_at: u64,
    /// PINs tried and not yet settled right; [`MAX_PIN_TRIES`] voids it.
    #[serde(default)]
    pub tries: u32,
    /// When the link was used (the PIN and password were right).
    #[serde(default)]
    pub used_at: Option<u64>,
    /// Why the last mail was not sent (`None`: sent).
    #[serde(default)]
    pub mail_error: Option<String>,
}

/// What a link and a PIN try find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationTry {
    /// No invitation with that code (never was, or replaced by a newer one).
    Unknown,
    Expired,
    Used,
    /// Three wrong PINs.
    Voided,
    /// This try is counted: check the PIN against `pin_hash`.
    Counted(Invitation),
}

impl Invitation {
    pub fn state(&self, now: u64) -> &'static str {
        if self.used_at.is_some() {
            "used"
        } else if self.tries >= MAX_PIN_TRIES {
            "voided"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "pending"
        }
    }
}

impl UserRecord {
    /// Counts one PIN try at the invitation with `code_hash`, before the PIN
    /// is checked, so parallel tries cannot get past the limit.
    pub fn try_invitation(&mut self, code_hash: &str, now: u64) -> InvitationTry {
        let Some(inv) = self.invitation.as_mut().filter(|i| i.code_hash == code_hash) else {
            return InvitationTry::Unknown;
        };
        match inv.state(now) {
            "used" => InvitationTry::Used,
            "voided" => InvitationTry::Voided,
            "expired" => InvitationTry::Expired,
            _ => {
                inv.tries += 1;
                InvitationTry::Counted((**inv).clone())
            }
        }
    }

    /// A try whose PIN was right: the tries start again, and with `used_at`
    /// the link is spent.
    pub fn settle_invitation(&mut self, code_hash: &str, used_at: Option<u64>) {
        if let Some(inv) = self.invitation.as_mut().filter(|i| i.code_hash == code_hash) {
            inv.tries = 0;
            if used_at.is_some() {
                inv.used_at = used_at;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> UserRecord {
        let inv = Invitation {
            code_hash: "c".into(),
            pin_hash: "p".into(),
            kind: InvitationKind::Totp,
            email: "a@example.com".into(),
            lang: "en".into(),
            invited_by: "mia".into(),
            created_at: 100,
            expires_at: 1_000,
            tries: 0,
            used_at: None,
            mail_error: None,
        };
        UserRecord { invitation: Some(Box::new(inv)), ..UserRecord::default() }
    }

    #[test]
    fn three_counted_tries_void_and_a_right_pin_starts_again() {
        let mut r = record();
        assert_eq!(r.try_invitation("other", 200), InvitationTry::Unknown);
        assert!(matches!(r.try_invitation("c", 200), InvitationTry::Counted(_)));
        assert!(matches!(r.try_invitation("c", 200), InvitationTry::Counted(_)));
        r.settle_invitation("c", None);
        for _ in 0..MAX_PIN_TRIES {
            assert!(matches!(r.try_invitation("c", 200), InvitationTry::Counted(_)));
        }
        assert_eq!(r.try_invitation("c", 200), InvitationTry::Voided);
    }

    #[test]
    fn a_used_or_expired_link_says_so() {
        let mut r = record();
        assert_eq!(r.try_invitation("c", 1_000), InvitationTry::Expired);
        assert!(matches!(r.try_invitation("c", 999), InvitationTry::Counted(_)));
        r.settle_invitation("c", Some(500));
        assert_eq!(r.try_invitation("c", 600), InvitationTry::Used);
        assert_eq!(r.invitation.as_ref().unwrap().state(600), "used");
    }
}
