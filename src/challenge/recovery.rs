//! Recovery codes: the one-time second factor a user falls back on when the
//! phone with their authenticator is gone.
//!
//! Codes are shown once at enrolment and only their hashes are kept. The hash
//! is HMAC-SHA256 keyed with a server pepper rather than a password hash:
//! each code carries over 50 random bits, so brute force is out of reach
//! even at HMAC speed, and a login check compares against up to ten stored
//! hashes, which argon2 per code would make ten slow hashes. The pepper means
//! a leaked store alone does not even allow an offline check.
//!
//! Codes use an alphabet without look-alikes (no 0/o, 1/l/i), so a code
//! copied by hand reads back unambiguously; normalisation forgives case,
//! dashes and spaces.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// How many codes a user gets.
pub const COUNT: usize = 10;

/// 31 symbols: a–z without i, l, o, and 2–9.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Groups of a code, joined by '-': 11 symbols, log2(31) * 11 ≈ 54.5 bits.
const GROUPS: [usize; 3] = [4, 4, 3];

/// Ten fresh, distinct codes (`xxxx-xxxx-xxx`) for the user to write down.
pub fn generate() -> Vec<String> {
    let mut codes: Vec<String> = Vec::with_capacity(COUNT);
    while codes.len() < COUNT {
        let code = one_code();
        // A repeat is astronomically unlikely; skipping it keeps the ten distinct.
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

fn one_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let groups: Vec<String> = GROUPS
        .iter()
        .map(|&len| (0..len).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect())
        .collect();
    groups.join("-")
}

/// The form that is hashed: lowercase, without '-' and whitespace.
pub fn normalise(code: &str) -> String {
    code.chars().filter(|c| *c != '-' && !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// The stored form of a code: hex HMAC-SHA256 of the normalised code, keyed
/// with the server pepper.
pub fn hash(pepper: &[u8], code: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC accepts any key length");
    mac.update(normalise(code).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_ten_distinct_codes() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        assert_ne!(generate(), codes);
    }

    #[test]
    fn codes_have_the_documented_shape() {
        for code in generate() {
            let groups: Vec<&str> = code.split('-').collect();
            let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lens, GROUPS, "{code}");
            for b in code.bytes().filter(|b| *b != b'-') {
                assert!(ALPHABET.contains(&b), "{code}");
                assert!(!b"0o1liOI".contains(&b), "{code}");
            }
        }
    }

    #[test]
    fn at_least_fifty_bits_each() {
        let symbols: usize = GROUPS.iter().sum();
        let bits = symbols as f64 * (ALPHABET.len() as f64).log2();
        assert!(bits >= 50.0, "{bits}");
        let mut sorted = ALPHABET.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ALPHABET.len(), "alphabet has repeats");
    }

    #[test]
    fn normalise_forgives_case_dashes_and_spaces() {
        assert_eq!(normalise("AbCd-eFgH-jkm"), "abcdefghjkm");
        assert_eq!(normalise(" abcd efgh  jkm\t"), "abcdefghjkm");
        assert_eq!(normalise("ABCDEFGHJKM"), "abcdefghjkm");
        assert_eq!(normalise(""), "");
    }

    #[test]
    fn hash_is_stable_and_matches_normalised_forms() {
        let h = hash(b"pepper", "abcd-efgh-jkm");
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(h, hash(b"pepper", "abcd-efgh-jkm"));
        assert_eq!(h, hash(b"pepper", "ABCD EFGH JKM"));
        assert_ne!(h, hash(b"pepper", "abcd-efgh-jkn"));
    }

    #[test]
    fn hash_depends_on_pepper() {
        assert_ne!(hash(b"pepper", "abcd-efgh-jkm"), hash(b"pepper2", "abcd-efgh-jkm"));
        assert_ne!(hash(b"", "abcd-efgh-jkm"), hash(b"pepper", "abcd-efgh-jkm"));
    }

    #[test]
    fn hash_is_hex_hmac_sha256_of_normalised_code() {
        // Independent value: Python hmac.new(b"pepper", b"abcdefghjkm", sha256).
        let want = "fa29f00995bef39385c96071ab15687387b003dfedacd52ef614edab250f9bea";
        assert_eq!(hash(b"pepper", "ABCD-efgh-jkm"), want);
    }
}
