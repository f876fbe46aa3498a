//! Web Push sending, written out here instead of taken from a push library:
//! the server's side of "notify the approver device" for subscribed devices.
//!
//! What it implements:
//!
//! * **Message encryption**, [RFC 8291] with the `aes128gcm` content coding of
//!   [RFC 8188]. For each message a fresh sender (application server) key
//!   pair and a random 16-byte salt are made; ECDH P-256 with the
//!   subscription's `p256dh` key, mixed with its 16-byte `auth` secret, gives
//!   the input keying material (RFC 8291 Section 3.3, 3.4:
//!   `IKM = HKDF(auth, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32)`),
//!   from which the content-encryption key and nonce are derived with the salt
//!   (RFC 8188 Section 2.2, 2.3). The body is the RFC 8188 Section 2.1 header
//!   `salt (16) | rs (u32 BE, 4096) | idlen (65) | keyid = sender public key`
//!   followed by a single AES-128-GCM record whose plaintext is the payload and
//!   the last-record padding delimiter `0x02` (RFC 8291 Section 4, which also
//!   bounds the payload to [`MAX_PAYLOAD`] = 3993 bytes). [`encrypt_with_keys`]
//!   is the deterministic core, checked byte for byte against the example of
//!   RFC 8291 Section 5 / Appendix A; [`decrypt`] is the user agent's side
//!   (any number of records), for tests and test receivers.
//! * **VAPID**, [RFC 8292]: [`VapidKeys`] holds the server's long-lived P-256
//!   key (the `applicationServerKey` subscriptions are made with, so it must
//!   not change); each request carries an ES256 JWT (Section 2) with `aud` =
//!   the push service's origin, `exp` = now + 12 hours (at most 24 hours,
//!   Section 2), `sub` = a `mailto:` or `https:` contact (Section 2.1), in
//!   `Authorization: vapid t=JWT, k=PUBLIC_KEY` (Section 3).
//! * **The push request**, [RFC 8030] Section 5: [`send`] POSTs the body with
//!   `Content-Encoding: aes128gcm`, `TTL` (Section 5.2) and `Urgency: high`
//!   (Section 5.3); 201 (and 200/202) is success, 404 or 410 means the
//!   subscription is gone (Section 7.3) and should be deleted.
//! * **Which endpoints may be used**: an approver device chooses its endpoint
//!   URL, and the server POSTs to it, so [`endpoint_allowed`] limits endpoints
//!   to `https://` URLs on the known push services ([`DEFAULT_PUSH_HOSTS`]) or
//!   hosts the administrator lists. Callers check it when a subscription is
//!   stored and before sending; [`send`] itself refuses anything but
//!   `https://` without user information, and [`client`] builds an HTTP
//!   client that does not follow redirects.
//!
//! [RFC 8030]: https://www.rfc-editor.org/rfc/rfc8030
//! [RFC 8188]: https://www.rfc-editor.org/rfc/rfc8188
//! [RFC 8291]: https://www.rfc-editor.org/rfc/rfc8291
//! [RFC 8292]: https://www.rfc-editor.org/rfc/rfc8292

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use p256::{PublicKey, SecretKey};
use rand::rngs::OsRng;
use rand::RngCore;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock::{Clock, SystemClock};

/// The push services browsers subscribe with: Google FCM (Chrome, Edge on
/// Android, most Chromium browsers), Mozilla autopush (Firefox), Apple
/// (Safari on macOS and iOS: `web.push.apple.com`), Microsoft WNS (Edge on
/// Windows). An entry `*.example.com` allows the subdomains of `example.com`
/// (not `example.com` itself); any other entry is one exact host.
pub const DEFAULT_PUSH_HOSTS: &[&str] =
    &["fcm.googleapis.com", "updates.push.services.mozilla.com", "*.push.apple.com", "*.notify.windows.com"];

/// [`DEFAULT_PUSH_HOSTS`] as the `Vec<String>` [`endpoint_allowed`] takes.
pub fn default_push_hosts() -> Vec<String> {
    DEFAULT_PUSH_HOSTS.iter().map(|h| (*h).to_owned()).collect()
}

/// The record size written in the header (RFC 8291 Section 4: the single
/// record must fit; 4096 is what push services are required to accept).
pub const RECORD_SIZE: u32 = 4096;
/// Length of an uncompressed P-256 point (`0x04 | x | y`).
const POINT_LEN: usize = 65;
/// Length of the `auth` secret (RFC 8291 Section 3.2).
pub const AUTH_LEN: usize = 16;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// `salt | rs | idlen | keyid` (RFC 8188 Section 2.1, keyid = 65-byte point).
const HEADER_LEN: usize = SALT_LEN + 4 + 1 + POINT_LEN;
/// The largest payload: a push service need not take a body over 4096 bytes,
/// which leaves 4096 - 86 (header) - 16 (tag) - 1 (delimiter) = 3993 bytes
/// (RFC 8291 Section 4).
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - HEADER_LEN - TAG_LEN - 1;

/// How long a VAPID JWT is valid: 12 hours (RFC 8292 Section 2: at most 24).
pub const VAPID_VALIDITY_SECS: u64 = 12 * 3600;

// ---------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------

/// A push subscription as the browser's `PushSubscription.toJSON()` gives
/// it: the endpoint URL and the two keys, base64url (padded or not; the
/// standard alphabet is accepted too).
///
/// It deserializes from this flat form or from the browser's
/// `{"endpoint", "expirationTime", "keys": {"p256dh", "auth"}}`, and
/// serializes flat. Deserializing checks only the shape: check
/// [`Subscription::keys`] and [`endpoint_allowed`] before storing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SubscriptionWire")]
pub struct Subscription {
    pub endpoint: String,
    /// The user agent's ECDH public key: a 65-byte uncompressed P-256 point.
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

#[derive(Deserialize)]
struct SubscriptionWire {
    endpoint: String,
    #[serde(default)]
    p256dh: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    keys: Option<WireKeys>,
}

#[derive(Deserialize)]
struct WireKeys {
    p256dh: String,
    auth: String,
}

impl TryFrom<SubscriptionWire> for Subscription {
    type Error = String;

