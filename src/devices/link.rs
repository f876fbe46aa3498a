//! Single-use download links (`cert issue --link`): the new device fetches its
//! own bundle from `/.portcullis/cert/download?token=…` on an app host.
//!
//! The bundle waits in challenge state under `cert-link:<SHA-256 of the
//! token>` for `[device_certificates] link_ttl`, so any instance sharing the
//! store serves it, and a copy of the store (or a Redis `KEYS`) shows no
//! usable token. Taking it is atomic ([`crate::store::Store::take_challenge`]):
//! of two simultaneous downloads, one gets the bundle, the other nothing. The
//! bundle is encrypted with its password, which never enters the store.

use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The path the link points to, on an app host.
pub const DOWNLOAD_PATH: &str = "/.portcullis/cert/download";

/// What waits behind a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPayload {
    pub user: String,
    pub device: String,
    pub serial: String,
    /// The PKCS#12 bundle, base64.
    pub p12: String,
}

impl LinkPayload {
    pub fn bundle(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(&self.p12).ok()
    }

    /// A file name for the download: the device name with anything unusual replaced.
    pub fn file_name(&self) -> String {
        file_name(&self.device)
    }
}

/// `<device>.p12`, with anything but ASCII letters, digits, `-`, `_` and `.` replaced.
pub fn file_name(device: &str) -> String {
    let stem: String = device
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .collect();
    format!("{}.p12", stem.trim_matches(['-', '.']).chars().take(64).collect::<String>())
}

/// A new token: 32 random bytes, hex.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The store key of a token; `None` for anything that cannot be a token
/// (so a malformed one costs no store lookup).
fn key(token: &str) -> Option<String> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    use sha2::Digest;
    Some(format!("cert-link:{}", hex::encode(sha2::Sha256::digest(token.to_ascii_lowercase().as_bytes()))))
}

pub async fn put(store: &dyn Store, token: &str, payload: &LinkPayload, ttl: Duration) -> Result<(), StoreError> {
    let key = key(token).ok_or_else(|| StoreError::Corrupt("malformed link token".into()))?;
    let bytes = serde_json::to_vec(payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.put_challenge(&key, &bytes, ttl).await
}

/// What a link still offers, without using it: `None` when it is gone or
/// when its certificate no longer works (revoked or expired since it was
/// issued: such a link is dropped, the bundle is never served).
pub async fn usable(store: &dyn Store, token: &str, now: u64) -> Result<Option<LinkPayload>, StoreError> {
    let Some(k) = key(token) else { return Ok(None) };
    let Some(bytes) = store.get_challenge(&k).await? else { return Ok(None) };
    let payload: LinkPayload = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let works = store.device_certs().await?.iter().any(|c| c.serial == payload.serial && c.status_at(now).works());
    if !works {
        store.delete_challenge(&k).await?;
        return Ok(None);
    }
    Ok(Some(payload))
}

/// Takes the bundle behind a link: the first call gets it, every later one
/// `None`. Callers check [`usable`] first.
pub async fn take(store: &dyn Store, token: &str) -> Result<Option<LinkPayload>, StoreError> {
    let Some(k) = key(token) else { return Ok(None) };
    match store.take_challenge(&k).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt(e.to_string())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_have_a_key_and_the_key_hides_the_token() {
        let t = new_token();
        let k = key(&t).unwrap();
        assert!(k.starts_with("cert-link:") && !k.contains(&t));
        assert_eq!(key(&t.to_ascii_uppercase()), Some(k));
        for bad in ["", "abc", &"g".repeat(64), &format!("{t}0")] {
            assert_eq!(key(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_names_are_tame() {
        let p = |d: &str| LinkPayload { user: "u".into(), device: d.into(), serial: "s".into(), p12: String::new() };
        assert_eq!(p("alice-laptop").file_name(), "alice-laptop.p12");
        assert_eq!(p("../Bob's \"phone\"").file_name(), "Bob-s--phone.p12");
    }
}
