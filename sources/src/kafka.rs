//! The Kafka source: a consumer that owns a fixed set of partitions (no group rebalancing, so
//! each timely worker keeps exactly its share), starts from committed offsets, a given offset
//! or a time, and commits offsets only when told to (after the sinks have flushed).

use crate::{owns_partition, Error, Result, SourceRecord};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::KafkaSettings;

/// Where a source starts reading each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    /// The group's committed offset, or the beginning when none was committed.
    Committed,
    /// The beginning of every partition.
    Beginning,
    /// The given offset per partition (partitions not named start at the beginning).
    Offsets(BTreeMap<i32, i64>),
    /// The first record at or after this timestamp (ms).
    Time(i64),
}

/// Where a bounded read stops (exclusive). `None` in a range means "keep reading".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndPosition {
    /// The given offset per partition, exclusive (partitions not named end at the high watermark).
    Offsets(BTreeMap<i32, i64>),
    /// The first record at or after this timestamp (ms).
    Time(i64),
    /// The high watermark when the source was opened.
    HighWatermark,
}

/// Parses `P:O,P:O,…` into a partition → offset map.
pub fn parse_offsets(text: &str) -> std::result::Result<BTreeMap<i32, i64>, String> {
    let mut map = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (p, o) = part
            .split_once(':')
            .ok_or_else(|| format!("`{part}` is not PARTITION:OFFSET"))?;
        let p: i32 = p.trim().parse().map_err(|_| format!("bad partition in `{part}`"))?;
        let o: i64 = o.trim().parse().map_err(|_| format!("bad offset in `{part}`"))?;
        if p < 0 || o < 0 {
            return Err(format!("negative partition or offset in `{part}`"));
        }
        if map.insert(p, o).is_some() {
            return Err(format!("partition {p} named twice"));
        }
    }
    if map.is_empty() {
        return Err("no PARTITION:OFFSET given".into());
    }
    Ok(map)
}

/// A consumer that owns a fixed set of partitions of one topic.
pub struct KafkaSource {
    consumer: BaseConsumer,
    topic: String,
    partitions: Vec<i32>,
    /// Exclusive end offset per partition, for bounded reads.
    end: Option<BTreeMap<i32, i64>>,
    /// Next offset to read per partition (what a commit would record).
    position: BTreeMap<i32, i64>,
    /// The high watermark of each partition when the source was opened.
    opened_at: BTreeMap<i32, i64>,
}

/// Kafka metadata and offset lookups wait at most this long.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

fn is_fatal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
    )
}