    fn try_from(w: SubscriptionWire) -> Result<Self, String> {
        let (p256dh, auth) = match (w.keys, w.p256dh, w.auth) {
            (Some(k), _, _) => (k.p256dh, k.auth),
            (None, Some(p), Some(a)) => (p, a),
            _ => return Err("a push subscription needs keys.p256dh and keys.auth".into()),
        };
        Ok(Subscription { endpoint: w.endpoint, p256dh, auth })
    }
}

impl Subscription {
    /// The decoded keys: the user agent's public key (a 65-byte uncompressed
    /// point on P-256) and the 16-byte auth secret.
    pub fn keys(&self) -> Result<([u8; POINT_LEN], [u8; AUTH_LEN]), CryptoError> {
        let p256dh = decode_b64(&self.p256dh).ok_or(CryptoError::BadKey("p256dh is not base64url"))?;
        let auth = decode_b64(&self.auth).ok_or(CryptoError::BadKey("auth is not base64url"))?;
        let point = uncompressed_point(&p256dh)?;
        parse_point(&point)?;
        let auth: [u8; AUTH_LEN] = auth.try_into().map_err(|_| CryptoError::BadKey("auth is not 16 bytes"))?;
        Ok((point, auth))
    }
}

/// Decodes base64url, padded or not; `+` and `/` are read as `-` and `_`.
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let s: String = s
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(s).ok()
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------
// Encryption (RFC 8291, RFC 8188)
// ---------------------------------------------------------------------------

/// Why encrypting or decrypting failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// A key or the auth secret is malformed (what is wrong with it).
    BadKey(&'static str),
    /// The payload is longer than [`MAX_PAYLOAD`] (its length).
    PayloadTooLarge(usize),
    /// The body is not a well-formed `aes128gcm` message (what is wrong).
    Malformed(&'static str),
    /// A record did not authenticate: wrong key or secret, or altered.
    Decrypt,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::BadKey(what) => write!(f, "bad push key: {what}"),
            CryptoError::PayloadTooLarge(n) => write!(f, "push payload of {n} bytes is over {MAX_PAYLOAD}"),
            CryptoError::Malformed(what) => write!(f, "malformed aes128gcm body: {what}"),
            CryptoError::Decrypt => f.write_str("aes128gcm record did not authenticate"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// `bytes` as a 65-byte uncompressed point (the form RFC 8291 hashes).
fn uncompressed_point(bytes: &[u8]) -> Result<[u8; POINT_LEN], CryptoError> {
    match <[u8; POINT_LEN]>::try_from(bytes) {
        Ok(point) if point[0] == 0x04 => Ok(point),
        _ => Err(CryptoError::BadKey("not a 65-byte uncompressed P-256 point")),
    }
}

fn parse_point(point: &[u8; POINT_LEN]) -> Result<PublicKey, CryptoError> {
    PublicKey::from_sec1_bytes(point).map_err(|_| CryptoError::BadKey("not a point on P-256"))
}

fn point_bytes(public: &PublicKey) -> [u8; POINT_LEN] {
    let mut out = [0u8; POINT_LEN];
    out.copy_from_slice(public.to_encoded_point(false).as_bytes());
    out
}

/// The ECDH shared secret: the x coordinate of `secret · public`.
fn ecdh(secret: &SecretKey, public: &PublicKey) -> [u8; 32] {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    let mut out = [0u8; 32];
    out.copy_from_slice(shared.raw_secret_bytes());
    out
}

/// RFC 8291 Section 3.4: `IKM = HKDF-SHA-256(salt = auth, ikm = ecdh_secret,
/// info = "WebPush: info" 0x00 ua_public as_public, 32)`.
fn web_push_ikm(
    ecdh_secret: &[u8; 32],
    auth: &[u8; AUTH_LEN],
    ua_public: &[u8; POINT_LEN],
    as_public: &[u8; POINT_LEN],
) -> [u8; 32] {
    let mut info = Vec::with_capacity(14 + 2 * POINT_LEN);
    info.extend_from_slice(b"WebPush: info\0");
    info.extend_from_slice(ua_public);
    info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA-256 length");
    ikm
}

/// RFC 8188 Section 2.2 and 2.3: the content-encryption key and the base
/// nonce, from `PRK = HMAC-SHA-256(salt, IKM)`.
fn content_key_and_nonce(ikm: &[u8; 32], salt: &[u8; SALT_LEN]) -> ([u8; 16], [u8; 12]) {
    let hkdf = Hkdf::<Sha256>::new(Some(salt), ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    hkdf.expand(b"Content-Encoding: aes128gcm\0", &mut cek).expect("16 bytes is a valid HKDF-SHA-256 length");
    hkdf.expand(b"Content-Encoding: nonce\0", &mut nonce).expect("12 bytes is a valid HKDF-SHA-256 length");
    (cek, nonce)
}

/// The nonce of record `seq`: the base nonce XOR `seq` as a 96-bit
/// big-endian integer (RFC 8188 Section 2.3).
fn record_nonce(base: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut nonce = *base;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    nonce
}

/// Encrypts `payload` for a subscription with a fresh sender key pair and a
/// random salt. `ua_public` is the decoded `p256dh` (65 bytes), `auth_secret`
/// the decoded `auth` (16 bytes). Returns the request body.
pub fn encrypt(payload: &[u8], ua_public: &[u8], auth_secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let sender = SecretKey::random(&mut OsRng);
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    encrypt_with_keys(payload, ua_public, auth_secret, &sender, &salt)
}

/// [`encrypt`] with the sender's secret key and the salt given: the
/// deterministic core, for test vectors. Outside tests both must be new for
/// every message (use [`encrypt`]).
pub fn encrypt_with_keys(
    payload: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    sender: &SecretKey,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, CryptoError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(CryptoError::PayloadTooLarge(payload.len()));
    }
    let ua_point = uncompressed_point(ua_public)?;
    let ua_key = parse_point(&ua_point)?;
    let auth: &[u8; AUTH_LEN] = auth_secret.try_into().map_err(|_| CryptoError::BadKey("auth is not 16 bytes"))?;
    let as_point = point_bytes(&sender.public_key());

    let ikm = web_push_ikm(&ecdh(sender, &ua_key), auth, &ua_point, &as_point);
    let (cek, nonce) = content_key_and_nonce(&ikm, salt);

    // One record: the payload, then the last-record delimiter and no padding.
    let mut record = Vec::with_capacity(payload.len() + 1);
    record.extend_from_slice(payload);
    record.push(0x02);
    let sealed = Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(&cek))
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| CryptoError::Decrypt)?;

    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(POINT_LEN as u8);
    body.extend_from_slice(&as_point);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The user agent's side: decrypts an `aes128gcm` Web Push body with the
/// subscription's private key and auth secret. Reads any number of records
/// (RFC 8188 Section 2), removes padding, and checks the delimiters (`0x01`
/// on every record but the last, `0x02` on the last, so truncation shows).
pub fn decrypt(body: &[u8], ua_private: &SecretKey, auth_secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let auth: &[u8; AUTH_LEN] = auth_secret.try_into().map_err(|_| CryptoError::BadKey("auth is not 16 bytes"))?;
    if body.len() < SALT_LEN + 5 {
        return Err(CryptoError::Malformed("shorter than the header"));
    }
    let salt: &[u8; SALT_LEN] = body[..SALT_LEN].try_into().expect("16 bytes");
    let rs = u32::from_be_bytes(body[16..20].try_into().expect("4 bytes")) as usize;
    let idlen = usize::from(body[20]);
    if rs < TAG_LEN + 2 {
        return Err(CryptoError::Malformed("record size under 18"));
    }
    if idlen != POINT_LEN || body.len() < HEADER_LEN {
        return Err(CryptoError::Malformed("keyid is not the sender's 65-byte public key"));
    }
    let as_point = uncompressed_point(&body[21..HEADER_LEN])?;
    let as_key = parse_point(&as_point)?;
    let ua_point = point_bytes(&ua_private.public_key());

    let ikm = web_push_ikm(&ecdh(ua_private, &as_key), auth, &ua_point, &as_point);
    let (cek, base_nonce) = content_key_and_nonce(&ikm, salt);
    let cipher = Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(&cek));

    let records = &body[HEADER_LEN..];
    if records.is_empty() {
        return Err(CryptoError::Malformed("no record"));
    }
    let count = records.len().div_ceil(rs);
    let mut plaintext = Vec::with_capacity(records.len());
    for (seq, record) in records.chunks(rs).enumerate() {
        if record.len() <= TAG_LEN {
            return Err(CryptoError::Malformed("record shorter than its tag"));
        }
        let nonce = record_nonce(&base_nonce, seq as u64);
        let plain = cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: record, aad: b"" })
            .map_err(|_| CryptoError::Decrypt)?;
        let end = plain.iter().rposition(|&b| b != 0).ok_or(CryptoError::Malformed("record without a delimiter"))?;
        let wanted = if seq + 1 == count { 0x02 } else { 0x01 };
        if plain[end] != wanted {
            return Err(CryptoError::Malformed("wrong padding delimiter (truncated or reordered)"));
        }
        plaintext.extend_from_slice(&plain[..end]);
    }
    Ok(plaintext)
}

