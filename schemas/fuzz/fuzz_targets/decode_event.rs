//! Fuzzes the strict event decoder: any bytes must give an event or a typed error, never a
//! panic; any event it accepts must re-encode and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = switchboard_schemas::decode(data) {
        let again = switchboard_schemas::decode(&switchboard_schemas::encode(&event))
            .expect("an accepted event re-decodes");
        assert_eq!(again, event);
    }
});
