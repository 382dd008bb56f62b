//! Set-up of the load generator's test (tests/loadgen.rs), copied from the gateway's integration
//! tests (gateway/tests/common): fresh topics on the dev broker (deploy/dev/up.sh, or any Kafka
//! at `SWITCHBOARD_KAFKA_BROKERS`), a real gateway on 127.0.0.1:0, and the test's own Kafka
//! clients playing the topology; plus running `switchboard loadgen` itself, bounded in time.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use switchboard_gateway::{Gateway, GatewayConfig};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::EventId;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for anything (a record, the gateway stopping).
pub const WAIT: Duration = Duration::from_secs(20);

/// Creates `topics`, each with `partitions` partitions (replication 1); panics, pointing at the
/// dev broker, when the broker cannot be reached or a topic is not created.
pub async fn create_topics(settings: &KafkaSettings, topics: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create().expect("admin client");
    let topics: Vec<NewTopic> =
        topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for outcome in admin
        .create_topics(&topics, &options)
        .await
        .unwrap_or_else(|e| panic!("{e} (is the broker up? deploy/dev/up.sh)"))
    {
        outcome.unwrap_or_else(|(t, e)| panic!("creating {t}: {e} (is the broker up? deploy/dev/up.sh)"));
    }
}

/// A gateway serving on 127.0.0.1 (a free port), running in a task until it is stopped.
pub struct RunningGateway {
    /// Where it listens (`ws://{addr}/ws`).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<switchboard_gateway::Result<()>>>,
}

/// Binds a gateway on 127.0.0.1:0 reading `user_topic`/`bot_topic` and spawns its `run`, which
/// returns once the gateway is stopped.
pub async fn start_gateway(settings: &KafkaSettings, user_topic: &str, bot_topic: &str) -> RunningGateway {
    let mut config = GatewayConfig::new(settings.clone());
    config.listen = "127.0.0.1:0".parse().expect("a socket address");
    config.user_said_topic = user_topic.to_string();
    config.bot_said_topic = bot_topic.to_string();
    let gateway = Gateway::bind(config).await.expect("gateway binds and reads bot.said");
    let addr = gateway.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));
    RunningGateway { addr, shutdown: Some(stop), task: Some(task) }
}

impl RunningGateway {
    /// Shuts the gateway down (the drain) and waits for its `run` to return, cleanly and in time.
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("gateway stops").expect("no panic").expect("clean stop");
        }
    }
}

/// A consumer in group `group` (no commits) assigned to partitions `0..partitions` of `topic`
/// from the beginning; `extra` adds or overrides client settings (e.g. `fetch.wait.max.ms`).
pub fn consume_from_beginning(
    settings: &KafkaSettings,
    group: &str,
    topic: &str,
    partitions: i32,
    extra: &[(&str, &str)],
) -> StreamConsumer {
    let mut config = settings.client_config();
    config.set("group.id", group).set("enable.auto.commit", "false");
    let consumer: StreamConsumer = with(config, extra).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("a partition offset");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// The test's producer (`acks=all`, 20 s message timeout); `extra` adds or overrides client
/// settings (e.g. `linger.ms`).
pub fn test_producer(settings: &KafkaSettings, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = settings.client_config();
    config
        // Not idempotent: tansu 0.6.0 crashes when an idempotent producer outlives a broker
        // restart (see sinks/src/kafka.rs), and other suites restart the shared dev broker.
        .set("enable.idempotence", "false")
        .set("acks", "all")
        .set("message.timeout.ms", "20000");
    with(config, extra).create().expect("producer")
}

/// `config` with the `extra` settings applied over it.
fn with(mut config: ClientConfig, extra: &[(&str, &str)]) -> ClientConfig {
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
}

/// What one `switchboard loadgen` run ended with.
pub struct LoadgenRun {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output (the JSON report on success).
    pub stdout: String,
    /// Its standard error (logs; the one-line error on failure).
    pub stderr: String,
}

impl LoadgenRun {
    /// The JSON report: the last non-empty line of the output.
    pub fn report(&self) -> serde_json::Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("no report on stdout ({}); stderr: {}", self.status, self.stderr));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("the report is not JSON ({e}): {line}"))
    }
}

/// Runs `switchboard loadgen ARGS` (the binary of this crate) and waits for it, killing it and
/// panicking once `limit` has passed. Blocks: call it from `spawn_blocking` in async tests.
pub fn run_loadgen(args: &[&str], limit: Duration) -> LoadgenRun {
    // Files rather than pipes: nothing can block the child, however much it logs.
    let dir = std::env::temp_dir();
    let id = EventId::new_v7();
    let out_path = dir.join(format!("switchboard-loadgen-{id}.out"));
    let err_path = dir.join(format!("switchboard-loadgen-{id}.err"));
    let out = std::fs::File::create(&out_path).expect("a temporary file");
    let err = std::fs::File::create(&err_path).expect("a temporary file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("loadgen")
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("switchboard starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for switchboard") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    match status {
        Some(status) => LoadgenRun { status, stdout, stderr },
        None => panic!("switchboard loadgen {args:?} ran longer than {limit:?}; stderr: {stderr}"),
    }
}
