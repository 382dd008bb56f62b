//! The persisted shape of a dialogue's session state: what the session operator keeps per
//! dialogue, what is saved to ClickHouse's `sessions` table after each epoch, and what is read
//! back at start.

use crate::{EventId, HandoffReason, Owner};
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
    /// Who answers the dialogue: the bot, nobody yet (waiting for an agent) or an agent.
    /// Snapshots saved before ownership existed load as the bot's.
    #[serde(default)]
    pub owner: Ownership,
    /// The bot's next answer starts with the apology for the wait nobody answered (set when a
    /// wait times out back to the bot, cleared by the next reply).
    #[serde(default)]
    pub apology_due: bool,
    /// The replies to the last few says (at most [`RECENT_REPLIES`]), each as its encoded JSON
    /// (an event's flattened body cannot cross a process boundary through bincode): a say that
    /// comes again (the same event id: the same dialogue and client message id) is not applied
    /// again; its reply is sent again instead, with the same id, for the gateway that now holds
    /// the user.
    #[serde(default)]
    pub recent_replies: Vec<String>,
}

/// How many says' replies a dialogue keeps for answering a say sent again.
pub const RECENT_REPLIES: usize = 4;

/// Who answers a dialogue, with what the session needs to know about it.
///
/// Serialised externally tagged (`"bot"`, `{"waiting":{…}}`, `{"agent":{…}}`), which both the
/// JSON of the `sessions` table and the bincode of timely's exchange between processes can write.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// The bot answers.
    #[default]
    Bot,
    /// Handed off, no agent has claimed it yet.
    Waiting {
        /// Event time the wait began (ms).
        since_ms: i64,
        /// Why it was handed off.
        reason: HandoffReason,
        /// The event that began the wait (a user turn, or a handoff that came as input): a
        /// wait timeout replies to it and derives its id from it.
        cause: EventId,
    },
    /// An agent owns it.
    Agent {
        /// The agent's account name.
        agent: String,
        /// Event time of the claim (ms).
        since_ms: i64,
    },
}

impl Ownership {
    /// The owner as written in events.
    pub fn owner(&self) -> Owner {
        match self {
            Ownership::Bot => Owner::Bot,
            Ownership::Waiting { .. } => Owner::Waiting,
            Ownership::Agent { .. } => Owner::Agent,
        }
    }

    /// The owning agent, if an agent owns the dialogue.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Ownership::Agent { agent, .. } => Some(agent),
            Ownership::Bot | Ownership::Waiting { .. } => None,
        }
    }
}

/// One dialogue's state as saved for a restart: the state, or `None` once it closed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionSnapshot {
    /// The dialogue.
    pub dialogue_id: String,
    /// Its state, or `None` when it has closed.
    pub state: Option<DialogueState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_saved_before_ownership_loads_as_the_bots() {
        let old = r#"{"turns":2,"slots":{"order_id":"12345678"},"last_intent":"return_goods","unresolved":0,"pending":null,"last_seen":1000,"last_event":null,"lane":3,"source_position":[3,41]}"#;
        let state: DialogueState = serde_json::from_str(old).expect("old snapshot loads");
        assert_eq!(state.owner, Ownership::Bot);
        assert!(!state.apology_due);
        assert_eq!((state.turns, state.lane), (2, Some(3)));
    }

    #[test]
    fn ownership_round_trips_through_json() {
        let cause = EventId::from_bytes([7; 16]);
        for owner in [
            Ownership::Bot,
            Ownership::Waiting { since_ms: 5, reason: HandoffReason::UserAsked, cause },
            Ownership::Agent { agent: "li.na".into(), since_ms: 9 },
        ] {
            let state = DialogueState { owner: owner.clone(), ..DialogueState::default() };
            let text = serde_json::to_string(&state).expect("serialises");
            let back: DialogueState = serde_json::from_str(&text).expect("deserialises");
            assert_eq!(back.owner, owner, "{text}");
        }
        let waiting = serde_json::to_value(Ownership::Agent { agent: "a".into(), since_ms: 1 }).expect("json");
        assert_eq!(waiting, serde_json::json!({"agent": {"agent": "a", "since_ms": 1}}));
        assert_eq!(Ownership::Agent { agent: "a".into(), since_ms: 1 }.owner(), Owner::Agent);
        assert_eq!(Ownership::Bot.agent(), None);
    }
}
