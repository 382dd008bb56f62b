//! The routing table: which dialogues this instance holds, the connection each is attached to,
//! and the says waiting for an answer.
//!
//! State is kept per dialogue, not per connection, so that a say made on one connection is
//! answered on the next one after a reconnect. Every say ends in exactly one reply frame:
//!
//! ```text
//!  say ──► Producing ──ack──► Accepted ──answer/handoff event──► Resolved(frame)
//!              │                  └──────answer_timeout──────────► Resolved(handoff "timeout")
//!              └─produce failed──► removed, error "unavailable" sent
//! ```
//!
//! A `Resolved` entry stays for the resume window: a second answer for the same client message
//! is dropped, and a retried say is not produced again. A retry on the connection that already
//! got the reply is absorbed; a retry on a later connection gets the stored reply again (the
//! earlier connection may have died before writing it).

use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ServerFrame};
use lru::LruCache;
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use switchboard_schemas::{Event, EventBody, EventId, Locale, UserSaid};
use tokio::sync::mpsc;

/// Identifies one WebSocket connection within this process.
pub(crate) type ConnId = u64;
/// Where frames for a connection go.
pub(crate) type Outbox = mpsc::UnboundedSender<ServerFrame>;

/// Client message ids remembered per dialogue (for deduplication and single answers).
const MSGS_PER_DIALOGUE: usize = 256;
/// Says of one dialogue that may wait for an answer at the same time.
const MAX_PENDING_PER_DIALOGUE: usize = 64;
/// Frames kept for a disconnected dialogue until it resumes.
const MAX_BACKLOG: usize = 128;
/// Answer event ids remembered for deduplication.
const SEEN_EVENTS: usize = 100_000;

/// What happened to a say.
enum Msg {
    /// Sent to the broker, no acknowledgement yet.
    Producing,
    /// Acknowledged by the broker (the say is accepted), waiting for an answer.
    Accepted { user_said: EventId },
    /// Answered (answer, handoff or timeout); `frame` is the reply.
    Resolved { frame: ServerFrame, delivered_to: Option<ConnId>, at: Instant },
}

impl Msg {
    fn is_pending(&self) -> bool {
        !matches!(self, Msg::Resolved { .. })
    }
}

struct Attached {
    id: ConnId,
    tx: Outbox,
}

struct Dialogue {
    user_id: String,
    locale: Locale,
    conn: Option<Attached>,
    msgs: LruCache<String, Msg>,
    /// Frames produced while no connection was attached, with the client message they answer.
    backlog: VecDeque<(Option<String>, ServerFrame)>,
    last_active: Instant,
}

impl Dialogue {
    fn pending(&self) -> usize {
        self.msgs.iter().filter(|(_, m)| m.is_pending()).count()
    }

