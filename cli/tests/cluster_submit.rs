//! `switchboard submit`: a timely cluster of two processes × two workers on localhost.
//!
//! 1. It writes the same ClickHouse contents as one process with one worker (`run --workers 1`)
//!    over the same 500 turns (every column that does not depend on the wall clock), and the
//!    partitions are spread over both processes, each reading its share with one consumer for
//!    its two workers (from their "process reads partitions" logs).
//! 2. Fail-stop: with 1,000 more turns flowing, one process is killed with SIGKILL; the other
//!    stops by itself within 30 s with exit status 1 and a one-line "lost a peer" message. Both
//!    are restarted and resume from the committed offsets: in the end every turn has exactly
//!    one reply under `FINAL` and every UserSaid is stored once.
//!
//! Needs the dev services and the demo models (`deploy/dev/test.sh` provides both).

mod common;

use common::*;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_sources::admin::ensure_topics;

const PARTITIONS: i32 = 8;
const FIRST_DIALOGUES: usize = 100;
const MORE_DIALOGUES: usize = 200;
const TURNS: usize = 5;

/// Two free localhost ports (bound and released; nothing else here takes ports in this range).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("port");
    let b = TcpListener::bind("127.0.0.1:0").expect("port");
    (a.local_addr().expect("addr").port(), b.local_addr().expect("addr").port())
}

fn start_cluster(hosts: &Path, config: &Path, database: &str, work: &Path, round: &str) -> [Guarded; 2] {
    [0, 1].map(|process| {
        let process = process.to_string();
        spawn_switchboard(
            &["submit", "--hosts", &hosts.to_string_lossy(), "--process", &process, "--workers", "2", "--config", &config.to_string_lossy()],
            database,
            &work.join(format!("process-{process}-{round}.log")),
            "info",
        )
    })
}

