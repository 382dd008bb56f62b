//! Topic administration through the Kafka admin API (the broker has no auto-create), and the
//! retention of the raw `user.said` topic.
//!
//! `user.said` holds what users typed before any masking, so it is kept for a bounded time:
//! [`user_said_retention_ms`] (default 7 days, `SWITCHBOARD_USER_SAID_RETENTION_MS`) becomes the
//! topic's `retention.ms`, always together with `cleanup.policy=delete` ([`retention_config`]),
//! so that a broker whose default policy is `compact` trims it too. nisshi 0.8.1 stores both
//! and, when it starts and then every 10 minutes, deletes the records whose timestamp is older
//! than their topic's `retention.ms`, with Kafka's defaults: a topic without `cleanup.policy`
//! is trimmed too, and one without `retention.ms` keeps records for 7 days
//! (`sources/tests/topic_retention.rs` shows each). The settings are applied when a topic is
//! created; this client does not change them on an existing topic.

use crate::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_schemas::settings::KafkaSettings;

/// The variable that sets how long `user.said` keeps records, in milliseconds.
pub const USER_SAID_RETENTION_ENV: &str = "SWITCHBOARD_USER_SAID_RETENTION_MS";

/// How long `user.said` keeps records unless [`USER_SAID_RETENTION_ENV`] says otherwise: 7 days.
pub const DEFAULT_USER_SAID_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;

/// A topic to create: its name, partition count and topic-level configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic.
    pub name: String,
    /// Partitions (set once: nothing here adds partitions later).
    pub partitions: i32,
    /// Topic configuration, e.g. [`retention_config`].
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    /// A topic without topic-level configuration: the broker's defaults apply (on nisshi, as on
    /// Kafka, records are deleted 7 days after their timestamp).
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec { name: name.into(), partitions, config: Vec::new() }
    }

    /// The same topic, never trimmed by time (`retention.ms=-1`).
    pub fn kept_forever(mut self) -> Self {
        self.config.retain(|(key, _)| key != "retention.ms");
        self.config.push(("retention.ms".into(), "-1".into()));
        self
    }

    /// The same topic, trimmed by time: records older than `retention_ms` are deleted.
    pub fn with_retention_ms(mut self, retention_ms: u64) -> Self {
        self.config.retain(|(key, _)| key != "cleanup.policy" && key != "retention.ms");
        self.config.extend(retention_config(retention_ms));
        self
    }
}

/// The topic configuration that deletes records older than `retention_ms`:
/// `cleanup.policy=delete` and `retention.ms` (the policy explicitly, in case the broker's default
/// is `compact`).
pub fn retention_config(retention_ms: u64) -> Vec<(String, String)> {
    vec![("cleanup.policy".into(), "delete".into()), ("retention.ms".into(), retention_ms.to_string())]
}

/// How long `user.said` keeps records: [`USER_SAID_RETENTION_ENV`] (a positive number of
/// milliseconds) or [`DEFAULT_USER_SAID_RETENTION_MS`].
pub fn user_said_retention_ms() -> Result<u64> {
    parse_retention_ms(std::env::var(USER_SAID_RETENTION_ENV).ok().as_deref())
}

fn parse_retention_ms(value: Option<&str>) -> Result<u64> {
    match value.map(str::trim) {
        None | Some("") => Ok(DEFAULT_USER_SAID_RETENTION_MS),
        Some(text) => match text.parse::<u64>() {
            // Kafka reads retention.ms as a signed 64-bit number; -1 (forever) is not offered.
            Ok(ms) if ms > 0 && i64::try_from(ms).is_ok() => Ok(ms),
            _ => Err(Error::Setting {
                name: USER_SAID_RETENTION_ENV,
                reason: format!("`{text}` is not a positive number of milliseconds (default {DEFAULT_USER_SAID_RETENTION_MS}, 7 days)"),
            }),
        },
    }
}