    /// Makes room for one more message entry without ever forgetting a pending say.
    fn make_room(&mut self) {
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
}

/// A successful hello.
#[derive(Debug)]
pub(crate) struct Attachment {
    /// The dialogue, new or resumed.
    pub dialogue_id: String,
    /// Frames that arrived while the dialogue had no connection, to send after the welcome.
    pub backlog: Vec<ServerFrame>,
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
    /// The dialogue is not held (the connection was superseded).
    NotHeld,
}

struct State {
    dialogues: HashMap<String, Dialogue>,
    seen_events: LruCache<EventId, ()>,
}

/// The routing table shared by connections, the bot.said consumer and the timers.
pub(crate) struct Hub {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    resume_window: Duration,
    max_dialogues: usize,
}

impl Hub {
    pub(crate) fn new(metrics: Arc<Metrics>, resume_window: Duration, max_dialogues: usize) -> Self {
        Hub {
            state: Mutex::new(State {
                dialogues: HashMap::new(),
                seen_events: LruCache::new(NonZeroUsize::new(SEEN_EVENTS).unwrap_or(NonZeroUsize::MIN)),
            }),
            metrics,
            resume_window,
            max_dialogues,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the table half-updated in a way that
        // matters more than losing the process, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Attaches a connection to a dialogue: `requested` to resume one, `None` for a new one.
    /// A connection already attached to the dialogue is superseded (its outbox closes).
    pub(crate) fn attach(
        &self,
        requested: Option<&str>,
        user_id: &str,
        locale: Locale,
        conn: ConnId,
        tx: Outbox,
    ) -> Result<Attachment, AttachError> {
        let now = Instant::now();
        let mut state = self.lock();
        let dialogue_id = match requested {
            Some(id) => id.to_string(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        if let Some(d) = state.dialogues.get(&dialogue_id) {
            if d.user_id != user_id {
                return Err(AttachError::WrongUser);
            }
        } else {
            if state.dialogues.len() >= self.max_dialogues {
                return Err(AttachError::Busy);
            }
            state.dialogues.insert(
                dialogue_id.clone(),
                Dialogue {
                    user_id: user_id.to_string(),
                    locale,
                    conn: None,
                    msgs: LruCache::unbounded(),
                    backlog: VecDeque::new(),
                    last_active: now,
                },
            );
            self.metrics.dialogues.set(state.dialogues.len() as i64);
        }
        let Some(d) = state.dialogues.get_mut(&dialogue_id) else {
            return Err(AttachError::Busy);
        };
        if let Some(old) = d.conn.replace(Attached { id: conn, tx }) {
            tracing::info!(dialogue_id = %dialogue_id, old_conn = old.id, conn, "connection superseded");
        }
        d.locale = locale;
        d.last_active = now;
        let mut backlog = Vec::with_capacity(d.backlog.len());
        while let Some((msg_id, frame)) = d.backlog.pop_front() {
            if let Some(Msg::Resolved { delivered_to, .. }) = msg_id.as_ref().and_then(|m| d.msgs.peek_mut(m)) {
                *delivered_to = Some(conn);
            }
            self.count_delivered(&frame);
            backlog.push(frame);
        }
        Ok(Attachment { dialogue_id, backlog })
    }

    /// Detaches a connection from its dialogue (no-op if another connection took over).
    pub(crate) fn detach(&self, dialogue_id: &str, conn: ConnId) {
        let mut state = self.lock();
        if let Some(d) = state.dialogues.get_mut(dialogue_id) {
            if d.conn.as_ref().is_some_and(|a| a.id == conn) {
                d.conn = None;
                d.last_active = Instant::now();
            }
        }
    }

    /// Decides what to do with a say; for a new one, records it as pending and returns the
    /// `UserSaid` event to produce.
    pub(crate) fn begin_say(&self, dialogue_id: &str, conn: ConnId, client_msg_id: &str, text: &str) -> SayDecision {
        let now = Instant::now();
        let window = self.resume_window;
        let mut state = self.lock();
        let Some(d) = state.dialogues.get_mut(dialogue_id) else { return SayDecision::NotHeld };
        if d.conn.as_ref().is_none_or(|a| a.id != conn) {
            return SayDecision::NotHeld;
        }
        d.last_active = now;
        let mut replay = None;
        match d.msgs.get_mut(client_msg_id) {
            Some(Msg::Producing | Msg::Accepted { .. }) => return SayDecision::Absorbed,
            Some(Msg::Resolved { at, .. }) if now.saturating_duration_since(*at) > window => {
                d.msgs.pop(client_msg_id);
            }
            Some(Msg::Resolved { frame, delivered_to, .. }) => {
                if *delivered_to == Some(conn) {
                    return SayDecision::Absorbed;
                }
                *delivered_to = Some(conn);
                replay = Some(frame.clone());
            }
            None => {}
        }
        if let Some(frame) = replay {
            if let Some(a) = &d.conn {
                if a.tx.send(frame).is_err() {
                    // The connection is going away; the client will retry again.
                    tracing::debug!(dialogue_id, conn, "replay to a closing connection");
                }
            }
            return SayDecision::Replayed;
        }
        if d.pending() >= MAX_PENDING_PER_DIALOGUE {
            return SayDecision::TooManyPending;
        }
        d.make_room();
        d.msgs.put(client_msg_id.to_string(), Msg::Producing);
        let event = Event::new(
            dialogue_id,
            now_ms(),
            EventBody::UserSaid(UserSaid {
                client_msg_id: client_msg_id.to_string(),
                user_id: d.user_id.clone(),
                locale: d.locale,
                text: text.to_string(),
            }),
        );
        SayDecision::Produce(Box::new(event))
    }

    /// Records the broker's verdict on a produced say. Returns `true` when the say is now
    /// accepted and waiting, i.e. when the caller must start the answer timer.
    pub(crate) fn produced(&self, dialogue_id: &str, client_msg_id: &str, outcome: Result<EventId, ()>) -> bool {
        let mut state = self.lock();
        let Some(d) = state.dialogues.get_mut(dialogue_id) else { return false };
        match (d.msgs.peek(client_msg_id), outcome) {
            (Some(Msg::Producing), Ok(user_said)) => {
                d.msgs.put(client_msg_id.to_string(), Msg::Accepted { user_said });
                true
            }
            (Some(Msg::Producing), Err(())) => {
                d.msgs.pop(client_msg_id);
                let frame = ServerFrame::error(
                    ErrorCode::Unavailable,
                    "the message could not be handed to the broker; retry later",
                );
                self.metrics.rejected(ErrorCode::Unavailable);
                self.deliver(d, None, frame);
                false
            }
            // Answered (or timed out by a drain) before the acknowledgement came: nothing to do.
            _ => false,
        }
    }

    /// Fires the answer timeout of one accepted say: a `handoff` with reason `timeout`, unless
    /// an answer came first.
    pub(crate) fn expire(&self, dialogue_id: &str, client_msg_id: &str, user_said: EventId) {
        let mut state = self.lock();
        let Some(d) = state.dialogues.get_mut(dialogue_id) else { return };
        if matches!(d.msgs.peek(client_msg_id), Some(Msg::Accepted { user_said: u }) if *u == user_said) {
            tracing::info!(dialogue_id, client_msg_id, "no answer in time; handing off");
            self.metrics.answer_timeouts.inc();
            self.resolve(d, client_msg_id, timeout_frame(dialogue_id, client_msg_id));
        }
    }

    /// Answers every pending say of a dialogue with a `timeout` handoff (end of a drain).
    pub(crate) fn expire_all(&self, dialogue_id: &str) {
        let mut state = self.lock();
        let Some(d) = state.dialogues.get_mut(dialogue_id) else { return };
        let pending: Vec<String> = d.msgs.iter().filter(|(_, m)| m.is_pending()).map(|(k, _)| k.clone()).collect();
        for msg_id in pending {
            tracing::info!(dialogue_id, client_msg_id = %msg_id, "drain deadline; handing off");
            self.metrics.answer_timeouts.inc();
            self.resolve(d, &msg_id, timeout_frame(dialogue_id, &msg_id));
        }
    }

    /// Says of a dialogue still waiting for their reply.
    pub(crate) fn pending(&self, dialogue_id: &str) -> usize {
        self.lock().dialogues.get(dialogue_id).map_or(0, Dialogue::pending)
    }

    /// Routes one bot.said event to the dialogue's connection. Returns the outcome label.
    pub(crate) fn route(&self, event: &Event) -> &'static str {
        let (client_msg_id, frame) = match &event.body {
            EventBody::AnswerGenerated(a) => (
                &a.client_msg_id,
                ServerFrame::Answer {
                    dialogue_id: event.dialogue_id.clone(),
                    in_reply_to: a.client_msg_id.clone(),
                    text: a.text.clone(),
                    intent: a.intent.clone(),
                    confidence: if a.confidence.is_finite() { a.confidence } else { 0.0 },
                    event_id: event.event_id.to_string(),
                },
            ),
            EventBody::HandoffRequested(h) => (
                &h.client_msg_id,
                ServerFrame::Handoff {
                    dialogue_id: event.dialogue_id.clone(),
                    in_reply_to: h.client_msg_id.clone(),
                    reason: h.reason.as_str().to_string(),
                },
            ),
            _ => return "ignored_kind",
        };
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(d) = state.dialogues.get_mut(&event.dialogue_id) else { return "not_held" };
        if state.seen_events.put(event.event_id, ()).is_some() {
            return "duplicate_event";
        }
        if let Some(Msg::Resolved { .. }) = d.msgs.peek(client_msg_id) {
            tracing::info!(
                dialogue_id = %event.dialogue_id,
                client_msg_id = %client_msg_id,
                event_id = %event.event_id,
                "second reply for a message dropped"
            );
            return "already_answered";
        }
        tracing::debug!(
            dialogue_id = %event.dialogue_id,
            client_msg_id = %client_msg_id,
            event_id = %event.event_id,
            kind = frame.kind(),
            "routing reply"
        );
        self.resolve(d, client_msg_id, frame);
        "routed"
    }

    /// Forgets disconnected dialogues idle for longer than the resume window, and expired
    /// message entries of the others.
    pub(crate) fn gc(&self) {
        let now = Instant::now();
        let window = self.resume_window;
        let mut state = self.lock();
        state.dialogues.retain(|_, d| {
            let expired: Vec<String> = d
                .msgs
                .iter()
                .filter(|(_, m)| matches!(m, Msg::Resolved { at, .. } if now.saturating_duration_since(*at) > window))
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                d.msgs.pop(&k);
            }
            d.conn.is_some() || d.pending() > 0 || now.saturating_duration_since(d.last_active) <= window
        });
        self.metrics.dialogues.set(state.dialogues.len() as i64);
    }

    fn resolve(&self, d: &mut Dialogue, client_msg_id: &str, frame: ServerFrame) {
        if d.msgs.peek(client_msg_id).is_none() {
            d.make_room();
        }
        d.msgs.put(
            client_msg_id.to_string(),
            Msg::Resolved { frame: frame.clone(), delivered_to: None, at: Instant::now() },
        );
        self.deliver(d, Some(client_msg_id.to_string()), frame);
    }

    /// Sends a frame to the dialogue's connection, or keeps it for the resume.
    fn deliver(&self, d: &mut Dialogue, client_msg_id: Option<String>, frame: ServerFrame) {
        if let Some(a) = &d.conn {
            let id = a.id;
            match a.tx.send(frame) {
                Ok(()) => {
                    // Errors are not stored (a retry may produce again), so only replies are marked.
                    if let Some(Msg::Resolved { frame, delivered_to, .. }) =
                        client_msg_id.as_ref().and_then(|m| d.msgs.peek_mut(m))
                    {
                        *delivered_to = Some(id);
                        self.count_delivered(frame);
                    }
                    return;
                }
                Err(mpsc::error::SendError(frame)) => {
                    d.conn = None;
                    d.last_active = Instant::now();
                    self.keep(d, client_msg_id, frame);
                    return;
                }
            }
        }
        self.keep(d, client_msg_id, frame);
    }

    fn keep(&self, d: &mut Dialogue, client_msg_id: Option<String>, frame: ServerFrame) {
        if d.backlog.len() >= MAX_BACKLOG {
            d.backlog.pop_front();
            tracing::warn!("backlog of a disconnected dialogue full; oldest frame dropped");
        }
        d.backlog.push_back((client_msg_id, frame));
    }

    fn count_delivered(&self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Answer { .. } => {
                self.metrics.answers_delivered.inc();
            }
            ServerFrame::Handoff { reason, .. } => self.metrics.handoff_delivered(static_reason(reason)),
            _ => {}
        }
    }
}

fn timeout_frame(dialogue_id: &str, client_msg_id: &str) -> ServerFrame {
    ServerFrame::Handoff {
        dialogue_id: dialogue_id.to_string(),
        in_reply_to: client_msg_id.to_string(),
        reason: "timeout".to_string(),
    }
}

fn static_reason(reason: &str) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_schemas::{AnswerGenerated, HandoffReason, HandoffRequested};

