//! The device-certificate registry in Redis: `{p}{device_certs}`, a hash of
//! serial → JSON [`DeviceCert`], and `{p}{device_certs}:version`, a counter
//! (one hash tag, so one slot of a cluster),
//! every registry write increments. A change reads both in one MULTI/EXEC,
//! applies the rules of `devices::quota` here, and writes with one Lua script
//! that first checks the version is still the one read (and otherwise starts
//! over): the same optimistic read-modify-write as a user's record, over the
//! whole registry, because the license is a rule about all certificates.

use super::{decode, json, unavailable, Change, Keys, Shared, StoreError, StoreResult, WRITE_ROUNDS};
use crate::devices::quota::QuotaError;
use crate::devices::registry::DeviceCert;
use crate::store::Exported;

/// KEYS: registry hash, version. ARGV: version as read, serial, record,
/// channel, change. Returns 0, writing nothing, when another write came first.
pub(super) const WRITE_DEVICE_CERT: &str = r"
local v = redis.call('GET', KEYS[2]) or '0'
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

impl Keys {
    pub(super) fn device_certs(&self) -> String {
        format!("{}{{device_certs}}", self.prefix)
    }

    pub(super) fn device_certs_version(&self) -> String {
        format!("{}{{device_certs}}:version", self.prefix)
    }
}

impl Shared {
    /// Every certificate and the registry version they were read at.
    pub(super) async fn device_certs(&self) -> StoreResult<(String, Vec<DeviceCert>)> {
        let (version, values): (Option<String>, Vec<String>) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(self.keys.device_certs_version())
            .cmd("HVALS")
            .arg(self.keys.device_certs())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let certs = values.iter().map(|v| decode("a device certificate", v)).collect::<StoreResult<_>>()?;
        Ok((version.unwrap_or_else(|| "0".into()), certs))
    }

    /// One registry change: `rule` sees every certificate and returns the
    /// record to write (published on the feed), or why nothing is written.
    pub(super) async fn write_device_cert(
        &self,
        rule: impl Fn(&[DeviceCert]) -> Result<DeviceCert, QuotaError>,
    ) -> StoreResult<Result<DeviceCert, QuotaError>> {
        let mut conn = self.conn.clone();
        for _ in 0..WRITE_ROUNDS {
            let (version, certs) = self.device_certs().await?;
            let cert = match rule(&certs) {
                Ok(cert) => cert,
                refused => return Ok(refused),
            };
            let written: i64 = self
                .write_device_cert
                .key(self.keys.device_certs())
                .key(self.keys.device_certs_version())
                .arg(&version)
                .arg(&cert.serial)
                .arg(json(&cert))
                .arg(self.keys.changes())
                .arg(json(&Change::DeviceCert(cert.clone())))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if written == 1 {
                self.durable(&self.keys.device_certs()).await?;
                return Ok(Ok(cert));
            }
        }
        Err(StoreError::Unavailable(format!("redis: the device registry kept changing under {WRITE_ROUNDS} writers")))
    }

    /// Adds an exported certificate to an import's MULTI/EXEC.
    pub(super) fn import_device_cert(&self, pipes: &mut super::ImportPipes, cert: &DeviceCert) {
        let pipe = pipes.for_key(&self.keys.device_certs());
        pipe.cmd("HSET").arg(self.keys.device_certs()).arg(&cert.serial).arg(json(cert)).ignore();
        pipe.cmd("INCR").arg(self.keys.device_certs_version()).ignore();
    }

    pub(super) async fn export_device_certs(&self, out: &mut Vec<Exported>) -> StoreResult<()> {
        let (_, certs) = self.device_certs().await?;
        out.extend(certs.into_iter().map(|cert| Exported::DeviceCert { cert }));
        Ok(())
    }
}
