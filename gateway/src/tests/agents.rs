//! The agent side against a real gateway with the in-memory broker: an agent logs in, takes a
//! dialogue through `/agent/ws`, writes to the customer and gives it back; the decisions are
//! injected as the session operator would publish them on `bot.said`.

use super::{start, Client, TestGateway, WAIT};
use crate::accounts::{Accounts, Role};
use crate::agent::fixtures::changed;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use switchboard_schemas::ownership::{
    AgentAction, AgentActionRefused, AgentSaid, Owner, OwnershipReason, RefusalReason, TurnQueued,
};
use switchboard_schemas::{Event, EventBody, EventId, HandoffReason, HandoffRequested};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const PASSWORD: &str = "agent test password";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn login(admin: SocketAddr, user: &str) -> String {
    let body = format!("username={user}&password={}", PASSWORD.replace(' ', "+"));
    let mut s = TcpStream::connect(admin).await.unwrap();
    let req = format!(
        "POST /login HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie: {text}"))
        .to_string()
}

async fn agent_ws(admin: SocketAddr, cookie: &str, origin: Option<&str>) -> Result<Ws, String> {
    let mut request = format!("ws://{admin}/agent/ws").into_client_request().unwrap();
    request.headers_mut().insert("Cookie", cookie.parse().unwrap());
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(ws, _)| ws).map_err(|e| e.to_string())
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("an agent frame in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("agent socket ended: {other:?}"),
        }
    }
}

/// The next agent frame of `kind`, skipping queue snapshots and the like.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let f = next(ws).await;
        if f["type"] == kind {
            return f;
        }
    }
}

fn decided(d: &str, body: EventBody) -> Event {
    Event::new(d, crate::hub::now_ms(), body)
}


async fn gateway() -> TestGateway {
    let mut c = super::config();
    let path = std::env::temp_dir().join(format!("sb-agents-{}", uuid::Uuid::now_v7())).join("users.json");
    let mut a = Accounts::load(&path).unwrap();
    a.upsert("alex", Role::Agent, PASSWORD).unwrap();
    a.upsert("vera", Role::Viewer, PASSWORD).unwrap();
    c.admin.users_file = Some(path);
    start(c).await
}