    fn hub() -> Hub {
        Hub::new(Arc::new(Metrics::new()), Duration::from_secs(600), 100)
    }

    fn answer(dialogue: &str, msg: &str, user_said: EventId) -> Event {
        Event::new(
            dialogue,
            now_ms(),
            EventBody::AnswerGenerated(AnswerGenerated {
                in_reply_to: user_said,
                client_msg_id: msg.into(),
                text: "好的".into(),
                intent: "refund".into(),
                confidence: 0.9,
                latency_ms: 5,
            }),
        )
    }

    fn said(decision: SayDecision) -> Event {
        match decision {
            SayDecision::Produce(e) => *e,
            other => panic!("expected Produce, got {other:?}"),
        }
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<ServerFrame>) -> Vec<ServerFrame> {
        let mut out = Vec::new();
        while let Ok(f) = rx.try_recv() {
            out.push(f);
        }
        out
    }

    #[test]
    fn say_answer_roundtrip_and_single_reply() {
        let h = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a = h.attach(None, "u", Locale::En, 1, tx).unwrap();
        let d = a.dialogue_id.clone();
        assert_eq!(uuid::Uuid::parse_str(&d).unwrap().get_version_num(), 7);
        let e = said(h.begin_say(&d, 1, "m1", "hello"));
        assert_eq!(e.dialogue_id, d);
        assert!(matches!(h.begin_say(&d, 1, "m1", "hello"), SayDecision::Absorbed));
        assert!(h.produced(&d, "m1", Ok(e.event_id)));
        assert_eq!(h.pending(&d), 1);
        let ans = answer(&d, "m1", e.event_id);
        assert_eq!(h.route(&ans), "routed");
        assert_eq!(h.route(&ans), "duplicate_event");
        assert_eq!(h.route(&answer(&d, "m1", e.event_id)), "already_answered");
        h.expire(&d, "m1", e.event_id);
        let frames = drain(&mut rx);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert!(matches!(&frames[0], ServerFrame::Answer { in_reply_to, .. } if in_reply_to == "m1"));
        assert_eq!(h.pending(&d), 0);
        // A retry on the same connection is absorbed.
        assert!(matches!(h.begin_say(&d, 1, "m1", "hello"), SayDecision::Absorbed));
        assert!(drain(&mut rx).is_empty());
        assert_eq!(h.route(&answer("other-dialogue", "m1", e.event_id)), "not_held");
    }

