//! Human agents through the whole graph, no service: a handoff waits for an agent, the first
//! claim in partition order wins also when claims race from two gateways, the bot is silent
//! while the agent has the dialogue and answers again once it is returned, waits time out on
//! record time, and random interleavings of claims and turns give one owner at a time and the
//! same bytes on 1, 2 and 4 workers.

mod common;

use common::{graph_config, reference, reference_in_input_order, WAIT_MS};
use proptest::prelude::*;
use std::sync::Arc;
use switchboard_schemas::{
    AgentClaim, AgentClose, AgentMessage, AgentReturn, Event, EventBody, HandoffReason, HandoffRequested, Locale, Owner,
    OwnershipReason, RefusalReason, SourceRecord,
};
use switchboard_sinks::file::to_ndjson;
use switchboard_topology::runner::recorded::run_recording;
use switchboard_topology::testing::{event_record, record_event, user_said_record, KeywordUnderstand};

const T0: i64 = 1_764_000_000_000;

fn run(records: Vec<SourceRecord>, workers: usize) -> Vec<Event> {
    run_recording(records, workers, graph_config(Arc::new(KeywordUnderstand::demo()))).expect("the graph runs")
}

/// What one dialogue's user and agents see, in order: answers, handoffs, queued turns,
/// ownership changes, agents' messages and refusals.
fn seen(events: &[Event], dialogue: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.dialogue_id == dialogue)
        .filter_map(|e| match &e.body {
            EventBody::AnswerGenerated(a) => Some(format!("answer:{}", a.text)),
            EventBody::HandoffRequested(h) => Some(format!("handoff:{}", h.reason.as_str())),
            EventBody::TurnQueued(q) => Some(format!("queued:{}", q.agent.as_deref().unwrap_or("-"))),
            EventBody::OwnershipChanged(c) => Some(format!("{}:{}:{}", c.owner.as_str(), c.reason.as_str(), c.agent.as_deref().unwrap_or("-"))),
            EventBody::AgentSaid(m) => Some(format!("agent_said:{}:{}", m.agent, m.text)),
            EventBody::AgentActionRefused(r) => Some(format!("refused:{}:{}:{}", r.agent, r.action.as_str(), r.reason.as_str())),
            EventBody::DialogueClosed(_) => Some("closed".into()),
            _ => None,
        })
        .collect()
}

fn claim(partition: i32, offset: i64, at: i64, dialogue: &str, agent: &str) -> SourceRecord {
    event_record(partition, offset, at, dialogue, EventBody::AgentClaim(AgentClaim { agent: agent.into() }))
}

fn message(partition: i32, offset: i64, at: i64, dialogue: &str, agent: &str, text: &str) -> SourceRecord {
    let body = EventBody::AgentMessage(AgentMessage { agent: agent.into(), client_msg_id: format!("a-{offset}"), text: text.into() });
    event_record(partition, offset, at, dialogue, body)
}

fn give_back(partition: i32, offset: i64, at: i64, dialogue: &str, agent: &str) -> SourceRecord {
    event_record(partition, offset, at, dialogue, EventBody::AgentReturn(AgentReturn { agent: agent.into() }))
}

fn close(partition: i32, offset: i64, at: i64, dialogue: &str, agent: &str) -> SourceRecord {
    event_record(partition, offset, at, dialogue, EventBody::AgentClose(AgentClose { agent: agent.into() }))
}

