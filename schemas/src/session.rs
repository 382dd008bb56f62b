//! The persisted shape of a dialogue's session state: what the session operator keeps per
//! dialogue, what is saved to ClickHouse's `sessions` table after each epoch, and what is read
//! back at start.

use crate::EventId;
use std::collections::BTreeMap;

/// What the knowledge base offered for a turn.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetrievedAnswer {
    /// The entry's id.
    pub entry_id: String,
    /// Blended retrieval score.
    pub score: f32,
    /// The entry's answer template.
    pub template: String,
    /// The slots the template requires.
    pub required_slots: Vec<String>,
}

/// The state of one open dialogue.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DialogueState {
    /// User turns so far.
    pub turns: u32,
    /// Slot values collected so far.
    pub slots: BTreeMap<String, String>,
    /// The intent of the last turn.
    pub last_intent: Option<String>,
    /// Unresolved turns in a row.
    pub unresolved: u32,
    /// An answer waiting for slots, with the intent it was for.
    pub pending: Option<(RetrievedAnswer, String)>,
    /// Event time of the last turn.
    pub last_seen: i64,
    /// The last turn's event, whose id the close event derives from.
    pub last_event: Option<EventId>,
    /// The source partition ("lane") its turns arrive on, when they came through
    /// `Sessions::on_turn_in_lane` (operators).
    pub lane: Option<i32>,
    /// The source position (partition, offset) of the last turn applied, when known: a turn at
    /// or before it on that partition has already been applied (see `Sessions::applied`).
    #[serde(default)]
    pub source_position: Option<(i32, i64)>,
}

/// One dialogue's state as saved for a restart: the state, or `None` once it closed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionSnapshot {
    /// The dialogue.
    pub dialogue_id: String,
    /// Its state, or `None` when it has closed.
    pub state: Option<DialogueState>,
}
