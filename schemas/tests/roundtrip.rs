//! Property tests: every event survives encode → decode unchanged, and no byte string makes
//! the decoder panic.

use proptest::prelude::*;
use switchboard_schemas::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ,.?!]{0,40}",
        "[\\u{4e00}-\\u{9fa5}，。？！0-9]{0,40}",
        any::<String>().prop_map(|s| s.chars().take(200).collect()),
    ]
}

fn id() -> impl Strategy<Value = EventId> {
    any::<[u8; 16]>().prop_map(|b| EventId(uuid::Uuid::from_bytes(b)))
}

fn confidence() -> impl Strategy<Value = f32> {
    (0u32..=1000).prop_map(|n| n as f32 / 1000.0)
}

fn body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        (text(), text(), text(), prop_oneof![Just(Locale::ZhCn), Just(Locale::En)]).prop_map(
            |(client_msg_id, user_id, text, locale)| EventBody::UserSaid(UserSaid { client_msg_id, user_id, locale, text })
        ),
        (id(), text(), text(), text(), confidence(), text()).prop_map(|(in_reply_to, client_msg_id, masked_text, intent, confidence, model_version)| {
            EventBody::IntentRecognized(IntentRecognized { in_reply_to, client_msg_id, masked_text, intent, confidence, model_version })
        }),
        (id(), text(), proptest::option::of(text()), confidence(), text()).prop_map(|(in_reply_to, client_msg_id, entry_id, score, kb_version)| {
            EventBody::KnowledgeRetrieved(KnowledgeRetrieved { in_reply_to, client_msg_id, entry_id, score, kb_version })
        }),
        (id(), text(), text(), text(), confidence(), any::<u32>()).prop_map(|(in_reply_to, client_msg_id, text, intent, confidence, latency_ms)| {
            EventBody::AnswerGenerated(AnswerGenerated { in_reply_to, client_msg_id, text, intent, confidence, latency_ms })
        }),
        (id(), text(), text(), any::<u32>(), prop_oneof![
            Just(HandoffReason::LowConfidence), Just(HandoffReason::UserAsked),
            Just(HandoffReason::RepeatedlyUnresolved), Just(HandoffReason::ProcessingFailed), Just(HandoffReason::Timeout)
        ]).prop_map(|(in_reply_to, client_msg_id, detail, latency_ms, reason)| {
            EventBody::HandoffRequested(HandoffRequested { in_reply_to, client_msg_id, reason, detail, latency_ms })
        }),
        (any::<u32>(), prop_oneof![Just(CloseReason::IdleTimeout), Just(CloseReason::HandedOff), Just(CloseReason::AgentClosed)])
            .prop_map(|(turns, reason)| EventBody::DialogueClosed(DialogueClosed { reason, turns })),
        (text(), text(), any::<i32>(), any::<i64>(), text()).prop_map(|(reason, source_topic, partition, offset, payload)| {
            EventBody::DeadLetter(DeadLetter { reason, source_topic, partition, offset, payload })
        }),
        ownership_body(),
    ]
}

fn agent() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9._-]{0,30}"
}

fn handoff_reason() -> impl Strategy<Value = HandoffReason> {
    prop_oneof![
        Just(HandoffReason::LowConfidence), Just(HandoffReason::UserAsked),
        Just(HandoffReason::RepeatedlyUnresolved), Just(HandoffReason::ProcessingFailed), Just(HandoffReason::Timeout)
    ]
}

/// The kinds of dialogue ownership: agents' actions and the session's answers to them.
fn ownership_body() -> BoxedStrategy<EventBody> {
    let owner = prop_oneof![Just(Owner::Bot), Just(Owner::Waiting), Just(Owner::Agent)];
    let reason = prop_oneof![
        Just(OwnershipReason::Handoff), Just(OwnershipReason::Claimed), Just(OwnershipReason::Returned),
        Just(OwnershipReason::Closed), Just(OwnershipReason::WaitTimeout)
    ];
    let action = prop_oneof![Just(AgentAction::Claim), Just(AgentAction::Message), Just(AgentAction::Return), Just(AgentAction::Close)];
    let refusal = prop_oneof![Just(RefusalReason::AlreadyClaimed), Just(RefusalReason::NotOwner), Just(RefusalReason::NotWaiting)];
    prop_oneof![
        agent().prop_map(|agent| EventBody::AgentClaim(AgentClaim { agent })),
        (agent(), text(), text()).prop_map(|(agent, client_msg_id, text)| EventBody::AgentMessage(AgentMessage { agent, client_msg_id, text })),
        agent().prop_map(|agent| EventBody::AgentReturn(AgentReturn { agent })),
        agent().prop_map(|agent| EventBody::AgentClose(AgentClose { agent })),
        (id(), owner, proptest::option::of(agent()), reason, proptest::option::of(handoff_reason())).prop_map(
            |(in_reply_to, owner, agent, reason, handoff_reason)| {
                EventBody::OwnershipChanged(OwnershipChanged { in_reply_to, owner, agent, reason, handoff_reason })
            }
        ),
        (id(), text(), text(), proptest::option::of(agent())).prop_map(|(in_reply_to, client_msg_id, masked_text, agent)| {
            EventBody::TurnQueued(TurnQueued { in_reply_to, client_msg_id, masked_text, agent })
        }),
        (id(), agent(), text(), text()).prop_map(|(in_reply_to, agent, client_msg_id, text)| {
            EventBody::AgentSaid(AgentSaid { in_reply_to, agent, client_msg_id, text })
        }),
        (id(), agent(), action, refusal, proptest::option::of(agent())).prop_map(|(in_reply_to, agent, action, reason, owner)| {
            EventBody::AgentActionRefused(AgentActionRefused { in_reply_to, agent, action, reason, owner })
        }),
    ]
    .boxed()
}

fn event() -> impl Strategy<Value = Event> {
    (id(), "[a-z0-9-]{1,40}", any::<i64>(), body()).prop_map(|(event_id, dialogue_id, occurred_at, body)| Event {
        event_id,
        dialogue_id,
        schema_version: 1,
        occurred_at,
        body,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_event_round_trips(e in event()) {
        let bytes = encode(&e);
        prop_assert_eq!(decode(&bytes).unwrap(), e);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_events_never_panic(e in event(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&e);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode(&bytes);
    }
}
