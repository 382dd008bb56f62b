//! The source record: one Kafka record (or one line of a recording) as the topology reads it,
//! before decoding.

/// One Kafka record as the topology sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceRecord {
    /// The topic it came from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The key (dialogue_id for `user.said`), if any.
    pub key: Option<String>,
    /// The raw value bytes.
    pub value: Vec<u8>,
}
