//! Seeded random traffic for the service-free graph tests, and the plain sequential reference
//! the graph is compared with.

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use switchboard_operators::analysis::{analyze_batch, Clock, PartitionWatermarks, RecordClock};
use switchboard_operators::session::{SessionConfig, Sessions};
use switchboard_operators::stage::Stage;
use switchboard_operators::understand::{Understand, Versions};
use switchboard_schemas::{
    AgentClaim, AgentClose, AgentMessage, AgentReturn, Event, EventBody, HandoffReason, HandoffRequested, Locale, SourceRecord,
};
use switchboard_topology::testing::{event_record, raw_record, user_said_record, KeywordUnderstand};
use switchboard_topology::GraphConfig;

/// The idle timeout the tests run with (short, so idle closes happen inside a dialogue).
pub const IDLE_MS: i64 = 60_000;

/// Partitions of the generated `user.said`.
pub const PARTITIONS: i32 = 8;

/// What users say: turns that start a return, bring an order or tracking number, ask
/// something the bot answers without a slot, something it has no answer for, something it is
/// unsure of, ask for a human, or say nothing it knows.
const ZH: &[&str] = &[
    "我要退货", "订单号 12345678", "12345678", "我的快递到哪了", "SF1234567890", "营业时间是几点",
    "怎么开发票", "今天天气怎么样", "转人工", "嗯嗯", "我要退货，订单 2024113051", "手机 13812345678 我要退货",
];
const EN: &[&str] = &[
    "I want to return this", "order 87654321", "where is my parcel", "YT12345678901234", "what are your hours",
    "I need an invoice", "how is the weather", "agent please", "hmm", "return order 2024113051 please",
];

/// Agents of the generated traffic.
pub const AGENTS: &[&str] = &["a-li", "a-wang", "a-zhao"];

/// What agents write (one with a phone number, masked before anything stores it).
const AGENT_TEXTS: &[&str] = &["您好，我来帮您处理", "请稍等，我查一下订单", "有问题可以打 13812345678 找我", "Your refund is on its way"];

