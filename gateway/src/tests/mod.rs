//! End-to-end tests of the WebSocket protocol with an in-memory broker: a real gateway on
//! 127.0.0.1:0 and a real WebSocket client, with `UserSaid` events captured in a channel and
//! answers injected as if read from bot.said. (tests/broker.rs runs the same flows against the
//! real broker.)

use crate::hub::{now_ms, Hub};
use crate::kafka::Publisher;
use crate::metrics::Metrics;
use crate::{auth, Gateway, GatewayConfig, Secret};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::{AnswerGenerated, Event, EventBody, UserSaid};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

mod access;
mod agents;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The resume token of each dialogue's last welcome.
static TOKENS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
    std::sync::LazyLock::new(Default::default);

pub(crate) fn resume_token(dialogue: &str) -> String {
    TOKENS.lock().unwrap().get(dialogue).cloned().expect("a welcome for this dialogue")
}

pub(crate) struct TestGateway {
    pub(crate) addr: SocketAddr,
    pub(crate) admin: SocketAddr,
    metrics: Arc<Metrics>,
    pub(crate) desk: Arc<crate::agent::Desk>,
    hub: Arc<Hub>,
    said: mpsc::UnboundedReceiver<Event>,
    broker_down: Arc<AtomicBool>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<crate::Result<()>>,
}

pub(crate) fn config() -> GatewayConfig {
    let mut c = GatewayConfig::new(KafkaSettings::plain("unused:9092"));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    c
}

pub(crate) async fn start(config: GatewayConfig) -> TestGateway {
    let (tx, said) = mpsc::unbounded_channel();
    let broker_down = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::for_config(metrics.clone(), &config));
    let publisher = Publisher::Memory { tx, fail: broker_down.clone() };
    let agents = crate::agent::AgentSide::new(None);
    let desk = agents.desk.clone();
    let gateway = Gateway::bind_with(config, publisher, hub.clone(), agents, metrics.clone()).await.unwrap();
    let addr = gateway.local_addr();
    let admin = gateway.admin_addr().expect("an admin listener");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));
    TestGateway { addr, admin, metrics, hub, desk, said, broker_down, shutdown: Some(stop), task }
}

impl TestGateway {
    /// Delivers a `bot.said` event as the reader would: to the agents' desk and to the hub.
    pub(crate) fn bot_said(&self, event: &Event) -> &'static str {
        self.desk.observe(event);
        self.hub.route(event)
    }

    pub(crate) async fn next_said_event(&mut self) -> Event {
        self.next_said().await
    }

    async fn next_said(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.said.recv()).await.expect("a UserSaid in time").expect("channel open")
    }

    fn answer(&self, said: &Event, text: &str) -> Event {
        let EventBody::UserSaid(u) = &said.body else { panic!("not a UserSaid") };
        Event::caused_by(
            said,
            "answer",
            now_ms(),
            EventBody::AnswerGenerated(AnswerGenerated {
                in_reply_to: said.event_id,
                client_msg_id: u.client_msg_id.clone(),
                text: text.into(),
                intent: "refund".into(),
                confidence: 0.93,
                latency_ms: 7,
            }),
        )
    }
}

