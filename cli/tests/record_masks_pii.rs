//! `switchboard record` against the real broker: by default the recording holds no PII — every
//! original of the PII audit (mobiles, ID and card numbers, e-mails; spaced, dashed, full-width;
//! in texts, user ids and malformed records) is masked with the topology's own masker, the
//! format is unchanged and a record without PII is kept byte for byte. With `--raw` the file
//! holds the records exactly as produced, is mode 600, and stderr warns that it holds personal
//! data.

mod common;

#[path = "common/pii_data.rs"]
mod pii_data;

use pii_data::*;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;
use switchboard_operators::pii;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::*;
use switchboard_sources::admin::ensure_topics;
use switchboard_sources::recording::read_recording;

/// Produces every record to partition 0, in order; returns (key, value) as produced.
async fn produce(kafka: &KafkaSettings, topic: &str, records: &[(String, Vec<u8>)]) {
    let producer: FutureProducer = kafka.client_config().create().expect("producer");
    for (i, (key, value)) in records.iter().enumerate() {
        producer
            .send(
                FutureRecord::to(topic).partition(0).key(key).payload(value).timestamp(T0 + i as i64),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }
}

fn record(topic: &str, out: &std::path::Path, raw: bool) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(["record", "--topic", topic, "--from-offset", "0:0", "--out"]).arg(out);
    if raw {
        command.arg("--raw");
    }
    command.env("SWITCHBOARD_LOG", "warn").output().expect("run switchboard record")
}

#[tokio::test]
async fn record_masks_pii_unless_raw_which_warns_and_keeps_the_file_private() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let run_id = common::run_id();
    let topic = format!("test.record-pii.{run_id}");
    ensure_topics(&kafka, &[&topic], 1).await.expect("topic (is the broker up? deploy/dev/up.sh)");
    let data = audit_data();
    let mut produced: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, turn) in data.turns.iter().enumerate() {
        let event = user_said(i, turn);
        produced.push((event.dialogue_id.clone(), encode(&event)));
    }
    for (key, value) in &data.malformed {
        produced.push((key.clone(), value.clone().into_bytes()));
    }
    let clean = user_said(produced.len(), &("d-clean".into(), "u-clean".into(), Locale::ZhCn, "我要退货，订单号 2024113051".into()));
    produced.push((clean.dialogue_id.clone(), encode(&clean)));
    produce(&kafka, &topic, &produced).await;

    let work = std::env::temp_dir().join(format!("switchboard-record-pii-{run_id}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let needles = needles_for(&data.originals);

    // ---- masked (the default) ----
    let masked_file = work.join("masked.ndjson");
    let out = record(&topic, &masked_file, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "record failed: {stderr}");
    assert!(!stderr.contains("personal data"), "a masked recording warned: {stderr}");
    let text = std::fs::read_to_string(&masked_file).expect("masked recording");
    let leaked = leaks(&text, &needles);
    assert!(leaked.is_empty(), "PII left in the masked recording:\n{}", leaked.join("\n"));
    let records = read_recording(&masked_file).expect("the masked recording has the recording format");
    assert_eq!(records.len(), produced.len());
    for (i, (r, (key, value))) in records.iter().zip(&produced).enumerate() {
        assert_eq!((r.topic.as_str(), r.partition, r.offset, r.timestamp_ms), (topic.as_str(), 0, i as i64, T0 + i as i64));
        assert_eq!(r.key.as_ref(), Some(key));
        match decode(value) {
            // A turn: its text and user id masked exactly as the topology masks them.
            Ok(original) => {
                let EventBody::UserSaid(said) = &original.body else { panic!("only turns were produced") };
                let recorded = decode(&r.value).unwrap_or_else(|e| panic!("record {i} no longer decodes: {e}"));
                let EventBody::UserSaid(kept) = &recorded.body else { panic!("record {i} changed kind") };
                assert_eq!(kept.text, pii::mask(&said.text), "record {i}");
                assert_eq!(kept.user_id, pii::mask(&said.user_id), "record {i}");
                assert_eq!((recorded.event_id, &recorded.dialogue_id), (original.event_id, &original.dialogue_id));
            }
            // A malformed record: masked as text, like a dead letter's payload.
            Err(_) => {
                let original = String::from_utf8_lossy(value);
                assert_eq!(String::from_utf8_lossy(&r.value), pii::mask(&original), "record {i}");
            }
        }
    }
    assert_eq!(records.last().map(|r| &r.value), Some(&encode(&clean)), "a record without PII is kept byte for byte");

    // ---- raw ----
    let raw_file = work.join("raw.ndjson");
    let out = record(&topic, &raw_file, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "record --raw failed: {stderr}");
    assert!(stderr.contains("warning") && stderr.contains("personal data"), "--raw did not warn: {stderr}");
    let mode = std::fs::metadata(&raw_file).expect("raw recording").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a raw recording must be private, is {mode:o}");
    let records = read_recording(&raw_file).expect("the raw recording has the recording format");
    let values: Vec<&Vec<u8>> = records.iter().map(|r| &r.value).collect();
    let expected: Vec<&Vec<u8>> = produced.iter().map(|(_, v)| v).collect();
    assert_eq!(values, expected, "--raw keeps every value as produced");
    // The needles do find the originals: the masked file's cleanliness means something.
    assert!(!leaks(&std::fs::read_to_string(&raw_file).expect("raw text"), &needles).is_empty());

    let _ = std::fs::remove_dir_all(&work);
}
