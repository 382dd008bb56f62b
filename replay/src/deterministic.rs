//! `switchboard test`: a recording through the whole graph in process on record time, its
//! canonical NDJSON output compared byte for byte with a golden file (or written as the new
//! golden file when blessing).

use crate::golden::{compare, read_golden, Comparison};
use crate::{Error, Result};
use std::path::Path;
use switchboard_sources::recording::read_recording;
use switchboard_topology::runner::recorded::run_recording;
use switchboard_topology::GraphConfig;

/// What a deterministic test found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The output was written as the golden file.
    Blessed {
        /// Events written.
        events: usize,
    },
    /// The output equals the golden file.
    Same {
        /// Events compared.
        events: usize,
    },
    /// The output differs: a readable diff.
    Different {
        /// The diff (see [`compare`]).
        diff: String,
    },
}

/// Runs `recording` through the graph with `workers` threads and compares the output with
/// `golden` (or writes it there when `bless`). A recording that cannot be read is
/// [`Error::Source`] (bad input); a golden file that cannot be written is [`Error::Io`].
pub fn test_recording(recording: &Path, golden: &Path, bless: bool, workers: usize, graph: GraphConfig) -> Result<Outcome> {
    let records = read_recording(recording)?;
    let events = run_recording(records, workers, graph)?;
    let text = switchboard_sinks::file::to_ndjson(&events);
    let io = |source| Error::Io { path: golden.display().to_string(), source };
    if bless {
        std::fs::write(golden, &text).map_err(io)?;
        return Ok(Outcome::Blessed { events: events.len() });
    }
    let want = read_golden(golden).map_err(io)?;
    Ok(match compare(&want, &text) {
        Comparison::Same => Outcome::Same { events: events.len() },
        Comparison::Different(diff) => Outcome::Different { diff },
    })
}
