//! Dialogue sessions: the state kept per dialogue_id (turns, slots, the answer waiting for a
//! slot, unresolved count, owner) and the decisions made on each analysed turn — answer, ask for
//! a missing slot, clarify, hand over to a human, or queue the turn for the agent who owns the
//! dialogue — and on each agent's action (see [`crate::ownership`] for the rules). Idle
//! dialogues close, and waits for an agent time out, on event time.
//!
//! The state machine is deterministic: the same inputs in the same order with the same times
//! produce the same events, byte for byte (ids are derived from the input event's id).
//!
//! ```
//! use switchboard_operators::session::{Sessions, SessionConfig};
//! let mut sessions = Sessions::new(SessionConfig::default());
//! assert!(sessions.close_idle(i64::MAX).is_empty());
//! ```

use crate::bot_reply::{decide, Reply};
pub use crate::bot_reply::asks_for_human;
use crate::ownership::{
    action_of, judge, refused, wait_deadline, with_apology, Change, OnWaitTimeout, CLOSED_ROLE, DEFAULT_WAIT_TIMEOUT_MS,
    OWNERSHIP_ROLE, WAIT_TIMEOUT_ROLE,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchboard_schemas::session::{Ownership, RECENT_REPLIES};
use switchboard_schemas::{
    AgentAction, AgentSaid, AnswerGenerated, CloseReason, DialogueClosed, Event, EventBody, EventId,
    HandoffRequested, IntentRecognized, KnowledgeRetrieved, Locale, OwnershipReason, RefusalReason, TurnQueued,
};

/// The id role shared by a turn's answer and its handoff: a turn has exactly one reply, so
/// re-processing a turn after a crash replaces the reply instead of adding a second one.
pub const REPLY_ROLE: &str = "reply";

pub use switchboard_schemas::session::{DialogueState, RetrievedAnswer, SessionSnapshot};

/// One user turn after masking, classification and retrieval: the session's input.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TurnAnalysis {
    /// The UserSaid event, its text already PII-masked.
    pub said: Event,
    /// The client's message id.
    pub client_msg_id: String,
    /// The masked text.
    pub masked_text: String,
    /// The dialogue's locale.
    pub locale: Locale,
    /// Winning intent label.
    pub intent: String,
    /// Calibrated confidence of that label.
    pub confidence: f32,
    /// The classifier version.
    pub model_version: String,
    /// The knowledge-base answer, if retrieval found one above its threshold.
    pub retrieved: Option<RetrievedAnswer>,
    /// The knowledge-base snapshot version searched.
    pub kb_version: String,
    /// Slot values found in this turn's text.
    pub slots: BTreeMap<String, String>,
    /// The user explicitly asked for a human (转人工, "agent", …).
    pub asks_for_human: bool,
}

/// Session tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Below this calibrated confidence the bot hands over.
    pub handoff_threshold: f32,
    /// A dialogue with no turn for this long (event time, ms) closes.
    pub idle_timeout_ms: i64,
    /// Unresolved turns in a row that trigger a handoff.
    pub max_unresolved: u32,
    /// Most open dialogues kept; beyond it the least recently active close early.
    pub max_dialogues: usize,
    /// A dialogue waiting this long (event time, ms) for an agent's claim follows
    /// `on_wait_timeout`.
    pub wait_timeout_ms: i64,
    /// What a wait past `wait_timeout_ms` does.
    pub on_wait_timeout: OnWaitTimeout,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            handoff_threshold: 0.5,
            idle_timeout_ms: 30 * 60 * 1000,
            max_unresolved: 2,
            max_dialogues: 1_000_000,
            wait_timeout_ms: DEFAULT_WAIT_TIMEOUT_MS,
            on_wait_timeout: OnWaitTimeout::default(),
        }
    }
}

/// All open dialogues of one worker.
#[derive(Debug, Default)]
pub struct Sessions {
    config: SessionConfig,
    open: HashMap<String, DialogueState>,
    /// Per lane, the idle deadlines of its open dialogues: (last_seen + timeout, dialogue id).
    deadlines: HashMap<i32, BTreeSet<(i64, String)>>,
    /// Per lane, the wait deadlines of its dialogues waiting for an agent (back to the bot).
    waits: HashMap<i32, BTreeSet<(i64, String)>>,
    /// Dialogues opened, changed or closed since [`Sessions::take_changes`] last ran.
    changed: BTreeSet<String>,
}

