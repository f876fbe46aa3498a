//! The Redis store on a Redis Cluster of three primaries (made with
//! `redis-cli --cluster create` on loopback): the whole store suite passes
//! (export and import included), every multi-key step stays in one slot,
//! the keys spread over the nodes, and instances on the cluster hear each
//! other's changes (classic pub/sub reaches every node).

mod common;

use common::redis_server::RedisCluster;
use portcullis::store::redis::{check_access, RedisOptions, RedisStore};
use portcullis::store::{conformance, Change, Lock, SharedStore, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn options(url: &str, prefix: &str) -> RedisOptions {
    RedisOptions { key_prefix: format!("pc:{prefix}:"), ..RedisOptions::new(url, [9; 32]) }
}

async fn connect(opts: RedisOptions) -> RedisStore {
    tokio::task::spawn_blocking(move || RedisStore::connect(opts)).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_suite_passes_on_a_cluster() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    check_access(&options(&url, "check")).expect("the start-up check passes on a healthy cluster");
    let next = AtomicUsize::new(0);
    let make = move || {
        let opts = options(&url, &next.fetch_add(1, Ordering::Relaxed).to_string());
        Box::pin(async move { Arc::new(connect(opts).await) as SharedStore }) as _
    };
    conformance::run_all(&make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_on_a_cluster_act_as_one_and_the_keys_spread() {
    let cluster = RedisCluster::start();
    let (one, two) = (connect(options(&cluster.url(), "s")).await, connect(options(&cluster.url(), "s")).await);
    let mut rx = two.subscribe();

    // A revocation through one reaches the other over the feed, and is in the store.
    one.revoke_session("sid-1", 4_000_000_000).await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
    assert_eq!(change, Change::SessionRevoked { id: "sid-1".into(), until: 4_000_000_000 });
    assert!(two.revocations().await.unwrap().revoked_sessions.contains("sid-1"));

    // Many users: every record, lock and sign-out lands, and the keys spread over the nodes.
    let lock = Lock { at: 1, until: None, reason: "r".into() };
    for i in 0..48 {
        let user = format!("user{i}");
        one.set_recovery_codes(&user, vec![format!("h{i}")]).await.unwrap();
        if i % 3 == 0 {
            two.record_failure(&user, 1, lock.clone()).await.unwrap();
        }
        if i % 4 == 0 {
            two.sign_out_everywhere(&user, 100 + i).await.unwrap();
        }
    }
    assert!(two.use_recovery_code("user7", "h7").await.unwrap(), "a code set on one is used on the other");
    assert!(!one.use_recovery_code("user7", "h7").await.unwrap(), "once");
    assert_eq!(one.locked(2).await.unwrap().len(), 16, "locks from every bucket");
    let r = one.revocations().await.unwrap();
    assert_eq!(r.not_before.len(), 12, "sign-outs from every bucket");
    assert_eq!(r.not_before.get("user8"), Some(&108));
    let exported = one.export().await.unwrap();
    assert_eq!(exported.iter().filter(|e| matches!(e, portcullis::store::Exported::User { .. })).count(), 48);

    let holding: Vec<i64> = cluster.nodes.iter().map(|n| redis::cmd("DBSIZE").query(&mut n.raw()).unwrap()).collect();
    assert!(holding.iter().all(|n| *n > 0), "keys on every node: {holding:?}");
}
