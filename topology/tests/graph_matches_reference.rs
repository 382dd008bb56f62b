//! The graph against itself and against a plain sequential reference, without any service: the
//! seeded traffic of `common` (slot filling, handoffs, clarifications, idle closes, malformed
//! records, agents claiming (racing), writing, returning and closing, gateways' timeouts; zh
//! and en) runs through the whole graph on 1, 2 and 4 workers with the keyword
//! understanding, and every run must produce exactly the events of the sequential reference,
//! byte for byte (in the style of differential-dataflow's `tests/reduce_reference.rs`).

mod common;

use common::{graph_config, reference, traffic, IDLE_MS};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use switchboard_operators::session::REPLY_ROLE;
use switchboard_schemas::{Event, EventBody, EventId, HandoffReason};
use switchboard_sinks::file::to_ndjson;
use switchboard_topology::runner::recorded::run_recording;
use switchboard_topology::testing::KeywordUnderstand;

fn run(records: &[switchboard_schemas::SourceRecord], workers: usize) -> Vec<Event> {
    let understand = Arc::new(KeywordUnderstand::demo());
    run_recording(records.to_vec(), workers, graph_config(understand)).expect("the graph runs")
}

#[test]
fn every_worker_count_matches_the_sequential_reference_for_many_seeds() {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for seed in 0..12u64 {
        let records = traffic(seed, 60);
        let reference = reference(&records, &KeywordUnderstand::demo());
        seen.extend(reference.iter().map(coverage));
        let want = to_ndjson(&reference);
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
    // The traffic exercises every ownership path.
    for path in [
        "ownership_changed:handoff", "ownership_changed:claimed", "ownership_changed:returned", "ownership_changed:closed",
        "ownership_changed:wait_timeout", "agent_action_refused:already_claimed", "agent_action_refused:not_owner",
        "agent_action_refused:not_waiting", "turn_queued", "agent_said", "handoff_requested:timeout", "dialogue_closed:agent_closed",
    ] {
        assert!(seen.contains(path), "no {path} in the traffic: {seen:?}");
    }
}

/// The kind of an event, with the reason where the ownership paths differ by it.
fn coverage(event: &Event) -> String {
    let kind = event.kind().as_str();
    match &event.body {
        EventBody::OwnershipChanged(c) => format!("{kind}:{}", c.reason.as_str()),
        EventBody::AgentActionRefused(r) => format!("{kind}:{}", r.reason.as_str()),
        EventBody::HandoffRequested(h) => format!("{kind}:{}", h.reason.as_str()),
        EventBody::DialogueClosed(c) => format!("{kind}:{}", serde_json::to_value(c.reason).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()),
        _ => kind.to_string(),
    }
}

#[test]
fn every_input_gets_exactly_one_reply_and_every_dialogue_closes_once_after_its_last_input() {
    let records = traffic(42, 120);
    let events = run(&records, 4);
    // Ids are unique per dialogue (the events table's key); the generator's malformed records
    // reuse ids across dialogues.
    let ids: BTreeSet<(&str, EventId)> = events.iter().map(|e| (e.dialogue_id.as_str(), e.event_id)).collect();
    assert_eq!(ids.len(), events.len(), "every output event has its own id");
    let by_id: BTreeMap<(&str, EventId), &Event> = events.iter().map(|e| ((e.dialogue_id.as_str(), e.event_id), e)).collect();
    let mut last_input: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
    let mut closes: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let (mut dead, mut turns, mut actions, mut refused, mut queued) = (0, 0, 0, 0, 0);
    for e in &events {
        let reply = by_id.get(&(e.dialogue_id.as_str(), EventId::derived(e.event_id, REPLY_ROLE))).map(|r| &r.body);
        let touched = match (&e.body, reply) {
            (EventBody::UserSaid(_), Some(EventBody::AnswerGenerated(_) | EventBody::HandoffRequested(_))) => {
                turns += 1;
                true
            }
            (EventBody::UserSaid(_), Some(EventBody::TurnQueued(_))) => {
                queued += 1;
                true
            }
            (EventBody::UserSaid(_), other) => panic!("turn {} got {other:?}", e.event_id),
            (EventBody::AgentClaim(_) | EventBody::AgentMessage(_) | EventBody::AgentReturn(_) | EventBody::AgentClose(_), reply) => {
                actions += 1;
                match reply {
                    Some(EventBody::AgentActionRefused(_)) => {
                        refused += 1;
                        false
                    }
                    Some(EventBody::OwnershipChanged(_) | EventBody::AgentSaid(_)) => true,
                    other => panic!("agent's action {} got {other:?}", e.event_id),
                }
            }
            // Handoffs that came in (a gateway's timeout, a turn that could not be processed).
            (EventBody::HandoffRequested(h), _) if matches!(h.reason, HandoffReason::Timeout | HandoffReason::ProcessingFailed) => true,
            (EventBody::DialogueClosed(_), _) => {
                closes.entry(&e.dialogue_id).or_default().push(e.occurred_at);
                false
            }
            (EventBody::DeadLetter(_), _) => {
                dead += 1;
                false
            }
            _ => false,
        };
        if touched {
            let last = last_input.entry(&e.dialogue_id).or_insert((i64::MIN, false));
            if e.occurred_at >= last.0 {
                *last = (e.occurred_at, matches!(e.body, EventBody::AgentClose(_)));
            }
        }
    }
    assert!(dead > 0 && turns > 0 && queued > 0, "the traffic has malformed records ({dead}), answered ({turns}) and queued ({queued}) turns");
    assert!(actions > refused && refused > 0, "agents' actions are accepted and refused: {actions} / {refused}");
    for (dialogue, (last, closed_by_agent)) in &last_input {
        let at = closes.get(dialogue).unwrap_or_else(|| panic!("{dialogue} never closed"));
        // A dialogue idle past the timeout closes and the next input opens it again: the last
        // close is at its last input plus the timeout (or at the agent's close), every close at
        // or after an input.
        let want = if *closed_by_agent { *last } else { last + IDLE_MS };
        assert_eq!(at.iter().max(), Some(&want), "{dialogue}: {at:?}");
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