impl Sessions {
    /// No open dialogues.
    pub fn new(config: SessionConfig) -> Self {
        Sessions { config, ..Sessions::default() }
    }

    /// Open dialogues.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no dialogue is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The state of one dialogue, if open.
    pub fn get(&self, dialogue_id: &str) -> Option<&DialogueState> {
        self.open.get(dialogue_id)
    }

    /// Processes one turn seen at event time `seen_at_ms` (the dataflow time: the record's
    /// time in replays and tests, the ingestion time in a live run — the same clock the idle
    /// watermark uses) and answered at `now_ms`. Returns the events it causes, in order:
    /// IntentRecognized, KnowledgeRetrieved, then exactly one reply: AnswerGenerated or
    /// HandoffRequested while the bot owns the dialogue (a handoff followed by an
    /// OwnershipChanged to waiting), TurnQueued while it waits for an agent or an agent owns it.
    /// A wait that ran out before the turn first goes back to the bot (see [`OnWaitTimeout`]).
    pub fn on_turn(&mut self, turn: TurnAnalysis, seen_at_ms: i64, now_ms: i64) -> Vec<Event> {
        let said = &turn.said;
        if let Some(again) = self.open.get(&said.dialogue_id).and_then(|state| reply_to(state, said.event_id)) {
            // The same say again (a retry through another gateway): applied once, answered
            // again with the same reply (same id) for whichever gateway holds the user now.
            return vec![again];
        }
        self.changed.insert(said.dialogue_id.clone());
        let mut out: Vec<Event> = self.expire_wait(&said.dialogue_id, seen_at_ms).into_iter().collect();
        let state = self.open.entry(said.dialogue_id.clone()).or_default();
        state.turns += 1;
        state.last_seen = state.last_seen.max(seen_at_ms);
        state.last_event = Some(said.event_id);
        for (k, v) in &turn.slots {
            state.slots.insert(k.clone(), v.clone());
        }

        let latency_ms = u32::try_from((now_ms - said.occurred_at).max(0)).unwrap_or(u32::MAX);
        out.push(Event::caused_by(
            said,
            "intent",
            now_ms,
            EventBody::IntentRecognized(IntentRecognized {
                in_reply_to: said.event_id,
                client_msg_id: turn.client_msg_id.clone(),
                masked_text: turn.masked_text.clone(),
                intent: turn.intent.clone(),
                confidence: turn.confidence,
                model_version: turn.model_version.clone(),
            }),
        ));
        out.push(Event::caused_by(
            said,
            "knowledge",
            now_ms,
            EventBody::KnowledgeRetrieved(KnowledgeRetrieved {
                in_reply_to: said.event_id,
                client_msg_id: turn.client_msg_id.clone(),
                entry_id: turn.retrieved.as_ref().map(|r| r.entry_id.clone()),
                score: turn.retrieved.as_ref().map_or(0.0, |r| r.score),
                kb_version: turn.kb_version.clone(),
            }),
        ));
        if state.owner != Ownership::Bot {
            // A human has (or will have) the dialogue: the bot stays silent.
            state.last_intent = Some(turn.intent.clone());
            let queued = TurnQueued {
                in_reply_to: said.event_id,
                client_msg_id: turn.client_msg_id.clone(),
                masked_text: turn.masked_text.clone(),
                agent: state.owner.agent().map(String::from),
            };
            let reply = Event::caused_by(said, REPLY_ROLE, now_ms, EventBody::TurnQueued(queued));
            remember_reply(state, &reply);
            out.push(reply);
            self.evict_over_capacity(&mut out);
            return out;
        }

        let reply = decide(&self.config, state, &turn);
        state.last_intent = Some(turn.intent.clone());
        let apologise = std::mem::take(&mut state.apology_due);
        let body = match reply {
            Reply::Answer { text, intent, confidence } => {
                let text = if apologise { with_apology(turn.locale, &text) } else { text };
                EventBody::AnswerGenerated(AnswerGenerated {
                    in_reply_to: said.event_id,
                    client_msg_id: turn.client_msg_id.clone(),
                    text: crate::pii::mask(&text).into_owned(),
                    intent,
                    confidence,
                    latency_ms,
                })
            }
            Reply::Handoff { reason, detail } => {
                state.owner = Ownership::Waiting { since_ms: seen_at_ms, reason, cause: said.event_id };
                EventBody::HandoffRequested(HandoffRequested {
                    in_reply_to: said.event_id,
                    client_msg_id: turn.client_msg_id.clone(),
                    reason,
                    detail,
                    latency_ms,
                })
            }
        };
        let handoff = match &body {
            EventBody::HandoffRequested(h) => Some(h.reason),
            _ => None,
        };
        let reply = Event::caused_by(said, REPLY_ROLE, now_ms, body);
        remember_reply(state, &reply);
        out.push(reply);
        if let Some(reason) = handoff {
            out.push(Change::handoff(reason).event(&said.dialogue_id, said.event_id, OWNERSHIP_ROLE, now_ms));
        }
        self.evict_over_capacity(&mut out);
        out
    }

