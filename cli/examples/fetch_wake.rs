//! Produce→consume latency of one record at a time through the broker, for a consumer that
//! long-polls (`fetch.wait.max.ms`): does a produce wake a waiting fetch?
//!
//! ```text
//! cargo run --release --example fetch_wake -- PARTITIONS FETCH_WAIT_MS [COUNT]
//! ```
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::KafkaSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let partitions: i32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let wait: String = args.get(2).cloned().unwrap_or_else(|| "500".into());
    let count: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(40);
    let kafka = KafkaSettings::from_env()?;
    let topic = format!("fetch-wake-{}", std::process::id());
    switchboard_sources::admin::ensure_topics(&kafka, &[&topic], partitions).await?;
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", &topic)
        .set("fetch.wait.max.ms", &wait)
        .set("fetch.min.bytes", "1")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&topic, p, Offset::End)?;
    }
    consumer.assign(&tpl)?;
    let producer: FutureProducer = kafka.client_config().set("linger.ms", "0").create()?;
    std::thread::sleep(Duration::from_secs(2));
    let mut latencies = Vec::new();
    for i in 0..count {
        let key = format!("k{i}");
        let sent = Instant::now();
        producer.send(FutureRecord::to(&topic).key(&key).payload("x"), Duration::from_secs(5)).await.map_err(|(e, _)| e)?;
        let acked = sent.elapsed();
        loop {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(1000)) {
                if m.key() == Some(key.as_bytes()) {
                    break;
                }
            }
            anyhow::ensure!(sent.elapsed() < Duration::from_secs(5), "record {i} not consumed in 5 s");
        }
        latencies.push((sent.elapsed().as_secs_f64() * 1000.0, acked.as_secs_f64() * 1000.0));
        tokio::time::sleep(Duration::from_millis(137)).await;
    }
    let mut e2e: Vec<f64> = latencies.iter().map(|l| l.0).collect();
    e2e.sort_by(f64::total_cmp);
    let ack: f64 = latencies.iter().map(|l| l.1).sum::<f64>() / latencies.len() as f64;
    println!(
        "partitions {partitions} fetch.wait.max.ms {wait}: produce→consume p50 {:.1} ms p90 {:.1} ms max {:.1} ms (produce ack mean {ack:.1} ms)",
        e2e[e2e.len() / 2],
        e2e[e2e.len() * 9 / 10],
        e2e[e2e.len() - 1]
    );
    switchboard_sources::admin::delete_topics(&kafka, &[&topic]).await.ok();
    Ok(())
}