// ---------------------------------------------------------------------------
// VAPID (RFC 8292)
// ---------------------------------------------------------------------------

/// Why VAPID keys could not be read or written.
#[derive(Debug)]
pub enum VapidKeyError {
    Io(PathBuf, std::io::Error),
    /// The file or text is not a P-256 private key (what was wrong).
    Format(String),
}

impl fmt::Display for VapidKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VapidKeyError::Io(path, e) => write!(f, "VAPID key `{}`: {e}", path.display()),
            VapidKeyError::Format(what) => write!(f, "VAPID key: {what}"),
        }
    }
}

impl std::error::Error for VapidKeyError {}

/// The application server's VAPID key pair (ECDSA P-256). Browsers bind a
/// subscription to its public key (`applicationServerKey`), so it is made
/// once and kept: see [`VapidKeys::load_or_generate`].
#[derive(Clone)]
pub struct VapidKeys {
    key: SigningKey,
}

impl fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKeys").field("public_key", &self.public_key_base64url()).finish_non_exhaustive()
    }
}

const PEM_PKCS8: &str = "PRIVATE KEY";
const PEM_SEC1: &str = "EC PRIVATE KEY";

impl VapidKeys {
    /// A new random key pair.
    pub fn generate() -> Self {
        VapidKeys { key: SigningKey::random(&mut OsRng) }
    }

    /// From the 32-byte private scalar.
    pub fn from_raw(secret: &[u8]) -> Result<Self, VapidKeyError> {
        let key = SigningKey::from_slice(secret)
            .map_err(|_| VapidKeyError::Format("not a 32-byte P-256 private key".into()))?;
        Ok(VapidKeys { key })
    }

    /// The 32-byte private scalar.
    pub fn to_raw(&self) -> [u8; 32] {
        self.key.to_bytes().into()
    }

    /// From PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`,
    /// what `openssl ecparam -genkey -name prime256v1` writes).
    pub fn from_pem(text: &str) -> Result<Self, VapidKeyError> {
        let (label, der) = pem_decode(text).ok_or_else(|| VapidKeyError::Format("not PEM".into()))?;
        let secret = match label.as_str() {
            PEM_PKCS8 => SecretKey::from_pkcs8_der(&der).map_err(|e| VapidKeyError::Format(format!("PKCS#8: {e}")))?,
            PEM_SEC1 => SecretKey::from_sec1_der(&der).map_err(|e| VapidKeyError::Format(format!("SEC1: {e}")))?,
            other => return Err(VapidKeyError::Format(format!("PEM `{other}` is not a private key"))),
        };
        Ok(VapidKeys { key: SigningKey::from(secret) })
    }

    /// As PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub fn to_pem(&self) -> String {
        let der = SecretKey::from(&self.key).to_pkcs8_der().expect("a P-256 key encodes as PKCS#8");
        pem_encode(PEM_PKCS8, der.as_bytes())
    }

    /// Reads a key file: PEM (PKCS#8 or SEC1), the raw 32-byte scalar, or
    /// that scalar as base64url text (what other Web Push tools print).
    pub fn load(path: &Path) -> Result<Self, VapidKeyError> {
        let bytes = std::fs::read(path).map_err(|e| VapidKeyError::Io(path.to_owned(), e))?;
        if bytes.len() == 32 {
            return Self::from_raw(&bytes);
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| VapidKeyError::Format(format!("`{}` is neither PEM nor a 32-byte key", path.display())))?;
        if text.contains("-----BEGIN ") {
            return Self::from_pem(text);
        }
        match decode_b64(text) {
            Some(raw) if raw.len() == 32 => Self::from_raw(&raw),
            _ => Err(VapidKeyError::Format(format!("`{}` is neither PEM nor a 32-byte key", path.display()))),
        }
    }

    /// Writes the key as PKCS#8 PEM, readable by its owner only (0600): to a
    /// new file next to `path`, synced, then renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), VapidKeyError> {
        let io = |e: std::io::Error| VapidKeyError::Io(path.to_owned(), e);
        let mut tmp_name = path.file_name().ok_or_else(|| io(std::io::ErrorKind::InvalidInput.into()))?.to_owned();
        tmp_name.push(format!(".tmp-{:016x}", OsRng.next_u64()));
        let tmp = path.with_file_name(tmp_name);
        let written = write_private(&tmp, self.to_pem().as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }

    /// The key in `path`, or a new one saved there if there is no file yet.
    /// Returns whether it was created.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), VapidKeyError> {
        match std::fs::metadata(path) {
            Ok(_) => Self::load(path).map(|k| (k, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = Self::generate();
                keys.save(path)?;
                Ok((keys, true))
            }
            Err(e) => Err(VapidKeyError::Io(path.to_owned(), e)),
        }
    }

    /// The public key as a 65-byte uncompressed point.
    pub fn public_key(&self) -> [u8; POINT_LEN] {
        let mut out = [0u8; POINT_LEN];
        out.copy_from_slice(self.key.verifying_key().to_encoded_point(false).as_bytes());
        out
    }

    /// The public key as base64url without padding: the browser's
    /// `applicationServerKey` and the `k=` of the Authorization header.
    pub fn public_key_base64url(&self) -> String {
        b64url(&self.public_key())
    }

    /// An ES256 JWT for the push service at `audience` (an origin such as
    /// `https://fcm.googleapis.com`), expiring at `expires_at` (Unix seconds),
    /// with `contact` as `sub` (RFC 8292 Section 2).
    pub fn jwt(&self, audience: &str, contact: &str, expires_at: u64) -> String {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            exp: u64,
            sub: &'a str,
        }
        let header = b64url(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::to_vec(&Claims { aud: audience, exp: expires_at, sub: contact })
            .expect("claims serialize to JSON");
        let signing_input = format!("{header}.{}", b64url(&claims));
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(&signature.to_bytes()))
    }

    /// The `Authorization` header value for a request to `audience` at time
    /// `now` (Unix seconds): `vapid t=JWT, k=PUBLIC_KEY` (RFC 8292 Section 3),
    /// the JWT valid for [`VAPID_VALIDITY_SECS`].
    pub fn authorization(&self, audience: &str, contact: &str, now: u64) -> String {
        let jwt = self.jwt(audience, contact, now + VAPID_VALIDITY_SECS);
        format!("vapid t={jwt}, k={}", self.public_key_base64url())
    }
}

