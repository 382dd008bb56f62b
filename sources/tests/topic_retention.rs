//! What the broker (nisshi 0.8.1) does with a topic's retention, on a scratch broker of its own
//! (its own port and sqlite file, so the shared dev broker is neither restarted nor trimmed):
//!
//! - the topic configuration given at creation (`admin::create_topics`) is stored and read back
//!   by DescribeConfigs (`admin::topic_config`);
//! - its maintenance (when it starts, then every `maintenance_interval` of the storage URL, 10
//!   minutes by default; 1 s here) deletes the records whose timestamp is older than the topic's
//!   `retention.ms` and moves the log start past them, under Kafka's rules: a topic without
//!   `cleanup.policy` has the policy `delete`, so `retention.ms` alone trims too; a topic without
//!   `retention.ms` keeps records for 7 days (Kafka's default); `retention.ms=-1` keeps every
//!   record (`admin::TopicSpec::kept_forever`).
//!
//! Needs the `nisshi` binary (`deploy/dev/up.sh` installs it; `NISSHI` names another one).

mod common;

use common::{free_port, ScratchBroker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_sources::admin::{create_topics, ensure_topics, retention_config, topic_config, TopicSpec};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Every value on partition 0 of `topic`, from the beginning to the end.
fn read_all(settings: &KafkaSettings, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("retention-check-{}", now_ms()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{topic}: did not reach the end (offset {high}) within 30 s");
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                values.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
                if message.offset() + 1 >= high {
                    return values;
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return values,
            Some(Err(e)) => panic!("{topic}: {e}"),
            None if high == 0 => return values,
            None => {}
        }
    }
}

async fn produce(settings: &KafkaSettings, topic: &str, records: &[(&str, i64)]) {
    let producer: FutureProducer = settings.client_config().set("linger.ms", "0").create().expect("producer");
    for (value, timestamp) in records {
        producer
            .send(FutureRecord::<str, str>::to(topic).payload(value).timestamp(*timestamp), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }
}

/// Every value on partition 0 of each topic, once they all equal what is expected (or a panic
/// after 30 s showing what is there).
fn wait_for_contents(settings: &KafkaSettings, expected: &[(&str, &[&str])]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: Vec<(&str, Vec<String>)> = expected.iter().map(|(topic, _)| (*topic, read_all(settings, topic))).collect();
        if seen.iter().zip(expected).all(|((_, got), (_, want))| got == want) {
            return;
        }
        assert!(Instant::now() < deadline, "not trimmed as expected within 30 s: {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn nisshi_stores_retention_and_trims_by_record_time_under_kafkas_defaults() {
    let dir = std::env::temp_dir().join(format!("switchboard-retention-broker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let port = free_port();
    // Maintenance every second instead of every 10 minutes.
    let mut broker = ScratchBroker::start(&dir, port, "sqlite://nisshi.db?maintenance_interval=1s");
    let settings = broker.settings();

    let minute = 60_000;
    let trimmed = TopicSpec::new("retained", 1).with_retention_ms(minute);
    let mut unpoliced = TopicSpec::new("retention-ms-only", 1);
    unpoliced.config.push(("retention.ms".into(), minute.to_string()));
    let plain = TopicSpec::new("default", 1);
    let forever = TopicSpec::new("forever", 1).kept_forever();
    let existed = create_topics(&settings, &[trimmed.clone(), unpoliced.clone(), plain.clone(), forever.clone()])
        .await
        .expect("create topics");
    assert!(existed.is_empty(), "fresh broker, yet {existed:?} existed");
    assert!(create_topics(&settings, std::slice::from_ref(&plain)).await.expect("create again") == ["default"], "a second create reports the topic as existing");

    // Stored, and read back by DescribeConfigs.
    let config = topic_config(&settings, "retained").await.expect("describe retained");
    for (key, value) in retention_config(minute) {
        assert_eq!(config.get(&key), Some(&value), "retained: {key} not stored as {value}: {config:?}");
    }
    let config = topic_config(&settings, "retention-ms-only").await.expect("describe retention-ms-only");
    assert_eq!(config.get("retention.ms").map(String::as_str), Some("60000"), "{config:?}");
    assert!(!config.contains_key("cleanup.policy"), "{config:?}");
    let config = topic_config(&settings, "forever").await.expect("describe forever");
    assert_eq!(config.get("retention.ms").map(String::as_str), Some("-1"), "{config:?}");
    assert!(topic_config(&settings, "default").await.expect("describe default").is_empty());
    // The tests' scratch topics (their records carry fixed past timestamps) are kept forever.
    ensure_topics(&settings, &["ensured"], 1).await.expect("ensure");
    let config = topic_config(&settings, "ensured").await.expect("describe ensured");
    assert_eq!(config.get("retention.ms").map(String::as_str), Some("-1"), "{config:?}");

    // In each topic: a record 8 days old, one an hour old and two fresh ones. Maintenance runs
    // every second meanwhile, so what is old may already be going while the others are written.
    let now = now_ms();
    let day = 24 * 3_600_000;
    let records = [("week-old", now - 8 * day), ("hour-old", now - 3_600_000), ("new-1", now), ("new-2", now + 1)];
    for topic in ["retained", "retention-ms-only", "default", "forever"] {
        produce(&settings, topic, &records).await;
    }
    wait_for_contents(
        &settings,
        &[
            // Older than its minute: trimmed.
            ("retained", &["new-1", "new-2"]),
            // Kafka's implicit cleanup.policy=delete applies: retention.ms alone trims.
            ("retention-ms-only", &["new-1", "new-2"]),
            // No retention.ms: Kafka's default of 7 days.
            ("default", &["hour-old", "new-1", "new-2"]),
            // retention.ms=-1: nothing is ever trimmed.
            ("forever", &["week-old", "hour-old", "new-1", "new-2"]),
        ],
    );
    // Several maintenance runs later, nothing more is gone.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(read_all(&settings, "default"), ["hour-old", "new-1", "new-2"]);
    assert_eq!(read_all(&settings, "forever"), ["week-old", "hour-old", "new-1", "new-2"]);

    // The log start moves past the deleted records; offsets go on where they were.
    let consumer: BaseConsumer = settings.client_config().create().expect("client");
    for (topic, expected) in [("retained", (2, 4)), ("default", (1, 4)), ("forever", (0, 4))] {
        let watermarks = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks");
        assert_eq!(watermarks, expected, "{topic}: watermarks after the trim");
    }

    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