    #[test]
    fn timeout_then_late_answer_is_dropped() {
        let h = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let d = h.attach(None, "u", Locale::ZhCn, 1, tx).unwrap().dialogue_id;
        let e = said(h.begin_say(&d, 1, "m1", "x"));
        assert!(h.produced(&d, "m1", Ok(e.event_id)));
        h.expire(&d, "m1", e.event_id);
        assert_eq!(h.route(&answer(&d, "m1", e.event_id)), "already_answered");
        let frames = drain(&mut rx);
        assert_eq!(frames.len(), 1);
        assert!(matches!(&frames[0], ServerFrame::Handoff { reason, .. } if reason == "timeout"));
    }

    #[test]
    fn produce_failure_gives_unavailable_and_allows_retry() {
        let h = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let d = h.attach(None, "u", Locale::ZhCn, 1, tx).unwrap().dialogue_id;
        let _ = said(h.begin_say(&d, 1, "m1", "x"));
        assert!(!h.produced(&d, "m1", Err(())));
        let frames = drain(&mut rx);
        assert!(matches!(&frames[..], [ServerFrame::Error { code: ErrorCode::Unavailable, .. }]), "{frames:?}");
        let _ = said(h.begin_say(&d, 1, "m1", "x"));
    }

    #[test]
    fn answer_racing_the_ack_is_delivered_once_and_starts_no_timer() {
        let h = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let d = h.attach(None, "u", Locale::ZhCn, 1, tx).unwrap().dialogue_id;
        let e = said(h.begin_say(&d, 1, "m1", "x"));
        assert_eq!(h.route(&answer(&d, "m1", e.event_id)), "routed");
        assert!(!h.produced(&d, "m1", Ok(e.event_id)));
        assert_eq!(drain(&mut rx).len(), 1);
    }

