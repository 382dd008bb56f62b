//! Set-up shared by the gateway's integration tests that run against the dev broker (tansu from
//! deploy/dev/up.sh, or any Kafka at `SWITCHBOARD_KAFKA_BROKERS`): fresh topics, a real gateway
//! on 127.0.0.1:0, and the test's own Kafka clients playing the topology.
//!
//! Each test file that needs them says `mod common;`; not every file uses every helper.
#![allow(dead_code)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_gateway::{Gateway, GatewayConfig};
use switchboard_schemas::settings::KafkaSettings;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for anything (a record, a frame, a reply, the gateway stopping).
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

/// A gateway serving on 127.0.0.1 (a free port), running in a task until it is shut down.
pub struct RunningGateway {
    /// Where it listens (`ws://{addr}/ws`, `/metrics`, `/console`).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<switchboard_gateway::Result<()>>>,
}

/// Binds a gateway on 127.0.0.1:0 reading `user_topic`/`bot_topic` (after `tune` has adjusted
/// its configuration) and spawns its `run`, which returns once the gateway is shut down.
pub async fn start_gateway(
    settings: &KafkaSettings,
    user_topic: &str,
    bot_topic: &str,
    tune: impl FnOnce(&mut GatewayConfig),
) -> RunningGateway {
    let mut config = GatewayConfig::new(settings.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.user_said_topic = user_topic.to_string();
    config.bot_said_topic = bot_topic.to_string();
    tune(&mut config);
    let gateway = Gateway::bind(config).await.expect("gateway binds and reads bot.said");
    let addr = gateway.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));
    RunningGateway { addr, shutdown: Some(stop), task: Some(task) }
}

impl RunningGateway {
    /// Starts the shutdown (the drain); panics if it was started already.
    pub fn shut_down(&mut self) {
        let _ = self.shutdown.take().expect("running").send(());
    }

    /// Waits for the gateway's `run` to return (after a shutdown), cleanly and in time.
    pub async fn stopped(&mut self) {
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("gateway stops").expect("no panic").expect("clean stop");
        }
    }

    /// Shuts the gateway down (unless that was started already) and waits for it to stop.
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        self.stopped().await;
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
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
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
