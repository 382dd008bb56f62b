//! The vector backend is chosen by configuration (`vector_backend: exact | qdrant`).
//!
//! Without a Qdrant server (none can be installed here), `qdrant` must refuse to start with one
//! clear line naming `QDRANT_URL` and exit status 2, and an unknown backend likewise. With
//! `QDRANT_URL` set, the slot-filling recording run on Qdrant must reproduce its golden output
//! (the same answers as the in-process exact index); without it that part prints `skipped:`.
//!
//! Needs the demo models and knowledge base (`deploy/dev/prepare.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn recording() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../replay/tests/recordings/slot_filling.ndjson")
}

fn run_test_with(backend: &str, qdrant_url: Option<&str>) -> Output {
    let dir = std::env::temp_dir().join(format!("switchboard-vector-backend-{}-{backend}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config.yaml");
    std::fs::write(&config, format!("vector_backend: {backend}\nmetrics_listen: \"\"\n")).expect("config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .arg("test")
        .arg(recording())
        .arg("--golden")
        .arg(recording().with_extension("golden.ndjson"))
        .arg("--config")
        .arg(&config)
        .env("SWITCHBOARD_LOG", "warn")
        .env_remove("QDRANT_URL");
    if let Some(url) = qdrant_url {
        command.env("QDRANT_URL", url);
    }
    let output = command.output().expect("run switchboard test");
    let _ = std::fs::remove_dir_all(&dir);
    output
}

fn one_line_error(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    lines[0].to_string()
}

#[test]
fn qdrant_without_a_server_address_refuses_to_start_with_one_clear_line() {
    let output = run_test_with("qdrant", None);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(one_line_error(&output).contains("QDRANT_URL"), "{output:?}");
}

#[test]
fn an_unknown_vector_backend_is_bad_input() {
    let output = run_test_with("faiss", None);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let line = one_line_error(&output);
    assert!(line.contains("faiss") && line.contains("exact or qdrant"), "{line}");
}

#[test]
fn the_exact_backend_reproduces_the_golden_output() {
    let output = run_test_with("exact", None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn qdrant_reproduces_the_golden_output_of_the_exact_index() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        println!("skipped: QDRANT_URL is not set (no Qdrant server can be installed here)");
        return;
    };
    let output = run_test_with("qdrant", Some(&url));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
