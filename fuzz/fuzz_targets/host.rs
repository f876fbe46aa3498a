//! Host parsing (`config::hosts`): the Host header and the authority come
//! from the client. Invariants: nothing panics; a host the table finds is a
//! configured one (its exact name, or one label under a wildcard), in any case.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::config::hosts::{strip_port, HostTable};

fuzz_target!(|data: &[u8]| {
    let Ok(authority) = std::str::from_utf8(data) else { return };
    let mut table = HostTable::default();
    table.add("wiki.example", 0).unwrap();
    table.add("*.apps.example", 1).unwrap();
    let Some(host) = strip_port(authority) else { return };
    assert!(authority.contains(host), "{host:?} from {authority:?}");
    if let Some(app) = table.lookup(host) {
        let h = host.to_ascii_lowercase();
        let ok = match app {
            0 => h == "wiki.example",
            _ => h.strip_suffix(".apps.example").is_some_and(|l| !l.is_empty() && !l.contains('.')),
        };
        assert!(ok, "{host:?} matched app {app}");
    }
    let _ = table.matches(host);
    // Patterns from a config file go through the same table.
    let _ = HostTable::default().add(authority, 0);
});
