//! Where events enter the topology: the Kafka source (each timely worker owns a disjoint set of
//! partitions; records carry partition, offset and timestamp) and the recorded-traffic source,
//! which replays a recording file with the same shape.
//!
//! Both hand out [`SourceRecord`]s; which partitions a worker owns is decided by
//! [`owns_partition`], the same rule for Kafka and for recordings.

pub mod admin;
mod error;
pub mod kafka;
pub mod recording;

pub use error::{Error, Result};

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

/// Whether the worker `worker_index` of `peers` workers owns `partition`: partitions are dealt
/// round-robin, so with 8 partitions and 2 processes × 2 workers each worker owns two, and
/// both processes own four.
pub fn owns_partition(partition: i32, worker_index: usize, peers: usize) -> bool {
    peers > 0 && (partition.max(0) as usize) % peers == worker_index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_dealt_disjointly_and_completely() {
        for peers in 1..6 {
            for p in 0..16 {
                let owners: Vec<usize> = (0..peers).filter(|w| owns_partition(p, *w, peers)).collect();
                assert_eq!(owners.len(), 1, "partition {p} with {peers} peers");
            }
        }
    }
}
