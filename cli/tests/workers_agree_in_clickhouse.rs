//! `switchboard run --workers 2` writes the same ClickHouse contents as `--workers 1`: the same
//! 2,000 turns (multi-turn dialogues with slot filling, handoffs and malformed records) are run
//! once with each worker count into two separate databases, and every row is compared on all
//! columns except the wall-clock ones (`occurred_at*`, `latency_ms`, `inserted_at`, `payload`);
//! confidences, from batched float inference, must agree within 2e-4.
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh` provides both).

use rdkafka::producer::{FutureProducer, FutureRecord};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;
use switchboard_sources::admin::ensure_topics;

const DIALOGUES: usize = 400;
const TURNS: usize = 5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}


#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, clickhouse::Row)]
struct Comparable {
    event_id: String,
    dialogue_id: String,
    kind: String,
    intent: String,
    confidence: String,
    in_reply_to: String,
    client_msg_id: String,
    text: String,
    model_version: String,
    kb_version: String,
    reason: String,
}

async fn rows(settings: &ClickHouseSettings, database: &str) -> Vec<Comparable> {
    let sink = ClickHouseSink::new(&ClickHouseSettings { database: database.to_string(), ..settings.clone() });
    sink.client()
        .query(
            "SELECT toString(event_id), dialogue_id, toString(kind), toString(intent), toString(confidence), \
             toString(in_reply_to), client_msg_id, text, toString(model_version), toString(kb_version), toString(reason) \
             FROM events FINAL ORDER BY event_id",
        )
        .fetch_all::<Comparable>()
        .await
        .expect("select")
}

async fn replies(settings: &ClickHouseSettings, database: &str) -> u64 {
    let sink = ClickHouseSink::new(&ClickHouseSettings { database: database.to_string(), ..settings.clone() });
    sink.client()
        .query("SELECT uniqExact(in_reply_to) FROM events FINAL WHERE kind IN ('answer_generated', 'handoff_requested', 'turn_queued')")
        .fetch_one::<u64>()
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_write_what_one_worker_writes() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run_id = EventId::new_v7().to_string().replace('-', "");
    let input = format!("test.workers.user-said.{run_id}");
    ensure_topics(&kafka, &[&input], 8).await.expect("topic (is the broker up?)");

    let lines = std::fs::read_to_string(root().join("operators/data/intents/test.zh.jsonl")).expect("data");
    let texts: Vec<String> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(String::from))
        .collect();
    let producer: FutureProducer = kafka.client_config().create().expect("producer");
    let mut expected_turns = 0;
    for turn in 0..TURNS {
        for d in 0..DIALOGUES {
            // Slot filling: some dialogues answer the bot's question for an order number.
            let text = if turn > 0 && d % 5 == 0 { format!("订单号 {}", 2_024_113_000 + d) } else { texts[(d * 7 + turn * 13) % texts.len()].clone() };
            let event = Event::new(
                format!("w-{d:04}"),
                1_764_000_000_000 + (turn * DIALOGUES + d) as i64,
                EventBody::UserSaid(UserSaid { client_msg_id: format!("m-{d}-{turn}"), user_id: "u".into(), locale: Locale::ZhCn, text }),
            );
            let payload = encode(&event);
            producer
                .send(FutureRecord::to(&input).key(&event.dialogue_id).payload(&payload), Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .expect("produced");
            expected_turns += 1;
        }
    }
    // Invalid records go to the dead letter, with a handoff, in both runs alike.
    for i in 0..5 {
        let bad = format!("{{\"kind\":\"user_said\",\"dialogue_id\":\"w-bad-{i}\",\"client_msg_id\":\"x{i}\",\"schema_version\":1}}");
        producer
            .send(FutureRecord::to(&input).key(&format!("w-bad-{i}")).payload(bad.as_bytes()), Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }

    let admin = ClickHouseSink::new(&clickhouse);
    let work = std::env::temp_dir().join(format!("switchboard-workers-{run_id}"));
    std::fs::create_dir_all(&work).expect("work dir");
    for workers in [1usize, 2] {
        let database = format!("sbtest_w{workers}_{}", &run_id[..16]);
        admin.create_database(&database).await.expect("create database");
        let config = work.join(format!("config-{workers}.yaml"));
        std::fs::write(
            &config,
            format!(
                "input_topic: {input}\nreplies_topic: test.workers.bot-said.{run_id}\ndead_letter_topic: test.workers.dead.{run_id}\n\
                 group_id: workers-{workers}-{run_id}\nmetrics_listen: \"\"\n"
            ),
        )
        .expect("config");
        ensure_topics(&kafka, &[&format!("test.workers.bot-said.{run_id}"), &format!("test.workers.dead.{run_id}")], 8)
            .await
            .expect("topics");
        let log = std::fs::File::create(work.join(format!("run-{workers}.log"))).expect("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["run", "--workers", &workers.to_string(), "--config"])
            .arg(&config)
            .env("SWITCHBOARD_CLICKHOUSE_DATABASE", &database)
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start switchboard run");
        let deadline = Instant::now() + Duration::from_secs(600);
        while replies(&clickhouse, &database).await < (expected_turns + 5) as u64 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("switchboard run --workers {workers} exited: {status}; see {}", work.display());
            }
            assert!(Instant::now() < deadline, "--workers {workers} did not finish in time");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Every reply is durable; stop it cleanly.
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    let one = rows(&clickhouse, &format!("sbtest_w1_{}", &run_id[..16])).await;
    let two = rows(&clickhouse, &format!("sbtest_w2_{}", &run_id[..16])).await;
    assert!(one.len() >= expected_turns * 4, "{} rows", one.len());
    // Confidences come from batched float inference, and batches are cut differently with one
    // or two workers: they agree to the fourth decimal's rounding, not always bit for bit.
    let same = |a: &Comparable, b: &Comparable| {
        let close = match (a.confidence.parse::<f64>(), b.confidence.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= 2e-4,
            _ => a.confidence == b.confidence,
        };
        close && Comparable { confidence: String::new(), ..a.clone() } == Comparable { confidence: String::new(), ..b.clone() }
    };
    let differ: Vec<_> = one.iter().zip(&two).filter(|(a, b)| !same(a, b)).take(5).collect();
    assert!(differ.is_empty() && one.len() == two.len(), "{} vs {} rows; first differences: {differ:#?}", one.len(), two.len());
    for workers in [1, 2] {
        let _ = admin.client().query(&format!("DROP DATABASE IF EXISTS sbtest_w{workers}_{}", &run_id[..16])).execute().await;
    }
    let _ = std::fs::remove_dir_all(&work);
}
