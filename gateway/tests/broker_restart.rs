//! The gateway's `user.said` producer, idempotent by default, across a broker restart: on a
//! scratch nisshi of its own (the shared dev broker is not touched), a say accepted before the
//! restart, one sent while the broker is down and one after it each reach the user topic exactly
//! once, and the connection stays up throughout.
//!
//! Needs the `nisshi` binary (`deploy/dev/up.sh` installs it; `NISSHI` names another one).

mod common;
#[path = "../../sources/tests/common/mod.rs"]
mod scratch;

use common::{consume_from_beginning, create_topics, start_gateway, WAIT};
use futures::{SinkExt, StreamExt};
use rdkafka::consumer::StreamConsumer;
use rdkafka::Message as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_schemas::*;
use tokio_tungstenite::tungstenite::Message;

/// The next `UserSaid` on the topic: its client_msg_id. The consumer's own reports of the
/// broker going away are passed over.
async fn next_said(said: &StreamConsumer) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = tokio::time::timeout_at(deadline, said.recv()).await.expect("a UserSaid record in time");
        match m {
            Ok(m) => match decode(m.payload().expect("payload")).expect("a valid event").body {
                EventBody::UserSaid(u) => return u.client_msg_id,
                other => panic!("not a UserSaid: {other:?}"),
            },
            Err(e) => eprintln!("consumer: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn says_reach_the_topic_once_across_a_broker_restart() {
    let dir = std::env::temp_dir().join(format!("switchboard-gw-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut broker = scratch::ScratchBroker::start(&dir, scratch::free_port(), "sqlite://nisshi.db");
    let settings = broker.settings();
    let (user_topic, bot_topic) = ("user.said.restart", "bot.said.restart");
    create_topics(&settings, &[user_topic, bot_topic], 2).await;
    let gateway = start_gateway(&settings, user_topic, bot_topic, |c| {
        assert!(c.idempotent_producer, "the producer is idempotent by default");
        // No timeout handoffs (also events on the user topic) during the test.
        c.answer_timeout = Duration::from_secs(120);
    })
    .await;
    let said = consume_from_beginning(&settings, "restart-check", user_topic, 2, &[]);

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gateway.addr)).await.expect("websocket");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type":"hello","user_id":"u-restart","locale":"zh-CN"}))).await.expect("hello");
    let welcome = tokio::time::timeout(WAIT, ws.next()).await.expect("welcome in time").expect("a frame").expect("ok");
    assert!(welcome.to_text().expect("text").contains("\"welcome\""), "{welcome:?}");

    ws.send(send(json!({"type":"say","client_msg_id":"m-before","text":"我要退货"}))).await.expect("say");
    assert_eq!(next_said(&said).await, "m-before");

    // Down: a say sent now waits in the producer (the gateway gives the broker 5 s).
    tokio::task::block_in_place(|| broker.stop());
    ws.send(send(json!({"type":"say","client_msg_id":"m-during","text":"订单号 2024113001"}))).await.expect("say");
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| broker.launch());
    ws.send(send(json!({"type":"say","client_msg_id":"m-after","text":"谢谢"}))).await.expect("say");

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    seen.insert("m-before".into(), 1);
    while seen.len() < 3 {
        *seen.entry(next_said(&said).await).or_default() += 1;
    }
    // Anything written twice would follow within moments.
    if let Ok(again) = tokio::time::timeout(Duration::from_secs(2), next_said(&said)).await {
        panic!("{again} reached the topic twice");
    }
    assert_eq!(seen, BTreeMap::from([("m-after".into(), 1), ("m-before".into(), 1), ("m-during".into(), 1)]));
    // No error frame: the connection is still up and answers a ping.
    ws.send(Message::Ping(vec![1].into())).await.expect("ping");
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time").expect("open").expect("ok") {
            Message::Pong(_) => break,
            Message::Text(t) => assert!(!t.contains("\"error\""), "the gateway reported an error: {t}"),
            _ => {}
        }
    }

    drop((ws, said));
    gateway.stop().await;
    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
