//! The load generator against a real gateway on 127.0.0.1:0 and the real broker
//! (`SWITCHBOARD_KAFKA_BROKERS`, deploy/dev/up.sh), on fresh topics. A small responder task plays
//! the topology: it reads every `UserSaid` from the user topic and produces an
//! `AnswerGenerated` for it to the bot topic.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use std::time::Duration;
use switchboard_gateway::loadgen::{self, LoadError, LoadOptions, Mix};
use switchboard_gateway::{Gateway, GatewayConfig};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::*;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);
const PARTITIONS: i32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_loop_load_is_sent_answered_and_measured() {
    let settings = KafkaSettings::from_env().expect("kafka settings");
    let id = EventId::new_v7();
    let user_topic = format!("test.gw.user.{id}");
    let bot_topic = format!("test.gw.bot.{id}");
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create().expect("admin client");
    let topics = [
        NewTopic::new(&user_topic, PARTITIONS, TopicReplication::Fixed(1)),
        NewTopic::new(&bot_topic, PARTITIONS, TopicReplication::Fixed(1)),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for outcome in admin
        .create_topics(&topics, &options)
        .await
        .unwrap_or_else(|e| panic!("{e} (is the broker up? deploy/dev/up.sh)"))
    {
        outcome.unwrap_or_else(|(t, e)| panic!("creating {t}: {e} (is the broker up? deploy/dev/up.sh)"));
    }

    let mut config = GatewayConfig::new(settings.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.user_said_topic = user_topic.clone();
    config.bot_said_topic = bot_topic.clone();
    let gateway = Gateway::bind(config).await.expect("gateway binds and reads bot.said");
    let addr = gateway.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));

    // The responder: one AnswerGenerated per UserSaid, produced without waiting for the previous.
    let said: StreamConsumer = settings
        .client_config()
        .set("group.id", format!("test-loadgen-{id}"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&user_topic, p, Offset::Beginning).unwrap();
    }
    said.assign(&tpl).expect("assign");
    let producer: FutureProducer = settings
        .client_config()
        .set("enable.idempotence", "false")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
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
    let _ = stop.send(());
    tokio::time::timeout(WAIT, server).await.expect("gateway stops").expect("no panic").expect("clean stop");
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
