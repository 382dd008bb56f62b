//! Golden tests on recorded traffic: every `replay/tests/recordings/*.ndjson` runs through the
//! whole topology (real masking, real models, real knowledge base; virtual time from the
//! records) and must reproduce its `*.golden.ndjson` byte for byte — five times in a row with
//! one worker, and with two and four workers.
//!
//! Needs the demo models and knowledge base (`deploy/dev/prepare.sh`, run by `deploy/dev/test.sh`).

mod common;

use common::{recordings, recordings_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_of(recording: &Path) -> PathBuf {
    recording.with_extension("golden.ndjson")
}

fn switchboard_test(recording: &Path, golden: &Path, workers: usize) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("test")
        .arg(recording)
        .arg("--golden")
        .arg(golden)
        .arg("--workers")
        .arg(workers.to_string())
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .expect("run switchboard test");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn there_are_at_least_four_recordings_with_golden_files() {
    let all = recordings();
    assert!(all.len() >= 4, "{all:?}");
    for r in &all {
        assert!(golden_of(r).exists(), "{} has no golden file", r.display());
    }
}

#[test]
fn every_recording_reproduces_its_golden_output_across_runs_and_worker_counts() {
    for recording in recordings() {
        let golden = golden_of(&recording);
        for (run, workers) in [1, 1, 1, 1, 1, 2, 4].into_iter().enumerate() {
            let (code, stderr) = switchboard_test(&recording, &golden, workers);
            assert_eq!(code, 0, "{} run {run} with {workers} workers:\n{stderr}", recording.display());
        }
    }
}

#[test]
fn a_changed_golden_file_fails_with_a_readable_diff() {
    let recording = recordings_dir().join("slot_filling.ndjson");
    let golden = std::fs::read_to_string(golden_of(&recording)).expect("golden");
    let tampered = std::env::temp_dir().join(format!("switchboard-tampered-{}.ndjson", std::process::id()));
    std::fs::write(&tampered, golden.replacen("return_goods", "cancel_order", 1)).expect("write");
    let (code, stderr) = switchboard_test(&recording, &tampered, 1);
    let _ = std::fs::remove_file(&tampered);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cancel_order") && stderr.contains("return_goods"), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with('-')) && stderr.lines().any(|l| l.starts_with('+')), "{stderr}");
}

#[test]
fn no_unmasked_pii_reaches_any_output() {
    // The originals typed in pii_everywhere.ndjson, compact and as typed.
    let originals = [
        "13812345678", "138 1234 5678", "110101199003071233", "6222021234567890128", "6222 0212 3456 7890 128",
        "zhang.san@example.com", "13987654321", "139-8765-4321", "4111111111111111", "4111-1111-1111-1111",
        "6217000012345670", "6217 0000 1234 5670", "15900001111",
    ];
    for recording in recordings() {
        let golden = std::fs::read_to_string(golden_of(&recording)).expect("golden");
        let compact: String = golden.chars().filter(|c| *c != ' ' && *c != '-').collect();
        for pii in originals {
            let pii_compact: String = pii.chars().filter(|c| *c != ' ' && *c != '-').collect();
            assert!(!golden.contains(pii) && !compact.contains(&pii_compact), "{pii} unmasked in {}", recording.display());
        }
    }
}

#[test]
fn malformed_records_go_to_the_dead_letter_and_named_turns_get_a_handoff() {
    let golden = std::fs::read_to_string(recordings_dir().join("malformed_records.golden.ndjson")).expect("golden");
    let events: Vec<serde_json::Value> = golden.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let dead: Vec<&serde_json::Value> = events.iter().filter(|e| e["kind"] == "dead_letter").collect();
    assert_eq!(dead.len(), 8, "every malformed record is dead-lettered");
    for d in &dead {
        assert!(!d["reason"].as_str().unwrap_or("").is_empty());
    }
    for dialogue in ["d-future", "d-missing", "d-long", "d-wrong-type"] {
        assert!(
            events.iter().any(|e| e["dialogue_id"] == dialogue && e["kind"] == "handoff_requested" && e["reason"] == "processing_failed"),
            "{dialogue} got no handoff"
        );
    }
}