/// One generated input of a dialogue.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// A user's turn (or a malformed record when `None`).
    Say(Option<&'static str>),
    /// A gateway's answer timeout for the dialogue's last turn.
    Timeout,
    /// An agent's claim, message, return or close.
    Claim(&'static str),
    Message(&'static str, &'static str),
    Return(&'static str),
    Close(&'static str),
}

/// Seeded traffic: `dialogues` dialogues of 1–6 turns each, keyed to a partition by dialogue,
/// seconds apart and now and then past the idle timeout; plus malformed records. A third of the
/// dialogues also get agents' actions between the turns — claims from several agents at the
/// same or nearly the same time (racing), messages, returns and closes, by owners and
/// non-owners alike — and now and then a gateway's timeout handoff. Offsets ascend per
/// partition and record times never go back within a partition.
pub fn traffic(seed: u64, dialogues: usize) -> Vec<SourceRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = 1_764_000_000_000i64;
    // (time, partition, dialogue, locale, act)
    let mut acts: Vec<(i64, i32, String, Locale, Act)> = Vec::new();
    for d in 0..dialogues {
        let dialogue = format!("d-{seed}-{d}");
        let partition = rng.random_range(0..PARTITIONS);
        let locale = if rng.random_bool(0.7) { Locale::ZhCn } else { Locale::En };
        let with_agents = rng.random_bool(0.35);
        let mut at = start + rng.random_range(0..600_000);
        for _ in 0..rng.random_range(1..=6) {
            let phrases = if locale == Locale::ZhCn { ZH } else { EN };
            let text = if rng.random_bool(0.05) { None } else { Some(phrases[rng.random_range(0..phrases.len())]) };
            acts.push((at, partition, dialogue.clone(), locale, Act::Say(text)));
            if rng.random_bool(0.1) {
                acts.push((at + 5_000, partition, dialogue.clone(), locale, Act::Timeout));
            }
            if with_agents {
                for _ in 0..rng.random_range(0..=4) {
                    // Often at the very same time: claims racing from two gateways.
                    at += if rng.random_bool(0.4) { 0 } else { rng.random_range(1..4_000) };
                    let agent = AGENTS[rng.random_range(0..AGENTS.len())];
                    let act = match rng.random_range(0..10) {
                        0..=3 => Act::Claim(agent),
                        4..=6 => Act::Message(agent, AGENT_TEXTS[rng.random_range(0..AGENT_TEXTS.len())]),
                        7 | 8 => Act::Return(agent),
                        _ => Act::Close(agent),
                    };
                    acts.push((at, partition, dialogue.clone(), locale, act));
                }
            }
            at += if rng.random_bool(0.15) { IDLE_MS + rng.random_range(0..30_000) } else { rng.random_range(500..20_000) };
        }
    }
    // Stable: a dialogue's acts at the same time keep their order.
    acts.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let mut next_offset = vec![0i64; PARTITIONS as usize];
    let mut last_said: std::collections::HashMap<String, (switchboard_schemas::EventId, String)> = Default::default();
    let mut records = Vec::with_capacity(acts.len());
    for (i, (at, partition, dialogue, locale, act)) in acts.into_iter().enumerate() {
        let offset = next_offset[partition as usize];
        next_offset[partition as usize] += 1;
        let agent_body = |body| event_record(partition, offset, at, &dialogue, body);
        records.push(match act {
            Act::Say(Some(text)) => {
                let record = user_said_record(partition, offset, at, &dialogue, locale, text);
                if let Ok(event) = switchboard_schemas::decode(&record.value) {
                    last_said.insert(dialogue.clone(), (event.event_id, format!("m-{partition}-{offset}")));
                }
                record
            }
            Act::Timeout => {
                // For the dialogue's last turn (a malformed one has none to name).
                let (said, client_msg_id) =
                    last_said.get(&dialogue).cloned().unwrap_or((switchboard_schemas::EventId::from_bytes([0; 16]), "m-x".into()));
                agent_body(EventBody::HandoffRequested(HandoffRequested {
                    in_reply_to: said,
                    client_msg_id,
                    reason: HandoffReason::Timeout,
                    detail: "no answer in time".into(),
                    latency_ms: 5_000,
                }))
            }
            Act::Claim(agent) => agent_body(EventBody::AgentClaim(AgentClaim { agent: agent.into() })),
            Act::Message(agent, text) => agent_body(EventBody::AgentMessage(AgentMessage {
                agent: agent.into(),
                client_msg_id: format!("a-{partition}-{offset}"),
                text: text.into(),
            })),
            Act::Return(agent) => agent_body(EventBody::AgentReturn(AgentReturn { agent: agent.into() })),
            Act::Close(agent) => agent_body(EventBody::AgentClose(AgentClose { agent: agent.into() })),
            // Malformed in turn: not JSON, an unknown kind, a missing field.
            Act::Say(None) => match i % 3 {
                0 => raw_record(partition, offset, at, Some(&dialogue), b"{not json".to_vec()),
                1 => raw_record(
                    partition,
                    offset,
                    at,
                    Some(&dialogue),
                    format!(r#"{{"event_id":"0193a000-0000-7000-8000-000000000001","dialogue_id":"{dialogue}","kind":"no_such_kind","schema_version":1,"occurred_at":{at}}}"#).into_bytes(),
                ),
                _ => raw_record(
                    partition,
                    offset,
                    at,
                    Some(&dialogue),
                    format!(r#"{{"event_id":"0193a000-0000-7000-8000-000000000002","dialogue_id":"{dialogue}","kind":"user_said","schema_version":1,"occurred_at":{at},"client_msg_id":"m-x","locale":"zh-CN","text":"缺字段"}}"#).into_bytes(),
                ),
            },
        });
    }
    records
}

/// How long the tests' dialogues wait for an agent before going back to the bot (shorter than
/// the idle timeout, so waits time out inside a dialogue).
pub const WAIT_MS: i64 = 30_000;

/// The session settings of the tests.
pub fn session_config() -> SessionConfig {
    SessionConfig { idle_timeout_ms: IDLE_MS, wait_timeout_ms: WAIT_MS, ..SessionConfig::default() }
}

/// A graph configuration on the keyword understanding.
pub fn graph_config(understand: Arc<dyn switchboard_operators::understand::Understand>) -> GraphConfig {
    GraphConfig::new(understand, session_config(), Clock::Virtual)
}

/// The plain sequential reference: every record in (partition, offset) order, one at a time,
/// through decoding and analysis and one `Sessions` (user turns and the other inputs: agents'
/// actions, handoffs), then every open dialogue closed at the end
/// of input — no dataflow, no workers, no epochs.
pub fn reference(records: &[SourceRecord], understand: &KeywordUnderstand) -> Vec<Event> {
    let mut out = reference_in_input_order(records, understand);
    switchboard_sinks::file::canonical_order(&mut out);
    out
}

/// The events of [`reference`] in the order the sequential run decided them (input by input),
/// before the canonical sort.
pub fn reference_in_input_order(records: &[SourceRecord], understand: &KeywordUnderstand) -> Vec<Event> {
    let mut ordered: Vec<&SourceRecord> = records.iter().collect();
    ordered.sort_by_key(|r| (r.partition, r.offset));
    let versions: Versions = understand.available_versions();
    let mut sessions = Sessions::new(session_config());
    let mut watermarks = PartitionWatermarks::default();
    let mut out = Vec::new();
    for record in ordered {
        let clock = RecordClock { clock: Clock::Virtual, epoch_now: record.timestamp_ms };
        for stage in analyze_batch(std::slice::from_ref(record), understand, &versions, clock, &mut watermarks, None).expect("the reference's understanding does not fail") {
            match stage {
                Stage::Emit(event) => out.push(event),
                Stage::Turn { analysis, partition, record_time, partition_watermark, .. } => {
                    out.extend(sessions.on_turn_in_lane(*analysis, partition, partition_watermark, record_time))
                }
                Stage::Action { event, partition, record_time, partition_watermark, .. } => {
                    out.extend(sessions.on_action_in_lane(event, partition, partition_watermark, record_time))
                }
            }
        }
    }
    out.extend(sessions.close_idle(i64::MAX));
    out
}
