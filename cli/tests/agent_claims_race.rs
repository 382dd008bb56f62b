//! Racing claims and a crash between a claim and the agent's reply, against the real parts: the
//! topology (`switchboard run`, real models), two gateway instances (`switchboard gateway`, each
//! with its own admin listener), the dev broker and ClickHouse, on this test's own topics and
//! database.
//!
//! 1. A customer on gateway A asks 转人工; two agents, one logged in on each gateway, claim the
//!    dialogue at the same moment. Exactly one claim wins: both agent sockets are told the same
//!    winner, the loser gets `already_claimed`, and ClickHouse holds one `ownership_changed` to
//!    an agent. Three dialogues, three races.
//! 2. The topology is killed with SIGKILL after the last claim and started again; the winner's
//!    reply still reaches the customer (once), the customer's next turn is still queued for
//!    the agent (the owner survived), and there is still one owner.

mod common;

use common::admin_http;
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_sinks::clickhouse::ClickHouseSink;
use switchboard_sources::admin::ensure_topics;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
const WAIT: Duration = Duration::from_secs(120);
const PASSWORD: &str = "race test password";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

async fn next_frame(ws: &mut Ws, limit: Duration) -> Value {
    loop {
        match tokio::time::timeout(limit, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// The next frame for which `pick` returns something.
async fn wait_frame<T>(ws: &mut Ws, what: &str, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {what} within {WAIT:?}");
        let f = next_frame(ws, left).await;
        if let Some(t) = pick(&f) {
            return t;
        }
    }
}

async fn agent_socket(admin: &str, user: &str) -> Ws {
    let deadline = Instant::now() + WAIT;
    let cookie = loop {
        if let Some(c) = admin_http::login_as(admin, user, PASSWORD) {
            break c;
        }
        assert!(Instant::now() < deadline, "the admin listener {admin} did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut request = format!("ws://{admin}/agent/ws").into_client_request().expect("request");
    request.headers_mut().insert("Cookie", cookie.parse().expect("cookie header"));
    tokio_tungstenite::connect_async(request).await.expect("agent socket").0
}

async fn customer(public: &str, user: &str) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{public}/ws")).await.expect("customer socket");
    ws.send(Message::Text(json!({"type":"hello","user_id":user,"locale":"zh-CN"}).to_string().into())).await.unwrap();
    let welcome = next_frame(&mut ws, WAIT).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let d = welcome["dialogue_id"].as_str().expect("dialogue id").to_string();
    (ws, d)
}

async fn say(ws: &mut Ws, id: &str, text: &str) {
    ws.send(Message::Text(json!({"type":"say","client_msg_id":id,"text":text}).to_string().into())).await.unwrap();
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into())).await.unwrap();
}

fn spawn_gateway(public: &str, admin: &str, env: &[(&str, String)], log: &std::path::Path) -> Guarded {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(["gateway", "--listen", public, "--admin-listen", admin]).stdout(Stdio::null()).stderr(log);
    for (k, v) in env {
        command.env(k, v);
    }
    Guarded(command.spawn().expect("start a gateway"))
}

/// Rows of `kind` for `dialogue` whose payload contains `needle`.
async fn count(settings: &ClickHouseSettings, database: &str, dialogue: &str, kind: &str, needle: &str) -> u64 {
    ClickHouseSink::new(&ClickHouseSettings { database: database.to_string(), ..settings.clone() })
        .client()
        .query("SELECT count() FROM events FINAL WHERE dialogue_id = ? AND kind = ? AND position(payload, ?) > 0")
        .bind(dialogue)
        .bind(kind)
        .bind(needle)
        .fetch_one::<u64>()
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_have_one_winner_and_a_crash_keeps_the_owner() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run = run_id();
    let (input, replies, dead) =
        (format!("test.race.user-said.{run}"), format!("test.race.bot-said.{run}"), format!("test.race.dead.{run}"));
    ensure_topics(&kafka, &[&input, &replies, &dead], 4).await.expect("topics (is the broker up?)");
    let database = format!("sbtest_race_{}", &run[..16]);
    create_database(&clickhouse, &database).await;
    let work = std::env::temp_dir().join(format!("switchboard-race-{run}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("config.yaml");
    write_config(&config, &input, &replies, &dead, &format!("race-{run}"));
    let config_arg = config.to_string_lossy().into_owned();
    let topology_log = work.join("run.log");
    let mut topology = spawn_switchboard(&["run", "--workers", "2", "--config", &config_arg], &database, &topology_log, "info");

    let users = work.join("users.json");
    let mut accounts = switchboard_gateway::accounts::Accounts::load(&users).expect("users file");
    for agent in ["agent-a", "agent-b"] {
        accounts.upsert(agent, switchboard_gateway::accounts::Role::Agent, PASSWORD).expect("agent account");
    }
    let keys = work.join("resume-keys");
    std::fs::write(&keys, "k1:a-resume-key-shared-by-both-gateways-0123\n").expect("keys");
    let env = vec![
        ("SWITCHBOARD_USERS_FILE", users.display().to_string()),
        ("SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE", keys.display().to_string()),
        ("SWITCHBOARD_GATEWAY_USER_SAID_TOPIC", input.clone()),
        ("SWITCHBOARD_GATEWAY_BOT_SAID_TOPIC", replies.clone()),
        ("SWITCHBOARD_CLICKHOUSE_DATABASE", database.clone()),
        // The debug-build topology loads its models before the first answer.
        ("SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS", "90000".to_string()),
        ("SWITCHBOARD_LOG", "info".to_string()),
    ];
    let (public_a, admin_a) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let (public_b, admin_b) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let _gateway_a = spawn_gateway(&public_a, &admin_a, &env, &work.join("gateway-a.log"));
    let _gateway_b = spawn_gateway(&public_b, &admin_b, &env, &work.join("gateway-b.log"));
    let mut agent_a = agent_socket(&admin_a, "agent-a").await;
    let mut agent_b = agent_socket(&admin_b, "agent-b").await;

    let mut last = None;
    for round in 0..3 {
        let (mut user, d) = customer(&public_a, &format!("racer-{round}")).await;
        say(&mut user, "m-1", "转人工").await;
        let handoff = wait_frame(&mut user, "the handoff", |f| (f["type"] != "welcome").then(|| f.clone())).await;
        assert_eq!(handoff["type"], "handoff", "{handoff}");
        // Both desks see it waiting (each gateway reads every bot.said partition).
        for (ws, who) in [(&mut agent_a, "a"), (&mut agent_b, "b")] {
            let is_waiting = |f: &Value| {
                (f["type"] == "queue"
                    && f["waiting"].as_array().is_some_and(|w| w.iter().any(|e| e["dialogue_id"] == d.as_str())))
                .then_some(())
            };
            wait_frame(ws, &format!("dialogue {d} waiting on desk {who}"), is_waiting).await;
        }
        // Both claim at once, through different gateways.
        let claim = json!({"type":"claim","dialogue_id":d});
        tokio::join!(send(&mut agent_a, claim.clone()), send(&mut agent_b, claim.clone()));
        let outcome = |f: &Value| match f["type"].as_str() {
            Some("claimed") if f["dialogue_id"] == d.as_str() => Some(Ok(f["agent"].as_str().unwrap_or_default().to_string())),
            Some("error") if f["dialogue_id"] == d.as_str() => Some(Err(f["code"].as_str().unwrap_or_default().to_string())),
            _ => None,
        };
        // Each desk hears the winner; the loser also hears its refusal.
        let seen_a = wait_frame(&mut agent_a, "the claim's outcome on desk a", outcome).await;
        let seen_b = wait_frame(&mut agent_b, "the claim's outcome on desk b", outcome).await;
        let winner = match (&seen_a, &seen_b) {
            (Ok(w), _) | (_, Ok(w)) => w.clone(),
            _ => panic!("no claim won: {seen_a:?} {seen_b:?}"),
        };
        assert!(winner == "agent-a" || winner == "agent-b", "{winner}");
        let loser_ws = if winner == "agent-a" { &mut agent_b } else { &mut agent_a };
        let refusal = |f: &Value| (f["type"] == "error" && f["dialogue_id"] == d.as_str()).then(|| f["code"].clone());
        let seen_loser = if winner == "agent-a" { &seen_b } else { &seen_a };
        let code = match seen_loser {
            Err(code) => Value::from(code.clone()),
            Ok(_) => wait_frame(loser_ws, "the loser's refusal", refusal).await,
        };
        assert_eq!(code, "already_claimed");
        let joined = wait_frame(&mut user, "agent_joined", |f| (f["type"] == "agent_joined").then(|| f["agent"].clone())).await;
        assert_eq!(joined, winner.as_str());
        let deadline = Instant::now() + WAIT;
        while count(&clickhouse, &database, &d, "ownership_changed", "\"owner\":\"agent\"").await != 1 {
            assert!(Instant::now() < deadline, "one ownership change to an agent for {d} in ClickHouse");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        last = Some((user, d, winner));
    }

    // kill -9 between the claim and the agent's reply.
    let (mut user, d, winner) = last.expect("three rounds");
    topology.kill().expect("kill -9");
    topology.wait().expect("reaped");
    let mut topology = spawn_switchboard(&["run", "--workers", "2", "--config", &config_arg], &database, &topology_log, "info");
    let winner_ws = if winner == "agent-a" { &mut agent_a } else { &mut agent_b };
    send(winner_ws, json!({"type":"say","dialogue_id":d,"client_msg_id":"a-1","text":"您好，我来处理您的问题"})).await;
    let said = wait_frame(&mut user, "the agent's reply after the crash", |f| (f["type"] == "agent_said").then(|| f.clone())).await;
    assert_eq!(said["text"], "您好，我来处理您的问题");
    say(&mut user, "m-2", "我的快递到哪了").await;
    let reply = wait_frame(&mut user, "the reply to the next turn", |f| (f["in_reply_to"] == "m-2").then(|| f.clone())).await;
    assert_eq!(reply["type"], "queued", "the agent still owns the dialogue after the crash: {reply}");
    assert_eq!(count(&clickhouse, &database, &d, "ownership_changed", "\"owner\":\"agent\"").await, 1, "one owner");
    assert_eq!(count(&clickhouse, &database, &d, "agent_said", "").await, 1, "the reply once");

    assert!(stop(&mut topology, Duration::from_secs(30)).is_some_and(|s| s.success()), "a clean stop");
    drop_database(&clickhouse, &database).await;
    let _ = std::fs::remove_dir_all(&work);
}
