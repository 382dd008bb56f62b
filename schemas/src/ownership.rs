//! The event kinds of dialogue ownership: who answers a dialogue — the bot, nobody yet (waiting
//! for a human agent after a handoff) or one human agent.
//!
//! Agents act through events of their own kinds on `user.said` (produced by a gateway, key =
//! dialogue_id): [`AgentClaim`], [`AgentMessage`], [`AgentReturn`], [`AgentClose`]. The session
//! operator, keyed by dialogue, decides every transition and answers on `bot.said` with
//! [`OwnershipChanged`], [`TurnQueued`], [`AgentSaid`] or [`AgentActionRefused`].

use crate::{EventId, HandoffReason};
use serde::{Deserialize, Serialize};

/// Longest agent account name accepted by the decoder, in characters.
pub const MAX_AGENT_CHARS: usize = 128;

/// An agent takes a dialogue (from the waiting queue, or proactively from the bot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentClaim {
    /// The agent's account name.
    pub agent: String,
}

/// An agent writes to the user of a dialogue it owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMessage {
    /// The agent's account name.
    pub agent: String,
    /// The agent client's id for this message.
    pub client_msg_id: String,
    /// What the agent typed (raw; masked by the pipeline before anything stores it).
    pub text: String,
}

/// An agent gives the dialogue back to the bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReturn {
    /// The agent's account name.
    pub agent: String,
}

/// An agent ends the dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentClose {
    /// The agent's account name.
    pub agent: String,
}

/// Who answers a dialogue, as written in [`OwnershipChanged::owner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The bot answers (the default).
    Bot,
    /// Handed off, waiting for an agent's claim: user turns are queued, not answered.
    Waiting,
    /// A human agent owns the dialogue: user turns go to the agent.
    Agent,
}

impl Owner {
    /// The wire name (`bot`, `waiting`, `agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Bot => "bot",
            Owner::Waiting => "waiting",
            Owner::Agent => "agent",
        }
    }
}

/// Why the owner of a dialogue changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnershipReason {
    /// The bot (or a gateway's answer timeout) handed the dialogue off: now waiting.
    Handoff,
    /// An agent claimed it.
    Claimed,
    /// The owning agent gave it back to the bot.
    Returned,
    /// The dialogue ended (closed by its agent, or idle) while not with the bot.
    Closed,
    /// Nobody claimed it within the wait timeout: back to the bot.
    WaitTimeout,
}

impl OwnershipReason {
    /// The wire name (`handoff`, `claimed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            OwnershipReason::Handoff => "handoff",
            OwnershipReason::Claimed => "claimed",
            OwnershipReason::Returned => "returned",
            OwnershipReason::Closed => "closed",
            OwnershipReason::WaitTimeout => "wait_timeout",
        }
    }
}

/// The owner of a dialogue changed (decided by the session operator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipChanged {
    /// The event that caused the change (the user turn, handoff, agent action or, for a wait
    /// timeout, the event that began the wait).
    pub in_reply_to: EventId,
    /// The new owner.
    pub owner: Owner,
    /// The agent concerned: the new owner on a claim, the previous one on a return or close.
    pub agent: Option<String>,
    /// Why.
    pub reason: OwnershipReason,
    /// The handoff's reason, when `reason` is `handoff`.
    pub handoff_reason: Option<HandoffReason>,
}

/// A user turn while the dialogue is waiting for an agent or with one: the bot does not answer;
/// the user is told the message is queued and the agent gets the masked text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnQueued {
    /// The UserSaid event queued.
    pub in_reply_to: EventId,
    /// The client's message id of that turn (the WebSocket `in_reply_to`).
    pub client_msg_id: String,
    /// The user's text with PII masked.
    pub masked_text: String,
    /// The owning agent, or none while waiting.
    pub agent: Option<String>,
}

/// An agent's message to the user, accepted from the owning agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSaid {
    /// The AgentMessage event.
    pub in_reply_to: EventId,
    /// The agent's account name.
    pub agent: String,
    /// The agent client's id for the message.
    pub client_msg_id: String,
    /// The text, PII-masked.
    pub text: String,
}

/// What an agent tried to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentAction {
    /// [`AgentClaim`].
    Claim,
    /// [`AgentMessage`].
    Message,
    /// [`AgentReturn`].
    Return,
    /// [`AgentClose`].
    Close,
}

impl AgentAction {
    /// The wire name (`claim`, `message`, `return`, `close`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentAction::Claim => "claim",
            AgentAction::Message => "message",
            AgentAction::Return => "return",
            AgentAction::Close => "close",
        }
    }
}

