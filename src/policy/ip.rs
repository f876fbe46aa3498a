//! Named networks: CIDR parsing and the lookup table that says which
//! configured networks contain a client address.
//!
//! This module owns the answer to "is this address internal / in the lab?".
//! Networks are compiled once, at config load, into an immutable
//! [`NetworkTable`]; the hot path only calls [`NetworkTable::lookup`], which
//! neither allocates nor locks.
//!
//! The design calls these "prefix tries". What is built is the flattened form
//! of such a trie: every prefix is an address range, the ranges cut the address
//! space into elementary intervals, and each interval carries the [`NetMask`] of
//! every network covering it. A lookup is one directory read (top address bits)
//! and a short binary search, so overlapping and nested prefixes cost nothing
//! extra and cache misses stay at two or three per lookup, even with 100 000
//! prefixes.
//!
//! Networks are [`IpNet`]s from the `ipnet` crate, read with [`parse_network`]
//! (which adds the errors an administrator needs); the table is this module's.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as IPv4, and
//! prefixes written in that form (`::ffff:10.0.0.0/104`) are read as IPv4
//! (`10.0.0.0/8`), so a dual-stack listener sees the same answer as an IPv4
//! one. An IPv6 prefix shorter than /96 (even `::/0`) never matches a mapped
//! client: that client is an IPv4 client.

use std::fmt;
use std::net::IpAddr;

/// The network type: parsed, printed and compared by the `ipnet` crate.
pub use ipnet::IpNet;
use ipnet::Ipv4Net;

/// At most this many named networks: one bit each in a [`NetMask`].
pub const MAX_NETWORKS: usize = 64;

/// Bitset of network ids (bit i = network i). At most 64 named networks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NetMask(pub u64);

impl NetMask {
    /// No network.
    pub const EMPTY: NetMask = NetMask(0);

    /// True when network `id` is in the set.
    pub fn contains(self, id: NetworkId) -> bool {
        id.0 < 64 && (self.0 >> id.0) & 1 == 1
    }

    /// True when no network is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// This set plus network `id` (ids of 64 and above are ignored).
    pub fn with(self, id: NetworkId) -> NetMask {
        NetMask(self.0 | 1u64.checked_shl(u32::from(id.0)).unwrap_or(0))
    }
}

/// Index of a named network in its [`NetworkTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetworkId(pub u8);

/// Address family of a key; IPv4-mapped IPv6 counts as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// The inclusive address range a prefix covers, as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    family: Family,
    first: u128,
    last: u128,
}

/// Reads one network as an administrator writes it: `10.0.0.0/8`,
/// `2001:db8::/32`, or a bare address (a /32 or /128). Surrounding
/// whitespace is ignored. A prefix with bits set past its length is refused
/// (naming the network that was probably meant), and an IPv4-mapped IPv6
/// prefix (`::ffff:10.0.0.0/104`) comes back as the IPv4 one (`10.0.0.0/8`).
///
/// `ipnet` reads the prefix; the address is read by the standard library
/// first, because `ipnet`'s own reader takes leading zeros (`010.0.0.0`) that
/// other tools read as octal, and its error says nothing about what is wrong.
pub fn parse_network(s: &str) -> Result<IpNet, CidrError> {
    let text = s.trim();
    let err = |kind| CidrError { input: text.to_string(), kind };
    if text.is_empty() {
        return Err(err(CidrErrorKind::Empty));
    }
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| err(CidrErrorKind::BadAddress(addr_text.to_string())))?;
    let net = match len_text {
        None => IpNet::from(addr),
        Some(len) => match text.parse::<IpNet>() {
            Ok(net) if net.addr() == addr => net,
            _ => return Err(err(prefix_problem(len, max_len(addr)))),
        },
    };
    if net.trunc() != net {
        return Err(err(CidrErrorKind::HostBitsSet { canonical: net.trunc() }));
    }
    Ok(ipv4_mapped_as_ipv4(net))
}

