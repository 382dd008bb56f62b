//! A backfill in the middle of live traffic never changes what the live run recorded:
//!
//! 1. the live topology answers turns A, is stopped; turns B arrive and the live group's offsets
//!    are moved past them (turns the live run skipped: the gap); the live topology starts again,
//!    answers turns C and keeps running while turns D arrive during the backfill;
//! 2. `switchboard replay --fill-gaps` over A, B and C writes into the live database: every row
//!    recorded before it is byte for byte the same afterwards (no row of it rewritten, not even
//!    with equal content: the raw rows, `inserted_at` included, and their count), each turn of B
//!    gets exactly one outcome, no other turn gets a second one, every row it added belongs to a
//!    turn of B, and no dialogue is closed (they are all still open live);
//! 3. `--into` the live database is refused (exit 2); a replay without a target writes every
//!    turn into `<live>_backfill` and again leaves the live rows as they were.
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh`).

mod common;

use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::Event;
use switchboard_sources::admin::ensure_topics;

const PARTITIONS: i32 = 4;

/// Commits `offsets` for `group` on `topic` (what an operator's offset reset does).
fn commit_offsets(kafka: &KafkaSettings, topic: &str, group: &str, offsets: &BTreeMap<i32, i64>) {
    let consumer: BaseConsumer = kafka.client_config().set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o)).expect("tpl");
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit the offsets past the gap");
}

fn offsets(map: &BTreeMap<i32, i64>) -> String {
    map.iter().map(|(p, o)| format!("{p}:{o}")).collect::<Vec<_>>().join(",")
}

/// Every raw row (no `FINAL`: not yet merged versions count) of the events table, each column
/// as text, `inserted_at` included, sorted.
async fn raw_rows(settings: &ClickHouseSettings, database: &str) -> Vec<(String, String)> {
    clickhouse_on(settings, database)
        .client()
        .query(
            "SELECT toString(event_id), concat(dialogue_id, '|', toString(kind), '|', toString(schema_version), '|', \
             toString(occurred_at), '|', toString(occurred_at_ms), '|', toString(intent), '|', toString(confidence), '|', \
             toString(latency_ms), '|', toString(in_reply_to), '|', client_msg_id, '|', text, '|', toString(model_version), '|', \
             toString(kb_version), '|', toString(reason), '|', payload, '|', toString(inserted_at), '|', agent) \
             FROM events ORDER BY event_id, inserted_at",
        )
        .fetch_all::<(String, String)>()
        .await
        .expect("raw rows")
}

/// Outcomes (answers, handoffs, queued turns) per turn, under FINAL.
async fn outcomes(settings: &ClickHouseSettings, database: &str) -> BTreeMap<String, u64> {
    clickhouse_on(settings, database)
        .client()
        .query(
            "SELECT toString(in_reply_to), count() FROM events FINAL \
             WHERE kind IN ('answer_generated', 'handoff_requested', 'turn_queued') GROUP BY in_reply_to",
        )
        .fetch_all::<(String, u64)>()
        .await
        .expect("outcomes")
        .into_iter()
        .collect()
}

/// Rows (under FINAL) that are not in `before`: (event id, dialogue, in_reply_to, kind).
async fn rows_since(settings: &ClickHouseSettings, database: &str, before: &BTreeSet<String>) -> Vec<(String, String, String, String)> {
    clickhouse_on(settings, database)
        .client()
        .query("SELECT toString(event_id), dialogue_id, toString(in_reply_to), toString(kind) FROM events FINAL")
        .fetch_all::<(String, String, String, String)>()
        .await
        .expect("rows")
        .into_iter()
        .filter(|(id, ..)| !before.contains(id))
        .collect()
}

async fn wait_answered(settings: &ClickHouseSettings, database: &str, turns: &[Event]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let have = outcomes(settings, database).await;
        let missing = turns.iter().filter(|t| !have.contains_key(&t.event_id.to_string())).count();
        if missing == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{missing} of {} turns have no outcome within {WAIT:?}", turns.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn turns(producer: &FutureProducer, topic: &str, dialogues: &[String], round: usize) -> Vec<Event> {
    let texts = utterances();
    let mut out = Vec::new();
    for (i, dialogue) in dialogues.iter().enumerate() {
        let text = &texts[(i * 7 + round * 13) % texts.len()];
        out.push(say(producer, topic, dialogue, &format!("m{round}-{i}"), text).await);
    }
    out
}

fn replay(args: &[&str], config: &str, database: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("replay")
        .args(args)
        .args(["--config", config])
        .env("SWITCHBOARD_CLICKHOUSE_DATABASE", database)
        .env("SWITCHBOARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run switchboard replay")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_gaps_writes_only_the_turns_the_live_run_never_answered() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run = run_id();
    let (input, replies, dead) = (format!("test.gaps.user-said.{run}"), format!("test.gaps.bot-said.{run}"), format!("test.gaps.dead.{run}"));
    ensure_topics(&kafka, &[&input, &replies, &dead], PARTITIONS).await.expect("topics (is the broker up?)");
    let database = format!("sbtest_gaps_{}", &run[..16]);
    create_database(&clickhouse, &database).await;
    let work = std::env::temp_dir().join(format!("switchboard-gaps-{run}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let config_path = work.join("config.yaml");
    let group = format!("gaps-{run}");
    write_config(&config_path, &input, &replies, &dead, &group);
    // Dialogues stay open for an hour: any close is one the backfill invented.
    let mut text = std::fs::read_to_string(&config_path).expect("read config");
    text.push_str("idle_timeout_secs: 3600\n");
    std::fs::write(&config_path, text).expect("write config");
    let config = config_path.to_string_lossy().into_owned();
    let log = work.join("run.log");
    let producer: FutureProducer = kafka.client_config().set("acks", "all").create().expect("producer");
    let old: Vec<String> = (0..12).map(|i| format!("gap-{}-{i:02}", &run[..10])).collect();
    let only_in_gap: Vec<String> = (0..6).map(|i| format!("gapnew-{}-{i:02}", &run[..10])).collect();
    let later: Vec<String> = (0..8).map(|i| format!("gaplive-{}-{i:02}", &run[..10])).collect();

    // 1. A answered live; B skipped; C answered live.
    let mut live = spawn_switchboard(&["run", "--workers", "2", "--config", &config], &database, &log, "info");
    let a = turns(&producer, &input, &old, 0).await;
    wait_answered(&clickhouse, &database, &a).await;
    assert!(stop(&mut live, Duration::from_secs(60)).is_some_and(|s| s.success()), "the live run stops on SIGTERM");
    let mut b = turns(&producer, &input, &old, 1).await;
    b.extend(turns(&producer, &input, &only_in_gap, 1).await);
    commit_offsets(&kafka, &input, &group, &high_watermarks(&kafka, &input, PARTITIONS));
    let mut live = spawn_switchboard(&["run", "--workers", "2", "--config", &config], &database, &log, "info");
    let c = turns(&producer, &input, &old, 2).await;
    wait_answered(&clickhouse, &database, &c).await;
    let end = high_watermarks(&kafka, &input, PARTITIONS);
    let answered_live = outcomes(&clickhouse, &database).await;
    for turn in &b {
        assert!(!answered_live.contains_key(&turn.event_id.to_string()), "the live run answered a turn of the gap");
    }
    let before = raw_rows(&clickhouse, &database).await;
    let before_ids: BTreeSet<String> = before.iter().map(|(id, _)| id.clone()).collect();

    // 2. Fill the gaps while D arrives and the live run answers it.
    let from = offsets(&(0..PARTITIONS).map(|p| (p, 0)).collect());
    let to = offsets(&end);
    let backfill = {
        let (config, database, from, to) = (config.clone(), database.clone(), from.clone(), to.clone());
        std::thread::spawn(move || replay(&["--fill-gaps", "--from-offset", &from, "--to-offset", &to, "--workers", "2"], &config, &database))
    };
    let d = turns(&producer, &input, &later, 3).await;
    let output = backfill.join().expect("replay thread");
    assert!(output.status.success(), "replay --fill-gaps failed: {}", String::from_utf8_lossy(&output.stderr));
    wait_answered(&clickhouse, &database, &d).await;
    assert!(stop(&mut live, Duration::from_secs(60)).is_some_and(|s| s.success()), "the live run stops on SIGTERM");

    let after = raw_rows(&clickhouse, &database).await;
    let kept: Vec<&(String, String)> = after.iter().filter(|(id, _)| before_ids.contains(id)).collect();
    assert_eq!(kept.len(), before.len(), "rows of the live run were written again (or merged away)");
    for (was, now) in before.iter().zip(kept) {
        assert_eq!(was, now, "a row of the live run changed");
    }
    let outcomes_after = outcomes(&clickhouse, &database).await;
    for turn in b.iter().chain(&a).chain(&c).chain(&d) {
        assert_eq!(outcomes_after.get(&turn.event_id.to_string()), Some(&1), "turn {} has not exactly one outcome", turn.event_id);
    }
    let b_ids: BTreeSet<String> = b.iter().map(|t| t.event_id.to_string()).collect();
    let d_dialogues: BTreeSet<&String> = later.iter().collect();
    let added = rows_since(&clickhouse, &database, &before_ids).await;
    for (id, dialogue, in_reply_to, kind) in &added {
        if d_dialogues.contains(dialogue) {
            continue;
        }
        assert!(b_ids.contains(id) || b_ids.contains(in_reply_to), "the backfill added {kind} {id} of {dialogue}, which is not about a turn of the gap");
    }
    let said: BTreeSet<&String> = added.iter().filter(|(_, _, _, k)| k == "user_said").map(|(id, ..)| id).collect();
    assert_eq!(said.len(), b.len() + d.len(), "the gap's turns are recorded (and D's, by the live run)");
    assert_eq!(count_kind(&clickhouse, &database, "dialogue_closed").await, 0, "a dialogue still open live was closed");

    // 3. Into the live database: refused. No target: `<live>_backfill`, live untouched.
    let refused = replay(&["--from-offset", &from, "--to-offset", &to, "--into", &database], &config, &database);
    assert_eq!(refused.status.code(), Some(2), "--into the live database: {}", String::from_utf8_lossy(&refused.stderr));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("live database"));
    let beside = replay(&["--from-offset", &from, "--to-offset", &to], &config, &database);
    assert!(beside.status.success(), "replay into the default target: {}", String::from_utf8_lossy(&beside.stderr));
    let target = format!("{database}_backfill");
    let copied = outcomes(&clickhouse, &target).await;
    for turn in a.iter().chain(&b).chain(&c) {
        assert_eq!(copied.get(&turn.event_id.to_string()), Some(&1), "{target} lacks turn {}", turn.event_id);
    }
    assert_eq!(copied.len(), a.len() + b.len() + c.len(), "{target} holds the range's turns only");
    assert_eq!(raw_rows(&clickhouse, &database).await, after, "the default replay touched the live database");

    drop_database(&clickhouse, &target).await;
    drop_database(&clickhouse, &database).await;
    let _ = std::fs::remove_dir_all(&work);
}
