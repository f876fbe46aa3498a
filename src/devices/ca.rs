//! The device CA: the key that signs every device certificate, and the
//! certificate that the TLS listener will trust for client certificates.
//!
//! With `[device_certificates]` and no `ca_cert`/`ca_key`, the first start
//! makes an ECDSA P-256 CA in `state_dir` (`device-ca.crt`, `device-ca.key`,
//! both 0600 like every file there) and later starts load it. With
//! `ca_cert`/`ca_key`, an existing CA is loaded and never written.
//!
//! Every instance of a cluster must use the same CA: a certificate issued by
//! one instance is checked by whichever instance the device reaches. Two
//! instances that each made their own would each refuse the other's devices.
//! So a CA is made only where none exists (`create_new`, never overwritten).

use crate::config::{DeviceCaSource, DeviceCertificates};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use std::path::{Path, PathBuf};

/// File names of a CA made in `state_dir`.
pub const CA_CERT_FILE: &str = "device-ca.crt";
pub const CA_KEY_FILE: &str = "device-ca.key";

/// How long a CA made by portcullis is valid: long enough never to be the
/// reason a device stops working (device certificates end far earlier).
const CA_VALIDITY_DAYS: i64 = 20 * 365;

/// A loaded CA, ready to sign.
pub struct DeviceCa {
    /// The CA certificate as read (PEM), for chains and bundles.
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    /// The CA's own validity end (Unix seconds); nothing it signs outlives it.
    pub not_after: u64,
    key: KeyPair,
    /// The CA as rcgen needs it to sign: its name and key identifier, as read.
    issuer: Certificate,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa").field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

impl DeviceCa {
    /// Loads the CA the config names, making one in `state_dir` when the
    /// config names none and none is there yet. Returns whether it was made.
    pub fn open(cfg: &DeviceCertificates, state_dir: &Path) -> Result<(DeviceCa, bool), String> {
        let (cert, key) = paths(cfg, state_dir);
        let made = match &cfg.ca {
            DeviceCaSource::StateDir if !cert.exists() && !key.exists() => {
                create(&cert, &key)?;
                true
            }
            _ => false,
        };
        Ok((DeviceCa::load(&cert, &key)?, made))
    }

    /// Reads a CA certificate and its key (PEM) and checks that they belong
    /// together and that the certificate is a CA.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<DeviceCa, String> {
        let read = |p: &Path, what: &str| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read the device CA {what} `{}`: {e}", p.display()))
        };
        let (cert_text, key_text) = (read(cert_path, "certificate")?, read(key_path, "key")?);
        let cert_der = first_certificate(&cert_text).ok_or_else(|| {
            format!("`{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)", cert_path.display())
        })?;
        let key = KeyPair::from_pem(&key_text).map_err(|e| {
            format!("`{}` is not a private key rcgen can sign with (PKCS#8 or SEC1 PEM): {e}", key_path.display())
        })?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| format!("`{}` is not a valid X.509 certificate: {e}", cert_path.display()))?;
        if !x509.is_ca() {
            return Err(format!(
                "`{}` is not a CA certificate (no basicConstraints CA:TRUE): name the CA's certificate, not a device's or a server's",
                cert_path.display()
            ));
        }
        if x509.public_key().raw != key.public_key_der().as_slice() {
            return Err(format!(
                "the key `{}` does not belong to the certificate `{}`",
                key_path.display(),
                cert_path.display()
            ));
        }
        let not_after = x509.validity().not_after.timestamp().max(0) as u64;
        let params = CertificateParams::from_ca_cert_der(&cert_der.clone().into())
            .map_err(|e| format!("`{}`: {e}", cert_path.display()))?;
        let issuer = params.self_signed(&key).map_err(|e| format!("cannot use the device CA: {e}"))?;
        let cert_pem = super::pkcs12::cert_pem(&cert_der);
        Ok(DeviceCa { cert_pem, cert_der, not_after, key, issuer })
    }

    /// Signs `params` for the device's `public_key`.
    pub fn sign(&self, params: CertificateParams, public_key: &KeyPair) -> Result<Certificate, String> {
        params.signed_by(public_key, &self.issuer, &self.key).map_err(|e| format!("cannot sign: {e}"))
    }
}

/// Where the CA's certificate and key are.
pub fn paths(cfg: &DeviceCertificates, state_dir: &Path) -> (PathBuf, PathBuf) {
    match &cfg.ca {
        DeviceCaSource::StateDir => (state_dir.join(CA_CERT_FILE), state_dir.join(CA_KEY_FILE)),
        DeviceCaSource::Files { cert, key } => (cert.clone(), key.clone()),
    }
}

