//! TLS material: reading PEM files into rustls types, the server certificate
//! resolver (swapped on reload without restarting the listener), and the
//! development CA behind `portcullis certs dev`.

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use std::path::Path;
use std::sync::Arc;

/// Installs the ring provider once per process; later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| format!("`{}` is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

pub fn read_signing_key(path: &Path) -> Result<Arc<dyn SigningKey>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("`{}` is not valid PEM: {e}", path.display()))?
        .ok_or_else(|| format!("`{}` holds no PEM private key", path.display()))?;
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("`{}`: unsupported private key ({e})", path.display()))
}

/// Serves the current server certificate; `set` swaps it on reload.
#[derive(Debug)]
pub struct ServerCertResolver(ArcSwap<CertifiedKey>);

impl ServerCertResolver {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        ServerCertResolver(ArcSwap::new(key))
    }
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.0.store(key);
    }
}

impl ResolvesServerCert for ServerCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The client-certificate check of the HTTPS listener when
/// `[device_certificates]` is configured: a presented chain must lead to the
/// device CA (`ca_cert`), or rustls ends the handshake with an `unknown_ca`
/// alert; a client that presents none is let through (the "request" mode of
/// TLS), and each app decides what that means.
pub fn device_client_verifier(ca_cert: &Path) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_cert_chain(ca_cert)? {
        roots.add(cert).map_err(|e| format!("`{}`: not a usable CA certificate ({e})", ca_cert.display()))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("`{}`: cannot check client certificates against it ({e})", ca_cert.display()))
}

/// What the handshake learned of a connection's device certificate, kept
/// with the connection (Pingora's `SslDigest` extension) and read back by
/// every request on it. Only a chain that verified against the device CA
/// gets here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDeviceCert {
    /// SHA-256 of the leaf's DER, lowercase hex: the registry's key.
    pub fingerprint: String,
    /// The user the certificate itself names (`portcullis:user:` URI SAN).
    pub user: Option<String>,
}

impl PeerDeviceCert {
    /// Parses the leaf once: its fingerprint and the user it names.
    pub fn of(leaf_der: &[u8]) -> PeerDeviceCert {
        use sha2::Digest;
        PeerDeviceCert {
            fingerprint: hex::encode(sha2::Sha256::digest(leaf_der)),
            user: crate::devices::issue::user_of(leaf_der),
        }
    }
}

/// The listener's post-handshake callback: once per connection, the
/// presented leaf (if any) becomes a [`PeerDeviceCert`].
pub struct DeviceCertCallback;

#[async_trait::async_trait]
impl pingora::listeners::TlsAccept for DeviceCertCallback {
    async fn handshake_complete_callback(
        &self,
        tls: &pingora::protocols::tls::TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        let leaf = tls.peer_certificate_der()?;
        Some(Arc::new(PeerDeviceCert::of(leaf)))
    }
}

/// Files written by [`make_dev_certs`].
pub struct DevCerts {
    pub ca_cert: std::path::PathBuf,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
}

/// How long `certs dev`'s server certificate is valid (the CA/Browser Forum's
/// 398-day ceiling for publicly trusted ones, which scanners apply to all).
pub const DEV_LEAF_DAYS: i64 = 397;

/// Makes a development CA (ECDSA P-256) and a server certificate it signs for
/// `hosts` (DNS names or IP addresses). Keys are written with mode 0600.
pub fn make_dev_certs(dir: &Path, hosts: &[String]) -> Result<DevCerts, String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    let ca_key = KeyPair::generate_for(alg).map_err(|e| e.to_string())?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    ca.distinguished_name.push(DnType::CommonName, "portcullis development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    // The CA may outlive its leaves; a leaf is valid at most 398 days, as
    // browsers and TLS scanners expect of a server certificate.
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + time::Duration::days(10 * 365);
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| e.to_string())?;

    let key = KeyPair::generate_for(alg).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(hosts.to_vec()).map_err(|e| format!("bad host name: {e}"))?;
    params.distinguished_name.push(DnType::CommonName, hosts.first().map_or("localhost", |h| h.as_str()));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(DEV_LEAF_DAYS);
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(|e| e.to_string())?;

    let out = DevCerts {
        ca_cert: dir.join("dev-ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    write(&out.ca_cert, &ca_cert.pem(), 0o644)?;
    write(&dir.join("dev-ca.key"), &ca_key.serialize_pem(), 0o600)?;
    write(&out.server_cert, &format!("{}{}", cert.pem(), ca_cert.pem()), 0o644)?;
    write(&out.server_key, &key.serialize_pem(), 0o600)?;
    Ok(out)
}

/// Writes a file with the given mode, created that way (no window where a key is world-readable).
pub fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certs_load_and_match() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let c = make_dev_certs(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let chain = read_cert_chain(&c.server_cert).unwrap();
        assert_eq!(chain.len(), 2);
        let key = read_signing_key(&c.server_key).unwrap();
        CertifiedKey::new(chain, key).keys_match().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&c.server_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn missing_and_garbage_files_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pem");
        assert!(read_cert_chain(&p).unwrap_err().contains("cannot read"));
        std::fs::write(&p, "hello").unwrap();
        assert!(read_cert_chain(&p).unwrap_err().contains("no PEM certificate"));
        assert!(read_signing_key(&p).unwrap_err().contains("no PEM private key"));
    }
}
