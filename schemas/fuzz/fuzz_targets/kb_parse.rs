//! Fuzzes the knowledge-base parser and validator (no embedding): any text, read as JSON Lines
//! (or a JSON array) and as YAML, gives entries or a list of located problems, never a panic.
//! Accepted entries must pass validation again, survive a JSON Lines round trip unchanged, and
//! render their answer once every declared slot has a value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use switchboard_operators::render::render;
use switchboard_operators::retrieval::kb::{parse_kb_str, validate_entries, KbEntry, KbFormat};

fn check_accepted(entries: &[KbEntry]) {
    validate_entries(entries, "fuzz.jsonl").expect("accepted entries validate again");
    let lines: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(e).expect("an entry serialises"))
        .collect();
    let again = parse_kb_str(&lines.join("\n"), KbFormat::JsonLines, "fuzz.jsonl")
        .expect("accepted entries written as JSON Lines parse again");
    assert_eq!(again, entries);
    for entry in entries {
        let slots: BTreeMap<String, String> = entry
            .slots
            .iter()
            .map(|s| (s.clone(), "x".to_string()))
            .collect();
        render(&entry.answer, &slots).expect("a valid entry renders with all its slots filled");
    }
}

fuzz_target!(|data: &[u8]| {
    // Files are read with `read_to_string`: invalid UTF-8 is an I/O error before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [KbFormat::JsonLines, KbFormat::Yaml] {
        match parse_kb_str(text, format, "fuzz.kb") {
            Ok(entries) => check_accepted(&entries),
            Err(e) => {
                // Formatting the problems must not panic either.
                let _ = e.to_string();
            }
        }
    }
});
