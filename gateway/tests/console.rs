//! The operations console against the real ClickHouse (`SWITCHBOARD_CLICKHOUSE_URL`, default
//! http://127.0.0.1:8123) and the real broker (`SWITCHBOARD_KAFKA_BROKERS`), both from
//! deploy/dev/up.sh: events of fresh dialogues are written with the ClickHouse sink, a real
//! gateway serves `/console`, and the test reads the JSON endpoints over HTTP. Every test uses
//! its own dialogue-id prefix, so other traffic in the table does not disturb the numbers.

mod common;

use common::{admin_login, create_topics, start_gateway, Admin, RunningGateway, WAIT};
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SCRIPT: &str = "<script>alert(1)</script>";

/// A plain HTTP/1.1 GET: (status, headers, body).
async fn http_get(admin: &Admin, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(admin.addr).await.expect("http connect");
    let cookie = &admin.cookie;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("http reply in time").unwrap();
    let text = String::from_utf8(buf).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, head.to_string(), body.to_string())
}

async fn get_json(addr: &Admin, path: &str) -> (u16, Value, String) {
    let (status, head, body) = http_get(addr, path).await;
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{path}: {head}");
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, value, body)
}

/// A gateway on fresh topics with the console reading the dev ClickHouse.
async fn gateway(clickhouse: ClickHouseSettings) -> RunningGateway {
    let settings = KafkaSettings::from_env().expect("kafka settings");
    let id = EventId::new_v7();
    let user_topic = format!("test.gw.user.{id}");
    let bot_topic = format!("test.gw.bot.{id}");
    create_topics(&settings, &[&user_topic, &bot_topic], 1).await;
    start_gateway(&settings, &user_topic, &bot_topic, |config| config.clickhouse = Some(clickhouse)).await
}

/// Test logs (`RUST_LOG=switchboard_gateway=debug`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn said(dialogue: &str, at: i64, msg: &str, text: &str) -> Event {
    Event::new(
        dialogue,
        at,
        EventBody::UserSaid(UserSaid {
            client_msg_id: msg.into(),
            user_id: "u-console".into(),
            locale: Locale::ZhCn,
            text: text.into(),
        }),
    )
}

fn recognized(turn: &Event, at: i64, intent: &str, confidence: f32) -> Event {
    Event::caused_by(
        turn,
        "intent",
        at,
        EventBody::IntentRecognized(IntentRecognized {
            in_reply_to: turn.event_id,
            client_msg_id: msg_id(turn),
            masked_text: "masked".into(),
            intent: intent.into(),
            confidence,
            model_version: "m-test".into(),
        }),
    )
}

fn retrieved(turn: &Event, at: i64, entry: Option<&str>) -> Event {
    Event::caused_by(
        turn,
        "kb",
        at,
        EventBody::KnowledgeRetrieved(KnowledgeRetrieved {
            in_reply_to: turn.event_id,
            client_msg_id: msg_id(turn),
            entry_id: entry.map(Into::into),
            score: 0.7,
            kb_version: "kb-test".into(),
        }),
    )
}

fn answered(turn: &Event, at: i64, text: &str, intent: &str) -> Event {
    Event::caused_by(
        turn,
        "answer",
        at,
        EventBody::AnswerGenerated(AnswerGenerated {
            in_reply_to: turn.event_id,
            client_msg_id: msg_id(turn),
            text: text.into(),
            intent: intent.into(),
            confidence: 0.9,
            latency_ms: u32::try_from(at - turn.occurred_at).unwrap(),
        }),
    )
}

fn handed_off(turn: &Event, at: i64, reason: HandoffReason) -> Event {
    Event::caused_by(
        turn,
        "handoff",
        at,
        EventBody::HandoffRequested(HandoffRequested {
            in_reply_to: turn.event_id,
            client_msg_id: msg_id(turn),
            reason,
            detail: "handed to a human".into(),
            latency_ms: u32::try_from(at - turn.occurred_at).unwrap(),
        }),
    )
}

fn msg_id(turn: &Event) -> String {
    match &turn.body {
        EventBody::UserSaid(u) => u.client_msg_id.clone(),
        other => panic!("not a UserSaid: {other:?}"),
    }
}

