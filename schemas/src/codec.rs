//! Strict JSON encoding and decoding of [`Event`]s.

use crate::event::{Event, EventBody, EventKind, SCHEMA_VERSION};
use crate::{DecodeError, MAX_AGENT_CHARS};
use serde::Deserialize;

/// Largest record accepted by [`decode`], in bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest text field accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// Encodes an event as compact JSON.
pub fn encode(event: &Event) -> Vec<u8> {
    // Serialising plain data with string keys cannot fail.
    serde_json::to_vec(event).unwrap_or_else(|e| unreachable!("event serialisation failed: {e}"))
}

/// Decodes bytes into an event, strictly. See [`DecodeError`] for what is refused.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: MAX_EVENT_BYTES });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DecodeError::InvalidUtf8 { position: e.valid_up_to() })?;
    decode_str(text)
}

/// The envelope's tag fields, read first so that errors can name the kind.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    schema_version: Option<serde_json::Value>,
}

/// Decodes a string into an event, strictly.
pub fn decode_str(text: &str) -> Result<Event, DecodeError> {
    if text.len() > MAX_EVENT_BYTES {
        return Err(DecodeError::TooLarge { size: text.len(), limit: MAX_EVENT_BYTES });
    }
    let header: Header = serde_json::from_str(text).map_err(|e| malformed(&e))?;
    let kind_name = header.kind.ok_or(DecodeError::MissingKind)?;
    let kind = EventKind::from_name(&kind_name)
        .ok_or_else(|| DecodeError::UnknownKind(truncate(&kind_name, 64)))?;
    let kind_name = kind.as_str().to_string();
    if let Some(serde_json::Value::Number(n)) = &header.schema_version {
        match n.as_u64() {
            Some(v) if v > u64::from(SCHEMA_VERSION) => {
                return Err(DecodeError::UnsupportedVersion { found: v, supported: SCHEMA_VERSION })
            }
            _ => {}
        }
    }
    let event: Event = serde_json::from_str(text).map_err(|e| classify(&kind_name, &e))?;
    if event.schema_version == 0 {
        return Err(DecodeError::InvalidField {
            kind: kind_name,
            message: "schema_version must be at least 1".into(),
        });
    }
    if event.dialogue_id.is_empty() || event.dialogue_id.chars().count() > 128 {
        return Err(DecodeError::InvalidField {
            kind: kind_name,
            message: "dialogue_id must have 1 to 128 characters".into(),
        });
    }
    if let Some(agent) = event.body.agent() {
        if agent.is_empty() || agent.chars().count() > MAX_AGENT_CHARS {
            return Err(DecodeError::InvalidField {
                kind: kind_name,
                message: format!("agent must have 1 to {MAX_AGENT_CHARS} characters"),
            });
        }
    }
    for t in event.body.texts() {
        let chars = t.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(DecodeError::TextTooLong { kind: kind_name, chars, limit: MAX_TEXT_CHARS });
        }
    }
    // A number beyond f32's range (`1e39`) reads as infinity, which JSON cannot write back
    // (it would encode as `null`): refuse it here rather than pass on an event that no longer
    // round-trips.
    for (field, value) in float_fields(&event.body) {
        if !value.is_finite() {
            return Err(DecodeError::InvalidField {
                kind: kind_name,
                message: format!("`{field}` must be a finite 32-bit number"),
            });
        }
    }
    Ok(event)
}

/// The floating-point fields of a body, by name.
fn float_fields(body: &EventBody) -> Vec<(&'static str, f32)> {
    match body {
        EventBody::IntentRecognized(b) => vec![("confidence", b.confidence)],
        EventBody::KnowledgeRetrieved(b) => vec![("score", b.score)],
        EventBody::AnswerGenerated(b) => vec![("confidence", b.confidence)],
        EventBody::UserSaid(_)
        | EventBody::HandoffRequested(_)
        | EventBody::DialogueClosed(_)
        | EventBody::DeadLetter(_)
        | EventBody::AgentClaim(_)
        | EventBody::AgentMessage(_)
        | EventBody::AgentReturn(_)
        | EventBody::AgentClose(_)
        | EventBody::OwnershipChanged(_)
        | EventBody::TurnQueued(_)
        | EventBody::AgentSaid(_)
        | EventBody::AgentActionRefused(_) => Vec::new(),
    }
}

