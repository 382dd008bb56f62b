//! A knowledge-base update reaches a running topology as a diff of the versions collection, not
//! as a restart: `switchboard run --workers 2` answers 我要退货 from snapshot v1; `switchboard kb
//! load` writes v2 with a changed answer; the same process (never restarted) answers the next
//! turns from v2, and every answer carries the snapshot version whose text it shows. The live
//! per-minute counts (differential `count`) are read back from `/aggregates` and must match the
//! turns and intents written to ClickHouse.
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh` provides both).

mod common;

use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sources::admin::ensure_topics;

const OLD_MARK: &str = "退货申请已提交。";
const NEW_MARK: &str = "退货申请已提交（新版知识库）。";


fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0, the whole body).
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Answer {
    dialogue_id: String,
    text: String,
    kb_version: String,
}

async fn answers(settings: &ClickHouseSettings, database: &str) -> Vec<Answer> {
    clickhouse_on(settings, database)
        .client()
        .query(
            "SELECT dialogue_id, text, kb_version FROM \
             (SELECT dialogue_id, in_reply_to, text FROM events FINAL WHERE kind = 'answer_generated') \
             ANY INNER JOIN \
             (SELECT in_reply_to, toString(kb_version) AS kb_version FROM events FINAL WHERE kind = 'knowledge_retrieved') \
             USING in_reply_to ORDER BY dialogue_id",
        )
        .fetch_all::<Answer>()
        .await
        .unwrap_or_default()
}

async fn say(producer: &FutureProducer, topic: &str, dialogue: &str) {
    let event = Event::new(
        dialogue,
        wall_clock_ms(),
        EventBody::UserSaid(UserSaid {
            client_msg_id: format!("{dialogue}-m"),
            user_id: "u".into(),
            locale: Locale::ZhCn,
            text: "我要退货，订单号 12345678".into(),
        }),
    );
    let payload = encode(&event);
    producer
        .send(FutureRecord::to(topic).key(&event.dialogue_id).payload(&payload), Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("produced");
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_knowledge_base_update_reaches_the_running_topology_as_a_diff() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run_id = run_id();
    let (input, replies, dead) =
        (format!("test.kbdiff.in.{run_id}"), format!("test.kbdiff.out.{run_id}"), format!("test.kbdiff.dead.{run_id}"));
    ensure_topics(&kafka, &[&input, &replies, &dead], 4).await.expect("topics (is the broker up?)");
    let database = format!("sbtest_kbdiff_{}", &run_id[..16]);
    create_database(&clickhouse, &database).await;

    let work = std::env::temp_dir().join(format!("switchboard-kbdiff-{run_id}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let metrics_port = free_port();
    let config = work.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "input_topic: {input}\nreplies_topic: {replies}\ndead_letter_topic: {dead}\ngroup_id: kbdiff-{run_id}\n\
             metrics_listen: \"127.0.0.1:{metrics_port}\"\nknowledge_base: {}\n",
            work.join("kb").display()
        ),
    )
    .expect("config");

    // v1: the demo knowledge base; v2: the same with the return answer changed.
    let kb_dir = root().join("operators/data/kb");
    let (zh, en) = (kb_dir.join("kb.zh.jsonl"), kb_dir.join("kb.en.jsonl"));
    let zh_text = std::fs::read_to_string(&zh).expect("kb");
    assert!(zh_text.contains(OLD_MARK), "the demo return answer changed; update this test");
    let zh_v2 = work.join("kb.zh.v2.jsonl");
    std::fs::write(&zh_v2, zh_text.replacen(OLD_MARK, NEW_MARK, 1)).expect("kb v2");
    let v1 = kb_load(&[&zh, &en], &config);

    let log = work.join("run.log");
    let mut topology = spawn_switchboard(&["run", "--workers", "2", "--config", config.to_str().expect("utf-8 path")], &database, &log, "info");
    let producer: FutureProducer = kafka.client_config().create().expect("producer");

    // Before the update: answered from v1.
    say(&producer, &input, "kbdiff-a-000").await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while answers(&clickhouse, &database).await.is_empty() {
        assert!(topology.try_wait().expect("status").is_none(), "topology exited; see {}", log.display());
        assert!(Instant::now() < deadline, "no answer from v1 in time; see {}", log.display());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let first = answers(&clickhouse, &database).await;
    assert_eq!(first[0].kb_version, v1);
    assert!(first[0].text.contains(OLD_MARK) && first[0].text.contains("12345678"), "{first:?}");

    // The update, while the topology runs; turns keep coming until one is answered from v2.
    let v2 = kb_load(&[&zh_v2, &en], &config);
    assert_ne!(v1, v2);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut said = 1;
    loop {
        let all = answers(&clickhouse, &database).await;
        if all.iter().any(|a| a.kb_version == v2) {
            break;
        }
        assert!(topology.try_wait().expect("status").is_none(), "topology exited; see {}", log.display());
        assert!(Instant::now() < deadline, "v2 never reached the topology; see {}", log.display());
        say(&producer, &input, &format!("kbdiff-b-{said:03}")).await;
        said += 1;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // One more turn after v2 is in: it must be answered from v2 as well.
    say(&producer, &input, "kbdiff-c-000").await;
    said += 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while answers(&clickhouse, &database).await.len() < said {
        assert!(Instant::now() < deadline, "not every turn was answered; see {}", log.display());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let all = answers(&clickhouse, &database).await;
    for answer in &all {
        let expected = if answer.kb_version == v1 {
            OLD_MARK
        } else {
            assert_eq!(answer.kb_version, v2, "{answer:?}");
            NEW_MARK
        };
        assert!(answer.text.contains(expected), "the text does not match its snapshot: {answer:?}");
    }
    let last = all.iter().find(|a| a.dialogue_id == "kbdiff-c-000").expect("the last answer");
    assert_eq!(last.kb_version, v2);
    assert!(topology.try_wait().expect("status").is_none(), "the topology restarted or exited");

    // The live counts agree with ClickHouse: one turn and one return_goods intent per answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = http_get(metrics_port, "/aggregates").unwrap_or_default();
        let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        let total = |metric: &str, label: &str| -> i64 {
            rows.iter()
                .filter(|r| r["metric"] == metric && r["label"] == label)
                .map(|r| r["count"].as_i64().unwrap_or(0))
                .sum()
        };
        if total("turns", "") == said as i64 && total("intent", "return_goods") == said as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "live aggregates {body} do not count {said} turns");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The console shows the same counts, fetched by the gateway from the topology.
    let gateway_port = free_port();
    let admin_addr = format!("127.0.0.1:{}", free_port());
    let gateway_log = std::fs::File::create(work.join("gateway.log")).expect("gateway log");
    let mut gateway = Guarded(
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["gateway", "--listen", &format!("127.0.0.1:{gateway_port}")])
            .env("SWITCHBOARD_GATEWAY_ADMIN_LISTEN", &admin_addr)
            .env("SWITCHBOARD_USERS_FILE", common::admin_http::users_file(&work))
            .env("SWITCHBOARD_TOPOLOGY_METRICS", format!("127.0.0.1:{metrics_port}"))
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(gateway_log)
            .spawn()
            .expect("start gateway"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut cookie = None;
    loop {
        if cookie.is_none() {
            cookie = common::admin_http::login(&admin_addr);
        }
        let body = cookie
            .as_deref()
            .and_then(|c| common::admin_http::get(&admin_addr, c, "/console/api/live?minutes=120"))
            .unwrap_or_default();
        let view: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let turns: i64 = view["rows"]
            .as_array()
            .map(|rows| rows.iter().filter(|r| r["metric"] == "turns").map(|r| r["count"].as_i64().unwrap_or(0)).sum())
            .unwrap_or(0);
        if view["sources"] == 1 && turns == said as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "the console's live view {body} does not show {said} turns");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop(&mut gateway, Duration::from_secs(30));

    stop(&mut topology, Duration::from_secs(30));
    drop_database(&clickhouse, &database).await;
    let _ = std::fs::remove_dir_all(&work);
}
