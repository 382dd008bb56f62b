//! The seam between the dataflow graph and its outputs: an [`EventSink`] takes each complete
//! epoch (its events, then the session state it changed) and reports, through a [`Durable`]
//! callback, when all of it is durable. The graph holds the epoch back (so its offsets are not
//! committed) until then, and keeps working on later epochs meanwhile: many epochs can be in
//! flight, and a reply can leave long before the epoch's rows reach ClickHouse.

use crate::Result;
use std::time::Duration;
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::Event;

/// Dataflow time as the sinks see it: milliseconds (wall clock in a live run, record time on
/// recordings and replays). The graph's epochs are these times.
pub type Time = u64;

/// Called exactly once per epoch with its outcome: `Ok` once every output of the epoch is
/// durable, or the error that made that impossible (after the sink's own retries).
pub type Durable = Box<dyn FnOnce(Result<()>) + Send>;

/// Where an epoch's outputs go.
pub trait EventSink: 'static {
    /// Takes one complete epoch: its events and the session state of the dialogues it changed.
    /// Calls `done` exactly once, possibly before returning (a synchronous sink) or later from
    /// another thread. `Ok` means every event is durable and then the sessions were saved: a
    /// saved session state never runs ahead of the epoch's durable events and replies. An
    /// error means the epoch is not durable: the graph stops releasing epochs and the runner
    /// stops the process (nothing of the epoch was committed, so a restart redoes it).
    fn write_epoch(&mut self, time: Time, events: Vec<Event>, sessions: Vec<SessionSnapshot>, done: Durable);
}

/// Told about every epoch that became durable (the topology's metrics implement it).
pub trait FlushObserver: Send + Sync {
    /// The graph handed `events` of one epoch to the sink (replies are on their way).
    fn handed_over(&self, events: &[Event]);

    /// The broker acknowledged an epoch's `replies`.
    fn replies_acked(&self, _replies: &[Event]) {}

    /// An epoch became durable `took` after the sink received it; `replies` were its replies.
    fn durable(&self, took: Duration, replies: &[Event]);

    /// ClickHouse took one group insert of `rows` rows into `table` in `took`.
    fn inserted(&self, _table: &str, _rows: usize, _took: Duration) {}
}
