//! TOTP second factor (RFC 6238 over RFC 4226 HOTP) and the storage of its
//! secrets.
//!
//! This module owns everything about a TOTP secret that does not need I/O
//! beyond one key file: generating it, showing it to the user (base32 key
//! string for desktop apps, `otpauth://` URI and QR code for phone apps),
//! checking submitted codes, and sealing the secret for storage.
//!
//! The codes themselves (HMAC-SHA1, dynamic truncation) and the `otpauth://`
//! URI come from the `totp-rs` crate; what stays here is portcullis's own:
//! - `verify` returns the matching *step*, not a bool, because "each code is
//!   accepted once" needs the caller to remember the last accepted step per
//!   user (atomically, in the store) and refuse any step at or below it.
//! - Keys of 80 bits are still accepted (what older apps issue, and what may
//!   have been imported), although totp-rs's checked constructor wants 128:
//!   the generator is built with `build_noncompliant`, and the length rules
//!   are this module's ([`MIN_SECRET_LEN`], digits 6 to 8, period ≥ 1 s).
//! - Sealing a secret for storage is `store::secrets::SecretBox`'s, with the
//!   user name as associated data, so a sealed secret copied to another
//!   user's record fails to open.
//! - `TotpSecret` does not print its bytes in `Debug`, and no error carries
//!   a secret, so neither can leak through a log line.

use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use std::fmt;

/// Length of a freshly generated secret: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;
/// Shortest secret accepted from a key string (80 bits, what older apps issue).
const MIN_SECRET_LEN: usize = 10;
/// Longest code input looked at; anything longer is refused before copying.
const MAX_CODE_INPUT: usize = 64;

/// What went wrong with a key string, a sealed secret or an otpauth label.
/// Never carries the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpError {
    /// The key string is not base32 (the text says why, without echoing it).
    BadKeyString(String),
    /// The key decodes to fewer than 10 bytes.
    TooShort,
    /// The issuer or account name cannot be written into an `otpauth://`
    /// label (the Key URI format forbids ':' in either; an account name is
    /// needed). Names which field.
    Label(&'static str),
}

impl fmt::Display for TotpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TotpError::BadKeyString(why) => write!(f, "invalid TOTP key string: {why}"),
            TotpError::TooShort => write!(f, "TOTP key is too short (at least {MIN_SECRET_LEN} bytes needed)"),
            TotpError::Label(field) => {
                write!(f, "the TOTP {field} cannot go into an otpauth URI (empty, or it contains ':')")
            }
        }
    }
}

impl std::error::Error for TotpError {}

/// A TOTP shared secret (20 random bytes by default). Debug prints
/// `TotpSecret(..)` only.
#[derive(Clone)]
pub struct TotpSecret(totp_rs::Secret);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh 160-bit secret from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TotpSecret(totp_rs::Secret::new_stack(bytes))
    }

    /// The secret as stored (opened from its sealed form); any length is
    /// taken, since what was enrolled must keep working.
    pub fn from_bytes(b: Vec<u8>) -> Self {
        TotpSecret(b.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The key string users type into desktop apps (WinAuth, OTP Manager):
    /// RFC 4648 base32, no padding, uppercase.
    pub fn to_base32(&self) -> String {
        self.0.to_base32()
    }

    /// Parses a key string leniently: case-insensitive, whitespace and '-'
    /// ignored, optional trailing '=' padding. Errors on other characters, on
    /// a length base32 cannot have, or on fewer than 10 bytes.
    pub fn from_base32(s: &str) -> Result<Self, TotpError> {
        let mut cleaned = String::with_capacity(s.len());
        for (pos, c) in s.chars().enumerate() {
            match c {
                'a'..='z' | 'A'..='Z' | '2'..='7' | '=' => cleaned.push(c.to_ascii_uppercase()),
                '-' => {}
                c if c.is_whitespace() => {}
                _ => return Err(TotpError::BadKeyString(format!("character {} is not base32 (A-Z, 2-7)", pos + 1))),
            }
        }
        let body = cleaned.trim_end_matches('=');
        if body.contains('=') {
            return Err(TotpError::BadKeyString("'=' inside the key".into()));
        }
        // data-encoding, not totp-rs, decodes: it refuses lengths and
        // trailing bits that no encoder writes instead of dropping them.
        let bytes = BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| TotpError::BadKeyString("wrong length for base32".into()))?;
        if bytes.len() < MIN_SECRET_LEN {
            return Err(TotpError::TooShort);
        }
        Ok(TotpSecret::from_bytes(bytes))
    }
}

