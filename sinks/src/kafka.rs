//! The Kafka sink: a producer that writes events keyed by dialogue_id and waits for the
//! broker's acknowledgement of every one before reporting a batch durable.
//!
//! Exactly-once effects do not rely on the broker: every event carries a deterministic id and
//! consumers deduplicate on it, so a retried send that lands twice is harmless. The producer is
//! also idempotent by default (`enable.idempotence`), so such retries do not land twice in the
//! first place; it keeps producing across a broker restart
//! (`sources/tests/idempotent_producer_restart.rs`). `SWITCHBOARD_KAFKA_IDEMPOTENCE=false` turns
//! it off, for a broker without idempotent produce.

use crate::Result;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::future::Future;
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
    /// A sink connected to the broker in `settings`; its producer is idempotent unless
    /// `SWITCHBOARD_KAFKA_IDEMPOTENCE` is `false`.
    pub fn new(settings: &KafkaSettings) -> Result<Self> {
        let idempotence = std::env::var("SWITCHBOARD_KAFKA_IDEMPOTENCE").map(|v| v.trim() != "false").unwrap_or(true);
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

    /// Hands every event to the producer now, on the calling thread (so it leaves with the
    /// producer's next batch, without waiting for any executor), and returns a future that
    /// completes once all are acknowledged. Events the producer's queue has no room for are
    /// sent from that future as room frees up.
    pub fn send(&self, topic: &str, events: &[Event]) -> impl Future<Output = Result<()>> + Send + 'static {
        let mut deliveries = Vec::with_capacity(events.len());
        let mut later = Vec::new();
        for event in events {
            let payload = encode(event);
            let record = FutureRecord::to(topic).key(&event.dialogue_id).payload(&payload).timestamp(event.occurred_at);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err(_) => later.push((event.dialogue_id.clone(), payload, event.occurred_at)),
            }
        }
        let producer = self.producer.clone();
        let topic = topic.to_string();
        async move {
            for (key, payload, at) in later {
                producer
                    .send(FutureRecord::to(&topic).key(&key).payload(&payload).timestamp(at), DELIVERY_TIMEOUT)
                    .await
                    .map_err(|(e, _)| e)?;
            }
            for delivery in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(e.into()),
                    Err(_) => return Err(rdkafka::error::KafkaError::Canceled.into()),
                }
            }
            Ok(())
        }
    }
}
