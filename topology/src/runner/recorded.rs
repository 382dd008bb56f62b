//! Running the graph in process on recorded traffic: real operators (or the
//! [`testing`](crate::testing) double), virtual time taken from the records, outputs captured
//! instead of written. The same records give byte-identical output for any number of workers.

use crate::graph::{self, GraphConfig};
use crate::time::{Clock, Time};
use crate::{Error, Result};
use std::sync::{Arc, Mutex};
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::{Event, SourceRecord};
use switchboard_sinks::EventSink;
use switchboard_sources::recording::worker_share;
use timely::dataflow::InputHandle;

/// Collects every flushed event.
struct CaptureSink(Arc<Mutex<Vec<Event>>>);

impl EventSink for CaptureSink {
    fn write_epoch(&mut self, _time: Time, events: Vec<Event>, _sessions: Vec<SessionSnapshot>, done: switchboard_sinks::Durable) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend(events);
        done(Ok(()));
    }
}

/// Runs the graph over `records` with `workers` threads on record time and returns the output
/// events in canonical order (`switchboard_sinks::file::canonical_order`).
pub fn run_recording(records: Vec<SourceRecord>, workers: usize, mut config: GraphConfig) -> Result<Vec<Event>> {
    config.clock = Clock::Virtual;
    let records = Arc::new(records);
    let captured = Arc::new(Mutex::new(Vec::new()));
    let out = captured.clone();
    let guards = timely::execute(timely::Config::process(workers.max(1)), move |worker| {
        let mine = worker_share(&records, worker.index(), worker.peers());
        let mut input: InputHandle<Time, _> = InputHandle::new();
        let sink = CaptureSink(out.clone());
        let probe = worker.dataflow::<Time, _, _>(|scope| {
            // Recordings start with no saved sessions.
            let restored = timely::dataflow::operators::ToStream::to_stream(Vec::<SessionSnapshot>::new(), scope);
            graph::build(input.to_stream(scope), restored, config.clone(), Box::new(sink))
        });
        for record in mine {
            let at = u64::try_from(record.timestamp_ms).unwrap_or(0).max(*input.time());
            if at > *input.time() {
                input.advance_to(at);
                worker.step();
            }
            input.send(record);
        }
        drop(input);
        while !probe.done() {
            worker.step_or_park(Some(std::time::Duration::from_millis(20)));
        }
    })
    .map_err(Error::Start)?;
    for result in guards.join() {
        result.map_err(Error::WorkerPanicked)?;
    }
    let mut events = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
    switchboard_sinks::file::canonical_order(&mut events);
    Ok(events)
}
