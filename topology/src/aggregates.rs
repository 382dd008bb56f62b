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
//! The collection stays bounded: every key is added with its retraction at the moment its
//! minute leaves the window ([`expires_at`]: [`MINUTES_KEPT`] minutes later), so once the
//! dataflow's time passes it the key's updates cancel, the count's arrangement compacts them
//! away and the view drops the row, whether or not newer minutes arrive.
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

/// The dataflow time (ms) at which the counts of `minute` leave the window: the end of the
/// minute [`MINUTES_KEPT`] minutes later.
pub fn expires_at(minute: i64) -> Time {
    u64::try_from((minute + MINUTES_KEPT + 1).saturating_mul(60_000)).unwrap_or(0)
}

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
                            for key in keys_of(event) {
                                // Each key with its own retraction at the end of the window (an
                                // update's time may lie after its message's); a minute already out
                                // of the window is not counted at all.
                                let expires = expires_at(key.0);
                                if expires > time {
                                    session.give((key.clone(), time, 1isize));
                                    session.give((key, expires, -1isize));
                                }
                            }
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

    /// Events of one minute, then time passing with no newer event: the collection retracts
    /// the minute's keys when it leaves the window (not only the view's pruning on newer minutes).
    #[test]
    fn a_minute_leaves_the_collection_when_its_window_ends() {
        use switchboard_schemas::{Locale, UserSaid};
        let live = Arc::new(LiveAggregates::new());
        let view = live.clone();
        timely::execute_directly(move |worker| {
            let mut input = timely::dataflow::InputHandle::<Time, timely::container::CapacityContainerBuilder<Vec<Event>>>::new();
            worker.dataflow::<Time, _, _>(|scope| input.to_stream(scope).aggregate(live.clone()));
            let minute = 29_000_000i64;
            let at = |m: i64| u64::try_from(m * 60_000).unwrap_or(0);
            input.advance_to(at(minute));
            for i in 0..3 {
                let body = UserSaid { client_msg_id: format!("m{i}"), user_id: "u".into(), locale: Locale::ZhCn, text: "hi".into() };
                input.send(Event::new("d", minute * 60_000 + i, EventBody::UserSaid(body)));
            }
            input.advance_to(at(minute + 1));
            // Counted while the minute is in the window.
            for _ in 0..1000 {
                worker.step();
                if !view.rows(0).is_empty() {
                    break;
                }
            }
            assert_eq!(view.rows(0).first().map(|r| r.count), Some(3), "the minute's turns are counted");
            // Time passes beyond the window, no event comes: the row goes.
            input.advance_to(expires_at(minute) + 1);
            for _ in 0..1000 {
                worker.step();
                if view.rows(0).is_empty() {
                    break;
                }
            }
            assert!(view.rows(0).is_empty(), "the minute is still counted after its window: {:?}", view.rows(0));
        });
    }

    #[test]
    fn old_minutes_are_dropped() {
        let live = LiveAggregates::new();
        live.apply(key(1, "turns", ""), 5, 1);
        live.apply(key(1 + MINUTES_KEPT + 1, "turns", ""), 2, 1);
        assert_eq!(live.rows(0).len(), 1);
    }
}
