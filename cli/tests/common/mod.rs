//! Helpers shared by the topology's integration tests that run the `switchboard` binary against
//! the dev services (broker, ClickHouse, demo models): fresh topics and databases per run,
//! producing turns, starting and stopping processes, and reading ClickHouse back.
//!
//! Each test file that needs them says `mod common;`; not every file uses every helper.
#![allow(dead_code)]

pub mod admin_http;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh id for this run's topics, databases and groups (hex, no dashes).
pub fn run_id() -> String {
    EventId::new_v7().to_string().replace('-', "")
}

/// The Chinese utterances of the intent test set.
pub fn utterances() -> Vec<String> {
    let lines = std::fs::read_to_string(root().join("operators/data/intents/test.zh.jsonl")).expect("intent test data");
    lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(String::from))
        .collect()
}

/// Creates `database` with the project's migration (the same SQL deploy/dev/up.sh applies).
pub async fn create_database(settings: &ClickHouseSettings, database: &str) {
    ClickHouseSink::new(settings).create_database(database).await.expect("create database");
}

/// Drops a test database (best effort).
pub async fn drop_database(settings: &ClickHouseSettings, database: &str) {
    let sink = ClickHouseSink::new(settings);
    let _ = sink.client().query(&format!("DROP DATABASE IF EXISTS {database}")).execute().await;
}

/// A ClickHouse client on `database`.
pub fn clickhouse_on(settings: &ClickHouseSettings, database: &str) -> ClickHouseSink {
    ClickHouseSink::new(&ClickHouseSettings { database: database.to_string(), ..settings.clone() })
}

/// Writes a topology configuration naming this run's topics and group (metrics off).
pub fn write_config(path: &Path, input: &str, replies: &str, dead_letter: &str, group: &str) {
    std::fs::write(
        path,
        format!(
            "input_topic: {input}\nreplies_topic: {replies}\ndead_letter_topic: {dead_letter}\n\
             group_id: {group}\nmetrics_listen: \"\"\nbatch_max: 256\n"
        ),
    )
    .expect("write config");
}

/// Produces `dialogues × turns` Chinese turns (turn-major order, some answering a slot
/// question with an order number) with Kafka timestamps `base_ms + i × step_ms`; returns
/// the UserSaid events with their timestamps, in produce order.
pub async fn produce_turns(
    kafka: &KafkaSettings,
    topic: &str,
    prefix: &str,
    dialogues: usize,
    turns: usize,
    base_ms: i64,
    step_ms: i64,
) -> Vec<(i64, Event)> {
    let producer: FutureProducer = kafka.client_config().set("linger.ms", "5").create().expect("producer");
    let texts = utterances();
    let mut produced = Vec::with_capacity(dialogues * turns);
    let mut deliveries = Vec::new();
    for turn in 0..turns {
        for d in 0..dialogues {
            let i = produced.len() as i64;
            let timestamp = base_ms + i * step_ms;
            let text = if turn > 0 && d % 5 == 0 {
                format!("订单号 {}", 2_024_113_000 + d)
            } else {
                texts[(d * 7 + turn * 13) % texts.len()].clone()
            };
            let event = Event::new(
                format!("{prefix}{d:05}"),
                timestamp,
                EventBody::UserSaid(UserSaid { client_msg_id: format!("m-{d}-{turn}"), user_id: "u".into(), locale: Locale::ZhCn, text }),
            );
            let payload = encode(&event);
            let record = FutureRecord::to(topic).key(&event.dialogue_id).payload(&payload).timestamp(timestamp);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueued"));
            produced.push((timestamp, event));
            if deliveries.len() >= 1_000 {
                for d in deliveries.drain(..) {
                    d.await.expect("delivery reported").map_err(|(e, _)| e).expect("produced");
                }
            }
        }
    }
    for d in deliveries {
        d.await.expect("delivery reported").map_err(|(e, _)| e).expect("produced");
    }
    produced
}

/// A child process that is killed (SIGKILL) when dropped, so a failing test leaves nothing running.
pub struct Guarded(pub Child);

impl std::ops::Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `switchboard ARGS…` with this ClickHouse database, logging to `log` (appended).
pub fn spawn_switchboard(args: &[&str], database: &str, log: &Path, log_level: &str) -> Guarded {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    Guarded(Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_CLICKHOUSE_DATABASE", database)
        .env("SWITCHBOARD_LOG", log_level)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start switchboard"))
}

/// Waits for `child` to exit, at most `limit`; None when it is still running.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM (finish the epoch, commit), then SIGKILL if it has not stopped within `grace`.
pub fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    wait_exit(child, grace).or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        None
    })
}

