//! The event envelope and every event kind of the conversation pipeline.

use crate::ownership::{
    AgentActionRefused, AgentClaim, AgentClose, AgentMessage, AgentReturn, AgentSaid, OwnershipChanged, TurnQueued,
};
use crate::EventId;
use serde::{Deserialize, Serialize};

/// The schema version this build writes. Decoding accepts versions up to this one.
pub const SCHEMA_VERSION: u16 = 1;

/// One event: the envelope fields every record carries, plus the kind-specific body.
///
/// On the wire the body's fields sit beside the envelope's, and `kind` names the body:
/// `{"event_id":"…","dialogue_id":"…","kind":"user_said","schema_version":1,"occurred_at":…,"text":"…",…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 16-byte unique id; sinks deduplicate on it.
    pub event_id: EventId,
    /// The conversation this event belongs to; also the Kafka key.
    pub dialogue_id: String,
    /// Version of the schema the event was written with.
    pub schema_version: u16,
    /// Event time in milliseconds since the Unix epoch.
    pub occurred_at: i64,
    /// The kind-specific payload, tagged by `kind`.
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// A new event with a fresh UUIDv7 id and the current schema version.
    pub fn new(dialogue_id: impl Into<String>, occurred_at: i64, body: EventBody) -> Self {
        Event {
            event_id: EventId::new_v7(),
            dialogue_id: dialogue_id.into(),
            schema_version: SCHEMA_VERSION,
            occurred_at,
            body,
        }
    }

    /// For an answer or a handoff: when the turn it replies to was said (ms), i.e. its own time
    /// less its latency. None for any other kind.
    pub fn turn_said_at(&self) -> Option<i64> {
        let latency = match &self.body {
            EventBody::AnswerGenerated(a) => a.latency_ms,
            EventBody::HandoffRequested(h) => h.latency_ms,
            _ => return None,
        };
        Some(self.occurred_at - i64::from(latency))
    }

    /// An event caused by `parent`, with an id derived from the parent's id and `role`, so that
    /// re-processing the parent yields the same id.
    pub fn caused_by(parent: &Event, role: &str, occurred_at: i64, body: EventBody) -> Self {
        Event {
            event_id: EventId::derived(parent.event_id, role),
            dialogue_id: parent.dialogue_id.clone(),
            schema_version: SCHEMA_VERSION,
            occurred_at,
            body,
        }
    }

    /// The `kind` tag of this event.
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }
}

/// The payload of an event, one variant per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// A user's utterance, as accepted by a gateway.
    UserSaid(UserSaid),
    /// The classifier's verdict on a user turn.
    IntentRecognized(IntentRecognized),
    /// The knowledge-base entry chosen for a turn (or none).
    KnowledgeRetrieved(KnowledgeRetrieved),
    /// The bot's answer to a turn.
    AnswerGenerated(AnswerGenerated),
    /// The bot hands the dialogue to a human agent.
    HandoffRequested(HandoffRequested),
    /// A dialogue ended (idle timeout or explicit close).
    DialogueClosed(DialogueClosed),
    /// A record that could not be decoded or processed.
    DeadLetter(DeadLetter),
    /// An agent takes a dialogue (input, `user.said`).
    AgentClaim(AgentClaim),
    /// An agent writes to the user (input, `user.said`).
    AgentMessage(AgentMessage),
    /// An agent gives the dialogue back to the bot (input, `user.said`).
    AgentReturn(AgentReturn),
    /// An agent ends the dialogue (input, `user.said`).
    AgentClose(AgentClose),
    /// The owner of a dialogue changed (output, `bot.said`).
    OwnershipChanged(OwnershipChanged),
    /// A user turn queued for an agent instead of answered (output, `bot.said`).
    TurnQueued(TurnQueued),
    /// The owning agent's message, masked (output, `bot.said`).
    AgentSaid(AgentSaid),
    /// An agent's action was refused (output, `bot.said`).
    AgentActionRefused(AgentActionRefused),
}

