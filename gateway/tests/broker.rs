//! The gateway against the real broker (nisshi from deploy/dev/up.sh, or any Kafka at
//! `SWITCHBOARD_KAFKA_BROKERS`): a real gateway on 127.0.0.1:0, a real WebSocket client, and the
//! test playing the topology — it reads `UserSaid` from the user topic and produces answers to
//! the bot topic. Each test uses its own pair of fresh topics (8 partitions), deleted at its end.

mod common;

use common::{consume_from_beginning, create_topics, delete_topics, start_gateway, test_producer, RunningGateway, WAIT};
use futures::{SinkExt, StreamExt};
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message as _;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_gateway::GatewayConfig;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

const PARTITIONS: i32 = 8;

/// A gateway on fresh topics, plus the test's own Kafka clients.
struct Rig {
    addr: SocketAddr,
    admin: common::Admin,
    gateway: RunningGateway,
    said: StreamConsumer,
    producer: FutureProducer,
    settings: KafkaSettings,
    user_topic: String,
    bot_topic: String,
    /// One broker test at a time: the dev broker is shared with other work.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn rig(tune: impl FnOnce(&mut GatewayConfig)) -> Rig {
    let serial = SERIAL.lock().await;
    let settings = KafkaSettings::from_env().expect("kafka settings");
    let id = EventId::new_v7();
    let user_topic = format!("test.gw.user.{id}");
    let bot_topic = format!("test.gw.bot.{id}");
    create_topics(&settings, &[&user_topic, &bot_topic], PARTITIONS).await;
    let gateway = start_gateway(&settings, &user_topic, &bot_topic, tune).await;
    let said = consume_from_beginning(&settings, &format!("test-gw-{id}"), &user_topic, PARTITIONS, &[]);
    let producer = test_producer(&settings, &[]);
    let admin = common::admin_login(gateway.admin).await;
    Rig { _serial: serial, addr: gateway.addr, admin, gateway, said, producer, settings, user_topic, bot_topic }
}

impl Rig {
    /// The next record on the user topic: (key, event).
    async fn next_said(&self) -> (String, Event) {
        let m = tokio::time::timeout(WAIT, self.said.recv()).await.expect("a UserSaid record in time").expect("recv");
        let key = String::from_utf8(m.key().expect("key").to_vec()).expect("utf-8 key");
        let event = decode(m.payload().expect("payload")).expect("a valid event");
        (key, event)
    }

    /// Records on the user topic until one for `client_msg_id` arrives (inclusive).
    async fn said_until(&self, client_msg_id: &str) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let (_, e) = self.next_said().await;
            let done = matches!(&e.body, EventBody::UserSaid(u) if u.client_msg_id == client_msg_id);
            out.push(e);
            if done {
                return out;
            }
        }
    }

    async fn publish(&self, event: &Event) {
        let payload = encode(event);
        self.producer
            .send(FutureRecord::to(&self.bot_topic).key(&event.dialogue_id).payload(&payload), WAIT)
            .await
            .map_err(|(e, _)| e)
            .expect("bot.said record acknowledged");
    }

    async fn metrics(&self) -> String {
        http_get(&self.admin, "/metrics").await
    }

    /// Polls `/metrics` until it contains `needle`.
    async fn wait_metric(&self, needle: &str) {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                if self.metrics().await.contains(needle) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "metric {needle:?} not reached:\n{}", self.metrics().await);
    }

    /// Stops the gateway, then deletes the test's topics.
    async fn stop(self) {
        let Rig { gateway, said, producer, settings, user_topic, bot_topic, .. } = self;
        gateway.stop().await;
        drop((said, producer));
        delete_topics(&settings, &[&user_topic, &bot_topic]).await;
    }
}

fn answer_to(said: &Event, text: &str) -> Event {
    let EventBody::UserSaid(u) = &said.body else { panic!("not a UserSaid: {said:?}") };
    Event::caused_by(
        said,
        "answer",
        1_764_000_000_000,
        EventBody::AnswerGenerated(AnswerGenerated {
            in_reply_to: said.event_id,
            client_msg_id: u.client_msg_id.clone(),
            text: text.into(),
            intent: "refund".into(),
            confidence: 0.93,
            latency_ms: 12,
        }),
    )
}

