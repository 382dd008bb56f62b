//! One agent WebSocket (`/agent/ws`, agent role and up, behind the admin guard).
//!
//! Agent → server (JSON text frames): `claim`, `say`, `return`, `close` (CONTRACT.md) and
//! `watch` (`{"type":"watch","dialogue_id":…}`: send me its transcript). Each action becomes an
//! event on `user.said` (key = dialogue id), so it is durable, replayable and decided by the
//! session operator like a user turn; the decision comes back on `bot.said` and reaches every
//! agent (`claimed`, `released`, `queue`, `user_said`, `agent_said`) or the acting agent only
//! (`error` with `already_claimed`, `not_owner` or `not_waiting`).
//!
//! Server → agent: `queue` (on connect and on every change: `waiting` with reason, locale,
//! waiting time, last intent and slots; `with_agents`), `claimed`, `released`, `user_said`
//! (masked), `agent_said`, `transcript`, `error`.

use crate::admin::Identity;
use crate::protocol::{ErrorCode, MAX_ID_CHARS};
use crate::rate::TokenBucket;
use crate::state::Shared;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use switchboard_schemas::ownership::{AgentClaim, AgentClose, AgentMessage, AgentReturn};
use switchboard_schemas::{Event, EventBody};
use tokio::sync::mpsc;

/// Largest agent frame.
const MAX_FRAME_BYTES: usize = 32 * 1024;
/// A write that takes longer than this means the page is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /agent/ws`.
pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Extension(identity): Extension<Identity>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| run(socket, shared, identity))
}

async fn run(mut socket: WebSocket, shared: Arc<Shared>, identity: Identity) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.desk.join(id, &identity.user, tx.clone());
    super::AgentSide { desk: shared.desk.clone(), history: shared.history.clone() }.enrich_waiting();
    tracing::info!(agent = %identity.user, conn = id, "agent connected");
    let mut bucket = TokenBucket::new(10.0, 30, std::time::Instant::now());
    let mut drain = shared.drain.subscribe();
    let _ = tx.send(shared.desk.queue());
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(text) = out else { break };
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await, Ok(Ok(()))) {
                    break;
                }
            }
            inbound = socket.recv() => match inbound {
                Some(Ok(Message::Text(text))) => {
                    if !bucket.try_take(std::time::Instant::now()) {
                        let _ = tx.send(error(ErrorCode::RateLimited.as_str(), "too many frames; slow down", None));
                        continue;
                    }
                    on_text(&shared, &identity, text.as_str(), &tx).await;
                }
                Some(Ok(Message::Binary(_))) => {
                    let _ = tx.send(error("bad_frame", "binary frames are not supported; send JSON text", None));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            changed = drain.changed() => {
                if changed.is_err() || *drain.borrow() {
                    break;
                }
            }
        }
    }
    shared.desk.leave(id);
    tracing::info!(agent = %identity.user, conn = id, "agent disconnected");
}

fn error(code: &str, message: &str, dialogue_id: Option<&str>) -> String {
    serde_json::json!({"type": "error", "code": code, "message": message, "dialogue_id": dialogue_id}).to_string()
}

/// A parsed agent frame.
#[derive(Debug, PartialEq)]
pub(crate) enum AgentFrame {
    /// Take the dialogue.
    Claim(String),
    /// Write to the user: dialogue, client message id, text.
    Say(String, String, String),
    /// Give it back to the bot.
    Return(String),
    /// End it.
    Close(String),
    /// Send its transcript.
    Watch(String),
}