/// SIGTERM to every child at once (a cluster's processes finish their epochs together), then
/// waits for each, SIGKILL after `grace`; the exit statuses (None where it had to be killed).
pub fn stop_all(children: &mut [Guarded], grace: Duration) -> Vec<Option<ExitStatus>> {
    for child in children.iter() {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    let deadline = Instant::now() + grace;
    children
        .iter_mut()
        .map(|child| {
            wait_exit(child, deadline.saturating_duration_since(Instant::now())).or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                None
            })
        })
        .collect()
}

/// (reply rows, distinct turns replied to) under FINAL: answers, handoffs and turns queued for an
/// agent (a dialogue handed off queues its later turns instead of answering them).
pub async fn reply_counts(settings: &ClickHouseSettings, database: &str) -> (u64, u64) {
    clickhouse_on(settings, database)
        .client()
        .query("SELECT count(), uniqExact(in_reply_to) FROM events FINAL WHERE kind IN ('answer_generated', 'handoff_requested', 'turn_queued')")
        .fetch_one::<(u64, u64)>()
        .await
        .unwrap_or((0, 0))
}

/// Rows of one kind under FINAL.
pub async fn count_kind(settings: &ClickHouseSettings, database: &str, kind: &str) -> u64 {
    clickhouse_on(settings, database)
        .client()
        .query("SELECT count() FROM events FINAL WHERE kind = ?")
        .bind(kind)
        .fetch_one::<u64>()
        .await
        .expect("count by kind")
}

/// Every column of a row that does not depend on the wall clock (`inserted_at` always does;
/// `occurred_at*` and `latency_ms` do for live runs, so `with_times` leaves them out).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, clickhouse::Row)]
pub struct Comparable {
    pub event_id: String,
    pub dialogue_id: String,
    pub kind: String,
    pub intent: String,
    pub confidence: String,
    pub in_reply_to: String,
    pub client_msg_id: String,
    pub text: String,
    pub model_version: String,
    pub kb_version: String,
    pub reason: String,
    pub times: String,
}

/// All rows under FINAL, ordered by event id; `with_times` adds occurred_at_ms, latency_ms
/// and payload (deterministic under virtual time, as in replay).
pub async fn comparable_rows(settings: &ClickHouseSettings, database: &str, with_times: bool) -> Vec<Comparable> {
    let times = if with_times { "concat(toString(occurred_at_ms), '/', toString(latency_ms), '/', payload)" } else { "''" };
    clickhouse_on(settings, database)
        .client()
        .query(&format!(
            "SELECT toString(event_id), dialogue_id, toString(kind), toString(intent), toString(confidence), \
             toString(in_reply_to), client_msg_id, text, toString(model_version), toString(kb_version), toString(reason), {times} \
             FROM events FINAL ORDER BY event_id"
        ))
        .fetch_all::<Comparable>()
        .await
        .expect("select rows")
}

/// The first few differences between two row sets (empty when they agree). Confidences come
/// from batched float inference and batches are cut differently between runs, so they agree
/// within 2e-4, not always bit for bit; so does the confidence inside `payload`.
pub fn row_differences(a: &[Comparable], b: &[Comparable]) -> Vec<String> {
    let mut out = Vec::new();
    if a.len() != b.len() {
        out.push(format!("{} rows vs {} rows", a.len(), b.len()));
    }
    let close = |x: &str, y: &str| match (x.parse::<f64>(), y.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 2e-4,
        _ => x == y,
    };
    for (x, y) in a.iter().zip(b) {
        let same = close(&x.confidence, &y.confidence)
            && same_payload_times(&x.times, &y.times)
            && Comparable { confidence: String::new(), times: String::new(), ..x.clone() }
                == Comparable { confidence: String::new(), times: String::new(), ..y.clone() };
        if !same {
            out.push(format!("{x:?}\n  vs {y:?}"));
        }
        if out.len() >= 5 {
            break;
        }
    }
    out
}

/// `occurred_at_ms/latency_ms/payload`: the times equal, the payload JSON equal but for
/// confidences within 2e-4.
fn same_payload_times(a: &str, b: &str) -> bool {
    let split = |s: &str| {
        let mut parts = s.splitn(3, '/');
        (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string())
    };
    let (a_at, a_lat, a_payload) = split(a);
    let (b_at, b_lat, b_payload) = split(b);
    if a_at != b_at || a_lat != b_lat {
        return false;
    }
    match (serde_json::from_str::<serde_json::Value>(&a_payload), serde_json::from_str::<serde_json::Value>(&b_payload)) {
        (Ok(x), Ok(y)) => json_close(&x, &y),
        _ => a_payload == b_payload,
    }
}

fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 2e-4,
            _ => x == y,
        },
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w))),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_close(v, w)),
        _ => a == b,
    }
}

