//! `sink`: hands each complete epoch (its events, then the session state it changed) to an
//! [`EventSink`] and holds the epoch's capability until the sink reports it durable. The sink
//! works in the background (replies leave at once, rows are group-committed), and a
//! [`SyncActivator`](timely::scheduling::SyncActivator) wakes this operator when an epoch is
//! done, so the worker keeps polling, understanding and answering while many epochs are in
//! flight. Capabilities may be released out of order; the frontier behind this operator passes
//! an epoch only once it and every earlier epoch are durable, which is the commit rule. A
//! failed epoch is recorded in the run's [`Failure`] and held back for good (never released, so
//! never committed); the runner sees the failure and stops.

use crate::output::{Failure, Output};
use crate::time::Time;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use switchboard_sinks::EventSink;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// Writing a stream of session outputs.
pub trait SinkStream<'s> {
    /// Writes every complete epoch to `sink`; the returned (empty) stream's frontier passes an
    /// epoch only once it (and every earlier one) is durable.
    fn sink(&self, sink: Box<dyn EventSink>, failure: Failure) -> Stream<'s, Time, Vec<()>>;
}

/// Outcomes reported by the sink (from any thread), drained by the operator.
type Outcomes = Arc<Mutex<Vec<(Time, switchboard_sinks::Result<()>)>>>;

impl<'s> SinkStream<'s> for Stream<'s, Time, Vec<Output>> {
    fn sink(&self, mut sink: Box<dyn EventSink>, failure: Failure) -> Stream<'s, Time, Vec<()>> {
        let scope = self.scope();
        self.clone()
            .unary_frontier(Pipeline, "Sink", move |_cap, info| {
                let activator = Arc::new(scope.worker().sync_activator_for(info.address.to_vec()));
                let outcomes: Outcomes = Arc::default();
                let mut stash: BTreeMap<Time, (Capability<Time>, Vec<Output>)> = BTreeMap::new();
                // Epochs handed to the sink and not yet durable.
                let mut in_flight: BTreeMap<Time, Capability<Time>> = BTreeMap::new();
                // Epochs held back after a failure: their capabilities are never dropped.
                let mut held: Vec<Capability<Time>> = Vec::new();
                move |(input, frontier), _output: &mut OutputBuilderSession<'_, Time, CapacityContainerBuilder<Vec<()>>>| {
                    input.for_each_stamp(|cap, data| {
                        let Some(cap) = cap.retain_least(0) else { return };
                        let entry = stash.entry(*cap.time()).or_insert_with(|| (cap, Vec::new()));
                        for batch in data {
                            entry.1.append(batch);
                        }
                    });
                    for time in super::frontier::ready_times(&stash, frontier) {
                        let Some((cap, outputs)) = stash.remove(&time) else { continue };
                        if failure.failed() {
                            held.push(cap);
                            continue;
                        }
                        let mut events = Vec::with_capacity(outputs.len());
                        let mut sessions = Vec::new();
                        for item in outputs {
                            match item {
                                Output::Event(e) => events.push(e),
                                Output::Session(s) => sessions.push(s),
                            }
                        }
                        if events.is_empty() && sessions.is_empty() {
                            continue;
                        }
                        in_flight.insert(time, cap);
                        let outcomes = outcomes.clone();
                        let activator = activator.clone();
                        sink.write_epoch(
                            time,
                            events,
                            sessions,
                            Box::new(move |result| {
                                outcomes.lock().unwrap_or_else(|p| p.into_inner()).push((time, result));
                                // Fails only when the worker is gone, and then nobody waits.
                                let _ = activator.activate();
                            }),
                        );
                    }
                    let done = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
                    for (time, result) in done {
                        let Some(cap) = in_flight.remove(&time) else { continue };
                        match result {
                            Ok(()) if !failure.failed() => drop(cap),
                            Ok(()) => held.push(cap),
                            Err(e) => {
                                // Nothing of this epoch is committed; a restart redoes it.
                                tracing::error!(error = %e, time, "sink could not make an epoch durable; holding it back");
                                failure.set(e);
                                held.push(cap);
                            }
                        }
                    }
                }
            })
            .container::<Vec<()>>()
    }
}