/// Why a prefix length `ipnet` refused is wrong: too long, or not a number.
fn prefix_problem(text: &str, max: u8) -> CidrErrorKind {
    let digits_only = !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u16>() {
        Ok(len) if digits_only && len > u16::from(max) => CidrErrorKind::PrefixTooLong { len, max },
        _ => CidrErrorKind::BadPrefix { text: text.to_string(), max },
    }
}

fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `net` with an IPv4-mapped IPv6 prefix of /96 or longer written as the
/// IPv4 prefix it covers (`::ffff:10.0.0.0/104` is `10.0.0.0/8`), because
/// mapped clients are looked up as IPv4. Shorter IPv6 prefixes stay IPv6.
pub fn ipv4_mapped_as_ipv4(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).expect("96 + 32 bits")),
            None => net,
        },
        _ => net,
    }
}

/// True when `ip` is inside `net`. IPv4-mapped IPv6 addresses and prefixes
/// are compared as IPv4, on either side; host bits of `net` are ignored.
pub fn contains(net: &IpNet, ip: IpAddr) -> bool {
    ipv4_mapped_as_ipv4(net.trunc()).contains(&ip.to_canonical())
}

/// The range of addresses `net` covers, with host bits ignored and an
/// IPv4-mapped prefix as IPv4.
fn range(net: &IpNet) -> Range {
    match ipv4_mapped_as_ipv4(net.trunc()) {
        IpNet::V4(n) => Range {
            family: Family::V4,
            first: u128::from(u32::from(n.network())),
            last: u128::from(u32::from(n.broadcast())),
        },
        IpNet::V6(n) => Range { family: Family::V6, first: u128::from(n.network()), last: u128::from(n.broadcast()) },
    }
}

/// A network prefix that could not be parsed: the text, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrError {
    /// The text as given (trimmed).
    pub input: String,
    pub kind: CidrErrorKind,
}

/// What was wrong with a network prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrErrorKind {
    /// Nothing was written.
    Empty,
    /// The part before `/` is not an IPv4 or IPv6 address.
    BadAddress(String),
    /// The part after `/` is not a whole number of bits from 0 to `max`.
    BadPrefix { text: String, max: u8 },
    /// The prefix length is longer than the address (32 or 128 bits).
    PrefixTooLong { len: u16, max: u8 },
    /// Bits past the prefix are set; `canonical` is what was probably meant.
    HostBitsSet { canonical: IpNet },
}

fn family_name(max: u8) -> &'static str {
    if max == 32 {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = &self.input;
        match &self.kind {
            CidrErrorKind::Empty => {
                write!(f, "empty network prefix; write e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"")
            }
            CidrErrorKind::BadAddress(a) => write!(
                f,
                "{input:?}: {a:?} is not an IPv4 or IPv6 address (write e.g. \"10.0.0.0/8\"; no leading zeros)"
            ),
            CidrErrorKind::BadPrefix { text, max } => write!(
                f,
                "{input:?}: prefix length {text:?} is not a whole number of bits from 0 to {max} for {}",
                family_name(*max)
            ),
            CidrErrorKind::PrefixTooLong { len, max } => {
                write!(f, "{input:?}: prefix length {len} is longer than {max} for {}", family_name(*max))
            }
            CidrErrorKind::HostBitsSet { canonical } => write!(
                f,
                "{input:?}: address has bits set past the /{} prefix; did you mean \"{canonical}\"?",
                canonical.prefix_len()
            ),
        }
    }
}

impl std::error::Error for CidrError {}

/// A named network that could not be added to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkError {
    /// More than [`MAX_NETWORKS`] networks were defined.
    TooMany { name: String, limit: usize },
    /// Two networks share a name.
    Duplicate { name: String },
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkError::TooMany { name, limit } => {
                write!(f, "network {name:?}: at most {limit} named networks can be defined; merge some")
            }
            NetworkError::Duplicate { name } => {
                write!(f, "network {name:?} is defined twice; list all its prefixes once")
            }
        }
    }
}