#[test]
fn an_agent_takes_over_the_bot_is_silent_and_answers_again_after_the_return() {
    let d = "d-agent";
    let events = run(
        vec![
            user_said_record(2, 0, T0, d, Locale::ZhCn, "转人工"),
            // Two gateways, the same millisecond: the first in the partition wins.
            claim(2, 1, T0 + 2_000, d, "li"),
            claim(2, 2, T0 + 2_000, d, "wang"),
            user_said_record(2, 3, T0 + 3_000, d, Locale::ZhCn, "我的快递到哪了"),
            message(2, 4, T0 + 4_000, d, "wang", "我来吧"),
            message(2, 5, T0 + 5_000, d, "li", "您好，请留电话 13812345678"),
            give_back(2, 6, T0 + 6_000, d, "li"),
            user_said_record(2, 7, T0 + 7_000, d, Locale::ZhCn, "营业时间是几点"),
        ],
        2,
    );
    assert_eq!(
        seen(&events, d),
        [
            "handoff:user_asked",
            "waiting:handoff:-",
            "agent:claimed:li",
            "refused:wang:claim:already_claimed",
            "queued:li",
            "refused:wang:message:not_owner",
            "agent_said:li:您好，请留电话 138****5678",
            "bot:returned:li",
            "answer:客服时间为每天 9:00–21:00。",
            "closed",
        ]
        .map(String::from)
    );
    assert!(!to_ndjson(&events).contains("13812345678"), "the agent's text is masked everywhere");
}

#[test]
fn an_agent_closes_the_dialogue_and_later_actions_find_nothing_to_claim() {
    let d = "d-close";
    let events = run(
        vec![
            user_said_record(5, 0, T0, d, Locale::En, "agent please"),
            claim(5, 1, T0 + 1_000, d, "li"),
            close(5, 2, T0 + 2_000, d, "wang"),
            close(5, 3, T0 + 3_000, d, "li"),
            claim(5, 4, T0 + 4_000, d, "wang"),
        ],
        4,
    );
    // (Canonical order: at the same time, dialogue_closed ranks before ownership_changed.)
    assert_eq!(
        seen(&events, d),
        ["handoff:user_asked", "waiting:handoff:-", "agent:claimed:li", "refused:wang:close:not_owner", "closed", "bot:closed:li", "refused:wang:claim:not_waiting"]
            .map(String::from)
    );
    let close = events.iter().find(|e| matches!(e.body, EventBody::DialogueClosed(_))).expect("closed");
    assert_eq!(close.occurred_at, T0 + 3_000, "when the agent closed it");
}

#[test]
fn a_gateways_timeout_queues_the_dialogue_and_an_unclaimed_wait_goes_back_to_the_bot() {
    let d = "d-timeout";
    let said = user_said_record(1, 0, T0, d, Locale::ZhCn, "营业时间是几点");
    let said_event = switchboard_schemas::decode(&said.value).expect("decodes");
    let timeout = EventBody::HandoffRequested(HandoffRequested {
        in_reply_to: said_event.event_id,
        client_msg_id: "m-1-0".into(),
        reason: HandoffReason::Timeout,
        detail: "no answer in time".into(),
        latency_ms: 5_000,
    });
    let timeout_event = record_event(1, 1, T0 + 5_000, d, timeout.clone());
    let events = run(
        vec![
            said,
            event_record(1, 1, T0 + 5_000, d, timeout),
            user_said_record(1, 2, T0 + 6_000, d, Locale::ZhCn, "还在吗"),
            // Past the wait: the bot is back, and apologises once.
            user_said_record(1, 3, T0 + 5_000 + WAIT_MS + 1, d, Locale::ZhCn, "营业时间是几点"),
        ],
        1,
    );
    assert_eq!(
        seen(&events, d),
        [
            "answer:客服时间为每天 9:00–21:00。".to_string(),
            "handoff:timeout".into(),
            "waiting:handoff:-".into(),
            "queued:-".into(),
            "bot:wait_timeout:-".into(),
            format!("answer:{}客服时间为每天 9:00–21:00。", switchboard_schemas::clarify::WAIT_APOLOGY_ZH),
            "closed".into(),
        ]
    );
    let back = events
        .iter()
        .find(|e| matches!(&e.body, EventBody::OwnershipChanged(c) if c.reason == OwnershipReason::WaitTimeout))
        .expect("wait timeout");
    assert_eq!(back.occurred_at, T0 + 5_000 + WAIT_MS, "at the deadline, on record time");
    assert!(matches!(&back.body, EventBody::OwnershipChanged(c) if c.in_reply_to == timeout_event.event_id));
}

