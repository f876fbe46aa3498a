//! The post-login return target (`rd`, `portal::redirect`): a query value
//! anyone can craft. Invariants: what validates is a same-origin path that
//! starts with exactly one `/` (also after one more percent-decoding, as a
//! backend or browser might do), never a portal page but the admin console's
//! (`/.portcullis/admin` or below it, in canonical form), only printable ASCII;
//! or an `https` URL on a configured app host, on the listener's port when
//! checked for one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::portal::redirect::{validate_return, validate_return_here, ReturnTo};

const CURRENT: &str = "wiki.example";

fn is_app_host(h: &str) -> bool {
    matches!(h, "wiki.example" | "mail.example")
}

fn check_path(p: &str) {
    assert!(p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\"), "{p:?}");
    assert!(p.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\'), "{p:?}");
    // No portal page but the admin console's, and that only in the proxy's
    // own spelling (no dot segments or encoded dots to resolve elsewhere).
    if p.starts_with("/.portcullis/") {
        let path = p.split(['?', '#']).next().unwrap_or_default();
        assert!(path.starts_with("/.portcullis/admin/") || path == "/.portcullis/admin", "{p:?}");
        let canonical = portcullis::proxy::path::canonicalize(path.as_bytes());
        assert!(matches!(&canonical, Ok(c) if c == path), "{p:?} is not in canonical form");
    }
    let decoded = percent_decode(p);
    assert!(!decoded.starts_with(b"//") && !decoded.starts_with(b"/\\"), "{p:?} decodes to another origin");
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn check(r: &ReturnTo, port: Option<u16>) {
    match r {
        ReturnTo::Path(p) => check_path(p),
        ReturnTo::Url { host, path } => {
            check_path(path);
            let (bare, given) = host.split_once(':').map_or((host.as_str(), None), |(h, p)| (h, Some(p)));
            assert!(is_app_host(bare), "{host:?} is not an app host");
            if let Some(port) = port {
                assert_eq!(given.and_then(|p| p.parse::<u16>().ok()), Some(port), "{host:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else { return };
    if let Some(r) = validate_return(rd, CURRENT, &is_app_host) {
        check(&r, None);
    }
    if let Some(r) = validate_return_here(rd, CURRENT, 8443, &is_app_host) {
        check(&r, Some(8443));
    }
});
