//! The WebSocket frames of the contract (`ws://HOST/ws`, JSON text frames).
//!
//! Parsing never panics and never echoes the user's text into logs: every refusal is a
//! [`FrameError`] with an [`ErrorCode`] and a short message naming the problem.

use serde::Serialize;
use switchboard_schemas::Locale;

/// Longest `user_id`, `dialogue_id` and `client_msg_id`, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// Longest `resume_token` or `id_token`, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// A frame from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `{"type":"hello","dialogue_id":…,"user_id":…,"locale":…,"token":…}`
    Hello(Hello),
    /// `{"type":"say","client_msg_id":…,"text":…}`
    Say(Say),
}

/// The first frame of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// The dialogue to resume, if any.
    pub dialogue_id: Option<String>,
    /// The user, as the client names them.
    pub user_id: String,
    /// The dialogue's language (`zh-CN` when absent).
    pub locale: Locale,
    /// hex(HMAC-SHA256(secret, user_id)), required when the gateway has a secret.
    pub token: Option<String>,
    /// The `resume_token` of the dialogue's last `welcome`: required with a `dialogue_id`.
    pub resume_token: Option<String>,
    /// A JWT from the host site; the dialogue is then bound to its subject.
    pub id_token: Option<String>,
}

/// One user turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Say {
    /// The client's id for this message; answers quote it as `in_reply_to`.
    pub client_msg_id: String,
    /// What the user typed.
    pub text: String,
}

/// The `code` of an error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Invalid JSON, a binary frame, an unknown `type`, a missing or invalid field.
    BadFrame,
    /// The frame or the text is over the limit.
    TooLarge,
    /// The connection sends faster than its token bucket allows.
    RateLimited,
    /// A `say` before the `hello`.
    NotHello,
    /// A missing or wrong hello token, or a dialogue of another user (the connection closes).
    Unauthorized,
    /// The gateway holds as many connections or dialogues as it may (the connection closes).
    ServerBusy,
    /// The broker did not accept the say, or the gateway is draining; retry later.
    Unavailable,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotHello => "not_hello",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// A frame to the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The hello was accepted; the dialogue id to keep for a resume.
    Welcome {
        /// The dialogue (new or resumed).
        dialogue_id: String,
        /// Signed by the gateway, bound to the dialogue and its user, expiring: the next `hello`
        /// that resumes the dialogue must carry it, on any gateway instance.
        resume_token: String,
    },
    /// The bot's answer to a say.
    Answer {
        /// The dialogue.
        dialogue_id: String,
        /// The `client_msg_id` of the say answered.
        in_reply_to: String,
        /// The answer text.
        text: String,
        /// The intent the answer is for.
        intent: String,
        /// Calibrated confidence of that intent.
        confidence: f32,
        /// The `AnswerGenerated` event's id (clients may deduplicate on it).
        event_id: String,
    },
    /// A human takes over (or no answer came in time: reason `timeout`).
    Handoff {
        /// The dialogue.
        dialogue_id: String,
        /// The `client_msg_id` of the say concerned.
        in_reply_to: String,
        /// Why (`low_confidence`, `user_asked`, `repeatedly_unresolved`, `processing_failed`,
        /// `timeout`).
        reason: String,
    },
    /// A human agent has the dialogue: the say went to the agent, no bot answer follows (the
    /// reply to a say while the dialogue waits for or is with an agent).
    Queued {
        /// The dialogue.
        dialogue_id: String,
        /// The `client_msg_id` of the say concerned.
        in_reply_to: String,
    },
    /// A human agent took the dialogue over.
    AgentJoined {
        /// The dialogue.
        dialogue_id: String,
        /// The agent's display name.
        agent: String,
    },
    /// The agent's message (PII-masked like every stored text).
    AgentSaid {
        /// The dialogue.
        dialogue_id: String,
        /// What the agent wrote.
        text: String,
        /// The `agent_said` event's id (clients may deduplicate on it).
        event_id: String,
    },
    /// The bot has the dialogue again (the agent returned or closed it, or nobody claimed it in
    /// time).
    BotBack {
        /// The dialogue.
        dialogue_id: String,
    },
    /// Something the client sent was refused.
    Error {
        /// What kind of refusal.
        code: ErrorCode,
        /// A short human-readable explanation.
        message: String,
    },
    /// This gateway is draining: reconnect (and resume) after this many milliseconds.
    Reconnect {
        /// The delay hint.
        after_ms: u64,
    },
}