impl std::error::Error for NetworkError {}

/// Collects named networks at config load; [`build`](Self::build) freezes them.
#[derive(Clone, Debug, Default)]
pub struct NetworkTableBuilder {
    names: Vec<String>,
    prefixes: Vec<(IpNet, NetworkId)>,
}

impl NetworkTableBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named network; returns its id. Error when > 64 networks or
    /// duplicate name. Host bits of a prefix are ignored, and an IPv4-mapped
    /// prefix counts as IPv4 (see [`ipv4_mapped_as_ipv4`]).
    pub fn add(&mut self, name: &str, cidrs: &[IpNet]) -> Result<NetworkId, NetworkError> {
        if self.names.iter().any(|n| n == name) {
            return Err(NetworkError::Duplicate { name: name.to_string() });
        }
        let id = match u8::try_from(self.names.len()) {
            Ok(i) if usize::from(i) < MAX_NETWORKS => NetworkId(i),
            _ => {
                let name = name.to_string();
                return Err(NetworkError::TooMany { name, limit: MAX_NETWORKS });
            }
        };
        self.names.push(name.to_string());
        self.prefixes.extend(cidrs.iter().map(|c| (*c, id)));
        Ok(id)
    }

    pub fn build(self) -> NetworkTable {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (cidr, id) in &self.prefixes {
            let range = range(cidr);
            let entry = (range.first, range.last, *id);
            match range.family {
                Family::V4 => v4.push(entry),
                Family::V6 => v6.push(entry),
            }
        }
        NetworkTable {
            names: self.names,
            prefix_count: self.prefixes.len(),
            v4: Intervals::build(&v4),
            v6: Intervals::build(&v6),
            prefixes: self.prefixes,
        }
    }
}

/// Immutable, built once at config load. Lookup does not allocate.
#[derive(Clone, Debug)]
pub struct NetworkTable {
    names: Vec<String>,
    prefix_count: usize,
    v4: Intervals<u32>,
    v6: Intervals<u128>,
    /// The prefixes as configured, for people to read (the console); lookups use the intervals.
    prefixes: Vec<(IpNet, NetworkId)>,
}

impl NetworkTable {
    /// The union of all networks containing `ip`.
    pub fn lookup(&self, ip: IpAddr) -> NetMask {
        match ip {
            IpAddr::V4(a) => self.v4.find(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.v4.find(u32::from(v4)),
                None => self.v6.find(u128::from(a)),
            },
        }
    }

    /// The id of the network called `name`.
    pub fn id(&self, name: &str) -> Option<NetworkId> {
        let index = self.names.iter().position(|n| n == name)?;
        u8::try_from(index).ok().map(NetworkId)
    }

    /// The name of network `id`; empty for an id that is not from this table.
    pub fn name(&self, id: NetworkId) -> &str {
        self.names.get(usize::from(id.0)).map_or("", String::as_str)
    }

    /// All network names, in id order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Number of named networks.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of prefixes over all networks, as configured.
    pub fn prefix_count(&self) -> usize {
        self.prefix_count
    }

    /// The prefixes of network `id`, in the order the config lists them.
    pub fn prefixes(&self, id: NetworkId) -> impl Iterator<Item = &IpNet> {
        self.prefixes.iter().filter(move |(_, of)| *of == id).map(|(net, _)| net)
    }
}

/// An unsigned address integer: `u32` for IPv4, `u128` for IPv6.
trait Key: Copy + Ord + fmt::Debug {
    const WIDTH: u32;
    /// Truncates; callers only pass values that fit.
    fn from_wide(v: u128) -> Self;
    fn to_wide(self) -> u128;
}

impl Key for u32 {
    const WIDTH: u32 = 32;
    fn from_wide(v: u128) -> Self {
        v as u32
    }
    fn to_wide(self) -> u128 {
        u128::from(self)
    }
}

