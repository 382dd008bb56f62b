//! The Switchboard dataflow graph and the `switchboard` command-line interface that runs it.
//!
//! - [`graph`]: the timely graph (understand → session → sinks) and its frontier-driven commit.
//! - [`run`]: running it on Kafka (`run`, `submit`, `replay`).
//! - [`deterministic`]: running it on a recording with virtual time (`test`).

pub mod config;
pub mod decode;
pub mod deterministic;
pub mod doctor;
pub mod graph;
pub mod live_sink;
pub mod metrics;
pub mod run;
pub mod stage;
