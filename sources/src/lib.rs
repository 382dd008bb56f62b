//! Where events enter the topology: the Kafka source (each timely worker owns a disjoint set of
//! partitions; records carry partition, offset and timestamp) and the recorded-traffic source,
//! which replays a recording file with the same shape.
//!
//! Both hand out [`SourceRecord`]s; which partitions a worker owns is decided by
//! [`owns_partition`], the same rule for Kafka and for recordings.

#![deny(missing_docs)]

pub mod access;
pub mod admin;
mod error;
pub mod kafka;
pub mod recording;

pub use error::{Error, Result};

pub use switchboard_schemas::SourceRecord;

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