#[tokio::test]
async fn an_agent_takes_over_writes_and_gives_the_dialogue_back() {
    let mut gw = gateway().await;
    // A viewer may not open the agent socket; nor may a page of another origin.
    let viewer = login(gw.admin, "vera").await;
    assert!(agent_ws(gw.admin, &viewer, None).await.is_err(), "a viewer is not an agent");
    let cookie = login(gw.admin, "alex").await;
    assert!(agent_ws(gw.admin, &cookie, Some("http://evil.example")).await.is_err(), "cross-origin");
    let mut agent = agent_ws(gw.admin, &cookie, Some(&format!("http://{}", gw.admin))).await.expect("agent socket");
    assert_eq!(next(&mut agent).await, json!({"type":"queue","waiting":[],"with_agents":[]}));

    // The customer asks for a human; the session hands off and queues the dialogue.
    let mut customer = Client::connect(gw.addr).await;
    let d = customer.hello("c-1", None).await;
    customer.say("m-1", "转人工").await;
    let said = gw.next_said_event().await;
    let handoff = Event::caused_by(
        &said,
        "handoff",
        crate::hub::now_ms(),
        EventBody::HandoffRequested(HandoffRequested {
            in_reply_to: said.event_id,
            client_msg_id: "m-1".into(),
            reason: HandoffReason::UserAsked,
            detail: String::new(),
            latency_ms: 3,
        }),
    );
    gw.bot_said(&handoff);
    assert_eq!(customer.recv().await["type"], "handoff");
    gw.bot_said(&changed(&d, Owner::Waiting, None, OwnershipReason::Handoff));
    let queue = next_of(&mut agent, "queue").await;
    assert_eq!(queue["waiting"][0]["dialogue_id"], d.as_str(), "{queue}");
    assert_eq!(queue["waiting"][0]["reason"], "user_asked");

    // The agent claims: the claim is an event on user.said, decided by the session.
    agent.send(Message::Text(json!({"type":"claim","dialogue_id":d}).to_string().into())).await.unwrap();
    let claim = gw.next_said_event().await;
    assert_eq!(claim.dialogue_id, d);
    assert!(matches!(&claim.body, EventBody::AgentClaim(c) if c.agent == "alex"), "{claim:?}");
    gw.bot_said(&changed(&d, Owner::Agent, Some("alex"), OwnershipReason::Claimed));
    assert_eq!(next_of(&mut agent, "claimed").await, json!({"type":"claimed","dialogue_id":d,"agent":"alex"}));
    assert_eq!(customer.recv().await, json!({"type":"agent_joined","dialogue_id":d,"agent":"alex"}));

    // The customer writes: queued for the agent, no bot answer.
    customer.say("m-2", "我的快递到哪了").await;
    let turn = gw.next_said_event().await;
    let queued = decided(
        &d,
        EventBody::TurnQueued(TurnQueued {
            in_reply_to: turn.event_id,
            client_msg_id: "m-2".into(),
            masked_text: "我的快递到哪了".into(),
            agent: Some("alex".into()),
        }),
    );
    gw.bot_said(&queued);
    assert_eq!(customer.recv().await, json!({"type":"queued","dialogue_id":d,"in_reply_to":"m-2"}));
    let user_said = next_of(&mut agent, "user_said").await;
    assert_eq!(user_said["text"], "我的快递到哪了");

    // The agent answers.
    agent
        .send(Message::Text(json!({"type":"say","dialogue_id":d,"client_msg_id":"a-1","text":"正在为您查询"}).to_string().into()))
        .await
        .unwrap();
    let message = gw.next_said_event().await;
    assert!(matches!(&message.body, EventBody::AgentMessage(m) if m.text == "正在为您查询" && m.agent == "alex"));
    let reply = decided(
        &d,
        EventBody::AgentSaid(AgentSaid {
            in_reply_to: message.event_id,
            agent: "alex".into(),
            client_msg_id: "a-1".into(),
            text: "正在为您查询".into(),
        }),
    );
    gw.bot_said(&reply);
    let f = customer.recv().await;
    assert_eq!(f, json!({"type":"agent_said","dialogue_id":d,"text":"正在为您查询","event_id":reply.event_id.to_string()}));
    assert_eq!(next_of(&mut agent, "agent_said").await["text"], "正在为您查询");
    assert_eq!(gw.bot_said(&reply), "duplicate_event", "a record read twice reaches the customer once");

    // A refused action reaches only the acting agent, as an error.
    gw.bot_said(&decided(
        &d,
        EventBody::AgentActionRefused(AgentActionRefused {
            in_reply_to: EventId::new_v7(),
            agent: "alex".into(),
            action: AgentAction::Claim,
            reason: RefusalReason::AlreadyClaimed,
            owner: Some("bob".into()),
        }),
    ));
    let e = next_of(&mut agent, "error").await;
    assert_eq!((e["code"].as_str(), e["dialogue_id"].as_str()), (Some("already_claimed"), Some(d.as_str())), "{e}");

    // The agent gives the dialogue back: the customer hears the bot is back.
    agent.send(Message::Text(json!({"type":"return","dialogue_id":d}).to_string().into())).await.unwrap();
    let back = gw.next_said_event().await;
    assert!(matches!(&back.body, EventBody::AgentReturn(r) if r.agent == "alex"));
    gw.bot_said(&changed(&d, Owner::Bot, None, OwnershipReason::Returned));
    assert_eq!(customer.recv().await, json!({"type":"bot_back","dialogue_id":d}));
    assert_eq!(next_of(&mut agent, "released").await["reason"], "returned");

    // Bad frames get an error, not a closed socket.
    agent.send(Message::Text("{\"type\":\"steal\"}".into())).await.unwrap();
    assert_eq!(next_of(&mut agent, "error").await["code"], "bad_frame");
}

#[tokio::test]
async fn an_unanswered_say_becomes_a_timeout_handoff_event() {
    let mut c = super::config();
    c.answer_timeout = std::time::Duration::from_millis(200);
    let mut gw = start(c).await;
    let mut customer = Client::connect(gw.addr).await;
    let d = customer.hello("c-2", None).await;
    customer.say("m-1", "hello?").await;
    let said = gw.next_said_event().await;
    assert_eq!(customer.recv().await["reason"], "timeout");
    let timeout = gw.next_said_event().await;
    assert_eq!(timeout.dialogue_id, d);
    match &timeout.body {
        EventBody::HandoffRequested(h) => {
            assert_eq!((h.reason, h.in_reply_to, h.client_msg_id.as_str()), (HandoffReason::Timeout, said.event_id, "m-1"));
        }
        other => panic!("expected a timeout handoff event, got {other:?}"),
    }
    assert_eq!(timeout.event_id, EventId::derived(said.event_id, "gateway-timeout"), "derived from the say");
}
