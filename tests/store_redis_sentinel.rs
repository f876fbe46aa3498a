//! The Redis store behind Sentinel: one primary, one replica, one sentinel on
//! loopback. The store finds the primary through the sentinel, and after the
//! primary dies and the replica is promoted, writes work again within seconds
//! (on the new primary: the store never writes to a replica).

mod common;

use common::redis_server::{info, primary_replicas_sentinel, RedisSentinel, RedisServer};
use portcullis::store::redis::{check_access, RedisOptions, RedisStore};
use portcullis::store::{Change, Store};
use std::time::{Duration, Instant};

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A primary, its replica (in sync), and a sentinel that knows both.
fn primary_replica_sentinel() -> (RedisServer, RedisServer, RedisSentinel) {
    let (primary, mut replicas, sentinel) = primary_replicas_sentinel(1);
    (primary, replicas.remove(0), sentinel)
}

async fn connect(opts: &RedisOptions) -> RedisStore {
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || RedisStore::connect(opts)).await.unwrap().unwrap()
}

/// Writes `key` until one is accepted; how long that took.
async fn write_until_accepted(store: &RedisStore, key: &str) -> Duration {
    let t0 = Instant::now();
    while store.put_challenge(key, b"w", Duration::from_secs(60)).await.is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no write accepted within 30 s of the failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_a_failover() {
    let (mut primary, replica, sentinel) = primary_replica_sentinel();
    let opts = RedisOptions { key_prefix: "pc:".into(), ..RedisOptions::new(sentinel.url("mymaster"), [3; 32]) };
    check_access(&opts).expect("the primary, through the sentinel");
    let store = connect(&opts).await;
    let mut rx = store.subscribe();
    store.put_challenge("before", b"v", Duration::from_secs(60)).await.unwrap();
    let on_primary: Vec<String> = redis::cmd("KEYS").arg("pc:*").query(&mut primary.raw()).unwrap();
    assert_eq!(on_primary.len(), 1, "written on the primary: {on_primary:?}");
    store.sign_out_everywhere("zoe", 1).await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(change, Change::SessionsNotBefore { user: "zoe".into(), at: 1 });

    primary.stop();
    let took = write_until_accepted(&store, "after").await;
    eprintln!("writes work again {} ms after the primary died", took.as_millis());
    assert!(info(&mut replica.raw(), "replication").contains("role:master"), "the replica was promoted");
    assert_eq!(store.take_challenge("after").await.unwrap().as_deref(), Some(&b"w"[..]));
    assert_eq!(store.take_challenge("before").await.unwrap().as_deref(), Some(&b"v"[..]), "replicated before");

    // The change feed follows too: a resync, then changes flow from the new primary.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        store.sign_out_everywhere("zoe", 2).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            // Each sign-out moves the bar past the last one: 2, then 3, …
            Ok(Ok(Change::SessionsNotBefore { at, .. })) if at >= 2 => break,
            _ => assert!(Instant::now() < deadline, "no change from the new primary"),
        }
    }
}

/// A primary demoted while its connections stay open answers writes with
/// `-READONLY`: the store asks the sentinel again and writes to the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_is_left_for_the_new_one() {
    let (primary, replica, sentinel) = primary_replica_sentinel();
    let opts = RedisOptions { key_prefix: "pc:".into(), ..RedisOptions::new(sentinel.url("mymaster"), [3; 32]) };
    let store = connect(&opts).await;
    store.put_challenge("before", b"v", Duration::from_secs(60)).await.unwrap();

    // Until the sentinel has heard from the replica itself it answers NOGOODSLAVE.
    wait_until("the sentinel starts a failover", Duration::from_secs(20), || {
        redis::cmd("SENTINEL").arg("FAILOVER").arg("mymaster").query::<()>(&mut sentinel.raw()).is_ok()
    });
    wait_until("the old primary is demoted", Duration::from_secs(20), || {
        info(&mut primary.raw(), "replication").contains("role:slave")
    });
    let took = write_until_accepted(&store, "after").await;
    eprintln!("writes work again {} ms after the demotion", took.as_millis());
    assert!(info(&mut replica.raw(), "replication").contains("role:master"));
    let on_new: Vec<String> = redis::cmd("KEYS").arg("pc:*").query(&mut replica.raw()).unwrap();
    assert_eq!(on_new.len(), 2, "both writes on the new primary: {on_new:?}");
}
