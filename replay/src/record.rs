//! `switchboard record`: capture an offset or time range of a topic into a recording file.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_sources::kafka::{EndPosition, KafkaSource, StartPosition};
use switchboard_sources::recording::format_line;

/// Recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The broker refused or is unreachable.
    #[error(transparent)]
    Source(#[from] switchboard_sources::Error),
    /// The output file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

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
) -> Result<u64, RecordError> {
    let end = end.cloned().unwrap_or(EndPosition::HighWatermark);
    let group = format!("switchboard-record-{}", std::process::id());
    let mut source = KafkaSource::open(settings, &group, topic, 0, 1, start, Some(&end))?;
    let total = source.lag().unwrap_or(0).max(0) as u64;
    let bar = if progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let name = out.display().to_string();
    let io = |source| RecordError::Io { path: name.clone(), source };
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(io)?);
    let mut written = 0u64;
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
            writeln!(file, "{}", format_line(record)).map_err(io)?;
        }
        written += batch.len() as u64;
        bar.inc(batch.len() as u64);
    }
    file.flush().map_err(io)?;
    bar.finish();
    Ok(written)
}
