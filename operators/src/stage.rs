//! What flows from turn analysis to the session operator of the graph: an analysed turn or
//! another input of the session (an agent's action, a handoff) with its source position, or an
//! event that goes straight to the sinks.

use crate::session::TurnAnalysis;
use switchboard_schemas::Event;

/// An item between analysis and the session operator.
///
/// Between the processes of a `submit` cluster timely serialises it with bincode, which cannot
/// write the events' flattened bodies (`#[serde(flatten)]` needs a self-describing format);
/// so on the wire a `Stage` is its JSON text ([`StageWire`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "StageWire", try_from = "StageWire")]
pub enum Stage {
    /// An analysed user turn, with its Kafka position for ordering.
    Turn {
        /// The analysis.
        analysis: Box<TurnAnalysis>,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The record's timestamp (Kafka's, ms): the turn's time when running on record time.
        record_time: i64,
        /// The highest record time read from this partition up to and including this record:
        /// the partition's event-time watermark for idle closes when running on record time.
        partition_watermark: i64,
    },
    /// An input of the session that is not a user turn, its texts already PII-masked: an
    /// agent's claim, message, return or close, or a handoff (a gateway's answer timeout, or a
    /// turn that could not be processed), with its Kafka position for ordering.
    Action {
        /// The input event.
        event: Event,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The record's timestamp (Kafka's, ms).
        record_time: i64,
        /// The partition's record-time watermark up to and including this record.
        partition_watermark: i64,
    },
    /// An event that goes straight to the sinks (masked UserSaid, dead letters).
    Emit(Event),
}

/// The same shape as [`Stage`], with serde's derived (JSON-friendly) representation.
#[derive(serde::Serialize, serde::Deserialize)]
enum StageJson {
    Turn { analysis: Box<TurnAnalysis>, partition: i32, offset: i64, record_time: i64, partition_watermark: i64 },
    Action { event: Event, partition: i32, offset: i64, record_time: i64, partition_watermark: i64 },
    Emit(Event),
}

/// A [`Stage`] as exchanged between processes: its JSON text.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct StageWire(String);

impl From<Stage> for StageWire {
    fn from(stage: Stage) -> Self {
        let json = match stage {
            Stage::Turn { analysis, partition, offset, record_time, partition_watermark } => {
                StageJson::Turn { analysis, partition, offset, record_time, partition_watermark }
            }
            Stage::Action { event, partition, offset, record_time, partition_watermark } => {
                StageJson::Action { event, partition, offset, record_time, partition_watermark }
            }
            Stage::Emit(event) => StageJson::Emit(event),
        };
        // Serialising these plain data types to JSON cannot fail (string keys, finite data).
        StageWire(serde_json::to_string(&json).unwrap_or_default())
    }
}

impl TryFrom<StageWire> for Stage {
    type Error = String;
    fn try_from(wire: StageWire) -> Result<Self, String> {
        match serde_json::from_str(&wire.0).map_err(|e| format!("bad stage from a peer: {e}"))? {
            StageJson::Turn { analysis, partition, offset, record_time, partition_watermark } => {
                Ok(Stage::Turn { analysis, partition, offset, record_time, partition_watermark })
            }
            StageJson::Action { event, partition, offset, record_time, partition_watermark } => {
                Ok(Stage::Action { event, partition, offset, record_time, partition_watermark })
            }
            StageJson::Emit(event) => Ok(Stage::Emit(event)),
        }
    }
}

impl Stage {
    /// The dialogue this item belongs to (routes it to the worker holding the session).
    pub fn dialogue_id(&self) -> &str {
        match self {
            Stage::Turn { analysis, .. } => &analysis.said.dialogue_id,
            Stage::Action { event, .. } | Stage::Emit(event) => &event.dialogue_id,
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
