//! The Kafka sink: a producer that writes events keyed by dialogue_id and waits for the
//! broker's acknowledgement of every one before reporting a batch durable.
//!
//! Exactly-once effects do not rely on the broker: every event carries a deterministic id and
//! consumers deduplicate on it, so a retried send that lands twice is harmless. The producer's
//! own idempotence is off by default because tansu 0.6.0 panics in its idempotence check when an
//! idempotent producer outlives a broker restart, which takes the whole broker down (seen here;
//! `SWITCHBOARD_KAFKA_IDEMPOTENCE=true` turns it on for brokers without that bug).

use crate::Result;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::{encode, Event};

/// Writes events to Kafka topics, waiting for every acknowledgement.
#[derive(Clone)]
pub struct KafkaSink {
    producer: FutureProducer,
}

/// How long one record may wait for the broker (retries included) before the batch fails.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

impl KafkaSink {
    /// A sink connected to the broker in `settings`.
    pub fn new(settings: &KafkaSettings) -> Result<Self> {
        let idempotence = std::env::var("SWITCHBOARD_KAFKA_IDEMPOTENCE").map(|v| v == "true").unwrap_or(false);
        let producer = settings
            .client_config()
            .set("enable.idempotence", if idempotence { "true" } else { "false" })
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
            .create()?;
        Ok(KafkaSink { producer })
    }

    /// Sends every event to `topic` (key = dialogue_id) and waits until all are acknowledged.
    pub async fn write(&self, topic: &str, events: &[Event]) -> Result<()> {
        let payloads: Vec<Vec<u8>> = events.iter().map(encode).collect();
        let deliveries: Vec<_> = events
            .iter()
            .zip(&payloads)
            .map(|(e, payload)| {
                self.producer.send(
                    FutureRecord::to(topic).key(&e.dialogue_id).payload(payload).timestamp(e.occurred_at),
                    DELIVERY_TIMEOUT,
                )
            })
            .collect();
        for delivery in deliveries {
            delivery.await.map_err(|(e, _)| e)?;
        }
        Ok(())
    }
}
