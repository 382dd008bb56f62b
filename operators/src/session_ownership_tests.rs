//! Unit and property tests of dialogue ownership in the session: handoff to waiting, the first
//! claim wins, only the owner writes, returns and closes, the bot is silent while a human has
//! the dialogue, waits time out by the configured rule.

use super::*;
use proptest::prelude::*;
use switchboard_schemas::{
    AgentActionRefused, AgentClaim, AgentClose, AgentMessage, AgentReturn, EventId, HandoffReason, Owner, OwnershipChanged,
    UserSaid,
};

const D: &str = "d";

fn said(at: i64, n: u32, text: &str) -> Event {
    let mut event = Event::new(
        D,
        at,
        EventBody::UserSaid(UserSaid { client_msg_id: format!("m{n}"), user_id: "u".into(), locale: Locale::ZhCn, text: text.into() }),
    );
    event.event_id = id(n);
    event
}

fn id(n: u32) -> EventId {
    let mut bytes = [0u8; 16];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    EventId::from_bytes(bytes)
}

/// A turn: 转人工 asks for a human, 天气 is unsure (a low-confidence handoff), anything else is
/// an opening-hours question the bot answers.
fn turn(at: i64, n: u32, text: &str) -> TurnAnalysis {
    let (intent, confidence) = if text.contains("天气") { ("out_of_scope", 0.2) } else { ("opening_hours", 0.9) };
    TurnAnalysis {
        said: said(at, n, text),
        client_msg_id: format!("m{n}"),
        masked_text: crate::pii::mask(text).into_owned(),
        locale: Locale::ZhCn,
        intent: intent.into(),
        confidence,
        model_version: "v1".into(),
        retrieved: Some(RetrievedAnswer { entry_id: "hours".into(), score: 0.9, template: "客服时间为 9:00–21:00。".into(), required_slots: vec![] }),
        kb_version: "kb1".into(),
        slots: BTreeMap::new(),
        asks_for_human: asks_for_human(text),
    }
}

fn action(at: i64, n: u32, body: EventBody) -> Event {
    let mut event = Event::new(D, at, body);
    event.event_id = id(n);
    event
}

fn claim(at: i64, n: u32, agent: &str) -> Event {
    action(at, n, EventBody::AgentClaim(AgentClaim { agent: agent.into() }))
}

fn message(at: i64, n: u32, agent: &str, text: &str) -> Event {
    action(at, n, EventBody::AgentMessage(AgentMessage { agent: agent.into(), client_msg_id: format!("a{n}"), text: text.into() }))
}

fn give_back(at: i64, n: u32, agent: &str) -> Event {
    action(at, n, EventBody::AgentReturn(AgentReturn { agent: agent.into() }))
}

fn close(at: i64, n: u32, agent: &str) -> Event {
    action(at, n, EventBody::AgentClose(AgentClose { agent: agent.into() }))
}

fn timeout_handoff(at: i64, n: u32, of: u32) -> Event {
    action(
        at,
        n,
        EventBody::HandoffRequested(HandoffRequested {
            in_reply_to: id(of),
            client_msg_id: format!("m{of}"),
            reason: HandoffReason::Timeout,
            detail: "no answer in time".into(),
            latency_ms: 5_000,
        }),
    )
}

fn changes(events: &[Event]) -> Vec<(Owner, OwnershipReason, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::OwnershipChanged(c) => Some((c.owner, c.reason, c.agent.clone())),
            _ => None,
        })
        .collect()
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind().as_str()).collect()
}

fn config() -> SessionConfig {
    SessionConfig { wait_timeout_ms: 10_000, ..SessionConfig::default() }
}

#[test]
fn a_handoff_waits_for_an_agent_and_the_bot_stays_silent() {
    let mut s = Sessions::new(config());
    let out = s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    assert_eq!(kinds(&out), ["intent_recognized", "knowledge_retrieved", "handoff_requested", "ownership_changed"]);
    let EventBody::OwnershipChanged(c) = &out[3].body else { panic!("{out:?}") };
    assert_eq!((c.owner, c.reason, c.handoff_reason, c.in_reply_to), (Owner::Waiting, OwnershipReason::Handoff, Some(HandoffReason::UserAsked), id(1)));
    assert_eq!(out[3].event_id, EventId::derived(id(1), OWNERSHIP_ROLE));
    let out = s.on_turn(turn(2_000, 2, "营业时间是几点 13812345678"), 2_000, 2_000);
    assert_eq!(kinds(&out), ["intent_recognized", "knowledge_retrieved", "turn_queued"]);
    let EventBody::TurnQueued(q) = &out[2].body else { panic!("{out:?}") };
    assert_eq!((q.agent.as_deref(), q.client_msg_id.as_str()), (None, "m2"));
    assert!(!q.masked_text.contains("13812345678"), "{}", q.masked_text);
    assert_eq!(out[2].event_id, EventId::derived(id(2), REPLY_ROLE), "the turn's one reply");
}

