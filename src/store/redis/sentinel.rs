//! Redis behind Sentinel: `redis+sentinel://host1:26379,host2:26379/mymaster`.
//! Whenever a connection is (re)made, the sentinels are asked for the primary
//! of `mymaster`, and the primary must confirm its role (`ROLE`), so after a
//! failover the store follows the new primary and never writes to a replica.

use super::RedisOptions;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, ProtocolVersion, RedisResult};

pub const SCHEME: &str = "redis+sentinel://";
const DEFAULT_PORT: u16 = 26379;

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

/// The sentinels and the service name of a `redis+sentinel://` URL.
pub fn parse(url: &str) -> Result<(Vec<ConnectionAddr>, String), String> {
    let rest = url.strip_prefix(SCHEME).ok_or("not a redis+sentinel:// URL")?;
    let (hosts, service) = rest.rsplit_once('/').ok_or("no service name (…/mymaster)")?;
    let service_ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if service.is_empty() || !service.chars().all(service_ok) {
        return Err(format!("`{service}` is not a service name (letters, digits, - _ .)"));
    }
    let mut addrs = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().map_err(|_| format!("`{p}` is not a port"))?),
            None => (host, DEFAULT_PORT),
        };
        if name.is_empty() || name.contains(['@', '[', ']', ' ']) {
            return Err(format!("`{host}` is not host:port"));
        }
        addrs.push(ConnectionAddr::Tcp(name.to_string(), port));
    }
    Ok((addrs, service.to_string()))
}

/// A client that asks the sentinels for the primary; the `[redis]` user,
/// password and database are for the data nodes (the sentinels need none).
pub(super) fn sentinel_client(opts: &RedisOptions) -> Result<SentinelClient, String> {
    let (addrs, service) = parse(&opts.url).map_err(|e| format!("server.store: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls() {
        let (addrs, service) = parse("redis+sentinel://10.0.0.1:26379,s2/mymaster").unwrap();
        assert_eq!(service, "mymaster");
        assert_eq!(
            addrs,
            vec![ConnectionAddr::Tcp("10.0.0.1".into(), 26379), ConnectionAddr::Tcp("s2".into(), DEFAULT_PORT)]
        );
        assert!(parse("redis+sentinel://h:1/").is_err());
        assert!(parse("redis+sentinel://h:1").is_err());
        assert!(parse("redis+sentinel://h:x/m").is_err());
        assert!(parse("redis+sentinel://u:p@h:1/m").is_err());
        assert!(parse("redis+sentinel://h:1/m x").is_err());
    }
}
