//! The signed-in user's own device certificates, for the dashboard and
//! `whoami`: read from this instance's registry snapshot (no store read),
//! each with its status at the clock's now and its dates in local time with
//! the offset of `[totp] timezone`. A certificate that works and stops working
//! within 14 days (by set-expiring's date or its own validity end) is flagged,
//! and the dashboard warns of it.

use super::Portal;
use crate::challenge::cooldown::LocalTime;
use crate::challenge::pages::CertRow;
use crate::clock::iso8601;
use crate::devices::registry::{CertStatus, RegistryEntry, WARN_WITHIN};
use serde_json::{json, Value};

impl Portal<'_> {
    /// `user`'s certificates as the dashboard lists them; `None` without
    /// `[device_certificates]` (the dashboard then has no such section).
    pub(super) fn cert_rows(&self, user: &str) -> Option<Vec<CertRow>> {
        self.config.device_certificates.as_ref()?;
        let (now, offset) = (self.auth.clock.now(), self.config.totp.utc_offset);
        let local = |at: u64| LocalTime(at, offset).to_string();
        let registry = self.auth.devices.load();
        let rows = registry.of_user(user).into_iter().map(|e| CertRow {
            device: e.device.clone(),
            serial: e.serial.clone(),
            status: e.status_at(now),
            issued: local(e.issued_at),
            until: local(e.works_until()),
            stops_soon: e.stops_within(now, WARN_WITHIN),
        });
        Some(rows.collect())
    }

    /// The same list for `GET /.portcullis/api/whoami`: Unix seconds, UTC and local text.
    pub(super) fn cert_json(&self, user: &str) -> Value {
        let (now, offset) = (self.auth.clock.now(), self.config.totp.utc_offset);
        let registry = self.auth.devices.load();
        let shown = |e: &RegistryEntry| {
            let status = e.status_at(now);
            let until = (status != CertStatus::Revoked).then(|| e.works_until());
            json!({
                "device": e.device,
                "serial": e.serial,
                "status": status,
                "issued_at": e.issued_at,
                "issued_at_utc": iso8601(e.issued_at),
                "issued_at_local": LocalTime(e.issued_at, offset).to_string(),
                "stops_working_at": until,
                "stops_working_at_utc": until.map(iso8601),
                "stops_working_at_local": until.map(|t| LocalTime(t, offset).to_string()),
                "stops_soon": e.stops_within(now, WARN_WITHIN),
            })
        };
        Value::Array(registry.of_user(user).into_iter().map(shown).collect())
    }
}