/// Whether `contact` can be the VAPID `sub`: a `mailto:` address or an
/// `https:` URL (RFC 8292 Section 2.1; Apple refuses tokens without one).
pub fn contact_valid(contact: &str) -> bool {
    let rest = contact.strip_prefix("mailto:").or_else(|| contact.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty()) && !contact.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The label and contents of the first PEM block in `text`.
fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Some((label.to_owned(), STANDARD.decode(b64).ok()?))
}

/// Creates `path` (it must not exist) with mode 0600 and writes `bytes` to
/// disk.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

// ---------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------

/// Whether the server may POST to `endpoint`: an `https://` URL without user
/// information whose host is one of `allowed_hosts`. An entry is a host name
/// (exact match), `*.example.com` (any subdomain of `example.com`, not
/// `example.com` itself), or an IP address (matched only as that address;
/// IPv6 with or without brackets). An entry may end in `:PORT`; without one
/// it matches only the default port 443. The URL is parsed as the HTTP client
/// parses it, so `https://fcm.googleapis.com@evil.com/` is the host
/// `evil.com` (and refused for its user information anyway).
pub fn endpoint_allowed(endpoint: &str, allowed_hosts: &[String]) -> bool {
    let Ok(url) = Url::parse(endpoint) else { return false };
    if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let Some(host) = url.host_str() else { return false };
    let host = UrlHost::of(host);
    let port = url.port().filter(|&p| p != 443);
    allowed_hosts.iter().any(|entry| host_matches(&host, port, entry))
}

/// A URL's host: `Url` writes IPv4 addresses in dotted decimal whatever form
/// they were given in, and IPv6 in brackets, so a domain never parses as an
/// address.
enum UrlHost<'a> {
    Ip(IpAddr),
    Domain(&'a str),
}

impl<'a> UrlHost<'a> {
    fn of(host: &'a str) -> Self {
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return v6.parse::<Ipv6Addr>().map_or(UrlHost::Domain(host), |a| UrlHost::Ip(a.into()));
        }
        host.parse::<Ipv4Addr>().map_or(UrlHost::Domain(host), |a| UrlHost::Ip(a.into()))
    }
}

fn host_matches(host: &UrlHost<'_>, port: Option<u16>, entry: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    let (pattern, entry_port) = split_port(&entry);
    if entry_port.filter(|&p| p != 443) != port || pattern.is_empty() {
        return false;
    }
    let pattern_ip = pattern.strip_prefix('[').and_then(|p| p.strip_suffix(']')).unwrap_or(pattern).parse::<IpAddr>();
    match host {
        UrlHost::Ip(addr) => pattern_ip.is_ok_and(|p| p == *addr),
        UrlHost::Domain(_) if pattern_ip.is_ok() => false,
        UrlHost::Domain(name) => match pattern.strip_prefix("*.") {
            Some(parent) => {
                !parent.is_empty()
                    && name.len() > parent.len() + 1
                    && name.ends_with(parent)
                    && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
            }
            None => *name == pattern,
        },
    }
}

/// Splits `host[:port]`, `[v6]:port`; a bare IPv6 address has no port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if entry.starts_with('[') {
        if let Some(close) = entry.find(']') {
            let port = entry[close + 1..].strip_prefix(':').and_then(|p| p.parse().ok());
            return (&entry[..=close], port);
        }
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => ("", None),
        },
        _ => (entry, None),
    }
}

// ---------------------------------------------------------------------------
// Sending (RFC 8030)
// ---------------------------------------------------------------------------

/// Why a push was not delivered.
#[derive(Debug)]
pub enum SendError {
    /// 404 or 410: the subscription no longer exists; delete it.
    Gone,
    /// The endpoint is not an `https://` URL without user information.
    EndpointRefused(String),
    /// The subscription's keys are malformed.
    InvalidSubscription(CryptoError),
    /// The payload is over [`MAX_PAYLOAD`] bytes (its length).
    PayloadTooLarge(usize),
    /// The VAPID contact is not a `mailto:` or `https:` URI.
    InvalidContact(String),
    /// The request failed (connection, TLS, timeout).
    Http(reqwest::Error),
    /// The push service answered with another status; `detail` is the
    /// start of its response body.
    Status { status: u16, detail: String },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Gone => f.write_str("push subscription is gone (404/410)"),
            SendError::EndpointRefused(why) => write!(f, "push endpoint refused: {why}"),
            SendError::InvalidSubscription(e) => write!(f, "invalid push subscription: {e}"),
            SendError::PayloadTooLarge(n) => write!(f, "push payload of {n} bytes is over {MAX_PAYLOAD}"),
            SendError::InvalidContact(c) => write!(f, "VAPID contact `{c}` is not a mailto: or https: URI"),
            SendError::Http(e) => write!(f, "push request failed: {e}"),
            SendError::Status { status, detail } if detail.is_empty() => write!(f, "push service answered {status}"),
            SendError::Status { status, detail } => write!(f, "push service answered {status}: {detail}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::InvalidSubscription(e) => Some(e),
            SendError::Http(e) => Some(e),
            _ => None,
        }
    }
}

/// A client builder for [`send`]: no redirects (a push service answers a
/// push directly; following a redirect would let one send the request
/// elsewhere), 10 s to connect, 30 s in all.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
}

/// [`client_builder`], built.
pub fn client() -> reqwest::Result<reqwest::Client> {
    client_builder().build()
}

