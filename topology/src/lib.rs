//! The Switchboard dataflow graph and the `switchboard` command-line interface that runs it.
//!
//! - [`graph`]: the timely graph (understand → session → sinks) and its frontier-driven commit.
//! - [`run`]: running it on Kafka (`run`, `submit`, `replay`).
//! - [`deterministic`]: running it on a recording with virtual time (`test`).

pub mod cli_time;
pub mod commands;
pub mod config;
pub mod decode;
pub mod deterministic;
pub mod doctor;
pub mod graph;
pub mod kafka_access;
pub mod live_sink;
pub mod metrics;
pub mod model_server;
pub mod run;
pub mod stage;
pub mod versions;
pub mod aggregates;

/// Marks an error as bad usage or bad input: the binary exits with status 2 for it.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}
