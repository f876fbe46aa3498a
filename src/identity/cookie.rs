//! Signed cookie values: HMAC-SHA256 with a key id and key rotation.
//!
//! Cookies are self-contained, so the proxy decides from the cookie alone with
//! no store lookup per request; the signature is what makes that safe. A value
//! reads `v1.<kid>.<payload>.<mac>` (base64url, no padding). The MAC covers a
//! *purpose* ("session", "flow", "csrf", …), a 0 byte, and everything before
//! the last '.', so the key id is authenticated too and a value signed for one
//! use never verifies for another.
//!
//! Keys rotate like rustls' ticketer: a [`KeyRing`] holds the current key,
//! which signs, and the previous one, which still verifies, so a rotation does
//! not sign everybody out; a second rotation retires the old key for good.
//!
//! Verification is on the hot path: each key keeps its HMAC state already
//! keyed (the inner and outer pads hashed once), values over 4096 bytes are
//! refused before any work, the MAC is compared in constant time, and the
//! payload is decoded only once the MAC has been checked. Cookies are hostile
//! input: nothing here panics on them. Secrets never appear in `Debug` output
//! or error messages.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Longest value [`KeyRing::verify`] looks at; browsers keep at most 4096
/// bytes per cookie anyway.
pub const MAX_VALUE_LEN: usize = 4096;

const VERSION_PREFIX: &str = "v1.";
const SECRET_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// base64url without padding of 32 bytes.
const MAC_B64_LEN: usize = 43;
/// `u32::MAX` has ten decimal digits.
const MAX_KID_LEN: usize = 10;

/// What went wrong with a cookie value or a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieError {
    /// Not of the form `v1.<kid>.<payload>.<mac>`, or a part does not decode.
    Malformed,
    /// Signed with a key the ring no longer (or never) held.
    UnknownKey(u32),
    /// The MAC does not match: tampered, or signed for another purpose.
    BadSignature,
    /// Longer than [`MAX_VALUE_LEN`]; refused before any work.
    TooLong,
    /// A key file that does not parse (the message names no secret).
    BadKeyFile(String),
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieError::Malformed => f.write_str("malformed signed value"),
            CookieError::UnknownKey(id) => write!(f, "signed with unknown key id {id}"),
            CookieError::BadSignature => f.write_str("bad signature"),
            CookieError::TooLong => write!(f, "signed value longer than {MAX_VALUE_LEN} bytes"),
            CookieError::BadKeyFile(why) => write!(f, "bad cookie key file: {why}"),
        }
    }
}

impl std::error::Error for CookieError {}

/// One signing key: a small id (written into every value so verification
/// picks the right key) and 32 secret bytes.
#[derive(Clone)]
pub struct CookieKey {
    pub id: u32,
    secret: [u8; SECRET_LEN],
    /// HMAC-SHA256 key with its inner and outer pads already hashed (ring:
    /// assembly SHA-256, with the CPU's SHA extensions where present).
    keyed: ring::hmac::Key,
}

impl CookieKey {
    fn new(id: u32, secret: [u8; SECRET_LEN]) -> CookieKey {
        let keyed = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        CookieKey { id, secret, keyed }
    }

    fn random(id: u32) -> CookieKey {
        let mut secret = [0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut secret);
        CookieKey::new(id, secret)
    }

    /// HMAC of `purpose`, a 0 byte, and `signed`.
    fn mac(&self, purpose: &str, signed: &str) -> [u8; MAC_LEN] {
        let mut mac = ring::hmac::Context::with_key(&self.keyed);
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(signed.as_bytes());
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(mac.sign().as_ref());
        out
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKey").field("id", &self.id).field("secret", &"<hidden>").finish()
    }
}

impl PartialEq for CookieKey {
    fn eq(&self, other: &CookieKey) -> bool {
        self.id == other.id && bool::from(self.secret.ct_eq(&other.secret))
    }
}

impl Eq for CookieKey {}

/// Current + previous key, as rustls' ticketer rotates: new values are signed
/// with `current`, values signed with `previous` still verify until the next
/// rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    current: CookieKey,
    previous: Option<CookieKey>,
}

