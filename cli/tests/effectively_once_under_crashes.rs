//! Effectively once, proven against the real broker and ClickHouse: 20,000 turns over 2,000
//! dialogues go through `switchboard run --workers 2`, which is killed with SIGKILL three
//! times at seeded random points and restarted, while the broker is also restarted once.
//! In the end every UserSaid has exactly one answer or handoff in ClickHouse (`FINAL`), and
//! every turn has a reply on the replies topic (duplicates there carry the same event_id).
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh` provides both).

mod common;

use rdkafka::producer::{FutureProducer, FutureRecord};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;
use switchboard_sources::admin::ensure_topics;

const DIALOGUES: usize = 2_000;
const TURNS_PER_DIALOGUE: usize = 10;
const TURNS: usize = DIALOGUES * TURNS_PER_DIALOGUE;

/// A small deterministic generator (xorshift), so the kill points are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn utterances() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("operators/data/intents/test.zh.jsonl")).expect("intent test data");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(String::from))
        .collect()
}

struct Topology {
    config: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Topology {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["run", "--workers", "2", "--config"])
            .arg(&self.config)
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start switchboard run");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// Restarts the topology if it stopped by itself (it is fail-stop by design).
    fn supervise(&mut self, restarts: &mut usize) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                *restarts += 1;
                assert!(*restarts <= 5, "topology keeps exiting ({status}); see {}", self.log.display());
                self.child = None;
                self.start();
            }
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn replies_in_clickhouse(sink: &ClickHouseSink, prefix: &str) -> (u64, u64) {
    let query = "SELECT count(), uniqExact(in_reply_to) FROM events FINAL \
                 WHERE startsWith(dialogue_id, ?) AND kind IN ('answer_generated', 'handoff_requested', 'turn_queued')";
    sink.client().query(query).bind(prefix).fetch_one::<(u64, u64)>().await.unwrap_or((0, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_turn_answered_exactly_once_despite_kill_9_and_a_broker_restart() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let run_id = EventId::new_v7().to_string();
    let prefix = format!("eo-{}-", &run_id[..13]);
    let input = format!("test.eo.user-said.{run_id}");
    let replies = format!("test.eo.bot-said.{run_id}");
    let dead = format!("test.eo.dead-letter.{run_id}");
    ensure_topics(&kafka, &[&input, &replies, &dead], 8).await.expect("topics (is the broker up?)");

    let work = std::env::temp_dir().join(format!("switchboard-eo-{run_id}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "input_topic: {input}\nreplies_topic: {replies}\ndead_letter_topic: {dead}\n\
             group_id: eo-{run_id}\nmetrics_listen: \"\"\nbatch_max: 256\n"
        ),
    )
    .expect("config");

    // 20,000 turns over 2,000 dialogues, produced before the topology starts.
    let producer: FutureProducer =
        kafka.client_config().set("enable.idempotence", "true").set("linger.ms", "5").create().expect("producer");
    let texts = utterances();
    let mut rng = Rng(0x5eed_2026_1124);
    let mut said_ids = Vec::with_capacity(TURNS);
    let base = 1_764_000_000_000i64;
    let mut deliveries = Vec::with_capacity(TURNS);
    for turn in 0..TURNS_PER_DIALOGUE {
        for d in 0..DIALOGUES {
            let text = texts[rng.between(0, texts.len())].clone();
            let event = Event::new(
                format!("{prefix}{d:05}"),
                base + (turn * DIALOGUES + d) as i64,
                EventBody::UserSaid(UserSaid { client_msg_id: format!("m-{d}-{turn}"), user_id: "u".into(), locale: Locale::ZhCn, text }),
            );
            said_ids.push(event.event_id);
            let payload = encode(&event);
            let record = FutureRecord::to(&input).key(&event.dialogue_id).payload(&payload);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueued"));
            if deliveries.len() >= 2_000 {
                for d in deliveries.drain(..) {
                    d.await.expect("delivery reported").map_err(|(e, _)| e).expect("produced");
                }
            }
        }
    }
    for d in deliveries {
        d.await.expect("delivery reported").map_err(|(e, _)| e).expect("produced");
    }

    let clickhouse = ClickHouseSink::new(&ClickHouseSettings::from_env().expect("clickhouse settings"));
    let mut topology = Topology { config, child: None, log: work.join("topology.log") };
    topology.start();

    // Three SIGKILLs at seeded random progress points, and one broker restart between them.
    let mut kill_points: Vec<usize> = (0..3).map(|_| rng.between(TURNS / 10, TURNS * 8 / 10)).collect();
    kill_points.sort_unstable();
    let broker_restart_at = (kill_points[0] + kill_points[1]) / 2;
    let mut broker_restarted = false;
    let mut kills = 0;
    let mut restarts = 0;
    let deadline = Instant::now() + Duration::from_secs(1500);
    loop {
        assert!(Instant::now() < deadline, "not done in time; see {}", topology.log.display());
        let (_, distinct) = replies_in_clickhouse(&clickhouse, &prefix).await;
        let done = distinct as usize;
        if kills < kill_points.len() && done >= kill_points[kills] {
            eprintln!("kill -9 at {done} answered turns");
            topology.kill9();
            topology.start();
            kills += 1;
        }
        if !broker_restarted && done >= broker_restart_at {
            eprintln!("restarting the broker at {done} answered turns");
            let status = Command::new(root().join("deploy/dev/restart-broker.sh")).status().expect("restart broker");
            assert!(status.success(), "broker restart failed");
            broker_restarted = true;
        }
        if done >= TURNS && kills == kill_points.len() {
            break;
        }
        topology.supervise(&mut restarts);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    topology.kill9();

    // ClickHouse: exactly one reply per UserSaid under FINAL, and every UserSaid stored once.
    let (rows, distinct) = replies_in_clickhouse(&clickhouse, &prefix).await;
    assert_eq!(distinct as usize, TURNS, "every turn has a reply");
    assert_eq!(rows as usize, TURNS, "no turn has two replies");
    let said: u64 = clickhouse
        .client()
        .query("SELECT count() FROM events FINAL WHERE startsWith(dialogue_id, ?) AND kind = 'user_said'")
        .bind(&prefix)
        .fetch_one()
        .await
        .expect("count user_said");
    assert_eq!(said as usize, TURNS);

    // The replies topic: every turn answered; duplicates share their event_id.
    let reply_ids = common::replies_on_topic(&kafka, &replies, &format!("eo-check-{run_id}"));
    for (turn, ids) in &reply_ids {
        assert!(ids.iter().all(|id| *id == ids[0]), "two different replies for turn {turn} on the replies topic");
    }
    for id in &said_ids {
        assert!(reply_ids.contains_key(id), "turn {id} missing from the replies topic");
    }
    let _ = std::fs::remove_dir_all(&work);
}