fn malformed(e: &serde_json::Error) -> DecodeError {
    DecodeError::Malformed { line: e.line(), column: e.column(), message: strip_position(e) }
}

fn classify(kind: &str, e: &serde_json::Error) -> DecodeError {
    let message = strip_position(e);
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return DecodeError::MissingField { kind: kind.to_string(), field: field.to_string() };
    }
    match e.classify() {
        serde_json::error::Category::Data => {
            DecodeError::InvalidField { kind: kind.to_string(), message }
        }
        _ => malformed(e),
    }
}

/// serde_json appends " at line L column C"; the variants carry position separately.
fn strip_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventBody, Locale, UserSaid};

    fn said() -> Event {
        Event::new(
            "d-1",
            1_700_000_000_000,
            EventBody::UserSaid(UserSaid {
                client_msg_id: "m-1".into(),
                user_id: "u-1".into(),
                locale: Locale::ZhCn,
                text: "我要退货".into(),
            }),
        )
    }

    fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(&encode(&said())).unwrap();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    }

    fn without(field: &str) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(&encode(&said())).unwrap();
        v.as_object_mut().unwrap().remove(field);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn wire_form_is_flat_with_kind_tag() {
        let v: serde_json::Value = serde_json::from_slice(&encode(&said())).unwrap();
        assert_eq!(v["kind"], "user_said");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["text"], "我要退货");
        assert_eq!(v["locale"], "zh-CN");
        assert_eq!(v["event_id"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn unknown_kind_is_typed() {
        let err = decode(&with("kind", "user_shouted".into())).unwrap_err();
        assert_eq!(err, DecodeError::UnknownKind("user_shouted".into()));
    }

    #[test]
    fn missing_field_names_the_field() {
        let err = decode(&without("text")).unwrap_err();
        assert_eq!(err, DecodeError::MissingField { kind: "user_said".into(), field: "text".into() });
        let err = decode(&without("event_id")).unwrap_err();
        assert!(matches!(err, DecodeError::MissingField { ref field, .. } if field == "event_id"), "{err}");
        assert_eq!(decode(&without("kind")).unwrap_err(), DecodeError::MissingKind);
    }

    #[test]
    fn wrong_type_is_invalid_field() {
        let err = decode(&with("occurred_at", "yesterday".into())).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidField { .. }), "{err}");
        let err = decode(&with("event_id", "not-a-uuid".into())).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidField { .. }), "{err}");
        let err = decode(&with("locale", "fr".into())).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidField { .. }), "{err}");
    }

    #[test]
    fn unknown_field_is_refused() {
        let err = decode(&with("surprise", 1.into())).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidField { .. }), "{err}");
    }

    #[test]
    fn newer_schema_version_is_unsupported() {
        let err = decode(&with("schema_version", 2.into())).unwrap_err();
        assert_eq!(err, DecodeError::UnsupportedVersion { found: 2, supported: 1 });
        let err = decode(&with("schema_version", 0.into())).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidField { .. }), "{err}");
    }

    #[test]
    fn oversize_text_and_record_are_refused() {
        let err = decode(&with("text", "好".repeat(MAX_TEXT_CHARS + 1).into())).unwrap_err();
        assert!(matches!(err, DecodeError::TextTooLong { chars, .. } if chars == MAX_TEXT_CHARS + 1));
        let err = decode(&vec![b' '; MAX_EVENT_BYTES + 1]).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }));
    }

    #[test]
    fn invalid_utf8_reports_position() {
        let mut bytes = encode(&said());
        let at = bytes.windows(3).position(|w| w == b"d-1").unwrap();
        bytes[at] = 0xff;
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::InvalidUtf8 { position: at });
    }

    #[test]
    fn malformed_json_reports_position() {
        let err = decode(b"{\"kind\": \"user_said\",").unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { line: 1, .. }), "{err}");
        assert!(matches!(decode(b"[1,2]").unwrap_err(), DecodeError::Malformed { .. }));
        assert!(matches!(decode(b"").unwrap_err(), DecodeError::Malformed { .. }));
    }

    #[test]
    fn empty_dialogue_id_is_refused() {
        let err = decode(&with("dialogue_id", "".into())).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidField { .. }), "{err}");
    }
}