/// The key file as JSON: hex secrets, so the file is readable text.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RingFile {
    current: KeyFile,
    previous: Option<KeyFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    id: u32,
    secret: String,
}

impl KeyFile {
    fn from_key(key: &CookieKey) -> KeyFile {
        KeyFile { id: key.id, secret: hex::encode(key.secret) }
    }

    fn to_key(&self) -> Result<CookieKey, CookieError> {
        let mut secret = [0u8; SECRET_LEN];
        hex::decode_to_slice(&self.secret, &mut secret)
            .map_err(|_| CookieError::BadKeyFile(format!("secret of key {} is not 64 hex digits", self.id)))?;
        Ok(CookieKey::new(self.id, secret))
    }
}

impl KeyRing {
    /// A fresh ring: random current key with id 1, no previous key.
    pub fn generate() -> KeyRing {
        KeyRing { current: CookieKey::random(1), previous: None }
    }

    /// previous = current, current = a fresh key with id + 1 (skipping 0 on
    /// wrap-around, so the two ids always differ).
    pub fn rotate(&self) -> KeyRing {
        let next = match self.current.id.wrapping_add(1) {
            0 => 1,
            id => id,
        };
        KeyRing { current: CookieKey::random(next), previous: Some(self.current.clone()) }
    }

    /// The id new values are signed with.
    pub fn current_id(&self) -> u32 {
        self.current.id
    }

    /// The ring as JSON (it contains the secrets: store it like a private key).
    pub fn to_json(&self) -> String {
        let file = RingFile {
            current: KeyFile::from_key(&self.current),
            previous: self.previous.as_ref().map(KeyFile::from_key),
        };
        // Plain structs of strings and integers always serialise.
        serde_json::to_string_pretty(&file).expect("ring serialises")
    }

    /// Parses [`KeyRing::to_json`] output. Error messages give the place, not
    /// the text, so a damaged file never echoes a secret.
    pub fn from_json(s: &str) -> Result<KeyRing, CookieError> {
        let file: RingFile = serde_json::from_str(s).map_err(|e| {
            CookieError::BadKeyFile(format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()))
        })?;
        let current = file.current.to_key()?;
        let previous = file.previous.as_ref().map(KeyFile::to_key).transpose()?;
        if previous.as_ref().is_some_and(|p| p.id == current.id) {
            return Err(CookieError::BadKeyFile(format!("current and previous key share id {}", current.id)));
        }
        Ok(KeyRing { current, previous })
    }

    /// Reads `path`, or creates it (mode 0600, create_new, parent dirs
    /// created) with a fresh ring.
    pub fn load_or_create(path: &Path) -> Result<KeyRing, String> {
        match fs::read_to_string(path) {
            Ok(text) => return KeyRing::from_json(&text).map_err(|e| at(path, e)),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(at(path, e)),
            Err(_) => {}
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        }
        let ring = KeyRing::generate();
        match write_private(path, &ring.to_json()) {
            Ok(()) => Ok(ring),
            // Another process created it between our read and our create: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = fs::read_to_string(path).map_err(|e| at(path, e))?;
                KeyRing::from_json(&text).map_err(|e| at(path, e))
            }
            Err(e) => Err(at(path, e)),
        }
    }

    /// Writes atomically: a temp file (mode 0600) beside `path`, then rename,
    /// so a reader sees the old ring or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let name = path.file_name().ok_or_else(|| format!("{}: not a file name", path.display()))?;
        let tmp = path.with_file_name(format!(".{}.tmp-{:016x}", name.to_string_lossy(), OsRng.next_u64()));
        let written = write_private(&tmp, &self.to_json()).and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(at(path, e));
        }
        Ok(())
    }

    /// Signs `payload` for `purpose`:
    /// `v1.<kid>.<base64url payload>.<base64url mac>`.
    pub fn sign(&self, purpose: &str, payload: &[u8]) -> String {
        let mut value = String::with_capacity(16 + payload.len() * 4 / 3 + MAC_B64_LEN);
        value.push_str(VERSION_PREFIX);
        value.push_str(&self.current.id.to_string());
        value.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut value);
        let mac = self.current.mac(purpose, &value);
        value.push('.');
        URL_SAFE_NO_PAD.encode_string(mac, &mut value);
        value
    }

    /// The payload of a value signed by [`KeyRing::sign`] for the same
    /// `purpose` with the current or the previous key.
    pub fn verify(&self, purpose: &str, value: &str) -> Result<Vec<u8>, CookieError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(CookieError::TooLong);
        }
        let parts = Parts::split(value)?;
        let key = self.key(parts.kid).ok_or(CookieError::UnknownKey(parts.kid))?;
        let given = decode_mac(parts.mac)?;
        let expected = key.mac(purpose, parts.signed);
        if !bool::from(expected.ct_eq(&given)) {
            return Err(CookieError::BadSignature);
        }
        URL_SAFE_NO_PAD.decode(parts.payload).map_err(|_| CookieError::Malformed)
    }

    fn key(&self, id: u32) -> Option<&CookieKey> {
        std::iter::once(&self.current).chain(self.previous.as_ref()).find(|k| k.id == id)
    }
}