    /// Processes one input that is not a user turn, seen at event time `seen_at_ms` and handled
    /// at `now_ms`: an agent's claim, message, return or close, or a handoff that came as input
    /// (a gateway's answer timeout, a turn that could not be processed). Returns the input
    /// itself (for the sinks) followed by what it causes: the agent's action gets exactly one
    /// reply (OwnershipChanged, AgentSaid or AgentActionRefused; a close also the
    /// DialogueClosed), and a handoff moves a dialogue the bot owns to waiting (opening it if
    /// it was not open). Other kinds are passed through.
    pub fn on_action(&mut self, event: Event, seen_at_ms: i64, now_ms: i64) -> Vec<Event> {
        let dialogue_id = event.dialogue_id.clone();
        let mut out = vec![event.clone()];
        out.extend(self.expire_wait(&dialogue_id, seen_at_ms));
        if let EventBody::HandoffRequested(handoff) = &event.body {
            self.changed.insert(dialogue_id.clone());
            let state = self.open.entry(dialogue_id.clone()).or_default();
            state.last_seen = state.last_seen.max(seen_at_ms);
            state.last_event = Some(event.event_id);
            if state.owner == Ownership::Bot {
                state.owner = Ownership::Waiting { since_ms: seen_at_ms, reason: handoff.reason, cause: event.event_id };
                state.unresolved = 0;
                state.pending = None;
                state.apology_due = false;
                out.push(Change::handoff(handoff.reason).event(&dialogue_id, event.event_id, OWNERSHIP_ROLE, now_ms));
            }
        } else if let Some((action, agent)) = action_of(&event.body) {
            let owner = self.open.get(&dialogue_id).map(|s| &s.owner);
            match (judge(owner, agent, action), self.open.get_mut(&dialogue_id)) {
                (Ok(()), Some(state)) => {
                    self.changed.insert(dialogue_id.clone());
                    state.last_seen = state.last_seen.max(seen_at_ms);
                    state.last_event = Some(event.event_id);
                    let reply = match &event.body {
                        EventBody::AgentMessage(m) => Event::caused_by(
                            &event,
                            REPLY_ROLE,
                            now_ms,
                            EventBody::AgentSaid(AgentSaid {
                                in_reply_to: event.event_id,
                                agent: m.agent.clone(),
                                client_msg_id: m.client_msg_id.clone(),
                                text: crate::pii::mask(&m.text).into_owned(),
                            }),
                        ),
                        _ => {
                            let change = match action {
                                AgentAction::Claim => {
                                    state.owner = Ownership::Agent { agent: agent.to_string(), since_ms: seen_at_ms };
                                    state.apology_due = false;
                                    Change::claimed(agent)
                                }
                                AgentAction::Return => {
                                    state.owner = Ownership::Bot;
                                    state.unresolved = 0;
                                    Change::to_bot(OwnershipReason::Returned, Some(agent))
                                }
                                AgentAction::Close | AgentAction::Message => {
                                    state.owner = Ownership::Bot;
                                    Change::to_bot(OwnershipReason::Closed, Some(agent))
                                }
                            };
                            change.event(&dialogue_id, event.event_id, REPLY_ROLE, now_ms)
                        }
                    };
                    out.push(reply);
                    if action == AgentAction::Close {
                        out.extend(self.close(&dialogue_id, CloseReason::AgentClosed, now_ms));
                    }
                }
                (verdict, state) => {
                    let reason = verdict.err().unwrap_or(RefusalReason::NotWaiting);
                    let owner = state.and_then(|s| s.owner.agent()).map(String::from);
                    out.push(refused(&event, agent, action, reason, owner.as_deref(), now_ms));
                }
            }
        }
        self.evict_over_capacity(&mut out);
        out
    }

