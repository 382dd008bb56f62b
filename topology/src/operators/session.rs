//! `sessions`: the stateful session operator, keyed by dialogue (exchanged by a stable hash of
//! the dialogue id, so one worker owns each dialogue: one writer, no lock — also of its owner:
//! user turns, agents' actions and handoffs are applied in partition order). Saved state
//! arrives on `restored` at time 0 and is put back before any turn; each epoch's changed
//! dialogues go out as [`Output::Session`] after its events. Idle dialogues close, and waits for
//! an agent time out, on event time: the frontier in a live run (so a wait times out without a
//! user turn), each partition's own watermark on record time.

use crate::graph::EndOfInput;
use crate::output::Output;
use crate::metrics::Metrics;
use crate::time::{Clock, Time};
use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard_operators::session::{SessionConfig, Sessions};
use switchboard_operators::stage::{dialogue_hash, Stage};
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::EventId;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Stream;

/// The session operator on a stream of analysed turns.
pub trait SessionStream<'s> {
    /// Applies every turn to its dialogue's session and emits the resulting events (answers,
    /// questions for a slot, handoffs, closes) and the changed session state.
    fn sessions(
        &self,
        restored: Stream<'s, Time, Vec<SessionSnapshot>>,
        config: SessionConfig,
        clock: Clock,
        end_of_input: EndOfInput,
        metrics: Option<Arc<Metrics>>,
    ) -> Stream<'s, Time, Vec<Output>>;
}

fn at_ms(time: Time) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

