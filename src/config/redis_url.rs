//! The Redis URLs that name several servers, as the config reads them (the
//! store connects with what these return):
//! `redis+sentinel://host:port,host:port/service` and
//! `redis+cluster://host:port,host:port` (`rediss+cluster://` with TLS).

pub const SCHEME: &str = "redis+sentinel://";
pub const CLUSTER_SCHEME: &str = "redis+cluster://";
pub const CLUSTER_TLS_SCHEME: &str = "rediss+cluster://";
/// A sentinel's port when the URL names none.
const DEFAULT_PORT: u16 = 26379;
/// A cluster node's port when the URL names none.
const DEFAULT_CLUSTER_PORT: u16 = 6379;

/// The sentinels and the service name of a `redis+sentinel://` URL.
pub fn parse(url: &str) -> Result<(Vec<(String, u16)>, String), String> {
    let rest = url.strip_prefix(SCHEME).ok_or("not a redis+sentinel:// URL")?;
    let (hosts, service) = rest.rsplit_once('/').ok_or("no service name (…/mymaster)")?;
    let service_ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if service.is_empty() || !service.chars().all(service_ok) {
        return Err(format!("`{service}` is not a service name (letters, digits, - _ .)"));
    }
    Ok((hosts_and_ports(hosts, DEFAULT_PORT)?, service.to_string()))
}

/// Whether `url` names a Redis Cluster.
pub fn is_cluster(url: &str) -> bool {
    url.starts_with(CLUSTER_SCHEME) || url.starts_with(CLUSTER_TLS_SCHEME)
}

/// The seed nodes of a `redis+cluster://` URL, and whether it asks for TLS.
/// The client learns the other nodes from these.
pub fn parse_cluster(url: &str) -> Result<(Vec<(String, u16)>, bool), String> {
    let (rest, tls) = match url.strip_prefix(CLUSTER_SCHEME) {
        Some(rest) => (rest, false),
        None => (url.strip_prefix(CLUSTER_TLS_SCHEME).ok_or("not a redis+cluster:// URL")?, true),
    };
    let hosts = rest.strip_suffix('/').unwrap_or(rest);
    if hosts.contains('/') {
        return Err("a cluster has no database number or service name after `/`".into());
    }
    Ok((hosts_and_ports(hosts, DEFAULT_CLUSTER_PORT)?, tls))
}

/// `host:port,host:port`; no user or password (those come from `[redis]`).
fn hosts_and_ports(hosts: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    let mut addrs = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().map_err(|_| format!("`{p}` is not a port"))?),
            None => (host, default_port),
        };
        if name.is_empty() || name.contains(['@', '[', ']', ' ', '/']) {
            return Err(format!("`{host}` is not host:port"));
        }
        addrs.push((name.to_string(), port));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls() {
        let (addrs, service) = parse("redis+sentinel://10.0.0.1:26379,s2/mymaster").unwrap();
        assert_eq!(service, "mymaster");
        assert_eq!(addrs, vec![("10.0.0.1".to_string(), 26379), ("s2".to_string(), DEFAULT_PORT)]);
        assert!(parse("redis+sentinel://h:1/").is_err());
        assert!(parse("redis+sentinel://h:1").is_err());
        assert!(parse("redis+sentinel://h:x/m").is_err());
        assert!(parse("redis+sentinel://u:p@h:1/m").is_err());
        assert!(parse("redis+sentinel://h:1/m x").is_err());
    }

    #[test]
    fn cluster_urls() {
        let (addrs, tls) = parse_cluster("redis+cluster://10.0.0.1:7000,n2").unwrap();
        assert!(!tls);
        assert_eq!(addrs, vec![("10.0.0.1".to_string(), 7000), ("n2".to_string(), DEFAULT_CLUSTER_PORT)]);
        assert_eq!(parse_cluster("rediss+cluster://h:7000/").unwrap(), (vec![("h".to_string(), 7000)], true));
        assert!(parse_cluster("redis+cluster://h:7000/0").is_err(), "no database on a cluster");
        assert!(parse_cluster("redis+cluster://u:p@h:7000").is_err());
        assert!(parse_cluster("redis+cluster://").is_err());
        assert!(parse_cluster("redis+cluster://h:x").is_err());
        assert!(is_cluster("rediss+cluster://h") && !is_cluster("redis://h"));
    }
}