impl Key for u128 {
    const WIDTH: u32 = 128;
    fn from_wide(v: u128) -> Self {
        v
    }
    fn to_wide(self) -> u128 {
        self
    }
}

/// Elementary intervals of one address family. `starts[i]..starts[i+1]`
/// carries `masks[i]`; `starts[0]` is 0, so every key has an interval.
/// `dir[k]` is the interval holding the first key whose top bits are `k`,
/// which narrows the binary search to the intervals under one top-bits value.
#[derive(Clone, Debug)]
struct Intervals<K> {
    starts: Vec<K>,
    masks: Vec<NetMask>,
    dir: Vec<u32>,
    shift: u32,
}

impl<K: Key> Intervals<K> {
    fn build(ranges: &[(u128, u128, NetworkId)]) -> Self {
        let (starts, masks) = sweep(ranges, u128::MAX >> (128 - K::WIDTH));
        let starts: Vec<K> = starts.into_iter().map(K::from_wide).collect();
        // About one interval per directory slot; 2^16 slots at most (256 KiB).
        let dir_bits = (usize::BITS - starts.len().leading_zeros()).clamp(1, 16);
        let shift = K::WIDTH - dir_bits;
        let slots = 1usize << dir_bits;
        let mut dir = Vec::with_capacity(slots + 1);
        let mut i = 0;
        for k in 0..slots {
            let slot_start = (k as u128) << shift;
            while i + 1 < starts.len() && starts[i + 1].to_wide() <= slot_start {
                i += 1;
            }
            dir.push(i as u32);
        }
        dir.push((starts.len() - 1) as u32);
        Intervals { starts, masks, dir, shift }
    }

    #[inline]
    fn find(&self, key: K) -> NetMask {
        let slot = (key.to_wide() >> self.shift) as usize;
        let lo = self.dir[slot] as usize;
        let hi = self.dir[slot + 1] as usize;
        // The answer is in lo..=hi: starts[lo] <= key < starts[hi + 1].
        let above_lo = self.starts[lo + 1..=hi].partition_point(|s| *s <= key);
        self.masks[lo + above_lo]
    }
}

/// Cuts the ranges into elementary intervals: returns the start of each
/// interval and the networks covering it, merging neighbours with equal masks.
/// `max` is the highest key of the family: a range ending there never closes.
fn sweep(ranges: &[(u128, u128, NetworkId)], max: u128) -> (Vec<u128>, Vec<NetMask>) {
    // (position, +1 when a range opens / -1 when it closes, network)
    let mut events: Vec<(u128, i8, u8)> = Vec::with_capacity(ranges.len() * 2);
    for &(first, last, id) in ranges {
        events.push((first, 1, id.0));
        if last < max {
            events.push((last + 1, -1, id.0));
        }
    }
    events.sort_unstable();
    let mut counts = [0u32; MAX_NETWORKS];
    let mut mask = NetMask::EMPTY;
    let (mut starts, mut masks) = (vec![0u128], vec![NetMask::EMPTY]);
    let mut rest = events.as_slice();
    while let Some(&(pos, _, _)) = rest.first() {
        let same = rest.iter().take_while(|e| e.0 == pos).count();
        for &(_, delta, id) in &rest[..same] {
            mask = apply_event(&mut counts, mask, delta, id);
        }
        rest = &rest[same..];
        if pos == 0 {
            masks[0] = mask;
        } else if masks.last() != Some(&mask) {
            starts.push(pos);
            masks.push(mask);
        }
    }
    (starts, masks)
}

