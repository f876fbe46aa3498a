//! The device-certificate registry on every backend: the license rules hold
//! under races (the check and the write are one atomic step), refusals change
//! nothing, and every change reaches subscribers, whose [`Registry`] snapshot
//! follows it without a store read.

use super::{next_change, race, RACERS};
use crate::devices::quota::{QuotaError, EXPIRING_FOR};
use crate::devices::registry::{CertStatus, CertUpdate, DeviceCert, Registry};
use crate::store::{Change, SharedStore};
use std::sync::atomic::{AtomicUsize, Ordering};

/// 2026-12-01T00:00:00Z.
const T0: u64 = 1_796_083_200;

pub(super) fn cert(serial: &str, user: &str) -> DeviceCert {
    DeviceCert {
        serial: format!("{serial:0>32}"),
        fingerprint: format!("{:0>64}", format!("f{serial}")),
        user: user.into(),
        device: format!("{user}'s device {serial}"),
        issued_at: T0,
        not_after: T0 + 397 * 86_400,
        status: CertStatus::Active,
        expires_at: None,
        set_expiring_at: None,
    }
}

fn serial(s: &str) -> String {
    format!("{s:0>32}")
}

async fn sorted(s: &SharedStore) -> Vec<DeviceCert> {
    let mut certs = s.device_certs().await.unwrap();
    certs.sort_by(|a, b| a.serial.cmp(&b.serial));
    certs
}

pub(super) async fn issuance_is_bounded_by_the_license(s: SharedStore) {
    let mut rx = s.subscribe();
    assert_eq!(s.device_certs().await.unwrap(), vec![]);
    for (i, user) in ["ann", "bob"].iter().enumerate() {
        assert_eq!(s.put_device_cert(cert(&format!("a{i}"), user), 2, T0).await.unwrap(), Ok(()));
        assert_eq!(next_change(&mut rx).await, Change::DeviceCert(cert(&format!("a{i}"), user)));
    }
    let full = s.put_device_cert(cert("a2", "cy"), 2, T0).await.unwrap();
    assert_eq!(full, Err(QuotaError::LicenseFull { active: 2, contracted: 2 }));
    let dup = s.put_device_cert(cert("a0", "cy"), 3, T0).await.unwrap();
    assert!(matches!(dup, Err(QuotaError::Duplicate { .. })), "{dup:?}");
    assert_eq!(sorted(&s).await, vec![cert("a0", "ann"), cert("a1", "bob")], "refusals change nothing");
}