fn admin_client(settings: &KafkaSettings) -> Result<AdminClient<DefaultClientContext>> {
    Ok(settings.client_config().create()?)
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(15)))
}

/// Creates each topic with `partitions` partitions, kept forever ([`TopicSpec::kept_forever`]),
/// unless it exists already. The tests and examples that use it produce records stamped with
/// fixed times in the past, which the broker's default retention (7 days by record timestamp)
/// would delete at its next maintenance, e.g. when a test restarts the broker.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str], partitions: i32) -> Result<()> {
    let specs: Vec<TopicSpec> = topics.iter().map(|t| TopicSpec::new(*t, partitions).kept_forever()).collect();
    create_topics(settings, &specs).await.map(|_| ())
}

/// Creates each topic as specified unless it exists already; returns the names of those that
/// existed (whose partitions and configuration were left as they were).
pub async fn create_topics(settings: &KafkaSettings, specs: &[TopicSpec]) -> Result<Vec<String>> {
    let admin = admin_client(settings)?;
    let new: Vec<NewTopic> = specs
        .iter()
        .map(|spec| {
            spec.config
                .iter()
                .fold(NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(1)), |topic, (k, v)| topic.set(k, v))
        })
        .collect();
    let mut existed = Vec::new();
    for outcome in admin.create_topics(&new, &options()).await? {
        match outcome {
            Ok(_) => {}
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => existed.push(topic),
            Err((topic, code)) => return Err(Error::CreateTopic { topic, reason: code.to_string() }),
        }
    }
    Ok(existed)
}

/// Deletes each topic; one that does not exist is not an error. The broker deletes only the
/// named topics (`sources/tests/broker_consumer_group.rs` checks), so tests delete their
/// scratch topics with it.
pub async fn delete_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<()> {
    let admin = admin_client(settings)?;
    for outcome in admin.delete_topics(topics, &options()).await? {
        match outcome {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(Error::DeleteTopic { topic, reason: code.to_string() }),
        }
    }
    Ok(())
}

/// The topic-level configuration the broker reports for `topic` (DescribeConfigs), by name.
pub async fn topic_config(settings: &KafkaSettings, topic: &str) -> Result<BTreeMap<String, String>> {
    let admin = admin_client(settings)?;
    let results = admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options()).await?;
    let mut config = BTreeMap::new();
    for result in results {
        let resource = result.map_err(|code| match code {
            RDKafkaErrorCode::UnknownTopicOrPartition => Error::MissingTopic(topic.to_string()),
            other => Error::Kafka(rdkafka::error::KafkaError::AdminOp(other)),
        })?;
        for entry in resource.entries {
            if let Some(value) = entry.value {
                config.insert(entry.name, value);
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_comes_from_the_setting_or_defaults_to_a_week() {
        assert_eq!(parse_retention_ms(None).ok(), Some(604_800_000));
        assert_eq!(parse_retention_ms(Some(" ")).ok(), Some(604_800_000));
        assert_eq!(parse_retention_ms(Some("86400000")).ok(), Some(86_400_000));
        for bad in ["0", "-1", "7d", "1e9", "18446744073709551615"] {
            let e = parse_retention_ms(Some(bad)).expect_err(bad);
            assert!(e.to_string().contains(USER_SAID_RETENTION_ENV), "{e}");
        }
    }

    #[test]
    fn a_retained_topic_says_delete_and_its_retention() {
        let spec = TopicSpec::new("user.said", 8).with_retention_ms(1000).with_retention_ms(2000);
        assert_eq!(spec.config, [("cleanup.policy".into(), "delete".into()), ("retention.ms".into(), "2000".into())]);
        let forever = TopicSpec::new("t", 1).with_retention_ms(1000).kept_forever().kept_forever();
        assert_eq!(forever.config, [("cleanup.policy".into(), "delete".into()), ("retention.ms".into(), "-1".into())]);
    }
}
