//! The text keys of the portal pages and the lookup into one catalog per language.
//!
//! Each language is a single exhaustive `match` (en.rs, ja.rs), so a key missing from
//! either catalog is a compile error rather than an empty string at run time.

use super::Lang;

/// Declares `Text` together with `Text::ALL`, so tests can walk every key.
macro_rules! texts {
    ($($(#[$meta:meta])* $name:ident,)*) => {
        /// Every user-visible text on the portal pages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Text {
            $($(#[$meta])* $name,)*
        }

        impl Text {
            /// Every key, in declaration order.
            pub const ALL: &'static [Text] = &[$(Text::$name,)*];
        }
    };
}

texts! {
    // Layout.
    /// The language's own name, shown in the language switch ("English", "日本語").
    LanguageName,
    /// Accessible name of the language switch.
    LanguageSwitchLabel,
    /// Precedes the organization's contact line.
    ContactPrefix,
    /// The line above every title, naming the app (`{app}`) ...
    SigningInTo,
    /// ... and, once the password is through, the user (`{user}`) ...
    SigningInAs,
    /// ... or the signed-in user.
    SignedInTo,

    // Sign-in.
    LoginTitle,
    // An emailed invitation.
    InviteTitle,
    InviteIntro,
    PinLabel,
    PinHint,
    InviteButton,
    /// A wrong PIN, with the tries `{left}`.
    ErrWrongPin,
    InviteUsed,
    InviteExpired,
    InviteVoided,
    InviteUnknown,
    /// The invited user has an authenticator already.
    InviteAlreadyEnrolled,
    LoginIntro,
    UsernameLabel,
    PasswordLabel,
    SignInButton,

    // Second factor.
    TotpTitle,
    TotpIntro,
    CodeLabel,
    VerifyButton,
    /// Suggests checking that the device sets its clock automatically.
    ClockHint,
    UseRecoveryCodeLink,
    RecoveryTitle,
    RecoveryIntro,
    RecoveryCodeLabel,
    UseAuthenticatorLink,

    // Enrollment.
    EnrollTitle,
    EnrollStep1,
    EnrollScanQr,
    QrCaption,
    EnrollKeyIntro,
    EnrollKeyLabel,
    /// Placeholder `{period}`: the TOTP step in seconds.
    EnrollKeyDetails,
    NextButton,
    EnrollStep2,
    EnrollConfirmIntro,
    RecoveryCodesTitle,
    RecoveryCodesIntro,
    RecoveryCodesOnce,
    ContinueLink,
    /// The confirm step's way back to the QR code.
    EnrollBackLink,
    /// Shown once JavaScript can copy; `CodesCopied` when it did, `CodesSelected`
    /// when it could only select the codes.
    CopyCodesButton,
    CodesCopied,
    CodesSelected,
    DownloadCodesLink,
    /// The dashboard's link to the app; placeholder `{app}`.
    BackToApp,

    // Dashboard.
    DashboardTitle,
    /// Placeholders `{name}` and `{username}`.
    SignedInAs,
    /// Placeholder `{level}`: how this session was authenticated.
    SessionLevel,
    /// Values for `{level}`.
    LevelBothFactors,
    LevelFirstFactor,
    SecondFactorsHeading,
    TotpEnrolled,
    TotpNotEnrolled,
    /// Placeholder `{count}`.
    RecoveryCodesLeft,
    RegenerateButton,
    RegenerateNote,
    /// Device certificates: the heading, and the list's empty state.
    CertsHeading,
    CertsNone,
    /// Placeholder `{date}`: when it stops working.
    CertActive,
    /// Placeholder `{date}`: the fixed end set-expiring gave it.
    CertExpiring,
    /// Placeholder `{date}`: when it stopped working.
    CertExpired,
    CertRevoked,
    /// Placeholders `{serial}` and `{date}` (issued).
    CertDetails,
    /// The warning banner; placeholders `{device}` and `{date}`.
    CertStopsSoon,
    SignOutHeading,
    SignOutButton,
    SignOutEverywhereButton,
    SignOutEverywhereNote,

    // Stop pages.
    LockedTitle,
    LockedBody,
    DeniedTitle,
    DeniedBody,
    AskAdminTitle,
    AskAdminBody,
    CooldownTitle,
    /// Placeholder `{until}`: a time the caller has formatted.
    CooldownBody,
    UnavailableTitle,
    UnavailableBody,
    TooManyTitle,
    TooManyBody,
    TryAgainLink,
    SignedOutTitle,
    SignedOutBody,
    SignInAgainLink,
    ErrorTitle,
    StartOverLink,

    // Errors shown on a form or on the error page.
    /// The same text for an unknown user and a wrong password.
    ErrBadCredentials,
    ErrMissingCredentials,
    ErrCodeFormat,
    ErrWrongCode,
    ErrCodeUsed,
    ErrWrongRecoveryCode,
    ErrSessionExpired,
    /// Bad, missing or expired CSRF token.
    ErrBadForm,
    ErrLocked,
    ErrTooMany,
    ErrUnavailable,
    ErrNotFound,

    /// The enrollment page's `otpauth://` link, for phones.
    OtpauthLink,

    // Push approval.
    PushTitle,
    PushIntro,
    PushNumberLabel,
    PushWaiting,
    PushContinueButton,
    PushSendAgainButton,
    PushUseTotpLink,
    PushUseRecoveryLink,
    PushNoDevice,
    /// `{time}`: when pushes may be sent again.
    PushTooMany,
    PushBlocked,
    PushDenied,
    PushWrongNumber,
    PushExpired,
    ApproversTitle,
    ApproversIntro,
    ApproversNone,
    ApproverAddButton,
    ApproverLinkIntro,
    ApproverRemoveButton,
    ApproversLink,
    /// On an administrator's dashboard: the way to the admin console.
    AdminConsoleLink,

    // Entrance passes on the dashboard.
    PassesHeading,
    PassesIntro,
    PassesNone,
    /// `{date}` issued, `{address}` issued from, `{seen}` last seen.
    PassDetails,
    PassThisBrowser,
    PassRevokeButton,

    // Certificate login.
    CertLoginIntro,
    CertLoginButton,
    /// The connection presented no device certificate.
    ErrCertAbsent,
    ErrCertUnregistered,
    ErrCertRevoked,
    ErrCertExpired,
    ErrCertUnknownUser,
    /// No certificate-login listener is configured and this connection has no certificate.
    ErrCertLoginOff,
    /// A page the certificate-login listener does not serve.
    ErrCertListenerOnly,
}

/// The text for `t` in `lang`. Never empty.
pub fn text(lang: Lang, t: Text) -> &'static str {
    match lang {
        Lang::En => super::en::text(t),
        Lang::Ja => super::ja::text(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<&str> {
        let mut found: Vec<&str> =
            s.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn both_catalogs_define_every_key_with_a_non_empty_text() {
        for &t in Text::ALL {
            for lang in [Lang::En, Lang::Ja] {
                assert!(!text(lang, t).trim().is_empty(), "{lang:?} {t:?} is empty");
            }
        }
    }

    #[test]
    fn japanese_is_translated_not_copied() {
        let copied: Vec<Text> = Text::ALL.iter().copied().filter(|&t| text(Lang::En, t) == text(Lang::Ja, t)).collect();
        assert!(copied.is_empty(), "same text in both catalogs: {copied:?}");
    }

    #[test]
    fn both_catalogs_use_the_same_placeholders() {
        for &t in Text::ALL {
            let en = placeholders(text(Lang::En, t));
            let ja = placeholders(text(Lang::Ja, t));
            assert_eq!(en, ja, "{t:?}");
        }
        assert_eq!(placeholders(text(Lang::Ja, Text::SignedInAs)), ["name", "username"]);
    }
}
