//! An idempotent producer with the project's producer settings (`enable.idempotence`,
//! `acks=all`, 2 ms linger, 120 s delivery timeout: `sinks::kafka::KafkaSink`, the gateway)
//! keeps producing across a broker restart: a scratch nisshi is restarted while records are in
//! flight, and every record is then acknowledged, on the topic exactly once, and in send order
//! per key. Once with SIGTERM (as `deploy/dev/restart-broker.sh` stops the dev broker), once
//! with SIGKILL.
//!
//! Needs the `nisshi` binary (`deploy/dev/up.sh` installs it; `NISSHI` names another one).

mod common;

use common::{free_port, ScratchBroker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_sources::admin::ensure_topics;

const RECORDS: usize = 4_000;
const PARTITIONS: i32 = 4;
const KEYS: usize = 32;
/// Records sent and not yet acknowledged, at most: the restart always finds some in flight.
const WINDOW: usize = 500;

/// Sends `RECORDS` records (value `i`, key `k{i % KEYS}`) with up to `WINDOW` unacknowledged at a
/// time, counting them in `sent` and `acked`; the first failed delivery ends it.
async fn produce_all(producer: FutureProducer, topic: String, sent: Arc<AtomicUsize>, acked: Arc<AtomicUsize>) -> Result<(), String> {
    let mut deliveries = VecDeque::new();
    for i in 0..RECORDS {
        let (key, value) = (format!("k{}", i % KEYS), i.to_string());
        let record = FutureRecord::to(&topic).key(&key).payload(&value);
        deliveries.push_back((i, producer.send_result(record).map_err(|(e, _)| format!("record {i} not enqueued: {e}"))?));
        sent.fetch_add(1, Ordering::SeqCst);
        while deliveries.len() >= WINDOW || (i + 1 == RECORDS && !deliveries.is_empty()) {
            let (i, delivery) = deliveries.pop_front().expect("a delivery");
            match delivery.await {
                Ok(Ok(_)) => acked.fetch_add(1, Ordering::SeqCst),
                Ok(Err((e, _))) => return Err(format!("record {i}: {e}")),
                Err(_) => return Err(format!("record {i}: the producer was dropped")),
            };
        }
    }
    Ok(())
}

/// Every record of `topic` as (partition, key, value), in offset order per partition.
fn read_topic(settings: &KafkaSettings, topic: &str) -> Vec<(i32, String, usize)> {
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("idempotence-check-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut left = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
        assert_eq!(low, 0, "partition {p}: nothing was trimmed");
        if high > 0 {
            left.insert(p, high);
            assignment.add_partition_offset(topic, p, Offset::Beginning).expect("assignment");
        }
    }
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !left.is_empty() {
        assert!(Instant::now() < deadline, "{topic}: partitions {left:?} not read to their end within 60 s");
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                let value: usize = std::str::from_utf8(m.payload().unwrap_or_default()).expect("utf-8").parse().expect("a number");
                out.push((m.partition(), key, value));
                if left.get(&m.partition()).is_some_and(|high| m.offset() + 1 >= *high) {
                    left.remove(&m.partition());
                }
            }
            Some(Err(e)) => panic!("{topic}: {e}"),
            None => {}
        }
    }
    out
}

async fn survives_restart(kill: bool) {
    let label = if kill { "sigkill" } else { "sigterm" };
    let dir = std::env::temp_dir().join(format!("switchboard-idempotence-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut broker = ScratchBroker::start(&dir, free_port(), "sqlite://nisshi.db");
    let settings = broker.settings();
    let topic = format!("idempotence-{label}");
    ensure_topics(&settings, &[&topic], PARTITIONS).await.expect("topic");

    let producer: FutureProducer = settings
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("idempotent producer");
    let (sent, acked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let sending = tokio::spawn(produce_all(producer, topic.clone(), sent.clone(), acked.clone()));

    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < RECORDS / 4 {
        assert!(Instant::now() < deadline, "{label}: only {} records acked within 60 s", acked.load(Ordering::SeqCst));
        assert!(!sending.is_finished(), "{label}: the producer stopped early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (before, in_flight) = (acked.load(Ordering::SeqCst), sent.load(Ordering::SeqCst) - acked.load(Ordering::SeqCst));
    tokio::task::block_in_place(|| if kill { broker.kill_and_restart() } else { broker.restart() });
    eprintln!("{label}: restarted the broker after {before} of {RECORDS} acks, with {in_flight} sent and not yet acked");
    assert!(before < RECORDS && in_flight > 0, "{label}: nothing was in flight at the restart; it proves nothing");

    let outcome = tokio::time::timeout(Duration::from_secs(180), sending)
        .await
        .unwrap_or_else(|_| panic!("{label}: not every record acked within 180 s of the restart ({} acked)", acked.load(Ordering::SeqCst)))
        .expect("producer task");
    outcome.unwrap_or_else(|e| panic!("{label}: a delivery failed after the restart: {e}"));
    assert_eq!(acked.load(Ordering::SeqCst), RECORDS);

    let records = tokio::task::block_in_place(|| read_topic(&settings, &topic));
    let mut count = vec![0usize; RECORDS];
    let mut last_per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (partition, key, value) in &records {
        count[*value] += 1;
        if let Some(previous) = last_per_key.insert(key.clone(), *value) {
            assert!(previous < *value, "{label}: key {key} on partition {partition}: {value} after {previous}");
        }
    }
    let missing: Vec<usize> = (0..RECORDS).filter(|i| count[*i] == 0).collect();
    let twice: Vec<usize> = (0..RECORDS).filter(|i| count[*i] > 1).collect();
    assert!(missing.is_empty() && twice.is_empty(), "{label}: missing {missing:?}, more than once {twice:?}");

    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_keeps_producing_across_a_broker_restart() {
    survives_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_keeps_producing_across_a_broker_crash() {
    survives_restart(true).await;
}
