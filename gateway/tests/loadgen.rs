//! The load generator against a real gateway on 127.0.0.1:0 and the real broker
//! (`SWITCHBOARD_KAFKA_BROKERS`, deploy/dev/up.sh), on fresh topics. A small responder task plays
//! the topology: it reads every `UserSaid` from the user topic and produces an
//! `AnswerGenerated` for it to the bot topic.

mod common;

use common::{consume_from_beginning, create_topics, start_gateway, test_producer, WAIT};
use rdkafka::producer::FutureRecord;
use rdkafka::Message as _;
use std::time::Duration;
use switchboard_gateway::loadgen::{self, LoadError, LoadOptions, Mix};
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

    let mut options = LoadOptions::new(format!("ws://{addr}/ws"));
    options.connections = 20;
    options.rate = 50.0;
    options.duration = Duration::from_secs(3);
    options.mix = Mix::Zipf;
    let report = tokio::time::timeout(Duration::from_secs(90), loadgen::run(options))
        .await
        .expect("the run is bounded in time")
        .expect("the run succeeds");
    let json = serde_json::to_value(&report).expect("the report is JSON");
    eprintln!("{json}");

    assert!((135..=165).contains(&report.sent), "sent {} ≈ 150", report.sent);
    assert_eq!(report.answered, report.sent, "{json}");
    assert_eq!(report.errors, 0, "{json}");
    assert_eq!(report.timeouts, 0, "{json}");
    assert_eq!(report.handoffs, 0, "{json}");
    assert_eq!(report.connections, 20);
    assert_eq!(report.connect_errors, 0);
    assert!(report.p99_ms > 0.0, "{json}");
    assert!(report.p50_ms <= report.p95_ms && report.p95_ms <= report.p99_ms && report.p99_ms <= report.max_ms);
    assert!(report.elapsed_s < 3.0 + 10.0 + 5.0, "{json}");
    for field in [
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "sent",
        "answered",
        "handoffs",
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
    let mut options = LoadOptions::new(format!("ws://{addr}/ws"));
    options.connections = 3;
    options.duration = Duration::from_millis(200);
    let err = loadgen::run(options).await.unwrap_err();
    match &err {
        LoadError::NoConnections { attempted, first_error, .. } => {
            assert_eq!(*attempted, 3);
            assert!(first_error.contains("handshake"), "{err}");
        }
        other => panic!("expected NoConnections, got {other}"),
    }
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn invalid_options_are_refused_before_connecting() {
    let mut options = LoadOptions::new("http://127.0.0.1:1/ws");
    assert!(matches!(loadgen::run(options.clone()).await, Err(LoadError::Invalid { option: "url", .. })));
    options.url = "ws://127.0.0.1:1/ws".into();
    options.rate = -1.0;
    assert!(matches!(loadgen::run(options).await, Err(LoadError::Invalid { option: "rate", .. })));
}
