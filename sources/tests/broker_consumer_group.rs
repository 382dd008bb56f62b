//! The real broker (nisshi, started by deploy/dev/up.sh) works with rdkafka the way the topology
//! relies on: idempotent produce, consumer groups with manual commit, and a restarted consumer
//! that resumes exactly from the committed offsets; deleting a topic deletes that topic only.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::*;
use switchboard_sources::admin::{delete_topics, ensure_topics};

const TURNS: usize = 100;
const FIRST_PART: usize = 60;

fn consumer(settings: &KafkaSettings, group: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = settings
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Receives `n` messages (or fails after 30 s), returning (event id, partition, offset).
async fn take(consumer: &StreamConsumer, n: usize) -> Vec<(EventId, i32, i64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {n} messages", out.len()))
            .expect("recv");
        let event = decode(msg.payload().expect("payload")).expect("decodes");
        out.push((event.event_id, msg.partition(), msg.offset()));
    }
    out
}

#[tokio::test]
async fn restarted_consumer_resumes_from_committed_offsets() {
    let settings = KafkaSettings::from_env().expect("settings");
    let topic = format!("test.group-resume.{}", EventId::new_v7());
    ensure_topics(&settings, &[&topic], 4)
        .await
        .unwrap_or_else(|e| panic!("{e} (is the broker up? deploy/dev/up.sh)"));

    let producer: FutureProducer = settings
        .client_config()
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let mut sent = BTreeSet::new();
    for i in 0..TURNS {
        let event = Event::new(
            format!("d-{}", i % 7),
            1_764_000_000_000 + i as i64,
            EventBody::UserSaid(UserSaid {
                client_msg_id: format!("m-{i}"),
                user_id: "u".into(),
                locale: Locale::ZhCn,
                text: format!("第{i}句"),
            }),
        );
        let payload = encode(&event);
        producer
            .send(FutureRecord::to(&topic).key(&event.dialogue_id).payload(&payload), Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("broker acked");
        sent.insert(event.event_id);
    }

    let group = format!("test-group-{}", EventId::new_v7());
    let first = {
        let c = consumer(&settings, &group, &topic);
        let got = take(&c, FIRST_PART).await;
        // Commit exactly what was processed: next offset per partition.
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for (_, p, o) in &got {
            let e = next.entry(*p).or_insert(0);
            *e = (*e).max(o + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &next {
            tpl.add_partition_offset(&topic, *p, Offset::Offset(*o)).expect("tpl");
        }
        c.commit(&tpl, CommitMode::Sync).expect("commit");
        got
    }; // consumer dropped: leaves the group

    let c = consumer(&settings, &group, &topic);
    let rest = take(&c, TURNS - FIRST_PART).await;
    // Nothing more arrives: the restarted consumer did not re-read committed records.
    let extra = tokio::time::timeout(Duration::from_secs(2), c.recv()).await;
    assert!(extra.is_err(), "unexpected extra message after resume");

    let first_ids: BTreeSet<EventId> = first.iter().map(|r| r.0).collect();
    let rest_ids: BTreeSet<EventId> = rest.iter().map(|r| r.0).collect();
    assert_eq!(first_ids.len(), FIRST_PART, "no duplicates in the first run");
    assert!(first_ids.is_disjoint(&rest_ids), "resumed consumer re-read committed records");
    let all: BTreeSet<EventId> = first_ids.union(&rest_ids).copied().collect();
    assert_eq!(all, sent, "every produced record consumed exactly once");
    drop(c);

    // The scratch topic goes, and only it: a second one keeps its record.
    let other = format!("test.group-resume-other.{}", EventId::new_v7());
    ensure_topics(&settings, &[&other], 1).await.expect("second topic");
    producer
        .send(FutureRecord::to(&other).key("k").payload("kept"), Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("broker acked");
    delete_topics(&settings, &[&topic]).await.expect("delete the scratch topic");
    let metadata: BaseConsumer = settings.client_config().create().expect("client");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let names = loop {
        let names: BTreeSet<String> = metadata
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("metadata")
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .collect();
        if !names.contains(&topic) {
            break names;
        }
        assert!(std::time::Instant::now() < deadline, "{topic} still listed 20 s after its deletion");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(names.contains(&other), "deleting {topic} took {other} too: {names:?}");
    let (low, high) = metadata.fetch_watermarks(&other, 0, Duration::from_secs(10)).expect("watermarks");
    assert_eq!((low, high), (0, 1), "{other} kept its record");
    delete_topics(&settings, &[&other]).await.expect("delete the second topic");
}

#[tokio::test]
async fn dead_broker_is_a_clear_error_not_a_hang() {
    let settings = KafkaSettings::plain("127.0.0.1:1");
    let err = tokio::time::timeout(Duration::from_secs(40), ensure_topics(&settings, &["x"], 1))
        .await
        .expect("gives up within 40 s");
    assert!(err.is_err(), "creating a topic on a dead broker must fail");
}
