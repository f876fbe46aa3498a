//! Issuance: a new key and certificate for one device of one user, signed by
//! the device CA, registered through the store (which enforces the license
//! quota atomically), and handed out as a PKCS#12 bundle and PEM files.
//!
//! What a device certificate says (and what the mTLS layer reads back):
//! - subject `CN=<device name>` (what OS certificate pickers show);
//! - the user in a URI subjectAltName `portcullis:user:<name>`, the name
//!   percent-encoded (RFC 3986 unreserved characters stay as they are):
//!   [`user_of`] reads it back. A SAN, not a subject field, so that the
//!   device name a person sees and the identity the proxy trusts never mix;
//! - extendedKeyUsage clientAuth only, keyUsage digitalSignature, not a CA;
//! - a random 128-bit serial (16 random bytes read as a positive integer; DER
//!   prepends a zero byte when the top bit is set), recorded as 32 lowercase
//!   hex digits;
//! - valid from an hour ago (clock skew) for `[device_certificates] validity`,
//!   never beyond the CA's own end.
//!
//! Nothing is handed out unless the store accepted the record: a full license
//! or an unknown user leaves no certificate anywhere.

use super::ca::DeviceCa;
use super::pkcs12::{self, Format};
use super::quota::QuotaError;
use super::registry::{CertStatus, DeviceCert};
use crate::config::Config;
use crate::store::{Store, StoreError};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType};
use std::time::Duration;

/// The URI SAN prefix that names the user.
pub const USER_URI_PREFIX: &str = "portcullis:user:";

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The longest device name accepted (it becomes the certificate's CN, which X.520 bounds at 64).
const MAX_DEVICE_NAME: usize = 64;

/// An issued certificate with everything the administrator hands out.
pub struct Issued {
    /// The registry record, as stored.
    pub record: DeviceCert,
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA certificate (the chain above the device certificate).
    pub ca_pem: String,
    pub p12: Vec<u8>,
    /// The bundle's password; shown once, stored nowhere.
    pub password: String,
    pub format: Format,
}

/// Why nothing was issued.
#[derive(Debug)]
pub enum IssueError {
    /// The config has no `[device_certificates]` section.
    NotConfigured,
    UnknownUser(String),
    BadDevice(String),
    /// The CA could not be loaded or could not sign.
    Ca(String),
    /// This instance's CA is not the one the store's other certificates were
    /// issued with (SHA-256 fingerprints of the CA certificates: ours, theirs).
    OtherCa {
        ours: String,
        theirs: String,
    },
    /// The license (or a duplicate serial) refused the record.
    Quota(QuotaError),
    Store(StoreError),
}

impl std::fmt::Display for IssueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IssueError::NotConfigured => f.write_str(
                "device certificates are not configured: add a [device_certificates] section with `contracted = N`",
            ),
            IssueError::UnknownUser(u) => write!(f, "no user named `{u}` in the users file: nothing was issued"),
            IssueError::BadDevice(m) => f.write_str(m),
            IssueError::Ca(m) => write!(f, "device CA: {m}"),
            IssueError::OtherCa { ours, theirs } => write!(
                f,
                "this instance's device CA (SHA-256 {ours}) is not the one certificates are issued with \
                 (SHA-256 {theirs}): copy device-ca.crt and device-ca.key from an instance that has it into \
                 this one's state_dir (or point ca_cert/ca_key at the shared files) and restart. Nothing was \
                 issued. If every instance now uses this CA on purpose, issue once with --adopt-ca"
            ),
            IssueError::Quota(q) => write!(f, "{q}"),
            IssueError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl IssueError {
    /// The admin API's status and error code for it.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            IssueError::NotConfigured => (409, "not_configured"),
            IssueError::UnknownUser(_) => (404, "unknown_user"),
            IssueError::BadDevice(_) => (400, "bad_request"),
            IssueError::Ca(_) => (500, "device_ca"),
            IssueError::OtherCa { .. } => (409, "other_device_ca"),
            IssueError::Quota(QuotaError::LicenseFull { .. }) => (409, "license_full"),
            IssueError::Quota(_) => (409, "refused"),
            IssueError::Store(_) => (503, "store_unavailable"),
        }
    }
}

/// What the administrator asked for.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    pub user: &'a str,
    pub device: &'a str,
    pub format: Format,
    /// Make this instance's CA the one the store records (after a deliberate change).
    pub adopt_ca: bool,
}

/// The store setting that records which CA certificates are issued with.
const CA_SETTING: &str = "device-ca-sha256";

