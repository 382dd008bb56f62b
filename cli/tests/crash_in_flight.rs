//! Crashes that land while an epoch is in flight, against the real broker and ClickHouse.
//!
//! Replies leave for the broker as soon as the session decides them; the epoch's rows reach
//! ClickHouse with a later group insert, its session state after them, and only then are its
//! offsets committed. These tests hold the epoch at one point of that path (by moving a
//! ClickHouse table out of the way, so that its insert fails and is retried), kill the topology
//! with SIGKILL there, put the table back and restart:
//!
//! 1. after the reply was produced (the user has it) but before any of its rows are in ClickHouse:
//!    the restart redoes the turn and writes the same reply, with the same id, exactly once;
//! 2. after the epoch's events are in ClickHouse but before its session state was saved: the
//!    restart applies the turn to the saved state exactly once (the next turn shows it).
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh`).

mod common;

use common::*;
use rdkafka::producer::FutureProducer;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sources::admin::ensure_topics;

struct Setup {
    kafka: KafkaSettings,
    clickhouse: ClickHouseSettings,
    database: String,
    input: String,
    replies: String,
    config: String,
    log: std::path::PathBuf,
    producer: FutureProducer,
    dialogue: String,
    run: String,
}

async fn setup(name: &str) -> Setup {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run = run_id();
    let (input, replies, dead) =
        (format!("test.{name}.user-said.{run}"), format!("test.{name}.bot-said.{run}"), format!("test.{name}.dead.{run}"));
    ensure_topics(&kafka, &[&input, &replies, &dead], 4).await.expect("topics (is the broker up?)");
    let database = format!("sbtest_{name}_{}", &run[..16]);
    create_database(&clickhouse, &database).await;
    let work = std::env::temp_dir().join(format!("switchboard-{name}-{run}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("config.yaml");
    write_config(&config, &input, &replies, &dead, &format!("{name}-{run}"));
    let producer: FutureProducer = kafka.client_config().set("acks", "all").create().expect("producer");
    Setup {
        kafka,
        clickhouse,
        database,
        input,
        replies,
        config: config.to_string_lossy().into_owned(),
        log: work.join("run.log"),
        producer,
        dialogue: format!("{name}-{}", &run[..12]),
        run,
    }
}

impl Setup {
    fn start(&self) -> Guarded {
        spawn_switchboard(&["run", "--workers", "2", "--config", &self.config], &self.database, &self.log, "info")
    }

    async fn rename(&self, from: &str, to: &str) {
        clickhouse_on(&self.clickhouse, &self.database)
            .client()
            .query(&format!("RENAME TABLE {db}.{from} TO {db}.{to}", db = self.database))
            .execute()
            .await
            .unwrap_or_else(|e| panic!("rename {from} to {to}: {e}"));
    }

    /// The reply ids on the replies topic for `turn`, once there is one (within [`WAIT`]).
    fn replies_on_topic_to(&self, turn: &Event) -> Vec<EventId> {
        let deadline = Instant::now() + WAIT;
        loop {
            let on_topic = replies_on_topic(&self.kafka, &self.replies, &format!("check-{}", self.run));
            if let Some(ids) = on_topic.get(&turn.event_id) {
                return ids.clone();
            }
            assert!(Instant::now() < deadline, "no reply to {} on {} within {WAIT:?}", turn.event_id, self.replies);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Reply rows for `turn` in a table of this database.
    async fn reply_rows(&self, table: &str, turn: &Event) -> Vec<String> {
        clickhouse_on(&self.clickhouse, &self.database)
            .client()
            .query(&format!(
                "SELECT toString(event_id) FROM {table} FINAL WHERE kind IN ('answer_generated', 'handoff_requested') AND in_reply_to = toUUID(?)"
            ))
            .bind(turn.event_id.to_string())
            .fetch_all::<String>()
            .await
            .expect("reply rows")
    }

    async fn finish(self, mut topology: Guarded) {
        assert!(stop(&mut topology, Duration::from_secs(30)).is_some_and(|s| s.success()), "a clean stop");
        drop_database(&self.clickhouse, &self.database).await;
        if let Some(dir) = self.log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn kill9(mut child: Guarded) {
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
}

/// The first turn asks for the order number; its state is saved with the pending answer.
async fn first_turn(s: &Setup) {
    let ask = say(&s.producer, &s.input, &s.dialogue, "m-1", "我要退货").await;
    let (kind, intent, text) = reply_to(&s.clickhouse, &s.database, &ask).await;
    assert_eq!((kind.as_str(), intent.as_str()), ("answer_generated", "return_goods"), "{text}");
    assert!(wait_saved(&s.clickhouse, &s.database, &s.dialogue).await.contains("order_id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_reply_left_but_before_its_rows_redoes_the_turn_with_the_same_reply() {
    let s = setup("inflight_rows").await;
    let first = s.start();
    first_turn(&s).await;

    // ClickHouse now refuses the events insert (the table is gone); the reply still leaves.
    s.rename("events", "events_away").await;
    let number = say(&s.producer, &s.input, &s.dialogue, "m-2", "12345678").await;
    let produced = s.replies_on_topic_to(&number);
    assert!(s.reply_rows("events_away", &number).await.is_empty(), "no row of the reply reached ClickHouse");
    kill9(first);

    s.rename("events_away", "events").await;
    let second = s.start();
    let (kind, intent, text) = reply_to(&s.clickhouse, &s.database, &number).await;
    assert_eq!((kind.as_str(), intent.as_str()), ("answer_generated", "return_goods"), "{text}");
    assert!(text.contains("订单 12345678 的退货申请已提交"), "the pending answer, completed: {text}");
    let rows = s.reply_rows("events", &number).await;
    assert_eq!(rows, vec![produced[0].to_string()], "one reply row, with the id the user already got");
    let again = s.replies_on_topic_to(&number);
    assert!(again.iter().all(|id| *id == produced[0]), "a redone reply keeps its id: {again:?}");
    assert_eq!(reply_counts(&s.clickhouse, &s.database).await, (2, 2), "one reply for each turn");
    s.finish(second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_events_and_the_session_save_applies_the_turn_once() {
    let s = setup("inflight_sessions").await;
    let first = s.start();
    first_turn(&s).await;

    // The events insert works; the session save after it is refused (the table is gone).
    s.rename("sessions", "sessions_away").await;
    let number = s_say(&s, "m-2", "12345678").await;
    let (_, _, text) = reply_to(&s.clickhouse, &s.database, &number).await;
    assert!(text.contains("订单 12345678 的退货申请已提交"), "{text}");
    kill9(first);

    s.rename("sessions_away", "sessions").await;
    let second = s.start();
    // The restart redoes m-2 on the state saved after m-1: the pending answer completes once,
    // so the same number sent again is no longer an order number for a pending return.
    let again = s_say(&s, "m-3", "12345678").await;
    let (kind, intent, text) = reply_to(&s.clickhouse, &s.database, &again).await;
    assert!(
        !(kind == "answer_generated" && text.contains("退货申请已提交")),
        "m-2 was applied to the restored state (once): the number alone completes nothing now: {kind} {intent} {text}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let state = wait_saved(&s.clickhouse, &s.database, &s.dialogue).await;
        if state.contains("\"turns\":3") {
            break;
        }
        assert!(Instant::now() < deadline, "the saved state should count three turns: {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reply_counts(&s.clickhouse, &s.database).await, (3, 3), "one reply for each turn");
    s.finish(second).await;
}

async fn s_say(s: &Setup, message: &str, text: &str) -> Event {
    say(&s.producer, &s.input, &s.dialogue, message, text).await
}
