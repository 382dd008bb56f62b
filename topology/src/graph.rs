//! The dataflow graph: source records → analyse (decode, mask, understand; batched per epoch,
//! with the versions pinned as of the epoch) → exchange by dialogue → session (state, slot
//! filling, handoff, idle close) → sinks. Sinks flush everything of an epoch before the epoch's
//! capability is released, so a probe after the sinks tells which epochs are durable: the Kafka
//! offsets of those epochs may be committed (frontier-driven commit).

use crate::aggregates::{AggregateStream, LiveAggregates};
use crate::metrics::Metrics;
pub use crate::output::{Failure, Output};
use crate::operators::{AnalyseStream, EventsStream, SessionStream, SinkStream};
use crate::time::{Clock, Time};
use crate::versions::VersionsStream;
use std::sync::Arc;
use switchboard_operators::session::SessionConfig;
use switchboard_operators::understand::Understand;
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::SourceRecord;
use switchboard_sinks::EventSink;
use timely::dataflow::operators::Probe;
use timely::dataflow::{ProbeHandle, Stream};

/// What the graph needs besides its input.
#[derive(Clone)]
pub struct GraphConfig {
    /// Intent and retrieval.
    pub understand: Arc<dyn Understand>,
    /// Session tuning.
    pub session: SessionConfig,
    /// Processing time source.
    pub clock: Clock,
    /// Where per-operator timings go, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
    /// Where the live per-minute counts go, if anywhere.
    pub aggregates: Option<Arc<LiveAggregates>>,
    /// Where a sink failure is reported to the runner.
    pub failure: Failure,
    /// Live runs: when a turn met too long after it was said is expired (recorded with the
    /// gateway's timeout handoff, not understood). None on record time.
    pub expiry: Option<Arc<switchboard_operators::analysis::Expiry>>,
    /// What happens to the dialogues still open when the input ends (on record time).
    pub end_of_input: EndOfInput,
}

/// What the session operator does with the dialogues still open when its input ends on record
/// time (a live run never closes them: it is only stopping, they go on after the restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndOfInput {
    /// The traffic really ended (a recording): every open dialogue closes at its idle deadline.
    #[default]
    CloseAll,
    /// The input is a range of a topic whose dialogues may go on after it (a backfill): only
    /// the dialogues whose idle deadline the input's watermark passed close; the others stay
    /// open, as they may be in the live run.
    KeepOpen,
}

impl GraphConfig {
    /// A configuration with no metrics and no live aggregates.
    pub fn new(understand: Arc<dyn Understand>, session: SessionConfig, clock: Clock) -> Self {
        GraphConfig { understand, session, clock, metrics: None, aggregates: None, failure: Failure::default(), expiry: None, end_of_input: EndOfInput::CloseAll }
    }
}

/// Builds the graph on `input` and returns the probe that tells which epochs are durable.
/// `restored` carries saved session state (at time 0, before any turn); it may be empty.
pub fn build<'s>(
    input: Stream<'s, Time, Vec<SourceRecord>>,
    restored: Stream<'s, Time, Vec<SessionSnapshot>>,
    config: GraphConfig,
    sink: Box<dyn EventSink>,
) -> ProbeHandle<Time> {
    let versions = input.versions(config.understand.clone());
    let staged = input.analyse(versions, config.understand.clone(), config.clock, config.expiry.clone(), config.metrics.clone());
    let outputs = staged.sessions(restored, config.session.clone(), config.clock, config.end_of_input, config.metrics.clone());
    if let Some(live) = &config.aggregates {
        outputs.events().aggregate(live.clone());
    }
    let probe = ProbeHandle::new();
    outputs.sink(sink, config.failure.clone()).probe_with(&probe);
    probe
}