/// Issues and registers a certificate for `device` of `user`.
pub async fn issue(cfg: &Config, store: &dyn Store, req: IssueRequest<'_>, now: u64) -> Result<Issued, IssueError> {
    let IssueRequest { user, device, format, adopt_ca } = req;
    let settings = cfg.device_certificates.as_ref().ok_or(IssueError::NotConfigured)?;
    if cfg.users.get(user).is_none() {
        return Err(IssueError::UnknownUser(user.to_string()));
    }
    let device = check_device_name(device).map_err(IssueError::BadDevice)?;
    let (ca, _) = DeviceCa::open(settings, &cfg.server.state_dir).map_err(IssueError::Ca)?;
    claim_ca(store, &ca, adopt_ca).await?;
    let (user, validity) = (user.to_string(), settings.validity);
    // Key generation and the bundle's key derivations are CPU work: off the async workers.
    let issued = tokio::task::spawn_blocking(move || build(&ca, &user, &device, validity, now, format))
        .await
        .map_err(|e| IssueError::Ca(e.to_string()))?
        .map_err(IssueError::Ca)?;
    match store.put_device_cert(issued.record.clone(), settings.contracted, now).await {
        Ok(Ok(())) => Ok(issued),
        Ok(Err(q)) => Err(IssueError::Quota(q)),
        Err(e) => Err(IssueError::Store(e)),
    }
}

/// Records this CA as the one certificates are issued with, or refuses when
/// the store already names another: two instances that each made their own CA
/// would issue certificates the other does not trust.
async fn claim_ca(store: &dyn Store, ca: &DeviceCa, adopt: bool) -> Result<(), IssueError> {
    let ours = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&ca.cert_der))
    };
    if store.put_setting(CA_SETTING, ours.as_bytes(), !adopt).await.map_err(IssueError::Store)? {
        return Ok(());
    }
    match store.setting(CA_SETTING).await.map_err(IssueError::Store)? {
        Some(theirs) if theirs != ours.as_bytes() => {
            Err(IssueError::OtherCa { ours, theirs: String::from_utf8_lossy(&theirs).into_owned() })
        }
        _ => Ok(()),
    }
}

/// A device name as given, trimmed: 1 to 64 characters, no control characters.
pub fn check_device_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("name the device: --device NAME (e.g. `alice-laptop`)".into());
    }
    if name.chars().count() > MAX_DEVICE_NAME {
        return Err(format!("the device name is longer than {MAX_DEVICE_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("the device name has control characters".into());
    }
    Ok(name.to_string())
}

/// Makes the key, the certificate, the bundle and the record (no I/O).
pub fn build(
    ca: &DeviceCa,
    user: &str,
    device: &str,
    validity: Duration,
    now: u64,
    format: Format,
) -> Result<Issued, String> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let serial = new_serial();
    let not_after = (now + validity.as_secs()).min(ca.not_after);
    if not_after <= now {
        return Err("the device CA has expired: make or configure a new one".into());
    }
    let cert = ca.sign(params(user, device, &serial, now, not_after)?, &key)?;
    let der = cert.der().to_vec();
    let fingerprint = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&der))
    };
    let password = pkcs12::new_password();
    let alias = format!("{device} ({user})");
    let p12 = pkcs12::bundle(&key.serialize_der(), &der, &ca.cert_der, &alias, &password, format)?;
    let record = DeviceCert {
        serial: hex::encode(serial),
        fingerprint,
        user: user.to_string(),
        device: device.to_string(),
        issued_at: now,
        not_after,
        status: CertStatus::Active,
        expires_at: None,
        set_expiring_at: None,
    };
    Ok(Issued {
        record,
        cert_pem: cert.pem(),
        key_pem: pkcs12::key_pem(&key.serialize_der()),
        ca_pem: ca.cert_pem.clone(),
        p12,
        password,
        format,
    })
}

/// 16 random bytes, never all zero (a serial must be a positive integer).
fn new_serial() -> [u8; 16] {
    loop {
        let s = rand::random::<[u8; 16]>();
        if s.iter().any(|&b| b != 0) {
            return s;
        }
    }
}

