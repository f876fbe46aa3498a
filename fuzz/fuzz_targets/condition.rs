//! The condition language (`policy::expr`): `allow`, `otp_skip` and friends
//! in the config file. Invariants: nothing panics (deep nesting included);
//! an error names a place inside the source; a compiled condition compiles
//! again from the source it keeps, to one that decides every fact the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::policy::expr::{Condition, Facts, GroupMask, GroupTable};
use portcullis::policy::ip::{parse_network, NetMask, NetworkTable, NetworkTableBuilder};

fn networks() -> NetworkTable {
    let mut b = NetworkTableBuilder::new();
    let lan = parse_network("10.0.0.0/8").unwrap();
    b.add("internal", &[lan]).unwrap();
    b.add("lab", &[parse_network("192.168.0.0/16").unwrap()]).unwrap();
    b.build()
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let networks = networks();
    let Ok(c) = Condition::compile(src, &networks, &mut GroupTable::default()) else { return };
    // A fresh table numbers the groups in the same order of appearance.
    let again = Condition::compile(c.source(), &networks, &mut GroupTable::default())
        .expect("a condition compiles from its own source");
    for bits in 0u8..32 {
        let facts = Facts {
            networks: NetMask(u64::from(bits & 3)),
            entrance_pass: bits & 4 != 0,
            device_cert: bits & 8 != 0,
            invitation: bits & 16 != 0,
            groups: GroupMask(u64::from(bits)),
            ..Facts::default()
        };
        assert_eq!(c.eval(&facts), again.eval(&facts), "{src:?} at {bits:05b}");
    }
});
