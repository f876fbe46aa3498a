//! The whole per-request decision, as the proxy makes it: client IP (behind a
//! trusted proxy), app by Host, network lookup, the compiled policy. Prints ns
//! per request with 10, 1 000 and 100 000 configured prefixes; then with
//! time, weekday, date, group and pass-age terms in a zone with daylight
//! saving, the clock read and the local time worked out per request.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::identity::client_ip::client_ip;
use portcullis::policy::decide::{decide, Level, SessionFacts};
use portcullis::policy::expr::Facts;
use std::fmt::Write;
use std::net::IpAddr;

const PLAIN_POLICY: &str = "[policy_group.staff]\nallow = \"always\"\notp_skip = \"internal_ip and not device_cert\"\n";

/// A policy with every new term: Berlin time, office hours on weekdays
/// outside the holidays or on call; the OTP skipped inside or with a pass
/// younger than 30 days.
const TIMED_POLICY: &str = "[policy]\ntime_zone = \"Europe/Berlin\"\n[policy_group.staff]\n\
     allow = \"weekday('mon-fri') and time('07:00-20:00') and not date('2026-12-24..2027-01-03') or group('oncall')\"\n\
     otp_skip = \"internal_ip or entrance_pass_age < 30d\"\n";

/// Writes a config with `n` prefixes in `internal` (plus certificates and users) and loads it.
fn config(dir: &std::path::Path, n: usize) -> portcullis::config::Config {
    config_with(dir, n, PLAIN_POLICY)
}

fn config_with(dir: &std::path::Path, n: usize, policy: &str) -> portcullis::config::Config {
    portcullis::tls::install_crypto_provider();
    let certs = portcullis::tls::make_dev_certs(&dir.join("certs"), &["localhost".into()]).unwrap();
    let mut cidrs = String::new();
    let mut x: u32 = 0x9e37_79b9;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if i % 4 == 0 {
            let _ = write!(cidrs, "\"2001:db8:{:x}:{:x}::/64\",", x >> 16, x & 0xffff);
        } else {
            let len = 16 + (x % 17);
            let net = (x >> (32 - len)) << (32 - len);
            let _ = write!(cidrs, "\"{}/{len}\",", std::net::Ipv4Addr::from(net));
        }
    }
    std::fs::write(dir.join("users.toml"), "[[user]]\nusername = \"alice\"\npassword = \"$argon2id$v=19$m=19456,t=2,p=1$ew2XREgJJ/KSvmyjUGd9lg$0L4bmN+TdB6ufRDxKH+vUdnmjA0dGQP95mMedCgwR78\"\npolicy_group = \"staff\"\ngroups = [\"oncall\"]\n").unwrap();
    let text = format!(
        "[server]\nhttps = \"127.0.0.1:1\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntrusted_proxies = [\"10.9.9.9/32\"]\n\
         [networks]\ninternal = [{cidrs}]\n[users]\nfile = \"{}\"\n{policy}\
         [[app]]\nname = \"wiki\"\nhosts = [\"wiki.example.com\", \"*.apps.example.com\"]\nupstream = \"127.0.0.1:3000\"\npolicy_groups = [\"staff\"]\nbypass = \"never\"\n",
        certs.server_cert.display(),
        certs.server_key.display(),
        dir.join("users.toml").display()
    );
    std::fs::write(dir.join("c.toml"), text).unwrap();
    portcullis::config::load(&dir.join("c.toml")).unwrap()
}

fn whole_decision(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for n in [10, 1_000, 100_000] {
        let cfg = config(dir.path(), n);
        let peer: IpAddr = "10.9.9.9".parse().unwrap();
        let xff: &[&[u8]] = &[b"198.51.100.23"];
        let session = SessionFacts { group: 0, level: Level::FirstFactor };
        c.bench_function(&format!("decision/whole request/{n} prefixes"), |b| {
            b.iter(|| {
                let ip = client_ip(black_box(peer), xff.iter().copied(), &cfg.server.trusted_proxies);
                let app = cfg.hosts.lookup(black_box("Wiki.Example.com")).unwrap();
                let facts = Facts { networks: cfg.networks.lookup(ip), ..Facts::default() };
                decide(cfg.app(app), &cfg.groups, &facts, Some(black_box(&session)))
            })
        });
    }
}

