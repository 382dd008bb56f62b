//! The console's human-agent report (`GET /console/api/agents`) against the real ClickHouse
//! (`SWITCHBOARD_CLICKHOUSE_URL`, default http://127.0.0.1:8123) and the real broker
//! (`SWITCHBOARD_KAFKA_BROKERS`), both from deploy/dev/up.sh: ownership events of two agents and
//! several dialogues are written with the ClickHouse sink into a database of the test's own
//! (created from the project's migrations, `agent` column included), a real gateway serves the
//! console on its admin listener, and the test reads the JSON over HTTP and checks exact numbers.

mod common;

use common::{admin_login, create_topics, start_gateway, Admin, WAIT};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MINUTE: i64 = 60_000;

/// A plain HTTP/1.1 GET with the admin session's cookie: (status, body as JSON).
async fn get_json(admin: &Admin, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(admin.addr).await.expect("http connect");
    let cookie = &admin.cookie;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write the request");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("http reply in time").expect("read");
    let text = String::from_utf8(buf).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{path}: {head}");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

fn changed(d: &str, at: i64, cause: EventId, owner: Owner, agent: Option<&str>, reason: OwnershipReason) -> Event {
    Event::new(
        d,
        at,
        EventBody::OwnershipChanged(OwnershipChanged {
            in_reply_to: cause,
            owner,
            agent: agent.map(Into::into),
            reason,
            handoff_reason: (reason == OwnershipReason::Handoff).then_some(HandoffReason::UserAsked),
        }),
    )
}

/// The events of the scenario, at `m(minute, second)` after `base` (a whole minute).
struct Scenario {
    events: Vec<Event>,
    base: i64,
}

impl Scenario {
    fn m(&self, minute: i64, second: i64) -> i64 {
        self.base + minute * MINUTE + second * 1000
    }
    fn waiting(&mut self, d: &str, minute: i64, second: i64) {
        let at = self.m(minute, second);
        self.events.push(changed(d, at, EventId::new_v7(), Owner::Waiting, None, OwnershipReason::Handoff));
    }
    fn claimed(&mut self, d: &str, minute: i64, second: i64, agent: &str) {
        let at = self.m(minute, second);
        let claim = Event::new(d, at, EventBody::AgentClaim(AgentClaim { agent: agent.into() }));
        self.events.push(changed(d, at, claim.event_id, Owner::Agent, Some(agent), OwnershipReason::Claimed));
        self.events.push(claim);
    }
    fn refused(&mut self, d: &str, minute: i64, second: i64, agent: &str, owner: &str) {
        let at = self.m(minute, second);
        let claim = Event::new(d, at, EventBody::AgentClaim(AgentClaim { agent: agent.into() }));
        self.events.push(Event::new(
            d,
            at,
            EventBody::AgentActionRefused(AgentActionRefused {
                in_reply_to: claim.event_id,
                agent: agent.into(),
                action: AgentAction::Claim,
                reason: RefusalReason::AlreadyClaimed,
                owner: Some(owner.into()),
            }),
        ));
        self.events.push(claim);
    }
    fn said(&mut self, d: &str, minute: i64, second: i64, agent: &str, text: &str) {
        let at = self.m(minute, second);
        let message = AgentMessage { agent: agent.into(), client_msg_id: format!("a-{at}"), text: text.into() };
        let input = Event::new(d, at, EventBody::AgentMessage(message.clone()));
        self.events.push(Event::new(
            d,
            at,
            EventBody::AgentSaid(AgentSaid {
                in_reply_to: input.event_id,
                agent: message.agent,
                client_msg_id: message.client_msg_id,
                text: message.text,
            }),
        ));
        self.events.push(input);
    }
    fn returned(&mut self, d: &str, minute: i64, second: i64, agent: &str) {
        let at = self.m(minute, second);
        let input = Event::new(d, at, EventBody::AgentReturn(AgentReturn { agent: agent.into() }));
        self.events.push(changed(d, at, input.event_id, Owner::Bot, Some(agent), OwnershipReason::Returned));
        self.events.push(input);
    }
    fn agent_closed(&mut self, d: &str, minute: i64, second: i64, agent: &str) {
        let at = self.m(minute, second);
        let input = Event::new(d, at, EventBody::AgentClose(AgentClose { agent: agent.into() }));
        self.events.push(changed(d, at, input.event_id, Owner::Bot, Some(agent), OwnershipReason::Closed));
        self.events.push(input);
    }
    /// Closed idle (the session's close, caused by the dialogue's last event, not an agent).
    fn idle_closed(&mut self, d: &str, minute: i64, second: i64, agent: Option<&str>) {
        let at = self.m(minute, second);
        self.events.push(changed(d, at, EventId::new_v7(), Owner::Bot, agent, OwnershipReason::Closed));
    }
    fn wait_timeout(&mut self, d: &str, minute: i64, second: i64) {
        let at = self.m(minute, second);
        self.events.push(changed(d, at, EventId::new_v7(), Owner::Bot, None, OwnershipReason::WaitTimeout));
    }
}

#[tokio::test]
async fn the_agents_report_counts_queue_claims_replies_and_outcomes() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let id = EventId::new_v7();
    let simple = id.to_string().replace('-', "");
    let user_topic = format!("test.agents.user.{id}");
    let bot_topic = format!("test.agents.bot.{id}");
    create_topics(&kafka, &[&user_topic, &bot_topic], 1).await;
    let database = format!("sbtest_agents_{simple}");
    let clickhouse = ClickHouseSettings {
        database: database.clone(),
        ..ClickHouseSettings::from_env().expect("clickhouse settings")
    };
    // Created through a client on the default database (the new one does not exist yet).
    let admin = ClickHouseSink::new(&ClickHouseSettings::from_env().expect("clickhouse settings"));
    admin.ping().await.unwrap_or_else(|e| panic!("{e} (is ClickHouse up? deploy/dev/up.sh)"));
    admin.create_database(&database).await.expect("create database");
    let sink = ClickHouseSink::new(&clickhouse);

    // Every event lies in whole minutes before the current one, so each minute's queue length is
    // known whenever the report is read (within the next few minutes).
    let now = now_ms();
    let mut s = Scenario { events: Vec::new(), base: now - now % MINUTE - 10 * MINUTE };
    let p = format!("agents-{simple}");
    let d = |name: &str| format!("{p}-{name}");
    // a: waits 10 s, li claims, replies after 20 s and again, closes it (resolved).
    s.waiting(&d("a"), 0, 0);
    s.claimed(&d("a"), 0, 10, "li.na");
    s.said(&d("a"), 0, 30, "li.na", "您好，我来处理 <b>");
    s.said(&d("a"), 0, 40, "li.na", "已退款");
    s.agent_closed(&d("a"), 1, 0, "li.na");
    // b: waits 30 s, wang claims (li's later claim refused), replies after 40 s, returns it.
    s.waiting(&d("b"), 1, 0);
    s.claimed(&d("b"), 1, 30, "wang.wu");
    s.refused(&d("b"), 1, 31, "li.na", "wang.wu");
    s.said(&d("b"), 2, 10, "wang.wu", "Hello");
    s.returned(&d("b"), 2, 20, "wang.wu");
    // c: nobody claims: back to the bot by the wait timeout.
    s.waiting(&d("c"), 3, 0);
    s.wait_timeout(&d("c"), 5, 0);
    // d: the user leaves while waiting: closed idle with no agent.
    s.waiting(&d("d"), 4, 0);
    s.idle_closed(&d("d"), 7, 0, None);
    // e: still waiting, for 8 minutes or more (abandoned); f: for less than 5 (not yet).
    s.waiting(&d("e"), 2, 0);
    s.waiting(&d("f"), 9, 50);
    // h: wang steps into a dialogue the bot had (no wait), never replies; it ends idle.
    s.claimed(&d("h"), 5, 0, "wang.wu");
    s.idle_closed(&d("h"), 8, 0, Some("wang.wu"));
    // i: waits 5 s, li claims it and still has it.
    s.waiting(&d("i"), 6, 0);
    s.claimed(&d("i"), 6, 5, "li.na");
    // Another prefix's dialogue, which the filter leaves out.
    s.waiting(&format!("other-{simple}"), 1, 0);
    sink.write(&s.events).await.expect("insert");
    sink.write(&s.events).await.expect("duplicate insert (FINAL reads one)");

    let rig =
        start_gateway(&kafka, &user_topic, &bot_topic, |config| config.clickhouse = Some(clickhouse.clone())).await;
    // Without the login: 401.
    let anonymous = Admin { addr: rig.admin, cookie: String::new() };
    assert_eq!(get_json(&anonymous, &format!("/console/api/agents?prefix={p}")).await.0, 401);
    let admin_session = admin_login(rig.admin).await;

    let (status, r) = get_json(&admin_session, &format!("/console/api/agents?minutes=15&prefix={p}")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["minutes"].as_u64(), r["prefix"].as_str()), (Some(15), Some(p.as_str())));
    assert_eq!(r["truncated"], false);
    assert_eq!((r["lookback_ms"].as_u64(), r["abandon_after_ms"].as_u64()), (Some(7_200_000), Some(300_000)));
    assert_eq!(r["handoffs"], 7, "a b c d e f i: {r}");
    assert_eq!(r["claims"], 4, "a b h i");
    assert_eq!(r["claims_refused"], 1);
    assert_eq!(r["replies"], 3);
    assert_eq!(r["waiting_now"], 2, "e f");
    assert_eq!(r["time_to_claim"], json!({"count": 3, "p50_ms": 10_000, "p99_ms": 30_000, "max_ms": 30_000}));
    assert_eq!(r["time_to_first_reply"], json!({"count": 2, "p50_ms": 20_000, "p99_ms": 40_000, "max_ms": 40_000}));
    assert_eq!(
        r["outcomes"],
        json!({"resolved": 1, "returned": 1, "closed_idle_with_agent": 1, "abandoned": 3,
               "abandoned_wait_timeout": 1, "abandoned_closed_waiting": 1, "abandoned_still_waiting": 1})
    );
    assert_eq!(
        r["agents"],
        json!([
            {"agent": "li.na", "claims": 2, "claims_refused": 1, "replies": 2, "returned": 0, "closed": 1,
             "closed_idle": 0, "first_reply_p50_ms": 20_000, "owning_now": 1},
            {"agent": "wang.wu", "claims": 2, "claims_refused": 0, "replies": 1, "returned": 1, "closed": 0,
             "closed_idle": 1, "first_reply_p50_ms": 40_000, "owning_now": 0}
        ])
    );
    // The queue at the end of each minute: 0 (a claimed), 1 (b claimed), 2 e, 3 e c, 4 e c d,
    // 5 e d (c timed out), 6 e d (i claimed), 7 e (d closed), 8 e, 9 e f.
    let queue = r["queue"].as_array().expect("a queue series");
    assert!((15..=16).contains(&queue.len()), "{}", queue.len());
    let at = |minute: i64| {
        let start = s.m(minute, 0);
        queue.iter().find(|q| q["minute_ms"] == start).map(|q| q["waiting"].as_u64().expect("a count"))
    };
    let got: Vec<Option<u64>> = (-1..=9).map(at).collect();
    let want: Vec<Option<u64>> = [0, 0, 0, 1, 2, 3, 2, 2, 1, 1, 2].into_iter().map(Some).collect();
    assert_eq!(got, want, "{queue:?}");
    assert_eq!(queue.last().map(|q| &q["waiting"]), Some(&json!(2)), "the current minute: now");

    // Another prefix sees only its own dialogue; bad parameters answer 400.
    let (status, other) = get_json(&admin_session, &format!("/console/api/agents?prefix=other-{simple}")).await;
    assert_eq!((status, other["handoffs"].as_u64(), other["waiting_now"].as_u64()), (200, Some(1), Some(1)), "{other}");
    assert_eq!(other["outcomes"]["abandoned_still_waiting"], 1);
    let (status, e) = get_json(&admin_session, "/console/api/agents?minutes=soon").await;
    assert_eq!((status, e["code"].as_str()), (400, Some("bad_request")), "{e}");
    let (status, e) = get_json(&admin_session, &format!("/console/api/agents?prefix={}", "x".repeat(200))).await;
    assert_eq!(status, 400, "{e}");

    rig.stop().await;
    let _ = admin.client().query(&format!("DROP DATABASE IF EXISTS {database}")).execute().await;
}

#[tokio::test]
async fn clickhouse_down_answers_503_with_a_json_error() {
    let settings = ClickHouseSettings {
        url: "http://127.0.0.1:1".into(),
        database: "switchboard".into(),
        user: "default".into(),
        password: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = Admin { addr: listener.local_addr().expect("an address"), cookie: String::new() };
    let app = switchboard_gateway::console::router(&settings);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, e) = get_json(&addr, "/console/api/agents?minutes=60").await;
    assert_eq!(status, 503, "{e}");
    assert_eq!(e["code"], "clickhouse_unavailable", "{e}");
    server.abort();
}

#[test]
fn the_page_has_the_agents_section_and_builds_no_markup() {
    let page = switchboard_gateway::console::CONSOLE_PAGE;
    for needed in ["/console/api/agents", "人工坐席", "Human agents", "chart-queue", "agents-table"] {
        assert!(page.contains(needed), "console.html lacks {needed}");
    }
    for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
        assert!(!page.contains(banned), "console.html uses {banned}");
    }
}
