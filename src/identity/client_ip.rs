//! The client IP address that network conditions (`internal_ip`, `network("…")`)
//! are evaluated against.
//!
//! The address is the TCP peer, unless the peer is a configured trusted proxy:
//! then X-Forwarded-For is walked from the right, because only the entries
//! appended by proxies we trust are believable; everything to their left was
//! written by whoever connected to them, and may be spoofed. The walk stops at
//! the first untrusted hop (that is the client), and at the first hop that is
//! not an address: a trusted proxy would not write garbage, so the garbage came
//! from the client and nothing left of it can be believed.
//!
//! The common case (no trusted proxies, or a direct client) returns the peer
//! without looking at any header, and the walk never allocates.

use std::net::{IpAddr, Ipv6Addr};

/// Something that says whether an address is a trusted proxy (the config
/// implements it with its CIDR list).
pub trait TrustedProxies {
    fn is_trusted(&self, ip: IpAddr) -> bool;
}

/// At most this many X-Forwarded-For hops are examined, so a request with a
/// huge header costs a bounded amount of work.
pub const MAX_HOPS: usize = 32;

/// Longer than any address with a port in brackets; longer hops are garbage.
const MAX_HOP_LEN: usize = 64;

/// The client address of a request from `peer`.
///
/// `xff` are the raw values of every X-Forwarded-For header in order (a request
/// may carry several headers; each is a comma-separated list). IPv4-mapped IPv6
/// addresses are returned as IPv4, so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
pub fn client_ip<'a>(
    peer: IpAddr,
    xff: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &impl TrustedProxies,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.is_trusted(peer) {
        return peer;
    }
    let hops = xff.rev().flat_map(|value| value.rsplit(|&b| b == b','));
    // The last address vouched for by a trusted hop: the peer, then each
    // trusted hop in turn. When every hop is trusted it ends as the leftmost.
    let mut vouched = peer;
    for hop in hops.take(MAX_HOPS) {
        match parse_hop(hop) {
            None => return vouched,
            Some(ip) if !trusted.is_trusted(ip) => return ip,
            Some(ip) => vouched = ip,
        }
    }
    vouched
}

