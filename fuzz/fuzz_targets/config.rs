//! The config file (`config`): TOML, compiled to the runtime form with every
//! error located. Invariants: nothing panics; an error names a line and
//! column inside the text (the users file named is missing, so a config that
//! gets that far still fails, which is fine: it is the parser under test).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::env::temp_dir().join(format!("portcullis-fuzz-config-{}.toml", std::process::id()));
    std::fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes())).expect("temp file");
    if let Err(errors) = portcullis::config::load(&path) {
        let lines = text.split('\n').count();
        for e in &errors.0 {
            assert!(e.line <= lines.max(1), "line {} of {lines}: {}", e.line, e.message);
        }
    }
});
