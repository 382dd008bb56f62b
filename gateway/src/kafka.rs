//! Kafka: the `user.said` producer and the `bot.said` reader.
//!
//! A say is accepted only once the broker acknowledged its record (`acks=all`). The producer is
//! idempotent unless [`GatewayConfig::idempotent_producer`] is turned off; a producer that failed
//! fatally (an idempotent producer whose broker-side state was lost) is replaced by a new one.
//!
//! Every instance reads all partitions of `bot.said` from the high watermark it saw at start
//! (no consumer group, no commits) and keeps only the events of dialogues it holds.

use crate::config::GatewayConfig;
use crate::error::{Error, Result};
use crate::agent::AgentSide;
use crate::hub::Hub;
use crate::metrics::Metrics;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::{decode, encode, DecodeError, Event};
use tokio::sync::watch;

/// How long setup requests (metadata, watermarks) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the reader looks for new partitions.
const PARTITION_REFRESH: Duration = Duration::from_secs(30);

/// An idempotent producer is replaced after a failure at most this often.
const RECREATE_EVERY: Duration = Duration::from_secs(5);

/// The real broker's producer, replaceable after a fatal error.
pub(crate) struct KafkaPublisher {
    producer: std::sync::RwLock<FutureProducer>,
    client_config: rdkafka::ClientConfig,
    topic: String,
    timeout: Duration,
    idempotent: bool,
    last_recreated: std::sync::Mutex<Instant>,
}

/// Hands `UserSaid` events to the broker.
pub(crate) enum Publisher {
    /// The real broker.
    Kafka(KafkaPublisher),
    /// In-memory, for unit tests: events go to the channel; `fail` makes every publish fail.
    #[cfg(test)]
    Memory { tx: tokio::sync::mpsc::UnboundedSender<Event>, fail: Arc<std::sync::atomic::AtomicBool> },
}

impl Publisher {
    /// A producer for `config.user_said_topic` (`acks=all`, idempotent unless turned off).
    pub(crate) fn kafka(config: &GatewayConfig) -> Result<Self> {
        let timeout_ms = config.produce_timeout.as_millis().max(1).to_string();
        let mut client_config = config.kafka.client_config();
        client_config
            .set("client.id", format!("switchboard-gateway-{}", config.instance_id))
            .set("enable.idempotence", if config.idempotent_producer { "true" } else { "false" })
            .set("acks", "all")
            .set("message.timeout.ms", &timeout_ms)
            .set("linger.ms", "2");
        let producer: FutureProducer =
            client_config.create().map_err(|source| Error::Kafka { what: "creating the producer".into(), source })?;
        Ok(Publisher::Kafka(KafkaPublisher {
            producer: std::sync::RwLock::new(producer),
            client_config,
            topic: config.user_said_topic.clone(),
            timeout: config.produce_timeout,
            idempotent: config.idempotent_producer,
            last_recreated: std::sync::Mutex::new(Instant::now()),
        }))
    }

    /// Produces the event (key = dialogue id) and waits for the broker's acknowledgement.
    pub(crate) async fn publish(&self, event: &Event, metrics: &Metrics) -> Result<(), String> {
        match self {
            Publisher::Kafka(kafka) => {
                let result = kafka.send(event, metrics).await;
                if result.is_err() {
                    kafka.recover();
                }
                result
            }
            #[cfg(test)]
            Publisher::Memory { tx, fail } => {
                if fail.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err("broker down (test)".into());
                }
                tx.send(event.clone()).map_err(|_| "closed".to_string())
            }
        }
    }

    /// Waits (bounded) for in-flight messages to be acknowledged.
    pub(crate) async fn flush(&self) {
        match self {
            Publisher::Kafka(kafka) => {
                let producer = kafka.current();
                let _ = tokio::task::spawn_blocking(move || {
                    use rdkafka::producer::Producer;
                    if let Err(e) = producer.flush(Duration::from_secs(5)) {
                        tracing::warn!(error = %e, "producer flush incomplete");
                    }
                })
                .await;
            }
            #[cfg(test)]
            Publisher::Memory { .. } => {}
        }
    }
}

