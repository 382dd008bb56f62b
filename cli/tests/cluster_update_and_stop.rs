//! A `submit` cluster of 2 processes × 2 workers under steady traffic:
//!
//! 1. a knowledge-base update (`switchboard kb load`) reaches **both** processes: turns of
//!    partitions owned by either process are answered from the new snapshot, every answer's
//!    text is the one of the snapshot version recorded with it, and nothing becomes a dead letter
//!    or a `processing_failed` handoff;
//! 2. SIGTERM to **one** process stops the whole cluster within seconds, both processes exiting
//!    0 with their offsets committed (a rolling step or a scale step, not a minute of waiting);
//!    restarted, the cluster answers every turn sent, each exactly once.
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh` provides both).

mod common;

use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::*;
use switchboard_sources::admin::ensure_topics;

const PARTITIONS: i32 = 8;
const PROCESSES: usize = 2;
const WORKERS: usize = 2;
const DIALOGUES: usize = 64;
const OLD_MARK: &str = "退货申请已提交。";
const NEW_MARK: &str = "退货申请已提交（新版知识库）。";

/// The process owning `partition`: partition p belongs to worker p mod (all workers).
fn process_of(partition: i32) -> usize {
    (partition as usize % (PROCESSES * WORKERS)) / WORKERS
}


fn start_cluster(hosts: &Path, config: &Path, database: &str, work: &Path, round: &str) -> Vec<Guarded> {
    (0..PROCESSES)
        .map(|process| {
            spawn_switchboard(
                &[
                    "submit",
                    "--hosts",
                    &hosts.to_string_lossy(),
                    "--process",
                    &process.to_string(),
                    "--workers",
                    &WORKERS.to_string(),
                    "--config",
                    &config.to_string_lossy(),
                ],
                database,
                &work.join(format!("process-{process}-{round}.log")),
                "info",
            )
        })
        .collect()
}

/// (dialogue, answer text, kb_version) of every answer under FINAL.
async fn answers(settings: &ClickHouseSettings, database: &str) -> Vec<(String, String, String)> {
    clickhouse_on(settings, database)
        .client()
        .query(
            "SELECT dialogue_id, text, kb_version FROM \
             (SELECT dialogue_id, in_reply_to, text FROM events FINAL WHERE kind = 'answer_generated') \
             ANY INNER JOIN \
             (SELECT in_reply_to, toString(kb_version) AS kb_version FROM events FINAL WHERE kind = 'knowledge_retrieved') \
             USING in_reply_to",
        )
        .fetch_all::<(String, String, String)>()
        .await
        .unwrap_or_default()
}

/// Sends a turn every 40 ms, round robin over the dialogues, until `stop`; records each
/// dialogue's partition.
fn traffic(kafka: &KafkaSettings, topic: String, prefix: String, stop: Arc<AtomicBool>, partitions: Arc<Mutex<Vec<i32>>>) -> tokio::task::JoinHandle<usize> {
    let producer: FutureProducer = kafka.client_config().set("acks", "all").create().expect("producer");
    tokio::spawn(async move {
        let mut sent = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let d = sent % DIALOGUES;
            let dialogue = format!("{prefix}{d:03}");
            let event = Event::new(
                dialogue.clone(),
                switchboard_topology::time::wall_clock_ms(),
                EventBody::UserSaid(UserSaid {
                    client_msg_id: format!("m{sent}"),
                    user_id: "u".into(),
                    locale: Locale::ZhCn,
                    text: "我要退货，订单号 12345678".into(),
                }),
            );
            let payload = encode(&event);
            let partition = producer
                .send(FutureRecord::to(&topic).key(&dialogue).payload(&payload), Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .expect("produced")
                .partition;
            partitions.lock().expect("partitions")[d] = partition;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        sent
    })
}

/// Waits until answers from `version` came from dialogues of every process.
async fn wait_version_on_every_process(
    clickhouse: &ClickHouseSettings,
    database: &str,
    prefix: &str,
    version: &str,
    partitions: &Mutex<Vec<i32>>,
    cluster: &mut [Guarded],
    work: &Path,
) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let partitions = partitions.lock().expect("partitions").clone();
        let processes: BTreeSet<usize> = answers(clickhouse, database)
            .await
            .iter()
            .filter(|(_, _, v)| v == version)
            .filter_map(|(dialogue, _, _)| dialogue.strip_prefix(prefix)?.parse::<usize>().ok())
            .filter(|d| partitions[*d] >= 0)
            .map(|d| process_of(partitions[d]))
            .collect();
        if processes.len() == PROCESSES {
            return;
        }
        for (i, process) in cluster.iter_mut().enumerate() {
            assert!(process.try_wait().expect("status").is_none(), "process {i} exited; logs in {}", work.display());
        }
        assert!(Instant::now() < deadline, "answers from {version} came only from processes {processes:?}; logs in {}", work.display());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_reaches_every_process_and_one_sigterm_stops_the_cluster() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run = run_id();
    let (input, replies, dead) = (format!("test.clup.in.{run}"), format!("test.clup.out.{run}"), format!("test.clup.dead.{run}"));
    ensure_topics(&kafka, &[&input, &replies, &dead], PARTITIONS).await.expect("topics (is the broker up?)");
    let database = format!("sbtest_clup_{}", &run[..16]);
    create_database(&clickhouse, &database).await;
    let work = std::env::temp_dir().join(format!("switchboard-clup-{run}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("config.yaml");
    write_config(&config, &input, &replies, &dead, &format!("clup-{run}"));
    let mut text = std::fs::read_to_string(&config).expect("read config");
    text.push_str(&format!("knowledge_base: {}\n", work.join("kb").display()));
    std::fs::write(&config, text).expect("write config");
    let ports: Vec<u16> = (0..PROCESSES)
        .map(|_| TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port"))
        .collect();
    let hosts = work.join("hosts.txt");
    std::fs::write(&hosts, ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect::<String>()).expect("hosts");

    // v1: the demo knowledge base; v2: the return answer reworded.
    let kb_dir = root().join("operators/data/kb");
    let (zh, en) = (kb_dir.join("kb.zh.jsonl"), kb_dir.join("kb.en.jsonl"));
    let zh_text = std::fs::read_to_string(&zh).expect("kb");
    assert!(zh_text.contains(OLD_MARK), "the demo return answer changed; update this test");
    let zh_v2 = work.join("kb.zh.v2.jsonl");
    std::fs::write(&zh_v2, zh_text.replacen(OLD_MARK, NEW_MARK, 1)).expect("kb v2");
    let v1 = kb_load(&[&zh, &en], &config);

    let mut cluster = start_cluster(&hosts, &config, &database, &work, "1");
    let prefix = format!("clup-{}-", &run[..10]);
    let stop_traffic = Arc::new(AtomicBool::new(false));
    let partitions = Arc::new(Mutex::new(vec![-1; DIALOGUES]));
    let sender = traffic(&kafka, input.clone(), prefix.clone(), stop_traffic.clone(), partitions.clone());

    // 1. v1 from both processes, then the update during traffic: v2 from both processes.
    wait_version_on_every_process(&clickhouse, &database, &prefix, &v1, &partitions, &mut cluster, &work).await;
    let v2 = kb_load(&[&zh_v2, &en], &config);
    assert_ne!(v1, v2);
    wait_version_on_every_process(&clickhouse, &database, &prefix, &v2, &partitions, &mut cluster, &work).await;

    // 2. SIGTERM to process 1 only, traffic still flowing: the whole cluster stops, quickly.
    let signalled = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &cluster[1].id().to_string()]).status();
    let statuses: Vec<_> = cluster.iter_mut().map(|p| wait_exit(p, Duration::from_secs(30))).collect();
    let took = signalled.elapsed();
    stop_traffic.store(true, Ordering::Relaxed);
    let sent = sender.await.expect("traffic task");
    assert!(
        statuses.iter().all(|s| s.is_some_and(|s| s.success())),
        "one SIGTERM must stop every process of the cluster cleanly: {statuses:?}; logs in {}",
        work.display()
    );
    assert!(took < Duration::from_secs(10), "the cluster took {took:?} to stop after one SIGTERM");
    eprintln!("one SIGTERM stopped the 2-process cluster in {took:?}; {sent} turns sent");
    assert!(!committed_offsets(&kafka, &input, &format!("clup-{run}"), PARTITIONS).is_empty(), "no offsets committed");

    // Restarted, the cluster answers every turn exactly once.
    let mut cluster = start_cluster(&hosts, &config, &database, &work, "2");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (rows, distinct) = reply_counts(&clickhouse, &database).await;
        if distinct as usize >= sent {
            assert_eq!(rows, distinct, "a turn has two replies");
            assert_eq!(distinct as usize, sent, "replies to turns that were not sent");
            break;
        }
        for (i, process) in cluster.iter_mut().enumerate() {
            assert!(process.try_wait().expect("status").is_none(), "process {i} exited after the restart; logs in {}", work.display());
        }
        assert!(Instant::now() < deadline, "{distinct} of {sent} turns answered after the restart; logs in {}", work.display());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(count_kind(&clickhouse, &database, "user_said").await as usize, sent, "every turn is stored once");
    for (dialogue, text, version) in answers(&clickhouse, &database).await {
        let mark = if version == v1 {
            OLD_MARK
        } else {
            assert_eq!(version, v2, "{dialogue}: an answer from neither snapshot");
            NEW_MARK
        };
        assert!(text.contains(mark), "{dialogue}: the answer `{text}` is not the one of {version}");
    }
    assert_eq!(count_kind(&clickhouse, &database, "dead_letter").await, 0, "dead letters");
    let failed: u64 = clickhouse_on(&clickhouse, &database)
        .client()
        .query("SELECT count() FROM events FINAL WHERE kind = 'handoff_requested' AND reason = 'processing_failed'")
        .fetch_one()
        .await
        .expect("failed handoffs");
    assert_eq!(failed, 0, "turns failed instead of waiting for the new version");
    stop_all(&mut cluster, Duration::from_secs(60));
    drop_database(&clickhouse, &database).await;
    let _ = std::fs::remove_dir_all(&work);
}
