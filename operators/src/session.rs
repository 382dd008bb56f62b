//! Dialogue sessions: the state kept per dialogue_id (turns, slots, the answer waiting for a
//! slot, unresolved count) and the decisions made on each analysed turn — answer, ask for a
//! missing slot, clarify, or hand over to a human. Idle dialogues close on event time.
//!
//! The state machine is deterministic: the same turns in the same order with the same times
//! produce the same events, byte for byte (ids are derived from the user's event id).
//!
//! ```
//! use switchboard_operators::session::{Sessions, SessionConfig};
//! let mut sessions = Sessions::new(SessionConfig::default());
//! assert!(sessions.close_idle(i64::MAX).is_empty());
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchboard_schemas::{
    AnswerGenerated, CloseReason, DialogueClosed, Event, EventBody, HandoffReason, HandoffRequested,
    IntentRecognized, KnowledgeRetrieved, Locale,
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
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { handoff_threshold: 0.5, idle_timeout_ms: 30 * 60 * 1000, max_unresolved: 2, max_dialogues: 1_000_000 }
    }
}

/// All open dialogues of one worker.
#[derive(Debug, Default)]
pub struct Sessions {
    config: SessionConfig,
    open: HashMap<String, DialogueState>,
    /// Per lane, the idle deadlines of its open dialogues: (last_seen + timeout, dialogue id).
    deadlines: HashMap<i32, BTreeSet<(i64, String)>>,
    /// Dialogues opened, changed or closed since [`Sessions::take_changes`] last ran.
    changed: BTreeSet<String>,
}

/// How the session decided to reply to a turn.
enum Reply {
    Answer { text: String, intent: String, confidence: f32 },
    Handoff { reason: HandoffReason, detail: String },
}

fn handoff_detail(reason: HandoffReason, locale: Locale) -> String {
    match (reason, locale) {
        (HandoffReason::UserAsked, Locale::ZhCn) => "用户要求人工客服".into(),
        (HandoffReason::UserAsked, Locale::En) => "the user asked for a human agent".into(),
        (HandoffReason::LowConfidence, Locale::ZhCn) => "意图置信度低于阈值".into(),
        (HandoffReason::LowConfidence, Locale::En) => "intent confidence below the threshold".into(),
        (HandoffReason::RepeatedlyUnresolved, Locale::ZhCn) => "连续多轮未能解决".into(),
        (HandoffReason::RepeatedlyUnresolved, Locale::En) => "several unresolved turns in a row".into(),
        (HandoffReason::ProcessingFailed, _) => "processing failed".into(),
        (HandoffReason::Timeout, _) => "no answer in time".into(),
    }
}

