//! Live aggregates for the operations console: turns, intents and handoffs per minute, kept up
//! to date by differential dataflow.
//!
//! Every output event becomes zero or more keys `(minute, metric, label)` (`turns`, `intent` by
//! label, `handoff` by reason, `dead_letter`, `ownership` by reason of the change, `queued`
//! user turns, `agent_said`); the keys form a collection whose `count()` is
//! maintained incrementally (exchanged by key, so each key is counted on one worker). The count
//! changes flow into [`LiveAggregates`], which the metrics listener serves as JSON at
//! `/aggregates` and the gateway's console merges across processes.
//!
//! The counts are what this process has seen since it started: a restart begins from zero, and
//! the epochs redone after a crash count again. The console's history and totals come from the
//! events in ClickHouse, which are exactly once; these counts are its live view.

use crate::time::Time;
use differential_dataflow::collection::AsCollection;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use switchboard_schemas::{Event, EventBody};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Inspect;
use timely::dataflow::Stream;

/// A counted key: minute since the Unix epoch, metric name, label.
pub type AggregateKey = (i64, String, String);

/// Minutes of counts kept (older minutes are dropped from the served view).
pub const MINUTES_KEPT: i64 = 120;

/// The keys one event adds to the counts.
pub fn keys_of(event: &Event) -> Vec<AggregateKey> {
    let minute = event.occurred_at.div_euclid(60_000);
    match &event.body {
        EventBody::UserSaid(_) => vec![(minute, "turns".into(), String::new())],
        EventBody::IntentRecognized(body) => vec![(minute, "intent".into(), body.intent.clone())],
        EventBody::HandoffRequested(body) => vec![(minute, "handoff".into(), body.reason.as_str().to_string())],
        EventBody::DeadLetter(_) => vec![(minute, "dead_letter".into(), String::new())],
        EventBody::OwnershipChanged(body) => vec![(minute, "ownership".into(), body.reason.as_str().to_string())],
        EventBody::TurnQueued(_) => vec![(minute, "queued".into(), String::new())],
        EventBody::AgentSaid(_) => vec![(minute, "agent_said".into(), String::new())],
        _ => Vec::new(),
    }
}

pub use switchboard_schemas::aggregates::AggregateRow;

/// The current counts of this process, fed by the dataflow's count changes.
#[derive(Debug, Default)]
pub struct LiveAggregates {
    /// (key, count) → multiplicity; the count of a key is the one with positive multiplicity.
    counts: Mutex<BTreeMap<AggregateKey, i64>>,
}

impl LiveAggregates {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one change of the counted collection: `((key, count), diff)`.
    pub fn apply(&self, key: AggregateKey, count: isize, diff: isize) {
        let Ok(mut counts) = self.counts.lock() else { return };
        let count = count as i64;
        if diff > 0 {
            counts.insert(key, count);
        } else if counts.get(&key) == Some(&count) {
            // The retraction of the count this key holds (its replacement may already be in).
            counts.remove(&key);
        }
        if let Some(newest) = counts.keys().next_back().map(|k| k.0) {
            let oldest_kept = newest - MINUTES_KEPT;
            counts.retain(|k, _| k.0 > oldest_kept);
        }
    }

    /// The rows from `since_minute` on, in key order.
    pub fn rows(&self, since_minute: i64) -> Vec<AggregateRow> {
        let Ok(counts) = self.counts.lock() else { return Vec::new() };
        counts
            .range((since_minute, String::new(), String::new())..)
            .map(|((minute, metric, label), count)| AggregateRow {
                minute: *minute,
                metric: metric.clone(),
                label: label.clone(),
                count: *count,
            })
            .collect()
    }

    /// The rows as a JSON array.
    pub fn to_json(&self, since_minute: i64) -> String {
        serde_json::to_string(&self.rows(since_minute)).unwrap_or_else(|_| "[]".into())
    }
}

/// Live counts on a stream of output events.
pub trait AggregateStream<'s> {
    /// Counts the keys of `events` per minute and feeds the changes to `live`.
    fn aggregate(&self, live: Arc<LiveAggregates>);
}

impl<'s> AggregateStream<'s> for Stream<'s, Time, Vec<Event>> {
    fn aggregate(&self, live: Arc<LiveAggregates>) {
        self.clone()
            .unary(Pipeline, "AggregateKeys", |_cap, _info| {
                move |input, output| {
                    input.for_each(|cap, events| {
                        let Some(cap) = cap.retain_least(0) else { return };
                        let time = *cap.time();
                        let mut session = output.session(&cap);
                        for event in events.iter() {
                            session.give_iterator(keys_of(event).into_iter().map(|key| (key, time, 1isize)));
                        }
                    });
                }
            })
            .container::<Vec<(AggregateKey, Time, isize)>>()
            .as_collection()
            .count()
            .inner
            .inspect(move |((key, count), _time, diff): &((AggregateKey, isize), Time, isize)| {
                live.apply(key.clone(), *count, *diff)
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(minute: i64, metric: &str, label: &str) -> AggregateKey {
        (minute, metric.into(), label.into())
    }

    #[test]
    fn a_count_change_replaces_the_old_count_in_either_order() {
        let live = LiveAggregates::new();
        live.apply(key(1, "turns", ""), 1, 1);
        // New count before the retraction of the old one.
        live.apply(key(1, "turns", ""), 3, 1);
        live.apply(key(1, "turns", ""), 1, -1);
        assert_eq!(live.rows(0), vec![AggregateRow { minute: 1, metric: "turns".into(), label: String::new(), count: 3 }]);
        live.apply(key(1, "turns", ""), 3, -1);
        assert!(live.rows(0).is_empty());
    }

    #[test]
    fn old_minutes_are_dropped() {
        let live = LiveAggregates::new();
        live.apply(key(1, "turns", ""), 5, 1);
        live.apply(key(1 + MINUTES_KEPT + 1, "turns", ""), 2, 1);
        assert_eq!(live.rows(0).len(), 1);
    }
}