    #[test]
    fn answers_wait_for_the_resume_and_retries_on_the_new_connection_are_replayed() {
        let h = hub();
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let d = h.attach(None, "u", Locale::ZhCn, 1, tx1).unwrap().dialogue_id;
        let e1 = said(h.begin_say(&d, 1, "m1", "x"));
        let e2 = said(h.begin_say(&d, 1, "m2", "y"));
        assert!(h.produced(&d, "m1", Ok(e1.event_id)));
        assert!(h.produced(&d, "m2", Ok(e2.event_id)));
        // m1 is answered while connection 1 is (as far as the hub knows) alive; then it drops.
        assert_eq!(h.route(&answer(&d, "m1", e1.event_id)), "routed");
        h.detach(&d, 1);
        drop(rx1.try_recv());
        // m2 is answered while disconnected.
        assert_eq!(h.route(&answer(&d, "m2", e2.event_id)), "routed");
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        assert_eq!(h.attach(Some(&d), "intruder", Locale::ZhCn, 2, tx2.clone()).unwrap_err(), AttachError::WrongUser);
        let a = h.attach(Some(&d), "u", Locale::ZhCn, 2, tx2).unwrap();
        assert_eq!(a.dialogue_id, d);
        assert!(matches!(&a.backlog[..], [ServerFrame::Answer { in_reply_to, .. }] if in_reply_to == "m2"));
        // The client re-sends both unanswered says: m1 is replayed, m2 was in the backlog.
        assert!(matches!(h.begin_say(&d, 2, "m1", "x"), SayDecision::Replayed));
        assert!(matches!(h.begin_say(&d, 2, "m2", "y"), SayDecision::Absorbed));
        let frames = drain(&mut rx2);
        assert!(matches!(&frames[..], [ServerFrame::Answer { in_reply_to, .. }] if in_reply_to == "m1"), "{frames:?}");
        // A says on the old connection are refused.
        assert!(matches!(h.begin_say(&d, 1, "m3", "z"), SayDecision::NotHeld));
    }

