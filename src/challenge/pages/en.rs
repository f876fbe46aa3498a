//! The English catalog.

use super::Text;

pub(super) fn text(t: Text) -> &'static str {
    match t {
        Text::LanguageName => "English",
        Text::LanguageSwitchLabel => "Language",
        Text::ContactPrefix => "Need help? Contact:",
        Text::SigningInTo => "Signing in to {app}",
        Text::SigningInAs => "Signing in to {app} as {user}",
        Text::SignedInTo => "Signed in to {app} as {user}",

        Text::LoginTitle => "Sign in",
        Text::InviteTitle => "Set up your sign-in",
        Text::InviteIntro => {
            "You were invited to set up two-step verification. Enter your password and the activation PIN \
             your administrator told you (not in the email)."
        }
        Text::PinLabel => "Activation PIN",
        Text::PinHint => "4 to 8 digits. After three wrong PINs this invitation stops working.",
        Text::InviteButton => "Continue",
        Text::ErrWrongPin => "The PIN is wrong. {left} more tries before this invitation stops working.",
        Text::InviteUsed => "This invitation was used already. Sign in as usual, or ask your administrator for a new one.",
        Text::InviteExpired => "This invitation has expired. Ask your administrator to send a new one.",
        Text::InviteVoided => "This invitation no longer works: the PIN was wrong three times. Ask your administrator for a new one.",
        Text::InviteUnknown => "This invitation link is not valid (a newer one may have replaced it). Use the link in the latest email.",
        Text::InviteAlreadyEnrolled => "You have an authenticator already: sign in as usual.",
        Text::LoginIntro => "Sign in with your username and password to continue.",
        Text::UsernameLabel => "Username",
        Text::PasswordLabel => "Password",
        Text::SignInButton => "Sign in",

        Text::TotpTitle => "Two-step verification",
        Text::TotpIntro => "Enter the 6-digit code shown in your authenticator app.",
        Text::CodeLabel => "6-digit code",
        Text::VerifyButton => "Verify",
        Text::ClockHint => {
            "If your codes are not accepted, check that the date and time on the device \
             running your authenticator app are set automatically."
        }
        Text::UseRecoveryCodeLink => "Can't use your authenticator app? Use a recovery code",
        Text::RecoveryTitle => "Use a recovery code",
        Text::RecoveryIntro => {
            "Enter one of the recovery codes you saved when you set up two-step verification. \
             Each code works only once."
        }
        Text::RecoveryCodeLabel => "Recovery code",
        Text::UseAuthenticatorLink => "Use a code from your authenticator app instead",

        Text::EnrollTitle => "Set up two-step verification",
        Text::EnrollStep1 => "Step 1 of 3: add your account to an authenticator app",
        Text::EnrollScanQr => {
            "Scan this QR code with an authenticator app on your phone, such as Google Authenticator."
        }
        Text::QrCaption => "QR code to add your account to an authenticator app",
        Text::EnrollKeyIntro => "On a computer (WinAuth, OTP Manager and similar apps), enter this key instead:",
        Text::EnrollKeyLabel => "Key",
        Text::EnrollKeyDetails => "Type: time-based (TOTP), 6 digits, every {period} seconds.",
        Text::NextButton => "Next",
        Text::EnrollStep2 => "Step 2 of 3: confirm with a code",
        Text::EnrollConfirmIntro => "Enter the 6-digit code your authenticator app now shows for this account.",
        Text::RecoveryCodesTitle => "Your recovery codes",
        Text::RecoveryCodesIntro => {
            "If you lose access to your authenticator app, each of these codes signs you in once. \
             Write them down or print them, and keep them somewhere safe."
        }
        Text::RecoveryCodesOnce => "Once you leave this page, these codes are not shown again.",
        Text::ContinueLink => "Continue",
        Text::EnrollBackLink => "Back to the QR code",
        Text::CopyCodesButton => "Copy codes",
        Text::CodesCopied => "Copied. Paste them somewhere safe.",
        Text::CodesSelected => "The codes are selected: copy them with Ctrl+C (⌘C on a Mac).",
        Text::DownloadCodesLink => "Download as a text file",
        Text::BackToApp => "Back to {app}",

        Text::DashboardTitle => "Your account",
        Text::SignedInAs => "Signed in as {name} ({username}).",
        Text::SessionLevel => "This session was verified with: {level}",
        Text::LevelBothFactors => "password and one-time password",
        Text::LevelFirstFactor => "password (one-time password not required here)",
        Text::SecondFactorsHeading => "Two-step verification",
        Text::TotpEnrolled => "Authenticator app: set up",
        Text::TotpNotEnrolled => "Authenticator app: not set up",
        Text::RecoveryCodesLeft => "Unused recovery codes: {count}",
        Text::RegenerateButton => "Create new recovery codes",
        Text::RegenerateNote => "Your current recovery codes stop working when you create new ones.",
        Text::CertsHeading => "Device certificates",
        Text::CertsNone => "No device certificate has been issued to you.",
        Text::CertActive => "Active: works until {date}",
        Text::CertExpiring => "Being replaced: stops working on {date}",
        Text::CertExpired => "Expired: stopped working on {date}",
        Text::CertRevoked => "Revoked: no longer works",
        Text::CertDetails => "Serial {serial}, issued {date}",
        Text::CertStopsSoon => {
            "The certificate of your device {device} stops working on {date}: \
             get your new device's certificate before then."
        }
        Text::SignOutHeading => "Sign out",
        Text::SignOutButton => "Sign out",
        Text::SignOutEverywhereButton => "Sign out on all devices",
        Text::SignOutEverywhereNote => "Use this if you signed in on a device you no longer have or a shared computer.",

        Text::LockedTitle => "Account locked",
        Text::LockedBody => {
            "Your account has been locked after too many failed attempts. \
             Contact your administrator to unlock it."
        }
        Text::DeniedTitle => "Access denied",
        Text::DeniedBody => {
            "You cannot access this application from your current network or device. \
             If you think this is a mistake, contact your administrator."
        }
        Text::AskAdminTitle => "Two-step verification is not set up",
        Text::AskAdminBody => {
            "Before you can sign in, you need to set up two-step verification. \
             Ask your administrator for an enrollment link."
        }
        Text::CooldownTitle => "Please wait",
        Text::CooldownBody => {
            "Your authenticator app was recently removed from your account. \
             You can set it up again and sign in after {until}."
        }
        Text::UnavailableTitle => "Sign-in temporarily unavailable",
        Text::UnavailableBody => "Sign-in is temporarily unavailable. Please try again in a minute.",
        Text::TooManyTitle => "Too many attempts",
        Text::TooManyBody => {
            "There have been too many sign-in attempts from your network. \
             Please wait a few minutes, then try again."
        }
        Text::TryAgainLink => "Try again",
        Text::SignedOutTitle => "Signed out",
        Text::SignedOutBody => "You have signed out. If you are using a shared computer, close the browser.",
        Text::SignInAgainLink => "Sign in again",
        Text::ErrorTitle => "Something went wrong",
        Text::StartOverLink => "Start again",

        Text::ErrBadCredentials => "Wrong username or password.",
        Text::ErrMissingCredentials => "Enter your username and password.",
        Text::ErrCodeFormat => "Enter the code as 6 digits.",
        Text::ErrWrongCode => "That code is not correct. Enter the code your authenticator app shows now.",
        Text::ErrCodeUsed => "That code has already been used. Wait for the next code, then enter it.",
        Text::ErrWrongRecoveryCode => "That recovery code is not valid or has already been used.",
        Text::ErrSessionExpired => "Your session has expired. Please start again.",
        Text::ErrBadForm => "This form had expired. Please try again.",
        Text::ErrLocked => "Your account is locked. Contact your administrator.",
        Text::ErrTooMany => "Too many attempts. Please wait a few minutes, then try again.",
        Text::ErrUnavailable => "Sign-in is temporarily unavailable. Please try again in a minute.",
        Text::ErrNotFound => "This page does not exist.",

        Text::OtpauthLink => "On this phone? Open it in your authenticator app",
        Text::PushTitle => "Approve login on your device",
        Text::PushIntro => "We sent a sign-in request to your approval device. Open it, pick the number below, and tap Accept.",
        Text::PushNumberLabel => "Number to pick on your device",
        Text::PushWaiting => "Waiting for your approval…",
        Text::PushContinueButton => "I approved it: continue",
        Text::PushSendAgainButton => "Send again",
        Text::PushUseTotpLink => "Use the code from your authenticator app instead",
        Text::PushUseRecoveryLink => "Use a recovery code instead",
        Text::PushNoDevice => "No approval device is set up for your account, so no request could be sent.",
        Text::PushTooMany => "Too many sign-in requests were sent lately. You can send another at {time}.",
        Text::PushBlocked => "A recent request was refused on your device, so none is sent until {time}. If that was not you, tell your administrator.",
        Text::PushDenied => "The sign-in was refused on your device.",
        Text::PushWrongNumber => "The number picked on your device did not match. Send a new request and pick the number shown here.",
        Text::PushExpired => "The request expired before it was answered. Send it again, or use another way to sign in.",
        Text::ApproversTitle => "Approval devices",
        Text::ApproversIntro => "Phones and computers that approve your sign-ins with one tap instead of a code.",
        Text::ApproversNone => "No approval device yet.",
        Text::ApproverAddButton => "Add approval device",
        Text::ApproverLinkIntro => "Scan this code with the phone to add (or open the link on it) within 10 minutes. It works once.",
        Text::ApproverRemoveButton => "Remove",
        Text::ApproversLink => "Approval devices",
        Text::AdminConsoleLink => "Administration console",
        Text::PassesHeading => "Trusted browsers (entrance passes)",
        Text::PassesIntro => "These browsers may skip the one-time password where your organization allows it. Revoke any you no longer use or do not recognize.",
        Text::PassesNone => "No browser holds an entrance pass of yours.",
        Text::PassDetails => "Issued {date} from {address}; last used {seen}",
        Text::PassThisBrowser => "this browser",
        Text::PassRevokeButton => "Revoke",
        Text::CertLoginIntro => "Or, on a device your organization gave a device certificate:",
        Text::CertLoginButton => "Log in with device certificate",
        Text::ErrCertAbsent => "Your browser sent no device certificate. Choose this device's certificate when the browser asks (close and reopen the browser if you dismissed the question), or sign in with your password.",
        Text::ErrCertUnregistered => "This device certificate is not registered here. Ask your administrator for a certificate for this device, or sign in with your password.",
        Text::ErrCertRevoked => "This device certificate was revoked and no longer works. Sign in with your password, and ask your administrator for a new certificate.",
        Text::ErrCertExpired => "This device certificate has expired and no longer works. Sign in with your password, and ask your administrator for a new certificate.",
        Text::ErrCertUnknownUser => "This device certificate belongs to no user of this service. Ask your administrator.",
        Text::ErrCertLoginOff => "Certificate login is not set up here. Sign in with your password.",
        Text::ErrCertListenerOnly => "This address only serves certificate login. Open the application and choose “Log in with device certificate” on its sign-in page.",
    }
}
