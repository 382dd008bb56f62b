//! Hostile input at the edge: a real gateway (fresh topics on the dev broker, the console on a
//! fresh ClickHouse database) and a real WebSocket client send
//!
//! - binary frames with invalid UTF-8, deeply nested JSON (5,000 levels inside the frame limit,
//!   10,000 over it), oversize frames and texts, control characters in ids: each gets an `error`
//!   frame and the connection keeps working;
//! - control characters, `<script>` and SQL in the text: accepted and carried verbatim, as data,
//!   to `user.said`; written with the ClickHouse sink (the topology's insert path, which sends
//!   rows as RowBinary, never as SQL text) they come back byte for byte and the table is
//!   intact; the console serves them only inside JSON (`nosniff`), binds its query parameters (an
//!   SQL-injecting `prefix` lists nothing) and its page puts server data in the DOM with
//!   `textContent` only.
//!
//! Needs the dev broker and ClickHouse (`deploy/dev/up.sh`).

mod common;

use common::{consume_from_beginning, create_topics, start_gateway, WAIT};
use futures::{SinkExt, StreamExt};
use rdkafka::Message as _;
use serde_json::{json, Value};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        match message {
            Message::Text(text) => {
                return serde_json::from_str(&text).expect("server frames are JSON")
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn expect_error(ws: &mut Ws, what: &str, codes: &[&str]) {
    let frame = next_json(ws).await;
    assert_eq!(frame["type"], "error", "{what}: {frame}");
    let code = frame["code"].as_str().unwrap_or_default();
    assert!(
        codes.contains(&code),
        "{what}: code {code}, expected one of {codes:?}: {frame}"
    );
}

async fn http_get(admin: &common::Admin, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(admin.addr).await.expect("http connect");
    let cookie = &admin.cookie;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("http reply in time")
        .expect("read");
    let text = String::from_utf8(buf).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    (head.to_string(), body.to_string())
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_rejected_or_stored_inertly() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let id = EventId::new_v7();
    let simple = id.to_string().replace('-', "");
    let user_topic = format!("test.edge.user.{id}");
    let bot_topic = format!("test.edge.bot.{id}");
    create_topics(&kafka, &[&user_topic, &bot_topic], 1).await;
    let database = format!("sbtest_edge_{}", &simple[..16]);
    let clickhouse = ClickHouseSettings {
        database: database.clone(),
        ..ClickHouseSettings::from_env().expect("clickhouse settings")
    };
    // Created through a client on the default database (the new one does not exist yet).
    let admin = ClickHouseSink::new(&ClickHouseSettings::from_env().expect("clickhouse settings"));
    admin.create_database(&database).await.expect("create database");
    let sink = ClickHouseSink::new(&clickhouse);

    let (mut max_frame, mut max_text) = (0, 0);
    let gateway = start_gateway(&kafka, &user_topic, &bot_topic, |config| {
        config.clickhouse = Some(clickhouse.clone());
        max_frame = config.limits.max_frame_bytes;
        max_text = config.limits.max_text_chars;
    })
    .await;
    let addr = gateway.addr;
    let console = common::admin_login(gateway.admin).await;

    let (mut ws, _) = connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("websocket handshake");
    ws.send(Message::Text(
        json!({"type":"hello","user_id":"u-edge","locale":"en"})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let dialogue = welcome["dialogue_id"]
        .as_str()
        .expect("dialogue id")
        .to_string();

    // ---- rejected: each gets an error frame, and the connection goes on ----
    ws.send(Message::Binary(vec![0xff, 0xfe, 0x00, 0xc3, 0x28].into()))
        .await
        .expect("send binary");
    expect_error(&mut ws, "binary frame with invalid UTF-8", &["bad_frame"]).await;
    let nested_inside_limit = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    assert!(nested_inside_limit.len() < max_frame);
    ws.send(Message::Text(nested_inside_limit.into()))
        .await
        .expect("send nested");
    expect_error(&mut ws, "5,000 nested arrays", &["bad_frame"]).await;
    let nested_field = format!(
        "{{\"type\":\"say\",\"client_msg_id\":\"m-nested\",\"text\":\"hi\",\"extra\":{}{}}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    ws.send(Message::Text(nested_field.into()))
        .await
        .expect("send nested field");
    expect_error(
        &mut ws,
        "a say with 5,000 nested arrays in a field",
        &["bad_frame"],
    )
    .await;
    let nested_over_limit = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    ws.send(Message::Text(nested_over_limit.into()))
        .await
        .expect("send nested");
    expect_error(&mut ws, "10,000 nested arrays", &["bad_frame", "too_large"]).await;
    let oversize_frame =
        json!({"type":"say","client_msg_id":"m-big","text":"a".repeat(max_frame + 10)}).to_string();
    ws.send(Message::Text(oversize_frame.into()))
        .await
        .expect("send oversize");
    expect_error(&mut ws, "oversize frame", &["too_large"]).await;
    let long_text =
        json!({"type":"say","client_msg_id":"m-long","text":"好".repeat(max_text + 1)}).to_string();
    ws.send(Message::Text(long_text.into()))
        .await
        .expect("send long text");
    expect_error(&mut ws, "text over the character limit", &["too_large"]).await;
    ws.send(Message::Text(
        json!({"type":"say","client_msg_id":"m\u{0}\u{1b}[2J","text":"hi"})
            .to_string()
            .into(),
    ))
    .await
    .expect("send control id");
    expect_error(
        &mut ws,
        "control characters in client_msg_id",
        &["bad_frame"],
    )
    .await;

    // ---- accepted as data: control characters, script and SQL in the text ----
    let hostile = [
        (
            "m-ctl",
            "bell\u{7} escape\u{1b}[31mred\u{1b}[0m tab\tnul\u{0}end".to_string(),
        ),
        (
            "m-script",
            "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>".to_string(),
        ),
        ("m-sql", format!("'); DROP TABLE {database}.events; --")),
        (
            "m-sql2",
            "\" OR 1=1; -- \\' UNION SELECT * FROM system.users".to_string(),
        ),
    ];
    let said = consume_from_beginning(&kafka, &format!("test-edge-{id}"), &user_topic, 1, &[]);
    let mut accepted = Vec::new();
    for (msg, text) in &hostile {
        ws.send(Message::Text(
            json!({"type":"say","client_msg_id":msg,"text":text})
                .to_string()
                .into(),
        ))
        .await
        .expect("send hostile text");
        let record = tokio::time::timeout(WAIT, said.recv())
            .await
            .expect("the say reaches user.said")
            .expect("recv");
        let event = decode(record.payload().expect("payload")).expect("a valid event");
        let EventBody::UserSaid(body) = &event.body else {
            panic!("not a UserSaid: {event:?}")
        };
        assert_eq!(&body.client_msg_id, msg);
        assert_eq!(&body.text, text, "the text is carried verbatim");
        assert_eq!(event.dialogue_id, dialogue);
        accepted.push(event);
    }
    // The connection still works after all of that.
    assert!(matches!(
        ws.send(Message::Ping(vec![1].into())).await,
        Ok(())
    ));

    // ---- stored inertly: the topology's insert path, then read back ----
    sink.write(&accepted)
        .await
        .expect("insert the hostile events");
    for event in &accepted {
        let EventBody::UserSaid(body) = &event.body else {
            unreachable!()
        };
        let stored: String = sink
            .client()
            .query("SELECT text FROM events FINAL WHERE dialogue_id = ? AND toString(event_id) = ?")
            .bind(&event.dialogue_id)
            .bind(event.event_id.to_string())
            .fetch_one()
            .await
            .expect("row read back");
        assert_eq!(&stored, &body.text, "stored byte for byte");
    }
    let tables: u64 = sink
        .client()
        .query("SELECT count() FROM system.tables WHERE database = ? AND name = 'events'")
        .bind(&database)
        .fetch_one()
        .await
        .expect("system.tables");
    assert_eq!(tables, 1, "the events table is still there");
    let rows: u64 = sink
        .client()
        .query("SELECT count() FROM events FINAL")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(rows, hostile.len() as u64);

    // ---- the console: data only inside JSON, and the page uses textContent ----
    let (head, body) = http_get(&console, &format!("/console/api/dialogue/{dialogue}")).await;
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/json"), "{head}");
    assert!(lower.contains("x-content-type-options: nosniff"), "{head}");
    let trace: Value = serde_json::from_str(&body).expect("trace JSON");
    let texts: Vec<&str> = trace["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    for (_, text) in &hostile {
        assert!(
            texts.contains(&text.as_str()),
            "the console returns {text:?} as data; got {texts:?}"
        );
    }
    // Parameters are bound, not spliced into the SQL: an injected prefix matches nothing.
    let (_, listed) = http_get(&console,
        &format!("/console/api/dialogues?minutes=60&prefix={dialogue}"),
    )
    .await;
    let listed: Value = serde_json::from_str(&listed).expect("dialogue list JSON");
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "the dialogue is listed by its own prefix: {listed}"
    );
    let injected = "%27)%20OR%201%3D1%20OR%20(%27%27%3D%27";
    let (head, body) = http_get(&console,
        &format!("/console/api/dialogues?minutes=60&prefix={injected}"),
    )
    .await;
    let listed: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {head}\n{body}"));
    assert!(
        listed.as_array().is_some_and(Vec::is_empty),
        "an injected prefix listed dialogues: {listed}"
    );
    let (page_head, page) = http_get(&console, "/console").await;
    assert!(
        page_head
            .to_ascii_lowercase()
            .contains("content-security-policy:"),
        "{page_head}"
    );
    for sink_api in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!page.contains(sink_api), "the console page uses {sink_api}");
    }
    assert!(page.contains("textContent"));

    gateway.stop().await;
    let _ = admin
        .client()
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
}
