//! Running `switchboard loadgen` itself for the load generator's test (tests/loadgen.rs),
//! bounded in time. The broker and gateway set-up comes from the gateway's own test helpers
//! (gateway/tests/common), included by path.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::EventId;

/// What one `switchboard loadgen` run ended with.
pub struct LoadgenRun {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output (the JSON report on success).
    pub stdout: String,
    /// Its standard error (logs; the one-line error on failure).
    pub stderr: String,
}

impl LoadgenRun {
    /// The JSON report: the last non-empty line of the output.
    pub fn report(&self) -> serde_json::Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("no report on stdout ({}); stderr: {}", self.status, self.stderr));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("the report is not JSON ({e}): {line}"))
    }
}

/// Runs `switchboard loadgen ARGS` (the binary of this crate) and waits for it, killing it and
/// panicking once `limit` has passed. Blocks: call it from `spawn_blocking` in async tests.
pub fn run_loadgen(args: &[&str], limit: Duration) -> LoadgenRun {
    // Files rather than pipes: nothing can block the child, however much it logs.
    let dir = std::env::temp_dir();
    let id = EventId::new_v7();
    let out_path = dir.join(format!("switchboard-loadgen-{id}.out"));
    let err_path = dir.join(format!("switchboard-loadgen-{id}.err"));
    let out = std::fs::File::create(&out_path).expect("a temporary file");
    let err = std::fs::File::create(&err_path).expect("a temporary file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("loadgen")
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("switchboard starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for switchboard") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    match status {
        Some(status) => LoadgenRun { status, stdout, stderr },
        None => panic!("switchboard loadgen {args:?} ran longer than {limit:?}; stderr: {stderr}"),
    }
}
