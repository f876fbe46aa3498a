//! `redis+sentinel://host:port,host:port/service` as the config reads it
//! (the store's `redis::sentinel` connects with what this returns).

pub const SCHEME: &str = "redis+sentinel://";
/// A sentinel's port when the URL names none.
const DEFAULT_PORT: u16 = 26379;

/// The sentinels and the service name of a `redis+sentinel://` URL.
pub fn parse(url: &str) -> Result<(Vec<(String, u16)>, String), String> {
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
        addrs.push((name.to_string(), port));
    }
    Ok((addrs, service.to_string()))
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
}