impl ServerFrame {
    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error { code, message: message.into() }
    }

    /// The JSON text of this frame.
    pub fn to_json(&self) -> String {
        // Plain data with string keys and finite numbers cannot fail to serialise; keep a
        // fallback anyway so that nothing on this path can panic.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"bad_frame","message":"internal encoding error"}"#.to_string()
        })
    }

    /// The `type` of this frame, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Welcome { .. } => "welcome",
            ServerFrame::Queued { .. } => "queued",
            ServerFrame::AgentJoined { .. } => "agent_joined",
            ServerFrame::AgentSaid { .. } => "agent_said",
            ServerFrame::BotBack { .. } => "bot_back",
            ServerFrame::Answer { .. } => "answer",
            ServerFrame::Handoff { .. } => "handoff",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Reconnect { .. } => "reconnect",
        }
    }
}

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct FrameError {
    /// The error code sent back.
    pub code: ErrorCode,
    /// The message sent back (never contains the user's text).
    pub message: String,
}

impl FrameError {
    fn bad(message: impl Into<String>) -> Self {
        FrameError { code: ErrorCode::BadFrame, message: message.into() }
    }

    /// The error frame for this refusal.
    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::error(self.code, self.message.clone())
    }
}

/// Parses a text frame. `max_text_chars` bounds the `say` text.
pub fn parse_client_frame(text: &str, max_text_chars: usize) -> Result<ClientFrame, FrameError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| FrameError::bad(format!("invalid JSON at line {} column {}", e.line(), e.column())))?;
    let object = value.as_object().ok_or_else(|| FrameError::bad("a frame must be a JSON object"))?;
    let kind = match object.get("type") {
        None => return Err(FrameError::bad("missing field `type`")),
        Some(serde_json::Value::String(s)) => s.as_str(),
        Some(_) => return Err(FrameError::bad("field `type` must be a string")),
    };
    match kind {
        "hello" => {
            let dialogue_id = optional_string(object, "dialogue_id")?;
            if let Some(d) = &dialogue_id {
                check_id("dialogue_id", d)?;
            }
            let user_id = required_string(object, "user_id")?;
            check_id("user_id", &user_id)?;
            let locale = match optional_string(object, "locale")? {
                None => Locale::ZhCn,
                Some(l) => {
                    parse_locale(&l).ok_or_else(|| FrameError::bad("field `locale` must be \"zh-CN\" or \"en\""))?
                }
            };
            let token = optional_string(object, "token")?;
            let resume_token = optional_string(object, "resume_token")?;
            let id_token = optional_string(object, "id_token")?;
            for (field, value) in [("resume_token", &resume_token), ("id_token", &id_token)] {
                if value.as_ref().is_some_and(|v| v.len() > MAX_TOKEN_BYTES) {
                    return Err(FrameError::bad(format!("field `{field}` is longer than {MAX_TOKEN_BYTES} bytes")));
                }
            }
            Ok(ClientFrame::Hello(Hello { dialogue_id, user_id, locale, token, resume_token, id_token }))
        }
        "say" => {
            let client_msg_id = required_string(object, "client_msg_id")?;
            check_id("client_msg_id", &client_msg_id)?;
            let text = required_string(object, "text")?;
            let chars = text.chars().count();
            if chars > max_text_chars {
                return Err(FrameError {
                    code: ErrorCode::TooLarge,
                    message: format!("text is {chars} characters, more than the limit of {max_text_chars}"),
                });
            }
            if text.trim().is_empty() {
                return Err(FrameError::bad("field `text` must not be empty"));
            }
            Ok(ClientFrame::Say(Say { client_msg_id, text }))
        }
        _ => Err(FrameError::bad("unknown frame type (expected \"hello\" or \"say\")")),
    }
}

fn parse_locale(l: &str) -> Option<Locale> {
    match l.to_ascii_lowercase().as_str() {
        "zh-cn" | "zh" | "zh-hans" | "zh-hans-cn" => Some(Locale::ZhCn),
        "en" | "en-us" | "en-gb" => Some(Locale::En),
        _ => None,
    }
}

