//! Unit tests of the session state machine (turns, slots, handoffs, idle closes, restore).

use super::*;
use switchboard_schemas::{EventId, HandoffReason, UserSaid};

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

/// The turn's one reply: its answer, handoff or queued notice.
fn reply(events: &[Event]) -> &EventBody {
    let mut replies = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::AnswerGenerated(_) | EventBody::HandoffRequested(_) | EventBody::TurnQueued(_)));
    &replies.next_back().expect("a reply").body
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

#[test]
fn a_say_sent_again_is_applied_once_and_answered_again_with_the_same_reply() {
    let mut s = Sessions::new(SessionConfig::default());
    let first = turn("d", 1000, "我要退货", "return_goods", 0.95, Some(return_entry()));
    let mut again = first.clone();
    // The retry comes through another gateway, later; its id is the same (dialogue + client_msg_id).
    again.said.occurred_at = 3000;
    let out = s.on_turn(first, 1000, 1100);
    let answer = out.last().cloned().expect("a reply");
    let turns_before = s.get("d").map(|d| (d.turns, d.pending.clone()));
    let out_again = s.on_turn(again, 3000, 3100);
    assert_eq!(out_again, vec![answer], "only the same reply, with the same id and text");
    assert_eq!(s.get("d").map(|d| (d.turns, d.pending.clone())), turns_before, "the state did not change");
    // A new say is applied as usual.
    let out = s.on_turn(turn("d", 4000, "12345678", "out_of_scope", 0.2, None), 4000, 4100);
    let EventBody::AnswerGenerated(done) = reply(&out) else { panic!("{out:?}") };
    assert_eq!(done.text, "订单 12345678 的退货申请已提交。");
    assert_eq!(s.get("d").map(|d| d.turns), Some(2));
}