    /// Processes one turn read from source partition `lane`, for runs on record time (tests,
    /// replays, backfills), where the outcome must not depend on how records were batched.
    ///
    /// `lane_watermark_ms` is the highest record time read from `lane` up to and including this
    /// turn. First every dialogue of the lane whose idle deadline it has reached closes (this
    /// one included: a turn after the timeout starts a new dialogue), and every wait of the lane
    /// that has run out goes back to the bot. Whether a dialogue is continued or closed then
    /// depends only on the records of its own partition in offset order, never on other
    /// partitions or on poll boundaries. The turn is then processed as in
    /// [`Sessions::on_turn`], seen and answered at its record time `record_time_ms`.
    pub fn on_turn_in_lane(&mut self, turn: TurnAnalysis, lane: i32, lane_watermark_ms: i64, record_time_ms: i64) -> Vec<Event> {
        let dialogue_id = turn.said.dialogue_id.clone();
        self.in_lane(&dialogue_id, lane, lane_watermark_ms, |s| s.on_turn(turn, record_time_ms, record_time_ms))
    }

    /// [`Sessions::on_action`] for an input read from source partition `lane` on record time,
    /// with the lane's deadlines first as in [`Sessions::on_turn_in_lane`].
    pub fn on_action_in_lane(&mut self, event: Event, lane: i32, lane_watermark_ms: i64, record_time_ms: i64) -> Vec<Event> {
        let dialogue_id = event.dialogue_id.clone();
        self.in_lane(&dialogue_id, lane, lane_watermark_ms, |s| s.on_action(event, record_time_ms, record_time_ms))
    }

    /// Runs the lane's due deadlines, then `apply`, keeping the lane's deadline indexes of
    /// `dialogue_id` in step with its state.
    fn in_lane(&mut self, dialogue_id: &str, lane: i32, watermark: i64, apply: impl FnOnce(&mut Self) -> Vec<Event>) -> Vec<Event> {
        let mut out = self.close_lane_idle(lane, watermark);
        self.unschedule(dialogue_id);
        out.extend(apply(self));
        if let Some(state) = self.open.get_mut(dialogue_id) {
            state.lane = Some(lane);
        }
        self.schedule(dialogue_id);
        out
    }

    /// Removes the lane deadlines of an open dialogue (before its state changes).
    fn unschedule(&mut self, dialogue_id: &str) {
        let Some(state) = self.open.get(dialogue_id) else { return };
        let Some(lane) = state.lane else { return };
        let idle = (state.last_seen.saturating_add(self.config.idle_timeout_ms), dialogue_id.to_string());
        if let Some(pending) = self.deadlines.get_mut(&lane) {
            pending.remove(&idle);
        }
        if let Some(at) = wait_deadline(&state.owner, self.config.wait_timeout_ms, self.config.on_wait_timeout) {
            if let Some(pending) = self.waits.get_mut(&lane) {
                pending.remove(&(at, dialogue_id.to_string()));
            }
        }
    }

    /// Adds the lane deadlines of an open dialogue whose lane is known (after its state changed).
    fn schedule(&mut self, dialogue_id: &str) {
        let Some(state) = self.open.get(dialogue_id) else { return };
        let Some(lane) = state.lane else { return };
        let idle = state.last_seen.saturating_add(self.config.idle_timeout_ms);
        self.deadlines.entry(lane).or_default().insert((idle, dialogue_id.to_string()));
        if let Some(at) = wait_deadline(&state.owner, self.config.wait_timeout_ms, self.config.on_wait_timeout) {
            self.waits.entry(lane).or_default().insert((at, dialogue_id.to_string()));
        }
    }

