//! Dataflow time and clocks: epochs are milliseconds, on the wall clock in a live run and on
//! record time on recordings and replays.

pub use switchboard_operators::analysis::{wall_clock_ms, Clock, RecordClock};

/// Dataflow time: milliseconds (wall clock in `run`, record time in `test` and `replay`).
pub type Time = switchboard_sinks::Time;
