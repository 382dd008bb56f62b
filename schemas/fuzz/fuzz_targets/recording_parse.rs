//! Fuzzes the recording line parser: any line gives a record or an error, never a panic; a
//! parsed record, formatted again, parses back to the same record (so recording a replay
//! reproduces it byte for byte); its value goes through the strict decoder as the replay does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_sources::recording::{format_line, parse_line};

fuzz_target!(|data: &[u8]| {
    // Recordings are read line by line as UTF-8 (`BufRead::lines`), blank lines skipped.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(record) = parse_line(line) else {
            continue;
        };
        let formatted = format_line(&record);
        let again = parse_line(&formatted).expect("a formatted record parses");
        assert_eq!(
            again, record,
            "round trip changed the record; formatted as {formatted}"
        );
        let _ = switchboard_schemas::decode(&record.value);
    }
});
