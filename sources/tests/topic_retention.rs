//! What tansu 0.6.0 does with a topic's `retention.ms`, on a scratch broker of its own (its own
//! port and sqlite file, so the shared dev broker is neither restarted nor trimmed):
//!
//! - the topic configuration given at creation (`admin::create_topics`) is stored and read back
//!   by DescribeConfigs (`admin::topic_config`);
//! - records whose timestamp is older than `retention.ms` are deleted by the broker's
//!   maintenance (every 10 minutes, and once when it starts — the test restarts it to get
//!   there in seconds) when the topic's `cleanup.policy` is `delete`;
//! - with `retention.ms` alone (no explicit `cleanup.policy`) nothing is ever deleted, which is
//!   why `admin::retention_config` always sets both.
//!
//! Needs the `tansu` binary (`deploy/dev/up.sh` installs it; `TANSU` names another one).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_sources::admin::{create_topics, retention_config, topic_config, TopicSpec};

fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).find(|c| c.is_file()));
    on_path.unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cargo/bin/tansu"))
}

/// A tansu broker on its own port and data directory, killed when dropped.
struct ScratchBroker {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl ScratchBroker {
    fn start(dir: &Path, port: u16) -> ScratchBroker {
        let binary = tansu();
        assert!(binary.is_file(), "no tansu binary at {} (deploy/dev/up.sh installs it)", binary.display());
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("broker.log")).expect("broker log");
        let child = Command::new(binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        let broker = ScratchBroker { child: Some(child), dir: dir.to_path_buf(), port };
        broker.wait_ready();
        broker
    }

    fn settings(&self) -> KafkaSettings {
        KafkaSettings::plain(format!("127.0.0.1:{}", self.port))
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let consumer: BaseConsumer = self.settings().client_config().create().expect("client");
        while consumer.fetch_metadata(None, Duration::from_secs(1)).is_err() {
            assert!(Instant::now() < deadline, "scratch tansu did not answer within 30 s; see {}/broker.log", self.dir.display());
        }
    }

    /// SIGTERM, and waits (at most 30 s) until the process has exited.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for ScratchBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Every value on partition 0 of `topic`, from the beginning to the end.
fn read_all(settings: &KafkaSettings, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("retention-check-{}", now_ms()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{topic}: did not reach the end (offset {high}) within 30 s");
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                values.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
                if message.offset() + 1 >= high {
                    return values;
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return values,
            Some(Err(e)) => panic!("{topic}: {e}"),
            None if high == 0 => return values,
            None => {}
        }
    }
}

async fn produce(settings: &KafkaSettings, topic: &str, records: &[(&str, i64)]) {
    let producer: FutureProducer = settings.client_config().set("linger.ms", "0").create().expect("producer");
    for (value, timestamp) in records {
        producer
            .send(FutureRecord::<str, str>::to(topic).payload(value).timestamp(*timestamp), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }
}

#[tokio::test]
async fn tansu_stores_retention_and_trims_old_records_only_under_cleanup_policy_delete() {
    let dir = std::env::temp_dir().join(format!("switchboard-retention-broker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let port = free_port();
    let mut broker = ScratchBroker::start(&dir, port);
    let settings = broker.settings();

    let minute = 60_000;
    let trimmed = TopicSpec::new("retained", 1).with_retention_ms(minute);
    let mut unpoliced = TopicSpec::new("retention-ms-only", 1);
    unpoliced.config.push(("retention.ms".into(), minute.to_string()));
    let plain = TopicSpec::new("kept", 1);
    let existed = create_topics(&settings, &[trimmed.clone(), unpoliced.clone(), plain.clone()]).await.expect("create topics");
    assert!(existed.is_empty(), "fresh broker, yet {existed:?} existed");
    assert!(create_topics(&settings, std::slice::from_ref(&plain)).await.expect("create again") == ["kept"], "a second create reports the topic as existing");

    // Stored, and read back by DescribeConfigs.
    let config = topic_config(&settings, "retained").await.expect("describe retained");
    for (key, value) in retention_config(minute) {
        assert_eq!(config.get(&key), Some(&value), "retained: {key} not stored as {value}: {config:?}");
    }
    let config = topic_config(&settings, "retention-ms-only").await.expect("describe retention-ms-only");
    assert_eq!(config.get("retention.ms").map(String::as_str), Some("60000"), "{config:?}");
    assert!(!config.contains_key("cleanup.policy"), "{config:?}");
    assert!(topic_config(&settings, "kept").await.expect("describe kept").is_empty());

    // Two records an hour old and two fresh ones in each topic.
    let now = now_ms();
    let records = [("old-1", now - 3_600_000), ("old-2", now - 3_599_000), ("new-1", now), ("new-2", now + 1)];
    for topic in ["retained", "retention-ms-only", "kept"] {
        produce(&settings, topic, &records).await;
        assert_eq!(read_all(&settings, topic), ["old-1", "old-2", "new-1", "new-2"], "{topic} before maintenance");
    }

    // The maintenance runs when the broker starts (then every 10 minutes): restart it.
    broker.stop();
    broker = ScratchBroker::start(&dir, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = read_all(&settings, "retained");
        if left == ["new-1", "new-2"] {
            break;
        }
        assert!(Instant::now() < deadline, "retained: old records still there 30 s after the restart: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Read again after the trimmed topic was seen trimmed: the others were not touched.
    assert_eq!(read_all(&settings, "retention-ms-only"), ["old-1", "old-2", "new-1", "new-2"], "retention.ms alone trims nothing");
    assert_eq!(read_all(&settings, "kept"), ["old-1", "old-2", "new-1", "new-2"]);
    let consumer: BaseConsumer = settings.client_config().create().expect("client");
    let (low, high) = consumer.fetch_watermarks("retained", 0, Duration::from_secs(10)).expect("watermarks");
    // The log start moves past the deleted records; offsets go on where they were.
    assert_eq!((low, high), (2, 4), "retained: watermarks after the trim");

    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
