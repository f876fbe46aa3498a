//! The shared store suite against the embedded backend, plus what only a file
//! on disk can show: a restart keeps enrollments, recovery codes, lockouts and
//! revocations.

use portcullis::store::conformance;
use portcullis::store::embedded::EmbeddedStore;
use portcullis::store::{Lock, SharedStore, Store, TotpRecord};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_passes_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().to_path_buf();
    let next = AtomicUsize::new(0);
    let make = move || {
        let dir: PathBuf = base.join(next.fetch_add(1, Ordering::Relaxed).to_string());
        Box::pin(async move {
            std::fs::create_dir(&dir).unwrap();
            Arc::new(EmbeddedStore::open(&dir).unwrap()) as SharedStore
        }) as _
    };
    conformance::run_all(&make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_enrollments_recovery_codes_lockouts_and_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let lock = Lock { at: 1_000, until: None, reason: "too many failed codes".into() };
    let far = 4_000_000_000;
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let totp =
            TotpRecord { secret_sealed: vec![9; 32], confirmed: false, last_step: 0, created_at: 1_000, period: 60 };
        store.set_pending_totp("alice", totp).await.unwrap();
        let codes = vec!["h1".to_string(), "h2".to_string()];
        assert!(store.confirm_totp("alice", 100, codes).await.unwrap());
        assert!(store.use_totp_step("alice", 105).await.unwrap());
        assert!(store.use_recovery_code("alice", "h1").await.unwrap());
        for _ in 0..3 {
            store.record_failure("bob", 3, lock.clone()).await.unwrap();
        }
        store.revoke_totp("carol", 5_000).await.unwrap();
        store.revoke_session("sid-1", far).await.unwrap();
        store.put_challenge("c", b"v", std::time::Duration::from_secs(60)).await.unwrap();
    }

    let store = EmbeddedStore::open(dir.path()).unwrap();
    let alice = store.user("alice").await.unwrap();
    let totp = alice.totp.expect("enrollment survives");
    assert!(totp.confirmed);
    assert_eq!((totp.last_step, totp.period, totp.secret_sealed), (105, 60, vec![9; 32]));
    assert_eq!(alice.recovery, vec!["h2".to_string()], "used code stays used");
    assert!(!store.use_totp_step("alice", 105).await.unwrap(), "no replay after restart");
    assert!(!store.use_recovery_code("alice", "h1").await.unwrap());

    let bob = store.user("bob").await.unwrap();
    assert_eq!((bob.failures, bob.lock.clone()), (3, Some(lock.clone())));
    assert_eq!(store.locked(2_000).await.unwrap(), vec![("bob".to_string(), lock)]);

    let carol = store.user("carol").await.unwrap();
    assert_eq!(carol.totp_revoked_at, Some(5_000));
    let rev = store.revocations().await.unwrap();
    assert_eq!(rev.not_before.get("carol"), Some(&5_000));
    assert!(!rev.allows("carol", "sid-2", 4_999));
    assert!(!rev.allows("dave", "sid-1", 1), "revoked session stays revoked");

    assert_eq!(store.get_challenge("c").await.unwrap(), None, "challenge state is memory only");
}

#[tokio::test]
async fn expired_session_revocations_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.revoke_session("old", 1).await.unwrap();
        store.revoke_session("live", 4_000_000_000).await.unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let rev = store.revocations().await.unwrap();
    assert!(rev.revoked_sessions.contains("live"));
    assert!(!rev.revoked_sessions.contains("old"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_device_certificates_and_their_set_expiring_uses() {
    use portcullis::devices::quota::QuotaError;
    use portcullis::devices::registry::{CertStatus, CertUpdate, DeviceCert};
    let dir = tempfile::tempdir().unwrap();
    let cert = |serial: &str| DeviceCert {
        serial: format!("{serial:0>32}"),
        fingerprint: format!("{serial:0>64}"),
        user: "alice".into(),
        device: format!("device {serial}"),
        issued_at: 1_000,
        not_after: 40_000_000,
        status: CertStatus::Active,
        expires_at: None,
        set_expiring_at: None,
    };
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        for s in ["a", "b", "c"] {
            store.put_device_cert(cert(s), 3, 1_000).await.unwrap().unwrap();
        }
        store.update_device_cert(&cert("a").serial, CertUpdate::SetExpiring, 3, 2_000).await.unwrap().unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let mut certs = store.device_certs().await.unwrap();
    certs.sort_by(|x, y| x.serial.cmp(&y.serial));
    assert_eq!(certs.len(), 3);
    assert_eq!((certs[0].status, certs[0].expires_at), (CertStatus::Expiring, Some(2_000 + 90 * 86_400)));
    // N = 3 allows one use; the one made before the restart still counts.
    let refused = store.update_device_cert(&cert("b").serial, CertUpdate::SetExpiring, 3, 3_000).await.unwrap();
    assert!(matches!(refused, Err(QuotaError::AllowanceUsed { used: 1, allowed: 1, .. })), "{refused:?}");
}
