//! `switchboard record`: capture an offset or time range of a topic into a recording file.

use crate::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_sources::kafka::{EndPosition, KafkaSource, StartPosition};
use switchboard_sources::recording::RecordingWriter;

/// Copies `topic` from `start` to `end` (default: the high watermark at start) into `out`,
/// one line per record, partitions interleaved by timestamp order of arrival. Returns the
/// number of records written.
pub fn record(
    settings: &KafkaSettings,
    topic: &str,
    start: &StartPosition,
    end: Option<&EndPosition>,
    out: &Path,
    progress: bool,
) -> Result<u64> {
    let end = end.cloned().unwrap_or(EndPosition::HighWatermark);
    let group = format!("switchboard-record-{}", std::process::id());
    let mut source = KafkaSource::open(settings, &group, topic, 0, 1, start, Some(&end))?;
    let total = source.lag().unwrap_or(0).max(0) as u64;
    let bar = if progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut file = RecordingWriter::create(out)?;
    let mut idle_polls = 0;
    while !source.finished() {
        let batch = source.poll_batch(1000, Duration::from_millis(500))?;
        if batch.is_empty() {
            idle_polls += 1;
            // The range is bounded by watermarks taken at start; a long silence means the
            // remaining offsets are gaps (e.g. aborted or compacted records).
            if idle_polls > 20 {
                tracing::warn!("no records for 10 s before the end offsets; stopping");
                break;
            }
            continue;
        }
        idle_polls = 0;
        for record in &batch {
            file.write(record)?;
        }
        bar.inc(batch.len() as u64);
    }
    let written = file.finish()?;
    bar.finish();
    Ok(written)
}
