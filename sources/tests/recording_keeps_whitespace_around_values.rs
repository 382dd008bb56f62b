//! Regression (found with the `recording_parse` fuzz target's round-trip check): a recorded value
//! holding a JSON object with whitespace around it (` {}`, `{}\n`) used to be written back as the
//! bare object, so a replay handed out other bytes than were recorded. Such a value is now kept
//! as a JSON string, and every record read from a recording formats back to the same record.

use std::path::Path;
use switchboard_sources::recording::{format_line, parse_line, read_recording};

fn regression_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(name)
}

#[test]
fn values_with_surrounding_whitespace_round_trip_byte_for_byte() {
    let records = read_recording(&regression_file(
        "recording_parse-whitespace-around-value.ndjson",
    ))
    .expect("the regression recording reads");
    assert!(records.len() >= 3, "{records:?}");
    for record in &records {
        let line = format_line(record);
        assert_eq!(
            parse_line(&line).expect("a formatted line parses"),
            *record,
            "{line}"
        );
    }
    let values: Vec<&[u8]> = records.iter().map(|r| r.value.as_slice()).collect();
    assert!(values.contains(&&b" {}"[..]), "{values:?}");
    assert!(
        values.contains(&&b"{\"kind\":\"user_said\"}\n"[..]),
        "{values:?}"
    );
}

#[test]
fn plain_json_objects_are_still_embedded() {
    let records = read_recording(&regression_file(
        "recording_parse-whitespace-around-value.ndjson",
    ))
    .unwrap();
    let plain = records
        .iter()
        .find(|r| r.value == b"{\"a\": 1}")
        .expect("the plain object record");
    assert!(
        format_line(plain).ends_with(r#""value":{"a": 1}}"#),
        "{}",
        format_line(plain)
    );
}
