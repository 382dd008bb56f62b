//! Set-up shared by the gateway's integration tests that run against the dev broker (nisshi from
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

/// Deletes the test's `topics` (the broker deletes only those); panics when the broker refuses.
pub async fn delete_topics(settings: &KafkaSettings, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create().expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for outcome in admin.delete_topics(topics, &options).await.unwrap_or_else(|e| panic!("deleting {topics:?}: {e}")) {
        outcome.unwrap_or_else(|(t, e)| panic!("deleting {t}: {e}"));
    }
}

/// A gateway serving on 127.0.0.1 (a free port), running in a task until it is shut down.
pub struct RunningGateway {
    /// Where the public listener listens (`ws://{addr}/ws`, `/`, `/healthz`).
    pub addr: SocketAddr,
    /// Where the admin listener listens (`/console`, `/metrics`, `/agent`; log in with
    /// [`admin_login`] as [`ADMIN_USER`]).
    pub admin: SocketAddr,
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
    config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.users_file = Some(users_file());
    config.user_said_topic = user_topic.to_string();
    config.bot_said_topic = bot_topic.to_string();
    tune(&mut config);
    let gateway = Gateway::bind(config).await.expect("gateway binds and reads bot.said");
    let addr = gateway.local_addr();
    let admin = gateway.admin_addr().expect("an admin listener");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));
    RunningGateway { addr, admin, shutdown: Some(stop), task: Some(task) }
}

/// The account the tests log in to the admin listener with (role admin).
pub const ADMIN_USER: &str = "ops";
/// Its password.
pub const ADMIN_PASSWORD: &str = "integration-test-password";

/// A fresh users file holding [`ADMIN_USER`].
pub fn users_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sb-gw-users-{}", uuid::Uuid::now_v7())).join("users.json");
    let mut accounts = switchboard_gateway::accounts::Accounts::load(&path).expect("users file");
    accounts
        .upsert(ADMIN_USER, switchboard_gateway::accounts::Role::Admin, ADMIN_PASSWORD)
        .expect("add the test account");
    path
}

/// A logged-in session on an admin listener.
#[derive(Clone, Debug)]
pub struct Admin {
    /// The admin listener.
    pub addr: SocketAddr,
    /// The `Cookie` header value (`sb_admin=…`), empty for a router without logins.
    pub cookie: String,
}

/// Logs in to the admin listener at `addr` as [`ADMIN_USER`].
pub async fn admin_login(addr: SocketAddr) -> Admin {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!("username={ADMIN_USER}&password={ADMIN_PASSWORD}");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("admin connect");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("login reply in time").expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let cookie = text
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie after login: {text}"))
        .to_string();
    Admin { addr, cookie }
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

/// The test's producer (idempotent, `acks=all`, 20 s message timeout); `extra` adds or overrides client
/// settings (e.g. `linger.ms`).
pub fn test_producer(settings: &KafkaSettings, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = settings.client_config();
    config
        // Idempotent, like the project's producers.
        .set("enable.idempotence", "true")
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