/// At start: make or load the CA and log which, so a wrong file stops the start.
pub fn open_at_start(config: &crate::config::Config) -> Result<(), String> {
    let Some(cfg) = &config.device_certificates else { return Ok(()) };
    let (ca, made) = DeviceCa::open(cfg, &config.server.state_dir)?;
    let (cert, _) = paths(cfg, &config.server.state_dir);
    if made {
        tracing::info!("made a device CA in {} (copy it and its key to every other instance)", cert.display());
    } else {
        tracing::info!("device CA {} (valid until {})", cert.display(), crate::clock::iso8601(ca.not_after));
    }
    Ok(())
}

/// Makes a new CA: key first (0600, never overwriting), then the certificate.
fn create(cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "portcullis device CA");
    dn.push(DnType::OrganizationName, "portcullis");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let private = crate::state_dir::FILE_MODE;
    write_new(key_path, key.serialize_pem().as_bytes(), private)?;
    write_new(cert_path, cert.pem().as_bytes(), private)
}

/// Writes a file that must not exist yet (never replacing one), with `mode`.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
    f.write_all(bytes).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

fn first_certificate(pem: &str) -> Option<Vec<u8>> {
    rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok().map(|c| c.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cfg(ca: DeviceCaSource) -> DeviceCertificates {
        DeviceCertificates {
            contracted: 10,
            validity: std::time::Duration::from_secs(86_400),
            ca,
            link_ttl: std::time::Duration::from_secs(3600),
            login: None,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_first_open_makes_a_private_p256_ca_and_the_next_loads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(DeviceCaSource::StateDir);
        let (ca, made) = DeviceCa::open(&c, dir.path()).unwrap();
        assert!(made);
        let (cert, key) = (dir.path().join(CA_CERT_FILE), dir.path().join(CA_KEY_FILE));
        assert_eq!((mode(&cert), mode(&key)), (0o600, 0o600));
        let (_, x) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        assert!(x.is_ca());
        assert_eq!(x.public_key().algorithm.algorithm, x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY);
        let (again, made) = DeviceCa::open(&c, dir.path()).unwrap();
        assert!(!made);
        assert_eq!(again.cert_der, ca.cert_der, "the CA is loaded, not made anew");
    }

    #[test]
    fn half_a_ca_in_state_dir_is_an_error_not_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(DeviceCaSource::StateDir);
        DeviceCa::open(&c, dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        let e = DeviceCa::open(&c, dir.path()).unwrap_err();
        assert!(e.contains("cannot read the device CA key"), "{e}");
        assert!(!dir.path().join(CA_KEY_FILE).exists());
    }

    #[test]
    fn a_configured_ca_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        create(&a.join("ca.crt"), &a.join("ca.key")).unwrap();
        create(&b.join("ca.crt"), &b.join("ca.key")).unwrap();
        let files = |cert: PathBuf, key: PathBuf| cfg(DeviceCaSource::Files { cert, key });

        let ok = DeviceCa::open(&files(a.join("ca.crt"), a.join("ca.key")), dir.path()).unwrap();
        assert!(!ok.1);

        let e = DeviceCa::open(&files(a.join("ca.crt"), b.join("ca.key")), dir.path()).unwrap_err();
        assert!(e.contains("does not belong"), "{e}");
        let e = DeviceCa::open(&files(a.join("missing.crt"), a.join("ca.key")), dir.path()).unwrap_err();
        assert!(e.contains("cannot read the device CA certificate"), "{e}");
        assert!(!a.join("missing.crt").exists(), "a configured CA is never made");
        let e = DeviceCa::open(&files(a.join("ca.key"), a.join("ca.key")), dir.path()).unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");

        // A leaf certificate (not a CA) signed by the CA, with its own key.
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = ok.0.sign(CertificateParams::new(vec!["x.example".into()]).unwrap(), &leaf_key).unwrap();
        std::fs::write(a.join("leaf.crt"), leaf.pem()).unwrap();
        std::fs::write(a.join("leaf.key"), leaf_key.serialize_pem()).unwrap();
        let e = DeviceCa::open(&files(a.join("leaf.crt"), a.join("leaf.key")), dir.path()).unwrap_err();
        assert!(e.contains("is not a CA certificate"), "{e}");
    }
}
