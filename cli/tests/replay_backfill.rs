//! `switchboard replay` backfills a range of user.said into ClickHouse, idempotently:
//!
//! - 1,200 turns (240 dialogues × 5) go to a fresh topic with record timestamps 10 ms apart;
//! - a replay over the offset range (every partition from 0 to its end) fills a fresh database
//!   and sends the replies to a separate output topic; a second identical replay leaves exactly
//!   the same rows under `FINAL` (every column but `inserted_at`, with the virtual clock the
//!   times are the records' own);
//! - every turn has exactly one answer or handoff, in ClickHouse and on the output topic;
//! - no dialogue is closed: each is still open at the end of the range;
//! - a replay over a time range (the middle half of the timestamps) into another database
//!   covers exactly the turns of that range, each answered once;
//! - replay commits no offsets: not for the topology's consumer group, not for its own;
//! - it ends with one JSON line `{"records","seconds","records_per_second"}` (printed here,
//!   for the README's figure).
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh` provides both).

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Instant;
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::EventId;
use switchboard_sources::admin::ensure_topics;

const DIALOGUES: usize = 240;
const TURNS: usize = 5;
const PARTITIONS: i32 = 8;
const BASE_MS: i64 = 1_764_000_000_000;
const STEP_MS: i64 = 10;
/// The session idle timeout of the replays.
const IDLE_TIMEOUT_MS: i64 = 3_000;

struct Replay {
    records: u64,
    records_per_second: f64,
}

/// Runs `switchboard replay ARGS…` to its end (at most 5 minutes) and parses its JSON line.
fn replay(args: &[&str], config: &std::path::Path, database: &str, log: &std::path::Path) -> Replay {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("replay")
        .args(args)
        .arg("--config")
        .arg(config)
        .args(["--into", database])
        .env("SWITCHBOARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run switchboard replay");
    std::fs::write(log, &output.stderr).expect("log");
    assert!(output.status.success(), "replay {args:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    assert!(started.elapsed().as_secs() < 300, "replay took {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("replay's last line `{line}` is not JSON: {e}"));
    let records = report["records"].as_u64().expect("records");
    let records_per_second = report["records_per_second"].as_f64().expect("records_per_second");
    assert!(report["seconds"].as_f64().is_some_and(|s| s > 0.0), "{report}");
    eprintln!("replay {args:?}: {records} records, {records_per_second:.0} records/s");
    Replay { records, records_per_second }
}

fn offsets(map: &std::collections::BTreeMap<i32, i64>) -> String {
    map.iter().map(|(p, o)| format!("{p}:{o}")).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_idempotent_over_offset_and_time_ranges() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run = run_id();
    let input = format!("test.replay.user-said.{run}");
    let output_topic = format!("test.replay.out.{run}");
    let live_replies = format!("test.replay.bot-said.{run}");
    let dead = format!("test.replay.dead.{run}");
    ensure_topics(&kafka, &[&input, &output_topic, &live_replies, &dead], PARTITIONS).await.expect("topics (is the broker up?)");
    let group = format!("replay-{run}");
    let work = std::env::temp_dir().join(format!("switchboard-replay-{run}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("config.yaml");
    write_config(&config, &input, &live_replies, &dead, &group);
    // A dialogue's turns come 2.4 s of record time apart (240 dialogues, 10 ms apart); with a 3 s
    // idle timeout each dialogue stays open over its 5 turns only if idle closes follow its own
    // partition, not whichever partition a poll happened to read furthest.
    let mut text = std::fs::read_to_string(&config).expect("read config");
    text.push_str(&format!("idle_timeout_secs: {}\n", IDLE_TIMEOUT_MS / 1000));
    std::fs::write(&config, text).expect("write config");

    let prefix = format!("rp-{}-", &run[..12]);
    let turns = produce_turns(&kafka, &input, &prefix, DIALOGUES, TURNS, BASE_MS, STEP_MS).await;
    let high = high_watermarks(&kafka, &input, PARTITIONS);
    assert_eq!(high.values().sum::<i64>() as usize, turns.len(), "every turn is on the topic");

    // 1. The offset range, twice, into one database; the first run also to the output topic.
    let by_offset = format!("sbtest_rpo_{}", &run[..16]);
    create_database(&clickhouse, &by_offset).await;
    let from = offsets(&(0..PARTITIONS).map(|p| (p, 0)).collect());
    let to = offsets(&high);
    let first = replay(
        &["--from-offset", &from, "--to-offset", &to, "--workers", "2", "--output-topic", &output_topic],
        &config,
        &by_offset,
        &work.join("replay-1.log"),
    );
    assert_eq!(first.records as usize, turns.len(), "the first replay read every record of the range");
    // Compared on every column, times and payloads included: on record time every output is
    // stamped with its turn's record time (or its idle deadline), whatever the polls were.
    // Confidences agree to 2e-4 (batched float inference).
    let after_first = comparable_rows(&clickhouse, &by_offset, true).await;
    let (rows, distinct) = reply_counts(&clickhouse, &by_offset).await;
    assert_eq!(distinct as usize, turns.len(), "every turn has a reply");
    assert_eq!(rows as usize, turns.len(), "no turn has two replies");
    assert_eq!(count_kind(&clickhouse, &by_offset, "user_said").await as usize, turns.len());

    let second =
        replay(&["--from-offset", &from, "--to-offset", &to, "--workers", "2"], &config, &by_offset, &work.join("replay-2.log"));
    assert_eq!(second.records, first.records);
    let after_second = comparable_rows(&clickhouse, &by_offset, true).await;
    let differences = row_differences(&after_first, &after_second);
    assert!(differences.is_empty(), "a second replay changed the rows under FINAL: {differences:#?}");
    assert_eq!(reply_counts(&clickhouse, &by_offset).await, (rows, distinct), "still exactly one reply per turn");

    // Each reply is stamped with its turn's record time. No dialogue closes: a dialogue's turns
    // come 2.4 s of record time apart, within the 3 s idle timeout, and at the end of the range
    // every dialogue is still open (its deadline is after the range's last record): a replay
    // stops there, it does not close what may go on after its range.
    let stamped: Vec<(String, u64)> = clickhouse_on(&clickhouse, &by_offset)
        .client()
        .query("SELECT toString(in_reply_to), occurred_at_ms FROM events FINAL WHERE kind IN ('answer_generated', 'handoff_requested', 'turn_queued')")
        .fetch_all::<(String, u64)>()
        .await
        .expect("reply times");
    let said_at: std::collections::HashMap<String, i64> = turns.iter().map(|(ts, e)| (e.event_id.to_string(), *ts)).collect();
    for (turn, at) in &stamped {
        assert_eq!(said_at.get(turn).map(|t| *t as u64), Some(*at), "the reply to {turn} is not stamped with the turn's record time");
    }
    assert_eq!(count_kind(&clickhouse, &by_offset, "dialogue_closed").await, 0, "a replay closed dialogues still open at its range's end");

    // The output topic has one reply for every turn (the second run did not write to it).
    let on_topic = replies_on_topic(&kafka, &output_topic, &format!("replay-check-{run}"));
    for (_, said) in &turns {
        let ids = on_topic.get(&said.event_id).unwrap_or_else(|| panic!("turn {} has no reply on {output_topic}", said.event_id));
        assert!(ids.iter().all(|id| *id == ids[0]), "two different replies for turn {} on the output topic", said.event_id);
    }
    assert_eq!(on_topic.len(), turns.len(), "replies on the output topic for turns that were not replayed");
    // Without --output-topic, nothing goes to the live replies topic.
    assert!(high_watermarks(&kafka, &live_replies, PARTITIONS).values().all(|h| *h == 0), "replay wrote to the live replies topic");

    // 2. A time range: the middle half of the timestamps, into another database.
    let by_time = format!("sbtest_rpt_{}", &run[..16]);
    create_database(&clickhouse, &by_time).await;
    let n = turns.len() as i64;
    let (from_ms, to_ms) = (BASE_MS + n / 4 * STEP_MS, BASE_MS + 3 * n / 4 * STEP_MS);
    let in_range: Vec<EventId> = turns.iter().filter(|(ts, _)| (from_ms..to_ms).contains(ts)).map(|(_, e)| e.event_id).collect();
    let timed = replay(
        &["--from-time", &from_ms.to_string(), "--to-time", &to_ms.to_string()],
        &config,
        &by_time,
        &work.join("replay-time.log"),
    );
    assert_eq!(timed.records as usize, in_range.len(), "the time range reads exactly its records");
    let said_ids: BTreeSet<String> = clickhouse_on(&clickhouse, &by_time)
        .client()
        .query("SELECT toString(event_id) FROM events FINAL WHERE kind = 'user_said'")
        .fetch_all::<String>()
        .await
        .expect("user_said ids")
        .into_iter()
        .collect();
    let want: BTreeSet<String> = in_range.iter().map(ToString::to_string).collect();
    let missing: Vec<_> = want.difference(&said_ids).take(3).collect();
    let extra: Vec<_> = said_ids.difference(&want).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && said_ids.len() == want.len(),
        "the time range should hold exactly the {} turns stamped within it; has {}: missing e.g. {missing:?}, extra e.g. {extra:?}",
        want.len(),
        said_ids.len()
    );
    assert_eq!(reply_counts(&clickhouse, &by_time).await, (in_range.len() as u64, in_range.len() as u64));

    // 2b. A time bound past the newest record means "up to the end", not "nothing"; a range
    // after the newest record is empty and says so.
    let open_ended = format!("sbtest_rpo_{}", &run[..16]);
    create_database(&clickhouse, &open_ended).await;
    let later = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64 + 3_600_000).to_string();
    let to_end = replay(&["--from-time", &from_ms.to_string(), "--to-time", &later], &config, &open_ended, &work.join("replay-open.log"));
    let from_on = turns.iter().filter(|(ts, _)| *ts >= from_ms).count();
    assert_eq!(to_end.records as usize, from_on, "--to-time after the newest record reads up to the end");
    let empty_log = work.join("replay-empty.log");
    let empty = replay(&["--from-time", &later], &config, &open_ended, &empty_log);
    assert_eq!(empty.records, 0);
    let said = std::fs::read_to_string(&empty_log).expect("stderr of the empty replay");
    assert!(said.contains("holds no records"), "an empty range says so on stderr: {said}");
    drop_database(&clickhouse, &open_ended).await;

    // 3. Replay never commits offsets: the topology's group still starts from the beginning,
    // and replay's own group has nothing committed either.
    assert!(committed_offsets(&kafka, &input, &group, PARTITIONS).is_empty(), "replay moved the topology's committed offsets");
    assert!(
        committed_offsets(&kafka, &input, &format!("{group}-replay"), PARTITIONS).is_empty(),
        "replay committed offsets for its own group"
    );

    eprintln!(
        "replay throughput (debug build unless built with --release): {:.0} / {:.0} records/s (offset range, 2 workers), {:.0} records/s (time range, 1 worker)",
        first.records_per_second, second.records_per_second, timed.records_per_second
    );
    drop_database(&clickhouse, &by_offset).await;
    drop_database(&clickhouse, &by_time).await;
    let _ = std::fs::remove_dir_all(&work);
}
