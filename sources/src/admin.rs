//! Topic administration through the Kafka admin API (the broker has no auto-create).

use crate::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;

/// Creates each topic with `partitions` partitions unless it exists already.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let new: Vec<NewTopic> =
        topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(15)));
    for outcome in admin.create_topics(&new, &options).await? {
        match outcome {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(Error::CreateTopic { topic, reason: code.to_string() }),
        }
    }
    Ok(())
}
