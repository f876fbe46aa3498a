//! Approver devices: a user's phones (the approver web app) and desktops
//! (`portcullis approver`) that answer push requests. Each holds a P-256
//! key; the store keeps its public key, name and Web Push subscription, as
//! the shared setting `approvers:USER` (a JSON list, every instance sees it),
//! with `approver:ID` naming the user of a device id.

use crate::store::{Store, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};

/// How long an "Add approval device" link works.
pub const ENROLL_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Approver devices one user may have.
const MAX_DEVICES: usize = 10;
/// How far a signed request's `ts` may be from the server's clock.
pub const MAX_SKEW_SECS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    /// 22 base64url characters.
    pub id: String,
    pub user: String,
    pub name: String,
    /// The device's public key, SPKI DER as base64url.
    pub public_key: String,
    pub added_at: u64,
    #[serde(default)]
    pub last_used: Option<u64>,
    #[serde(default)]
    pub subscription: Option<Subscription>,
}

/// Why an enrollment or a signed call was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ApproverError {
    BadLink,
    BadKey,
    BadName,
    TooMany,
    UnknownDevice,
    BadSignature,
    Stale,
    Store(String),
}

impl std::fmt::Display for ApproverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApproverError::BadLink => {
                "this enrollment link is unknown, used or expired: make a new one on the account page"
            }
            ApproverError::BadKey => "the public key is not a P-256 key in SPKI form",
            ApproverError::BadName => "give the device a name of 1 to 64 characters",
            ApproverError::TooMany => "this user already has the most approver devices allowed (10): remove one first",
            ApproverError::UnknownDevice => "this approver device is not (or no longer) enrolled",
            ApproverError::BadSignature => "the signature does not verify with this device's key",
            ApproverError::Stale => "the request's time is more than two minutes off: check the device's clock",
            ApproverError::Store(_) => "the store is unavailable: try again in a minute",
        })
    }
}

impl From<StoreError> for ApproverError {
    fn from(e: StoreError) -> ApproverError {
        ApproverError::Store(e.to_string())
    }
}

fn list_key(user: &str) -> String {
    format!("approvers:{user}")
}

fn index_key(id: &str) -> String {
    format!("approver:{id}")
}

/// `user`'s approver devices, oldest first.
pub async fn list(store: &dyn Store, user: &str) -> Result<Vec<Approver>, StoreError> {
    match store.setting(&list_key(user)).await? {
        Some(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("approvers of {user}: {e}")))
        }
        None => Ok(Vec::new()),
    }
}

async fn save(store: &dyn Store, user: &str, devices: &[Approver]) -> Result<(), StoreError> {
    store.put_setting(&list_key(user), &serde_json::to_vec(devices).unwrap_or_default(), false).await.map(|_| ())
}

/// A device by id, with its user.
pub async fn find(store: &dyn Store, id: &str) -> Result<Approver, ApproverError> {
    if id.len() != 22 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ApproverError::UnknownDevice);
    }
    let user = store.setting(&index_key(id)).await?.ok_or(ApproverError::UnknownDevice)?;
    let user = String::from_utf8(user).map_err(|_| ApproverError::UnknownDevice)?;
    list(store, &user).await?.into_iter().find(|d| d.id == id).ok_or(ApproverError::UnknownDevice)
}

/// A single-use enrollment code for `user` (the QR code's link).
pub async fn make_enroll_code(store: &dyn Store, user: &str) -> Result<String, StoreError> {
    let code = hex::encode(rand::random::<[u8; 16]>());
    store.put_challenge(&format!("approver-enroll:{code}"), user.as_bytes(), ENROLL_TTL).await?;
    Ok(code)
}

/// Checks a public key: SPKI DER (base64url) of a P-256 point.
pub fn parse_key(public_key: &str) -> Result<p256::ecdsa::VerifyingKey, ApproverError> {
    let der = URL_SAFE_NO_PAD.decode(public_key.trim_end_matches('=')).map_err(|_| ApproverError::BadKey)?;
    p256::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|_| ApproverError::BadKey)
}

/// Enrolls a device with a code from [`make_enroll_code`] (used up, even
/// when the rest is refused: a link is tried once).
pub async fn enroll(
    store: &dyn Store,
    code: &str,
    name: &str,
    public_key: &str,
    now: u64,
) -> Result<Approver, ApproverError> {
    if code.len() != 32 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApproverError::BadLink);
    }
    let user = store.take_challenge(&format!("approver-enroll:{code}")).await?.ok_or(ApproverError::BadLink)?;
    let user = String::from_utf8(user).map_err(|_| ApproverError::BadLink)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApproverError::BadName);
    }
    parse_key(public_key)?;
    let mut devices = list(store, &user).await?;
    if devices.len() >= MAX_DEVICES {
        return Err(ApproverError::TooMany);
    }
    let device = Approver {
        id: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        user: user.clone(),
        name: name.to_string(),
        public_key: public_key.trim_end_matches('=').to_string(),
        added_at: now,
        last_used: None,
        subscription: None,
    };
    store.put_setting(&index_key(&device.id), user.as_bytes(), false).await?;
    devices.push(device.clone());
    save(store, &user, &devices).await?;
    crate::audit!("approver_enrolled", user = %user, device = %device.id, name = %device.name);
    Ok(device)
}

