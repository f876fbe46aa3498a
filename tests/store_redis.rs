//! The shared store suite against a real `redis-server`, plus what only Redis
//! can show: key names without user names, TTLs on short-lived keys, failing
//! fast while Redis is down and healing when it is back, instances seeing each
//! other's changes, and use from any tokio runtime.

mod common;

use common::free_port;
use common::redis_server::RedisServer;
use portcullis::store::redis::{RedisOptions, RedisStore};
use portcullis::store::{conformance, Change, Lock, SharedStore, Store, StoreError, StoreResult};
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

const NAME_KEY: [u8; 32] = [42; 32];

/// Glob characters in the prefix check that SCAN matches it literally.
fn options(url: &str, prefix: &str) -> RedisOptions {
    RedisOptions { key_prefix: format!("pc[{prefix}]*:"), ..RedisOptions::new(url, NAME_KEY) }
}

async fn connect(opts: RedisOptions) -> RedisStore {
    // `connect` waits (briefly, bounded) for the change feed: not on a worker thread.
    tokio::task::spawn_blocking(move || RedisStore::connect(opts)).await.unwrap().unwrap()
}

async fn next_change(rx: &mut broadcast::Receiver<Change>, within: Duration) -> Change {
    tokio::time::timeout(within, rx.recv()).await.expect("no change published in time").expect("feed closed or lagged")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let url = server.url();
    let next = AtomicUsize::new(0);
    let make = move || {
        let opts = options(&url, &next.fetch_add(1, Ordering::Relaxed).to_string());
        Box::pin(async move { Arc::new(connect(opts).await) as SharedStore }) as _
    };
    conformance::run_all(&make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_names_hold_no_user_names_and_short_lived_keys_expire() {
    let server = RedisServer::start();
    let store = connect(options(&server.url(), "names")).await;
    let totp = portcullis::store::TotpRecord {
        secret_sealed: vec![1; 16],
        confirmed: false,
        last_step: 0,
        created_at: 1,
        period: 30,
    };
    store.set_pending_totp("alice", totp).await.unwrap();
    assert!(store.confirm_totp("alice", 10, vec!["h".into()]).await.unwrap());
    store.record_failure("alice", 1, Lock { at: 1, until: None, reason: "r".into() }).await.unwrap();
    store.sign_out_everywhere("alice", 5).await.unwrap();
    store.revoke_session("sid-alice", 4_000_000_000).await.unwrap();
    store.put_challenge("enroll-link:alice", b"alice", Duration::from_secs(60)).await.unwrap();
    store.count("fail-ip:alice", Duration::from_secs(60)).await.unwrap();

    let mut raw = server.raw();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut raw).unwrap();
    assert!(keys.len() >= 6, "users, not_before, locks, revoked, ch, n: {keys:?}");
    assert!(keys.iter().all(|k| !k.contains("alice")), "a key names the user: {keys:?}");
    let prefix = "pc[names]*:";
    let short: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}ch:")) || k.starts_with(&format!("{prefix}n:")))
        .collect();
    assert_eq!(short.len(), 2, "{keys:?}");
    for key in short {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut raw).unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{key} has PTTL {ttl}");
    }
    // A user's record and index entries share one hash tag (one cluster slot).
    let bucket: Vec<&String> = keys.iter().filter(|k| k.starts_with(&format!("{prefix}{{u"))).collect();
    assert_eq!(bucket.len(), 3, "users, not_before, locks of one bucket: {keys:?}");
    let tag = |k: &str| k[..k.find('}').unwrap()].to_string();
    assert!(bucket.iter().all(|k| tag(k) == tag(bucket[0])), "{bucket:?}");
    for what in ["users", "locks", "not_before"] {
        let key = bucket.iter().find(|k| k.ends_with(&format!(":{what}"))).unwrap();
        let fields: Vec<String> = redis::cmd("HKEYS").arg(key).query(&mut raw).unwrap();
        assert_eq!(fields.len(), 1, "{key}");
        assert!(!fields[0].contains("alice"), "hash fields are HMACs too");
    }
}