impl Sessions {
    /// No open dialogues.
    pub fn new(config: SessionConfig) -> Self {
        Sessions { config, open: HashMap::new(), deadlines: HashMap::new(), changed: BTreeSet::new() }
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
    /// IntentRecognized, KnowledgeRetrieved, then exactly one AnswerGenerated or HandoffRequested.
    pub fn on_turn(&mut self, turn: TurnAnalysis, seen_at_ms: i64, now_ms: i64) -> Vec<Event> {
        let said = &turn.said;
        self.changed.insert(said.dialogue_id.clone());
        let state = self.open.entry(said.dialogue_id.clone()).or_default();
        state.turns += 1;
        state.last_seen = state.last_seen.max(seen_at_ms);
        state.last_event = Some(said.event_id);
        for (k, v) in &turn.slots {
            state.slots.insert(k.clone(), v.clone());
        }

        let reply = decide(&self.config, state, &turn);
        state.last_intent = Some(turn.intent.clone());

        let latency_ms = u32::try_from((now_ms - said.occurred_at).max(0)).unwrap_or(u32::MAX);
        let mut out = vec![
            Event::caused_by(
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
            ),
            Event::caused_by(
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
            ),
        ];
        let body = match reply {
            Reply::Answer { text, intent, confidence } => EventBody::AnswerGenerated(AnswerGenerated {
                in_reply_to: said.event_id,
                client_msg_id: turn.client_msg_id.clone(),
                text: crate::pii::mask(&text).into_owned(),
                intent,
                confidence,
                latency_ms,
            }),
            Reply::Handoff { reason, detail } => EventBody::HandoffRequested(HandoffRequested {
                in_reply_to: said.event_id,
                client_msg_id: turn.client_msg_id.clone(),
                reason,
                detail,
                latency_ms,
            }),
        };
        out.push(Event::caused_by(said, REPLY_ROLE, now_ms, body));
        self.evict_over_capacity(&mut out);
        out
    }

    /// Processes one turn read from source partition `lane`, for runs on record time (tests,
    /// replays, backfills), where the outcome must not depend on how records were batched.
    ///
    /// `lane_watermark_ms` is the highest record time read from `lane` up to and including this
    /// turn. First every dialogue of the lane whose idle deadline it has reached closes (this
    /// one included: a turn after the timeout starts a new dialogue). Whether a dialogue is
    /// continued or closed then depends only on the records of its own partition in offset
    /// order, never on other partitions or on poll boundaries. The turn is then processed as
    /// in [`Sessions::on_turn`], seen and answered at its record time `record_time_ms`.
    pub fn on_turn_in_lane(&mut self, turn: TurnAnalysis, lane: i32, lane_watermark_ms: i64, record_time_ms: i64) -> Vec<Event> {
        let mut out = self.close_lane_idle(lane, lane_watermark_ms);
        let dialogue_id = turn.said.dialogue_id.clone();
        let timeout = self.config.idle_timeout_ms;
        if let Some(state) = self.open.get(&dialogue_id) {
            let old = (state.last_seen.saturating_add(timeout), dialogue_id.clone());
            if let Some(pending) = state.lane.and_then(|l| self.deadlines.get_mut(&l)) {
                pending.remove(&old);
            }
        }
        out.extend(self.on_turn(turn, record_time_ms, record_time_ms));
        if let Some(state) = self.open.get_mut(&dialogue_id) {
            state.lane = Some(lane);
            let deadline = state.last_seen.saturating_add(timeout);
            self.deadlines.entry(lane).or_default().insert((deadline, dialogue_id));
        }
        out
    }

    /// Closes the dialogues of `lane` (see [`Sessions::on_turn_in_lane`]) whose idle deadline
    /// is at or before `watermark_ms`, earliest deadline first.
    pub fn close_lane_idle(&mut self, lane: i32, watermark_ms: i64) -> Vec<Event> {
        let mut due = Vec::new();
        if let Some(pending) = self.deadlines.get_mut(&lane) {
            while let Some(first) = pending.first() {
                if first.0 > watermark_ms {
                    break;
                }
                if let Some((_, id)) = pending.pop_first() {
                    due.push(id);
                }
            }
        }
        due.into_iter().filter_map(|id| self.close(&id, CloseReason::IdleTimeout)).collect()
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
        if let Some(lane) = state.lane {
            let deadline = state.last_seen.saturating_add(self.config.idle_timeout_ms);
            self.deadlines.entry(lane).or_default().insert((deadline, snapshot.dialogue_id.clone()));
        }
        self.open.insert(snapshot.dialogue_id, state);
    }

    /// Closes every dialogue whose last turn is at least the idle timeout before
    /// `watermark_ms` (event time: no turn earlier than the watermark can still arrive), in a
    /// deterministic order, and forgets its state.
    pub fn close_idle(&mut self, watermark_ms: i64) -> Vec<Event> {
        let timeout = self.config.idle_timeout_ms;
        let mut idle: Vec<String> = self
            .open
            .iter()
            .filter(|(_, s)| s.last_seen.saturating_add(timeout) <= watermark_ms)
            .map(|(id, _)| id.clone())
            .collect();
        idle.sort();
        idle.into_iter().filter_map(|id| self.close(&id, CloseReason::IdleTimeout)).collect()
    }

    fn close(&mut self, dialogue_id: &str, reason: CloseReason) -> Option<Event> {
        let state = self.open.remove(dialogue_id)?;
        self.changed.insert(dialogue_id.to_string());
        let at = state.last_seen.saturating_add(self.config.idle_timeout_ms);
        if let Some(lane) = state.lane {
            if let Some(pending) = self.deadlines.get_mut(&lane) {
                pending.remove(&(at, dialogue_id.to_string()));
            }
        }
        let last = state.last_event?;
        let mut event = Event::new(dialogue_id, at, EventBody::DialogueClosed(DialogueClosed { reason, turns: state.turns }));
        event.event_id = switchboard_schemas::EventId::derived(last, "closed");
        Some(event)
    }

    fn evict_over_capacity(&mut self, out: &mut Vec<Event>) {
        while self.open.len() > self.config.max_dialogues {
            let oldest = self
                .open
                .iter()
                .min_by(|a, b| (a.1.last_seen, a.0).cmp(&(b.1.last_seen, b.0)))
                .map(|(id, _)| id.clone());
            match oldest.and_then(|id| self.close(&id, CloseReason::IdleTimeout)) {
                Some(e) => out.push(e),
                None => break,
            }
        }
    }
}

fn decide(config: &SessionConfig, state: &mut DialogueState, turn: &TurnAnalysis) -> Reply {
    let locale = turn.locale;
    let handoff = |state: &mut DialogueState, reason| {
        state.unresolved = 0;
        state.pending = None;
        Reply::Handoff { reason, detail: handoff_detail(reason, locale) }
    };
    if turn.asks_for_human {
        return handoff(state, HandoffReason::UserAsked);
    }
    // A pending answer waiting for slots is completed when the slots have arrived.
    if let Some((pending, intent)) = state.pending.clone() {
        if let Ok(text) = crate::render::render(&pending.template, &state.slots) {
            state.pending = None;
            state.unresolved = 0;
            return Reply::Answer { text, intent, confidence: turn.confidence.max(pending.score) };
        }
        // Still missing: a turn that supplies nothing new and has no strong intent of its own
        // asks again (and counts as unresolved).
        if turn.slots.is_empty() && turn.confidence < config.handoff_threshold {
            state.unresolved += 1;
            if state.unresolved >= config.max_unresolved {
                return handoff(state, HandoffReason::RepeatedlyUnresolved);
            }
            let missing = missing_slots(&pending.required_slots, &state.slots);
            let text = missing
                .first()
                .map(|s| crate::render::ask_for_slot(s, locale))
                .unwrap_or_else(|| crate::render::clarify(locale));
            return Reply::Answer { text, intent, confidence: turn.confidence };
        }
    }
    if turn.confidence < config.handoff_threshold {
        return handoff(state, HandoffReason::LowConfidence);
    }
    match &turn.retrieved {
        None => {
            state.unresolved += 1;
            if state.unresolved >= config.max_unresolved {
                return handoff(state, HandoffReason::RepeatedlyUnresolved);
            }
            Reply::Answer { text: crate::render::clarify(locale), intent: turn.intent.clone(), confidence: turn.confidence }
        }
        Some(found) => match crate::render::render(&found.template, &state.slots) {
            Ok(text) => {
                state.unresolved = 0;
                state.pending = None;
                Reply::Answer { text, intent: turn.intent.clone(), confidence: turn.confidence }
            }
            Err(_) => {
                let missing = missing_slots(&found.required_slots, &state.slots);
                state.pending = Some((found.clone(), turn.intent.clone()));
                let text = missing
                    .first()
                    .map(|s| crate::render::ask_for_slot(s, locale))
                    .unwrap_or_else(|| crate::render::clarify(locale));
                Reply::Answer { text, intent: turn.intent.clone(), confidence: turn.confidence }
            }
        },
    }
}

fn missing_slots(required: &[String], have: &BTreeMap<String, String>) -> Vec<String> {
    required.iter().filter(|s| !have.contains_key(*s)).cloned().collect()
}

/// Whether the text asks for a human agent (转人工, 人工客服, "agent", "human", …).
pub fn asks_for_human(text: &str) -> bool {
    const ZH: [&str; 8] = ["转人工", "人工客服", "人工服务", "找人工", "要人工", "真人客服", "找真人", "接人工"];
    if ZH.iter().any(|k| text.contains(k)) {
        return true;
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()).collect();
    let has = |w: &str| words.contains(&w);
    (has("agent") || has("human") || has("representative") || has("operator"))
        && !has("not")
        && !words.windows(2).any(|p| p == ["no", "agent"] || p == ["no", "human"])
        || lower.contains("real person")
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_schemas::{EventId, UserSaid};

    fn turn(dialogue: &str, at: i64, text: &str, intent: &str, confidence: f32, retrieved: Option<RetrievedAnswer>) -> TurnAnalysis {
        let said = Event::new(
            dialogue,
            at,
            EventBody::UserSaid(UserSaid { client_msg_id: format!("m{at}"), user_id: "u".into(), locale: Locale::ZhCn, text: text.into() }),
        );
        TurnAnalysis {
            said,
            client_msg_id: format!("m{at}"),
            masked_text: text.into(),
            locale: Locale::ZhCn,
            intent: intent.into(),
            confidence,
            model_version: "v1".into(),
            retrieved,
            kb_version: "kb1".into(),
            slots: crate::render::extract_slots(text),
            asks_for_human: asks_for_human(text),
        }
    }

    fn return_entry() -> RetrievedAnswer {
        RetrievedAnswer {
            entry_id: "zh-return-goods-001".into(),
            score: 0.9,
            template: "订单 {order_id} 的退货申请已提交。".into(),
            required_slots: vec!["order_id".into()],
        }
    }

    fn reply(events: &[Event]) -> &EventBody {
        &events.last().expect("a reply").body
    }

    #[test]
    fn multi_turn_slot_filling_completes_the_pending_answer() {
        let mut s = Sessions::new(SessionConfig::default());
        let out = s.on_turn(turn("d", 1000, "我要退货", "return_goods", 0.95, Some(return_entry())), 1000, 1100);
        assert_eq!(out.len(), 3);
        let EventBody::AnswerGenerated(ask) = reply(&out) else { panic!("{out:?}") };
        assert!(ask.text.contains("订单号"), "{}", ask.text);
        let out = s.on_turn(turn("d", 2000, "12345678", "out_of_scope", 0.2, None), 2000, 2100);
        let EventBody::AnswerGenerated(done) = reply(&out) else { panic!("{out:?}") };
        assert_eq!(done.text, "订单 12345678 的退货申请已提交。");
        assert_eq!(done.intent, "return_goods");
        assert_eq!(done.latency_ms, 100);
        assert!(s.get("d").and_then(|d| d.pending.as_ref()).is_none());
    }

    #[test]
    fn explicit_ask_for_a_human_hands_off() {
        let mut s = Sessions::new(SessionConfig::default());
        let out = s.on_turn(turn("d", 1000, "别废话了，转人工", "complaint", 0.99, None), 1000, 1000);
        assert!(matches!(reply(&out), EventBody::HandoffRequested(h) if h.reason == HandoffReason::UserAsked));
        assert!(asks_for_human("I want to talk to a human"));
        assert!(asks_for_human("agent please"));
        assert!(!asks_for_human("my travel agency order"));
    }

    #[test]
    fn low_confidence_hands_off() {
        let mut s = Sessions::new(SessionConfig::default());
        let out = s.on_turn(turn("d", 1000, "今天天气怎么样", "greeting", 0.3, None), 1000, 1000);
        assert!(matches!(reply(&out), EventBody::HandoffRequested(h) if h.reason == HandoffReason::LowConfidence));
    }

    #[test]
    fn two_unresolved_turns_in_a_row_hand_off() {
        let mut s = Sessions::new(SessionConfig::default());
        let out = s.on_turn(turn("d", 1000, "那个东西", "product_inquiry", 0.8, None), 1000, 1000);
        assert!(matches!(reply(&out), EventBody::AnswerGenerated(_)));
        let out = s.on_turn(turn("d", 2000, "就是那个", "product_inquiry", 0.8, None), 2000, 2000);
        assert!(matches!(reply(&out), EventBody::HandoffRequested(h) if h.reason == HandoffReason::RepeatedlyUnresolved));
    }

    #[test]
    fn every_turn_gets_exactly_one_reply_with_a_stable_id() {
        let mut s = Sessions::new(SessionConfig::default());
        let t = turn("d", 1000, "我要退货", "return_goods", 0.95, Some(return_entry()));
        let id = t.said.event_id;
        let out = s.on_turn(t, 1000, 1000);
        let replies: Vec<_> = out.iter().filter(|e| matches!(e.body, EventBody::AnswerGenerated(_) | EventBody::HandoffRequested(_))).collect();
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].event_id, EventId::derived(id, REPLY_ROLE));
    }

    #[test]
    fn idle_dialogues_close_on_event_time_and_state_is_evicted() {
        let config = SessionConfig { idle_timeout_ms: 1000, ..SessionConfig::default() };
        let mut s = Sessions::new(config);
        s.on_turn(turn("a", 1000, "你好", "greeting", 0.9, None), 1000, 1000);
        s.on_turn(turn("b", 1500, "你好", "greeting", 0.9, None), 1500, 1500);
        assert!(s.close_idle(1999).is_empty());
        let closed = s.close_idle(2000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].dialogue_id, "a");
        assert_eq!(closed[0].occurred_at, 2000);
        assert_eq!(s.len(), 1);
        assert_eq!(s.close_idle(i64::MAX).len(), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn lane_idle_close_depends_only_on_the_lane_of_the_dialogue() {
        let config = SessionConfig { idle_timeout_ms: 1000, ..SessionConfig::default() };
        let mut s = Sessions::new(config);
        s.on_turn_in_lane(turn("a", 1000, "你好", "greeting", 0.9, None), 0, 1000, 1000);
        // Lane 1 is far ahead: lane 0's dialogue stays open.
        let out = s.on_turn_in_lane(turn("b", 5000, "你好", "greeting", 0.9, None), 1, 5000, 5000);
        assert!(!out.iter().any(|e| matches!(e.body, EventBody::DialogueClosed(_))), "{out:?}");
        // The next turn on lane 0 inside the timeout continues the dialogue.
        s.on_turn_in_lane(turn("a", 1900, "我要退货", "return_goods", 0.95, Some(return_entry())), 0, 1900, 1900);
        assert_eq!(s.get("a").map(|d| d.turns), Some(2));
        // A later record of lane 0 (another dialogue) past a's deadline closes it at the deadline.
        let out = s.on_turn_in_lane(turn("c", 2900, "你好", "greeting", 0.9, None), 0, 2900, 2900);
        let closed: Vec<_> = out.iter().filter(|e| matches!(e.body, EventBody::DialogueClosed(_))).collect();
        assert_eq!(closed.len(), 1, "{out:?}");
        assert_eq!((closed[0].dialogue_id.as_str(), closed[0].occurred_at), ("a", 2900));
        // A turn after the timeout closes the old dialogue first and starts a new one.
        let out = s.on_turn_in_lane(turn("b", 7000, "你好", "greeting", 0.9, None), 1, 7000, 7000);
        assert!(matches!(out[0].body, EventBody::DialogueClosed(DialogueClosed { turns: 1, .. })), "{out:?}");
        assert_eq!(s.get("b").map(|d| d.turns), Some(1));
        // Closing through the global watermark keeps the lane index in step.
        assert_eq!(s.close_idle(i64::MAX).len(), 2);
        assert!(s.close_lane_idle(0, i64::MAX).is_empty() && s.close_lane_idle(1, i64::MAX).is_empty());
    }

    #[test]
    fn a_restored_dialogue_completes_its_pending_answer_and_skips_applied_turns() {
        let mut s = Sessions::new(SessionConfig::default());
        s.on_turn(turn("d", 1000, "我要退货", "return_goods", 0.95, Some(return_entry())), 1000, 1000);
        s.mark_applied("d", 3, 41);
        let saved = s.take_changes();
        assert_eq!(saved.len(), 1);
        assert!(s.take_changes().is_empty(), "changes are taken once");
        // Through JSON, as the sink stores it.
        let text = serde_json::to_string(&saved[0]).expect("serialise");
        let back: SessionSnapshot = serde_json::from_str(&text).expect("deserialise");
        let mut restarted = Sessions::new(SessionConfig::default());
        restarted.restore(back);
        assert!(restarted.applied("d", 3, 41) && !restarted.applied("d", 3, 42) && !restarted.applied("d", 4, 1));
        let out = restarted.on_turn(turn("d", 2000, "12345678", "out_of_scope", 0.2, None), 2000, 2000);
        let EventBody::AnswerGenerated(done) = reply(&out) else { panic!("{out:?}") };
        assert_eq!(done.text, "订单 12345678 的退货申请已提交。");
        // A close is a change too, saved without state.
        restarted.take_changes();
        restarted.close_idle(i64::MAX);
        assert_eq!(restarted.take_changes(), vec![SessionSnapshot { dialogue_id: "d".into(), state: None }]);
    }

    #[test]
    fn capacity_bound_closes_the_least_recent_dialogue() {
        let mut s = Sessions::new(SessionConfig { max_dialogues: 2, ..SessionConfig::default() });
        s.on_turn(turn("a", 1, "你好", "greeting", 0.9, None), 1, 1);
        s.on_turn(turn("b", 2, "你好", "greeting", 0.9, None), 2, 2);
        let out = s.on_turn(turn("c", 3, "你好", "greeting", 0.9, None), 3, 3);
        assert!(out.iter().any(|e| e.dialogue_id == "a" && matches!(e.body, EventBody::DialogueClosed(_))));
        assert_eq!(s.len(), 2);
    }
}