fn required_string(object: &serde_json::Map<String, serde_json::Value>, field: &str) -> Result<String, FrameError> {
    optional_string(object, field)?.ok_or_else(|| FrameError::bad(format!("missing field `{field}`")))
}

fn optional_string(
    object: &serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Result<Option<String>, FrameError> {
    match object.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FrameError::bad(format!("field `{field}` must be a string"))),
    }
}

fn check_id(field: &str, value: &str) -> Result<(), FrameError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS || value.chars().any(char::is_control) {
        return Err(FrameError::bad(format!(
            "field `{field}` must have 1 to {MAX_ID_CHARS} characters and no control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        parse_client_frame(text, 2000).unwrap_err().code
    }

    #[test]
    fn parses_hello_and_say() {
        let hello = parse_client_frame(r#"{"type":"hello","user_id":"u1","locale":"en"}"#, 2000).unwrap();
        assert_eq!(
            hello,
            ClientFrame::Hello(Hello { dialogue_id: None, user_id: "u1".into(), locale: Locale::En, token: None, resume_token: None, id_token: None })
        );
        let hello =
            parse_client_frame(r#"{"type":"hello","user_id":"u1","dialogue_id":"d1","token":"ab"}"#, 2000).unwrap();
        assert!(matches!(hello, ClientFrame::Hello(Hello { dialogue_id: Some(_), locale: Locale::ZhCn, .. })));
        let say =
            parse_client_frame(r#"{"type":"say","client_msg_id":"m1","text":"我要退货","extra":1}"#, 2000).unwrap();
        assert_eq!(say, ClientFrame::Say(Say { client_msg_id: "m1".into(), text: "我要退货".into() }));
    }

    #[test]
    fn refusals_have_the_right_codes() {
        assert_eq!(code("{nope"), ErrorCode::BadFrame);
        assert_eq!(code("[1,2]"), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"text":"x"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"shout"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"say","text":"x"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"say","client_msg_id":"m","text":5}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"say","client_msg_id":"m","text":"  "}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"say","client_msg_id":"","text":"x"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"hello"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"hello","user_id":"u","locale":"fr"}"#), ErrorCode::BadFrame);
        let long = format!(r#"{{"type":"say","client_msg_id":"m","text":"{}"}}"#, "好".repeat(2001));
        assert_eq!(code(&long), ErrorCode::TooLarge);
        let ok = format!(r#"{{"type":"say","client_msg_id":"m","text":"{}"}}"#, "好".repeat(2000));
        assert!(parse_client_frame(&ok, 2000).is_ok());
    }

    #[test]
    fn refusal_messages_never_quote_the_text() {
        let err = parse_client_frame(r#"{"type":"say","client_msg_id":"m","text":"secret-phone-13800138000","#, 2000)
            .unwrap_err();
        assert!(!err.message.contains("13800138000"), "{}", err.message);
    }

    #[test]
    fn server_frames_match_the_contract() {
        let answer = ServerFrame::Answer {
            dialogue_id: "d".into(),
            in_reply_to: "m".into(),
            text: "好的".into(),
            intent: "refund".into(),
            confidence: 0.93,
            event_id: "e".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&answer.to_json()).unwrap();
        assert_eq!(v["type"], "answer");
        assert_eq!(v["in_reply_to"], "m");
        assert_eq!(answer.to_json().matches("0.93").count(), 1, "{}", answer.to_json());
        let err: serde_json::Value =
            serde_json::from_str(&ServerFrame::error(ErrorCode::RateLimited, "slow down").to_json()).unwrap();
        assert_eq!(err, serde_json::json!({"type":"error","code":"rate_limited","message":"slow down"}));
        let r: serde_json::Value = serde_json::from_str(&ServerFrame::Reconnect { after_ms: 500 }.to_json()).unwrap();
        assert_eq!(r, serde_json::json!({"type":"reconnect","after_ms":500}));
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::TooLarge,
            ErrorCode::RateLimited,
            ErrorCode::NotHello,
            ErrorCode::Unauthorized,
            ErrorCode::ServerBusy,
            ErrorCode::Unavailable,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
