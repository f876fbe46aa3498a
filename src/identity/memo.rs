//! A per-thread memo of signed cookie values already verified and decoded.
//!
//! A browser sends the same session cookie on every request of a connection,
//! and a keep-alive connection stays on one worker thread. Verifying it again
//! each time (an HMAC over ~150 bytes, a base64 decode and three `String`s)
//! was the largest cost of the fast path, so each worker thread keeps the
//! last few values it verified, with what they decoded to.
//!
//! What the memo may and may not skip:
//! - it skips only the signature check and the decoding, which depend on the
//!   value's bytes and the key ring alone: an entry counts only for the very
//!   same bytes (the MAC compared in constant time, so timing never tells
//!   how much of a stranger's MAC an attacker guessed) under the very same ring (a
//!   rotation that retires a key empties every memo at its next use);
//! - everything that depends on the time or on state (expiry, idle timeout,
//!   revocation, the user still existing, the app) is checked by the caller on
//!   every request, as without the memo;
//! - a value that fails verification is never remembered.
//!
//! No locks: each thread has its own memo (`thread_local!`), and a hit costs
//! a table index, one comparison and an `Arc` clone.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::cookie::KeyRing;

/// Entries per thread and kind. A power of two: the slot is chosen by bits of
/// the value's MAC, which are uniform for honest values.
const SLOTS: usize = 16;

/// Characters of a signed value's MAC (base64url of 32 bytes, at its end).
const MAC_CHARS: usize = 43;

/// Values longer than this are verified each time and never remembered.
const MAX_REMEMBERED: usize = 1024;

struct Entry<T> {
    value: Box<[u8]>,
    ring: Arc<KeyRing>,
    decoded: Arc<T>,
}

/// The last verified values of one kind on one thread.
pub struct Memo<T> {
    slots: [Option<Entry<T>>; SLOTS],
}

impl<T> Default for Memo<T> {
    fn default() -> Memo<T> {
        Memo { slots: std::array::from_fn(|_| None) }
    }
}

impl<T> Memo<T> {
    /// What `value` decodes to under `ring`: remembered, or from `verify`
    /// (which checks the signature and decodes), then remembered if it passed.
    pub fn get_or_verify<E>(
        &mut self,
        value: &str,
        ring: &Arc<KeyRing>,
        verify: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let bytes = value.as_bytes();
        let slot = slot_of(bytes);
        if let Some(e) = &self.slots[slot] {
            if Arc::ptr_eq(&e.ring, ring) && same_value(&e.value, bytes) {
                return Ok(e.decoded.clone());
            }
        }
        let decoded = Arc::new(verify()?);
        if bytes.len() <= MAX_REMEMBERED {
            self.slots[slot] = Some(Entry { value: bytes.into(), ring: ring.clone(), decoded: decoded.clone() });
        }
        Ok(decoded)
    }
}

/// Whether a presented value is a remembered one. The MAC (the last 43
/// characters) is what makes a value unforgeable, so it is compared in
/// constant time: timing tells an attacker at most how much of the
/// payload before it they guessed, which forges nothing.
fn same_value(remembered: &[u8], presented: &[u8]) -> bool {
    if remembered.len() != presented.len() {
        return false;
    }
    let mac_at = presented.len().saturating_sub(MAC_CHARS);
    let (payload, mac) = presented.split_at(mac_at);
    let (payload_r, mac_r) = remembered.split_at(mac_at);
    bool::from(mac_r.ct_eq(mac)) & (payload_r == payload)
}

/// A slot from the value's last bytes (the end of its base64 MAC).
fn slot_of(bytes: &[u8]) -> usize {
    let tail = &bytes[bytes.len().saturating_sub(2)..];
    tail.iter().fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(b as usize)) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn verifies_once_per_value_and_ring() {
        let ring = Arc::new(KeyRing::generate());
        let mut memo = Memo::<Vec<u8>>::default();
        let value = ring.sign("t", b"payload");
        let calls = Cell::new(0);
        let verify = |v: &str, r: &KeyRing| {
            calls.set(calls.get() + 1);
            r.verify("t", v)
        };
        for _ in 0..3 {
            let got = memo.get_or_verify(&value, &ring, || verify(&value, &ring)).unwrap();
            assert_eq!(&*got, b"payload");
        }
        assert_eq!(calls.get(), 1);
        // Another ring (a rotation): verified again, under that ring.
        let rotated = Arc::new(ring.rotate());
        memo.get_or_verify(&value, &rotated, || verify(&value, &rotated)).unwrap();
        assert_eq!(calls.get(), 2);
        // A ring that no longer holds the key refuses it, memo or not.
        let retired = Arc::new(rotated.rotate());
        assert!(memo.get_or_verify(&value, &retired, || verify(&value, &retired)).is_err());
    }

    #[test]
    fn a_failed_value_is_never_remembered_and_a_changed_byte_misses() {
        let ring = Arc::new(KeyRing::generate());
        let mut memo = Memo::<Vec<u8>>::default();
        let value = ring.sign("t", b"payload");
        memo.get_or_verify(&value, &ring, || ring.verify("t", &value)).unwrap();
        // The same last bytes (same slot), one byte changed earlier: verified, and refused.
        let mut tampered = value.clone().into_bytes();
        tampered[5] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        for _ in 0..2 {
            assert!(memo.get_or_verify(&tampered, &ring, || ring.verify("t", &tampered)).is_err());
        }
        let calls = Cell::new(0);
        let counted = || {
            calls.set(calls.get() + 1);
            ring.verify("t", &tampered)
        };
        assert!(memo.get_or_verify(&tampered, &ring, counted).is_err());
        assert_eq!(calls.get(), 1, "a refused value is verified every time");
        // The good value is still remembered.
        let never = || -> Result<Vec<u8>, ()> { panic!("verified again") };
        assert_eq!(&*memo.get_or_verify(&value, &ring, never).unwrap(), b"payload");
    }
}
