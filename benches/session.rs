//! The per-request cost of a session: finding the cookie in the Cookie
//! header, verifying its HMAC and decoding it (the goal is ≤ 1 µs), and the
//! cost of signing one on login or refresh; and the signed identity for
//! apps: a token from the cache (every request) against signing one (a miss).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::identity::{cookie::*, session::*};

const NOW: u64 = 1_700_000_000;
const HOUR: u64 = 3600;

fn typical_session() -> Session {
    Session::new("alice.example@corp.example.com", "wiki", SessionLevel::BothFactors, NOW, 8 * HOUR)
}

fn session_benches(c: &mut Criterion) {
    let keys = KeyRing::generate().rotate();
    let session = typical_session();
    let value = session.to_cookie(&keys);
    c.bench_function("session/verify", |b| {
        b.iter(|| Session::from_cookie(black_box(&value), &keys, "wiki", NOW + 60, HOUR))
    });
    c.bench_function("session/sign", |b| b.iter(|| black_box(&session).to_cookie(&keys)));
}

fn identity_benches(c: &mut Criterion) {
    use portcullis::identity::jwt::{IdentityKeys, Request, TokenCache};
    let keys = IdentityKeys::generate();
    let session = typical_session().proved(Factors::PASSWORD.with(Factors::TOTP));
    let groups = vec!["finance".to_string(), "staff".to_string()];
    let req = Request {
        session: &session,
        app: "wiki",
        issuer: "portcullis",
        email: Some("alice.example@corp.example.com"),
        groups: &groups,
        lifetime_secs: 300,
        config_tag: 1,
    };
    let cache = TokenCache::default();
    cache.token(&keys, &req, NOW);
    c.bench_function("identity/token, cached", |b| b.iter(|| cache.token(&keys, black_box(&req), NOW + 1)));
    let fresh = TokenCache::with_capacity(1);
    let mut now = NOW;
    c.bench_function("identity/token, signed (miss)", |b| {
        b.iter(|| {
            now += 600;
            fresh.token(&keys, black_box(&req), now)
        })
    });
}

/// The lookup as it was before issue 20 (split on ';', trim, find '='),
/// kept here so every run measures the hand-written one against it.
fn find_cookie_before<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    cookie_headers.flat_map(|header| header.split(|&b| b == b';')).find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        if pair[..eq].trim_ascii() != name.as_bytes() {
            return None;
        }
        std::str::from_utf8(pair[eq + 1..].trim_ascii()).ok()
    })
}

/// Finding the session cookie in a browser's Cookie header of five cookies,
/// with ours last and ours first: the hand-written lookup of the hot path,
/// the one before it, and the `cookie` crate's parser (what the portal uses).
fn cookie_benches(c: &mut Criterion) {
    let value = typical_session().to_cookie(&KeyRing::generate());
    let others = "_ga=GA1.2.123456789.1700000000; theme=dark; lang=ja; csrftoken=abcdef0123456789";
    for (place, header) in [
        ("last", format!("{others}; {SESSION_COOKIE}={value}")),
        ("first", format!("{SESSION_COOKIE}={value}; {others}")),
    ] {
        let headers = || std::iter::once(black_box(header.as_bytes()));
        assert_eq!(find_cookie(headers(), SESSION_COOKIE), Some(value.as_str()));
        assert_eq!(find_cookie_before(headers(), SESSION_COOKIE), Some(value.as_str()));
        assert_eq!(request_cookie(headers(), SESSION_COOKIE).as_deref(), Some(value.as_str()));
        c.bench_function(&format!("cookie/find, ours {place}"), |b| b.iter(|| find_cookie(headers(), SESSION_COOKIE)));
        c.bench_function(&format!("cookie/find before issue 20, ours {place}"), |b| {
            b.iter(|| find_cookie_before(headers(), SESSION_COOKIE))
        });
        c.bench_function(&format!("cookie/cookie crate, ours {place}"), |b| {
            b.iter(|| request_cookies(headers()).find(|c| c.name() == SESSION_COOKIE).map(|c| c.value().len()))
        });
    }
}

criterion_group!(benches, session_benches, cookie_benches, identity_benches);
criterion_main!(benches);