pub(crate) struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = connect_async(format!("ws://{addr}/ws")).await.expect("websocket handshake");
        Client { ws }
    }

    pub(crate) async fn send(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string().into())).await.expect("send");
    }

    pub(crate) async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// The next JSON frame (panics on close or after 10 s).
    pub(crate) async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame in time");
            match m {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Waits for the server to close the connection (panics on any text frame).
    pub(crate) async fn expect_close(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("close in time") {
                None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return,
                Some(Ok(Message::Text(t))) => panic!("expected close, got {t}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads (and ignores) frames until the server closes the connection.
    async fn drain_until_close(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("close in time") {
                None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Says hello (resuming `dialogue` with the resume token of its last welcome) and returns
    /// the dialogue id of the welcome.
    pub(crate) async fn hello(&mut self, user: &str, dialogue: Option<&str>) -> String {
        let mut h = json!({"type":"hello","user_id":user,"locale":"zh-CN"});
        if let Some(d) = dialogue {
            h["dialogue_id"] = json!(d);
            h["resume_token"] = json!(resume_token(d));
        }
        self.send(h).await;
        let w = self.recv().await;
        assert_eq!(w["type"], "welcome", "{w}");
        let d = w["dialogue_id"].as_str().expect("dialogue_id").to_string();
        let token = w["resume_token"].as_str().expect("resume_token in the welcome").to_string();
        TOKENS.lock().unwrap().insert(d.clone(), token);
        d
    }

    pub(crate) async fn say(&mut self, id: &str, text: &str) {
        self.send(json!({"type":"say","client_msg_id":id,"text":text})).await;
    }

    pub(crate) async fn expect_error(&mut self, code: &str) {
        let f = self.recv().await;
        assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some(code)), "{f}");
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn hello_say_answer_roundtrip() {
    let mut gw = start(config()).await;
    let mut c = Client::connect(gw.addr).await;
    let d = c.hello("u-1", None).await;
    assert_eq!(uuid::Uuid::parse_str(&d).unwrap().get_version_num(), 7);
    c.say("m-1", "我要退货").await;
    let said = gw.next_said().await;
    assert_eq!(said.dialogue_id, d);
    assert!(matches!(&said.body, EventBody::UserSaid(UserSaid { client_msg_id, user_id, text, .. })
        if client_msg_id == "m-1" && user_id == "u-1" && text == "我要退货"));
    let answer = gw.answer(&said, "好的，请提供订单号");
    assert_eq!(gw.hub.route(&answer), "routed");
    let f = c.recv().await;
    assert_eq!(f["type"], "answer");
    assert_eq!(f["dialogue_id"], d.as_str());
    assert_eq!(f["in_reply_to"], "m-1");
    assert_eq!(f["text"], "好的，请提供订单号");
    assert_eq!(f["intent"], "refund");
    assert!((f["confidence"].as_f64().unwrap() - 0.93).abs() < 1e-6);
    assert_eq!(f["event_id"], answer.event_id.to_string());
    // Pages and probes.
    let (status, page) = http_get(gw.addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("textContent") && !page.contains("innerHTML"));
    let (status, health) = http_get(gw.addr, "/healthz").await;
    assert_eq!(status, 200, "{health}");
    let (status, _) = http_get(gw.addr, "/metrics").await;
    assert_eq!(status, 404, "metrics are on the admin listener only");
    let metrics = gw.metrics.render();
    assert!(metrics.contains("switchboard_gateway_says_accepted_total 1"), "{metrics}");
    assert!(metrics.contains("switchboard_gateway_answers_delivered_total 1"), "{metrics}");
    assert!(metrics.contains("switchboard_gateway_connections 1"), "{metrics}");
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_survives() {
    let mut cfg = config();
    cfg.limits.rate_burst = 100;
    let mut gw = start(cfg).await;
    let mut c = Client::connect(gw.addr).await;
    c.say("m-0", "before hello").await;
    c.expect_error("not_hello").await;
    let _ = c.hello("u", None).await;
    c.send_raw(Message::Binary(vec![1u8, 2, 3].into())).await;
    c.expect_error("bad_frame").await;
    c.send_raw(Message::Text("{not json".into())).await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"shout","text":"x"})).await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"say","text":"no id"})).await;
    c.expect_error("bad_frame").await;
    c.say("m-long", &"好".repeat(2001)).await;
    c.expect_error("too_large").await;
    c.send_raw(Message::Text(
        format!(r#"{{"type":"say","client_msg_id":"m","text":"{}"}}"#, "a".repeat(20_000)).into(),
    ))
    .await;
    c.expect_error("too_large").await;
    c.send(json!({"type":"hello","user_id":"u"})).await;
    c.expect_error("bad_frame").await;
    // Still usable.
    c.say("m-ok", "还在吗").await;
    let said = gw.next_said().await;
    gw.hub.route(&gw.answer(&said, "在的"));
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["in_reply_to"].as_str()), (Some("answer"), Some("m-ok")), "{f}");
    // A 1 MiB frame is refused and the connection closed.
    c.send_raw(Message::Text("x".repeat(1 << 20).into())).await;
    c.expect_error("too_large").await;
    c.expect_close().await;
}

#[tokio::test]
async fn flood_is_rate_limited() {
    let mut cfg = config();
    cfg.limits.rate_per_sec = 1.0;
    cfg.limits.rate_burst = 3;
    let gw = start(cfg).await;
    let mut c = Client::connect(gw.addr).await;
    let _ = c.hello("u", None).await;
    for i in 0..10 {
        c.say(&format!("m-{i}"), "hi").await;
    }
    // Two says fit in the bucket after the hello; (at least) seven of the other eight are refused.
    for _ in 0..7 {
        c.expect_error("rate_limited").await;
    }
}