/// Removes one of `user`'s devices; false when it has none of that id.
pub async fn remove(store: &dyn Store, user: &str, id: &str) -> Result<bool, StoreError> {
    let mut devices = list(store, user).await?;
    let before = devices.len();
    devices.retain(|d| d.id != id);
    if devices.len() == before {
        return Ok(false);
    }
    save(store, user, &devices).await?;
    store.put_setting(&index_key(id), b"", false).await?;
    crate::audit!("approver_removed", user = %user, device = %id);
    Ok(true)
}

/// Records a device's Web Push subscription (or a use), replacing the old one.
pub async fn update(
    store: &dyn Store,
    device: &Approver,
    change: impl FnOnce(&mut Approver),
) -> Result<(), StoreError> {
    let mut devices = list(store, &device.user).await?;
    if let Some(d) = devices.iter_mut().find(|d| d.id == device.id) {
        change(d);
        save(store, &device.user, &devices).await?;
    }
    Ok(())
}

/// The message a device signs: `portcullis-approver|PURPOSE|FIELDS…`.
pub fn message(purpose: &str, fields: &[&str]) -> String {
    let mut m = format!("portcullis-approver|{purpose}");
    for f in fields {
        m.push('|');
        m.push_str(f);
    }
    m
}

impl Approver {
    /// Verifies a signature (64-byte `r || s`, base64url) over `message`.
    pub fn verify(&self, message: &str, signature: &str) -> Result<(), ApproverError> {
        let key = parse_key(&self.public_key)?;
        let raw = URL_SAFE_NO_PAD.decode(signature.trim_end_matches('=')).map_err(|_| ApproverError::BadSignature)?;
        let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(|_| ApproverError::BadSignature)?;
        key.verify(message.as_bytes(), &sig).map_err(|_| ApproverError::BadSignature)
    }

    /// A signed read (`pending`, `events`): the signature over
    /// `PURPOSE|ID|TS`, and `ts` close to `now`.
    pub fn verify_read(&self, purpose: &str, ts: &str, signature: &str, now: u64) -> Result<(), ApproverError> {
        let at: u64 = ts.parse().map_err(|_| ApproverError::Stale)?;
        if at.abs_diff(now) > MAX_SKEW_SECS {
            return Err(ApproverError::Stale);
        }
        self.verify(&message(purpose, &[&self.id, ts]), signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    fn device(key: &p256::ecdsa::SigningKey) -> Approver {
        let spki = key.verifying_key().to_public_key_der().unwrap();
        Approver {
            id: "a".repeat(22),
            user: "alice".into(),
            name: "phone".into(),
            public_key: URL_SAFE_NO_PAD.encode(spki.as_bytes()),
            added_at: 0,
            last_used: None,
            subscription: None,
        }
    }

    fn sign(key: &p256::ecdsa::SigningKey, m: &str) -> String {
        let sig: p256::ecdsa::Signature = key.sign(m.as_bytes());
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    }

    #[test]
    fn signatures_verify_only_with_the_devices_key_over_the_same_message() {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let other = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let d = device(&key);
        let m = message("decide", &[&d.id, "req", "42", "approve"]);
        assert_eq!(m, format!("portcullis-approver|decide|{}|req|42|approve", d.id));
        assert_eq!(d.verify(&m, &sign(&key, &m)), Ok(()));
        assert_eq!(d.verify(&m, &sign(&other, &m)), Err(ApproverError::BadSignature));
        let changed = message("decide", &[&d.id, "req", "43", "approve"]);
        assert_eq!(d.verify(&changed, &sign(&key, &m)), Err(ApproverError::BadSignature));
        assert_eq!(d.verify(&m, "not base64!"), Err(ApproverError::BadSignature));
    }

    #[test]
    fn signed_reads_need_a_fresh_time() {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let d = device(&key);
        let now = 1_000_000;
        let ts = now.to_string();
        let sig = sign(&key, &message("pending", &[&d.id, &ts]));
        assert_eq!(d.verify_read("pending", &ts, &sig, now + 60), Ok(()));
        assert_eq!(d.verify_read("pending", &ts, &sig, now + 600), Err(ApproverError::Stale));
        assert_eq!(d.verify_read("events", &ts, &sig, now), Err(ApproverError::BadSignature));
    }

    #[test]
    fn keys_must_be_p256_spki() {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        assert!(parse_key(&device(&key).public_key).is_ok());
        assert_eq!(parse_key("AAAA").err(), Some(ApproverError::BadKey));
    }
}
