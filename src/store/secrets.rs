//! The instance's key material: `state_dir/secrets.key` ([`Secrets`]) and the
//! box that seals values at rest with it ([`SecretBox`]).
//!
//! It lives beside the store because the store is its lowest user (Redis key
//! names are HMAC'd with a key derived here), and because what it seals (TOTP
//! secrets, the shared cookie key ring, the VAPID key) is written to the
//! store. It knows nothing of logins or cookies: callers name a purpose and
//! get a key, or hand over bytes and get them sealed.
//!
//! Neither type prints a key in `Debug`, and no error carries a key or a
//! sealed value, so neither can leak through a log line.

use std::fmt;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// ChaCha20-Poly1305 nonce length (96 bits).
const NONCE_LEN: usize = 12;

/// `state_dir/secrets.key`: encrypts TOTP secrets (and, in a shared store, the
/// cookie keys), and is the root other keys are derived from. Every instance
/// sharing one store must have the same file.
#[derive(Clone)]
pub struct Secrets {
    pub sealer: SecretBox,
    raw: Vec<u8>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    pub fn load_or_create(state_dir: &Path) -> Result<Secrets, String> {
        let path = state_dir.join("secrets.key");
        let sealer = SecretBox::load_or_create(&path)?;
        let raw = std::fs::read(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        Ok(Secrets { sealer, raw })
    }

    /// A key for one purpose, derived from the secrets file.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"portcullis derived key\0");
        h.update(purpose.as_bytes());
        h.update(b"\0");
        h.update(&self.raw);
        h.finalize().into()
    }
}

/// A sealed value that could not be opened (wrong key, wrong associated
/// data, altered or cut short). Names neither the key nor the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealError(&'static str);

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot open sealed secret: {}", self.0)
    }
}

impl std::error::Error for SealError {}

/// Encrypts secrets at rest with ChaCha20-Poly1305: a random 96-bit nonce
/// per seal, stored as nonce || ciphertext+tag. Debug never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        SecretBox { cipher: ChaCha20Poly1305::new(&key.into()) }
    }

    /// Reads the hex key file, or creates it with a fresh key (parent
    /// directories created, file mode 0600, never overwriting a file that
    /// appeared meanwhile). Errors name the path, never the key.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => return Self::parse_key_file(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read key file {}: {e}", path.display())),
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        match write_new_key_file(path, &key) {
            Ok(()) => Ok(Self::new(key)),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
                Self::parse_key_file(path, &text)
            }
            Err(e) => Err(format!("cannot create key file {}: {e}", path.display())),
        }
    }

    fn parse_key_file(path: &Path, text: &str) -> Result<Self, String> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .map_err(|_| format!("key file {} must hold 64 hex digits (a 32-byte key)", path.display()))?;
        Ok(Self::new(key))
    }

    /// Encrypts `plaintext` bound to `associated` (the user name, or the
    /// setting's name), so the result opens only for that same name.
    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload { msg: plaintext, aad: associated };
        // Encryption fails only beyond 256 GiB of plaintext.
        let ciphertext = self.cipher.encrypt(&nonce, payload).expect("plaintext within ChaCha20-Poly1305 limits");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts what `seal` produced for the same `associated` data.
    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError("too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload { msg: ciphertext, aad: associated };
        self.cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SealError("authentication failed (wrong key or name, or altered)"))
    }
}

/// Writes a new key file that only its owner can read; fails with
/// `AlreadyExists` rather than replacing a key that secrets were sealed with.
fn write_new_key_file(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_keys() {
        assert_eq!(format!("{:?}", SecretBox::new([7u8; 32])), "SecretBox(..)");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(format!("{:?}", Secrets::load_or_create(dir.path()).unwrap()), "Secrets(..)");
    }

    #[test]
    fn seal_open_round_trip_with_fresh_nonce() {
        let sb = SecretBox::new([1u8; 32]);
        let secret = b"twenty bytes of key!";
        let a = sb.seal(secret, b"alice");
        let b = sb.seal(secret, b"alice");
        assert_ne!(a, b, "each seal uses a new nonce");
        assert_eq!(sb.open(&a, b"alice").unwrap(), secret);
        assert_eq!(sb.open(&b, b"alice").unwrap(), secret);
    }

    #[test]
    fn open_refuses_other_user_key_or_tampering() {
        let sb = SecretBox::new([1u8; 32]);
        let sealed = sb.seal(b"secret bytes", b"alice");
        let err = sb.open(&sealed, b"bob").unwrap_err();
        assert!(err.to_string().contains("authentication failed") && !err.to_string().contains("secret bytes"));
        let other = SecretBox::new([2u8; 32]);
        assert!(other.open(&sealed, b"alice").is_err());
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(sb.open(&tampered, b"alice").is_err(), "byte {i}");
        }
        assert!(sb.open(&sealed[..sealed.len() - 1], b"alice").is_err());
        assert_eq!(sb.open(&sealed[..5], b"alice"), Err(SealError("too short")));
        assert!(sb.open(&[], b"alice").is_err());
    }

    #[test]
    fn key_file_created_0600_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/totp.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let sealed = first.seal(b"payload", b"alice");
        let second = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(second.open(&sealed, b"alice").unwrap(), b"payload");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn bad_key_file_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totp.key");
        std::fs::write(&path, "abcd1234").unwrap();
        let err = SecretBox::load_or_create(&path).unwrap_err();
        assert!(err.contains("64 hex digits") && !err.contains("abcd1234"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abcd1234");
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::load_or_create(dir.path()).unwrap();
        assert_ne!(s.derive("redis key names"), s.derive("key check"));
        let again = Secrets::load_or_create(dir.path()).unwrap();
        assert_eq!(s.derive("redis key names"), again.derive("redis key names"));
        let other = Secrets::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(s.derive("redis key names"), other.derive("redis key names"));
    }
}