/// A signed value cut at its dots, borrowing from it.
struct Parts<'a> {
    kid: u32,
    /// Everything before the last '.': what the MAC covers.
    signed: &'a str,
    payload: &'a str,
    mac: &'a str,
}

impl<'a> Parts<'a> {
    fn split(value: &'a str) -> Result<Parts<'a>, CookieError> {
        let (signed, mac) = value.rsplit_once('.').ok_or(CookieError::Malformed)?;
        let rest = signed.strip_prefix(VERSION_PREFIX).ok_or(CookieError::Malformed)?;
        let (kid, payload) = rest.split_once('.').ok_or(CookieError::Malformed)?;
        if payload.contains('.') {
            return Err(CookieError::Malformed);
        }
        let kid = parse_kid(kid).ok_or(CookieError::Malformed)?;
        Ok(Parts { kid, signed, payload, mac })
    }
}

/// Canonical decimal only (no sign, no leading zero), so one key id has one
/// spelling.
fn parse_kid(s: &str) -> Option<u32> {
    let canonical = !s.is_empty()
        && s.len() <= MAX_KID_LEN
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

fn decode_mac(s: &str) -> Result<[u8; MAC_LEN], CookieError> {
    if s.len() != MAC_B64_LEN {
        return Err(CookieError::Malformed);
    }
    // Room for the decoder's length estimate (33 bytes for 43 characters).
    let mut buf = [0u8; MAC_LEN + 4];
    match URL_SAFE_NO_PAD.decode_slice(s, &mut buf) {
        Ok(MAC_LEN) => {
            let mut mac = [0u8; MAC_LEN];
            mac.copy_from_slice(&buf[..MAC_LEN]);
            Ok(mac)
        }
        _ => Err(CookieError::Malformed),
    }
}

/// Creates `path` (it must not exist) readable by its owner only, and writes
/// `text` to disk before returning.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn at(path: &Path, e: impl fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// Reads one cookie by exact name from the values of the request's Cookie
/// headers (several headers, `;`-separated pairs); no allocation. The first
/// pair with that name wins (a later duplicate is never looked at); a value
/// that is not UTF-8 is skipped. Names match byte for byte; ASCII whitespace
/// around names and values is ignored.
///
/// This is the proxy's per-request lookup, so it is hand-written rather than
/// the `cookie` crate's parser (which the portal uses, see
/// [`request_cookies`]): it jumps from ';' to ';' with `memchr` and compares
/// only the start of each pair with the name, where the parser validates
/// and trims every pair. README *Performance* has both figures.
pub fn find_cookie<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    let name = name.as_bytes();
    cookie_headers.into_iter().find_map(|header| find_in_header(header, name))
}

/// [`find_cookie`] in one header value.
fn find_in_header<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let mut rest = header;
    loop {
        let end = memchr::memchr(b';', rest);
        let pair = &rest[..end.unwrap_or(rest.len())];
        if let Some(value) = pair_value(pair, name) {
            return Some(value);
        }
        rest = &rest[end? + 1..];
    }
}

/// The value of one `name=value` pair if its name is `name` (and the value UTF-8).
fn pair_value<'a>(pair: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let after_name = pair.trim_ascii_start().strip_prefix(name)?;
    let value = after_name.trim_ascii_start().strip_prefix(b"=")?;
    std::str::from_utf8(value.trim_ascii()).ok()
}

