//! Which app answers a Host: exact names and `*.example.com` wildcards,
//! compiled into hash maps so the lookup is one or two probes.

use std::collections::HashMap;

/// Index of an app in `Config::apps`.
pub type AppId = usize;

#[derive(Debug, Default)]
pub struct HostTable {
    exact: HashMap<Box<str>, AppId>,
    /// Keyed by the suffix after `*.`, e.g. `example.com` for `*.example.com`.
    wildcard: HashMap<Box<str>, AppId>,
}

/// Why a host pattern was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HostError {
    Invalid(String),
    Duplicate { host: String, other_app: AppId },
}

impl HostTable {
    /// Adds a pattern (already lowercased by the caller is not assumed).
    pub fn add(&mut self, pattern: &str, app: AppId) -> Result<(), HostError> {
        let p = pattern.trim().to_ascii_lowercase();
        let (map, name) = match p.strip_prefix("*.") {
            Some(rest) => (&mut self.wildcard, rest.to_string()),
            None => (&mut self.exact, p.clone()),
        };
        if !valid_dns_name(&name) {
            return Err(HostError::Invalid(format!(
                "`{pattern}` is not a host name (letters, digits, `-` and `.`, optionally starting with `*.`)"
            )));
        }
        if let Some(&other_app) = map.get(name.as_str()) {
            return Err(HostError::Duplicate { host: p, other_app });
        }
        map.insert(name.into_boxed_str(), app);
        Ok(())
    }

    /// The app for a request's host (any case, port already removed).
    /// `*.example.com` matches `a.example.com` but not `example.com` nor
    /// `a.b.example.com`, and the one label it stands for must be a DNS label
    /// (not empty as in `.example.com`, no space or `_`).
    pub fn lookup(&self, host: &str) -> Option<AppId> {
        let mut buf = [0u8; 256];
        let host = lowercase(host, &mut buf)?;
        if let Some(&id) = self.exact.get(host) {
            return Some(id);
        }
        let (label, rest) = host.split_once('.')?;
        let id = self.wildcard.get(rest).copied()?;
        valid_dns_name(label).then_some(id)
    }

    pub fn matches(&self, host: &str) -> bool {
        self.lookup(host).is_some()
    }
}

/// Lowercases into a stack buffer: the request path should not allocate.
fn lowercase<'a>(host: &'a str, buf: &'a mut [u8; 256]) -> Option<&'a str> {
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(host);
    }
    let out = buf.get_mut(..host.len())?;
    out.copy_from_slice(host.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Splits `host[:port]` / `[v6]:port` and returns the host part, or None when malformed.
pub fn strip_port(authority: &str) -> Option<&str> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        return Some(&rest[..end]);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => Some(h),
        Some(_) => None,
        None => Some(authority),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HostTable {
        let mut t = HostTable::default();
        t.add("wiki.localhost", 0).unwrap();
        t.add("*.apps.localhost", 1).unwrap();
        t
    }

    #[test]
    fn exact_and_wildcard() {
        let t = table();
        assert_eq!(t.lookup("wiki.localhost"), Some(0));
        assert_eq!(t.lookup("WIKI.Localhost"), Some(0));
        assert_eq!(t.lookup("a.apps.localhost"), Some(1));
        assert_eq!(t.lookup("apps.localhost"), None);
        assert_eq!(t.lookup("a.b.apps.localhost"), None);
        assert_eq!(t.lookup("evil.example"), None);
        assert_eq!(t.lookup(""), None);
    }

    /// Found by the `host` fuzz target: the empty label matched the wildcard.
    #[test]
    fn a_wildcard_stands_for_one_real_label() {
        let t = table();
        assert_eq!(t.lookup(".apps.localhost"), None);
        assert_eq!(t.lookup("a b.apps.localhost"), None);
        assert_eq!(t.lookup("-a.apps.localhost"), None);
        assert_eq!(t.lookup("x-1.apps.localhost"), Some(1));
    }

    #[test]
    fn duplicates_and_garbage_are_refused() {
        let mut t = table();
        assert_eq!(
            t.add("Wiki.localhost", 2),
            Err(HostError::Duplicate { host: "wiki.localhost".into(), other_app: 0 })
        );
        assert!(matches!(t.add("bad host", 2), Err(HostError::Invalid(_))));
        assert!(matches!(t.add("*.", 2), Err(HostError::Invalid(_))));
        assert!(matches!(t.add("a..b", 2), Err(HostError::Invalid(_))));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("wiki.localhost:8443"), Some("wiki.localhost"));
        assert_eq!(strip_port("wiki.localhost"), Some("wiki.localhost"));
        assert_eq!(strip_port("[::1]:8443"), Some("::1"));
        assert_eq!(strip_port("a:b"), None);
    }

    #[test]
    fn overlong_host_does_not_match() {
        let t = table();
        assert_eq!(t.lookup(&"A".repeat(300)), None);
    }
}
