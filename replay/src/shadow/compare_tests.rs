use super::*;
use switchboard_schemas::{AnswerGenerated, HandoffReason, HandoffRequested, IntentRecognized, KnowledgeRetrieved, Locale, UserSaid};

fn said(dialogue: &str, msg: &str, at: i64) -> Event {
    let mut e = Event::new(
        dialogue,
        at,
        EventBody::UserSaid(UserSaid { client_msg_id: msg.into(), user_id: "u".into(), locale: Locale::ZhCn, text: format!("text {msg}") }),
    );
    e.event_id = EventId::for_say(dialogue, msg);
    e
}

/// The events one version writes for a turn: intent, retrieval and an answer or a handoff.
fn handled(turn: &Event, intent: &str, entry: Option<&str>, reply: Result<&str, HandoffReason>, model: &str) -> Vec<Event> {
    let EventBody::UserSaid(s) = &turn.body else { unreachable!() };
    let msg = s.client_msg_id.clone();
    let at = turn.occurred_at + 3;
    let mut out = vec![
        Event::caused_by(turn, "intent", at, EventBody::IntentRecognized(IntentRecognized {
            in_reply_to: turn.event_id,
            client_msg_id: msg.clone(),
            masked_text: s.text.clone(),
            intent: intent.into(),
            confidence: 0.9,
            model_version: model.into(),
        })),
        Event::caused_by(turn, "kb", at, EventBody::KnowledgeRetrieved(KnowledgeRetrieved {
            in_reply_to: turn.event_id,
            client_msg_id: msg.clone(),
            entry_id: entry.map(String::from),
            score: 0.8,
            kb_version: "kb1".into(),
        })),
    ];
    out.push(match reply {
        Ok(text) => Event::caused_by(turn, "answer", at, EventBody::AnswerGenerated(AnswerGenerated {
            in_reply_to: turn.event_id,
            client_msg_id: msg,
            text: text.into(),
            intent: intent.into(),
            confidence: 0.9,
            latency_ms: 3,
        })),
        Err(reason) => Event::caused_by(turn, "handoff", at, EventBody::HandoffRequested(HandoffRequested {
            in_reply_to: turn.event_id,
            client_msg_id: msg,
            reason,
            detail: String::new(),
            latency_ms: 3,
        })),
    });
    out.push(turn.clone());
    out
}

#[test]
fn identical_runs_change_nothing_and_count_every_turn() {
    let turns = [said("d1", "m1", 1000), said("d1", "m2", 2000), said("d2", "m1", 1500)];
    let events: Vec<Event> = turns.iter().flat_map(|t| handled(t, "greet", Some("e1"), Ok("hi"), "v1")).collect();
    let c = compare(&events, &events);
    assert_eq!(c.turns, 3);
    assert_eq!(c.changed, Changed::default());
    assert_eq!(c.confusion, vec![Confusion { current: "greet".into(), candidate: "greet".into(), turns: 3 }]);
    assert_eq!(c.current, c.candidate);
    assert!((c.current.answer_rate - 1.0).abs() < 1e-12);
    let order: Vec<(&str, &str)> = c.all.iter().map(|t| (t.dialogue_id.as_str(), t.client_msg_id.as_str())).collect();
    assert_eq!(order, [("d1", "m1"), ("d1", "m2"), ("d2", "m1")]);
}

#[test]
fn each_kind_of_change_is_counted_once_per_turn() {
    let t = [said("d1", "m1", 1000), said("d1", "m2", 2000), said("d2", "m1", 1500), said("d3", "m1", 1700)];
    let current: Vec<Event> = [
        handled(&t[0], "refund", Some("e1"), Ok("old words"), "v1"),
        handled(&t[1], "refund", Some("e1"), Ok("same"), "v1"),
        handled(&t[2], "greet", None, Ok(CLARIFY_ZH), "v1"),
        handled(&t[3], "track", Some("e3"), Ok("where"), "v1"),
    ]
    .concat();
    let candidate: Vec<Event> = [
        handled(&t[0], "refund", Some("e1"), Ok("new words"), "v2"),
        handled(&t[1], "refund", Some("e1"), Ok("same"), "v2"),
        handled(&t[2], "greet", None, Err(HandoffReason::LowConfidence), "v2"),
        handled(&t[3], "cancel", Some("e4"), Ok("where"), "v2"),
    ]
    .concat();
    let c = compare(&current, &candidate);
    assert_eq!(c.turns, 4);
    assert_eq!(c.changed, Changed { turns: 3, intents: 1, answers: 2, entries: 1, handoffs: 1, outcomes: 1 });
    let changes: Vec<Vec<&str>> = c.all.iter().map(|t| t.changes.clone()).collect();
    assert_eq!(changes, vec![vec!["answer"], vec![], vec!["answer", "handoff", "outcome"], vec!["intent", "entry"]]);
    assert!((c.current.clarify_rate - 0.25).abs() < 1e-12 && c.candidate.clarify_rate == 0.0);
    assert!((c.candidate.handoff_rate - 0.25).abs() < 1e-12 && c.current.handoff_rate == 0.0);
    assert_eq!(c.confusion[0], Confusion { current: "refund".into(), candidate: "refund".into(), turns: 2 });
    assert!(c.confusion.contains(&Confusion { current: "track".into(), candidate: "cancel".into(), turns: 1 }));
    assert_eq!(versions(&candidate).models.get("zh-CN").map(|s| s.iter().cloned().collect::<Vec<_>>()), Some(vec!["v2".to_string()]));
}
