//! Where the store's connections go:
//! - one fixed server (`redis://`, `rediss://`);
//! - Sentinel (`redis+sentinel://host1:26379,host2:26379/mymaster`): whenever
//!   a connection is (re)made, the sentinels are asked for the primary of
//!   `mymaster`, and the primary must confirm its role (`ROLE`), so after a
//!   failover the store follows the new primary and never writes to a replica;
//! - a Redis Cluster (`redis+cluster://host1:7000,host2:7001`): the cluster
//!   client learns the slot map from the seed nodes and follows it (MOVED,
//!   ASK, failovers); the change feed subscribes on one seed node at a time,
//!   because a classic `PUBLISH` reaches every node of a cluster.

use super::RedisOptions;
use crate::store::{StoreError, StoreResult};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, ProtocolVersion, RedisResult};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::config::redis_url::{is_cluster, parse, parse_cluster, SCHEME};

pub(super) enum Target {
    Fixed(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    Cluster(Cluster),
}

pub(super) struct Cluster {
    pub(super) client: ClusterClient,
    /// A plain client per seed node, for the feed's subscription and the start-up check.
    pub(super) nodes: Vec<Client>,
    next: AtomicUsize,
}

impl Target {
    pub(super) fn new(opts: &RedisOptions) -> StoreResult<Target> {
        if opts.url.starts_with(SCHEME) {
            let client = sentinel_client(opts).map_err(StoreError::Unavailable)?;
            return Ok(Target::Sentinel(tokio::sync::Mutex::new(client)));
        }
        if is_cluster(&opts.url) {
            return Ok(Target::Cluster(cluster(opts)?));
        }
        Ok(Target::Fixed(super::access::client(opts)?))
    }

    /// A client for the server to talk to now: for Sentinel the current
    /// primary, for a cluster the next seed node (each call another one, so a
    /// feed whose node died moves on).
    pub(super) async fn client(&self) -> RedisResult<Client> {
        match self {
            Target::Fixed(c) => Ok(c.clone()),
            Target::Sentinel(s) => s.lock().await.async_get_client().await,
            Target::Cluster(c) => Ok(c.nodes[c.next.fetch_add(1, Ordering::Relaxed) % c.nodes.len()].clone()),
        }
    }

    pub(super) fn follows_failover(&self) -> bool {
        matches!(self, Target::Sentinel(_))
    }
}

/// A client that asks the sentinels for the primary; the `[redis]` user,
/// password and database are for the data nodes (the sentinels need none).
pub(super) fn sentinel_client(opts: &RedisOptions) -> Result<SentinelClient, String> {
    let (hosts, service) = parse(&opts.url).map_err(|e| format!("server.store: {e}"))?;
    let addrs: Vec<ConnectionAddr> = hosts.into_iter().map(|(host, port)| ConnectionAddr::Tcp(host, port)).collect();
    let mut b = SentinelClientBuilder::new(addrs, service, SentinelServerType::Master)
        .map_err(|e| format!("redis sentinel settings: {e}"))?
        .set_client_to_redis_protocol(ProtocolVersion::RESP3);
    if let Some(user) = &opts.username {
        b = b.set_client_to_redis_username(user);
    }
    if let Some(password) = &opts.password {
        b = b.set_client_to_redis_password(password);
    }
    if let Some(db) = opts.db {
        b = b.set_client_to_redis_db(db);
    }
    b.build().map_err(|e| format!("redis sentinel settings: {e}"))
}

/// The options of one seed node of a cluster URL (`redis[s]://host:port`),
/// with the `[redis]` user, password and TLS files.
pub(super) fn node_options(opts: &RedisOptions) -> Result<Vec<RedisOptions>, String> {
    let (hosts, tls) = parse_cluster(&opts.url).map_err(|e| format!("server.store: {e}"))?;
    let scheme = if tls { "rediss" } else { "redis" };
    Ok(hosts
        .into_iter()
        .map(|(host, port)| RedisOptions { url: format!("{scheme}://{host}:{port}"), db: None, ..opts.clone() })
        .collect())
}

fn cluster(opts: &RedisOptions) -> StoreResult<Cluster> {
    let settings = |e: String| StoreError::Unavailable(format!("redis cluster settings: {e}"));
    let node_opts = node_options(opts).map_err(settings)?;
    let mut infos = Vec::with_capacity(node_opts.len());
    let mut nodes = Vec::with_capacity(node_opts.len());
    for o in &node_opts {
        infos.push(super::access::connection_info(o)?);
        nodes.push(super::access::client(o)?);
    }
    let mut b = ClusterClientBuilder::new(infos)
        .use_protocol(ProtocolVersion::RESP3)
        .connection_timeout(super::IO_TIMEOUT)
        .response_timeout(super::IO_TIMEOUT)
        .retries(2);
    if let Some(user) = &opts.username {
        b = b.username(user);
    }
    if let Some(password) = &opts.password {
        b = b.password(password);
    }
    if let Some(certs) = super::access::tls_certificates(opts)? {
        b = b.certs(certs);
    }
    let client = b.build().map_err(|e| settings(e.to_string()))?;
    Ok(Cluster { client, nodes, next: AtomicUsize::new(0) })
}
