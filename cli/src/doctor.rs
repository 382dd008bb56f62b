//! `switchboard doctor`: checks that every service the system needs answers, and says what is
//! wrong in one line per problem.

use anyhow::{anyhow, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::topics;
use switchboard_sinks::clickhouse::ClickHouseSink;

/// One check's outcome.
#[derive(Debug)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// `Ok(detail)` or `Err(problem)`.
    pub outcome: Result<String, String>,
}

fn kafka_topics(settings: &KafkaSettings) -> Result<String> {
    let consumer: BaseConsumer = settings.client_config().create().context("kafka client")?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .with_context(|| format!("broker {} does not answer", settings.brokers))?;
    let mut found = Vec::new();
    for wanted in topics::ALL {
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == wanted)
            .ok_or_else(|| anyhow!("topic {wanted} is missing (deploy/dev/up.sh creates it)"))?;
        found.push(format!("{wanted}[{}]", topic.partitions().len()));
    }
    Ok(format!("{}: {}", settings.brokers, found.join(" ")))
}

async fn clickhouse_table(settings: &ClickHouseSettings) -> Result<String> {
    let sink = ClickHouseSink::new(settings);
    sink.ping().await?;
    let count: u64 = sink
        .client()
        .query("SELECT count() FROM system.tables WHERE database = ? AND name = 'events'")
        .bind(&settings.database)
        .fetch_one()
        .await
        .context("query system.tables")?;
    if count == 0 {
        return Err(anyhow!("table {}.events is missing (deploy/dev/up.sh migrates it)", settings.database));
    }
    Ok(format!("{} {}.events", settings.url, settings.database))
}

fn model(name: &str) -> Result<String> {
    let dir = switchboard_operators::intent::resolve_model_dir(name);
    let started = std::time::Instant::now();
    let encoder = switchboard_operators::intent::Encoder::load(&dir)?;
    Ok(format!("{} (dim {}, loaded in {} ms)", dir.display(), encoder.dim(), started.elapsed().as_millis()))
}

/// Runs every check.
pub async fn run_checks() -> Vec<Check> {
    let mut checks = Vec::new();
    let kafka = KafkaSettings::from_env().map_err(anyhow::Error::from);
    checks.push(Check {
        name: "kafka".into(),
        outcome: kafka.and_then(|k| kafka_topics(&k)).map_err(|e| format!("{e:#}")),
    });
    let outcome = match ClickHouseSettings::from_env() {
        Ok(c) => clickhouse_table(&c).await.map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    };
    checks.push(Check { name: "clickhouse".into(), outcome });
    for name in ["m3e-small", "all-minilm-l6-v2"] {
        checks.push(Check { name: format!("model {name}"), outcome: model(name).map_err(|e| format!("{e:#}")) });
    }
    checks
}
