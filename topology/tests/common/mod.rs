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
use switchboard_schemas::{Event, Locale, SourceRecord};
use switchboard_topology::testing::{raw_record, user_said_record, KeywordUnderstand};
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

/// Seeded traffic: `dialogues` dialogues of 1–6 turns each, keyed to a partition by dialogue,
/// seconds apart and now and then past the idle timeout; plus malformed records. Offsets
/// ascend per partition and record times never go back within a partition.
pub fn traffic(seed: u64, dialogues: usize) -> Vec<SourceRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = 1_764_000_000_000i64;
    // (time, partition, dialogue, locale, text or None for a malformed record)
    let mut says: Vec<(i64, i32, String, Locale, Option<&str>)> = Vec::new();
    for d in 0..dialogues {
        let dialogue = format!("d-{seed}-{d}");
        let partition = rng.random_range(0..PARTITIONS);
        let locale = if rng.random_bool(0.7) { Locale::ZhCn } else { Locale::En };
        let mut at = start + rng.random_range(0..600_000);
        for _ in 0..rng.random_range(1..=6) {
            let phrases = if locale == Locale::ZhCn { ZH } else { EN };
            let text = if rng.random_bool(0.05) { None } else { Some(phrases[rng.random_range(0..phrases.len())]) };
            says.push((at, partition, dialogue.clone(), locale, text));
            at += if rng.random_bool(0.15) { IDLE_MS + rng.random_range(0..30_000) } else { rng.random_range(500..20_000) };
        }
    }
    says.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let mut next_offset = vec![0i64; PARTITIONS as usize];
    let mut records = Vec::with_capacity(says.len());
    for (i, (at, partition, dialogue, locale, text)) in says.into_iter().enumerate() {
        let offset = next_offset[partition as usize];
        next_offset[partition as usize] += 1;
        records.push(match text {
            Some(text) => user_said_record(partition, offset, at, &dialogue, locale, text),
            // Malformed in turn: not JSON, an unknown kind, a missing field.
            None => match i % 3 {
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

/// The session settings of the tests.
pub fn session_config() -> SessionConfig {
    SessionConfig { idle_timeout_ms: IDLE_MS, ..SessionConfig::default() }
}

/// A graph configuration on the keyword understanding.
pub fn graph_config(understand: Arc<KeywordUnderstand>) -> GraphConfig {
    GraphConfig::new(understand, session_config(), Clock::Virtual)
}

/// The plain sequential reference: every record in (partition, offset) order, one at a time,
/// through decoding and analysis and one `Sessions`, then every open dialogue closed at the end
/// of input — no dataflow, no workers, no epochs.
pub fn reference(records: &[SourceRecord], understand: &KeywordUnderstand) -> Vec<Event> {
    let mut ordered: Vec<&SourceRecord> = records.iter().collect();
    ordered.sort_by_key(|r| (r.partition, r.offset));
    let versions: Versions = understand.available_versions();
    let mut sessions = Sessions::new(session_config());
    let mut watermarks = PartitionWatermarks::default();
    let mut out = Vec::new();
    for record in ordered {
        let clock = RecordClock { clock: Clock::Virtual, epoch_now: record.timestamp_ms };
        for stage in analyze_batch(std::slice::from_ref(record), understand, &versions, clock, &mut watermarks) {
            match stage {
                Stage::Emit(event) => out.push(event),
                Stage::Turn { analysis, partition, record_time, partition_watermark, .. } => {
                    out.extend(sessions.on_turn_in_lane(*analysis, partition, partition_watermark, record_time))
                }
            }
        }
    }
    out.extend(sessions.close_idle(i64::MAX));
    switchboard_sinks::file::canonical_order(&mut out);
    out
}