/// TOTP parameters: HMAC-SHA1 (what every authenticator app supports).
/// `digits` is used within 6..=8 (RFC 4226), `period` is at least one
/// second, `skew` is the number of steps accepted either side of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totp {
    pub digits: u8,
    pub period: u64,
    pub skew: u16,
}

impl Totp {
    /// Six digits, one step of tolerated clock skew either way.
    pub fn new(period: u64) -> Totp {
        Totp { digits: 6, period, skew: 1 }
    }

    fn digits(&self) -> u8 {
        self.digits.clamp(6, 8)
    }

    fn period(&self) -> u64 {
        self.period.max(1)
    }

    /// The RFC 6238 time step (T0 = 0) containing `unix_time`.
    pub fn step(&self, unix_time: u64) -> u64 {
        unix_time / self.period()
    }

    /// totp-rs's generator for `secret` with these parameters. Unchecked on
    /// purpose: its checked `build` refuses keys under 128 bits, and enrolled
    /// (or imported) 80-bit keys must keep working; the parameters are
    /// already kept within their ranges above.
    fn generator(&self, secret: &TotpSecret) -> totp_rs::Totp {
        totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(self.digits())
            .with_skew(self.skew)
            .with_step_duration(self.period())
            .with_secret(secret.0.clone())
            .build_noncompliant()
    }

    /// The code of time step `step`, zero-padded (HOTP at counter `step`).
    pub fn code_at_step(&self, secret: &TotpSecret, step: u64) -> String {
        self.generator(secret).generate(step.saturating_mul(self.period())).to_string()
    }

    pub fn code(&self, secret: &TotpSecret, unix_time: u64) -> String {
        self.code_at_step(secret, self.step(unix_time))
    }

    /// Checks a submitted code against steps now-skew..=now+skew and returns
    /// the matching step. The caller must store it atomically and refuse any
    /// step at or below the last accepted one, so each code works once.
    /// Input is trimmed and inner whitespace removed; anything that is not
    /// then exactly `digits` ASCII digits is refused. totp-rs compares each
    /// step's code in constant time; it stops at the first match, which tells
    /// a caller timing it only what the answer tells anyway.
    pub fn verify(&self, secret: &TotpSecret, code: &str, unix_time: u64) -> Option<u64> {
        if code.len() > MAX_CODE_INPUT {
            return None;
        }
        let cleaned: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        self.generator(secret).check(&cleaned, unix_time)
    }

    /// `otpauth://totp/ISSUER:ACCOUNT?secret=..&issuer=ISSUER`, the Key Uri
    /// Format read by Google Authenticator and its peers, as totp-rs writes
    /// it: issuer and account percent-encoded (all but RFC 3986 unreserved
    /// characters), `digits` and `period` written when not 6 and 30, SHA1
    /// implied. An empty issuer is left out. The format has no way to carry a
    /// ':' in either name (readers split the label at the first ':' or
    /// `%3A`), so such names are refused rather than misread.
    pub fn otpauth_uri(&self, secret: &TotpSecret, issuer: &str, account: &str) -> Result<String, TotpError> {
        if issuer.contains(':') {
            return Err(TotpError::Label("issuer"));
        }
        let issuer = Some(issuer).filter(|i| !i.is_empty());
        let totp = totp_rs::Builder::new()
            .with_digits(self.digits())
            .with_step_duration(self.period())
            .with_secret(secret.0.clone())
            .with_issuer(issuer)
            .with_account_name(account)
            .build_noncompliant();
        totp.to_url().map_err(|_| TotpError::Label("account name"))
    }
}