#[test]
fn the_first_claim_wins_and_only_the_owner_writes() {
    let mut s = Sessions::new(config());
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    let out = s.on_action(claim(2_000, 2, "li"), 2_000, 2_000);
    assert_eq!(kinds(&out), ["agent_claim", "ownership_changed"]);
    assert_eq!(changes(&out), [(Owner::Agent, OwnershipReason::Claimed, Some("li".into()))]);
    // A second claim at the very same time, from another gateway: refused, naming the owner.
    let out = s.on_action(claim(2_000, 3, "wang"), 2_000, 2_000);
    let EventBody::AgentActionRefused(r) = &out[1].body else { panic!("{out:?}") };
    assert_eq!((r.reason, r.action, r.owner.as_deref(), r.in_reply_to), (RefusalReason::AlreadyClaimed, AgentAction::Claim, Some("li"), id(3)));
    let out = s.on_turn(turn(3_000, 4, "营业时间"), 3_000, 3_000);
    assert!(matches!(&out[2].body, EventBody::TurnQueued(q) if q.agent.as_deref() == Some("li")), "{out:?}");
    let out = s.on_action(message(4_000, 5, "wang", "我来"), 4_000, 4_000);
    assert!(matches!(&out[1].body, EventBody::AgentActionRefused(r) if r.reason == RefusalReason::NotOwner), "{out:?}");
    let out = s.on_action(message(4_000, 6, "li", "请打 13812345678"), 4_000, 4_100);
    assert_eq!(out.len(), 2);
    let EventBody::AgentSaid(m) = &out[1].body else { panic!("{out:?}") };
    assert_eq!((m.agent.as_str(), m.client_msg_id.as_str(), m.in_reply_to), ("li", "a6", id(6)));
    assert!(!m.text.contains("13812345678") && m.text.starts_with("请打"), "{}", m.text);
    assert_eq!((out[1].event_id, out[1].occurred_at), (EventId::derived(id(6), REPLY_ROLE), 4_100));
}

#[test]
fn a_return_restores_normal_answering() {
    let mut s = Sessions::new(config());
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    s.on_action(claim(2_000, 2, "li"), 2_000, 2_000);
    let out = s.on_action(give_back(3_000, 3, "wang"), 3_000, 3_000);
    assert!(matches!(&out[1].body, EventBody::AgentActionRefused(r) if r.reason == RefusalReason::NotOwner && r.action == AgentAction::Return));
    let out = s.on_action(give_back(3_000, 4, "li"), 3_000, 3_000);
    assert_eq!(changes(&out), [(Owner::Bot, OwnershipReason::Returned, Some("li".into()))]);
    let out = s.on_turn(turn(4_000, 5, "营业时间"), 4_000, 4_000);
    assert!(matches!(&out[2].body, EventBody::AnswerGenerated(a) if a.text == "客服时间为 9:00–21:00。"), "no apology: {out:?}");
    // Returned, the agent can no longer write.
    let out = s.on_action(message(5_000, 6, "li", "还在吗"), 5_000, 5_000);
    assert!(matches!(&out[1].body, EventBody::AgentActionRefused(r) if r.reason == RefusalReason::NotOwner && r.owner.is_none()));
}

#[test]
fn the_owner_closes_the_dialogue_and_it_starts_afresh() {
    let mut s = Sessions::new(config());
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    s.on_action(claim(2_000, 2, "li"), 2_000, 2_000);
    let out = s.on_action(close(3_000, 3, "li"), 3_000, 3_000);
    assert_eq!(kinds(&out), ["agent_close", "ownership_changed", "dialogue_closed"]);
    assert_eq!(changes(&out), [(Owner::Bot, OwnershipReason::Closed, Some("li".into()))]);
    assert!(matches!(&out[2].body, EventBody::DialogueClosed(c) if c.reason == CloseReason::AgentClosed && c.turns == 1));
    assert_eq!(out[2].occurred_at, 3_000);
    assert!(s.get(D).is_none(), "state forgotten");
    assert_eq!(s.take_changes(), vec![SessionSnapshot { dialogue_id: D.into(), state: None }]);
    let out = s.on_action(claim(4_000, 4, "wang"), 4_000, 4_000);
    assert!(matches!(&out[1].body, EventBody::AgentActionRefused(r) if r.reason == RefusalReason::NotWaiting));
    assert!(s.is_empty(), "a refused action opens nothing");
}