/// The names of the event kinds, as written in the `kind` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// See [`UserSaid`].
    UserSaid,
    /// See [`IntentRecognized`].
    IntentRecognized,
    /// See [`KnowledgeRetrieved`].
    KnowledgeRetrieved,
    /// See [`AnswerGenerated`].
    AnswerGenerated,
    /// See [`HandoffRequested`].
    HandoffRequested,
    /// See [`DialogueClosed`].
    DialogueClosed,
    /// See [`DeadLetter`].
    DeadLetter,
    /// See [`AgentClaim`].
    AgentClaim,
    /// See [`AgentMessage`].
    AgentMessage,
    /// See [`AgentReturn`].
    AgentReturn,
    /// See [`AgentClose`].
    AgentClose,
    /// See [`OwnershipChanged`].
    OwnershipChanged,
    /// See [`TurnQueued`].
    TurnQueued,
    /// See [`AgentSaid`].
    AgentSaid,
    /// See [`AgentActionRefused`].
    AgentActionRefused,
}

impl EventKind {
    /// Every kind, in declaration order (the canonical order of a golden file ranks kinds so).
    pub const ALL: [EventKind; 15] = [
        EventKind::UserSaid,
        EventKind::IntentRecognized,
        EventKind::KnowledgeRetrieved,
        EventKind::AnswerGenerated,
        EventKind::HandoffRequested,
        EventKind::DialogueClosed,
        EventKind::DeadLetter,
        EventKind::AgentClaim,
        EventKind::AgentMessage,
        EventKind::AgentReturn,
        EventKind::AgentClose,
        EventKind::OwnershipChanged,
        EventKind::TurnQueued,
        EventKind::AgentSaid,
        EventKind::AgentActionRefused,
    ];

    /// The wire name (`user_said`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UserSaid => "user_said",
            EventKind::IntentRecognized => "intent_recognized",
            EventKind::KnowledgeRetrieved => "knowledge_retrieved",
            EventKind::AnswerGenerated => "answer_generated",
            EventKind::HandoffRequested => "handoff_requested",
            EventKind::DialogueClosed => "dialogue_closed",
            EventKind::DeadLetter => "dead_letter",
            EventKind::AgentClaim => "agent_claim",
            EventKind::AgentMessage => "agent_message",
            EventKind::AgentReturn => "agent_return",
            EventKind::AgentClose => "agent_close",
            EventKind::OwnershipChanged => "ownership_changed",
            EventKind::TurnQueued => "turn_queued",
            EventKind::AgentSaid => "agent_said",
            EventKind::AgentActionRefused => "agent_action_refused",
        }
    }

    /// The kind with this wire name, if any.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl EventBody {
    /// The kind tag of this body.
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::UserSaid(_) => EventKind::UserSaid,
            EventBody::IntentRecognized(_) => EventKind::IntentRecognized,
            EventBody::KnowledgeRetrieved(_) => EventKind::KnowledgeRetrieved,
            EventBody::AnswerGenerated(_) => EventKind::AnswerGenerated,
            EventBody::HandoffRequested(_) => EventKind::HandoffRequested,
            EventBody::DialogueClosed(_) => EventKind::DialogueClosed,
            EventBody::DeadLetter(_) => EventKind::DeadLetter,
            EventBody::AgentClaim(_) => EventKind::AgentClaim,
            EventBody::AgentMessage(_) => EventKind::AgentMessage,
            EventBody::AgentReturn(_) => EventKind::AgentReturn,
            EventBody::AgentClose(_) => EventKind::AgentClose,
            EventBody::OwnershipChanged(_) => EventKind::OwnershipChanged,
            EventBody::TurnQueued(_) => EventKind::TurnQueued,
            EventBody::AgentSaid(_) => EventKind::AgentSaid,
            EventBody::AgentActionRefused(_) => EventKind::AgentActionRefused,
        }
    }

    /// The free texts of this body, for length checks and PII audits.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            EventBody::UserSaid(b) => vec![&b.text, &b.user_id, &b.client_msg_id],
            EventBody::IntentRecognized(b) => vec![&b.masked_text, &b.client_msg_id],
            EventBody::KnowledgeRetrieved(b) => vec![&b.client_msg_id],
            EventBody::AnswerGenerated(b) => vec![&b.text, &b.client_msg_id],
            EventBody::HandoffRequested(b) => vec![&b.detail, &b.client_msg_id],
            EventBody::DialogueClosed(_) => vec![],
            EventBody::DeadLetter(b) => vec![&b.reason, &b.payload],
            EventBody::AgentClaim(b) => vec![&b.agent],
            EventBody::AgentMessage(b) => vec![&b.agent, &b.client_msg_id, &b.text],
            EventBody::AgentReturn(b) => vec![&b.agent],
            EventBody::AgentClose(b) => vec![&b.agent],
            EventBody::OwnershipChanged(b) => b.agent.iter().map(String::as_str).collect(),
            EventBody::TurnQueued(b) => {
                let mut texts = vec![b.client_msg_id.as_str(), b.masked_text.as_str()];
                texts.extend(b.agent.as_deref());
                texts
            }
            EventBody::AgentSaid(b) => vec![&b.agent, &b.client_msg_id, &b.text],
            EventBody::AgentActionRefused(b) => {
                let mut texts = vec![b.agent.as_str()];
                texts.extend(b.owner.as_deref());
                texts
            }
        }
    }

    /// The agent account an ownership event names, if any: the acting agent of an agent's
    /// action, a refusal or an agent's message, the agent an ownership change or a queued turn
    /// concerns.
    pub fn agent(&self) -> Option<&str> {
        match self {
            EventBody::AgentClaim(b) => Some(&b.agent),
            EventBody::AgentMessage(b) => Some(&b.agent),
            EventBody::AgentReturn(b) => Some(&b.agent),
            EventBody::AgentClose(b) => Some(&b.agent),
            EventBody::OwnershipChanged(b) => b.agent.as_deref(),
            EventBody::TurnQueued(b) => b.agent.as_deref(),
            EventBody::AgentSaid(b) => Some(&b.agent),
            EventBody::AgentActionRefused(b) => Some(&b.agent),
            EventBody::UserSaid(_)
            | EventBody::IntentRecognized(_)
            | EventBody::KnowledgeRetrieved(_)
            | EventBody::AnswerGenerated(_)
            | EventBody::HandoffRequested(_)
            | EventBody::DialogueClosed(_)
            | EventBody::DeadLetter(_) => None,
        }
    }
}

