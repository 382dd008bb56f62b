//! What flows between the operators of the graph.

use switchboard_operators::session::TurnAnalysis;
use switchboard_schemas::Event;

/// An item between analysis and the session operator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Stage {
    /// An analysed user turn, with its Kafka position for ordering.
    Turn {
        /// The analysis.
        analysis: Box<TurnAnalysis>,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
    },
    /// An event that goes straight to the sinks (masked UserSaid, dead letters, failure handoffs).
    Emit(Event),
}

impl Stage {
    /// The dialogue this item belongs to (routes it to the worker holding the session).
    pub fn dialogue_id(&self) -> &str {
        match self {
            Stage::Turn { analysis, .. } => &analysis.said.dialogue_id,
            Stage::Emit(e) => &e.dialogue_id,
        }
    }
}

/// A stable 64-bit hash of a dialogue id (FNV-1a), the exchange key of the session operator.
/// Stable across processes and builds, unlike `std`'s randomised hasher.
pub fn dialogue_hash(dialogue_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dialogue_id.as_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
