//! Cookies (`identity::cookie`) and the session token inside one
//! (`identity::session`): the Cookie header and every value in it come from
//! the client. Invariants: nothing panics; a value verifies only with a valid
//! MAC (never for bytes the fuzzer made up); what `sign` makes, `verify` gives
//! back (unless longer than a cookie may be); a session that decodes encodes
//! to the same bytes (an old format: to bytes that decode to the same session).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::identity::cookie::{find_cookie, CookieError, KeyRing, MAX_VALUE_LEN};
use portcullis::identity::session::Session;

const RING: &str = r#"{"current":{"id":2,"secret":"0101010101010101010101010101010101010101010101010101010101010101"},
"previous":{"id":1,"secret":"0202020202020202020202020202020202020202020202020202020202020202"}}"#;

fuzz_target!(|data: &[u8]| {
    let keys = KeyRing::from_json(RING).expect("the fixed ring parses");
    // As a Cookie header.
    for name in ["__Host-portcullis", "a"] {
        if let Some(v) = find_cookie(std::iter::once(data), name) {
            assert!(!v.contains(';'), "{v:?}");
            let _ = Session::from_cookie(v, &keys, "wiki", 1_000, 600);
        }
    }
    // As a signed value: made-up bytes never verify.
    if let Ok(value) = std::str::from_utf8(data) {
        assert!(keys.verify("session", value).is_err(), "a forged value verified: {value:?}");
        let _ = Session::from_cookie(value, &keys, "wiki", 1_000, 600);
    }
    // As a payload: signing round-trips, and the session decoder is total.
    let signed = keys.sign("session", data);
    let verified = keys.verify("session", &signed);
    if signed.len() <= MAX_VALUE_LEN {
        assert_eq!(verified.ok().as_deref(), Some(data), "sign then verify");
    } else {
        assert_eq!(verified, Err(CookieError::TooLong), "longer than a browser keeps: refused unread");
    }
    assert!(keys.verify("pass", &signed).is_err(), "a value for one purpose never verifies for another");
    if let Ok(session) = Session::decode(data) {
        // The current format round-trips byte for byte; a version-1 cookie
        // (before the factors were recorded) is written in the current one,
        // which reads back as the same session.
        let encoded = session.encode();
        if data.first() == encoded.first() {
            assert_eq!(encoded, data, "decode then encode");
        } else {
            assert_eq!(Session::decode(&encoded).ok().as_ref(), Some(&session), "an old format re-encoded");
        }
        let _ = Session::from_cookie(&signed, &keys, &session.app, session.issued_at, 600);
    }
});
