//! The per-request cost of reading a request once at the edge: the path
//! canonicaliser (on a path that is already canonical, the common case, and
//! on one that is not), the framing and size checks, and the header hygiene
//! toward the upstream, on a typical browser request.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use pingora::http::RequestHeader;
use portcullis::config::Limits;
use portcullis::proxy::{framing, headers, path};

fn browser_request() -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/wiki/Project_Plan-2026/edit?section=3", None).unwrap();
    for (n, v) in [
        ("host", "wiki.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
        ),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("accept-language", "ja,en-US;q=0.9,en;q=0.8"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("cookie", "_ga=GA1.2.1; theme=dark; __Host-portcullis-session=abcdef0123456789"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-user", "?1"),
        ("upgrade-insecure-requests", "1"),
        ("referer", "https://wiki.example.com/wiki/Project_Plan-2026"),
    ] {
        r.append_header(n, v).unwrap();
    }
    r
}

fn edge_benches(c: &mut Criterion) {
    c.bench_function("path/canonical", |b| {
        b.iter(|| path::canonicalize(black_box(b"/wiki/Project_Plan-2026/edit")).is_ok())
    });
    c.bench_function("path/needs_work", |b| {
        b.iter(|| path::canonicalize(black_box(b"/wiki/./Project%5FPlan/../%7Euser//edit")).is_ok())
    });
    let req = browser_request();
    let limits = Limits::default();
    c.bench_function("framing/check", |b| b.iter(|| framing::check(black_box(&req), || None, &limits).is_ok()));
    c.bench_function("headers/clean_request", |b| {
        b.iter_batched(
            browser_request,
            |mut r| headers::clean_request(&mut r, false, None).is_ok(),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, edge_benches);
criterion_main!(benches);