/// The same with an entrance pass to verify (issue 18's goal: ≤ 1 µs): the
/// pass cookie's HMAC and decoding, its lookup among 10 000 revoked ids, and
/// whose pass it is, then the decision.
fn whole_decision_with_pass(c: &mut Criterion) {
    use portcullis::identity::{cookie::KeyRing, pass::Pass};
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 10);
    let now = 1_700_000_000;
    let keys = KeyRing::generate().rotate();
    let value = Pass::new("alice", now, 180 * 86_400).to_cookie(&keys);
    let mut revoked = portcullis::store::RevokedSessions::default();
    for i in 0..10_000 {
        revoked.insert(format!("pass{i:022}"), u64::MAX);
    }
    let peer: IpAddr = "10.9.9.9".parse().unwrap();
    let xff: &[&[u8]] = &[b"198.51.100.23"];
    let session = SessionFacts { group: 0, level: Level::FirstFactor };
    c.bench_function("decision/whole request with an entrance pass/10 prefixes", |b| {
        b.iter(|| {
            let ip = client_ip(black_box(peer), xff.iter().copied(), &cfg.server.trusted_proxies);
            let app = cfg.hosts.lookup(black_box("Wiki.Example.com")).unwrap();
            let pass = Pass::from_cookie(black_box(&value), &keys, now + 60, |id| revoked.contains(id));
            let entrance_pass = pass.is_ok_and(|p| p.user == "alice");
            let facts = Facts { networks: cfg.networks.lookup(ip), entrance_pass, ..Facts::default() };
            decide(cfg.app(app), &cfg.groups, &facts, Some(black_box(&session)))
        })
    });
}

/// The whole decision with time, weekday, date, group and pass-age terms
/// (issue 24's goal: ≤ 300 ns): the system clock read, the local time in
/// Europe/Berlin (the zone's offset cached per second), the user's group
/// bits, the (already verified) pass's issue time, then the decision.
fn whole_decision_with_time_terms(c: &mut Criterion) {
    use portcullis::clock::{Clock, SystemClock};
    use portcullis::policy::expr::GroupMask;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), 10, TIMED_POLICY);
    let peer: IpAddr = "10.9.9.9".parse().unwrap();
    let xff: &[&[u8]] = &[b"198.51.100.23"];
    let session = SessionFacts { group: 0, level: Level::FirstFactor };
    let groups = cfg.group_mask("alice");
    assert_ne!(groups, GroupMask::EMPTY);
    let clock = SystemClock;
    let issued = clock.now() - 3 * 86_400;
    c.bench_function("decision/whole request with time and pass-age terms/10 prefixes", |b| {
        b.iter(|| {
            let ip = client_ip(black_box(peer), xff.iter().copied(), &cfg.server.trusted_proxies);
            let app = cfg.hosts.lookup(black_box("Wiki.Example.com")).unwrap();
            let facts = Facts { networks: cfg.networks.lookup(ip), groups: black_box(groups), ..Facts::default() }
                .with_pass(Some(black_box(issued)));
            let facts = cfg.facts_at(facts, clock.now());
            decide(cfg.app(app), &cfg.groups, &facts, Some(black_box(&session)))
        })
    });
    // The local time alone: a new second each time (the cache always misses).
    let mut t = 1_800_000_000u64;
    c.bench_function("decision/local time, uncached second", |b| {
        b.iter(|| {
            t += 1;
            cfg.policy.zone.local(black_box(t))
        })
    });
}

criterion_group!(benches, whole_decision, whole_decision_with_pass, whole_decision_with_time_terms);
criterion_main!(benches);