/// Every call, with Redis gone, must say so quickly: a login waits for none of them.
async fn unavailable_soon<T: Debug>(what: &str, call: impl Future<Output = StoreResult<T>>) {
    let started = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(3), call).await;
    let got = got.unwrap_or_else(|_| panic!("{what} still hangs after 3 s with redis down"));
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{what}: {got:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{what} took {:?}", started.elapsed());
}

async fn every_call_is_unavailable(s: &RedisStore) {
    let lock = Lock { at: 1, until: None, reason: "r".into() };
    let totp = portcullis::store::TotpRecord {
        secret_sealed: vec![1],
        confirmed: false,
        last_step: 0,
        created_at: 1,
        period: 30,
    };
    let ttl = Duration::from_secs(60);
    unavailable_soon("put_challenge", s.put_challenge("c", b"v", ttl)).await;
    unavailable_soon("get_challenge", s.get_challenge("c")).await;
    unavailable_soon("take_challenge", s.take_challenge("c")).await;
    unavailable_soon("delete_challenge", s.delete_challenge("c")).await;
    unavailable_soon("count", s.count("n", ttl)).await;
    unavailable_soon("user", s.user("u")).await;
    unavailable_soon("set_pending_totp", s.set_pending_totp("u", totp)).await;
    unavailable_soon("confirm_totp", s.confirm_totp("u", 1, vec![])).await;
    unavailable_soon("use_totp_step", s.use_totp_step("u", 1)).await;
    unavailable_soon("use_recovery_code", s.use_recovery_code("u", "h")).await;
    unavailable_soon("set_recovery_codes", s.set_recovery_codes("u", vec![])).await;
    unavailable_soon("record_failure", s.record_failure("u", 3, lock)).await;
    unavailable_soon("reset_failures", s.reset_failures("u")).await;
    unavailable_soon("unlock", s.unlock("u")).await;
    unavailable_soon("locked", s.locked(1)).await;
    unavailable_soon("revoke_totp", s.revoke_totp("u", 1)).await;
    unavailable_soon("sign_out_everywhere", s.sign_out_everywhere("u", 1)).await;
    unavailable_soon("revoke_session", s.revoke_session("sid", 1)).await;
    unavailable_soon("revocations", s.revocations()).await;
    unavailable_soon("export", s.export()).await;
    unavailable_soon("import", s.import(vec![])).await;
}

