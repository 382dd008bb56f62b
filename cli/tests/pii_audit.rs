//! PII audit: turns with personal data in every field a user types (`text` and the hello's
//! `user_id`) — mainland mobile numbers, 18-digit ID numbers with a valid checksum, Luhn-valid
//! bank cards and e-mail addresses, in Chinese and English sentences, plain, spaced, dashed and
//! full-width — plus malformed records that carry the same kind of data, run through
//!
//! 1. the live topology (`switchboard run` on fresh topics and a fresh ClickHouse database, logs
//!    at debug level), and
//! 2. the deterministic runner (`switchboard test … --bless` into a scratch golden file).
//!
//! The live run also gets two hostile raw Kafka values, which only a broker can carry: bytes
//! that are not UTF-8 (with a mobile number inside) and 10,000 nested JSON arrays. Each must
//! become a dead letter while the topology keeps running (serde_json's recursion limit, no
//! stack overflow).
//!
//! Every output is scanned for every original, as typed and with its separators removed: the
//! ClickHouse rows (all columns), `bot.said`, the dead-letter topic, the golden output and the
//! logs. Zero hits allowed. (`client_msg_id` and `dialogue_id` are identifiers the client
//! generates, not typed by the user; they are not masked.)
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh` provides both).

mod common;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::process::Command;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;
use switchboard_sources::admin::ensure_topics;

#[path = "common/pii_data.rs"]
mod pii_data;

use pii_data::*;

/// How far the live run got.
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Progress {
    replied: u64,
    dead_rows: u64,
}


/// Every value of every record of `topic`, up to the high watermarks.
fn read_topic(settings: &KafkaSettings, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("pii-audit-reader-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .expect("watermarks");
        remaining += high - low;
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (values.len() as i64) < remaining && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            values
                .push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        }
    }
    assert_eq!(
        values.len() as i64,
        remaining,
        "could not read all of {topic}"
    );
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_unmasked_pii_leaves_the_topology() {
    let data = audit_data();
    let needles = needles_for(&data.originals);
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run_id = common::run_id();
    let work = std::env::temp_dir().join(format!("switchboard-pii-audit-{run_id}"));
    std::fs::create_dir_all(&work).expect("work dir");

    // ---- 1. the live topology ----
    let input = format!("test.pii.user-said.{run_id}");
    let replies = format!("test.pii.bot-said.{run_id}");
    let dead = format!("test.pii.dead.{run_id}");
    ensure_topics(&kafka, &[&input, &replies, &dead], 4)
        .await
        .expect("topics (is the broker up?)");
    let database = format!("sbtest_pii_{}", &run_id[..16]);
    let admin = ClickHouseSink::new(&clickhouse);
    admin.create_database(&database).await.expect("create database");
    let producer: FutureProducer = kafka.client_config().create().expect("producer");
    let mut recording = String::new();
    let mut offsets = [0i64; 4];
    let mut turn_ids = Vec::new();
    for (i, turn) in data.turns.iter().enumerate() {
        let event = user_said(i, turn);
        turn_ids.push(format!("'{}'", event.event_id));
        let payload = encode(&event);
        producer
            .send(
                FutureRecord::to(&input)
                    .key(&event.dialogue_id)
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
        let partition = (i % 4) as i32;
        recording.push_str(
            &serde_json::json!({"topic": "user.said", "partition": partition, "offset": offsets[i % 4],
                "timestamp_ms": event.occurred_at + 3, "key": event.dialogue_id,
                "value": serde_json::from_slice::<serde_json::Value>(&payload).expect("json")})
            .to_string(),
        );
        recording.push('\n');
        offsets[i % 4] += 1;
    }
    for (j, (key, raw)) in data.malformed.iter().enumerate() {
        producer
            .send(
                FutureRecord::to(&input).key(key).payload(raw.as_bytes()),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
        let partition = j % 4;
        let value = serde_json::from_str::<serde_json::Value>(raw)
            .unwrap_or_else(|_| serde_json::Value::String(raw.clone()));
        recording.push_str(
            &serde_json::json!({"topic": "user.said", "partition": partition, "offset": offsets[partition],
                "timestamp_ms": T0 + 60_000 + j as i64, "key": key, "value": value})
            .to_string(),
        );
        recording.push('\n');
        offsets[partition] += 1;
    }
    let config = work.join("config.yaml");
    std::fs::write(
        &config,
        format!("input_topic: {input}\nreplies_topic: {replies}\ndead_letter_topic: {dead}\ngroup_id: pii-{run_id}\nmetrics_listen: \"\"\n"),
    )
    .expect("config");
    let log_path = work.join("run.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--workers", "2", "--config"])
        .arg(&config)
        .env("SWITCHBOARD_CLICKHOUSE_DATABASE", &database)
        .env("SWITCHBOARD_LOG", "debug")
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(work.join("run.stdout")).expect("stdout file"))
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("start switchboard run");
    let reader = ClickHouseSink::new(&ClickHouseSettings {
        database: database.clone(),
        ..clickhouse.clone()
    });
    let turns = data.turns.len() as u64;
    // Raw values no recording can hold: invalid UTF-8 carrying a mobile number, and nesting far
    // beyond serde_json's recursion limit.
    let mut invalid_utf8 = b"\xff\xfe\xc3\x28 not utf-8, phone ".to_vec();
    invalid_utf8.extend_from_slice(data.originals[0].as_bytes());
    let deeply_nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for (key, raw) in [
        ("d-audit-raw-1", invalid_utf8.as_slice()),
        ("d-audit-raw-2", deeply_nested.as_bytes()),
    ] {
        producer
            .send(
                FutureRecord::to(&input).key(key).payload(raw),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }
    let live_dead_letters = data.malformed.len() as u64 + 2;
    let dead_letters = data.malformed.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    let progress = format!(
        "SELECT uniqExactIf(in_reply_to, kind IN ('answer_generated', 'handoff_requested', 'turn_queued') \
         AND toString(in_reply_to) IN ({})), countIf(kind = 'dead_letter') FROM events FINAL",
        turn_ids.join(",")
    );
    loop {
        let Progress { replied, dead_rows } = reader
            .client()
            .query(&progress)
            .fetch_one::<Progress>()
            .await
            .unwrap_or(Progress {
                replied: 0,
                dead_rows: 0,
            });
        if replied >= turns && dead_rows >= live_dead_letters {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "switchboard run exited: {status}; see {}",
                log_path.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "not every turn was answered in time ({replied}/{turns}, {dead_rows} dead letters)"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let rows: Vec<String> = reader
        .client()
        .query(
            "SELECT arrayStringConcat([toString(event_id), dialogue_id, toString(kind), toString(schema_version), \
             toString(occurred_at), toString(occurred_at_ms), toString(intent), toString(confidence), \
             toString(latency_ms), toString(in_reply_to), client_msg_id, text, toString(model_version), \
             toString(kb_version), toString(reason), payload], '\\t') FROM events",
        )
        .fetch_all::<String>()
        .await
        .expect("select every row");
    assert!(
        rows.len() as u64 >= turns * 2 + live_dead_letters,
        "{} rows",
        rows.len()
    );
    let said = read_topic(&kafka, &replies);
    let dead_topic = read_topic(&kafka, &dead);
    assert!(
        said.len() as u64 >= turns,
        "{} records on bot.said",
        said.len()
    );
    assert!(
        dead_topic.len() as u64 >= live_dead_letters,
        "{} dead letters",
        dead_topic.len()
    );
    let log = std::fs::read_to_string(&log_path).expect("run log")
        + &std::fs::read_to_string(work.join("run.stdout")).unwrap_or_default();
    assert!(log.contains("DEBUG"), "the run did not log at debug level");

    // The scan can fail: every original is found in the input as typed, and the outputs do
    // carry the masked texts.
    for original in &data.originals {
        assert!(
            !leaks(&recording, &needles_for(std::slice::from_ref(original))).is_empty(),
            "the detector misses {original:?} in the input"
        );
    }
    assert!(
        rows.iter().filter(|r| r.contains("****")).count() >= data.turns.len(),
        "masked texts in ClickHouse"
    );
    let mut found = Vec::new();
    for (name, text) in [
        ("ClickHouse rows", rows.join("\n")),
        ("bot.said", said.join("\n")),
        ("dead-letter topic", dead_topic.join("\n")),
        ("run logs (debug)", log),
    ] {
        found.extend(
            leaks(&text, &needles)
                .into_iter()
                .map(|l| format!("{name}: {l}")),
        );
    }

    // ---- 2. the deterministic runner ----
    let recording_path = work.join("pii_audit.ndjson");
    std::fs::write(&recording_path, &recording).expect("recording");
    let golden_path = work.join("pii_audit.golden.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("test")
        .arg(&recording_path)
        .arg("--golden")
        .arg(&golden_path)
        .arg("--bless")
        .env("SWITCHBOARD_LOG", "debug")
        .env("RUST_LOG", "debug")
        .output()
        .expect("switchboard test");
    let test_log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "switchboard test failed: {test_log}");
    let golden = std::fs::read_to_string(&golden_path).expect("golden output");
    assert!(
        golden.lines().count() as u64 >= turns * 2 + dead_letters,
        "golden output:\n{golden}"
    );
    found.extend(
        leaks(&golden, &needles)
            .into_iter()
            .map(|l| format!("switchboard test output: {l}")),
    );
    found.extend(
        leaks(&test_log, &needles)
            .into_iter()
            .map(|l| format!("switchboard test logs (debug): {l}")),
    );

    assert!(
        found.is_empty(),
        "{} unmasked PII occurrences:\n{}",
        found.len(),
        found.join("\n")
    );
    let _ = admin
        .client()
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
    let _ = std::fs::remove_dir_all(&work);
}
