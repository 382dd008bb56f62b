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

/// Collects every flushed event of graph number `.1`.
struct CaptureSink(Arc<Vec<Mutex<Vec<Event>>>>, usize);

impl EventSink for CaptureSink {
    fn write_epoch(&mut self, _time: Time, events: Vec<Event>, _sessions: Vec<SessionSnapshot>, done: switchboard_sinks::Durable) {
        if let Some(captured) = self.0.get(self.1) {
            captured.lock().unwrap_or_else(|p| p.into_inner()).extend(events);
        }
        done(Ok(()));
    }
}

/// Runs the graph over `records` with `workers` threads on record time and returns the output
/// events in canonical order (`switchboard_sinks::file::canonical_order`).
pub fn run_recording(records: Vec<SourceRecord>, workers: usize, config: GraphConfig) -> Result<Vec<Event>> {
    let mut outputs = run_recording_versions(records, workers, vec![config])?;
    Ok(outputs.pop().unwrap_or_default())
}

/// Runs one graph per configuration over the same `records` in one pass (one dataflow, one
/// input stream, each graph with its own session state and captured outputs) and returns each
/// graph's events in canonical order, in the order of `configs`. `switchboard shadow` compares
/// the current and a candidate version so.
pub fn run_recording_versions(records: Vec<SourceRecord>, workers: usize, configs: Vec<GraphConfig>) -> Result<Vec<Vec<Event>>> {
    let configs: Vec<GraphConfig> = configs.into_iter().map(|c| GraphConfig { clock: Clock::Virtual, ..c }).collect();
    let records = Arc::new(records);
    let captured: Arc<Vec<Mutex<Vec<Event>>>> = Arc::new(configs.iter().map(|_| Mutex::new(Vec::new())).collect());
    let out = captured.clone();
    let guards = timely::execute(timely::Config::process(workers.max(1)), move |worker| {
        let mine = worker_share(&records, worker.index(), worker.peers());
        let mut input: InputHandle<Time, _> = InputHandle::new();
        let probes: Vec<_> = worker.dataflow::<Time, _, _>(|scope| {
            let stream = input.to_stream(scope);
            configs
                .iter()
                .enumerate()
                .map(|(i, config)| {
                    // Recordings start with no saved sessions.
                    let restored = timely::dataflow::operators::ToStream::to_stream(Vec::<SessionSnapshot>::new(), scope);
                    let sink = CaptureSink(out.clone(), i);
                    graph::build(stream.clone(), restored, config.clone(), Box::new(sink))
                })
                .collect()
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
        while !probes.iter().all(|p| p.done()) {
            worker.step_or_park(Some(std::time::Duration::from_millis(20)));
        }
    })
    .map_err(Error::Start)?;
    for result in guards.join() {
        result.map_err(Error::WorkerPanicked)?;
    }
    Ok(captured
        .iter()
        .map(|m| {
            let mut events = std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()));
            switchboard_sinks::file::canonical_order(&mut events);
            events
        })
        .collect())
}
