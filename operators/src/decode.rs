//! Decoding a source record into a user turn or another input of the session (an agent's
//! action, a gateway's timeout handoff), or into a dead letter (with a handoff for the user
//! when the record still names a dialogue and a message of a user, so no turn is ever met with
//! silence). Dead letters carry a masked, truncated payload.

use crate::pii;
use switchboard_schemas::{
    decode, DeadLetter, Event, EventBody, EventId, HandoffReason, HandoffRequested, UserSaid,
};
use switchboard_schemas::SourceRecord;

/// Longest dead-letter payload kept, in characters.
const MAX_PAYLOAD_CHARS: usize = 4096;

/// A decoded user turn.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The UserSaid event as received (raw text).
    pub event: Event,
    /// Its body.
    pub said: UserSaid,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
}

/// A deterministic id for things derived from a record position rather than an event.
pub fn record_id(record: &SourceRecord, role: &str) -> EventId {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&record.timestamp_ms.max(0).to_be_bytes()[2..]);
    bytes[6..10].copy_from_slice(&record.partition.to_be_bytes());
    bytes[10..16].copy_from_slice(&record.offset.to_be_bytes()[2..]);
    let base = EventId::from_bytes(bytes);
    EventId::derived(base, &format!("{}/{role}", record.topic))
}

/// A decoded `user.said` record.
#[derive(Debug, Clone)]
pub enum Input {
    /// A user's turn.
    Turn(Turn),
    /// Another input of the session, as received (raw text): an agent's claim, message, return
    /// or close, or a gateway's `handoff_requested` with reason `timeout`.
    Action(Event),
}

/// Decodes a `user.said` record. On failure returns the events that replace the turn: a dead
/// letter and, when the record still names its dialogue and a user's message, a handoff.
pub fn decode_input(record: &SourceRecord, now_ms: i64) -> Result<Input, Vec<Event>> {
    let reason = match decode(&record.value) {
        Ok(event) => match &event.body {
            EventBody::UserSaid(said) => {
                return Ok(Input::Turn(Turn { said: said.clone(), event, partition: record.partition, offset: record.offset }))
            }
            EventBody::AgentClaim(_) | EventBody::AgentMessage(_) | EventBody::AgentReturn(_) | EventBody::AgentClose(_) => {
                return Ok(Input::Action(event))
            }
            EventBody::HandoffRequested(h) if h.reason == HandoffReason::Timeout => return Ok(Input::Action(event)),
            EventBody::HandoffRequested(h) => {
                format!("handoff_requested on {} must have reason timeout, not {}", record.topic, h.reason.as_str())
            }
            other => format!("unexpected event kind {} on {}", other.kind().as_str(), record.topic),
        },
        Err(e) => e.to_string(),
    };
    Err(dead_letter(record, &reason, now_ms))
}

/// Kinds whose records are not a user's message: a failed one gets no handoff.
const NOT_A_USER_MESSAGE: [&str; 5] = ["agent_claim", "agent_message", "agent_return", "agent_close", "handoff_requested"];

/// The dead letter for a record, plus a handoff when it names a dialogue and a message that is
/// not an agent's or a gateway's.
pub fn dead_letter(record: &SourceRecord, reason: &str, now_ms: i64) -> Vec<Event> {
    let lossy = String::from_utf8_lossy(&record.value);
    let payload: String = pii::mask(&lossy).chars().take(MAX_PAYLOAD_CHARS).collect();
    let loose: Option<serde_json::Value> = serde_json::from_slice(&record.value).ok();
    let field = |name: &str| {
        loose
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty() && s.chars().count() <= 128)
            .map(str::to_string)
    };
    let dialogue_id = field("dialogue_id").or_else(|| record.key.clone()).unwrap_or_else(|| "unknown".into());
    let mut out = vec![Event {
        event_id: record_id(record, "dead-letter"),
        dialogue_id: dialogue_id.clone(),
        schema_version: switchboard_schemas::SCHEMA_VERSION,
        occurred_at: now_ms,
        body: EventBody::DeadLetter(DeadLetter {
            reason: pii::mask(reason).chars().take(512).collect(),
            source_topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            payload,
        }),
    }];
    let of_a_user = field("kind").is_none_or(|kind| !NOT_A_USER_MESSAGE.contains(&kind.as_str()));
    if let (true, Some(_), Some(client_msg_id)) = (of_a_user, field("dialogue_id"), field("client_msg_id")) {
        let in_reply_to = field("event_id")
            .and_then(|s| s.parse::<EventId>().ok())
            .unwrap_or_else(|| record_id(record, "turn"));
        let said_at = loose.as_ref().and_then(|v| v.get("occurred_at")).and_then(|v| v.as_i64()).unwrap_or(now_ms);
        out.push(Event {
            event_id: EventId::derived(in_reply_to, crate::session::REPLY_ROLE),
            dialogue_id,
            schema_version: switchboard_schemas::SCHEMA_VERSION,
            occurred_at: now_ms,
            body: EventBody::HandoffRequested(HandoffRequested {
                in_reply_to,
                client_msg_id,
                reason: HandoffReason::ProcessingFailed,
                detail: pii::mask(reason).chars().take(256).collect(),
                latency_ms: u32::try_from((now_ms - said_at).max(0)).unwrap_or(u32::MAX),
            }),
        });
    }
    out
}