/// Parses an agent frame; the error is the message of a `bad_frame` error.
pub(crate) fn parse(text: &str, max_text_chars: usize) -> Result<AgentFrame, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let field = |name: &str| -> Result<String, String> {
        match value.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            _ => Err(format!("missing or non-string field `{name}`")),
        }
    };
    let id = |name: &str| -> Result<String, String> {
        let v = field(name)?;
        let n = v.chars().count();
        if n == 0 || n > MAX_ID_CHARS || v.chars().any(char::is_control) {
            return Err(format!("field `{name}` must have 1 to {MAX_ID_CHARS} characters and no control characters"));
        }
        Ok(v)
    };
    match value.get("type").and_then(|t| t.as_str()) {
        Some("claim") => Ok(AgentFrame::Claim(id("dialogue_id")?)),
        Some("return") => Ok(AgentFrame::Return(id("dialogue_id")?)),
        Some("close") => Ok(AgentFrame::Close(id("dialogue_id")?)),
        Some("watch") => Ok(AgentFrame::Watch(id("dialogue_id")?)),
        Some("say") => {
            let text = field("text")?;
            let chars = text.chars().count();
            if text.trim().is_empty() || chars > max_text_chars {
                return Err(format!("field `text` must have 1 to {max_text_chars} characters"));
            }
            Ok(AgentFrame::Say(id("dialogue_id")?, id("client_msg_id")?, text))
        }
        _ => Err("unknown frame type (expected claim, say, return, close or watch)".into()),
    }
}

async fn on_text(shared: &Arc<Shared>, identity: &Identity, text: &str, tx: &mpsc::UnboundedSender<String>) {
    let frame = match parse(text, shared.config.limits.max_text_chars) {
        Ok(frame) => frame,
        Err(message) => {
            let _ = tx.send(error("bad_frame", &message, None));
            return;
        }
    };
    let agent = identity.user.clone();
    let (dialogue_id, body) = match frame {
        AgentFrame::Watch(dialogue_id) => {
            let _ = tx.send(transcript(shared, &dialogue_id).await);
            return;
        }
        AgentFrame::Claim(d) => (d, EventBody::AgentClaim(AgentClaim { agent })),
        AgentFrame::Return(d) => (d, EventBody::AgentReturn(AgentReturn { agent })),
        AgentFrame::Close(d) => (d, EventBody::AgentClose(AgentClose { agent })),
        AgentFrame::Say(d, client_msg_id, text) => (d, EventBody::AgentMessage(AgentMessage { agent, client_msg_id, text })),
    };
    let event = Event::new(&dialogue_id, crate::hub::now_ms(), body);
    tracing::info!(agent = %identity.user, dialogue_id = %dialogue_id, kind = event.kind().as_str(), "agent action");
    if let Err(e) = shared.publisher.publish(&event, &shared.metrics).await {
        tracing::warn!(dialogue_id = %dialogue_id, error = %e, "agent action not accepted by the broker");
        let _ = tx.send(error(ErrorCode::Unavailable.as_str(), "the broker did not accept the action; retry", Some(&dialogue_id)));
    }
}

async fn transcript(shared: &Arc<Shared>, dialogue_id: &str) -> String {
    let Some(history) = &shared.history else {
        return error("unavailable", "no ClickHouse is configured for transcripts", Some(dialogue_id));
    };
    transcript_frame(history, dialogue_id).await
}

/// The `transcript` frame of `dialogue_id`, or an `error` frame when it cannot be read.
pub(crate) async fn transcript_frame(history: &super::History, dialogue_id: &str) -> String {
    match history.transcript(dialogue_id).await {
        Ok(events) => serde_json::json!({"type": "transcript", "dialogue_id": dialogue_id, "events": events}).to_string(),
        Err(e) => {
            tracing::warn!(dialogue_id, error = %e, "transcript read failed");
            error("unavailable", "the transcript cannot be read now; retry", Some(dialogue_id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_frames_parse_strictly() {
        assert_eq!(parse(r#"{"type":"claim","dialogue_id":"d1"}"#, 100), Ok(AgentFrame::Claim("d1".into())));
        assert_eq!(
            parse(r#"{"type":"say","dialogue_id":"d1","client_msg_id":"a1","text":"您好"}"#, 100),
            Ok(AgentFrame::Say("d1".into(), "a1".into(), "您好".into()))
        );
        assert!(parse(r#"{"type":"say","dialogue_id":"d1","client_msg_id":"a1","text":" "}"#, 100).is_err());
        assert!(parse(r#"{"type":"say","dialogue_id":"d1","client_msg_id":"a1","text":"xxxx"}"#, 3).is_err());
        assert!(parse(r#"{"type":"claim"}"#, 100).is_err());
        assert!(parse(r#"{"type":"claim","dialogue_id":7}"#, 100).is_err());
        assert!(parse(r#"{"type":"steal","dialogue_id":"d1"}"#, 100).is_err());
        assert!(parse("not json", 100).is_err());
    }
}