#[tokio::test]
async fn summary_trace_and_dialogue_list_come_from_clickhouse() {
    logs();
    let settings = ClickHouseSettings::from_env().expect("clickhouse settings");
    let sink = ClickHouseSink::new(&settings);
    sink.ping().await.unwrap_or_else(|e| panic!("{e} (is ClickHouse up? deploy/dev/up.sh)"));

    let prefix = format!("test-console-{}", EventId::new_v7());
    let a = format!("{prefix}-a");
    let b = format!("{prefix}-b");
    let t0 = now_ms() - 10_000;
    // Dialogue a: an answered turn, then a turn handed off for low confidence.
    let a1 = said(&a, t0, "m-1", "我要退货");
    let a2 = said(&a, t0 + 1_000, "m-2", SCRIPT);
    // Dialogue b: a turn answered with the clarifying question (unresolved).
    let b1 = said(&b, t0 + 2_000, "m-1", "where is my order");
    let clarify = switchboard_gateway::console::CLARIFYING_ANSWERS[1];
    let events = vec![
        a1.clone(),
        recognized(&a1, t0 + 20, "return_goods", 0.93),
        retrieved(&a1, t0 + 35, Some("kb-return")),
        answered(&a1, t0 + 120, "请提供订单号", "return_goods"),
        a2.clone(),
        recognized(&a2, t0 + 1_010, "unknown", 0.2),
        handed_off(&a2, t0 + 1_300, HandoffReason::LowConfidence),
        b1.clone(),
        recognized(&b1, t0 + 2_010, "order_status", 0.8),
        retrieved(&b1, t0 + 2_030, None),
        answered(&b1, t0 + 2_050, clarify, "order_status"),
    ];
    sink.write(&events).await.expect("insert");
    // Written twice, read once (FINAL).
    sink.write(&events).await.expect("duplicate insert");

    let rig = gateway(settings).await;
    let addr = admin_login(rig.admin).await;
    // Without the login: 401.
    let anonymous = Admin { addr: rig.admin, cookie: String::new() };
    assert_eq!(get_json(&anonymous, "/console/api/summary").await.0, 401);

    // The page and its chart library.
    let (status, head, page) = http_get(&addr, "/console").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-security-policy:"), "{head}");
    // The page as shipped, with the logged-in user's bar (name, role, logout form, CSRF token).
    let (before, after) = switchboard_gateway::console::CONSOLE_PAGE.split_once("<!--SB-ACCOUNT-->").expect("a bar slot");
    assert!(page.starts_with(before) && page.ends_with(after), "the console page as shipped");
    assert!(page.contains(r#"data-user="ops">ops · admin</span>"#) && page.contains(r#"name="csrf-token""#), "{page}");
    let (status, head, js) = http_get(&addr, "/console/vendor/chart.umd.min.js").await;
    assert_eq!(status, 200, "{head}");
    assert!(js.contains("Chart.js v4"));

    // Summary over the default window (15 minutes), this test's dialogues only.
    let (status, s, raw) = get_json(&addr, &format!("/console/api/summary?prefix={prefix}")).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["minutes"], 15);
    assert_eq!(s["counts"]["user_said"], 3, "{s}");
    assert_eq!(s["counts"]["intent_recognized"], 3);
    assert_eq!(s["counts"]["knowledge_retrieved"], 2);
    assert_eq!(s["counts"]["answer_generated"], 2);
    assert_eq!(s["counts"]["handoff_requested"], 1);
    assert_eq!(s["latency"]["count"], 3);
    assert_eq!(s["latency"]["p50_ms"], 120.0, "{s}");
    assert_eq!(s["latency"]["p99_ms"], 300.0, "{s}");
    assert_eq!(s["latency"]["max_ms"], 300);
    let tps = s["turns_per_second"].as_f64().unwrap();
    assert!((tps - 3.0 / 900.0).abs() < 1e-9, "{tps}");
    let series = s["series"].as_array().unwrap();
    assert!((15..=16).contains(&series.len()), "{}", series.len());
    assert_eq!(series.iter().map(|p| p["turns"].as_u64().unwrap()).sum::<u64>(), 3);
    assert_eq!(series.iter().map(|p| p["replies"].as_u64().unwrap()).sum::<u64>(), 3);
    let mut intents: Vec<(String, u64)> = s["intents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["intent"].as_str().unwrap().to_string(), i["count"].as_u64().unwrap()))
        .collect();
    intents.sort();
    assert_eq!(intents, [("order_status".to_string(), 1), ("return_goods".to_string(), 1), ("unknown".to_string(), 1)]);
    assert_eq!(s["handoffs"]["total"], 1);
    assert!((s["handoffs"]["rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(s["handoffs"]["reasons"], serde_json::json!([{"reason": "low_confidence", "count": 1}]));
    let mut unresolved: Vec<&str> =
        s["unresolved"].as_array().unwrap().iter().map(|u| u["text"].as_str().unwrap()).collect();
    unresolved.sort();
    assert_eq!(unresolved, [SCRIPT, "where is my order"], "answered turns are not unresolved");
    // The script text is JSON string data, not markup: `<` and `>` are escaped in the body.
    assert!(!raw.contains("<script>"), "{raw}");
    assert!(raw.contains("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"), "{raw}");

    // A window can be chosen; out-of-range values are clamped, bad ones refused.
    let (status, s, _) = get_json(&addr, &format!("/console/api/summary?minutes=99999&prefix={prefix}")).await;
    assert_eq!((status, s["minutes"].as_u64()), (200, Some(1440)));
    assert_eq!(s["counts"]["user_said"], 3);
    let (status, e, _) = get_json(&addr, "/console/api/summary?minutes=soon").await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["code"], "bad_request");

    // Recent dialogues: most recently active first.
    let (status, list, _) = get_json(&addr, &format!("/console/api/dialogues?prefix={prefix}")).await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["dialogue_id"], b.as_str());
    assert_eq!(list[0]["turns"], 1);
    assert_eq!(list[1]["dialogue_id"], a.as_str());
    assert_eq!((list[1]["turns"].as_u64(), list[1]["handoffs"].as_u64()), (Some(2), Some(1)));
    assert_eq!(list[1]["first_ms"], t0);
    assert_eq!(list[1]["last_ms"], t0 + 1_300);

    // The trace of dialogue a: every event, in order, with per-stage latency.
    let (status, t, raw) = get_json(&addr, &format!("/console/api/dialogue/{a}")).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["dialogue_id"], a.as_str());
    assert_eq!(t["turns"], 2);
    assert_eq!(t["truncated"], false);
    let events = t["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "user_said",
            "intent_recognized",
            "knowledge_retrieved",
            "answer_generated",
            "user_said",
            "intent_recognized",
            "handoff_requested"
        ]
    );
    let since: Vec<i64> = events.iter().map(|e| e["since_user_ms"].as_i64().expect("since_user_ms")).collect();
    assert_eq!(since, [0, 20, 35, 120, 0, 10, 300]);
    let at: Vec<i64> = events.iter().map(|e| e["occurred_at_ms"].as_i64().unwrap()).collect();
    assert_eq!(at, [t0, t0 + 20, t0 + 35, t0 + 120, t0 + 1_000, t0 + 1_010, t0 + 1_300]);
    assert_eq!(events[3]["latency_ms"], 120);
    assert_eq!(events[6]["reason"], "low_confidence");
    assert_eq!(events[3]["in_reply_to"], a1.event_id.0.to_string());
    assert_eq!(events[0]["event_id"], a1.event_id.0.to_string());
    assert_eq!(events[4]["text"], SCRIPT, "the text comes back as string data");
    assert!(events[4]["payload"].as_str().unwrap().contains("alert(1)"));
    assert!(!raw.contains('<'), "no markup character in the body: {raw}");

    // Unknown and invalid dialogues.
    let (status, e, _) = get_json(&addr, &format!("/console/api/dialogue/{prefix}-nobody")).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("not_found")), "{e}");
    let long = "x".repeat(200);
    let (status, e, _) = get_json(&addr, &format!("/console/api/dialogue/{long}")).await;
    assert_eq!(status, 400, "{e}");

    rig.stop().await;
}