/// The folder of the recordings shipped with golden files.
pub fn recordings_dir() -> PathBuf {
    root().join("replay/tests/recordings")
}

/// Every shipped recording (`*.ndjson` that is not a `*.golden.ndjson`), sorted.
pub fn recordings() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(recordings_dir())
        .expect("recordings folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".ndjson") && !name.ends_with(".golden.ndjson")
        })
        .collect();
    found.sort();
    found
}

/// Reads a whole topic (up to its high watermarks now) and returns, per turn replied to, the
/// reply event ids seen (duplicates of one reply share their id).
pub fn replies_on_topic(kafka: &KafkaSettings, topic: &str, group: &str) -> HashMap<EventId, Vec<EventId>> {
    let consumer: BaseConsumer = kafka.client_config().set("group.id", group).create().expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut tpl = TopicPartitionList::new();
    let mut high = BTreeMap::new();
    for &p in &partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
        high.insert(p, consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1);
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen: BTreeMap<i32, i64> = BTreeMap::new();
    let mut replies: HashMap<EventId, Vec<EventId>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while high.iter().any(|(p, h)| seen.get(p).copied().unwrap_or(0) < *h) {
        assert!(Instant::now() < deadline, "could not read {topic} to its end");
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(500)) {
            seen.insert(msg.partition(), msg.offset() + 1);
            let event = decode(msg.payload().unwrap_or_default()).expect("reply decodes");
            let in_reply_to = match &event.body {
                EventBody::AnswerGenerated(a) => a.in_reply_to,
                EventBody::HandoffRequested(h) => h.in_reply_to,
                EventBody::TurnQueued(q) => q.in_reply_to,
                // What the session says to agents and gateways about the dialogue's owner.
                EventBody::OwnershipChanged(_) | EventBody::AgentSaid(_) | EventBody::AgentActionRefused(_) => continue,
                other => panic!("unexpected {:?} on {topic}", other.kind()),
            };
            replies.entry(in_reply_to).or_default().push(event.event_id);
        }
    }
    replies
}

/// The committed offsets of `group` on `topic` (partitions without a commit are left out).
pub fn committed_offsets(kafka: &KafkaSettings, topic: &str, group: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = kafka.client_config().set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// The high watermark of every partition.
pub fn high_watermarks(kafka: &KafkaSettings, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = kafka.client_config().create().expect("consumer");
    (0..partitions).map(|p| (p, consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1)).collect()
}

/// How long the turn helpers wait for a reply or a saved state.
pub const WAIT: Duration = Duration::from_secs(120);

/// Produces one user turn and returns its event.
pub async fn say(producer: &FutureProducer, topic: &str, dialogue: &str, message: &str, text: &str) -> Event {
    let event = Event::new(
        dialogue,
        switchboard_topology::time::wall_clock_ms(),
        EventBody::UserSaid(UserSaid { client_msg_id: message.into(), user_id: "u".into(), locale: Locale::ZhCn, text: text.into() }),
    );
    let payload = encode(&event);
    producer
        .send(FutureRecord::to(topic).key(dialogue).payload(&payload), Duration::from_secs(20))
        .await
        .map_err(|(e, _)| e)
        .expect("turn produced");
    event
}

/// The reply to `turn` once ClickHouse has it: (kind, intent, text).
pub async fn reply_to(settings: &ClickHouseSettings, database: &str, turn: &Event) -> (String, String, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = clickhouse_on(settings, database)
            .client()
            .query(
                "SELECT toString(kind), toString(intent), text FROM events FINAL \
                 WHERE kind IN ('answer_generated', 'handoff_requested') AND in_reply_to = toUUID(?)",
            )
            .bind(turn.event_id.to_string())
            .fetch_all::<(String, String, String)>()
            .await
            .unwrap_or_default();
        if let Some(row) = rows.into_iter().next() {
            return row;
        }
        assert!(Instant::now() < deadline, "no reply to {} within {WAIT:?}", turn.event_id);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `dialogue`'s state is saved as open.
pub async fn wait_saved(settings: &ClickHouseSettings, database: &str, dialogue: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let state = clickhouse_on(settings, database)
            .client()
            .query("SELECT state FROM sessions FINAL WHERE dialogue_id = ? AND closed = 0")
            .bind(dialogue)
            .fetch_all::<String>()
            .await
            .unwrap_or_default();
        if let Some(state) = state.into_iter().next() {
            return state;
        }
        assert!(Instant::now() < deadline, "the state of {dialogue} was not saved within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `switchboard kb load FILES --config CONFIG`; returns the snapshot version it prints.
pub fn kb_load(files: &[&Path], config: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["kb", "load"])
        .args(files)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run kb load");
    assert!(output.status.success(), "kb load failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
