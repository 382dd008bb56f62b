//! What flows out of the session operator, and how a failed sink is reported to the runner.

use std::sync::{Arc, Mutex};
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::Event;

/// What the session operator emits: events for the sinks, and changed session state to save.
#[derive(Debug, Clone)]
pub enum Output {
    /// An output event.
    Event(Event),
    /// A dialogue's changed state (or its close).
    Session(SessionSnapshot),
}

/// The first sink failure of a run, shared by every worker of a process: an operator never
/// ends the process; it records the failure, holds the epoch back, and the runner stops.
#[derive(Debug, Clone, Default)]
pub struct Failure(Arc<Mutex<Option<switchboard_sinks::Error>>>);

impl Failure {
    /// Records `error` unless a failure is already recorded.
    pub fn set(&self, error: switchboard_sinks::Error) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// Whether a failure was recorded.
    pub fn failed(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Takes the recorded failure, if any.
    pub fn take(&self) -> Option<switchboard_sinks::Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