impl<'s> SessionStream<'s> for Stream<'s, Time, Vec<Stage>> {
    fn sessions(
        &self,
        restored: Stream<'s, Time, Vec<SessionSnapshot>>,
        config: SessionConfig,
        clock: Clock,
        end_of_input: EndOfInput,
        metrics: Option<Arc<Metrics>>,
    ) -> Stream<'s, Time, Vec<Output>> {
        let exchange = Exchange::new(|s: &Stage| dialogue_hash(s.dialogue_id()));
        let restore_exchange = Exchange::new(|s: &SessionSnapshot| dialogue_hash(&s.dialogue_id));
        self.clone()
            .binary_frontier(restored, exchange, restore_exchange, "Session", move |cap, _info| {
                let mut sessions = Sessions::new(config);
                let mut stash: BTreeMap<Time, Vec<Stage>> = BTreeMap::new();
                // Held at the input frontier so idle closes can be emitted as event time advances.
                let mut clock_cap = Some(cap);
                move |(input, frontier), (restored_input, restored_frontier), output| {
                    restored_input.for_each(|_, snapshots| {
                        for snapshot in snapshots.drain(..) {
                            sessions.restore(snapshot);
                        }
                    });
                    input.for_each_stamp(|cap, data| {
                        let Some(time) = cap.least().copied() else { return };
                        let entry = stash.entry(time).or_default();
                        for batch in data {
                            entry.append(batch);
                        }
                    });
                    let Some(held) = clock_cap.as_mut() else { return };
                    // Turns wait until every saved state has been put back.
                    let ready: Vec<Time> = super::frontier::ready_times(&stash, frontier)
                        .into_iter()
                        .filter(|t| !restored_frontier.less_equal(t))
                        .collect();
                    for time in ready {
                        let Some(mut items) = stash.remove(&time) else { continue };
                        let started = std::time::Instant::now();
                        let now = clock.now(time);
                        let at = held.delayed(&time.max(*held.time()));
                        let mut session = output.session(&at);
                        if clock == Clock::Wall {
                            // Dialogues idle before this epoch close before its turns are seen.
                            session.give_iterator(sessions.close_idle(at_ms(time)).into_iter().map(Output::Event));
                        }
                        items.sort_by_key(order_key);
                        for item in items {
                            match item {
                                Stage::Emit(e) => session.give(Output::Event(e)),
                                // Redone after a restart: its outputs are durable and its effect
                                // is in the restored state.
                                Stage::Turn { analysis, partition, offset, .. }
                                    if sessions.applied(&analysis.said.dialogue_id, partition, offset) =>
                                {
                                    tracing::debug!(dialogue = %analysis.said.dialogue_id, partition, offset, "turn already applied; skipped");
                                }
                                Stage::Action { event, partition, offset, .. }
                                    if sessions.applied(&event.dialogue_id, partition, offset) =>
                                {
                                    tracing::debug!(dialogue = %event.dialogue_id, partition, offset, "input already applied; skipped");
                                }
                                // On record time, idle closes and wait timeouts follow each
                                // partition's own watermark, so poll boundaries never change what
                                // a replay writes.
                                Stage::Turn { analysis, partition, record_time, partition_watermark, .. }
                                    if clock == Clock::Virtual =>
                                {
                                    let events = sessions.on_turn_in_lane(*analysis, partition, partition_watermark, record_time);
                                    session.give_iterator(events.into_iter().map(Output::Event))
                                }
                                Stage::Action { event, partition, record_time, partition_watermark, .. }
                                    if clock == Clock::Virtual =>
                                {
                                    let events = sessions.on_action_in_lane(event, partition, partition_watermark, record_time);
                                    session.give_iterator(events.into_iter().map(Output::Event))
                                }
                                Stage::Turn { analysis, partition, offset, .. } => {
                                    let dialogue = analysis.said.dialogue_id.clone();
                                    let events = sessions.on_turn(*analysis, at_ms(time), now);
                                    session.give_iterator(events.into_iter().map(Output::Event));
                                    sessions.mark_applied(&dialogue, partition, offset);
                                }
                                Stage::Action { event, partition, offset, .. } => {
                                    let dialogue = event.dialogue_id.clone();
                                    let events = sessions.on_action(event, at_ms(time), now);
                                    session.give_iterator(events.into_iter().map(Output::Event));
                                    sessions.mark_applied(&dialogue, partition, offset);
                                }
                            }
                        }
                        session.give_iterator(sessions.take_changes().into_iter().map(Output::Session));
                        if let Some(m) = &metrics {
                            m.record_stage("session", started.elapsed());
                        }
                    }
                    match frontier.frontier().iter().min().copied() {
                        Some(low) => {
                            if clock == Clock::Wall {
                                let mut closes: Vec<Output> =
                                    sessions.close_idle(at_ms(low)).into_iter().map(Output::Event).collect();
                                closes.extend(sessions.take_changes().into_iter().map(Output::Session));
                                if !closes.is_empty() {
                                    output.session(&*held).give_iterator(closes.into_iter());
                                }
                            }
                            if *held.time() < low {
                                held.downgrade(&low);
                            }
                        }
                        None => {
                            // End of input. A recording has really ended: every dialogue closes
                            // at its own idle deadline. A live run is only stopping (its dialogues
                            // go on after the restart) and a backfill's range may end mid-dialogue:
                            // none is closed (each partition's watermark already closed the
                            // dialogues it passed).
                            if clock == Clock::Virtual && end_of_input == EndOfInput::CloseAll {
                                let closes = sessions.close_idle(i64::MAX);
                                output.session(&*held).give_iterator(closes.into_iter().map(Output::Event));
                            }
                            clock_cap = None;
                        }
                    }
                }
            })
            .container::<Vec<Output>>()
    }
}

/// Orders one epoch's items deterministically: emits first, then turns and the other inputs by
/// source position (a partition's records in offset order, as each dialogue's user and agents
/// sent them: the first claim in that order wins).
fn order_key(stage: &Stage) -> (i32, i64, u8, EventId) {
    match stage {
        Stage::Turn { analysis, partition, offset, .. } => (*partition, *offset, 1, analysis.said.event_id),
        Stage::Action { event, partition, offset, .. } => (*partition, *offset, 1, event.event_id),
        Stage::Emit(e) => (-1, -1, 0, e.event_id),
    }
}