async fn http_get(admin: &common::Admin, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(admin.addr).await.expect("http connect");
    let cookie = &admin.cookie;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("http reply").unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// The resume token of each dialogue's last welcome.
static TOKENS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
    std::sync::LazyLock::new(Default::default);

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = connect_async(format!("ws://{addr}/ws")).await.expect("websocket handshake");
        Client { ws }
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string().into())).await.expect("send");
    }

    async fn recv(&mut self) -> Value {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame in time") {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    async fn expect_close(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("close in time") {
                None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return,
                Some(Ok(Message::Text(t))) => panic!("expected close, got {t}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn expect_error(&mut self, code: &str) {
        let f = self.recv().await;
        assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some(code)), "{f}");
    }

    async fn hello(&mut self, user: &str, dialogue: Option<&str>) -> String {
        let mut h = json!({"type":"hello","user_id":user,"locale":"zh-CN"});
        if let Some(d) = dialogue {
            h["dialogue_id"] = json!(d);
            h["resume_token"] = json!(TOKENS.lock().unwrap().get(d).expect("a welcome for this dialogue"));
        }
        self.send(h).await;
        let w = self.recv().await;
        assert_eq!(w["type"], "welcome", "{w}");
        let d = w["dialogue_id"].as_str().expect("dialogue_id").to_string();
        let token = w["resume_token"].as_str().expect("resume_token").to_string();
        TOKENS.lock().unwrap().insert(d.clone(), token);
        d
    }

    async fn say(&mut self, id: &str, text: &str) {
        self.send(json!({"type":"say","client_msg_id":id,"text":text})).await;
    }
}

#[tokio::test]
async fn say_goes_to_user_said_and_the_answer_comes_back() {
    let rig = rig(|_| {}).await;
    let mut c = Client::connect(rig.addr).await;
    let d = c.hello("u-1", None).await;
    c.say("m-1", "我要退货").await;
    let (key, said) = rig.next_said().await;
    assert_eq!(key, d, "key = dialogue_id");
    assert_eq!(said.dialogue_id, d);
    assert!(
        matches!(&said.body, EventBody::UserSaid(UserSaid { client_msg_id, user_id, locale: Locale::ZhCn, text })
            if client_msg_id == "m-1" && user_id == "u-1" && text == "我要退货"),
        "{said:?}"
    );
    let answer = answer_to(&said, "好的，请提供订单号");
    rig.publish(&answer).await;
    let f = c.recv().await;
    assert_eq!(
        f,
        json!({"type":"answer","dialogue_id":d,"in_reply_to":"m-1","text":"好的，请提供订单号",
               "intent":"refund","confidence":0.93,"event_id":answer.event_id.to_string()})
    );
    let m = rig.metrics().await;
    assert!(m.contains("switchboard_gateway_says_accepted_total 1"), "{m}");
    assert!(m.contains("switchboard_gateway_answers_delivered_total 1"), "{m}");
    assert!(m.contains("switchboard_gateway_kafka_produce_seconds_count 1"), "{m}");
    rig.stop().await;
}

#[tokio::test]
async fn duplicate_client_msg_id_produces_one_record_and_one_answer() {
    let rig = rig(|_| {}).await;
    let mut c = Client::connect(rig.addr).await;
    let d = c.hello("u-dup", None).await;
    c.say("m-1", "一").await;
    c.say("m-1", "一").await;
    // The same message again after a reconnect, while still unanswered.
    drop(c);
    let mut c = Client::connect(rig.addr).await;
    assert_eq!(c.hello("u-dup", Some(&d)).await, d);
    c.say("m-1", "一").await;
    c.say("m-2", "二").await;
    let records = rig.said_until("m-2").await;
    let ids: Vec<&str> = records
        .iter()
        .map(|e| match &e.body {
            EventBody::UserSaid(u) => u.client_msg_id.as_str(),
            _ => "?",
        })
        .collect();
    assert_eq!(ids, ["m-1", "m-2"], "one record per client message");
    rig.publish(&answer_to(&records[0], "答一")).await;
    rig.publish(&answer_to(&records[1], "答二")).await;
    let f1 = c.recv().await;
    let f2 = c.recv().await;
    assert_eq!((f1["in_reply_to"].as_str(), f1["text"].as_str()), (Some("m-1"), Some("答一")), "{f1}");
    assert_eq!((f2["in_reply_to"].as_str(), f2["text"].as_str()), (Some("m-2"), Some("答二")), "{f2}");
    rig.wait_metric("switchboard_gateway_says_deduplicated_total 2").await;
    rig.stop().await;
}

