//! The file sink: events as NDJSON in a canonical order, the golden-output format of
//! `switchboard test` (stable across runs and worker counts).

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;
use switchboard_schemas::{encode, Event, EventKind};

/// Sorts events canonically: by dialogue, then event time, then kind, then id.
pub fn canonical_order(events: &mut [Event]) {
    fn rank(kind: EventKind) -> usize {
        EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(usize::MAX)
    }
    events.sort_by(|a, b| {
        (a.dialogue_id.as_str(), a.occurred_at, rank(a.kind()), a.event_id)
            .cmp(&(b.dialogue_id.as_str(), b.occurred_at, rank(b.kind()), b.event_id))
    });
}

/// The canonical NDJSON text of a set of events.
pub fn to_ndjson(events: &[Event]) -> String {
    let mut sorted = events.to_vec();
    canonical_order(&mut sorted);
    let mut out = String::new();
    for e in &sorted {
        out.push_str(&String::from_utf8_lossy(&encode(e)));
        out.push('\n');
    }
    out
}

/// Writes events to `path` as canonical NDJSON.
pub fn write_ndjson(path: &Path, events: &[Event]) -> Result<()> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    let mut file = std::fs::File::create(path).map_err(io)?;
    file.write_all(to_ndjson(events).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}
