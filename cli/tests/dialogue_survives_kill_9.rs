//! A dialogue in the middle of slot filling survives a `kill -9` of the topology:
//!
//! 1. `switchboard run` answers 我要退货 by asking for the order number, and saves the
//!    dialogue's state (the answer waiting for the `order_id` slot) to ClickHouse's `sessions`;
//! 2. the process is killed with SIGKILL and started again: it reads the saved state back;
//! 3. the order number alone, sent after the restart, completes the pending return answer,
//!    while the same text as the first turn of a fresh dialogue does not.
//!
//! Without saved sessions the restarted process would not know the dialogue, and the bare
//! number would get a clarifying question or a handoff. Needs the dev services and the demo
//! models (`deploy/dev/test.sh`).

mod common;

use common::*;
use rdkafka::producer::FutureProducer;
use std::time::Duration;
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_sources::admin::ensure_topics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_answer_is_completed_after_the_topology_is_killed_and_restarted() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run = run_id();
    let (input, replies, dead) =
        (format!("test.survive.user-said.{run}"), format!("test.survive.bot-said.{run}"), format!("test.survive.dead.{run}"));
    ensure_topics(&kafka, &[&input, &replies, &dead], 4).await.expect("topics (is the broker up?)");
    let database = format!("sbtest_survive_{}", &run[..16]);
    create_database(&clickhouse, &database).await;
    let work = std::env::temp_dir().join(format!("switchboard-survive-{run}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("config.yaml");
    write_config(&config, &input, &replies, &dead, &format!("survive-{run}"));
    let config_arg = config.to_string_lossy().into_owned();
    let log = work.join("run.log");
    let producer: FutureProducer = kafka
        .client_config()
        .set("acks", "all")
        .create()
        .expect("producer");

    let mut first = spawn_switchboard(&["run", "--workers", "2", "--config", &config_arg], &database, &log, "info");
    let dialogue = format!("survive-{}", &run[..12]);
    let ask = say(&producer, &input, &dialogue, "m-1", "我要退货").await;
    let (kind, intent, text) = reply_to(&clickhouse, &database, &ask).await;
    assert_eq!((kind.as_str(), intent.as_str()), ("answer_generated", "return_goods"), "{text}");
    assert!(text.contains("订单号"), "the bot should ask for the order number: {text}");
    let saved = wait_saved(&clickhouse, &database, &dialogue).await;
    assert!(saved.contains("order_id"), "the saved state holds the answer waiting for the order number: {saved}");

    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    drop(first);

    let mut second = spawn_switchboard(&["run", "--workers", "2", "--config", &config_arg], &database, &log, "info");
    let number = say(&producer, &input, &dialogue, "m-2", "12345678").await;
    let fresh = say(&producer, &input, &format!("{dialogue}-fresh"), "m-1", "12345678").await;
    let (kind, intent, text) = reply_to(&clickhouse, &database, &number).await;
    assert_eq!((kind.as_str(), intent.as_str()), ("answer_generated", "return_goods"), "{text}");
    assert!(text.contains("订单 12345678 的退货申请已提交"), "the pending return answer, completed: {text}");
    let (fresh_kind, fresh_intent, fresh_text) = reply_to(&clickhouse, &database, &fresh).await;
    assert!(
        !(fresh_kind == "answer_generated" && fresh_intent == "return_goods"),
        "a fresh dialogue's bare number must not complete a return answer: {fresh_kind} {fresh_intent} {fresh_text}"
    );
    // The first turn was answered once (redone turns are skipped or rewritten with the same id).
    let (rows, distinct) = reply_counts(&clickhouse, &database).await;
    assert_eq!((rows, distinct), (3, 3), "one reply for each of the three turns");

    assert!(stop(&mut second, Duration::from_secs(30)).is_some_and(|s| s.success()), "a clean stop");
    drop_database(&clickhouse, &database).await;
    let _ = std::fs::remove_dir_all(&work);
}