/// The language of a dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Locale {
    /// Simplified Chinese (the default).
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English.
    #[serde(rename = "en")]
    En,
}

impl Locale {
    /// The wire name (`zh-CN` or `en`).
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }

    /// Parses a locale name: the wire names `zh-CN` and `en`, and `zh` as a short form of
    /// `zh-CN`. Exact spelling: case-sensitive, no surrounding whitespace. `None` for
    /// anything else; [`str::parse`] gives a [`ParseLocaleError`] naming the value instead.
    ///
    /// ```
    /// use switchboard_schemas::Locale;
    /// assert_eq!(Locale::parse("zh"), Some(Locale::ZhCn));
    /// assert_eq!("en".parse::<Locale>(), Ok(Locale::En));
    /// assert_eq!(Locale::parse("fr"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Locale> {
        match name {
            "zh-CN" | "zh" => Some(Locale::ZhCn),
            "en" => Some(Locale::En),
            _ => None,
        }
    }
}

impl std::str::FromStr for Locale {
    type Err = ParseLocaleError;

    /// See [`Locale::parse`].
    fn from_str(name: &str) -> Result<Locale, ParseLocaleError> {
        Locale::parse(name).ok_or_else(|| ParseLocaleError {
            value: name.to_owned(),
        })
    }
}

/// A locale name that [`Locale::parse`] does not know; names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown locale `{value}` (expected zh-CN, zh or en)")]
pub struct ParseLocaleError {
    value: String,
}

impl ParseLocaleError {
    /// The value that is not a locale name, as given.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A user's utterance, as accepted by a gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSaid {
    /// The client's id for this message; answers quote it as `in_reply_to`.
    pub client_msg_id: String,
    /// The user, as the client named them.
    pub user_id: String,
    /// The dialogue's language.
    pub locale: Locale,
    /// What the user typed (raw; masked before anything stores it).
    pub text: String,
}

/// The classifier's verdict on one user turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentRecognized {
    /// The UserSaid event this verdict is about.
    pub in_reply_to: EventId,
    /// The client's message id of that turn.
    pub client_msg_id: String,
    /// The user's text with PII masked.
    pub masked_text: String,
    /// The winning intent label.
    pub intent: String,
    /// Calibrated probability of the winning label.
    pub confidence: f32,
    /// The classifier version that produced this verdict.
    pub model_version: String,
}

/// The knowledge-base entry chosen for a turn, or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeRetrieved {
    /// The UserSaid event this retrieval serves.
    pub in_reply_to: EventId,
    /// The client's message id of that turn.
    pub client_msg_id: String,
    /// The chosen entry, if any passed the threshold.
    pub entry_id: Option<String>,
    /// Blended similarity score of the chosen entry (0 when none).
    pub score: f32,
    /// The knowledge-base snapshot version searched.
    pub kb_version: String,
}