#[tokio::test]
async fn clickhouse_down_answers_503_with_a_json_error() {
    let settings = ClickHouseSettings {
        url: "http://127.0.0.1:1".into(),
        database: "switchboard".into(),
        user: "default".into(),
        password: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = Admin { addr: listener.local_addr().unwrap(), cookie: String::new() };
    let app = switchboard_gateway::console::router(&settings);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    for path in ["/console/api/summary", "/console/api/dialogues?minutes=60", "/console/api/dialogue/d-1"] {
        let (status, e, _) = get_json(&addr, path).await;
        assert_eq!(status, 503, "{path}: {e}");
        assert_eq!(e["code"], "clickhouse_unavailable", "{path}: {e}");
        assert!(e["error"].as_str().unwrap().contains("127.0.0.1:1"), "{e}");
    }
    // The page itself is still served (and shows the error it gets from the API).
    let (status, _, page) = http_get(&addr, "/console").await;
    assert_eq!(status, 200);
    assert!(page.contains("Error: "));
    server.abort();
}

#[test]
fn the_page_never_uses_inner_html() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/console.html")).unwrap();
    assert_eq!(page, switchboard_gateway::console::CONSOLE_PAGE);
    for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
        assert!(!page.contains(banned), "console.html uses {banned}");
    }
    assert!(page.contains("textContent"));
}