/// Counts how many ranges of each network are open, so a network stays in
/// the mask until its last overlapping range closes.
fn apply_event(counts: &mut [u32; MAX_NETWORKS], mask: NetMask, delta: i8, id: u8) -> NetMask {
    let slot = &mut counts[usize::from(id) % MAX_NETWORKS];
    let bit = 1u64 << (id % 64);
    if delta > 0 {
        *slot += 1;
        NetMask(mask.0 | bit)
    } else {
        *slot = slot.saturating_sub(1);
        if *slot == 0 {
            NetMask(mask.0 & !bit)
        } else {
            mask
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn cidr(s: &str) -> IpNet {
        parse_network(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(nets: &[(&str, &[&str])]) -> NetworkTable {
        let mut b = NetworkTableBuilder::new();
        for (name, prefixes) in nets {
            let cidrs: Vec<IpNet> = prefixes.iter().map(|p| cidr(p)).collect();
            b.add(name, &cidrs).unwrap();
        }
        b.build()
    }

    fn names(t: &NetworkTable, addr: &str) -> Vec<String> {
        let mask = t.lookup(ip(addr));
        let ids = (0..t.len() as u8).map(NetworkId).filter(|id| mask.contains(*id));
        ids.map(|id| t.name(id).to_string()).collect()
    }

    #[test]
    fn each_network_lists_its_own_prefixes_in_order() {
        let t = table(&[("internal", &["10.0.0.0/8", "2001:db8::/32"]), ("lab", &["192.0.2.0/24"])]);
        let of = |name: &str| -> Vec<String> { t.prefixes(t.id(name).unwrap()).map(|n| n.to_string()).collect() };
        assert_eq!(of("internal"), ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(of("lab"), ["192.0.2.0/24"]);
    }

    #[test]
    fn parses_v4_v6_and_bare_addresses() {
        assert_eq!(cidr("10.0.0.0/8").prefix_len(), 8);
        assert_eq!(cidr(" 2001:db8::/32 ").to_string(), "2001:db8::/32");
        assert_eq!(cidr("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
        assert_eq!(cidr("0.0.0.0/0").addr(), ip("0.0.0.0"));
        assert_eq!(cidr("10.0.0.0/08").prefix_len(), 8);
    }

    #[test]
    fn ipv4_mapped_prefixes_are_read_as_ipv4() {
        assert_eq!(cidr("::ffff:10.0.0.0/104"), cidr("10.0.0.0/8"));
        assert_eq!(cidr("::ffff:a00:0/104").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("::ffff:192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(cidr("::ffff:0.0.0.0/96").to_string(), "0.0.0.0/0");
        // Shorter than /96 is an IPv6 prefix; IPv4-compatible (::a.b.c.d) is not mapped.
        assert_eq!(cidr("::/80").to_string(), "::/80");
        assert_eq!(cidr("::10.0.0.0/104").to_string(), "::a00:0/104");
        let host = err("::ffff:10.0.0.1/104");
        assert!(host.to_string().contains("did you mean \"::ffff:10.0.0.0/104\"?"), "{host}");
    }

    fn err(s: &str) -> CidrError {
        parse_network(s).unwrap_err()
    }

    #[test]
    fn every_cidr_error_says_what_is_wrong() {
        assert_eq!(err("  ").kind, CidrErrorKind::Empty);
        assert!(err("").to_string().contains("empty network prefix"));
        assert_eq!(err("10.0.0/8").kind, CidrErrorKind::BadAddress("10.0.0".into()));
        assert!(err("10.0.0/8").to_string().starts_with(r#""10.0.0/8": "10.0.0" is not an IPv4 or IPv6 address"#));
        for bad in ["010.0.0.0/8", "10.0.0.0 /8", "fe80::1%eth0/64", "[::1]/128", "/8"] {
            assert!(matches!(err(bad).kind, CidrErrorKind::BadAddress(_)), "{bad}");
        }
        for bad in [
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "::/1234",
            "10.0.0.0/ 8",
            "10.0.0.0/008",
            "10.0.0.0/8/8",
        ] {
            assert!(matches!(err(bad).kind, CidrErrorKind::BadPrefix { .. }), "{bad}");
        }
        assert_eq!(
            err("10.0.0.0/x").to_string(),
            r#""10.0.0.0/x": prefix length "x" is not a whole number of bits from 0 to 32 for IPv4"#
        );
        assert_eq!(err("10.0.0.0/33").to_string(), r#""10.0.0.0/33": prefix length 33 is longer than 32 for IPv4"#);
        assert_eq!(err("::/129").kind, CidrErrorKind::PrefixTooLong { len: 129, max: 128 });
        assert!(err("::/999").to_string().contains("longer than 128 for IPv6"));
        let host = err("10.0.0.1/8");
        assert_eq!(host.kind, CidrErrorKind::HostBitsSet { canonical: cidr("10.0.0.0/8") });
        assert!(host.to_string().contains("did you mean \"10.0.0.0/8\"?"), "{host}");
        assert!(err("2001:db8::1/32").to_string().contains("\"2001:db8::/32\""));
        assert_eq!(err("::/129").input, "::/129");
    }

    #[test]
    fn contains_edges_and_mapped() {
        let has = |net: &str, addr: &str| contains(&cidr(net), ip(addr));
        assert!(has("10.1.0.0/16", "10.1.0.0") && has("10.1.0.0/16", "10.1.255.255"));
        assert!(!has("10.1.0.0/16", "10.2.0.0") && !has("10.1.0.0/16", "10.0.255.255"));
        assert!(has("10.1.0.0/16", "::ffff:10.1.2.3"));
        assert!(!has("10.1.0.0/16", "::a01:203"), "IPv4-compatible is not mapped");
        assert!(has("::ffff:10.0.0.0/104", "10.9.9.9"));
        assert!(has("0.0.0.0/0", "255.255.255.255"));
        assert!(!has("0.0.0.0/0", "2001:db8::1"));
        assert!(has("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert!(!has("::/0", "::ffff:10.1.2.3"), "a mapped client is an IPv4 client");
        // A network made in code (not parsed) may be mapped or carry host bits.
        let raw = IpNet::new(ip("::ffff:10.1.2.3"), 104).unwrap();
        assert!(contains(&raw, ip("10.200.0.1")) && !contains(&raw, ip("11.0.0.0")));
    }

    #[test]
    fn mapped_clients_and_mapped_prefixes_meet_ipv4_networks() {
        let t = table(&[("internal", &["10.0.0.0/8"]), ("lab", &["::ffff:192.168.0.0/112"])]);
        assert_eq!(names(&t, "::ffff:10.1.2.3"), ["internal"]);
        assert_eq!(names(&t, "10.1.2.3"), ["internal"]);
        assert_eq!(names(&t, "192.168.7.7"), ["lab"]);
        assert_eq!(names(&t, "::ffff:192.168.7.7"), ["lab"]);
        assert!(names(&t, "::a01:203").is_empty(), "IPv4-compatible is IPv6");
        assert!(names(&t, "192.169.0.0").is_empty());
        let mut b = NetworkTableBuilder::new();
        b.add("raw", &[IpNet::new(ip("::ffff:10.1.2.3"), 104).unwrap()]).unwrap();
        let t = b.build();
        assert_eq!(names(&t, "10.255.0.1"), ["raw"]);
        assert!(names(&t, "::ffff:a00:0").len() == 1 && names(&t, "11.0.0.0").is_empty());
    }

    #[test]
    fn overlapping_and_nested_prefixes_both_apply() {
        let t = table(&[("internal", &["10.0.0.0/8"]), ("lab", &["10.1.0.0/16", "10.1.2.0/24"])]);
        assert_eq!(names(&t, "10.1.2.3"), ["internal", "lab"]);
        assert_eq!(names(&t, "10.1.255.255"), ["internal", "lab"]);
        assert_eq!(names(&t, "10.2.0.0"), ["internal"]);
        assert!(names(&t, "11.0.0.0").is_empty());
        assert!(names(&t, "9.255.255.255").is_empty());
        assert_eq!(t.prefix_count(), 3);
        assert_eq!(t.id("lab"), Some(NetworkId(1)));
        assert_eq!(t.id("nope"), None);
        assert_eq!(t.name(NetworkId(9)), "");
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let t = table(&[
            ("v6", &["2001:db8::/32", "2001:db8:1::5"]),
            ("host", &["2001:db8:1::5/128"]),
            ("v4", &["192.0.2.0/24"]),
        ]);
        assert_eq!(names(&t, "2001:db8:1::5"), ["v6", "host"]);
        assert_eq!(names(&t, "2001:db8:1::6"), ["v6"]);
        assert!(names(&t, "2001:db9::").is_empty());
        assert_eq!(names(&t, "::ffff:192.0.2.9"), ["v4"]);
        assert!(names(&t, "::192.0.2.9").is_empty());
    }

    #[test]
    fn slash_zero_and_full_length_prefixes() {
        let t = table(&[("all4", &["0.0.0.0/0"]), ("all6", &["::/0"]), ("one", &["1.2.3.4/32"])]);
        assert_eq!(names(&t, "0.0.0.0"), ["all4"]);
        assert_eq!(names(&t, "255.255.255.255"), ["all4"]);
        assert_eq!(names(&t, "1.2.3.4"), ["all4", "one"]);
        assert_eq!(names(&t, "1.2.3.5"), ["all4"]);
        assert_eq!(names(&t, "::"), ["all6"]);
        assert_eq!(names(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ["all6"]);
        assert_eq!(names(&t, "::ffff:1.2.3.4"), ["all4", "one"]);
    }

    #[test]
    fn adjacent_ranges_do_not_bleed() {
        let t = table(&[("a", &["10.0.0.0/25"]), ("b", &["10.0.0.128/25"]), ("c", &["10.0.1.0/24"])]);
        assert_eq!(names(&t, "10.0.0.127"), ["a"]);
        assert_eq!(names(&t, "10.0.0.128"), ["b"]);
        assert_eq!(names(&t, "10.0.0.255"), ["b"]);
        assert_eq!(names(&t, "10.0.1.0"), ["c"]);
        assert!(names(&t, "10.0.2.0").is_empty());
    }

    #[test]
    fn empty_table_matches_nothing() {
        let t = NetworkTableBuilder::new().build();
        assert!(t.is_empty() && t.prefix_count() == 0);
        assert_eq!(t.len(), 0);
        assert!(t.lookup(ip("10.0.0.1")).is_empty());
        assert!(t.lookup(ip("::1")).is_empty());
        let t = table(&[("none", &[])]);
        assert!(t.lookup(ip("10.0.0.1")).is_empty());
    }

    #[test]
    fn builder_refuses_duplicates_and_a_65th_network() {
        let mut b = NetworkTableBuilder::new();
        b.add("a", &[]).unwrap();
        let dup = b.add("a", &[]).unwrap_err();
        assert_eq!(dup, NetworkError::Duplicate { name: "a".into() });
        assert!(dup.to_string().contains("defined twice"));
        for i in 1..64 {
            assert_eq!(b.add(&format!("n{i}"), &[]), Ok(NetworkId(i as u8)));
        }
        let many = b.add("last", &[]).unwrap_err();
        assert_eq!(many, NetworkError::TooMany { name: "last".into(), limit: 64 });
        assert_eq!(b.build().len(), 64);
    }

    #[test]
    fn netmask_bits() {
        let m = NetMask::EMPTY.with(NetworkId(0)).with(NetworkId(63));
        assert!(m.contains(NetworkId(0)) && m.contains(NetworkId(63)));
        assert!(!m.contains(NetworkId(1)) && !m.contains(NetworkId(64)));
        assert_eq!(NetMask::EMPTY.with(NetworkId(200)), NetMask::EMPTY);
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn wide(&mut self) -> u128 {
            (u128::from(self.next()) << 64) | u128::from(self.next())
        }
    }

    /// Addresses clustered in a few /8s (v4) and /16s (v6) so prefixes overlap.
    fn random_addr(rng: &mut XorShift) -> IpAddr {
        match rng.next() % 3 {
            0 => IpAddr::V4(Ipv4Addr::from((rng.next() as u32 & 0x03ff_ffff) | 0x0a00_0000)),
            1 => IpAddr::V6(Ipv6Addr::from((rng.wide() >> 4) | (0x2001u128 << 112))),
            _ => IpAddr::V6(Ipv4Addr::from(rng.next() as u32 | 0x0a00_0000).to_ipv6_mapped()),
        }
    }

    /// A prefix as code might make it: host bits set, IPv4-mapped or not.
    fn random_cidr(rng: &mut XorShift) -> IpNet {
        let addr = random_addr(rng);
        let len = (rng.next() % (u64::from(max_len(addr)) + 1)) as u8;
        IpNet::new(addr, len).unwrap()
    }

    /// The matching rule spelled out apart from the code under test: an IPv4
    /// client (mapped or not) is in IPv4 prefixes and in mapped ones of /96
    /// or longer; an IPv6 client only in the other IPv6 prefixes.
    fn naive_contains(net: &IpNet, probe: IpAddr) -> bool {
        let as_v6 = match probe {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        let probe_v4 = as_v6.to_ipv4_mapped();
        match net.trunc() {
            IpNet::V4(n) => probe_v4.is_some_and(|a| n.contains(&a)),
            IpNet::V6(n) => {
                let net_is_v4 = n.prefix_len() >= 96 && n.addr().to_ipv4_mapped().is_some();
                probe_v4.is_some() == net_is_v4 && n.contains(&as_v6)
            }
        }
    }

    #[test]
    fn printed_networks_read_back_as_themselves() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let net = ipv4_mapped_as_ipv4(random_cidr(&mut rng).trunc());
            assert_eq!(parse_network(&net.to_string()), Ok(net), "{net}");
        }
    }

    /// An address at or just outside one end of `c`, where off-by-ones live.
    fn edge_of(c: &IpNet, pick: u64) -> IpAddr {
        let r = range(c);
        let key = match pick % 4 {
            0 => r.first,
            1 => r.last,
            2 => r.first.wrapping_sub(1),
            _ => r.last.wrapping_add(1),
        };
        match r.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(key as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(key)),
        }
    }

    #[test]
    fn random_cross_check_against_linear_scan() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..4 {
            let count = [5, 50, 500, 3000][round];
            let mut builder = NetworkTableBuilder::new();
            let mut all: Vec<(IpNet, NetworkId)> = Vec::new();
            let mut per_net: Vec<Vec<IpNet>> = vec![Vec::new(); 64];
            for _ in 0..count {
                let c = random_cidr(&mut rng);
                per_net[(rng.next() % 64) as usize].push(c);
            }
            for (i, cidrs) in per_net.iter().enumerate() {
                let id = builder.add(&format!("n{i}"), cidrs).unwrap();
                all.extend(cidrs.iter().map(|c| (*c, id)));
            }
            let t = builder.build();
            for n in 0..5000 {
                let probe = if n % 2 == 0 {
                    random_addr(&mut rng)
                } else {
                    edge_of(&all[(rng.next() as usize) % all.len()].0, rng.next())
                };
                let naive =
                    all.iter().filter(|(c, _)| naive_contains(c, probe)).fold(NetMask::EMPTY, |m, (_, id)| m.with(*id));
                assert_eq!(t.lookup(probe), naive, "{probe} with {count} prefixes");
                let direct =
                    all.iter().filter(|(c, _)| contains(c, probe)).fold(NetMask::EMPTY, |m, (_, id)| m.with(*id));
                assert_eq!(direct, naive, "contains() of {probe}");
            }
        }
    }
}