#[tokio::test]
async fn duplicate_answer_event_and_second_answer_are_delivered_once() {
    let rig = rig(|_| {}).await;
    let mut c = Client::connect(rig.addr).await;
    let d = c.hello("u-2", None).await;
    c.say("m-1", "一").await;
    let (_, s1) = rig.next_said().await;
    c.say("m-2", "二").await;
    let (_, s2) = rig.next_said().await;
    let a1 = answer_to(&s1, "答一");
    rig.publish(&a1).await;
    rig.publish(&a1).await; // redelivered event (same event_id)
    let mut second = answer_to(&s1, "another answer");
    second.event_id = EventId::new_v7(); // a different event answering the same message
    rig.publish(&second).await;
    // Same key, same partition: the marker answer comes after the duplicates.
    rig.publish(&answer_to(&s2, "答二")).await;
    let f1 = c.recv().await;
    let f2 = c.recv().await;
    assert_eq!(
        (f1["in_reply_to"].as_str(), f1["event_id"].as_str()),
        (Some("m-1"), Some(a1.event_id.to_string().as_str()))
    );
    assert_eq!((f2["in_reply_to"].as_str(), f2["text"].as_str()), (Some("m-2"), Some("答二")), "{f2}");
    rig.wait_metric(r#"switchboard_gateway_bot_said_records_total{outcome="duplicate_event"} 1"#).await;
    rig.wait_metric(r#"switchboard_gateway_bot_said_records_total{outcome="already_answered"} 1"#).await;
    assert!(d.len() > 10);
    rig.stop().await;
}

#[tokio::test]
async fn no_answer_in_time_gives_a_timeout_handoff() {
    let rig = rig(|c| c.answer_timeout = Duration::from_secs(1)).await;
    let mut c = Client::connect(rig.addr).await;
    let d = c.hello("u-3", None).await;
    c.say("m-1", "有人吗").await;
    let (_, said) = rig.next_said().await;
    let started = std::time::Instant::now();
    let f = c.recv().await;
    assert_eq!(f, json!({"type":"handoff","dialogue_id":d,"in_reply_to":"m-1","reason":"timeout"}));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The timeout is written to the user topic too (for the session and the console), with an
    // id derived from the say's.
    let (key, timeout) = rig.next_said().await;
    assert_eq!(key, d);
    assert!(
        matches!(&timeout.body, EventBody::HandoffRequested(h) if h.in_reply_to == said.event_id && h.client_msg_id == "m-1"),
        "{timeout:?}"
    );
    // A late answer is dropped; the next say still works.
    rig.publish(&answer_to(&said, "late")).await;
    c.say("m-2", "还在吗").await;
    let (_, s2) = rig.next_said().await;
    rig.publish(&answer_to(&s2, "在的")).await;
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["in_reply_to"].as_str()), (Some("answer"), Some("m-2")), "{f}");
    rig.wait_metric("switchboard_gateway_answer_timeouts_total 1").await;
    rig.stop().await;
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_survives() {
    let rig = rig(|_| {}).await;
    let mut c = Client::connect(rig.addr).await;
    c.say("m-0", "before hello").await;
    c.expect_error("not_hello").await;
    let _ = c.hello("u-4", None).await;
    c.ws.send(Message::Binary(vec![0u8, 159, 146, 150].into())).await.unwrap();
    c.expect_error("bad_frame").await;
    c.ws.send(Message::Text("{\"type\":\"say\",".into())).await.unwrap();
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"dance"})).await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"say","client_msg_id":"m-x"})).await;
    c.expect_error("bad_frame").await;
    c.say("m-big", &"字".repeat(2001)).await;
    c.expect_error("too_large").await;
    // Still usable: a say is produced and answered.
    c.say("m-1", "好了吗").await;
    let (_, said) = rig.next_said().await;
    rig.publish(&answer_to(&said, "好了")).await;
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["in_reply_to"].as_str()), (Some("answer"), Some("m-1")), "{f}");
    // A 1 MiB frame: too_large, and the connection is closed.
    c.ws.send(Message::Text("x".repeat(1 << 20).into())).await.unwrap();
    c.expect_error("too_large").await;
    c.expect_close().await;
    let m = rig.metrics().await;
    assert!(m.contains(r#"switchboard_gateway_says_rejected_total{reason="bad_frame"} 4"#), "{m}");
    assert!(m.contains(r#"switchboard_gateway_says_rejected_total{reason="too_large"} 2"#), "{m}");
    rig.stop().await;
}

#[tokio::test]
async fn flood_is_rate_limited_and_the_connection_survives() {
    let rig = rig(|_| {}).await;
    let mut c = Client::connect(rig.addr).await;
    let _ = c.hello("u-5", None).await;
    // Burst 10 (one taken by the hello): of 30 frames sent at once most are refused.
    for i in 0..30 {
        c.send(json!({"type":"dance","n":i})).await;
    }
    let mut limited = 0;
    for _ in 0..30 {
        let f = c.recv().await;
        match f["code"].as_str() {
            Some("rate_limited") => limited += 1,
            Some("bad_frame") => {}
            _ => panic!("unexpected {f}"),
        }
    }
    assert!(limited >= 15, "{limited} of 30 rate limited");
    rig.wait_metric(r#"switchboard_gateway_says_rejected_total{reason="rate_limited"}"#).await;
    rig.stop().await;
}

#[tokio::test]
async fn resume_gets_the_answer_produced_while_disconnected() {
    let rig = rig(|_| {}).await;
    let mut c = Client::connect(rig.addr).await;
    let d = c.hello("u-6", None).await;
    c.say("m-1", "在吗").await;
    let (_, said) = rig.next_said().await;
    c.ws.close(None).await.expect("close");
    c.expect_close().await;
    rig.wait_metric("switchboard_gateway_connections 0").await;
    rig.publish(&answer_to(&said, "在的")).await;
    rig.wait_metric(r#"switchboard_gateway_bot_said_records_total{outcome="routed"} 1"#).await;
    let mut c = Client::connect(rig.addr).await;
    assert_eq!(c.hello("u-6", Some(&d)).await, d);
    let f = c.recv().await;
    assert_eq!(
        (f["type"].as_str(), f["in_reply_to"].as_str(), f["text"].as_str()),
        (Some("answer"), Some("m-1"), Some("在的")),
        "{f}"
    );
    // The client re-sends the say it had not seen answered: nothing new is produced.
    c.say("m-1", "在吗").await;
    c.say("m-2", "下一个").await;
    let (_, next) = rig.next_said().await;
    assert!(matches!(&next.body, EventBody::UserSaid(u) if u.client_msg_id == "m-2"), "{next:?}");
    rig.stop().await;
}

#[tokio::test]
async fn shutdown_drains_reconnect_then_in_flight_answer_then_close() {
    let mut rig = rig(|_| {}).await;
    let mut c = Client::connect(rig.addr).await;
    let _ = c.hello("u-7", None).await;
    c.say("m-1", "最后一个问题").await;
    let (_, said) = rig.next_said().await;
    rig.wait_metric("switchboard_gateway_says_accepted_total 1").await;
    rig.gateway.shut_down();
    assert_eq!(c.recv().await, json!({"type":"reconnect","after_ms":1000}));
    c.say("m-2", "too late").await;
    c.expect_error("unavailable").await;
    rig.publish(&answer_to(&said, "答案")).await;
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["in_reply_to"].as_str()), (Some("answer"), Some("m-1")), "{f}");
    c.expect_close().await;
    rig.gateway.stopped().await;
    assert!(TcpStream::connect(rig.addr).await.is_err(), "no new connections after the drain");
    rig.stop().await;
}