/// The bot's answer to one user turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerGenerated {
    /// The UserSaid event answered.
    pub in_reply_to: EventId,
    /// The client's message id of that turn (the WebSocket `in_reply_to`).
    pub client_msg_id: String,
    /// The rendered answer text.
    pub text: String,
    /// The intent the answer is for.
    pub intent: String,
    /// Calibrated confidence of that intent.
    pub confidence: f32,
    /// Milliseconds from the UserSaid's `occurred_at` to this answer.
    pub latency_ms: u32,
}

/// Why a dialogue is handed to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The classifier's calibrated confidence was below the threshold.
    LowConfidence,
    /// The user asked for a human.
    UserAsked,
    /// Two unresolved turns in a row.
    RepeatedlyUnresolved,
    /// The turn could not be processed (it went to the dead letter).
    ProcessingFailed,
    /// No answer came in time (decided by a gateway).
    Timeout,
}

impl HandoffReason {
    /// The wire name (`low_confidence`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffReason::LowConfidence => "low_confidence",
            HandoffReason::UserAsked => "user_asked",
            HandoffReason::RepeatedlyUnresolved => "repeatedly_unresolved",
            HandoffReason::ProcessingFailed => "processing_failed",
            HandoffReason::Timeout => "timeout",
        }
    }
}

/// The bot hands the dialogue to a human agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffRequested {
    /// The UserSaid event that triggered the handoff.
    pub in_reply_to: EventId,
    /// The client's message id of that turn.
    pub client_msg_id: String,
    /// Why.
    pub reason: HandoffReason,
    /// A human-readable detail (PII-masked).
    pub detail: String,
    /// Milliseconds from the UserSaid's `occurred_at` to this event.
    pub latency_ms: u32,
}

impl HandoffRequested {
    /// The handoff recorded for a say that got no reply within the gateway's answer timeout
    /// (reason `timeout`): the gateway writes it when it hands the user off, and the topology
    /// writes the same event when it meets the say too late to answer (an expired turn). Its
    /// id derives from the say's, so however many times and by whom it is written, it is one
    /// event. `said_at` is the say's event time, `now` this event's.
    pub fn timeout(dialogue_id: &str, user_said: EventId, client_msg_id: &str, said_at: i64, now: i64, detail: String) -> Event {
        Event {
            event_id: EventId::derived(user_said, "gateway-timeout"),
            dialogue_id: dialogue_id.to_string(),
            schema_version: crate::SCHEMA_VERSION,
            occurred_at: now,
            body: EventBody::HandoffRequested(HandoffRequested {
                in_reply_to: user_said,
                client_msg_id: client_msg_id.to_string(),
                reason: HandoffReason::Timeout,
                detail,
                latency_ms: u32::try_from((now - said_at).max(0)).unwrap_or(u32::MAX),
            }),
        }
    }
}

/// Why a dialogue closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// No turn for the idle timeout (event time).
    IdleTimeout,
    /// Handed to a human.
    HandedOff,
    /// Ended by the human agent who owned it.
    AgentClosed,
}

/// A dialogue ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogueClosed {
    /// Why it closed.
    pub reason: CloseReason,
    /// How many user turns it had.
    pub turns: u32,
}

/// A record that could not be decoded or processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// What went wrong, in one line.
    pub reason: String,
    /// The topic the record came from.
    pub source_topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The record's value, lossily decoded and PII-masked, truncated.
    pub payload: String,
}

#[cfg(test)]
mod locale_tests {
    use super::{Locale, ParseLocaleError};

    #[test]
    fn parses_exactly_the_known_spellings() {
        assert_eq!(Locale::parse("zh-CN"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("zh"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("en"), Some(Locale::En));
        for bad in ["", "zh-cn", "ZH", "EN", " en", "en ", "zh_CN", "fr"] {
            assert_eq!(Locale::parse(bad), None, "{bad:?}");
        }
        for locale in [Locale::ZhCn, Locale::En] {
            assert_eq!(locale.as_str().parse::<Locale>(), Ok(locale));
        }
    }

    #[test]
    fn the_error_names_the_value() {
        let err: ParseLocaleError = "fr-FR".parse::<Locale>().unwrap_err();
        assert_eq!(err.value(), "fr-FR");
        assert_eq!(
            err.to_string(),
            "unknown locale `fr-FR` (expected zh-CN, zh or en)"
        );
    }
}