    #[test]
    fn takeover_closes_the_old_outbox() {
        let h = hub();
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let d = h.attach(None, "u", Locale::ZhCn, 1, tx1).unwrap().dialogue_id;
        let (tx2, _rx2) = mpsc::unbounded_channel();
        h.attach(Some(&d), "u", Locale::En, 2, tx2).unwrap();
        assert!(matches!(rx1.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)));
        h.detach(&d, 1);
        assert!(matches!(
            said(h.begin_say(&d, 2, "m", "x")).body,
            EventBody::UserSaid(UserSaid { locale: Locale::En, .. })
        ));
    }

    #[test]
    fn handoff_events_and_drain_expiry() {
        let h = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let d = h.attach(None, "u", Locale::ZhCn, 1, tx).unwrap().dialogue_id;
        let e1 = said(h.begin_say(&d, 1, "m1", "x"));
        let _e2 = said(h.begin_say(&d, 1, "m2", "y"));
        let handoff = Event::new(
            d.clone(),
            now_ms(),
            EventBody::HandoffRequested(HandoffRequested {
                in_reply_to: e1.event_id,
                client_msg_id: "m1".into(),
                reason: HandoffReason::UserAsked,
                detail: String::new(),
                latency_ms: 1,
            }),
        );
        assert_eq!(h.route(&handoff), "routed");
        h.expire_all(&d);
        assert_eq!(h.pending(&d), 0);
        let frames = drain(&mut rx);
        assert!(
            matches!(&frames[0], ServerFrame::Handoff { reason, in_reply_to, .. } if reason == "user_asked" && in_reply_to == "m1")
        );
        assert!(
            matches!(&frames[1], ServerFrame::Handoff { reason, in_reply_to, .. } if reason == "timeout" && in_reply_to == "m2")
        );
        assert_eq!(frames.len(), 2);
    }

    #[test]
    fn pending_says_are_bounded_and_never_evicted() {
        let h = hub();
        let (tx, _rx) = mpsc::unbounded_channel();
        let d = h.attach(None, "u", Locale::ZhCn, 1, tx).unwrap().dialogue_id;
        for i in 0..MAX_PENDING_PER_DIALOGUE {
            let _ = said(h.begin_say(&d, 1, &format!("m{i}"), "x"));
        }
        assert!(matches!(h.begin_say(&d, 1, "one-more", "x"), SayDecision::TooManyPending));
        assert_eq!(h.pending(&d), MAX_PENDING_PER_DIALOGUE);
    }

    #[test]
    fn gc_forgets_only_idle_disconnected_dialogues() {
        let h = Hub::new(Arc::new(Metrics::new()), Duration::ZERO, 100);
        let (tx, _rx) = mpsc::unbounded_channel();
        let held = h.attach(None, "u", Locale::ZhCn, 1, tx).unwrap().dialogue_id;
        let (tx, _rx2) = mpsc::unbounded_channel();
        let gone = h.attach(None, "u", Locale::ZhCn, 2, tx).unwrap().dialogue_id;
        h.detach(&gone, 2);
        std::thread::sleep(Duration::from_millis(2));
        h.gc();
        let state = h.lock();
        assert!(state.dialogues.contains_key(&held));
        assert!(!state.dialogues.contains_key(&gone));
    }

    #[test]
    fn dialogue_cap_refuses_new_dialogues() {
        let h = Hub::new(Arc::new(Metrics::new()), Duration::from_secs(60), 1);
        let (tx, _rx) = mpsc::unbounded_channel();
        h.attach(None, "u", Locale::ZhCn, 1, tx).unwrap();
        let (tx, _rx2) = mpsc::unbounded_channel();
        assert_eq!(h.attach(None, "u", Locale::ZhCn, 2, tx).unwrap_err(), AttachError::Busy);
    }
}