/// Every cookie of the request's Cookie headers, in order, as the `cookie`
/// crate parses them: the portal's reading (off the hot path, where
/// [`find_cookie`] is used). Pairs without '=' or with an empty name are
/// skipped; so, in a header that is not UTF-8, are the pairs holding the
/// stray bytes, as [`find_cookie`] skips them. Names and values are trimmed
/// of whitespace; quotes are kept (they are part of the value).
pub fn request_cookies<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = cookie::Cookie<'a>> {
    cookie_headers.flat_map(|header| {
        let text = String::from_utf8_lossy(header);
        let lossy = matches!(text, std::borrow::Cow::Owned(_));
        let clean = move |c: &cookie::Cookie<'_>| {
            !lossy
                || !(c.name().contains(char::REPLACEMENT_CHARACTER) || c.value().contains(char::REPLACEMENT_CHARACTER))
        };
        cookie::Cookie::split_parse(text).filter_map(Result::ok).filter(clean)
    })
}

/// The value of the first cookie named `name` (a later duplicate is never
/// looked at, as in [`find_cookie`]), read with [`request_cookies`].
pub fn request_cookie<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<String> {
    request_cookies(cookie_headers).find(|c| c.name() == name).map(|c| c.value().to_string())
}

/// `Set-Cookie` value for a `__Host-` cookie, built by the `cookie` crate:
/// `NAME=VALUE; HttpOnly; SameSite=Lax; Secure; Path=/`, plus
/// `; Max-Age=N` when given (a browser-session cookie otherwise). No Domain,
/// as the `__Host-` prefix requires.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let mut built =
        cookie::Cookie::build((name, value)).http_only(true).same_site(cookie::SameSite::Lax).secure(true).path("/");
    if let Some(secs) = max_age {
        built = built.max_age(cookie::time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
    }
    built.build().to_string()
}