/// Sends `payload` (at most [`MAX_PAYLOAD`] bytes) to a subscription:
/// encrypts it (RFC 8291), signs a VAPID JWT for the endpoint's origin with
/// `contact` as `sub` (RFC 8292), and POSTs it with `TTL: ttl_secs` (how long
/// the push service may hold it for an offline device) and `Urgency: high`.
///
/// The endpoint must be `https://`; whether its host is allowed is the
/// caller's check ([`endpoint_allowed`]). Use a client from [`client`] (no
/// redirects). [`SendError::Gone`] means the subscription should be deleted.
pub async fn send(
    client: &reqwest::Client,
    sub: &Subscription,
    payload: &[u8],
    vapid: &VapidKeys,
    contact: &str,
    ttl_secs: u32,
) -> Result<(), SendError> {
    send_to(client, sub, payload, vapid, contact, ttl_secs, false).await
}

/// [`send`]; `allow_loopback_http` also lets `http://127.0.0.1:PORT/…`
/// through, for the module's tests (their receiver speaks plain HTTP).
async fn send_to(
    client: &reqwest::Client,
    sub: &Subscription,
    payload: &[u8],
    vapid: &VapidKeys,
    contact: &str,
    ttl_secs: u32,
    allow_loopback_http: bool,
) -> Result<(), SendError> {
    let url = Url::parse(&sub.endpoint).map_err(|e| SendError::EndpointRefused(e.to_string()))?;
    let loopback_http = allow_loopback_http && url.scheme() == "http" && url.host_str() == Some("127.0.0.1");
    if url.scheme() != "https" && !loopback_http {
        return Err(SendError::EndpointRefused(format!("`{}` is not https", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SendError::EndpointRefused("user information in the URL".into()));
    }
    if !contact_valid(contact) {
        return Err(SendError::InvalidContact(contact.to_owned()));
    }
    let (ua_public, auth) = sub.keys().map_err(SendError::InvalidSubscription)?;
    let body = encrypt(payload, &ua_public, &auth).map_err(|e| match e {
        CryptoError::PayloadTooLarge(n) => SendError::PayloadTooLarge(n),
        e => SendError::InvalidSubscription(e),
    })?;
    let authorization = vapid.authorization(&url.origin().ascii_serialization(), contact, SystemClock.now());

    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header("TTL", ttl_secs.to_string())
        .header("Urgency", "high")
        .header(reqwest::header::AUTHORIZATION, authorization)
        .body(body)
        .send()
        .await
        .map_err(SendError::Http)?;
    match response.status().as_u16() {
        200..=202 => Ok(()),
        404 | 410 => Err(SendError::Gone),
        status => Err(SendError::Status { status, detail: body_start(response).await }),
    }
}

/// The first 300 bytes of a response body as one line of text, for an error.
async fn body_start(mut response: reqwest::Response) -> String {
    const LIMIT: usize = 300;
    let mut bytes = Vec::new();
    while bytes.len() < LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(LIMIT);
    let text = String::from_utf8_lossy(&bytes);
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn b64(s: &str) -> Vec<u8> {
        decode_b64(s).unwrap()
    }

    // RFC 8291 Section 5 and Appendix A.
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const ECDH_SECRET: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
    const IKM: &str = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg";
    const PRK: &str = "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc";
    const CEK: &str = "oIhVW04MRdy2XN9CiKLxTg";
    const NONCE: &str = "4h_95klXJ5E_qnoN";
    const BODY: &str = concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );

    fn rfc_salt() -> [u8; 16] {
        b64(SALT).try_into().unwrap()
    }

    #[test]
    fn rfc8291_example_step_by_step() {
        let ua = SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        let sender = SecretKey::from_slice(&b64(AS_PRIVATE)).unwrap();
        let ua_point = point_bytes(&ua.public_key());
        let as_point = point_bytes(&sender.public_key());
        assert_eq!(ua_point.to_vec(), b64(UA_PUBLIC));
        assert_eq!(as_point.to_vec(), b64(AS_PUBLIC));

        let secret = ecdh(&sender, &ua.public_key());
        assert_eq!(secret.to_vec(), b64(ECDH_SECRET));
        assert_eq!(ecdh(&ua, &sender.public_key()), secret);
        let auth: [u8; 16] = b64(AUTH).try_into().unwrap();
        let ikm = web_push_ikm(&secret, &auth, &ua_point, &as_point);
        assert_eq!(ikm.to_vec(), b64(IKM));
        let (prk, _) = Hkdf::<Sha256>::extract(Some(&rfc_salt()), &ikm);
        assert_eq!(prk.to_vec(), b64(PRK));
        let (cek, nonce) = content_key_and_nonce(&ikm, &rfc_salt());
        assert_eq!(cek.to_vec(), b64(CEK));
        assert_eq!(nonce.to_vec(), b64(NONCE));
    }

    #[test]
    fn rfc8291_example_body_byte_for_byte() {
        let sender = SecretKey::from_slice(&b64(AS_PRIVATE)).unwrap();
        let body = encrypt_with_keys(PLAINTEXT.as_bytes(), &b64(UA_PUBLIC), &b64(AUTH), &sender, &rfc_salt()).unwrap();
        assert_eq!(body, b64(BODY));
        assert_eq!(b64url(&body), BODY);
        assert_eq!(body.len(), 144);
    }

    #[test]
    fn rfc8291_example_decrypts() {
        let ua = SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        assert_eq!(decrypt(&b64(BODY), &ua, &b64(AUTH)).unwrap(), PLAINTEXT.as_bytes());
    }

    fn random_subscriber() -> (SecretKey, [u8; 65], [u8; 16]) {
        let ua = SecretKey::random(&mut OsRng);
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        let point = point_bytes(&ua.public_key());
        (ua, point, auth)
    }

    #[test]
    fn encrypt_then_decrypt_with_random_keys() {
        for len in [0, 1, 15, 16, 17, 100, 1000, MAX_PAYLOAD] {
            let (ua, point, auth) = random_subscriber();
            let mut payload = vec![0u8; len];
            OsRng.fill_bytes(&mut payload);
            let body = encrypt(&payload, &point, &auth).unwrap();
            assert_eq!(body.len(), HEADER_LEN + len + 1 + TAG_LEN);
            assert!(body.len() <= 4096);
            assert_eq!(&body[16..20], &4096u32.to_be_bytes());
            assert_eq!(body[20], 65);
            assert_eq!(body[21], 0x04);
            assert_eq!(decrypt(&body, &ua, &auth).unwrap(), payload, "length {len}");
            // A fresh sender key and salt each time.
            let again = encrypt(&payload, &point, &auth).unwrap();
            assert_ne!(body[..HEADER_LEN], again[..HEADER_LEN]);
            assert_ne!(body[HEADER_LEN..], again[HEADER_LEN..]);
        }
    }

    #[test]
    fn altered_or_misaddressed_bodies_do_not_decrypt() {
        let (ua, point, auth) = random_subscriber();
        let body = encrypt(b"approve login 42?", &point, &auth).unwrap();

        for i in [0, 20 + 30, HEADER_LEN, body.len() - 1] {
            let mut altered = body.clone();
            altered[i] ^= 0x01;
            assert!(decrypt(&altered, &ua, &auth).is_err(), "byte {i}");
        }
        let mut other_auth = auth;
        other_auth[0] ^= 1;
        assert_eq!(decrypt(&body, &ua, &other_auth), Err(CryptoError::Decrypt));
        let (other_ua, _, _) = random_subscriber();
        assert_eq!(decrypt(&body, &other_ua, &auth), Err(CryptoError::Decrypt));
        assert!(matches!(decrypt(&body[..HEADER_LEN], &ua, &auth), Err(CryptoError::Malformed(_))));
        assert!(matches!(decrypt(&body[..HEADER_LEN + 10], &ua, &auth), Err(CryptoError::Malformed(_))));
        assert!(matches!(decrypt(&body[..10], &ua, &auth), Err(CryptoError::Malformed(_))));
        assert!(matches!(decrypt(&body, &ua, &auth[..15]), Err(CryptoError::BadKey(_))));
        let mut small_rs = body.clone();
        small_rs[16..20].copy_from_slice(&17u32.to_be_bytes());
        assert!(matches!(decrypt(&small_rs, &ua, &auth), Err(CryptoError::Malformed(_))));
    }

    /// Encodes `chunks` as consecutive records (delimiter 1, then 2 on the
    /// last) padded with `pad` zeros each, with the given record size.
    fn multi_record_body(chunks: &[&[u8]], pad: usize, rs: usize, ua_point: &[u8; 65], auth: &[u8; 16]) -> Vec<u8> {
        let sender = SecretKey::random(&mut OsRng);
        let salt = [7u8; 16];
        let as_point = point_bytes(&sender.public_key());
        let ikm = web_push_ikm(&ecdh(&sender, &parse_point(ua_point).unwrap()), auth, ua_point, &as_point);
        let (cek, base) = content_key_and_nonce(&ikm, &salt);
        let cipher = Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(&cek));
        let mut body = salt.to_vec();
        body.extend_from_slice(&(rs as u32).to_be_bytes());
        body.push(65);
        body.extend_from_slice(&as_point);
        for (seq, chunk) in chunks.iter().enumerate() {
            let mut plain = chunk.to_vec();
            plain.push(if seq + 1 == chunks.len() { 2 } else { 1 });
            plain.extend(std::iter::repeat_n(0u8, pad));
            let sealed = cipher.encrypt(Nonce::from_slice(&record_nonce(&base, seq as u64)), plain.as_slice()).unwrap();
            assert!(sealed.len() <= rs);
            assert!(seq + 1 == chunks.len() || sealed.len() == rs);
            body.extend_from_slice(&sealed);
        }
        body
    }

    #[test]
    fn decrypt_reads_several_padded_records_and_sees_truncation() {
        let (ua, point, auth) = random_subscriber();
        // rs 24: 24 - 16 (tag) - 1 (delimiter) - 2 (padding) = 5 bytes a record.
        let body = multi_record_body(&[b"I am ", b"the v", b"ery m", b"odel"], 2, 24, &point, &auth);
        assert_eq!(decrypt(&body, &ua, &auth).unwrap(), b"I am the very model");
        // Cut after the second record: its delimiter says more was to come.
        let cut = &body[..HEADER_LEN + 48];
        assert!(matches!(decrypt(cut, &ua, &auth), Err(CryptoError::Malformed(_))));
        assert_eq!(record_nonce(&[0; 12], 0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn bad_keys_and_large_payloads_are_refused() {
        let (_, point, auth) = random_subscriber();
        assert_eq!(
            encrypt(&vec![0; MAX_PAYLOAD + 1], &point, &auth),
            Err(CryptoError::PayloadTooLarge(MAX_PAYLOAD + 1))
        );
        let compressed = PublicKey::from_sec1_bytes(&point).unwrap().to_encoded_point(true);
        assert!(matches!(encrypt(b"x", compressed.as_bytes(), &auth), Err(CryptoError::BadKey(_))));
        let mut off_curve = point;
        off_curve[64] ^= 1;
        assert!(matches!(encrypt(b"x", &off_curve, &auth), Err(CryptoError::BadKey(_))));
        assert!(matches!(encrypt(b"x", &point, &auth[..8]), Err(CryptoError::BadKey(_))));
    }

    #[test]
    fn subscriptions_deserialize_from_the_browser_form_or_flat() {
        let browser = format!(
            r#"{{"endpoint":"https://fcm.googleapis.com/fcm/send/abc","expirationTime":null,
                "keys":{{"p256dh":"{UA_PUBLIC}","auth":"{AUTH}"}}}}"#
        );
        let sub: Subscription = serde_json::from_str(&browser).unwrap();
        assert_eq!(sub.endpoint, "https://fcm.googleapis.com/fcm/send/abc");
        let (point, auth) = sub.keys().unwrap();
        assert_eq!(point.to_vec(), b64(UA_PUBLIC));
        assert_eq!(auth.to_vec(), b64(AUTH));

        let flat = serde_json::to_string(&sub).unwrap();
        assert_eq!(serde_json::from_str::<Subscription>(&flat).unwrap(), sub);

        // Padded base64url, and the standard alphabet, give the same keys.
        let padded = Subscription {
            endpoint: sub.endpoint.clone(),
            p256dh: format!("{UA_PUBLIC}="),
            auth: STANDARD.encode(b64(AUTH)),
        };
        assert!(padded.auth.ends_with("=="));
        assert_eq!(padded.keys().unwrap(), (point, auth));

        assert!(serde_json::from_str::<Subscription>(r#"{"endpoint":"https://x"}"#).is_err());
        let bad = Subscription { auth: "AAAA".into(), ..sub.clone() };
        assert!(matches!(bad.keys(), Err(CryptoError::BadKey(_))));
        let bad = Subscription { p256dh: "!!".into(), ..sub };
        assert!(matches!(bad.keys(), Err(CryptoError::BadKey(_))));
    }

    /// Checks a VAPID JWT's signature with `public_key` and returns its
    /// header and claims.
    fn verify_jwt(jwt: &str, public_key: &[u8]) -> (serde_json::Value, serde_json::Value) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let key = VerifyingKey::from_sec1_bytes(public_key).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).expect("JWT signature verifies");
        let json = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        (json(parts[0]), json(parts[1]))
    }

    #[test]
    fn vapid_jwt_verifies_and_has_the_claims() {
        let keys = VapidKeys::generate();
        let now = 1_760_000_000;
        let header = keys.authorization("https://fcm.googleapis.com", "mailto:admin@example.com", now);
        let (jwt, k) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(k, keys.public_key_base64url());
        let public = URL_SAFE_NO_PAD.decode(k).unwrap();
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 0x04);

        assert_eq!(jwt.split('.').next().unwrap(), b64url(br#"{"typ":"JWT","alg":"ES256"}"#));
        let (head, claims) = verify_jwt(jwt, &public);
        assert_eq!(head, serde_json::json!({"typ": "JWT", "alg": "ES256"}));
        assert_eq!(claims["aud"], "https://fcm.googleapis.com");
        assert_eq!(claims["sub"], "mailto:admin@example.com");
        let exp = claims["exp"].as_u64().unwrap();
        assert_eq!(exp, now + 12 * 3600);
        assert!(exp - now <= 24 * 3600);
        assert_eq!(claims.as_object().unwrap().len(), 3);

        // Another key's public key does not verify it.
        let other = VapidKeys::generate().public_key();
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        assert!(VerifyingKey::from_sec1_bytes(&other).unwrap().verify(signed.as_bytes(), &signature).is_err());

        assert!(contact_valid("mailto:ops@example.com"));
        assert!(contact_valid("https://example.com/contact"));
        for bad in ["", "ops@example.com", "mailto:", "https://", "http://example.com", "mailto:a b@c"] {
            assert!(!contact_valid(bad), "{bad}");
        }
    }

    #[test]
    fn vapid_keys_save_load_and_formats() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vapid.pem");

        let (keys, created) = VapidKeys::load_or_generate(&path).unwrap();
        assert!(created);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let (again, created) = VapidKeys::load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(again.public_key(), keys.public_key());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");

        // Saving over a file that was readable by others leaves it 0600.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let other = VapidKeys::generate();
        other.save(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(VapidKeys::load(&path).unwrap().to_raw(), other.to_raw());

        let raw = dir.path().join("vapid.raw");
        std::fs::write(&raw, keys.to_raw()).unwrap();
        assert_eq!(VapidKeys::load(&raw).unwrap().public_key(), keys.public_key());
        std::fs::write(&raw, format!("{}\n", b64url(&keys.to_raw()))).unwrap();
        assert_eq!(VapidKeys::load(&raw).unwrap().public_key(), keys.public_key());

        let sec1 = SecretKey::from(&keys.key).to_sec1_der().unwrap();
        let sec1_pem = pem_encode("EC PRIVATE KEY", &sec1);
        assert_eq!(VapidKeys::from_pem(&sec1_pem).unwrap().public_key(), keys.public_key());
        assert_eq!(VapidKeys::from_pem(&keys.to_pem()).unwrap().to_raw(), keys.to_raw());

        assert!(VapidKeys::from_pem(&pem_encode("CERTIFICATE", b"x")).is_err());
        std::fs::write(&raw, "hello").unwrap();
        assert!(matches!(VapidKeys::load(&raw), Err(VapidKeyError::Format(_))));
        assert!(matches!(VapidKeys::load(&dir.path().join("none")), Err(VapidKeyError::Io(..))));
        assert!(VapidKeys::from_raw(&[0u8; 32]).is_err());
        assert!(!format!("{keys:?}").contains(&b64url(&keys.to_raw())));
    }

    #[test]
    fn endpoint_allowed_cases() {
        let defaults = default_push_hosts();
        let ok = |url: &str| endpoint_allowed(url, &defaults);
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc:def"));
        assert!(ok("https://FCM.googleapis.com/fcm/send/abc"));
        assert!(ok("https://fcm.googleapis.com:443/fcm/send/abc"));
        assert!(ok("https://updates.push.services.mozilla.com/wpush/v2/gAAAA"));
        assert!(ok("https://web.push.apple.com/QGuQyavXutnMHVtI"));
        assert!(ok("https://wns2-par02p.notify.windows.com/w/?token=BQYAAA"));
        assert!(ok("https://a.b.notify.windows.com/w/"));

        // Not https.
        assert!(!ok("http://fcm.googleapis.com/fcm/send/abc"));
        assert!(!ok("ftp://fcm.googleapis.com/x"));
        assert!(!ok("fcm.googleapis.com/fcm/send/abc"));
        assert!(!ok(""));
        // A wildcard covers subdomains only, on a label boundary.
        assert!(!ok("https://push.apple.com/x"));
        assert!(!ok("https://evilpush.apple.com/x"));
        assert!(!ok("https://web.push.apple.com.evil.com/x"));
        assert!(!ok("https://notify.windows.com/x"));
        // Exact entries are exact.
        assert!(!ok("https://x.fcm.googleapis.com/x"));
        assert!(!ok("https://fcm.googleapis.com.evil.com/x"));
        assert!(!ok("https://fcm.googleapis.com./x"));
        assert!(!ok("https://googleapis.com/x"));
        // User information tricks.
        assert!(!ok("https://fcm.googleapis.com@evil.com/"));
        assert!(!ok("https://fcm.googleapis.com:443@evil.com/"));
        assert!(!ok("https://user:pw@fcm.googleapis.com/"));
        assert!(!ok("https://evil.com#@fcm.googleapis.com/"));
        assert!(!ok("https://evil.com\\@fcm.googleapis.com/"));
        assert!(!ok("https://evil.com/https://fcm.googleapis.com/"));
        // Another port needs an entry naming it.
        assert!(!ok("https://fcm.googleapis.com:8443/fcm/send/abc"));
        // Addresses, in any spelling, unless listed.
        for ip in
            ["https://127.0.0.1/", "https://10.0.0.1/", "https://2130706433/", "https://0x7f.1/", "https://[::1]/"]
        {
            assert!(!ok(ip), "{ip}");
        }
        let listed: Vec<String> =
            ["10.0.0.5", "::1", "[fd00::7]:8443", "push.internal:8443", "*.push.example.net", "*.", "*"]
                .map(String::from)
                .to_vec();
        let ok = |url: &str| endpoint_allowed(url, &listed);
        assert!(ok("https://10.0.0.5/push"));
        assert!(ok("https://012.0.0.5/push"), "the URL parser reads 012 as octal 10");
        assert!(!ok("https://10.0.0.6/push"));
        assert!(!ok("http://10.0.0.5/push"));
        assert!(!ok("https://10.0.0.5:8443/push"));
        assert!(ok("https://[::1]/push"));
        assert!(ok("https://[0:0::1]/push"));
        assert!(ok("https://[fd00::7]:8443/p"));
        assert!(!ok("https://[fd00::7]/p"));
        assert!(ok("https://push.internal:8443/p"));
        assert!(!ok("https://push.internal/p"));
        assert!(ok("https://a.push.example.net/p"));
        assert!(!ok("https://push.example.net/p"));
        assert!(!ok("https://anything.example/p"), "`*` and `*.` match nothing");
        assert!(!ok("https://fcm.googleapis.com/fcm/send/abc"));
        assert!(!endpoint_allowed("https://fcm.googleapis.com/x", &[]));
    }

    /// What the test receiver got.
    struct Received {
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    /// A push service on 127.0.0.1 that takes one request, answers it with
    /// `status_line` (e.g. `201 Created`) and hands back what it received.
    async fn receiver(status_line: &'static str) -> (String, tokio::task::JoinHandle<Received>) {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed before a full request");
                buf.extend_from_slice(&chunk[..n]);
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut request = httparse::Request::new(&mut headers);
                let httparse::Status::Complete(head_len) = request.parse(&buf).unwrap() else { continue };
                let headers: Vec<(String, String)> = request
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), String::from_utf8(h.value.to_vec()).unwrap()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                if buf.len() < head_len + length {
                    continue;
                }
                let received = Received {
                    method: request.method.unwrap().to_owned(),
                    path: request.path.unwrap().to_owned(),
                    headers,
                    body: buf[head_len..head_len + length].to_vec(),
                };
                let location = if status_line.starts_with('3') { "Location: https://10.0.0.1/\r\n" } else { "" };
                let response = format!(
                    "HTTP/1.1 {status_line}\r\n{location}Content-Length: 9\r\nConnection: close\r\n\r\nno\nthanks"
                );
                stream.write_all(response.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
                return received;
            }
        });
        (base, task)
    }

    fn local_client() -> reqwest::Client {
        // No proxy from the environment: the request must stay on this machine.
        client_builder().no_proxy().build().unwrap()
    }

    const CONTACT: &str = "mailto:ops@example.com";

    #[tokio::test]
    async fn send_posts_an_encrypted_push_a_receiver_can_read() {
        let (ua, point, auth) = random_subscriber();
        let vapid = VapidKeys::generate();
        let (base, received) = receiver("201 Created").await;
        let sub =
            Subscription { endpoint: format!("{base}/push/sub-1?x=y"), p256dh: b64url(&point), auth: b64url(&auth) };
        let payload = br#"{"type":"request","id":"r1","number":42}"#;

        let client = local_client();
        let sent = send_to(&client, &sub, payload, &vapid, CONTACT, 120, true);
        tokio::time::timeout(Duration::from_secs(20), sent).await.expect("send finished").expect("sent");
        let got = received.await.unwrap();

        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/push/sub-1?x=y");
        assert_eq!(got.header("content-encoding"), Some("aes128gcm"));
        assert_eq!(got.header("content-type"), Some("application/octet-stream"));
        assert_eq!(got.header("ttl"), Some("120"));
        assert_eq!(got.header("urgency"), Some("high"));
        assert_eq!(got.header("content-length"), Some(got.body.len().to_string().as_str()));
        let authorization = got.header("authorization").unwrap();
        let (jwt, k) = authorization.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(k, vapid.public_key_base64url());
        let (_, claims) = verify_jwt(jwt, &vapid.public_key());
        assert_eq!(claims["aud"], base);
        assert_eq!(claims["sub"], CONTACT);
        let now = SystemClock.now();
        let exp = claims["exp"].as_u64().unwrap();
        assert!(exp > now + 11 * 3600 && exp <= now + 12 * 3600 + 5, "exp {exp}, now {now}");

        assert_eq!(decrypt(&got.body, &ua, &auth).unwrap(), payload);
    }

    #[tokio::test]
    async fn send_reports_gone_and_other_statuses() {
        let (_, point, auth) = random_subscriber();
        let vapid = VapidKeys::generate();
        let client = local_client();
        for (status, expect) in [
            ("200 OK", "ok"),
            ("202 Accepted", "ok"),
            ("404 Not Found", "gone"),
            ("410 Gone", "gone"),
            ("413 Payload Too Large", "413"),
            ("500 Internal Server Error", "500"),
            ("301 Moved Permanently", "301"),
        ] {
            let (base, received) = receiver(status).await;
            let sub = Subscription { endpoint: format!("{base}/p"), p256dh: b64url(&point), auth: b64url(&auth) };
            let sent = send_to(&client, &sub, b"hello", &vapid, CONTACT, 60, true);
            let result = tokio::time::timeout(Duration::from_secs(20), sent).await.expect("send finished");
            received.await.unwrap();
            match (expect, result) {
                ("ok", Ok(())) | ("gone", Err(SendError::Gone)) => {}
                (code, Err(SendError::Status { status, detail })) if code == status.to_string() => {
                    assert_eq!(detail, "no thanks");
                }
                (expect, other) => panic!("{status}: expected {expect}, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn send_refuses_before_connecting() {
        let (_, point, auth) = random_subscriber();
        let vapid = VapidKeys::generate();
        let client = local_client();
        let sub =
            |endpoint: &str| Subscription { endpoint: endpoint.into(), p256dh: b64url(&point), auth: b64url(&auth) };
        // Plain http is refused by `send`, loopback included (nothing listens on
        // port 9 here; the error comes before any connection).
        for endpoint in ["http://127.0.0.1:9/p", "http://fcm.googleapis.com/p", "not a url"] {
            let result = send(&client, &sub(endpoint), b"x", &vapid, CONTACT, 60).await;
            assert!(matches!(result, Err(SendError::EndpointRefused(_))), "{endpoint}: {result:?}");
        }
        // The test-only allowance is for 127.0.0.1 over http, nothing else.
        let result = send_to(&client, &sub("http://localhost:9/p"), b"x", &vapid, CONTACT, 60, true).await;
        assert!(matches!(result, Err(SendError::EndpointRefused(_))));
        let result = send_to(&client, &sub("https://u:p@127.0.0.1:9/p"), b"x", &vapid, CONTACT, 60, true).await;
        assert!(matches!(result, Err(SendError::EndpointRefused(_))));
        let result = send_to(&client, &sub("http://127.0.0.1:9/p"), b"x", &vapid, "ops@example.com", 60, true).await;
        assert!(matches!(result, Err(SendError::InvalidContact(_))));
        let big = vec![0u8; MAX_PAYLOAD + 1];
        let result = send_to(&client, &sub("http://127.0.0.1:9/p"), &big, &vapid, CONTACT, 60, true).await;
        assert!(matches!(result, Err(SendError::PayloadTooLarge(_))));
        let bad = Subscription { auth: "AAAA".into(), ..sub("http://127.0.0.1:9/p") };
        let result = send_to(&client, &bad, b"x", &vapid, CONTACT, 60, true).await;
        assert!(matches!(result, Err(SendError::InvalidSubscription(_))));
    }
}
