//! Redis behind Sentinel: `redis+sentinel://host1:26379,host2:26379/mymaster`.
//! Whenever a connection is (re)made, the sentinels are asked for the primary
//! of `mymaster`, and the primary must confirm its role (`ROLE`), so after a
//! failover the store follows the new primary and never writes to a replica.

use super::RedisOptions;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, ProtocolVersion, RedisResult};

pub use crate::config::sentinel_url::{parse, SCHEME};

/// Where the store's connections go: one fixed server, or the primary the sentinels name.
pub(super) enum Target {
    Fixed(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl Target {
    pub(super) fn new(opts: &RedisOptions) -> crate::store::StoreResult<Target> {
        if opts.url.starts_with(SCHEME) {
            let client = sentinel_client(opts).map_err(crate::store::StoreError::Unavailable)?;
            return Ok(Target::Sentinel(tokio::sync::Mutex::new(client)));
        }
        Ok(Target::Fixed(super::access::client(opts)?))
    }

    /// A client for the server to talk to now (for Sentinel: the current primary).
    pub(super) async fn client(&self) -> RedisResult<Client> {
        match self {
            Target::Fixed(c) => Ok(c.clone()),
            Target::Sentinel(s) => s.lock().await.async_get_client().await,
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