/// The QR code of `data` as a standalone SVG document (no external
/// references), with a quiet zone, at least 200 px square. Data too long for
/// any QR code (over ~2.3 KB) gives an SVG that says so instead of a code.
pub fn qr_svg(data: &str) -> String {
    use qrcode::{render::svg, EcLevel, QrCode};
    match QrCode::with_error_correction_level(data, EcLevel::M) {
        Ok(code) => code.render::<svg::Color>().min_dimensions(200, 200).quiet_zone(true).build(),
        Err(_) => concat!(
            r#"<?xml version="1.0" standalone="yes"?>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">"#,
            r#"<text x="10" y="100">QR code unavailable</text></svg>"#
        )
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(SEED20.to_vec())
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        // (time, SHA1 code), 8 digits, 30 s steps.
        let vectors: [(u64, &str); 6] = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let totp = Totp { digits: 8, ..Totp::new(30) };
        for (time, sha1) in vectors {
            assert_eq!(totp.code(&rfc_secret(), time), sha1, "@{time}");
            assert_eq!(totp.verify(&rfc_secret(), sha1, time), Some(totp.step(time)), "@{time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        let totp = Totp::new(30);
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(totp.code_at_step(&rfc_secret(), counter as u64), *want);
        }
    }

    #[test]
    fn verify_window_accepts_adjacent_steps_only() {
        let totp = Totp::new(30);
        let secret = rfc_secret();
        let now: u64 = 1_700_000_010;
        let at = |offset: i64| totp.code(&secret, now.checked_add_signed(offset * 30).unwrap());
        assert_eq!(totp.verify(&secret, &at(0), now), Some(totp.step(now)));
        assert_eq!(totp.verify(&secret, &at(-1), now), Some(totp.step(now) - 1));
        assert_eq!(totp.verify(&secret, &at(1), now), Some(totp.step(now) + 1));
        assert_eq!(totp.verify(&secret, &at(-2), now), None);
        assert_eq!(totp.verify(&secret, &at(2), now), None);
    }

    #[test]
    fn verify_normalises_and_refuses_malformed_input() {
        let totp = Totp::new(30);
        let secret = rfc_secret();
        let step = totp.step(59);
        assert_eq!(totp.verify(&secret, " 287 082\n", 59), Some(step));
        for bad in ["", "28708", "2870822", "28708a", "２８７０８２", "-87082", "+287082"] {
            assert_eq!(totp.verify(&secret, bad, 59), None, "{bad:?}");
        }
        assert_eq!(totp.verify(&secret, &"1".repeat(10_000), 59), None);
        assert_eq!(totp.verify(&rfc_secret(), "000000", 59), None);
    }

    #[test]
    fn verify_at_time_zero_does_not_underflow() {
        let totp = Totp::new(30);
        let code = totp.code(&rfc_secret(), 0);
        assert_eq!(totp.verify(&rfc_secret(), &code, 0), Some(0));
    }

    #[test]
    fn period_60_uses_minute_steps() {
        let totp = Totp::new(60);
        assert_eq!(totp.step(119), 1);
        assert_eq!(totp.step(120), 2);
        let secret = rfc_secret();
        assert_eq!(totp.code(&secret, 60), totp.code(&secret, 119));
        assert_ne!(totp.code(&secret, 119), totp.code(&secret, 120));
        let old = totp.code(&secret, 600 - 60);
        assert_eq!(totp.verify(&secret, &old, 600), Some(9));
        assert_eq!(totp.verify(&secret, &totp.code(&secret, 600 - 120), 600), None);
    }

    #[test]
    fn zero_period_and_silly_digits_do_not_panic() {
        let totp = Totp { digits: 0, period: 0, skew: 1 };
        assert_eq!(totp.code(&rfc_secret(), 59).len(), 6);
        assert_eq!(totp.verify(&rfc_secret(), "", 59), None);
        // totp-rs would panic at 10 digits; the range 6..=8 keeps it away.
        let wide = Totp { digits: 50, ..Totp::new(30) };
        assert_eq!(wide.code(&rfc_secret(), 59), "94287082");
        assert_eq!(wide.verify(&rfc_secret(), "94287082", 59), Some(1));
        let far = Totp { skew: u16::MAX, ..Totp::new(30) };
        assert_eq!(far.verify(&rfc_secret(), &far.code(&rfc_secret(), 0), 0), Some(0));
    }

    #[test]
    fn base32_round_trip() {
        let secret = TotpSecret::generate();
        assert_eq!(secret.as_bytes().len(), 20);
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        assert!(text.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        let back = TotpSecret::from_base32(&text).unwrap();
        assert_eq!(back.as_bytes(), secret.as_bytes());
        assert_eq!(rfc_secret().to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn base32_parsing_is_lenient() {
        let want = b"Hello!\xde\xad\xbe\xef";
        for text in [
            "JBSWY3DPEHPK3PXP",
            "jbswy3dpehpk3pxp",
            "jbsw y3dp ehpk 3pxp",
            "JBSW-Y3DP-EHPK-3PXP",
            " JBSWY3DPEHPK3PXP\t",
        ] {
            let secret = TotpSecret::from_base32(text).unwrap();
            assert_eq!(secret.as_bytes(), want, "{text:?}");
        }
        let padded = TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE======").unwrap();
        assert_eq!(padded.as_bytes(), b"123456789012345678901");
    }

    #[test]
    fn base32_errors() {
        let bad = |s: &str| TotpSecret::from_base32(s).unwrap_err();
        assert!(matches!(bad("JBSWY3DPEHPK3PX1"), TotpError::BadKeyString(_)));
        assert!(matches!(bad("JBSWY3DP!EHPK3PXP"), TotpError::BadKeyString(_)));
        assert!(matches!(bad("JBSW=Y3DPEHPK3PXP"), TotpError::BadKeyString(_)));
        assert!(matches!(bad("JBSWY3DPEHPK3PXPA"), TotpError::BadKeyString(_)));
        assert_eq!(bad("JBSWY3DP"), TotpError::TooShort);
        assert_eq!(bad(""), TotpError::TooShort);
        // The message never echoes the key string.
        let msg = bad("SECRETKEYSTRING1").to_string();
        assert!(!msg.contains("SECRET"), "{msg}");
    }

    #[test]
    fn debug_hides_secrets() {
        let secret = rfc_secret();
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    }

    #[test]
    fn otpauth_uri_format() {
        let uri = Totp::new(30).otpauth_uri(&rfc_secret(), "Example Co", "alice@example.com").unwrap();
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Co:alice%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Co"
        );
        let minute = Totp::new(60).otpauth_uri(&rfc_secret(), "portcullis", "bob").unwrap();
        assert_eq!(
            minute,
            "otpauth://totp/portcullis:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=portcullis&period=60"
        );
        let bare = Totp::new(30).otpauth_uri(&rfc_secret(), "", "bob").unwrap();
        assert_eq!(bare, "otpauth://totp/bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn otpauth_uri_escapes_what_it_can_and_refuses_colons() {
        // Everything but unreserved characters is escaped, so '&', '?', '#',
        // '/', '%' and spaces cannot break the URI apart.
        let totp = Totp::new(60);
        let uri = totp.otpauth_uri(&rfc_secret(), "A&B C/D%", "x?y#z.w_~-@é").unwrap();
        let (path, query) = uri.split_once('?').unwrap();
        assert_eq!(path, "otpauth://totp/A%26B%20C%2FD%25:x%3Fy%23z.w_~-%40%C3%A9");
        assert_eq!(query, "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=A%26B%20C%2FD%25&period=60");
        // An independent reader (totp-rs's own parser) gets the same back.
        let back = totp_rs::Totp::from_url_unchecked(&uri).unwrap();
        assert_eq!(back.issuer(), Some("A&B C/D%"));
        assert_eq!(back.account_name(), "x?y#z.w_~-@é");
        assert_eq!(back.step(), 60);
        assert_eq!(back.secret().as_bytes(), SEED20);
        // Readers split the label at the first ':' (or "%3A"): refused, not misread.
        assert_eq!(totp.otpauth_uri(&rfc_secret(), "A:B", "alice"), Err(TotpError::Label("issuer")));
        assert_eq!(totp.otpauth_uri(&rfc_secret(), "A", "x:y"), Err(TotpError::Label("account name")));
        assert_eq!(totp.otpauth_uri(&rfc_secret(), "A", ""), Err(TotpError::Label("account name")));
        let err = totp.otpauth_uri(&rfc_secret(), "A:B", "alice").unwrap_err().to_string();
        assert!(err.contains("issuer") && err.contains("':'"), "{err}");
    }

    /// Sealed by the hand-written HOTP code this module had before totp-rs
    /// (key [7; 32]), with the codes that code computed, which `oathtool`
    /// agrees with: what is enrolled keeps working, the 80-bit key too.
    #[test]
    fn secrets_sealed_by_the_previous_code_still_verify() {
        let sb = crate::store::secrets::SecretBox::new([7u8; 32]);
        /// (time, 30 s code, 60 s code)
        type Codes = [(u64, &'static str, &'static str); 4];
        let cases: [(&str, &str, &str, Codes); 2] = [
            (
                "alice",
                "80fc41fe32699bf50e5c0e7624989076a9c650992a3d5e68999d02cfd3bb1294d8ec60aadcec3dcc49be219f6ef40d19",
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                [
                    (59, "287082", "755224"),
                    (1_111_111_109, "081804", "360094"),
                    (1_700_000_000, "921300", "895298"),
                    (2_000_000_000, "279037", "864010"),
                ],
            ),
            (
                "bob",
                "d8e4714b568cb9cb38b4da4e8f5354da15c8b3cb130ca9bfb8b00a6b7db7036f8efb3c87efe7",
                "GAYTEMZUGU3DOOBZ",
                [
                    (59, "866985", "755640"),
                    (1_111_111_109, "992738", "243425"),
                    (1_700_000_000, "661735", "704553"),
                    (2_000_000_000, "148491", "463332"),
                ],
            ),
        ];
        for (user, sealed, key, codes) in cases {
            let secret = TotpSecret::from_bytes(sb.open(&hex::decode(sealed).unwrap(), user.as_bytes()).unwrap());
            assert_eq!(secret.to_base32(), key);
            assert_eq!(TotpSecret::from_base32(key).unwrap().as_bytes(), secret.as_bytes());
            for (time, t30, t60) in codes {
                assert_eq!(Totp::new(30).code(&secret, time), t30, "{user} 30 s @{time}");
                assert_eq!(Totp::new(60).code(&secret, time), t60, "{user} 60 s @{time}");
                assert_eq!(Totp::new(30).verify(&secret, t30, time), Some(time / 30));
                assert_eq!(Totp::new(60).verify(&secret, t60, time), Some(time / 60));
                assert_eq!(Totp::new(30).verify(&secret, t30, time + 60), None);
            }
        }
    }

    #[test]
    fn qr_svg_is_standalone_svg() {
        let uri = Totp::new(30).otpauth_uri(&TotpSecret::generate(), "Portcullis", "alice").unwrap();
        let svg = qr_svg(&uri);
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
        assert!(svg.contains("</svg>"));
        assert!(!svg.contains("href"));
        let too_long = qr_svg(&"x".repeat(10_000));
        assert!(too_long.contains("</svg>"));
    }

    /// Runs the system `oathtool`; a missing tool fails the test loudly.
    fn oathtool(args: &[&str]) -> String {
        let out = std::process::Command::new("oathtool").args(args).output().unwrap_or_else(|e| {
            panic!("oathtool is needed for this cross-check ({e}): install it, e.g. `apt-get install oathtool`")
        });
        assert!(out.status.success(), "oathtool {args:?} failed: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn cross_check_with_oathtool() {
        let short = TotpSecret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(short.as_bytes().len(), 10);
        for secret in (0..5).map(|_| TotpSecret::generate()).chain([short]) {
            let key = secret.to_base32();
            for time in [59u64, 1_111_111_109, 1_700_000_000, 2_000_000_000] {
                let at = format!("@{time}");
                let t30 = oathtool(&["--totp", "-b", &key, "--now", &at]);
                assert_eq!(t30, Totp::new(30).code(&secret, time), "30 s @{time}");
                let t60 = oathtool(&["--totp", "--time-step-size=60s", "-b", &key, "--now", &at]);
                assert_eq!(t60, Totp::new(60).code(&secret, time), "60 s @{time}");
                // Their codes of the steps either side are accepted, not two away.
                let step = time / 30;
                for (offset, want) in [(-30i64, Some(step - 1)), (30, Some(step + 1)), (60, None)] {
                    let theirs = oathtool(&["--totp", "-b", &key, "--now", &format!("@{}", time as i64 + offset)]);
                    let got = Totp::new(30).verify(&secret, &theirs, time);
                    // Step +2's code may equal one inside the window by chance (3 in a million).
                    let in_window = (step - 1..=step + 1).any(|s| Totp::new(30).code_at_step(&secret, s) == theirs);
                    assert!(got == want || want.is_none() && in_window, "{offset} s @{time}");
                }
            }
        }
    }

    #[test]
    fn cross_check_with_oathtool_current_time() {
        let secret = TotpSecret::generate();
        let now = || {
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            since.unwrap().as_secs()
        };
        let totp = Totp::new(30);
        let before = totp.code(&secret, now());
        let theirs = oathtool(&["--totp", "-b", &secret.to_base32()]);
        let after = totp.code(&secret, now());
        assert!(theirs == before || theirs == after, "{theirs} vs {before}/{after}");
    }
}