#[test]
fn an_agent_may_take_a_dialogue_from_the_bot() {
    let mut s = Sessions::new(config());
    s.on_turn(turn(1_000, 1, "营业时间"), 1_000, 1_000);
    let out = s.on_action(claim(2_000, 2, "li"), 2_000, 2_000);
    assert_eq!(changes(&out), [(Owner::Agent, OwnershipReason::Claimed, Some("li".into()))]);
    let out = s.on_turn(turn(3_000, 3, "营业时间"), 3_000, 3_000);
    assert!(matches!(&out[2].body, EventBody::TurnQueued(_)), "{out:?}");
}

#[test]
fn a_gateways_timeout_handoff_puts_the_dialogue_in_the_queue() {
    let mut s = Sessions::new(config());
    let answered = s.on_turn(turn(1_000, 1, "营业时间"), 1_000, 7_000);
    assert!(matches!(&answered[2].body, EventBody::AnswerGenerated(_)), "the late answer is still recorded");
    let out = s.on_action(timeout_handoff(6_000, 2, 1), 6_000, 6_000);
    assert_eq!(kinds(&out), ["handoff_requested", "ownership_changed"]);
    assert_eq!(out[0].event_id, id(2), "the input itself, for the sinks");
    let EventBody::OwnershipChanged(c) = &out[1].body else { panic!("{out:?}") };
    assert_eq!((c.owner, c.handoff_reason, c.in_reply_to), (Owner::Waiting, Some(HandoffReason::Timeout), id(2)));
    // Already waiting: recorded, nothing changes.
    let out = s.on_action(timeout_handoff(6_500, 3, 1), 6_500, 6_500);
    assert_eq!(kinds(&out), ["handoff_requested"]);
    // A handoff for a dialogue that is not open opens it, waiting.
    let mut fresh = Sessions::new(config());
    let out = fresh.on_action(timeout_handoff(1_000, 9, 8), 1_000, 1_000);
    assert_eq!(kinds(&out), ["handoff_requested", "ownership_changed"]);
    assert!(matches!(fresh.get(D).map(|d| &d.owner), Some(Ownership::Waiting { .. })));
}

#[test]
fn a_wait_past_the_timeout_goes_back_to_the_bot_with_an_apology() {
    let mut s = Sessions::new(config());
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    assert!(s.close_idle(10_999).is_empty(), "not yet");
    // Without a user turn: the frontier passes the deadline.
    let out = s.close_idle(11_000);
    assert_eq!(changes(&out), [(Owner::Bot, OwnershipReason::WaitTimeout, None)]);
    assert_eq!((out[0].occurred_at, out[0].event_id), (11_000, EventId::derived(id(1), WAIT_TIMEOUT_ROLE)));
    assert!(matches!(&out[0].body, EventBody::OwnershipChanged(OwnershipChanged { in_reply_to, .. }) if *in_reply_to == id(1)));
    let out = s.on_turn(turn(20_000, 2, "营业时间"), 20_000, 20_000);
    let EventBody::AnswerGenerated(a) = &out[2].body else { panic!("{out:?}") };
    assert_eq!(a.text, format!("{}客服时间为 9:00–21:00。", switchboard_schemas::clarify::WAIT_APOLOGY_ZH));
    let out = s.on_turn(turn(21_000, 3, "营业时间"), 21_000, 21_000);
    assert!(matches!(&out[2].body, EventBody::AnswerGenerated(a) if a.text == "客服时间为 9:00–21:00。"), "one apology: {out:?}");
}

#[test]
fn a_turn_after_the_deadline_ends_the_wait_first() {
    let mut s = Sessions::new(config());
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    let out = s.on_turn(turn(12_000, 2, "营业时间"), 12_000, 12_000);
    assert_eq!(kinds(&out), ["ownership_changed", "intent_recognized", "knowledge_retrieved", "answer_generated"]);
    assert_eq!(out[0].occurred_at, 11_000, "at the deadline");
    // A claim after the deadline finds the bot's dialogue, and takes it.
    let mut s = Sessions::new(config());
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    let out = s.on_action(claim(30_000, 2, "li"), 30_000, 30_000);
    assert_eq!(changes(&out), [(Owner::Bot, OwnershipReason::WaitTimeout, None), (Owner::Agent, OwnershipReason::Claimed, Some("li".into()))]);
    assert!(!s.get(D).is_some_and(|d| d.apology_due), "the agent, not the bot, answers next");
}