/// One generated input of the property test, for one of two dialogues.
#[derive(Debug, Clone)]
enum Input {
    Say(&'static str),
    Claim(&'static str),
    Message(&'static str),
    Return(&'static str),
}

fn input() -> impl Strategy<Value = (usize, Input, i64)> {
    let agent = prop_oneof![Just("li"), Just("wang"), Just("zhao")];
    let what = prop_oneof![
        2 => prop_oneof![Just("转人工"), Just("营业时间是几点"), Just("今天天气怎么样")].prop_map(Input::Say),
        4 => agent.clone().prop_map(Input::Claim),
        1 => agent.clone().prop_map(Input::Message),
        1 => agent.prop_map(Input::Return),
    ];
    (0usize..2, what, prop_oneof![2 => Just(0i64), 1 => 1i64..40_000])
}

/// Records of two dialogues on two partitions, in the generated order.
fn records(inputs: &[(usize, Input, i64)]) -> Vec<SourceRecord> {
    let mut at = T0;
    let mut offsets = [0i64; 2];
    inputs
        .iter()
        .map(|(which, input, gap)| {
            at += gap;
            let (partition, dialogue) = ([3, 6][*which], ["d-a", "d-b"][*which]);
            let offset = offsets[*which];
            offsets[*which] += 1;
            match input {
                Input::Say(text) => user_said_record(partition, offset, at, dialogue, Locale::ZhCn, text),
                Input::Claim(agent) => claim(partition, offset, at, dialogue, agent),
                Input::Message(agent) => message(partition, offset, at, dialogue, agent, "好的"),
                Input::Return(agent) => give_back(partition, offset, at, dialogue, agent),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random interleavings of claims from several agents, user turns, messages and returns:
    /// every worker count writes the sequential reference's bytes, at most one claim wins while
    /// the dialogue is away from the bot (the others are refused naming the owner), and no bot
    /// answer is written while an agent or the queue has the dialogue.
    #[test]
    fn racing_claims_leave_one_owner_on_any_worker_count(inputs in proptest::collection::vec(input(), 1..30)) {
        let records = records(&inputs);
        let want = to_ndjson(&reference(&records, &KeywordUnderstand::demo()));
        for workers in [1, 2, 4] {
            prop_assert_eq!(to_ndjson(&run(records.clone(), workers)), want.clone(), "{} workers", workers);
        }
        // The same events in the order they were decided (canonical order sorts same-time
        // events by kind).
        let decided = reference_in_input_order(&records, &KeywordUnderstand::demo());
        for dialogue in ["d-a", "d-b"] {
            let (mut owner, mut with_bot) = (None::<String>, true);
            for e in decided.iter().filter(|e| e.dialogue_id == dialogue) {
                match &e.body {
                    EventBody::OwnershipChanged(c) if c.owner == Owner::Agent => {
                        prop_assert!(owner.is_none(), "{:?} claimed while {:?} owns it", c.agent, owner);
                        owner = c.agent.clone();
                        with_bot = false;
                    }
                    EventBody::OwnershipChanged(c) => {
                        with_bot = c.owner == Owner::Bot;
                        owner = None;
                    }
                    EventBody::AnswerGenerated(_) => prop_assert!(with_bot, "the bot answered while not owning {}", dialogue),
                    EventBody::AgentActionRefused(r) if r.reason == RefusalReason::AlreadyClaimed => {
                        prop_assert_eq!(&r.owner, &owner);
                    }
                    EventBody::DialogueClosed(_) => {
                        prop_assert!(with_bot);
                        owner = None;
                    }
                    _ => {}
                }
            }
        }
    }
}
