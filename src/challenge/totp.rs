//! TOTP second factor (RFC 6238 over RFC 4226 HOTP).
//!
//! This module owns everything about a TOTP secret that needs no I/O:
//! generating it, showing it to the user (base32 key string for desktop apps,
//! `otpauth://` URI and QR code for phone apps), and checking submitted
//! codes. Sealing it for storage is `store::secrets::SecretBox`'s, with the
//! user name as associated data, so a sealed secret copied to another user's
//! record fails to open.
//!
//! Why the pieces look as they do:
//! - `verify` returns the matching *step*, not a bool, because "each code is
//!   accepted once" needs the caller to remember the last accepted step per
//!   user (atomically, in the store) and refuse any step at or below it.
//! - `TotpSecret` does not print its bytes in `Debug`, and no error carries
//!   a secret, so neither can leak through a log line.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// Length of a freshly generated secret: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;
/// Shortest secret accepted from a key string (80 bits, what older apps issue).
const MIN_SECRET_LEN: usize = 10;
/// Longest code input looked at; anything longer is refused before copying.
const MAX_CODE_INPUT: usize = 64;

/// Everything but RFC 3986 unreserved characters is escaped in the URI, so a
/// `:` in an issuer or account cannot be mistaken for the label separator.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What went wrong with a key string. Never carries the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpError {
    /// The key string is not base32 (the text says why, without echoing it).
    BadKeyString(String),
    /// The key decodes to fewer than 10 bytes.
    TooShort,
}

impl fmt::Display for TotpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TotpError::BadKeyString(why) => write!(f, "invalid TOTP key string: {why}"),
            TotpError::TooShort => write!(f, "TOTP key is too short (at least {MIN_SECRET_LEN} bytes needed)"),
        }
    }
}

impl std::error::Error for TotpError {}

/// A TOTP shared secret (20 random bytes by default). Debug prints
/// `TotpSecret(..)` only.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh 160-bit secret from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    pub fn from_bytes(b: Vec<u8>) -> Self {
        TotpSecret(b)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key string users type into desktop apps (WinAuth, OTP Manager):
    /// RFC 4648 base32, no padding, uppercase.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// Parses a key string leniently: case-insensitive, whitespace and '-'
    /// ignored, optional trailing '=' padding. Errors on other characters or
    /// on fewer than 10 bytes.
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
        let bytes = BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| TotpError::BadKeyString("wrong length for base32".into()))?;
        if bytes.len() < MIN_SECRET_LEN {
            return Err(TotpError::TooShort);
        }
        Ok(TotpSecret(bytes))
    }
}

/// The HMAC behind HOTP. Enrolment only ever uses SHA-1 (what every
/// authenticator app supports); SHA-256/512 exist for the RFC 6238 vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha1,
    #[cfg_attr(not(test), allow(dead_code))]
    Sha256,
    #[cfg_attr(not(test), allow(dead_code))]
    Sha512,
}

/// HMAC(key, msg) for the chosen hash. HMAC takes keys of any length, so the
/// `new_from_slice` error cannot occur.
fn hmac_digest(algorithm: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// RFC 4226 section 5.3: HMAC of the big-endian counter, dynamic truncation
/// to 31 bits, then the low `digits` decimal digits, zero-padded.
fn hotp(algorithm: Algorithm, key: &[u8], counter: u64, digits: u32) -> String {
    let mac = hmac_digest(algorithm, key, &counter.to_be_bytes());
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = [mac[offset], mac[offset + 1], mac[offset + 2], mac[offset + 3]];
    let value = u64::from(u32::from_be_bytes(word) & 0x7fff_ffff);
    let modulus = 10u64.pow(digits);
    format!("{:0width$}", value % modulus, width = digits as usize)
}

/// TOTP parameters. `digits` is used within 6..=10 (RFC 4226 asks for at
/// least 6; the truncated value has only 31 bits, so more than 10 adds
/// nothing), `period` is at least one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totp {
    pub digits: u32,
    pub period: u64,
    pub skew: u64,
}

impl Totp {
    /// Six digits, one step of tolerated clock skew either way.
    pub fn new(period: u64) -> Totp {
        Totp { digits: 6, period, skew: 1 }
    }

    fn digits(&self) -> u32 {
        self.digits.clamp(6, 10)
    }

    fn period(&self) -> u64 {
        self.period.max(1)
    }

    /// The RFC 6238 time step (T0 = 0) containing `unix_time`.
    pub fn step(&self, unix_time: u64) -> u64 {
        unix_time / self.period()
    }

    /// RFC 4226 HOTP with HMAC-SHA1 at counter `step`, zero-padded.
    pub fn code_at_step(&self, secret: &TotpSecret, step: u64) -> String {
        hotp(Algorithm::Sha1, secret.as_bytes(), step, self.digits())
    }

