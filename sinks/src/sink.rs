//! The seam between the dataflow graph and its outputs: an [`EventSink`] receives each
//! epoch's events, and then the session state the epoch changed, and returns only once they
//! are durable. The graph releases an epoch (so its offsets may be committed) only after that.

use crate::Result;
use std::time::Duration;
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::Event;

/// Dataflow time as the sinks see it: milliseconds (wall clock in a live run, record time on
/// recordings and replays). The graph's epochs are these times.
pub type Time = u64;

/// Where an epoch's output events go. `flush` must return only once they are durable.
pub trait EventSink: 'static {
    /// Writes all events of one epoch. An error means the epoch is not durable: the graph
    /// stops releasing epochs and the runner decides (a live run stops; nothing of the epoch
    /// was committed, so a restart redoes it).
    fn flush(&mut self, time: Time, events: Vec<Event>) -> Result<()>;

    /// Saves the session state of the dialogues an epoch changed; called after [`flush`] of
    /// the same epoch (a saved state never runs ahead of durable outputs). The default keeps
    /// nothing (tests on recordings, replays).
    ///
    /// [`flush`]: EventSink::flush
    fn save_sessions(&mut self, _time: Time, _sessions: Vec<SessionSnapshot>) -> Result<()> {
        Ok(())
    }
}

/// Told about every successful flush (the topology's metrics implement it).
pub trait FlushObserver: Send + Sync {
    /// `events` were flushed in `took`.
    fn flushed(&self, events: &[Event], took: Duration);
}
