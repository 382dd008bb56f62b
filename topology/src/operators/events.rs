//! `events`: the events among the session operator's outputs (for the live aggregates).

use crate::output::Output;
use crate::time::Time;
use switchboard_schemas::Event;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Stream;

/// Keeps the events of a stream of session outputs.
pub trait EventsStream<'s> {
    /// The [`Output::Event`]s, in order; session snapshots are dropped.
    fn events(&self) -> Stream<'s, Time, Vec<Event>>;
}

impl<'s> EventsStream<'s> for Stream<'s, Time, Vec<Output>> {
    fn events(&self) -> Stream<'s, Time, Vec<Event>> {
        self.clone()
            .unary(Pipeline, "Events", |_cap, _info| {
                move |input, output| {
                    input.for_each(|cap, batch| {
                        let Some(cap) = cap.retain_least(0) else { return };
                        let mut session = output.session(&cap);
                        for item in batch.drain(..) {
                            if let Output::Event(event) = item {
                                session.give(event);
                            }
                        }
                    });
                }
            })
            .container::<Vec<Event>>()
    }
}
