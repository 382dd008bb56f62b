//! Recordings: NDJSON files with one Kafka record a line (the CONTRACT format):
//! `{"topic":…,"partition":…,"offset":…,"timestamp_ms":…,"key":…,"value":<event JSON>}`.
//!
//! `value` is normally the event's JSON object. A record whose bytes were not JSON is kept as
//! a JSON string, so malformed traffic can be recorded and replayed too.

use crate::SourceRecord;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, Write};
use std::path::Path;

/// The errors of reading and writing recordings: the crate's [`Error`](crate::Error) (its
/// `Io` and `BadLine` variants).
pub type RecordingError = crate::Error;

#[derive(Serialize, Deserialize)]
struct Line<'a> {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    #[serde(default)]
    key: Option<String>,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// Parses one recording line.
pub fn parse_line(text: &str) -> Result<SourceRecord, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let raw = line.value.get();
    // A JSON string holds bytes that were not a JSON object when recorded: keep them verbatim.
    let value = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).map_err(|e| e.to_string())?.into_bytes()
    } else {
        raw.as_bytes().to_vec()
    };
    if line.partition < 0 || line.offset < 0 {
        return Err("partition and offset must not be negative".into());
    }
    Ok(SourceRecord {
        topic: line.topic,
        partition: line.partition,
        offset: line.offset,
        timestamp_ms: line.timestamp_ms,
        key: line.key,
        value,
    })
}

/// Formats one record as a recording line (without the newline).
pub fn format_line(record: &SourceRecord) -> String {
    // Embedded only when the JSON is exactly the bytes: a parser drops whitespace around a
    // value, and the replay must hand out the bytes that were recorded.
    let as_json = std::str::from_utf8(&record.value)
        .ok()
        .filter(|s| s.starts_with('{'))
        .and_then(|s| serde_json::from_str::<Box<RawValue>>(s).ok().filter(|raw| raw.get() == s));
    let fallback;
    let value: &RawValue = match &as_json {
        Some(raw) => raw,
        None => {
            let text = String::from_utf8_lossy(&record.value);
            fallback = serde_json::value::to_raw_value(&text)
                .unwrap_or_else(|_| unreachable!("a string always serialises"));
            &fallback
        }
    };
    let line = Line {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record.key.clone(),
        value,
    };
    serde_json::to_string(&line).unwrap_or_else(|_| unreachable!("plain data always serialises"))
}

/// Reads a whole recording. Blank lines are skipped; any bad line is an error naming it.
pub fn read_recording(path: &Path) -> Result<Vec<SourceRecord>, RecordingError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| crate::Error::Io { path: name.clone(), source })?;
    let mut records = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| crate::Error::Io { path: name.clone(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_line(&line)
            .map_err(|message| crate::Error::BadLine { path: name.clone(), line: i + 1, message })?;
        records.push(record);
    }
    Ok(records)
}

/// Writes a recording file one record at a time (`switchboard record` streams through it).
pub struct RecordingWriter {
    name: String,
    out: std::io::BufWriter<std::fs::File>,
    written: u64,
}

impl RecordingWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, RecordingError> {
        let name = path.display().to_string();
        let file = std::fs::File::create(path).map_err(|source| crate::Error::Io { path: name.clone(), source })?;
        Ok(RecordingWriter { name, out: std::io::BufWriter::new(file), written: 0 })
    }

    /// Creates (or truncates) the file at `path` readable and writable by its owner only (mode
    /// 600, also when the file existed with a wider mode), for recordings that hold personal data.
    pub fn create_private(path: &Path) -> Result<Self, RecordingError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let name = path.display().to_string();
        let io = |source| crate::Error::Io { path: name.clone(), source };
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io)?;
        // `mode` applies only to a file it creates.
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(RecordingWriter { name, out: std::io::BufWriter::new(file), written: 0 })
    }

    /// Appends one record as one line.
    pub fn write(&mut self, record: &SourceRecord) -> Result<(), RecordingError> {
        writeln!(self.out, "{}", format_line(record)).map_err(|source| crate::Error::Io { path: self.name.clone(), source })?;
        self.written += 1;
        Ok(())
    }

    /// Flushes the file and returns how many records were written.
    pub fn finish(mut self) -> Result<u64, RecordingError> {
        self.out.flush().map_err(|source| crate::Error::Io { path: self.name.clone(), source })?;
        Ok(self.written)
    }
}

/// Writes records to a recording file.
pub fn write_recording<'a>(
    path: &Path,
    records: impl IntoIterator<Item = &'a SourceRecord>,
) -> Result<(), RecordingError> {
    let mut writer = RecordingWriter::create(path)?;
    for r in records {
        writer.write(r)?;
    }
    writer.finish().map(|_| ())
}

/// The records a worker replays, in the order the broker would hand them out per partition:
/// those of the partitions it owns, sorted by (timestamp, partition, offset).
pub fn worker_share(records: &[SourceRecord], worker_index: usize, peers: usize) -> Vec<SourceRecord> {
    let mut mine: Vec<SourceRecord> = records
        .iter()
        .filter(|r| crate::owns_partition(r.partition, worker_index, peers))
        .cloned()
        .collect();
    mine.sort_by_key(|r| (r.timestamp_ms, r.partition, r.offset));
    mine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: &[u8]) -> SourceRecord {
        SourceRecord {
            topic: "user.said".into(),
            partition: 3,
            offset: 42,
            timestamp_ms: 1_764_000_000_000,
            key: Some("d-1".into()),
            value: value.to_vec(),
        }
    }

    #[test]
    fn json_values_are_embedded_and_round_trip() {
        let r = record(br#"{"kind":"user_said","text":"\u6211"}"#);
        let line = format_line(&r);
        assert!(line.contains(r#""value":{"kind":"user_said""#), "{line}");
        assert_eq!(parse_line(&line).unwrap(), r);
    }

    #[test]
    fn non_json_values_are_kept_as_strings() {
        for bytes in [&b"not json {"[..], b"[1,2]", b"", b"{\"unterminated\": "] {
            let r = record(bytes);
            let line = format_line(&r);
            assert_eq!(parse_line(&line).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn private_recordings_are_mode_600_even_over_a_wider_file() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("switchboard-private-{}.ndjson", std::process::id()));
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut writer = RecordingWriter::create_private(&path).unwrap();
        writer.write(&record(b"{}")).unwrap();
        assert_eq!(writer.finish().unwrap(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_recording(&path).unwrap(), [record(b"{}")]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_lines_name_the_problem() {
        assert!(parse_line("{}").unwrap_err().contains("missing field"));
        assert!(parse_line(r#"{"topic":"t","partition":-1,"offset":0,"timestamp_ms":0,"value":{}}"#).is_err());
        assert!(parse_line("not json").is_err());
    }

    #[test]
    fn worker_shares_partition_the_recording() {
        let mut records = Vec::new();
        for p in 0..8 {
            for o in 0..3 {
                let mut r = record(b"{}");
                r.partition = p;
                r.offset = o;
                r.timestamp_ms = 1000 - o * 10 + i64::from(p);
                records.push(r);
            }
        }
        let a = worker_share(&records, 0, 2);
        let b = worker_share(&records, 1, 2);
        assert_eq!(a.len() + b.len(), records.len());
        assert!(a.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    }
}
