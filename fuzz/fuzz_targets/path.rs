//! The request-target canonicaliser (`proxy::path`): any bytes a client puts
//! in the request line. Invariants: the canonical form is canonical (a second
//! pass leaves it as it is), starts with `/`, has no dot segment, no `\`, no
//! `%2F`/`%5C`, and no control byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::proxy::path::{canonicalize, is_portal_path};

fuzz_target!(|data: &[u8]| {
    let Ok(canonical) = canonicalize(data) else { return };
    let again = canonicalize(canonical.as_bytes()).expect("a canonical path canonicalises");
    assert_eq!(again, canonical, "canonicalising twice changes nothing");
    assert!(canonical.starts_with('/'), "{canonical:?}");
    assert!(!canonical.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\'), "{canonical:?}");
    for segment in canonical.split('/') {
        assert!(segment != "." && segment != "..", "dot segment left in {canonical:?}");
    }
    let lower = canonical.to_ascii_lowercase();
    assert!(!lower.contains("%2f") && !lower.contains("%5c"), "{canonical:?}");
    // Whatever reaches the portal check is judged on the canonical form only.
    let _ = is_portal_path(&canonical);
});