impl KafkaPublisher {
    fn current(&self) -> FutureProducer {
        self.producer.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn send(&self, event: &Event, metrics: &Metrics) -> Result<(), String> {
        let producer = self.current();
        let payload = encode(event);
        let started = Instant::now();
        let record = FutureRecord::to(&self.topic).key(&event.dialogue_id).payload(&payload);
        let delivery = match producer.send_result(record) {
            Ok(delivery) => delivery,
            Err((e, _)) => return Err(e.to_string()),
        };
        // librdkafka gives up after message.timeout.ms; the outer bound is a safety net.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), delivery).await {
            Ok(Ok(Ok(_))) => {
                metrics.produce_latency.observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Ok(Ok(Err((e, _)))) => Err(e.to_string()),
            Ok(Err(_)) => Err("producer dropped the message".into()),
            Err(_) => Err("no acknowledgement in time".into()),
        }
    }

    /// After a failed send: replaces a producer that failed fatally, or (idempotent producers,
    /// at most every few seconds) one that may have lost its broker-side state in a broker
    /// restart and would fail every later send.
    fn recover(&self) {
        use rdkafka::producer::Producer;
        let fatal = self.current().client().fatal_error();
        if fatal.is_none() && !self.idempotent {
            return;
        }
        {
            let mut last = self.last_recreated.lock().unwrap_or_else(|p| p.into_inner());
            if fatal.is_none() && last.elapsed() < RECREATE_EVERY {
                return;
            }
            *last = Instant::now();
        }
        match self.client_config.create::<FutureProducer>() {
            Ok(fresh) => {
                *self.producer.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                tracing::warn!(fatal = ?fatal.map(|(code, _)| code), "user.said producer replaced after an error");
            }
            Err(e) => tracing::warn!(error = %e, "cannot recreate the user.said producer"),
        }
    }
}

/// The running `bot.said` reader.
pub(crate) struct BotSaidReader {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl BotSaidReader {
    /// Assigns every partition of `config.bot_said_topic` at its current high watermark, then
    /// starts routing events to `hub`. Returns once the assignment is in place, so that every
    /// answer produced afterwards is seen.
    pub(crate) async fn start(
        config: &GatewayConfig,
        hub: Arc<Hub>,
        agents: AgentSide,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let consumer: StreamConsumer = config
            .kafka
            .client_config()
            .set("client.id", format!("switchboard-gateway-{}", config.instance_id))
            // Never joined (partitions are assigned, not subscribed) and never committed; unique
            // per instance so that no two gateways could ever share offsets.
            .set("group.id", format!("switchboard-gateway-{}", config.instance_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", KafkaSettings::fetch_wait_ms().to_string())
            .create()
            .map_err(|source| Error::Kafka { what: "creating the bot.said consumer".into(), source })?;
        let consumer = Arc::new(consumer);
        let topic = config.bot_said_topic.clone();
        let tpl = blocking({
            let consumer = consumer.clone();
            let topic = topic.clone();
            move || high_watermarks(&consumer, &topic, 0)
        })
        .await??;
        if tpl.count() == 0 {
            return Err(Error::MissingTopic { topic });
        }
        consumer.assign(&tpl).map_err(|source| Error::Kafka { what: format!("assigning {topic}"), source })?;
        tracing::info!(topic = %topic, partitions = tpl.count(), "reading bot.said from the high watermarks");
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(read_loop(consumer, topic, tpl.count(), hub, agents, metrics, stop_rx));
        Ok(BotSaidReader { stop, task })
    }

    /// Stops reading and waits for the task to end.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), self.task).await.is_err() {
            tracing::warn!("bot.said reader did not stop in time");
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Serve(std::io::Error::other(e.to_string())))
}

/// Partitions `from..` of `topic` at their high watermarks.
fn high_watermarks(consumer: &StreamConsumer, topic: &str, from: usize) -> Result<TopicPartitionList> {
    let metadata = consumer
        .fetch_metadata(Some(topic), SETUP_TIMEOUT)
        .map_err(|source| Error::Kafka { what: format!("reading metadata of {topic}"), source })?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(Error::MissingTopic { topic: topic.to_string() });
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(Error::MissingTopic { topic: topic.to_string() });
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    let mut tpl = TopicPartitionList::new();
    for id in ids.into_iter().skip(from) {
        let (_, high) = consumer
            .fetch_watermarks(topic, id, SETUP_TIMEOUT)
            .map_err(|source| Error::Kafka { what: format!("reading watermarks of {topic}/{id}"), source })?;
        tpl.add_partition_offset(topic, id, Offset::Offset(high))
            .map_err(|source| Error::Kafka { what: format!("assigning {topic}/{id}"), source })?;
    }
    Ok(tpl)
}

async fn read_loop(
    consumer: Arc<StreamConsumer>,
    topic: String,
    mut partitions: usize,
    hub: Arc<Hub>,
    agents: AgentSide,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut refresh = tokio::time::interval(PARTITION_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = refresh.tick() => {
                partitions = add_new_partitions(&consumer, &topic, partitions).await;
            }
            received = consumer.recv() => match received {
                Ok(message) => {
                    let outcome = match message.payload().map(decode) {
                        Some(Ok(event)) => {
                            agents.observe(&event);
                            let outcome = hub.route(&event);
                            if outcome == "routed" {
                                metrics.reply_received(&event);
                            }
                            outcome
                        }
                        Some(Err(e)) => {
                            tracing::warn!(
                                partition = message.partition(),
                                offset = message.offset(),
                                error = decode_error_kind(&e),
                                "undecodable bot.said record skipped"
                            );
                            "undecodable"
                        }
                        None => "undecodable",
                    };
                    metrics.bot_said(outcome);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bot.said read failed; retrying");
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }
    tracing::info!("bot.said reader stopped");
}

/// Assigns partitions added to the topic since the start (from their beginning: they are new).
async fn add_new_partitions(consumer: &Arc<StreamConsumer>, topic: &str, known: usize) -> usize {
    let c = consumer.clone();
    let t = topic.to_string();
    let found = blocking(move || high_watermarks(&c, &t, known)).await;
    match found {
        Ok(Ok(tpl)) if tpl.count() > 0 => {
            let mut fresh = TopicPartitionList::new();
            for e in tpl.elements() {
                if fresh.add_partition_offset(topic, e.partition(), Offset::Beginning).is_err() {
                    return known;
                }
            }
            match consumer.incremental_assign(&fresh) {
                Ok(()) => {
                    tracing::info!(topic, added = fresh.count(), "new bot.said partitions assigned");
                    known + fresh.count()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not assign new bot.said partitions");
                    known
                }
            }
        }
        Ok(Ok(_)) => known,
        Ok(Err(e)) | Err(e) => {
            tracing::debug!(error = %e, "partition refresh failed");
            known
        }
    }
}

/// A log-safe name for a decode error (the messages of some variants may quote the record).
fn decode_error_kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::InvalidUtf8 { .. } => "invalid_utf8",
        DecodeError::TooLarge { .. } => "too_large",
        DecodeError::Malformed { .. } => "malformed",
        DecodeError::MissingKind => "missing_kind",
        DecodeError::UnknownKind(_) => "unknown_kind",
        DecodeError::UnsupportedVersion { .. } => "unsupported_version",
        DecodeError::MissingField { .. } => "missing_field",
        DecodeError::InvalidField { .. } => "invalid_field",
        DecodeError::TextTooLong { .. } => "text_too_long",
    }
}
