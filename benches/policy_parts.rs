//! Hot-path parts of the policy engine: network lookup by client address and
//! condition evaluation. Deterministic inputs (xorshift), so runs compare.
//!
//! Lookups cycle through 1024 pre-generated addresses: half inside a random
//! configured prefix, half uniformly random, IPv4 and IPv6 mixed.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portcullis::policy::expr::{Condition, Facts};
use portcullis::policy::ip::{IpNet, NetMask, NetworkId, NetworkTable, NetworkTableBuilder};

const NETWORKS: usize = 16;

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

fn random_addr(rng: &mut XorShift) -> IpAddr {
    if rng.next() & 1 == 0 {
        IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(rng.wide()))
    }
}

/// A random prefix with the host bits cleared: IPv4 /8–/32, IPv6 /16–/128.
fn random_cidr(rng: &mut XorShift) -> IpNet {
    let (addr, len) = match random_addr(rng) {
        IpAddr::V4(a) => {
            let len = 8 + (rng.next() % 25) as u32;
            let bits = u32::from(a) & (u32::MAX << (32 - len));
            (IpAddr::V4(bits.into()), len)
        }
        IpAddr::V6(a) => {
            let len = 16 + (rng.next() % 113) as u32;
            let bits = u128::from(a) & (u128::MAX << (128 - len));
            (IpAddr::V6(bits.into()), len)
        }
    };
    IpNet::new(addr, len as u8).expect("a prefix length within the address")
}

/// A table of `prefixes` random prefixes spread over 16 networks, and 1024
/// addresses to look up.
fn table_and_probes(prefixes: usize) -> (NetworkTable, Vec<IpAddr>) {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ prefixes as u64);
    let cidrs: Vec<IpNet> = (0..prefixes).map(|_| random_cidr(&mut rng)).collect();
    let mut builder = NetworkTableBuilder::new();
    for n in 0..NETWORKS {
        let mine: Vec<IpNet> = cidrs.iter().skip(n).step_by(NETWORKS).copied().collect();
        builder.add(&format!("net{n}"), &mine).expect("16 distinct networks");
    }
    let probes = (0..1024)
        .map(|i| match i % 2 {
            0 => inside(&cidrs[(rng.next() as usize) % cidrs.len()], &mut rng),
            _ => random_addr(&mut rng),
        })
        .collect();
    (builder.build(), probes)
}

/// A random address inside `cidr`.
fn inside(cidr: &IpNet, rng: &mut XorShift) -> IpAddr {
    let host = |width: u32| u128::MAX.checked_shr(128 - width + u32::from(cidr.prefix_len()));
    match cidr.addr() {
        IpAddr::V4(a) => {
            let mask = host(32).unwrap_or(0) as u32;
            IpAddr::V4((u32::from(a) | (rng.next() as u32 & mask)).into())
        }
        IpAddr::V6(a) => {
            let mask = host(128).unwrap_or(0);
            IpAddr::V6((u128::from(a) | (rng.wide() & mask)).into())
        }
    }
}

fn bench_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for prefixes in [10, 1_000, 100_000] {
        let (table, probes) = table_and_probes(prefixes);
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(prefixes), |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                table.lookup(black_box(probes[i]))
            })
        });
    }
    group.finish();
}

fn bench_eval(c: &mut Criterion) {
    let mut builder = NetworkTableBuilder::new();
    builder.add("internal", &[]).expect("fresh builder");
    builder.add("lab", &[]).expect("fresh builder");
    let table = builder.build();
    let src = r#"internal_ip and not device_cert or (network("lab") and entrance_pass)"#;
    let condition = Condition::compile(src, &table, &mut Default::default()).expect("valid condition");
    let facts: Vec<Facts> = (0..16u64)
        .map(|i| Facts {
            networks: NetMask(i & 3),
            entrance_pass: i & 4 != 0,
            device_cert: i & 8 != 0,
            ..Facts::default()
        })
        .collect();
    assert!(facts[1].networks.contains(NetworkId(0)));
    let mut i = 0;
    c.bench_function("eval", |b| {
        b.iter(|| {
            i = (i + 1) & 15;
            condition.eval(black_box(&facts[i]))
        })
    });
}

criterion_group!(benches, bench_lookup, bench_eval);
criterion_main!(benches);