#[tokio::test]
async fn duplicate_says_are_produced_once_and_answered_once() {
    let mut gw = start(config()).await;
    let mut c = Client::connect(gw.addr).await;
    let _ = c.hello("u", None).await;
    c.say("m-1", "一").await;
    c.say("m-1", "一").await;
    c.say("m-2", "二").await;
    let first = gw.next_said().await;
    let second = gw.next_said().await;
    assert!(matches!(&second.body, EventBody::UserSaid(u) if u.client_msg_id == "m-2"), "m-1 produced twice");
    let a1 = gw.answer(&first, "答一");
    gw.hub.route(&a1);
    gw.hub.route(&a1); // the same event again (redelivery)
    gw.hub.route(&gw.answer(&first, "another answer for m-1")); // a second answer
    gw.hub.route(&gw.answer(&second, "答二"));
    let f1 = c.recv().await;
    let f2 = c.recv().await;
    assert_eq!((f1["in_reply_to"].as_str(), f1["text"].as_str()), (Some("m-1"), Some("答一")));
    assert_eq!(f2["in_reply_to"], "m-2", "{f2}");
    c.say("m-1", "一").await; // a late retry on the same connection is absorbed
    c.say("m-3", "三").await;
    let third = gw.next_said().await;
    assert!(matches!(&third.body, EventBody::UserSaid(u) if u.client_msg_id == "m-3"));
}

#[tokio::test]
async fn answer_timeout_gives_a_timeout_handoff_and_late_answers_are_dropped() {
    let mut cfg = config();
    cfg.answer_timeout = Duration::from_millis(300);
    let mut gw = start(cfg).await;
    let mut c = Client::connect(gw.addr).await;
    let d = c.hello("u", None).await;
    c.say("m-1", "有人吗").await;
    let said = gw.next_said().await;
    let f = c.recv().await;
    assert_eq!(f, json!({"type":"handoff","dialogue_id":d,"in_reply_to":"m-1","reason":"timeout"}));
    assert_eq!(gw.hub.route(&gw.answer(&said, "late")), "already_answered");
    // The timeout is also written to user.said, for the session and the console.
    let timeout = gw.next_said().await;
    assert!(matches!(&timeout.body, EventBody::HandoffRequested(h) if h.in_reply_to == said.event_id), "{timeout:?}");
    c.say("m-2", "again").await;
    let said2 = gw.next_said().await;
    gw.hub.route(&gw.answer(&said2, "on time"));
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["in_reply_to"].as_str()), (Some("answer"), Some("m-2")), "{f}");
}

#[tokio::test]
async fn broker_down_gives_unavailable() {
    let gw = start(config()).await;
    gw.broker_down.store(true, Ordering::SeqCst);
    let mut c = Client::connect(gw.addr).await;
    let _ = c.hello("u", None).await;
    c.say("m-1", "x").await;
    c.expect_error("unavailable").await;
}

