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
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
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
    /// HMAC state already keyed with `secret`; cloned per use.
    keyed: Hmac<Sha256>,
}

impl CookieKey {
    fn new(id: u32, secret: [u8; SECRET_LEN]) -> CookieKey {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes any key length");
        CookieKey { id, secret, keyed }
    }

    fn random(id: u32) -> CookieKey {
        let mut secret = [0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut secret);
        CookieKey::new(id, secret)
    }

    /// HMAC of `purpose`, a 0 byte, and `signed`.
    fn mac(&self, purpose: &str, signed: &str) -> [u8; MAC_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().into()
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
/// headers (several headers, `; `-separated pairs); no allocation. The first
/// pair with that name wins; a value that is not UTF-8 is skipped.
pub fn find_cookie<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    cookie_headers.flat_map(|header| header.split(|&b| b == b';')).find_map(|pair| cookie_value(pair, name.as_bytes()))
}

/// The value of one `name=value` pair if its name is `name`.
fn cookie_value<'a>(pair: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let pair = pair.trim_ascii();
    let eq = pair.iter().position(|&b| b == b'=')?;
    if pair[..eq].trim_ascii() != name {
        return None;
    }
    std::str::from_utf8(pair[eq + 1..].trim_ascii()).ok()
}

/// `Set-Cookie` value for a `__Host-` cookie:
/// `NAME=VALUE; Path=/; Secure; HttpOnly; SameSite=Lax`, plus
/// `; Max-Age=N` when given (a browser-session cookie otherwise).
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let mut header = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Some(secs) = max_age {
        header.push_str(&format!("; Max-Age={secs}"));
    }
    header
}

/// The `Set-Cookie` value that deletes the cookie (Max-Age=0, same
/// attributes, which `__Host-` cookies require).
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
        assert_eq!(set_cookie("__Host-x", "v", None), "__Host-x=v; Path=/; Secure; HttpOnly; SameSite=Lax");
        assert_eq!(
            set_cookie("__Host-x", "v", Some(3600)),
            "__Host-x=v; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600"
        );
        assert_eq!(clear_cookie("__Host-x"), "__Host-x=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
    }

    #[test]
    fn errors_display() {
        assert_eq!(CookieError::UnknownKey(9).to_string(), "signed with unknown key id 9");
        assert!(CookieError::TooLong.to_string().contains("4096"));
    }
}