pub(super) async fn issuance_races_for_the_last_slot(s: SharedStore) {
    s.put_device_cert(cert("b0", "ann"), 2, T0).await.unwrap().unwrap();
    let next = AtomicUsize::new(0);
    let results = race(&s, RACERS, |s| {
        let c = cert(&format!("r{}", next.fetch_add(1, Ordering::Relaxed)), "ann");
        async move { s.put_device_cert(c, 2, T0).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert_eq!(s.device_certs().await.unwrap().len(), 2);
}

pub(super) async fn set_expiring_expire_and_revoke(s: SharedStore) {
    // Subscribe first and drain the four issuances: a feed delivers a change
    // some time after the write returns, so a later subscriber may still see them.
    let mut rx = s.subscribe();
    for i in 0..4 {
        s.put_device_cert(cert(&format!("c{i}"), "ann"), 4, T0).await.unwrap().unwrap();
    }
    for i in 0..4 {
        assert_eq!(next_change(&mut rx).await, Change::DeviceCert(cert(&format!("c{i}"), "ann")));
    }
    let mut snapshot = Registry::from_certs(&s.device_certs().await.unwrap(), 0);
    let fp0 = cert("c0", "ann").fingerprint;
    let now = T0 + 100;
    let set = s.update_device_cert(&serial("c0"), CertUpdate::SetExpiring, 4, now).await.unwrap().unwrap();
    assert_eq!(
        (set.status, set.expires_at, set.set_expiring_at),
        (CertStatus::Expiring, Some(now + EXPIRING_FOR), Some(now))
    );
    let change = next_change(&mut rx).await;
    assert_eq!(change, Change::DeviceCert(set.clone()));
    snapshot.apply(&change);
    assert_eq!(snapshot.generation(), 1, "a registry change moves the generation");
    assert_eq!(snapshot.lookup(&fp0, now + EXPIRING_FOR - 1), Some(("ann", CertStatus::Expiring)));
    assert_eq!(snapshot.lookup(&fp0, now + EXPIRING_FOR), Some(("ann", CertStatus::Expired)), "by the clock");

    let again = s.update_device_cert(&serial("c0"), CertUpdate::SetExpiring, 4, now + 5).await.unwrap();
    assert_eq!(again, Err(QuotaError::AlreadyExpiring { serial: serial("c0"), expires_at: now + EXPIRING_FOR }));
    let unknown = s.update_device_cert(&serial("zz"), CertUpdate::Revoke, 4, now).await.unwrap();
    assert_eq!(unknown, Err(QuotaError::UnknownSerial { serial: serial("zz") }));
    // N = 4: two uses; the second is allowed, the third refused.
    s.update_device_cert(&serial("c1"), CertUpdate::SetExpiring, 4, now).await.unwrap().unwrap();
    let used = s.update_device_cert(&serial("c2"), CertUpdate::SetExpiring, 4, now).await.unwrap();
    assert!(matches!(used, Err(QuotaError::AllowanceUsed { used: 2, allowed: 2, .. })), "{used:?}");
    let before_refusals = sorted(&s).await;

    let revoked = s.update_device_cert(&serial("c2"), CertUpdate::Revoke, 4, now).await.unwrap().unwrap();
    assert_eq!(revoked.status, CertStatus::Revoked);
    let expired = s.update_device_cert(&serial("c0"), CertUpdate::Expire, 4, now + 7).await.unwrap().unwrap();
    assert_eq!((expired.status, expired.expires_at), (CertStatus::Expired, Some(now + 7)));
    let ended = s.update_device_cert(&serial("c2"), CertUpdate::SetExpiring, 4, now).await.unwrap();
    assert!(matches!(ended, Err(QuotaError::Ended { status: CertStatus::Revoked, .. })), "{ended:?}");
    let after = sorted(&s).await;
    assert_eq!(after.len(), before_refusals.len());
    assert_eq!(
        after.iter().find(|c| c.serial == serial("c3")),
        before_refusals.iter().find(|c| c.serial == serial("c3"))
    );
    loop {
        let c = next_change(&mut rx).await;
        snapshot.apply(&c);
        if matches!(&c, Change::DeviceCert(c) if c.status == CertStatus::Expired) {
            break;
        }
    }
    assert_eq!(snapshot.lookup(&fp0, now + 8), Some(("ann", CertStatus::Expired)));
    assert_eq!(snapshot.lookup(&cert("c2", "ann").fingerprint, now), Some(("ann", CertStatus::Revoked)));
    assert_eq!(snapshot.lookup("unknown", now), None);
}

/// N = 32 allows 16 uses: of 32 set-expirings released at once, exactly 16 land.
pub(super) async fn set_expiring_allowance_holds_under_race(s: SharedStore) {
    let n = 2 * RACERS as u32;
    for i in 0..n {
        s.put_device_cert(cert(&format!("d{i}"), "ann"), n, T0).await.unwrap().unwrap();
    }
    let next = AtomicUsize::new(0);
    let results = race(&s, n as usize, |s| {
        let serial = serial(&format!("d{}", next.fetch_add(1, Ordering::Relaxed)));
        async move { s.update_device_cert(&serial, CertUpdate::SetExpiring, n, T0 + 1).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), RACERS, "floor(32 / 2) uses");
    let expiring = s.device_certs().await.unwrap().iter().filter(|c| c.status == CertStatus::Expiring).count();
    assert_eq!(expiring, RACERS);
}
