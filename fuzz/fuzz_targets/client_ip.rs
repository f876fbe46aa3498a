//! The client address behind trusted proxies (`identity::client_ip`): the
//! X-Forwarded-For values come from the client. Invariants: nothing panics;
//! an untrusted peer is the client whatever the header says; the rightmost
//! untrusted hop wins over anything further left.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::identity::client_ip::{client_ip, TrustedProxies};
use std::net::{IpAddr, Ipv4Addr};

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

fuzz_target!(|data: &[u8]| {
    // Several headers: the input split at newlines.
    let headers: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let outside = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    assert_eq!(client_ip(outside, headers.iter().copied(), &Lan), outside, "an untrusted peer is the client");
    let proxy = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let ip = client_ip(proxy, headers.iter().copied(), &Lan);
    assert_eq!(ip, ip.to_canonical(), "IPv4-mapped addresses come back as IPv4");
    // Hops are read from the right: what a client adds on the left cannot
    // displace an untrusted address a trusted proxy appended.
    let mut appended = headers.clone();
    appended.push(b"198.51.100.7");
    let ip = client_ip(proxy, appended.iter().copied(), &Lan);
    assert_eq!(ip, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), "the rightmost untrusted hop wins");
});
