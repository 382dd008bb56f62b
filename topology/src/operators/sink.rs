//! `sink`: flushes each epoch's events to an [`EventSink`] once the epoch is complete, then
//! saves the session state the epoch changed, and only then releases the epoch. A failed flush
//! is recorded in the run's [`Failure`] and the epoch is held back (never released, so never
//! committed); the runner sees the failure and stops.

use crate::output::{Failure, Output};
use crate::time::Time;
use std::collections::BTreeMap;
use switchboard_sinks::EventSink;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// Writing a stream of session outputs.
pub trait SinkStream<'s> {
    /// Flushes every complete epoch to `sink`; the returned (empty) stream's frontier passes an
    /// epoch only once it is durable.
    fn sink(&self, sink: Box<dyn EventSink>, failure: Failure) -> Stream<'s, Time, Vec<()>>;
}

impl<'s> SinkStream<'s> for Stream<'s, Time, Vec<Output>> {
    fn sink(&self, mut sink: Box<dyn EventSink>, failure: Failure) -> Stream<'s, Time, Vec<()>> {
        self.clone()
            .unary_frontier(Pipeline, "Sink", move |_cap, _info| {
                let mut stash: BTreeMap<Time, (Capability<Time>, Vec<Output>)> = BTreeMap::new();
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
                        match sink.flush(time, events).and_then(|()| sink.save_sessions(time, sessions)) {
                            Ok(()) => drop(cap),
                            Err(e) => {
                                // Nothing of this epoch is committed; a restart redoes it.
                                tracing::error!(error = %e, time, "sink flush failed; holding the epoch back");
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