#[tokio::test]
async fn resume_delivers_answers_produced_while_disconnected() {
    let mut gw = start(config()).await;
    let mut c = Client::connect(gw.addr).await;
    let d = c.hello("u-r", None).await;
    c.say("m-1", "在吗").await;
    let said = gw.next_said().await;
    drop(c);
    // Wait until the gateway noticed the disconnect, then answer.
    tokio::time::timeout(WAIT, async {
        loop {
            let m = gw.metrics.render();
            if m.contains("switchboard_gateway_connections 0") {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("disconnect noticed");
    gw.hub.route(&gw.answer(&said, "在的"));
    let mut c = Client::connect(gw.addr).await;
    // Another user cannot take the dialogue over.
    let mut intruder = Client::connect(gw.addr).await;
    intruder.send(json!({"type":"hello","user_id":"someone-else","dialogue_id":d})).await;
    intruder.expect_error("unauthorized").await;
    intruder.expect_close().await;
    // Not even with the victim's resume token: it is bound to the victim's user id.
    let mut intruder = Client::connect(gw.addr).await;
    intruder.send(json!({"type":"hello","user_id":"someone-else","dialogue_id":d,"resume_token":resume_token(&d)})).await;
    intruder.expect_error("unauthorized").await;
    intruder.expect_close().await;
    assert_eq!(c.hello("u-r", Some(&d)).await, d);
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["in_reply_to"].as_str()), (Some("answer"), Some("m-1")), "{f}");
    // The client re-sends its unanswered say: absorbed, not produced again.
    c.say("m-1", "在吗").await;
    c.say("m-2", "next").await;
    let next = gw.next_said().await;
    assert!(matches!(&next.body, EventBody::UserSaid(u) if u.client_msg_id == "m-2"));
}

#[tokio::test]
async fn retry_after_reconnect_replays_an_answer_lost_with_the_old_connection() {
    let mut gw = start(config()).await;
    let mut c = Client::connect(gw.addr).await;
    let d = c.hello("u", None).await;
    c.say("m-1", "x").await;
    let said = gw.next_said().await;
    // Answered while the old connection is still attached, but the client never reads it.
    gw.hub.route(&gw.answer(&said, "lost?"));
    let mut c2 = Client::connect(gw.addr).await;
    assert_eq!(c2.hello("u", Some(&d)).await, d);
    c.drain_until_close().await; // superseded
    c2.say("m-1", "x").await;
    let f = c2.recv().await;
    assert_eq!((f["type"].as_str(), f["text"].as_str()), (Some("answer"), Some("lost?")), "{f}");
}

#[tokio::test]
async fn drain_sends_reconnect_delivers_in_flight_answers_then_closes() {
    let mut gw = start(config()).await;
    let mut idle = Client::connect(gw.addr).await;
    let mut c = Client::connect(gw.addr).await;
    let _ = c.hello("u", None).await;
    c.say("m-1", "x").await;
    let said = gw.next_said().await;
    // The say is accepted (acknowledged) before the drain starts.
    tokio::time::timeout(WAIT, async {
        loop {
            let m = gw.metrics.render();
            if m.contains("switchboard_gateway_says_accepted_total 1") {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("accepted");
    let _ = gw.shutdown.take().unwrap().send(());
    assert_eq!(c.recv().await, json!({"type":"reconnect","after_ms":1000}));
    assert_eq!(idle.recv().await, json!({"type":"reconnect","after_ms":1000}));
    idle.expect_close().await;
    c.say("m-2", "during drain").await;
    c.expect_error("unavailable").await;
    gw.hub.route(&gw.answer(&said, "still delivered"));
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["in_reply_to"].as_str()), (Some("answer"), Some("m-1")), "{f}");
    c.expect_close().await;
    tokio::time::timeout(WAIT, &mut gw.task).await.expect("run returns").unwrap().unwrap();
    assert!(TcpStream::connect(gw.addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn drain_deadline_hands_off_unanswered_says() {
    let mut cfg = config();
    cfg.answer_timeout = Duration::from_secs(60);
    cfg.produce_timeout = Duration::from_millis(100);
    let mut gw = start(cfg).await;
    let mut c = Client::connect(gw.addr).await;
    let _ = c.hello("u", None).await;
    c.say("m-1", "x").await;
    let _ = gw.next_said().await;
    // Shorten nothing: the deadline is produce + answer timeout + 1 s = 61.1 s, too long for a
    // test, so time is paused and advanced instead.
    let _ = gw.shutdown.take().unwrap().send(());
    assert_eq!(c.recv().await["type"], "reconnect");
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(62)).await;
    tokio::time::resume();
    let f = c.recv().await;
    assert_eq!((f["type"].as_str(), f["reason"].as_str()), (Some("handoff"), Some("timeout")), "{f}");
    c.expect_close().await;
}

#[tokio::test]
async fn connection_cap_gives_server_busy() {
    let mut cfg = config();
    cfg.limits.max_connections = 1;
    let gw = start(cfg).await;
    let mut first = Client::connect(gw.addr).await;
    let _ = first.hello("u", None).await;
    let mut second = Client::connect(gw.addr).await;
    second.expect_error("server_busy").await;
    second.expect_close().await;
}

#[tokio::test]
async fn hello_tokens_are_checked_when_a_secret_is_set() {
    let mut cfg = config();
    cfg.hmac_secret = Some(Secret::new(b"test-secret".to_vec()));
    let gw = start(cfg).await;
    let mut c = Client::connect(gw.addr).await;
    c.send(json!({"type":"hello","user_id":"u-1"})).await;
    c.expect_error("unauthorized").await;
    c.expect_close().await;
    let mut c = Client::connect(gw.addr).await;
    c.send(json!({"type":"hello","user_id":"u-1","token":auth::token_for(b"wrong", "u-1")})).await;
    c.expect_error("unauthorized").await;
    c.expect_close().await;
    let mut c = Client::connect(gw.addr).await;
    c.send(json!({"type":"hello","user_id":"u-1","token":auth::token_for(b"test-secret", "u-1")})).await;
    assert_eq!(c.recv().await["type"], "welcome");
}

#[tokio::test]
async fn frames_beyond_the_websocket_limit_close_the_connection() {
    let gw = start(config()).await;
    let mut c = Client::connect(gw.addr).await;
    let _ = c.hello("u", None).await;
    // Over the 2 MiB transport limit the WebSocket layer refuses the message (without reading
    // it); the gateway still says why before closing.
    let _ = c.ws.send(Message::Text("x".repeat(3 << 20).into())).await;
    c.expect_error("too_large").await;
    c.drain_until_close().await;
    // The gateway is fine.
    let mut c = Client::connect(gw.addr).await;
    let _ = c.hello("u2", None).await;
}