    /// Runs the deadlines of `lane` (see [`Sessions::on_turn_in_lane`]) at or before
    /// `watermark_ms`, earliest first: idle dialogues close, waits that ran out go back to the
    /// bot.
    pub fn close_lane_idle(&mut self, lane: i32, watermark_ms: i64) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let due = |index: &HashMap<i32, BTreeSet<(i64, String)>>| {
                index.get(&lane).and_then(|pending| pending.first()).filter(|first| first.0 <= watermark_ms).cloned()
            };
            match (due(&self.deadlines), due(&self.waits)) {
                (_, Some(wait)) if due(&self.deadlines).as_ref().is_none_or(|idle| wait.0 <= idle.0) => {
                    if let Some(pending) = self.waits.get_mut(&lane) {
                        pending.remove(&wait);
                    }
                    out.extend(self.expire_wait(&wait.1, wait.0));
                }
                (Some(idle), _) => {
                    if let Some(pending) = self.deadlines.get_mut(&lane) {
                        pending.remove(&idle);
                    }
                    let at = idle.0;
                    out.extend(self.close(&idle.1, CloseReason::IdleTimeout, at));
                }
                (None, _) => break,
            }
        }
        out
    }

    /// Ends the wait of `dialogue_id` if it waits for an agent, the rule is back to the bot and
    /// its deadline is at or before `at_ms`: the bot owns it again, with an apology due in its
    /// next answer. Returns the OwnershipChanged (reason wait_timeout), at the deadline.
    fn expire_wait(&mut self, dialogue_id: &str, at_ms: i64) -> Option<Event> {
        let state = self.open.get_mut(dialogue_id)?;
        let deadline = wait_deadline(&state.owner, self.config.wait_timeout_ms, self.config.on_wait_timeout)?;
        let Ownership::Waiting { cause, .. } = state.owner else { return None };
        if deadline > at_ms {
            return None;
        }
        state.owner = Ownership::Bot;
        state.apology_due = true;
        self.changed.insert(dialogue_id.to_string());
        Some(Change::to_bot(OwnershipReason::WaitTimeout, None).event(dialogue_id, cause, WAIT_TIMEOUT_ROLE, deadline))
    }

    /// Whether the turn at (`partition`, `offset`) of `dialogue_id` was already applied to the
    /// state (restored after a restart that redoes epochs whose outputs were already durable).
    pub fn applied(&self, dialogue_id: &str, partition: i32, offset: i64) -> bool {
        self.open
            .get(dialogue_id)
            .and_then(|s| s.source_position)
            .is_some_and(|(p, o)| p == partition && offset <= o)
    }

    /// Records that the turn at (`partition`, `offset`) was applied to `dialogue_id`.
    pub fn mark_applied(&mut self, dialogue_id: &str, partition: i32, offset: i64) {
        if let Some(state) = self.open.get_mut(dialogue_id) {
            state.source_position = Some((partition, offset));
        }
    }

    /// The dialogues opened, changed or closed since the last call, in id order.
    pub fn take_changes(&mut self) -> Vec<SessionSnapshot> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|dialogue_id| {
                let state = self.open.get(&dialogue_id).cloned();
                SessionSnapshot { dialogue_id, state }
            })
            .collect()
    }

    /// Puts back a saved dialogue (a closed one is ignored). Not reported as a change.
    pub fn restore(&mut self, snapshot: SessionSnapshot) {
        let Some(state) = snapshot.state else { return };
        let dialogue_id = snapshot.dialogue_id;
        self.unschedule(&dialogue_id);
        self.open.insert(dialogue_id.clone(), state);
        self.schedule(&dialogue_id);
    }

    /// Runs every deadline at or before `watermark_ms` (event time: no turn earlier than the
    /// watermark can still arrive), dialogue by dialogue in id order, each one's earliest
    /// first: a wait for an agent that ran out goes back to the bot (when that is the rule), a
    /// dialogue whose last input is at least the idle timeout before the watermark closes and
    /// its state is forgotten.
    pub fn close_idle(&mut self, watermark_ms: i64) -> Vec<Event> {
        let (idle_ms, wait_ms, rule) = (self.config.idle_timeout_ms, self.config.wait_timeout_ms, self.config.on_wait_timeout);
        let mut due: Vec<(String, Option<i64>, i64)> = self
            .open
            .iter()
            .filter_map(|(id, s)| {
                let idle = s.last_seen.saturating_add(idle_ms);
                // A dialogue idle before its wait runs out closes still waiting.
                let wait = wait_deadline(&s.owner, wait_ms, rule).filter(|at| *at <= watermark_ms && *at <= idle);
                (wait.is_some() || idle <= watermark_ms).then(|| (id.clone(), wait, idle))
            })
            .collect();
        due.sort();
        let mut out = Vec::new();
        for (id, wait, idle) in due {
            if let Some(at) = wait {
                self.unschedule(&id);
                out.extend(self.expire_wait(&id, at));
                self.schedule(&id);
            }
            if idle <= watermark_ms {
                out.extend(self.close(&id, CloseReason::IdleTimeout, idle));
            }
        }
        out
    }

    /// Closes a dialogue at `at_ms` and forgets its state: an OwnershipChanged back to the bot
    /// (reason closed) when the bot did not own it, then the DialogueClosed; ids derived from
    /// its last event.
    fn close(&mut self, dialogue_id: &str, reason: CloseReason, at_ms: i64) -> Vec<Event> {
        self.unschedule(dialogue_id);
        let Some(state) = self.open.remove(dialogue_id) else { return Vec::new() };
        self.changed.insert(dialogue_id.to_string());
        let Some(last) = state.last_event else { return Vec::new() };
        let mut out = Vec::new();
        if state.owner != Ownership::Bot {
            out.push(Change::to_bot(OwnershipReason::Closed, state.owner.agent()).event(dialogue_id, last, CLOSED_ROLE, at_ms));
        }
        let mut event = Event::new(dialogue_id, at_ms, EventBody::DialogueClosed(DialogueClosed { reason, turns: state.turns }));
        event.event_id = switchboard_schemas::EventId::derived(last, "closed");
        out.push(event);
        out
    }

    fn evict_over_capacity(&mut self, out: &mut Vec<Event>) {
        while self.open.len() > self.config.max_dialogues {
            let oldest = self
                .open
                .iter()
                .min_by(|a, b| (a.1.last_seen, a.0).cmp(&(b.1.last_seen, b.0)))
                .map(|(id, s)| (id.clone(), s.last_seen.saturating_add(self.config.idle_timeout_ms)));
            let Some((id, at)) = oldest else { break };
            let closed = self.close(&id, CloseReason::IdleTimeout, at);
            if closed.is_empty() {
                break;
            }
            out.extend(closed);
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "session_ownership_tests.rs"]
mod ownership_tests;

/// The reply already given to the say `said`, if the dialogue still remembers it.
fn reply_to(state: &DialogueState, said: EventId) -> Option<Event> {
    state
        .recent_replies
        .iter()
        .filter_map(|json| switchboard_schemas::decode_str(json).ok())
        .find(|reply| reply_in_reply_to(reply) == Some(said))
}

/// Remembers `reply` as the answer to its say, forgetting the oldest beyond [`RECENT_REPLIES`].
fn remember_reply(state: &mut DialogueState, reply: &Event) {
    if state.recent_replies.len() >= RECENT_REPLIES {
        state.recent_replies.remove(0);
    }
    state.recent_replies.push(String::from_utf8_lossy(&switchboard_schemas::encode(reply)).into_owned());
}

/// The say a reply answers.
fn reply_in_reply_to(reply: &Event) -> Option<EventId> {
    match &reply.body {
        EventBody::AnswerGenerated(a) => Some(a.in_reply_to),
        EventBody::HandoffRequested(h) => Some(h.in_reply_to),
        EventBody::TurnQueued(q) => Some(q.in_reply_to),
        _ => None,
    }
}