/// One X-Forwarded-For entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`, with optional surrounding
/// whitespace. Anything else (`unknown`, `_hidden`, empty, zone ids) is `None`.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = hop.trim_ascii();
    if hop.is_empty() || hop.len() > MAX_HOP_LEN {
        return None;
    }
    let hop = std::str::from_utf8(hop).ok()?;
    let ip = if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !after.is_empty() && !is_port_suffix(after) {
            return None;
        }
        IpAddr::V6(inside.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else {
        // Only IPv4 may carry a port without brackets; a bare IPv6 address
        // already parsed above, and `2001:db8::1:443` is ambiguous anyway.
        let (host, port) = hop.split_once(':')?;
        if !is_port_suffix(&hop[host.len()..]) || port.is_empty() {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    Some(ip.to_canonical())
}

/// `:` followed by a decimal port number (1 to 5 digits, at most 65535).
fn is_port_suffix(s: &str) -> bool {
    let Some(digits) = s.strip_prefix(':') else {
        return false;
    };
    (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && digits.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Trusts 10.0.0.0/8 and fd00::/8.
    struct Lan;

    impl TrustedProxies for Lan {
        fn is_trusted(&self, ip: IpAddr) -> bool {
            match ip {
                IpAddr::V4(a) => a.octets()[0] == 10,
                IpAddr::V6(a) => a.octets()[0] == 0xfd,
            }
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolve(peer: &str, headers: &[&str]) -> IpAddr {
        client_ip(ip(peer), headers.iter().map(|h| h.as_bytes()), &Lan)
    }

    #[test]
    fn untrusted_peer_ignores_xff_entirely() {
        assert_eq!(resolve("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        assert_eq!(resolve("203.0.113.9", &["10.0.0.1"]), ip("203.0.113.9"));
        assert_eq!(resolve("203.0.113.9", &["garbage"]), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_peer_without_xff_is_the_client() {
        assert_eq!(resolve("10.0.0.2", &[]), ip("10.0.0.2"));
    }

    #[test]
    fn empty_header_or_empty_hop_stops_at_the_peer() {
        assert_eq!(resolve("10.0.0.2", &[""]), ip("10.0.0.2"));
        assert_eq!(resolve("10.0.0.2", &["   "]), ip("10.0.0.2"));
        assert_eq!(resolve("10.0.0.2", &["198.51.100.1,"]), ip("10.0.0.2"));
        assert_eq!(resolve("10.0.0.2", &["198.51.100.1,,10.0.0.3"]), ip("10.0.0.3"));
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let got = resolve("10.0.0.2", &["198.51.100.1, 203.0.113.5, 10.0.0.3"]);
        assert_eq!(got, ip("203.0.113.5"));
    }

    #[test]
    fn spoofed_left_entries_are_ignored() {
        // The client wrote "10.9.9.9, 1.1.1.1"; our proxy appended the real address.
        let got = resolve("10.0.0.2", &["10.9.9.9, 1.1.1.1, 203.0.113.5"]);
        assert_eq!(got, ip("203.0.113.5"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        for garbage in ["unknown", "_hidden", "1.2.3", "1.2.3.4.5", "fe80::1%eth0", "::1]"] {
            let header = format!("198.51.100.1, {garbage}, 10.0.0.3");
            assert_eq!(resolve("10.0.0.2", &[&header]), ip("10.0.0.3"), "{garbage}");
        }
        assert_eq!(resolve("10.0.0.2", &["unknown"]), ip("10.0.0.2"));
    }

    #[test]
    fn overlong_hop_is_garbage() {
        let long = "a".repeat(65);
        assert_eq!(resolve("10.0.0.2", &[&long]), ip("10.0.0.2"));
        let huge = format!("198.51.100.1, {}, 10.0.0.3", "f".repeat(100_000));
        assert_eq!(resolve("10.0.0.2", &[&huge]), ip("10.0.0.3"));
        // Padding is trimmed before the length check.
        let padded = format!("{}198.51.100.1{}", " ".repeat(40), " ".repeat(40));
        assert_eq!(resolve("10.0.0.2", &[&padded]), ip("198.51.100.1"));
    }

    #[test]
    fn whitespace_around_hops_is_ignored() {
        assert_eq!(resolve("10.0.0.2", &[" \t198.51.100.1\t "]), ip("198.51.100.1"));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(resolve("10.0.0.2", &["198.51.100.1:5678"]), ip("198.51.100.1"));
        assert_eq!(resolve("10.0.0.2", &["198.51.100.1:"]), ip("10.0.0.2"));
        assert_eq!(resolve("10.0.0.2", &["198.51.100.1:99999"]), ip("10.0.0.2"));
        assert_eq!(resolve("10.0.0.2", &["198.51.100.1:80:80"]), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_with_and_without_brackets_and_ports() {
        let want = ip("2001:db8::1");
        assert_eq!(resolve("10.0.0.2", &["2001:db8::1"]), want);
        assert_eq!(resolve("10.0.0.2", &["[2001:db8::1]"]), want);
        assert_eq!(resolve("10.0.0.2", &["[2001:db8::1]:443"]), want);
        assert_eq!(resolve("fd00::2", &[" [2001:db8::1]:443 , fd00::3"]), want);
        assert_eq!(resolve("10.0.0.2", &["[2001:db8::1]x"]), ip("10.0.0.2"));
        assert_eq!(resolve("10.0.0.2", &["[1.2.3.4]"]), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_normalised() {
        assert_eq!(resolve("::ffff:10.0.0.2", &["::ffff:198.51.100.1"]), ip("198.51.100.1"));
        assert_eq!(resolve("::ffff:203.0.113.9", &[]), ip("203.0.113.9"));
        assert_eq!(resolve("10.0.0.2", &["[::ffff:10.0.0.3]"]), ip("10.0.0.3"));
    }

    #[test]
    fn multiple_headers_are_one_list_in_order() {
        let got = resolve("10.0.0.2", &["203.0.113.5, 10.0.0.5", "10.0.0.4", "10.0.0.3"]);
        assert_eq!(got, ip("203.0.113.5"));
        let got = resolve("10.0.0.2", &["198.51.100.7", "203.0.113.5, 10.0.0.4"]);
        assert_eq!(got, ip("203.0.113.5"));
    }

    #[test]
    fn all_trusted_chain_gives_the_leftmost_hop() {
        assert_eq!(resolve("10.0.0.2", &["10.0.0.9, 10.0.0.4", "10.0.0.3"]), ip("10.0.0.9"));
    }

    #[test]
    fn many_hops_are_bounded() {
        let trusted: Vec<String> = (0..100).map(|i| format!("10.0.1.{i}")).collect();
        let header = format!("198.51.100.1, {}", trusted.join(", "));
        // Only the rightmost MAX_HOPS are examined: the 32nd from the right.
        assert_eq!(resolve("10.0.0.2", &[&header]), ip("10.0.1.68"));
        let short = format!("198.51.100.1, {}", trusted[..MAX_HOPS - 1].join(","));
        assert_eq!(resolve("10.0.0.2", &[&short]), ip("198.51.100.1"));
    }

    #[test]
    fn non_utf8_hop_is_garbage() {
        let headers: [&[u8]; 1] = [b"198.51.100.1, \xff\xfe, 10.0.0.3"];
        let got = client_ip(ip("10.0.0.2"), headers.into_iter(), &Lan);
        assert_eq!(got, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)));
    }
}
