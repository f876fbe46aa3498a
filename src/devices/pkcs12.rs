//! PKCS#12 bundles: a device's key, its certificate and the CA, in the one
//! file that every OS keychain and browser imports, protected by a password.
//!
//! Two formats (written by the pure-Rust `p12-keystore`; no OpenSSL):
//! - [`Format::Modern`] (default): the certificate bag and the shrouded key bag
//!   encrypted with PBES2 (PBKDF2 with HMAC-SHA256, AES-256-CBC), and a
//!   SHA-256 MAC: what OpenSSL 3 writes. NSS (Firefox everywhere, Chromium on
//!   Linux), Windows 10 1709+ / Server 2019+ and current Android read it.
//! - [`Format::Legacy`] (`--legacy`): pbeWithSHAAnd3-KeyTripleDES-CBC for both
//!   bags and a SHA-1 MAC, for keychains that refuse the modern one: Apple's
//!   (macOS Keychain, iOS/iPadOS profiles), Windows before 10 1709, older
//!   Android and MDM tools. The README has the table.
//!
//! The password is made here, 20 characters from an alphabet without look-alikes
//! (about 99 bits), shown once. With that much entropy the key derivation's
//! iteration count (10,000, the JDK's default) is not what protects the bundle.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey, PrivateKeyChain,
};

/// Iterations of the key derivation for the bags and for the MAC.
const ITERATIONS: u32 = 10_000;

/// Characters of a bundle password: no 0/o, 1/l/i, so it can be typed from a screen.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// AES-256-CBC with PBKDF2-HMAC-SHA256, SHA-256 MAC.
    Modern,
    /// 3DES (pbeWithSHAAnd3-KeyTripleDES-CBC), SHA-1 MAC.
    Legacy,
}

/// Writes a bundle holding `key_pkcs8` (DER), its certificate `leaf_der` and
/// the CA certificate `ca_der`, under the name `alias` (the keychain's label).
pub fn bundle(
    key_pkcs8: &[u8],
    leaf_der: &[u8],
    ca_der: &[u8],
    alias: &str,
    password: &str,
    format: Format,
) -> Result<Vec<u8>, String> {
    let bad = |what: &str, e: p12_keystore::error::Error| format!("cannot build the PKCS#12 bundle ({what}): {e}");
    let key = PrivateKey::from_der(key_pkcs8).map_err(|e| bad("key", e))?;
    let leaf = Certificate::from_der(leaf_der).map_err(|e| bad("certificate", e))?;
    let ca = Certificate::from_der(ca_der).map_err(|e| bad("CA certificate", e))?;
    // The local key id ties the key bag to its certificate bag: the
    // certificate's SHA-1 fingerprint, as OpenSSL and Windows write it.
    let local_key_id = {
        use sha1::Digest;
        sha1::Sha1::digest(leaf_der).to_vec()
    };
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, [leaf, ca])));
    let (encryption, mac) = match format {
        Format::Modern => (EncryptionAlgorithm::PbeWithHmacSha256AndAes256, MacAlgorithm::HmacSha256),
        Format::Legacy => (EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc, MacAlgorithm::HmacSha1),
    };
    store
        .writer(password)
        .encryption_algorithm(encryption)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(mac)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|e| bad("write", e))
}

/// A fresh bundle password: `xxxxx-xxxxx-xxxxx-xxxxx`.
pub fn new_password() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(23);
    for i in 0..20 {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(PASSWORD_ALPHABET[rng.gen_range(0..PASSWORD_ALPHABET.len())] as char);
    }
    out
}

/// PEM text of a PKCS#8 private key.
pub fn key_pem(pkcs8: &[u8]) -> String {
    pem("PRIVATE KEY", pkcs8)
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// PEM text of one certificate.
pub fn cert_pem(der: &[u8]) -> String {
    pem("CERTIFICATE", der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    // DER of the algorithm identifiers each format must name.
    const AES_256_CBC: &[u8] = &[0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
    const PBKDF2: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
    const HMAC_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
    const SHA256: &[u8] = &[0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    const PBE_SHA_3DES: &[u8] = &[0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];
    const SHA1: &[u8] = &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn parts() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf = CertificateParams::new(Vec::new()).unwrap();
        leaf.distinguished_name.push(rcgen::DnType::CommonName, "laptop");
        let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        (key.serialize_der(), leaf.der().to_vec(), ca.der().to_vec())
    }

    #[test]
    fn both_formats_name_their_algorithms_and_read_back_with_the_password_only() {
        let (key, leaf, ca) = parts();
        for (format, must, must_not) in [
            (Format::Modern, [AES_256_CBC, PBKDF2, HMAC_SHA256, SHA256], [PBE_SHA_3DES, SHA1]),
            (Format::Legacy, [PBE_SHA_3DES, SHA1, PBE_SHA_3DES, SHA1], [AES_256_CBC, PBKDF2]),
        ] {
            let p12 = bundle(&key, &leaf, &ca, "laptop", "pw-1", format).unwrap();
            for oid in must {
                assert!(contains(&p12, oid), "{format:?} lacks {oid:02x?}");
            }
            for oid in must_not {
                assert!(!contains(&p12, oid), "{format:?} has {oid:02x?}");
            }
            let read = KeyStore::from_pkcs12(&p12, "pw-1", p12_keystore::Pkcs12ImportPolicy::Relaxed).unwrap();
            let (alias, chain) = read.private_key_chain().unwrap();
            assert_eq!(alias, "laptop");
            assert_eq!(chain.key().as_der(), key.as_slice());
            assert_eq!(chain.certs()[0].as_der(), leaf.as_slice(), "the key's certificate comes first");
            let all: Vec<Vec<u8>> = read
                .entries()
                .flat_map(|(_, e)| match e {
                    KeyStoreEntry::PrivateKeyChain(c) => c.certs().iter().map(|c| c.as_der().to_vec()).collect(),
                    KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
                    _ => Vec::new(),
                })
                .collect();
            assert!(all.contains(&ca), "{format:?}: the CA certificate is in the bundle");
            assert!(
                KeyStore::from_pkcs12(&p12, "pw-2", p12_keystore::Pkcs12ImportPolicy::Relaxed).is_err(),
                "{format:?}: a wrong password is refused"
            );
        }
    }

    #[test]
    fn passwords_are_long_random_and_readable() {
        let a = new_password();
        assert_eq!(a.len(), 23);
        assert_eq!(a.matches('-').count(), 3);
        assert!(a.bytes().all(|b| b == b'-' || PASSWORD_ALPHABET.contains(&b)), "{a}");
        assert_ne!(a, new_password());
    }

    #[test]
    fn pem_lines_are_64_wide() {
        let p = cert_pem(&[7u8; 100]);
        assert!(p.starts_with("-----BEGIN CERTIFICATE-----\n") && p.ends_with("-----END CERTIFICATE-----\n"));
        assert!(p.lines().all(|l| l.len() <= 64));
    }
}