impl KafkaSource {
    /// Opens the share of `topic` that worker `worker_index` of `peers` owns.
    pub fn open(
        settings: &KafkaSettings,
        group_id: &str,
        topic: &str,
        worker_index: usize,
        peers: usize,
        start: &StartPosition,
        end: Option<&EndPosition>,
    ) -> Result<Self> {
        let consumer: BaseConsumer = settings
            .client_config()
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // Long polling, bounded: see KafkaSettings::fetch_wait_ms for the latency / idle
            // CPU trade-off on nisshi.
            .set("fetch.wait.max.ms", KafkaSettings::fetch_wait_ms().to_string())
            .set("fetch.min.bytes", "1")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
        let topic_meta = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| Error::MissingTopic(topic.to_string()))?;
        if let Some(err) = topic_meta.error() {
            let code = RDKafkaErrorCode::from(err);
            return Err(if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                Error::MissingTopic(topic.to_string())
            } else {
                Error::Kafka(KafkaError::MetadataFetch(code))
            });
        }
        let mut partitions: Vec<i32> = topic_meta
            .partitions()
            .iter()
            .map(|p| p.id())
            .filter(|p| owns_partition(*p, worker_index, peers))
            .collect();
        partitions.sort_unstable();

        let mut starts: BTreeMap<i32, i64> = BTreeMap::new();
        let mut low_high = BTreeMap::new();
        for &p in &partitions {
            low_high.insert(p, consumer.fetch_watermarks(topic, p, METADATA_TIMEOUT)?);
        }
        match start {
            StartPosition::Beginning => {
                for &p in &partitions {
                    starts.insert(p, low_high[&p].0);
                }
            }
            StartPosition::Offsets(map) => {
                for &p in &partitions {
                    starts.insert(p, map.get(&p).copied().unwrap_or(low_high[&p].0).max(low_high[&p].0));
                }
            }
            StartPosition::Committed => {
                let mut tpl = TopicPartitionList::new();
                for &p in &partitions {
                    tpl.add_partition(topic, p);
                }
                let committed = if partitions.is_empty() { tpl } else { consumer.committed_offsets(tpl, METADATA_TIMEOUT)? };
                for &p in &partitions {
                    let at = match committed.find_partition(topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => low_high[&p].0,
                    };
                    starts.insert(p, at.max(low_high[&p].0));
                }
            }
            StartPosition::Time(ts) => {
                let found = offsets_for_time(&consumer, topic, &partitions, *ts)?;
                for &p in &partitions {
                    let (low, high) = low_high[&p];
                    starts.insert(p, found.get(&p).copied().filter(|o| (low..=high).contains(o)).unwrap_or(high));
                }
            }
        }
        let end = match end {
            None => None,
            Some(EndPosition::HighWatermark) => Some(partitions.iter().map(|p| (*p, low_high[p].1)).collect()),
            Some(EndPosition::Offsets(map)) => {
                Some(partitions.iter().map(|p| (*p, map.get(p).copied().unwrap_or(low_high[p].1))).collect())
            }
            Some(EndPosition::Time(ts)) => {
                // A bound past the newest record (no record at or after it) means "up to the
                // end": the high watermark, whatever the broker answers for such a time.
                let found = offsets_for_time(&consumer, topic, &partitions, *ts)?;
                Some(
                    partitions
                        .iter()
                        .map(|p| {
                            let (low, high) = low_high[p];
                            (*p, found.get(p).copied().filter(|o| (low..=high).contains(o)).unwrap_or(high))
                        })
                        .collect(),
                )
            }
        };

        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in &starts {
            tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
        }
        consumer.assign(&tpl)?;
        let opened_at = low_high.iter().map(|(p, (_, high))| (*p, *high)).collect();
        Ok(KafkaSource { consumer, topic: topic.to_string(), partitions, end, position: starts, opened_at })
    }

    /// The partitions this source owns.
    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    /// The high watermark of each owned partition when the source was opened: records before
    /// it may have been processed by an earlier run that stopped before committing them.
    pub fn opened_at(&self) -> &BTreeMap<i32, i64> {
        &self.opened_at
    }

    /// The next offset to read per partition.
    pub fn position(&self) -> &BTreeMap<i32, i64> {
        &self.position
    }

    /// Whether a bounded source has read everything up to its end.
    pub fn finished(&self) -> bool {
        match &self.end {
            None => false,
            Some(end) => self.partitions.iter().all(|p| self.position.get(p).copied().unwrap_or(0) >= end[p]),
        }
    }

    /// Reads up to `max` records, waiting at most `wait` for the first one. Transient broker
    /// trouble is logged and retried by the client; fatal errors (authentication, a missing
    /// topic) are returned.
    pub fn poll_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<SourceRecord>> {
        let mut batch = Vec::new();
        let deadline = Instant::now() + wait;
        while batch.len() < max && !self.finished() {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = if batch.is_empty() { left } else { Duration::ZERO };
            match self.consumer.poll(timeout) {
                None => {
                    if !batch.is_empty() || left.is_zero() {
                        break;
                    }
                }
                Some(Ok(msg)) => {
                    let partition = msg.partition();
                    let offset = msg.offset();
                    if let Some(end) = &self.end {
                        if offset >= end.get(&partition).copied().unwrap_or(i64::MAX) {
                            self.position.insert(partition, offset.max(self.position.get(&partition).copied().unwrap_or(0)));
                            self.pause(partition)?;
                            continue;
                        }
                    }
                    self.position.insert(partition, offset + 1);
                    batch.push(SourceRecord {
                        topic: msg.topic().to_string(),
                        partition,
                        offset,
                        timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
                        key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: msg.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    });
                }
                Some(Err(KafkaError::MessageConsumption(code))) if is_fatal(code) => {
                    return Err(Error::Kafka(KafkaError::MessageConsumption(code)));
                }
                Some(Err(e)) => {
                    tracing::warn!(topic = %self.topic, error = %e, "kafka consumer error (retrying)");
                    if batch.is_empty() && Instant::now() >= deadline {
                        break;
                    }
                }
            }
        }
        Ok(batch)
    }

    fn pause(&mut self, partition: i32) -> Result<()> {
        if let Some(end) = &self.end {
            // A bounded read is finished for this partition: remember it reached the end.
            let at_end = end.get(&partition).copied().unwrap_or(0);
            self.position.insert(partition, at_end.max(self.position.get(&partition).copied().unwrap_or(0)));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition);
        self.consumer.pause(&tpl)?;
        Ok(())
    }

    /// Commits `next` offsets (the next offset to read, per partition) for the group,
    /// synchronously. Call only after every output of the records before them is durable.
    pub fn commit(&self, next: &BTreeMap<i32, i64>) -> Result<()> {
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in next {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(o))?;
        }
        self.consumer.commit(&tpl, CommitMode::Sync)?;
        Ok(())
    }

    /// Records between the position and the high watermark, summed over owned partitions.
    pub fn lag(&self) -> Result<i64> {
        let mut lag = 0;
        for &p in &self.partitions {
            let (_, high) = self.consumer.fetch_watermarks(&self.topic, p, METADATA_TIMEOUT)?;
            lag += (high - self.position.get(&p).copied().unwrap_or(0)).max(0);
        }
        Ok(lag)
    }
}

fn offsets_for_time(consumer: &BaseConsumer, topic: &str, partitions: &[i32], ts: i64) -> Result<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, Offset::Offset(ts))?;
    }
    let mut out = BTreeMap::new();
    if partitions.is_empty() {
        return Ok(out);
    }
    let found = consumer.offsets_for_times(tpl, METADATA_TIMEOUT)?;
    for e in found.elements() {
        if let Offset::Offset(o) = e.offset() {
            out.insert(e.partition(), o);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_and_reject_nonsense() {
        let m = parse_offsets("0:10, 3:7").unwrap();
        assert_eq!(m.get(&0), Some(&10));
        assert_eq!(m.get(&3), Some(&7));
        assert!(parse_offsets("").is_err());
        assert!(parse_offsets("0-10").is_err());
        assert!(parse_offsets("0:x").is_err());
        assert!(parse_offsets("0:1,0:2").is_err());
        assert!(parse_offsets("-1:2").is_err());
    }
}