/// After Redis is back the feed announces `Resync` (the catch-up), and changes flow again.
async fn feed_resyncs_and_flows(store: &RedisStore, rx: &mut broadcast::Receiver<Change>) {
    assert_eq!(next_change(rx, Duration::from_secs(5)).await, Change::Resync);
    store.sign_out_everywhere("zoe", 9).await.unwrap();
    assert_eq!(next_change(rx, Duration::from_secs(2)).await, Change::SessionsNotBefore { user: "zoe".into(), at: 9 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_fast_and_the_store_heals_when_it_is_back() {
    let mut server = RedisServer::start();
    let store = connect(options(&server.url(), "down")).await;
    let mut rx = store.subscribe();
    store.put_challenge("before", b"v", Duration::from_secs(60)).await.unwrap();

    server.stop();
    // The feed says at once that it may miss changes (requests then wait for the catch-up).
    assert_eq!(next_change(&mut rx, Duration::from_secs(3)).await, Change::FeedLost);
    every_call_is_unavailable(&store).await;
    unavailable_soon("a second call", store.user("u")).await;

    server.restart();
    // No persistence here, so what was written before the outage is gone;
    // what matters is that the same store works at once.
    store.put_challenge("after", b"v", Duration::from_secs(60)).await.expect("first call after restart");
    assert_eq!(store.take_challenge("after").await.unwrap().as_deref(), Some(&b"v"[..]));
    feed_resyncs_and_flows(&store, &mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_succeeds_while_redis_is_down_and_works_once_it_is_up() {
    let port = free_port();
    let started = Instant::now();
    let store = connect(options(&format!("redis://127.0.0.1:{port}"), "late")).await;
    assert!(started.elapsed() < Duration::from_secs(3), "connect took {:?}", started.elapsed());
    let mut rx = store.subscribe();
    unavailable_soon("user", store.user("u")).await;

    let _server = RedisServer::start_on(port, &[]);
    assert!(store.count("n", Duration::from_secs(60)).await.is_ok(), "works once redis is up");
    feed_resyncs_and_flows(&store, &mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_one_redis_see_each_others_changes() {
    let server = RedisServer::start();
    let one = connect(options(&server.url(), "shared")).await;
    let two = connect(options(&server.url(), "shared")).await;
    let other = connect(options(&server.url(), "elsewhere")).await;
    let mut rx = two.subscribe();
    let mut other_rx = other.subscribe();

    one.revoke_session("sid-1", 4_000_000_000).await.unwrap();
    let change = next_change(&mut rx, Duration::from_secs(2)).await;
    assert_eq!(change, Change::SessionRevoked { id: "sid-1".into(), until: 4_000_000_000 });
    assert!(two.revocations().await.unwrap().revoked_sessions.contains("sid-1"));

    // A code used on one instance is used on all of them.
    one.set_recovery_codes("amy", vec!["h".into()]).await.unwrap();
    assert!(two.use_recovery_code("amy", "h").await.unwrap());
    assert!(!one.use_recovery_code("amy", "h").await.unwrap());
    assert_eq!(other.user("amy").await.unwrap(), Default::default(), "another prefix is another store");
    assert!(other_rx.try_recv().is_err(), "another prefix hears nothing");
}

/// Guesses sent to several instances at once still get `max_failures`
/// checks in all: the reservation is atomic in Redis, not per instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_spread_over_instances_share_one_limit() {
    let server = RedisServer::start();
    let instances = [
        Arc::new(connect(options(&server.url(), "guesses")).await),
        Arc::new(connect(options(&server.url(), "guesses")).await),
        Arc::new(connect(options(&server.url(), "guesses")).await),
    ];
    let barrier = Arc::new(tokio::sync::Barrier::new(60));
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, barrier) = (Arc::clone(&instances[i % 3]), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let lock = Lock { at: 1_000, until: None, reason: "guesses".into() };
                store.reserve_guess("amy", 5, lock).await.unwrap()
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 5, "of 60 guesses over three instances, max_failures are checked");
    assert_eq!(instances[2].user("amy").await.unwrap().guessing.len(), 5, "all five in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_database_number_are_used() {
    let server = RedisServer::start_on(free_port(), &["--requirepass", "s3cret"]);
    let mut opts = options(&server.url(), "auth");
    opts.password = Some("s3cret".into());
    opts.db = Some(3);
    let store = connect(opts.clone()).await;
    store.sign_out_everywhere("ben", 5).await.unwrap();
    assert_eq!(store.revocations().await.unwrap().not_before.get("ben"), Some(&5));

    let mut raw =
        redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/3", server.port)).unwrap().get_connection().unwrap();
    let in_db3: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut raw).unwrap();
    assert!(!in_db3.is_empty(), "written to database 3");

    opts.password = Some("wrong".into());
    unavailable_soon("wrong password", connect(opts).await.user("ben")).await;
}

/// Pingora calls the store from several runtimes, some short-lived: a store
/// made in one runtime keeps working from others, and after they are gone.
#[test]
fn usable_from_any_runtime() {
    let server = RedisServer::start();
    let store = RedisStore::connect(options(&server.url(), "runtimes")).unwrap();
    for i in 0..3u64 {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            store.sign_out_everywhere("cid", 10 + i).await.unwrap();
            assert_eq!(store.user("cid").await.unwrap().sessions_not_before, 10 + i);
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async { assert_eq!(store.revocations().await.unwrap().not_before.get("cid"), Some(&12)) });
    drop(rt);
    drop(store);
}

/// `rediss://` builds its TLS client with rustls on ring (no other provider
/// is linked); against a server without TLS the handshake fails: Unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_against_a_plain_server_is_unavailable() {
    let server = RedisServer::start();
    let store = connect(options(&format!("rediss://127.0.0.1:{}", server.port), "tls")).await;
    unavailable_soon("user over TLS", store.user("u")).await;
}

/// A `redis-server` that cannot start fails the test with what it said, not
/// with "nothing listens".
#[test]
#[should_panic(expected = "Bad directive")]
fn a_redis_server_that_cannot_start_says_why() {
    let _ = RedisServer::start_on(free_port(), &["--no-such-directive", "x"]);
}
