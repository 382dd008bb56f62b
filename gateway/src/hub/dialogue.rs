//! The per-dialogue state of the routing table: what happened to each say, the attached
//! connection and the frames kept for a resume, plus the answers the hub gives its callers.

use crate::protocol::ServerFrame;
use lru::LruCache;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use switchboard_schemas::{Event, EventId, Locale};
use tokio::sync::mpsc;

/// Identifies one WebSocket connection within this process.
pub(crate) type ConnId = u64;
/// Where frames for a connection go.
pub(crate) type Outbox = mpsc::UnboundedSender<ServerFrame>;

/// Client message ids remembered per dialogue (for deduplication and single answers).
pub(super) const MSGS_PER_DIALOGUE: usize = 256;
/// Says of one dialogue that may wait for an answer at the same time.
pub(super) const MAX_PENDING_PER_DIALOGUE: usize = 64;
/// Frames kept for a disconnected dialogue until it resumes.
pub(super) const MAX_BACKLOG: usize = 128;
/// Answer event ids remembered for deduplication.
pub(super) const SEEN_EVENTS: usize = 100_000;

/// What happened to a say.
pub(super) enum Msg {
    /// Sent to the broker, no acknowledgement yet.
    Producing,
    /// Acknowledged by the broker (the say is accepted), waiting for an answer.
    Accepted {
        /// The `UserSaid` event's id.
        user_said: EventId,
        /// When the broker acknowledged it (ms since the epoch).
        accepted_at: i64,
    },
    /// Answered (answer, handoff or timeout); `frame` is the reply.
    Resolved { frame: ServerFrame, delivered_to: Option<ConnId>, at: Instant },
}

impl Msg {
    pub(super) fn is_pending(&self) -> bool {
        !matches!(self, Msg::Resolved { .. })
    }
}

pub(super) struct Attached {
    pub(super) id: ConnId,
    pub(super) tx: Outbox,
}

pub(super) struct Dialogue {
    pub(super) user_id: String,
    /// The client address that opened it (for the per-address dialogue cap).
    pub(super) origin: std::net::IpAddr,
    pub(super) locale: Locale,
    pub(super) conn: Option<Attached>,
    pub(super) msgs: LruCache<String, Msg>,
    /// Frames produced while no connection was attached, with the client message they answer.
    pub(super) backlog: VecDeque<(Option<String>, ServerFrame)>,
    pub(super) last_active: Instant,
}

impl Dialogue {
    pub(super) fn pending(&self) -> usize {
        self.msgs.iter().filter(|(_, m)| m.is_pending()).count()
    }

    /// Makes room for one more message entry without ever forgetting a pending say.
    pub(super) fn make_room(&mut self) {
        while self.msgs.len() >= MSGS_PER_DIALOGUE {
            let oldest_resolved = self.msgs.iter().rev().find(|(_, m)| !m.is_pending()).map(|(k, _)| k.clone());
            match oldest_resolved {
                Some(k) => {
                    self.msgs.pop(&k);
                }
                None => break,
            }
        }
    }
}

/// Why a hello could not attach to a dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttachError {
    /// The dialogue belongs to another user.
    WrongUser,
    /// The instance holds as many dialogues as it may.
    Busy,
    /// The client's address holds as many dialogues as one address may.
    AddressBusy,
}

/// A successful hello.
#[derive(Debug)]
pub(crate) struct Attachment {
    /// The dialogue, new or resumed.
    pub dialogue_id: String,
    /// Frames that arrived while the dialogue had no connection, to send after the welcome.
    pub backlog: Vec<ServerFrame>,
}

/// A say that was accepted and got no answer before a drain ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unanswered {
    /// The client's message id.
    pub(crate) client_msg_id: String,
    /// The `UserSaid` event's id.
    pub(crate) user_said: EventId,
    /// When the broker acknowledged it (ms since the epoch).
    pub(crate) accepted_at: i64,
}

/// What to do with a say.
#[derive(Debug)]
pub(crate) enum SayDecision {
    /// New: produce this `UserSaid` event.
    Produce(Box<Event>),
    /// A retry of a say that is pending or was already answered on this connection.
    Absorbed,
    /// A retry of a say answered earlier: the stored reply was sent again.
    Replayed,
    /// Too many says of this dialogue are waiting for an answer.
    TooManyPending,
    /// Too many says of this instance are waiting for an answer (admission control).
    Overloaded,
    /// The dialogue is not held (the connection was superseded).
    NotHeld,
}

pub(super) struct State {
    pub(super) dialogues: HashMap<String, Dialogue>,
    /// How many of `dialogues` each client address opened.
    pub(super) per_origin: HashMap<std::net::IpAddr, usize>,
    pub(super) seen_events: LruCache<EventId, ()>,
    /// Says of all dialogues producing or accepted (not yet resolved).
    pub(super) pending_total: usize,
}

pub(super) fn timeout_frame(dialogue_id: &str, client_msg_id: &str) -> ServerFrame {
    ServerFrame::Handoff {
        dialogue_id: dialogue_id.to_string(),
        in_reply_to: client_msg_id.to_string(),
        reason: "timeout".to_string(),
    }
}

pub(super) fn static_reason(reason: &str) -> &'static str {
    match reason {
        "low_confidence" => "low_confidence",
        "user_asked" => "user_asked",
        "repeatedly_unresolved" => "repeatedly_unresolved",
        "processing_failed" => "processing_failed",
        "timeout" => "timeout",
        _ => "other",
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
