//! Hand-written dialogues through the whole graph with the keyword understanding, no service:
//! slot filling across turns, the handoff paths, idle closes on record time, dead letters, and
//! the analysed-turn items crossing a process boundary.

mod common;

use common::{graph_config, IDLE_MS};
use std::sync::Arc;
use switchboard_operators::stage::Stage;
use switchboard_schemas::{Event, EventBody, HandoffReason, Locale};
use switchboard_topology::runner::recorded::run_recording;
use switchboard_topology::testing::{raw_record, user_said_record, KeywordUnderstand};

const T0: i64 = 1_764_000_000_000;

fn run(records: Vec<switchboard_schemas::SourceRecord>) -> Vec<Event> {
    run_recording(records, 2, graph_config(Arc::new(KeywordUnderstand::demo()))).expect("the graph runs")
}

fn replies(events: &[Event], dialogue: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.dialogue_id == dialogue)
        .filter_map(|e| match &e.body {
            EventBody::AnswerGenerated(a) => Some(a.text.clone()),
            EventBody::HandoffRequested(h) => Some(format!("handoff:{}", h.reason.as_str())),
            EventBody::DialogueClosed(_) => Some("closed".into()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_return_asks_for_the_order_number_and_the_next_turn_completes_it() {
    let events = run(vec![
        user_said_record(0, 0, T0, "d-1", Locale::ZhCn, "我要退货"),
        user_said_record(0, 1, T0 + 5_000, "d-1", Locale::ZhCn, "12345678"),
        // The same number as the first turn of another dialogue completes nothing.
        user_said_record(1, 0, T0 + 5_000, "d-2", Locale::ZhCn, "12345678"),
    ]);
    let d1 = replies(&events, "d-1");
    assert!(d1[0].contains("订单号"), "{d1:?}");
    assert_eq!(d1[1], "好的，订单 12345678 的退货申请已提交。");
    assert_eq!(d1[2], "closed");
    assert_eq!(replies(&events, "d-2")[0], "handoff:low_confidence");
}

#[test]
fn handoffs_on_an_explicit_ask_and_after_two_unresolved_turns() {
    let events = run(vec![
        user_said_record(0, 0, T0, "ask", Locale::ZhCn, "转人工"),
        user_said_record(1, 0, T0, "stuck", Locale::En, "I need an invoice"),
        user_said_record(1, 1, T0 + 1_000, "stuck", Locale::En, "I need an invoice"),
    ]);
    assert_eq!(replies(&events, "ask")[0], format!("handoff:{}", HandoffReason::UserAsked.as_str()));
    let stuck = replies(&events, "stuck");
    assert!(!stuck[0].starts_with("handoff"), "the first unresolved turn is clarified: {stuck:?}");
    assert_eq!(stuck[1], format!("handoff:{}", HandoffReason::RepeatedlyUnresolved.as_str()));
}

#[test]
fn a_dialogue_idle_past_the_timeout_closes_and_the_next_turn_starts_afresh() {
    let events = run(vec![
        user_said_record(3, 0, T0, "d", Locale::ZhCn, "我要退货"),
        user_said_record(3, 1, T0 + IDLE_MS + 1, "d", Locale::ZhCn, "12345678"),
    ]);
    let d = replies(&events, "d");
    assert_eq!(d[1], "closed", "{d:?}");
    assert_eq!(d[2], "handoff:low_confidence", "the pending return was forgotten: {d:?}");
    let close = events.iter().find(|e| matches!(e.body, EventBody::DialogueClosed(_))).expect("close");
    assert_eq!(close.occurred_at, T0 + IDLE_MS);
}

#[test]
fn malformed_records_are_dead_letters_and_a_named_turn_gets_a_handoff() {
    let named = format!(
        r#"{{"event_id":"0193a000-0000-7000-8000-000000000009","dialogue_id":"named","kind":"user_said","schema_version":9,"occurred_at":{T0},"client_msg_id":"m","user_id":"u","locale":"zh-CN","text":"hi"}}"#
    );
    let events = run(vec![
        raw_record(0, 0, T0, Some("junk"), vec![0xff, 0xfe, b'{']),
        raw_record(0, 1, T0, Some("named"), named.into_bytes()),
    ]);
    let dead = events.iter().filter(|e| matches!(e.body, EventBody::DeadLetter(_))).count();
    assert_eq!(dead, 2);
    // The handoff puts the dialogue in the queue for an agent; it closes at the end of input.
    assert_eq!(replies(&events, "named"), vec![format!("handoff:{}", HandoffReason::ProcessingFailed.as_str()), "closed".into()]);
    let waiting = events.iter().find_map(|e| match &e.body {
        EventBody::OwnershipChanged(c) if e.dialogue_id == "named" && c.reason == switchboard_schemas::OwnershipReason::Handoff => Some(c),
        _ => None,
    });
    assert_eq!(waiting.map(|c| (c.owner, c.handoff_reason)), Some((switchboard_schemas::Owner::Waiting, Some(HandoffReason::ProcessingFailed))));
}

#[test]
fn analysed_turns_cross_a_process_boundary_through_bincode() {
    let record = user_said_record(0, 0, T0, "d", Locale::ZhCn, "你好");
    let said = switchboard_schemas::decode(&record.value).expect("decodes");
    // What timely does with a batch bound for another process (bincode inside).
    use timely::dataflow::channels::ContainerBytes;
    let batch = vec![Stage::Emit(said.clone())];
    let mut bytes = Vec::new();
    batch.into_bytes(&mut bytes);
    assert_eq!(bytes.len(), batch.length_in_bytes());
    let back = <Vec<Stage> as ContainerBytes>::from_bytes(timely::bytes::arc::BytesMut::from(bytes).freeze());
    match back.as_slice() {
        [Stage::Emit(event)] => assert_eq!(event, &said),
        other => panic!("came back as {other:?}"),
    }
}

/// Fails its first `failures` batches with an error that can pass, then answers like `inner`.
struct FlakyUnderstand {
    inner: KeywordUnderstand,
    failures: std::sync::atomic::AtomicUsize,
}

impl switchboard_operators::understand::Understand for FlakyUnderstand {
    fn available_versions(&self) -> switchboard_operators::understand::Versions {
        self.inner.available_versions()
    }
    fn understand(
        &self,
        batch: &[(Locale, &str)],
        versions: &switchboard_operators::understand::Versions,
    ) -> switchboard_operators::Result<Vec<switchboard_operators::understand::Understanding>> {
        use std::sync::atomic::Ordering;
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(switchboard_operators::Error::Unavailable("model server unreachable (test)".into()));
        }
        self.inner.understand(batch, versions)
    }
}

#[test]
fn an_understanding_failure_that_can_pass_is_retried_not_dead_lettered() {
    let flaky = Arc::new(FlakyUnderstand { inner: KeywordUnderstand::demo(), failures: std::sync::atomic::AtomicUsize::new(3) });
    let records = vec![
        user_said_record(0, 0, T0, "a", Locale::ZhCn, "营业时间是几点"),
        user_said_record(1, 0, T0 + 10, "b", Locale::En, "what are your hours"),
    ];
    let events = run_recording(records, 2, graph_config(flaky.clone())).expect("the graph runs");
    assert_eq!(flaky.failures.load(std::sync::atomic::Ordering::SeqCst), 0, "the three failures happened");
    assert!(!events.iter().any(|e| matches!(e.body, EventBody::DeadLetter(_))), "no dead letter: {events:?}");
    assert_eq!(replies(&events, "a"), vec!["客服时间为每天 9:00–21:00。".to_string(), "closed".into()]);
    assert_eq!(replies(&events, "b"), vec!["We answer from 9:00 to 21:00 every day.".to_string(), "closed".into()]);
}

#[test]
fn saved_sessions_with_remembered_replies_cross_a_process_boundary_through_bincode() {
    use switchboard_operators::session::{SessionConfig, Sessions};
    use timely::dataflow::channels::ContainerBytes;
    // A dialogue that answered a say: its state remembers the reply (restored sessions are
    // exchanged between the processes of a cluster at start).
    let mut sessions = Sessions::new(SessionConfig::default());
    let record = user_said_record(0, 0, T0, "d", Locale::ZhCn, "营业时间是几点");
    let said = switchboard_schemas::decode(&record.value).expect("decodes");
    let EventBody::UserSaid(body) = &said.body else { panic!("a say") };
    let turn = switchboard_operators::session::TurnAnalysis {
        said: said.clone(),
        client_msg_id: body.client_msg_id.clone(),
        masked_text: body.text.clone(),
        locale: Locale::ZhCn,
        intent: "opening_hours".into(),
        confidence: 0.95,
        model_version: "m".into(),
        retrieved: None,
        kb_version: "k".into(),
        slots: Default::default(),
        asks_for_human: false,
    };
    sessions.on_turn(turn, T0, T0 + 5);
    let snapshots = sessions.take_changes();
    assert!(!snapshots[0].state.as_ref().expect("open").recent_replies.is_empty());
    let mut bytes = Vec::new();
    snapshots.into_bytes(&mut bytes);
    let back = <Vec<switchboard_schemas::session::SessionSnapshot> as ContainerBytes>::from_bytes(timely::bytes::arc::BytesMut::from(bytes).freeze());
    assert_eq!(back, snapshots);
}