/// Waits until `want` distinct turns are replied to, failing if a process exits meanwhile.
async fn wait_for_replies(clickhouse: &ClickHouseSettings, database: &str, want: usize, children: &mut [Guarded], work: &Path) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, distinct) = reply_counts(clickhouse, database).await;
        if distinct as usize >= want {
            return;
        }
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("a switchboard process exited ({status}) at {distinct}/{want} replies; see {}", work.display());
            }
        }
        assert!(Instant::now() < deadline, "only {distinct}/{want} turns answered in time; see {}", work.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Partitions each process reported reading, from its log.
fn partitions_owned(log: &Path) -> BTreeSet<i32> {
    let text = std::fs::read_to_string(log).expect("process log");
    let mut owned = BTreeSet::new();
    for line in text.lines().filter(|l| l.contains("process reads partitions")) {
        let list = line.split("partitions=[").nth(1).and_then(|rest| rest.split(']').next()).unwrap_or("");
        owned.extend(list.split(',').filter_map(|p| p.trim().parse::<i32>().ok()));
    }
    owned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_agree_with_one_and_fail_stop_loses_nothing() {
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run = run_id();
    let input = format!("test.cluster.user-said.{run}");
    let replies = format!("test.cluster.bot-said.{run}");
    let dead = format!("test.cluster.dead.{run}");
    ensure_topics(&kafka, &[&input, &replies, &dead], PARTITIONS).await.expect("topics (is the broker up?)");
    let work = std::env::temp_dir().join(format!("switchboard-cluster-{run}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let prefix = format!("cl-{}-", &run[..12]);
    let first = produce_turns(&kafka, &input, &prefix, FIRST_DIALOGUES, TURNS, 1_764_000_000_000, 1).await;

    // 1. Two processes × two workers, then one process × one worker, over the same turns.
    let cluster_db = format!("sbtest_cl2_{}", &run[..16]);
    let single_db = format!("sbtest_cl1_{}", &run[..16]);
    create_database(&clickhouse, &cluster_db).await;
    create_database(&clickhouse, &single_db).await;
    let (port_a, port_b) = free_ports();
    let hosts = work.join("hosts");
    std::fs::write(&hosts, format!("# two processes on this machine\n127.0.0.1:{port_a}\n127.0.0.1:{port_b}\n")).expect("hosts");
    let cluster_config = work.join("cluster.yaml");
    write_config(&cluster_config, &input, &replies, &dead, &format!("cluster-{run}"));
    let mut cluster = start_cluster(&hosts, &cluster_config, &cluster_db, &work, "1");
    wait_for_replies(&clickhouse, &cluster_db, first.len(), &mut cluster, &work).await;
    let statuses = stop_all(&mut cluster, Duration::from_secs(60));
    assert!(statuses.iter().all(|s| s.is_some_and(|s| s.success())), "the cluster did not stop cleanly on SIGTERM: {statuses:?}");
    for process in 0..2 {
        let log = std::fs::read_to_string(work.join(format!("process-{process}-1.log"))).expect("process log");
        let consumers = log.lines().filter(|l| l.contains("process reads partitions")).count();
        assert_eq!(consumers, 1, "process {process} of two workers opened {consumers} consumers: one per process");
    }
    let owned = [partitions_owned(&work.join("process-0-1.log")), partitions_owned(&work.join("process-1-1.log"))];
    assert!(!owned[0].is_empty() && !owned[1].is_empty(), "partitions not spread over both processes: {owned:?}");
    assert!(owned[0].is_disjoint(&owned[1]), "two processes own one partition: {owned:?}");
    assert_eq!(owned[0].union(&owned[1]).count(), PARTITIONS as usize, "some partition has no owner: {owned:?}");

    let single_config = work.join("single.yaml");
    write_config(&single_config, &input, &format!("{replies}.single"), &format!("{dead}.single"), &format!("single-{run}"));
    ensure_topics(&kafka, &[&format!("{replies}.single"), &format!("{dead}.single")], PARTITIONS).await.expect("topics");
    let mut single = [spawn_switchboard(
        &["run", "--workers", "1", "--config", &single_config.to_string_lossy()],
        &single_db,
        &work.join("single.log"),
        "warn",
    )];
    wait_for_replies(&clickhouse, &single_db, first.len(), &mut single, &work).await;
    stop(&mut single[0], Duration::from_secs(60));

    let cluster_rows = comparable_rows(&clickhouse, &cluster_db, false).await;
    let single_rows = comparable_rows(&clickhouse, &single_db, false).await;
    assert!(cluster_rows.len() >= first.len() * 3, "{} rows", cluster_rows.len());
    let differences = row_differences(&single_rows, &cluster_rows);
    assert!(differences.is_empty(), "the cluster's rows differ from one process's: {differences:#?}");

    // 2. Fail-stop: kill -9 one process mid-stream; the other must stop by itself.
    let more = produce_turns(&kafka, &input, &format!("{prefix}more-"), MORE_DIALOGUES, TURNS, 1_764_000_100_000, 1).await;
    let total = first.len() + more.len();
    let mut cluster = start_cluster(&hosts, &cluster_config, &cluster_db, &work, "2");
    let kill_at = first.len() + more.len() / 10;
    wait_for_replies(&clickhouse, &cluster_db, kill_at, &mut cluster, &work).await;
    let (_, at_kill) = reply_counts(&clickhouse, &cluster_db).await;
    assert!((at_kill as usize) < total, "all turns were answered before the kill; the fail-stop step tested nothing");
    let _ = cluster[1].kill(); // SIGKILL
    let _ = cluster[1].wait();
    let killed_at = Instant::now();
    let status = wait_exit(&mut cluster[0], Duration::from_secs(30));
    let log = std::fs::read_to_string(work.join("process-0-2.log")).unwrap_or_default();
    let Some(status) = status else {
        let _ = cluster[0].kill();
        panic!("process 0 kept running 30 s after its peer was killed (a fail-stop cluster must not hang); log:\n{log}");
    };
    eprintln!("kill -9 at {at_kill}/{total} replies; process 0 stopped {:?} later with {status}", killed_at.elapsed());
    assert_eq!(status.code(), Some(1), "process 0 should exit with status 1; log:\n{log}");
    assert!(log.contains("lost a peer of the timely cluster"), "no clear message in process 0's log:\n{log}");
    assert!(!log.contains("MergeQueue poisoned"), "the panic cascade leaked into the log:\n{log}");

    // Restart both: they resume from the committed offsets; nothing lost, nothing twice.
    let mut cluster = start_cluster(&hosts, &cluster_config, &cluster_db, &work, "3");
    wait_for_replies(&clickhouse, &cluster_db, total, &mut cluster, &work).await;
    stop_all(&mut cluster, Duration::from_secs(60));
    let (rows, distinct) = reply_counts(&clickhouse, &cluster_db).await;
    assert_eq!(distinct as usize, total, "every turn has a reply");
    assert_eq!(rows as usize, total, "no turn has two replies");
    assert_eq!(count_kind(&clickhouse, &cluster_db, "user_said").await as usize, total, "every turn stored once");
    let on_topic = replies_on_topic(&kafka, &replies, &format!("cluster-check-{run}"));
    for (_, said) in first.iter().chain(&more) {
        let ids = on_topic.get(&said.event_id).unwrap_or_else(|| panic!("turn {} has no reply on {replies}", said.event_id));
        assert!(ids.iter().all(|id| *id == ids[0]), "two different replies for turn {} on {replies}", said.event_id);
    }

    drop_database(&clickhouse, &cluster_db).await;
    drop_database(&clickhouse, &single_db).await;
    let _ = std::fs::remove_dir_all(&work);
}
