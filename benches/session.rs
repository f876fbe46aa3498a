//! The per-request cost of a session: finding the cookie in the Cookie
//! header, verifying its HMAC and decoding it (the goal is ≤ 1 µs), and the
//! cost of signing one on login or refresh.

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

fn cookie_benches(c: &mut Criterion) {
    let value = typical_session().to_cookie(&KeyRing::generate());
    let header = format!(
        "_ga=GA1.2.123456789.1700000000; theme=dark; lang=ja; csrftoken=abcdef0123456789; {SESSION_COOKIE}={value}"
    );
    c.bench_function("cookie/find", |b| {
        b.iter(|| find_cookie(std::iter::once(black_box(header.as_bytes())), SESSION_COOKIE))
    });
}

criterion_group!(benches, session_benches, cookie_benches);
criterion_main!(benches);