fn params(user: &str, device: &str, serial: &[u8; 16], now: u64, not_after: u64) -> Result<CertificateParams, String> {
    let at = |t: u64| time::OffsetDateTime::from_unix_timestamp(t as i64).map_err(|e| e.to_string());
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, device);
    p.distinguished_name = dn;
    let uri = format!("{USER_URI_PREFIX}{}", utf8_percent_encode(user, NOT_UNRESERVED));
    p.subject_alt_names = vec![SanType::URI(uri.try_into().map_err(|e| format!("user name in the SAN: {e}"))?)];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
    p.not_before = at(now.saturating_sub(3600))?;
    p.not_after = at(not_after)?;
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// The user a device certificate names (its `portcullis:user:` URI SAN), if any.
pub fn user_of(cert_der: &[u8]) -> Option<String> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let san = x509.subject_alternative_name().ok()??;
    let mut users = san.value.general_names.iter().filter_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => u.strip_prefix(USER_URI_PREFIX),
        _ => None,
    });
    let encoded = users.next()?;
    if users.next().is_some() {
        return None; // two users named: trust neither
    }
    percent_decode_str(encoded).decode_utf8().ok().map(|u| u.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceCaSource, DeviceCertificates};

    fn ca() -> (tempfile::TempDir, DeviceCa) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DeviceCertificates {
            contracted: 10,
            validity: Duration::from_secs(86_400),
            ca: DeviceCaSource::StateDir,
            link_ttl: Duration::from_secs(3600),
            login: None,
        };
        let (ca, _) = DeviceCa::open(&cfg, dir.path()).unwrap();
        (dir, ca)
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn serials_are_positive_random_128_bit_and_read_back_as_recorded() {
        let (_d, ca) = ca();
        let mut seen = std::collections::HashSet::new();
        let mut top_bit_set = false;
        for _ in 0..24 {
            let i = build(&ca, "alice", "laptop", Duration::from_secs(86_400), NOW, Format::Modern).unwrap();
            assert_eq!(i.record.serial.len(), 32);
            assert!(seen.insert(i.record.serial.clone()), "serials repeat");
            let der = pem_der(&i.cert_pem);
            let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
            // The INTEGER's content: a leading zero byte only where the top bit is set.
            let raw = x.raw_serial();
            assert!(raw[0] & 0x80 == 0, "serial must be positive: {raw:02x?}");
            top_bit_set |= raw.len() == 17;
            assert_eq!(format!("{:032x}", x.serial), i.record.serial);
        }
        assert!(top_bit_set, "24 serials without the top bit set: not 128 random bits");
    }

    #[test]
    fn the_certificate_names_device_and_user_and_is_for_client_auth_only() {
        let (_d, ca) = ca();
        let user = "bob.o'neil@example.com";
        let i = build(&ca, user, "Bob's phone", Duration::from_secs(30 * 86_400), NOW, Format::Legacy).unwrap();
        let der = pem_der(&i.cert_pem);
        assert_eq!(user_of(&der).as_deref(), Some(user));
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(x.subject().iter_common_name().next().unwrap().as_str().unwrap(), "Bob's phone");
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(!x.is_ca());
        assert_eq!(x.validity().not_after.timestamp() as u64, NOW + 30 * 86_400);
        assert_eq!(i.record.not_after, NOW + 30 * 86_400);
        use sha2::Digest;
        assert_eq!(i.record.fingerprint, hex::encode(sha2::Sha256::digest(&der)));
        assert_eq!(x.issuer(), &x509_parser::parse_x509_certificate(&ca.cert_der).unwrap().1.subject().clone());
        // The CA verifies it.
        let (_, cax) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        x.verify_signature(Some(cax.public_key())).unwrap();
    }

    #[test]
    fn a_certificate_never_outlives_its_ca() {
        let (_d, ca) = ca();
        let late = ca.not_after - 10 * 86_400;
        let i = build(&ca, "alice", "laptop", Duration::from_secs(397 * 86_400), late, Format::Modern).unwrap();
        assert_eq!(i.record.not_after, ca.not_after);
        assert!(build(&ca, "alice", "laptop", Duration::from_secs(86_400), ca.not_after, Format::Modern).is_err());
    }

    #[test]
    fn user_of_trusts_only_one_portcullis_user_uri() {
        let (_d, ca) = ca();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = params("alice", "x", &[1; 16], NOW, NOW + 3600).unwrap();
        p.subject_alt_names.push(SanType::URI("portcullis:user:mallory".try_into().unwrap()));
        let two = ca.sign(p, &key).unwrap();
        assert_eq!(user_of(two.der()), None);
        let mut p = params("alice", "x", &[1; 16], NOW, NOW + 3600).unwrap();
        p.subject_alt_names = vec![SanType::DnsName("alice".try_into().unwrap())];
        assert_eq!(user_of(ca.sign(p, &key).unwrap().der()), None);
        assert_eq!(user_of(b"not a certificate"), None);
    }

    #[test]
    fn device_names_are_checked() {
        assert_eq!(check_device_name("  laptop-1 ").unwrap(), "laptop-1");
        assert!(check_device_name(" ").is_err());
        assert!(check_device_name(&"x".repeat(65)).is_err());
        assert!(check_device_name("a\nb").is_err());
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap().to_vec()
    }
}
