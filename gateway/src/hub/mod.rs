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
//!
//! The types of that state live in `dialogue`; the unit tests in `tests`.

mod dialogue;
#[cfg(test)]
mod tests;

pub(crate) use dialogue::{now_ms, AttachError, Attachment, ConnId, Outbox, SayDecision, Unanswered};

use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ServerFrame};
use dialogue::{
    static_reason, timeout_frame, Attached, Dialogue, Msg, State, MAX_BACKLOG, MAX_PENDING_PER_DIALOGUE, SEEN_EVENTS,
};
use lru::LruCache;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use switchboard_schemas::ownership::Owner;
use switchboard_schemas::{Event, EventBody, EventId, Locale, UserSaid};
use tokio::sync::mpsc;

/// The routing table shared by connections, the bot.said consumer and the timers.
pub(crate) struct Hub {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    resume_window: Duration,
    max_dialogues: usize,
    max_dialogues_per_origin: usize,
    /// Admission control: most says pending across all dialogues.
    max_pending: usize,
}

impl Hub {
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        resume_window: Duration,
        max_dialogues: usize,
        max_dialogues_per_origin: usize,
    ) -> Self {
        Hub {
            max_dialogues_per_origin,
            state: Mutex::new(State {
                per_origin: HashMap::new(),
                dialogues: HashMap::new(),
                seen_events: LruCache::new(NonZeroUsize::new(SEEN_EVENTS).unwrap_or(NonZeroUsize::MIN)),
                pending_total: 0,
            }),
            metrics,
            resume_window,
            max_dialogues,
            max_pending: usize::MAX,
        }
    }

    /// The same hub, refusing new says while `max` are pending (admission control).
    pub(crate) fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max;
        self
    }

    /// A hub with the resume window and dialogue caps of `config`.
    pub(crate) fn for_config(metrics: Arc<Metrics>, config: &crate::GatewayConfig) -> Self {
        Hub::new(metrics, config.resume_window, config.limits.max_dialogues, config.limits.max_dialogues_per_address)
            .with_max_pending(config.limits.max_pending_says)
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
        origin: IpAddr,
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
            let held = state.per_origin.entry(origin).or_insert(0);
            if *held >= self.max_dialogues_per_origin {
                return Err(AttachError::AddressBusy);
            }
            *held += 1;
            state.dialogues.insert(
                dialogue_id.clone(),
                Dialogue {
                    origin,
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
        let mut guard = self.lock();
        let state = &mut *guard;
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
        // Admission control: a say that would only wait behind a backlog it cannot get through
        // in time is refused now (the client retries shortly) rather than answered late.
        if state.pending_total >= self.max_pending {
            return SayDecision::Overloaded;
        }
        d.make_room();
        d.msgs.put(client_msg_id.to_string(), Msg::Producing);
        state.pending_total += 1;
        self.metrics.says_pending.set(state.pending_total as i64);
        let mut event = Event::new(
            dialogue_id,
            now_ms(),
            EventBody::UserSaid(UserSaid {
                client_msg_id: client_msg_id.to_string(),
                user_id: d.user_id.clone(),
                locale: d.locale,
                text: text.to_string(),
            }),
        );
        // The same say sent again (after a reconnect, to any gateway) is the same event.
        event.event_id = EventId::for_say(dialogue_id, client_msg_id);
        SayDecision::Produce(Box::new(event))
    }

    /// Records the broker's verdict on a produced say. Returns `true` when the say is now
    /// accepted and waiting, i.e. when the caller must start the answer timer.
    pub(crate) fn produced(&self, dialogue_id: &str, client_msg_id: &str, outcome: Result<EventId, ()>) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(d) = state.dialogues.get_mut(dialogue_id) else { return false };
        match (d.msgs.peek(client_msg_id), outcome) {
            (Some(Msg::Producing), Ok(user_said)) => {
                d.msgs.put(client_msg_id.to_string(), Msg::Accepted { user_said, accepted_at: now_ms() });
                true
            }
            (Some(Msg::Producing), Err(())) => {
                d.msgs.pop(client_msg_id);
                state.pending_total = state.pending_total.saturating_sub(1);
                self.metrics.says_pending.set(state.pending_total as i64);
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
    /// Returns whether it fired (the caller then records the timeout as an event).
    pub(crate) fn expire(&self, dialogue_id: &str, client_msg_id: &str, user_said: EventId) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(d) = state.dialogues.get_mut(dialogue_id) else { return false };
        if matches!(d.msgs.peek(client_msg_id), Some(Msg::Accepted { user_said: u, .. }) if *u == user_said) {
            tracing::info!(dialogue_id, client_msg_id, "no answer in time; handing off");
            self.metrics.answer_timeouts.inc();
            self.resolve(d, &mut state.pending_total, client_msg_id, timeout_frame(dialogue_id, client_msg_id));
            return true;
        }
        false
    }

    /// Answers every pending say of a dialogue with a `timeout` handoff (end of a drain), and
    /// returns the accepted ones (the caller records their timeouts as events; a say still
    /// producing may not be in the broker at all).
    pub(crate) fn expire_all(&self, dialogue_id: &str) -> Vec<Unanswered> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(d) = state.dialogues.get_mut(dialogue_id) else { return Vec::new() };
        let pending: Vec<String> = d.msgs.iter().filter(|(_, m)| m.is_pending()).map(|(k, _)| k.clone()).collect();
        let accepted: Vec<Unanswered> = d
            .msgs
            .iter()
            .filter_map(|(k, m)| match m {
                Msg::Accepted { user_said, accepted_at } => {
                    Some(Unanswered { client_msg_id: k.clone(), user_said: *user_said, accepted_at: *accepted_at })
                }
                _ => None,
            })
            .collect();
        for msg_id in pending {
            tracing::info!(dialogue_id, client_msg_id = %msg_id, "drain deadline; handing off");
            self.metrics.answer_timeouts.inc();
            self.resolve(d, &mut state.pending_total, &msg_id, timeout_frame(dialogue_id, &msg_id));
        }
        accepted
    }

    /// Says of a dialogue still waiting for their reply.
    pub(crate) fn pending(&self, dialogue_id: &str) -> usize {
        self.lock().dialogues.get(dialogue_id).map_or(0, Dialogue::pending)
    }

    /// Routes one bot.said event to the dialogue's connection. Returns the outcome label.
    ///
    /// A reply (answer, handoff, queued) resolves its say, once; the frames that answer no say
    /// (an agent joined, wrote, or gave the dialogue back to the bot) are delivered as they come.
    /// Both are kept for a resume, and an event read twice is delivered once.
    pub(crate) fn route(&self, event: &Event) -> &'static str {
        let dialogue_id = event.dialogue_id.clone();
        let (reply_to, frame) = match &event.body {
            EventBody::AnswerGenerated(a) => (
                Some(&a.client_msg_id),
                ServerFrame::Answer {
                    dialogue_id,
                    in_reply_to: a.client_msg_id.clone(),
                    text: a.text.clone(),
                    intent: a.intent.clone(),
                    confidence: if a.confidence.is_finite() { a.confidence } else { 0.0 },
                    event_id: event.event_id.to_string(),
                },
            ),
            EventBody::HandoffRequested(h) => (
                Some(&h.client_msg_id),
                ServerFrame::Handoff { dialogue_id, in_reply_to: h.client_msg_id.clone(), reason: h.reason.as_str().to_string() },
            ),
            EventBody::TurnQueued(q) => {
                (Some(&q.client_msg_id), ServerFrame::Queued { dialogue_id, in_reply_to: q.client_msg_id.clone() })
            }
            EventBody::OwnershipChanged(o) => match (o.owner, &o.agent) {
                (Owner::Agent, Some(agent)) => (None, ServerFrame::AgentJoined { dialogue_id, agent: agent.clone() }),
                (Owner::Bot, _) => (None, ServerFrame::BotBack { dialogue_id }),
                // Waiting: the handoff frame already told the user.
                _ => return "ignored_kind",
            },
            EventBody::AgentSaid(a) => {
                (None, ServerFrame::AgentSaid { dialogue_id, text: a.text.clone(), event_id: event.event_id.to_string() })
            }
            _ => return "ignored_kind",
        };
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(d) = state.dialogues.get_mut(&event.dialogue_id) else { return "not_held" };
        if state.seen_events.put(event.event_id, ()).is_some() {
            return "duplicate_event";
        }
        let Some(client_msg_id) = reply_to else {
            tracing::debug!(dialogue_id = %event.dialogue_id, event_id = %event.event_id, kind = frame.kind(), "routing");
            self.deliver(d, None, frame);
            return "routed";
        };
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
        self.resolve(d, &mut state.pending_total, client_msg_id, frame);
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
        let mut per_origin: HashMap<IpAddr, usize> = HashMap::new();
        for d in state.dialogues.values() {
            *per_origin.entry(d.origin).or_insert(0) += 1;
        }
        state.per_origin = per_origin;
        self.metrics.dialogues.set(state.dialogues.len() as i64);
    }

    /// Resolves a say with its reply frame (once pending, it no longer counts in `pending_total`).
    fn resolve(&self, d: &mut Dialogue, pending_total: &mut usize, client_msg_id: &str, frame: ServerFrame) {
        match d.msgs.peek(client_msg_id) {
            None => d.make_room(),
            Some(m) if m.is_pending() => {
                *pending_total = pending_total.saturating_sub(1);
                self.metrics.says_pending.set(*pending_total as i64);
            }
            Some(_) => {}
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