    pub fn code(&self, secret: &TotpSecret, unix_time: u64) -> String {
        self.code_at_step(secret, self.step(unix_time))
    }

    /// Checks a submitted code against steps now-skew..=now+skew and returns
    /// the matching step. The caller must store it atomically and refuse any
    /// step at or below the last accepted one, so each code works once.
    /// Input is trimmed and inner whitespace removed; anything that is not
    /// then exactly `digits` ASCII digits is refused. Every step in the window
    /// is compared in constant time, without stopping at a match.
    pub fn verify(&self, secret: &TotpSecret, code: &str, unix_time: u64) -> Option<u64> {
        let submitted = self.normalise_code(code)?;
        let now = self.step(unix_time);
        let mut found = None;
        for step in now.saturating_sub(self.skew)..=now.saturating_add(self.skew) {
            let expected = self.code_at_step(secret, step);
            if bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    fn normalise_code(&self, code: &str) -> Option<String> {
        if code.len() > MAX_CODE_INPUT {
            return None;
        }
        let cleaned: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let well_formed = cleaned.len() == self.digits() as usize && cleaned.bytes().all(|b| b.is_ascii_digit());
        well_formed.then_some(cleaned)
    }

    /// `otpauth://totp/ISSUER:ACCOUNT?secret=..&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`,
    /// the Key Uri Format read by Google Authenticator and its peers. Issuer
    /// and account are percent-encoded; an empty issuer is left out.
    pub fn otpauth_uri(&self, secret: &TotpSecret, issuer: &str, account: &str) -> String {
        let account = utf8_percent_encode(account, URI_COMPONENT).to_string();
        let issuer = utf8_percent_encode(issuer, URI_COMPONENT).to_string();
        let (label, issuer_param) = if issuer.is_empty() {
            (account, String::new())
        } else {
            (format!("{issuer}:{account}"), format!("&issuer={issuer}"))
        };
        format!(
            "otpauth://totp/{label}?secret={}{issuer_param}&algorithm=SHA1&digits={}&period={}",
            secret.to_base32(),
            self.digits(),
            self.period()
        )
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
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(SEED20.to_vec())
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        // (time, SHA1, SHA256, SHA512), 8 digits, 30 s steps.
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        let totp = Totp { digits: 8, ..Totp::new(30) };
        for (time, sha1, sha256, sha512) in vectors {
            let step = totp.step(time);
            assert_eq!(hotp(Algorithm::Sha1, SEED20, step, 8), sha1, "SHA1 @{time}");
            assert_eq!(hotp(Algorithm::Sha256, SEED32, step, 8), sha256, "SHA256 @{time}");
            assert_eq!(hotp(Algorithm::Sha512, SEED64, step, 8), sha512, "SHA512 @{time}");
            assert_eq!(totp.code(&rfc_secret(), time), sha1);
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
        let wide = Totp { digits: 50, ..Totp::new(30) };
        assert_eq!(wide.code(&rfc_secret(), 59).len(), 10);
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
        let uri = Totp::new(30).otpauth_uri(&rfc_secret(), "Example Co", "alice@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Co:alice%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Co\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn otpauth_uri_escapes_separators() {
        let uri = Totp::new(60).otpauth_uri(&rfc_secret(), "A:B&C", "x:y?z#w");
        let path = uri.split('?').next().unwrap();
        assert_eq!(path, "otpauth://totp/A%3AB%26C:x%3Ay%3Fz%23w");
        assert!(uri.contains("&issuer=A%3AB%26C&"));
        assert!(uri.ends_with("&digits=6&period=60"));
        let bare = Totp::new(30).otpauth_uri(&rfc_secret(), "", "bob");
        assert!(bare.starts_with("otpauth://totp/bob?secret="));
        assert!(!bare.contains("issuer="));
    }

    #[test]
    fn qr_svg_is_standalone_svg() {
        let uri = Totp::new(30).otpauth_uri(&TotpSecret::generate(), "Portcullis", "alice");
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
        for _ in 0..5 {
            let secret = TotpSecret::generate();
            let key = secret.to_base32();
            for time in [59u64, 1_111_111_109, 1_700_000_000, 2_000_000_000] {
                let at = format!("@{time}");
                let t30 = oathtool(&["--totp", "-b", &key, "--now", &at]);
                assert_eq!(t30, Totp::new(30).code(&secret, time), "30 s @{time}");
                let t60 = oathtool(&["--totp", "-s", "60s", "-b", &key, "--now", &at]);
                assert_eq!(t60, Totp::new(60).code(&secret, time), "60 s @{time}");
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