/// Why an agent's action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Another agent (or this one) already owns the dialogue.
    AlreadyClaimed,
    /// Only the owning agent may write, return or close.
    NotOwner,
    /// The dialogue is not open (closed, or never started): nothing to claim.
    NotWaiting,
}

impl RefusalReason {
    /// The wire name (`already_claimed`, `not_owner`, `not_waiting`).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::AlreadyClaimed => "already_claimed",
            RefusalReason::NotOwner => "not_owner",
            RefusalReason::NotWaiting => "not_waiting",
        }
    }
}

/// An agent's action the session refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentActionRefused {
    /// The refused action's event.
    pub in_reply_to: EventId,
    /// The agent who tried.
    pub agent: String,
    /// What was tried.
    pub action: AgentAction,
    /// Why not.
    pub reason: RefusalReason,
    /// The agent owning the dialogue at that moment, if any.
    pub owner: Option<String>,
}

#[cfg(test)]
mod tests {
    use crate::{decode, decode_str, encode, DecodeError, Event, EventBody, EventKind};
    use serde_json::json;

    fn claim(agent: &str) -> serde_json::Value {
        json!({"event_id": "0193a000-0000-7000-8000-000000000001", "dialogue_id": "d-1", "kind": "agent_claim",
               "schema_version": 1, "occurred_at": 1_764_000_000_000i64, "agent": agent})
    }

    #[test]
    fn agent_inputs_decode_strictly() {
        let event = decode_str(&claim("li.na").to_string()).expect("a claim decodes");
        assert!(matches!(&event.body, EventBody::AgentClaim(c) if c.agent == "li.na"));
        assert_eq!(event.kind(), EventKind::AgentClaim);
        let mut extra = claim("li.na");
        extra["text"] = json!("hi");
        assert!(matches!(decode_str(&extra.to_string()), Err(DecodeError::InvalidField { .. })));
        let mut missing = claim("li.na");
        missing.as_object_mut().map(|o| o.remove("agent"));
        assert_eq!(
            decode_str(&missing.to_string()),
            Err(DecodeError::MissingField { kind: "agent_claim".into(), field: "agent".into() })
        );
        for bad in ["".to_string(), "a".repeat(crate::MAX_AGENT_CHARS + 1)] {
            assert!(matches!(decode_str(&claim(&bad).to_string()), Err(DecodeError::InvalidField { .. })), "{bad:?}");
        }
        let mut newer = claim("li.na");
        newer["schema_version"] = json!(2);
        assert!(matches!(decode_str(&newer.to_string()), Err(DecodeError::UnsupportedVersion { .. })));
        let message = json!({"event_id": "0193a000-0000-7000-8000-000000000002", "dialogue_id": "d-1",
            "kind": "agent_message", "schema_version": 1, "occurred_at": 1, "agent": "li.na",
            "client_msg_id": "a-1", "text": "x".repeat(crate::MAX_TEXT_CHARS + 1)});
        assert!(matches!(decode_str(&message.to_string()), Err(DecodeError::TextTooLong { .. })));
    }

    #[test]
    fn outputs_use_snake_case_tags_and_refuse_unknown_values() {
        let changed = json!({"event_id": "0193a000-0000-7000-8000-000000000003", "dialogue_id": "d-1",
            "kind": "ownership_changed", "schema_version": 1, "occurred_at": 1,
            "in_reply_to": "0193a000-0000-7000-8000-000000000001", "owner": "waiting", "agent": null,
            "reason": "handoff", "handoff_reason": "timeout"});
        let event = decode_str(&changed.to_string()).expect("decodes");
        let back: serde_json::Value = serde_json::from_slice(&encode(&event)).expect("json");
        assert_eq!(back, changed, "round trip keeps every field");
        let mut wrong = changed.clone();
        wrong["owner"] = json!("nobody");
        assert!(matches!(decode_str(&wrong.to_string()), Err(DecodeError::InvalidField { .. })));
        let refused = json!({"event_id": "0193a000-0000-7000-8000-000000000004", "dialogue_id": "d-1",
            "kind": "agent_action_refused", "schema_version": 1, "occurred_at": 1,
            "in_reply_to": "0193a000-0000-7000-8000-000000000001", "agent": "wang.wu", "action": "claim",
            "reason": "already_claimed", "owner": "li.na"});
        let event: Event = decode(refused.to_string().as_bytes()).expect("decodes");
        assert!(matches!(&event.body, EventBody::AgentActionRefused(r) if r.owner.as_deref() == Some("li.na")));
        assert_eq!(event.body.agent(), Some("wang.wu"));
    }
}