/// The `Set-Cookie` value that deletes the cookie: empty, Max-Age=0 and the
/// same attributes, which `__Host-` cookies require. (Not the crate's
/// `make_removal`, which adds an Expires date a year back.)
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn tamper(value: &str, at: usize) -> String {
        let mut bytes = value.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn sign_verify_round_trip() {
        let ring = KeyRing::generate();
        for payload in [&b""[..], b"x", b"hello world", &[0u8, 255, 7, 8, 9][..]] {
            let value = ring.sign("session", payload);
            assert!(value.starts_with("v1.1."));
            assert_eq!(value.split('.').count(), 4);
            assert_eq!(ring.verify("session", &value).unwrap(), payload);
        }
    }

    #[test]
    fn tampered_payload_mac_or_kid_fails() {
        let ring = KeyRing::generate().rotate();
        let value = ring.sign("session", b"user=alice");
        let payload_at = value.find('.').unwrap() + 3;
        assert_eq!(ring.verify("session", &tamper(&value, payload_at)), Err(CookieError::BadSignature));
        let mac_at = value.rfind('.').unwrap() + 1;
        assert_eq!(ring.verify("session", &tamper(&value, mac_at)), Err(CookieError::BadSignature));
        // Same payload and MAC under the other key id of the ring.
        let other_kid = value.replacen("v1.2.", "v1.1.", 1);
        assert_eq!(ring.verify("session", &other_kid), Err(CookieError::BadSignature));
        let appended = format!("{value}A");
        assert_eq!(ring.verify("session", &appended), Err(CookieError::Malformed));
    }

    #[test]
    fn wrong_purpose_fails() {
        let ring = KeyRing::generate();
        let value = ring.sign("flow", b"payload");
        assert_eq!(ring.verify("session", &value), Err(CookieError::BadSignature));
        assert_eq!(ring.verify("flow\0", &value), Err(CookieError::BadSignature));
        assert!(ring.verify("flow", &value).is_ok());
    }

    #[test]
    fn rotation_keeps_previous_only() {
        let ring = KeyRing::generate();
        let old = ring.sign("session", b"old");
        let once = ring.rotate();
        assert_eq!(once.current_id(), 2);
        assert_eq!(once.verify("session", &old).unwrap(), b"old");
        assert!(once.sign("session", b"new").starts_with("v1.2."));
        let twice = once.rotate();
        assert_eq!(twice.verify("session", &old), Err(CookieError::UnknownKey(1)));
    }

    #[test]
    fn unknown_key_id() {
        let ring = KeyRing::generate();
        let value = ring.sign("session", b"x").replacen("v1.1.", "v1.77.", 1);
        assert_eq!(ring.verify("session", &value), Err(CookieError::UnknownKey(77)));
    }

    #[test]
    fn non_canonical_kid_is_malformed() {
        let ring = KeyRing::generate();
        let value = ring.sign("session", b"x");
        for kid in ["01", "+1", "-1", "", "1 ", "99999999999", "4294967296"] {
            let bad = value.replacen("v1.1.", &format!("v1.{kid}."), 1);
            assert_eq!(ring.verify("session", &bad), Err(CookieError::Malformed), "{kid:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let ring = KeyRing::generate();
        let huge = "v1.1.".to_string() + &"A".repeat(10_000) + ".x";
        assert_eq!(ring.verify("session", &huge), Err(CookieError::TooLong));
        for s in ["", ".", "...", "....", "v1", "v1.", "v1..", "v1...", "v1.1..", "v2.1.AA.AA", "v1.1.é.ü"] {
            assert!(ring.verify("session", s).is_err(), "{s:?}");
        }
        let valid = ring.sign("session", b"some payload bytes");
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..5_000 {
            let len = rng.gen_range(0..120);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = ring.verify("session", &String::from_utf8_lossy(&bytes));
            let mut mutated = valid.as_bytes().to_vec();
            let at = rng.gen_range(0..mutated.len());
            mutated[at] = b"v1.-_Az09"[rng.gen_range(0..9)];
            let mutated = String::from_utf8(mutated).unwrap();
            if mutated != valid {
                assert!(ring.verify("session", &mutated).is_err(), "{mutated}");
            }
        }
    }

    #[test]
    fn debug_hides_secret() {
        let ring = KeyRing::generate();
        let shown = format!("{ring:?}");
        assert!(shown.contains("<hidden>"));
        assert!(!shown.contains(&hex::encode(ring.current.secret)));
    }

    #[test]
    fn json_round_trip_and_errors() {
        let ring = KeyRing::generate().rotate();
        assert_eq!(KeyRing::from_json(&ring.to_json()).unwrap(), ring);
        assert!(matches!(KeyRing::from_json("{"), Err(CookieError::BadKeyFile(_))));
        let short = r#"{"current":{"id":1,"secret":"abcd"},"previous":null}"#;
        assert!(matches!(KeyRing::from_json(short), Err(CookieError::BadKeyFile(_))));
        let secret = "s3cr3t-".repeat(10);
        let wrong_type = format!(r#"{{"current":{{"id":"{secret}","secret":"ab"}},"previous":null}}"#);
        let Err(CookieError::BadKeyFile(msg)) = KeyRing::from_json(&wrong_type) else {
            panic!("expected BadKeyFile");
        };
        assert!(!msg.contains("s3cr3t"), "{msg}");
        let k = hex::encode([1u8; 32]);
        let same_ids = format!(r#"{{"current":{{"id":3,"secret":"{k}"}},"previous":{{"id":3,"secret":"{k}"}}}}"#);
        assert!(matches!(KeyRing::from_json(&same_ids), Err(CookieError::BadKeyFile(_))));
    }

    #[test]
    fn key_file_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/cookie-keys.json");
        let created = KeyRing::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(KeyRing::load_or_create(&path).unwrap(), created);
        let rotated = created.rotate();
        rotated.save(&path).unwrap();
        assert_eq!(KeyRing::load_or_create(&path).unwrap(), rotated);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "temp file left");
        fs::write(&path, "not json").unwrap();
        assert!(KeyRing::load_or_create(&path).is_err());
    }

    #[test]
    fn find_cookie_across_headers() {
        let headers: [&[u8]; 3] = [b"a=1; b=2", b"c=3;d=4 ;  e = 5 ", b"__Host-s=v1.1.x.y; f=\xff"];
        let find = |name| find_cookie(headers.iter().copied(), name);
        assert_eq!(find("a"), Some("1"));
        assert_eq!(find("b"), Some("2"));
        assert_eq!(find("d"), Some("4"));
        assert_eq!(find("e"), Some("5"));
        assert_eq!(find("__Host-s"), Some("v1.1.x.y"));
        assert_eq!(find("f"), None);
        assert_eq!(find("__Host-"), None);
        assert_eq!(find("A"), None);
        assert_eq!(find_cookie([&b"x==y"[..]].into_iter(), "x"), Some("=y"));
        assert_eq!(find_cookie([&b"noequals; ;;"[..]].into_iter(), "noequals"), None);
        assert_eq!(find_cookie(std::iter::empty(), "a"), None);
        assert_eq!(find_cookie([&b"a=1; a=2"[..]].into_iter(), "a"), Some("1"));
    }

    #[test]
    fn set_and_clear_cookie_strings() {
        assert_eq!(set_cookie("__Host-x", "v", None), "__Host-x=v; HttpOnly; SameSite=Lax; Secure; Path=/");
        assert_eq!(
            set_cookie("__Host-x", "v", Some(3600)),
            "__Host-x=v; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=3600"
        );
        assert_eq!(clear_cookie("__Host-x"), "__Host-x=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0");
        assert!(set_cookie("__Host-x", "v", Some(u64::MAX)).ends_with(&format!("; Max-Age={}", i64::MAX)));
        // What a browser reads back: every attribute a `__Host-` cookie needs.
        let back = cookie::Cookie::parse(set_cookie("__Host-x", "v1.1.a.b", Some(60))).unwrap();
        assert_eq!((back.name(), back.value(), back.path(), back.domain()), ("__Host-x", "v1.1.a.b", Some("/"), None));
        assert_eq!(
            (back.secure(), back.http_only(), back.same_site()),
            (Some(true), Some(true), Some(cookie::SameSite::Lax))
        );
        assert_eq!(back.max_age(), Some(cookie::time::Duration::seconds(60)));
    }

    /// Both readers on the same hostile headers: the same answer, no panic.
    #[test]
    fn find_cookie_and_the_cookie_crate_agree_on_hostile_headers() {
        let huge = format!("big={}; a=after-big", "x".repeat(100_000));
        let headers: Vec<&[u8]> = vec![
            b"",
            b";;;; ; =; =x; ==; a",
            b"a=1; a=2",
            b"a=\"quoted; value\"; b=\"q\"",
            b"  a  =  spaced  ;b=",
            b"x=1 a=2; a=3",
            b"\xff\xfe=1; a=\xff; a=ok",
            b"A=upper; a=lower",
            b"a=1=2=3",
            b"a\t=\ttab\t",
            huge.as_bytes(),
        ];
        for header in headers {
            for name in ["a", "b", "big", "A", "x"] {
                let ours = find_cookie(std::iter::once(header), name);
                let crate_ = request_cookie(std::iter::once(header), name);
                assert_eq!(ours, crate_.as_deref(), "{name} in {:?}", String::from_utf8_lossy(header));
            }
        }
        fn first<'a>(h: &'a [u8], name: &str) -> Option<&'a str> {
            find_cookie(std::iter::once(h), name)
        }
        // Duplicates: the first pair wins, in both readers.
        assert_eq!(first(b"a=1; a=2", "a"), Some("1"));
        assert_eq!(request_cookie([&b"a=1"[..], b"a=2"].into_iter(), "a").as_deref(), Some("1"));
        // Quotes are part of the value; a ';' inside them still ends the pair.
        assert_eq!(first(b"a=\"quoted; value\"", "a"), Some("\"quoted"));
        // Whitespace is not a separator: "x=1 a=2" is one pair named x.
        assert_eq!(first(b"x=1 a=2; a=3", "a"), Some("3"));
        // A value that is not UTF-8 is skipped, and the next pair counts.
        assert_eq!(first(b"a=\xff; a=ok", "a"), Some("ok"));
        assert_eq!(first(huge.as_bytes(), "a"), Some("after-big"));
    }

    #[test]
    fn errors_display() {
        assert_eq!(CookieError::UnknownKey(9).to_string(), "signed with unknown key id 9");
        assert!(CookieError::TooLong.to_string().contains("4096"));
    }
}