#[test]
fn a_wait_that_stays_queued_has_no_deadline() {
    let mut s = Sessions::new(SessionConfig { on_wait_timeout: OnWaitTimeout::StayQueued, ..config() });
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    assert!(s.close_idle(1_000_000).iter().all(|e| !matches!(&e.body, EventBody::OwnershipChanged(c) if c.reason == OwnershipReason::WaitTimeout)));
    let mut s = Sessions::new(SessionConfig { on_wait_timeout: OnWaitTimeout::StayQueued, ..config() });
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    let out = s.on_turn(turn(50_000, 2, "营业时间"), 50_000, 50_000);
    assert_eq!(kinds(&out), ["intent_recognized", "knowledge_retrieved", "turn_queued"]);
}

#[test]
fn a_dialogue_closing_idle_while_not_with_the_bot_says_so() {
    let mut s = Sessions::new(SessionConfig { idle_timeout_ms: 5_000, ..config() });
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    s.on_action(claim(2_000, 2, "li"), 2_000, 2_000);
    let out = s.close_idle(7_000);
    assert_eq!(kinds(&out), ["ownership_changed", "dialogue_closed"]);
    assert_eq!(changes(&out), [(Owner::Bot, OwnershipReason::Closed, Some("li".into()))]);
    assert_eq!(out[0].event_id, EventId::derived(id(2), CLOSED_ROLE), "from the last input");
    // Waiting and idle before the wait ran out: it closes still waiting (abandoned).
    let mut s = Sessions::new(SessionConfig { idle_timeout_ms: 5_000, ..config() });
    s.on_turn(turn(1_000, 1, "转人工"), 1_000, 1_000);
    assert_eq!(changes(&s.close_idle(i64::MAX)), [(Owner::Bot, OwnershipReason::Closed, None)]);
}

#[test]
fn ownership_survives_a_restart_and_a_lane_runs_its_wait_deadline() {
    let mut s = Sessions::new(config());
    s.on_turn_in_lane(turn(1_000, 1, "转人工"), 2, 1_000, 1_000);
    let saved = s.take_changes();
    let text = serde_json::to_string(&saved[0]).expect("serialise");
    let mut restarted = Sessions::new(config());
    restarted.restore(serde_json::from_str(&text).expect("deserialise"));
    assert!(matches!(restarted.get(D).map(|d| &d.owner), Some(Ownership::Waiting { since_ms: 1_000, .. })));
    // Another dialogue's record on the same lane past the deadline ends the wait.
    let mut other = turn(11_500, 7, "营业时间");
    other.said.dialogue_id = "other".into();
    let out = restarted.on_turn_in_lane(other, 2, 11_500, 11_500);
    assert_eq!(changes(&out), [(Owner::Bot, OwnershipReason::WaitTimeout, None)]);
    assert_eq!(out[0].dialogue_id, D);
}

