//! `switchboard loadgen` against a real gateway on 127.0.0.1:0 and the real broker
//! (`SWITCHBOARD_KAFKA_BROKERS`, deploy/dev/up.sh), on fresh topics. A small responder task plays
//! the topology: it reads every `UserSaid` from the user topic and produces an
//! `AnswerGenerated` for it to the bot topic. The load generator runs as the binary and its JSON
//! report (stdout) or one-line error (stderr, exit status) is checked.

#[path = "common/loadgen_support.rs"]
mod loadgen_support;

#[path = "../../gateway/tests/common/mod.rs"]
mod gateway_common;

use gateway_common::{consume_from_beginning, create_topics, start_gateway, test_producer, WAIT};
use loadgen_support::run_loadgen;
use rdkafka::producer::FutureRecord;
use rdkafka::Message as _;
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::*;

const PARTITIONS: i32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_loop_load_is_sent_answered_and_measured() {
    let settings = KafkaSettings::from_env().expect("kafka settings");
    let id = EventId::new_v7();
    let user_topic = format!("test.gw.user.{id}");
    let bot_topic = format!("test.gw.bot.{id}");
    create_topics(&settings, &[&user_topic, &bot_topic], PARTITIONS).await;
    let gateway = start_gateway(&settings, &user_topic, &bot_topic, |_| {}).await;
    let addr = gateway.addr;

    // The responder: one AnswerGenerated per UserSaid, produced without waiting for the previous.
    let said = consume_from_beginning(
        &settings,
        &format!("test-loadgen-{id}"),
        &user_topic,
        PARTITIONS,
        &[("fetch.wait.max.ms", "20")],
    );
    let producer = test_producer(&settings, &[("linger.ms", "1")]);
    let responder = tokio::spawn(async move {
        loop {
            let Ok(m) = said.recv().await else { continue };
            let Some(Ok(event)) = m.payload().map(decode) else { continue };
            let EventBody::UserSaid(u) = &event.body else { continue };
            let answer = Event::caused_by(
                &event,
                "answer",
                event.occurred_at + 1,
                EventBody::AnswerGenerated(AnswerGenerated {
                    in_reply_to: event.event_id,
                    client_msg_id: u.client_msg_id.clone(),
                    text: "好的，马上为您处理".into(),
                    intent: "test".into(),
                    confidence: 0.9,
                    latency_ms: 1,
                }),
            );
            let producer = producer.clone();
            let topic = bot_topic.clone();
            tokio::spawn(async move {
                let payload = encode(&answer);
                let record = FutureRecord::to(&topic).key(&answer.dialogue_id).payload(&payload);
                if let Err((e, _)) = producer.send(record, WAIT).await {
                    eprintln!("responder: produce failed: {e}");
                }
            });
        }
    });

    let url = format!("ws://{addr}/ws");
    let run = tokio::task::spawn_blocking(move || {
        run_loadgen(
            &["--url", &url, "--connections", "20", "--rate", "50", "--duration", "3s", "--mix", "zipf"],
            // The run is bounded in time.
            Duration::from_secs(90),
        )
    })
    .await
    .expect("the run is bounded in time");
    assert!(run.status.success(), "the run succeeds: {}; stderr: {}", run.status, run.stderr);
    let json = run.report();
    eprintln!("{json}");
    let count = |field: &str| json[field].as_u64().unwrap_or_else(|| panic!("{field} is a count: {json}"));
    let millis = |field: &str| json[field].as_f64().unwrap_or_else(|| panic!("{field} is a number: {json}"));

    let sent = count("sent");
    assert!((135..=165).contains(&sent), "sent {sent} ≈ 150");
    assert_eq!(count("answered"), sent, "{json}");
    assert_eq!(count("errors"), 0, "{json}");
    assert_eq!(count("timeouts"), 0, "{json}");
    assert_eq!(count("handoffs"), 0, "{json}");
    assert_eq!(count("connections"), 20);
    assert_eq!(count("connect_errors"), 0);
    assert!(millis("p99_ms") > 0.0, "{json}");
    assert!(
        millis("p50_ms") <= millis("p95_ms")
            && millis("p95_ms") <= millis("p99_ms")
            && millis("p99_ms") <= millis("max_ms")
    );
    assert!(millis("elapsed_s") < 3.0 + 10.0 + 5.0, "{json}");
    for field in [
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "sent",
        "answered",
        "handoffs",
        "queued",
        "errors",
        "timeouts",
        "connections",
        "rate",
        "duration_s",
    ] {
        assert!(json.get(field).is_some(), "report lacks {field}: {json}");
    }
    assert_eq!(json["rate"], 50.0);
    assert_eq!(json["duration_s"], 3.0);

    responder.abort();
    gateway.stop().await;
}

#[tokio::test]
async fn a_refused_connection_is_a_clear_error() {
    // A port nobody listens on (bound, then released).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("ws://{addr}/ws");
    let run = tokio::task::spawn_blocking(move || {
        run_loadgen(&["--url", &url, "--connections", "3", "--duration", "200ms"], Duration::from_secs(60))
    })
    .await
    .expect("the run ends");
    let err = run.stderr.trim();
    // Not a usage error (2): the options are valid, no connection could be opened.
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("no connection to"), "expected NoConnections, got {err}");
    assert!(err.contains("(3 tried)"), "{err}");
    assert!(err.contains("handshake"), "{err}");
    assert!(err.contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn invalid_options_are_refused_before_connecting() {
    let run = tokio::task::spawn_blocking(|| {
        let url = run_loadgen(&["--url", "http://127.0.0.1:1/ws"], Duration::from_secs(30));
        let rate = run_loadgen(&["--url", "ws://127.0.0.1:1/ws", "--rate=-1"], Duration::from_secs(30));
        (url, rate)
    })
    .await
    .expect("the runs end");
    let (url, rate) = run;
    // Bad input: exit status 2 and the option named.
    assert_eq!(url.status.code(), Some(2), "{}", url.stderr);
    assert!(url.stderr.contains("invalid url"), "{}", url.stderr);
    assert_eq!(rate.status.code(), Some(2), "{}", rate.stderr);
    assert!(rate.stderr.contains("invalid rate"), "{}", rate.stderr);
}
