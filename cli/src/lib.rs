//! The `switchboard` binary's library half: the commands as functions (the binary only parses
//! arguments), the configuration file, `doctor`, the metrics listener, `retention`, `shadow` and the load generator.
//! It wires the crates together; no library crate depends on it.

#![deny(missing_docs)]

pub mod cli_time;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod loadgen;
pub mod metrics_http;
pub mod retention;
pub mod shadow;

/// Marks an error as bad usage or bad input: the binary exits with status 2 for it.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}