/// One generated input of the property test.
#[derive(Debug, Clone)]
enum Input {
    Turn(&'static str),
    Claim(&'static str),
    Message(&'static str),
    Return(&'static str),
    Close(&'static str),
    TimeoutHandoff,
    /// The frontier moves (idle closes and wait timeouts without an input).
    Tick,
}

fn input() -> impl Strategy<Value = Input> {
    let agent = prop_oneof![Just("li"), Just("wang"), Just("zhao")];
    prop_oneof![
        3 => prop_oneof![Just("转人工"), Just("今天天气怎么样"), Just("营业时间")].prop_map(Input::Turn),
        4 => agent.clone().prop_map(Input::Claim),
        2 => agent.clone().prop_map(Input::Message),
        1 => agent.clone().prop_map(Input::Return),
        1 => agent.prop_map(Input::Close),
        1 => Just(Input::TimeoutHandoff),
        1 => Just(Input::Tick),
    ]
}

/// Runs the inputs, `gaps[i]` ms apart, and returns every event in order.
fn run(inputs: &[(Input, i64)], config: &SessionConfig) -> Vec<Event> {
    let mut s = Sessions::new(config.clone());
    let (mut at, mut out) = (1_000i64, Vec::new());
    for (n, (input, gap)) in inputs.iter().enumerate() {
        at += gap;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        out.extend(match input {
            Input::Turn(text) => s.on_turn(turn(at, n, text), at, at),
            Input::Claim(agent) => s.on_action(claim(at, n, agent), at, at),
            Input::Message(agent) => s.on_action(message(at, n, agent, "您好 13812345678"), at, at),
            Input::Return(agent) => s.on_action(give_back(at, n, agent), at, at),
            Input::Close(agent) => s.on_action(close(at, n, agent), at, at),
            Input::TimeoutHandoff => s.on_action(timeout_handoff(at, n, n.saturating_sub(1)), at, at),
            Input::Tick => s.close_idle(at),
        });
    }
    out.extend(s.close_idle(i64::MAX));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Racing claims from several agents interleaved with user turns, messages, returns,
    /// closes, timeouts and frontier moves: replaying the outputs, the bot never answers while
    /// an agent or the queue has the dialogue, exactly one claim wins per period away from the
    /// bot (every other is refused naming the winner), only the owner's messages pass, and the
    /// same inputs give the same events.
    #[test]
    fn one_owner_at_a_time_under_racing_claims(
        inputs in proptest::collection::vec((input(), prop_oneof![3 => Just(0i64), 2 => 1i64..3_000, 1 => 8_000i64..20_000]), 1..40),
        stay in any::<bool>(),
    ) {
        let rule = if stay { OnWaitTimeout::StayQueued } else { OnWaitTimeout::BackToBot };
        let config = SessionConfig { idle_timeout_ms: 60_000, wait_timeout_ms: 10_000, on_wait_timeout: rule, ..SessionConfig::default() };
        let events = run(&inputs, &config);
        prop_assert_eq!(&events, &run(&inputs, &config), "deterministic");
        // The owner as the outputs tell it.
        let mut owner: Option<String> = None;
        let mut with_bot = true;
        let mut claims_this_period = 0;
        for e in &events {
            match &e.body {
                EventBody::OwnershipChanged(c) => {
                    match c.owner {
                        Owner::Agent => {
                            prop_assert!(owner.is_none(), "claimed while {owner:?} owns it");
                            claims_this_period += 1;
                            prop_assert_eq!(claims_this_period, 1, "two claims won in one period");
                            owner = c.agent.clone();
                            with_bot = false;
                        }
                        Owner::Waiting => {
                            prop_assert!(with_bot && owner.is_none(), "handed off while not with the bot");
                            with_bot = false;
                        }
                        Owner::Bot => {
                            prop_assert!(!with_bot, "back to the bot while with it");
                            prop_assert_eq!(c.agent.clone(), owner.take().filter(|_| c.reason != OwnershipReason::WaitTimeout));
                            with_bot = true;
                            claims_this_period = 0;
                        }
                    }
                }
                EventBody::AnswerGenerated(_) => prop_assert!(with_bot, "the bot answered while not owning the dialogue"),
                EventBody::HandoffRequested(h) if h.reason != HandoffReason::Timeout => prop_assert!(with_bot, "the bot handed off while not owning it"),
                EventBody::TurnQueued(q) => {
                    prop_assert!(!with_bot, "queued while with the bot");
                    prop_assert_eq!(&q.agent, &owner);
                }
                EventBody::AgentSaid(m) => {
                    prop_assert_eq!(Some(&m.agent), owner.as_ref(), "a message from a non-owner passed");
                    prop_assert!(!m.text.contains("13812345678"), "unmasked: {}", m.text);
                }
                EventBody::AgentActionRefused(AgentActionRefused { action: AgentAction::Claim, reason, owner: named, .. }) => {
                    prop_assert!(*reason == RefusalReason::NotWaiting || (owner.is_some() && named == &owner), "claim refused with {reason:?} while {owner:?} owns it");
                }
                EventBody::DialogueClosed(_) => {
                    prop_assert!(with_bot && owner.is_none(), "closed without giving it back");
                    claims_this_period = 0;
                }
                _ => {}
            }
        }
        // Every agent's action got exactly one reply.
        for e in events.iter().filter(|e| crate::ownership::action_of(&e.body).is_some()) {
            let reply = EventId::derived(e.event_id, REPLY_ROLE);
            prop_assert_eq!(events.iter().filter(|r| r.event_id == reply).count(), 1);
        }
    }
}
