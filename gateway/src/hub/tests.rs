//! Unit tests of the routing table.

use super::*;
use switchboard_schemas::{AnswerGenerated, HandoffReason, HandoffRequested};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn hub() -> Hub {
    Hub::new(Arc::new(Metrics::new()), Duration::from_secs(600), 100, 100)
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
    let a = h.attach(None, "u", Locale::En, LOCAL, 1, tx).unwrap();
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
    let d = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap().dialogue_id;
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
    let d = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap().dialogue_id;
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
    let d = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap().dialogue_id;
    let e = said(h.begin_say(&d, 1, "m1", "x"));
    assert_eq!(h.route(&answer(&d, "m1", e.event_id)), "routed");
    assert!(!h.produced(&d, "m1", Ok(e.event_id)));
    assert_eq!(drain(&mut rx).len(), 1);
}

#[test]
fn answers_wait_for_the_resume_and_retries_on_the_new_connection_are_replayed() {
    let h = hub();
    let (tx1, mut rx1) = mpsc::unbounded_channel();
    let d = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx1).unwrap().dialogue_id;
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
    assert_eq!(h.attach(Some(&d), "intruder", Locale::ZhCn, LOCAL, 2, tx2.clone()).unwrap_err(), AttachError::WrongUser);
    let a = h.attach(Some(&d), "u", Locale::ZhCn, LOCAL, 2, tx2).unwrap();
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
    let d = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx1).unwrap().dialogue_id;
    let (tx2, _rx2) = mpsc::unbounded_channel();
    h.attach(Some(&d), "u", Locale::En, LOCAL, 2, tx2).unwrap();
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
    let d = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap().dialogue_id;
    let e1 = said(h.begin_say(&d, 1, "m1", "x"));
    let e2 = said(h.begin_say(&d, 1, "m2", "y"));
    let e3 = said(h.begin_say(&d, 1, "m3", "z"));
    assert!(h.produced(&d, "m2", Ok(e2.event_id)));
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
    // m2 was accepted (its timeout becomes an event); m3 was still producing (it may never
    // have reached the broker).
    let unanswered = h.expire_all(&d);
    assert_eq!(unanswered.iter().map(|u| (u.client_msg_id.as_str(), u.user_said)).collect::<Vec<_>>(), vec![("m2", e2.event_id)]);
    assert_ne!(e3.event_id, e2.event_id);
    assert_eq!(h.pending(&d), 0);
    let frames = drain(&mut rx);
    assert!(
        matches!(&frames[0], ServerFrame::Handoff { reason, in_reply_to, .. } if reason == "user_asked" && in_reply_to == "m1")
    );
    assert!(
        matches!(&frames[1], ServerFrame::Handoff { reason, in_reply_to, .. } if reason == "timeout" && in_reply_to == "m2")
    );
    assert!(
        matches!(&frames[2], ServerFrame::Handoff { reason, in_reply_to, .. } if reason == "timeout" && in_reply_to == "m3")
    );
    assert_eq!(frames.len(), 3);
}

#[test]
fn pending_says_are_bounded_and_never_evicted() {
    let h = hub();
    let (tx, _rx) = mpsc::unbounded_channel();
    let d = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap().dialogue_id;
    for i in 0..MAX_PENDING_PER_DIALOGUE {
        let _ = said(h.begin_say(&d, 1, &format!("m{i}"), "x"));
    }
    assert!(matches!(h.begin_say(&d, 1, "one-more", "x"), SayDecision::TooManyPending));
    assert_eq!(h.pending(&d), MAX_PENDING_PER_DIALOGUE);
}

#[test]
fn gc_forgets_only_idle_disconnected_dialogues() {
    let h = Hub::new(Arc::new(Metrics::new()), Duration::ZERO, 100, 100);
    let (tx, _rx) = mpsc::unbounded_channel();
    let held = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap().dialogue_id;
    let (tx, _rx2) = mpsc::unbounded_channel();
    let gone = h.attach(None, "u", Locale::ZhCn, LOCAL, 2, tx).unwrap().dialogue_id;
    h.detach(&gone, 2);
    std::thread::sleep(Duration::from_millis(2));
    h.gc();
    let state = h.lock();
    assert!(state.dialogues.contains_key(&held));
    assert!(!state.dialogues.contains_key(&gone));
}

#[test]
fn dialogue_cap_refuses_new_dialogues() {
    let h = Hub::new(Arc::new(Metrics::new()), Duration::from_secs(60), 1, 1);
    let (tx, _rx) = mpsc::unbounded_channel();
    h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap();
    let (tx, _rx2) = mpsc::unbounded_channel();
    assert_eq!(h.attach(None, "u", Locale::ZhCn, LOCAL, 2, tx).unwrap_err(), AttachError::Busy);
}

#[test]
fn one_address_cannot_fill_the_dialogue_cap() {
    let h = Hub::new(Arc::new(Metrics::new()), Duration::from_secs(60), 10, 2);
    let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));
    let (tx, _rx) = mpsc::unbounded_channel();
    h.attach(None, "u1", Locale::ZhCn, LOCAL, 1, tx.clone()).unwrap();
    h.attach(None, "u2", Locale::ZhCn, LOCAL, 2, tx.clone()).unwrap();
    assert_eq!(h.attach(None, "u3", Locale::ZhCn, LOCAL, 3, tx.clone()).unwrap_err(), AttachError::AddressBusy);
    h.attach(None, "u4", Locale::ZhCn, other, 4, tx).unwrap();
}

/// Admission control: while `max_pending` says of all dialogues wait, a new say is refused
/// (`Overloaded`); every way a say stops waiting (answer, timeout, failed produce) frees its slot.
#[test]
fn admission_control_bounds_the_says_pending_across_dialogues() {
    let h = Hub::new(Arc::new(Metrics::new()), Duration::from_secs(600), 100, 100).with_max_pending(3);
    let (tx, _rx) = mpsc::unbounded_channel();
    let (tx2, _rx2) = mpsc::unbounded_channel();
    let a = h.attach(None, "u", Locale::ZhCn, LOCAL, 1, tx).unwrap().dialogue_id;
    let b = h.attach(None, "v", Locale::ZhCn, LOCAL, 2, tx2).unwrap().dialogue_id;
    let a1 = said(h.begin_say(&a, 1, "a1", "x"));
    let a2 = said(h.begin_say(&a, 1, "a2", "x"));
    let b1 = said(h.begin_say(&b, 2, "b1", "x"));
    assert!(matches!(h.begin_say(&b, 2, "b2", "x"), SayDecision::Overloaded));
    // A retry of a pending say is still absorbed, not refused.
    assert!(matches!(h.begin_say(&a, 1, "a1", "x"), SayDecision::Absorbed));
    // An answer frees a slot.
    assert!(h.produced(&a, "a1", Ok(a1.event_id)));
    assert_eq!(h.route(&answer(&a, "a1", a1.event_id)), "routed");
    let b2 = said(h.begin_say(&b, 2, "b2", "x"));
    assert!(matches!(h.begin_say(&b, 2, "b3", "x"), SayDecision::Overloaded));
    // A timeout frees one, and so does a produce that failed.
    assert!(h.produced(&a, "a2", Ok(a2.event_id)));
    assert!(h.expire(&a, "a2", a2.event_id));
    let _b3 = said(h.begin_say(&b, 2, "b3", "x"));
    assert!(!h.produced(&b, "b1", Err(())));
    let _b4 = said(h.begin_say(&b, 2, "b4", "x"));
    assert!(matches!(h.begin_say(&a, 1, "a3", "x"), SayDecision::Overloaded));
    let _ = (b1, b2);
}
