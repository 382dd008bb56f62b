//! `switchboard record`: capture an offset or time range of a topic into a recording file.
//!
//! By default a recording holds no PII: [`mask_value`] masks each record with the topology's
//! own masker (`switchboard_operators::pii`, the rules the analyse operator applies before
//! anything else sees a turn). [`Privacy::Raw`] keeps the records as they were and writes the
//! file with mode 600. The file format (CONTRACT "Files") is the same either way.

use crate::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;
use switchboard_operators::pii;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::{decode, encode, EventBody, SourceRecord};
use switchboard_sources::kafka::{EndPosition, KafkaSource, StartPosition};
use switchboard_sources::recording::RecordingWriter;

/// Whether a recording keeps the personal data users typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// PII masked ([`mask_value`]); the default of `switchboard record`.
    Masked,
    /// Records as they are on the topic (`--raw`); the file is created with mode 600.
    Raw,
}

/// A record's value with its PII masked, or `None` when it has none (the value is then kept
/// byte for byte).
///
/// - A `user_said` event (strictly decoded) gets its `text` and `user_id` masked, as the analyse
///   operator masks them, and is encoded again; its ids are not PII and stay.
/// - Anything else — another kind, or bytes that do not decode (malformed or invalid UTF-8
///   records, which a recording keeps so they can be replayed) — is masked as text, the way a
///   dead letter's payload is: a mobile, ID or card number or an e-mail address anywhere in it
///   is masked. A value that decoded as an event but no longer does after this is still written
///   masked: no PII leaves in a recording.
pub fn mask_value(value: &[u8]) -> Option<Vec<u8>> {
    if let Ok(mut event) = decode(value) {
        if let EventBody::UserSaid(said) = &mut event.body {
            let text = pii::mask(&said.text);
            let user_id = pii::mask(&said.user_id);
            if matches!((&text, &user_id), (Cow::Borrowed(_), Cow::Borrowed(_))) {
                return None;
            }
            let (text, user_id) = (text.into_owned(), user_id.into_owned());
            said.text = text;
            said.user_id = user_id;
            return Some(encode(&event));
        }
    }
    match pii::mask(&String::from_utf8_lossy(value)) {
        Cow::Borrowed(_) => None,
        Cow::Owned(masked) => Some(masked.into_bytes()),
    }
}

/// Copies `topic` from `start` to `end` (default: the high watermark at start) into `out`,
/// one line per record, partitions interleaved by timestamp order of arrival; with
/// [`Privacy::Masked`] each value passes through [`mask_value`]. Returns the number of records
/// written.
pub fn record(
    settings: &KafkaSettings,
    topic: &str,
    start: &StartPosition,
    end: Option<&EndPosition>,
    out: &Path,
    progress: bool,
    privacy: Privacy,
) -> Result<u64> {
    let mut file = match privacy {
        Privacy::Masked => RecordingWriter::create(out)?,
        Privacy::Raw => RecordingWriter::create_private(out)?,
    };
    let mut masked = 0u64;
    each_record(settings, topic, start, end, progress, |record| {
        match privacy {
            Privacy::Masked => match mask_value(&record.value) {
                Some(value) => {
                    masked += 1;
                    file.write(&SourceRecord { value, ..record.clone() })?;
                }
                None => file.write(record)?,
            },
            Privacy::Raw => file.write(record)?,
        }
        Ok(())
    })?;
    let written = file.finish()?;
    tracing::info!(written, masked, ?privacy, "recording written");
    Ok(written)
}

/// Reads `topic` from `start` to `end` (default: the high watermark at start) into memory, as
/// is (`switchboard shadow` runs the graph over it; the graph masks PII itself), ordered by
/// record time, then partition and offset, so the same range gives the same order however the
/// broker interleaved its partitions.
pub fn read_range(settings: &KafkaSettings, topic: &str, start: &StartPosition, end: Option<&EndPosition>, progress: bool) -> Result<Vec<SourceRecord>> {
    let mut records = Vec::new();
    each_record(settings, topic, start, end, progress, |record| {
        records.push(record.clone());
        Ok(())
    })?;
    records.sort_by_key(|r| (r.timestamp_ms, r.partition, r.offset));
    Ok(records)
}

/// Calls `f` on every record of `topic` from `start` to `end`, with a progress bar if asked.
fn each_record(
    settings: &KafkaSettings,
    topic: &str,
    start: &StartPosition,
    end: Option<&EndPosition>,
    progress: bool,
    mut f: impl FnMut(&SourceRecord) -> Result<()>,
) -> Result<()> {
    let end = end.cloned().unwrap_or(EndPosition::HighWatermark);
    let group = format!("switchboard-record-{}", std::process::id());
    let mut source = KafkaSource::open(settings, &group, topic, 0, 1, start, Some(&end))?;
    let total = source.lag().unwrap_or(0).max(0) as u64;
    let bar = if progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
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
            f(record)?;
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_schemas::{Event, Locale, UserSaid};

    fn said(text: &str, user_id: &str) -> Vec<u8> {
        encode(&Event::new(
            "d-1",
            1_764_000_000_000,
            EventBody::UserSaid(UserSaid { client_msg_id: "m-1".into(), user_id: user_id.into(), locale: Locale::ZhCn, text: text.into() }),
        ))
    }

    #[test]
    fn user_said_text_and_user_id_are_masked_and_the_event_still_decodes() {
        let value = said("我的手机是138 1234 5678，邮箱 zhang.san@example.com", "13812345678");
        let masked = mask_value(&value).expect("PII found");
        let event = decode(&masked).expect("still an event");
        let EventBody::UserSaid(body) = &event.body else { panic!("kind changed") };
        assert_eq!(body.text, "我的手机是138****5678，邮箱 z***@example.com");
        assert_eq!(body.user_id, "138****5678");
        assert_eq!((event.dialogue_id.as_str(), body.client_msg_id.as_str()), ("d-1", "m-1"));
        assert_eq!(decode(&value).expect("original").event_id, event.event_id);
        assert_eq!(mask_value(&masked), None, "masking is idempotent");
    }

    #[test]
    fn values_without_pii_are_kept_byte_for_byte() {
        assert_eq!(mask_value(&said("我要退货，订单号 2024113051", "u-7")), None);
        assert_eq!(mask_value(b" {\"not\": \"an event\"} "), None);
        assert_eq!(mask_value(&[0xff, 0xfe, b'{']), None);
    }

    #[test]
    fn malformed_values_are_masked_as_text() {
        let masked = mask_value(br#"{"kind":"user_said","text":"call 13812345678","extra":1"#).expect("PII found");
        assert_eq!(String::from_utf8(masked).unwrap(), r#"{"kind":"user_said","text":"call 138****5678","extra":1"#);
        let mut invalid = b"\xff id 11010519491231002X".to_vec();
        invalid.push(0xfe);
        let masked = String::from_utf8(mask_value(&invalid).expect("PII found")).unwrap();
        assert!(masked.contains("**************002X") && !masked.contains("11010519491231002X"), "{masked}");
    }
}
