//! The graph against itself and against a plain sequential reference, without any service: the
//! seeded traffic of `common` (slot filling, handoffs, clarifications, idle closes, malformed
//! records; zh and en) runs through the whole graph on 1, 2 and 4 workers with the keyword
//! understanding, and every run must produce exactly the events of the sequential reference,
//! byte for byte (in the style of differential-dataflow's `tests/reduce_reference.rs`).

mod common;

use common::{graph_config, reference, traffic, IDLE_MS};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use switchboard_schemas::{Event, EventBody, HandoffReason};
use switchboard_sinks::file::to_ndjson;
use switchboard_topology::runner::recorded::run_recording;
use switchboard_topology::testing::KeywordUnderstand;

fn run(records: &[switchboard_schemas::SourceRecord], workers: usize) -> Vec<Event> {
    let understand = Arc::new(KeywordUnderstand::demo());
    run_recording(records.to_vec(), workers, graph_config(understand)).expect("the graph runs")
}

#[test]
fn every_worker_count_matches_the_sequential_reference_for_many_seeds() {
    for seed in 0..12u64 {
        let records = traffic(seed, 60);
        let want = to_ndjson(&reference(&records, &KeywordUnderstand::demo()));
        for workers in [1, 2, 4] {
            let got = to_ndjson(&run(&records, workers));
            if got != want {
                let first = want.lines().zip(got.lines()).position(|(a, b)| a != b);
                panic!(
                    "seed {seed}, {workers} workers: {} lines vs {} in the reference; first difference at line {first:?}:\n  reference: {:?}\n  graph:     {:?}",
                    got.lines().count(),
                    want.lines().count(),
                    first.and_then(|i| want.lines().nth(i)),
                    first.and_then(|i| got.lines().nth(i)),
                );
            }
        }
    }
}

#[test]
fn every_turn_gets_exactly_one_reply_and_every_dialogue_closes_once_after_its_last_turn() {
    let records = traffic(42, 120);
    let events = run(&records, 4);
    let mut replies: BTreeMap<String, usize> = BTreeMap::new();
    let mut saids: BTreeSet<String> = BTreeSet::new();
    let mut last_turn: BTreeMap<&str, i64> = BTreeMap::new();
    let mut closes: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut dead = 0;
    for e in &events {
        match &e.body {
            EventBody::UserSaid(_) => {
                saids.insert(e.event_id.to_string());
                let t = last_turn.entry(&e.dialogue_id).or_insert(i64::MIN);
                *t = (*t).max(e.occurred_at);
            }
            EventBody::AnswerGenerated(a) => *replies.entry(a.in_reply_to.to_string()).or_default() += 1,
            EventBody::HandoffRequested(h) if h.reason != HandoffReason::ProcessingFailed => {
                *replies.entry(h.in_reply_to.to_string()).or_default() += 1
            }
            EventBody::DialogueClosed(_) => closes.entry(&e.dialogue_id).or_default().push(e.occurred_at),
            EventBody::DeadLetter(_) => dead += 1,
            _ => {}
        }
    }
    assert!(dead > 0, "the traffic has malformed records");
    assert_eq!(replies.len(), saids.len(), "one reply per turn");
    assert!(replies.values().all(|n| *n == 1), "{replies:?}");
    for (dialogue, last) in &last_turn {
        let at = closes.get(dialogue).unwrap_or_else(|| panic!("{dialogue} never closed"));
        // A dialogue idle past the timeout closes and the next turn opens it again: the last
        // close is at its last turn plus the timeout, every close at or after a turn.
        assert_eq!(at.iter().max(), Some(&(last + IDLE_MS)), "{dialogue}: {at:?}");
    }
}

#[test]
fn the_same_records_give_the_same_bytes_every_time() {
    let records = traffic(7, 80);
    let first = to_ndjson(&run(&records, 2));
    for _ in 0..3 {
        assert_eq!(to_ndjson(&run(&records, 2)), first);
    }
}
